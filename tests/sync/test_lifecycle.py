"""with_fastapi_lifecycle and runnify_with_fastapi_depends: the lifespan's state reaches
dependencies as ``request.state`` in every combination of sync and async bodies."""

import inspect
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

import fda_core
from fda_sync import (
    BridgeError,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fda_sync.runners import runnify_with_fastapi_depends as runners_runnify

from .conftest import Recorder


async def pool_from_state(request: Request) -> str:
    return str(request.state.pool)


def pool_from_state_in_def(request: Request) -> str:
    return str(request.state.pool)


Pool = Annotated[str, Depends(pool_from_state)]
DefPool = Annotated[str, Depends(pool_from_state_in_def)]


def inner_functions(app: FastAPI) -> dict[str, Callable[[], Any]]:
    """Sync-decorated functions reading the lifespan state, with def and async def bodies
    and dependencies (the request a def graph gets is built in the caller's thread)."""

    @with_fastapi_depends(app=app)
    def def_body(*, pool: DefPool) -> str:
        return pool

    @with_fastapi_depends(app=app)
    async def async_body(*, pool: Pool, def_pool: DefPool) -> str:
        assert pool == def_pool
        return pool

    return {"def": def_body, "async def": async_body}


@pytest.mark.parametrize("inner_kind", ["def", "async def"])
def test_lifecycle_around_a_sync_decorated_function(
    app: FastAPI, recorder: Recorder, inner_kind: str
) -> None:
    inner = inner_functions(app)[inner_kind]
    script = with_fastapi_lifecycle(inner, app=app)
    assert script() == "the-pool"
    assert recorder.events == ["startup", "shutdown"]


@pytest.mark.parametrize("inner_kind", ["def", "async def"])
def test_def_lifecycle_body_calling_sync_decorated_functions(
    app: FastAPI, recorder: Recorder, inner_kind: str
) -> None:
    inner = inner_functions(app)[inner_kind]

    @with_fastapi_lifecycle(app=app)
    def script() -> tuple[str, str, int]:
        recorder.add("body")
        return inner(), inner(), threading.get_ident()

    assert script() == ("the-pool", "the-pool", threading.get_ident())
    assert recorder.events == ["startup", "body", "shutdown"]


def test_async_lifecycle_body_awaiting_the_async_api(app: FastAPI, recorder: Recorder) -> None:
    @fda_core.with_fastapi_depends(app=app)
    async def inner(*, pool: Pool) -> str:
        return pool

    @with_fastapi_lifecycle(app=app)
    async def script() -> tuple[str, str]:
        return await inner(), threading.current_thread().name

    assert script() == ("the-pool", "fda-sync-bridge")
    assert recorder.events == ["startup", "shutdown"]


def test_async_lifecycle_body_calling_the_sync_api_is_refused(app: FastAPI) -> None:
    inner = inner_functions(app)["def"]

    @with_fastapi_lifecycle(app=app)
    async def script() -> str:
        return str(inner())

    with pytest.raises(BridgeError, match="deadlock"):
        script()


@pytest.mark.parametrize("runnify", [runnify_with_fastapi_depends, runners_runnify])
@pytest.mark.parametrize("body_kind", ["def", "async def"])
def test_runnify_gives_dependencies_the_lifespan_state(
    app: FastAPI, recorder: Recorder, body_kind: str, runnify: Any
) -> None:
    if body_kind == "def":

        def body(days: int, *, pool: Pool) -> tuple[int, str, str]:
            recorder.add("body")
            return days, pool, threading.current_thread().name

        where = threading.current_thread().name
    else:

        async def body(days: int, *, pool: Pool) -> tuple[int, str, str]:  # type: ignore[misc]
            recorder.add("body")
            return days, pool, threading.current_thread().name

        where = "fda-sync-bridge"
    script = runnify(app=app)(body)
    assert list(inspect.signature(script).parameters) == ["days"]
    assert script(30) == (30, "the-pool", where)
    assert recorder.events == ["startup", "body", "shutdown"]


def test_runnify_needs_no_asyncer(
    app: FastAPI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "asyncer", None)  # `import asyncer` fails
    with pytest.raises(ImportError, match="asyncer"):
        fda_core.runnify_with_fastapi_depends(app=app)(pool_from_state)

    @runnify_with_fastapi_depends(app=app)
    async def script(*, pool: Pool) -> str:
        return pool

    assert script() == "the-pool"


def test_nested_lifecycles_start_the_lifespan_once(app: FastAPI, recorder: Recorder) -> None:
    inner = inner_functions(app)["def"]

    @with_fastapi_lifecycle(app=app)
    def nested() -> str:
        return str(inner())

    @with_fastapi_lifecycle(app=app)
    def outer() -> tuple[str, str]:
        return nested(), nested()

    assert outer() == ("the-pool", "the-pool")
    assert recorder.events == ["startup", "shutdown"]


@pytest.mark.parametrize("body_kind", ["def", "async def"])
def test_shutdown_runs_when_the_body_raises(
    app: FastAPI, recorder: Recorder, body_kind: str
) -> None:
    error = KeyError("body failed")
    if body_kind == "def":

        def body() -> None:
            raise error

    else:

        async def body() -> None:  # type: ignore[misc]
            raise error

    with pytest.raises(KeyError) as raised:
        with_fastapi_lifecycle(body, app=app)()
    assert raised.value is error
    assert recorder.events == ["startup", "shutdown"]


def test_lifecycle_uses_the_configured_app_at_call_time(recorder: Recorder, app: FastAPI) -> None:
    @with_fastapi_lifecycle
    def script() -> str:
        return "ran"

    with pytest.raises(RuntimeError, match="configure"):
        script()
    fda_core.configure(app=app)
    assert script() == "ran"
    assert recorder.events == ["startup", "shutdown"]
