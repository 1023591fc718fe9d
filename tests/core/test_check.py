"""``check_routes_and_dependencies_are_async``."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI

from fda_core import check_routes_and_dependencies_are_async


async def async_dep() -> int:
    return 1


def sync_dep() -> int:
    return 1


async def async_gen_dep() -> object:
    yield 1


def sync_gen_dep() -> object:
    yield 1


class AsyncCallable:
    async def __call__(self) -> int:
        return 1


def test_returns_none_when_everything_is_async() -> None:
    app = FastAPI(dependencies=[Depends(async_gen_dep)])
    router = APIRouter()

    @router.get("/items")
    async def items(
        a: Annotated[int, Depends(async_dep)],
        c: Annotated[int, Depends(AsyncCallable())],
    ) -> int:
        return a

    @app.websocket("/ws")
    async def ws() -> None: ...

    app.include_router(router, prefix="/v1")
    assert check_routes_and_dependencies_are_async(app) is None


def test_lists_every_sync_route_and_dependency_with_its_path() -> None:
    app = FastAPI()
    router = APIRouter(dependencies=[Depends(sync_gen_dep)])

    async def nested(x: Annotated[int, Depends(sync_dep)]) -> int:
        return x

    @router.get("/users")
    async def users(n: Annotated[int, Depends(nested)]) -> int:
        return n

    @app.get("/health")
    def health() -> str:
        return "ok"

    sub = FastAPI()

    @sub.get("/inner")
    def inner() -> str:
        return "inner"

    app.include_router(router, prefix="/api")
    app.mount("/sub", sub)

    with pytest.raises(RuntimeError) as info:
        check_routes_and_dependencies_are_async(app)
    message = str(info.value)
    assert "4 sync route(s) or dependency(ies)" in message
    assert f"dependency {__name__}.sync_gen_dep (route /api/users)" in message
    assert f"dependency {__name__}.sync_dep (route /api/users)" in message
    assert "health (/health)" in message
    assert "inner (/sub/inner)" in message


def test_spec_startup_usage() -> None:
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.on_event("startup")
    async def startup() -> None:
        check_routes_and_dependencies_are_async(app)

    @app.get("/sync")
    def sync_route() -> str:
        return "x"

    with pytest.raises(RuntimeError, match="sync_route"), TestClient(app):
        pass


def test_finds_def_routes_through_nested_mounts_and_starlette_routes() -> None:
    from starlette.endpoints import HTTPEndpoint
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount

    sub = FastAPI()

    @sub.get("/deep")
    def deep() -> int:
        return 1

    app = FastAPI(routes=[Mount("/a", routes=[Mount("/b", app=sub)])])

    def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    async def plain_async(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    class Items(HTTPEndpoint):
        def get(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("x")

    class AsyncItems(HTTPEndpoint):
        async def get(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("x")

    app.add_route("/plain", plain)
    app.add_route("/plain-async", plain_async)
    app.add_route("/items", Items)
    app.add_route("/async-items", AsyncItems)
    with pytest.raises(RuntimeError, match=r"3 sync") as raised:
        check_routes_and_dependencies_are_async(app)
    message = str(raised.value)
    assert "deep (/a/b/deep)" in message
    assert "plain (/plain)" in message
    assert "Items (/items)" in message
    assert "plain_async" not in message
    assert "AsyncItems" not in message
