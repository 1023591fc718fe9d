"""``resolve_fastapi_depends``: the low-level sync context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from typing import Any

import fda_core
from fda_core._api.resolve import Planned
from fda_sync._api import decorators
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge
from fda_sync._caller_path.opened import Opened, steps_of
from fda_sync._guards.in_flight import InFlight
from fda_sync._loop_path.held import SyncHeld

__all__ = ["resolve_fastapi_depends"]


@contextmanager
def resolve_fastapi_depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None = None,
    dependency_overrides_provider: Any = None,
) -> Generator[dict[str, Any], None, None]:
    """Resolve ``func``'s injected parameters; yield them as kwargs.

    They stay open until the block exits; the block's exception is thrown into yield
    dependencies. Same arguments as the async version. As a decorated call's, the
    dependencies resolve on the path of fewer thread hops: from this thread (a graph of
    ``def`` dependencies never reaches the bridge loop), or held by one task on the loop.
    """
    before_call()
    bridge = get_bridge()
    planned = Planned(func, scope, dependency_overrides_provider, bridge.loop_if_started())
    plan = planned.plan
    if plan is not None and decorators.prefers_caller(plan, False):
        request = planned.request() if plan.reads_request else None
        opened = Opened(bridge, plan, request, steps_of(plan), for_life=True)
        values = opened.open()
        ended = False  # teardown ran (or is not this thread's to run)
        try:
            try:
                yield values
            except GeneratorExit:
                opened.close_from_finalizer()
                ended = True
                raise
            except BaseException as exc:
                suppressed = opened.close(exc)
                ended = True
                if not suppressed:
                    raise
            else:
                opened.close(None)
                ended = True
        except BaseException as late:
            if not ended:  # an interrupt before teardown, or one that cut it short
                opened.close_late(late)
            raise
        return
    held = SyncHeld(
        bridge,
        lambda: fda_core.resolve_fastapi_depends(func, scope, dependency_overrides_provider),
    )
    values = held.open()
    block = _Block(held)
    in_flight = bridge.in_flight
    in_flight.add(block)
    try:
        yield values
    except GeneratorExit:
        if InFlight.claim(block, block):
            held.close_from_finalizer()
        raise
    except BaseException as exc:
        mine = InFlight.claim(block, block)  # else the shutdown tore it down already
        if not (mine and held.close(exc)):
            raise
    else:
        if InFlight.claim(block, block):
            held.close(None)
    finally:
        in_flight.calls.discard(block)


class _Block:
    """A ``with`` block held on the loop, as a call in flight for its life (as a block
    driven from the caller's thread is): a shutdown's grace waits for its end, then tears
    it down (``CancelledError`` thrown in) if it has not ended."""

    __slots__ = ("claims", "held", "thread")

    def __init__(self, held: SyncHeld[Any]) -> None:
        self.held = held
        self.thread = 0
        self.claims: list[object] = []

    def abandon(self) -> None:
        self.held.close(asyncio.CancelledError())
