"""The Typer CLI: commands built with runnify_with_fastapi_depends reuse the app's
dependencies and lifespan. Typer's CliRunner in-process; real processes for the last."""

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notes_service.cli import cli
from notes_service.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def invoke(*args: str) -> list[str]:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def count(database: Path, query: str) -> int:
    with closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(query).fetchone()[0])


def test_init_db_migrates_the_database_the_settings_name(settings: Settings) -> None:
    assert invoke("init-db") == [f"{settings.database}: schema at revision 0001"]
    assert count(settings.database, "SELECT count(*) FROM alembic_version") == 1
    assert invoke("init-db") == [f"{settings.database}: schema at revision 0001"]


def test_seed_once(settings: Settings) -> None:
    invoke("init-db")
    assert invoke("seed") == [
        "seeded 2 users and 4 notes; tokens: ann-token (ann), bob-token (bob)"
    ]
    assert invoke("seed") == ["already seeded"]
    assert count(settings.database, "SELECT count(*) FROM notes") == 4


def test_report(database: Path) -> None:
    assert invoke("report") == [
        "ann: 3 notes",
        "bob: 1 note",
        f"total: 4 notes in {database}",
    ]


def test_add_note_as_the_owner_of_a_token(database: Path) -> None:
    assert invoke("add-note", "From the CLI", "--token", "bob-token") == [
        "bob added note 5: From the CLI"
    ]
    refused = runner.invoke(cli, ["add-note", "Nope", "--token", "wrong"])
    assert refused.exit_code == 1
    assert "error: Invalid token" in refused.output
    assert count(database, "SELECT count(*) FROM notes WHERE text = 'Nope'") == 0


def test_cleanup_days(database: Path) -> None:
    assert invoke("cleanup", "--days", "30") == ["deleted 1 note older than 30 days"]
    assert invoke("cleanup") == ["deleted 0 notes older than 30 days"]
    assert invoke("cleanup", "--days", "2") == ["deleted 1 note older than 2 days"]
    assert count(database, "SELECT count(*) FROM notes") == 2
    assert runner.invoke(cli, ["cleanup", "--days", "0"]).exit_code == 2  # Typer validates


def test_cleanup_counts_in_the_singular(database: Path) -> None:
    [line] = invoke("cleanup", "--days", "1")
    assert line.endswith(" older than 1 day"), line


def test_the_help_names_tokens_that_work(database: Path) -> None:
    """--help gives the seeded users' tokens: each one it names adds a note as its user."""
    helps = " ".join(
        runner.invoke(cli, args).output for args in (["--help"], ["add-note", "--help"])
    )
    named = re.findall(r"(\w+-token) \((\w+)\)", " ".join(helps.split()))
    assert len(set(named)) == 2, helps
    for token, user in set(named):
        [line] = invoke("add-note", "hello", "--token", token)
        assert line.startswith(f"{user} added note "), line


def test_the_commands_options_are_the_functions_own() -> None:
    result = runner.invoke(cli, ["cleanup", "--help"])
    assert result.exit_code == 0
    assert "--days" in result.output
    for injected in ("notes", "session", "_scope"):
        assert f"--{injected}" not in result.output


@pytest.mark.process
def test_a_real_process(database: Path) -> None:
    """``python -m notes_service`` in a process of its own, on ``NOTES_DATABASE``."""
    env = {**os.environ, "NOTES_DATABASE": str(database), "PYTHONPATH": str(EXAMPLES)}
    run = subprocess.run(
        [sys.executable, "-m", "notes_service", "cleanup", "--days", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (
        0,
        "deleted 1 note older than 30 days\n",
        "",
    )
    assert count(database, "SELECT count(*) FROM notes") == 3


@pytest.mark.parametrize(
    "command",
    [["report"], ["seed"], ["cleanup"], ["add-note", "hello", "--token", "ann-token"]],
    ids=lambda command: command[0],
)
def test_a_database_without_tables_is_one_line_naming_init_db(
    settings: Settings, command: list[str]
) -> None:
    result = runner.invoke(cli, command)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {settings.database} has no tables yet: run `python -m notes_service init-db`\n"
    )
    assert invoke("init-db") == [f"{settings.database}: schema at revision 0001"]
    assert "init-db" not in runner.invoke(cli, command).output


def test_other_database_errors_are_not_taken_for_a_missing_schema(database: Path) -> None:
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("ALTER TABLE notes RENAME COLUMN author_id TO user_id")  # out of date
    result = runner.invoke(cli, ["report"])
    assert result.exit_code == 1
    assert "init-db" not in result.output
    assert "no such column" in str(result.exception)


@pytest.mark.process
def test_a_real_process_on_a_database_without_tables(tmp_path: Path) -> None:
    database = tmp_path / "notes.sqlite3"
    env = {**os.environ, "NOTES_DATABASE": str(database), "PYTHONPATH": str(EXAMPLES)}
    run = subprocess.run(
        [sys.executable, "-m", "notes_service", "report"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        f"error: {database} has no tables yet: run `python -m notes_service init-db`\n"
    )


def test_the_default_database_is_a_file_in_the_working_folder() -> None:
    assert Settings.from_env({}).database == Path("notes.sqlite3")
    assert Settings.from_env({"NOTES_DATABASE": "/data/n.db"}).database_url == (
        "sqlite+aiosqlite:////data/n.db"
    )
