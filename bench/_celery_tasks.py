"""The worker of bench_celery.py: the example service's task, three ways in one worker.

``notes.import_notes`` is the example's own: its calls share the process lifespan
(``lifespan_per_worker_process``). ``bench.import_notes_by_hand`` does the same work with
no library: an event loop and an engine per process, made at the first task, and per task
the session opened, the same queries (the user by its token, the note inserted and
flushed), the commit or rollback and the close written by hand.
``bench.import_notes_per_task`` runs the example's function inside a lifespan of its own
per task (``with_fastapi_lifecycle``), as tasks did before: on a second FastAPI app with
the same lifespan, so the process lifespan of the first one does not serve it.
"""

import asyncio
import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fastapi_depends_anywhere.sync import with_fastapi_depends, with_fastapi_lifecycle
from notes_service import batches
from notes_service.app import lifespan
from notes_service.batches import RejectedNoteError
from notes_service.models import Note, User, utcnow
from notes_service.settings import get_settings
from notes_service.tasks import bearer, celery, import_notes

__all__ = ["celery", "import_notes", "import_notes_by_hand", "import_notes_per_task"]

per_task_app = FastAPI(lifespan=lifespan)
add_notes_per_task = with_fastapi_lifecycle(
    with_fastapi_depends(batches.add_notes, app=per_task_app), app=per_task_app
)


@celery.task(name="bench.import_notes_per_task")
def import_notes_per_task(token: str, texts: list[str]) -> dict[str, Any]:
    """``notes.import_notes``, with the app's lifespan started and shut down around it."""
    return {"ids": add_notes_per_task(texts, _scope=bearer(token)), "pid": os.getpid()}


class _ByHand:
    """What this process made for the hand-wired task: a loop, an engine, a session
    factory (made again in a forked child, whose parent's are not its own)."""

    pid = 0
    loop: asyncio.AbstractEventLoop
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def here(cls) -> type["_ByHand"]:
        if cls.pid != os.getpid():
            engine = create_async_engine(get_settings().database_url, connect_args={"timeout": 30})
            cls.pid, cls.loop = os.getpid(), asyncio.new_event_loop()
            cls.sessions = async_sessionmaker(engine, expire_on_commit=False)
        return cls


async def add_notes_by_hand(
    sessions: async_sessionmaker[AsyncSession], token: str, texts: list[str]
) -> list[int]:
    """``batches.add_notes`` and its dependencies, written out: the same queries."""
    async with sessions() as session:
        try:
            user = await session.scalar(select(User).where(User.token == token))
            if user is None:
                raise LookupError("Invalid token")
            ids = []
            for number, text in enumerate(texts, 1):
                if not text.strip():
                    raise RejectedNoteError(f"note {number} of {len(texts)} is empty")
                note = Note(author=user, text=text, created_at=utcnow())
                session.add(note)
                await session.flush()
                ids.append(note.id)
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
    return ids


@celery.task(name="bench.import_notes_by_hand")
def import_notes_by_hand(token: str, texts: list[str]) -> dict[str, Any]:
    """``notes.import_notes`` with no library."""
    here = _ByHand.here()
    ids = here.loop.run_until_complete(add_notes_by_hand(here.sessions, token, texts))
    return {"ids": ids, "pid": os.getpid()}
