"""A bridge's part of the process's shutdown: refuse, wait, tear down, then close or reopen.

Design rule 9. The sequence itself, the same for every way a process stops, is
``sequence``; here is what it asks of each bridge: ``begin_stop`` (no new calls; calls in
flight and the teardown of what is open still get their round trips), ``wait_for_calls``
(the grace period, ``EXIT_GRACE``), ``close_held`` (suspended generators and open stacks
torn down, whichever thread opened them), ``end_stop`` (at exit the loop drains and
closes; otherwise calls are accepted again). Nothing blocks once ``sys.is_finalizing()``
is true. The order is told step by step in docs/bridge.md ("Shutdown").
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import threading
import time
import traceback
from collections.abc import Generator
from typing import Any, cast

from fda_core._runtime.lifespan import holder_tasks, shut_down
from fda_core._runtime.threads import run_inline
from fda_sync._bridge.state import BridgeBase, Holding, LoopState
from fda_sync._guards.in_flight import POLL_INTERVAL

__all__ = ["EXIT_GRACE", "EXIT_TEARDOWN_TIMEOUT", "BridgeShutdown", "cancel_and_wait", "report"]

#: How long calls in flight may go on once the process stops, before they are cancelled.
EXIT_GRACE = 2.0
#: How long cancelled work, or a stack's resolve under way, may take to end.
EXIT_TEARDOWN_TIMEOUT = 5.0


class BridgeShutdown(BridgeBase):
    """A bridge's side of the shutdown; ``_drain`` is the loop's last task."""

    def track(self, generator: Generator[Any, Any, Any], holding: list[Any]) -> None:
        """Remember a bridged generator, to close it at the shutdown if it is still
        suspended; ``holding`` gets what holds its dependencies once they are open (torn
        down on its own if the generator is busy in another thread past the grace)."""
        self._generators[generator] = holding

    def hold(self, holding: Holding) -> None:
        """Remember ``holding`` until ``let_go``: still open at the shutdown, it is torn
        down."""
        self._holdings[holding] = None

    def let_go(self, holding: Holding) -> None:
        self._holdings.pop(holding, None)

    def begin_stop(self, reason: str) -> LoopState | None:
        """Refuse new calls from now on (``reason``: what stops them); this process's
        loop, if one runs."""
        self.in_flight.stopper = threading.get_ident()
        self.stopping = reason
        with self._lock:
            state = self._state
            if state is None or state.pid != os.getpid() or state.closed:
                return None
            state.closing = True
            state.usable = False
            state.stopped_by = reason
            return state

    def wait_for_calls(self, state: LoopState | None, deadline: float) -> None:
        """The grace period: until the calls in flight end (but the shutdown's own, which
        end after it), or ``deadline`` (``time.monotonic``)."""
        while time.monotonic() < deadline and (
            (state is not None and state.pending) or self.in_flight.others()
        ):
            time.sleep(POLL_INTERVAL)

    def close_held(self) -> None:
        """Tear down what is held open: suspended generators (their ``finally`` runs,
        then their dependencies are torn down), a generator still busy in another thread
        (its dependencies, ``CancelledError`` thrown in: its thread is not stopped), then
        stacks, the last opened first (``CancelledError`` thrown in, as into a task
        cancelled at exit; a ``resolve()`` under way is waited for, bounded)."""
        for generator, holding in list(self._generators.items()):
            if inspect.getgeneratorstate(generator) == inspect.GEN_SUSPENDED:
                try:
                    generator.close()
                except Exception as exc:  # teardown error of an abandoned one: report it
                    report(exc, "Exception ignored while closing an abandoned generator", generator)
            elif inspect.getgeneratorstate(generator) == inspect.GEN_RUNNING and holding:
                try:
                    holding[0].close_late(asyncio.CancelledError())
                except (Exception, asyncio.CancelledError) as exc:
                    report(exc, "Exception ignored while tearing down a busy generator", generator)
        for held in reversed(list(self._holdings)):
            try:
                held.close(asyncio.CancelledError(), EXIT_TEARDOWN_TIMEOUT)
            except (Exception, asyncio.CancelledError) as exc:
                report(exc, "Exception ignored while closing a stack left open", held)

    def end_stop(self, state: LoopState | None, close: bool) -> None:
        """The shutdown is over: close the loop (``close``: drain it, then join its thread),
        or accept calls again."""
        self.stopping = None
        self.in_flight.stopper = 0
        if state is None:
            return
        if not close:
            state.closing = False
            state.usable = state.cause is None and not state.closed
            return
        try:
            state.loop.call_soon_threadsafe(_set_result, state.stop)
        except RuntimeError:  # closed meanwhile
            return
        assert state.thread is not None
        state.thread.join(2 * EXIT_TEARDOWN_TIMEOUT)

    async def _drain(self, state: LoopState) -> None:
        """The loop's last task, once the shutdown is done: what is left is cancelled
        (holders of contexts nobody closed, calls of callers stuck past the grace), then
        the lifespans still in use exit normally (their code after a bare ``yield`` runs,
        as when a server stops), then ``shutdown_asyncgens``."""
        current = asyncio.current_task()
        run_inline(state.loop)  # no thread may start now: teardown runs on the loop
        for call in list(state.pending):
            call.abandon()
        lifespans = holder_tasks(state.loop)
        await cancel_and_wait(
            {t for t in asyncio.all_tasks() if t is not current and t not in lifespans}
        )
        await shut_down(state.loop, EXIT_TEARDOWN_TIMEOUT)
        await cancel_and_wait({t for t in asyncio.all_tasks() if t is not current})
        await state.loop.shutdown_asyncgens()


async def cancel_and_wait(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=EXIT_TEARDOWN_TIMEOUT)


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def report(exc: BaseException, message: str, culprit: object) -> None:
    """Report ``exc`` as unraisable (as an exception in ``__del__`` is) and go on."""
    unraisable = _Unraisable(exc, message)
    unraisable.object = culprit
    try:
        sys.unraisablehook(cast("sys.UnraisableHookArgs", unraisable))
    except TypeError:  # the default hook takes only the interpreter's own arguments
        print(f"{message}: {culprit!r}", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


class _Unraisable:
    def __init__(self, exc: BaseException, message: str) -> None:
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = message
        self.object: object = None
