"""Every async example of SPEC.md, as written, against a small real SQLite database."""

import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from fastapi_depends_anywhere import (
    FastApiDepsStack,
    aiter_with_fastapi_depends,
    configure,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)


@dataclass
class User:
    id: int
    name: str
    email: str


class Database:
    """A real SQLite database behind an async interface, as the SPEC's examples use it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *params: Any) -> int:
        with self.conn:
            return self.conn.execute(sql, params).rowcount

    async def fetch_all(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    async def get_user(self, user_id: int) -> User:
        row = self.conn.execute("SELECT id, name, email FROM users WHERE id = ?", (user_id,))
        return User(*row.fetchone())

    async def create_user(self, name: str) -> User:
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO users (name, email) VALUES (?, ?)", (name, f"{name}@example.com")
            )
        return await self.get_user(int(cursor.lastrowid or 0))

    async def count_users(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM users").fetchone()[0])

    async def stream_all_users(self) -> AsyncIterator[User]:
        for row in self.conn.execute("SELECT id, name, email FROM users ORDER BY id").fetchall():
            yield User(*row)

    async def delete_old_records(self, days: int) -> int:
        return await self.execute("DELETE FROM logs WHERE age_days > ?", days)


class Mailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, body: str) -> None:
        self.sent.append((to, body))


MAILER = Mailer()


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, message TEXT, age_days INTEGER);"
        "INSERT INTO users (name, email) VALUES ('ada', 'ada@example.com');"
        "INSERT INTO logs (message, age_days) VALUES ('old', 90), ('new', 1);"
    )
    yield conn
    conn.close()


@pytest.fixture
def app(conn: sqlite3.Connection) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"conn": conn}

    MAILER.sent.clear()
    return FastAPI(lifespan=lifespan)


async def get_db(request: Request) -> Database:
    """Your database dependency: built on the connection the lifespan opened."""
    conn = getattr(request.state, "conn", None) or request.app.state.conn
    return Database(conn)


async def get_mailer() -> Mailer:
    return MAILER


DbDep = Annotated[Database, Depends(get_db)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]


@pytest.fixture(autouse=True)
def _share_conn(app: FastAPI, conn: sqlite3.Connection) -> None:
    app.state.conn = conn  # reachable outside the lifespan too


async def test_quick_start(app: FastAPI, conn: sqlite3.Connection) -> None:
    configure(app=app)

    @with_fastapi_depends
    async def background_task(*, db: DbDep) -> None:
        """Background task that uses FastAPI dependencies."""
        await db.execute("INSERT INTO logs (message, age_days) VALUES ('from task', 0)")

    await background_task()
    assert conn.execute("SELECT count(*) FROM logs WHERE message = 'from task'").fetchone() == (1,)


async def test_with_fastapi_depends_send_notification(app: FastAPI) -> None:
    configure(app=app)

    @with_fastapi_depends
    async def send_notification(user_id: int, *, db: DbDep, mailer: MailerDep) -> None:
        user = await db.get_user(user_id)
        await mailer.send(user.email, "Hello!")

    await send_notification(1)
    assert MAILER.sent == [("ada@example.com", "Hello!")]


async def test_aiter_stream_users(app: FastAPI) -> None:
    configure(app=app)

    @aiter_with_fastapi_depends
    async def stream_users(*, db: DbDep) -> AsyncGenerator[User, None]:
        async for user in db.stream_all_users():
            yield user

    names = [user.name async for user in stream_users()]
    assert names == ["ada"]


async def test_with_fastapi_lifecycle_run_migration(conn: sqlite3.Connection) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = conn  # startup initialises resources
        events.append("startup")
        yield
        del app.state.pool
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    configure(app=app)

    @asynccontextmanager
    async def get_db() -> AsyncIterator[Database]:
        yield Database(app.state.pool)

    async def run_all_migrations(db: Database) -> None:
        await db.execute("ALTER TABLE users ADD COLUMN active INTEGER DEFAULT 1")

    @with_fastapi_lifecycle
    async def run_migration() -> None:
        async with get_db() as db:
            await run_all_migrations(db)

    await run_migration()
    assert events == ["startup", "shutdown"]
    assert "active" in [row[1] for row in conn.execute("PRAGMA table_info(users)")]


def test_runnify_cli_report(app: FastAPI, capsys: pytest.CaptureFixture[str]) -> None:
    configure(app=app)

    @runnify_with_fastapi_depends
    async def cli_report(*, db: DbDep) -> None:
        results = await db.fetch_all("SELECT message FROM logs ORDER BY id")
        for row in results:
            print(row)

    cli_report()
    assert capsys.readouterr().out.splitlines() == ["('old',)", "('new',)"]


def test_scripts_recipe_cleanup(app: FastAPI, conn: sqlite3.Connection) -> None:
    configure(app=app)
    out: list[str] = []

    @runnify_with_fastapi_depends
    async def cleanup(days: int = 30, *, db: DbDep) -> None:
        deleted = await db.delete_old_records(days)
        out.append(f"Deleted {deleted} records")

    cleanup(30)
    assert out == ["Deleted 1 records"]
    assert conn.execute("SELECT message FROM logs").fetchall() == [("new",)]


async def test_fastapi_deps_stack_both_forms(app: FastAPI) -> None:
    async def get_cache() -> AsyncIterator[dict[str, str]]:
        cache = {"status": "up"}
        yield cache
        cache.clear()

    CacheDep = Annotated[dict[str, str], Depends(get_cache)]

    async with FastApiDepsStack(app=app) as stack:
        db = await stack.resolve(DbDep)
        cache = await stack.resolve(CacheDep)
        assert await db.count_users() == 1
        assert cache == {"status": "up"}
    assert cache == {}

    stack = FastApiDepsStack(app=app)
    await stack.start()
    db = await stack.resolve(DbDep)
    cache = await stack.resolve(CacheDep)
    assert await db.fetch_all("SELECT name FROM users") == [("ada",)]
    await stack.close()  # runs all dep teardown + lifespan shutdown
    assert cache == {}


async def test_notebook_recipe_cells(app: FastAPI) -> None:
    async def get_cache() -> dict[str, str]:
        return {"hits": "0"}

    CacheDep = Annotated[dict[str, str], Depends(get_cache)]

    # Cell 1 — start once
    stack = FastApiDepsStack(app=app)
    await stack.start()
    db = await stack.resolve(DbDep)
    cache = await stack.resolve(CacheDep)
    # Cell 2 — use freely across cells
    rows = await db.fetch_all("SELECT * FROM users LIMIT 10")
    assert rows == [(1, "ada", "ada@example.com")]
    assert cache == {"hits": "0"}
    # Cell 3 — teardown when done
    await stack.close()


async def test_dependency_overrides(app: FastAPI) -> None:
    configure(app=app)

    async def get_test_db() -> str:
        return "test-db"

    app.dependency_overrides[get_db] = get_test_db

    @with_fastapi_depends
    async def my_function(*, db: DbDep) -> Any:
        return db

    assert await my_function() == "test-db"


async def test_custom_static_scope(app: FastAPI) -> None:
    configure(app=app)

    @with_fastapi_depends(scope={"method": "POST", "path": "/custom"})
    async def my_function(*, request: Request) -> str:
        return request.method

    assert await my_function() == "POST"


def test_dynamic_scope_background_task_with_current_user(app: FastAPI) -> None:
    configure(app=app)

    @dataclass
    class AuthUser:
        id: int
        email: str

    def decode_token(token: str) -> AuthUser:
        user_id, email = token.split(":")
        return AuthUser(int(user_id), email)

    async def get_current_user(authorization: str = Header()) -> AuthUser:
        if authorization.startswith("Bearer "):
            return decode_token(authorization[7:])
        raise HTTPException(401)

    CurrentUserDep = Annotated[AuthUser, Depends(get_current_user)]
    processed: list[int] = []

    @with_fastapi_depends
    async def process_for_user(*, user: CurrentUserDep) -> None:
        processed.append(user.id)

    @with_fastapi_depends
    async def send_notification(*, user: CurrentUserDep, mailer: MailerDep) -> None:
        await mailer.send(user.email, "Task completed!")

    @app.post("/trigger")
    async def trigger(request: Request, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(process_for_user, _scope=request.scope)
        background_tasks.add_task(send_notification, _scope=request.scope)
        return {"status": "queued"}

    with TestClient(app) as client:
        response = client.post("/trigger", headers={"Authorization": "Bearer 7:bo@example.com"})
    assert response.json() == {"status": "queued"}
    assert processed == [7]
    assert MAILER.sent == [("bo@example.com", "Task completed!")]


def test_background_tasks_recipe_create_user(app: FastAPI) -> None:
    configure(app=app)

    class UserCreate(BaseModel):
        name: str

    @with_fastapi_depends
    async def send_welcome_email(user_id: int, *, db: DbDep, mailer: MailerDep) -> None:
        user = await db.get_user(user_id)
        await mailer.send(user.email, "Welcome!")

    @app.post("/users")
    async def create_user(user: UserCreate, background_tasks: BackgroundTasks, db: DbDep) -> Any:
        created = await db.create_user(user.name)
        background_tasks.add_task(send_welcome_email, created.id)
        return {"id": created.id, "name": created.name}

    with TestClient(app) as client:
        response = client.post("/users", json={"name": "grace"})
    assert response.json() == {"id": 2, "name": "grace"}
    assert MAILER.sent == [("grace@example.com", "Welcome!")]


@pytest.fixture
def configured_app(app: FastAPI) -> FastAPI:
    configure(app=app)
    return app


async def test_tests_recipe(configured_app: FastAPI) -> None:
    @with_fastapi_depends
    async def my_function(*, db: DbDep) -> int:
        return await db.count_users()

    result = await my_function()
    assert result >= 0
    assert result == 1
