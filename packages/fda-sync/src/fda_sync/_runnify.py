"""``runnify_with_fastapi_depends``: lifespan, dependencies and a blocking call in one.

Unlike the async API's version it needs no ``asyncer``: the bridge loop runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from fastapi import FastAPI

import fda_core
from fda_core._decorators import decorating, is_async_callable, reject_generators
from fda_sync._decorators import (
    SyncDecorator,
    bridged,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)

__all__ = ["runnify_with_fastapi_depends"]

T = TypeVar("T")


def _runnify(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    reject_generators(func, "runnify_with_fastapi_depends")
    if is_async_callable(func):
        # One blocking call: lifespan, dependencies and body all in one task on the loop.
        inner = fda_core.with_fastapi_lifecycle(
            fda_core.with_fastapi_depends(func, app=app), app=app
        )
        runner = bridged(func, inner)
    else:
        # The body runs in the caller's thread, inside the lifespan, with its dependencies.
        runner = with_fastapi_lifecycle(with_fastapi_depends(func, app=app), app=app)
    return runner


@overload
def runnify_with_fastapi_depends(
    func: Callable[..., Awaitable[T]], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def runnify_with_fastapi_depends(
    func: Callable[..., T], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def runnify_with_fastapi_depends(
    func: None = None, *, app: FastAPI | None = None
) -> SyncDecorator: ...
def runnify_with_fastapi_depends(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Make a plain function that starts the lifespan, resolves dependencies and runs
    ``func`` (``def`` or ``async def``), then shuts down: a script needs nothing else.
    """

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _runnify(g, app), "runnify_with_fastapi_depends")

    return decorate if func is None else decorate(func)
