"""G1 and more: the sync API in greenlets, under ``gevent.monkey.patch_all()``.

Monkey-patching cannot happen in pytest's process: each test runs a script in a fresh
interpreter that patches first (as Celery ``-P gevent`` and gunicorn ``-k gevent`` do),
with warnings as errors. Passing means what the script prints, exit code 0, and nothing
on stderr (no traceback at exit, no "cannot be called on the bridge loop"). Real Celery
and gunicorn workers: ``test_celery_gevent.py``, ``test_gunicorn_gevent.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest

from .conftest import HERE, PYTHON_FLAGS, Script, force_path

pytestmark = pytest.mark.process

#: Late patching (a fork child patching after its parent imported ``ssl``) warns.
LATE_PATCH = ("-W", "ignore:Monkey-patching ssl")


GEVENT = "from gevent import monkey; monkey.patch_all()\n"
EVENTLET = """
import warnings
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
import eventlet
eventlet.monkey_patch()
"""


def run_green(
    code: str, path: str, *, patch: str = GEVENT, forks: bool = False, timeout: float = 240.0
) -> Script:
    """``code`` in a fresh interpreter that runs ``patch`` first (``gevent.monkey.patch_all()``),
    its sync calls on ``path``. A hang fails: faulthandler ends it, or, in a script that
    ``forks`` (the watchdog's thread is not in a fork child), SIGALRM."""
    prologue = patch
    if forks:
        prologue += f"import signal; signal.alarm({int(timeout) - 2})\n"
    else:
        prologue += "import faulthandler\n"
        prologue += f"faulthandler.dump_traceback_later({timeout - 2}, exit=True)\n"
    prologue += force_path(path)
    completed = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, *LATE_PATCH, "-c", prologue + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
        check=False,
    )
    return Script(completed.returncode, completed.stdout, completed.stderr)


def facts(script: Script) -> dict[str, object]:
    """The dict the script printed last, after checking that it ran clean."""
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stderr == ""
    result = ast.literal_eval(script.lines[-1])
    assert isinstance(result, dict)
    return result


PRELUDE = """
import asyncio, os, sys, threading
from typing import Annotated
import gevent, gevent.local
from fastapi import Depends, FastAPI
from fda_sync import FastApiDepsStack, iter_with_fastapi_depends, with_fastapi_depends

app = FastAPI()
local = gevent.local.local()  # what a greenlet keeps to itself (a request, a task)
events = []

async def connection():
    events.append("open connection")
    try:
        yield threading.current_thread().name
    except BaseException as exc:
        events.append(f"connection saw {type(exc).__name__}")
        raise
    finally:
        await asyncio.sleep(0.01)
        events.append("close connection")

def session():
    events.append("open session")
    try:
        yield (gevent.getcurrent(), getattr(local, "name", None))
    finally:
        events.append(("close session", gevent.getcurrent(), getattr(local, "name", None)))

Connection = Annotated[str, Depends(connection)]
Session = Annotated[tuple, Depends(session)]
"""


def test_g1_fifty_greenlets_wait_for_the_loop_while_the_hub_runs(path: str) -> None:
    """Fifty concurrent calls, each with an async dependency and a ``def`` generator
    dependency. Each call's async step waits until all fifty are waiting at once, which
    a greenlet (the hub's) releases: had one wait blocked the hub, nothing would return."""
    script = run_green(
        PRELUDE
        + """
from fda_sync._bridge import get_bridge

CALLS = 50
waiting = []
release = None  # the loop's asyncio.Event, made there

async def gate(c: Connection) -> str:
    global release
    if release is None:
        release = asyncio.Event()
    waiting.append(1)
    await release.wait()
    return c

@with_fastapi_depends(app=app)
def job(i: int, *, c: Annotated[str, Depends(gate)], s: Session) -> tuple:
    return c, s[0] is gevent.getcurrent(), s[1], gevent.getcurrent() is callers[i], local.name

callers = {}

def caller(i):
    callers[i] = gevent.getcurrent()
    local.name = f"greenlet {i}"
    return job(i)

released = []

def releaser():
    while len(waiting) < CALLS:
        gevent.sleep(0.01)
    released.append(len(waiting))  # all fifty wait, and this greenlet runs
    get_bridge().state().loop.call_soon_threadsafe(release.set)

greenlets = [gevent.spawn(caller, i) for i in range(CALLS)]
gevent.spawn(releaser)
gevent.joinall(greenlets, raise_error=True)
results = [g.value for g in greenlets]
closed = [e for e in events if isinstance(e, tuple)]
print({
    "returned": len(results),
    "loop thread": {r[0] for r in results},
    "def dependency in the caller": all(r[1] for r in results),
    "its greenlet-local": [r[2] for r in results] == [f"greenlet {i}" for i in range(CALLS)],
    "def body in the caller": all(r[3] for r in results),
    "body's greenlet-local": [r[4] for r in results] == [f"greenlet {i}" for i in range(CALLS)],
    "async closed": events.count("close connection"),
    "def closed": len(closed),
    "def closed in the caller": all(c[1] is callers[int(c[2].split()[1])] for c in closed),
    "waiting when released": released,
})
""",
        path,
    )
    assert facts(script) == {
        "returned": 50,
        "loop thread": {"fda-sync-bridge"},
        "def dependency in the caller": True,
        "its greenlet-local": True,
        "def body in the caller": True,
        "body's greenlet-local": True,
        "async closed": 50,
        "def closed": 50,
        "def closed in the caller": True,
        "waiting when released": [50],
    }


def test_generators_and_stacks_in_greenlets(path: str) -> None:
    script = run_green(
        PRELUDE
        + """
@iter_with_fastapi_depends(app=app)
def numbers(n: int, *, c: Connection, s: Session):
    for i in range(n):
        gevent.sleep(0.001)  # other greenlets run between two items
        yield i, s[0] is gevent.getcurrent()

def iterate(i):
    local.name = f"greenlet {i}"
    return list(numbers(3))

def stacked(i):
    local.name = f"greenlet {i}"
    with FastApiDepsStack(app=app) as stack:
        gevent.sleep(0.001)
        c = stack.resolve(Connection)
        gevent.sleep(0.001)
        s = stack.resolve(Session)
        return c, s[1]

greenlets = [gevent.spawn(iterate, i) for i in range(20)]
greenlets += [gevent.spawn(stacked, i) for i in range(20)]
gevent.joinall(greenlets, raise_error=True)
print({
    "iterated": [g.value for g in greenlets[:20]] == [[(0, True), (1, True), (2, True)]] * 20,
    "stacked": [g.value for g in greenlets[20:]]
    == [("fda-sync-bridge", f"greenlet {i}") for i in range(20)],
    "async closed": events.count("close connection"),
    "def closed": len([e for e in events if isinstance(e, tuple)]),
})
""",
        path,
    )
    assert facts(script) == {
        "iterated": True,
        "stacked": True,
        "async closed": 40,
        "def closed": 40,
    }


def test_a_timeout_or_a_kill_cancels_the_call_and_waits_for_its_teardown(path: str) -> None:
    """``gevent.Timeout`` and ``Greenlet.kill()`` are interrupts: the call's task is
    cancelled, its teardown runs, then the exception reaches the greenlet (rule 6)."""
    script = run_green(
        PRELUDE
        + """
@with_fastapi_depends(app=app)
async def async_body(*, c: Connection, s: Session) -> None:
    events.append("body")
    await asyncio.sleep(60)

@with_fastapi_depends(app=app)
def def_body(*, c: Connection, s: Session) -> None:
    events.append("body")
    gevent.sleep(60)

def with_timeout(body, seconds):
    try:
        with gevent.Timeout(seconds):
            body()
    except gevent.Timeout:
        events.append("timeout reached the caller")

def timed_out(body):
    seconds = 0.2
    while True:
        events.clear()
        gevent.spawn(with_timeout, body, seconds).join()
        if "body" in events:
            return list(events)
        seconds *= 2  # too busy a machine to reach the body in time: again, longer

def killed(body):
    events.clear()
    victim = gevent.spawn(body)
    while "body" not in events:
        gevent.sleep(0.01)
    victim.kill(timeout=60)
    events.append(f"{type(victim.value).__name__} ended the greenlet")
    return list(events)

@with_fastapi_depends(app=app)
def fine(*, c: Connection) -> str:
    return c

fine()  # the bridge runs: no start-up in the calls interrupted
outcomes = {}
for body in (async_body, def_body):
    for interrupt in (timed_out, killed):
        seen = interrupt(body)
        outcomes[f"{interrupt.__name__} {body.__name__}"] = [
            e if isinstance(e, str) else e[0] for e in seen
        ]

outcomes["after"] = fine()
print(outcomes)
""",
        path,
    )
    outcomes = facts(script)
    assert outcomes.pop("after") == "fda-sync-bridge"  # the bridge still serves
    for interrupt in ("timed_out", "killed"):
        last = (
            "timeout reached the caller"
            if interrupt == "timed_out"
            else ("GreenletExit ended the greenlet")
        )
        # An async body is cancelled on the loop; a def body gets the interrupt itself,
        # and its dependencies see it, as if the body had raised it.
        for body, seen in (("async_body", "CancelledError"), ("def_body", None)):
            seen = seen or ("Timeout" if interrupt == "timed_out" else "GreenletExit")
            assert outcomes[f"{interrupt} {body}"] == [
                "open connection",
                "open session",
                "body",
                "close session",
                f"connection saw {seen}",
                "close connection",
                last,
            ]


def test_greenlets_waiting_at_exit_are_torn_down(path: str) -> None:
    script = run_green(
        PRELUDE
        + """
import fda_sync._bridge.shutdown
fda_sync._bridge.shutdown.EXIT_GRACE = 0.5  # keep the test short

class Printed(list):
    def append(self, event):
        super().append(event if isinstance(event, str) else event[0])
        print(repr(self[-1]), flush=True)

events = Printed()

@with_fastapi_depends(app=app)
async def async_body(*, c: Connection, s: Session) -> None:
    await asyncio.sleep(60)

@with_fastapi_depends(app=app)
def def_body(*, c: Connection, s: Session) -> None:
    gevent.sleep(60)

@with_fastapi_depends(app=app)
def finishing(*, c: Connection, s: Session) -> None:
    gevent.sleep(0.2)  # ends during the exit's grace period

@iter_with_fastapi_depends(app=app)
def numbers(*, c: Connection, s: Session):
    yield 1
    yield 2

suspended = numbers()
next(suspended)
for body in (async_body, def_body, finishing):
    gevent.spawn(body)
while events.count("open session") < 4:  # every call is under way
    gevent.sleep(0.01)

print("exit", flush=True)
""",
        path,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stderr == ""
    exit_at = script.lines.index("exit")
    torn_down = script.lines[exit_at + 1 :]
    assert torn_down.count("'close connection'") == 4
    assert torn_down.count("'close session'") == 4


def test_async_libraries_that_start_threads_run_on_the_loops_hub(path: str) -> None:
    """aiosqlite runs each connection in a thread, which gevent makes a greenlet: on the
    loop's OS thread, whose hub runs it while the loop waits. Writes through one pooled
    connection (SQLite's own busy wait would stop that thread); ``def`` bodies that make
    sync calls themselves."""
    script = run_green(
        PRELUDE
        + """
import tempfile
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/notes.db"
# The pool named: SQLAlchemy before 2.0.38 gives a SQLite file NullPool by default.
engine = create_async_engine(url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0)

async def database():
    async with AsyncSession(engine) as db:
        yield db

Database = Annotated[AsyncSession, Depends(database)]

@with_fastapi_depends(app=app)
async def create(*, db: Database) -> None:
    await db.execute(text("create table notes (n integer)"))
    await db.commit()

@with_fastapi_depends(app=app)
async def add(n: int, *, db: Database) -> None:
    await db.execute(text("insert into notes values (:n)"), {"n": n})
    await db.commit()

@with_fastapi_depends(app=app)
def add_twice(n: int, *, s: Session) -> None:
    add(n)
    add(n + 1000)

@with_fastapi_depends(app=app)
async def notes(*, db: Database) -> int:
    return (await db.execute(text("select count(*) from notes"))).scalar_one()

@with_fastapi_depends(app=app)
async def dispose() -> None:
    await engine.dispose()

create()
greenlets = [gevent.spawn(add, n) for n in range(20)]
greenlets += [gevent.spawn(add_twice, n) for n in range(20)]
gevent.joinall(greenlets, raise_error=True)
print({"notes": notes(), "def closed": len([e for e in events if isinstance(e, tuple)])})
dispose()
""",
        path,
    )
    assert facts(script) == {"notes": 60, "def closed": 20}


#: Patching first (Celery ``-P gevent``), or after the library was imported (gunicorn
#: ``--preload -k gevent``: the app, and the library, are imported before the worker patches).
PATCHED = {"first": GEVENT, "after the import": "import fda_sync\n" + GEVENT}


@pytest.mark.parametrize("patched", list(PATCHED))
def test_a_signal_during_teardown_in_a_greenlet_waits_for_its_end(path: str, patched: str) -> None:
    """Python runs signal handlers in the main OS thread, in whichever greenlet runs: one
    landing in a greenlet's teardown waits for its end; one landing in another greenlet
    meanwhile goes through there at once (greenlets tearing down in turn never hold a
    signal back for good). The same when gevent patches after the library's import."""
    script = run_green(
        PRELUDE
        + """
import signal

class Stop(Exception):
    pass

def stop(signum, frame):
    raise Stop

signal.signal(signal.SIGUSR1, stop)

def interrupted():
    yield "s"
    events.append("teardown starts")
    os.kill(os.getpid(), signal.SIGUSR1)
    gevent.sleep(0.1)  # the hub and other greenlets run meanwhile
    events.append("teardown ends")

@with_fastapi_depends(app=app)
def job(*, s: Annotated[str, Depends(interrupted)], c: Connection) -> None:
    pass

def caller():
    try:
        job()
    except Stop:
        events.append("Stop reached the caller")

gevent.spawn(caller).join()
outcome = {"in the greenlet tearing down": list(events)}

# A signal landing in another greenlet meanwhile goes through there, at once.
events.clear()

def slow():
    yield "s"
    events.append("teardown starts")
    gevent.sleep(0.2)
    events.append("teardown ends")

@with_fastapi_depends(app=app)
def slow_job(*, s: Annotated[str, Depends(slow)], c: Connection) -> None:
    pass

def other():
    while "teardown starts" not in events:
        gevent.sleep(0.01)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs here, in this greenlet
        gevent.sleep(0)
    except Stop:
        events.append("Stop reached the other greenlet")

gevent.joinall([gevent.spawn(slow_job), gevent.spawn(other)], raise_error=True)
outcome["in another greenlet"] = list(events)
print(outcome)
""",
        path,
        patch=PATCHED[patched],
    )
    assert facts(script) == {
        "in the greenlet tearing down": [
            "open connection",
            "close connection",
            "teardown starts",
            "teardown ends",
            "Stop reached the caller",
        ],
        "in another greenlet": [
            "open connection",
            "close connection",
            "teardown starts",
            "Stop reached the other greenlet",
            "teardown ends",
        ],
    }


def test_the_loops_own_greenlets_may_wait_for_it_the_loop_may_not(path: str) -> None:
    """``asyncio.to_thread`` on the loop starts a greenlet of the loop's OS thread, where
    asyncio says the loop runs: a sync call there waits in that thread's hub, as from a
    worker thread without gevent. A sync call from the loop itself is refused."""
    script = run_green(
        PRELUDE
        + """
from fda_sync import BridgeError

async def inner_connection():
    yield "inner"

@with_fastapi_depends(app=app)
def inner(*, c: Annotated[str, Depends(inner_connection)]) -> str:
    return c

async def from_worker():
    yield await asyncio.to_thread(inner)

@with_fastapi_depends(app=app)
def outer(*, r: Annotated[str, Depends(from_worker)]) -> str:
    return r

@with_fastapi_depends(app=app)
async def on_the_loop() -> str:
    return inner()

greenlets = [gevent.spawn(outer) for _ in range(5)]
gevent.joinall(greenlets, raise_error=True)
outcome = {"from the loop's greenlets": [g.value for g in greenlets]}
try:
    on_the_loop()
except BridgeError as exc:
    outcome["from the loop"] = str(exc).split(" (")[0]
print(outcome)
""",
        path,
    )
    assert facts(script) == {
        "from the loop's greenlets": ["inner"] * 5,
        "from the loop": "A blocking fastapi_depends_anywhere.sync call was made on the "
        "bridge's own event loop",
    }


@pytest.mark.chosen_path
def test_thread_pools_started_on_the_loop_let_the_process_exit(path: str) -> None:
    """At exit, Python's main thread joins every ``ThreadPoolExecutor``'s workers, greenlets
    of the loop's thread under gevent, before the bridge's exit handler runs. The loop's
    default executor (``asyncio.to_thread``, ``loop.getaddrinfo``) has none; a lifespan's
    own pool has, which the loop's hub wakes (on Python 3.13, gevent cannot join them from
    another thread: the lifespan is stopped before the exit, as documented)."""
    script = run_green(
        """
import asyncio, concurrent.futures, sys
from contextlib import asynccontextmanager
from typing import Annotated
from fastapi import Depends, FastAPI, Request
from fda_sync import start_process_lifespan, stop_process_lifespan, with_fastapi_depends

@asynccontextmanager
async def lifespan(app):
    pool = concurrent.futures.ThreadPoolExecutor(2)
    yield {"pool": pool}
    pool.shutdown()
    print("lifespan shut down", flush=True)

app = FastAPI(lifespan=lifespan)

async def in_pools(request: Request) -> int:
    loop = asyncio.get_running_loop()
    await loop.getaddrinfo("localhost", 80)
    return await loop.run_in_executor(request.state.pool, sum, [40, 1]) + await (
        asyncio.to_thread(sum, [1])
    )

@with_fastapi_depends(app=app)
def job(*, n: Annotated[int, Depends(in_pools)]) -> int:
    return n

start_process_lifespan(app)
print(job(), flush=True)
if sys.version_info >= (3, 13):
    stop_process_lifespan()
""",
        path,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stderr == ""
    assert script.lines == ["42", "lifespan shut down"]


FORKING = """
def calls_in_greenlets() -> dict:
    greenlets = [gevent.spawn(lambda: (job(), gevent.getcurrent())) for _ in range(20)]
    gevent.joinall(greenlets, raise_error=True)
    return {
        "pid": all(g.value[0][0] == os.getpid() for g in greenlets),
        "loop thread": {g.value[0][1] for g in greenlets},
        "def in the caller": all(g.value[0][2] is g.value[1] for g in greenlets),
    }

def child(report) -> None:
    sys.stdout.flush()
    if os.fork() == 0:
        report()
        sys.exit(0)  # the child's own exit: its bridge shuts down, quietly
    os.wait()
"""

JOB = """
async def where():
    yield (os.getpid(), threading.current_thread().name)

@with_fastapi_depends(app=app)
def job(*, at: Annotated[tuple, Depends(where)], s: Session) -> tuple:
    return (*at, s[0])
"""


def test_a_fork_child_of_a_patched_process_starts_its_own_loop(path: str) -> None:
    script = run_green(
        PRELUDE
        + JOB
        + FORKING
        + """
print({"parent": calls_in_greenlets()}, flush=True)
child(lambda: print({"child": calls_in_greenlets()}, flush=True))
print({"parent again": calls_in_greenlets()})
""",
        path,
        forks=True,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stderr == ""
    served = {"pid": True, "loop thread": {"fda-sync-bridge"}, "def in the caller": True}
    assert [ast.literal_eval(line) for line in script.lines] == [
        {"parent": served},
        {"child": served},
        {"parent again": served},
    ]


def test_a_worker_forked_before_patching_patches_then_uses_its_own_loop(path: str) -> None:
    """gunicorn's order (``--preload``, ``-k gevent``): the parent imports the app and uses
    the bridge, unpatched; each worker forks, patches, then serves greenlets."""
    script = run_green(
        """
import os, sys, threading
from typing import Annotated
from fastapi import Depends, FastAPI
from fda_sync import with_fastapi_depends

app = FastAPI()

async def where():
    yield (os.getpid(), threading.current_thread().name)

@with_fastapi_depends(app=app)
def parent_job(*, at: Annotated[tuple, Depends(where)]) -> tuple:
    return at

print({"parent": parent_job() == (os.getpid(), "fda-sync-bridge")}, flush=True)
if os.fork() == 0:
    from gevent import monkey
    monkey.patch_all()
    exec(PRELUDE + JOB + FORKING)
    print({"worker": calls_in_greenlets()}, flush=True)
    sys.exit(0)
os.wait()
print({"parent again": parent_job() == (os.getpid(), "fda-sync-bridge")})
""".replace("PRELUDE + JOB + FORKING", repr(PRELUDE + JOB + FORKING)),
        path,
        patch="",
        forks=True,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stderr == ""
    served = {"pid": True, "loop thread": {"fda-sync-bridge"}, "def in the caller": True}
    assert [ast.literal_eval(line) for line in script.lines] == [
        {"parent": True},
        {"worker": served},
        {"parent again": True},
    ]


@pytest.mark.chosen_path
def test_a_bridge_started_before_patching_refuses_greenlets_and_exits_quietly(
    path: str,
) -> None:
    script = run_green(
        """
import asyncio
from fastapi import FastAPI
from fda_sync import BridgeError, with_fastapi_depends

app = FastAPI()

@with_fastapi_depends(app=app)
async def job() -> str:
    await asyncio.sleep(0)
    return "served"

print({"before": job()}, flush=True)
from gevent import monkey
monkey.patch_all()
import gevent

try:
    job()
except BridgeError as exc:
    print({"after": str(exc)})
""",
        path,
        patch="",
    )
    assert facts(script) == {
        "after": "The fda-sync bridge loop was started before gevent.monkey.patch_all(): it "
        "cannot serve greenlets. Patch first, at the very start of the program, before "
        "anything makes a sync call (gevent requires it anyway); Celery `-P gevent` and "
        "gunicorn `-k gevent` do so."
    }
    assert script.lines[0] == "{'before': 'served'}"


@pytest.mark.chosen_path  # where an all-def call never reaches the loop
def test_eventlet_refuses_calls_that_need_the_loop_and_runs_the_others(path: str) -> None:
    """Eventlet (deprecated upstream) is not supported where a call needs the loop: a clear
    error at the first such call; all-``def`` calls run; the exit is quiet."""
    script = run_green(
        """
import eventlet
from typing import Annotated
from fastapi import Depends, FastAPI
from fda_sync import BridgeError, with_fastapi_depends

app = FastAPI()

def settings():
    yield "settings"

async def connection():
    yield "connection"

@with_fastapi_depends(app=app)
def all_def(*, s: Annotated[str, Depends(settings)]) -> str:
    return s

@with_fastapi_depends(app=app)
def with_async(*, c: Annotated[str, Depends(connection)]) -> str:
    return c

facts = {"all def": eventlet.spawn(all_def).wait()}
try:
    with_async()
except BridgeError as exc:
    facts["async"] = str(exc)
print(facts)
""",
        path,
        patch=EVENTLET,
    )
    outcome = facts(script)
    assert outcome["all def"] == "settings"
    assert str(outcome["async"]).startswith(
        "fastapi_depends_anywhere.sync does not run calls that need its event loop (an "
        "async dependency or body) under eventlet's monkey-patching"
    )
    assert "Use gevent instead (Celery `-P gevent`, gunicorn `-k gevent`)" in str(outcome["async"])
