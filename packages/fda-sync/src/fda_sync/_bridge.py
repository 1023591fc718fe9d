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
import importlib
import inspect
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, NoReturn, TypeVar, cast

from fda_core._lifespan import holder_tasks, shut_down
from fda_core._threads import lend, run_inline
from fda_sync._caller import CallerThread
from fda_sync._errors import BridgeClosedError, BridgeDeadError, BridgeError, Carried
from fda_sync._imports import ImportDeadlockError
from fda_sync._in_flight import POLL_INTERVAL as _POLL_INTERVAL
from fda_sync._in_flight import InFlight, InFlightCall
from fda_sync._signals import signals_held

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


class _Call(CallerThread):
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
        #: Calls driven from their caller's thread (``_driven``), which hold no task here.
        self.in_flight = InFlight()
        _bridges.add(self)

    # -- the loop's life ------------------------------------------------------------

    def state(self) -> LoopState:
        """The usable loop of this process, started if needed.

        Refused (before anything starts) on a thread that runs an event loop.
        """
        self.refuse_running_loop()
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
            if not state.usable and not self._admits(state):
                _fail(state)
            return state

    def _admits(self, state: LoopState) -> bool:
        """While the loop drains at exit, calls in flight in this thread still get their
        round trips (see ``_in_flight``)."""
        return state.closing and not state.closed and self.in_flight.in_this_thread()

    def admit(self, call: InFlightCall) -> None:
        """Count ``call``, driven from this thread without the loop, as in flight.

        Refused as a call on the loop would be: from a thread running an event loop, and
        once the interpreter exits.
        """
        self.refuse_running_loop()
        if _at_exit and not self.in_flight.in_this_thread():
            if threading.current_thread().daemon:
                threading.Event().wait()  # as ``_fail``: frozen soon anyway
            raise _closed_error()
        self.in_flight.add(call)

    def started(self) -> bool:
        """Whether this process has a bridge loop (without starting one)."""
        state = self._state
        return state is not None and state.pid == os.getpid()

    def loop_if_started(self) -> asyncio.AbstractEventLoop | None:
        """This process's bridge loop if it runs (without starting one): lifespans that
        sync code started run there."""
        state = self._state
        if state is None or not state.usable or state.pid != os.getpid():
            return None
        return state.loop

    def refuse_running_loop(self) -> None:
        """Raise ``BridgeError`` on a thread that runs an event loop: a blocking call there
        would freeze it, or deadlock on the bridge's own."""
        running = asyncio._get_running_loop()
        if running is not None:
            state = self._state
            raise _running_loop_error(running, own=state is not None and running is state.loop)

    def _start(self) -> LoopState:
        if _at_exit or sys.is_finalizing():  # nobody would shut a new loop down
            raise _closed_error()
        with _starting:  # a fork waits until the loop runs (``_before_fork``)
            for module in _LAZY_IMPORTS:  # here, not half-way on the loop thread
                importlib.import_module(module)
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
        self.in_flight.forget()

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
        deadline = state.loop.time() + EXIT_GRACE
        awaited = {c.task for c in list(state.pending) if c.task is not None}
        if awaited:
            await asyncio.wait(awaited, timeout=EXIT_GRACE)
        # Calls driven from their caller's thread may still need the loop meanwhile.
        while self.in_flight.busy() and state.loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_INTERVAL)  # (set from other threads: no Event)
        run_inline(state.loop)  # no thread may start now: teardown runs on the loop
        stuck = list(state.pending)
        for call in stuck:
            call.abandon()
        await _cancel_and_wait({c.task for c in stuck if c.task is not None})
        # Calls driven from their caller's thread, still busy: the exiting thread tears
        # them down in order (their async generators' teardown comes here), then the rest.
        self.in_flight.loop_ready.set()
        teardown_deadline = state.loop.time() + EXIT_TEARDOWN_TIMEOUT
        while not self.in_flight.settled.is_set() and state.loop.time() < teardown_deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_INTERVAL)
        # Lifespans go last, and exit normally: their shutdown after a bare ``yield`` runs,
        # as when a server stops.
        lifespans = holder_tasks(state.loop)
        await _cancel_and_wait(
            {t for t in asyncio.all_tasks() if t is not current and t not in lifespans}
        )
        await shut_down(state.loop, EXIT_TEARDOWN_TIMEOUT)
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
            if state is not None and (state.pid != os.getpid() or state.closing):
                state = None  # another process's loop, or shut down already
            elif state is not None:
                state.closing = True
        if sys.is_finalizing():
            if state is not None:
                state.usable = False
            return
        stopping = state is not None and self._stop(state)
        # Calls driven from their caller's thread get the same grace (in parallel with
        # the loop's); their teardown left after it runs here.
        self.in_flight.abandon(EXIT_GRACE, EXIT_TEARDOWN_TIMEOUT if stopping else None)
        if stopping:
            assert state is not None
            assert state.thread is not None
            state.thread.join(EXIT_GRACE + 2 * EXIT_TEARDOWN_TIMEOUT)

    def _stop(self, state: LoopState) -> bool:
        """Stop accepting calls and start the loop's drain; whether it started."""
        if state.closed:
            state.usable = False
            return False
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
            return False
        return True

    # -- calls ------------------------------------------------------------------------

    def run(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        shield: bool = False,
        owner: LoopState | None = None,
        interrupted: list[BaseException] | None = None,
    ) -> T:
        """Run ``factory()`` on the loop and block until it is done; return or raise.

        ``factory`` is called on the loop thread. ``shield``: if the waiting caller is
        interrupted, let the work finish (bounded) instead of cancelling it: for teardown.
        ``owner``: the call must run on that loop (what it touches belongs to it).
        ``interrupted``: gets the interrupt that reached the waiting caller, if one did
        (it is raised, not what the work on the loop raised: it was cancelled).
        """
        state = self._state_for(owner)
        call = _Call(factory, state.loop)
        state.pending.add(call)
        if not state.usable and not self._admits(state):  # shut down meanwhile
            state.pending.discard(call)  # (shutdown fails what is pending)
            _fail(state)
        completed = cancelled = False
        try:
            # Teardown must at least get to the loop: a signal waits until it did.
            with signals_held() if shield else contextlib.nullcontext():
                state.loop.call_soon_threadsafe(
                    self._begin, state, call, contextvars.copy_context()
                )
            call.serve()
            completed = True
        except BaseException as exc:
            if os.getpid() != state.pid:
                raise  # a fork child leaving its parent's call: none of it is here
            if isinstance(exc, RuntimeError) and state.loop.is_closed():
                if not call.settled:  # closed meanwhile: nobody will run it
                    _fail(state)
                raise
            if interrupted is not None:
                interrupted.append(exc)
            if not shield:
                _call_soon_quietly(state.loop, self._cancel, call)
                cancelled = True
            # Its teardown may still need this thread (def dependencies); a second
            # interrupt ends the wait. (Not the loop's thread's: it waits for this one.)
            if not isinstance(exc, ImportDeadlockError):
                call.serve(timeout=CANCEL_GRACE, interrupted=not shield)
            raise
        finally:
            # Also reached if a second interrupt cut the handler above short.
            if not completed and os.getpid() == state.pid:
                if not shield and not cancelled:
                    _call_soon_quietly(state.loop, self._cancel, call)
                call.stop_serving()  # whatever it left is settled on the loop
            state.pending.discard(call)
        error = call.error
        if error is not None:
            call.error = None
            if error is _FAILED:
                _fail(state)
            if isinstance(error, Carried):
                error = error.original
            context = error.__context__
            try:
                raise error
            except BaseException:
                # Its chain from the loop, not whatever exception the caller is handling.
                error.__context__ = context
                raise
            finally:
                del error, context
        return call.result  # type: ignore[no-any-return]

    def _state_for(self, owner: LoopState | None) -> LoopState:
        """The loop a call runs on: ``owner`` if given (it must still be this one)."""
        if owner is not None and owner.pid != os.getpid():
            raise foreign_owner_error(owner)
        state = self._state
        if state is None or not state.usable or state.pid != os.getpid():
            state = self.state()
        else:
            self.refuse_running_loop()
        if owner is not None and owner is not state:
            raise foreign_owner_error(owner)
        return state

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
        elif call.teardown:  # never cut short: the interrupt waits for its end
            call.deferred = True
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
#: What the loop's first calls would import on its thread (anyio imports its backend on
#: first use): a fork landing meanwhile would leave the child a half-imported module.
_LAZY_IMPORTS = ("anyio._backends._asyncio",)
#: How long a fork waits for a bridge that starts in another thread.
FORK_WAIT = 10.0
#: Held while a bridge starts: a fork waits for its end, so that a child never inherits a
#: module half-imported, or a loop half-started, by a thread it does not have.
_starting = threading.Lock()
_fork_waited: list[bool] = []
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


def foreign_owner_error(owner: LoopState) -> BridgeError:
    if owner.pid != os.getpid():
        return BridgeError(
            "This object was opened in another process (before a fork): its dependencies "
            "belong to that process's event loop. Open a new one in this process."
        )
    return BridgeError(
        "This object was opened on a bridge loop that no longer runs: open a new one."
    )


#: Forks this process descends from (cheaper to compare than ``os.getpid()``).
forks: int = 0


def _before_fork() -> None:
    _fork_waited.append(_starting.acquire(timeout=FORK_WAIT))


def _after_fork_in_parent() -> None:
    if _fork_waited.pop():
        _starting.release()


def _after_fork_in_child() -> None:
    global forks, _starting
    forks += 1
    _fork_waited.clear()
    _starting = threading.Lock()
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
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
atexit.register(_shutdown_all)
