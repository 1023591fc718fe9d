"""The async steps of a sync call driven from the caller's thread (``walk``).

Each async step is one round trip to the bridge loop. In a route, a request's async
dependencies, its async generators' set-up and teardown and an ``async def`` body all run
in one task: they share its context variables, task-keyed state
(``async_scoped_session(scopefunc=current_task)``), and FastAPI needs an async generator
exited by the task that entered it (0.162.7+ also shields that teardown with a cancel
scope only that task may exit). So a call with more than one async step runs them all in
one task of its own, held open (``SyncHeld``) from its first async step until the call
ends (its background tasks, which may be async, run after teardown). A call with a single async step
(a bearer-token user on a ``def`` graph) runs it in a task of its own, which it may as
well: nothing else async shares it.

Each step sends back the context variables it leaves: the call's ``def`` code runs in
copies of them, as FastAPI's threadpool runs it in copies of the request task's.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

from fda_core import _compat
from fda_core._runtime.holder import ClosedError
from fda_core._runtime.threads import context_snapshot
from fda_sync._bridge import Bridge
from fda_sync._loop_path.held import SyncHeld

__all__ = ["LoopSide", "Steps"]

#: What an async step sends back: its value, and the context variables it leaves.
Outcome = tuple[Any, contextvars.Context]


class Steps:
    """Async steps run by one task: ``run`` (an ``async def`` dependency, body or background
    task), ``enter`` and ``exit`` (an async generator dependency), in the order the caller
    sends them. ``stack`` and ``cleanup``: where the cancel scope FastAPI shields async
    generators' teardown with is entered, and kept."""

    def __init__(self, stack: AsyncExitStack, cleanup: list[Any]) -> None:
        self._managers: dict[object, AbstractAsyncContextManager[Any]] = {}
        self._stack = stack
        self._cleanup = cleanup

    @staticmethod
    async def run(
        func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Outcome:
        value = await func(*args, **kwargs)
        return value, context_snapshot()

    async def enter(self, node: Any, kwargs: dict[str, Any], key: object) -> Outcome:
        manager = _compat.shield_teardown(node.factory(**kwargs), self._stack, self._cleanup)
        value = await manager.__aenter__()
        self._managers[key] = manager
        return value, context_snapshot()

    def keep(self, key: object, manager: AbstractAsyncContextManager[Any]) -> None:
        """Exit ``manager`` (entered by the task) when ``exit(key)`` comes."""
        self._managers[key] = manager

    async def exit(self, key: object, exc: BaseException | None) -> bool:
        manager = self._managers.pop(key, None)
        if manager is None:  # its set-up failed
            return False
        if exc is None:
            return bool(await manager.__aexit__(None, None, None))
        return bool(await manager.__aexit__(type(exc), exc, exc.__traceback__))

    def leave(self) -> None:
        """The task ends: what was never exited is exited with ``stack``, before the cancel
        scope (entered before any of them)."""
        for manager in self._managers.values():
            self._stack.push_async_exit(manager)
        self._managers.clear()


class _CallTask(Steps, AbstractAsyncContextManager[Outcome]):
    """The async steps of one call, in the task that holds them.

    Entering it runs the first step; exiting it exits what is left (normally the last
    async generator), then the cancel scope FastAPI shields their teardown with.
    """

    def __init__(self, first: str, args: tuple[Any, ...]) -> None:
        super().__init__(AsyncExitStack(), [])
        self._first = first, args  # the name of the method that runs the first step

    async def __aenter__(self) -> Outcome:
        name, args = self._first
        self._first = name, ()  # nothing of the step is kept once it ran
        outcome: Outcome = await getattr(self, name)(*args)
        return outcome

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self.leave()
        return bool(await self._stack.__aexit__(exc_type, exc, traceback))


class LoopSide:
    """Round trips of one call to the bridge loop."""

    __slots__ = ("bridge", "held", "interrupted", "keys", "shared", "task")

    def __init__(self, bridge: Bridge, steps: int) -> None:
        self.bridge = bridge
        #: More than one async step: they all run in one task, the call's.
        self.shared = steps > 1
        self.held: SyncHeld[Any] | None = None
        self.task: Steps | None = None
        self.keys: set[object] = set()  # held async generators whose teardown is due
        #: An interrupt that reached the caller while it waited for a step: the step was
        #: cancelled, and what it raised on the loop was ``CancelledError``.
        self.interrupted: list[BaseException] = []

    def run(
        self,
        context: contextvars.Context,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Outcome:
        """``await func(*args, **kwargs)``, in a copy of ``context`` for a new task."""
        if self.held is not None or self.shared:
            return self._step(context, "run", (func, args, kwargs))
        return context.run(
            self.bridge.run,
            functools.partial(_CallTask.run, func, args, kwargs),
            interrupted=self.interrupted,
        )

    @classmethod
    def of(cls, bridge: Bridge, held: SyncHeld[Any], task: Steps) -> LoopSide:
        """The round trips to a task that runs already, held by ``held`` (a stack's)."""
        loop = cls(bridge, 2)
        loop.held, loop.task = held, task
        return loop

    def enter(
        self,
        context: contextvars.Context,
        node: Any,
        kwargs: dict[str, Any],
        push: Callable[[Callable[..., bool], bool], None],
    ) -> Outcome:
        """Set up an async generator dependency; ``push`` registers its teardown (before
        the set-up starts: an interrupt in between loses none)."""
        key = self.expect(push, node.function_scoped)
        return self._step(context, "enter", (node, kwargs, key))

    def expect(
        self, push: Callable[[Callable[..., bool], bool], None], function_scoped: bool = False
    ) -> object:
        """The key of something the task is about to enter (``Steps.keep``): ``push``
        registers the round trip that exits it."""
        key = object()
        push(functools.partial(self._exit, key), function_scoped)
        self.keys.add(key)
        return key

    def _step(self, context: contextvars.Context, name: str, args: tuple[Any, ...]) -> Outcome:
        """Run the call task's method ``name`` there; the first step starts the task."""
        held, task = self.held, self.task
        if held is not None and task is not None:
            method: Callable[..., Awaitable[Outcome]] = getattr(task, name)
            return held.run(lambda: method(*args), interrupted=self.interrupted)
        task = _CallTask(name, args)
        held = SyncHeld(self.bridge, lambda: task)
        self.held, self.task = held, task
        try:  # its task runs in a copy of the call's context variables
            outcome: Outcome = context.run(held.open, self.interrupted)
        except BaseException:
            if not held.held.active:  # it never started: nothing to tear down there
                self.held = self.task = None
            raise
        return outcome

    def _exit(self, key: object, *details: Any) -> bool:
        held, task = self.held, self.task
        if held is None or task is None or key not in self.keys:
            return False  # its set-up failed
        self.keys.discard(key)
        exc: BaseException | None = details[1]
        # The call's task outlives its async generators: background tasks run there too.
        try:
            return held.run(lambda: task.exit(key, exc), shield=True)
        except ClosedError:  # it was cancelled, and exited its generators itself
            return False

    def finish(self) -> None:
        """The call is over: end its task, without waiting (its async generators are
        torn down already: nothing is left there to go wrong)."""
        held = self.held
        if held is not None and not self.keys:
            self.held = self.task = None
            held.close_soon()
