"""The process lifespan in real Celery workers (prefork with two children, solo,
threads, gevent) on a real Redis broker: ``lifespan_per_worker_process`` in one line.

The four workers run at once (their start-ups overlap), 50 tasks each, then a task
that leaves a stack and a suspended generator open in its process (``fda_shutdown_app``),
then they get SIGTERM (a warm shutdown, as a deployment stops a worker). Counted from the
lifespan itself (rows it writes): one startup per process that ran tasks, one shutdown
each; every task saw the lifespan of its own process. From the events the process
writes (F5): what it held is torn down while the lifespan's pool is open, then the
lifespan shuts down, once, and nothing runs after it. Tests per pool check its worker's
run.
"""

import os
import signal
import sqlite3
import subprocess
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from .conftest import Recorder
from .fda_shutdown_app import HELD_THEN_STOPPED, events
from .test_celery import _stop, _wait_for_exit, redis_server, start_worker

pytestmark = [pytest.mark.chosen_path, pytest.mark.process, pytest.mark.workers]

HERE = Path(__file__).parent
TASKS = 50
POOLS = ("prefork", "solo", "threads", "gevent")


@dataclass
class Run:
    """One worker's run: the tasks' results, the worker's pid, what the lifespan wrote;
    the process that held a stack and a generator, and the events it wrote."""

    results: list[dict[str, Any]]
    pid: int
    events: list[tuple[str, int, str]]
    holder: int
    held: list[str]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    folder = tmp_path_factory.mktemp("celery-lifespan")
    with redis_server(folder) as broker:
        workers = {pool: _start_worker(broker, folder / pool, pool) for pool in POOLS}
        try:
            results, holders = _send_tasks(broker, {pool: w[1] for pool, w in workers.items()})
        except BaseException:
            for process, _, _, log in workers.values():
                _stop(process, signal.SIGQUIT)
                print(log.read_text(errors="replace")[-6000:])
            raise
        for process, _, _, _ in workers.values():
            process.send_signal(signal.SIGTERM)  # warm shutdowns, all at once
        for process, _, _, _ in workers.values():
            _wait_for_exit(process)
    for process, _, _, log in workers.values():
        worker_log = log.read_text(errors="replace")
        assert process.returncode == 0, worker_log[-4000:]
        assert "Traceback" not in worker_log, worker_log[-4000:]
    return {
        pool: Run(
            results[pool],
            process.pid,
            _events(record),
            holders[pool],
            events(str(record.parent / "events.log"), holders[pool]),
        )
        for pool, (process, _, record, _) in workers.items()
    }


def _start_worker(
    broker: str, folder: Path, pool: str
) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    """A worker of ``pool`` on a queue of its own; (process, queue, record, log)."""
    folder.mkdir()
    record = folder / "events.sqlite3"
    with closing(sqlite3.connect(record)) as conn:
        conn.execute("CREATE TABLE events (event TEXT, pid INTEGER, token TEXT)")
    queue = f"fda-lifespan-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "FDA_TEST_BROKER": broker,
        "FDA_TEST_RECORD": str(record),
        "FDA_TEST_EVENTS": str(folder / "events.log"),
        "FDA_TEST_PARENT_CALLS": "1" if pool == "prefork" else "",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    log = folder / "worker.log"
    concurrency = 2 if pool == "prefork" else 4
    process = start_worker("fda_celery_lifespan_tasks", queue, log, env, pool, concurrency)
    return process, queue, record, log


def _send_tasks(
    broker: str, queues: dict[str, str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Send every worker its tasks, then wait for each result (bounded); then one task
    that holds a stack and a generator open; the results, the holders' pids."""
    from celery import Celery

    client = Celery("client", broker=broker, backend=broker)
    try:
        pending = {
            pool: [
                client.send_task("fda_celery_lifespan_tasks.work", args=[n], queue=queue)
                for n in range(1, TASKS + 1)
            ]
            for pool, queue in queues.items()
        }
        results: dict[str, list[dict[str, Any]]] = {}
        for pool, sent in pending.items():
            results[pool] = []
            for result in sent:
                results[pool].append(result.get(timeout=240))
                result.forget()
        holding = {
            pool: client.send_task("fda_celery_lifespan_tasks.hold_them", queue=queue)
            for pool, queue in queues.items()
        }
        holders = {pool: int(result.get(timeout=240)) for pool, result in holding.items()}
        return results, holders
    finally:
        client.close()


def _events(record: Path) -> list[tuple[str, int, str]]:
    with closing(sqlite3.connect(record)) as conn:
        return list(conn.execute("SELECT event, pid, token FROM events ORDER BY rowid"))


def _check_every_task_saw_its_own_processs_lifespan(run: Run) -> set[int]:
    """Returns the pids that ran tasks."""
    assert [result["n"] for result in run.results] == list(range(1, TASKS + 1))
    started = {(pid, token) for event, pid, token in run.events if event == "startup"}
    for result in run.results:
        n, pid, token = result["seen"]
        assert n == result["n"]
        assert pid == result["pid"]  # the state of a lifespan started in its own process
        assert (pid, token) in started
    return {result["pid"] for result in run.results}


@pytest.mark.timeout(600)
def test_prefork_children_start_their_own_lifespan_once_and_stop_it(
    runs: dict[str, Run],
) -> None:
    run = runs["prefork"]
    children = _check_every_task_saw_its_own_processs_lifespan(run)

    assert run.pid not in children
    assert 1 <= len(children) <= 2
    startups = Counter(pid for event, pid, _ in run.events if event == "startup")
    shutdowns = Counter(pid for event, pid, _ in run.events if event == "shutdown")
    # The parent started its own before forking; no child reused it or shut it down.
    assert startups == Counter({run.pid: 1, **dict.fromkeys(children, 1)})
    assert shutdowns == startups
    tokens = [token for event, _, token in run.events if event == "startup"]
    assert len(set(tokens)) == len(tokens)
    parents = {token for _, pid, token in run.events if pid == run.pid}
    assert not {result["seen"][2] for result in run.results} & parents


@pytest.mark.timeout(600)
@pytest.mark.parametrize("pool", ["solo", "threads", "gevent"])
def test_solo_threads_and_gevent_pools_run_one_lifespan_in_the_workers_process(
    runs: dict[str, Run], pool: str
) -> None:
    run = runs[pool]

    assert _check_every_task_saw_its_own_processs_lifespan(run) == {run.pid}
    # With threads and greenlets, four took the first tasks at once: one startup, which
    # they waited for.
    assert [(event, pid) for event, pid, _ in run.events] == [
        ("startup", run.pid),
        ("shutdown", run.pid),
    ]
    if pool in ("threads", "gevent"):
        assert len({result["thread"] for result in run.results}) > 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("pool", POOLS)
def test_f5_a_worker_process_tears_down_what_it_holds_before_its_lifespan(
    runs: dict[str, Run], pool: str
) -> None:
    """A prefork child (at ``worker_process_shutdown``, then ``os._exit``), the solo,
    threads and gevent workers' own process (at ``worker_shutdown``, then interpreter exit): the
    stack and the suspended generator are torn down while the lifespan's pool is open,
    then the lifespan shuts down, once; nothing runs after it (not at exit either)."""
    run = runs[pool]
    if pool == "prefork":
        assert run.holder != run.pid  # a child
        hook = "worker_process_shutdown returned"
    else:
        assert run.holder == run.pid
        hook = "worker_shutdown returned"
    assert run.held == [*HELD_THEN_STOPPED, hook]  # by the hook: nothing left at exit


# --- The hook's wiring, without a worker (cheap) ---------------------------------------


class _Worker:
    """What Celery's worker signals send: the worker, which knows its Celery app."""

    def __init__(self, app: object) -> None:
        self.app = app


def test_the_hook_arms_for_its_own_apps_worker_only_and_once(
    recorder: Recorder, app: FastAPI
) -> None:
    from celery import Celery, signals

    from fda_sync._api.process_lifespan import _process
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


def test_the_hook_uses_a_process_lifespan_configured_already_for_the_same_app(
    recorder: Recorder, app: FastAPI
) -> None:
    from celery import Celery, signals

    from fda_sync import start_process_lifespan, stop_process_lifespan
    from fda_sync._api.process_lifespan import _process
    from fda_sync.celery import lifespan_per_worker_process

    celery = Celery("django-project")
    lifespan_per_worker_process(celery, app=app)
    start_process_lifespan(app, lazy=True)  # a Django AppConfig.ready(), before worker_init
    try:
        responses = signals.worker_init.send(sender=_Worker(celery))
        assert [r for _, r in responses if isinstance(r, BaseException)] == []
        assert _process.app is app
        with pytest.raises(RuntimeError, match="started already"):
            start_process_lifespan(app, lazy=True)  # a second direct start still is an error
    finally:
        stop_process_lifespan()
        for hooked in (
            signals.worker_init,
            signals.worker_shutdown,
            signals.worker_process_shutdown,
        ):
            hooked.disconnect(dispatch_uid=f"fda-sync-lifespan-{id(celery)}")
    assert recorder.events == []


def test_the_hook_wants_the_celery_app_and_a_fastapi_app() -> None:
    from celery import Celery
    from fastapi import APIRouter

    from fda_sync.celery import lifespan_per_worker_process

    with pytest.raises(TypeError, match=r"expects the Celery application.* `app=`"):
        lifespan_per_worker_process(FastAPI())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        lifespan_per_worker_process(Celery("x"), app=APIRouter())  # type: ignore[arg-type]
