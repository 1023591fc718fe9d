"""Side by side: the same signature as a real route (through TestClient) and decorated."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, Query, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import SecurityScopes
from fastapi.testclient import TestClient

from fda_core import with_fastapi_depends


def build_graph(log: list[str]) -> Callable[..., Any]:
    """A graph with every kind of node: async, sync, both generators, cache, scopes."""

    async def settings() -> dict[str, str]:
        log.append("settings")
        return {"env": "test"}

    def sync_gen(cfg: Annotated[dict[str, str], Depends(settings)]) -> Iterator[str]:
        log.append("sync_gen:open")
        yield f"sg:{cfg['env']}"
        log.append("sync_gen:close")

    async def async_gen(
        cfg: Annotated[dict[str, str], Depends(settings)], sg: Annotated[str, Depends(sync_gen)]
    ) -> AsyncIterator[str]:
        log.append("async_gen:open")
        yield f"ag:{sg}:{cfg['env']}"
        log.append("async_gen:close")

    def plain(x_token: Annotated[str, Header()], page: Annotated[int, Query()] = 1) -> str:
        log.append("plain")
        return f"{x_token}:{page}"

    async def uncached(cfg: Annotated[dict[str, str], Depends(settings, use_cache=False)]) -> str:
        return cfg["env"]

    async def scoped(security_scopes: SecurityScopes) -> str:
        return " ".join(sorted(security_scopes.scopes))

    async def endpoint(
        a: Annotated[str, Depends(async_gen)],
        p: Annotated[str, Depends(plain)],
        u: Annotated[str, Depends(uncached)],
        s: Annotated[str, Security(scoped, scopes=["read", "write"])],
    ) -> dict[str, str]:
        log.append("endpoint")
        return {"a": a, "p": p, "u": u, "s": s}

    return endpoint


def test_values_calls_and_teardown_order_match_a_real_route() -> None:
    route_log: list[str] = []
    app = FastAPI()
    app.get("/parity")(build_graph(route_log))
    with TestClient(app) as client:
        response = client.get("/parity?page=4", headers={"x-token": "tok"})
    assert response.status_code == 200

    our_log: list[str] = []
    decorated = with_fastapi_depends(build_graph(our_log), app=FastAPI())
    ours = _run(decorated, {"query_string": b"page=4", "headers": {"x-token": "tok"}})

    assert ours == response.json()
    assert our_log == route_log
    assert our_log.count("settings") == 2  # cached once, plus the use_cache=False call


@pytest.mark.parametrize("headers", [{}, {"x-token": "tok"}], ids=["missing", "present"])
def test_validation_errors_match_a_real_route(headers: dict[str, str]) -> None:
    app = FastAPI()

    def plain(x_token: Annotated[str, Header()], page: Annotated[int, Query()] = 1) -> str:
        return f"{x_token}:{page}"

    @app.get("/v")
    async def route(p: Annotated[str, Depends(plain)]) -> str:
        return p

    with TestClient(app) as client:
        response = client.get("/v?page=notanumber", headers=headers)
    assert response.status_code == 422
    route_locs = sorted(tuple(e["loc"]) for e in response.json()["detail"])

    decorated = with_fastapi_depends(route, app=app)
    with pytest.raises(RequestValidationError) as info:
        _run(decorated, {"query_string": b"page=notanumber", "headers": headers})
    assert sorted(tuple(e["loc"]) for e in info.value.errors()) == route_locs


def _run(func: Callable[..., Any], scope: dict[str, Any]) -> Any:
    return asyncio.run(func(_scope=scope))
