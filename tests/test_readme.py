"""Every code block of the README runs as pasted, and prints what the README shows.

Each ```` ```python ```` block is saved as a file of its own and run in a fresh interpreter,
in an empty folder: a reader pastes one block, not the page. A ```` ```text ```` block that
comes next (before any other block) is that file's output, exactly. ``bash`` blocks are
commands, run elsewhere: the demo by tests/test_demo.py, the tests by CI (.ci/run), the
installs by ``nox -s release`` and ``nox -s demo``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_runner import Block, blocks

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = blocks(README)
EXAMPLES = [
    (block, following.body if following and following.lang == "text" else None)
    for block, following in zip(BLOCKS, [*BLOCKS[1:], None], strict=True)
    if block.lang == "python"
]


def test_the_readme_shows_runnable_examples_and_their_output() -> None:
    assert len(EXAMPLES) >= 2
    assert EXAMPLES[0][1], "the first example shows its output"
    assert {block.lang for block in BLOCKS} <= {"python", "bash", "text"}


@pytest.mark.process
@pytest.mark.parametrize(("block", "output"), EXAMPLES, ids=[f"line{b.line}" for b, _ in EXAMPLES])
def test_the_block_runs_as_a_file(block: Block, output: str | None, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.body)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    if output is not None:
        assert run.stdout == output
