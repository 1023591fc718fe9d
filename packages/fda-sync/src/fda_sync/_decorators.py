"""The sync decorators: each returns a plain sync callable, for ``def`` and ``async def``.

Where code runs: dependencies resolve and tear down on the bridge loop, in one task per
call. An ``async def`` body runs on the loop too (in that task, through the async API).
A ``def`` body runs in the caller's thread, between two blocking calls, while its
dependencies stay open in a holder task; its exception is thrown into them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, overload

from fastapi import FastAPI

import fda_core
from fda_core._config import resolve_app
from fda_core._decorators import is_async_callable, reject_generators
from fda_core._injector import Injector
from fda_core._lifespan import running_lifespan
from fda_sync._bridge import get_bridge
from fda_sync._held import SyncHeld

__all__ = ["bridged", "run_body", "with_fastapi_depends", "with_fastapi_lifecycle"]

T = TypeVar("T")


class SyncDecorator(Protocol):
    """What a sync decorator called with options returns: a decorator, generic in the
    decorated function's return type (``def`` or ``async def``)."""

    @overload
    def __call__(self, func: Callable[..., Awaitable[T]], /) -> Callable[..., T]: ...
    @overload
    def __call__(self, func: Callable[..., T], /) -> Callable[..., T]: ...


def run_body(held: SyncHeld[Any], func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a sync body in the caller's thread, then exit ``held`` with its outcome.

    The body runs in the context variables the holder task had after entering (the
    caller's, plus what dependencies or the lifespan set).
    """
    try:
        result = held.variables.run(func, *args, **kwargs)
    except BaseException as exc:
        if held.close(exc):
            return None  # type: ignore[return-value]  # suppressed: there is no result
        raise
    held.close(None)
    return result


def bridged(func: Callable[..., Any], call: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """A sync function that runs the async ``call`` on the loop (created there)."""
    bridge = get_bridge()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return bridge.run(lambda: call(*args, **kwargs))

    functools.update_wrapper(wrapper, call)  # metadata and caller-facing __signature__
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


def _depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., Any]:
    reject_generators(func, "with_fastapi_depends")
    if is_async_callable(func):
        inner = fda_core.with_fastapi_depends(func, scope=scope, context=context, app=app)
        return bridged(func, inner)
    injector = Injector(func, scope=scope, context=context, app=app)
    bridge = get_bridge()

    def wrapper(*args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        args, kwargs = injector.arrange(args, kwargs)
        held = SyncHeld(bridge, lambda: injector.values(args, kwargs, _scope))
        values = held.open()
        return run_body(held, func, *args, **kwargs, **values)

    injector.wraps(wrapper)
    return wrapper


@overload
def with_fastapi_depends(
    func: Callable[..., Awaitable[T]],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., T]: ...
@overload
def with_fastapi_depends(
    func: Callable[..., T],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., T]: ...
@overload
def with_fastapi_depends(
    func: None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> SyncDecorator: ...
def with_fastapi_depends(
    func: Callable[..., Any] | None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Any:
    """Resolve ``func``'s FastAPI dependencies on every call; return a plain sync callable.

    Same options and call-time ``_scope=`` as the async decorator. A ``def`` body runs in
    the caller's thread (thread-locals keep working), an ``async def`` body on the bridge
    loop; dependencies always resolve and tear down on the loop.
    """
    if func is None:

        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            return _depends(f, scope, context, app)

        return decorate
    return _depends(func, scope, context, app)


def _lifecycle(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    reject_generators(func, "with_fastapi_lifecycle")
    if is_async_callable(func):
        return bridged(func, fda_core.with_fastapi_lifecycle(func, app=app))
    bridge = get_bridge()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        target = resolve_app(app)
        held = SyncHeld(bridge, lambda: running_lifespan(target))
        held.open()
        try:
            # The body sees the running lifespan: sync-decorated calls it makes copy this
            # context to the loop, and their dependencies get the lifespan's state.
            return held.variables.run(func, *args, **kwargs)
        finally:
            held.close(None)  # like a server, shut down normally whatever the body did

    functools.update_wrapper(wrapper, func)
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
    if func is None:

        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            return _lifecycle(f, app)

        return decorate
    return _lifecycle(func, app)
