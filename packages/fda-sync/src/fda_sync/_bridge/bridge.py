"""Blocking calls to the bridge loop: the one way sync code reaches async code.

Every sync call hands a coroutine *factory* to the loop (the coroutine is created on the
loop thread: design rule 4) and blocks until the loop settles the call, serving
meanwhile what the call's task sends to its thread (``caller``). The task runs in a copy of
the caller's context variables (rule 8). If the waiting caller is interrupted
(``KeyboardInterrupt``, a signal handler's timeout, any ``BaseException``), the task is
cancelled and its teardown awaited, bounded (``CANCEL_GRACE``), before the interrupt
propagates (rule 6); teardown itself is never cut short. A ``BaseException`` raised by user
code never escapes the task (rule 7): the caller gets it, with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from fda_core._runtime.threads import lend
from fda_sync._bridge.sequence import run_shutdown
from fda_sync._bridge.state import Call, LoopState, fail, foreign_owner_error, this_process
from fda_sync._bridge.thread import BridgeThread
from fda_sync._errors import FAILED, Carried
from fda_sync._guards.imports import ImportDeadlockError
from fda_sync._guards.signals import signals_held

__all__ = ["CANCEL_GRACE", "Bridge", "get_bridge"]

T = TypeVar("T")

#: How long an interrupted caller waits for the cancelled call's teardown.
CANCEL_GRACE = 5.0


class Bridge(BridgeThread):
    """Blocking access to one event loop in a daemon thread, for the whole process."""

    def __init__(self) -> None:
        super().__init__()
        this_process.bridges.add(self)

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
        state = self._state_for(owner, shield)
        call = Call(factory, state.loop)
        state.pending.add(call)
        if not state.usable and not self._admits(state, shield):  # shut down meanwhile
            state.pending.discard(call)  # (shutdown fails what is pending)
            fail(state)
        completed = cancelled = posted = False
        try:
            # Teardown must at least get to the loop: a signal waits until it did.
            with signals_held() if shield else contextlib.nullcontext():
                state.loop.call_soon_threadsafe(
                    self._begin, state, call, contextvars.copy_context()
                )
                posted = True
            call.serve()
            completed = True
        except BaseException as exc:
            if os.getpid() != state.pid:
                raise  # a fork child leaving its parent's call: none of it is here
            if isinstance(exc, RuntimeError) and state.loop.is_closed():
                if not call.settled:  # closed meanwhile: nobody will run it
                    fail(state)
                raise
            if interrupted is not None:
                interrupted.append(exc)
            if not shield:
                _call_soon_quietly(state.loop, self._cancel, call)
                cancelled = True
            # Its teardown may still need this thread (def dependencies); a second
            # interrupt ends the wait. (Not the loop's thread's: it waits for this one.)
            # A teardown interrupted before it was posted (signals held then) has none.
            if not isinstance(exc, ImportDeadlockError) and (posted or not shield):
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
            _raise_from_loop(state, error)
        return call.result  # type: ignore[no-any-return]

    def _state_for(self, owner: LoopState | None, teardown: bool = False) -> LoopState:
        """The loop a call runs on: ``owner`` if given (it must still be this one).
        ``teardown``: admitted while the process shuts down (``state``)."""
        if owner is not None and owner.pid != os.getpid():
            raise foreign_owner_error(owner)
        state = self._state
        if state is None or not state.usable or state.pid != os.getpid():
            state = self.state(teardown)
        else:
            self.refuse_running_loop()
        if owner is not None and owner is not state:
            raise foreign_owner_error(owner)
        return state

    def _begin(self, state: LoopState, call: Call, context: contextvars.Context) -> None:
        if call.settled:  # cancelled before it started
            return
        # The task runs in the caller's context variables (copied). Where asyncio allows
        # it, the task starts at once, in this callback: a call that never has to wait
        # is done without another turn of the loop.
        call.task = _start_task(state.loop, self._execute(state, call), context)

    @staticmethod
    async def _execute(state: LoopState, call: Call) -> None:
        try:
            with lend(call):
                result = await call.factory()
        except asyncio.CancelledError as exc:
            call.settle(error=FAILED if state.closing else exc)
            raise
        except BaseException as exc:  # never out of the task: the loop must survive
            call.settle(error=exc)
        else:
            call.settle(result=result)

    @staticmethod
    def _cancel(call: Call) -> None:
        task = call.task
        if task is None:
            call.settle(error=asyncio.CancelledError())
        elif call.teardown:  # never cut short: the interrupt waits for its end
            call.deferred = True
        elif not task.done():
            if inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_CREATED:  # type: ignore[arg-type]
                # Not started (before 3.12, tasks start a turn later): cancelled now, it
                # ends without running ``_execute``, which would settle the call.
                call.settle(error=asyncio.CancelledError())
            task.cancel()

    def shutdown(self) -> None:
        """Shut down and close, as at exit (``sequence``); safe when never used."""
        run_shutdown([self], "Bridge.shutdown()", close=True, hooks=False)

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


_background: set[asyncio.Task[Any]] = set()


async def _ignore_result(factory: Callable[[], Awaitable[Any]]) -> None:
    await factory()


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


_default = Bridge()


def get_bridge() -> Bridge:
    """The process's bridge (its loop starts on first use)."""
    return _default


def _raise_from_loop(state: LoopState, error: BaseException) -> NoReturn:
    """Raise what a call raised on the loop, in its caller."""
    if error is FAILED:
        fail(state)
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
