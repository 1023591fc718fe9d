"""Green threads: the bridge under gevent's monkey-patching (Celery ``-P gevent``, gunicorn
``-k gevent``), and a clear refusal under eventlet's.

Once ``gevent.monkey.patch_all()`` ran, ``threading.Thread`` starts a greenlet in the same
OS thread, and the locks and queues of ``threading`` and ``queue`` wait for that thread's
hub. asyncio's running loop is per OS thread, so a loop run by a greenlet would seem to run
in every greenlet, and a caller blocking on a plain lock would stop every greenlet of its
thread, the one that should answer it included. So:

- the loop gets a real OS thread (``start_loop_thread``, with the originals gevent keeps),
  created there: gevent's selector then waits in that thread's own hub, which runs the
  greenlets started from the loop (anyio's worker threads, aiosqlite's connection
  threads, and the functions of the loop's default executor: ``asyncio.to_thread``), and
  the loop wakes it every ``HUB_TICK`` for what other threads hand those greenlets;
- a caller waits on a ``waiting_queue``: a real ``SimpleQueue`` whose puts, from the loop's
  thread, wake the caller's hub through ``loop.run_callback_threadsafe`` (what gevent's
  own thread pool does), so other greenlets run while one waits;
- a running loop belongs to the greenlet that runs it (``runs_here``), and the signal
  guards ask for the OS thread (``os_thread_ident``).

Without green threads, each of these is the plain primitive, at the cost of one identity
check. Eventlet (deprecated upstream) has no thread-safe way to wake its hub, short of a
pipe and a green thread reading it: calls that need the loop are refused there, with a
message naming what to use instead.
"""

from __future__ import annotations

import _queue
import _thread
import asyncio
import concurrent.futures
import importlib
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from fda_sync._errors import eventlet_error, patched_after_start_error

__all__ = [
    "Joinable",
    "allocate_lock",
    "green_threads",
    "os_thread_ident",
    "runs_here",
    "start_loop_thread",
    "waiting_queue",
    "waits_in_hub",
]

S = TypeVar("S")
T = TypeVar("T")


def _original(name: str) -> Any:
    """``_thread.<name>`` as the interpreter made it, even if a green library patched it."""
    monkey: Any = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original("_thread", name)
    patcher: Any = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return getattr(patcher.original("_thread"), name)
    return getattr(_thread, name)


#: The OS thread's identity (``threading.get_ident`` names the greenlet once patched).
os_thread_ident: Callable[[], int] = _original("get_ident")
#: A lock of the OS threads (gevent's are the hub's): for state the loop's thread shares.
allocate_lock: Callable[[], _thread.LockType] = _original("allocate_lock")
_start_new_thread: Callable[..., int] = _original("start_new_thread")
_SimpleQueue = _queue.SimpleQueue  # never patched: ``queue.SimpleQueue`` is

#: Loops started for green threads (their callers may be greenlets).
_green_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def green_threads() -> str | None:
    """The library whose green threads replaced ``threading``'s: "gevent", "eventlet", or
    None (the usual case, told by one identity check)."""
    if _thread.get_ident is os_thread_ident:
        return None
    monkey: Any = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    patcher: Any = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return "eventlet"
    return None


def runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread (this greenlet, under gevent) runs ``loop``, which asyncio says
    runs in this OS thread. A greenlet sees the running loop of another greenlet of its OS
    thread (a loop run in a greenlet, or anyio's worker greenlets on the bridge's thread):
    it runs there, it may wait for it."""
    if _thread.get_ident is os_thread_ident:
        return True
    owner = getattr(loop, "_thread_id", None)  # set by run_forever(): threading.get_ident()
    return owner is None or owner == threading.get_ident()


class Joinable(Protocol):
    """The loop's thread, as the shutdown waits for it."""

    def join(self, timeout: float | None = None) -> None: ...


class _OSThread:
    """A real OS thread started under green threads. Joined by polling with ``time.sleep``,
    which is gevent's: the hub keeps running the greenlets the shutdown waits for."""

    def __init__(self) -> None:
        self.running = allocate_lock()
        self.running.acquire()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.running.acquire(False):
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.005)
        self.running.release()


def start_loop_thread(
    prepare: Callable[[asyncio.AbstractEventLoop], S], serve: Callable[[S], object], name: str
) -> tuple[S, Joinable]:
    """A new event loop, ``prepare(loop)``, and a daemon thread running ``serve(prepared)``.

    Under gevent, the thread is an OS thread and the loop is made in it, so that gevent's
    selector (``selectors.DefaultSelector`` once patched) waits in that thread's own hub.
    Refused under eventlet.
    """
    green = green_threads()
    if green is None:
        prepared = prepare(asyncio.new_event_loop())
        thread = threading.Thread(target=_unpatched, args=(serve, prepared), name=name, daemon=True)
        thread.start()
        return prepared, thread
    if green == "eventlet":
        raise eventlet_error()
    handle = _OSThread()
    ready = allocate_lock()
    ready.acquire()
    made: list[Any] = []

    def run() -> None:
        try:
            try:
                loop = asyncio.new_event_loop()
                threading.current_thread().name = name  # as logs and tracebacks show it
                loop.set_default_executor(_GreenletExecutor())
                loop.call_soon(_tick, loop)
                _green_loops.add(loop)
                made.append(prepare(loop))
            except BaseException as exc:
                made.append(exc)
                return
            finally:
                ready.release()
            serve(made[0])
        finally:
            handle.running.release()

    _start_new_thread(run, ())
    ready.acquire()  # not a greenlet wait: the caller holds the bridge's start-up locks
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0], handle


class _GreenletExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor under gevent (``asyncio.to_thread``,
    ``loop.getaddrinfo``): each function in a greenlet of the loop's thread, where gevent
    would start the pool's threads anyway, but without worker threads for Python's exit to
    join from the main thread (Python 3.13's gevent refuses: "Cannot switch to a different
    thread")."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # the awaiting task gets it
                future.set_exception(exc)
            else:
                future.set_result(result)

        sys.modules["gevent"].spawn(run)
        return future


#: How often the loop's thread lets its hub run what other threads handed its greenlets.
HUB_TICK = 0.05


def _tick(loop: asyncio.AbstractEventLoop) -> None:
    """Wake the loop's hub now and then. Other threads hand the greenlets of the loop's
    thread work without waking that hub (gevent's queues and locks only wake their own):
    at exit, Python's main thread puts ``None`` in the work queue of each
    ``ThreadPoolExecutor`` that async code started (a lifespan's own pool) and joins its
    workers, greenlets there, which without a tick would never wake (a hang; Python 3.13's
    gevent refuses that join instead)."""
    loop.call_later(HUB_TICK, _tick, loop)


def _unpatched(serve: Callable[[S], object], prepared: S) -> None:
    """``serve(prepared)`` in a ``threading.Thread``. If gevent patched ``threading``
    meanwhile (the loop then refuses greenlets), the thread is filed under its patched
    identity too, where ``threading`` looks for it as it ends: else it prints a
    ``KeyError`` at exit."""
    try:
        serve(prepared)
    finally:
        if green_threads() == "gevent":
            active: dict[int, Any] = vars(threading)["_active"]
            active.setdefault(threading.get_ident(), active.get(os_thread_ident()))


def waiting_queue(loop: asyncio.AbstractEventLoop) -> _queue.SimpleQueue[Any]:
    """A queue that a caller of ``loop`` waits on, filled from the loop's thread.

    A plain ``SimpleQueue``, unless green threads are patched in: then a get waits in the
    caller's hub, which the loop's puts wake. Refused if ``loop`` started before gevent
    patched ``threading`` (its thread could not serve greenlets), and under eventlet.
    """
    if _thread.get_ident is os_thread_ident:
        return _SimpleQueue()
    green = green_threads()
    if green == "eventlet":
        raise eventlet_error()
    if green is None:
        return _SimpleQueue()
    if loop not in _green_loops:
        raise patched_after_start_error()
    return _GeventQueue()


def waits_in_hub(queue: _queue.SimpleQueue[Any]) -> bool:
    """Whether a get on ``queue`` (a ``waiting_queue``) waits in a gevent hub, which runs
    signal handlers as they come: such a wait need not be cut into slices for them."""
    return type(queue) is _GeventQueue


class _GeventQueue(_queue.SimpleQueue[Any]):
    """Put from any OS thread; get from a greenlet, waiting in its hub (other greenlets run)."""

    def __init__(self) -> None:
        gevent: Any = sys.modules["gevent"]  # imported: it patched ``threading``
        self._hub_loop: Any = gevent.get_hub().loop
        self._ready: Any = importlib.import_module("gevent.event").Event()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item)
        # The hub runs the callback in its own thread: gevent's Event is not for others.
        self._hub_loop.run_callback_threadsafe(self._ready.set)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        ready = self._ready
        while True:
            try:
                return super().get(False)
            except _queue.Empty:
                if not block:
                    raise
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise _queue.Empty
            # Cleared after the wait, then the queue is read again: a put whose wake-up
            # was cleared is found there.
            ready.wait(wait)
            ready.clear()
