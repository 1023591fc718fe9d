"""The bridge loop's thread: started on first use, once per process; it serves until exit.

Design rule 1: the loop is created with ``asyncio.new_event_loop()`` under a lock,
re-checked inside (64 threads calling at once start one thread), never looked up through
loop policies, and run by a daemon thread. Its root task waits for the shutdown (``stop``)
and then drains (``shutdown``). Rule 7: a ``SystemExit`` or ``KeyboardInterrupt`` that a
task of user code raised out of the loop is reported, and the loop goes on; if the loop
cannot go on anyway, every pending and later call fails fast with the cause. Rule 3: a
blocking call from a thread that runs an event loop is refused before anything starts.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading

from fda_sync._bridge.shutdown import BridgeShutdown
from fda_sync._bridge.state import LoopState, fail, this_process
from fda_sync._errors import FAILED, BridgeError, closed_error, running_loop_error
from fda_sync._guards.green import runs_here, start_loop_thread
from fda_sync._guards.in_flight import InFlightCall

__all__ = ["BridgeThread"]

THREAD_NAME = "fda-sync-bridge"
#: What the loop's first calls would import on its thread (anyio imports its backend on
#: first use): a fork landing meanwhile would leave the child a half-imported module.
LAZY_IMPORTS = ("anyio._backends._asyncio",)


class BridgeThread(BridgeShutdown):
    """A bridge's loop and the daemon thread that runs it."""

    def state(self, teardown: bool = False) -> LoopState:
        """The usable loop of this process, started if needed.

        Refused (before anything starts) on a thread that runs an event loop; while the
        process shuts down, but to the calls in flight, and to ``teardown``.
        """
        self.refuse_running_loop()
        state = self._state
        if state is not None and state.usable and state.pid == os.getpid():
            return state
        with self._lock:
            state = self._state
            if state is not None and state.pid != os.getpid():
                self.forget_parent()
                state = None
            if state is None:
                state = self._state = self._start()
            if not state.usable and not self._admits(state, teardown):
                fail(state)
            return state

    def _admits(self, state: LoopState, teardown: bool = False) -> bool:
        """While the process shuts down, calls in flight in this thread (and the
        shutdown's own) still get their round trips (see ``_guards.in_flight``); so does
        the teardown of what is open, until the loop drains at exit."""
        if not state.closing or state.closed:
            return False
        if teardown and self.stopping is not None:
            return True
        return self.in_flight.in_this_thread()

    def admit(self, call: InFlightCall) -> None:
        """Count ``call``, driven from this thread without the loop, as in flight.

        Refused as a call on the loop would be: from a thread running an event loop, and
        while the process shuts down (or once the interpreter exits).
        """
        if asyncio._get_running_loop() is not None:  # (``refuse_running_loop``, inlined)
            self.refuse_running_loop()
        stopping = self.stopping
        if (this_process.exiting or stopping) and not self.in_flight.in_this_thread():
            if this_process.exiting and threading.current_thread().daemon:
                threading.Event().wait()  # as ``fail``: frozen soon anyway
            raise closed_error(None if this_process.exiting else stopping)
        call.thread = threading.get_ident()  # ``InFlight.add``, written out
        self.in_flight.calls.add(call)

    def started(self) -> bool:
        """Whether this process has a bridge loop (without starting one)."""
        state = self._state
        return state is not None and state.pid == os.getpid()

    def loop_if_started(self) -> asyncio.AbstractEventLoop | None:
        """This process's bridge loop if it runs (without starting one): lifespans that
        sync code started run there."""
        state = self._state
        if state is None or not state.usable or state.pid != os.getpid():
            return None
        return state.loop

    def refuse_running_loop(self) -> None:
        """Raise ``BridgeError`` on a thread that runs an event loop: a blocking call there
        would freeze it, or deadlock on the bridge's own."""
        running = asyncio._get_running_loop()
        if running is not None and runs_here(running):  # (under gevent: this greenlet)
            state = self._state
            raise running_loop_error(running, own=state is not None and running is state.loop)

    def _start(self) -> LoopState:
        if this_process.exiting or sys.is_finalizing():  # nobody would shut a new loop down
            raise closed_error()
        with this_process.starting:  # a fork waits until the loop runs (``fork``)
            for module in LAZY_IMPORTS:  # here, not half-way on the loop thread
                importlib.import_module(module)
            # A daemon thread; an OS thread under gevent (``_guards.green``).
            state, thread = start_loop_thread(LoopState, self._serve_thread, THREAD_NAME)
            state.thread = thread
        return state

    def _serve_thread(self, state: LoopState) -> None:
        loop = state.loop
        cause: BaseException | None = None
        try:
            serving = loop.create_task(self._serve(state))
            while True:
                try:
                    loop.run_until_complete(serving)
                    break
                except (KeyboardInterrupt, SystemExit) as exc:
                    # A task of user code raised it (a thread would just end): report
                    # it and keep serving the other calls.
                    loop.call_exception_handler(
                        {
                            "message": "fda-sync bridge: a task raised "
                            f"{type(exc).__name__}; the bridge loop keeps running",
                            "exception": exc,
                        }
                    )
        except BaseException as exc:  # the loop cannot go on (stopped, broken selector)
            cause = exc
        finally:
            self._finish(state, cause)

    async def _serve(self, state: LoopState) -> None:
        # run_until_complete() makes this the loop's root task: anyio keeps its worker
        # threads (FastAPI's def dependencies) alive across calls instead of per call.
        await state.stop
        await self._drain(state)

    def _finish(self, state: LoopState, cause: BaseException | None) -> None:
        loop = state.loop
        if cause is None and not state.closing:
            cause = BridgeError("the bridge loop stopped unexpectedly")
        state.cause = cause
        state.usable = False
        state.closed = True
        for call in list(state.pending):
            call.settle(error=FAILED)
        if cause is not None:
            # Dead: its tasks can never finish. Keep them from being collected (and
            # logged as destroyed while pending) for the rest of the process.
            this_process.forgotten.append(state)
            return
        try:  # orderly shutdown: close the loop
            if not this_process.exiting:  # at exit, the executor's threads were joined already
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
