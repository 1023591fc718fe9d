"""Running an app's lifespan outside a server, and knowing which lifespans are running."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI

__all__ = ["lifespan_state", "running_lifespan"]

# id(app) -> the state its lifespan yielded, for the lifespans running in this context.
# A ContextVar, so the tasks a lifecycle-decorated call starts see it and unrelated
# tasks do not.
_running: ContextVar[Mapping[int, Mapping[str, Any]]] = ContextVar(
    "fda_running_lifespans", default=MappingProxyType({})
)


def lifespan_state(app: FastAPI) -> Mapping[str, Any] | None:
    """The state of ``app``'s lifespan if one is running in this context, else ``None``."""
    return _running.get().get(id(app))


@asynccontextmanager
async def running_lifespan(app: FastAPI) -> AsyncGenerator[Mapping[str, Any], None]:
    """Run ``app``'s startup, yield its state, then run its shutdown.

    Re-entrant: inside a running lifespan of the same app, nothing is started again.
    The body's exception is *not* thrown into the lifespan: a server shuts down
    normally whatever a request did, so shutdown code after a bare ``yield`` runs too.
    """
    state = lifespan_state(app)
    if state is not None:
        yield state
        return
    context = app.router.lifespan_context(app)
    state = dict(await context.__aenter__() or {})
    token = _running.set(MappingProxyType({**_running.get(), id(app): state}))
    try:
        yield state
    finally:
        _running.reset(token)
        await context.__aexit__(None, None, None)
