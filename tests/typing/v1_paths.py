"""1.x's module paths, as a 1.x code base imports them, checked by mypy and pyright (never
executed): each name has its 2.x type, and decorated functions keep their return types."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from typing_extensions import assert_type

from fastapi_depends_anywhere.config import (
    configure,
    get_app,
    get_context_factory,
    is_configured,
    reset_config,
)
from fastapi_depends_anywhere.core import (
    aiter_with_fastapi_depends,
    resolve_fastapi_depends,
    with_fastapi_depends,
)
from fastapi_depends_anywhere.lifecycle import with_fastapi_lifecycle
from fastapi_depends_anywhere.runners import runnify_with_fastapi_depends
from fastapi_depends_anywhere.stack import FastApiDepsStack
from fastapi_depends_anywhere.sync.core import iter_with_fastapi_depends
from fastapi_depends_anywhere.sync.core import resolve_fastapi_depends as sync_resolve
from fastapi_depends_anywhere.sync.core import with_fastapi_depends as sync_depends
from fastapi_depends_anywhere.sync.lifecycle import with_fastapi_lifecycle as sync_lifecycle
from fastapi_depends_anywhere.sync.runners import runnify_with_fastapi_depends as sync_runnify
from fastapi_depends_anywhere.sync.stack import FastApiDepsStack as SyncFastApiDepsStack


class Database:
    async def count(self) -> int:
        return 0

    def fetch(self, record_id: int) -> str:
        return ""


def get_db() -> Iterator[Database]:
    yield Database()


DbDep = Annotated[Database, Depends(get_db)]

app = FastAPI()

# --- config: the readers answer None / False when nothing is configured -----------------

if get_app() is None:
    configure(app=app)
assert_type(get_app(), FastAPI | None)
assert_type(is_configured(), bool)
assert_type(get_context_factory(), Callable[[Mapping[str, Any]], Any] | None)
reset_config()

# --- core, lifecycle, runners, stack --------------------------------------------------------


@with_fastapi_depends
async def count(*, db: DbDep) -> int:
    return await db.count()


@with_fastapi_depends(app=app)
def fetch(record_id: int, *, db: DbDep) -> str:
    return db.fetch(record_id)


@aiter_with_fastapi_depends
async def stream(*, db: DbDep) -> AsyncGenerator[int, None]:
    yield await db.count()


@with_fastapi_lifecycle
async def migrate() -> str:
    return "migrated"


@runnify_with_fastapi_depends
async def report(*, db: DbDep) -> int:
    return await db.count()


async def async_code_base() -> None:
    assert_type(await count(), int)
    assert_type(await fetch(1), str)
    assert_type(await migrate(), str)
    async for value in stream():
        assert_type(value, int)
    async with FastApiDepsStack(app=app) as stack:
        db: Database = await stack.resolve(DbDep)  # an Annotated alias: Any to the checkers
        assert_type(await stack.resolve(get_db), Database)
        assert_type(await db.count(), int)
    async with resolve_fastapi_depends(count, dependency_overrides_provider=app) as deps:
        assert_type(deps, dict[str, Any])


assert_type(report(), int)

# --- sync.core, sync.lifecycle, sync.runners, sync.stack ---------------------------------


@sync_depends
def process_record(record_id: int, *, db: DbDep) -> str:
    return db.fetch(record_id)


@sync_depends(scope={"method": "POST"})
async def async_handler(*, db: DbDep) -> int:
    return await db.count()


@iter_with_fastapi_depends
def records(*, db: DbDep) -> Generator[str, None, None]:
    yield db.fetch(1)


@iter_with_fastapi_depends
async def async_records(*, db: DbDep) -> AsyncIterator[int]:
    yield await db.count()


@sync_lifecycle
def sync_migrate() -> str:
    return "migrated"


@sync_runnify
def nightly_cleanup(*, db: DbDep) -> str:
    return db.fetch(30)


assert_type(process_record(42), str)
assert_type(async_handler(), int)
assert_type(list(records()), list[str])
assert_type(list(async_records()), list[int])
assert_type(sync_migrate(), str)
assert_type(nightly_cleanup(), str)
with SyncFastApiDepsStack(app=app) as sync_stack:
    sync_db: Database = sync_stack.resolve(DbDep)
    assert_type(sync_stack.resolve(get_db), Database)
with sync_resolve(process_record, dependency_overrides_provider=app) as values:
    assert_type(values, dict[str, Any])
