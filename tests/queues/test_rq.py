"""The app's lifespan in real RQ workers on a real Redis broker, with each of the two
worker classes, both running at once: ``LifespanWorker`` (RQ's ``SimpleWorker``: the jobs
run in the worker's process) and ``LifespanPerJobWorker`` (RQ's ``Worker``: a work horse
forked per job).

Twenty jobs each, then SIGTERM (a warm shutdown). Counted from the lifespan itself (rows it
writes): ``LifespanWorker`` starts one lifespan for its twenty jobs and shuts it down once;
``LifespanPerJobWorker`` starts twenty, one per work horse, each shut down in its horse
after its job, none in the worker's process. A job that RQ times out (SIGALRM in the
worker's process) has its dependency torn down, and the next jobs share the lifespan still.
"""

from __future__ import annotations

import sys
import time

import pytest
from sync.test_celery import redis_server

from .workers import Run, Worker, start

# One worker start per module: its tests go to one xdist worker.
pytestmark = [pytest.mark.process, pytest.mark.workers]

JOBS = 20
CLASSES = ("LifespanWorker", "LifespanPerJobWorker")
#: What each worker logs a traceback for: the job it times out.
ERRORS = {
    "LifespanWorker": ["JobTimeoutException: Task exceeded maximum timeout value (1 seconds)"],
    "LifespanPerJobWorker": [],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, list[object]]]:
    folder = tmp_path_factory.mktemp("rq")
    with redis_server(folder) as url:
        workers = {name: _start(name, folder, url) for name in CLASSES}
        try:
            jobs = {name: _enqueue(name, url) for name in CLASSES}
            for name, worker in workers.items():
                worker.wait(lambda events: _count(events, "task") == JOBS, f"{name} jobs")
            statuses = {name: _wait_until_done(sent) for name, sent in jobs.items()}
        except BaseException:
            for worker in workers.values():
                print(worker.tail())
            raise
        finally:
            runs = {name: worker.stop(*ERRORS[name]) for name, worker in workers.items()}
    return {name: (runs[name], statuses[name]) for name in CLASSES}


def _start(name: str, folder: object, url: str) -> Worker:
    command = [
        *(sys.executable, "-m", "rq.cli", "worker", "--url", url),
        *("--worker-class", f"fda_rq_tasks.{name}", "--name", name, name),
    ]
    return start(command, folder / name, url)  # type: ignore[operator]


def _count(events: list[tuple[str, int, str]], kind: str) -> int:
    return sum(1 for event in events if event[0] == kind)


def _enqueue(name: str, url: str) -> list[object]:
    """The jobs of one worker's queue: ``JOBS`` jobs, and (in the middle) one that RQ
    times out in the worker's own process."""
    from redis import Redis
    from rq import Queue

    queue = Queue(name, connection=Redis.from_url(url))
    jobs: list[object] = []
    for n in range(JOBS):
        if n == JOBS // 2 and name == "LifespanWorker":
            jobs.append(queue.enqueue("fda_rq_tasks.slow", 600, job_timeout=1))
        jobs.append(queue.enqueue("fda_rq_tasks.work", n))
    return jobs


def _wait_until_done(jobs: list[object]) -> list[object]:
    """Each job's final status (bounded)."""
    deadline = time.monotonic() + 240
    statuses: list[object] = []
    for job in jobs:
        while (status := job.get_status(refresh=True)) not in ("finished", "failed"):  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, f"job {job} is {status}"
            time.sleep(0.1)
        statuses.append(status)
    return statuses


@pytest.mark.timeout(600)
def test_lifespan_worker_runs_one_lifespan_for_all_its_jobs(
    runs: dict[str, tuple[Run, list[object]]],
) -> None:
    run, statuses = runs["LifespanWorker"]

    assert run.check_tasks(JOBS) == {run.pid}  # every job in the worker's own process
    assert run.per_process("startup") == {run.pid: 1}
    assert run.per_process("shutdown") == {run.pid: 1}
    run.check_order()
    # The job RQ timed out failed; its dependency was torn down all the same (one more
    # teardown than the tasks recorded), and the jobs after it shared the same lifespan.
    assert statuses.count("failed") == 1
    assert statuses.count("finished") == JOBS
    assert len(run.rows("teardown")) == JOBS + 1
    assert len({tuple(task["seen"]) for task in run.tasks}) == 1


@pytest.mark.timeout(600)
def test_lifespan_per_job_worker_runs_one_lifespan_per_work_horse(
    runs: dict[str, tuple[Run, list[object]]],
) -> None:
    run, statuses = runs["LifespanPerJobWorker"]

    horses = run.check_tasks(JOBS)
    assert statuses == ["finished"] * JOBS
    assert run.pid not in horses
    assert len(horses) == JOBS  # a process per job
    assert len(run.rows("teardown")) == JOBS
    assert run.per_process("startup") == dict.fromkeys(horses, 1)
    assert run.per_process("shutdown") == dict.fromkeys(horses, 1)  # despite os._exit
    run.check_order()
