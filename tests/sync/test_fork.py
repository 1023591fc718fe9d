"""F1, F2, F4: fork after the bridge started, each in a process of its own.

A child that hangs is stopped by a one-minute interval timer (SIGALRM's default action
kills it), so a hang fails loudly instead of blocking the suite.
"""

import ast

import pytest

from .conftest import force_path, run_forking, run_script

pytestmark = pytest.mark.process

PRELUDE = """
import os, signal, sys, threading
from typing import Annotated
from fastapi import Depends, FastAPI
from fda_sync import FastApiDepsStack, with_fastapi_depends
from fda_sync._bridge import BridgeError, get_bridge

app = FastAPI()

async def where_dep():
    yield (os.getpid(), threading.current_thread().name)

@with_fastapi_depends(app=app)
def where(*, at: Annotated[tuple, Depends(where_dep)]) -> tuple:
    return at

@with_fastapi_depends(app=app)
async def where_async(*, at: Annotated[tuple, Depends(where_dep)]) -> tuple:
    return at

def child_checks(parent_state) -> dict:
    signal.setitimer(signal.ITIMER_REAL, 60.0)  # hang -> killed by SIGALRM
    facts = {
        "def": where() == (os.getpid(), "fda-sync-bridge"),
        "async": where_async() == (os.getpid(), "fda-sync-bridge"),
    }
    state = get_bridge().state()
    facts["new loop"] = parent_state is None or (
        state is not parent_state and state.loop is not parent_state.loop
    )
    facts["loop thread alive"] = state.thread.is_alive()
    facts["one loop thread"] = [
        t.name for t in threading.enumerate() if t.name == "fda-sync-bridge"
    ] == ["fda-sync-bridge"]
    signal.setitimer(signal.ITIMER_REAL, 0)
    return facts

def fork_and_check(parent_state) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            facts = child_checks(parent_state)
            print(repr(facts), flush=True)
            os._exit(0 if all(facts.values()) else 1)
        except BaseException as exc:
            print(repr(exc), flush=True)
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


def test_f1_child_gets_a_new_loop_and_the_parent_keeps_its_own() -> None:
    script = run_script(
        PRELUDE
        + """
assert where() == (os.getpid(), "fda-sync-bridge")
stack = FastApiDepsStack(app=app).start()  # bound to the parent's loop
parent_state = get_bridge().state()
pid = os.fork()
if pid == 0:
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    facts = child_checks(parent_state)
    try:
        stack.resolve(where_dep)
    except BridgeError as exc:
        facts["parent's stack refused"] = "another process" in str(exc)
    print(repr(facts), flush=True)
    os._exit(0 if all(facts.values()) else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), flush=True)
print(repr(where() == (os.getpid(), "fda-sync-bridge")), flush=True)
print(repr(get_bridge().state() is parent_state), flush=True)
print(repr(stack.resolve(where_dep)[0] == os.getpid()), flush=True)
stack.close()
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    facts = ast.literal_eval(script.lines[0])
    assert facts == {
        "def": True,
        "async": True,
        "new loop": True,
        "loop thread alive": True,
        "one loop thread": True,
        "parent's stack refused": True,
    }
    assert script.lines[1:] == ["0", "True", "True", "True"]


def test_f2_fork_while_another_thread_holds_the_start_up_lock() -> None:
    script = run_script(
        PRELUDE
        + """
bridge = get_bridge()
for started_before in (False, True):
    if started_before:
        where()
    parent_state = bridge._state
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with bridge._lock:
            holding.set()
            release.wait(120)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(120)
    fork_and_check(parent_state)
    release.set()
    holder.join(120)
print(repr(where() == (os.getpid(), "fda-sync-bridge")), flush=True)
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    lines = script.lines
    expected_facts = {
        "def": True,
        "async": True,
        "new loop": True,
        "loop thread alive": True,
        "one loop thread": True,
    }
    assert [ast.literal_eval(line) for line in lines[0:4:2]] == [expected_facts] * 2
    assert lines[1:4:2] == ["0", "0"]
    assert lines[4:] == ["True"]


def test_f4_multiprocessing_fork_pool() -> None:
    script = run_script(
        PRELUDE
        + """
import multiprocessing

def task(n: int) -> tuple:
    pid, thread = where()
    assert (pid, thread) == where_async()
    return n, pid, thread

parent_pid = os.getpid()
assert where()[0] == parent_pid  # the bridge runs in the parent before the fork
with multiprocessing.get_context("fork").Pool(2) as pool:
    results = pool.map_async(task, range(8), chunksize=1).get(timeout=240)
print(repr(sorted(n for n, _, _ in results)), flush=True)
print(repr(all(pid != parent_pid for _, pid, _ in results)), flush=True)
print(repr({thread for _, _, thread in results}), flush=True)
print(repr(where()[0] == parent_pid), flush=True)
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines == [
        repr(list(range(8))),
        "True",
        repr({"fda-sync-bridge"}),
        "True",
    ]


def test_fork_inside_a_def_body_the_child_gets_an_error_not_a_hang() -> None:
    """A ``def`` body runs in the caller's thread, so it may fork there: the child returns
    into a call that belongs to its parent's loop and gets ``BridgeError`` at once."""
    script = run_script(
        PRELUDE
        + """
@with_fastapi_depends(app=app)
def forking(*, at: Annotated[tuple, Depends(where_dep)]) -> int:
    return os.fork()

signal.setitimer(signal.ITIMER_REAL, 60.0)  # a hang, in parent or child -> SIGALRM
try:
    pid = forking()
except BridgeError as exc:
    print("child:", type(exc).__name__, "forked" in str(exc), flush=True)
    os._exit(0)
signal.setitimer(signal.ITIMER_REAL, 0)
_, status = os.waitpid(pid, 0)
print("parent: child exit", os.waitstatus_to_exitcode(status), flush=True)
"""
    )
    assert script.returncode == 0, script.stderr
    assert "child: BridgeError True" in script.lines
    assert "parent: child exit 0" in script.lines


def test_a_fork_child_leaving_a_call_never_tears_down_its_parents_dependencies(
    path: str,
) -> None:
    """The child of a fork in a ``def`` body leaves the call with ``BridgeError`` and may
    exit normally: the session its parent opened is closed once, by the parent, never by
    the child (not even by its garbage collector at exit)."""
    code = (
        force_path(path)
        + PRELUDE
        + """
signal.alarm(120)  # a hang, in parent or child, ends the process
parent = os.getpid()

def session():
    try:
        yield "s"
    finally:
        print("teardown in", "parent" if os.getpid() == parent else "CHILD", flush=True)

@with_fastapi_depends(app=app)
def forking(*, s: Annotated[str, Depends(session)]) -> int:
    return os.fork()

try:
    pid = forking()
except BridgeError:
    sys.exit(0)  # a normal exit: the interpreter finalizes, collectors run
_, status = os.waitpid(pid, 0)
print("parent: child exit", os.waitstatus_to_exitcode(status), flush=True)
"""
    )
    assert forked_lines(code) == ["teardown in parent", "parent: child exit 0"]


def test_a_fork_while_the_main_thread_holds_signals_gives_the_child_its_handlers(
    path: str,
) -> None:
    """A worker thread forks while the main thread tears a call down (its signals held
    back): the child's Ctrl-C and SIGTERM reach their handlers, as in any child."""
    code = (
        force_path(path)
        + PRELUDE
        + """
signal.alarm(120)
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
def on_term(signum, frame):
    raise SystemExit("SIGTERM")
signal.signal(signal.SIGTERM, on_term)

in_teardown, forked = threading.Event(), threading.Event()
def session():
    yield "s"
    in_teardown.set()
    assert forked.wait(120)  # a slow rollback in the main thread, the fork meanwhile

@with_fastapi_depends(app=app)
def job(*, s: Annotated[str, Depends(session)]) -> str:
    return s

def forker():
    assert in_teardown.wait(120)
    pid = os.fork()
    if pid == 0:
        import time
        seen = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                os.kill(os.getpid(), signum)
                time.sleep(0.3)
                seen.append("nothing")
            except BaseException as exc:
                seen.append(type(exc).__name__)
        os.write(1, (" ".join(seen) + "\\n").encode())
        os._exit(0)
    forked.set()
    os.waitpid(pid, 0)

thread = threading.Thread(target=forker)
thread.start()
assert job() == "s"
thread.join()
"""
    )
    assert forked_lines(code) == ["KeyboardInterrupt SystemExit"]


def forked_lines(code: str) -> list[str]:
    """The output lines of a script whose fork child exits normally (it succeeded)."""
    script = run_forking(code)
    assert script.returncode == 0, script.stderr
    return script.lines


@pytest.mark.chosen_path
def test_a_def_generator_started_in_the_parent_refuses_to_go_on_in_a_fork_child() -> None:
    """The child's copy of a suspended ``def`` generator raises ``BridgeError`` at its first
    ``next()`` (its dependencies are the parent's), and neither its ``finally`` nor their
    teardown runs in the child, not even at its exit; the parent's goes on."""
    code = (
        PRELUDE
        + """
signal.alarm(120)
from fda_sync import iter_with_fastapi_depends
parent = os.getpid()

def who():
    return "parent" if os.getpid() == parent else "CHILD"

def session():
    try:
        yield "s"
    finally:
        print("teardown in", who(), flush=True)

@iter_with_fastapi_depends(app=app)
def rows(*, s: Annotated[str, Depends(session)]):
    try:
        for i in range(3):
            yield i, who()
    finally:
        print("generator finally in", who(), flush=True)

generator = rows()
print(next(generator), flush=True)
pid = os.fork()
if pid == 0:
    try:
        print("child got", next(generator), flush=True)
    except BridgeError as exc:
        print("child: BridgeError", "another process" in str(exc), flush=True)
    sys.exit(0)  # a normal exit: collectors run
os.waitpid(pid, 0)
print(next(generator), flush=True)
generator.close()
"""
    )
    assert forked_lines(code) == [
        "(0, 'parent')",
        "child: BridgeError True",
        "(1, 'parent')",
        "generator finally in parent",
        "teardown in parent",
    ]


@pytest.mark.chosen_path
def test_a_fork_during_another_threads_first_call_leaves_the_child_a_working_bridge() -> None:
    """F3: another thread makes the process's first sync call, and the main thread forks
    while the anyio backend is being imported (a slow import, made slower), then at each
    point of a bridge's start-up in turn: each child gets a working bridge of its own."""
    script = run_script(
        PRELUDE
        + """
import importlib.abc, importlib.machinery, time
from fda_sync._bridge import Bridge

importing = threading.Event()

class SlowBackend(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "anyio._backends._asyncio":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            importing.set()
            time.sleep(0.2)  # the fork lands now
            run(module)

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, SlowBackend())
first = threading.Thread(target=where)
first.start()
assert importing.wait(120)
fork_and_check(None)
first.join(120)

def child_check(bridge) -> None:
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    async def pid():
        return os.getpid()
    ok = bridge.run(pid) == os.getpid() and where()[0] == os.getpid()
    os._exit(0 if ok else 1)

async def nothing():
    return None

points, exits, position = None, [], 0
while points is None or position < points:
    position += 1
    bridge, reached, seen = Bridge(), threading.Event(), [0]

    def profile(frame, event, arg):
        filename = frame.f_code.co_filename
        if event == "call" and ("/_bridge/" in filename or filename.endswith("threading.py")):
            seen[0] += 1
            if seen[0] == position:
                reached.set()
                time.sleep(0.005)

    def first_call():
        sys.setprofile(profile)
        try:
            bridge.run(nothing)
        finally:
            sys.setprofile(None)

    caller = threading.Thread(target=first_call)
    caller.start()
    if reached.wait(120):
        pid = os.fork()
        if pid == 0:
            try:
                child_check(bridge)
            finally:
                os._exit(2)
        exits.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    caller.join(120)
    bridge.shutdown()
    points = seen[0] if points is None else points
print(repr(points > 10), repr(set(exits)), len(exits) == points, flush=True)
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines[0].startswith("{"), script.lines  # not the child's error
    facts = ast.literal_eval(script.lines[0])
    assert facts == {
        "def": True,
        "async": True,
        "new loop": True,
        "loop thread alive": True,
        "one loop thread": True,
    }
    assert script.lines[1:] == ["0", "True {0} True"]
