"""A resolution driven from the caller's thread and held open across blocking calls.

A generator (``iter_with_fastapi_depends``) or a ``with resolve_fastapi_depends(...)``
block keeps its dependencies open while the caller uses them. Driven from the caller's
thread, that is a call of ``walk`` cut in two: ``open`` resolves (``def`` steps here,
each async step one round trip, all of them in one task on the loop), ``close`` tears
down in whatever thread closes it, the exception thrown in, as ``walk`` ends a call.
Nothing waits on the loop in between: a graph of ``def`` dependencies never reaches it.

While it resolves, tears down, or (a generator) runs a step, the call is in flight
(``_guards.in_flight``): interpreter exit gives it the grace calls get, then tears down
what it holds from the exiting thread. An object opened before a fork is the parent's:
the child refuses to use it and never tears it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from fda_core._compat import CallKind
from fda_core._graph.plan import Plan
from fda_sync._bridge import Bridge, this_process
from fda_sync._caller_path.walk import DrivenCall
from fda_sync._errors import parent_process_error

__all__ = ["Opened", "steps_of"]

R = TypeVar("R")

_forgotten: list[Opened] = []  # a fork child's copies of its parent's: never torn down
#: Teardown started without waiting (a finalizer on a thread that runs an event loop).
TEARDOWN_THREAD = "fda-sync-teardown"


class _Entered:
    """An async context entered in the call's task like an async generator dependency,
    torn down before the dependencies (an ``async def`` generator body)."""

    kind = CallKind.ASYNC_GENERATOR
    function_scoped = True

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        self.made = factory

    def factory(self) -> AbstractAsyncContextManager[Any]:
        return self.made()


class _Around:
    """The configured context factory's (sync) manager around a resolution: entered and
    exited in a context of its own, whichever threads do it; exited once."""

    __slots__ = ("context", "manager")

    def __init__(self, manager: Any) -> None:
        self.manager: Any = manager
        self.context = contextvars.copy_context()

    def enter(self) -> contextvars.Context:
        """Enter the manager; the context variables the resolution then runs in."""
        self.context.run(self.manager.__enter__)
        return self.context.run(contextvars.copy_context)

    def exit(self, exc: BaseException | None) -> bool:
        """Exit the manager (the first time), ``exc`` thrown in; whether it suppressed it."""
        manager, self.manager = self.manager, None
        if manager is None:
            return False
        if exc is None:
            return bool(self.context.run(manager.__exit__, None, None, None))
        return bool(self.context.run(manager.__exit__, type(exc), exc, exc.__traceback__))


class Opened:
    """One resolution of ``plan``, opened by ``open`` and closed by ``close``.

    ``manager``: the configured context factory's (sync) manager, entered around it;
    ``for_life``: in flight from ``open`` to ``close`` (a ``with`` block: the values are in
    use all along), rather than only while a step runs (a generator's).
    """

    __slots__ = ("around", "call", "for_life", "handed_off", "plan", "request")

    def __init__(
        self,
        bridge: Bridge,
        plan: Plan,
        request: Callable[[], Any] | None,
        steps: int,
        manager: Any = None,
        for_life: bool = False,
    ) -> None:
        self.plan = plan
        self.request = request
        self.for_life = for_life
        self.handed_off = False  # its teardown runs in a thread of its own
        self.around = _Around(manager)
        self.call = DrivenCall(bridge, self.around.context, steps)

    def open(self, then: Callable[[dict[str, Any]], R] | None = None) -> Any:
        """Resolve; return the values, or what ``then(values)`` returns (a step that
        belongs to the opening: entering a generator body)."""
        call = self.call
        bridge = call.bridge
        bridge.refuse_running_loop()  # before the manager is entered, as on the loop
        if self.around.manager is not None:
            call.context = self.around.enter()
        in_flight = bridge.in_flight.calls
        completed = solving = False
        try:
            bridge.admit(call)
            solving = True
            values = self.plan.solve_with(call.node, call.teardown.background_tasks, self.request)
            solving = False
            result = values if then is None else then(values)
            if not self.for_life:
                in_flight.discard(call)  # here: an interrupt after it still tears down
            completed = True
        finally:
            if not completed:
                try:
                    self._close(sys.exc_info()[1], solving)
                finally:
                    in_flight.discard(call)
        return result

    @property
    def variables(self) -> contextvars.Context:
        """The context variables the dependencies left (a fresh copy)."""
        return self.call.context.copy()

    def enter(self, factory: Callable[[], AbstractAsyncContextManager[Any]]) -> Any:
        """Enter ``factory()`` in the call's task (made there); it is exited first."""
        return self.call.node(_Entered(factory), {})

    def run(self, operation: Callable[[], Awaitable[R]]) -> R:
        """``await operation()`` in the call's task: a step of an ``async def`` body. An
        interrupt meanwhile is the body's: the dependencies see it, as on the loop path."""
        call = self.call
        loop = call.loop_side()
        try:
            value, call.context = loop.run(call.context, _awaited, (operation,), {})
        except BaseException as exc:
            with contextlib.suppress(ValueError):
                loop.interrupted.remove(exc)
            raise
        return value  # type: ignore[no-any-return]

    def forked(self) -> bool:
        """Whether this is a fork child of the process that opened it."""
        return this_process.forks != self.call.forks

    def refuse_in_fork_child(self) -> None:
        if self.forked():
            _forgotten.append(self)
            raise parent_process_error()

    def close(self, exc: BaseException | None) -> bool:
        """Tear down, ``exc`` thrown in (the caller re-raises it); whether the context
        factory's manager suppressed it."""
        if self.forked():
            _forgotten.append(self)
            return False
        in_flight = self.call.bridge.in_flight
        in_flight.add(self.call)  # its round trips are admitted while a shutdown runs
        try:
            return self._close(exc, False)
        finally:
            in_flight.calls.discard(self.call)

    def close_late(self, interrupt: BaseException) -> None:
        """An interrupt cut ``close`` short, or came just before it: what is left of the
        teardown still runs, the interrupt thrown in (nothing once it runs elsewhere)."""
        if self.forked() or self.handed_off:
            return
        in_flight = self.call.bridge.in_flight
        in_flight.add(self.call)
        try:
            self.call.end_late(interrupt)
        finally:
            in_flight.calls.discard(self.call)
            self.around.exit(interrupt)

    def _close(self, exc: BaseException | None, solving: bool) -> bool:
        call = self.call
        try:
            try:
                call.end(exc, solving)
            except BaseException as late:
                call.end_late(late)
                raise
        except BaseException as raised:
            if self.around.exit(raised):
                return True
            raise
        return self.around.exit(exc)

    def close_from_finalizer(self) -> None:
        """``close(None)`` where waiting is impossible or pointless (a generator closed by
        the garbage collector): on a thread that runs an event loop, in a thread of its
        own, not awaited; during finalization or in a fork child, not at all (the bridge's
        shutdown, or the parent, tears it down)."""
        if self.forked():
            _forgotten.append(self)
            return
        if sys.is_finalizing():
            return
        if asyncio._get_running_loop() is not None:
            thread = threading.Thread(target=self.close, args=(None,), name=TEARDOWN_THREAD)
            self.handed_off = True
            with contextlib.suppress(RuntimeError):  # no thread starts at exit: the bridge's
                thread.start()
            return
        self.close(None)


async def _awaited(operation: Callable[[], Awaitable[R]]) -> R:
    return await operation()


def steps_of(plan: Plan, body_steps: int = 0) -> int:
    """The async steps a call on ``plan`` may make (background tasks may be async too),
    plus ``body_steps`` of its body."""
    return plan.async_steps + plan.background + body_steps
