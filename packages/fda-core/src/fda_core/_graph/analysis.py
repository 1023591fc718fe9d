"""Analysing a decorated function once: its injected parameters, its graph, its plans.

``analyse`` splits the parameters (``parameters``), builds FastAPI's ``Dependant`` of the
injected ones, and caches a compiled plan per set of overrides (``compiler``).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from fastapi import params
from fastapi.dependencies.models import Dependant

from fda_core import _compat
from fda_core._describe import describe, required_body_fields
from fda_core._graph.compiler import compile_plan
from fda_core._graph.parameters import classify, placeholders
from fda_core._graph.plan import Plan

if TYPE_CHECKING:
    from fda_core._override import Scoped

__all__ = ["Analysis", "analyse", "dependant_for_value"]


def _reject_body_params(func: Callable[..., Any], dependant: Dependant) -> None:
    """Refuse a *required* body parameter: a route without a body gives the others their
    defaults (FastAPI's resolver does, as for such a route)."""
    for node, body_field in required_body_fields(dependant):
        owner = "the function" if node is dependant else f"dependency {describe(node.call)}"
        raise TypeError(
            f"{describe(func)}: parameter {body_field.name!r} of {owner} is read from the "
            "request body, which does not exist outside a request. Make it a parameter "
            "the caller passes in, or give it a default."
        )


_NOTHING: frozenset[str] = frozenset()
_MAX_PLANS = 64  # per function: override sets and caller-passed parameters seen


@dataclass
class Analysis:
    """What one decorated function needs, computed on first use and then reused."""

    func: Callable[..., Any]
    parameters: tuple[inspect.Parameter, ...]
    injected: frozenset[str]
    positional: tuple[str, ...]
    #: (name, annotation) of required parameters whose annotation names nothing that
    #: exists: taken for the caller's own, which a forgotten one makes confusing.
    unresolved: tuple[tuple[str, str], ...] = ()
    _variants: dict[frozenset[str], Dependant] = field(
        default_factory=dict[frozenset[str], Dependant]
    )
    _plans: dict[Any, Plan | None] = field(default_factory=dict[Any, "Plan | None"])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._positional_injected = tuple(
            (index, name) for index, name in enumerate(self.positional) if name in self.injected
        )
        # The caller sees only its own parameters (the wrapper's signature), so positional
        # arguments fill those; the ones after an injected parameter are passed by keyword.
        self._prefix = len(self.positional)
        self._by_keyword: tuple[str, ...] = ()
        if self._positional_injected:
            first = self._positional_injected[0][0]
            self._prefix = first
            self._by_keyword = tuple(
                name for name in self.positional[first:] if name not in self.injected
            )
            kinds = {p.name: p.kind for p in self.parameters}
            if kinds[self.positional[first]] is inspect.Parameter.POSITIONAL_ONLY or any(
                p.kind is inspect.Parameter.VAR_POSITIONAL for p in self.parameters
            ):
                raise TypeError(
                    f"{describe(self.func)}: the injected parameter "
                    f"{self.positional[first]!r} stands among positional-only or *args "
                    "parameters, where callers could not skip it; make it keyword-only "
                    "(after `*`)."
                )

    def arrange(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Map the caller's positional arguments onto the caller's own parameters."""
        if not self._positional_injected or len(args) <= self._prefix:
            return args, kwargs
        extra = args[self._prefix :]
        if len(extra) > len(self._by_keyword):
            expected = self._prefix + len(self._by_keyword)
            raise TypeError(
                f"{describe(self.func)}() takes {expected} positional argument(s) but "
                f"{len(args)} were given (injected parameters are passed by keyword)"
            )
        arranged = dict(kwargs)
        for name, value in zip(self._by_keyword, extra, strict=False):
            if name in arranged:
                raise TypeError(f"{describe(self.func)}() got multiple values for {name!r}")
            arranged[name] = value
        return args[: self._prefix], arranged

    def arranged(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], frozenset[str]]:
        """``arrange``, then ``provided``: a call's first step, in one call."""
        if not self._positional_injected:
            if not kwargs:
                return args, kwargs, _NOTHING
            names = [name for name in kwargs if name in self.injected]
            return args, kwargs, frozenset(names) if names else _NOTHING
        args, kwargs = self.arrange(args, kwargs)
        return args, kwargs, self.provided(args, kwargs)

    def provided(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> frozenset[str]:
        """The injected parameters the caller passed itself (those win: tests pass fakes)."""
        if not kwargs and not self._positional_injected:
            return _NOTHING
        names = [name for name in kwargs if name in self.injected]
        names += [name for index, name in self._positional_injected if index < len(args)]
        return frozenset(names) if names else _NOTHING

    def check_unresolved(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Say which annotation is at fault when such a parameter was not passed."""
        passed = set(kwargs).union(self.positional[: len(args)])
        for name, annotation in self.unresolved:
            if name not in passed:
                raise TypeError(
                    f"{describe(self.func)}() is missing argument {name!r}. Its annotation "
                    f"{annotation!r} names something that does not exist at run time, so "
                    f"{name!r} was taken for a parameter of the caller's. If it is a "
                    "dependency, define what the annotation names at module level (not "
                    "inside a function, nor only under `if TYPE_CHECKING:`)."
                )

    def dependant(self, provided: frozenset[str] = _NOTHING) -> Dependant:
        """FastAPI's analysis of the injected parameters the caller did not pass."""
        dependant = self._variants.get(provided)
        if dependant is None:
            with self._lock:
                dependant = self._variants.get(provided)
                if dependant is None:
                    dependant = self._build(provided)
                    self._variants[provided] = dependant
        return dependant

    def plan(
        self,
        provided: frozenset[str],
        overrides: Mapping[Any, Any],
        scoped: Scoped | None = None,
    ) -> Plan | None:
        """The compiled plan for this call, or ``None`` when the graph needs the request.

        Plans are cached per set of overrides: one set in ``app.dependency_overrides``
        compiles once, and changing it compiles again; so does each set of ``scoped``
        overrides (``override()``), which win over the app's.
        """
        if scoped is None:
            key: Any = (provided, tuple(overrides.items())) if overrides else provided
        elif scoped.key is None:  # an unhashable replacement: compile for this call only
            return compile_plan(self.dependant(provided), scoped.merged(overrides))
        else:
            key = (provided, tuple(overrides.items()), scoped.key)
        try:
            return self._plans[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable override: compile for this call only
            return compile_plan(self.dependant(provided), _merged(overrides, scoped))
        plan = compile_plan(self.dependant(provided), _merged(overrides, scoped))
        with self._lock:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _build(self, provided: frozenset[str]) -> Dependant:
        wanted = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in self.parameters
            if p.name in self.injected and p.name not in provided
        ]
        dependant = _compat.build_dependant(_endpoint(self.func, wanted))
        _reject_body_params(self.func, dependant)
        return dependant


def _merged(overrides: Mapping[Any, Any], scoped: Scoped | None) -> Mapping[Any, Any]:
    return overrides if scoped is None else scoped.merged(overrides)


def _endpoint(func: Callable[..., Any], parameters: list[inspect.Parameter]) -> Any:
    """A stand-in endpoint whose signature is only the injected parameters of ``func``."""

    def endpoint() -> None:  # pragma: no cover - FastAPI only reads its signature
        raise AssertionError

    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__qualname__ = getattr(func, "__qualname__", endpoint.__qualname__)
    endpoint.__module__ = getattr(func, "__module__", endpoint.__module__)
    return endpoint


def analyse(
    func: Callable[..., Any], *, strict: bool = False, local: Mapping[str, Any] | None = None
) -> Analysis:
    """Split ``func``'s parameters into injected ones and the caller's own.

    ``local``: names of the scope that applied the decorator (``decorating_names``).
    """
    missing: dict[str, list[str]] = {}
    parameters, injected = classify(func, strict=strict, local=local, missing=missing)
    unresolved = placeholders(func, parameters, injected, missing)
    positional = tuple(
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    analysis = Analysis(func, parameters, injected, positional, unresolved)
    analysis.dependant()  # analyse the graph now: bad signatures fail on first use
    return analysis


def dependant_for_value(target: Any) -> Dependant:
    """A dependant with a single parameter ``value`` that resolves ``target``.

    ``target`` is ``Annotated[T, Depends(...)]``, a dependency callable or a class.
    """
    annotation: Any
    default: Any
    if get_origin(target) is Annotated:
        annotation, default = target, inspect.Parameter.empty
        # A list, not any() over a generator: one left suspended is closed by the
        # garbage collector, where an interrupt landing would be lost.
        if not [m for m in get_args(target)[1:] if isinstance(m, params.Depends)]:
            raise TypeError(f"{target!r} carries no Depends(...) to resolve")
    elif callable(target):
        annotation, default = Any, params.Depends(target)
    else:
        raise TypeError(
            f"Cannot resolve {target!r}: pass Annotated[T, Depends(dep)], a dependency "
            "callable or a class."
        )
    value = inspect.Parameter(
        "value", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )
    dependant = _compat.build_dependant(_endpoint(target, [value]))
    _reject_body_params(target, dependant)
    return dependant
