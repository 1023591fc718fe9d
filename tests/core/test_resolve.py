"""``resolve_fastapi_depends``: the low-level async context manager."""

from collections.abc import AsyncIterator
from typing import Annotated, Any, ClassVar

import pytest
from fastapi import Depends, FastAPI, Header

from fda_core import configure, resolve_fastapi_depends


async def test_yields_the_resolved_keyword_arguments_and_tears_down(events: Any) -> None:
    configure(app=FastAPI())

    async def db() -> AsyncIterator[str]:
        yield "db"
        events.add("db:close")

    async def target(
        user_id: int, *, conn: Annotated[str, Depends(db)], token: str = Header()
    ) -> None:
        raise AssertionError("never called")

    async with resolve_fastapi_depends(target, scope={"headers": {"token": "t"}}) as values:
        assert values == {"conn": "db", "token": "t"}
        assert events == []
    assert events == ["db:close"]


async def test_overrides_provider_is_any_object_with_overrides() -> None:
    async def real() -> str:
        return "real"

    class Provider:
        dependency_overrides: ClassVar[dict[Any, Any]] = {real: lambda: "override"}

    async def target(value: Annotated[str, Depends(real)]) -> None: ...

    async with resolve_fastapi_depends(target, dependency_overrides_provider=Provider()) as values:
        assert values == {"value": "override"}
    async with resolve_fastapi_depends(target) as values:  # no app configured: no overrides
        assert values == {"value": "real"}


async def test_the_configured_apps_overrides_apply_by_default() -> None:
    app = FastAPI()
    configure(app=app)

    async def real() -> str:
        return "real"

    app.dependency_overrides[real] = lambda: "app-override"

    async def target(value: Annotated[str, Depends(real)]) -> None: ...

    async with resolve_fastapi_depends(target) as values:
        assert values == {"value": "app-override"}


async def test_the_blocks_exception_reaches_yield_dependencies(events: Any) -> None:
    async def session() -> AsyncIterator[str]:
        try:
            yield "s"
        except ValueError:
            events.add("rollback")
            raise

    async def target(s: Annotated[str, Depends(session)]) -> None: ...

    with pytest.raises(ValueError, match="x"):
        async with resolve_fastapi_depends(target):
            raise ValueError("x")
    assert events == ["rollback"]
