"""``GeneratorExit`` raised by user code is an exception like the others.

Set on a future, CPython would throw it into the awaiting task as a ``close()``, losing
every teardown still to run and logging "coroutine ignored GeneratorExit" (or "Attempted
to exit cancel scope in a different task"). As in a route, the other dependencies are
torn down and the caller gets the ``GeneratorExit``: for a ``def`` dependency, a ``def``
teardown, a body and the lifespan's startup, on the sync API's paths and the async API.
"""

import pytest

from .conftest import run_script

# Both paths of plain sync calls in one script (``on_path``): a process costs seconds.
pytestmark = [pytest.mark.chosen_path, pytest.mark.process]

SCRIPT = """
import asyncio, gc
from contextlib import asynccontextmanager
from typing import Annotated
from fastapi import Depends, FastAPI
import fda_core, fda_sync
import fda_sync._api.decorators as decorators

def on_path(path):
    def call():
        decorators.prefers_caller = lambda plan, body_is_async: path == "caller"
        return sync_call()
    return call

where = None

@asynccontextmanager
async def lifespan(app):
    if where == "startup":
        raise GeneratorExit
    yield

app = FastAPI(lifespan=lifespan)
torn_down = []

async def async_dep():
    try:
        yield "a"
    finally:
        await asyncio.sleep(0)
        torn_down.append("async")

def def_dep():
    try:
        yield "d"
    finally:
        torn_down.append("def")

def failing():
    if where == "dependency":
        raise GeneratorExit
    return 1

def failing_teardown():
    yield 1
    if where == "teardown":
        raise GeneratorExit

def body(
    a: Annotated[str, Depends(async_dep)],
    d: Annotated[str, Depends(def_dep)],
    t: Annotated[int, Depends(failing_teardown)],
    f: Annotated[int, Depends(failing)],
) -> str:
    if where == "body":
        raise GeneratorExit
    return "ok"

sync_call = fda_sync.with_fastapi_lifecycle(app=app)(fda_sync.with_fastapi_depends(app=app)(body))
async_call = fda_core.with_fastapi_lifecycle(app=app)(fda_core.with_fastapi_depends(app=app)(body))

def stack_call():
    with fda_sync.FastApiDepsStack(app=app) as stack:
        return stack.resolve(body)

async def async_stack_call():
    async with fda_core.FastApiDepsStack(app=app) as stack:
        return await stack.resolve(body)

def skipped(where, name):
    # A stack resolves no body; the async API tears `def` generators down with FastAPI's
    # own threadpool helper, which a route's GeneratorExit breaks as well.
    return (where == "body" and "stack" in name) or (
        where == "teardown" and name.startswith("async")
    )

for where in ("dependency", "teardown", "body", "startup"):
    for name, call in (
        ("sync loop", on_path("loop")),
        ("sync caller", on_path("caller")),
        ("stack", stack_call),
        ("async", lambda: asyncio.run(async_call())),
        ("async stack", lambda: asyncio.run(async_stack_call())),
    ):
        if skipped(where, name):
            continue
        torn_down.clear()
        try:
            call()
        except GeneratorExit:
            outcome = "GeneratorExit"
        except BaseException as exc:
            outcome = repr(exc)
        else:
            outcome = "returned"
        gc.collect()
        print(where, name, outcome, sorted(torn_down), flush=True)
where = None
print("sync call still works:", sync_call(), flush=True)
"""


def test_generator_exit_from_user_code_loses_no_teardown() -> None:
    script = run_script(SCRIPT)
    assert script.stderr == ""
    assert script.returncode == 0
    both = "['async', 'def']"
    expected = [
        f"{where} {name} GeneratorExit {both}"
        for where in ("dependency", "teardown", "body")
        for name in ("sync loop", "sync caller", "stack", "async", "async stack")
        if not (where == "body" and "stack" in name)
        and not (where == "teardown" and name.startswith("async"))
    ]
    expected += [
        f"startup {name} GeneratorExit []"
        for name in ("sync loop", "sync caller", "stack", "async", "async stack")
    ]
    expected.append("sync call still works: ok")
    assert script.lines == expected
