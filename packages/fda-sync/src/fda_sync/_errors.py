"""The sync API's errors, the messages that explain them, and the carrier that keeps a
``BaseException`` from the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = [
    "FAILED",
    "BridgeClosedError",
    "BridgeDeadError",
    "BridgeError",
    "Carried",
    "closed_error",
    "eventlet_error",
    "forked_error",
    "parent_process_error",
    "patched_after_start_error",
    "running_loop_error",
    "stop_iteration_error",
]


class BridgeError(RuntimeError):
    """The sync API cannot run this call (wrong thread, closed or dead bridge)."""


class BridgeClosedError(BridgeError):
    """The process's sync API is shut down (interpreter exit), or shuts down (a worker
    process stops): no new sync call meanwhile."""


class BridgeDeadError(BridgeError):
    """The bridge loop's thread died; its cause is chained."""


class Carried(Exception):
    """A ``BaseException`` from user code, carried out of a task so it cannot stop the loop.

    Unwrapped by the bridge: the caller gets the original, with its traceback.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


#: What a call that the bridge could not run settles with (a marker, never raised).
FAILED = BridgeError("the bridge could not run this call")


def closed_error(stopping: str | None = None) -> BridgeClosedError:
    """For a call refused at exit, or (``stopping``: what stops it) while the process's
    shutdown runs."""
    if stopping is None:
        return BridgeClosedError(
            "The fda-sync bridge is shut down (the interpreter is exiting): sync calls "
            "cannot run any more in this process."
        )
    return BridgeClosedError(
        f"This process's sync API is shutting down ({stopping}): calls in flight finish, "
        "then what the process holds is torn down and its lifespan shut down, and a call "
        "that starts meanwhile is refused. Make it before the shutdown begins, or once "
        f"{stopping} has returned (it then runs without the process lifespan)."
    )


def running_loop_error(running: asyncio.AbstractEventLoop, own: bool) -> BridgeError:
    """A blocking call refused on a thread that runs ``running`` (the bridge's ``own``)."""
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


def eventlet_error() -> BridgeError:
    """For a call that needs the bridge loop, under eventlet's monkey-patching."""
    return BridgeError(
        "fastapi_depends_anywhere.sync does not run calls that need its event loop (an "
        "async dependency or body) under eventlet's monkey-patching: eventlet is deprecated "
        "upstream. Use gevent instead (Celery `-P gevent`, gunicorn `-k gevent`), or real "
        "threads (Celery `-P threads`, gunicorn `-k gthread`). A with_fastapi_depends "
        "function whose dependencies and body are all `def` never needs the loop: it runs "
        "under eventlet too."
    )


def patched_after_start_error() -> BridgeError:
    """For a greenlet's call to a bridge loop started before gevent patched ``threading``."""
    return BridgeError(
        "The fda-sync bridge loop was started before gevent.monkey.patch_all(): it cannot "
        "serve greenlets. Patch first, at the very start of the program, before anything "
        "makes a sync call (gevent requires it anyway); Celery `-P gevent` and gunicorn "
        "`-k gevent` do so."
    )


def forked_error() -> BridgeError:
    """For a fork child coming back from the ``def`` code of its parent's call."""
    return BridgeError(
        "A `def` dependency or body forked a child process, and this is the child: its "
        "call, and the teardown of its dependencies, belong to the parent process. Fork "
        "outside sync calls, or end the child (os._exit) before it returns."
    )


def parent_process_error() -> BridgeError:
    """For an object opened before a fork (a stack, a generator), used in the child."""
    return BridgeError(
        "This object was opened in another process (before a fork): its dependencies "
        "belong to that process's event loop. Open a new one in this process."
    )


def stop_iteration_error(func: Callable[..., Any], exc: StopIteration) -> RuntimeError:
    """What a ``def`` function's ``StopIteration`` becomes, as in a coroutine: it would
    otherwise end whatever generator drives the call."""
    func = getattr(func, "func", func)  # functools.partial
    name = getattr(func, "__qualname__", repr(func))
    error = RuntimeError(f"{name}() raised StopIteration")
    error.__cause__ = exc
    return error
