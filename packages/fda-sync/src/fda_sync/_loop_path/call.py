"""A sync call run as one task on the bridge loop.

The task resolves the dependencies, runs the body and tears down, as the async API does
(``fda_core``'s ``Injector.call``); the waiting caller's thread is lent to it, so ``def``
dependencies and a ``def`` body run there (``fda_sync._bridge.caller``). One round trip to
the loop, then one per ``def`` step: the path a call takes when its async steps outnumber
its ``def`` ones (``fda_sync._caller_path.walk.prefers_caller``), or when the caller's
thread cannot walk it (a graph the plan does not cover, an async context factory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI

from fda_core._graph.injector import Injector
from fda_core._runtime.lifespan import running_lifespan
from fda_core._runtime.threads import run_sync

__all__ = ["in_lifespan", "with_dependencies"]


async def with_dependencies(
    injector: Injector,
    body: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    manager: Any,
) -> Any:
    """A ``with_fastapi_depends`` call in the task: resolve, run ``body``, tear down.

    ``manager``: the call's context manager (the configured context factory's), made by
    the caller, or ``None``."""
    if manager is None:
        return await injector.call(body, args, kwargs, call_scope)
    async with injector.values(args, kwargs, call_scope, manager) as values:
        return await body(*args, **kwargs, **values)
    return None  # the context manager suppressed the body's exception


async def in_lifespan(
    func: Callable[..., Any], app: FastAPI, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A ``with_fastapi_lifecycle`` call of a ``def`` body: the body in the caller's thread,
    inside the app's lifespan, which shuts down normally whatever the body raised."""
    error: BaseException | None = None
    result: Any = None
    async with running_lifespan(app):
        # The body, in the caller's thread, sees the running lifespan: sync-decorated
        # calls it makes copy this context to the loop, and their dependencies get
        # the lifespan's state.
        try:
            result = await run_sync(func, *args, **kwargs)
        except BaseException as exc:  # like a server, shut down normally anyway
            error = exc
    if error is not None:
        try:
            raise error
        finally:
            del error
    return result
