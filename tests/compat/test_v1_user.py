"""A code base written for fastapi-depends-anywhere 1.3.0 runs unchanged on 2.x.

Every call 1.3.0's README documents, made as it documents it, against a small real app (a
SQLite file, a lifespan, a yield dependency with commit and rollback, a bearer-token user),
through 1.x's module paths and through the README's top-level paths (the ``v1`` fixture).
Nothing here uses what 1.x did not have. It runs on every matrix cell, and against the built
wheels (``nox -s release``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest
from context_logging import Context, current_context
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

import fastapi_depends_anywhere

from . import v1_by_module, v1_by_readme

# --- The code base's app -------------------------------------------------------------


@dataclass
class User:
    id: int
    name: str
    email: str


class Database:
    """A real SQLite connection, with the async methods the README's examples call and
    the sync ones its sync examples call."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False)

    async def execute(self, sql: str, *params: Any) -> int:
        return self.conn.execute(sql, params).rowcount

    async def fetch_all(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    async def get_user(self, user_id: int) -> User:
        row = self.conn.execute("SELECT id, name, email FROM users WHERE id = ?", (user_id,))
        return User(*row.fetchone())

    async def count_users(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM users").fetchone()[0])

    async def stream_all_users(self) -> AsyncIterator[User]:
        for row in self.conn.execute("SELECT id, name, email FROM users ORDER BY id"):
            yield User(*row)

    async def delete_old_records(self, days: int) -> int:
        return await self.execute("DELETE FROM logs WHERE age_days > ?", days)

    def fetch(self, record_id: int) -> tuple[Any, ...]:
        return tuple(self.conn.execute("SELECT * FROM logs WHERE id = ?", (record_id,)).fetchone())

    def iter_all_users(self) -> Iterator[User]:
        for row in self.conn.execute("SELECT id, name, email FROM users ORDER BY id"):
            yield User(*row)

    def purge_old_records(self, days: int) -> int:
        return self.conn.execute("DELETE FROM logs WHERE age_days > ?", (days,)).rowcount


class Mailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, body: str) -> None:
        self.sent.append((to, body))


MAILER = Mailer()
EVENTS: list[str] = []


def get_db(request: Request) -> Iterator[Database]:
    """One transaction per call: committed on success, rolled back on error."""
    db = Database(request.app.state.db_path)
    try:
        yield db
    except Exception:
        db.conn.rollback()
        raise
    else:
        db.conn.commit()
    finally:
        db.conn.close()
        EVENTS.append("db closed")


async def get_mailer() -> Mailer:
    return MAILER


async def get_current_user(authorization: str = Header()) -> User:
    if authorization.startswith("Bearer "):
        return User(id=7, name=authorization[7:], email=f"{authorization[7:]}@example.com")
    raise HTTPException(401)


async def get_request_id() -> str:
    return str(current_context["request_id"])


async def get_method(request: Request) -> str:
    return request.method


DbDep = Annotated[Database, Depends(get_db)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
CurrentUserDep = Annotated[User, Depends(get_current_user)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
MethodDep = Annotated[str, Depends(get_method)]


def make_app(path: Path) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        EVENTS.append("startup")
        yield
        EVENTS.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    app.state.db_path = str(path)
    return app


@pytest.fixture(params=[v1_by_module, v1_by_readme], ids=["1.x modules", "README paths"])
def v1(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The 1.x API, imported as a 1.x code base imports it; a fresh configuration."""
    api: ModuleType = request.param
    api.reset_config()
    EVENTS.clear()
    MAILER.sent.clear()
    yield api
    api.reset_config()


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    path = tmp_path / "app.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
            CREATE TABLE logs (id INTEGER PRIMARY KEY, message TEXT, age_days INTEGER);
            INSERT INTO users (name, email) VALUES ('ann', 'ann@example.com');
            INSERT INTO users (name, email) VALUES ('bob', 'bob@example.com');
            INSERT INTO logs (message, age_days) VALUES ('old', 90), ('new', 1);
            """
        )
    return make_app(path)


def rows(app: FastAPI, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(app.state.db_path)) as conn:
        return conn.execute(sql).fetchall()


# --- Configuration ---------------------------------------------------------------------


async def test_configure_get_app_reset_config_and_the_config_readers(v1: Any, app: FastAPI) -> None:
    assert v1.get_app() is None
    assert not v1.is_configured()
    if v1.get_app() is None:
        v1.configure(app=app)
    assert v1.get_app() is app
    assert v1.is_configured()
    assert v1.get_context_factory() is None

    def factory(ctx: dict[str, Any]) -> Context:
        return Context(**ctx)

    v1.configure(app=app, context_factory=factory)
    assert v1.get_context_factory() is factory
    v1.reset_config()
    assert (v1.get_app(), v1.get_context_factory(), v1.is_configured()) == (None, None, False)


async def test_no_app_is_a_runtime_error_naming_configure(v1: Any) -> None:
    async def task(*, db: DbDep) -> None: ...

    with pytest.raises(RuntimeError, match=r"No FastAPI app configured.*configure\(app="):
        await v1.with_fastapi_depends(task)()


async def test_context_logging_context(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app, context_factory=lambda ctx: Context(**ctx))

    @v1.with_fastapi_depends(context={"request_id": "abc123"})
    async def my_function(*, request_id: RequestIdDep) -> tuple[str, str]:
        # Context variables are set
        return request_id, str(current_context["request_id"])

    assert await my_function() == ("abc123", "abc123")
    assert current_context.get("request_id") is None


# --- The async decorators ----------------------------------------------------------------


async def test_quick_start_and_send_notification(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.with_fastapi_depends
    async def background_task(*, db: DbDep) -> None:
        """Background task that uses FastAPI dependencies."""
        await db.execute("INSERT INTO logs (message, age_days) VALUES ('from a task', 0)")

    await background_task()
    assert ("from a task",) in rows(app, "SELECT message FROM logs")
    assert EVENTS == ["db closed"]

    @v1.with_fastapi_depends
    async def send_notification(user_id: int, *, db: DbDep, mailer: MailerDep) -> None:
        user = await db.get_user(user_id)
        await mailer.send(user.email, "Hello!")

    await send_notification(1)
    assert MAILER.sent == [("ann@example.com", "Hello!")]


async def test_a_failing_body_rolls_the_yield_dependency_back(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.with_fastapi_depends
    async def failing(*, db: DbDep) -> None:
        await db.execute("INSERT INTO logs (message, age_days) VALUES ('never saved', 0)")
        raise LookupError("after an insert")

    with pytest.raises(LookupError, match="after an insert"):
        await failing()
    assert ("never saved",) not in rows(app, "SELECT message FROM logs")
    assert EVENTS == ["db closed"]


async def test_explicit_app_and_the_direct_call_forms(v1: Any, app: FastAPI) -> None:
    @v1.with_fastapi_depends(app=app)
    async def my_function(*, db: DbDep) -> int:
        return await db.count_users()

    assert await my_function() == 2  # no configure() needed

    async def job(*, method: MethodDep) -> str:
        return method

    # with_fastapi_depends(func, scope=None, context=None, app=None), positionally too
    assert await v1.with_fastapi_depends(job, {"method": "PUT"}, None, app=app)() == "PUT"
    assert await v1.with_fastapi_depends(job, scope={"method": "POST"}, app=app)() == "POST"


async def test_dependency_overrides(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)
    test_mailer = Mailer()

    async def get_test_mailer() -> Mailer:
        return test_mailer

    app.dependency_overrides[get_mailer] = get_test_mailer

    @v1.with_fastapi_depends
    async def my_function(*, mailer: MailerDep) -> None:
        # Uses get_test_mailer instead of get_mailer
        await mailer.send("ann@example.com", "overridden")

    await my_function()
    assert test_mailer.sent == [("ann@example.com", "overridden")]
    assert MAILER.sent == []


async def test_custom_scope_at_decoration_and_at_call_time(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.with_fastapi_depends(scope={"method": "POST", "path": "/custom"})
    async def my_function(*, request: Request) -> str:
        return request.method  # "POST" (1.3.0 itself did not pass `request`: fixed)

    assert await my_function() == "POST"

    @v1.with_fastapi_depends(scope={"method": "POST"})
    async def by_dependency(*, method: MethodDep) -> str:
        return method

    assert await by_dependency() == "POST"

    @v1.with_fastapi_depends
    async def process_for_user(*, user: CurrentUserDep) -> str:
        # user is resolved from the passed scope's headers
        return f"Processing for {user.name}"

    scope = {"type": "http", "headers": [(b"authorization", b"Bearer ann")]}
    assert await process_for_user(_scope=scope) == "Processing for ann"
    with pytest.raises(HTTPException):
        await process_for_user(_scope={"headers": [(b"authorization", b"Basic x")]})
    with pytest.raises(RequestValidationError):
        await process_for_user()  # no header at all


def test_background_tasks_carry_the_request_scope(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.with_fastapi_depends
    async def send_notification(*, user: CurrentUserDep, mailer: MailerDep) -> None:
        await mailer.send(user.email, "Task completed!")

    @app.post("/trigger")
    async def trigger(request: Request, background_tasks: BackgroundTasks) -> dict[str, str]:
        # Pass the request scope to preserve auth headers, etc.
        background_tasks.add_task(send_notification, _scope=request.scope)
        return {"status": "queued"}

    with TestClient(app) as client:
        response = client.post("/trigger", headers={"Authorization": "Bearer ann"})
    assert response.json() == {"status": "queued"}
    assert MAILER.sent == [("ann@example.com", "Task completed!")]


async def test_aiter_with_fastapi_depends(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.aiter_with_fastapi_depends
    async def stream_users(*, db: DbDep) -> AsyncGenerator[User, None]:
        async for user in db.stream_all_users():
            yield user

    assert [user.name async for user in stream_users()] == ["ann", "bob"]
    assert EVENTS == ["db closed"]

    @v1.aiter_with_fastapi_depends(app=app)
    async def stream_for(*, user: CurrentUserDep) -> AsyncGenerator[str, None]:
        yield user.name

    scope = {"headers": [(b"authorization", b"Bearer bob")]}
    assert [name async for name in stream_for(_scope=scope)] == ["bob"]


def test_with_fastapi_lifecycle_in_a_standalone_script(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.with_fastapi_lifecycle
    async def run_migration() -> None:
        # FastAPI's startup has run - resources are initialized!
        EVENTS.append("migrating")

    asyncio.run(run_migration())

    @v1.with_fastapi_depends
    async def count_users(*, db: DbDep) -> int:
        return await db.count_users()

    @v1.with_fastapi_lifecycle(app=app)
    async def report() -> int:
        return await count_users()  # type: ignore[no-any-return]

    assert asyncio.run(report()) == 2
    assert EVENTS == ["startup", "migrating", "shutdown", "startup", "db closed", "shutdown"]


def test_runnify_with_fastapi_depends_for_scripts(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.runnify_with_fastapi_depends
    async def cli_report(*, db: DbDep) -> list[tuple[Any, ...]]:
        return await db.fetch_all("SELECT name FROM users ORDER BY id")

    assert cli_report() == [("ann",), ("bob",)]  # No asyncio.run() needed!

    @v1.runnify_with_fastapi_depends(app=app)
    async def cleanup(days: int = 30, *, db: DbDep) -> int:
        return await db.delete_old_records(days)

    assert cleanup(60) == 1
    assert rows(app, "SELECT message FROM logs") == [("new",)]
    assert EVENTS == ["startup", "db closed", "shutdown"] * 2


# --- FastApiDepsStack --------------------------------------------------------------------


async def test_stack_as_an_async_context_manager_and_with_start_and_close(
    v1: Any, app: FastAPI
) -> None:
    async with v1.FastApiDepsStack(app=app) as stack:
        db = await stack.resolve(DbDep)
        mailer = await stack.resolve(MailerDep)
        # db and mailer stay alive for the duration of the block
        assert await db.count_users() == 2
        assert mailer is MAILER
        assert "db closed" not in EVENTS
    assert EVENTS == ["startup", "db closed", "shutdown"]

    EVENTS.clear()
    v1.configure(app=app)
    stack = v1.FastApiDepsStack()  # the configured app
    await stack.start()
    db = await stack.resolve(DbDep)
    rows_seen = await db.fetch_all("SELECT name FROM users LIMIT 10")
    await stack.close()  # runs all dep teardown + lifespan shutdown
    assert rows_seen == [("ann",), ("bob",)]
    assert EVENTS == ["startup", "db closed", "shutdown"]


async def test_stack_used_before_start_names_start(v1: Any, app: FastAPI) -> None:
    with pytest.raises(RuntimeError, match=r"Call start\(\)"):
        await v1.FastApiDepsStack(app=app).resolve(DbDep)


@pytest.fixture
async def stack(v1: Any, app: FastAPI) -> AsyncIterator[Any]:
    async with v1.FastApiDepsStack(app=app) as s:
        yield s


@pytest.fixture
async def db(stack: Any) -> Database:
    return await stack.resolve(DbDep)  # type: ignore[no-any-return]


async def test_stack_as_a_pytest_fixture(db: Database) -> None:
    assert await db.count_users() >= 0


async def test_resolve_fastapi_depends(v1: Any, app: FastAPI) -> None:
    async def my_function(*, db: DbDep, user: CurrentUserDep) -> str:
        return f"{user.name}: {await db.count_users()}"

    scope = {"headers": [(b"authorization", b"Bearer ann")]}
    async with v1.resolve_fastapi_depends(
        my_function, scope=scope, dependency_overrides_provider=app
    ) as deps:
        assert sorted(deps) == ["db", "user"]
        assert await my_function(**deps) == "ann: 2"
    assert EVENTS == ["db closed"]


# --- The sync API --------------------------------------------------------------------


def test_sync_with_fastapi_depends(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.sync_with_fastapi_depends
    def process_record(record_id: int, *, db: DbDep) -> tuple[Any, ...]:
        return db.fetch(record_id)

    # No await, no asyncio.run() — just call it
    assert process_record(1) == (1, "old", 90)

    @v1.sync_with_fastapi_depends(scope={"method": "PATCH"}, app=app)
    async def async_handler(*, method: MethodDep) -> str:
        return method

    assert async_handler() == "PATCH"

    @v1.sync_with_fastapi_depends
    def for_user(*, method: MethodDep, user: CurrentUserDep) -> str:
        return f"{method} by {user.name}"

    scope = {"method": "PUT", "headers": [(b"authorization", b"Bearer bob")]}
    assert for_user(_scope=scope) == "PUT by bob"


def test_sync_lifecycle_and_runners(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.sync_with_fastapi_lifecycle
    def run_migration() -> str:
        EVENTS.append("migrating")
        return "done"

    assert run_migration() == "done"

    @v1.sync_runnify_with_fastapi_depends
    def nightly_cleanup(*, db: DbDep) -> int:
        return db.purge_old_records(days=30)

    assert nightly_cleanup() == 1  # lifecycle + deps fully managed
    assert v1.sync_runnify_with_fastapi_depends(nightly_cleanup.__wrapped__, app=app)() == 0
    assert EVENTS[:3] == ["startup", "migrating", "shutdown"]
    assert EVENTS[3:] == ["startup", "db closed", "shutdown"] * 2


def test_sync_iter_with_fastapi_depends(v1: Any, app: FastAPI) -> None:
    v1.configure(app=app)

    @v1.sync_iter_with_fastapi_depends
    def stream_users(*, db: DbDep) -> Generator[User, None, None]:
        yield from db.iter_all_users()

    assert [user.name for user in stream_users()] == ["ann", "bob"]

    @v1.sync_iter_with_fastapi_depends(app=app)
    async def stream_async(*, db: DbDep) -> AsyncGenerator[str, None]:
        async for user in db.stream_all_users():
            yield user.email

    assert list(stream_async()) == ["ann@example.com", "bob@example.com"]
    assert EVENTS == ["db closed", "db closed"]


def test_sync_stack_and_resolve(v1: Any, app: FastAPI) -> None:
    with v1.SyncFastApiDepsStack(app=app) as stack:
        db = stack.resolve(DbDep)
        mailer = stack.resolve(MailerDep)
        assert (db.fetch(2), mailer) == ((2, "new", 1), MAILER)
    assert EVENTS == ["startup", "db closed", "shutdown"]

    stack = v1.SyncFastApiDepsStack(app=app)
    stack.start()
    assert stack.resolve(DbDep).fetch(1) == (1, "old", 90)
    stack.close()

    def my_function(*, db: DbDep) -> None: ...

    with v1.sync_resolve_fastapi_depends(my_function, dependency_overrides_provider=app) as deps:
        assert isinstance(deps["db"], Database)


# --- What only the README's top-level path has -------------------------------------------


def test_check_routes_and_dependencies_are_async_at_startup() -> None:
    from fastapi_depends_anywhere import check_routes_and_dependencies_are_async

    app = FastAPI()

    @app.on_event("startup")
    async def startup() -> None:
        check_routes_and_dependencies_are_async(app)

    @app.get("/users/me")
    async def me(user: CurrentUserDep, mailer: MailerDep) -> str:
        return user.name

    with TestClient(app) as client:  # every route and dependency async: starts
        assert client.get("/users/me", headers={"Authorization": "Bearer ann"}).json() == "ann"

    @app.get("/users/count")
    async def count(db: DbDep) -> int:  # get_db is a `def` dependency
        return await db.count_users()

    with pytest.raises(RuntimeError, match="get_db"), TestClient(app):
        pass


def test_the_top_level_names_are_the_1_x_modules_objects() -> None:
    for name in v1_by_module.__all__:
        assert getattr(v1_by_module, name) is getattr(v1_by_readme, name), name
    assert v1_by_readme.configure is fastapi_depends_anywhere.configure
