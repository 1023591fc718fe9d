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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import anyio
import anyio.to_thread
from anyio.lowlevel import checkpoint_if_cancelled
from starlette.concurrency import run_in_threadpool

from fda_core._runtime.carry import CarriedExit, carry_exit

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = [
    "WaitingThread",
    "context_snapshot",
    "contextmanager_in_thread",
    "diverted",
    "exiting",
    "lend",
    "lent",
    "run_inline",
    "run_sync",
    "run_unlent",
    "teardown_begins",
]

T = TypeVar("T")


class WaitingThread(Protocol):
    """A thread blocked on a call, which runs functions for it while it waits."""

    def submit(
        self, func: Callable[[], Any], context: contextvars.Context, teardown: bool
    ) -> asyncio.Future[Any] | None:
        """Queue ``func`` (to run in ``context``); ``None`` if the thread stopped waiting.

        The future is always settled: by the thread, or on the loop if the thread stops
        waiting before it runs the function. ``teardown``: the function cleans up, and
        must run to its end even if the thread is interrupted (``Ctrl-C``) meanwhile.
        """

    def tearing_down(self, begins: bool) -> None:
        """The task begins (``True``) or ends its teardown: meanwhile, an interrupt of the
        thread waits for the end instead of cancelling the task half-way."""


_lent: contextvars.ContextVar[tuple[WaitingThread, asyncio.Task[Any] | None] | None] = (
    contextvars.ContextVar("fda_waiting_thread", default=None)
)


def teardown_begins() -> WaitingThread | None:
    """Tell the thread lent to the current task, if any, that its teardown begins; it is
    returned, to be told ``tearing_down(False)`` at the end."""
    thread = lent()
    if thread is not None:
        thread.tearing_down(True)
    return thread


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


def _runs_inline() -> bool:
    return bool(_inline) and asyncio.get_running_loop() in _inline


def exiting() -> bool:
    """Whether the running loop tears down at interpreter exit (``run_inline``): it is
    about to cancel every task it runs."""
    return _runs_inline()


def diverted() -> bool:
    """Whether sync functions of the current task avoid FastAPI's threadpool."""
    return lent() is not None or _runs_inline()


def context_snapshot() -> contextvars.Context:
    """A copy of the current context variables, for code that goes on elsewhere with
    them: without the thread lent to this task (it would keep this call alive)."""
    snapshot = contextvars.copy_context()
    if snapshot.get(_lent) is not None:
        snapshot.run(_lent.set, None)
    return snapshot


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

    As with the threadpool, a function that started runs to its end: an anyio cancel
    scope waits for it (shielded), a native ``Task.cancel()`` stops waiting at once.
    """
    return await _run(functools.partial(func, *args, **kwargs), teardown=False)


async def _run(
    func: Callable[[], T], *, teardown: bool, limiter: anyio.CapacityLimiter | None = None
) -> T:
    thread = lent()
    if thread is None:
        return await run_unlent(func, teardown=teardown, limiter=limiter)
    if not teardown:  # as anyio.to_thread: nothing starts in a cancelled scope
        await checkpoint_if_cancelled()
    future = thread.submit(func, contextvars.copy_context(), teardown)
    if future is None:
        return await run_unlent(func, teardown=teardown, limiter=limiter)
    result: Any = None  # a shielded scope swallows no exception: always assigned
    with anyio.CancelScope(shield=True):
        try:
            result = await future
        except CarriedExit as carrier:
            raise carrier.original from None
    return cast("T", result)


async def run_unlent(
    func: Callable[[], T], *, teardown: bool, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Where ``func`` runs without a waiting thread: FastAPI's threadpool (teardown with
    a limiter of its own), or the loop's thread at exit (``run_inline``)."""
    if _runs_inline():
        if not teardown:
            await checkpoint_if_cancelled()
        return func()
    if teardown:
        limiter = limiter or anyio.CapacityLimiter(1)
    try:
        if limiter is None:
            return await run_in_threadpool(carry_exit(func))
        return await anyio.to_thread.run_sync(carry_exit(func), limiter=limiter)
    except CarriedExit as carrier:
        raise carrier.original from None


@asynccontextmanager
async def contextmanager_in_thread(cm: AbstractContextManager[T]) -> AsyncGenerator[T, None]:
    """FastAPI's ``contextmanager_in_threadpool``, entered and exited through ``run_sync``.

    Only where sync functions are ``diverted`` (elsewhere FastAPI's own, of the installed
    version, is used): exit runs shielded from cancellation, with whatever the block raised.
    """
    # As FastAPI: a limiter of its own for __exit__, so that teardown never waits for a
    # pool thread that the dependency's own pool (a database's) may be holding.
    exit_limiter = anyio.CapacityLimiter(1)
    entered: list[T] = []

    def enter() -> T:
        value = cm.__enter__()
        entered.append(value)  # known here even if the value never reaches the task
        return value

    try:
        value = await run_sync(enter)
    except BaseException as exc:
        if entered:  # cancelled as the value came back: exit what was entered
            await _exit(cm, exc, exit_limiter)
        raise
    try:
        yield value
    except BaseException as exc:
        if not await _exit(cm, exc, exit_limiter):
            raise
    else:
        await _exit(cm, None, exit_limiter)


async def _exit(
    cm: AbstractContextManager[Any], exc: BaseException | None, limiter: anyio.CapacityLimiter
) -> bool:
    """``cm.__exit__`` as teardown, shielded from cancellation; whether it suppressed."""
    if exc is None:
        exit_with = functools.partial(cm.__exit__, None, None, None)
    else:
        exit_with = functools.partial(cm.__exit__, type(exc), exc, exc.__traceback__)
    suppressed = False
    with anyio.CancelScope(shield=True):
        suppressed = bool(await _run(exit_with, teardown=True, limiter=limiter))
    return suppressed
