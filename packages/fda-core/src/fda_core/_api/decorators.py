"""The async decorators: a function's dependencies per call, the app's lifespan around it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.decorating import bare_or_with_options, is_async_callable, reject_generators
from fda_core._config import resolve_app
from fda_core._graph.ambient import reset_source, stand_for
from fda_core._graph.injector import Injector
from fda_core._graph.scope import check_scope
from fda_core._runtime.lifespan import running_lifespan
from fda_core._runtime.threads import run_sync

__all__ = ["AsyncDecorator", "with_fastapi_depends", "with_fastapi_lifecycle"]

T = TypeVar("T")


class AsyncDecorator(Protocol):
    """What ``@with_fastapi_depends(...)`` or ``@with_fastapi_lifecycle(...)`` with options
    returns: a decorator, generic in the decorated function's return type."""

    @overload
    def __call__(
        self, func: Callable[..., Coroutine[Any, Any, T]], /
    ) -> Callable[..., Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, func: Callable[..., T], /) -> Callable[..., Coroutine[Any, Any, T]]: ...


async def _call_body(func: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
    """Await an async body; run a sync one as FastAPI runs a ``def`` route (``run_sync``)."""
    if is_async:
        return await func(*args, **kwargs)
    return await run_sync(func, *args, **kwargs)


def _depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., Coroutine[Any, Any, Any]]:
    reject_generators(func, "with_fastapi_depends")
    injector = Injector(func, scope=scope, context=context, app=app)
    is_async = is_async_callable(func)

    body: Callable[..., Awaitable[Any]] = func if is_async else functools.partial(run_sync, func)

    async def wrapper(*args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if _scope is None:
            return await injector.call(body, args, kwargs, None)
        check_scope(_scope, "_scope")
        token = stand_for(_scope)  # tasks the body sends carry it
        try:
            return await injector.call(body, args, kwargs, _scope)
        finally:
            reset_source(token)

    injector.wraps(wrapper)
    return wrapper


@overload
def with_fastapi_depends(
    func: Callable[..., Coroutine[Any, Any, T]],
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Callable[..., Coroutine[Any, Any, T]]: ...
@overload
def with_fastapi_depends(
    func: Callable[..., T],
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Callable[..., Coroutine[Any, Any, T]]: ...
@overload
def with_fastapi_depends(
    func: None = None,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> AsyncDecorator: ...
def with_fastapi_depends(
    func: Callable[..., Any] | None = None,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Any:
    """Resolve ``func``'s FastAPI dependencies on every call, as a route handler gets them.

    Works bare (``@with_fastapi_depends``) or with options. ``scope`` is merged into the
    synthesized request's ASGI scope, ``context`` is handed to the configured
    ``context_factory``, ``app`` overrides the configured app. Calls accept ``_scope=``
    (e.g. ``request.scope``) to carry a request's headers into the dependencies.
    """
    return bare_or_with_options(
        func, lambda f: _depends(f, scope, context, app), "with_fastapi_depends"
    )


def _lifecycle(
    func: Callable[..., Any], app: FastAPI | None
) -> Callable[..., Coroutine[Any, Any, Any]]:
    reject_generators(func, "with_fastapi_lifecycle")
    is_async = is_async_callable(func)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        async with running_lifespan(resolve_app(app)):
            return await _call_body(func, is_async, *args, **kwargs)

    functools.update_wrapper(wrapper, func)
    return wrapper


@overload
def with_fastapi_lifecycle(
    func: Callable[..., Coroutine[Any, Any, T]], *, app: FastAPI | None = None
) -> Callable[..., Coroutine[Any, Any, T]]: ...
@overload
def with_fastapi_lifecycle(
    func: Callable[..., T], *, app: FastAPI | None = None
) -> Callable[..., Coroutine[Any, Any, T]]: ...
@overload
def with_fastapi_lifecycle(func: None = None, *, app: FastAPI | None = None) -> AsyncDecorator: ...
def with_fastapi_lifecycle(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Run ``func`` inside the app's lifespan: startup before, shutdown after (even on error).

    Inside it, dependencies see the lifespan's state as ``request.state``; nested
    lifecycle-decorated calls for the same app reuse the running lifespan.
    """
    return bare_or_with_options(func, lambda f: _lifecycle(f, app), "with_fastapi_lifecycle")
