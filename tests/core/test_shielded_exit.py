"""``ShieldedExit`` against FastAPI's own ``_asynccontextmanager_with_shielded_exit``.

FastAPI 0.162.7+ shields an async-generator dependency's teardown with the call's shared
cancel scope. ``fda_core._shielded.ShieldedExit`` takes the same steps without a second
generator; here both wrap the same generated dependencies (set-up, body and teardown that
succeed, raise, suppress, await, or get cancelled by an enclosing scope; the shared scope
shielded already or not; one or two dependencies) and must leave the same trace: what
ran, what was raised, what the scopes saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import fastapi.concurrency
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fda_core import _compat
from fda_core._shielded import ShieldedExit

FASTAPIS: Any = getattr(fastapi.concurrency, "_asynccontextmanager_with_shielded_exit", None)

SETUPS = ("ok", "raise")
BODIES = ("ok", "raise", "cancelled")
TEARDOWNS = ("ok", "raise", "suppress", "replace", "awaits", "cancelled while awaiting")
#: How the stack is closed after the body: by ``async with`` (the body's exception being
#: handled meanwhile), or by a call of ``__aexit__`` outside any handler, as a caller that
#: caught the body's exception first does (the sync API's loop side).
CLOSES = ("async with", "explicit")


class Boom(Exception):
    pass


def dependency(
    name: str, setup: str, teardown: str, log: list[str], outer: anyio.CancelScope
) -> Callable[[], AsyncIterator[str]]:
    async def dep() -> AsyncIterator[str]:
        log.append(f"{name} set-up")
        if setup == "raise":
            raise Boom(f"{name} set-up")
        caught = False
        try:
            yield name
        except BaseException as exc:
            log.append(f"{name} saw {type(exc).__name__}")
            if teardown == "suppress":
                return
            if teardown != "replace":
                raise
            caught = True
        finally:
            if teardown == "cancelled while awaiting":
                outer.cancel()
            if teardown in ("awaits", "cancelled while awaiting"):
                await asyncio.sleep(0)
                log.append(f"{name} awaited")
            log.append(f"{name} teardown")
            if teardown == "raise":
                raise Boom(f"{name} teardown")
        if caught:  # raised after its handler: chained to what is handled meanwhile
            raise Boom(f"{name} replaced")

    return dep


async def trace(
    wrap: Callable[[AbstractAsyncContextManager[Any], anyio.CancelScope], Any],
    shielded: bool,
    steps: list[tuple[str, str]],
    body: str,
    close: str = "async with",
) -> list[str]:
    log: list[str] = []
    outcome = "returned"

    async def run_body(cleanup: anyio.CancelScope) -> None:
        log.append("body")
        if body == "raise":
            raise Boom("body")
        if body == "cancelled":
            outer.cancel()
            await asyncio.sleep(0)  # a checkpoint: cancelled here, unless shielded
        log.append(f"body done, shield {cleanup.shield}")

    async def enter(stack: AsyncExitStack) -> anyio.CancelScope:
        cleanup = stack.enter_context(anyio.CancelScope())
        cleanup.shield = shielded
        for index, (setup, teardown) in enumerate(steps):
            dep = dependency(f"d{index}", setup, teardown, log, outer)
            manager = wrap(asynccontextmanager(dep)(), cleanup)
            log.append(f"got {await stack.enter_async_context(manager)}")
        return cleanup

    with anyio.CancelScope() as outer:
        try:
            if close == "async with":
                async with AsyncExitStack() as stack:
                    cleanup = await enter(stack)
                    await run_body(cleanup)
            else:
                stack = AsyncExitStack()
                error: BaseException | None = None
                try:
                    cleanup = await enter(stack)
                    await run_body(cleanup)
                except BaseException as exc:
                    error = exc
                if error is None:
                    await stack.aclose()
                elif not await stack.__aexit__(type(error), error, error.__traceback__):
                    raise error
            log.append(f"after teardown, shield {cleanup.shield}")
        except BaseException as exc:
            # (A cancellation's message names the scope's address: its type is what counts.)
            message = "" if isinstance(exc, asyncio.CancelledError) else f": {exc}"
            outcome = f"raised {type(exc).__name__}{message}"
            log.append(f"context {type(exc.__context__).__name__}")
    log += [outcome, f"outer cancelled_caught {outer.cancelled_caught}"]
    return log


@pytest.mark.skipif(FASTAPIS is None, reason="this FastAPI release does not shield teardown")
@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    shielded=st.booleans(),
    steps=st.lists(
        st.tuples(st.sampled_from(SETUPS), st.sampled_from(TEARDOWNS)), min_size=1, max_size=2
    ),
    body=st.sampled_from(BODIES),
    close=st.sampled_from(CLOSES),
)
def test_shielded_exit_leaves_fastapis_trace(
    shielded: bool, steps: list[tuple[str, str]], body: str, close: str
) -> None:
    expected = asyncio.run(trace(FASTAPIS, shielded, steps, body, close))
    assert asyncio.run(trace(ShieldedExit, shielded, steps, body, close)) == expected


def test_shield_teardown_follows_the_installed_release() -> None:
    """On a release with FastAPI's wrapper, async-generator dependencies get a
    ``ShieldedExit`` on one shared, entered cancel scope; before it, nothing."""

    async def check() -> None:
        async with AsyncExitStack() as stack:
            cleanup: list[Any] = []
            first = asynccontextmanager(_empty)()
            second = asynccontextmanager(_empty)()
            wrapped = [_compat.shield_teardown(m, stack, cleanup) for m in (first, second)]
            if FASTAPIS is None:
                assert wrapped == [first, second]
                assert cleanup == []
            else:
                assert all(isinstance(manager, ShieldedExit) for manager in wrapped)
                assert len(cleanup) == 1
                assert isinstance(cleanup[0], anyio.CancelScope)

    asyncio.run(check())


async def _empty() -> AsyncIterator[None]:
    yield
