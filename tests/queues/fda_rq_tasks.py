"""RQ jobs on the sync API, and the worker classes the ``rq worker --worker-class`` of
test_rq.py names from here (importing this module configures the app)."""

import time
from typing import Any

from recording import SeenDep, TaskDep, report

from fda_sync import with_fastapi_depends
from fda_sync.rq import LifespanPerJobWorker, LifespanWorker

__all__ = ["LifespanPerJobWorker", "LifespanWorker", "slow", "work"]


@with_fastapi_depends
def handle(n: int, *, seen: SeenDep, resource: TaskDep) -> dict[str, Any]:
    return report(n, seen, resource)


def work(n: int) -> dict[str, Any]:
    return handle(n)


@with_fastapi_depends
def sleep_in(seconds: float, *, resource: TaskDep) -> str:
    time.sleep(seconds)  # RQ's job timeout (SIGALRM) interrupts it
    return resource


def slow(seconds: float) -> str:
    return sleep_in(seconds)
