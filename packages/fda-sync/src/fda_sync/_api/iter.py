"""``iter_with_fastapi_depends``: a sync ``Generator`` over a sync or async generator.

The dependencies are held open by one task on the bridge loop for the whole iteration and
torn down on exhaustion, ``close()``, an exception, or when an abandoned generator is
collected (or still suspended at interpreter exit). A ``def`` generator's body runs in the
consumer's thread; an ``async def`` generator's body runs on the loop, in the holder task.

What the consumer sends or throws in reaches the body through ``yield from`` (Python's own
delegation) over a generator-like adapter: each step of a ``def`` generator runs in the
context variables the dependencies left, each step of an ``async def`` one is a blocking
call to the holder task.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.aiter import generator_with_dependencies
from fda_core._api.decorating import bare_or_with_options
from fda_core._describe import describe
from fda_core._graph.injector import Injector
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge, this_process
from fda_sync._loop_path.held import SyncHeld

__all__ = ["iter_with_fastapi_depends"]

T = TypeVar("T")

_forgotten: list[Any] = []  # a fork child's copies of its parent's generators


class _InContext(Generator[Any, Any, Any]):
    """A ``def`` generator, every step (send, throw and close) run in ``variables``.

    A fork child gets ``BridgeError`` at its first step: the dependencies are the parent's.
    """

    def __init__(
        self,
        generator: Generator[Any, Any, Any],
        variables: contextvars.Context,
        held: SyncHeld[Any],
    ) -> None:
        self._generator = generator
        self._variables = variables
        self._held = held
        self._forks = this_process.forks

    def _check_fork(self) -> None:
        if this_process.forks != self._forks:
            # Kept for good: not even the garbage collector may run its teardown here.
            _forgotten.append((self._generator, self._held))
            self._held.refuse_in_fork_child()

    def send(self, value: Any) -> Any:
        self._check_fork()
        return self._variables.run(self._generator.send, value)

    def throw(self, *exc: Any) -> Any:
        self._check_fork()
        return self._variables.run(self._generator.throw, *exc)

    def close(self) -> None:
        self._variables.run(self._generator.close)


class _OnLoop(Generator[Any, Any, Any]):
    """An ``async def`` generator held on the loop, each step run in the holder task (its
    awaitable created there). Closing it is the held context's exit."""

    def __init__(self, generator: AsyncGenerator[Any, Any], held: SyncHeld[Any]) -> None:
        self._generator = generator
        self._held = held

    def send(self, value: Any) -> Any:
        try:
            return self._held.run(functools.partial(self._generator.asend, value))
        except StopAsyncIteration:
            raise StopIteration from None

    def throw(self, *exc: Any) -> Any:
        try:
            return self._held.run(functools.partial(self._generator.athrow, *exc))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Nothing to do here: the held context's exit closes the generator."""


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
        result = yield from _InContext(generator, variables, held)
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


def _async_body(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
) -> Generator[Any, Any, None]:
    before_call()
    held = SyncHeld(
        get_bridge(), lambda: generator_with_dependencies(injector, args, kwargs, call_scope)
    )
    generator = held.open()
    try:
        yield from _OnLoop(generator, held)
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
        body = _async_body
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
        args, kwargs = injector.arrange_call(args, kwargs, _scope)
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
    return bare_or_with_options(
        func, lambda f: _iter(f, scope, context, app), "iter_with_fastapi_depends"
    )
