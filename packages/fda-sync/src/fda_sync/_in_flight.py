"""Sync calls driven from their caller's thread, as the bridge's shutdown sees them.

Such a call may hold ``def`` generator dependencies that only its caller's thread tears
down. At interpreter exit, the bridge gives them the grace period every call gets; a call
still running after it (a daemon thread stuck in a body) is abandoned: its ``def``
teardown runs in the exiting thread, ``CancelledError`` thrown in, as the loop tears down
the calls it runs. Until then, a thread with such a call still gets its round trips to
the loop (the set-up or teardown of its async dependencies).
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
        """Whether the current thread drives a call in flight."""
        ident = threading.get_ident()
        return any(call.thread == ident for call in list(self.calls))

    def abandon(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the calls in flight, then abandon the rest."""
        deadline = time.monotonic() + grace
        while self.calls and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        for call in list(self.calls):
            if self.claim(call, self):
                call.abandon()

    def forget(self) -> None:
        """A fork child: the parent's calls are not this process's."""
        self.calls = set()
