"""Differential tests: a scoped ``override()`` is ``app.dependency_overrides`` for one block.

For generated graphs with an overridden node, FastAPI resolves the graph for a real route
with the replacement in ``app.dependency_overrides``. The same graph then runs through the
async API and the sync API (both paths) with the replacement given to ``override()``
instead, while ``app.dependency_overrides`` maps the same dependency to a decoy: the
scoped one must win, and everything must come out as the route's (values, calls, order of
setup and teardown, exceptions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import fda_core
import fda_sync

from .graphs import Boom, GraphSpec, instantiate, random_graph
from .test_plan_vs_fastapi import Outcome, outcome_of_route, scope_of, sync_path


def _decoy() -> str:
    raise AssertionError("app.dependency_overrides was used under a scoped override")


def outcome_scoped(spec: GraphSpec, call: Callable[[Callable[..., Any], FastAPI], Any]) -> Outcome:
    """``call(endpoint, app)`` under ``override()`` of the graph's override; the app maps
    the same dependency to a decoy."""
    instance = instantiate(spec)
    app = FastAPI()
    app.dependency_overrides.update(dict.fromkeys(instance.overrides, _decoy))
    try:
        with fda_core.override(instance.overrides):
            result = call(instance.endpoint, app)
    except Boom as exc:
        result = ("raised", str(exc))
    except RequestValidationError as exc:
        result = ("invalid", [(tuple(e["loc"]), e["type"]) for e in exc.errors()])
    return result, instance.log


def run_async(endpoint: Callable[..., Any], app: FastAPI, spec: GraphSpec) -> Any:
    decorated = fda_core.with_fastapi_depends(endpoint, app=app)
    loop = asyncio.new_event_loop()
    try:  # the loop's task copies this thread's context, and the block with it
        return loop.run_until_complete(decorated(_scope=scope_of(spec)))
    finally:
        loop.close()


def run_sync(endpoint: Callable[..., Any], app: FastAPI, spec: GraphSpec, path: str) -> Any:
    with sync_path(path):
        return fda_sync.with_fastapi_depends(endpoint, app=app)(_scope=scope_of(spec))


@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.randoms(use_true_random=False))
def test_a_scoped_override_resolves_as_the_same_override_in_a_route(rng: Any) -> None:
    spec = random_graph(rng)
    assume(spec.override is not None and spec.override_spec is not None)
    note(spec.describe())
    expected = outcome_of_route(spec)
    assert outcome_scoped(spec, lambda e, app: run_async(e, app, spec)) == expected, "async"
    for path in ("loop", "caller"):
        got = outcome_scoped(spec, lambda e, app, p=path: run_sync(e, app, spec, p))
        assert got == expected, f"sync API, {path}"
