"""``with_fastapi_lifecycle``: startup, shutdown and lifespan state outside a server."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from fda_core import configure, with_fastapi_depends, with_fastapi_lifecycle


def lifespan_app(events: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.add("startup")
        yield {"pool": "the-pool"}
        events.add("shutdown")  # no try/finally: must run even when the body raised

    return FastAPI(lifespan=lifespan)


async def test_startup_before_and_shutdown_after_the_body(events: Any) -> None:
    app = lifespan_app(events)
    configure(app=app)

    @with_fastapi_lifecycle
    async def job(n: int) -> int:
        events.add("body")
        return n * 2

    assert await job(21) == 42
    assert events == ["startup", "body", "shutdown"]


async def test_shutdown_runs_when_the_body_raises(events: Any) -> None:
    app = lifespan_app(events)

    @with_fastapi_lifecycle(app=app)
    async def job() -> None:
        raise LookupError("body failed")

    with pytest.raises(LookupError, match="body failed"):
        await job()
    assert events == ["startup", "shutdown"]


async def test_lifespan_state_is_request_state_for_dependencies(events: Any) -> None:
    app = lifespan_app(events)
    configure(app=app)

    async def pool(request: Request) -> str:
        return str(request.state.pool)

    @with_fastapi_lifecycle
    @with_fastapi_depends
    async def job(*, p: Annotated[str, Depends(pool)]) -> str:
        return p

    assert await job() == "the-pool"


async def test_state_is_visible_to_decorated_calls_made_inside_the_body(events: Any) -> None:
    app = lifespan_app(events)
    configure(app=app)

    async def pool(request: Request) -> str:
        return str(request.state.pool)

    @with_fastapi_depends
    async def step(*, p: Annotated[str, Depends(pool)]) -> str:
        return p

    @with_fastapi_lifecycle
    async def job() -> list[str]:
        return [await step(), await step()]

    assert await job() == ["the-pool", "the-pool"]


async def test_nested_lifecycles_of_the_same_app_start_it_once(events: Any) -> None:
    app = lifespan_app(events)
    configure(app=app)

    @with_fastapi_lifecycle
    async def inner() -> str:
        events.add("inner")
        return "done"

    @with_fastapi_lifecycle
    async def outer() -> str:
        return await inner()

    assert await outer() == "done"
    assert events == ["startup", "inner", "shutdown"]


async def test_on_startup_and_on_shutdown_handlers(events: Any) -> None:
    app = FastAPI(
        on_startup=[lambda: events.add("startup")], on_shutdown=[lambda: events.add("shutdown")]
    )

    @with_fastapi_lifecycle(app=app)
    async def job() -> None:
        events.add("body")

    await job()
    assert events == ["startup", "body", "shutdown"]


async def test_on_event_handlers(events: Any) -> None:
    app = FastAPI()

    @app.on_event("startup")
    async def startup() -> None:
        events.add("startup")

    @app.on_event("shutdown")
    async def shutdown() -> None:
        events.add("shutdown")

    @with_fastapi_lifecycle(app=app)
    async def job() -> None:
        events.add("body")

    await job()
    assert events == ["startup", "body", "shutdown"]


def _router_lifespans_merged() -> bool:
    """FastAPI merges an included router's lifespan from 0.112.2."""
    probe = FastAPI()
    before = probe.router.lifespan_context
    router = APIRouter(lifespan=lambda app: None)  # type: ignore[arg-type, return-value]
    probe.include_router(router)
    return probe.router.lifespan_context is not before


@pytest.mark.skipif(
    not _router_lifespans_merged(), reason="this FastAPI runs only the app's own lifespan"
)
async def test_included_routers_lifespans_run_and_their_state_merges(events: Any) -> None:
    @asynccontextmanager
    async def router_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.add("router:startup")
        yield {"cache": "the-cache"}
        events.add("router:shutdown")

    app = lifespan_app(events)
    app.include_router(APIRouter(lifespan=router_lifespan))
    configure(app=app)

    async def both(request: Request) -> tuple[str, str]:
        return request.state.pool, request.state.cache

    @with_fastapi_lifecycle
    @with_fastapi_depends
    async def job(*, s: Annotated[tuple[str, str], Depends(both)]) -> tuple[str, str]:
        return s

    assert await job() == ("the-pool", "the-cache")
    assert events == ["startup", "router:startup", "router:shutdown", "shutdown"]


async def test_sync_body_runs_inside_the_lifespan(events: Any) -> None:
    app = lifespan_app(events)

    @with_fastapi_lifecycle(app=app)
    def job() -> str:
        events.add("sync body")
        return "ok"

    assert await job() == "ok"
    assert events == ["startup", "sync body", "shutdown"]


async def test_concurrent_lifecycle_calls_share_one_lifespan(events: Any) -> None:
    """As in a server: one startup, one shutdown, whoever needs the lifespan meanwhile."""
    import asyncio

    app = lifespan_app(events)
    started, quick_returned = asyncio.Event(), asyncio.Event()

    @with_fastapi_lifecycle(app=app)
    async def slow() -> None:
        started.set()
        await asyncio.wait_for(quick_returned.wait(), 120)  # still running when quick ends
        events.add("slow done")

    @with_fastapi_lifecycle(app=app)
    async def quick() -> None:
        await started.wait()
        events.add("quick done")

    async def quick_then_tell() -> None:
        await quick()
        quick_returned.set()

    await asyncio.gather(slow(), quick_then_tell())
    assert events == ["startup", "quick done", "slow done", "shutdown"]


async def test_a_running_stack_lifespan_is_seen_by_decorated_calls(events: Any) -> None:
    """The notebook case: after `await stack.start()`, decorated calls see request.state."""
    from fda_core import FastApiDepsStack

    app = lifespan_app(events)

    async def pool(request: Request) -> str:
        return str(request.state.pool)

    @with_fastapi_depends(app=app)
    async def cell(*, p: Annotated[str, Depends(pool)]) -> str:
        return p

    @with_fastapi_lifecycle(app=app)
    async def nested() -> str:
        return "nested"

    stack = FastApiDepsStack(app=app)
    await stack.start()
    assert await cell() == "the-pool"
    assert await nested() == "nested"  # reuses the stack's lifespan
    await stack.close()
    assert events == ["startup", "shutdown"]


async def test_a_failed_startup_is_raised_to_every_waiting_caller(events: Any) -> None:
    import asyncio

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.sleep(0.01)
        raise ConnectionError("database down")
        yield

    app = FastAPI(lifespan=lifespan)

    @with_fastapi_lifecycle(app=app)
    async def job() -> None: ...

    results = await asyncio.gather(job(), job(), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    with pytest.raises(ConnectionError):  # and a later call starts it again
        await job()
