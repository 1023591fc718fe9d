"""The Celery hook: which worker signals start and stop the process lifespan, per pool.

prefork: the parent runs no task, and a child must not use its parent's sockets, so the
lifespan is only set to start lazily when the worker starts (``worker_init``, in the
parent); each child inherits that and starts its own at its first sync call (a handler of
``worker_process_init`` that blocks more than 4 s gets the child killed: startup cannot
go there), and stops it at ``worker_process_shutdown`` (children end with ``os._exit``:
no ``atexit``). solo, threads and gevent: the tasks run in the worker's process, which starts it
at its first task's call and stops it at ``worker_shutdown``, once the pool has stopped.
Either way the stop is the process's shutdown sequence (``stop_if_running``): what the
process still holds (generators, stacks) is torn down first, then the lifespan.
"""

# Celery ships no type information.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI

from fda_core._config import check_app
from fda_core._integrations import missing_extra
from fda_sync._api.process_lifespan import start_lazily_unless_configured, stop_if_running

try:
    from celery import Celery, signals
except ImportError as exc:
    missing_extra(exc, "fda_sync.celery", "Celery", "celery", "fda-sync")

__all__ = ["lifespan_per_worker_process"]


def lifespan_per_worker_process(celery_app: Celery, *, app: FastAPI | None = None) -> None:
    """Run the FastAPI app's lifespan once per process of ``celery_app``'s workers.

    When a worker of ``celery_app`` starts, the process lifespan is set to start at the
    first sync call (``start_process_lifespan(lazy=True)``): in each child of the prefork
    pool (never in the parent, whose sockets a child must not use), or in the worker's
    own process with the solo, threads and gevent pools. When that process stops
    (``worker_process_shutdown``, ``worker_shutdown``), after the tasks it ran, what the
    process still holds (suspended generators, open stacks) is torn down, then the
    lifespan shuts down, once (``shutdown_worker_process``). ``app``:
    by default the configured one, looked up when the worker starts. Calling this again
    for the same Celery app changes nothing, and so does a process lifespan the worker's
    process configured already for the same FastAPI app (Django's ``AppConfig.ready()``):
    it is the one used.
    """
    if not isinstance(cast(object, celery_app), Celery):
        raise TypeError(
            f"lifespan_per_worker_process() expects the Celery application, got "
            f"{celery_app!r}; the FastAPI app goes in `app=`."
        )
    if app is not None:
        check_app(app, "lifespan_per_worker_process(app=...)")

    def on_worker_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is celery_app:
            start_lazily_unless_configured(app)

    def on_worker_shutdown(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is celery_app:
            stop_if_running("Celery's worker_shutdown")

    def on_process_shutdown(**_: Any) -> None:
        # A prefork child, which its pool ends with os._exit when this returns.
        stop_if_running("Celery's worker_process_shutdown")

    uid = f"fda-sync-lifespan-{id(celery_app)}"
    signals.worker_init.connect(on_worker_init, weak=False, dispatch_uid=uid)
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False, dispatch_uid=uid)
    signals.worker_process_shutdown.connect(on_process_shutdown, weak=False, dispatch_uid=uid)
