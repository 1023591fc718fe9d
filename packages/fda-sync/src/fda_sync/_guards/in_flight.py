"""Sync calls driven from their caller's thread, as the process's shutdown sees them.

Such a call may hold ``def`` generator dependencies that only its caller's thread tears
down. When the process stops (interpreter exit, a worker's shutdown), the shutdown gives
the calls in flight the grace period every call gets; a call still running after it (a
thread stuck in a body) is abandoned: its teardown runs in the thread that runs the
shutdown, in order, ``CancelledError`` thrown in, as the loop tears down the calls it
runs. Until then, a thread with such a call (and the shutdown's own thread) still gets its
round trips to the loop.
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
        """Tear down what only the caller's thread would (the process stops)."""


class InFlight:
    """The calls in flight in this process (``calls``: a call discards itself when it
    ends). Each one's teardown is claimed once: by the call itself, or by the shutdown."""

    def __init__(self) -> None:
        self.calls: set[InFlightCall] = set()
        #: The thread that runs the process's shutdown: its round trips are admitted.
        self.stopper = 0

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
        """Whether the current thread drives a call in flight, or runs the shutdown."""
        ident = threading.get_ident()
        return ident == self.stopper or any(call.thread == ident for call in list(self.calls))

    def others(self) -> list[InFlightCall]:
        """The calls in flight in other threads than the shutdown's (its own, if it runs
        inside one, end after it)."""
        return [call for call in list(self.calls) if call.thread != self.stopper]

    def wait(self, deadline: float) -> None:
        """Wait until the calls of other threads end, or ``deadline`` (``time.monotonic``)."""
        while self.others() and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)

    def abandon(self) -> None:
        """Tear down the calls of other threads still in flight, from this thread."""
        for call in self.others():
            if self.claim(call, self):
                call.abandon()

    def forget(self) -> None:
        """A fork child: the parent's calls are not this process's."""
        self.calls = set()
        self.stopper = 0
