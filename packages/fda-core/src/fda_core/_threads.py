"""Where ``def`` dependencies run: FastAPI's threadpool, or the thread waiting for the call.

FastAPI runs a ``def`` dependency in a worker thread so that the event loop never blocks.
A blocking caller (the sync API, in a Django view or a Celery task) is itself a thread that
only waits; running the call's ``def`` dependencies there keeps thread-bound state with the
caller (Django's database connection, thread-locals), as if it had called them itself.

The sync API lends its waiting thread to the task it waits for (``lend``); tasks that task
starts, and everything else, use the threadpool. At interpreter exit, when no thread can
start any more, a loop that still tears down runs them inline (``run_inline``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = [
    "WaitingThread",
    "contextmanager_in_thread",
    "diverted",
    "lend",
    "lent",
    "run_inline",
    "run_sync",
]

T = TypeVar("T")


class WaitingThread(Protocol):
    """A thread blocked on a call, which runs functions for it while it waits."""

    def submit(
        self, func: Callable[[], Any], context: contextvars.Context
    ) -> asyncio.Future[Any] | None:
        """Queue ``func`` (to run in ``context``); ``None`` if the thread stopped waiting.

        The future is always settled: by the thread, or by the threadpool if the thread
        stops waiting before it takes the function.
        """


_lent: contextvars.ContextVar[tuple[WaitingThread, asyncio.Task[Any] | None] | None] = (
    contextvars.ContextVar("fda_waiting_thread", default=None)
)


def lent() -> WaitingThread | None:
    """The thread waiting for the current task, if it lent itself to that task."""
    bound = _lent.get()
    if bound is None or bound[1] is not asyncio.current_task():
        return None
    return bound[0]


_inline: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def run_inline(loop: asyncio.AbstractEventLoop) -> None:
    """From now on, sync functions no waiting thread takes run on ``loop``'s own thread.

    For a loop tearing down at interpreter exit: Python 3.12+ refuses to start threads
    then, so the threadpool may have none to offer.
    """
    _inline.add(loop)


def diverted() -> bool:
    """Whether sync functions of the current task avoid FastAPI's threadpool."""
    return lent() is not None or (bool(_inline) and asyncio.get_running_loop() in _inline)


@contextmanager
def lend(thread: WaitingThread | None) -> Generator[None, None, None]:
    """Within the block, the current task's ``def`` dependencies run on ``thread``."""
    token = _lent.set(None if thread is None else (thread, asyncio.current_task()))
    try:
        yield
    finally:
        _lent.reset(token)


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a sync function on the lent waiting thread, else in FastAPI's threadpool.

    Like the threadpool, a cancelled caller still waits for a function that started.
    """
    thread = lent()
    if thread is not None:
        future = thread.submit(functools.partial(func, *args, **kwargs), contextvars.copy_context())
        if future is not None:
            return await _uncancellable(future)
    if _inline and asyncio.get_running_loop() in _inline:
        return func(*args, **kwargs)
    return await run_in_threadpool(func, *args, **kwargs)


async def _uncancellable(future: asyncio.Future[T]) -> T:
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError as exc:
            if future.done():  # the function itself was cancelled
                raise
            cancelled = exc
            continue
        except BaseException:
            if cancelled is not None:
                raise cancelled from None
            raise
        if cancelled is not None:
            raise cancelled
        return result


@asynccontextmanager
async def contextmanager_in_thread(cm: AbstractContextManager[T]) -> AsyncGenerator[T, None]:
    """FastAPI's ``contextmanager_in_threadpool``, entered and exited through ``run_sync``.

    Only where sync functions are ``diverted`` (elsewhere FastAPI's own, of the installed
    version, is used): exit runs shielded from cancellation, with whatever the block raised.
    """
    value = await run_sync(cm.__enter__)
    try:
        yield value
    except BaseException as exc:
        suppressed = False
        with anyio.CancelScope(shield=True):
            suppressed = bool(await run_sync(cm.__exit__, type(exc), exc, exc.__traceback__))
        if not suppressed:
            raise
    else:
        with anyio.CancelScope(shield=True):
            await run_sync(cm.__exit__, None, None, None)
