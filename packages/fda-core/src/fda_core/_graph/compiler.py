"""Compiling a dependency graph into a ``Plan``: FastAPI's walk, done once.

Every decision (call kind, cache key, scopes, teardown stack, override rebuild, parameter
parsing) is FastAPI's own, taken through ``_compat``; the differential tests hold the plan
and FastAPI side by side. A subtree that FastAPI would visit again only to find everything
in the cache is visited once. A graph the plan cannot run (a WebSocket, a sub-response, a
limiter) compiles to ``None``: FastAPI's resolver solves it.
"""

from collections.abc import Mapping
from typing import Any

from fastapi.dependencies.models import Dependant

from fda_core import _compat
from fda_core._describe import describe, required_body_fields
from fda_core._graph.plan import Node, Plan

__all__ = ["compile_plan"]


class _NeedsFastAPI(Exception):
    """Something the plan does not do (a WebSocket, a sub-response, a limiter)."""


class _Compiler:
    def __init__(self, overrides: Mapping[Any, Any]) -> None:
        self.overrides = overrides
        self.nodes: list[Node] = []
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
        self.nodes.append(Node(sub, use_sub, children, args, slot))
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
    compiler.nodes.append(Node(None, endpoint, children, args, -1))
    return Plan(compiler.nodes, list(compiler.slots))
