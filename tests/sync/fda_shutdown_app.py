"""What a worker process holds when it stops, imported by the processes of the shutdown
tests (Celery workers, a gunicorn worker, scripts).

A lifespan opens a pool (its resource) and closes it at shutdown; ``hold(app)`` opens a
sync stack (a ``def`` and an ``async def`` generator dependency) and a suspended
generator (a ``def`` dependency), each using the pool, and keeps them open. Every event
is a line ``<pid> <event>`` appended to the file named by ``FDA_TEST_EVENTS``: a
teardown says whether the pool was still open then.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from fda_sync import FastApiDepsStack, iter_with_fastapi_depends

EVENTS = os.environ.get("FDA_TEST_EVENTS")


def log(event: str) -> None:
    """One line, appended in one write (lines of several processes never mix)."""
    if EVENTS:
        descriptor = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, f"{os.getpid()} {event}\n".encode())
        finally:
            os.close(descriptor)


def events(path: str, pid: int) -> list[str]:
    """The events process ``pid`` wrote to ``path``, in order."""
    with open(path) as lines:
        return [line.split(" ", 1)[1].rstrip("\n") for line in lines if line.startswith(f"{pid} ")]


@asynccontextmanager
async def pool_lifespan() -> AsyncIterator[dict[str, bool]]:
    """The resource a lifespan opens for the process: a pool, closed at its shutdown."""
    pool = {"open": True}
    log("lifespan startup")
    yield pool
    pool["open"] = False
    log("lifespan shutdown")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with pool_lifespan() as pool:
        yield {"pool": pool}


app = FastAPI(lifespan=lifespan)


def connection(name: str) -> Callable[[Request], Iterator[str]]:
    def dependency(request: Request) -> Iterator[str]:
        pool = request.state.pool
        log(f"open {name}")
        try:
            yield name
        finally:
            log(f"teardown {name}, pool open: {pool['open']}")

    return dependency


def async_connection(name: str) -> Callable[[Request], AsyncIterator[str]]:
    async def dependency(request: Request) -> AsyncIterator[str]:
        pool = request.state.pool
        log(f"open {name}")
        try:
            yield name
        finally:
            log(f"teardown {name}, pool open: {pool['open']}")

    return dependency


@iter_with_fastapi_depends
def rows(*, c: Annotated[str, Depends(connection("generator"))]) -> Iterator[str]:
    yield c
    yield c


kept: list[Any] = []  # open until the process stops


def hold(on: FastAPI | None = None) -> int:
    """Open a stack and a generator (on the configured app, or ``on``) and keep them;
    the process's pid."""
    stack = FastApiDepsStack(app=on).start()
    stack.resolve(connection("stack def"))
    stack.resolve(async_connection("stack async"))
    generator = rows()
    next(generator)
    kept.extend([stack, generator])
    log("holding")
    return os.getpid()


#: What a process that held them writes, from the lifespan's startup to its shutdown:
#: the generator is torn down first, then the stack (in reverse order), all while the
#: pool is open, then the lifespan shuts down, once, and nothing runs after it.
HELD_THEN_STOPPED = [
    "lifespan startup",
    "open stack def",
    "open stack async",
    "open generator",
    "holding",
    "teardown generator, pool open: True",
    "teardown stack async, pool open: True",
    "teardown stack def, pool open: True",
    "lifespan shutdown",
]
