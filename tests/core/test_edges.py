"""Edges of the async API: what a route accepts gives the route's answer, everything else a
clear error at once."""

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import Annotated, Any

import pytest
from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

import fda_core
from fda_core import (
    aiter_with_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fda_core._compat import awaited_by_route


async def get_name() -> str:
    return "dep"


NameDep = Annotated[str, Depends(get_name)]


def logged(func: Callable[..., Any]) -> Callable[..., Any]:
    """A common decorator shape: a plain ``def`` wrapper made with ``functools.wraps``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


async def test_a_wraps_wrapper_of_an_async_def_is_awaited_as_a_route_awaits_it() -> None:
    @logged
    async def job(*, name: NameDep) -> str:
        return f"job({name})"

    result = await with_fastapi_depends(job, app=FastAPI())()
    if not awaited_by_route(job):  # before 0.123.6: called in a thread, like the route
        assert inspect.iscoroutine(result)
        result.close()
        return
    route = FastAPI()
    route.get("/")(job)
    with TestClient(route) as client:
        assert client.get("/").json() == result == "job(dep)"


async def test_staticmethod_and_classmethod_objects_are_decorated() -> None:
    app = FastAPI()

    class Service:
        prefix = "svc"

        @with_fastapi_depends(app=app)
        @staticmethod
        async def static(x: int, *, name: NameDep) -> str:
            return f"{x}:{name}"

        @with_fastapi_depends(app=app)
        @classmethod
        async def klass(cls, x: int, *, name: NameDep) -> str:
            return f"{cls.prefix}{x}:{name}"

    assert await Service.static(1) == "1:dep"
    assert await Service().static(2) == "2:dep"
    assert await Service.klass(3) == "svc3:dep"
    assert await Service().klass(4) == "svc4:dep"


Decorator = Callable[..., Any]
DECORATORS: list[tuple[str, Decorator]] = [
    ("with_fastapi_depends", with_fastapi_depends),
    ("aiter_with_fastapi_depends", aiter_with_fastapi_depends),
    ("with_fastapi_lifecycle", with_fastapi_lifecycle),
    ("runnify_with_fastapi_depends", runnify_with_fastapi_depends),
]


@pytest.mark.parametrize("bad", [42, "x"])
@pytest.mark.parametrize(("name", "decorator"), DECORATORS)
def test_non_callables_are_refused_at_decoration(name: str, decorator: Decorator, bad: Any) -> None:
    pattern = rf"@{name} decorates a function .*got {bad!r}"
    with pytest.raises(TypeError, match=pattern):
        decorator(bad)
    with pytest.raises(TypeError, match=pattern):
        decorator(app=FastAPI())(bad)


async def test_partials_of_coroutine_functions_are_awaited() -> None:
    async def job(x: int, *, name: NameDep) -> str:
        return f"{x}{name}"

    decorated: Callable[..., Coroutine[Any, Any, str]] = fda_core.with_fastapi_depends(
        functools.partial(job, 1), app=FastAPI()
    )
    assert await decorated() == "1dep"


def get_page(
    size: Annotated[int, Body()] = 5, cursor: Annotated[str | None, Body()] = None
) -> tuple[int, str | None]:
    return size, cursor


async def test_an_optional_body_parameter_gets_its_default_as_in_a_route() -> None:
    async def job(*, page: Annotated[tuple[int, str | None], Depends(get_page)]) -> Any:
        return list(page)

    route = FastAPI()
    route.post("/")(job)
    with TestClient(route) as client:
        expected = client.post("/").json()
    assert expected == [5, None]
    assert await with_fastapi_depends(job, app=FastAPI())() == expected


async def test_a_required_body_parameter_is_refused() -> None:
    def get_item(item: Annotated[int, Body()]) -> int:
        return item

    @with_fastapi_depends(app=FastAPI())
    async def job(*, item: Annotated[int, Depends(get_item)]) -> int:
        return item

    with pytest.raises(TypeError, match=r"parameter 'item' of dependency .*get_item.* body"):
        await job()


async def test_an_override_that_needs_a_body_is_refused_naming_it() -> None:
    async def get_real() -> int:
        return 1

    def needs_body(item: Annotated[int, Body()]) -> int:
        return item

    app = FastAPI()
    app.dependency_overrides[get_real] = needs_body

    @with_fastapi_depends(app=app)
    async def job(*, value: Annotated[int, Depends(get_real)]) -> int:
        return value

    pattern = r"override .*needs_body of .*get_real reads parameter 'item' .*request body"
    with pytest.raises(TypeError, match=pattern):
        await job()
    app.dependency_overrides[get_real] = get_page  # its body parameters have defaults
    assert await job() == (5, None)


async def test_number_header_values_are_sent_as_text_as_a_client_sends_them() -> None:
    @with_fastapi_depends(app=FastAPI())
    async def job(*, request: Request, x_user_id: Annotated[int, Header()]) -> Any:
        return x_user_id, request.headers["x-user-id"]

    assert await job(_scope={"headers": {"x-user-id": 42}}) == (42, "42")
    assert await job(_scope={"headers": [(b"x-user-id", 7)]}) == (7, "7")


async def test_header_text_beyond_latin_1_is_refused_naming_the_header() -> None:
    @with_fastapi_depends(app=FastAPI())
    async def job(*, x_name: Annotated[str, Header()]) -> str:
        return x_name

    assert await job(_scope={"headers": {"x-name": "caf\u00e9"}}) == "caf\u00e9"
    with pytest.raises(ValueError, match=r"_scope header 'x-name': .* not Latin-1 text"):
        await job(_scope={"headers": {"x-name": "\u65e5\u672c"}})


@pytest.mark.parametrize("value", [None, ["a"], True])
async def test_other_header_values_are_refused_naming_the_header(value: Any) -> None:
    @with_fastapi_depends(app=FastAPI())
    async def job(*, x_user_id: Annotated[str, Header()]) -> str:
        return x_user_id

    with pytest.raises(TypeError, match=r"_scope header 'x-user-id': its value must be str"):
        await job(_scope={"headers": {"x-user-id": value}})


async def test_text_query_strings_and_paths_are_encoded_as_a_url_carries_them() -> None:
    @with_fastapi_depends(app=FastAPI())
    async def job(*, request: Request, q: Annotated[str, Query()]) -> Any:
        return q, str(request.url), request.url.path, request.scope["raw_path"]

    scope = {"path": "/caf\u00e9 menu", "query_string": "q=caf\u00e9 cr\u00e8me&x=%41"}
    assert await job(_scope=scope) == (
        "caf\u00e9 cr\u00e8me",
        "http://localhost/caf\u00e9 menu?q=caf%C3%A9%20cr%C3%A8me&x=%41",
        "/caf\u00e9 menu",
        b"/caf%C3%A9%20menu",
    )


@pytest.mark.parametrize("bad", ["authorization: x", [("authorization", "x")], 42])
async def test_a_scope_that_is_not_a_mapping_is_refused_saying_what_it_got(bad: Any) -> None:
    @with_fastapi_depends(app=FastAPI())
    async def job(*, name: NameDep) -> str:  # reads no request: refused all the same
        return name

    with pytest.raises(TypeError, match=rf"_scope must be a mapping .*got {type(bad).__name__}"):
        await job(_scope=bad)
    with pytest.raises(TypeError, match=r"^scope must be a mapping"):
        with_fastapi_depends(scope=bad)(job)
    assert await job(_scope={}) == "dep"


class Note(BaseModel):
    text: str


async def test_a_decorated_function_works_as_a_dependency_of_a_route_with_a_body() -> None:
    """``_scope`` is accepted by calls but is no parameter of the signature FastAPI reads."""
    app = FastAPI()

    @with_fastapi_depends(app=app)
    async def author(prefix: str = "by", *, name: NameDep) -> str:
        return f"{prefix} {name}"

    assert list(inspect.signature(author).parameters) == ["prefix"]

    @app.post("/notes")
    async def add(note: Note, who: Annotated[str, Depends(author)]) -> dict[str, str]:
        return {"text": note.text, "who": who}

    with TestClient(app) as client:
        response = client.post("/notes?prefix=from", json={"text": "hi"})
    assert response.json() == {"text": "hi", "who": "from dep"}
    assert await author(_scope={"headers": {"x": "1"}}) == "by dep"


def test_a_decorated_function_is_a_typer_command_without_a_scope_option() -> None:
    import typer
    from typer.testing import CliRunner

    cli = typer.Typer()

    @cli.command()
    @runnify_with_fastapi_depends(app=FastAPI())
    async def greet(times: int = 1, *, name: NameDep) -> None:
        print(" ".join([name] * times))

    runner = CliRunner()
    assert runner.invoke(cli, ["--times", "2"]).output == "dep dep\n"
    help_text = runner.invoke(cli, ["--help"]).output
    assert "--times" in help_text
    assert "scope" not in help_text


def test_a_parameter_named_scope_is_refused_at_decoration() -> None:
    async def job(_scope: dict[str, Any]) -> None: ...

    async def rows(*, _scope: dict[str, Any]) -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match=r"job has a parameter named `_scope`, which clashes"):
        with_fastapi_depends(job)
    with pytest.raises(TypeError, match=r"rows has a parameter named `_scope`, which clashes"):
        aiter_with_fastapi_depends(app=FastAPI())(rows)


async def test_scope_and_context_may_be_passed_positionally_as_in_1_x() -> None:
    seen: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def context_factory(context: Mapping[str, Any]) -> Iterator[None]:
        seen.append(dict(context))
        yield

    app = FastAPI()
    fda_core.configure(app=app, context_factory=context_factory)

    async def job(*, request: Request) -> str:
        return request.method

    decorated = with_fastapi_depends(job, {"method": "POST"}, {"request_id": "abc"})
    assert await decorated() == "POST"
    assert seen == [{"request_id": "abc"}]
    with pytest.raises(TypeError):
        with_fastapi_depends(job, None, None, app)  # type: ignore[misc]


async def test_the_1_x_error_phrases_start_the_messages() -> None:
    """Users' own tests match 1.x's messages: they still start today's."""

    async def job(*, name: NameDep) -> str:
        return name

    with pytest.raises(RuntimeError, match=r"^No FastAPI app configured"):
        await with_fastapi_depends(job)()
    stack = fda_core.FastApiDepsStack(app=FastAPI())
    with pytest.raises(RuntimeError, match=r"^Call start\(\)"):
        await stack.resolve(NameDep)
