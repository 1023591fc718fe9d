"""What a bridge holds, and what the process tells every bridge.

``LoopState`` is one running loop: what a process started, and what a fork child forgets.
``Call`` is one blocking call on it. ``BridgeBase`` is a bridge's own state (its start-up
lock, its loop, the generators it closes at exit, the calls driven from their callers'
threads); ``this_process`` what the fork and exit hooks change for all bridges at once.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NoReturn, Protocol

from fda_sync._bridge.caller import CallerThread
from fda_sync._errors import (
    BridgeDeadError,
    BridgeError,
    closed_error,
    parent_process_error,
)
from fda_sync._guards.green import Joinable
from fda_sync._guards.in_flight import InFlight

__all__ = [
    "BridgeBase",
    "Call",
    "Holding",
    "LoopState",
    "fail",
    "foreign_owner_error",
    "this_process",
]


class Call(CallerThread):
    """One blocking call: its factory, its task on the loop, and how it ended.

    It is also the caller's thread, lent to the task while it waits (``CallerThread``).
    """

    __slots__ = ("deferred", "error", "factory", "result", "settled", "task")

    def __init__(self, factory: Callable[[], Awaitable[Any]], loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.factory = factory
        self.task: asyncio.Task[None] | None = None
        self.settled = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.deferred = False  # cancelled during teardown: cancel once it ends

    def tearing_down(self, begins: bool) -> None:
        super().tearing_down(begins)
        if not begins and self.deferred and self.task is not None:
            self.deferred = False
            self.task.cancel()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Release the waiting caller. Only ever called on the loop thread."""
        if self.settled:
            return
        self.settled = True
        self.result = result
        self.error = error
        self.finish()


class LoopState:
    """One running bridge loop: what a process started, and what a fork child forgets."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self.thread: Joinable | None = None
        self.pending: set[Call] = set()
        #: False once the bridge stops accepting calls (closing, closed or dead).
        self.usable = True
        self.closing = False
        self.closed = False
        self.cause: BaseException | None = None
        self.stop: asyncio.Future[None] = loop.create_future()
        #: What last stopped this loop's calls (``BridgeBase.stopping``).
        self.stopped_by: str | None = None

    def failure(self) -> BridgeError:
        """A fresh error for a call this loop can no longer serve."""
        if self.cause is not None:
            error: BridgeError = BridgeDeadError(
                "The fda-sync bridge loop died, so sync calls cannot run in this process "
                f"any more. Cause: {self.cause!r}"
            )
            error.__cause__ = self.cause
            return error
        return closed_error(None if this_process.exiting else self.stopped_by)


def foreign_owner_error(owner: LoopState) -> BridgeError:
    """For an object opened on ``owner``, used where that loop does not run."""
    if owner.pid != os.getpid():
        return parent_process_error()
    return BridgeError(
        "This object was opened on a bridge loop that no longer runs: open a new one."
    )


class Holding(Protocol):
    """Something held open across blocking calls until it is closed (a sync stack)."""

    def close(self, exc: BaseException | None = None, wait: float | None = None) -> None:
        """Tear down, ``exc`` thrown in; ``wait``: for a use under way, at most that long."""


class _Hooked(Protocol):
    """A bridge, as the fork and exit hooks see it."""

    def forget_parent(self) -> None: ...
    def shutdown(self) -> None: ...


class _Process:
    """What this process tells its bridges (``fork`` and ``shutdown`` set it)."""

    __slots__ = (
        "bridges",
        "exiting",
        "forgotten",
        "forks",
        "kept",
        "starting",
        "stop_hooks",
        "stopping_lock",
    )

    def __init__(self) -> None:
        #: Every bridge of the process: the fork and exit hooks reach them all.
        self.bridges: weakref.WeakSet[_Hooked] = weakref.WeakSet()
        #: Loops never to touch nor collect: a fork parent's, a dead loop with its tasks.
        self.forgotten: list[LoopState] = []
        #: What a fork parent held open (stacks): never torn down, nor collected, here.
        self.kept: list[object] = []
        #: The interpreter exits: the bridges' ``atexit`` hook runs, or ran.
        self.exiting = False
        #: Forks this process descends from (cheaper to compare than ``os.getpid()``).
        self.forks = 0
        #: Held while a bridge starts: a fork waits for its end, so that a child never
        #: inherits a module half-imported, or a loop half-started, by a thread it does
        #: not have.
        self.starting = threading.Lock()
        #: One shutdown at a time.
        self.stopping_lock = threading.Lock()
        #: Run by the shutdown once what the process holds is torn down, before the
        #: loop closes: what the layers above shut down (the process lifespan).
        self.stop_hooks: list[Callable[[], None]] = []


this_process = _Process()


def fail(state: LoopState) -> NoReturn:
    """Raise the error for a call this loop can no longer serve.

    Except in a daemon thread at interpreter exit: Python is about to freeze it anyway,
    and an exception would only print a traceback on every exit. It waits instead.
    """
    if this_process.exiting and state.cause is None and threading.current_thread().daemon:
        threading.Event().wait()
    raise state.failure()


class BridgeBase:
    """A bridge's own state: its start-up lock, its loop, what it closes at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: LoopState | None = None
        #: Bridged generators, and what holds each one's dependencies once open.
        self._generators: weakref.WeakKeyDictionary[Generator[Any, Any, Any], list[Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: What stops this bridge's calls while a shutdown runs (``None``: nothing).
        self.stopping: str | None = None
        #: What is held open until closed (sync stacks), in the order it was opened.
        self._holdings: dict[Holding, None] = {}
        #: Calls driven from their caller's thread (``_caller_path``), with no task here.
        self.in_flight = InFlight()

    def forget_parent(self) -> None:
        """Drop a parent process's loop (called in a fork child). Never touch it again."""
        if self._state is not None:
            this_process.forgotten.append(self._state)  # no __del__ of a loop another process runs
        self._state = None
        self._lock = threading.Lock()
        self._generators = weakref.WeakKeyDictionary()  # the parent's: left to the collector
        self.stopping = None
        this_process.kept.append(self._holdings)
        self._holdings = {}
        self.in_flight.forget()
