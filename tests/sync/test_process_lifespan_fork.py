"""The process lifespan across fork and interpreter exit, each in a process of its own:
a gunicorn-style pre-fork Django server, and the order of teardown at exit."""

import json
from collections import Counter

import pytest

from .conftest import run_forking, run_script

pytestmark = [pytest.mark.chosen_path, pytest.mark.process]

GUNICORN_STYLE = """
import json, os, signal, sys, threading, uuid
from contextlib import asynccontextmanager
from typing import Annotated

import django
from django.conf import settings
from django.http import JsonResponse
from django.test import Client
from django.urls import path
from fastapi import Depends, FastAPI, Request

from fda_core import configure
from fda_sync import start_process_lifespan, with_fastapi_depends


# One write per line: the processes share stdout, and a line written in two parts
# (PYTHONUNBUFFERED) could be split by another process's.
def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\\n").encode())


@asynccontextmanager
async def lifespan(app):
    token = uuid.uuid4().hex
    say("startup", os.getpid(), token)
    yield {"pid": os.getpid(), "token": token}
    say("shutdown", os.getpid(), token)


api = FastAPI(lifespan=lifespan)


def seen(request: Request) -> list:
    return [request.state.pid, request.state.token]


@with_fastapi_depends
def lifespan_seen(*, s: Annotated[list, Depends(seen)]) -> list:
    return s


def view(request):
    return JsonResponse({"pid": os.getpid(), "seen": lifespan_seen()})


urlpatterns = [path("seen", view)]
settings.configure(
    ALLOWED_HOSTS=["testserver"], ROOT_URLCONF="__main__", MIDDLEWARE=[], INSTALLED_APPS=[]
)
django.setup()
# What the project's AppConfig.ready() does, in the master (gunicorn --preload).
configure(app=api)
start_process_lifespan(lazy=True)


def serve(n):
    return [json.loads(Client().get("/seen").content) for _ in range(n)]


say("served", json.dumps(serve(1)))  # the master used it before forking
workers = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:  # a worker: two threads serve requests (gthread)
        signal.setitimer(signal.ITIMER_REAL, 120)  # a hang kills it
        out = []
        threads = [threading.Thread(target=lambda: out.extend(serve(3))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        say("served", json.dumps(out))
        sys.exit(0)  # as a gunicorn worker ends: atexit runs
    workers.append(pid)
for pid in workers:
    status = os.waitpid(pid, 0)[1]
    assert status == 0, status
say("served", json.dumps(serve(1)))  # the master's is still its own
"""


def test_gunicorn_style_pre_fork_each_worker_starts_and_stops_its_own() -> None:
    script = run_forking(GUNICORN_STYLE)  # the workers bound themselves with an alarm
    assert script.returncode == 0, script.stderr
    assert script.stderr == ""
    lines = script.stdout.splitlines()
    events = [line.split() for line in lines if line.split()[0] != "served"]
    served = [r for line in lines if line.startswith("served") for r in json.loads(line[7:])]
    startups = {pid: token for event, pid, token in events if event == "startup"}
    master = served[0]["pid"]

    assert len(served) == 1 + 2 * 6 + 1
    assert len(startups) == 3
    assert str(master) in startups
    assert Counter(event for event, _, _ in events) == {"startup": 3, "shutdown": 3}
    assert {(pid, t) for e, pid, t in events if e == "shutdown"} == set(startups.items())
    for response in served:  # every request saw its own process's lifespan
        pid, token = response["seen"]
        assert pid == response["pid"]
        assert startups[str(pid)] == token
    assert len({response["pid"] for response in served}) == 3
    assert lines[-1].split()[:2] == ["shutdown", str(master)]


AT_EXIT = """
import asyncio, os, sys, threading, time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from fda_core import configure
from fda_sync import iter_with_fastapi_depends, start_process_lifespan, with_fastapi_depends


@asynccontextmanager
async def lifespan(app):
    print("startup", flush=True)
    pool = {"open": True}
    yield {"pool": "the-pool", "engine": pool}
    pool["open"] = False
    print("shutdown", flush=True)  # after a bare yield: a normal exit only


configure(app=FastAPI(lifespan=lifespan))
start_process_lifespan()
started = threading.Event()


async def session(request: Request):
    print("session open on", request.state.pool, flush=True)
    yield
    print("session teardown", flush=True)


@with_fastapi_depends
def slow(*, s: Annotated[None, Depends(session)]) -> None:
    started.set()
    time.sleep(0.5)
    print("body done", flush=True)


async def cursor(request: Request):
    yield request.state.pool
    print("generator teardown", flush=True)


@iter_with_fastapi_depends
def rows(*, c: Annotated[str, Depends(cursor)]):
    yield c
    yield c


async def stuck_session(request: Request):
    engine = request.state.engine
    try:
        yield
    finally:
        print("stuck session teardown, engine open:", engine["open"], flush=True)


@with_fastapi_depends
async def stuck(*, s: Annotated[None, Depends(stuck_session)]) -> None:
    stuck_started.set()
    await asyncio.sleep(60)  # longer than the grace: cancelled at exit


stuck_started = threading.Event()
kept = rows()
next(kept)  # left suspended: its dependency is still open at exit
threading.Thread(target=stuck, daemon=True).start()
stuck_started.wait(120)
threading.Thread(target=slow, daemon=True).start()
started.wait(120)
print("main exits", flush=True)
"""


def test_at_exit_calls_in_flight_and_generators_are_torn_down_before_its_shutdown() -> None:
    script = run_script(AT_EXIT)
    assert script.returncode == 0, script.stderr
    assert script.stderr == ""
    # Calls in flight get the grace, a call stuck past it is cancelled and torn down,
    # then suspended generators are closed: all before the lifespan's shutdown, while
    # what it provides is still open, and only once.
    assert script.lines == [
        "startup",
        "session open on the-pool",
        "main exits",
        "body done",
        "session teardown",
        "stuck session teardown, engine open: True",
        "generator teardown",
        "shutdown",
    ]


NEVER_ENDING_SHUTDOWN = """
import asyncio
from contextlib import asynccontextmanager
from fastapi import FastAPI
from fda_sync import start_process_lifespan


@asynccontextmanager
async def lifespan(app):
    yield
    print("shutdown starts", flush=True)
    await asyncio.Event().wait()  # a peer that never answers


start_process_lifespan(FastAPI(lifespan=lifespan))
print("main exits", flush=True)
"""


def test_at_exit_a_shutdown_that_never_ends_is_bounded() -> None:
    script = run_script(NEVER_ENDING_SHUTDOWN)  # a hang: faulthandler, exit 1
    assert script.returncode == 0, script.stderr
    assert script.stderr == ""
    assert script.lines == ["main exits", "shutdown starts"]
