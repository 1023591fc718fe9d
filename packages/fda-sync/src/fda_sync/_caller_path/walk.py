"""Sync calls driven from the caller's thread: ``def`` code runs there, async code on the loop.

The graph most sync code uses is FastAPI's tutorial one: a ``def`` settings dependency, a
``def`` generator session, a repository class. It needs no event loop, so the caller's
thread walks the call's compiled plan itself (``Plan.solve_with``) and calls each ``def``
dependency as FastAPI's threadpool would, in a copy of the call's context variables. Each
async step is one round trip to the bridge loop (``loop_side``); the context variables it
sets are the call's from then on, as in a route's task.

Teardown is a route's (``exits``): function-scoped dependencies close before
request-scoped ones, the body's exception thrown in; in the main thread, interrupting
signals wait until it is done. ``prefers_caller`` decides, per plan, whether this path or
the bridge loop (one round trip, then one per ``def`` step) makes fewer thread hops.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from fda_core import _compat
from fda_core._compat import CallKind
from fda_core._graph.plan import Plan
from fda_core._graph.resolution import SwallowedExceptionError
from fda_sync._bridge import Bridge, this_process
from fda_sync._caller_path.exits import Teardown, exit_generator, suspended
from fda_sync._caller_path.loop_side import LoopSide
from fda_sync._errors import forked_error, stop_iteration_error

__all__ = ["DrivenCall", "call_in_caller", "prefers_caller"]

_THREADPOOL = CallKind.THREADPOOL
_GENERATOR = CallKind.GENERATOR
_COROUTINE = CallKind.COROUTINE

_forgotten: list[Teardown] = []  # a fork child's share of its parent's calls
_CALLER: Any = object()  # the call's own claim on its teardown (``InFlight.claim``)
_STOPPED: Any = object()  # ``next``'s default: the generator stopped


def prefers_caller(plan: Plan, body_is_async: bool) -> bool:
    """Whether driving ``plan`` from the caller's thread makes fewer round trips between
    threads (one per async step) than running the call on the loop (one, then one per
    ``def`` step). A tie goes to the loop: its round trips cost the loop less work."""
    return plan.async_steps + body_is_async < 1 + plan.sync_steps + (not body_is_async)


class _Call:
    """One sync call driven from the caller's thread."""

    __slots__ = ("bridge", "claims", "context", "forks", "loop", "steps", "teardown", "thread")

    def __init__(self, bridge: Bridge, context: contextvars.Context, steps: int) -> None:
        self.bridge = bridge
        #: The call's context variables: the caller's, and what its async steps set.
        #: ``def`` code runs in copies of it, as in FastAPI's threadpool.
        self.context = context
        self.steps = steps  # async steps of the call (at most)
        self.forks = this_process.forks  # (``os.getpid()`` is a system call)
        self.teardown = Teardown()
        self.loop: LoopSide | None = None  # made by the first async step
        self.thread = 0  # set by ``Bridge.admit``
        self.claims: list[object] = []  # ``InFlight.claim``: _CALLER, or the exit's

    def node(self, node: Any, kwargs: dict[str, Any]) -> Any:
        """Call one node of the plan (``Plan.solve_with``). A ``def`` step is ``here``
        written out: every sync call pays for it once per step."""
        kind = node.kind
        if kind is _THREADPOOL:
            try:
                return self.context.copy().run(node.call, **kwargs)
            except StopIteration as exc:
                raise stop_iteration_error(node.call, exc)  # noqa: B904 - its cause is set
            finally:
                if this_process.forks != self.forks:
                    raise forked_error()  # a fork child never goes on with its parent's call
        if kind is _GENERATOR:
            generator = node.call(**kwargs)
            # Registered before it starts: an interrupt in between loses no teardown.
            teardown = self.teardown
            exits = teardown.function if node.function_scoped else teardown.request
            exits.append(partial(self.exit_generator, generator))
            try:  # ``contextmanager``'s ``__enter__``: the set-up, up to the ``yield``
                return self.context.copy().run(next, generator)
            except StopIteration:
                raise RuntimeError("generator didn't yield") from None
            finally:
                if this_process.forks != self.forks:
                    raise forked_error()
        if kind is _COROUTINE:
            return self.on_loop(node.call, (), kwargs)
        value, self.context = self.loop_side().enter(self.context, node, kwargs, self.teardown.push)
        return value

    def exit_generator(
        self, generator: Any, exc_type: type[BaseException] | None, exc: Any, traceback: Any
    ) -> bool:
        """A ``def`` generator's teardown, ``here`` (an ``__exit__`` for ``Teardown``); its
        first case written out, which every call with a ``def`` generator pays for."""
        try:
            if exc_type is None and suspended(generator):
                if self.context.copy().run(next, generator, _STOPPED) is not _STOPPED:
                    raise RuntimeError("generator didn't stop")
                return False
            return self.context.copy().run(exit_generator, generator, exc_type, exc, traceback)
        except StopIteration as error:
            raise stop_iteration_error(exit_generator, error)  # noqa: B904
        finally:
            if this_process.forks != self.forks:
                raise forked_error()

    def loop_side(self) -> LoopSide:
        if self.loop is None:
            self.loop = LoopSide(self.bridge, self.steps)
        return self.loop

    def here(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` in this thread, in a copy of the call's context."""
        try:
            return self.context.copy().run(func, *args, **kwargs)
        except StopIteration as exc:
            raise stop_iteration_error(func, exc)  # noqa: B904 - its cause is set
        finally:
            if this_process.forks != self.forks:
                raise forked_error()  # a fork child never goes on with its parent's call

    def on_loop(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any:
        """``await func(*args, **kwargs)`` on the bridge loop: one round trip."""
        value, self.context = self.loop_side().run(self.context, func, args, kwargs)
        return value

    def end(self, error: BaseException | None, solving: bool) -> None:
        """Tear down (``error`` thrown in), then run background tasks if all went well,
        as ``fda_core._graph.resolution`` ends a call. The caller re-raises ``error``."""
        if this_process.forks != self.forks:
            # A fork child: the parent tears down. Nothing here may close what the call
            # holds, not even the garbage collector: it stays referenced for good.
            _forgotten.append(self.teardown)
            return
        claims = self.claims
        if not claims:
            claims.append(_CALLER)  # ``InFlight.claim``: the first claim is the one kept
        if claims[0] is not _CALLER:
            return  # torn down at exit already
        interrupted = self.loop is not None and error in self.loop.interrupted
        thrown = error
        if interrupted:
            # Interrupted while an async step ran: as on the loop, that step was
            # cancelled, and the dependencies see the cancellation; the caller gets the
            # interrupt.
            thrown = asyncio.CancelledError()
        elif (
            solving
            and _compat.VALIDATION_ERROR_AFTER_TEARDOWN
            and isinstance(error, RequestValidationError)
        ):
            thrown = None  # as a route of FastAPI 0.110-0.117: raised after teardown
        try:
            if self.teardown.exit(thrown) and thrown is not None and not interrupted:
                raise SwallowedExceptionError(thrown) from thrown
            background = self.teardown.background
            if error is None and background is not None:
                for task in background.tasks:
                    if task.is_async:
                        self.on_loop(task.func, task.args, task.kwargs)
                    else:
                        self.here(task.func, *task.args, **task.kwargs)
        finally:
            if self.loop is not None:
                self.loop.finish()  # the call's task, if it still runs

    def end_late(self, interrupt: BaseException) -> None:
        """An interrupt cut ``end`` short: what teardown is left still runs, the interrupt
        thrown in. (So one interrupt, wherever it lands, loses no teardown.)"""
        if this_process.forks != self.forks:
            return
        if not self.claims:
            self.bridge.in_flight.claim(self, _CALLER)
        if self.claims[0] is _CALLER:
            try:
                self.teardown.exit(interrupt)
            finally:
                if self.loop is not None:
                    self.loop.finish()

    def abandon(self) -> None:
        """Interpreter exit, and the caller's thread still busy: tear down its
        dependencies from here, in order, as the loop tears down a call it runs (quietly)."""
        with contextlib.suppress(BaseException):
            try:
                self.teardown.exit(asyncio.CancelledError())
            finally:
                if self.loop is not None:
                    self.loop.finish()


#: A call driven from the caller's thread, for what holds one open across blocking calls
#: (``opened``, ``stack``): its steps, its context variables, its teardown.
DrivenCall = _Call


def call_in_caller(
    bridge: Bridge,
    plan: Plan,
    request: Callable[[], Request] | None,
    body: Callable[..., Any],
    body_is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    manager: Any = None,
) -> Any:
    """Resolve ``plan``, call ``body`` with the values, tear down: a whole sync call, driven
    from this thread. ``manager``: the context factory's (sync) manager for the call,
    entered around it in a context of its own."""
    if manager is not None:
        bridge.refuse_running_loop()  # before the manager is entered, as on the loop
        return contextvars.copy_context().run(
            _in_manager, manager, bridge, plan, request, body, body_is_async, args, kwargs
        )
    # Async steps the call may make: background tasks may be async too.
    steps = plan.async_steps + body_is_async + plan.background
    call = _Call(bridge, contextvars.copy_context(), steps)
    in_flight = bridge.in_flight.calls
    solving = True
    completed = False
    try:
        bridge.admit(call)
        values = plan.solve_with(call.node, call.teardown.background_tasks, request)
        solving = False
        if body_is_async:
            result = call.on_loop(body, args, {**kwargs, **values})
        else:  # ``call.here``, written out: every sync call pays for it
            try:
                result = call.context.copy().run(body, *args, **kwargs, **values)
            except StopIteration as exc:
                raise stop_iteration_error(body, exc)  # noqa: B904 - its cause is set
            finally:
                if this_process.forks != call.forks:
                    raise forked_error()  # a fork child never goes on with its parent's call
        completed = True
    finally:
        # What went wrong is, in a finally clause, the exception on its way out. An
        # interrupt landing anywhere from here on still leaves teardown to ``end_late``.
        try:
            call.end(None if completed else sys.exc_info()[1], solving)
        except BaseException as late:
            call.end_late(late)
            raise
        finally:
            in_flight.discard(call)  # one call of a C method: no signal stops it half-way
    return result


def _in_manager(
    manager: Any,
    bridge: Bridge,
    plan: Plan,
    request: Callable[[], Request] | None,
    body: Callable[..., Any],
    body_is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The call inside the context factory's manager. (Not a closure: its cells would
    cost every call of ``call_in_caller``, with a manager or not.)"""
    with manager:  # the call's context variables: this context's, the manager's set
        return call_in_caller(bridge, plan, request, body, body_is_async, args, kwargs)
    return None  # it suppressed the exception: there is no result
