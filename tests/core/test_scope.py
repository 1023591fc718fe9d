"""The synthesized request: a complete scope, merging, isolation, and what it refuses."""

import asyncio
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from fda_core import configure, with_fastapi_depends
from fda_core._graph.scope import BodyUnavailableError

HTTP_SCOPE_KEYS = {
    "type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "root_path",
    "query_string", "headers", "client", "server", "app", "state", "path_params",
}  # fmt: skip


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


async def test_the_request_has_a_complete_http_scope(app: FastAPI) -> None:
    @with_fastapi_depends
    async def f(request: Request) -> dict[str, Any]:
        return dict(request.scope)

    scope = await f()
    assert set(scope) >= HTTP_SCOPE_KEYS
    assert scope["type"] == "http"
    assert scope["method"] == "GET"
    assert scope["app"] is app
    assert scope["headers"] == []


async def test_static_and_call_time_scopes_merge_call_time_wins(app: FastAPI) -> None:
    @with_fastapi_depends(scope={"method": "POST", "path": "/custom", "root_path": "/api"})
    async def f(request: Request) -> tuple[str, str, str, bytes]:
        scope = request.scope
        return request.method, scope["path"], scope["root_path"], scope["raw_path"]

    assert await f() == ("POST", "/custom", "/api", b"/custom")
    assert await f(_scope={"method": "PUT"}) == ("PUT", "/custom", "/api", b"/custom")
    assert await f(_scope={"path": "/other"}) == ("POST", "/other", "/api", b"/other")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer t", "X-Trace": "1"},
        [(b"authorization", b"Bearer t"), (b"x-trace", b"1")],
    ],
    ids=["dict", "asgi-pairs"],
)
async def test_headers_as_dict_or_asgi_pairs(app: FastAPI, headers: Any) -> None:
    @with_fastapi_depends
    async def f(
        *, authorization: Annotated[str, Header()], x_trace: Annotated[str, Header()]
    ) -> tuple[str, str]:
        return authorization, x_trace

    assert await f(_scope={"headers": headers}) == ("Bearer t", "1")


async def test_call_scope_is_copied_nothing_leaks_between_calls_or_back(app: FastAPI) -> None:
    seen: list[Any] = []

    async def mark(request: Request) -> None:
        seen.append(getattr(request.state, "marked", None))
        request.state.marked = True
        request.scope["path_params"]["leak"] = 1

    @with_fastapi_depends(scope={"state": {"static": 1}})
    async def f(*, _: Annotated[None, Depends(mark)]) -> None: ...

    original = {"state": {"from_request": 1}, "path_params": {}, "headers": []}
    await f(_scope=original)
    await f(_scope=original)
    await f()
    assert seen == [None, None, None]
    assert original == {"state": {"from_request": 1}, "path_params": {}, "headers": []}


async def test_state_layers_lifespan_static_and_call(app: FastAPI) -> None:
    @with_fastapi_depends(scope={"state": {"a": "static", "b": "static"}})
    async def f(request: Request) -> tuple[str, str]:
        return request.state.a, request.state.b

    assert await f(_scope={"state": {"b": "call"}}) == ("static", "call")


async def test_reading_the_body_fails_at_once(app: FastAPI) -> None:
    async def reads_body(request: Request) -> bytes:
        return await request.body()

    @with_fastapi_depends
    async def f(*, body: Annotated[bytes, Depends(reads_body)]) -> bytes:
        return body

    with pytest.raises(BodyUnavailableError, match="not available outside a request"):
        await asyncio.wait_for(f(), timeout=120)


async def test_http_exception_in_a_dependency_propagates_unchanged(app: FastAPI) -> None:
    async def forbidden() -> None:
        raise HTTPException(status_code=403, detail="nope")

    @with_fastapi_depends
    async def f(*, _: Annotated[None, Depends(forbidden)]) -> None: ...

    with pytest.raises(HTTPException) as info:
        await f()
    assert (info.value.status_code, info.value.detail) == (403, "nope")


async def test_a_missing_header_is_a_request_validation_error(app: FastAPI) -> None:
    async def current_user(authorization: Annotated[str, Header()]) -> str:
        return authorization

    @with_fastapi_depends
    async def f(*, user: Annotated[str, Depends(current_user)]) -> str:
        return user

    with pytest.raises(RequestValidationError) as info:
        await f()
    (error,) = info.value.errors()
    assert tuple(error["loc"]) == ("header", "authorization")


async def test_a_real_request_scope_can_be_reused_after_the_request(app: FastAPI) -> None:
    from fastapi import BackgroundTasks
    from fastapi.testclient import TestClient

    results: list[str] = []

    async def current_user(authorization: Annotated[str, Header()]) -> str:
        return authorization.removeprefix("Bearer ")

    async def db() -> Any:
        yield "db"

    @with_fastapi_depends
    async def notify(
        *, user: Annotated[str, Depends(current_user)], conn: Any = Depends(db)
    ) -> None:
        results.append(f"{user}:{conn}")

    @app.post("/trigger")
    async def trigger(request: Request, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(notify, _scope=request.scope)
        return {"status": "queued"}

    with TestClient(app) as client:
        response = client.post("/trigger", headers={"Authorization": "Bearer alice"})
    assert response.json() == {"status": "queued"}
    assert results == ["alice:db"]
