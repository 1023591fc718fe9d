"""The app's lifespan for the life of a process: started once, on the bridge loop.

A server starts its app once per worker process; a Celery worker or a Django process
that calls the sync API should too, not once per task. The process lifespan holds the
app's running lifespan (``fda_core._runtime.lifespan``, shared per loop) open on the bridge loop
until it is stopped, so every sync call of the process, and every ``with_fastapi_lifecycle``
or stack inside it, sees its state instead of starting its own.

Fork-aware: a child forgets the lifespan its parent started (its sockets are the
parent's) and starts its own at its first call. Stopped explicitly, by a worker's
shutdown hook, or at interpreter exit, always by the process's one shutdown sequence
(``fda_sync._bridge.sequence``): calls in flight first, then what the process holds
(generators, stacks), then the lifespan's shutdown as a normal exit of its context.
"""

from __future__ import annotations

import os
import sys
import threading

from fastapi import FastAPI

from fda_core._config import resolve_app
from fda_core._override import without_overrides
from fda_core._runtime.lifespan import RunningLifespan, acquire, shut_down_now
from fda_sync._bridge import LoopState, get_bridge, this_process
from fda_sync._bridge.sequence import run_shutdown
from fda_sync._bridge.shutdown import EXIT_TEARDOWN_TIMEOUT

__all__ = [
    "before_call",
    "shutdown_worker_process",
    "start_lazily_unless_configured",
    "start_process_lifespan",
    "stop_if_running",
    "stop_process_lifespan",
]


class _Attempt:
    """One start-up in progress: the calls that arrive meanwhile wait for its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.get_ident()


class _ProcessLifespan:
    """What this process configured, and the lifespan it runs (never its parent's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.app: FastAPI | None = None  # configured: started, or to start on first call
        self.owner = 0  # the PID that configured it (a fork child inherits it, lazily)
        self.running: RunningLifespan | None = None  # in use in this process
        self.loop_state: LoopState | None = None
        self.attempt: _Attempt | None = None

    def forget_parent(self) -> None:
        """In a fork child: keep what was configured, never touch what the parent runs."""
        self.lock = threading.Lock()
        self.running = None
        self.loop_state = None
        self.attempt = None

    def start(self, app: FastAPI) -> None:
        """Start now (blocking), or wait for a start-up already under way; raise its error."""
        get_bridge().refuse_running_loop()  # this caller's mistake, not one to share
        while True:
            with self.lock:
                if self.running is not None or self.app is not app:
                    return  # started meanwhile, or stopped
                attempt = self.attempt
                if attempt is None:
                    attempt = self.attempt = _Attempt()
                    mine = True
                elif attempt.thread == threading.get_ident():
                    return  # a call the start-up itself makes: it cannot wait for itself
                else:
                    mine = False
            if mine:
                self._run(app, attempt)
                return
            attempt.done.wait()
            if isinstance(attempt.error, Exception):
                raise attempt.error  # the start-up's own error, to every call waiting
            # Interrupted (KeyboardInterrupt...) rather than failed: try again.

    def _run(self, app: FastAPI, attempt: _Attempt) -> None:
        bridge = get_bridge()
        try:
            # Outside the caller's override() blocks: the lifespan (its startup, its
            # background tasks, its shutdown) outlives them.
            state = bridge.state()
            running, _ = without_overrides(lambda: bridge.run(lambda: acquire(app), owner=state))
        except BaseException as exc:
            attempt.error = exc
            if isinstance(exc, Exception) and sys.version_info >= (3, 11):
                exc.add_note(
                    "(raised by the startup of the app's lifespan for the whole process, "
                    "start_process_lifespan(): the next start, or lazily the next sync "
                    "call, tries again)"
                )
            raise
        else:
            with self.lock:
                self.running, self.loop_state = running, state
        finally:
            with self.lock:
                self.attempt = None
            attempt.done.set()

    def shut_down(self) -> None:
        """Forget what was configured; shut the running lifespan down, if any, whoever
        still uses it (a stop hook of the shutdown: what used it is torn down)."""
        with self.lock:
            self.app = None
            attempt = self.attempt
        if attempt is not None:
            attempt.done.wait()  # the start-up under way: stop what it started
        with self.lock:
            running, state = self.running, self.loop_state
            self.running = self.loop_state = None
        if running is not None and state is not None and state.pid == os.getpid():
            get_bridge().run(
                lambda: shut_down_now(running, EXIT_TEARDOWN_TIMEOUT), shield=True, owner=state
            )


_process = _ProcessLifespan()


def start_process_lifespan(app: FastAPI | None = None, *, lazy: bool = False) -> None:
    """Run the app's lifespan for the life of this process, on the bridge loop.

    Every sync call of this process (and every ``with_fastapi_lifecycle`` call or
    ``FastApiDepsStack`` inside it) then shares it instead of starting its own: its
    state is ``request.state``. With ``lazy=True`` it starts at the first sync call
    instead of now (where startup is slow or must not run in a parent process). A fork
    child never uses its parent's: it starts its own at its first call. Stopped by
    ``stop_process_lifespan()``, or at interpreter exit. The app is looked up now if
    none is given.
    """
    target = resolve_app(app)
    pid = os.getpid()
    with _process.lock:
        if _process.app is not None and (_process.owner == pid or _process.running is not None):
            raise RuntimeError(
                "The process lifespan was started already in this process "
                f"(app {_process.app.title!r}). Call stop_process_lifespan() first to "
                "start it again, or remove the second start_process_lifespan() call."
            )
        _process.app, _process.owner = target, pid
    if lazy:
        return
    try:
        _process.start(target)
    except BaseException:
        with _process.lock:
            if _process.app is target and _process.running is None:
                _process.app = None  # a failed start leaves nothing: call it again
        raise


def start_lazily_unless_configured(app: FastAPI | None) -> None:
    """``start_process_lifespan(app, lazy=True)`` for a worker's start hook, unless this
    process configured the same app's already (a Django ``AppConfig.ready()``, say)."""
    target = resolve_app(app)
    with _process.lock:
        if _process.app is target and (
            _process.owner == os.getpid() or _process.running is not None
        ):
            return
    start_process_lifespan(target, lazy=True)


def stop_process_lifespan() -> None:
    """Stop this process's lifespan, as its process would stop (``shutdown_worker_process``):
    calls in flight finish (2 s at most), then the generators and stacks still open are
    torn down, then the lifespan shuts down. The process goes on: later sync calls run
    without it.

    Stops a lazy one that never started, too (it will not start). Raises if none was
    started in this process.
    """
    with _process.lock:
        configured = _process.app is not None
    if not configured:
        raise RuntimeError(
            "No process lifespan runs in this process: start_process_lifespan() was not "
            "called, or the lifespan was stopped already."
        )
    _shut_down("stop_process_lifespan()")


def shutdown_worker_process() -> None:
    """Tear down what the sync API holds in this process, in order, as interpreter exit
    would: for a worker that a server or a pool ends before its interpreter exits
    (gunicorn's ``worker_exit`` hook, a pool that ends its children with ``os._exit``).

    New sync calls are refused meanwhile (``BridgeClosedError``); calls in flight finish
    (2 s at most, then they are cancelled and torn down); suspended generators and open
    stacks are torn down, whichever thread opened them; then the process lifespan shuts
    down, once. When it returns, nothing of the sync API is left open, and later calls
    run (without the process lifespan). Safe to call when nothing was used.
    """
    _shut_down("shutdown_worker_process()")


def stop_if_running(reason: str = "the worker process stops") -> None:
    """``shutdown_worker_process()`` for the shutdown hooks of workers (Celery's, and
    other task queues'), where no process lifespan may have been started: the one entry
    point a hook calls when its process stops. ``reason`` names it in the errors of calls
    refused meanwhile."""
    _shut_down(reason)


def _shut_down(reason: str) -> None:
    run_shutdown([get_bridge()], reason, close=False)


def before_call() -> None:
    """Called at the start of every sync call: starts a configured process lifespan that
    does not run in this process yet (lazily, or in a fork child)."""
    app = _process.app
    if app is None or _process.running is not None:
        return
    _process.start(app)


# The shutdown sequence runs it once what the process holds is torn down (interpreter
# exit, a hook, stop_process_lifespan()): no lazy start from then on.
this_process.stop_hooks.append(_process.shut_down)
if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_process.forget_parent)
