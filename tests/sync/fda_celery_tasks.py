"""Celery tasks using the sync API, imported by the worker that test_celery.py starts.

The worker's parent process imports this module and uses the bridge right away, as an app
does at import time; then Celery's prefork pool forks the children that run the tasks.
"""

import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from celery import Celery
from fastapi import Depends, FastAPI

import fda_sync._api.decorators
from fda_sync import FastApiDepsStack, iter_with_fastapi_depends, with_fastapi_depends
from fda_sync._bridge import get_bridge

BROKER = os.environ["FDA_TEST_BROKER"]
# Where the test makes sync calls run (tests/sync/conftest.py: the ``path`` fixture).
_PATH = os.environ.get("FDA_TEST_PATH", "chosen")
if _PATH != "chosen":
    fda_sync._api.decorators.prefers_caller = lambda plan, body_is_async: _PATH == "caller"  # type: ignore[assignment]

celery_app = Celery("fda_celery_tasks", broker=BROKER, backend=BROKER)
celery_app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
)

api = FastAPI()
torn_down: list[int] = []


async def resource() -> AsyncIterator[int]:
    yield os.getpid()
    torn_down.append(os.getpid())


Resource = Annotated[int, Depends(resource)]


@with_fastapi_depends(app=api)
def handle(n: int, *, pid: Resource) -> tuple[int, int, str]:
    return n, pid, threading.current_thread().name


@with_fastapi_depends(app=api)
async def handle_async(n: int, *, pid: Resource) -> tuple[int, int, str]:
    return n, pid, threading.current_thread().name


@iter_with_fastapi_depends(app=api)
def numbers(n: int, *, pid: Resource) -> Iterator[int]:
    yield from range(n)


PARENT_PID = os.getpid()
WARM_UP = (handle(0), handle_async(0), list(numbers(2)))  # the bridge runs in the parent


@celery_app.task(time_limit=2)  # a hung task is killed by the worker: it fails the test
def work(n: int) -> dict[str, Any]:
    before = len(torn_down)
    sync_result = handle(n)
    async_result = handle_async(n)
    with FastApiDepsStack(app=api) as stack:
        from_stack = stack.resolve(Resource)
    return {
        "n": n,
        "pid": os.getpid(),
        "parent": PARENT_PID,
        "sync": list(sync_result),
        "async": list(async_result),
        "numbers": list(numbers(3)),
        "stack": from_stack,
        "teardowns": len(torn_down) - before,
        "bridge pid": get_bridge().state().pid,
    }
