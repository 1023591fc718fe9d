"""Alembic: env.py gets its engine from the app's lifespan through a dependency, so
migrations go to the database the settings name (alembic.ini names none)."""

import io
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from notes_service.cli import alembic_config
from notes_service.models import Base
from notes_service.settings import Settings

INI = Path(__file__).resolve().parents[2] / "examples" / "notes_service" / "alembic.ini"


def tables(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as conn:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        return [name for (name,) in conn.execute(query)]


def revision(database: Path) -> str:
    with closing(sqlite3.connect(database)) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_upgrade_head_through_the_command_api(settings: Settings) -> None:
    command.upgrade(alembic_config(), "head")
    assert tables(settings.database) == ["activity", "alembic_version", "notes", "users"]
    assert revision(settings.database) == "0001"


def test_the_migrations_build_the_models_schema(settings: Settings) -> None:
    command.upgrade(alembic_config(), "head")
    engine = create_engine(f"sqlite:///{settings.database}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_downgrade_then_upgrade_again(settings: Settings) -> None:
    config = alembic_config()
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert tables(settings.database) == ["alembic_version"]
    command.upgrade(config, "head")
    assert revision(settings.database) == "0001"


def test_offline_mode_writes_the_sql(settings: Settings) -> None:
    output = io.StringIO()
    config = Config(str(INI), output_buffer=output)
    command.upgrade(config, "head", sql=True)
    assert "CREATE TABLE notes" in output.getvalue()
    assert not settings.database.exists()  # offline: nothing touched the database


@pytest.mark.programs
def test_alembic_upgrade_head_in_a_process_of_its_own(tmp_path: Path) -> None:
    database = tmp_path / "migrated.sqlite3"
    env = {**os.environ, "NOTES_DATABASE": str(database)}
    env.pop("PYTHONPATH", None)  # alembic.ini's prepend_sys_path finds notes_service
    run = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(INI), "upgrade", "head"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert tables(database) == ["activity", "alembic_version", "notes", "users"]
    assert revision(database) == "0001"
