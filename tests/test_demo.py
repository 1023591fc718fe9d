"""The README's demo command: the example service's CLI, on its embedded SQLite file.

The command is read from the README, so the two cannot drift apart; its Python part runs in
a process of its own, from the folder ``uv run --directory`` names, on a temporary file.
"""

import os
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "python -m pip install uv && "


def readme_demo_command() -> list[str]:
    """``python -m uv run --directory DIR [uv options] python ARGS...`` -> ``[DIR, ARGS...]``."""
    lines = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith(INSTALL + "python -m uv run") and " demo" in line
    ]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0].removeprefix(INSTALL))
    assert words[:4] == ["python", "-m", "uv", "run"]
    python = words.index("python", 4)
    assert "--directory" in words[4:python]
    return [words[words.index("--directory") + 1], *words[python + 1 :]]


def test_the_readme_command_runs_the_cli_demo() -> None:
    assert readme_demo_command() == ["examples", "-m", "notes_service", "demo"]


@pytest.mark.programs
@pytest.mark.timeout(600)
def test_the_demo_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    folder, *args = readme_demo_command()
    database = tmp_path / "notes.sqlite3"
    env = {**os.environ, "NOTES_DATABASE": str(database)}
    env.pop("PYTHONPATH", None)

    def demo() -> list[str]:
        """One run of the demo's command, as the README gives it; its output lines."""
        run = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT / folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert (run.returncode, run.stderr) == (0, "")
        return run.stdout.splitlines()

    assert demo() == [
        f"{database}: schema at revision 0001",
        "seeded 2 users and 4 notes; tokens: ann-token (ann), bob-token (bob)",
        "ann added note 5: Written by the demo",
        "ann: 4 notes",
        "bob: 1 note",
        f"total: 5 notes in {database}",
    ]
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute(
            "SELECT u.name, n.text FROM notes n JOIN users u ON u.id = n.author_id WHERE n.id = 5"
        ).fetchall() == [("ann", "Written by the demo")]
    again = demo()
    assert again[:3] == [
        f"{database} exists: the demo adds to it (delete the file to start over)",
        f"{database}: schema at revision 0001",
        "already seeded",
    ]
    assert again[-1] == f"total: 6 notes in {database}"
