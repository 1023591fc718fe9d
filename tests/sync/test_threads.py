"""64 threads x 200 calls, each with its own context value: zero mismatches, every call's
resource torn down, and one loop thread serving them all."""

import contextvars
import threading
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from fda_sync import with_fastapi_depends
from fda_sync._bridge import get_bridge

from .conftest import Resource

THREADS = 64
CALLS = 200

call_id: contextvars.ContextVar[str] = contextvars.ContextVar("call_id")


@pytest.mark.process
def test_64_threads_by_200_calls(app: FastAPI) -> None:
    opened: list[Resource] = []
    loop_threads: set[threading.Thread] = set()

    async def resource() -> AsyncIterator[Resource]:
        res = Resource(call_id.get())
        opened.append(res)
        loop_threads.add(threading.current_thread())
        yield res
        res.seen.append(call_id.get())
        res.closed = True

    @with_fastapi_depends(app=app)
    def work(*, res: Annotated[Resource, Depends(resource)]) -> Resource:
        res.seen.append(call_id.get())
        return res

    mismatches: list[str] = []
    done = [0] * THREADS

    def worker(index: int) -> None:
        for call in range(CALLS):
            expected = f"{index}/{call}"
            call_id.set(expected)
            try:
                res = work()
            except BaseException as exc:
                mismatches.append(f"{expected}: {exc!r}")
                return
            if res.name != expected or res.seen != [expected, expected] or not res.closed:
                mismatches.append(f"{expected}: {res}")
            done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []
    assert done == [CALLS] * THREADS
    assert len(opened) == THREADS * CALLS
    assert all(res.closed for res in opened)
    bridge_thread = get_bridge().state().thread
    assert loop_threads == {bridge_thread}
    alive = [t for t in threading.enumerate() if t.name == "fda-sync-bridge"]
    assert alive == [bridge_thread]
