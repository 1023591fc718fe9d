"""F5: one shutdown sequence for a worker process, whatever stops it.

Each process holds a sync stack and a suspended generator whose dependencies use the
lifespan's pool (``fda_shutdown_app``), and writes its events to a file: both must be
torn down while the pool is open, then the lifespan shuts down, once, and nothing runs
after it. Stopped by ``stop_process_lifespan()``, by interpreter exit, by a signal handler
that ends the process with ``os._exit`` (as pools end their children), and by a real
gunicorn's ``worker_exit`` hook. (Celery's pools: ``test_celery_lifespan.py``.) Then what
happens to a call that starts while the sequence runs, and to what another thread is
still using.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

import fda_sync._api.process_lifespan
import fda_sync._bridge.sequence
from fda_sync import (
    BridgeError,
    FastApiDepsStack,
    iter_with_fastapi_depends,
    start_process_lifespan,
    stop_process_lifespan,
    with_fastapi_depends,
)
from fda_sync._errors import BridgeClosedError

from .conftest import HERE, PYTHON_FLAGS, Recorder, run_script
from .fda_shutdown_app import HELD_THEN_STOPPED, events
from .test_celery import _free_port, _stop

pytestmark = [pytest.mark.chosen_path]

PRELUDE = """
import os
from fda_core import configure
from fda_sync import shutdown_worker_process, start_process_lifespan, stop_process_lifespan
import fda_shutdown_app as held

configure(app=held.app)
"""


def run_logged(code: str, log: Path) -> list[str]:
    script = run_script(PRELUDE + code, env={**os.environ, "FDA_TEST_EVENTS": str(log)})
    assert script.stderr == ""
    assert script.returncode == 0
    return events(str(log), int(script.lines[-1]))


@pytest.mark.process
@pytest.mark.timeout(300)
def test_f5_stop_process_lifespan(tmp_path: Path) -> None:
    held = run_logged(
        """
start_process_lifespan()
held.hold()
stop_process_lifespan()
held.log("stopped")
print(os.getpid())
""",
        tmp_path / "events.log",
    )
    assert held == [*HELD_THEN_STOPPED, "stopped"]  # and nothing at exit


@pytest.mark.process
@pytest.mark.timeout(300)
def test_f5_interpreter_exit(tmp_path: Path) -> None:
    held = run_logged(
        """
start_process_lifespan(lazy=True)
held.hold()
held.log("main exits")
print(os.getpid())
""",
        tmp_path / "events.log",
    )
    assert held == [*HELD_THEN_STOPPED[:5], "main exits", *HELD_THEN_STOPPED[5:]]


@pytest.mark.process
@pytest.mark.timeout(300)
def test_f5_os_exit_right_after_the_shutdown_signal(tmp_path: Path) -> None:
    """A pre-fork server's child: its SIGTERM handler runs the shutdown (the main thread
    was sleeping), then ends the process with ``os._exit``: no ``atexit`` runs."""
    log = tmp_path / "events.log"
    code = (
        PRELUDE
        + """
import signal, sys, time

def on_term(signum, frame):
    shutdown_worker_process()
    held.log("os._exit")
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
start_process_lifespan(lazy=True)
held.hold()
print("ready", flush=True)
signal.alarm(240)  # never left waiting
while True:
    time.sleep(1)
"""
    )
    child = subprocess.Popen(
        [sys.executable, *PYTHON_FLAGS, "-c", code],
        cwd=HERE,
        env={**os.environ, "FDA_TEST_EVENTS": str(log)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=240)
    finally:
        _stop(child, signal.SIGKILL)
    assert stderr == ""
    assert child.returncode == 0
    assert events(str(log), child.pid) == [*HELD_THEN_STOPPED, "os._exit"]


@pytest.mark.process
@pytest.mark.timeout(300)
def test_f5_a_teardown_that_raises_is_reported_and_the_sequence_goes_on(tmp_path: Path) -> None:
    """At exit, a suspended generator's and a stack's ``def`` teardown raise: each error
    is reported on stderr, as an exception in ``__del__`` is (the default
    ``sys.unraisablehook``), and the lifespan still shuts down after them, once."""
    log = tmp_path / "events.log"
    script = run_script(
        PRELUDE
        + """
from collections.abc import Iterator
from typing import Annotated
from fastapi import Depends
from fda_sync import FastApiDepsStack, iter_with_fastapi_depends

def broken() -> Iterator[str]:
    try:
        yield "b"
    finally:
        held.log("teardown broken")
        raise ValueError("teardown failed")

@iter_with_fastapi_depends
def rows(*, b: Annotated[str, Depends(broken)]) -> Iterator[str]:
    yield b

start_process_lifespan()
FastApiDepsStack().start().resolve(broken)
generator = rows()
next(generator)
print(os.getpid())
""",
        env={**os.environ, "FDA_TEST_EVENTS": str(log)},
    )
    assert script.returncode == 0, script.stderr
    assert script.stderr.count("ValueError: teardown failed") == 2
    assert "Exception ignored while closing an abandoned generator: <generator" in script.stderr
    assert "Exception ignored while closing a stack left open: <" in script.stderr
    assert "unraisablehook" not in script.stderr
    assert events(str(log), int(script.lines[-1])) == [
        "lifespan startup",
        "teardown broken",
        "teardown broken",
        "lifespan shutdown",
    ]


GUNICORN_CONF = """\
import os

from fastapi_depends_anywhere.sync import shutdown_worker_process


def worker_exit(server, worker):
    shutdown_worker_process()
    with open(os.environ["FDA_TEST_EVENTS"], "a") as log:  # after it, not at exit
        log.write(f"{os.getpid()} worker_exit returned\\n")
"""


@pytest.mark.process
@pytest.mark.workers
@pytest.mark.timeout(600)
def test_f5_gunicorn_worker_exit(tmp_path: Path) -> None:
    """A real gunicorn, one sync worker serving a WSGI app that uses the sync API, the
    documented ``worker_exit`` hook: a request leaves a stack and a generator open in the
    worker; SIGTERM stops the server gracefully."""
    log, conf = tmp_path / "events.log", tmp_path / "gunicorn.conf.py"
    conf.write_text(GUNICORN_CONF)
    port = _free_port()
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as sink:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--config", str(conf)),
                *("--workers", "1", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}"),
                "fda_gunicorn_app:application",
            ],
            cwd=HERE,
            env={**os.environ, "FDA_TEST_EVENTS": str(log)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        worker = int(_get(f"http://127.0.0.1:{port}/", server, output))
        server.send_signal(signal.SIGTERM)
        server.wait(240)
    finally:
        _stop(server, signal.SIGKILL)
    text = output.read_text(errors="replace")
    assert server.returncode == 0, text[-4000:]
    assert "Traceback" not in text, text[-4000:]
    assert worker != server.pid
    assert events(str(log), worker) == [*HELD_THEN_STOPPED, "worker_exit returned"]


def _get(url: str, server: subprocess.Popen[bytes], output: Path) -> str:
    """The body of ``url`` once the server answers (bounded)."""
    deadline = time.monotonic() + 240
    while True:
        assert server.poll() is None, output.read_text(errors="replace")[-4000:]
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                return response.read().decode()
        except (TimeoutError, ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.1)


# --- What the sequence does to what is under way ------------------------------------------


@pytest.fixture
def no_process_lifespan_left() -> Iterator[None]:
    yield
    if fda_sync._api.process_lifespan._process.app is not None:
        stop_process_lifespan()


@pytest.mark.usefixtures("no_process_lifespan_left")
@pytest.mark.timeout(300)
def test_a_call_that_starts_while_the_sequence_runs_is_refused_then_served_after(
    app: FastAPI, recorder: Recorder
) -> None:
    """A sync call from another thread while the shutdown tears a stack down is refused
    with an error naming what stops the process; once it returned, calls run again,
    without the process lifespan."""
    tearing_down, refused = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_session() -> Iterator[str]:
        try:
            yield "s"
        finally:
            tearing_down.set()
            assert refused.wait(120)

    def plain() -> str:
        return "plain"

    @with_fastapi_depends(app=app)
    def call(*, p: Annotated[str, Depends(plain)]) -> str:
        return p

    def late_call() -> None:
        assert tearing_down.wait(120)
        try:
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            refused.set()

    start_process_lifespan(app)
    stack = FastApiDepsStack(app=app).start()
    stack.resolve(slow_session)
    thread = threading.Thread(target=late_call)
    thread.start()
    stop_process_lifespan()
    thread.join(120)
    assert [type(exc) for exc in errors] == [BridgeClosedError]
    assert isinstance(errors[0], BridgeError)
    assert "shutting down (stop_process_lifespan())" in str(errors[0])
    assert recorder.events == ["startup", "shutdown"]
    assert call() == "plain"  # served again, on its own


@pytest.mark.usefixtures("no_process_lifespan_left")
@pytest.mark.timeout(300)
def test_a_generator_another_thread_is_stepping_is_torn_down_after_the_grace(
    app: FastAPI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator busy in another thread when the shutdown comes: the grace waits for
    its step; past it, its dependencies are torn down anyway (``CancelledError`` thrown
    in) before the lifespan shuts down; the thread is not stopped, and its generator's
    later close does nothing more."""
    monkeypatch.setattr(fda_sync._bridge.sequence, "EXIT_GRACE", 0.2)
    stepping, release = threading.Event(), threading.Event()

    def session() -> Iterator[str]:
        recorder.add("open")
        try:
            yield "s"
        except BaseException as exc:
            recorder.add(f"saw {type(exc).__name__}")
            raise
        finally:
            recorder.add("close")

    @iter_with_fastapi_depends(app=app)
    def rows(*, s: Annotated[str, Depends(session)]) -> Iterator[str]:
        yield s
        stepping.set()
        assert release.wait(120)  # busy past the grace
        yield "after"

    start_process_lifespan(app)
    generator = rows()
    assert next(generator) == "s"
    steps: list[str] = []
    thread = threading.Thread(target=lambda: steps.append(next(generator)))
    thread.start()
    assert stepping.wait(120)
    stop_process_lifespan()
    assert recorder.events == ["startup", "open", "saw CancelledError", "close", "shutdown"]
    release.set()
    thread.join(120)
    assert steps == ["after"]
    generator.close()
    assert recorder.events[-1] == "shutdown"
