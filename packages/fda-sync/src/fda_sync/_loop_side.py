"""The async steps of a sync call driven from the caller's thread (``_driven``).

Each async step is one round trip to the bridge loop: an ``async def`` dependency (say
``HTTPBearer``), an ``async def`` body or background task runs in a task of its own, in a
copy of the call's context variables, and sends back the variables it leaves. Async
generator dependencies are entered and exited in one task, as FastAPI requires (0.162.7+
also shields their teardown with a cancel scope only that task may exit): the call's
first one starts a task that holds them (``SyncHeld``) until the last one's teardown, and
the call's other async steps run there meanwhile, so they all share one context, as in a
route's task.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

from fda_core import _compat
from fda_sync._bridge import Bridge
from fda_sync._held import SyncHeld

__all__ = ["LoopSide"]

#: What an async step sends back: its value, and the context variables it leaves.
Outcome = tuple[Any, contextvars.Context]


class _Generators(AbstractAsyncContextManager[Outcome]):
    """The async generator dependencies of one call, in the task that holds them.

    Entering it enters the first; ``enter`` and ``exit`` the others, one at a time, in the
    order the caller's teardown asks; exiting it exits what is left (normally the last
    one), then the cancel scope FastAPI shields their teardown with.
    """

    def __init__(self, first: tuple[Any, dict[str, Any], object]) -> None:
        self._first = first
        self._managers: dict[object, AbstractAsyncContextManager[Any]] = {}
        self._stack = AsyncExitStack()
        self._cleanup: list[Any] = []

    async def __aenter__(self) -> Outcome:
        return await self.enter(*self._first)

    async def enter(self, node: Any, kwargs: dict[str, Any], key: object) -> Outcome:
        manager = _compat.shield_teardown(node.factory(**kwargs), self._stack, self._cleanup)
        value = await manager.__aenter__()
        self._managers[key] = manager
        return value, contextvars.copy_context()

    async def exit(self, key: object, exc: BaseException | None) -> bool:
        manager = self._managers.pop(key, None)
        if manager is None:  # its set-up failed
            return False
        if exc is None:
            return bool(await manager.__aexit__(None, None, None))
        return bool(await manager.__aexit__(type(exc), exc, exc.__traceback__))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        for manager in self._managers.values():  # after the cancel scope: exited before it
            self._stack.push_async_exit(manager)
        self._managers.clear()
        return bool(await self._stack.__aexit__(exc_type, exc, traceback))


class LoopSide:
    """Round trips of one call to the bridge loop."""

    __slots__ = ("abandoned", "bridge", "generators", "held", "interrupted", "keys")

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        #: An interrupt that reached the caller while it waited for a step: the step was
        #: cancelled, and what it raised on the loop was ``CancelledError``.
        self.interrupted: list[BaseException] = []
        self.held: SyncHeld[Outcome] | None = None
        self.generators: _Generators | None = None
        self.keys: set[object] = set()  # held async generators whose teardown is due
        #: At interpreter exit: the loop's shutdown tears the generators down.
        self.abandoned = False

    def run(
        self,
        context: contextvars.Context,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Outcome:
        """``await func(*args, **kwargs)``: in the task holding the call's async generators
        if there is one, else in a task of its own, in a copy of ``context``."""

        async def step() -> Outcome:
            value = await func(*args, **kwargs)
            return value, contextvars.copy_context()

        if self.held is not None:
            return self.held.run(step, interrupted=self.interrupted)
        return context.run(self.bridge.run, step, interrupted=self.interrupted)

    def enter(
        self,
        context: contextvars.Context,
        node: Any,
        kwargs: dict[str, Any],
        push: Callable[[Callable[..., bool], bool], None],
    ) -> Outcome:
        """Set up an async generator dependency; ``push`` registers its teardown (before
        the set-up starts: an interrupt in between loses none)."""
        key = object()
        push(functools.partial(self._exit, key), node.function_scoped)
        if self.held is None:
            generators = _Generators((node, kwargs, key))
            held = SyncHeld(self.bridge, lambda: generators)
            self.held, self.generators, self.keys = held, generators, {key}
            try:  # its task runs in a copy of the call's context variables
                outcome: Outcome = context.run(held.open, self.interrupted)
            except BaseException:
                self.held = self.generators = None
                raise
            return outcome
        held_generators = self.generators
        assert held_generators is not None
        self.keys.add(key)
        return self.held.run(
            lambda: held_generators.enter(node, kwargs, key), interrupted=self.interrupted
        )

    def _exit(self, key: object, *details: Any) -> bool:
        held, generators = self.held, self.generators
        if held is None or generators is None or key not in self.keys or self.abandoned:
            return False  # its set-up failed, or the loop's shutdown tears it down
        self.keys.discard(key)
        exc: BaseException | None = details[1]
        if self.keys:
            return held.run(lambda: generators.exit(key, exc), shield=True)
        self.held = self.generators = None  # the last one: its task ends with it
        return held.close(exc)
