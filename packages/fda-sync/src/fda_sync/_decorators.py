"""The sync decorators: each returns a plain sync callable, for ``def`` and ``async def``.

Where code runs: ``def`` code (the body, the ``def`` dependencies) runs in the caller's
thread, async code on the bridge loop. Each call takes the path that crosses between them
the fewest times (``_driven.prefers_caller``): driven from the caller's thread, which
sends only the async steps to the loop (``_driven``), or one task on the loop, which
resolves and tears down the dependencies and lends the waiting caller's thread its ``def``
steps (``fda_core._threads``). Either way a body's exception is thrown into the
dependencies as a route's would be.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, overload

from fastapi import FastAPI

import fda_core
from fda_core._ambient import standing_for
from fda_core._config import resolve_app
from fda_core._decorators import decorating, is_async_callable, mark_blocking, reject_generators
from fda_core._injector import Injector
from fda_core._lifespan import running_lifespan
from fda_core._scope import check_scope
from fda_core._threads import run_sync
from fda_sync._bridge import get_bridge
from fda_sync._driven import call_in_caller, prefers_caller
from fda_sync._lifetime import before_call

__all__ = ["bridged", "with_fastapi_depends", "with_fastapi_lifecycle"]

T = TypeVar("T")


class SyncDecorator(Protocol):
    """What a sync decorator called with options returns: a decorator, generic in the
    decorated function's return type (``def`` or ``async def``)."""

    @overload
    def __call__(self, func: Callable[..., Awaitable[T]], /) -> Callable[..., T]: ...
    @overload
    def __call__(self, func: Callable[..., T], /) -> Callable[..., T]: ...


def bridged(func: Callable[..., Any], call: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """A sync function that runs the async ``call`` on the loop (created there)."""
    bridge = get_bridge()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before_call()
        return bridge.run(lambda: call(*args, **kwargs))

    functools.update_wrapper(wrapper, call)  # metadata and caller-facing __signature__
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    mark_blocking(wrapper)
    return wrapper


def _depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., Any]:
    reject_generators(func, "with_fastapi_depends")
    injector = Injector(func, scope=scope, context=context, app=app)
    bridge = get_bridge()
    is_async = is_async_callable(func)
    # On the loop, a def body runs in the caller's thread (lent to the call's task), in
    # the context variables the task has once the dependencies are entered.
    body: Callable[..., Awaitable[Any]] = func if is_async else functools.partial(run_sync, func)

    async def on_loop(
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_scope: Mapping[str, Any] | None,
        manager: Any,
    ) -> Any:
        if manager is None:
            return await injector.call(body, args, kwargs, call_scope)
        async with injector.values(args, kwargs, call_scope, manager) as values:
            return await body(*args, **kwargs, **values)
        return None  # the context manager suppressed the body's exception

    def wrapper(*args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if _scope is not None:
            check_scope(_scope, "_scope")
            with standing_for(_scope):  # tasks the body sends carry it
                return call(args, kwargs, _scope)
        return call(args, kwargs, None)

    def call(
        args: tuple[Any, ...], kwargs: dict[str, Any], _scope: Mapping[str, Any] | None
    ) -> Any:
        before_call()
        args, kwargs, app, plan = injector.prepare(args, kwargs)
        manager = injector.context_manager()
        if (
            plan is not None
            and prefers_caller(plan, is_async)
            and not hasattr(manager, "__aenter__")
        ):
            request = (
                injector.request(app, _scope, bridge.loop_if_started())
                if plan.reads_request
                else None
            )
            return call_in_caller(bridge, plan, request, func, is_async, args, kwargs, manager)
        return bridge.run(lambda: on_loop(args, kwargs, _scope, manager))

    injector.wraps(wrapper)
    mark_blocking(wrapper)
    return wrapper


@overload
def with_fastapi_depends(
    func: Callable[..., Awaitable[T]],
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Callable[..., T]: ...
@overload
def with_fastapi_depends(
    func: Callable[..., T],
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Callable[..., T]: ...
@overload
def with_fastapi_depends(
    func: None = None,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> SyncDecorator: ...
def with_fastapi_depends(
    func: Callable[..., Any] | None = None,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    app: FastAPI | None = None,
) -> Any:
    """Resolve ``func``'s FastAPI dependencies on every call; return a plain sync callable.

    Same options and call-time ``_scope=`` as the async decorator. ``def`` code (the body,
    ``def`` dependencies) runs in the caller's thread, so thread-locals keep working;
    ``async def`` code on the bridge loop. A graph of ``def`` dependencies never touches
    the loop.
    """

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _depends(g, scope, context, app), "with_fastapi_depends")

    return decorate if func is None else decorate(func)


def _lifecycle(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    reject_generators(func, "with_fastapi_lifecycle")
    if is_async_callable(func):
        return bridged(func, fda_core.with_fastapi_lifecycle(func, app=app))
    bridge = get_bridge()

    async def call(target: FastAPI, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        error: BaseException | None = None
        result: Any = None
        async with running_lifespan(target):
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

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before_call()
        target = resolve_app(app)
        return bridge.run(lambda: call(target, args, kwargs))

    functools.update_wrapper(wrapper, func)
    mark_blocking(wrapper)
    return wrapper


@overload
def with_fastapi_lifecycle(
    func: Callable[..., Awaitable[T]], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def with_fastapi_lifecycle(
    func: Callable[..., T], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def with_fastapi_lifecycle(func: None = None, *, app: FastAPI | None = None) -> SyncDecorator: ...
def with_fastapi_lifecycle(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Run ``func`` inside the app's lifespan (startup before, shutdown after); sync callable.

    Sync-decorated functions called from the body see the lifespan's state as
    ``request.state``, whether the body is ``def`` or ``async def``.
    """

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _lifecycle(g, app), "with_fastapi_lifecycle")

    return decorate if func is None else decorate(func)
