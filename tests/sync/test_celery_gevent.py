"""A real Celery worker with the gevent pool (``-P gevent -c 20``) on a real Redis broker.

120 tasks, each a sync call with an async yield dependency and a ``def`` yield dependency:
every task succeeds, each call is torn down before its task returns, ``def`` code runs in
the task's greenlet, ten calls wait for the loop at once (the first ones wait until they
do: had a waiting task stopped the hub, none would return), and the worker's warm
shutdown (SIGTERM) prints no traceback. One worker per path.
"""

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from .test_celery import _stop, redis_server, start_worker

pytestmark = [pytest.mark.process, pytest.mark.workers]

HERE = Path(__file__).parent
TASKS = 120


@pytest.mark.timeout(600)
def test_a_gevent_pool_worker_runs_every_task_in_greenlets(tmp_path: Path, path: str) -> None:
    with redis_server(tmp_path) as broker:
        queue = f"fda-gevent-{uuid.uuid4().hex}"
        env = {
            **os.environ,
            "FDA_TEST_BROKER": broker,
            "FDA_TEST_PATH": path,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        log = tmp_path / "worker.log"
        worker = start_worker("fda_celery_gevent_tasks", queue, log, env, "gevent", 20)
        try:
            results = _send_tasks(broker, queue)
        except BaseException:
            _stop(worker, signal.SIGQUIT)
            print(log.read_text(errors="replace")[-6000:])
            raise
        _stop(worker)  # SIGTERM: a warm shutdown, which runs the bridge's exit
    worker_log = log.read_text(errors="replace")
    assert worker.returncode == 0, worker_log[-4000:]
    assert "Traceback" not in worker_log, worker_log[-4000:]
    assert "bridge loop" not in worker_log, worker_log[-4000:]

    assert [result["n"] for result in results] == list(range(TASKS))
    assert {result["pid"] for result in results} == {worker.pid}  # no fork: greenlets
    for result in results:
        n = result["n"]
        assert result["async saw"] == result["def saw"] == n
        assert result["def in the task's greenlet"]
        assert result["body in the task's greenlet"]
        assert result["torn down"], n
    # Ten tasks waited for the loop together: one waiting left the hub to the others.
    assert max(result["most waiting at once"] for result in results) >= 10


def _send_tasks(broker: str, queue: str) -> list[dict[str, Any]]:
    """Send the tasks by name from a client app; wait for each result (bounded)."""
    from celery import Celery

    client = Celery("client", broker=broker, backend=broker)
    try:
        pending = [
            client.send_task("fda_celery_gevent_tasks.work", args=[n], queue=queue)
            for n in range(TASKS)
        ]
        results = []
        for result in pending:
            results.append(result.get(timeout=240))
            result.forget()
        return results
    finally:
        client.close()
