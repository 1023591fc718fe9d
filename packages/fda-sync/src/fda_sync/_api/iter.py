"""``iter_with_fastapi_depends``: a sync ``Generator`` over a sync or async generator.

The dependencies are opened at the first ``next()`` and held open for the whole iteration,
on the path of fewer thread hops for their graph, as a decorated call's
(``prefers_caller``): driven from the consumer's thread (``fda_sync._caller_path.opened``:
``def`` steps there, one round trip per async step, no loop at all for a graph of ``def``
dependencies), or by one task on the bridge loop (``SyncHeld``). They are torn down on
exhaustion, ``close()``, an exception, or when an abandoned generator is collected (or
still suspended at interpreter exit). A ``def`` generator's body runs in the consumer's
thread; an ``async def`` one's on the loop, in the task that holds its async steps.

What the consumer sends or throws in reaches the body through ``yield from`` (Python's own
delegation) over a generator-like adapter: each step of a ``def`` generator runs in the
context variables the dependencies left, each step of an ``async def`` one is a blocking
call to the task that holds it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any, Protocol, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.aiter import generator_with_dependencies, running_generator
from fda_core._api.decorating import bare_or_with_options
from fda_core._describe import describe
from fda_core._graph.injector import Injector
from fda_sync._api import decorators
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge
from fda_sync._caller_path.opened import Opened, steps_of
from fda_sync._loop_path.held import SyncHeld

__all__ = ["iter_with_fastapi_depends"]

T = TypeVar("T")

_forgotten: list[Any] = []  # a fork child's copies of its parent's generators


class _Holding(Protocol):
    """What holds a generator's dependencies open: ``SyncHeld`` or ``Opened``."""

    @property
    def variables(self) -> contextvars.Context: ...
    def run(self, operation: Callable[[], Any]) -> Any: ...
    def close(self, exc: BaseException | None) -> bool: ...
    def close_from_finalizer(self) -> None: ...
    def close_late(self, interrupt: BaseException) -> None: ...
    def forked(self) -> bool: ...
    def refuse_in_fork_child(self) -> None: ...


def _open(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    is_async: bool,
) -> tuple[_Holding, Any]:
    """Open the dependencies (and an ``async def`` body); what holds them, and the values
    (or the body's async generator)."""
    before_call()
    bridge = get_bridge()
    app, plan = injector.planned(args, kwargs)
    manager = injector.context_manager()
    if (
        plan is not None
        and decorators.prefers_caller(plan, is_async)
        and not hasattr(manager, "__aenter__")
    ):
        loop = bridge.loop_if_started()
        request = injector.request(app, call_scope, loop) if plan.reads_request else None
        opened = Opened(bridge, plan, request, steps_of(plan, 2 * is_async), manager)
        if not is_async:
            return opened, opened.open()
        func = injector.func
        return opened, opened.open(
            lambda values: opened.enter(lambda: running_generator(func, args, {**kwargs, **values}))
        )
    if is_async:
        held: SyncHeld[Any] = SyncHeld(
            bridge,
            lambda: generator_with_dependencies(injector, args, kwargs, call_scope, manager),
        )
    else:
        held = SyncHeld(bridge, lambda: injector.values(args, kwargs, call_scope, manager))
    return held, held.open()


class _InContext(Generator[Any, Any, Any]):
    """A ``def`` generator, every step (send, throw and close) run in ``variables``.

    A fork child gets ``BridgeError`` at its first step, and never closes it: the
    dependencies are the parent's.
    """

    def __init__(
        self,
        generator: Generator[Any, Any, Any],
        variables: contextvars.Context,
        held: _Holding,
    ) -> None:
        self._generator = generator
        self._variables = variables
        self._held = held
        # Driven from the consumer's thread: in flight while a step runs.
        self._call = held.call if isinstance(held, Opened) else None
        self._in_flight = get_bridge().in_flight

    def _check_fork(self) -> None:
        if self._held.forked():
            # Kept for good: not even the garbage collector may run its teardown here.
            _forgotten.append((self._generator, self._held))
            self._held.refuse_in_fork_child()

    def send(self, value: Any) -> Any:
        return self._step(self._generator.send, value)

    def throw(self, *exc: Any) -> Any:
        return self._step(self._generator.throw, *exc)

    def _step(self, method: Callable[..., Any], *args: Any) -> Any:
        self._check_fork()
        call = self._call
        if call is None:
            return self._variables.run(method, *args)
        self._in_flight.add(call)  # (left there by an interrupt: closing takes it out)
        try:
            return self._variables.run(method, *args)
        finally:
            self._in_flight.calls.discard(call)

    def close(self) -> None:
        if self._held.forked():
            _forgotten.append((self._generator, self._held))
            return
        self._variables.run(self._generator.close)


class _OnLoop(Generator[Any, Any, Any]):
    """An ``async def`` generator held on the loop, each step run in the task that holds
    it (its awaitable created there). Closing it is the holder's exit."""

    def __init__(self, generator: AsyncGenerator[Any, Any], held: _Holding) -> None:
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
        """Nothing to do here: the holder's exit closes the generator."""


def _sync_body(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    holding: list[Any],
) -> Generator[Any, Any, Any]:
    """``holding`` gets what holds the dependencies (the bridge's shutdown reads it)."""
    held, values = _open(injector, args, kwargs, call_scope, False)
    ended = False  # teardown ran, or is not this process's, or not this thread's to run
    try:
        try:
            holding.append(held)
            variables = held.variables
            generator = variables.run(injector.func, *args, **kwargs, **values)
            result = yield from _InContext(generator, variables, held)
        except GeneratorExit:
            held.close_from_finalizer()
            ended = True
            raise
        except BaseException as exc:
            if held.forked() or not held.close(exc):  # (a fork child: the parent's)
                ended = True
                raise
            ended = True
            return None
        held.close(None)
        ended = True
        return result
    except BaseException as late:
        if not ended:  # an interrupt before teardown, or one that cut it short
            held.close_late(late)
        raise


def _async_body(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    holding: list[Any],
) -> Generator[Any, Any, None]:
    held, generator = _open(injector, args, kwargs, call_scope, True)
    ended = False  # as in ``_sync_body``
    try:
        try:
            holding.append(held)
            yield from _OnLoop(generator, held)
        except GeneratorExit:
            held.close_from_finalizer()
            ended = True
            raise
        except BaseException as exc:
            if not held.close(exc):
                ended = True
                raise
            ended = True
            return
        held.close(None)
        ended = True
    except BaseException as late:
        if not ended:
            held.close_late(late)
        raise


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
        holding: list[Any] = []
        generator = body(injector, args, kwargs, _scope, holding)
        bridge.track(generator, holding)
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
