"""A WSGI app using the sync API, served by ``gunicorn -k gevent --preload`` in
test_gunicorn_gevent.py.

``--preload``: the master imports this module, unpatched, and makes a sync call at import
(the bridge starts there); each worker forks, monkey-patches, then serves every request in
a greenlet. A request's call has an async yield dependency that waits at a gate until
``FDA_TEST_GATE`` requests wait there together (``fda_gate``), and a ``def`` yield
dependency; the response says whether both were torn down.
"""

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fda_gate import Gate

from fda_sync import with_fastapi_depends

api = FastAPI()
request_id: ContextVar[str] = ContextVar("request_id")  # the greenlet's; copied to the loop
gate = Gate(int(os.environ["FDA_TEST_GATE"]))
closed_async: set[str] = set()
closed_def: set[str] = set()


async def connection() -> AsyncIterator[str]:
    request = request_id.get()
    await gate.wait()
    yield threading.current_thread().name
    await asyncio.sleep(0)
    closed_async.add(request)


def session() -> Iterator[int]:
    yield threading.get_ident()  # the greenlet's, under gevent
    closed_def.add(request_id.get())


@with_fastapi_depends(app=api)
def handle(
    *,
    loop_thread: Annotated[str, Depends(connection)],
    session_ident: Annotated[int, Depends(session)],
) -> dict[str, Any]:
    return {
        "loop thread": loop_thread,
        "def in the request's greenlet": session_ident == threading.get_ident(),
    }


@with_fastapi_depends(app=api)
async def where() -> int:
    return os.getpid()


PRELOADED_BY = where()  # the master's bridge, before the fork and the patching


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request = environ.get("QUERY_STRING", "")
    if environ["PATH_INFO"] == "/ready":
        body: dict[str, Any] = {"pid": os.getpid()}
    else:
        request_id.set(request)
        body = handle()
        body.update(
            request=request,
            pid=os.getpid(),
            preloaded_by=PRELOADED_BY,
            bridge_pid=where(),
            torn_down=request in closed_async and request in closed_def,
            most_waiting=gate.most,
        )
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
