"""Random dependency graphs, built as real FastAPI dependencies that log what they do.

A graph is a list of nodes; node ``i`` may depend on nodes before it. Each node is an async
function, a sync function, a generator or an async generator, in one of the forms code
gives FastAPI: a function, a ``functools.partial``, a ``functools.wraps`` wrapper, a class
or a callable instance; it may read a header, a query parameter or a cookie (with or
without a default, by its name or an alias); edges may opt out of the
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

import functools
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Cookie, Depends, Header, Query, Request, Security
from fastapi.security import SecurityScopes

from fda_core._compat import DEPENDS_HAS_SCOPE, CallKind, awaited_by_route, kind_of

KINDS = ("async", "sync", "gen", "agen")
#: How a node's dependency is given to FastAPI ("class": a class for a ``def`` node, a
#: callable instance otherwise).
FORMS = ("function", "partial", "wrapped", "class")
CALL_KINDS = {
    "async": CallKind.COROUTINE,
    "sync": CallKind.THREADPOOL,
    "gen": CallKind.GENERATOR,
    "agen": CallKind.ASYNC_GENERATOR,
}
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
    wants_cookie: bool = False
    defaults: bool = False  # its header, query and cookie parameters have defaults
    aliased: bool = False  # ... and are read by an alias
    form: str = "function"
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
    wrapped_body: bool = False
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
        return any(
            n.wants_header or n.wants_query or n.wants_request or n.wants_cookie for n in nodes
        )

    def describe(self) -> str:
        lines = []
        for node in [*self.nodes, *([self.override_spec] if self.override_spec else [])]:
            deps = ", ".join(
                f"{self.nodes[e.target].name}{'' if e.use_cache else '!'}{list(e.scopes) or ''}"
                for e in node.edges
            )
            flags = [
                f for f in ("wants_scopes", "wants_header", "wants_query", "wants_request",
                            "wants_cookie", "defaults", "aliased", "function_scoped",
                            "fail_setup", "fail_teardown")
                if getattr(node, f)
            ]  # fmt: skip
            lines.append(f"{node.name} [{node.kind} {node.form}] <- ({deps}) {flags}")
        lines.append(f"top <- {[self.nodes[e.target].name for e in self.top]}")
        lines.append(
            f"override={self.override} fail_body={self.fail_body} def_body={self.def_body} "
            f"wrapped_body={self.wrapped_body}"
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
            wants_cookie=rng.random() < 0.1,
            defaults=rng.random() < 0.3,
            aliased=rng.random() < 0.3,
            form=rng.choice(FORMS) if rng.random() < 0.4 else "function",
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
            form=rng.choice(FORMS) if rng.random() < 0.4 else "function",
        )
        targets = range(spec.override)
        for target in sorted(rng.sample(targets, k=rng.randint(0, min(len(targets), 2)))):
            if not nodes[target].function_scoped:
                replacement.edges.append(_random_edge(rng, target, nodes))
        spec.override_spec = replacement
    # The request: each header or cookie a node reads is sent or not; a query value may
    # not validate.
    cookies = []
    for node in [*nodes, *([spec.override_spec] if spec.override_spec else [])]:
        if node.wants_header and rng.random() < 0.8:
            spec.headers[param_names(node)[0]] = f"h-{node.name}"
        if node.wants_cookie and rng.random() < 0.8:
            cookies.append(f"{param_names(node)[2]}=c-{node.name}")
    if cookies:
        spec.headers["cookie"] = "; ".join(cookies)
    if rng.random() < 0.8:
        spec.query = "&".join(f"{param_names(n)[1]}={rng.choice(['7', 'seven'])}" for n in nodes)
    spec.def_body = rng.random() < 0.5
    spec.wrapped_body = rng.random() < 0.2
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


def param_names(node: NodeSpec) -> tuple[str, str, str]:
    """The header, query and cookie names the request uses for ``node``'s parameters."""
    if node.aliased:
        return f"x-alias-{node.name}", f"qa-{node.name}", f"ca-{node.name}"
    return f"x-{node.name}", f"q_{node.name}", f"c_{node.name}"


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
    header_name, query_name, cookie_name = param_names(node)
    alias = {"alias": True} if node.aliased else {}
    text_default: Any = f"default-{node.name}" if node.defaults else inspect.Parameter.empty
    if node.wants_header:
        marker = Header(alias=header_name) if alias else Header()
        params.append(
            inspect.Parameter(
                f"x_{node.name}", keyword, annotation=Annotated[str, marker], default=text_default
            )
        )
    if node.wants_query:
        marker = Query(alias=query_name) if alias else Query()
        params.append(
            inspect.Parameter(
                f"q_{node.name}",
                keyword,
                annotation=Annotated[int, marker],
                default=-1 if node.defaults else inspect.Parameter.empty,
            )
        )
    if node.wants_cookie:
        marker = Cookie(alias=cookie_name) if alias else Cookie()
        params.append(
            inspect.Parameter(
                f"c_{node.name}", keyword, annotation=Annotated[str, marker], default=text_default
            )
        )
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
        if node.wants_cookie:
            parts.append(f"c={kwargs[f'c_{node.name}']}")
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

        async def fn(*_bound: Any, **kwargs: Any) -> str:
            return setup(kwargs)

    elif node.kind == "sync":

        def fn(*_bound: Any, **kwargs: Any) -> str:  # type: ignore[misc]
            return setup(kwargs)

    elif node.kind == "gen":

        def fn(*_bound: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            result = setup(kwargs)
            try:
                yield result
            except Exception as exc:
                teardown(exc)
                raise
            teardown(None)

    else:

        async def fn(*_bound: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            result = setup(kwargs)
            try:
                yield result
            except Exception as exc:
                teardown(exc)
                raise
            teardown(None)

    fn.__name__ = fn.__qualname__ = name
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return _in_form(fn, node)


def _in_form(fn: Callable[..., Any], node: NodeSpec) -> Callable[..., Any]:
    """``fn`` given to FastAPI in ``node.form``; as a plain function where this FastAPI
    release would call that form differently (a wrapper it does not look through).
    ``fn`` ignores positional arguments: a partial's bound one, a method's ``self``."""
    signature: inspect.Signature = fn.__signature__  # type: ignore[attr-defined]
    made: Any

    def leading(name: str) -> inspect.Signature:
        first = inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return signature.replace(parameters=[first, *signature.parameters.values()])

    if node.form == "partial":
        fn.__signature__ = leading("tag")  # type: ignore[attr-defined]
        made = functools.partial(fn, "bound")
    elif node.form == "wrapped":

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            return fn(**kwargs)

        made = wrapper
    elif node.form == "class" and node.kind == "sync":

        class Made:
            def __init__(self, **kwargs: Any) -> None:
                self.value = fn(**kwargs)

            def __repr__(self) -> str:
                return str(self.value)

        Made.__init__.__signature__ = leading("self")  # type: ignore[attr-defined]
        Made.__name__ = Made.__qualname__ = node.name
        made = Made
    elif node.form == "class":
        fn.__signature__ = leading("self")  # type: ignore[attr-defined]
        made = type(node.name, (), {"__call__": fn})()
    else:
        return fn
    if kind_of(made) is CALL_KINDS[node.kind]:
        return made
    fn.__signature__ = signature  # type: ignore[attr-defined]
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
    if spec.wrapped_body:
        inner = endpoint

        @functools.wraps(inner)
        def wrapped(**kwargs: Any) -> Any:
            return inner(**kwargs)

        # A def wrapper of an async def body only where routes await it (0.123.6+).
        if spec.def_body or awaited_by_route(wrapped):
            endpoint = wrapped
    return Instance(endpoint, overrides, log)
