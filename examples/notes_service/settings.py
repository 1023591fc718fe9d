"""The service's settings: environment variables, with defaults that work out of the box."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The embedded SQLite file used when ``NOTES_DATABASE`` is not set (in the working folder).
DEFAULT_DATABASE = Path("notes.sqlite3")


@dataclass(frozen=True)
class Settings:
    database: Path = DEFAULT_DATABASE
    broker_url: str = "redis://127.0.0.1:6379/0"
    echo_sql: bool = False

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            database=Path(environ.get("NOTES_DATABASE", str(DEFAULT_DATABASE))),
            broker_url=environ.get("NOTES_BROKER_URL", cls.broker_url),
            echo_sql=environ.get("NOTES_ECHO_SQL", "") == "1",
        )


def get_settings() -> Settings:
    """The settings dependency. Tests override it: ``app.dependency_overrides``."""
    return Settings.from_env()
