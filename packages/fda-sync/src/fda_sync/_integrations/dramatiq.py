"""The Dramatiq hook: a middleware that starts and stops the process lifespan per worker
process.

``dramatiq`` starts worker processes (forked, or spawned); each runs one ``Worker`` whose
threads run the actors. ``before_worker_boot`` runs in that process before its threads
start: the lifespan is set to start at the first sync call (the main process, which runs
no actor, never starts one). ``after_worker_shutdown`` runs once the worker threads have
finished their messages: it stops the lifespan. It has to: a worker process ends with
``os._exit`` (multiprocessing), which runs no ``atexit`` handler.
"""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI

from fda_core._integrations import Hooked, missing_extra
from fda_sync._api.process_lifespan import start_lazily_unless_configured, stop_if_running

try:
    from dramatiq import Broker, Middleware, Worker
except ImportError as exc:
    missing_extra(exc, "fda_sync.dramatiq", "Dramatiq", "dramatiq", "fda-sync")

__all__ = ["lifespan_per_worker_process"]

_hooked = Hooked("lifespan_per_worker_process", "the Dramatiq broker", Broker)


class _ProcessLifespan(Middleware):
    """Armed when a worker boots in its process, stopped when it has shut down."""

    def __init__(self, app: FastAPI | None) -> None:
        self.app = app

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        start_lazily_unless_configured(self.app)

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        stop_if_running()


def lifespan_per_worker_process(broker: Broker, *, app: FastAPI | None = None) -> None:
    """Run the FastAPI app's lifespan once per worker process of ``broker``.

    Adds a middleware: when a worker boots (``dramatiq`` starts one per process), the
    process lifespan is set to start at the first sync call of its actors
    (``start_process_lifespan(lazy=True)``); it shuts down when the worker has stopped,
    after the messages in flight. ``app``: by default the configured one, looked up when
    the worker boots. Calling this again for the same broker and app changes nothing; a
    process lifespan configured already for the same app (Django's ``AppConfig.ready()``)
    is the one used.
    """
    if _hooked.first(cast(object, broker), app):
        broker.add_middleware(_ProcessLifespan(app))
