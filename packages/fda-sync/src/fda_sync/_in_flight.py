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

    def abandon(self) -> None:
        """Tear down what only the caller's thread would (interpreter exit)."""


class InFlight:
    """The calls in flight in this process. Each one's teardown is claimed once: by the
    call itself, or at exit; the call stays in flight until it ends."""

    def __init__(self) -> None:
        self._calls: set[InFlightCall] = set()
        self._unclaimed: set[InFlightCall] = set()

    def add(self, call: InFlightCall) -> None:
        call.thread = threading.get_ident()
        self._calls.add(call)
        self._unclaimed.add(call)

    def claim(self, call: InFlightCall) -> bool:
        """Whether the teardown of ``call`` is the claimer's to run (it was not claimed
        yet). Atomic: set.remove under the GIL."""
        try:
            self._unclaimed.remove(call)
        except KeyError:
            return False
        return True

    def discard(self, call: InFlightCall) -> None:
        """``call`` ended."""
        self._unclaimed.discard(call)
        self._calls.discard(call)

    def busy(self) -> bool:
        """Whether a call is in flight."""
        return bool(self._calls)

    def in_this_thread(self) -> bool:
        """Whether the current thread drives a call in flight."""
        ident = threading.get_ident()
        return any(call.thread == ident for call in list(self._calls))

    def abandon(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the calls in flight, then abandon the rest."""
        deadline = time.monotonic() + grace
        while self._calls and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        for call in list(self._calls):
            if self.claim(call):
                call.abandon()

    def forget(self) -> None:
        """A fork child: the parent's calls are not this process's."""
        self._calls = set()
        self._unclaimed = set()
