"""Differential tests: generated graphs through a real route and every path of this library.

For each graph (nodes of every kind and form: functions, partials, ``functools.wraps``
wrappers, classes, callable instances), FastAPI resolves it for a real route through
``TestClient``. Then the same
graph runs through ``with_fastapi_depends`` of the async API, on its compiled plan and on
FastAPI's own resolver (the path of graphs a plan cannot run), and through every sync
API (``with_fastapi_depends``, a generator of ``iter_with_fastapi_depends``, a
``resolve_fastapi_depends`` block, a ``FastApiDepsStack``), with every call on the bridge
loop and with every call driven from the caller's thread (the path the sync API takes for
graphs that are mostly ``def``). All of them must give the same values, call every
dependency the same number of times, set up and tear down in the same order, and raise
the same exception. (A stack has no request of its own to carry: it runs the graphs that
read none. It is one long request: its function-scoped dependencies close at ``close()``
with the others, in reverse order, so it matches the async stack, and a route where no
dependency is function-scoped.)

The graphs come from hypothesis (``st.randoms()`` driving ``random_graph``): a failure is
shrunk to a small graph, printed with the error.
"""

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fda_core
import fda_sync
import fda_sync._api.decorators
from fda_core._compat import DEPENDS_HAS_SCOPE
from fda_core._graph import analysis as _analysis

from .graphs import DEF_KINDS, FORMS, Boom, GraphSpec, instantiate, random_graph

Outcome = tuple[Any, list[str]]
EXAMPLES = 300


def outcome_of_route(spec: GraphSpec) -> Outcome:
    instance = instantiate(spec)
    app = FastAPI()
    app.dependency_overrides.update(instance.overrides)
    app.get("/graph")(instance.endpoint)
    try:
        with TestClient(app) as client:
            response = client.get(f"/graph?{spec.query}", headers=spec.headers)
        result: Any = response.json()
        if response.status_code == 422:
            result = ("invalid", [(tuple(e["loc"]), e["type"]) for e in result["detail"]])
    except Boom as exc:
        result = ("raised", str(exc))
    return result, instance.log


def outcome_of(spec: GraphSpec, call: Callable[[Callable[..., Any], FastAPI], Any]) -> Outcome:
    """``call(endpoint, app)`` runs the graph's endpoint, decorated, with its request."""
    instance = instantiate(spec)
    app = FastAPI()
    app.dependency_overrides.update(instance.overrides)
    try:
        result = call(instance.endpoint, app)
    except Boom as exc:
        result = ("raised", str(exc))
    except RequestValidationError as exc:
        result = ("invalid", [(tuple(e["loc"]), e["type"]) for e in exc.errors()])
    return result, instance.log


def scope_of(spec: GraphSpec) -> dict[str, Any]:
    return {"path": "/graph", "query_string": spec.query, "headers": spec.headers}


def outcome_of_async(spec: GraphSpec) -> Outcome:
    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        decorated = fda_core.with_fastapi_depends(endpoint, app=app)
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(decorated(_scope=scope_of(spec)))
        finally:
            loop.close()

    return outcome_of(spec, call)


@contextmanager
def sync_path(path: str) -> Iterator[None]:
    """Every sync call on the bridge loop ("loop"), or driven from the caller's thread
    wherever the plan allows it ("caller")."""
    with mock.patch.object(
        fda_sync._api.decorators, "prefers_caller", return_value=path == "caller"
    ):
        yield


def outcome_of_sync(spec: GraphSpec, path: str) -> Outcome:
    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        with sync_path(path):
            return fda_sync.with_fastapi_depends(endpoint, app=app)(_scope=scope_of(spec))

    return outcome_of(spec, call)


def finished(value: Any) -> Any:
    """What the endpoint returned, awaited if it is an ``async def`` body's coroutine."""
    if inspect.isawaitable(value):

        async def wait() -> Any:
            return await value

        return asyncio.run(wait())
    return value


def outcome_of_iter(spec: GraphSpec, path: str) -> Outcome:
    """The endpoint as the one item of a generator (``def`` or ``async def``, as its body)."""

    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        generator: Callable[..., Any]
        if spec.def_body:

            def generator(**kwargs: Any) -> Iterator[Any]:
                yield endpoint(**kwargs)

        else:

            async def generator(**kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[misc]
                yield await endpoint(**kwargs)

        generator.__signature__ = inspect.signature(endpoint)  # type: ignore[attr-defined]
        with sync_path(path):
            [item] = fda_sync.iter_with_fastapi_depends(generator, app=app)(_scope=scope_of(spec))
        return item

    return outcome_of(spec, call)


def outcome_of_resolve(spec: GraphSpec, path: str) -> Outcome:
    """The endpoint called with the values of a ``resolve_fastapi_depends`` block."""

    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        with (
            sync_path(path),
            fda_sync.resolve_fastapi_depends(
                endpoint, scope=scope_of(spec), dependency_overrides_provider=app
            ) as values,
        ):
            return finished(endpoint(**values))

    return outcome_of(spec, call)


def outcome_of_stack(spec: GraphSpec, path: str) -> Outcome:
    """The endpoint resolved as a dependency of a stack (for graphs that read no request:
    a stack's request carries nothing)."""

    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        with sync_path(path), fda_sync.FastApiDepsStack(app=app) as stack:
            return stack.resolve(endpoint)

    return outcome_of(spec, call)


def outcome_of_async_stack(spec: GraphSpec) -> Outcome:
    def call(endpoint: Callable[..., Any], app: FastAPI) -> Any:
        async def resolve() -> Any:
            async with fda_core.FastApiDepsStack(app=app) as stack:
                return await stack.resolve(endpoint)

        return asyncio.run(resolve())

    return outcome_of(spec, call)


def stack_reference(spec: GraphSpec, route: Outcome) -> Outcome | None:
    """What a stack must do for ``spec``: the route's, or the async stack's where a
    dependency is function-scoped; ``None`` for a graph that reads the request."""
    if spec.reads_request:
        return None
    nodes = [*spec.nodes, *([spec.override_spec] if spec.override_spec else [])]
    if not any(node.function_scoped for node in nodes):
        return route
    return outcome_of_async_stack(spec)


def check(spec: GraphSpec) -> None:
    note(spec.describe())
    expected = outcome_of_route(spec)
    assert outcome_of_async(spec) == expected, "async API, compiled plan"
    with mock.patch.object(_analysis, "compile_plan", return_value=None):
        assert outcome_of_async(spec) == expected, "async API, FastAPI's resolver"
    stack_expected = stack_reference(spec, expected)
    for path, where in (("loop", "on the bridge loop"), ("caller", "from the caller's thread")):
        assert outcome_of_sync(spec, path) == expected, f"sync API, {where}"
        assert outcome_of_iter(spec, path) == expected, f"sync iter, {where}"
        assert outcome_of_resolve(spec, path) == expected, f"sync resolve, {where}"
        if stack_expected is not None:
            assert outcome_of_stack(spec, path) == stack_expected, f"sync stack, {where}"


@pytest.mark.timeout(600)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same graphs on every run and every matrix cell
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.randoms(use_true_random=False))
def test_generated_graphs_match_a_real_route(rng: Any) -> None:
    check(random_graph(rng))


SEEDS = range(EXAMPLES)


def test_the_generator_covers_every_feature() -> None:
    """The graph generator makes each kind of node, edge, body and failure."""
    specs = [random_graph(seed) for seed in SEEDS]
    nodes = [n for s in specs for n in s.nodes]
    assert {n.kind for n in nodes} == {"async", "sync", "gen", "agen"}
    assert any(not e.use_cache for n in nodes for e in n.edges)
    assert any(e.scopes for n in nodes for e in n.edges)
    assert any(n.wants_scopes for n in nodes)
    assert any(n.wants_header for n in nodes)
    assert any(n.wants_query for n in nodes)
    assert any(n.wants_request for n in nodes)
    assert any(n.wants_cookie for n in nodes)
    assert any(n.defaults for n in nodes)
    assert any(n.aliased for n in nodes)
    assert {n.form for n in nodes} == set(FORMS)
    assert {s.wrapped_body for s in specs} == {True, False}
    assert any(s.reads_request and "seven" in s.query for s in specs)  # invalid parameters
    assert any(s.override is not None for s in specs)
    assert any(s.fail_body for s in specs)
    assert any(n.fail_setup for n in nodes)
    assert any(n.fail_teardown for n in nodes)
    assert {s.def_body for s in specs} == {True, False}
    # Graphs a stack runs, with function-scoped dependencies (where FastAPI has them) and
    # without.
    stackable = [s for s in specs if not s.reads_request]
    assert any(not any(n.function_scoped for n in s.nodes) for s in stackable)
    assert any(n.function_scoped for s in stackable for n in s.nodes) == DEPENDS_HAS_SCOPE
    # Shared nodes: one dependency reached along two paths.
    assert any(
        len({e.target for n in s.nodes for e in n.edges}) < sum(len(n.edges) for n in s.nodes)
        for s in specs
    )
    # The graphs sync code writes: all def, and def with one async node.
    all_def = [s for s in specs if s.kinds <= set(DEF_KINDS)]
    one_async = [s for s in specs if len(s.kinds - set(DEF_KINDS)) == 1]
    assert len(all_def) > EXAMPLES // 5
    assert len(one_async) > EXAMPLES // 10
    # Overrides that turn a def node into an async one, and the other way round.
    flips = {
        (s.nodes[s.override].kind in DEF_KINDS, s.override_spec.kind in DEF_KINDS)
        for s in specs
        if s.override is not None and s.override_spec is not None
    }
    assert {(True, False), (False, True)} <= flips


def test_sync_calls_of_def_graphs_run_without_the_loop() -> None:
    """The sync API's own choice: the all-def graphs are driven from the caller's thread,
    the all-async ones run on the loop (checked on the compiled plans)."""
    chosen: dict[str, set[bool]] = {"all def": set(), "all async": set()}
    for seed in SEEDS:
        spec = random_graph(seed)
        if spec.kinds <= set(DEF_KINDS) and spec.def_body:
            group = "all def"
        elif not spec.kinds & set(DEF_KINDS) and not spec.def_body and spec.override is None:
            group = "all async"
        else:
            continue
        instance = instantiate(spec)
        analysis = _analysis.analyse(instance.endpoint)
        plan = analysis.plan(frozenset(), instance.overrides)
        assert plan is not None
        chosen[group].add(fda_sync._api.decorators.prefers_caller(plan, not spec.def_body))
    assert chosen == {"all def": {True}, "all async": {False}}
