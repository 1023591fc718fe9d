"""The ambient scope (``ambient_scope()``) with the sync API, on both paths (the bridge
loop copies the caller's context; the caller's thread reads it itself): calls, nested
calls, generators, stacks, ``resolve_fastapi_depends``, many threads at once; and a sync
call given ``_scope=`` is the source of the tasks its body sends, ``def`` or ``async def``.
"""

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header

from fda_core._graph.ambient import current_source
from fda_sync import (
    FastApiDepsStack,
    ambient_scope,
    iter_with_fastapi_depends,
    resolve_fastapi_depends,
    with_fastapi_depends,
)

THREADS = 16
CALLS = 20


def get_user(x_user: Annotated[str, Header()] = "nobody") -> str:
    return x_user


async def get_user_async(x_user: Annotated[str, Header()] = "nobody") -> str:
    return x_user


UserDep = Annotated[str, Depends(get_user)]
AsyncUserDep = Annotated[str, Depends(get_user_async)]


def _scope(name: str) -> dict[str, Any]:
    return {"headers": {"x-user": name}}


def test_calls_without_scope_get_the_ambient_one_nested_too(app: FastAPI, path: str) -> None:
    @with_fastapi_depends(app=app)
    def inner(*, user: AsyncUserDep) -> str:
        return user

    @with_fastapi_depends(app=app)
    def outer(*, user: UserDep) -> list[str]:
        return [user, inner()]

    @with_fastapi_depends(app=app)
    async def outer_async(*, user: AsyncUserDep) -> list[str]:
        return [user, user]

    assert outer() == ["nobody", "nobody"]
    with ambient_scope(_scope("ann")):
        assert outer() == ["ann", "ann"]
        assert outer_async() == ["ann", "ann"]
        assert outer(_scope=_scope("bob")) == ["bob", "ann"]  # its own wins; nested: ambient
    assert outer() == ["nobody", "nobody"]


def test_generators_stacks_and_resolve_started_in_it_get_it(app: FastAPI, path: str) -> None:
    @iter_with_fastapi_depends(app=app)
    def users(*, user: UserDep) -> Iterator[str]:
        yield user

    @iter_with_fastapi_depends(app=app)
    async def users_async(*, user: AsyncUserDep) -> AsyncIterator[str]:
        yield user

    def lookup(user: AsyncUserDep) -> str:
        return user

    with ambient_scope(_scope("ann")):
        assert [*users(), *users_async()] == ["ann", "ann"]
        with FastApiDepsStack(app=app) as stack:
            assert stack.resolve(UserDep) == "ann"
            assert stack.resolve(AsyncUserDep) == "ann"
        with resolve_fastapi_depends(lookup) as values:
            assert values == {"user": "ann"}


def test_each_thread_sees_only_its_own(app: FastAPI, path: str) -> None:
    @with_fastapi_depends(app=app)
    def whoami(*, user: UserDep, again: AsyncUserDep) -> tuple[str, str]:
        return user, again

    barrier = threading.Barrier(THREADS)
    mismatches: list[tuple[str, tuple[str, str]]] = []

    def work(name: str) -> None:
        barrier.wait(timeout=120)
        with ambient_scope(_scope(name)):
            for _ in range(CALLS):
                seen = whoami()
                if seen != (name, name):
                    mismatches.append((name, seen))

    threads = [threading.Thread(target=work, args=(f"user-{n}",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []


def test_a_call_given_scope_is_the_source_of_what_its_body_sends(app: FastAPI, path: str) -> None:
    def sent() -> Any:
        source = current_source()
        return None if source is None else dict(source.scope)

    @with_fastapi_depends(app=app)
    def body(*, user: UserDep) -> tuple[str, Any]:
        return user, sent()

    @with_fastapi_depends(app=app)
    async def body_async(*, user: AsyncUserDep) -> tuple[str, Any]:
        return user, sent()

    ann = _scope("ann")
    assert body(_scope=ann) == ("ann", ann)
    assert body_async(_scope=ann) == ("ann", ann)
    assert body() == ("nobody", None)
    assert current_source() is None
