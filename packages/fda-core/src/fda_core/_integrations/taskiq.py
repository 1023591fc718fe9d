"""The taskiq hook: the app's lifespan once per worker process, on the worker's own loop.

``taskiq worker`` runs each worker process on one event loop: the broker's startup, every
async task, then the broker's shutdown once the tasks in flight are done (or
``--wait-tasks-timeout`` passed). Its ``WORKER_STARTUP`` handlers run there, and in a
process that runs an ``InMemoryBroker`` (tests): only a worker's (``is_worker_process``)
starts the lifespan. The lifespan is held by a task of its own
(``fda_core._runtime.lifespan``): taskiq runs the shutdown handlers in another task than
the startup ones, and a lifespan's task group or cancel scope must be exited by the task
that entered it. Every ``with_fastapi_depends`` call on that loop then sees its state as
``request.state``.
"""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI

from fda_core._config import resolve_app
from fda_core._integrations import Hooked, missing_extra
from fda_core._runtime.lifespan import RunningLifespan, acquire, release

try:
    from taskiq import AsyncBroker, TaskiqEvents, TaskiqState
except ImportError as exc:
    missing_extra(exc, "fda_core.taskiq", "taskiq", "taskiq", "fda-core")

__all__ = ["lifespan_per_worker_process"]

_hooked = Hooked("lifespan_per_worker_process", "the taskiq broker", AsyncBroker)


def lifespan_per_worker_process(broker: AsyncBroker, *, app: FastAPI | None = None) -> None:
    """Run the FastAPI app's lifespan once per worker process of ``broker``.

    Each ``taskiq worker`` process starts it with the broker (``WORKER_STARTUP``), before
    its first task, and shuts it down with the broker (``WORKER_SHUTDOWN``), after the
    tasks in flight. Tasks decorated with ``with_fastapi_depends`` see its state as
    ``request.state``, as routes do. ``app``: by default the configured one, looked up
    when the worker starts. A process that only sends tasks never starts it, nor does an
    ``InMemoryBroker`` unless its ``is_worker_process`` is set. Calling this again for the
    same broker and app changes nothing.
    """
    if not _hooked.first(cast(object, broker), app):
        return
    held: list[RunningLifespan] = []  # this process's, while it runs

    async def startup(_: TaskiqState) -> None:
        # Only in a worker: an InMemoryBroker runs the worker's events in the process that
        # sends tasks, often from the app's own lifespan, which this would start again.
        if not broker.is_worker_process:
            return
        running, _state = await acquire(resolve_app(app))
        held.append(running)

    async def shutdown(_: TaskiqState) -> None:
        while held:
            await release(held.pop())

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)
