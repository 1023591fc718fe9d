"""A decorated function gets what a route handler with the same signature would get."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Cookie, Depends, FastAPI, Header, Query, Request, Security
from fastapi.security import SecurityScopes

from fda_core import configure, with_fastapi_depends
from fda_core._compat import DEPENDS_HAS_SCOPE


class Widget:
    """A plain class: FastAPI could not validate it, so it must pass through untouched."""


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


async def test_chain_of_async_sync_and_generator_dependencies(app: FastAPI, events: Any) -> None:
    loop_thread = threading.get_ident()

    async def settings() -> dict[str, str]:
        return {"dsn": "sqlite://"}

    async def db(cfg: Annotated[dict[str, str], Depends(settings)]) -> AsyncIterator[str]:
        events.add("db:open")
        yield f"db({cfg['dsn']})"
        events.add("db:close")

    def repo(conn: Annotated[str, Depends(db)]) -> Iterator[str]:
        events.add(f"repo:open:{threading.get_ident() != loop_thread}")
        yield f"repo[{conn}]"
        events.add("repo:close")

    def clock() -> float:
        events.add(f"clock:threadpool={threading.get_ident() != loop_thread}")
        return 1.5

    @with_fastapi_depends
    async def report(
        *, r: Annotated[str, Depends(repo)], t: Annotated[float, Depends(clock)]
    ) -> tuple[str, float]:
        events.add("body")
        return r, t

    assert await report() == ("repo[db(sqlite://)]", 1.5)
    assert events[:2] == ["db:open", "repo:open:True"]
    assert "clock:threadpool=True" in events
    assert events[-3:] == ["body", "repo:close", "db:close"]


async def test_use_cache_shares_a_dependency_within_a_call(app: FastAPI) -> None:
    calls: list[int] = []

    async def counter() -> int:
        calls.append(1)
        return len(calls)

    async def a(n: Annotated[int, Depends(counter)]) -> int:
        return n

    async def b(n: Annotated[int, Depends(counter)]) -> int:
        return n

    async def fresh(n: Annotated[int, Depends(counter, use_cache=False)]) -> int:
        return n

    @with_fastapi_depends
    async def f(
        *,
        x: Annotated[int, Depends(a)],
        y: Annotated[int, Depends(b)],
        z: Annotated[int, Depends(fresh)],
    ) -> tuple[int, int, int]:
        return x, y, z

    assert await f() == (1, 1, 2)
    # A new call is a new request: nothing is cached across calls.
    assert await f() == (3, 3, 4)


async def test_security_scopes_accumulate_as_in_a_route(app: FastAPI) -> None:
    async def scoped(security_scopes: SecurityScopes) -> list[str]:
        return sorted(security_scopes.scopes)

    async def user(
        scopes: Annotated[list[str], Security(scoped, scopes=["items:read"])],
    ) -> list[str]:
        return scopes

    @with_fastapi_depends
    async def f(*, scopes: Annotated[list[str], Security(user, scopes=["me"])]) -> list[str]:
        return scopes

    assert await f() == ["items:read", "me"]


async def test_request_header_query_and_cookie_are_read_from_the_scope(app: FastAPI) -> None:
    @with_fastapi_depends
    async def f(
        *,
        request: Request,
        token: Annotated[str, Header()],
        page: Annotated[int, Query()] = 1,
        session: Annotated[str | None, Cookie()] = None,
    ) -> tuple[str, str, int, str | None, Any]:
        return request.url.path, token, page, session, request.app

    scope = {
        "path": "/jobs",
        "query_string": b"page=3",
        "headers": [(b"token", b"abc"), (b"cookie", b"session=s1")],
    }
    assert await f(_scope=scope) == ("/jobs", "abc", 3, "s1", app)


async def test_background_tasks_run_after_teardown(app: FastAPI, events: Any) -> None:
    async def resource() -> AsyncIterator[str]:
        yield "r"
        events.add("teardown")

    @with_fastapi_depends
    async def f(tasks: BackgroundTasks, *, r: Annotated[str, Depends(resource)]) -> str:
        tasks.add_task(events.add, "background")
        events.add("body")
        return r

    assert await f() == "r"
    assert events == ["body", "teardown", "background"]


async def test_background_tasks_do_not_run_when_the_body_fails(app: FastAPI, events: Any) -> None:
    @with_fastapi_depends
    async def f(tasks: BackgroundTasks) -> None:
        tasks.add_task(events.add, "background")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await f()
    assert events == []


async def test_other_parameters_pass_through_untouched(app: FastAPI) -> None:
    async def dep() -> str:
        return "dep"

    widget = Widget()

    @with_fastapi_depends
    async def f(
        w: Widget,
        n: int,
        /,
        label: str,
        tags: list[str],
        *rest: Any,
        d: Annotated[str, Depends(dep)],
        **extra: Any,
    ) -> tuple[Any, ...]:
        return w, n, label, tags, rest, d, extra

    result = await f(widget, "not-an-int", "lbl", ["a"], 7, 8, flag=True)
    assert result == (widget, "not-an-int", "lbl", ["a"], (7, 8), "dep", {"flag": True})
    assert result[0] is widget


async def test_a_dependency_passed_by_the_caller_wins(app: FastAPI) -> None:
    calls: list[str] = []

    async def real_db() -> str:
        calls.append("real")
        return "real"

    @with_fastapi_depends
    async def f(user_id: int, db: Annotated[str, Depends(real_db)]) -> tuple[int, str]:
        return user_id, db

    assert await f(1, db="fake") == (1, "fake")
    assert calls == []
    assert await f(3) == (3, "real")
    assert calls == ["real"]


async def test_positional_arguments_fill_the_callers_own_parameters(app: FastAPI) -> None:
    """The wrapper's signature lists the caller's parameters only; positional arguments
    go to those, even when an injected parameter comes first in the definition."""
    import inspect

    async def real_db() -> str:
        return "db"

    @with_fastapi_depends
    async def cleanup(db: Annotated[str, Depends(real_db)], days: int = 30) -> str:
        return f"{db} {days}"

    assert list(inspect.signature(cleanup).parameters) == ["days"]
    assert await cleanup(7) == "db 7"
    assert await cleanup() == "db 30"
    assert await cleanup(days=1, db="fake") == "fake 1"
    with pytest.raises(TypeError, match=r"takes 1 positional argument\(s\) but 2 were given"):
        await cleanup(7, "extra")
    with pytest.raises(TypeError, match="multiple values for 'days'"):
        await cleanup(7, days=8)


async def test_an_injected_parameter_among_positional_only_ones_is_refused(
    app: FastAPI,
) -> None:
    async def real_db() -> str:
        return "db"

    @with_fastapi_depends
    async def job(db: Annotated[str, Depends(real_db)], /, n: int) -> None: ...

    with pytest.raises(TypeError, match=r"'db' stands among positional-only.*keyword-only"):
        await job(1)


async def test_sync_function_body_runs_in_the_threadpool(app: FastAPI) -> None:
    async def dep() -> str:
        return "dep"

    main = threading.get_ident()

    @with_fastapi_depends
    def f(x: int, *, d: Annotated[str, Depends(dep)]) -> tuple[int, str, bool]:
        return x, d, threading.get_ident() != main

    assert await f(4) == (4, "dep", True)


async def test_decorated_function_is_a_coroutine_function_for_starlette(app: FastAPI) -> None:
    from starlette._utils import is_async_callable

    @with_fastapi_depends
    def f() -> None: ...

    assert is_async_callable(f)
    assert asyncio.iscoroutinefunction(f)


async def test_signature_shows_only_the_callers_parameters(app: FastAPI) -> None:
    import inspect

    async def dep() -> str:
        return "dep"

    @with_fastapi_depends
    async def f(user_id: int, days: int = 30, *, d: Annotated[str, Depends(dep)]) -> str:
        """Doc."""
        return d

    assert list(inspect.signature(f).parameters) == ["user_id", "days"]
    assert f.__name__ == "f"
    assert f.__doc__ == "Doc."


@pytest.mark.skipif(not DEPENDS_HAS_SCOPE, reason="Depends(scope=) exists from FastAPI 0.121")
async def test_function_scoped_dependencies_close_before_request_scoped(
    app: FastAPI, events: Any
) -> None:
    async def request_scoped() -> AsyncIterator[str]:
        yield "req"
        events.add("request:close")

    async def function_scoped() -> AsyncIterator[str]:
        yield "fn"
        events.add("function:close")

    @with_fastapi_depends
    async def f(
        *,
        r: Annotated[str, Depends(request_scoped, scope="request")],  # type: ignore[call-arg,unused-ignore]
        g: Annotated[str, Depends(function_scoped, scope="function")],  # type: ignore[call-arg,unused-ignore]
    ) -> str:
        return r + g

    assert await f() == "reqfn"
    assert events == ["function:close", "request:close"]


async def test_generators_are_refused_with_the_decorator_to_use(app: FastAPI) -> None:
    async def agen() -> AsyncIterator[int]:
        yield 1

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="aiter_with_fastapi_depends"):
        with_fastapi_depends(agen)
    with pytest.raises(TypeError, match="iter_with_fastapi_depends"):
        with_fastapi_depends(gen)


async def test_a_body_parameter_in_a_dependency_is_a_clear_error(app: FastAPI) -> None:
    from pydantic import BaseModel

    class Payload(BaseModel):
        name: str

    async def needs_body(payload: Payload) -> str:
        return payload.name

    @with_fastapi_depends
    async def f(*, name: Annotated[str, Depends(needs_body)]) -> str:
        return name

    with pytest.raises(TypeError, match=r"'payload'.*request body.*outside a request"):
        await f()


async def test_mocks_can_be_decorated(app: FastAPI) -> None:
    """Tests replace functions with mocks; every attribute of a Mock exists."""
    from unittest.mock import AsyncMock, Mock

    assert await with_fastapi_depends(AsyncMock(return_value=5))() == 5
    assert await with_fastapi_depends(Mock(return_value=6))() == 6
