"""The ambient scope (``ambient_scope()``) with the async API, and the request a task sent
now would carry: from ``RequestContextMiddleware``, from a decorated call's ``_scope=``.

The ambient scope is every decorated call's ``_scope`` unless the call gives its own;
the middleware makes the handled request the source of the tasks sent while handling it,
from ``def`` and ``async def`` routes, dependencies and background tasks alike, and
changes nothing the decorated calls see.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Header, Request, WebSocket
from fastapi.testclient import TestClient

from fda_core import (
    FastApiDepsStack,
    RequestContextMiddleware,
    aiter_with_fastapi_depends,
    ambient_scope,
    configure,
    override,
    resolve_fastapi_depends,
    with_fastapi_depends,
)
from fda_core._graph.ambient import current_source

ANN = {"headers": {"x-user": "ann"}, "path": "/from/ann"}
BOB = {"headers": {"x-user": "bob"}}


def get_user(x_user: Annotated[str, Header()] = "nobody") -> str:
    return x_user


UserDep = Annotated[str, Depends(get_user)]


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


async def test_a_call_without_scope_gets_the_ambient_one_and_its_own_scope_wins(
    app: FastAPI,
) -> None:
    @with_fastapi_depends
    async def whoami(*, user: UserDep, request: Request) -> tuple[str, str]:
        return user, request.url.path

    assert await whoami() == ("nobody", "/")
    with ambient_scope(ANN):
        assert await whoami() == ("ann", "/from/ann")
        assert await whoami(_scope=BOB) == ("bob", "/")  # replaced, not merged
        with ambient_scope(BOB):
            assert await whoami() == ("bob", "/")  # the innermost block wins
        assert await whoami() == ("ann", "/from/ann")
    assert await whoami() == ("nobody", "/")


async def test_nested_calls_generators_stacks_and_resolve_get_it(app: FastAPI) -> None:
    @with_fastapi_depends
    async def inner(*, user: UserDep) -> str:
        return user

    @with_fastapi_depends
    async def outer(*, user: UserDep) -> list[str]:
        return [user, await inner()]

    @aiter_with_fastapi_depends
    async def users(*, user: UserDep) -> AsyncIterator[str]:
        yield user
        yield user

    async def lookup(user: UserDep) -> str:
        return user

    with ambient_scope(ANN):
        assert await outer() == ["ann", "ann"]
        assert [user async for user in users()] == ["ann", "ann"]
        async with FastApiDepsStack(app=app) as stack:
            assert await stack.resolve(UserDep) == "ann"
        async with resolve_fastapi_depends(lookup) as values:
            assert values == {"user": "ann"}


async def test_override_blocks_and_dependency_overrides_apply_inside_it(app: FastAPI) -> None:
    def shout(x_user: Annotated[str, Header()]) -> str:
        return x_user.upper()

    @with_fastapi_depends
    async def whoami(*, user: UserDep) -> str:
        return user

    with ambient_scope(ANN):
        with override({get_user: shout}):
            assert await whoami() == "ANN"  # the override reads the ambient headers
        app.dependency_overrides[get_user] = lambda: "overridden"
        try:
            assert await whoami() == "overridden"
        finally:
            app.dependency_overrides.clear()


async def test_concurrent_tasks_each_keep_their_own(app: FastAPI) -> None:
    @with_fastapi_depends
    async def whoami(*, user: UserDep) -> str:
        await asyncio.sleep(0)
        return user

    async def as_user(name: str) -> list[str]:
        with ambient_scope({"headers": {"x-user": name}}):
            return [await whoami() for _ in range(20)]

    names = [f"user-{n}" for n in range(16)]
    results = await asyncio.gather(*(as_user(name) for name in names))
    assert results == [[name] * 20 for name in names]


def test_bad_scopes_are_refused_with_what_was_given() -> None:
    with pytest.raises(TypeError, match="got None"), ambient_scope(None):  # type: ignore[arg-type]
        pass
    mapping = r"ambient_scope\(scope\) must be a mapping.*list"
    with pytest.raises(TypeError, match=mapping), ambient_scope([("x-user", "ann")]):  # type: ignore[arg-type]
        pass


async def test_a_call_given_scope_is_the_source_of_what_its_body_sends(app: FastAPI) -> None:
    @with_fastapi_depends
    async def inner(*, user: UserDep) -> tuple[str, Any]:
        source = current_source()
        return user, None if source is None else source.scope

    @with_fastapi_depends
    async def outer(*, user: UserDep) -> tuple[str, Any, tuple[str, Any]]:
        source = current_source()
        return user, None if source is None else source.scope, await inner()

    # The body sends with ANN; a nested call still gets no ambient scope from it (as before).
    assert await outer(_scope=ANN) == ("ann", ANN, ("nobody", ANN))
    assert await outer() == ("nobody", None, ("nobody", None))
    assert current_source() is None


# --- RequestContextMiddleware -------------------------------------------------------------


def _seen() -> str | None:
    """The ``x-user`` header of the request a task sent here would carry."""
    source = current_source()
    if source is None:
        return None
    return dict(source.scope["headers"]).get(b"x-user", b"").decode()


def test_the_middleware_makes_the_request_the_source_everywhere_it_is_handled() -> None:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware)
    seen: dict[str, str | None] = {}

    def sync_dep() -> None:
        seen["def dependency"] = _seen()

    async def async_dep() -> None:
        seen["async dependency"] = _seen()

    def sync_background() -> None:
        seen["def background task"] = _seen()

    async def async_background() -> None:
        seen["async background task"] = _seen()

    @app.get("/async", dependencies=[Depends(sync_dep), Depends(async_dep)])
    async def async_route(background: BackgroundTasks) -> None:
        seen["async route"] = _seen()
        background.add_task(sync_background)
        background.add_task(async_background)

    @app.get("/def")
    def def_route(request: Request) -> dict[str, Any]:
        seen["def route"] = _seen()
        source = current_source()
        assert source is not None
        return {"same scope": source.scope is request.scope}

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(_seen()))
        await websocket.close()

    with TestClient(app) as client:
        client.get("/async", headers={"x-user": "ann"}).raise_for_status()
        response = client.get("/def", headers={"x-user": "bob"})
        with client.websocket_connect("/ws", headers={"x-user": "eve"}) as websocket:
            assert websocket.receive_text() == "eve"
    # Routing added the path parameters to the very scope the middleware recorded.
    assert response.json() == {"same scope": True}
    assert seen == {
        "def dependency": "ann",
        "async dependency": "ann",
        "async route": "ann",
        "def background task": "ann",
        "async background task": "ann",
        "def route": "bob",
    }
    assert current_source() is None


def test_the_middleware_changes_nothing_a_decorated_call_sees(app: FastAPI) -> None:
    app.add_middleware(RequestContextMiddleware)

    @with_fastapi_depends
    async def whoami(*, user: UserDep) -> str:
        return user

    @app.get("/")
    async def route(request: Request) -> list[str]:
        return [await whoami(), await whoami(_scope=request.scope)]

    with TestClient(app) as client:
        assert client.get("/", headers={"x-user": "ann"}).json() == ["nobody", "ann"]
