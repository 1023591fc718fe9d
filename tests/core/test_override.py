"""``override()``: dependencies replaced for one block, in one task or thread only."""

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any
from unittest import mock

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket

from fda_core import (
    FastApiDepsStack,
    aiter_with_fastapi_depends,
    configure,
    override,
    resolve_fastapi_depends,
    with_fastapi_depends,
)
from fda_core._graph import analysis as _analysis


def get_name() -> str:
    return "real"


def get_greeting(name: Annotated[str, Depends(get_name)]) -> str:
    return f"hello {name}"


def get_suffix() -> str:
    return "!"


@with_fastapi_depends
async def greet(
    *, greeting: Annotated[str, Depends(get_greeting)], suffix: Annotated[str, Depends(get_suffix)]
) -> str:
    return greeting + suffix


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


async def test_a_block_replaces_a_dependency_and_restores_it(app: FastAPI) -> None:
    assert await greet() == "hello real!"
    with override({get_name: lambda: "fake"}) as block:
        assert await greet() == "hello fake!"
    assert await greet() == "hello real!"
    assert app.dependency_overrides == {}  # nothing global was touched
    async with block:  # reusable, as `async with` too
        assert await greet() == "hello fake!"
    assert await greet() == "hello real!"


async def test_an_exception_in_the_block_restores_the_previous_state(app: FastAPI) -> None:
    seen: list[str] = []

    async def failing_block() -> None:
        with override({get_name: lambda: "fake"}):
            seen.append(await greet())
            raise ValueError("inside")

    with override({get_suffix: lambda: "?"}):
        with pytest.raises(ValueError, match="inside"):
            await failing_block()
        assert seen == ["hello fake?"]
        assert await greet() == "hello real?"  # the outer block, as it was
    with pytest.raises(KeyError):
        async with override({get_name: lambda: "fake"}):
            raise KeyError("async")
    assert await greet() == "hello real!"


async def test_blocks_nest_the_inner_one_winning(app: FastAPI) -> None:
    with override({get_name: lambda: "outer", get_suffix: lambda: "."}):
        with override({get_name: lambda: "inner"}):
            assert await greet() == "hello inner."
            with override({get_suffix: lambda: "?"}):
                assert await greet() == "hello inner?"
            assert await greet() == "hello inner."
        assert await greet() == "hello outer."
    assert await greet() == "hello real!"


async def test_a_scoped_override_wins_over_the_apps_for_the_same_dependency(
    app: FastAPI,
) -> None:
    app.dependency_overrides[get_name] = lambda: "app"
    app.dependency_overrides[get_suffix] = lambda: "?"
    assert await greet() == "hello app?"
    with override({get_name: lambda: "scoped"}):
        assert await greet() == "hello scoped?"  # the app's other overrides still apply
    assert await greet() == "hello app?"
    assert set(app.dependency_overrides) == {get_name, get_suffix}


async def test_app_narrows_a_block_to_one_app(app: FastAPI) -> None:
    other = FastAPI()
    on_other = with_fastapi_depends(app=other)(greet.__wrapped__)
    with override({get_name: lambda: "fake"}, app=other):
        assert await greet() == "hello real!"
        assert await on_other() == "hello fake!"
        with override({get_suffix: lambda: "?"}):  # no app: every app
            assert await greet() == "hello real?"
            assert await on_other() == "hello fake?"


@override({get_name: lambda: "decorated"})
async def test_the_decorator_form_on_an_async_test(app: FastAPI) -> None:
    assert await greet() == "hello decorated!"


@override({get_name: lambda: "decorated"})
def test_the_decorator_form_on_a_sync_test(app: FastAPI) -> None:
    assert asyncio.run(greet()) == "hello decorated!"


async def test_the_decorator_restores_after_each_call(app: FastAPI) -> None:
    @override({get_name: lambda: "decorated"})
    async def one() -> str:
        return await greet()

    @override({get_name: lambda: "decorated"})
    def failing() -> None:
        raise ValueError("boom")

    assert await one() == "hello decorated!"
    assert await greet() == "hello real!"
    with pytest.raises(ValueError, match="boom"):
        failing()
    assert await greet() == "hello real!"
    assert one.__name__ == "one"


class _AsyncCall:
    async def __call__(self) -> str:
        return await greet()


def _sync_looking(func: Callable[[], Any]) -> Callable[[], Any]:
    @functools.wraps(func)
    def wrapper() -> Any:
        return func()

    return wrapper


async def _greeting() -> str:
    return await greet()


@pytest.mark.parametrize(
    "target",
    [_sync_looking(_greeting), _AsyncCall(), functools.partial(_greeting)],
    ids=["wraps-wrapper", "async-call-object", "partial"],
)
async def test_the_decorator_holds_until_an_awaitable_it_returns_is_done(
    app: FastAPI, target: Callable[[], Any]
) -> None:
    """A plain callable that returns an awaitable (a sync-looking decorator's wrapper, an
    object with an ``async def __call__``): its body runs when awaited, under the block."""
    decorated = override({get_name: lambda: "decorated"})(target)
    assert await decorated() == "hello decorated!"
    assert await greet() == "hello real!"


def _chain(depth: int) -> list[Callable[..., Any]]:
    """Dependencies d0 <- d1 <- ... <- d{depth-1}: each adds its name to what it gets."""
    chain: list[Callable[..., Any]] = []
    for level in range(depth):
        if not chain:

            def dep() -> str:
                return "d0"

        else:

            def dep(below: Annotated[str, Depends(chain[-1])], level: int = level) -> str:
                return f"{below}>d{level}"

        chain.append(dep)
    return chain


@pytest.mark.parametrize("replaced", range(5))
async def test_an_override_reaches_a_sub_dependency_at_any_depth(
    app: FastAPI, replaced: int
) -> None:
    chain = _chain(5)

    @with_fastapi_depends
    async def top(*, value: Annotated[str, Depends(chain[-1])]) -> str:
        return value

    async def fake() -> str:  # an async replacement of a def dependency
        return "fake"

    expected = ">".join(["fake", *(f"d{level}" for level in range(replaced + 1, 5))])
    with override({chain[replaced]: fake}):
        assert await top() == expected
    assert await top() == "d0>d1>d2>d3>d4"


async def test_a_replacement_with_sub_dependencies_of_its_own(app: FastAPI) -> None:
    events: list[str] = []

    async def resource() -> AsyncIterator[str]:
        events.append("open")
        yield "resource"
        events.append("close")

    def fake_name(res: Annotated[str, Depends(resource)], request: Request) -> str:
        return f"{res}@{request.url.path}"

    with override({get_name: fake_name}):
        assert await greet(_scope={"path": "/here"}) == "hello resource@/here!"
    assert events == ["open", "close"]


async def test_a_hundred_concurrent_tasks_each_see_only_their_own_fake(app: FastAPI) -> None:
    started = asyncio.Event()
    waiting = 0

    async def task(index: int) -> list[str]:
        nonlocal waiting

        async def fake() -> str:
            await asyncio.sleep(0)
            return f"fake{index}"

        seen = []
        async with override({get_name: fake}):
            waiting += 1
            if waiting == 100:
                started.set()
            await started.wait()  # every block is open at once
            for _ in range(3):
                seen.append(await greet())
                # A task started inside the block inherits it.
                seen.append(await asyncio.create_task(greet()))
        seen.append(await greet())
        return seen

    results = await asyncio.gather(*(task(i) for i in range(100)))
    for index, seen in enumerate(results):
        assert seen == [f"hello fake{index}!"] * 6 + ["hello real!"]


async def test_a_call_under_an_override_does_not_recompile_its_plan(app: FastAPI) -> None:
    @with_fastapi_depends
    async def func(*, greeting: Annotated[str, Depends(get_greeting)]) -> str:
        return greeting

    def fake() -> str:
        return "fake"

    with mock.patch.object(_analysis, "compile_plan", wraps=_analysis.compile_plan) as compile_:
        assert await func() == "hello real"
        for _ in range(3):
            with override({get_name: fake}):
                for _ in range(3):
                    assert await func() == "hello fake"
        assert await func() == "hello real"
    assert compile_.call_count == 2  # once without, once under the override


async def test_fastapis_resolver_gets_the_scoped_overrides_too(app: FastAPI) -> None:
    """A graph the plan cannot run (here: forced) is solved by FastAPI, with the same
    overrides."""
    app.dependency_overrides[get_suffix] = lambda: "?"
    with mock.patch.object(_analysis, "compile_plan", return_value=None):
        with override({get_name: lambda: "fake"}):
            assert await greet() == "hello fake?"
        assert await greet() == "hello real?"


async def test_resolve_fastapi_depends_and_aiter_honour_the_block(app: FastAPI) -> None:
    async def func(*, greeting: Annotated[str, Depends(get_greeting)]) -> None: ...

    @aiter_with_fastapi_depends
    async def stream(*, greeting: Annotated[str, Depends(get_greeting)]) -> AsyncIterator[str]:
        yield greeting

    with override({get_name: lambda: "fake"}):
        async with resolve_fastapi_depends(func) as values:
            assert values == {"greeting": "hello fake"}
        assert [item async for item in stream()] == ["hello fake"]
    async with resolve_fastapi_depends(func) as values:
        assert values == {"greeting": "hello real"}


async def test_a_stack_resolves_under_the_callers_block(app: FastAPI) -> None:
    # The stack's task was started outside the block: what counts is where resolve() is.
    async with FastApiDepsStack(app=app) as stack:
        with override({get_name: lambda: "fake"}):
            assert await stack.resolve(get_greeting) == "hello fake"
        # (Cached values are the stack's, as with app.dependency_overrides changed.)
        assert await stack.resolve(Annotated[str, Depends(get_name, use_cache=False)]) == "real"


# --- Bad input ------------------------------------------------------------------------


def _not_a_dependency() -> Iterator[tuple[Any, str]]:
    yield Annotated[str, Depends(get_name)], "use the callable inside Depends.*get_name"
    yield Depends(get_name), "use the callable inside Depends.*get_name"
    yield "get_name", "not callable"
    yield Annotated[str, "meta"], "not callable"


@pytest.mark.parametrize(("key", "message"), list(_not_a_dependency()))
def test_a_key_that_is_not_a_dependency_callable_is_refused(key: Any, message: str) -> None:
    try:
        hash(key)
    except TypeError:  # Depends is unhashable on some FastAPI releases: no dict holds it
        with pytest.raises(TypeError, match="unhashable type: 'Depends'"):
            override({key: get_name})
        return
    with pytest.raises(TypeError, match=message):
        override({key: get_name})


@pytest.mark.parametrize("replacement", [None, "fake", 3, Depends(get_name)])
def test_a_replacement_that_is_not_callable_is_refused(replacement: Any) -> None:
    with pytest.raises(TypeError, match=r"replacement of .*get_name must be a callable"):
        override({get_name: replacement})


def test_other_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="mapping of dependency -> replacement"):
        override([(get_name, get_name)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        override({get_name: get_name}, app="app")  # type: ignore[arg-type]

    def generator() -> Iterator[None]:
        yield

    with pytest.raises(TypeError, match="cannot decorate the generator"):
        override({get_name: get_name})(generator)
    with pytest.raises(TypeError, match="decorates functions, not the class"):
        override({get_name: get_name})(type("TestSuite", (), {}))


async def test_blocks_exited_out_of_order_are_refused(app: FastAPI) -> None:
    outer, inner = override({get_name: lambda: "outer"}), override({get_name: lambda: "inner"})
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="out of order"):
        outer.__exit__(None, None, None)
    assert await greet() == "hello inner!"  # refused: nothing changed
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)
    assert await greet() == "hello real!"
    with pytest.raises(RuntimeError, match="out of order"):
        outer.__exit__(None, None, None)  # not entered any more


async def test_a_block_exited_in_another_context_is_refused(app: FastAPI) -> None:
    block = override({get_name: lambda: "fake"})
    context = contextvars.copy_context()
    context.run(block.__enter__)
    child = context.copy()  # sees the block, as a task started inside it would
    with pytest.raises(RuntimeError, match="another task or context"):
        child.run(block.__exit__, None, None, None)
    context.run(block.__exit__, None, None, None)
    assert await greet() == "hello real!"


async def test_a_block_can_replace_a_dependency_no_call_could_resolve(app: FastAPI) -> None:
    """A dependency wanting a WebSocket, replaced: the graph is planned as the block's."""

    def needs_websocket(ws: WebSocket) -> str:  # pragma: no cover - overridden
        raise AssertionError

    @with_fastapi_depends
    async def func(*, value: Annotated[str, Depends(needs_websocket)]) -> str:
        return value

    with override({needs_websocket: lambda: "fake"}):
        assert await func() == "fake"
