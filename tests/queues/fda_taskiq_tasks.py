"""A taskiq broker whose worker processes run the FastAPI app's lifespan once each, and a
task on the async API: ``taskiq worker fda_taskiq_tasks:broker``, started by test_taskiq.py."""

import os
from typing import Any

from recording import SeenDep, TaskDep, report
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

from fda_core import with_fastapi_depends
from fda_core.taskiq import lifespan_per_worker_process

BROKER = os.environ["FDA_TEST_BROKER"]
broker = ListQueueBroker(BROKER).with_result_backend(RedisAsyncResultBackend(BROKER))
lifespan_per_worker_process(broker)


@broker.task(task_name="fda.work")
@with_fastapi_depends
async def work(n: int, *, seen: SeenDep, resource: TaskDep) -> dict[str, Any]:
    return report(n, seen, resource)
