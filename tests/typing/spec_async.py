"""SPEC.md's async examples, as written, checked by mypy and pyright (never executed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from typing_extensions import assert_type

from fastapi_depends_anywhere import (
    FastApiDepsStack,
    aiter_with_fastapi_depends,
    check_routes_and_dependencies_are_async,
    configure,
    get_app,
    reset_config,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)

# --- What the examples assume ----------------------------------------------------------


class User:
    id: int
    name: str
    email: str


class AuthUser(User): ...


class Database:
    async def execute(self, sql: str) -> None: ...
    async def get_user(self, user_id: int) -> User:
        return User()

    def stream_all_users(self) -> AsyncIterator[User]:
        raise NotImplementedError

    async def fetch_all(self, sql: str) -> list[tuple[Any, ...]]:
        return []

    async def count_users(self) -> int:
        return 0

    async def delete_old_records(self, days: int) -> int:
        return 0


class Cache:
    async def ping(self) -> bool:
        return True


class Mailer:
    async def send(self, to: str, body: str) -> None: ...


async def get_cache() -> Cache:
    return Cache()


async def get_mailer() -> Mailer:
    return Mailer()


def decode_token(token: str) -> AuthUser:
    return AuthUser()


CacheDep = Annotated[Cache, Depends(get_cache)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]

# --- Quick start -----------------------------------------------------------------------

app = FastAPI()

# Configure once at startup
configure(app=app)


async def get_db() -> Database:
    """Your database dependency."""
    return Database()


DbDep = Annotated[Database, Depends(get_db)]


@with_fastapi_depends
async def background_task(*, db: DbDep) -> None:
    """Background task that uses FastAPI dependencies."""
    await db.execute("INSERT INTO logs ...")


async def quick_start() -> None:
    # Run it - dependencies are automatically resolved!
    await background_task()
    assert_type(await background_task(), None)


# --- with_fastapi_depends ----------------------------------------------------------------


@with_fastapi_depends
async def send_notification(user_id: int, *, db: DbDep, mailer: MailerDep) -> None:
    user = await db.get_user(user_id)
    await mailer.send(user.email, "Hello!")


@with_fastapi_depends
async def fetch_user(user_id: int, *, db: DbDep) -> User:
    return await db.get_user(user_id)


@with_fastapi_depends
def count_in_a_thread(*, db: DbDep) -> int:
    return 0


async def decorated_calls() -> None:
    # Dependencies are resolved automatically
    await send_notification(123)
    assert_type(await fetch_user(123), User)
    assert_type(await count_in_a_thread(), int)  # a def body: awaited, run in a thread
    assert_type(await fetch_user(1, _scope={"headers": {"x": "y"}}), User)


# --- aiter_with_fastapi_depends ----------------------------------------------------------


@aiter_with_fastapi_depends
async def stream_users(*, db: DbDep) -> AsyncGenerator[User, None]:
    async for user in db.stream_all_users():
        yield user


async def iterate() -> None:
    async for user in stream_users():
        print(user.name)
        assert_type(user, User)


# --- with_fastapi_lifecycle --------------------------------------------------------------


@asynccontextmanager
async def get_db_connection() -> AsyncGenerator[Database, None]:
    yield Database()


async def run_all_migrations(db: Database) -> None: ...


@with_fastapi_lifecycle
async def run_migration() -> None:
    # FastAPI's startup has run - resources are initialized!
    # (database connections, caches, etc.)
    async with get_db_connection() as db:
        await run_all_migrations(db)
    # FastAPI's shutdown will run after this - cleanup happens automatically


@with_fastapi_lifecycle(app=app)
async def migrated_count() -> int:
    return 0


def standalone_script() -> None:
    # In a standalone script
    asyncio.run(run_migration())
    assert_type(asyncio.run(migrated_count()), int)


# --- runnify_with_fastapi_depends --------------------------------------------------------


@runnify_with_fastapi_depends
async def cli_report(*, db: DbDep) -> None:
    results = await db.fetch_all("SELECT * FROM reports")
    for row in results:
        print(row)


@runnify_with_fastapi_depends
async def cleanup(days: int = 30, *, db: DbDep) -> None:
    deleted = await db.delete_old_records(days)
    print(f"Deleted {deleted} records")


@runnify_with_fastapi_depends(app=app)
async def user_count(*, db: DbDep) -> int:
    return await db.count_users()


def scripts() -> None:
    # No asyncio.run() needed!
    cli_report()
    cleanup(7)
    assert_type(cli_report(), None)
    assert_type(user_count(), int)


# --- FastApiDepsStack --------------------------------------------------------------------


async def stacks() -> None:
    async with FastApiDepsStack(app=app) as stack:
        db = await stack.resolve(DbDep)
        cache = await stack.resolve(CacheDep)
        # db and cache stay alive for the duration of the block
        # A dependency callable or a class gives its type. An Annotated alias gives it too
        # under mypy; pyright types that special form as Any (no TypeForm yet): annotate.
        assert_type(await stack.resolve(get_db), Database)
        assert_type(await stack.resolve(get_cache), Cache)
        assert_type(await stack.resolve(Database), Database)
        typed_db: Database = await stack.resolve(DbDep)
        print(db, cache, typed_db)

    stack = FastApiDepsStack(app=app)
    await stack.start()
    db = await stack.resolve(DbDep)
    cache = await stack.resolve(CacheDep)
    await stack.close()  # runs all dep teardown + lifespan shutdown
    print(db, cache)
    assert_type(await FastApiDepsStack().start(), FastApiDepsStack)


# --- Configuration, overrides, scope, context ------------------------------------------

configure(app=app, context_factory=lambda ctx: dict(ctx))
assert_type(get_app(), FastAPI | None)
reset_config()
my_app = FastAPI()


@with_fastapi_depends(app=my_app)
async def my_function(*, db: DbDep) -> None: ...


async def get_test_db() -> Database:
    return Database()


app.dependency_overrides[get_db] = get_test_db


@with_fastapi_depends(scope={"method": "POST", "path": "/custom"})
async def custom_scope(*, request: Request) -> str:
    print(request.method)  # "POST"
    return request.method


async def get_current_user(authorization: str = Header()) -> AuthUser:
    if authorization.startswith("Bearer "):
        return decode_token(authorization[7:])
    raise HTTPException(401)


CurrentUserDep = Annotated[AuthUser, Depends(get_current_user)]


@with_fastapi_depends
async def process_for_user(*, user: CurrentUserDep) -> None:
    # user is resolved from the passed scope's headers
    print(f"Processing for {user.id}")


@app.post("/trigger")
async def trigger(request: Request, background_tasks: BackgroundTasks) -> dict[str, str]:
    # Pass the request scope to preserve auth headers, etc.
    background_tasks.add_task(process_for_user, _scope=request.scope)
    return {"status": "queued"}


@with_fastapi_depends(context={"request_id": "abc123"})
async def with_context(*, db: DbDep) -> int:
    # Context variables are set
    return 1


async def options() -> None:
    assert_type(await my_function(), None)
    assert_type(await custom_scope(), str)
    assert_type(await with_context(), int)


# --- Low level and the route check -----------------------------------------------------


async def needs(*, db: DbDep) -> None: ...


async def low_level() -> None:
    async with resolve_fastapi_depends(needs, scope={"headers": []}) as kwargs:
        assert_type(kwargs, dict[str, Any])
        await needs(**kwargs)


@app.on_event("startup")  # pyright: ignore[reportDeprecated]  # FastAPI's deprecation
async def startup() -> None:
    check_routes_and_dependencies_are_async(app)
