"""Resolution plans: a dependency graph compiled once (``compiler``), run as a flat list of steps.

``solve_dependencies`` re-walks the graph, rebuilds overridden dependants and builds a
request on every call. A plan is that walk done once: a list of nodes in the order FastAPI
visits them, each knowing how to call its dependency, where its arguments come from and
which cache slot it shares. Running it is a loop over the nodes (``Plan.solve`` on the
loop, ``Plan.solve_with`` for callers that run each node themselves).

Nodes that read the request (``Header``, ``Query``, ``Cookie``, ``Path``, ``Request``) parse
it with FastAPI's own ``request_params_to_args``; the request is only built for graphs that
have such nodes.
"""

from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from contextlib import contextmanager as sync_contextmanager
from typing import Any

from fastapi.concurrency import contextmanager_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.security import SecurityScopes
from starlette.background import BackgroundTasks
from starlette.requests import Request

from fda_core import _compat
from fda_core._compat import CallKind
from fda_core._graph.teardown import Teardown
from fda_core._runtime.threads import contextmanager_in_thread, diverted, run_sync

__all__ = ["Node", "Plan"]

_MISSING: Any = object()  # an empty cache slot
_FAILED: Any = object()  # a node not called because its parameters did not validate


class Node:
    """One dependency of a plan: how it is called, from which results, into which slot."""

    __slots__ = (
        "args",
        "background_name",
        "call",
        "children",
        "connection_names",
        "extras",
        "factory",
        "function_scoped",
        "kind",
        "params",
        "scopes",
        "scopes_name",
        "slot",
        "use_cache",
    )

    def __init__(
        self,
        sub: Dependant | None,
        use_sub: Dependant,
        children: tuple[int, ...],
        args: tuple[tuple[str, int], ...],
        slot: int,
    ) -> None:
        self.children = children  # every sub-dependency, named or not: errors propagate
        self.args = args
        self.slot = slot
        self.params = _compat.request_params(use_sub)
        self.connection_names = tuple(
            name
            for name in (use_sub.request_param_name, use_sub.http_connection_param_name)
            if name
        )
        self.background_name = use_sub.background_tasks_param_name
        self.scopes_name = use_sub.security_scopes_param_name
        self.scopes = _compat.oauth_scopes(use_sub) if self.scopes_name else []
        self.extras = bool(
            self.params or self.connection_names or self.background_name or self.scopes_name
        )
        self.factory: Callable[..., Any] | None = None
        if sub is None:  # the endpoint: its values are the plan's result
            self.kind = None
            self.use_cache = False
            self.function_scoped = False
            return
        self.call: Callable[..., Any] = use_sub.call  # type: ignore[assignment]
        self.kind = _compat.call_kind(use_sub)
        if self.kind is CallKind.ASYNC_GENERATOR:
            self.factory = asynccontextmanager(self.call)
        elif self.kind is CallKind.GENERATOR:
            self.factory = sync_contextmanager(self.call)
        # Like solve_dependencies: caching and scope follow the dependency as declared,
        # the call kind follows what actually runs (an override, maybe).
        self.use_cache = sub.use_cache
        self.function_scoped = _compat.is_function_scoped(sub)


class Plan:
    """A compiled graph: run the nodes in order; the last one is the endpoint itself."""

    __slots__ = (
        "async_steps",
        "background",
        "keys",
        "nodes",
        "reads_request",
        "shared",
        "slots",
        "sync_steps",
    )

    def __init__(self, nodes: list[Node], keys: list[Any]) -> None:
        self.nodes = tuple(nodes)
        self.keys = tuple(keys)  # the dependency-cache key of each slot
        self.slots = len(keys)
        #: Whether two nodes share a cache slot: a solve that loads no cache keeps one
        #: only then (for the all-``def`` chain, a tenth of its instructions).
        slots = [node.slot for node in nodes if node.kind is not None]
        self.shared = len(set(slots)) < len(slots)
        self.reads_request = any(node.params or node.connection_names for node in nodes)
        #: Whether a node takes ``BackgroundTasks`` (its tasks run after teardown).
        self.background = any(node.background_name for node in nodes)
        # Steps of each side a call runs, set-up and teardown counted apart (the sync API
        # picks where it runs a plan by them).
        kinds = [node.kind for node in nodes]
        self.async_steps = kinds.count(CallKind.COROUTINE) + 2 * kinds.count(
            CallKind.ASYNC_GENERATOR
        )
        self.sync_steps = kinds.count(CallKind.THREADPOOL) + 2 * kinds.count(CallKind.GENERATOR)

    async def solve(
        self,
        teardown: Teardown,
        request: Callable[[], Request] | None = None,
        cache: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Resolve every node on the loop; generators are entered on ``teardown``'s stacks.

        ``request`` builds the request, for plans that read it (``reads_request``).
        ``cache``: slots filled by earlier resolutions (``load``), filled in place.
        """
        # The loop of ``solve_with``, inlined: a call per node costs the async API 15%.
        the_request = request() if self.reads_request and request is not None else None
        results: list[Any] = [None] * len(self.nodes)
        if cache is None and self.shared:
            cache = [_MISSING] * self.slots
        errors: list[Any] = []
        for index, node in enumerate(self.nodes):
            kwargs: dict[str, Any] = {}
            for name, source in node.args:
                kwargs[name] = results[source]
            if (node.extras or errors) and not _fill(
                node, kwargs, results, errors, the_request, teardown.background_tasks
            ):
                results[index] = _FAILED
                continue
            kind = node.kind
            if kind is None:  # the endpoint: the last node
                if errors:
                    raise _compat.validation_error(errors)
                return kwargs
            cached = _MISSING if cache is None else cache[node.slot]
            if node.use_cache and cached is not _MISSING:
                value = cached
            elif kind is CallKind.COROUTINE:
                value = await node.call(**kwargs)
            elif kind is CallKind.THREADPOOL:
                value = await run_sync(node.call, **kwargs)
            elif kind is CallKind.ASYNC_GENERATOR:
                assert node.factory is not None
                manager = node.factory(**kwargs)
                value = await teardown.enter(manager, node.function_scoped, async_generator=True)
            else:
                assert node.factory is not None
                in_thread = contextmanager_in_thread if diverted() else contextmanager_in_threadpool
                manager = in_thread(node.factory(**kwargs))
                value = await teardown.enter(manager, node.function_scoped)
            if cache is not None and cached is _MISSING:
                cache[node.slot] = value
            results[index] = value
        return _values(results, errors)

    def solve_with(
        self,
        call: Callable[[Node, dict[str, Any]], Any],
        background: Callable[[], BackgroundTasks],
        request: Callable[[], Request] | None = None,
        cache: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Resolve every node, each through ``call(node, kwargs)``: ``solve`` for callers
        that run the nodes themselves (the sync API, in the caller's thread). ``cache``:
        as for ``solve``."""
        the_request = request() if self.reads_request and request is not None else None
        results: list[Any] = []  # one per node, in order
        if cache is None and self.shared:
            cache = [_MISSING] * self.slots
        errors: list[Any] = []
        for node in self.nodes:
            kwargs: dict[str, Any] = {}
            for name, source in node.args:
                kwargs[name] = results[source]
            if (node.extras or errors) and not _fill(
                node, kwargs, results, errors, the_request, background
            ):
                results.append(_FAILED)
                continue
            if node.kind is None:  # the endpoint: the last node
                if errors:
                    raise _compat.validation_error(errors)
                return kwargs
            if cache is None:  # no slot is shared, and none loaded: nothing cached
                results.append(call(node, kwargs))
                continue
            cached = cache[node.slot]
            value = cached if node.use_cache and cached is not _MISSING else call(node, kwargs)
            if cached is _MISSING:
                cache[node.slot] = value
            results.append(value)
        return _values(results, errors)

    def load(self, shared: Mapping[Any, Any]) -> list[Any]:
        """Cache slots for ``solve`` from a dependency cache shared by several solves."""
        return [shared.get(key, _MISSING) for key in self.keys]

    def store(self, cache: list[Any], shared: dict[Any, Any]) -> None:
        """Add what ``solve`` cached to ``shared`` (first value wins, as in FastAPI)."""
        for key, value in zip(self.keys, cache, strict=True):
            if value is not _MISSING and key not in shared:
                shared[key] = value


def _fill(
    node: Node,
    kwargs: dict[str, Any],
    results: list[Any],
    errors: list[Any],
    request: Request | None,
    background: Callable[[], BackgroundTasks],
) -> bool:
    """Add ``node``'s request parameters and special values to ``kwargs``; whether it can
    be called (its parameters validated and none of its dependencies failed)."""
    failed = bool(errors) and any(results[c] is _FAILED for c in node.children)
    for fields, source in node.params:
        parsed, param_errors = _compat.parse_params(fields, request, source)
        kwargs.update(parsed)
        if param_errors:
            errors.extend(param_errors)
            failed = True
    if failed:
        return False
    for name in node.connection_names:
        kwargs[name] = request
    if node.background_name:
        kwargs[node.background_name] = background()
    if node.scopes_name:
        kwargs[node.scopes_name] = SecurityScopes(scopes=list(node.scopes))
    return True


def _values(results: list[Any], errors: list[Any]) -> dict[str, Any]:
    """The endpoint's values, or the validation error of the parameters that failed."""
    if errors:
        raise _compat.validation_error(errors)
    endpoint_values: dict[str, Any] = results[-1]
    return endpoint_values
