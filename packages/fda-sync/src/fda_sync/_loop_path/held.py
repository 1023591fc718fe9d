"""An async context held open on the bridge loop while sync code runs in the caller's thread.

A sync generator, a ``with`` block of the sync stack or of ``resolve_fastapi_depends``: the
dependencies are entered, used and exited by one task on the loop
(``fda_core._runtime.holder.TaskHeld``: FastAPI needs teardown in the resolving task), while the
sync code runs between two blocking calls. Each of those calls lends its thread to the
step it waits for (``def`` dependencies run there).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Generic, TypeVar

from fda_core._runtime.holder import TaskHeld
from fda_sync._bridge import Bridge, LoopState, foreign_owner_error
from fda_sync._errors import Carried

__all__ = ["SyncHeld"]

T = TypeVar("T")
R = TypeVar("R")


class _Guarded(AbstractAsyncContextManager[T]):
    """Runs in the holder task: creates the context there, and keeps the loop alive.

    A ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, ...) leaving the context
    would end the holder task with it, and asyncio re-raises those out of the loop: it is
    carried out as an ``Exception`` instead, and the bridge re-raises the original.
    After entering, the task's context variables are kept: the sync body runs in them,
    so it sees what dependencies set, as an async body in the same task would.
    """

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        self._factory = factory
        self._context: AbstractAsyncContextManager[T] | None = None
        self.variables: contextvars.Context | None = None

    async def __aenter__(self) -> T:
        self._context = self._factory()
        try:
            value = await self._context.__aenter__()
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as exc:
            raise Carried(exc) from None
        self.variables = contextvars.copy_context()
        return value

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._context is not None
        try:
            return await self._context.__aexit__(exc_type, exc, traceback)
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as error:
            raise Carried(error) from None


class SyncHeld(Generic[T]):
    """A context entered on the bridge loop; sync handles to use and exit it."""

    def __init__(self, bridge: Bridge, factory: Callable[[], AbstractAsyncContextManager[T]]):
        self._bridge = bridge
        self._guarded = _Guarded(factory)
        self._held: TaskHeld[T] = TaskHeld(self._guarded)
        self._state: LoopState | None = None
        self._value: T | None = None

    def open(self, interrupted: list[BaseException] | None = None) -> T:
        """Enter the context in a holder task on the loop; return what it yields.

        ``interrupted``: as for ``Bridge.run``."""
        self._state = self._bridge.state()
        self._value = self._bridge.run(self._held.enter, owner=self._state, interrupted=interrupted)
        return self._value

    @property
    def value(self) -> T:
        assert self._state is not None, "not opened"
        return self._value  # type: ignore[return-value]

    @property
    def variables(self) -> contextvars.Context:
        """The holder task's context variables right after entering (a fresh copy)."""
        assert self._guarded.variables is not None, "not opened"
        return self._guarded.variables.copy()

    @property
    def held(self) -> TaskHeld[T]:
        return self._held

    def run(
        self,
        operation: Callable[[], Awaitable[R]],
        *,
        shield: bool = False,
        interrupted: list[BaseException] | None = None,
    ) -> R:
        """Run ``operation()`` in the holder task (``TaskHeld.run``) and return its result.

        ``shield`` (teardown, which an interrupted caller waits for) and ``interrupted``:
        as for ``Bridge.run``.
        """
        return self._bridge.run(
            lambda: self._held.run(operation),
            shield=shield,
            owner=self._state,
            interrupted=interrupted,
        )

    def forked(self) -> bool:
        """Whether this is a fork child of the process that opened it."""
        return self._state is not None and self._state.pid != os.getpid()

    def refuse_in_fork_child(self) -> None:
        """Raise ``BridgeError`` in a fork child: what was opened belongs to the parent."""
        if self._state is not None and self.forked():
            raise foreign_owner_error(self._state)

    def call(self, factory: Callable[[], Awaitable[R]]) -> R:
        """Run ``factory()`` on the loop that holds the context (any task)."""
        return self._bridge.run(factory, owner=self._state)

    def close(self, exc: BaseException | None = None) -> bool:
        """Exit the context, throwing ``exc`` in; whether it was suppressed.

        Teardown is shielded: an interrupted caller waits (bounded) for it to finish.
        """
        return self._bridge.run(lambda: self._held.exit(exc), shield=True, owner=self._state)

    def close_soon(self) -> None:
        """Exit the context without waiting for it (when nothing is left there that could
        go wrong, or wait for anyone)."""
        if self._state is not None:
            self._bridge.call_soon(self._state, lambda: self._held.exit(None))

    def close_late(self, interrupt: BaseException) -> None:
        """An interrupt cut a close short, or came before it: exit with it thrown in (a
        second exit waits for the first), as a finalizer would."""
        self.close_from_finalizer(interrupt)

    def close_from_finalizer(self, exc: BaseException | None = None) -> None:
        """Exit without a blocking wait where waiting is impossible or pointless.

        For a generator closed by the garbage collector or at exit: on a thread that runs
        an event loop (the bridge's or another), teardown is started and not awaited;
        during interpreter finalization, in a fork child, or once the loop is closed,
        nothing is done (the bridge's shutdown, or the parent, tears it down). Elsewhere
        it blocks as usual (a shutdown under way admits teardown).
        """
        state = self._state
        if state is None or state.pid != os.getpid() or state.closed or sys.is_finalizing():
            return
        if asyncio._get_running_loop() is not None:
            self._bridge.call_soon(state, lambda: self._held.exit(exc))
            return
        self.close(exc)
