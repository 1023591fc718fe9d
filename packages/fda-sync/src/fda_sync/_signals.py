"""Teardown that a signal cannot cut short: handlers held back in the main thread.

Python runs signal handlers in the main thread, between two bytecodes of whatever it runs:
a ``Ctrl-C`` (or Celery's soft time limit, a ``SIGALRM`` timer) landing in a dependency's
teardown would stop it half-way. While teardown runs there, the handlers of the usual
interrupting signals are swapped for one that notes the signal; it is delivered again
once the teardown is done. A second signal of a kind already held back goes through at
once, so pressing ``Ctrl-C`` twice still stops a teardown that hangs.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["SignalsDeferred", "signals_held"]

_getsignal: Callable[[int], Any] = signal.getsignal
_setsignal: Callable[[int, Any], Any] = signal.signal
# signal.getsignal/signal of Python 3.10-3.12 map every handler through an Enum lookup that
# fails with an exception for a function: 5 us a call, 0.1 us from _signal directly.
with contextlib.suppress(ImportError):  # pragma: no branch - CPython
    _native: Any = importlib.import_module("_signal")
    _getsignal, _setsignal = _native.getsignal, _native.signal

#: Signals whose Python handlers interrupt a program: Ctrl-C, termination, timers and
#: Celery's soft time limit (SIGUSR1). Looking at all signals costs ~150 us per teardown.
_INTERRUPTING = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)

_NOTHING_HELD = contextlib.nullcontext()


def signals_held() -> contextlib.AbstractContextManager[None]:
    """``SignalsDeferred`` in the main thread (the only one where handlers run)."""
    if threading.get_ident() == threading.main_thread().ident:
        return SignalsDeferred()
    return _NOTHING_HELD


class SignalsDeferred(contextlib.AbstractContextManager[None]):
    """Hold back the Python handlers of interrupting signals until the block is done, then
    deliver the signals that came meanwhile. Main thread only (where handlers run)."""

    __slots__ = ("_handler", "_pending", "_restoring", "_saved")

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._saved: dict[int, Callable[[int, Any], Any]] = {}
        self._restoring = False
        self._handler = self._defer  # one bound method: handlers are compared by identity

    def _defer(self, signum: int, frame: Any) -> None:
        if signum in self._pending and not self._restoring:
            self._saved[signum](signum, frame)  # the second one goes through
        elif signum not in self._pending:
            self._pending.append(signum)

    def __enter__(self) -> None:
        try:
            for signum in _INTERRUPTING:
                handler = _getsignal(signum)
                if callable(handler):
                    self._saved[signum] = handler
                    _setsignal(signum, self._handler)
        except BaseException:  # a handler ran meanwhile and raised: undo, then raise
            self._restore()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()
        pending = self._pending
        if pending:  # delivered together, as the kernel would, to the handlers now installed
            signal.pthread_sigmask(signal.SIG_BLOCK, pending)
            try:
                for signum in pending:
                    signal.raise_signal(signum)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, pending)

    def _restore(self) -> None:
        """Put the handlers back, unless the block installed others; never stop half-way."""
        self._restoring = True
        error: BaseException | None = None
        for signum, handler in self._saved.items():
            while _getsignal(signum) is self._handler:
                try:
                    _setsignal(signum, handler)
                except BaseException as exc:  # a handler run meanwhile raised: go on first
                    error = error or exc
        if error is not None:
            raise error
