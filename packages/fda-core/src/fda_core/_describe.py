"""Naming callables and finding body parameters, for error messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant

from fda_core import _compat

__all__ = ["describe", "required_body_fields"]


def describe(call: Any) -> str:
    """``module.qualname`` of a callable, for error messages."""
    call = getattr(call, "func", call)  # functools.partial
    module = getattr(call, "__module__", None) or "?"
    name = getattr(call, "__qualname__", None) or getattr(call, "__name__", None) or repr(call)
    return f"{module}.{name}"


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def required_body_fields(dependant: Dependant) -> Iterator[tuple[Dependant, Any]]:
    """``(node, field)`` for each body parameter without a default in ``dependant``'s
    graph: no request outside a route has a body to read it from."""
    for node in _walk(dependant):
        for body_field in node.body_params:
            if _compat.is_required(body_field):
                yield node, body_field
