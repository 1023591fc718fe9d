"""The bridge: one asyncio loop per process, in a daemon thread, serving blocking callers.

Every sync call hands a coroutine *factory* to the loop (the coroutine is created on the
loop thread) and blocks on a plain lock until the loop settles the call. The design rules
of RELIABILITY.md are implemented here and nowhere else:

- one loop per process, started lazily under a lock, found without loop policies;
- fork safety: a child forgets the parent's loop (``os.register_at_fork`` plus a PID check)
  and starts its own on first use;
- no deadlocks: a blocking call from the bridge loop itself, or from any thread running an
  event loop, fails at once with an error that points to the async API;
- the waiting caller is lent to its call: ``def`` dependencies (and ``def`` bodies) run in
  the caller's thread (``fda_core._threads``), never in a pool thread it would wait for;
- cancellation: if the waiting caller is interrupted (``KeyboardInterrupt``, a signal
  handler's timeout, any ``BaseException``), the call's task is cancelled and its teardown
  awaited, bounded, before the interrupt propagates;
- ``BaseException``s raised by user code never escape a task, so they cannot stop the loop;
  if the loop thread dies anyway, every pending and future call fails fast with the cause;
- at interpreter exit, in-flight calls get a grace period, abandoned generators and held
  dependencies are torn down, then the loop is closed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import inspect
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, NoReturn, TypeVar, cast

from starlette.concurrency import run_in_threadpool

from fda_core._threads import lend, run_inline

__all__ = [
    "BridgeClosedError",
    "BridgeDeadError",
    "BridgeError",
    "Carried",
    "LoopState",
    "get_bridge",
]

T = TypeVar("T")

#: How long an interrupted caller waits for the cancelled call's teardown.
CANCEL_GRACE = 5.0
#: At exit: how long calls someone is waiting for may keep running before being cancelled.
EXIT_GRACE = 2.0
#: At exit: how long cancelled work may take to tear down.
EXIT_TEARDOWN_TIMEOUT = 5.0

_THREAD_NAME = "fda-sync-bridge"
_SIGNAL_CHECK_INTERVAL = 0.1


class BridgeError(RuntimeError):
    """The sync API cannot run this call (wrong thread, closed or dead bridge)."""


class BridgeClosedError(BridgeError):
    """The bridge was shut down (interpreter exit): no more sync calls in this process."""


class BridgeDeadError(BridgeError):
    """The bridge loop's thread died; its cause is chained."""


class Carried(Exception):
    """A ``BaseException`` from user code, carried out of a task so it cannot stop the loop.

    Unwrapped by the bridge: the caller gets the original, with its traceback.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


class _Job:
    """A function the loop hands to the waiting caller's thread, and its future."""

    __slots__ = ("abandoned", "context", "func", "future", "loop", "sent")

    def __init__(
        self,
        func: Callable[[], Any],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.func = func
        self.context = context
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.sent = False
        self.abandoned = False

    def run(self) -> None:
        """Run in the caller's thread; send the outcome to the loop."""
        if self.abandoned:
            return
        try:
            result = self.context.run(self.func)
        except BaseException as exc:
            self.send(None, exc)
        else:
            self.send(result, None)

    def send(self, result: Any, error: BaseException | None) -> None:
        if self.sent:
            return
        self.sent = True
        _call_soon_quietly(self.loop, _deliver, self.future, result, error)

    def redirect(self) -> None:
        """The caller stopped waiting before taking it: the threadpool runs it."""
        if not self.sent:
            self.sent = True
            _call_soon_quietly(self.loop, _in_threadpool, self)


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _in_threadpool(job: _Job) -> None:
    async def run() -> None:
        try:
            result = await run_in_threadpool(job.context.run, job.func)
        except BaseException as exc:  # the awaiting task gets it; this one ends quietly
            _deliver(job.future, None, exc)
        else:
            _deliver(job.future, result, None)

    task = job.loop.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


_SETTLED = object()  # the last item a call's queue receives


class _Call:
    """One blocking call: its factory, its task on the loop, and how it ended.

    Also the caller's thread, lent to the task while it waits (``WaitingThread``): the
    loop queues functions (``def`` dependencies) that the caller runs, then the end.
    """

    __slots__ = (
        "error",
        "factory",
        "items",
        "jobs",
        "lock",
        "result",
        "serving",
        "settled",
        "task",
    )

    def __init__(self, factory: Callable[[], Awaitable[Any]]) -> None:
        self.factory = factory
        self.items: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self.jobs: list[_Job] = []
        self.lock = threading.Lock()
        self.serving = True
        self.task: asyncio.Task[None] | None = None
        self.settled = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Release the waiting caller. Only ever called on the loop thread."""
        if self.settled:
            return
        self.settled = True
        self.result = result
        self.error = error
        self.items.put(_SETTLED)

    def submit(
        self, func: Callable[[], Any], context: contextvars.Context
    ) -> asyncio.Future[Any] | None:
        """Queue ``func`` for the caller's thread (on the loop thread); see ``WaitingThread``."""
        with self.lock:
            if not self.serving or self.settled:
                return None
            job = _Job(func, context, asyncio.get_running_loop())
            self.jobs.append(job)
            self.items.put(job)
        return job.future

    def abandon(self) -> None:
        """Stop waiting for the caller's thread (on the loop thread, at exit).

        The caller may be stuck in a ``def`` body that outlives the grace period: its
        functions are cancelled, and teardown goes to the threadpool.
        """
        with self.lock:
            self.serving = False
        for job in self.jobs:
            job.abandoned = job.sent = True
            job.future.cancel()

    def serve(self, timeout: float | None = None) -> bool:
        """Run queued functions until the call is settled; whether it is.

        With a ``timeout``, give up after that long. Python runs signal handlers in the
        main thread only, and one landing just before a blocking wait is handled once the
        wait ends: the main thread waits in slices, so that Ctrl-C is never held up.
        """
        items = self.items
        deadline = None if timeout is None else time.monotonic() + timeout
        main = threading.current_thread() is threading.main_thread()
        while True:
            wait = _SIGNAL_CHECK_INTERVAL if main else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = left if wait is None else min(wait, left)
            try:
                item = items.get(timeout=wait)
            except queue.Empty:
                continue
            if item is _SETTLED:
                return True
            assert isinstance(item, _Job)
            try:
                item.run()
            except BaseException as exc:  # interrupted around the function: it failed
                item.send(None, exc)
                raise

    def stop_serving(self) -> None:
        """The caller no longer waits: what it did not take goes to the threadpool."""
        with self.lock:
            self.serving = False
        while True:
            try:
                item = self.items.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Job):
                item.redirect()
            else:  # settled meanwhile: keep the marker (nobody reads it now)
                self.items.put(item)
                return


class LoopState:
    """One running bridge loop: what a process started, and what a fork child forgets."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None
        self.pending: set[_Call] = set()
        #: False once the bridge stops accepting calls (closing, closed or dead).
        self.usable = True
        self.closing = False
        self.closed = False
        self.cause: BaseException | None = None
        self.stop: asyncio.Future[None] = loop.create_future()

    def failure(self) -> BridgeError:
        """A fresh error for a call this loop can no longer serve."""
        if self.cause is not None:
            error: BridgeError = BridgeDeadError(
                "The fda-sync bridge loop died, so sync calls cannot run in this process "
                f"any more. Cause: {self.cause!r}"
            )
            error.__cause__ = self.cause
            return error
        return _closed_error()


def _closed_error() -> BridgeClosedError:
    return BridgeClosedError(
        "The fda-sync bridge is shut down (the interpreter is exiting): sync calls "
        "cannot run any more in this process."
    )


def _running_loop_error(running: asyncio.AbstractEventLoop, own: bool) -> BridgeError:
    if own:
        return BridgeError(
            "A blocking fastapi_depends_anywhere.sync call was made on the bridge's own "
            "event loop (a dependency or an async body called a sync-decorated function, "
            "a sync FastApiDepsStack, ...). Waiting here would deadlock. In async code, "
            "use the async API: `await` the function decorated with "
            "fastapi_depends_anywhere.with_fastapi_depends, or `await stack.resolve(...)`."
        )
    return BridgeError(
        f"A blocking fastapi_depends_anywhere.sync call was made from a thread that runs "
        f"an asyncio event loop ({running!r}); waiting here would freeze that loop. From "
        "async code, use the async API (`await` a function decorated with "
        "fastapi_depends_anywhere.with_fastapi_depends, `async with FastApiDepsStack()`), "
        "or run the sync function in a worker thread: "
        "`await asyncio.to_thread(func, *args)`."
    )


class Bridge:
    """Blocking access to one event loop in a daemon thread, for the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: LoopState | None = None
        self._generators: weakref.WeakSet[Generator[Any, Any, Any]] = weakref.WeakSet()
        _bridges.add(self)

    # -- the loop's life ------------------------------------------------------------

    def state(self) -> LoopState:
        """The usable loop of this process, started if needed.

        Refused (before anything starts) on a thread that runs an event loop.
        """
        self._refuse_running_loop()
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
            if not state.usable:
                _fail(state)
            return state

    def started(self) -> bool:
        """Whether this process has a bridge loop (without starting one)."""
        state = self._state
        return state is not None and state.pid == os.getpid()

    def _refuse_running_loop(self) -> None:
        running = asyncio._get_running_loop()
        if running is not None:
            state = self._state
            raise _running_loop_error(running, own=state is not None and running is state.loop)

    def _start(self) -> LoopState:
        if _at_exit or sys.is_finalizing():  # nobody would shut a new loop down
            raise _closed_error()
        state = LoopState(asyncio.new_event_loop())
        thread = threading.Thread(
            target=self._serve_thread, args=(state,), name=_THREAD_NAME, daemon=True
        )
        state.thread = thread
        thread.start()
        return state

    def forget_parent(self) -> None:
        """Drop a parent process's loop (called in a fork child). Never touch it again."""
        if self._state is not None:
            _forgotten.append(self._state)  # no __del__ of a loop another process runs
        self._state = None
        self._lock = threading.Lock()
        self._generators = weakref.WeakSet()  # the parent's: left to the garbage collector

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

    async def _drain(self, state: LoopState) -> None:
        """Shut down: grace for awaited calls, cancel the rest, close async generators.

        As ``asyncio.run`` does, tasks go first: they exit the async generators they hold
        (dependencies) properly; ``shutdown_asyncgens`` then closes abandoned ones.
        """
        current = asyncio.current_task()
        awaited = {c.task for c in list(state.pending) if c.task is not None}
        if awaited:
            await asyncio.wait(awaited, timeout=EXIT_GRACE)
        run_inline(state.loop)  # no thread may start now: teardown runs on the loop
        for call in list(state.pending):
            call.abandon()
        await _cancel_and_wait({t for t in asyncio.all_tasks() if t is not current})
        await state.loop.shutdown_asyncgens()

    def _finish(self, state: LoopState, cause: BaseException | None) -> None:
        loop = state.loop
        if cause is None and not state.closing:
            cause = BridgeError("the bridge loop stopped unexpectedly")
        state.cause = cause
        state.usable = False
        state.closed = True
        for call in list(state.pending):
            call.settle(error=_FAILED)
        if cause is not None:
            # Dead: its tasks can never finish. Keep them from being collected (and
            # logged as destroyed while pending) for the rest of the process.
            _forgotten.append(state)
            return
        try:  # orderly shutdown: close the loop
            if not _at_exit:  # at exit, the executor's threads were joined already
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def shutdown(self) -> None:
        """Stop the loop: grace for in-flight calls, teardown of what is still held, close.

        Registered with ``atexit``; safe to call when the bridge was never used.
        """
        with self._lock:
            state = self._state
            if state is None or state.pid != os.getpid() or state.closing:
                return
            state.closing = True
        if sys.is_finalizing() or state.closed:
            state.usable = False
            return
        try:
            if asyncio._get_running_loop() is state.loop:
                raise BridgeError("Bridge.shutdown() cannot be called on the bridge loop")
            # Generators still suspended are closed while calls are still accepted:
            # their teardown goes through the bridge like any call.
            for generator in list(self._generators):
                _close_quietly(generator)
        finally:
            state.usable = False
        try:
            state.loop.call_soon_threadsafe(_set_result, state.stop)
        except RuntimeError:  # closed meanwhile
            return
        assert state.thread is not None
        state.thread.join(EXIT_GRACE + 2 * EXIT_TEARDOWN_TIMEOUT)

    # -- calls ------------------------------------------------------------------------

    def run(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        shield: bool = False,
        owner: LoopState | None = None,
    ) -> T:
        """Run ``factory()`` on the loop and block until it is done; return or raise.

        ``factory`` is called on the loop thread. ``shield``: if the waiting caller is
        interrupted, let the work finish (bounded) instead of cancelling it: for teardown.
        ``owner``: the call must run on that loop (what it touches belongs to it).
        """
        if owner is not None and owner.pid != os.getpid():
            raise _foreign_owner_error(owner)
        state = self._state
        if state is None or not state.usable or state.pid != os.getpid():
            state = self.state()
        else:
            self._refuse_running_loop()
        if owner is not None and owner is not state:
            raise _foreign_owner_error(owner)
        call = _Call(factory)
        pending = state.pending
        pending.add(call)
        try:
            if not state.usable:
                _fail(state)
            # From here on an interrupt (a signal handler raising in this thread) may
            # strike at any line: whatever was scheduled is cancelled and awaited.
            try:
                state.loop.call_soon_threadsafe(
                    self._begin, state, call, contextvars.copy_context()
                )
                call.serve()
            except BaseException as exc:
                if isinstance(exc, RuntimeError) and state.loop.is_closed():
                    if not call.settled:  # closed meanwhile: nobody will run it
                        _fail(state)
                else:
                    if not shield:
                        _call_soon_quietly(state.loop, self._cancel, call)
                    try:  # its teardown may still need this thread (def dependencies)
                        call.serve(timeout=CANCEL_GRACE)
                    finally:
                        call.stop_serving()
                raise
        finally:
            pending.discard(call)
        error = call.error
        if error is not None:
            call.error = None
            if error is _FAILED:
                _fail(state)
            if isinstance(error, Carried):
                error = error.original
            try:
                raise error
            finally:
                del error
        return call.result  # type: ignore[no-any-return]

    def _begin(self, state: LoopState, call: _Call, context: contextvars.Context) -> None:
        if call.settled:  # cancelled before it started
            return
        # The task runs in the caller's context variables (copied). Where asyncio allows
        # it, the task starts at once, in this callback: a call that never has to wait
        # is done without another turn of the loop.
        call.task = _start_task(state.loop, self._execute(state, call), context)

    @staticmethod
    async def _execute(state: LoopState, call: _Call) -> None:
        try:
            with lend(call):
                result = await call.factory()
        except asyncio.CancelledError as exc:
            call.settle(error=_FAILED if state.closing else exc)
            raise
        except BaseException as exc:  # never out of the task: the loop must survive
            call.settle(error=exc)
        else:
            call.settle(result=result)

    @staticmethod
    def _cancel(call: _Call) -> None:
        if call.task is None:
            call.settle(error=asyncio.CancelledError())
        elif not call.task.done():
            call.task.cancel()

    # -- for callers that must not block -------------------------------------------------

    def call_soon(self, state: LoopState, factory: Callable[[], Awaitable[Any]]) -> None:
        """Start ``factory()`` on ``state``'s loop without waiting (teardown from a finalizer).

        Does nothing if that loop can no longer run it: another process's loop, or one
        that is closed (its shutdown tears down what is still held).
        """
        if state.pid != os.getpid() or state.closed:
            return

        def start() -> None:
            task = state.loop.create_task(_ignore_result(factory))
            _background.add(task)
            task.add_done_callback(_background.discard)

        _call_soon_quietly(state.loop, start)

    def track(self, generator: Generator[Any, Any, Any]) -> None:
        """Remember a bridged generator, to close it at exit if it is still suspended."""
        self._generators.add(generator)


_FAILED = BridgeError("the bridge could not run this call")  # marker, never raised
_background: set[asyncio.Task[Any]] = set()
_bridges: weakref.WeakSet[Bridge] = weakref.WeakSet()
_forgotten: list[LoopState] = []
_at_exit = False


async def _ignore_result(factory: Callable[[], Awaitable[Any]]) -> None:
    await factory()


async def _cancel_and_wait(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=EXIT_TEARDOWN_TIMEOUT)


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(state: LoopState) -> NoReturn:
    """Raise the error for a call this loop can no longer serve.

    Except in a daemon thread at interpreter exit: Python is about to freeze it anyway,
    and an exception would only print a traceback on every exit. It waits instead.
    """
    if _at_exit and state.cause is None and threading.current_thread().daemon:
        threading.Event().wait()
    raise state.failure()


def _start_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
) -> asyncio.Task[None]:
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)
    if sys.version_info >= (3, 11):  # pragma: no cover - version-specific
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # pragma: no cover - copies `context`


def _call_soon_quietly(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any
) -> None:
    # A closed loop has nothing left to cancel or tear down.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _close_quietly(generator: Generator[Any, Any, Any]) -> None:
    if inspect.getgeneratorstate(generator) != inspect.GEN_SUSPENDED:
        return
    try:
        generator.close()
    except Exception as exc:  # teardown error of an abandoned generator: report, go on
        report = _Unraisable(exc, "Exception ignored while closing an abandoned generator")
        report.object = generator
        sys.unraisablehook(cast("sys.UnraisableHookArgs", report))


class _Unraisable:
    def __init__(self, exc: BaseException, message: str) -> None:
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = message
        self.object: object = None


def _foreign_owner_error(owner: LoopState) -> BridgeError:
    if owner.pid != os.getpid():
        return BridgeError(
            "This object was opened in another process (before a fork): its dependencies "
            "belong to that process's event loop. Open a new one in this process."
        )
    return BridgeError(
        "This object was opened on a bridge loop that no longer runs: open a new one."
    )


def _after_fork_in_child() -> None:
    for bridge in list(_bridges):
        bridge.forget_parent()


def _shutdown_all() -> None:
    global _at_exit
    _at_exit = True
    for bridge in list(_bridges):
        bridge.shutdown()


_default = Bridge()


def get_bridge() -> Bridge:
    """The process's bridge (its loop starts on first use)."""
    return _default


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_all)
