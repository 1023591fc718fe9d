"""The caller's thread, lent to its call: it runs the call's ``def`` code while it waits.

A blocking caller only waits for its call's task on the bridge loop. The task sends it
functions (``def`` dependencies, their teardown, a ``def`` body) through a queue, and the
caller runs them and sends each outcome back (``fda_core._runtime.threads.WaitingThread``).

Every function sent is settled whatever happens to the caller: if it stops waiting (an
interrupt, a fork, interpreter exit), what it did not run is run by the loop's threadpool.
Teardown runs to its end even if ``Ctrl-C`` (or a Celery time limit) strikes meanwhile:
the signal's handler is deferred until the teardown is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import queue
import time
from collections.abc import Callable
from typing import Any

from fda_core._runtime.carry import carry
from fda_core._runtime.threads import run_unlent
from fda_sync._errors import forked_error, stop_iteration_error
from fda_sync._guards.green import allocate_lock, waiting_queue, waits_in_hub
from fda_sync._guards.imports import import_deadlock
from fda_sync._guards.signals import in_main_thread, signals_held

__all__ = ["SETTLED", "CallerThread"]

#: How long the main thread waits at a time, so that signal handlers run promptly.
SIGNAL_CHECK_INTERVAL = 0.1
#: How long other threads wait at a time before they look for an import deadlock.
IMPORT_CHECK_INTERVAL = 0.5

SETTLED = object()  # the last item a caller's queue receives
_HOLD, _RELEASE = object(), object()  # the call's teardown begins, ends

_background: set[asyncio.Task[Any]] = set()


class _Job:
    """A function sent to the caller's thread, and the future its task awaits."""

    __slots__ = ("context", "func", "future", "owner", "sent", "teardown")

    def __init__(
        self,
        owner: CallerThread,
        func: Callable[[], Any],
        context: contextvars.Context,
        teardown: bool,
    ) -> None:
        self.owner = owner
        self.func = func
        self.context = context
        self.teardown = teardown
        self.future: asyncio.Future[Any] = owner.loop.create_future()
        self.sent = False  # its outcome is on its way to the loop (caller thread only)

    def run(self) -> None:
        """Run in the caller's thread; send the outcome to the loop."""
        with signals_held() if self.teardown else contextlib.nullcontext():
            self.send(*self._call())

    def _call(self) -> tuple[Any, BaseException | None]:
        try:
            result = self.context.run(self.func)
        except StopIteration as exc:  # a Future refuses it: as a coroutine would, wrap it
            return None, stop_iteration_error(self.func, exc)
        except BaseException as exc:
            return None, exc
        return result, None

    def send(self, result: Any, error: BaseException | None) -> None:
        if self.sent:
            return
        if os.getpid() != self.owner.pid:
            raise forked_error()
        with contextlib.suppress(RuntimeError):  # a closed loop settles nothing any more
            self.owner.loop.call_soon_threadsafe(_deliver, self, result, error)
        self.sent = True


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    job.owner.outstanding.discard(job)
    future = job.future
    if future.done():
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(carry(error))


def _in_threadpool(job: _Job) -> None:
    async def run() -> None:
        try:
            func = functools.partial(job.context.run, job.func)
            result = await run_unlent(func, teardown=job.teardown)
        except BaseException as exc:  # the awaiting task gets it; this one ends quietly
            _deliver(job, None, exc)
        else:
            _deliver(job, result, None)

    task = job.owner.loop.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


class _TeardownHold:
    """While the call's task tears down, the waiting main thread holds signals back (the
    loop's side of an interrupt then: ``Bridge._cancel``)."""

    __slots__ = ("hold", "items", "teardown")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Filled from the loop's thread; a greenlet waits on it cooperatively.
        self.items: queue.SimpleQueue[_Job | object] = waiting_queue(loop)
        self.teardown = False  # the call's task tears down (set on the loop)
        self.hold: contextlib.AbstractContextManager[None] | None = None  # signals held

    def tearing_down(self, begins: bool) -> None:
        """See ``WaitingThread.tearing_down`` (on the loop thread)."""
        self.teardown = begins
        self.items.put(_HOLD if begins else _RELEASE)

    def control(self, item: object, main: bool) -> bool:
        """Act on a hold marker of the queue (in the caller's thread); whether it was one."""
        if item is _HOLD:
            if main and self.hold is None:
                self.hold = signals_held()
                self.hold.__enter__()
            return True
        if item is _RELEASE:
            self.release()
            return True
        return False

    def release(self) -> None:
        """End the hold: deliver the signals that came meanwhile."""
        hold, self.hold = self.hold, None
        if hold is not None:
            hold.__exit__(None, None, None)


class CallerThread(_TeardownHold):
    """The waiting side of one blocking call (``fda_core._runtime.threads.WaitingThread``).

    ``submit``, ``finish``, ``abandon`` and ``rescue`` run on the loop thread; ``serve``
    and ``stop_serving`` in the caller's thread.
    """

    __slots__ = ("done", "finished", "lock", "loop", "outstanding", "pid", "serving")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.loop = loop
        self.pid = os.getpid()
        self.lock = allocate_lock()  # an OS thread lock: the loop's thread takes it too
        self.serving = True
        self.done = False  # the caller saw SETTLED
        self.finished = False  # SETTLED was sent (a signal may take it from the caller)
        self.outstanding: set[_Job] = set()  # sent to the caller, not settled yet

    # -- on the loop thread ------------------------------------------------------------

    def submit(
        self, func: Callable[[], Any], context: contextvars.Context, teardown: bool
    ) -> asyncio.Future[Any] | None:
        """Queue ``func`` for the caller's thread; see ``WaitingThread.submit``."""
        with self.lock:
            if not self.serving:
                return None
            job = _Job(self, func, context, teardown)
            self.outstanding.add(job)
            self.items.put(job)
        return job.future

    def finish(self) -> None:
        """The call is settled: release the caller."""
        with self.lock:
            self.serving = False
            self.finished = True
        self.items.put(SETTLED)

    def abandon(self) -> None:
        """Stop waiting for the caller (interpreter exit: it may be stuck in a ``def``
        body past the grace period). What it was sent is cancelled."""
        with self.lock:
            self.serving = False
        for job in list(self.outstanding):
            job.sent = True  # should the caller come back, it sends nothing
            job.future.cancel()
        self.outstanding.clear()

    def rescue(self) -> None:
        """The caller stopped waiting: settle what it left. Teardown it did not run still
        runs, in the threadpool; other functions are cancelled (it was interrupted).

        Posted by the caller after its last outcome, so those are delivered first (and
        ``sent``, written by the caller, is final).
        """
        for job in list(self.outstanding):
            if job.teardown and not job.sent:
                job.sent = True
                _in_threadpool(job)
            elif job.future.done():
                self.outstanding.discard(job)
            else:
                _deliver(job, None, asyncio.CancelledError())

    # -- in the caller's thread ------------------------------------------------------------

    def serve(self, timeout: float | None = None, *, interrupted: bool = False) -> bool:
        """Run what the loop sends until the call is settled; whether it is.

        ``timeout``: give up after that long. ``interrupted``: the caller was interrupted
        and only waits for teardown: only teardown functions run, others fail at once.
        The main thread waits in slices, so that signal handlers run promptly (a greenlet
        waits in its hub, which runs them as they come).
        """
        items = self.items
        deadline = None if timeout is None else time.monotonic() + timeout
        main = in_main_thread()
        sliced = main and not waits_in_hub(items)  # (a hub runs signal handlers as they come)
        while not self.done:
            wait = SIGNAL_CHECK_INTERVAL if sliced else IMPORT_CHECK_INTERVAL
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            try:
                item = items.get(timeout=wait)
            except queue.Empty:
                deadlock = import_deadlock(getattr(self.loop, "_thread_id", None))
                if deadlock is not None:
                    raise deadlock from None
                if self.finished and items.empty():
                    # SETTLED, the last item, was got but lost: a signal handler raised
                    # as ``get`` returned it. Settled all the same.
                    self.done = True
                    self.release()
                    return True
                continue
            if item is SETTLED:
                self.done = True
                self.release()
                return True
            if self.control(item, main):
                continue
            assert isinstance(item, _Job)
            if interrupted and not item.teardown:
                item.send(None, asyncio.CancelledError())
                continue
            item.run()
        return True

    def stop_serving(self) -> None:
        """The caller no longer waits: the loop settles what it left (``rescue``).

        Not to be cut short by a signal: in the main thread, handlers wait for its end.
        """
        with signals_held():
            with self.lock:
                self.serving = False
            if os.getpid() != self.pid:
                return  # a fork child: the loop, and what it waits for, are the parent's
            with contextlib.suppress(RuntimeError):  # closed: nothing is left to settle
                self.loop.call_soon_threadsafe(self.rescue)
        self.release()
