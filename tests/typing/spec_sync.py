"""SPEC.md's sync examples, as written, checked by mypy and pyright (never executed)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from typing_extensions import assert_type

from fastapi_depends_anywhere.sync import (
    FastApiDepsStack,
    iter_with_fastapi_depends,
    resolve_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fastapi_depends_anywhere.sync.runners import runnify_with_fastapi_depends

# --- What the examples assume ----------------------------------------------------------


class User:
    name: str


class Result:
    value: int


class Database:
    def fetch(self, record_id: int) -> Result:
        return Result()

    def delete_old_records(self, days: int) -> int:
        return 0

    def iter_all_users(self) -> Iterator[User]:
        return iter([])


class Cache: ...


def get_db() -> Iterator[Database]:
    yield Database()


def get_cache() -> Cache:
    return Cache()


DbDep = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]
app = FastAPI()

# --- The examples ------------------------------------------------------------------------


@with_fastapi_depends
def process_record(record_id: int, *, db: DbDep) -> Result:
    return db.fetch(record_id)


# No await, no asyncio.run() — just call it
result = process_record(42)
assert_type(result, Result)
assert_type(process_record(42, _scope={"headers": {"authorization": "Bearer t"}}), Result)


@with_fastapi_depends
async def process_async(record_id: int, *, db: DbDep) -> Result:
    return db.fetch(record_id)


assert_type(process_async(42), Result)  # an async def body: still a plain sync callable


@runnify_with_fastapi_depends
def nightly_cleanup(*, db: DbDep) -> None:
    db.delete_old_records(days=30)


if __name__ == "__main__":
    nightly_cleanup()  # lifecycle + deps fully managed
assert_type(nightly_cleanup(), None)


@iter_with_fastapi_depends
def stream_users(*, db: DbDep) -> Generator[User, None, None]:
    yield from db.iter_all_users()


for user in stream_users():
    print(user.name)
    assert_type(user, User)
assert_type(stream_users(), Generator[User, None, None])

with FastApiDepsStack(app=app) as stack:
    db = stack.resolve(DbDep)
    cache = stack.resolve(CacheDep)
    assert_type(stack.resolve(Cache), Cache)
    typed_db: Database = stack.resolve(DbDep)
    assert_type(stack.resolve(get_cache), Cache)
    assert_type(stack, FastApiDepsStack)


@with_fastapi_lifecycle
def in_lifespan() -> int:
    return 1


@with_fastapi_lifecycle
async def in_lifespan_async() -> str:
    return ""


assert_type(in_lifespan(), int)
assert_type(in_lifespan_async(), str)


@with_fastapi_depends(app=app, scope={"method": "POST"})
def with_options(*, db: DbDep) -> float:
    return 0.0


assert_type(with_options(), float)


def needs(*, db: DbDep) -> None: ...


context: AbstractContextManager[dict[str, Any]] = resolve_fastapi_depends(needs)
with resolve_fastapi_depends(needs) as kwargs:
    assert_type(kwargs, dict[str, Any])
    needs(**kwargs)
