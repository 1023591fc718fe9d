"""The app's lifespan in a real taskiq worker (two worker processes) on a real Redis
broker, for tasks on the async API: ``lifespan_per_worker_process(broker)`` in one line,
and tasks decorated with ``fda_core.with_fastapi_depends`` under ``@broker.task``.

Forty tasks sent by name from this process (a client: its broker's startup is not a
worker's), then SIGTERM (a warm shutdown). Counted from the lifespan itself (rows it
writes): one startup per worker process, before its tasks, one shutdown each, after its
tasks' teardowns; every task saw its own process's lifespan; one teardown per task.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from queue_imports import REASON, imports
from sync.test_celery import redis_server

from .workers import Run, start

# One worker start per module: its tests go to one xdist worker.
pytestmark = [pytest.mark.process, pytest.mark.workers]

if not imports("taskiq"):  # pragma: no cover - the pydantic 1 cells
    pytest.skip(REASON, allow_module_level=True)

TASKS = 40


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("taskiq")
    with redis_server(folder) as url:
        command = [sys.executable, "-m", "taskiq", "worker", "fda_taskiq_tasks:broker"]
        worker = start([*command, "--workers", "2"], folder / "w", url)
        try:
            results = asyncio.run(_send(url))
        except BaseException:
            print(worker.tail())
            raise
        finally:
            done = worker.stop()
    return done, results


async def _send(url: str) -> list[dict[str, Any]]:
    from taskiq.kicker import AsyncKicker
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    client = ListQueueBroker(url).with_result_backend(RedisAsyncResultBackend(url))
    await client.startup()
    try:
        kicker: AsyncKicker[Any, Any] = AsyncKicker("fda.work", client, {})
        sent = [await kicker.kiq(n) for n in range(TASKS)]
        results = [await task.wait_result(timeout=240) for task in sent]
    finally:
        await client.shutdown()
    for result in results:
        assert not result.is_err, result.error
    return [result.return_value for result in results]


@pytest.mark.timeout(600)
def test_each_worker_process_runs_one_lifespan_for_all_its_tasks(
    run: tuple[Run, list[dict[str, Any]]],
) -> None:
    events, results = run
    processes = events.check_tasks(TASKS)

    assert sorted(results, key=lambda r: r["n"]) == events.tasks  # as the client got them
    assert len(events.rows("teardown")) == TASKS
    assert events.pid not in processes  # taskiq's main process runs no task
    assert len(processes) <= 2
    # Both worker processes start with the broker, whether they ran tasks or not.
    assert len(events.per_process("startup")) == 2
    assert set(events.per_process("startup").values()) == {1}
    assert events.per_process("shutdown") == events.per_process("startup")
    events.check_order()
