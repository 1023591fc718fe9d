"""What the queue workers of these tests share: an app whose lifespan records its startup
and shutdown, and a yield dependency that records its teardown, in a SQLite file
(``FDA_TEST_RECORD``, made by ``workers.start``), each row with the pid of the process
that wrote it.

The worker modules (``fda_*_tasks.py``) import it in the workers the tests start; the
tests never do (it configures the app).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from fda_core import configure


def record(event: str, data: str) -> None:
    with closing(sqlite3.connect(os.environ["FDA_TEST_RECORD"], timeout=60)) as conn, conn:
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", (event, os.getpid(), data))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    token = uuid.uuid4().hex
    await asyncio.sleep(0.05)  # a startup that takes a while: first calls wait for it
    record("startup", token)
    yield {"pid": os.getpid(), "token": token}
    record("shutdown", token)  # after a bare yield: runs only on a normal exit


api = FastAPI(lifespan=lifespan)
configure(app=api)


def lifespan_seen(request: Request) -> list[Any]:
    return [request.state.pid, request.state.token]


def per_task() -> Iterator[str]:
    """One per call: its teardown is recorded under the token the task reports, also when
    the call fails."""
    token = uuid.uuid4().hex
    try:
        yield token
    finally:
        record("teardown", token)


SeenDep = Annotated[list[Any], Depends(lifespan_seen)]
TaskDep = Annotated[str, Depends(per_task)]


def report(n: int, seen: list[Any], resource: str) -> dict[str, Any]:
    """What a task reports: recorded as a ``task`` row, and returned."""
    done = {
        "n": n,
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "seen": seen,
        "resource": resource,
    }
    record("task", json.dumps(done))
    return done
