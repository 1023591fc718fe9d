"""Fixtures for the sync API: a real app with a lifespan, yield dependencies that record
their life, a private bridge, and a runner for scripts that must run in a process of their
own (fork, interpreter exit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from fda_sync._bridge import Bridge

HERE = Path(__file__).parent

# Warnings as errors in the child too (V1); the only exception is the warning 3.12+ gives
# for fork() in a process with threads, which is exactly what the fork tests do.
PYTHON_FLAGS = (
    "-X",
    "faulthandler",
    "-W",
    "error",
    "-W",
    "ignore:This process:DeprecationWarning",
)


@dataclass
class Script:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


#: Where sync calls run in this test (``path``): every sync test runs on both paths.
PATHS = ("loop", "caller")
_path: list[str] = ["chosen"]


def force_path(path: str) -> str:
    """Code that makes every sync call of a process take ``path``: the bridge loop, or
    driven from the caller's thread wherever the plan allows it (``fda_sync._caller_path.walk``)."""
    if path == "chosen":
        return ""
    return (
        "import fda_sync._api.decorators as _decorators\n"
        f"_decorators.prefers_caller = lambda plan, body_is_async: {path == 'caller'}\n"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every sync test runs on both paths; those marked ``chosen_path`` once, on the
    path the sync API chooses."""
    if "path" in metafunc.fixturenames:
        chosen = metafunc.definition.get_closest_marker("chosen_path") is not None
        metafunc.parametrize("path", ["chosen"] if chosen else PATHS, indirect=True)


@pytest.fixture(autouse=True)
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with every sync call on the bridge loop, then with every sync call
    driven from the caller's thread where its plan allows it: both must behave alike."""
    import fda_sync._api.decorators

    forced: str = request.param
    if forced != "chosen":
        monkeypatch.setattr(
            fda_sync._api.decorators,
            "prefers_caller",
            lambda plan, body_is_async: forced == "caller",
        )
        _path[0] = forced
    yield forced
    _path[0] = "chosen"


def run_script(code: str, *, timeout: float = 240.0, env: dict[str, str] | None = None) -> Script:
    """Run ``code`` in a fresh interpreter; a hang fails the test (bounded by ``timeout``).

    Its sync calls take the test's ``path``."""
    # faulthandler prints every thread's stack if the script hangs: a readable failure.
    prologue = f"import faulthandler; faulthandler.dump_traceback_later({timeout - 2}, exit=True)\n"
    prologue += force_path(_path[0])
    completed = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, "-c", prologue + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
        env=env,
        check=False,
    )
    return Script(completed.returncode, completed.stdout, completed.stderr)


def run_forking(code: str, *, timeout: float = 240.0) -> Script:
    """Run a script that forks, in a fresh interpreter. Not ``run_script``: faulthandler's
    watchdog thread does not exist in a fork child, which then hangs at exit; the script
    bounds itself (``signal.alarm``)."""
    completed = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Script(completed.returncode, completed.stdout, completed.stderr)


@dataclass
class Resource:
    """What a yield dependency hands out: it knows whether it was torn down."""

    name: str
    closed: bool = False
    seen: list[str] = field(default_factory=list)


@dataclass
class Recorder:
    """Thread-safe log of events."""

    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def clear(self) -> None:
        with self.lock:
            self.events.clear()


@pytest.fixture
def unbounded_cancel_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted call waits for its teardown without the bound (``CANCEL_GRACE``): a
    wait that only the bound would end (for a call that never began, or a settlement the
    interrupt took) hangs, and the test's timeout fails it."""
    import fda_sync._bridge.bridge

    monkeypatch.setattr(fda_sync._bridge.bridge, "CANCEL_GRACE", None)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(recorder: Recorder) -> FastAPI:
    """An app whose lifespan records startup/shutdown and yields state."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        recorder.add("startup")
        yield {"pool": "the-pool"}
        recorder.add("shutdown")

    return FastAPI(lifespan=lifespan)


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    """A bridge of its own (its own loop thread), shut down after the test."""
    private = Bridge()
    yield private
    private.shutdown()
