"""Differential tests: random graphs through a real route, the compiled plan and the fallback.

For each graph, FastAPI resolves it for a real route through ``TestClient``; then the same
graph runs through ``with_fastapi_depends`` twice, once on its compiled plan and once on
FastAPI's own resolver (the path request-bound graphs take). All three must give the same
values, call every dependency the same number of times, set up and tear down in the same
order, and raise the same exception.
"""

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from fda_core import _analysis, with_fastapi_depends

from .graphs import Boom, GraphSpec, instantiate, random_graph

SEEDS = range(300)


def outcome_of_route(spec: GraphSpec) -> tuple[Any, list[str]]:
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


def outcome_of_decorated(spec: GraphSpec) -> tuple[Any, list[str]]:
    instance = instantiate(spec)
    app = FastAPI()
    app.dependency_overrides.update(instance.overrides)
    decorated = with_fastapi_depends(instance.endpoint, app=app)
    scope = {"path": "/graph", "query_string": spec.query, "headers": spec.headers}
    try:
        result: Any = asyncio.run(decorated(_scope=scope))
    except Boom as exc:
        result = ("raised", str(exc))
    except RequestValidationError as exc:
        result = ("invalid", [(tuple(e["loc"]), e["type"]) for e in exc.errors()])
    return result, instance.log


@pytest.mark.timeout(120)
def test_random_graphs_match_a_real_route(monkeypatch: pytest.MonkeyPatch) -> None:
    planned = fallback = 0
    for seed in SEEDS:
        spec = random_graph(seed)
        expected = outcome_of_route(spec)
        context = f"seed {seed}:\n{spec.describe()}"

        assert outcome_of_decorated(spec) == expected, context
        planned += 1

        with monkeypatch.context() as patch:
            patch.setattr(_analysis, "compile_plan", lambda *args: None)
            assert outcome_of_decorated(spec) == expected, f"fallback, {context}"
        fallback += 1
    assert planned == fallback == len(SEEDS)


def test_the_generator_covers_every_feature() -> None:
    """The seeds exercise each kind of node, edge and failure the plan handles."""
    specs = [random_graph(seed) for seed in SEEDS]
    nodes = [n for s in specs for n in s.nodes]
    assert {n.kind for n in nodes} == {"async", "sync", "gen", "agen"}
    assert any(not e.use_cache for n in nodes for e in n.edges)
    assert any(e.scopes for n in nodes for e in n.edges)
    assert any(n.wants_scopes for n in nodes)
    assert any(n.wants_header for n in nodes)
    assert any(n.wants_query for n in nodes)
    assert any(n.wants_request for n in nodes)
    assert any(s.reads_request and "seven" in s.query for s in specs)  # invalid parameters
    assert any(s.override is not None for s in specs)
    assert any(s.fail_body for s in specs)
    assert any(n.fail_setup for n in nodes)
    assert any(n.fail_teardown for n in nodes)
    # Shared nodes: one dependency reached along two paths.
    assert any(
        len({e.target for n in s.nodes for e in n.edges}) < sum(len(n.edges) for n in s.nodes)
        for s in specs
    )
