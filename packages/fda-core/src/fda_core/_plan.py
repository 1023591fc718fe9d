"""Resolution plans: a dependency graph compiled once, then run without a request.

``solve_dependencies`` re-walks the graph, rebuilds overridden dependants and parses the
request on every call. For a graph that reads nothing from the request — the usual case
outside routes — the walk is compiled once into a flat list of nodes in the order FastAPI
visits them, and each call only runs that list. Every decision (call kind, cache key,
scopes, teardown stack, overrides) is taken from FastAPI's own analysis through
``_compat``, so the results are the ones FastAPI's resolver gives; the differential tests
hold the two side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextlib import contextmanager as sync_contextmanager
from typing import Any

from fastapi.concurrency import contextmanager_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.security import SecurityScopes
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from fda_core import _compat
from fda_core._compat import CallKind

__all__ = ["Plan", "Teardown", "compile_plan"]


_MISSING: Any = object()


class _RequestBound(Exception):
    """The graph needs the request: it stays with FastAPI's resolver."""


class _Node:
    __slots__ = (
        "args",
        "background_name",
        "call",
        "factory",
        "function_scoped",
        "kind",
        "scopes",
        "scopes_name",
        "slot",
        "use_cache",
    )

    def __init__(
        self,
        sub: Dependant,
        use_sub: Dependant,
        args: tuple[tuple[str, int], ...],
        slots: dict[Any, int],
    ) -> None:
        self.call: Callable[..., Any] = use_sub.call  # type: ignore[assignment]
        self.kind = _compat.call_kind(use_sub)
        self.factory: Callable[..., Any] | None = None
        if self.kind is CallKind.ASYNC_GENERATOR:
            self.factory = asynccontextmanager(self.call)
        elif self.kind is CallKind.GENERATOR:
            self.factory = sync_contextmanager(self.call)
        self.args = args
        # Like solve_dependencies: caching and scope follow the dependency as declared,
        # the call kind follows what actually runs (an override, maybe).
        # The cache key, numbered: a per-call list indexed by it replaces a dict.
        self.slot = slots.setdefault(_compat.cache_key(sub), len(slots))
        self.use_cache = sub.use_cache
        self.function_scoped = _compat.is_function_scoped(sub)
        self.background_name = use_sub.background_tasks_param_name
        self.scopes_name = use_sub.security_scopes_param_name
        self.scopes = _compat.oauth_scopes(use_sub) if self.scopes_name else []


class Teardown:
    """The exit stacks of one call: function-scoped ones close before request-scoped ones."""

    __slots__ = ("background", "function", "request")

    def __init__(self) -> None:
        self.request: AsyncExitStack | None = None
        self.function: AsyncExitStack | None = None
        self.background: BackgroundTasks | None = None

    async def enter(self, manager: AbstractAsyncContextManager[Any], function_scoped: bool) -> Any:
        if function_scoped:
            if self.function is None:
                self.function = AsyncExitStack()
            return await self.function.enter_async_context(manager)
        if self.request is None:
            self.request = AsyncExitStack()
        return await self.request.enter_async_context(manager)

    async def aexit(self, exc: BaseException | None) -> bool:
        """Close as ``async with request: async with function: ...`` would.

        Returns whether ``exc`` was suppressed; raises an exception teardown raised.
        """
        current = exc
        for stack in (self.function, self.request):
            if stack is None:
                continue
            try:
                if current is None:
                    await stack.__aexit__(None, None, None)
                elif await stack.__aexit__(type(current), current, current.__traceback__):
                    current = None
            except BaseException as raised:
                current = raised
        if current is None:
            return exc is not None
        if current is exc:
            return False
        raise current


class Plan:
    """A compiled graph: run the nodes in order, then hand the named values to the body."""

    __slots__ = ("background_name", "nodes", "outputs", "scopes_name", "slots")

    def __init__(
        self, nodes: list[_Node], outputs: list[tuple[str, int]], endpoint: Dependant, slots: int
    ) -> None:
        self.nodes = tuple(nodes)
        self.slots = slots
        self.outputs = tuple(outputs)
        self.background_name = endpoint.background_tasks_param_name
        self.scopes_name = endpoint.security_scopes_param_name

    async def solve(self, teardown: Teardown) -> dict[str, Any]:
        """Resolve every node; generators are entered on ``teardown``'s stacks."""
        results: list[Any] = [None] * len(self.nodes)
        cache: list[Any] = [_MISSING] * self.slots
        for index, node in enumerate(self.nodes):
            kwargs = {name: results[source] for name, source in node.args}
            if node.background_name:
                kwargs[node.background_name] = _background(teardown)
            if node.scopes_name:
                kwargs[node.scopes_name] = SecurityScopes(scopes=list(node.scopes))
            kind = node.kind
            cached = cache[node.slot]
            if node.use_cache and cached is not _MISSING:
                value = cached
            elif kind is CallKind.COROUTINE:
                value = await node.call(**kwargs)
            elif kind is CallKind.THREADPOOL:
                value = await run_in_threadpool(node.call, **kwargs)
            elif kind is CallKind.ASYNC_GENERATOR:
                assert node.factory is not None
                value = await teardown.enter(node.factory(**kwargs), node.function_scoped)
            else:
                assert node.factory is not None
                manager = contextmanager_in_threadpool(node.factory(**kwargs))
                value = await teardown.enter(manager, node.function_scoped)
            if cached is _MISSING:
                cache[node.slot] = value
            results[index] = value
        values = {name: results[source] for name, source in self.outputs}
        if self.background_name:
            values[self.background_name] = _background(teardown)
        if self.scopes_name:
            values[self.scopes_name] = SecurityScopes(scopes=[])
        return values


def _background(teardown: Teardown) -> BackgroundTasks:
    if teardown.background is None:
        teardown.background = _compat.BackgroundTasksClass()
    return teardown.background


def _compile(
    dependant: Dependant, overrides: Mapping[Any, Any], nodes: list[_Node], slots: dict[Any, int]
) -> list[tuple[str, int]]:
    reason = _compat.request_bound(dependant)
    if reason is not None:
        raise _RequestBound(reason)
    outputs = []
    for sub in dependant.dependencies:
        use_sub = sub
        if overrides:  # rebuilt whether overridden or not, as solve_dependencies does
            use_sub = _compat.override_dependant(sub, overrides.get(sub.call, sub.call))
        args = tuple(_compile(use_sub, overrides, nodes, slots))
        nodes.append(_Node(sub, use_sub, args, slots))
        if sub.name is not None:
            outputs.append((sub.name, len(nodes) - 1))
    return outputs


def compile_plan(dependant: Dependant, overrides: Mapping[Any, Any]) -> Plan | None:
    """The plan of ``dependant`` under ``overrides``, or ``None`` if it needs a request."""
    nodes: list[_Node] = []
    slots: dict[Any, int] = {}
    try:
        outputs = _compile(dependant, overrides, nodes, slots)
    except _RequestBound:
        return None
    return Plan(nodes, outputs, dependant, len(slots))
