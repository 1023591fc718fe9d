"""The README's demo command works and really persists to its SQLite file."""

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

DEMO = Path(__file__).parent.parent / "examples" / "demo.py"


@pytest.mark.timeout(60)
def test_demo_runs_twice_on_its_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    env = {**os.environ, "DEMO_DATABASE": str(database)}
    runs = [
        subprocess.run(
            [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=50
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""
    assert "notes: 0 before, 1 after adding one" in runs[0].stdout
    assert "notes: 1 before, 2 after adding one" in runs[1].stdout
    assert "rolled back, still 2 notes" in runs[1].stdout
    assert runs[1].stdout.splitlines()[-1] == "shutdown: closed the database"
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [
            ("written by a script",),
            ("written by a script",),
        ]
