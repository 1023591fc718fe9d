"""Every code example in docs/ runs, so none can rot.

Each page runs in a fresh interpreter (``python tests/test_docs_examples.py PAGE``), in an
empty working folder, its blocks in order and in one namespace, like a notebook:

- a ```` ```python ```` block is executed; ``__name__`` is ``"__main__"``, so an
  ``if __name__ == "__main__":`` block runs as a script would. A block with a top-level
  ``await`` runs on the page's event loop (one loop for the whole page, as in a notebook);
  other blocks run with no loop running, as a script does.
- a block with ``title="some/file.py"`` (any language) is a file of the example project:
  all of them are written first, so blocks can ``import`` them wherever the page shows them;
  ``title="test_*.py"`` files are run with pytest after the blocks.
- a ``--8<-- "docs/snippets/FILE"`` line (pymdownx.snippets) stands for that file's text.
- ``bash``, ``console`` and ``text`` blocks are not code to run (installs, output), nor are
  ``mermaid`` diagrams; any other language without a title fails the test, so no example
  escapes by its language.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_runner import NOT_CODE, blocks, page_id, pages, slug

RUNNER = Path(__file__).parent / "docs_runner.py"


def test_the_docs_have_examples() -> None:
    counted = {page_id(page): len(blocks(page)) for page in pages()}
    assert counted["getting-started.md"] > 0
    assert sum(counted.values()) > 20


def test_every_block_is_run_written_or_not_code() -> None:
    unrunnable = [
        f"{page_id(page)}:{block.line} ({block.lang or 'no language'})"
        for page in pages()
        for block in blocks(page)
        if block.title is None and block.lang not in {"python", *NOT_CODE}
    ]
    assert not unrunnable


RUNNABLE = [page for page in pages() if any(b.lang == "python" or b.title for b in blocks(page))]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every page, each in its own process forked from one interpreter (docs_runner.py)."""
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(
        [sys.executable, str(RUNNER), str(out), *map(str, RUNNABLE)],
        env=env,
        check=True,
        timeout=900,
    )
    return out


# The pages run once, in the first test's fixture: its limit covers them all, on a busy machine.
# One xdist worker takes them all, so that the pages run once, not once per worker.
@pytest.mark.process
@pytest.mark.xdist_group("docs-pages")
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_page(page: Path, results: Path) -> None:
    log = (results / f"{slug(page)}.log").read_text()
    status = (results / f"{slug(page)}.status").read_text()
    assert status == "0", f"{page_id(page)} failed:\n{log}"
    assert f"ran all examples of {page_id(page)}" in log
