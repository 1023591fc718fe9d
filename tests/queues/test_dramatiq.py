"""The process lifespan in a real Dramatiq worker (two processes of four threads each) on a
real Redis broker: ``lifespan_per_worker_process(broker)`` in one line.

Forty messages, then SIGTERM (a warm shutdown). Counted from the lifespan itself (rows it
writes): one startup per process that ran actors, one shutdown each, after its last
actor's teardown; every actor saw its own process's lifespan; one teardown per message.
"""

from __future__ import annotations

import sys

import pytest
from sync.test_celery import redis_server

from .workers import Run, start

# One worker start per module: its tests go to one xdist worker.
pytestmark = [pytest.mark.process, pytest.mark.workers]

MESSAGES = 40


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    folder = tmp_path_factory.mktemp("dramatiq")
    with redis_server(folder) as url:
        command = [sys.executable, "-m", "dramatiq", "fda_dramatiq_tasks"]
        worker = start([*command, "--processes", "2", "--threads", "4"], folder / "w", url)
        try:
            client = RedisBroker(url=url)
            for n in range(MESSAGES):
                message = Message(
                    queue_name="default", actor_name="work", args=(n,), kwargs={}, options={}
                )
                client.enqueue(message)
            client.close()
            worker.wait(lambda events: [e[0] for e in events].count("task") == MESSAGES, "tasks")
        except BaseException:
            print(worker.tail())
            raise
        finally:
            result = worker.stop()
    return result


@pytest.mark.timeout(600)
def test_each_worker_process_runs_one_lifespan_for_all_its_actors(run: Run) -> None:
    processes = run.check_tasks(MESSAGES)
    assert len(run.rows("teardown")) == MESSAGES

    assert run.pid not in processes  # dramatiq's main process runs no actor
    assert 1 <= len(processes) <= 2
    assert run.per_process("startup") == dict.fromkeys(processes, 1)
    assert run.per_process("shutdown") == run.per_process("startup")
    run.check_order()
    # Four threads per process: several ran actors at once, one startup for all of them.
    assert len({(task["pid"], task["thread"]) for task in run.tasks}) > len(processes)
