"""A Dramatiq broker whose worker processes run the FastAPI app's lifespan once each:
``dramatiq fda_dramatiq_tasks``, started by test_dramatiq.py."""

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from recording import SeenDep, TaskDep, report

from fda_sync import with_fastapi_depends
from fda_sync.dramatiq import lifespan_per_worker_process

broker = RedisBroker(url=os.environ["FDA_TEST_BROKER"])
dramatiq.set_broker(broker)
lifespan_per_worker_process(broker)


@with_fastapi_depends
def handle(n: int, *, seen: SeenDep, resource: TaskDep) -> dict[str, Any]:
    return report(n, seen, resource)


@dramatiq.actor(max_retries=0)
def work(n: int) -> None:
    handle(n)
