"""``runnify_with_fastapi_depends``: lifespan + dependencies + a blocking call."""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import configure, runnify_with_fastapi_depends


def make_app(events: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.add("startup")
        yield {"records": ["a", "b", "c"]}
        events.add("shutdown")

    return FastAPI(lifespan=lifespan)


async def get_records(request: Request) -> AsyncIterator[list[str]]:
    yield request.state.records


Records = Annotated[list[str], Depends(get_records)]


def test_runs_lifespan_dependencies_and_body_without_asyncio_run(events: Any) -> None:
    configure(app=make_app(events))

    @runnify_with_fastapi_depends
    async def cleanup(days: int = 30, *, records: Records) -> str:
        events.add("body")
        return f"deleted {len(records)} records older than {days} days"

    assert cleanup(7) == "deleted 3 records older than 7 days"
    assert cleanup() == "deleted 3 records older than 30 days"
    assert events == ["startup", "body", "shutdown"] * 2


def test_sync_body_and_explicit_app(events: Any) -> None:
    @runnify_with_fastapi_depends(app=make_app(events))
    def report(*, records: Records) -> list[str]:
        return records

    assert report() == ["a", "b", "c"]
    assert events == ["startup", "shutdown"]


def test_without_asyncer_using_it_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "asyncer", None)  # what a missing package looks like

    async def job() -> None: ...

    with pytest.raises(ImportError, match=r'pip install "fastapi-depends-anywhere\[asyncer\]"'):
        runnify_with_fastapi_depends(job)


def test_the_signature_is_the_commands_own_parameters(events: Any) -> None:
    """What Typer turns into CLI options: no injected parameter, no ``_scope``."""
    import inspect

    @runnify_with_fastapi_depends(app=make_app(events))
    async def cleanup(days: int = 30, *, records: Records) -> None: ...

    assert list(inspect.signature(cleanup).parameters) == ["days"]
