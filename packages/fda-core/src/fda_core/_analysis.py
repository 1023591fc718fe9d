"""Analysing a decorated function once: which parameters FastAPI injects, which pass through.

A parameter is injected when a route handler would get it from FastAPI rather than from the
HTTP request's body: ``Depends``/``Security`` (as default or in ``Annotated``), ``Header``,
``Query``, ``Cookie``, ``Path``, and the special types (``Request``, ``Response``,
``BackgroundTasks``, ``HTTPConnection``, ``SecurityScopes``). Every other parameter belongs
to the caller and is passed through untouched, whatever its type.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import GenericAlias
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.security import SecurityScopes
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response

from fda_core import _compat
from fda_core._describe import describe, required_body_fields
from fda_core._plan import Plan, compile_plan

if TYPE_CHECKING:
    from fda_core._override import Scoped

__all__ = ["Analysis", "analyse", "dependant_for_value", "describe"]

_SPECIAL_TYPES = (HTTPConnection, Response, BackgroundTasks, SecurityScopes)
_INJECTED_MARKERS = (params.Depends, params.Param)


def _is_injected(annotation: Any, default: Any) -> bool:
    if isinstance(default, (*_INJECTED_MARKERS, params.Body)):
        return True
    base = annotation
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        if any(isinstance(m, (*_INJECTED_MARKERS, params.Body)) for m in metadata):
            return True
    # inspect.isclass: on Python 3.10 a ``list[str]`` alias passes isinstance(x, type).
    return (
        inspect.isclass(base)
        and not isinstance(base, GenericAlias)
        and (issubclass(base, _SPECIAL_TYPES))
    )


class _Unresolved:
    """Stands for a name that does not exist at run time (``if TYPE_CHECKING:`` imports)."""


_OWN_PACKAGES = frozenset({"fda_core", "fda_sync", "fastapi_depends_anywhere", "contextlib"})


def _annotation_names(func: Callable[..., Any]) -> set[str]:
    """The names ``func``'s string annotations mention."""
    names: set[str] = set()
    for parameter in signature_of(func).parameters.values():
        if isinstance(parameter.annotation, str):
            with contextlib.suppress(SyntaxError):
                names.update(compile(parameter.annotation, "<annotation>", "eval").co_names)
    return names


def decorating_names(func: Callable[..., Any]) -> dict[str, Any]:
    """The local names, among those ``func``'s string annotations mention, of the code that
    applied the decorator (a test function, a class body): where a dependency defined
    there lives. Only the names used are kept, not the whole frame."""
    wanted = _annotation_names(func)
    if not wanted:
        return {}
    frame = sys._getframe(1)  # pyright: ignore[reportPrivateUsage]
    try:
        while frame.f_back is not None and (
            frame.f_globals.get("__name__", "").partition(".")[0] in _OWN_PACKAGES
        ):
            frame = frame.f_back
        local = frame.f_locals
        if local is frame.f_globals:
            return {}
        return {name: local[name] for name in wanted if name in local}
    finally:
        del frame


class _Names(dict[str, Any]):
    def __init__(self, namespace: dict[str, Any], *, strict: bool) -> None:
        super().__init__(namespace)
        self.strict = strict
        self.missing: list[str] = []

    def __missing__(self, name: str) -> Any:
        if name in builtins.__dict__:
            return builtins.__dict__[name]
        if self.strict:
            raise NameError(name)
        self.missing.append(name)
        return _Unresolved


def _closure(func: Any) -> dict[str, Any]:
    """The function's free variables that are bound (not a cell still empty)."""
    code = getattr(func, "__code__", None)
    cells = getattr(func, "__closure__", None) or ()
    names: dict[str, Any] = {}
    for name, cell in zip(getattr(code, "co_freevars", ()), cells, strict=False):
        with contextlib.suppress(ValueError):
            names[name] = cell.cell_contents
    return names


def _annotation(
    func: Callable[..., Any],
    annotation: Any,
    *,
    strict: bool,
    local: Mapping[str, Any] | None = None,
    missing: list[str] | None = None,
) -> Any:
    """Evaluate a PEP 563 string annotation as ``inspect.signature(eval_str=True)`` would,
    also seeing the function's closure and ``local`` (``decorating_names``).

    ``strict`` (at decoration) fails on a missing name: it may be defined later in the
    module. Otherwise (on first call) a missing name becomes a placeholder type (added to
    ``missing``), making the parameter a pass-through one: it exists only for type
    checkers. ``analyse`` refuses a placeholder that would be called or validated.
    """
    if not isinstance(annotation, str):
        return annotation
    unwrapped = inspect.unwrap(func)
    names = _Names(getattr(unwrapped, "__globals__", {}), strict=strict)
    names.update(_closure(unwrapped))
    names.update(local or {})
    try:
        return eval(annotation, {}, names)
    except Exception:
        if strict:
            raise
        return _Unresolved
    finally:
        if missing is not None:
            missing.extend(names.missing)


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


def signature_of(func: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature``, or ``(*args, **kwargs)`` for what it cannot read (a mock
    on Python 3.10)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return inspect.Signature(
            [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        )


def classify(
    func: Callable[..., Any],
    *,
    strict: bool = False,
    local: Mapping[str, Any] | None = None,
    missing: dict[str, list[str]] | None = None,
) -> tuple[tuple[inspect.Parameter, ...], frozenset[str]]:
    """``func``'s parameters with evaluated annotations, and the names FastAPI injects
    (``missing``: filled with the names each annotation mentions that do not exist)."""
    parameters: list[inspect.Parameter] = []
    for p in signature_of(func).parameters.values():
        names: list[str] = []
        annotation = _annotation(func, p.annotation, strict=strict, local=local, missing=names)
        parameters.append(p.replace(annotation=annotation))
        if names and missing is not None:
            missing[p.name] = names
    injected = frozenset(
        p.name
        for p in parameters
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and _is_injected(p.annotation, p.default)
    )
    return tuple(parameters), injected


def _markers(parameter: inspect.Parameter) -> tuple[Any, list[Any]]:
    """The annotation's type and the FastAPI markers of ``parameter`` (default included)."""
    markers = [parameter.default]
    annotation = parameter.annotation
    if get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        markers += metadata
    return annotation, markers


def _uses_placeholder(parameter: inspect.Parameter) -> bool:
    """Whether FastAPI would call the placeholder, or validate a value against it."""
    base, markers = _markers(parameter)
    for marker in markers:
        if isinstance(marker, params.Depends) and marker.dependency is _Unresolved:
            return True
        if isinstance(marker, (params.Param, params.Body)) and base is _Unresolved:
            return True
    return False


def _class_dependency_of_nothing(parameter: inspect.Parameter) -> bool:
    """``x: Missing = Depends()``: FastAPI would call the placeholder as the dependency."""
    base, markers = _markers(parameter)
    return base is _Unresolved and any(
        isinstance(m, params.Depends) and m.dependency is None for m in markers
    )


def analyse(
    func: Callable[..., Any], *, strict: bool = False, local: Mapping[str, Any] | None = None
) -> Analysis:
    """Split ``func``'s parameters into injected ones and the caller's own.

    ``local``: names of the scope that applied the decorator (``decorating_names``).
    """
    missing: dict[str, list[str]] = {}
    parameters, injected = classify(func, strict=strict, local=local, missing=missing)
    raw = signature_of(func).parameters
    for p in parameters:
        if p.name not in injected:
            continue
        if _class_dependency_of_nothing(p):
            raise TypeError(
                f"{describe(func)}: parameter {p.name!r} is `Depends()` on its annotation, "
                f"{raw[p.name].annotation!r}, which names nothing at run time (an import under "
                "`if TYPE_CHECKING:`?). Import the class at run time, or name the dependency: "
                "`Depends(TheClass)`."
            )
        if _uses_placeholder(p):
            names = ", ".join(repr(name) for name in dict.fromkeys(missing.get(p.name, ())))
            raise TypeError(
                f"{describe(func)}: parameter {p.name!r} is annotated "
                f"{raw[p.name].annotation!r}, which names {names or 'something'}: not found "
                "in the module, the function's closure, nor where the decorator was applied "
                "(`from __future__ import annotations` makes annotations strings, evaluated "
                "later). Define it before decorating the function, or at module level."
            )
    positional = tuple(
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    unresolved = tuple(
        (p.name, str(raw[p.name].annotation))
        for p in parameters
        if p.annotation is _Unresolved
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
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
        if not any(isinstance(m, params.Depends) for m in get_args(target)[1:]):
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
