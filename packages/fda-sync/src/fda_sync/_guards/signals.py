"""Teardown that a signal cannot cut short: handlers held back in the main thread.

Python runs signal handlers in the main thread, between two bytecodes of whatever it runs:
a ``Ctrl-C`` (or Celery's soft time limit, a ``SIGALRM`` timer) landing in a dependency's
teardown would stop it half-way. While teardown runs there, the handlers of the usual
interrupting signals are swapped for one that notes the signal; it is delivered again
once the teardown is done. A second signal of a kind already held back goes through at
once, so pressing ``Ctrl-C`` twice still stops a teardown that hangs.

Every sync call that tears something down in the main thread pays for this, so it is
lean: one object for the whole process (holds nest: a teardown that makes a sync call),
handlers read and set through ``_signal``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from fda_sync._guards.green import green_threads, os_thread_ident

__all__ = ["held_call", "in_main_thread", "signals_held"]

T = TypeVar("T")

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
#: Their handlers, read by one expression written for them: ``tuple(map(getsignal, ...))``
#: costs a hold 2.5 times the instructions (the map's iteration), and every hold reads them.
_read_handlers: Callable[[], tuple[Any, ...]] = eval(  # our own text: signal numbers
    "lambda: (" + "".join(f"_getsignal({int(signum)}), " for signum in _INTERRUPTING) + ")",
    {"_getsignal": _getsignal},
)

# The main OS thread's: under gevent, every greenlet of it runs signal handlers.
# (Patched already, ``main_thread().ident`` names the main greenlet: ask from there.)
_main_ident = threading.main_thread().ident
if green_threads() and threading.current_thread() is threading.main_thread():
    _main_ident = os_thread_ident()


def _forked() -> None:
    global _main_ident
    previous, _main_ident = _main_ident, os_thread_ident()  # the child's main thread
    if previous != _main_ident:  # a hold of the parent's main thread, which is not here
        _held.forget()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forked)


def in_main_thread() -> bool:
    """Whether this is the main thread, where Python runs signal handlers."""
    return os_thread_ident() == _main_ident


class _Held(contextlib.AbstractContextManager[None]):
    """Holds the Python handlers of interrupting signals back while a block runs (nested
    blocks: until the outermost ends), then delivers the signals that came meanwhile.

    Holds are counted per holder: the main thread, or, under gevent, each greenlet of it
    (all of them run signal handlers). A signal is held back only if it lands in a holder,
    and delivered when that holder's outermost block ends; one landing in another greenlet
    goes through there at once. So a teardown in one greenlet is never cut short, and
    greenlets tearing down in turn cannot hold a signal back for good.

    A signal may land anywhere here too, even while handlers are put back: the original
    handlers stay in ``_saved`` until each one is back in place, so an interrupted restore
    leaves nothing lost (the next one finishes it) and no signal swallowed (``_defer``
    delivers at once where nothing is held).
    """

    def __init__(self) -> None:
        self._depth = 0  # blocks open, of all holders: the handlers are swapped meanwhile
        self._holders: dict[int, int] = {}  # holder -> its blocks open
        self._saved: dict[int, Callable[[int, Any], Any]] = {}
        self._pending: dict[int, list[int]] = {}  # holder -> the signals held back there
        self._restoring = False
        #: The handlers the last hold found, and which of them it swapped: handlers seldom
        #: change, so a hold reads them all in one C loop and compares them at once.
        self._seen: tuple[Any, ...] = ()
        self._held: tuple[tuple[int, Callable[[int, Any], Any]], ...] = ()

    def defer(self, signum: int, frame: Any) -> None:
        holder = threading.get_ident()
        pending = self._pending.get(holder, ())
        if self._restoring:  # delivered once this holder's block has ended
            if signum not in pending:
                self._pending.setdefault(holder, []).append(signum)
        elif holder not in self._holders or signum in pending:
            # Not held here (another greenlet, a restore cut short), or a second signal
            # of this kind.
            self._saved[signum](signum, frame)
        else:
            self._pending.setdefault(holder, []).append(signum)

    def __enter__(self) -> None:
        holder = threading.get_ident()  # (looked up: gevent may patch it after import)
        holders = self._holders
        holders[holder] = holders.get(holder, 0) + 1
        depth = self._depth
        self._depth = depth + 1
        if depth:
            return
        try:
            handlers = _read_handlers()
            if handlers != self._seen:
                self._held = tuple(
                    (signum, handler)
                    for signum, handler in zip(_INTERRUPTING, handlers, strict=True)
                    if callable(handler) and handler is not _defer
                )
                self._seen = handlers
            saved = self._saved
            for signum, handler in self._held:
                saved[signum] = handler
                _setsignal(signum, _defer)
        except BaseException:  # a handler ran meanwhile and raised: undo, then raise
            self.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """A block of this holder ends. If it is the outermost one: if no other holds,
        put the handlers back; then deliver what landed in it. Signals landing meanwhile
        are held back too (``_restoring``), even once the handlers are back."""
        holder = threading.get_ident()  # (looked up: gevent may patch it after import)
        blocks = self._holders[holder]
        if blocks > 1:
            self._holders[holder] = blocks - 1
            self._depth -= 1
            return
        self._restoring = True
        try:
            holders = self._holders
            self._depth -= holders.pop(holder, 0)
            if not holders:
                self._depth = 0
                saved = self._saved
                for signum in tuple(saved):
                    if _getsignal(signum) is _defer:
                        _setsignal(signum, saved[signum])
                    del saved[signum]
        finally:
            # No call from here to the delivery: no signal handler runs in between.
            pending = self._pending.pop(holder, None)
            self._restoring = False
        if pending:  # delivered together, as the kernel would, to the handlers in place
            signal.pthread_sigmask(signal.SIG_BLOCK, pending)
            try:
                for signum in pending:
                    signal.raise_signal(signum)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, pending)

    def forget(self) -> None:
        """A fork child of a process whose main thread held signals: that hold is not the
        child's (its thread does not exist there); put the handlers back."""
        self._depth = 0
        self._holders = {}
        self._pending = {}
        self._restoring = True
        try:
            for signum, handler in list(self._saved.items()):
                if _getsignal(signum) is _defer:
                    _setsignal(signum, handler)
            self._saved.clear()
        finally:
            self._restoring = False


_held = _Held()
_defer = _held.defer  # one bound method: handlers are compared by identity
_NOTHING_HELD = contextlib.nullcontext()


def held_call(func: Callable[..., T], /, *args: Any) -> T:
    """``func(*args)`` with interrupting signals held back, in the main thread: ``with
    signals_held(): ...`` for the teardown every sync call runs, at less cost."""
    if os_thread_ident() != _main_ident:
        return func(*args)
    _held.__enter__()
    try:
        return func(*args)
    finally:
        _held.release()


def signals_held() -> contextlib.AbstractContextManager[None]:
    """Hold interrupting signals back for a block, in the main thread (the only one where
    handlers run); elsewhere, nothing to hold."""
    if os_thread_ident() == _main_ident:
        return _held
    return _NOTHING_HELD
