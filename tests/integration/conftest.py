"""Fixtures of the example service's tests, and the pytest recipes of its docs.

- ``overrides``: ``app.dependency_overrides`` for one test, restored after it.
- ``settings``: a SQLite file of the test's own, given to the app as a settings override.
- ``database``: that file, migrated by Alembic and seeded, through the CLI's functions.
- ``client``: a ``TestClient`` that runs the app's lifespan.
- ``stack`` (session-scoped): one ``FastApiDepsStack`` for the whole session, on a database
  chosen the way production chooses it (``NOTES_DATABASE``); ``notes``, ``session`` and
  ``engine`` are per-service fixtures resolved from it.
"""

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# The example service is the `notes_service` package in examples/.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if EXAMPLES.is_dir() and str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from fastapi_depends_anywhere import FastApiDepsStack, configure, reset_config  # noqa: E402
from notes_service.app import app  # noqa: E402
from notes_service.cli import init_db, seed  # noqa: E402
from notes_service.deps import EngineDep, NotesDep, NotesRepository, SessionDep  # noqa: E402
from notes_service.settings import Settings, get_settings  # noqa: E402

Overrides = dict[Callable[..., Any], Callable[..., Any]]


@pytest.fixture(autouse=True)
def configured() -> Iterator[None]:
    """The app, configured for each test as the service configures it at startup."""
    configure(app=app)
    yield
    reset_config()


@pytest.fixture
def overrides() -> Iterator[Overrides]:
    """``app.dependency_overrides`` for one test: what a test puts there is gone after it."""
    saved = dict(app.dependency_overrides)
    yield app.dependency_overrides
    app.dependency_overrides.clear()
    app.dependency_overrides.update(saved)


@pytest.fixture
def settings(tmp_path: Path, overrides: Overrides) -> Settings:
    """A database of the test's own: the lifespan and the settings dependency use it."""
    settings = Settings(database=tmp_path / "notes.sqlite3")
    overrides[get_settings] = lambda: settings
    return settings


@pytest.fixture
def database(settings: Settings) -> Path:
    """The test's database, migrated and seeded by the CLI's own functions."""
    init_db()
    seed()
    return settings.database


@pytest.fixture
def client(database: Path) -> Iterator[TestClient]:
    with TestClient(app) as client:  # runs the lifespan
        yield client


# --- One stack for the session ----------------------------------------------------------


@pytest.fixture(scope="session")
def session_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's database, migrated and seeded."""
    path = tmp_path_factory.mktemp("session") / "notes.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NOTES_DATABASE", str(path))
        configure(app=app)
        init_db()
        seed()
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(session_database: Path) -> AsyncIterator[FastApiDepsStack]:
    """The lifespan starts once, on the database named as production names it
    (``NOTES_DATABASE``); every per-service fixture resolves from this stack."""
    stack = FastApiDepsStack(app=app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NOTES_DATABASE", str(session_database))
        await stack.start()
    yield stack
    await stack.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def notes(stack: FastApiDepsStack) -> NotesRepository:
    return await stack.resolve(NotesDep)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def session(stack: FastApiDepsStack) -> AsyncSession:
    return await stack.resolve(SessionDep)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(stack: FastApiDepsStack) -> AsyncEngine:
    return await stack.resolve(EngineDep)
