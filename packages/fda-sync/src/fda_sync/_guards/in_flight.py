"""Sync calls driven from their caller's thread, as the bridge's shutdown sees them.

Such a call may hold ``def`` generator dependencies that only its caller's thread tears
down. At interpreter exit, the bridge gives them the grace period every call gets; a call
still running after it (a daemon thread stuck in a body) is abandoned: its teardown runs in
the exiting thread, in order, ``CancelledError`` thrown in, as the loop tears down the
calls it runs. Its async generators are torn down on the loop, which waits for that before
it cancels what is left. Until then, a thread with such a call (or the exiting thread, for
the calls it abandons) still gets its round trips to the loop.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["POLL_INTERVAL", "InFlight", "InFlightCall"]

#: How often shutdown looks whether the calls in flight have ended.
POLL_INTERVAL = 0.01


class InFlightCall(Protocol):
    """A call driven from its caller's thread."""

    thread: int  # the ident of that thread
    claims: list[object]  # who claimed its teardown (the call itself, or ``InFlight``)

    def abandon(self) -> None:
        """Tear down what only the caller's thread would (interpreter exit)."""


class InFlight:
    """The calls in flight in this process (``calls``: a call discards itself when it
    ends). Each one's teardown is claimed once: by the call itself, or at exit."""

    def __init__(self) -> None:
        self.calls: set[InFlightCall] = set()
        #: At exit: the loop let go of what callers were stuck on; teardown may begin.
        self.loop_ready = threading.Event()
        #: At exit: the calls still in flight are torn down.
        self.settled = threading.Event()
        self._abandoning = 0  # the thread tearing abandoned calls down

    def add(self, call: InFlightCall) -> None:
        call.thread = threading.get_ident()
        self.calls.add(call)

    @staticmethod
    def claim(call: InFlightCall, claimer: object) -> bool:
        """Whether the teardown of ``call`` is ``claimer``'s to run: list.append is
        atomic, so the first claim is the one at index 0."""
        call.claims.append(claimer)
        return call.claims[0] is claimer

    def busy(self) -> bool:
        """Whether a call is in flight."""
        return bool(self.calls)

    def in_this_thread(self) -> bool:
        """Whether the current thread drives a call in flight, or abandons them."""
        ident = threading.get_ident()
        return ident == self._abandoning or any(call.thread == ident for call in list(self.calls))

    def abandon(self, grace: float, loop_timeout: float | None) -> None:
        """Wait up to ``grace`` seconds for the calls in flight, then abandon the rest.

        ``loop_timeout``: if the bridge loop runs, how long to wait for it to let go of
        what the callers were stuck on (``loop_ready``), so that their teardown's round
        trips are not queued behind it.
        """
        deadline = time.monotonic() + grace
        while self.calls and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        try:
            if self.calls and loop_timeout is not None:
                self.loop_ready.wait(loop_timeout)
            self._abandoning = threading.get_ident()
            for call in list(self.calls):
                if self.claim(call, self):
                    call.abandon()
        finally:
            self._abandoning = 0
            self.settled.set()

    def forget(self) -> None:
        """A fork child: the parent's calls are not this process's."""
        self.calls = set()
        self.loop_ready = threading.Event()
        self.settled = threading.Event()
        self._abandoning = 0
