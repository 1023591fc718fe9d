"""Resolution plans: a dependency graph compiled once, then run as a flat list of steps.

``solve_dependencies`` re-walks the graph, rebuilds overridden dependants and builds a
request on every call. Here the walk happens once, at first use: it becomes a list of
nodes in the order FastAPI visits them, each knowing how to call its dependency, where its
arguments come from and which cache slot it shares. Every decision (call kind, cache key,
scopes, teardown stack, override rebuild, parameter parsing) is FastAPI's own, taken
through ``_compat``; the differential tests hold the plan and FastAPI side by side.

Nodes that read the request (``Header``, ``Query``, ``Cookie``, ``Path``, ``Request``) parse
it with FastAPI's own ``request_params_to_args``; the request is only built for graphs that
have such nodes. A subtree that FastAPI would visit again only to find everything in the
cache is visited once.
"""

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextlib import contextmanager as sync_contextmanager
from typing import Any

from fastapi.concurrency import contextmanager_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.security import SecurityScopes
from starlette.background import BackgroundTasks
from starlette.requests import Request

from fda_core import _compat
from fda_core._compat import CallKind
from fda_core._describe import describe, required_body_fields
from fda_core._threads import contextmanager_in_thread, diverted, run_sync

__all__ = ["Plan", "Teardown", "compile_plan"]

_MISSING: Any = object()  # an empty cache slot
_FAILED: Any = object()  # a node not called because its parameters did not validate


class _NeedsFastAPI(Exception):
    """Something the plan does not do (a WebSocket, a sub-response, a limiter)."""


class _Node:
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


class Teardown:
    """The exit stacks of one call: function-scoped ones close before request-scoped ones."""

    __slots__ = ("background", "cleanup", "function", "request")

    def __init__(self) -> None:
        self.request: AsyncExitStack | None = None
        self.function: AsyncExitStack | None = None
        self.background: BackgroundTasks | None = None
        self.cleanup: list[Any] = []  # the cancel scope shielding async-generator teardown

    async def enter(
        self,
        manager: AbstractAsyncContextManager[Any],
        function_scoped: bool,
        async_generator: bool = False,
    ) -> Any:
        if async_generator:
            if self.request is None:
                self.request = AsyncExitStack()
            manager = _compat.shield_teardown(manager, self.request, self.cleanup)
        if function_scoped:
            if self.function is None:
                self.function = AsyncExitStack()
            return await self.function.enter_async_context(manager)
        if self.request is None:
            self.request = AsyncExitStack()
        return await self.request.enter_async_context(manager)

    def background_tasks(self) -> BackgroundTasks:
        if self.background is None:
            self.background = _compat.BackgroundTasksClass()
        return self.background

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
        context = current.__context__
        try:
            raise current
        except BaseException:
            current.__context__ = context  # its chain, not the exception being handled
            raise


class Plan:
    """A compiled graph: run the nodes in order; the last one is the endpoint itself."""

    __slots__ = (
        "async_steps",
        "background",
        "keys",
        "nodes",
        "reads_request",
        "slots",
        "sync_steps",
    )

    def __init__(self, nodes: list[_Node], keys: list[Any]) -> None:
        self.nodes = tuple(nodes)
        self.keys = tuple(keys)  # the dependency-cache key of each slot
        self.slots = len(keys)
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

    def _prepare(self, request: Callable[[], Request] | None) -> tuple[Request | None, list[Any]]:
        the_request = request() if self.reads_request and request is not None else None
        return the_request, [None] * len(self.nodes)

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
        the_request, results = self._prepare(request)
        if cache is None:
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
            if kind is None:  # the endpoint
                results[index] = kwargs
                break
            cached = cache[node.slot]
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
            if cached is _MISSING:
                cache[node.slot] = value
            results[index] = value
        return _values(results, errors)

    def solve_with(
        self,
        call: Callable[[_Node, dict[str, Any]], Any],
        background: Callable[[], BackgroundTasks],
        request: Callable[[], Request] | None = None,
    ) -> dict[str, Any]:
        """Resolve every node, each through ``call(node, kwargs)``: ``solve`` for callers
        that run the nodes themselves (the sync API, in the caller's thread)."""
        the_request, results = self._prepare(request)
        cache = [_MISSING] * self.slots
        errors: list[Any] = []
        for index, node in enumerate(self.nodes):
            kwargs: dict[str, Any] = {}
            for name, source in node.args:
                kwargs[name] = results[source]
            if (node.extras or errors) and not _fill(
                node, kwargs, results, errors, the_request, background
            ):
                results[index] = _FAILED
                continue
            if node.kind is None:  # the endpoint
                results[index] = kwargs
                break
            cached = cache[node.slot]
            value = cached if node.use_cache and cached is not _MISSING else call(node, kwargs)
            if cached is _MISSING:
                cache[node.slot] = value
            results[index] = value
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
    node: _Node,
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


class _Compiler:
    def __init__(self, overrides: Mapping[Any, Any]) -> None:
        self.overrides = overrides
        self.nodes: list[_Node] = []
        self.slots: dict[Any, int] = {}
        # slot -> the node that fills it on every run: the first node with that slot, if
        # nothing below it reads the request (a node whose parameters fail fills nothing).
        self.filler: dict[int, int] = {}
        self.seen: set[int] = set()
        self.known: dict[int, bool] = {}  # id(dependant) -> its subtree is all cache hits
        self.keep: list[Dependant] = []  # keeps those ids from being reused

    def rebuilt(self, sub: Dependant) -> Dependant:
        if self.overrides:  # rebuilt whether overridden or not, as solve_dependencies does
            call = self.overrides.get(sub.call, sub.call)
            rebuilt = _compat.override_dependant(sub, call)
            if call is not sub.call:
                _refuse_body(rebuilt, sub)
            return rebuilt
        return sub

    def children(self, dependant: Dependant) -> tuple[tuple[int, ...], tuple[tuple[str, int], ...]]:
        reason = _compat.needs_fastapi(dependant)
        if reason is not None:
            raise _NeedsFastAPI(reason)
        children: list[int] = []
        args: list[tuple[str, int]] = []
        for sub in dependant.dependencies:
            index = self.node(sub)
            children.append(index)
            if sub.name is not None:
                args.append((sub.name, index))
        return tuple(children), tuple(args)

    def node(self, sub: Dependant) -> int:
        """Emit ``sub`` (and what it needs) and return the node holding its value."""
        use_sub = self.rebuilt(sub)
        slot = self.slots.setdefault(_compat.cache_key(sub), len(self.slots))
        if sub.use_cache and slot in self.filler and self.all_cached(use_sub):
            # FastAPI would walk this subtree again only to read the cache.
            return self.filler[slot]
        before = len(self.nodes)
        children, args = self.children(use_sub)
        self.nodes.append(_Node(sub, use_sub, children, args, slot))
        index = len(self.nodes) - 1
        if slot not in self.seen:
            self.seen.add(slot)
            if not any(node.params for node in self.nodes[before:]):
                self.filler[slot] = index
        return index

    def all_cached(self, dependant: Dependant) -> bool:
        """Whether re-solving ``dependant``'s sub-dependencies only reads the cache."""
        if self.known.get(id(dependant)):
            return True
        if _compat.request_params(dependant):  # its errors would be reported again
            return False
        for sub in dependant.dependencies:
            slot = self.slots.get(_compat.cache_key(sub))
            if not sub.use_cache or slot not in self.filler:
                return False
            if not self.all_cached(self.rebuilt(sub)):
                return False
        self.known[id(dependant)] = True  # stays true: fillers are only added
        self.keep.append(dependant)
        return True


def _refuse_body(override: Dependant, replaced: Dependant) -> None:
    for node, body_field in required_body_fields(override):
        owner = "" if node is override else f" (through {describe(node.call)})"
        raise TypeError(
            f"The override {describe(override.call)} of {describe(replaced.call)} reads "
            f"parameter {body_field.name!r}{owner} from the request body, which does not "
            "exist outside a request. Give it a default, or override with a function that "
            "does not read the body."
        )


def compile_plan(endpoint: Dependant, overrides: Mapping[Any, Any]) -> Plan | None:
    """The plan of ``endpoint`` under ``overrides``, or ``None`` if FastAPI must solve it."""
    compiler = _Compiler(overrides)
    try:
        children, args = compiler.children(endpoint)
    except _NeedsFastAPI:
        return None
    compiler.nodes.append(_Node(None, endpoint, children, args, -1))
    return Plan(compiler.nodes, list(compiler.slots))
