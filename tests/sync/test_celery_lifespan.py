"""The process lifespan in real Celery workers (prefork with two children, solo,
threads) on a real Redis broker: ``lifespan_per_worker_process`` in one line.

Each pool runs 50 tasks, then the worker gets SIGTERM (a warm shutdown, as a deployment
stops it). Counted from the lifespan itself (rows it writes): one startup per process
that ran tasks, one shutdown each; every task saw the lifespan of its own process.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from .conftest import Recorder
from .test_celery import _stop, redis_url

__all__ = ["redis_url"]  # a fixture

pytestmark = [pytest.mark.chosen_path, pytest.mark.timeout(120)]

HERE = Path(__file__).parent
TASKS = 50


def _run_worker(broker: str, tmp_path: Path, pool: str) -> tuple[list[dict[str, Any]], int, Path]:
    """Start a worker, send the tasks, stop it warmly; the results, its pid and the
    lifespan's record."""
    record = tmp_path / "events.sqlite3"
    with closing(sqlite3.connect(record)) as conn:
        conn.execute("CREATE TABLE events (event TEXT, pid INTEGER, token TEXT)")
    queue = f"fda-lifespan-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "FDA_TEST_BROKER": broker,
        "FDA_TEST_RECORD": str(record),
        "FDA_TEST_PARENT_CALLS": "1" if pool == "prefork" else "",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "fda_celery_lifespan_tasks", "worker"),
                *("--pool", pool, "--concurrency", "2" if pool == "prefork" else "4"),
                *("--queues", queue, "--hostname", f"{queue}@%h", "--loglevel", "INFO"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        results = _send_tasks(broker, queue)
    except BaseException:
        _stop(worker, signal.SIGQUIT)
        print(log.read_text(errors="replace")[-6000:])
        raise
    _stop(worker, signal.SIGTERM)  # warm shutdown: the lifespans stop
    worker_log = log.read_text(errors="replace")
    assert worker.returncode == 0, worker_log[-4000:]
    assert "Traceback" not in worker_log, worker_log[-4000:]
    return results, worker.pid, record


def _send_tasks(broker: str, queue: str) -> list[dict[str, Any]]:
    from celery import Celery

    client = Celery("client", broker=broker, backend=broker)
    try:
        pending = [
            client.send_task("fda_celery_lifespan_tasks.work", args=[n], queue=queue)
            for n in range(1, TASKS + 1)
        ]
        results = []
        for result in pending:
            results.append(result.get(timeout=60))
            result.forget()
        return results
    finally:
        client.close()


def _events(record: Path) -> list[tuple[str, int, str]]:
    with closing(sqlite3.connect(record)) as conn:
        return list(conn.execute("SELECT event, pid, token FROM events ORDER BY rowid"))


def _check_every_task_saw_its_own_processs_lifespan(
    results: list[dict[str, Any]], events: list[tuple[str, int, str]]
) -> set[int]:
    """Returns the pids that ran tasks."""
    assert [result["n"] for result in results] == list(range(1, TASKS + 1))
    started = {(pid, token) for event, pid, token in events if event == "startup"}
    for result in results:
        n, pid, token = result["seen"]
        assert n == result["n"]
        assert pid == result["pid"]  # the state of a lifespan started in its own process
        assert (pid, token) in started
    return {result["pid"] for result in results}


def test_prefork_children_start_their_own_lifespan_once_and_stop_it(
    redis_url: str, tmp_path: Path
) -> None:
    results, parent, record = _run_worker(redis_url, tmp_path, "prefork")
    events = _events(record)
    children = _check_every_task_saw_its_own_processs_lifespan(results, events)

    assert parent not in children
    assert 1 <= len(children) <= 2
    startups = Counter(pid for event, pid, _ in events if event == "startup")
    shutdowns = Counter(pid for event, pid, _ in events if event == "shutdown")
    # The parent started its own before forking; no child reused it or shut it down.
    assert startups == Counter({parent: 1, **dict.fromkeys(children, 1)})
    assert shutdowns == startups
    tokens = [token for event, _, token in events if event == "startup"]
    assert len(set(tokens)) == len(tokens)
    assert not {r["seen"][2] for r in results} & {t for e, p, t in events if p == parent}


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_run_one_lifespan_in_the_workers_process(
    redis_url: str, tmp_path: Path, pool: str
) -> None:
    results, worker, record = _run_worker(redis_url, tmp_path, pool)
    events = _events(record)

    assert _check_every_task_saw_its_own_processs_lifespan(results, events) == {worker}
    # Four threads took the first tasks at once: one startup, which they all waited for.
    assert [(event, pid) for event, pid, _ in events] == [
        ("startup", worker),
        ("shutdown", worker),
    ]
    if pool == "threads":
        assert len({result["thread"] for result in results}) > 1


# --- The hook's wiring, without a worker (cheap) ---------------------------------------


class _Worker:
    """What Celery's worker signals send: the worker, which knows its Celery app."""

    def __init__(self, app: object) -> None:
        self.app = app


def test_the_hook_arms_for_its_own_apps_worker_only_and_once(
    recorder: Recorder, app: FastAPI
) -> None:
    from celery import Celery, signals

    from fda_sync._lifetime import _process
    from fda_sync.celery import lifespan_per_worker_process

    celery, other = Celery("hooked"), Celery("other")
    before = len(signals.worker_init.receivers)
    lifespan_per_worker_process(celery, app=app)
    lifespan_per_worker_process(celery, app=app)  # again: nothing more
    assert len(signals.worker_init.receivers) == before + 1
    try:
        signals.worker_init.send(sender=_Worker(other))
        assert _process.app is None  # another Celery app's worker
        signals.worker_init.send(sender=_Worker(celery))
        assert _process.app is app
        assert recorder.events == []  # lazily: at the first sync call
        signals.worker_shutdown.send(sender=_Worker(celery))
        assert _process.app is None
        signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)  # nothing left
    finally:
        for hooked in (
            signals.worker_init,
            signals.worker_shutdown,
            signals.worker_process_shutdown,
        ):
            hooked.disconnect(dispatch_uid=f"fda-sync-lifespan-{id(celery)}")


def test_the_hook_wants_the_celery_app_and_a_fastapi_app() -> None:
    from celery import Celery
    from fastapi import APIRouter

    from fda_sync.celery import lifespan_per_worker_process

    with pytest.raises(TypeError, match=r"expects the Celery application.* `app=`"):
        lifespan_per_worker_process(FastAPI())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        lifespan_per_worker_process(Celery("x"), app=APIRouter())  # type: ignore[arg-type]
