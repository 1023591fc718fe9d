"""The bridge's shutdown at interpreter exit: in-flight calls first, lifespans last.

Design rule 9: stop accepting calls, give the calls someone waits for a grace period
(``EXIT_GRACE``), close suspended generators, cancel what is left and wait
(``EXIT_TEARDOWN_TIMEOUT``) for its teardown, then exit the lifespans still in use
normally (their code after a bare ``yield`` runs), run ``shutdown_asyncgens()``, close the
loop and join its thread. Nothing blocks once ``sys.is_finalizing()`` is true. The order
is told step by step in docs/bridge.md ("Interpreter exit").
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import sys
from collections.abc import Generator
from typing import Any, cast

from fda_core._runtime.lifespan import holder_tasks, shut_down
from fda_core._runtime.threads import run_inline
from fda_sync._bridge.state import BridgeBase, Holding, LoopState, this_process
from fda_sync._errors import BridgeError
from fda_sync._guards.in_flight import POLL_INTERVAL

__all__ = ["EXIT_GRACE", "EXIT_TEARDOWN_TIMEOUT", "BridgeShutdown"]

#: At exit: how long calls someone is waiting for may keep running before being cancelled.
EXIT_GRACE = 2.0
#: At exit: how long cancelled work may take to tear down.
EXIT_TEARDOWN_TIMEOUT = 5.0


class BridgeShutdown(BridgeBase):
    """A bridge's shutdown: ``shutdown`` in the exiting thread, ``_drain`` on the loop."""

    def track(self, generator: Generator[Any, Any, Any]) -> None:
        """Remember a bridged generator, to close it at exit if it is still suspended."""
        self._generators.add(generator)

    def hold(self, holding: Holding) -> None:
        """Remember ``holding`` until ``let_go``: still open at exit, it is torn down."""
        self._holdings[holding] = None

    def let_go(self, holding: Holding) -> None:
        self._holdings.pop(holding, None)

    def shutdown(self) -> None:
        """Stop the loop: grace for in-flight calls, teardown of what is still held, close.

        Registered with ``atexit``; safe to call when the bridge was never used.
        """
        with self._lock:
            state = self._state
            loopless = state is None or state.pid != os.getpid()  # none in this process
            if loopless or (state is not None and state.closing):
                state = None  # (or shut down already)
            elif state is not None:
                state.closing = True
        if sys.is_finalizing():
            if state is not None:
                state.usable = False
            return
        if loopless:  # def dependencies need no loop: what they hold is torn down here
            self._close_held()
        stopping = state is not None and self._stop(state)
        # Calls driven from their caller's thread get the same grace (in parallel with
        # the loop's); their teardown left after it runs here.
        self.in_flight.abandon(EXIT_GRACE, EXIT_TEARDOWN_TIMEOUT if stopping else None)
        if stopping:
            assert state is not None
            assert state.thread is not None
            state.thread.join(EXIT_GRACE + 2 * EXIT_TEARDOWN_TIMEOUT)

    def _stop(self, state: LoopState) -> bool:
        """Stop accepting calls and start the loop's drain; whether it started."""
        if state.closed:
            state.usable = False
            return False
        try:
            if asyncio._get_running_loop() is state.loop:
                raise BridgeError("Bridge.shutdown() cannot be called on the bridge loop")
            self._close_held()
        finally:
            state.usable = False
        try:
            state.loop.call_soon_threadsafe(_set_result, state.stop)
        except RuntimeError:  # closed meanwhile
            return False
        return True

    def _close_held(self) -> None:
        """Generators still suspended, then what is held open (the last opened first), torn
        down while calls are still accepted: their teardown goes through the bridge like
        any call. A stack sees ``CancelledError``, as a task cancelled at exit would."""
        for generator in list(self._generators):
            _close_quietly(generator)
        for holding in reversed(list(self._holdings)):
            try:
                holding.close(asyncio.CancelledError())
            except (Exception, asyncio.CancelledError) as exc:
                _report(exc, "Exception ignored while closing a stack left open", holding)

    async def _drain(self, state: LoopState) -> None:
        """Shut down: grace for awaited calls, cancel the rest, close async generators.

        As ``asyncio.run`` does, tasks go first: they exit the async generators they hold
        (dependencies) properly; ``shutdown_asyncgens`` then closes abandoned ones.
        """
        current = asyncio.current_task()
        deadline = state.loop.time() + EXIT_GRACE
        awaited = {c.task for c in list(state.pending) if c.task is not None}
        if awaited:
            await asyncio.wait(awaited, timeout=EXIT_GRACE)
        # Calls driven from their caller's thread may still need the loop meanwhile.
        while self.in_flight.busy() and state.loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_INTERVAL)  # (set from other threads: no Event)
        run_inline(state.loop)  # no thread may start now: teardown runs on the loop
        stuck = list(state.pending)
        for call in stuck:
            call.abandon()
        await _cancel_and_wait({c.task for c in stuck if c.task is not None})
        # Calls driven from their caller's thread, still busy: the exiting thread tears
        # them down in order (their async generators' teardown comes here), then the rest.
        self.in_flight.loop_ready.set()
        teardown_deadline = state.loop.time() + EXIT_TEARDOWN_TIMEOUT
        while not self.in_flight.settled.is_set() and state.loop.time() < teardown_deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_INTERVAL)
        # Lifespans go last, and exit normally: their shutdown after a bare ``yield`` runs,
        # as when a server stops.
        lifespans = holder_tasks(state.loop)
        await _cancel_and_wait(
            {t for t in asyncio.all_tasks() if t is not current and t not in lifespans}
        )
        await shut_down(state.loop, EXIT_TEARDOWN_TIMEOUT)
        await _cancel_and_wait({t for t in asyncio.all_tasks() if t is not current})
        await state.loop.shutdown_asyncgens()


async def _cancel_and_wait(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=EXIT_TEARDOWN_TIMEOUT)


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _close_quietly(generator: Generator[Any, Any, Any]) -> None:
    if inspect.getgeneratorstate(generator) != inspect.GEN_SUSPENDED:
        return
    try:
        generator.close()
    except Exception as exc:  # teardown error of an abandoned generator: report, go on
        _report(exc, "Exception ignored while closing an abandoned generator", generator)


def _report(exc: BaseException, message: str, culprit: object) -> None:
    report = _Unraisable(exc, message)
    report.object = culprit
    sys.unraisablehook(cast("sys.UnraisableHookArgs", report))


class _Unraisable:
    def __init__(self, exc: BaseException, message: str) -> None:
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = message
        self.object: object = None


def _shutdown_all() -> None:
    this_process.exiting = True
    for bridge in list(this_process.bridges):
        bridge.shutdown()


atexit.register(_shutdown_all)
