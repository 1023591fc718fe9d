"""``iter_with_fastapi_depends``: a sync ``Generator`` over a sync or async generator.

The dependencies are held open by one task on the bridge loop for the whole iteration and
torn down on exhaustion, ``close()``, an exception, or when an abandoned generator is
collected (or still suspended at interpreter exit). A ``def`` generator's body runs in the
consumer's thread; an ``async def`` generator's body runs on the loop, in the holder task.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager
from typing import Any, TypeVar, overload

from fastapi import FastAPI

from fda_core._analysis import describe
from fda_core._decorators import decorating
from fda_core._injector import Injector
from fda_core._scope import check_scope
from fda_sync import _bridge
from fda_sync._bridge import get_bridge
from fda_sync._held import SyncHeld
from fda_sync._lifetime import before_call

__all__ = ["iter_with_fastapi_depends"]

T = TypeVar("T")

_forgotten: list[Any] = []  # a fork child's copies of its parent's generators


@asynccontextmanager
async def _async_body(
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


def _steps(
    generator: Generator[Any, Any, Any], variables: contextvars.Context, held: SyncHeld[Any]
) -> Generator[Any, Any, Any]:
    """Drive ``generator`` with every step run in ``variables`` (send, throw and close).

    A fork child gets ``BridgeError`` at its first step: the dependencies are the parent's.
    """
    method: Callable[[Any], Any] = generator.send
    argument: Any = None
    forks = _bridge.forks
    while True:
        if _bridge.forks != forks:
            # Kept for good: not even the garbage collector may run its teardown here.
            _forgotten.append((generator, held))
            held.refuse_in_fork_child()
        try:
            item = variables.run(method, argument)
        except StopIteration as stop:
            return stop.value
        try:
            argument = yield item
        except GeneratorExit:
            variables.run(generator.close)
            raise
        except BaseException as exc:
            method, argument = generator.throw, exc
        else:
            method = generator.send


def _sync_body(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
) -> Generator[Any, Any, Any]:
    before_call()
    held = SyncHeld(get_bridge(), lambda: injector.values(args, kwargs, call_scope))
    values = held.open()
    variables = held.variables
    try:
        generator = variables.run(injector.func, *args, **kwargs, **values)
        result = yield from _steps(generator, variables, held)
    except GeneratorExit:
        held.close_from_finalizer()
        raise
    except BaseException as exc:
        if held.forked():  # the parent tears down
            raise
        if not held.close(exc):
            raise
        return None
    held.close(None)
    return result


def _async_steps(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
) -> Generator[Any, Any, None]:
    before_call()
    held = SyncHeld(get_bridge(), lambda: _async_body(injector, args, kwargs, call_scope))
    generator = held.open()
    method: Callable[[Any], Awaitable[Any]] = generator.asend
    argument: Any = None
    try:
        while True:
            try:
                # The step's awaitable is created on the loop and runs in the holder task.
                item = held.run(functools.partial(method, argument))
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
        held.close_from_finalizer()
        raise
    except BaseException as exc:
        if not held.close(exc):
            raise
        return
    held.close(None)


def _iter(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., Generator[Any, Any, Any]]:
    if inspect.isasyncgenfunction(func):
        body = _async_steps
    elif inspect.isgeneratorfunction(func):
        body = _sync_body
    else:
        raise TypeError(
            f"{describe(func)} is not a generator function: @iter_with_fastapi_depends "
            "decorates `def ...: yield ...` or `async def ...: yield ...`."
        )
    injector = Injector(func, scope=scope, context=context, app=app)
    bridge = get_bridge()

    def wrapper(
        *args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Generator[Any, Any, Any]:
        if _scope is not None:
            check_scope(_scope, "_scope")
        args, kwargs = injector.arrange(args, kwargs)
        generator = body(injector, args, kwargs, _scope)
        bridge.track(generator)
        return generator

    injector.wraps(wrapper)
    return wrapper


@overload
def iter_with_fastapi_depends(
    func: Callable[..., AsyncIterator[T]],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., Generator[T, None, None]]: ...
@overload
def iter_with_fastapi_depends(
    func: Callable[..., Iterator[T]],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., Generator[T, None, None]]: ...
@overload
def iter_with_fastapi_depends(
    func: None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[
    [Callable[..., AsyncIterator[T]] | Callable[..., Iterator[T]]],
    Callable[..., Generator[T, None, None]],
]: ...
def iter_with_fastapi_depends(
    func: Callable[..., Any] | None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Any:
    """Resolve a (sync or async) generator's dependencies; iterate it as a sync generator.

    Dependencies stay open while it is iterated and are torn down on exhaustion, on
    ``close()``, when the body raises, and when an abandoned generator is collected.
    """

    def decorate(f: Any) -> Any:
        return decorating(f, lambda g: _iter(g, scope, context, app), "iter_with_fastapi_depends")

    return decorate if func is None else decorate(func)
