"""One shutdown sequence for a process, whatever stops it.

Interpreter exit, a worker's shutdown hook (Celery's ``worker_process_shutdown`` and
``worker_shutdown``, gunicorn's ``worker_exit`` through ``shutdown_worker_process()``),
``stop_process_lifespan()``: each runs ``run_shutdown`` in the thread that asks, and it
is over when that returns (a pool may end its child with ``os._exit`` right after):

1. new calls are refused (``BridgeClosedError`` naming what stops them); the calls in
   flight, and the teardown of what is open, still get their round trips;
2. the calls in flight get a grace period (``EXIT_GRACE``) to finish;
3. those still running are cancelled and torn down (``EXIT_TEARDOWN_TIMEOUT``), the ones
   driven from their caller's thread from this thread, in order;
4. suspended generators and open stacks are torn down, whichever thread opened them,
   while the lifespan's resources are still open;
5. the stop hooks run: the process lifespan shuts down, once;
6. at exit, the loop drains (what is left is cancelled, lifespans still in use exit
   normally) and closes; otherwise calls are accepted again (without the process
   lifespan, which is stopped).

A shutdown that runs inside a call (a signal handler, a ``with`` block of
``resolve_fastapi_depends``) neither waits for that call nor tears it down: it ends after.
"""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar, cast

from fda_core._runtime.threads import run_inline
from fda_sync._bridge.shutdown import EXIT_GRACE, EXIT_TEARDOWN_TIMEOUT, cancel_and_wait, report
from fda_sync._bridge.state import Call, LoopState, this_process
from fda_sync._guards.in_flight import InFlight

__all__ = ["EXIT", "run_shutdown"]

T = TypeVar("T")

#: What interpreter exit tells a call refused meanwhile.
EXIT = "the interpreter exits"


class _Stopped(Protocol):
    """A bridge, as the shutdown sees it: its side of it (``BridgeShutdown``), and its
    blocking calls (``Bridge.run``)."""

    in_flight: InFlight

    def refuse_running_loop(self) -> None: ...
    def begin_stop(self, reason: str) -> LoopState | None: ...
    def wait_for_calls(self, state: LoopState | None, deadline: float) -> None: ...
    def close_held(self) -> None: ...
    def end_stop(self, state: LoopState | None, close: bool) -> None: ...
    def run(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        shield: bool = False,
        owner: LoopState | None = None,
        interrupted: list[BaseException] | None = None,
    ) -> T: ...


def run_shutdown(
    bridges: Sequence[_Stopped], reason: str, *, close: bool, hooks: bool = True
) -> None:
    """The sequence, over ``bridges`` at once (``reason``: what stops them, for the
    refusals). ``close``: close their loops (interpreter exit); ``hooks``: run the stop
    hooks (the process lifespan's shutdown)."""
    if sys.is_finalizing():  # nothing may block any more
        return
    for bridge in bridges[:1]:  # it blocks: refused in async code, as any sync call
        bridge.refuse_running_loop()
    if not this_process.stopping_lock.acquire(timeout=EXIT_GRACE + 2 * EXIT_TEARDOWN_TIMEOUT):
        return  # another shutdown is stuck: it stops what there is to stop
    try:
        _run(bridges, reason, close, hooks)
    finally:
        this_process.stopping_lock.release()


def _run(bridges: Sequence[_Stopped], reason: str, close: bool, hooks: bool) -> None:
    states: list[tuple[_Stopped, LoopState | None]] = []
    try:
        for bridge in bridges:
            states.append((bridge, bridge.begin_stop(reason)))
        deadline = time.monotonic() + EXIT_GRACE
        for bridge, state in states:
            bridge.wait_for_calls(state, deadline)
        for bridge, state in states:
            _end_late_calls(bridge, state, close)
        for bridge, _ in states:
            bridge.close_held()
        for hook in list(this_process.stop_hooks) if hooks else []:
            try:
                hook()
            except Exception as exc:
                report(exc, "Exception ignored in a shutdown hook", hook)
    finally:
        for bridge, state in states:
            bridge.end_stop(state, close)


def _end_late_calls(bridge: _Stopped, state: LoopState | None, close: bool) -> None:
    """Calls still in flight after the grace: those on the loop are cancelled, their
    teardown awaited; those driven from their caller's thread are torn down from here."""
    if state is not None:
        if close:  # at exit Python 3.12+ starts no thread: def teardown runs on the loop
            run_inline(state.loop)
        stuck = [call for call in list(state.pending) if not call.settled]
        if stuck:
            try:
                bridge.run(lambda: _cancel(stuck), owner=state)
            except Exception as exc:
                report(exc, "Exception ignored while cancelling calls at shutdown", bridge)
    bridge.in_flight.abandon()


async def _cancel(stuck: list[Call]) -> None:
    for call in stuck:
        call.abandon()  # its caller may be stuck in a def step: nothing more is sent there
    await cancel_and_wait({call.task for call in stuck if call.task is not None})


def _at_exit() -> None:
    this_process.exiting = True
    run_shutdown(cast("list[_Stopped]", list(this_process.bridges)), EXIT, close=True)


atexit.register(_at_exit)
