"""S1-S3: interpreter exit, each in a fresh interpreter run with warnings as errors.

Passing means: the expected teardown lines on stdout, exit code 0, and nothing at all on
stderr (no "Task was destroyed but it is pending", no "Exception ignored", no warning).
"""

import pytest

from .conftest import run_script

pytestmark = pytest.mark.process

PRELUDE = """
import asyncio, sys, threading, time
from typing import Annotated, Any
from fastapi import Depends, FastAPI
import fda_sync._bridge.shutdown
from fda_sync import (
    FastApiDepsStack, iter_with_fastapi_depends, with_fastapi_depends,
)

fda_sync._bridge.shutdown.EXIT_GRACE = 0.5  # keep the test short

def say(line):
    print(line, flush=True)

app = FastAPI()

def resource(name):
    async def dep():
        say(f"open {name}")
        try:
            yield name
        except BaseException as exc:
            say(f"{name} saw {type(exc).__name__}")
            raise
        finally:
            say(f"teardown {name}")
    return Annotated[str, Depends(dep)]

def sync_resource(name):
    def dep():
        say(f"open {name}")
        try:
            yield name
        finally:
            say(f"teardown {name}")
    return Annotated[str, Depends(dep)]
"""


def test_s1_exit_with_pending_calls_tears_down_their_dependencies() -> None:
    script = run_script(
        PRELUDE
        + """
entered = [threading.Event() for _ in range(3)]

@with_fastapi_depends(app=app)
async def long_async(*, r: resource("async-body")) -> None:
    entered[0].set()
    await asyncio.sleep(60)

@with_fastapi_depends(app=app)
def long_def(*, r: resource("def-body"), s: sync_resource("def-body-sync-dep")) -> None:
    entered[1].set()
    time.sleep(60)

@with_fastapi_depends(app=app)
async def short_async(*, r: resource("in-flight")) -> None:
    entered[2].set()
    while not fda_sync._bridge.get_bridge()._state.closing:  # until the exit began
        await asyncio.sleep(0.01)
    say("in-flight completed")

for target in (long_async, long_def, short_async):
    threading.Thread(target=target, daemon=True).start()
assert all(event.wait(120) for event in entered)
say("main exits")
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    lines = script.lines
    exits = lines.index("main exits")
    after = lines[exits + 1 :]
    # The call that finishes within the grace period completes normally.
    assert after.index("in-flight completed") < after.index("teardown in-flight")
    assert "in-flight saw CancelledError" not in after
    # The others are cancelled at exit, and their dependencies are torn down.
    for name in ("async-body", "def-body"):
        assert f"{name} saw CancelledError" in after
        assert f"teardown {name}" in after
    assert "teardown def-body-sync-dep" in after


def test_s2_exit_with_abandoned_generators_and_an_open_stack() -> None:
    script = run_script(
        PRELUDE
        + """
@iter_with_fastapi_depends(app=app)
def def_generator(*, r: resource("def-gen-dep")):
    try:
        yield 1
        yield 2
    finally:
        say("def-gen finally")

@iter_with_fastapi_depends(app=app)
async def async_generator(*, r: resource("async-gen-dep"), s: sync_resource("sync-dep")):
    try:
        yield 1
        yield 2
    finally:
        say("async-gen finally")

kept = [def_generator(), async_generator()]
for generator in kept:
    next(generator)

dropped = async_generator()
next(dropped)
del dropped  # collected now: torn down now
say("dropped")

stack = FastApiDepsStack(app=app).start()
stack.resolve(resource("stack-dep"))
say("main exits")
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    lines = script.lines
    dropped = lines.index("dropped")
    assert lines[dropped - 3 : dropped] == [
        "async-gen finally",
        "teardown sync-dep",
        "teardown async-gen-dep",
    ]
    after = lines[lines.index("main exits") + 1 :]
    assert sorted(after) == sorted(
        [
            "def-gen finally",
            "teardown def-gen-dep",
            "async-gen finally",
            "teardown sync-dep",
            "teardown async-gen-dep",
            "stack-dep saw CancelledError",
            "teardown stack-dep",
        ]
    )
    assert after.index("def-gen finally") < after.index("teardown def-gen-dep")
    assert after.index("async-gen finally") < after.index("teardown async-gen-dep")


def test_s3_exit_when_the_bridge_was_never_used() -> None:
    script = run_script(
        PRELUDE
        + """
@with_fastapi_depends(app=app)
def never_called(*, r: resource("never")) -> None: ...

@iter_with_fastapi_depends(app=app)
def never_iterated(*, r: resource("never")):
    yield 1

created_not_started = never_iterated()
say(repr(sorted(t.name for t in threading.enumerate())))
say(repr(fda_sync._bridge.get_bridge().started()))
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines == ["['MainThread']", "False"]


def test_exit_from_a_failing_script_still_tears_down() -> None:
    script = run_script(
        PRELUDE
        + """
@iter_with_fastapi_depends(app=app)
def gen(*, r: resource("dep")):
    yield 1

kept = gen()
next(kept)
raise SystemExit(3)
"""
    )
    assert script.returncode == 3
    assert script.stderr == ""
    assert script.lines == ["open dep", "teardown dep"]


def test_exit_tears_a_busy_driven_call_down_in_order() -> None:
    """A daemon thread is in a def body at exit; its call holds a def generator and an
    async generator that depends on it: the async one is torn down first, then the def
    one, each seeing the cancellation (on either path)."""
    script = run_script(
        PRELUDE
        + """
def session():
    say("open session")
    try:
        yield "s"
    except BaseException as exc:
        say(f"session saw {type(exc).__name__}")
        raise
    finally:
        time.sleep(0.05)
        say("close session")

async def token(s: Annotated[str, Depends(session)]):
    say("open token")
    try:
        yield "t"
    except BaseException as exc:
        say(f"token saw {type(exc).__name__}")
        raise
    finally:
        await asyncio.sleep(0.05)
        say("close token")

async def user(t: Annotated[str, Depends(token)]) -> str:
    return "u"

started = threading.Event()

@with_fastapi_depends(app=app)
def body(*, u: Annotated[str, Depends(user)]) -> None:
    started.set()
    time.sleep(60)

threading.Thread(target=body, daemon=True).start()
assert started.wait(120)
say("main exits")
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    after = script.lines[script.lines.index("main exits") + 1 :]
    assert after == [
        "token saw CancelledError",
        "close token",
        "session saw CancelledError",
        "close session",
    ]


@pytest.mark.chosen_path
def test_exit_shuts_lifespans_down_normally() -> None:
    """A stack left open, and a ``with_fastapi_lifecycle`` call in flight, at exit: their
    dependencies are torn down, then each lifespan exits as a server's shutdown does (the
    code after a bare ``yield`` runs), never cancelled."""
    script = run_script(
        PRELUDE
        + """
from contextlib import asynccontextmanager
from fda_sync import with_fastapi_lifecycle

def lifespan_of(name):
    @asynccontextmanager
    async def lifespan(app):
        say(f"startup {name}")
        yield
        await asyncio.sleep(0)
        say(f"shutdown {name}")
    return FastAPI(lifespan=lifespan)

stack_app, call_app = lifespan_of("stack-app"), lifespan_of("call-app")
stack = FastApiDepsStack(app=stack_app).start()
stack.resolve(resource("stack-dep"))
started = threading.Event()

@with_fastapi_lifecycle(app=call_app)
def in_flight() -> None:
    started.set()
    time.sleep(60)

threading.Thread(target=in_flight, daemon=True).start()
assert started.wait(120)
say("main exits")
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    after = script.lines[script.lines.index("main exits") + 1 :]
    assert sorted(after) == sorted(
        [
            "stack-dep saw CancelledError",
            "teardown stack-dep",
            "shutdown stack-app",
            "shutdown call-app",
        ]
    )
    assert after.index("teardown stack-dep") < after.index("shutdown stack-app")
