"""The sync decorators: same parameters and semantics as the async API, plain sync results,
and code running where docs/sync.md says it runs."""

import contextvars
import inspect
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError

from fda_core import configure
from fda_sync import BridgeError, with_fastapi_depends
from fda_sync._bridge import get_bridge

from .conftest import Recorder


def bridge_thread_name() -> str:
    return threading.current_thread().name


def test_def_and_async_def_give_plain_sync_callables(app: FastAPI) -> None:
    async def dep() -> int:
        return 1

    @with_fastapi_depends(app=app)
    def sync_body(x: int, *, one: Annotated[int, Depends(dep)]) -> int:
        return x + one

    @with_fastapi_depends(app=app)
    async def async_body(x: int, *, one: Annotated[int, Depends(dep)]) -> int:
        return x + one

    for func in (sync_body, async_body):
        assert not inspect.iscoroutinefunction(func)
        result = func(41)
        assert not inspect.isawaitable(result)
        assert result == 42


def test_def_body_runs_in_the_callers_thread_async_body_on_the_loop(app: FastAPI) -> None:
    local = threading.local()
    local.value = "caller's thread-local"
    where: dict[str, Any] = {}

    async def async_dep() -> str:
        where["async dep"] = threading.current_thread().name
        return "a"

    def sync_dep() -> str:
        where["sync dep"] = threading.current_thread().name
        return "s"

    @with_fastapi_depends(app=app)
    def sync_body(
        *, a: Annotated[str, Depends(async_dep)], s: Annotated[str, Depends(sync_dep)]
    ) -> Any:
        where["def body"] = threading.get_ident()
        return local.value

    @with_fastapi_depends(app=app)
    async def async_body(*, a: Annotated[str, Depends(async_dep)]) -> None:
        where["async body"] = threading.current_thread().name

    assert sync_body() == "caller's thread-local"
    assert where["def body"] == threading.get_ident()
    assert where["async dep"] == "fda-sync-bridge"
    # The caller's thread waits anyway: `def` dependencies run there, not in a pool.
    assert where["sync dep"] == threading.current_thread().name
    async_body()
    assert where["async body"] == "fda-sync-bridge"


def test_pass_through_arguments_and_caller_provided_injected_values(app: FastAPI) -> None:
    async def real_db() -> str:
        return "real"

    @with_fastapi_depends(app=app)
    def func(
        a: int, b: str = "b", *rest: int, db: Annotated[str, Depends(real_db)], **kw: Any
    ) -> Any:
        return a, b, rest, db, kw

    assert func(1) == (1, "b", (), "real", {})
    assert func(1, "x", 3, 4, extra=5) == (1, "x", (3, 4), "real", {"extra": 5})
    assert func(1, db="fake") == (1, "b", (), "fake", {})
    names = list(inspect.signature(func).parameters)
    assert names == ["a", "b", "rest", "kw"]
    assert func.__name__ == "func"


def test_call_scope_and_decoration_scope(app: FastAPI) -> None:
    async def user(authorization: str = Header()) -> str:
        return authorization.removeprefix("Bearer ")

    @with_fastapi_depends(app=app)
    def for_user(*, who: Annotated[str, Depends(user)]) -> str:
        return who

    @with_fastapi_depends(app=app, scope={"method": "POST", "path": "/custom"})
    async def custom(*, request: Request) -> tuple[str, str]:
        return request.method, request.url.path

    request_scope = {"type": "http", "headers": [(b"authorization", b"Bearer ada")]}
    assert for_user(_scope=request_scope) == "ada"
    with pytest.raises(RequestValidationError):
        for_user()
    assert custom() == ("POST", "/custom")


def test_app_is_looked_up_at_call_time_and_overrides_apply() -> None:
    async def get_db() -> str:
        return "real"

    @with_fastapi_depends
    def use_db(*, db: Annotated[str, Depends(get_db)]) -> str:
        return db

    with pytest.raises(RuntimeError, match="configure"):
        use_db()
    app = FastAPI()
    configure(app=app)
    assert use_db() == "real"

    async def get_test_db() -> str:
        return "test"

    app.dependency_overrides[get_db] = get_test_db
    assert use_db() == "test"
    other = FastAPI()
    assert with_fastapi_depends(app=other)(use_db.__wrapped__)() == "real"


def test_context_factory_variables_reach_def_and_async_bodies(app: FastAPI) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

    @contextmanager
    def set_context(ctx: Mapping[str, Any]) -> Iterator[None]:
        token = request_id.set(ctx.get("request_id", "?"))
        try:
            yield
        finally:
            request_id.reset(token)

    configure(app=app, context_factory=set_context)

    async def dep() -> str:
        return request_id.get()

    @with_fastapi_depends(context={"request_id": "abc123"})
    def sync_body(*, seen_by_dep: Annotated[str, Depends(dep)]) -> tuple[str, str]:
        return seen_by_dep, request_id.get()

    @with_fastapi_depends(context={"request_id": "def456"})
    async def async_body(*, seen_by_dep: Annotated[str, Depends(dep)]) -> tuple[str, str]:
        return seen_by_dep, request_id.get()

    assert sync_body() == ("abc123", "abc123")
    assert async_body() == ("def456", "def456")
    assert request_id.get() == "-"  # changes do not flow back to the caller


def test_async_dependency_variables_are_visible_to_a_def_body(app: FastAPI) -> None:
    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")

    async def set_tenant() -> AsyncIterator[None]:
        tenant.set("acme")
        yield

    @with_fastapi_depends(app=app)
    def body(*, _: Annotated[None, Depends(set_tenant)]) -> str:
        return tenant.get()

    assert body() == "acme"
    assert tenant.get() == "none"


def test_background_tasks_run_after_teardown_before_return(
    app: FastAPI, recorder: Recorder
) -> None:
    async def resource() -> AsyncIterator[str]:
        yield "r"
        recorder.add("teardown")

    @with_fastapi_depends(app=app)
    def body(*, tasks: BackgroundTasks, r: Annotated[str, Depends(resource)]) -> None:
        tasks.add_task(recorder.add, "background task")
        recorder.add("body")

    body()
    assert recorder.events == ["body", "teardown", "background task"]


def test_generators_are_refused_with_a_pointer_to_iter(app: FastAPI) -> None:
    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="iter_with_fastapi_depends"):
        with_fastapi_depends(gen)


def test_nested_sync_calls_from_a_def_body_and_from_a_def_dependency(app: FastAPI) -> None:
    async def leaf() -> str:
        return "leaf"

    @with_fastapi_depends(app=app)
    def inner(*, value: Annotated[str, Depends(leaf)]) -> str:
        return value

    def def_dependency() -> str:
        # FastAPI runs this in a worker thread: a blocking call from there is fine.
        return inner() + "@dep"

    @with_fastapi_depends(app=app)
    def outer(*, from_dep: Annotated[str, Depends(def_dependency)]) -> str:
        return f"{from_dep}+{inner()}"

    assert outer() == "leaf@dep+leaf"
    assert get_bridge().started()


@pytest.mark.parametrize("body_kind", ["def", "async def"])
def test_teardown_errors_reach_the_caller_after_the_body_ran(
    app: FastAPI, recorder: Recorder, body_kind: str
) -> None:
    async def flaky_close() -> AsyncIterator[str]:
        yield "conn"
        raise ConnectionError("could not close")

    Conn = Annotated[str, Depends(flaky_close)]
    if body_kind == "def":

        @with_fastapi_depends(app=app)
        def body(*, conn: Conn) -> str:
            recorder.add("body")
            return conn

    else:

        @with_fastapi_depends(app=app)
        async def body(*, conn: Conn) -> str:
            recorder.add("body")
            return conn

    with pytest.raises(ConnectionError, match="could not close"):
        body()
    assert recorder.events == ["body"]


def test_inside_a_real_app_def_route_and_background_task(recorder: Recorder) -> None:
    from fastapi.testclient import TestClient

    app = FastAPI()

    async def user(authorization: str = Header()) -> str:
        return authorization.removeprefix("Bearer ")

    @with_fastapi_depends(app=app)
    def notify(message: str, *, who: Annotated[str, Depends(user)]) -> None:
        recorder.add(f"{message} for {who}")

    @app.get("/def-route")
    def def_route(request: Request, tasks: BackgroundTasks) -> dict[str, str]:
        notify("from a def route", _scope=request.scope)  # a worker thread: allowed
        tasks.add_task(notify, "from a background task", _scope=request.scope)
        return {"ok": "yes"}

    @app.get("/async-route")
    async def async_route(request: Request) -> None:
        notify("never", _scope=request.scope)  # the server's loop: refused

    with TestClient(app) as client:
        response = client.get("/def-route", headers={"authorization": "Bearer ann"})
        assert response.json() == {"ok": "yes"}
        with pytest.raises(BridgeError, match="to_thread"):
            client.get("/async-route", headers={"authorization": "Bearer ann"})
    assert recorder.events == ["from a def route for ann", "from a background task for ann"]
