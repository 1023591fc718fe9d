"""A Celery app whose worker runs the FastAPI app's lifespan once per process, imported
by the worker that test_celery_lifespan.py starts.

The lifespan records its own startup and shutdown (pid and a token of its own) in a
SQLite file; each task reports the lifespan state it saw. The worker's parent starts the
process lifespan too (a ``worker_init`` handler makes a sync call): a prefork child must
never see it. The lifespan also opens a pool (``fda_shutdown_app``): ``hold`` leaves a
stack and a generator open on it, for the worker process's shutdown to tear down.
"""

import asyncio
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from typing import Annotated, Any

from celery import Celery, signals
from fastapi import Depends, FastAPI, Request
from fda_shutdown_app import hold, log, pool_lifespan

from fda_core import configure
from fda_sync import with_fastapi_depends
from fda_sync.celery import lifespan_per_worker_process

BROKER = os.environ["FDA_TEST_BROKER"]
RECORD = os.environ["FDA_TEST_RECORD"]


def record(event: str, token: str) -> None:
    with closing(sqlite3.connect(RECORD, timeout=30)) as conn, conn:
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", (event, os.getpid(), token))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    token = uuid.uuid4().hex
    await asyncio.sleep(0.05)  # a startup that takes a while: first calls wait for it
    record("startup", token)
    async with pool_lifespan() as pool:
        yield {"pid": os.getpid(), "token": token, "pool": pool}
    record("shutdown", token)  # after a bare yield: runs only on a normal exit


api = FastAPI(lifespan=lifespan)
configure(app=api)

celery_app = Celery("fda_celery_lifespan_tasks", broker=BROKER, backend=BROKER)
celery_app.conf.update(broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1)
lifespan_per_worker_process(celery_app)


def lifespan_seen(request: Request) -> tuple[int, str]:
    return request.state.pid, request.state.token


@with_fastapi_depends
def handle(n: int, *, seen: Annotated[tuple[int, str], Depends(lifespan_seen)]) -> list[Any]:
    return [n, *seen]


@signals.worker_init.connect
def use_the_api_in_the_worker_process(**_: Any) -> None:
    """With the prefork pool, the worker's own process calls the API as soon as it
    starts (after the hook, connected first), before the children are forked."""
    if os.environ.get("FDA_TEST_PARENT_CALLS"):
        handle(0)


@signals.worker_shutdown.connect
def worker_stopped(**_: Any) -> None:
    """After the hook's own handler (connected first): what ran before, it ran."""
    log("worker_shutdown returned")


@signals.worker_process_shutdown.connect
def process_stopped(**_: Any) -> None:
    log("worker_process_shutdown returned")


@celery_app.task(time_limit=20)
def hold_them() -> int:
    """Leave a stack and a generator open in this process, until it stops."""
    return hold()


@celery_app.task(time_limit=20)
def work(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "seen": handle(n),
    }
