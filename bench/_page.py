"""The benchmark page's tables, written by the scripts that measure them.

``docs/benchmarks.md`` marks each generated table with ``<!-- bench:NAME:start -->`` and
``<!-- bench:NAME:end -->``; ``--page PATH`` replaces what lies between with the table the
script just printed, so the page only ever shows figures of one run, never typed by hand.
"""

import re
import sys
from pathlib import Path


def write_table(page: Path, name: str, text: str) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    content = page.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        sys.exit(f"{page} has no {start} ... {end} section")
    page.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", content))
    print(f"wrote the {name} table into {page}")
