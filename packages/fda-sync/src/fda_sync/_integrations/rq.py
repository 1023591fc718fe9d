"""The RQ hook: worker classes that start and stop the process lifespan.

RQ's default ``Worker`` forks a work horse per job, and the horse ends with ``os._exit``
(no ``atexit``): a lifespan started in a horse lives for one job, and is never shut down
unless the horse does it before it exits. A lifespan started in the worker's own process
is of no use to the horses (a fork child forgets its parent's, whose sockets it must not
use: it starts its own). So the lifespan is once per worker process only where the jobs
run in that process: ``SimpleWorker``, here ``LifespanWorker``. ``LifespanPerJobWorker``
keeps the fork per job and shuts each horse's lifespan down before the horse exits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI

from fda_core._config import check_app
from fda_core._integrations import missing_extra
from fda_sync._api.process_lifespan import start_lazily_unless_configured, stop_if_running

try:
    from rq.worker import BaseWorker, SimpleWorker, Worker
except ImportError as exc:
    missing_extra(exc, "fda_sync.rq", "RQ", "rq", "fda-sync")

__all__ = ["LifespanPerJobWorker", "LifespanWorker"]


class _Lifespan(BaseWorker):
    """What both classes do: arm the lifespan when the worker starts working, stop it
    when the worker's work loop ends."""

    #: The FastAPI app whose lifespan runs; ``None``: the configured one.
    fastapi_app: ClassVar[FastAPI | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.fastapi_app is not None:
            check_app(cls.fastapi_app, f"{cls.__name__}.fastapi_app")

    def work(self, *args: Any, **kwargs: Any) -> bool:
        start_lazily_unless_configured(type(self).fastapi_app)
        return bool(super().work(*args, **kwargs))

    def teardown(self) -> None:
        try:
            stop_if_running()
        finally:
            super().teardown()  # type: ignore[no-untyped-call]  # untyped in RQ


class LifespanWorker(_Lifespan, SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs run in the worker's own process, one after the other)
    that runs the FastAPI app's lifespan once for all its jobs.

    The lifespan starts at the first sync call of the first job, and every job's calls
    share it (its state is ``request.state``); it shuts down when the worker stops (a
    warm shutdown, ``--burst`` running out of jobs, ``--max-jobs``), after its last job.
    ``rq worker --worker-class yourapp.tasks.LifespanWorker``, from a module that
    configures the app; or set ``fastapi_app`` on a subclass.
    """


class LifespanPerJobWorker(_Lifespan, Worker):
    """RQ's default ``Worker`` (a work horse forked per job) with a lifespan per job.

    Each horse starts the app's lifespan at its job's first sync call and shuts it down
    when the job is done, before the horse exits (with ``os._exit``, which would skip
    it). The worker's own process never starts one. One startup and one shutdown per
    job: choose it for the isolation of a process per job, ``LifespanWorker`` for one
    lifespan per worker.
    """

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return bool(super().perform_job(*args, **kwargs))
        finally:
            stop_if_running()  # in the horse: its own lifespan, after its job
