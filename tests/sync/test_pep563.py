"""The sync API in a module with ``from __future__ import annotations``."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from fda_sync import iter_with_fastapi_depends, with_fastapi_depends


def test_dependencies_local_to_the_decorating_function_are_resolved() -> None:
    def get_session() -> str:
        return "session"

    async def get_user() -> str:
        return "user"

    SessionDep = Annotated[str, Depends(get_session)]

    @with_fastapi_depends(app=FastAPI())
    def job(*, session: SessionDep, user: Annotated[str, Depends(get_user)]) -> str:
        return f"{session}+{user}"

    @iter_with_fastapi_depends(app=FastAPI())
    def rows(*, session: SessionDep) -> object:
        yield session

    assert job() == "session+user"
    assert list(rows()) == ["session"]


def test_a_dependency_defined_after_decorating_is_named_and_the_body_not_run() -> None:
    called: list[object] = []

    @with_fastapi_depends(app=FastAPI())
    def job(*, session: Annotated[str, Depends(get_later)]) -> None:
        called.append(session)

    def get_later() -> str:
        return "later"

    with pytest.raises(TypeError, match=r"parameter 'session' .*names 'get_later'"):
        job()
    assert called == []
    assert get_later() == "later"
