"""Celery tasks using the sync API, run by the gevent-pool worker test_celery_gevent.py starts.

``celery worker -P gevent`` monkey-patches the process before it imports this module: each
task runs in a greenlet. A task's call has an async yield dependency (run on the bridge
loop, where the first calls wait until ten of them wait together: ``fda_gate``) and a
``def`` yield dependency (run in the task's greenlet); each reports whether both were torn
down before it returned.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Annotated, Any

import gevent
import gevent.local
from celery import Celery
from fastapi import Depends, FastAPI
from fda_gate import Gate

import fda_sync._api.decorators
from fda_sync import with_fastapi_depends

BROKER = os.environ["FDA_TEST_BROKER"]
# Where the test makes sync calls run (tests/sync/conftest.py: the ``path`` fixture).
_PATH = os.environ.get("FDA_TEST_PATH", "chosen")
if _PATH != "chosen":
    fda_sync._api.decorators.prefers_caller = lambda plan, body_is_async: _PATH == "caller"  # type: ignore[assignment]

celery_app = Celery("fda_celery_gevent_tasks", broker=BROKER, backend=BROKER)
celery_app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
)

api = FastAPI()
task_number: ContextVar[int] = ContextVar("task_number")  # copied to the loop with the call
local = gevent.local.local()  # the task's greenlet's own
gate = Gate(10)
closed_async: set[int] = set()
closed_def: set[int] = set()


async def connection() -> AsyncIterator[int]:
    n = task_number.get()
    await gate.wait()
    yield n
    await asyncio.sleep(0)
    closed_async.add(n)


def session() -> Iterator[tuple[Any, int]]:
    yield gevent.getcurrent(), local.number
    closed_def.add(local.number)


@with_fastapi_depends(app=api)
def handle(
    *,
    n: Annotated[int, Depends(connection)],
    s: Annotated[tuple[Any, int], Depends(session)],
) -> dict[str, Any]:
    return {
        "async saw": n,
        "def saw": s[1],
        "def in the task's greenlet": s[0] is gevent.getcurrent(),
        "body in the task's greenlet": gevent.getcurrent() is local.greenlet,
    }


@celery_app.task(time_limit=120)  # a hung task is killed by the worker: it fails the test
def work(n: int) -> dict[str, Any]:
    local.number, local.greenlet = n, gevent.getcurrent()
    task_number.set(n)
    result = handle()
    return {
        **result,
        "n": n,
        "pid": os.getpid(),
        "torn down": n in closed_async and n in closed_def,
        "most waiting at once": gate.most,
    }
