"""The Typer CLI: commands built with runnify_with_fastapi_depends reuse the app's
dependencies and lifespan. Typer's CliRunner in-process; real processes for the commands
the README and docs/integrations/cli.md give."""

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from docs_runner import blocks
from typer.testing import CliRunner

from notes_service.cli import cli
from notes_service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CLI_PAGE = ROOT / "docs" / "integrations" / "cli.md"
runner = CliRunner()


def invoke(*args: str) -> list[str]:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def run_module(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a process of its own, as a user runs ``python -m notes_service``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


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


@pytest.mark.programs
def test_a_real_process(database: Path) -> None:
    """``python -m notes_service`` in a process of its own, on ``NOTES_DATABASE``."""
    env = {**os.environ, "NOTES_DATABASE": str(database), "PYTHONPATH": str(EXAMPLES)}
    run = run_module("-m", "notes_service", "cleanup", "--days", "30", env=env)
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


@pytest.mark.programs
def test_a_real_process_on_a_database_without_tables(tmp_path: Path) -> None:
    database = tmp_path / "notes.sqlite3"
    env = {**os.environ, "NOTES_DATABASE": str(database), "PYTHONPATH": str(EXAMPLES)}
    run = run_module("-m", "notes_service", "report", env=env)
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        f"error: {database} has no tables yet: run `python -m notes_service init-db`\n"
    )


def page_commands() -> tuple[list[str], list[str], str]:
    """docs/integrations/cli.md's commands: (set-up lines, CLI commands, their output)."""
    page = blocks(CLI_PAGE)
    [(index, commands)] = [
        (i, b) for i, b in enumerate(page) if b.lang == "bash" and "notes_service" in b.body
    ]
    output = page[index + 1]
    assert output.lang == "text"
    lines = [line.split("  #")[0].strip() for line in commands.body.splitlines()]
    setup = [line for line in lines if line and not line.startswith("python -m notes_service")]
    cli_lines = [line for line in lines if line.startswith("python -m notes_service")]
    return setup, cli_lines, output.body


def test_the_page_sets_up_the_environment_the_demo_is_tested_with() -> None:
    """The page installs what the README's demo command does (run by ``nox -s demo``), from
    the repository's root, then runs the commands from ``examples/``."""
    setup, commands, _ = page_commands()
    assert setup[0] == "python -m pip install uv"
    assert setup[2:] == ["source .venv/bin/activate", "cd examples"]
    sync = shlex.split(setup[1])
    assert sync[:5] == ["python", "-m", "uv", "sync", "--inexact"]
    [demo] = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python -m pip install uv && ") and line.endswith(" demo")
    ]
    words = shlex.split(demo.split("&&", 1)[1])
    options = words[words.index("run") + 1 : words.index("python", 3)]
    directory = options.index("--directory")
    assert sync[5:] == options[:directory] + options[directory + 2 :]
    assert len(commands) >= 5


@pytest.mark.programs
@pytest.mark.timeout(900)
def test_the_pages_commands_as_written(tmp_path: Path) -> None:
    """Each command in a process of its own, from a folder where ``notes_service`` imports
    as from ``examples/``, on the default database file of that folder."""
    _, commands, output = page_commands()
    env = {key: value for key, value in os.environ.items() if key != "NOTES_DATABASE"}
    env["PYTHONPATH"] = str(EXAMPLES)
    printed = []
    for command in commands:
        python, *args = shlex.split(command)
        assert python == "python"
        run = run_module(*args, env=env, cwd=tmp_path)
        assert (run.returncode, run.stderr) == (0, ""), command
        printed.append(run.stdout)
    assert "".join(printed) == output
    assert (tmp_path / "notes.sqlite3").is_file()


def test_the_default_database_is_a_file_in_the_working_folder() -> None:
    assert Settings.from_env({}).database == Path("notes.sqlite3")
    assert Settings.from_env({"NOTES_DATABASE": "/data/n.db"}).database_url == (
        "sqlite+aiosqlite:////data/n.db"
    )
