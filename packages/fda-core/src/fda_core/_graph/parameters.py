"""Which parameters FastAPI injects, their annotations evaluated as a route's would be.

A parameter is injected when a route handler would get it from FastAPI rather than from the
HTTP request's body: ``Depends``/``Security`` (as default or in ``Annotated``), ``Header``,
``Query``, ``Cookie``, ``Path``, and the special types (``Request``, ``Response``,
``BackgroundTasks``, ``HTTPConnection``, ``SecurityScopes``). Every other parameter belongs
to the caller and is passed through untouched, whatever its type.

String annotations (PEP 563) are evaluated with the function's globals, its closure and the
names of the code that decorated it; a name that does not exist at run time becomes a
placeholder, refused where FastAPI would call or validate it.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import sys
from collections.abc import Callable, Mapping
from types import GenericAlias
from typing import Annotated, Any, get_args, get_origin

from fastapi import params
from fastapi.security import SecurityScopes
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response

from fda_core._describe import describe

__all__ = ["classify", "decorating_names", "placeholders", "signature_of"]

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


def placeholders(
    func: Callable[..., Any],
    parameters: tuple[inspect.Parameter, ...],
    injected: frozenset[str],
    missing: dict[str, list[str]],
) -> tuple[tuple[str, str], ...]:
    """Refuse an injected parameter whose annotation names nothing at run time where FastAPI
    would call or validate it (``missing``: from ``classify``). Returns (name, annotation)
    of the required parameters left with a placeholder: taken for the caller's own, which
    a forgotten one makes confusing (``Analysis.check_unresolved`` says why)."""
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
    return tuple(
        (p.name, str(raw[p.name].annotation))
        for p in parameters
        if p.annotation is _Unresolved
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
