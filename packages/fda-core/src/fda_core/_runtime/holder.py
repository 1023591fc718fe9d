"""Keep an async context open in one task of its own, whoever enters, uses and exits it.

FastAPI (0.162.7+) enters an anyio cancel scope on the request's exit stack, so a stack must
be exited by the task that entered it. Things that outlive one ``await`` — a
``FastApiDepsStack`` opened in one pytest fixture and closed in another, an async generator
finalized by the event loop, a sync body running in another thread — hand their context to a
holder task instead: it enters, runs each operation it is sent, and exits, all in one task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from fda_core._runtime.carry import CarriedExit, carry
from fda_core._runtime.threads import WaitingThread, exiting, lend, lent

__all__ = ["ClosedError", "TaskHeld"]

T = TypeVar("T")
R = TypeVar("R")

# What to run, who waits for it, and the thread the waiter lent (see ``threads``).
_Operation = tuple[Callable[[], Awaitable[Any]], "asyncio.Future[Any]", WaitingThread | None]


class _Exit:
    __slots__ = ("exc", "thread")

    def __init__(self, exc: BaseException | None, thread: WaitingThread | None = None) -> None:
        self.exc = exc
        self.thread = thread


def _settle(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(carry(exc))


def _cancelling() -> bool:
    """Whether the current task is being cancelled, rather than seeing a ``CancelledError``
    that code it runs raised (awaiting a future someone cancelled). Python 3.10 cannot
    tell, but for the loop's shutdown: only that cancels a holder without a word."""
    if exiting():
        return True
    task: Any = asyncio.current_task()
    return hasattr(task, "cancelling") and task.cancelling() > 0


def _refuse_other_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Refuse, rather than wait forever for, a holder task of another event loop."""
    if asyncio.get_running_loop() is not loop:
        raise RuntimeError(
            f"This was opened on another event loop ({loop!r}), which alone can "
            "use and close it. With pytest-asyncio, run the fixture that opened it and "
            "the tests that use it on one loop: set `asyncio_default_fixture_loop_scope "
            '= "session"` and `asyncio_default_test_loop_scope = "session"`, or mark '
            "them with the same `loop_scope`."
        )


class ClosedError(RuntimeError):
    """An operation sent to a held context that is not open (any more)."""


class _OperationCancel:
    """Cancelling the caller of ``TaskHeld.run`` cancels that operation, not the context.

    The holder task is cancelled to stop the operation it runs; this remembers that the
    cancellation was meant for the operation, so that the holder goes on afterwards.
    """

    __slots__ = ("cancelled", "current", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[bool] | None = None  # the holder task
        self.current: asyncio.Future[Any] | None = None  # the operation it runs
        self.cancelled = False

    def on_done(self, future: asyncio.Future[Any]) -> None:
        """An operation's future is done: if its caller cancelled it while it runs, cancel
        the holder task's wait for it."""
        if future.cancelled() and future is self.current and self.task is not None:
            self.cancelled = True
            self.task.cancel()

    def forget(self) -> None:
        """An operation ended otherwise than by the cancellation meant for it (it caught
        it): the holder is no longer being cancelled."""
        if self.cancelled:
            self.cancelled = False
            task: Any = asyncio.current_task()
            if hasattr(task, "uncancel") and task.cancelling() > 0:
                task.uncancel()

    def consume(self) -> bool:
        """Whether a cancellation of the holder was meant for one operation only."""
        if not self.cancelled:
            return False
        self.cancelled = False
        if exiting():  # the loop cancels every task, this one too (Python 3.10 can't tell)
            return False
        task: Any = asyncio.current_task()
        # Python 3.11+: unless the holder itself was cancelled too.
        return not (hasattr(task, "uncancel") and task.uncancel() > 0)


class TaskHeld(Generic[T]):
    """An async context manager entered, used and exited inside one dedicated task."""

    def __init__(self, context: AbstractAsyncContextManager[T]) -> None:
        self._context = context
        self._queue: asyncio.Queue[_Operation | _Exit] | None = None
        self._task: asyncio.Task[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exiting = False
        self._closed = False  # the holder takes no more operations (exit was asked for)
        self._operation = _OperationCancel()

    @property
    def task(self) -> asyncio.Task[bool] | None:
        """The holder task, once entered."""
        return self._task

    @property
    def active(self) -> bool:
        """Entered and not exiting yet."""
        return self._task is not None and not self._task.done() and not self._closed

    async def enter(self) -> T:
        """Start the holder task, enter the context there and return what it yields."""
        if self._task is not None:
            raise RuntimeError("this context was entered already")
        loop = self._loop = asyncio.get_running_loop()
        entered: asyncio.Future[T] = loop.create_future()
        self._queue = asyncio.Queue()
        self._task = self._operation.task = loop.create_task(self._hold(entered, lent()))
        try:
            return await asyncio.shield(entered)
        except BaseException as exc:
            # Cancelled (or interrupted) while entering: undo whatever got entered.
            self._task.cancel()
            await asyncio.wait([self._task])
            if isinstance(exc, CarriedExit):
                raise exc.original from None
            raise

    async def run(self, operation: Callable[[], Awaitable[R]]) -> R:
        """Run ``operation()`` inside the holder task and return its result.

        Cancelling the caller cancels the operation, not the held context.
        """
        if not self.active or self._queue is None:
            raise ClosedError("this context is not open")
        _refuse_other_loop(self._loop)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(self._operation.on_done)
        self._queue.put_nowait((operation, future, lent()))
        try:
            return await future
        except CarriedExit as carrier:
            raise carrier.original from None

    async def exit(self, exc: BaseException | None = None) -> bool:
        """Exit the context in the holder task, throwing ``exc`` into it if given.

        Returns whether the context suppressed ``exc``; raises what exiting raised.
        Exiting twice, or after the holder was cancelled, is a no-op.
        """
        task = self._task
        if task is None or self._queue is None:
            raise RuntimeError("this context was never entered")
        _refuse_other_loop(self._loop)
        if self._exiting:
            await asyncio.wait([task])
            return False
        self._exiting = True
        # Refused from now on, at once: queued behind the exit, nobody would run them.
        self._closed = True
        if not task.done():
            self._queue.put_nowait(_Exit(exc, lent()))
        # Not `await task`: a cancelled caller must not cancel the teardown half-way.
        await asyncio.wait([task])
        try:
            return task.result()
        except asyncio.CancelledError:
            return False

    async def _hold(self, entered: asyncio.Future[T], thread: WaitingThread | None) -> bool:
        # Each step lends the holder the thread of whoever waits for that step.
        assert self._queue is not None
        try:
            with lend(thread):
                value = await self._context.__aenter__()
        except BaseException as exc:  # enter() raises it; nothing is left to exit
            _settle(entered, exc)
            return False
        entered.set_result(value)
        pending: _Exit
        while True:
            try:
                item = await self._queue.get()
            except asyncio.CancelledError as cancelled:
                if self._operation.consume():
                    continue
                pending = _Exit(cancelled)  # the loop is shutting down
                break
            if isinstance(item, _Exit):
                pending = item
                break
            operation, future, thread = item
            if future.done():  # cancelled before it started
                continue
            self._operation.current = future
            try:
                with lend(thread):
                    result = await operation()
            except asyncio.CancelledError as cancelled:
                _settle(future, cancelled)
                if self._operation.consume():
                    continue
                if not _cancelling():
                    continue  # the operation's own (it awaited a cancelled future)
                pending = _Exit(cancelled)
                break
            except BaseException as exc:  # the caller gets it; the context stays open
                self._operation.forget()
                _settle(future, exc)
            else:
                self._operation.forget()
                if not future.done():
                    future.set_result(result)
            finally:
                self._operation.current = None
        self._closed = True
        _fail_queued(self._queue)
        thrown = pending.exc
        with lend(pending.thread):
            if thrown is None:
                return bool(await self._context.__aexit__(None, None, None))
            return bool(await self._context.__aexit__(type(thrown), thrown, thrown.__traceback__))


def _fail_queued(queue: asyncio.Queue[_Operation | _Exit]) -> None:
    """Operations queued behind the exit: refused, as the closed holder refuses new ones."""
    while not queue.empty():
        item = queue.get_nowait()
        if not isinstance(item, _Exit):
            _settle(item[1], ClosedError("this context was closed"))
