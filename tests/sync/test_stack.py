"""The sync FastApiDepsStack and resolve_fastapi_depends: same semantics as the async ones."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import configure
from fda_sync import FastApiDepsStack, resolve_fastapi_depends

from .conftest import Recorder
from .test_reliability import _Interrupt


def test_start_resolve_close_with_lifespan_and_shared_cache(
    app: FastAPI, recorder: Recorder
) -> None:
    made: list[object] = []

    async def connection(request: Request) -> AsyncIterator[dict[str, Any]]:
        value = {"pool": request.state.pool}
        made.append(value)
        recorder.add("open")
        yield value
        recorder.add("close")

    Connection = Annotated[dict[str, Any], Depends(connection)]
    Fresh = Annotated[dict[str, Any], Depends(connection, use_cache=False)]

    stack = FastApiDepsStack(app=app)
    with pytest.raises(RuntimeError, match="not started"):
        stack.resolve(Connection)
    assert stack.start() is stack
    with pytest.raises(RuntimeError, match="called already"):
        stack.start()
    first = stack.resolve(Connection)
    assert stack.resolve(Connection) is first  # one cache for the whole stack
    assert stack.resolve(connection) is first
    assert stack.resolve(Fresh) is not first
    assert first == {"pool": "the-pool"}
    stack.close()
    assert recorder.events == ["startup", "open", "open", "close", "close", "shutdown"]
    with pytest.raises(RuntimeError, match="closed"):
        stack.resolve(Connection)
    stack.close()  # closing twice is a no-op
    assert recorder.events[-1] == "shutdown"


def test_close_before_start_is_a_no_op_and_a_closed_stack_starts_again(
    app: FastAPI, recorder: Recorder
) -> None:
    """As in 1.x: cleanup code may close a stack that never started, a failed start()
    leaves nothing to close, and a closed stack starts again with a fresh cache."""

    def connection() -> object:
        return object()

    stack = FastApiDepsStack(app=app)
    stack.close()
    assert recorder.events == []
    stack.start()
    first = stack.resolve(connection)
    stack.close()
    stack.start()
    assert stack.resolve(connection) is not first
    stack.close()
    assert recorder.events == ["startup", "shutdown", "startup", "shutdown"]

    @asynccontextmanager
    async def failing(app: FastAPI) -> AsyncIterator[None]:
        raise LookupError("no database")
        yield

    broken = FastApiDepsStack(app=FastAPI(lifespan=failing))

    def start_and_clean_up() -> None:
        try:
            broken.start()
        finally:
            broken.close()

    with pytest.raises(LookupError, match="no database"):  # not an error of close()
        start_and_clean_up()


def test_close_with_an_exception_throws_it_into_dependencies(
    app: FastAPI, recorder: Recorder
) -> None:
    async def transaction() -> AsyncIterator[str]:
        try:
            yield "tx"
        except Exception as exc:
            recorder.add(f"rollback {exc}")
            raise
        else:
            recorder.add("commit")

    error = RuntimeError("failed work")

    def work() -> None:
        with FastApiDepsStack(app=app) as stack:
            assert stack.resolve(transaction) == "tx"
            raise error

    with pytest.raises(RuntimeError) as raised:
        work()
    assert raised.value is error
    assert recorder.events == ["startup", "rollback failed work", "shutdown"]


def test_classes_and_the_configured_app(app: FastAPI) -> None:
    class Settings:
        def __init__(self, request: Request) -> None:
            self.pool = request.state.pool

    configure(app=app)
    with FastApiDepsStack() as stack:
        settings = stack.resolve(Settings)
    assert isinstance(settings, Settings)
    assert settings.pool == "the-pool"


def test_concurrent_resolves_from_many_threads_share_one_initialisation(app: FastAPI) -> None:
    initialised: list[int] = []

    async def expensive_singleton() -> AsyncIterator[object]:
        initialised.append(1)
        await asyncio.sleep(0.01)  # check-then-await would let others in here
        yield object()

    results: list[object] = []
    errors: list[BaseException] = []
    with FastApiDepsStack(app=app) as stack:
        start = threading.Barrier(32, timeout=120)

        def worker() -> None:
            start.wait()
            try:
                results.append(stack.resolve(expensive_singleton))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert errors == []
    assert len(results) == 32
    assert len({id(result) for result in results}) == 1
    assert initialised == [1]


def test_resolve_fastapi_depends_yields_values_and_tears_down(
    app: FastAPI, recorder: Recorder
) -> None:
    async def db() -> AsyncIterator[str]:
        recorder.add("open")
        yield "db"
        recorder.add("close")

    def handler(x: int, *, d: Annotated[str, Depends(db)]) -> None: ...

    with resolve_fastapi_depends(handler, dependency_overrides_provider=app) as values:
        assert values == {"d": "db"}
        assert recorder.events == ["open"]
    assert recorder.events == ["open", "close"]


def test_resolve_fastapi_depends_scope_and_overrides(app: FastAPI) -> None:
    async def method(request: Request) -> str:
        return request.method

    async def real() -> str:
        return "real"

    async def fake() -> str:
        return "fake"

    app.dependency_overrides[real] = fake

    def handler(
        *, m: Annotated[str, Depends(method)], r: Annotated[str, Depends(real)]
    ) -> None: ...

    with resolve_fastapi_depends(
        handler, scope={"method": "PUT"}, dependency_overrides_provider=app
    ) as values:
        assert values == {"m": "PUT", "r": "fake"}


def test_a_resolve_whose_dependency_survives_an_interrupt_leaves_the_stack_usable(
    app: FastAPI,
) -> None:
    """An interrupted resolve whose dependency catches the cancellation and returns
    anyway; then a dependency's own ``CancelledError`` (a future someone else cancelled)
    reaches the caller at once, instead of being taken for the old cancellation."""

    interrupt = _Interrupt()

    async def survives_cancel() -> str:
        interrupt.ready.set()  # Ctrl-C now, while this waits
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            return "finished anyway"
        return "slept"

    async def raises_cancelled() -> str:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future
        return "unreachable"

    with FastApiDepsStack(app=app) as stack, interrupt:
        with pytest.raises(KeyboardInterrupt):
            stack.resolve(survives_cancel)
        with pytest.raises(asyncio.CancelledError):
            stack.resolve(raises_cancelled)
        assert stack.resolve(lambda: "still usable") == "still usable"


def test_a_resolve_while_close_runs_is_refused_at_once(app: FastAPI) -> None:
    """A resolve from another thread that arrives while ``close()`` waits for a slow
    resolve is refused at once: not queued behind the teardown (it waited for good)."""
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        assert release.wait(120)
        return "slow"

    stack = FastApiDepsStack(app=app).start()
    resolving = threading.Thread(target=stack.resolve, args=(slow,))
    resolving.start()
    assert entered.wait(120)
    closing = threading.Thread(target=stack.close)
    closing.start()
    opened = stack._open
    assert opened is not None
    deadline = time.monotonic() + 120
    while not opened.closing and time.monotonic() < deadline:  # close() began
        time.sleep(0.001)
    try:
        with pytest.raises(RuntimeError, match=r"closed \(or closing\)"):
            stack.resolve(lambda: "fine")
    finally:
        release.set()
        resolving.join(240)
        closing.join(240)
    assert not closing.is_alive()
