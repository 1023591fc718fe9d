"""The FastAPI app: its lifespan opens the database engine; routes queue background tasks."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from fastapi_depends_anywhere import configure, with_fastapi_depends
from notes_service.deps import CurrentUserDep, NotesDep, SessionDep
from notes_service.settings import Settings, get_settings


def settings_for(app: FastAPI) -> Settings:
    """The settings the lifespan starts with: the dependency's, or a test's override of it."""
    provider = app.dependency_overrides.get(get_settings, get_settings)
    settings: Settings = provider()
    return settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Startup opens the engine; its state is ``request.state`` in every dependency."""
    settings = settings_for(app)
    # A writer waits for another one (a second worker process) instead of failing.
    engine = create_async_engine(
        settings.database_url, echo=settings.echo_sql, connect_args={"timeout": 30}
    )
    try:
        yield {
            "settings": settings,
            "engine": engine,
            "sessions": async_sessionmaker(engine, expire_on_commit=False),
        }
    finally:
        await engine.dispose()


app = FastAPI(title="notes", lifespan=lifespan)
configure(app=app)  # once, at startup: every entry point imports this module


class NoteIn(BaseModel):
    text: str


class NoteOut(BaseModel):
    id: int
    author: str
    text: str


@with_fastapi_depends
async def record_activity(action: str, *, user: CurrentUserDep, notes: NotesDep) -> None:
    """A background task: it runs after the response, with a session of its own, and
    finds the caller's user from the request's headers (``_scope=request.scope``)."""
    await notes.record(user, action)


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str]:
    return {"name": user.name}


@app.get("/notes")
async def list_notes(user: CurrentUserDep, notes: NotesDep) -> list[NoteOut]:
    return [NoteOut(id=n.id, author=user.name, text=n.text) for n in await notes.of(user)]


@app.post("/notes", status_code=201)
async def create_note(
    body: NoteIn,
    request: Request,
    background_tasks: BackgroundTasks,
    user: CurrentUserDep,
    notes: NotesDep,
    session: SessionDep,
) -> NoteOut:
    note = await notes.add(user, body.text)
    # Commit before queueing: the task writes through a session of its own, and FastAPI
    # before 0.106 runs background tasks before the dependencies' teardown.
    await session.commit()
    background_tasks.add_task(record_activity, f"created note {note.id}", _scope=request.scope)
    return NoteOut(id=note.id, author=user.name, text=note.text)
