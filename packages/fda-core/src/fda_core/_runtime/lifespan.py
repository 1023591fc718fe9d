"""Running an app's lifespan outside a server: once per event loop, shared while in use.

A server runs one lifespan per process and every request sees its state. Here, every
``with_fastapi_lifecycle`` call, ``FastApiDepsStack`` and sync lifecycle on one event loop
shares the app's running lifespan: the first one starts it, concurrent ones wait for its
startup, the last one out shuts it down. Startup and shutdown run in one task of their own
(lifespans may hold anyio task groups and cancel scopes), and every dependency resolved on
that loop while it runs sees its state as ``request.state``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from fda_core._runtime.carry import CarriedExit, carry
from fda_core._runtime.holder import TaskHeld

__all__ = [
    "RunningLifespan",
    "acquire",
    "holder_tasks",
    "lifespan_state",
    "release",
    "running_lifespan",
    "shut_down",
    "shut_down_now",
]


class RunningLifespan:
    """One app's lifespan on one loop, and how many are using it."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.held: TaskHeld[Any] = TaskHeld(app.router.lifespan_context(app))
        self.started: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.users = 0
        self.app_id = id(app)


# loop -> id(app) -> its running lifespan
_running: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, RunningLifespan]] = (
    weakref.WeakKeyDictionary()
)


def holder_tasks(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[Any]]:
    """The tasks holding the lifespans that run on ``loop``.

    A loop that stops for good (interpreter exit) spares them when it cancels what is
    left, then ends them with ``shut_down``: cancelled, a lifespan would skip the code
    after its bare ``yield``.
    """
    tasks = (running.held.task for running in _running.get(loop, {}).values())
    return {task for task in tasks if task is not None}


async def shut_down(loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """Exit every lifespan still running on ``loop`` normally, as a server does when it
    stops, whoever still uses it; wait at most ``timeout`` seconds for all of them."""
    await _exit(loop, list(_running.pop(loop, {}).values()), timeout)


async def shut_down_now(running: RunningLifespan, timeout: float) -> None:
    """Exit ``running`` normally now, whoever still uses it (its process stops): its
    shutdown runs once, and the later releases of its users do nothing. Waits at most
    ``timeout`` seconds (a shutdown that hangs goes on, unawaited)."""
    loop = asyncio.get_running_loop()
    apps = _running.get(loop, {})
    if apps.get(running.app_id) is running:
        del apps[running.app_id]
    await _exit(loop, [running], timeout)


async def _exit(
    loop: asyncio.AbstractEventLoop, runnings: list[RunningLifespan], timeout: float
) -> None:
    exits = [asyncio.ensure_future(running.held.exit(None)) for running in runnings]
    if exits:
        await asyncio.wait(exits, timeout=timeout)
        for exit_ in exits:
            if exit_.done() and not exit_.cancelled() and exit_.exception() is not None:
                loop.call_exception_handler(
                    {"message": "A lifespan's shutdown failed", "exception": exit_.exception()}
                )


def lifespan_state(
    app: FastAPI, loop: asyncio.AbstractEventLoop | None = None
) -> Mapping[str, Any] | None:
    """The state of ``app``'s lifespan if it runs on ``loop`` (by default the current
    event loop), else ``None``."""
    if loop is None:
        loop = asyncio._get_running_loop()
    running = _running.get(loop, {}).get(id(app)) if loop is not None else None
    if running is None or not running.started.done() or running.started.exception():
        return None
    return running.started.result()


async def acquire(app: FastAPI) -> tuple[RunningLifespan, Mapping[str, Any]]:
    """Use ``app``'s lifespan on the running loop, starting it if needed; return a
    handle for ``release`` and the lifespan's state."""
    loop = asyncio.get_running_loop()
    apps = _running.setdefault(loop, {})
    running = apps.get(id(app))
    if running is None:
        running = apps[id(app)] = RunningLifespan(app, loop)
        running.users += 1
        try:
            state = dict(await running.held.enter() or {})
        except BaseException as exc:
            del apps[id(app)]
            running.started.set_exception(carry(exc))
            running.started.exception()  # retrieved: waiters, if any, re-raise it
            raise
        running.started.set_result(state)
        return running, state
    running.users += 1
    try:
        state = await asyncio.shield(running.started)
    except BaseException as exc:
        running.users -= 1
        if isinstance(exc, CarriedExit):
            raise exc.original from None
        raise
    return running, state


async def release(running: RunningLifespan) -> None:
    """Stop using the lifespan ``acquire`` returned: the last user out shuts it down
    (a no-op if ``shut_down`` did already)."""
    running.users -= 1
    if running.users == 0:
        apps = _running.get(asyncio.get_running_loop(), {})
        if apps.get(running.app_id) is running:
            del apps[running.app_id]
        await running.held.exit(None)


@asynccontextmanager
async def running_lifespan(app: FastAPI) -> AsyncGenerator[Mapping[str, Any], None]:
    """Make sure ``app``'s lifespan runs while the block runs; yield its state.

    The block's exception is *not* thrown into the lifespan: a server shuts down normally
    whatever a request did, so shutdown code after a bare ``yield`` runs too.
    """
    running, state = await acquire(app)
    try:
        yield state
    finally:
        await release(running)
