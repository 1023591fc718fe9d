"""The sync decorators: each returns a plain sync callable, for ``def`` and ``async def``.

Where a call goes: ``def`` code (the body, the ``def`` dependencies) runs in the caller's
thread, async code on the bridge loop. Each call takes the path that crosses between them
the fewest times (``prefers_caller``): driven from the caller's thread, which sends only
the async steps to the loop (``fda_sync._caller_path``), or one task on the loop, which
resolves and tears down the dependencies and lends the waiting caller's thread its ``def``
steps (``fda_sync._loop_path``). Either way a body's exception is thrown into the
dependencies as a route's would be.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

from fastapi import FastAPI

import fda_core
from fda_core._api.decorating import (
    BlockingDecorator,
    bare_or_with_options,
    is_async_callable,
    mark_blocking,
    reject_generators,
)
from fda_core._config import get_context_factory, resolve_app
from fda_core._graph.ambient import reset_source, stand_for
from fda_core._graph.injector import Injector
from fda_core._graph.scope import check_scope
from fda_core._runtime.threads import run_sync
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import Bridge, get_bridge
from fda_sync._caller_path.walk import call_in_caller, prefers_caller
from fda_sync._loop_path.call import in_lifespan, with_dependencies

# ``prefers_caller`` is looked up here by every sync API, per call: where each call goes.
__all__ = ["bridged", "prefers_caller", "with_fastapi_depends", "with_fastapi_lifecycle"]

T = TypeVar("T")


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

    def wrapper(*args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if _scope is None:
            return call(args, kwargs, None)
        check_scope(_scope, "_scope")
        token = stand_for(_scope)  # tasks the body sends carry it
        try:
            return call(args, kwargs, _scope)
        finally:
            reset_source(token)

    def call(
        args: tuple[Any, ...], kwargs: dict[str, Any], _scope: Mapping[str, Any] | None
    ) -> Any:
        before_call()
        args, kwargs, app, plan = injector.prepare(args, kwargs)
        manager = None if get_context_factory() is None else injector.context_manager()
        if (
            plan is not None
            and prefers_caller(plan, is_async)
            and (manager is None or not hasattr(manager, "__aenter__"))
        ):
            request = (
                injector.request(app, _scope, bridge.loop_if_started())
                if plan.reads_request
                else None
            )
            return call_in_caller(bridge, plan, request, func, is_async, args, kwargs, manager)
        return _on_loop(bridge, injector, body, args, kwargs, _scope, manager)

    injector.wraps(wrapper)
    mark_blocking(wrapper)
    return wrapper


def _on_loop(
    bridge: Bridge,
    injector: Injector,
    body: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    manager: Any,
) -> Any:
    """The call as one task on the loop. (A function of its own: the closure it makes
    would cost every call its variables' cells, even calls driven from the caller.)"""
    return bridge.run(lambda: with_dependencies(injector, body, args, kwargs, call_scope, manager))


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
) -> BlockingDecorator: ...
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
    return bare_or_with_options(
        func, lambda f: _depends(f, scope, context, app), "with_fastapi_depends"
    )


def _lifecycle(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    reject_generators(func, "with_fastapi_lifecycle")
    if is_async_callable(func):
        return bridged(func, fda_core.with_fastapi_lifecycle(func, app=app))
    bridge = get_bridge()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before_call()
        target = resolve_app(app)
        return bridge.run(lambda: in_lifespan(func, target, args, kwargs))

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
def with_fastapi_lifecycle(
    func: None = None, *, app: FastAPI | None = None
) -> BlockingDecorator: ...
def with_fastapi_lifecycle(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Run ``func`` inside the app's lifespan (startup before, shutdown after); sync callable.

    Sync-decorated functions called from the body see the lifespan's state as
    ``request.state``, whether the body is ``def`` or ``async def``.
    """
    return bare_or_with_options(func, lambda f: _lifecycle(f, app), "with_fastapi_lifecycle")
