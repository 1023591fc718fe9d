"""Random dependency graphs, built as real FastAPI dependencies that log what they do.

A graph is a list of nodes; node ``i`` may depend on nodes before it. Each node is an async
function, a sync function, a generator or an async generator; edges may opt out of the
cache or carry ``Security`` scopes; generators may be function-scoped; one node may be
overridden; one setup, teardown or body step may fail; the body is ``def`` or
``async def``. A third of the graphs are all ``def`` and a third ``def`` with one async
node: the graphs sync code writes, which the sync API drives from the caller's thread.
The same graph can be instantiated any number of times, each instance logging to its own
list.

The choices come from a ``random.Random``: seeded, or hypothesis's ``st.randoms()``,
whose draws shrink a failing graph to a small one.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import SecurityScopes

from fda_core._compat import DEPENDS_HAS_SCOPE

KINDS = ("async", "sync", "gen", "agen")
DEF_KINDS = ("sync", "gen")
ASYNC_KINDS = ("async", "agen")


class Boom(Exception):
    """The failure a graph injects."""


@dataclass
class Edge:
    target: int
    use_cache: bool = True
    scopes: tuple[str, ...] = ()


@dataclass
class NodeSpec:
    name: str
    kind: str
    edges: list[Edge] = field(default_factory=list)
    wants_scopes: bool = False
    wants_header: bool = False
    wants_query: bool = False
    wants_request: bool = False
    function_scoped: bool = False
    fail_setup: bool = False
    fail_teardown: bool = False


@dataclass
class GraphSpec:
    nodes: list[NodeSpec]
    top: list[Edge]
    override: int | None = None  # index of the node replaced in dependency_overrides
    override_spec: NodeSpec | None = None
    fail_body: bool = False
    def_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""

    @property
    def kinds(self) -> set[str]:
        """The kinds of the nodes that run (the override's instead of the one replaced)."""
        kinds = {n.kind for i, n in enumerate(self.nodes) if i != self.override}
        if self.override_spec is not None:
            kinds.add(self.override_spec.kind)
        return kinds

    @property
    def reads_request(self) -> bool:
        nodes = [*self.nodes, *([self.override_spec] if self.override_spec else [])]
        return any(n.wants_header or n.wants_query or n.wants_request for n in nodes)

    def describe(self) -> str:
        lines = []
        for node in [*self.nodes, *([self.override_spec] if self.override_spec else [])]:
            deps = ", ".join(
                f"{self.nodes[e.target].name}{'' if e.use_cache else '!'}{list(e.scopes) or ''}"
                for e in node.edges
            )
            flags = [
                f for f in ("wants_scopes", "wants_header", "wants_query", "wants_request",
                            "function_scoped", "fail_setup", "fail_teardown")
                if getattr(node, f)
            ]  # fmt: skip
            lines.append(f"{node.name} [{node.kind}] <- ({deps}) {flags}")
        lines.append(f"top <- {[self.nodes[e.target].name for e in self.top]}")
        lines.append(
            f"override={self.override} fail_body={self.fail_body} def_body={self.def_body}"
        )
        lines.append(f"headers={self.headers} query={self.query!r}")
        return "\n".join(lines)


def random_graph(seed: int | random.Random) -> GraphSpec:
    """A graph drawn from ``seed``: a seed, or a ``random.Random`` to draw from."""
    rng = random.Random(seed) if isinstance(seed, int) else seed
    size = rng.randint(1, 7)
    # All def, def with one async node, or anything.
    profile = rng.choice(("def", "one async", "any"))
    async_node = rng.randrange(size) if profile == "one async" else -1
    nodes: list[NodeSpec] = []
    for i in range(size):
        if profile == "any":
            kind = rng.choice(KINDS)
        else:
            kind = rng.choice(ASYNC_KINDS if i == async_node else DEF_KINDS)
        node = NodeSpec(
            name=f"n{i}",
            kind=kind,
            wants_scopes=rng.random() < 0.15,
            wants_header=rng.random() < 0.12,
            wants_query=rng.random() < 0.08,
            wants_request=rng.random() < 0.08,
        )
        if DEPENDS_HAS_SCOPE and kind in ("gen", "agen") and rng.random() < 0.3:
            node.function_scoped = True
        for target in sorted(rng.sample(range(i), k=rng.randint(0, min(i, 3)))):
            dep = nodes[target]
            # FastAPI refuses a request-scoped generator that depends on a function-scoped one.
            if dep.function_scoped and kind in ("gen", "agen") and not node.function_scoped:
                continue
            node.edges.append(_random_edge(rng, target, nodes))
        nodes.append(node)
    top = [
        _random_edge(rng, t, nodes) for t in sorted(rng.sample(range(size), k=rng.randint(1, size)))
    ]
    spec = GraphSpec(nodes=nodes, top=top)
    if rng.random() < 0.3:
        spec.override = rng.randrange(size)
        # Mostly the same side as the node replaced; sometimes def <-> async.
        same_side = DEF_KINDS if nodes[spec.override].kind in DEF_KINDS else ASYNC_KINDS
        replacement = NodeSpec(
            name=f"o{spec.override}",
            kind=rng.choice(same_side if rng.random() < 0.7 else KINDS),
        )
        targets = range(spec.override)
        for target in sorted(rng.sample(targets, k=rng.randint(0, min(len(targets), 2)))):
            if not nodes[target].function_scoped:
                replacement.edges.append(_random_edge(rng, target, nodes))
        spec.override_spec = replacement
    # The request: each header a node reads is sent or not; a query value may not validate.
    for node in [*nodes, *([spec.override_spec] if spec.override_spec else [])]:
        if node.wants_header and rng.random() < 0.8:
            spec.headers[f"x-{node.name}"] = f"h-{node.name}"
    if rng.random() < 0.8:
        spec.query = "&".join(f"q_{n.name}={rng.choice(['7', 'seven'])}" for n in nodes)
    spec.def_body = rng.random() < 0.5
    failure = rng.random()
    candidates = [*nodes, *([spec.override_spec] if spec.override_spec else [])]
    if failure < 0.15:
        rng.choice(candidates).fail_setup = True
    elif failure < 0.3:
        generators = [n for n in candidates if n.kind in ("gen", "agen")]
        if generators:
            rng.choice(generators).fail_teardown = True
    elif failure < 0.4:
        spec.fail_body = True
    return spec


def _random_edge(rng: random.Random, target: int, nodes: list[NodeSpec]) -> Edge:
    scopes: tuple[str, ...] = ()
    # Security() takes no scope=, so a function-scoped target is reached by Depends only.
    if rng.random() < 0.2 and not nodes[target].function_scoped:
        scopes = tuple(sorted(rng.sample(["read", "write", "admin"], k=rng.randint(1, 2))))
    return Edge(target=target, use_cache=rng.random() > 0.2, scopes=scopes)


def _marker(callables: list[Callable[..., Any]], edge: Edge, nodes: list[NodeSpec]) -> Any:
    kwargs: dict[str, Any] = {"use_cache": edge.use_cache}
    if edge.scopes:
        return Security(callables[edge.target], scopes=list(edge.scopes), **kwargs)
    if nodes[edge.target].function_scoped:
        kwargs["scope"] = "function"
    return Depends(callables[edge.target], **kwargs)


def _make(
    node: NodeSpec, log: list[str], callables: list[Callable[..., Any]], nodes: list[NodeSpec]
) -> Callable[..., Any]:
    params = [
        inspect.Parameter(
            f"d{k}",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[Any, _marker(callables, edge, nodes)],
        )
        for k, edge in enumerate(node.edges)
    ]
    keyword = inspect.Parameter.KEYWORD_ONLY
    if node.wants_scopes:
        params.append(inspect.Parameter("security_scopes", keyword, annotation=SecurityScopes))
    if node.wants_header:
        header = Annotated[str, Header()]
        params.append(inspect.Parameter(f"x_{node.name}", keyword, annotation=header))
    if node.wants_query:
        query = Annotated[int, Query()]
        params.append(inspect.Parameter(f"q_{node.name}", keyword, annotation=query))
    if node.wants_request:
        params.append(inspect.Parameter("request", keyword, annotation=Request))
    name = node.name

    def value(kwargs: dict[str, Any]) -> str:
        parts = [str(kwargs[f"d{k}"]) for k in range(len(node.edges))]
        if node.wants_scopes:
            parts.append("scopes=" + "+".join(kwargs["security_scopes"].scopes))
        if node.wants_header:
            parts.append(kwargs[f"x_{node.name}"])
        if node.wants_query:
            parts.append(f"q={kwargs[f'q_{node.name}']}")
        if node.wants_request:
            parts.append(f"{kwargs['request'].method} {kwargs['request'].url.path}")
        return f"{name}({','.join(parts)})"

    def setup(kwargs: dict[str, Any]) -> str:
        log.append(f"{name}:setup")
        if node.fail_setup:
            raise Boom(f"setup of {name}")
        # Numbered, so a value taken from the cache is told apart from a fresh call's.
        return f"{value(kwargs)}#{log.count(f'{name}:setup')}"

    def teardown(exc: BaseException | None) -> None:
        log.append(f"{name}:teardown:{type(exc).__name__ if exc else 'ok'}")
        if node.fail_teardown:
            raise Boom(f"teardown of {name}")

    if node.kind == "async":

        async def fn(**kwargs: Any) -> str:
            return setup(kwargs)

    elif node.kind == "sync":

        def fn(**kwargs: Any) -> str:  # type: ignore[misc]
            return setup(kwargs)

    elif node.kind == "gen":

        def fn(**kwargs: Any) -> Any:  # type: ignore[misc]
            result = setup(kwargs)
            try:
                yield result
            except Exception as exc:
                teardown(exc)
                raise
            teardown(None)

    else:

        async def fn(**kwargs: Any) -> Any:  # type: ignore[misc]
            result = setup(kwargs)
            try:
                yield result
            except Exception as exc:
                teardown(exc)
                raise
            teardown(None)

    fn.__name__ = fn.__qualname__ = name
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return fn


@dataclass
class Instance:
    """One instantiation of a graph: its endpoint, overrides and event log."""

    endpoint: Callable[..., Any]
    overrides: dict[Callable[..., Any], Callable[..., Any]]
    log: list[str]


def instantiate(spec: GraphSpec) -> Instance:
    log: list[str] = []
    callables: list[Callable[..., Any]] = []
    for node in spec.nodes:
        callables.append(_make(node, log, callables, spec.nodes))
    overrides = {}
    if spec.override is not None and spec.override_spec is not None:
        overrides[callables[spec.override]] = _make(spec.override_spec, log, callables, spec.nodes)

    params = [
        inspect.Parameter(
            f"t{k}",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[Any, _marker(callables, edge, spec.nodes)],
        )
        for k, edge in enumerate(spec.top)
    ]

    def body(kwargs: dict[str, Any]) -> dict[str, str]:
        log.append("endpoint")
        if spec.fail_body:
            raise Boom("body")
        return {key: str(value) for key, value in sorted(kwargs.items())}

    endpoint: Callable[..., Any]
    if spec.def_body:

        def endpoint(**kwargs: Any) -> dict[str, str]:
            return body(kwargs)

    else:

        async def endpoint(**kwargs: Any) -> dict[str, str]:  # type: ignore[misc]
            return body(kwargs)

    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return Instance(endpoint, overrides, log)
