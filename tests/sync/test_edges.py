"""Edges of the sync API (on both paths): what a route accepts gives the route's answer,
everything else a clear error at once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Body, Depends, FastAPI

from fda_core._compat import awaited_by_route
from fda_sync import (
    iter_with_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)


def get_session() -> str:
    return "session"


async def get_user() -> str:
    return "user"


SessionDep = Annotated[str, Depends(get_session)]
UserDep = Annotated[str, Depends(get_user)]


def logged(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def test_a_wraps_wrapper_of_an_async_def_is_awaited_as_a_route_awaits_it() -> None:
    @logged
    async def job(*, session: SessionDep, user: UserDep) -> str:
        return f"{session}+{user}"

    result = with_fastapi_depends(job, app=FastAPI())()
    if awaited_by_route(job):  # FastAPI 0.123.6+
        assert result == "session+user"
    else:
        assert inspect.iscoroutine(result)
        result.close()


def test_sync_wrappers_stay_blocking_under_other_decorators() -> None:
    """The sync API's own wrappers return results whatever they wrap: stacked, and
    under a ``functools.wraps`` wrapper, they are called, not awaited."""
    app = FastAPI()

    @with_fastapi_lifecycle(app=app)
    @logged
    @with_fastapi_depends(app=app)
    async def job(*, user: UserDep) -> str:
        return user

    assert job() == "user"


def test_staticmethod_and_classmethod_objects_are_decorated() -> None:
    app = FastAPI()

    class Service:
        prefix = "svc"

        @with_fastapi_depends(app=app)
        @staticmethod
        def static(x: int, *, session: SessionDep) -> str:
            return f"{x}:{session}"

        @with_fastapi_depends(app=app)
        @classmethod
        async def klass(cls, x: int, *, user: UserDep) -> str:
            return f"{cls.prefix}{x}:{user}"

        @iter_with_fastapi_depends(app=app)
        @staticmethod
        def rows(*, session: SessionDep) -> Any:
            yield session

    assert Service.static(1) == "1:session"
    assert Service().static(2) == "2:session"
    assert Service.klass(3) == "svc3:user"
    assert Service().klass(4) == "svc4:user"
    assert list(Service().rows()) == ["session"]


DECORATORS: list[tuple[str, Callable[..., Any]]] = [
    ("with_fastapi_depends", with_fastapi_depends),
    ("iter_with_fastapi_depends", iter_with_fastapi_depends),
    ("with_fastapi_lifecycle", with_fastapi_lifecycle),
    ("runnify_with_fastapi_depends", runnify_with_fastapi_depends),
]


@pytest.mark.chosen_path
@pytest.mark.parametrize("bad", [42, "x"])
@pytest.mark.parametrize(("name", "decorator"), DECORATORS)
def test_non_callables_are_refused_at_decoration(
    name: str, decorator: Callable[..., Any], bad: Any, path: str
) -> None:
    pattern = rf"@{name} decorates a function .*got {bad!r}"
    with pytest.raises(TypeError, match=pattern):
        decorator(bad)
    with pytest.raises(TypeError, match=pattern):
        decorator(app=FastAPI())(bad)


def get_page(
    size: Annotated[int, Body()] = 5, cursor: Annotated[str | None, Body()] = None
) -> tuple[int, str | None]:
    return size, cursor


def test_an_optional_body_parameter_gets_its_default_as_in_a_route() -> None:
    @with_fastapi_depends(app=FastAPI())
    def job(*, page: Annotated[tuple[int, str | None], Depends(get_page)]) -> Any:
        return page

    assert job() == (5, None)


def test_an_override_that_needs_a_body_is_refused_naming_it() -> None:
    def needs_body(item: Annotated[int, Body()]) -> str:
        return str(item)

    app = FastAPI()
    app.dependency_overrides[get_session] = needs_body

    @with_fastapi_depends(app=app)
    def job(*, session: SessionDep) -> str:
        return session

    pattern = r"override .*needs_body of .*get_session reads parameter 'item' .*request body"
    with pytest.raises(TypeError, match=pattern):
        job()


def test_number_header_values_are_sent_as_text_and_bad_scopes_refused() -> None:
    from fastapi import Header

    @with_fastapi_depends(app=FastAPI())
    def job(*, x_user_id: Annotated[int, Header()]) -> int:
        return x_user_id

    assert job(_scope={"headers": {"x-user-id": 42}}) == 42
    with pytest.raises(TypeError, match=r"_scope header 'x-user-id': its value must be str"):
        job(_scope={"headers": {"x-user-id": None}})
    with pytest.raises(TypeError, match=r"_scope must be a mapping .*got str"):
        job(_scope="x-user-id: 42")

    @iter_with_fastapi_depends(app=FastAPI())
    def rows(*, session: SessionDep) -> Any:
        yield session

    with pytest.raises(TypeError, match=r"_scope must be a mapping .*got str"):
        rows(_scope="x-user-id: 42")


@pytest.mark.chosen_path
def test_a_decorated_function_is_a_celery_task(path: str) -> None:
    """Celery checks calls against the signature: ``_scope`` is not part of it, and the
    task's own parameters are."""
    from celery import Celery

    celery = Celery("edges", broker="memory://", backend="cache+memory://")
    celery.conf.task_always_eager = True

    @celery.task
    @with_fastapi_depends(app=FastAPI())
    def count(n: int, *, session: SessionDep) -> str:
        return f"{n} {session}"

    assert list(inspect.signature(count).parameters) == ["n"]
    assert count.delay(3).get() == "3 session"
    with pytest.raises(TypeError):
        count.delay()  # n is missing


def test_a_parameter_named_scope_is_refused_at_decoration() -> None:
    def job(_scope: dict[str, Any]) -> None: ...

    with pytest.raises(TypeError, match=r"job has a parameter named `_scope`, which clashes"):
        with_fastapi_depends(job)
    with pytest.raises(TypeError, match=r"job has a parameter named `_scope`, which clashes"):
        runnify_with_fastapi_depends(job)


def test_scope_and_context_may_be_passed_positionally_as_in_1_x() -> None:
    from fastapi import Request

    def job(*, request: Request) -> str:
        return request.method

    assert with_fastapi_depends(job, {"method": "PUT"}, None, app=FastAPI())() == "PUT"


@pytest.mark.chosen_path
def test_the_1_x_error_phrases_start_the_messages(path: str) -> None:
    from fda_sync import FastApiDepsStack

    def job(*, session: SessionDep) -> str:
        return session

    with pytest.raises(RuntimeError, match=r"^No FastAPI app configured"):
        with_fastapi_depends(job)()
    with pytest.raises(RuntimeError, match=r"^Call start\(\)"):
        FastApiDepsStack(app=FastAPI()).resolve(SessionDep)
