"""A FastAPI app's dependencies, reused by a script: no server, no request.

Run from the repository root:

    python -m pip install uv && python -m uv run --all-packages --all-extras python examples/demo.py

The app keeps its data in an embedded SQLite file (``demo.sqlite3`` in the current folder,
or the path in ``DEMO_DATABASE``). Its lifespan opens the connection; dependencies build a
session (committed on success, rolled back on error) and a repository on top of it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from fastapi_depends_anywhere import (
    FastApiDepsStack,
    configure,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    path = os.environ.get("DEMO_DATABASE", "demo.sqlite3")
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    print(f"startup: opened {path}")
    yield {"conn": conn}
    conn.close()
    print("shutdown: closed the database")


app = FastAPI(lifespan=lifespan)


def get_session(request: Request) -> Iterator[sqlite3.Connection]:
    """One transaction per call: commit on success, roll back on error."""
    conn: sqlite3.Connection = request.state.conn
    try:
        yield conn
    except Exception:
        conn.rollback()
        raise
    else:
        conn.commit()


class Notes:
    def __init__(self, session: Annotated[sqlite3.Connection, Depends(get_session)]) -> None:
        self.session = session

    def add(self, text: str) -> None:
        self.session.execute("INSERT INTO notes (text) VALUES (?)", (text,))

    def count(self) -> int:
        return int(self.session.execute("SELECT count(*) FROM notes").fetchone()[0])


NotesDep = Annotated[Notes, Depends()]


@app.post("/notes")
async def add_note(text: str, notes: NotesDep) -> dict[str, int]:
    notes.add(text)
    return {"count": notes.count()}


@with_fastapi_depends
async def add_note_outside_a_request(text: str, *, notes: NotesDep) -> int:
    notes.add(text)
    return notes.count()


@with_fastapi_depends
async def add_then_fail(*, notes: NotesDep) -> None:
    notes.add("never committed")
    raise RuntimeError("simulated failure after an insert")


@runnify_with_fastapi_depends
async def main(*, notes: NotesDep) -> None:
    """Startup, then this body with its dependencies, then shutdown."""
    before = notes.count()
    after = await add_note_outside_a_request("written by a script")
    print(f"notes: {before} before, {after} after adding one")

    try:
        await add_then_fail()
    except RuntimeError as exc:
        print(f"failed call ({exc}): rolled back, still {notes.count()} notes")

    async with FastApiDepsStack(app=app) as stack:  # a notebook-style session
        repository = await stack.resolve(NotesDep)
        print(f"a FastApiDepsStack resolved {type(repository).__name__}: {repository.count()}")


if __name__ == "__main__":
    configure(app=app)
    main()
