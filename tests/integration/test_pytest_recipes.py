"""The pytest recipes: a session-scoped stack with per-service fixtures layered on it,
``app.dependency_overrides`` for one test, and ``override()`` for one test or one block.
The fixtures are in conftest.py."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from fastapi_depends_anywhere import override, with_fastapi_lifecycle
from notes_service.cli import add_note, cleanup
from notes_service.deps import NotesDep, NotesRepository, get_current_user, get_now
from notes_service.models import User, utcnow


@pytest.mark.asyncio(loop_scope="session")
async def test_per_service_fixtures_come_from_one_stack(
    notes: NotesRepository, session: AsyncSession, engine: AsyncEngine, session_database: Path
) -> None:
    assert notes.session is session  # one dependency cache for the whole stack
    assert session.bind is engine  # the engine the lifespan opened
    assert engine.url.database == str(session_database)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_session_database_is_seeded(notes: NotesRepository) -> None:
    assert await notes.counts_by_author() == [("ann", 3), ("bob", 1)]


@pytest.mark.asyncio(loop_scope="session")
async def test_what_a_test_writes_stays_in_the_session(notes: NotesRepository) -> None:
    ann = await notes.user_named("ann")
    assert ann is not None
    await notes.add(ann, "Written by a test")
    assert [note.text for note in await notes.of(ann)][-1] == "Written by a test"


async def as_bob(notes: NotesDep) -> User | None:
    """An override with dependencies of its own, as FastAPI allows."""
    return await notes.user_named("bob")


@pytest.mark.asyncio
async def test_an_override_replaces_the_current_user(database: Path, overrides: dict) -> None:
    overrides[get_current_user] = as_bob
    # Inside the app's lifespan (it opens the engine), with no Authorization header at all.
    added = await with_fastapi_lifecycle(add_note)("No token needed")
    assert (added.author.name, added.text) == ("bob", "No token needed")


def test_an_override_pins_the_clock_that_cleanup_reads(
    database: Path, overrides: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two days from now, "older than 4 days" reaches the notes 3 and 90 days old.
    overrides[get_now] = lambda: utcnow() + timedelta(days=2)
    cleanup(days=4)
    assert capsys.readouterr().out.splitlines()[-1] == "deleted 2 notes older than 4 days"


def test_overrides_are_gone_after_the_test(overrides: dict) -> None:
    assert get_now not in overrides
    assert get_current_user not in overrides


@pytest.mark.asyncio
async def test_a_scoped_override_for_one_block(database: Path) -> None:
    async with override({get_current_user: as_bob}):  # this test's task only
        added = await with_fastapi_lifecycle(add_note)("No token needed")
    assert (added.author.name, added.text) == ("bob", "No token needed")


@override({get_now: lambda: utcnow() + timedelta(days=2)})
def test_a_scoped_override_for_the_whole_test(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cleanup(days=4)  # the CLI's own event loop runs in this context, and sees the block
    assert capsys.readouterr().out.splitlines()[-1] == "deleted 2 notes older than 4 days"
