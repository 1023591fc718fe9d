"""The async decorators: dependencies, async generators and the app's lifespan."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, cast, overload

from fastapi import FastAPI

from fda_core import _compat
from fda_core._ambient import standing_for
from fda_core._analysis import describe
from fda_core._config import resolve_app
from fda_core._holder import TaskHeld
from fda_core._injector import Injector
from fda_core._lifespan import running_lifespan
from fda_core._scope import check_scope
from fda_core._threads import run_sync

__all__ = ["aiter_with_fastapi_depends", "with_fastapi_depends", "with_fastapi_lifecycle"]

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


class AsyncGeneratorDecorator(Protocol):
    """What ``@aiter_with_fastapi_depends(...)`` with options returns."""

    def __call__(
        self, func: Callable[..., AsyncIterator[T]], /
    ) -> Callable[..., AsyncGenerator[T, None]]: ...


#: Set on the sync API's wrappers: they block and return the result, whatever they wrap.
BLOCKING = "__fda_blocking__"


def mark_blocking(wrapper: Callable[..., Any]) -> None:
    """Tell ``is_async_callable`` that ``wrapper`` returns its result, not an awaitable
    (its ``__wrapped__`` may be an ``async def``)."""
    setattr(wrapper, BLOCKING, True)


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether the body's result is awaited: as a route of the installed FastAPI decides
    for its endpoint (partials, objects with an ``async def __call__``, ``AsyncMock``,
    and from 0.123.6 ``functools.wraps`` wrappers of ``async def`` functions).

    The sync API's wrappers block, whatever they wrap (``mark_blocking``).
    """
    if inspect.iscoroutinefunction(func):
        return True
    if getattr(func, BLOCKING, False):
        return False
    return _compat.awaited_by_route(func)


def decorating(func: Any, decorate: Callable[[Any], Any], decorator: str) -> Any:
    """``decorate(func)``, refusing what is not callable at once; a ``staticmethod`` or
    ``classmethod`` object stays one, around the decorated function."""
    if isinstance(func, (staticmethod, classmethod)):
        method = cast(Any, func)
        return type(method)(decorating(method.__func__, decorate, decorator))
    if not callable(func):
        raise TypeError(
            f"@{decorator} decorates a function or another callable, got {func!r} "
            f"({type(func).__name__})."
        )
    return decorate(func)


def reject_generators(func: Callable[..., Any], decorator: str) -> None:
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{describe(func)} is an async generator: use @aiter_with_fastapi_depends "
            f"instead of @{decorator}."
        )
    if inspect.isgeneratorfunction(func):
        raise TypeError(
            f"{describe(func)} is a generator: use "
            f"`fastapi_depends_anywhere.sync.iter_with_fastapi_depends` instead of @{decorator}."
        )


async def call_body(func: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
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
        if _scope is not None:
            check_scope(_scope, "_scope")
            with standing_for(_scope):  # tasks the body sends carry it
                return await injector.call(body, args, kwargs, _scope)
        return await injector.call(body, args, kwargs, _scope)

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

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _depends(g, scope, context, app), "with_fastapi_depends")

    return decorate if func is None else decorate(func)


@asynccontextmanager
async def _generator_with_dependencies(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
) -> AsyncGenerator[AsyncGenerator[Any, Any], None]:
    async with injector.values(args, kwargs, call_scope) as values:
        generator = injector.func(*args, **kwargs, **values)
        try:
            yield generator
        finally:
            await generator.aclose()


def _aiter(
    func: Callable[..., AsyncIterator[Any]],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., AsyncGenerator[Any, None]]:
    if not inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{describe(func)} is not an async generator function: "
            "@aiter_with_fastapi_depends decorates `async def ...: yield ...`."
        )
    injector = Injector(func, scope=scope, context=context, app=app)

    async def wrapper(
        *args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        # The generator's body and its dependencies live in one task of their own: the
        # consumer may be finished by another task (the loop's async-generator finalizer,
        # say), and FastAPI requires teardown in the task that resolved them.
        if _scope is not None:
            check_scope(_scope, "_scope")
        args, kwargs = injector.arrange(args, kwargs)
        held = TaskHeld(_generator_with_dependencies(injector, args, kwargs, _scope))
        generator = await held.enter()
        error: BaseException | None = None
        # Delegating as ``yield from`` would: what is sent or thrown in reaches the body.
        method: Callable[[Any], Awaitable[Any]] = generator.asend
        argument: Any = None
        try:
            while True:
                try:
                    item = await held.run(functools.partial(method, argument))
                except StopAsyncIteration:
                    break
                try:
                    argument = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    method, argument = generator.athrow, exc
                else:
                    method = generator.asend
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await held.exit(error)

    injector.wraps(wrapper)
    return wrapper


@overload
def aiter_with_fastapi_depends(
    func: Callable[..., AsyncIterator[T]],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., AsyncGenerator[T, None]]: ...
@overload
def aiter_with_fastapi_depends(
    func: None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> AsyncGeneratorDecorator: ...
def aiter_with_fastapi_depends(
    func: Callable[..., AsyncIterator[Any]] | None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Any:
    """Resolve an async generator's dependencies; they stay open while it is iterated.

    Teardown runs on exhaustion, on ``aclose()`` and when the body raises.
    """

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _aiter(g, scope, context, app), "aiter_with_fastapi_depends")

    return decorate if func is None else decorate(func)


def _lifecycle(
    func: Callable[..., Any], app: FastAPI | None
) -> Callable[..., Coroutine[Any, Any, Any]]:
    reject_generators(func, "with_fastapi_lifecycle")
    is_async = is_async_callable(func)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        async with running_lifespan(resolve_app(app)):
            return await call_body(func, is_async, *args, **kwargs)

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

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _lifecycle(g, app), "with_fastapi_lifecycle")

    return decorate if func is None else decorate(func)
