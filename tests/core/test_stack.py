"""``FastApiDepsStack``: one long-lived request across many ``resolve()`` calls."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import FastApiDepsStack, configure


class Cache:
    """A class used directly as a dependency."""

    def __init__(self) -> None:
        self.alive = True


@pytest.fixture
def app(events: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.add("startup")
        yield {"dsn": "sqlite://"}
        events.add("shutdown")

    app = FastAPI(lifespan=lifespan)
    configure(app=app)
    return app


@pytest.fixture
def deps(events: Any) -> Any:
    async def db(request: Request) -> AsyncIterator[str]:
        events.add("db:open")
        try:
            yield f"db({request.state.dsn})"
        except Exception as exc:
            events.add(f"db:rollback:{exc}")
            raise
        events.add("db:close")

    def sync_session(conn: Annotated[str, Depends(db)]) -> Iterator[str]:
        events.add("session:open")
        yield "session"
        events.add("session:close")

    return db, sync_session


async def test_async_with_resolves_and_tears_down_in_reverse(
    app: FastAPI, deps: Any, events: Any
) -> None:
    db, session = deps
    DbDep = Annotated[str, Depends(db)]
    async with FastApiDepsStack(app=app) as stack:
        assert await stack.resolve(DbDep) == "db(sqlite://)"
        assert await stack.resolve(session) == "session"
        cache = await stack.resolve(Cache)
        assert isinstance(cache, Cache)
        events.add("body")
    assert events == [
        "startup", "db:open", "session:open", "body", "session:close", "db:close", "shutdown",
    ]  # fmt: skip


async def test_the_dependency_cache_is_shared_across_resolves(app: FastAPI) -> None:
    calls: list[int] = []

    async def counter() -> int:
        calls.append(1)
        return len(calls)

    async with FastApiDepsStack() as stack:  # the configured app
        first = await stack.resolve(counter)
        again = await stack.resolve(Annotated[int, Depends(counter)])
        fresh = await stack.resolve(Annotated[int, Depends(counter, use_cache=False)])
    assert (first, again, fresh) == (1, 1, 2)


async def test_explicit_start_resolve_close(app: FastAPI, deps: Any, events: Any) -> None:
    db, _ = deps
    stack = FastApiDepsStack(app=app)
    assert await stack.start() is stack
    assert await stack.resolve(db) == "db(sqlite://)"
    await stack.close()
    assert events == ["startup", "db:open", "db:close", "shutdown"]
    await stack.close()  # a second close is a no-op
    assert events[-1] == "shutdown"


async def test_start_resolve_and_close_from_different_tasks(
    app: FastAPI, deps: Any, events: Any
) -> None:
    """As pytest fixtures do; FastAPI 0.162.7+ needs teardown in the resolving task."""
    db, session = deps
    stack = FastApiDepsStack(app=app)
    await asyncio.create_task(stack.start())
    assert await asyncio.create_task(stack.resolve(db)) == "db(sqlite://)"
    assert await asyncio.create_task(stack.resolve(session)) == "session"
    await asyncio.create_task(stack.close())
    assert events[-3:] == ["session:close", "db:close", "shutdown"]


async def test_the_blocks_exception_is_thrown_into_dependencies(
    app: FastAPI, deps: Any, events: Any
) -> None:
    db, _ = deps
    with pytest.raises(ValueError, match="cell failed"):  # noqa: PT012
        async with FastApiDepsStack(app=app) as stack:
            await stack.resolve(db)
            raise ValueError("cell failed")
    assert events == ["startup", "db:open", "db:rollback:cell failed", "shutdown"]


async def test_a_failing_resolve_leaves_the_stack_usable(app: FastAPI) -> None:
    async def broken() -> None:
        raise LookupError("no such thing")

    async def fine() -> str:
        return "fine"

    async with FastApiDepsStack(app=app) as stack:
        with pytest.raises(LookupError, match="no such thing"):
            await stack.resolve(broken)
        assert await stack.resolve(fine) == "fine"


async def test_use_before_start_or_after_close_is_a_clear_error(app: FastAPI) -> None:
    async def dep() -> int:
        return 1

    stack = FastApiDepsStack(app=app)
    with pytest.raises(RuntimeError, match=r"^Call start\(\).*not started"):
        await stack.resolve(dep)
    await stack.start()
    with pytest.raises(RuntimeError, match="called already"):
        await stack.start()
    await stack.close()
    with pytest.raises(RuntimeError, match="closed"):
        await stack.resolve(dep)


async def test_close_before_start_is_a_no_op_and_a_closed_stack_starts_again(
    app: FastAPI, events: Any
) -> None:
    """As in 1.x: cleanup code may close a stack that never started (its start() failed),
    and a closed stack may be started again, with a fresh lifespan and cache."""

    async def connection() -> AsyncIterator[object]:
        yield object()

    stack = FastApiDepsStack(app=app)
    await stack.close()
    assert events == []
    await stack.start()
    first = await stack.resolve(connection)
    await stack.close()
    await stack.start()
    assert await stack.resolve(connection) is not first
    await stack.close()
    assert events == ["startup", "shutdown", "startup", "shutdown"]


async def test_close_after_a_failed_start_is_a_no_op() -> None:
    @asynccontextmanager
    async def failing(app: FastAPI) -> AsyncIterator[None]:
        raise LookupError("no database")
        yield

    stack = FastApiDepsStack(app=FastAPI(lifespan=failing))

    async def start_and_clean_up() -> None:
        try:
            await stack.start()
        finally:
            await stack.close()

    with pytest.raises(LookupError, match="no database"):  # not an error of close()
        await start_and_clean_up()


async def test_resolve_rejects_what_it_cannot_resolve(app: FastAPI) -> None:
    async with FastApiDepsStack(app=app) as stack:
        with pytest.raises(TypeError, match="Depends"):
            await stack.resolve(Annotated[int, "no depends here"])
        with pytest.raises(TypeError, match="Cannot resolve"):
            await stack.resolve(42)


async def test_a_failing_startup_is_raised_by_start(events: Any) -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise ConnectionError("database down")
        yield

    stack = FastApiDepsStack(app=FastAPI(lifespan=lifespan))
    with pytest.raises(ConnectionError, match="database down"):
        await stack.start()


async def test_no_app_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"configure\(app=app\)"):
        await FastApiDepsStack().start()


async def test_overrides_apply(app: FastAPI) -> None:
    async def real() -> str:
        return "real"

    async def fake() -> str:
        return "fake"

    app.dependency_overrides[real] = fake
    async with FastApiDepsStack(app=app) as stack:
        assert await stack.resolve(Annotated[str, Depends(real)]) == "fake"


SESSION_RECIPE = """
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import FastApiDepsStack

EVENTS = []


@asynccontextmanager
async def lifespan(app):
    EVENTS.append("startup")
    yield {"counter": 0}
    EVENTS.append("shutdown")


app = FastAPI(lifespan=lifespan)


class Db:
    async def count_users(self) -> int:
        return 3


async def get_db(request: Request) -> AsyncIterator[Db]:
    EVENTS.append("db:open")
    yield Db()
    EVENTS.append("db:close")


class Cache:
    async def ping(self) -> bool:
        return True


async def get_cache() -> AsyncIterator[Cache]:
    yield Cache()
    EVENTS.append("cache:close")


DbDep = Annotated[Db, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]


@pytest.fixture(scope="session")
async def stack():
    async with FastApiDepsStack(app=app) as s:
        yield s
    assert EVENTS == ["startup", "db:open", "cache:close", "db:close", "shutdown"]
    print("TEARDOWN-CHECKED")


@pytest.fixture(scope="session")
async def db(stack):
    return await stack.resolve(DbDep)


@pytest.fixture(scope="session")
async def cache(stack):
    return await stack.resolve(CacheDep)


async def test_user_count(db):
    assert await db.count_users() >= 0


async def test_cache_ping(cache):
    assert await cache.ping()


async def test_same_instances(db, stack):
    assert await stack.resolve(DbDep) is db
"""


@pytest.mark.programs
def test_the_session_fixture_recipe(pytester: pytest.Pytester) -> None:
    """The SPEC's recipe, run by pytest with the settings it needs (one session loop)."""
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = session\n"
        "asyncio_default_test_loop_scope = session\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_recipe=SESSION_RECIPE)
    result = pytester.runpytest_subprocess("-p", "asyncio", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*TEARDOWN-CHECKED*"])


def test_using_a_stack_from_another_event_loop_is_a_clear_error(app: FastAPI) -> None:
    """pytest-asyncio's default loop scopes give each test a new loop: no silent hang."""

    async def dep() -> int:
        return 1

    stack = FastApiDepsStack(app=app)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stack.start())
        with pytest.raises(RuntimeError, match=r"another event loop.*loop_scope"):
            asyncio.run(stack.resolve(dep))
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(stack.close())
        assert loop.run_until_complete(stack.resolve(dep)) == 1
        loop.run_until_complete(stack.close())
    finally:
        loop.close()


async def test_a_resolve_while_close_waits_is_refused_at_once(app: FastAPI) -> None:
    """``close()`` waits for a resolve in progress; a resolve arriving meanwhile is refused
    at once with the stack's error, instead of being queued behind the teardown."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow() -> str:
        entered.set()
        await release.wait()
        return "slow"

    async def fine() -> str:
        return "fine"

    stack = await FastApiDepsStack(app=app).start()
    in_progress = asyncio.create_task(stack.resolve(slow))
    await entered.wait()
    closing = asyncio.create_task(stack.close())
    await asyncio.sleep(0)  # close() has asked the stack to exit
    with pytest.raises(RuntimeError, match=r"closed \(or closing\)"):
        await asyncio.wait_for(stack.resolve(fine), 10)  # a hang fails, bounded
    release.set()
    assert await in_progress == "slow"
    await closing
