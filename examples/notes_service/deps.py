"""The service's dependencies. Routes, the CLI, Celery tasks, Django and Alembic share them.

No ``from __future__ import annotations`` here: FastAPI reads the annotations of a class
dependency's ``__init__`` (``NotesRepository``) at runtime.
"""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notes_service.models import Activity, Note, User, utcnow
from notes_service.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_engine(request: Request) -> AsyncEngine:
    """The engine the lifespan opened (``request.state`` is the lifespan's state)."""
    engine: AsyncEngine = request.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per call: committed on success, rolled back on error."""
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    async with sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_now() -> datetime:
    """The clock, as a dependency: tests pin it with ``app.dependency_overrides``."""
    return utcnow()


NowDep = Annotated[datetime, Depends(get_now)]


def get_bearer_token(authorization: Annotated[str | None, Header()] = None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return token


BearerTokenDep = Annotated[str, Depends(get_bearer_token)]


async def get_current_user(token: BearerTokenDep, session: SessionDep) -> User:
    user = await session.scalar(select(User).where(User.token == token))
    if user is None:
        raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUserDep = Annotated[User, Depends(get_current_user)]


class NotesRepository:
    """Queries on top of the call's session: whoever resolves it commits or rolls back."""

    def __init__(self, session: SessionDep, now: NowDep) -> None:
        self.session = session
        self.now = now

    async def add_user(self, name: str, token: str) -> User:
        user = User(name=name, token=token)
        self.session.add(user)
        await self.session.flush()
        return user

    async def user_named(self, name: str) -> User | None:
        return await self.session.scalar(select(User).where(User.name == name))

    async def add(self, author: User, text: str, *, created_at: datetime | None = None) -> Note:
        note = Note(author=author, text=text, created_at=created_at or self.now)
        self.session.add(note)
        await self.session.flush()
        return note

    async def record(self, user: User, action: str) -> Activity:
        activity = Activity(user_id=user.id, action=action, created_at=self.now)
        self.session.add(activity)
        await self.session.flush()
        return activity

    async def of(self, author: User) -> list[Note]:
        rows = await self.session.scalars(
            select(Note).where(Note.author_id == author.id).order_by(Note.id)
        )
        return list(rows)

    async def count(self) -> int:
        return await self.session.scalar(select(func.count()).select_from(Note)) or 0

    async def count_users(self) -> int:
        return await self.session.scalar(select(func.count()).select_from(User)) or 0

    async def counts_by_author(self) -> list[tuple[str, int]]:
        rows = await self.session.execute(
            select(User.name, func.count(Note.id))
            .outerjoin(Note, Note.author_id == User.id)
            .group_by(User.name)
            .order_by(User.name)
        )
        return [(name, count) for name, count in rows]

    async def delete_older_than(self, days: int) -> int:
        cutoff = self.now - timedelta(days=days)
        result = await self.session.execute(delete(Note).where(Note.created_at < cutoff))
        return int(result.rowcount)


NotesDep = Annotated[NotesRepository, Depends()]
