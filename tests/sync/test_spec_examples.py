"""Every example of SPEC.md's "Sync usage" section, exactly as written there."""

import inspect
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from fastapi_depends_anywhere import configure
from fastapi_depends_anywhere.sync import (
    FastApiDepsStack,
    iter_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fastapi_depends_anywhere.sync.runners import runnify_with_fastapi_depends


@dataclass
class User:
    name: str


@dataclass
class Result:
    record_id: int


@dataclass
class Database:
    log: list[str]
    records: list[int] = field(default_factory=lambda: [1, 2, 40, 50])
    closed: bool = False

    def fetch(self, record_id: int) -> Result:
        assert not self.closed
        self.log.append(f"fetch {record_id}")
        return Result(record_id)

    def delete_old_records(self, days: int) -> None:
        self.log.append(f"delete older than {days} days")

    def iter_all_users(self) -> Iterator[User]:
        assert not self.closed
        yield from (User("ada"), User("grace"))


class Cache:
    pass


LOG: list[str] = []


async def get_db() -> AsyncIterator[Database]:
    db = Database(LOG)
    LOG.append("db open")
    yield db
    db.closed = True
    LOG.append("db closed")


async def get_cache() -> Cache:
    return Cache()


DbDep = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]


@pytest.fixture
def spec_app() -> FastAPI:
    LOG.clear()
    app = FastAPI()
    configure(app=app)
    return app


def test_process_record(spec_app: FastAPI) -> None:
    @with_fastapi_depends
    def process_record(record_id: int, *, db: DbDep) -> Result:
        return db.fetch(record_id)

    # No await, no asyncio.run() — just call it
    result = process_record(42)

    assert not inspect.iscoroutine(result)
    assert result == Result(42)
    assert LOG == ["db open", "fetch 42", "db closed"]
    assert with_fastapi_lifecycle  # imported by the example too


def test_nightly_cleanup_runnify(spec_app: FastAPI) -> None:
    started: list[str] = []

    @spec_app.on_event("startup")
    async def startup() -> None:
        started.append("startup")

    @spec_app.on_event("shutdown")
    async def shutdown() -> None:
        started.append("shutdown")

    @runnify_with_fastapi_depends
    def nightly_cleanup(*, db: DbDep) -> None:
        db.delete_old_records(days=30)

    assert nightly_cleanup() is None  # lifecycle + deps fully managed
    assert LOG == ["db open", "delete older than 30 days", "db closed"]
    assert started == ["startup", "shutdown"]


def test_stream_users(spec_app: FastAPI) -> None:
    @iter_with_fastapi_depends
    def stream_users(*, db: DbDep) -> Generator[User, None, None]:
        yield from db.iter_all_users()

    names = [user.name for user in stream_users()]

    assert names == ["ada", "grace"]
    assert LOG == ["db open", "db closed"]


def test_sync_stack(spec_app: FastAPI) -> None:
    app = spec_app
    with FastApiDepsStack(app=app) as stack:
        db = stack.resolve(DbDep)
        cache = stack.resolve(CacheDep)
        assert isinstance(db, Database)
        assert isinstance(cache, Cache)
        assert not db.closed
    assert db.closed
    assert LOG == ["db open", "db closed"]
