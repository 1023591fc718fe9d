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
