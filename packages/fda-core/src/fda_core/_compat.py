"""Every difference between FastAPI releases (0.100 → newest) that this library touches.

FastAPI has no public API for resolving dependencies outside a request, so the private
machinery is driven here and nowhere else. Each difference is detected from the installed
FastAPI itself (a signature or an attribute), never from its version number.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from fastapi.exceptions import RequestValidationError
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "DEPENDS_HAS_SCOPE",
    "Solved",
    "build_dependant",
    "install_exit_stacks",
    "solve",
    "validation_error",
]

_SOLVE_PARAMETERS = inspect.signature(solve_dependencies).parameters
# 0.106+: yield dependencies are entered on this stack (required, unused from 0.121).
_SOLVE_TAKES_EXIT_STACK = "async_exit_stack" in _SOLVE_PARAMETERS
# 0.112.4+: required; False is what routing computes for a call without body fields.
_SOLVE_TAKES_EMBED_BODY_FIELDS = "embed_body_fields" in _SOLVE_PARAMETERS

#: 0.121+: ``Depends(scope="function" | "request")``.
DEPENDS_HAS_SCOPE = "scope" in inspect.signature(params.Depends).parameters

try:  # pydantic-1 era releases wrap errors; newer ones return plain dicts.
    from fastapi._compat import _normalize_errors as _normalize
except ImportError:  # pragma: no cover - depends on the FastAPI release

    def _normalize(errors: Sequence[Any]) -> Sequence[Any]:
        return errors


# Scope keys that hold FastAPI's per-request exit stacks:
# ``fastapi_astack`` is asserted up to 0.105, the other two from 0.121.
_REQUEST_STACK_KEYS = ("fastapi_astack", "fastapi_inner_astack")
_FUNCTION_STACK_KEY = "fastapi_function_astack"


@dataclass
class Solved:
    """What ``solve_dependencies`` returned, in one shape for every release."""

    values: dict[str, Any]
    errors: list[Any]
    background_tasks: BackgroundTasks | None
    response: Response


def build_dependant(call: Callable[..., Any], *, path: str = "/") -> Dependant:
    """Analyse ``call`` the way FastAPI analyses an endpoint."""
    return get_dependant(path=path, call=call)


def install_exit_stacks(
    scope: MutableMapping[str, Any],
    *,
    request_stack: AsyncExitStack,
    function_stack: AsyncExitStack,
) -> None:
    """Put our exit stacks where this release looks for them.

    Keys left over from another request (a copied ``request.scope``) are dropped first:
    they belong to a request that may already be finished.
    """
    for key in [key for key in scope if key.startswith("fastapi_")]:
        del scope[key]
    for key in _REQUEST_STACK_KEYS:
        scope[key] = request_stack
    scope[_FUNCTION_STACK_KEY] = function_stack


async def solve(
    *,
    request: Request,
    dependant: Dependant,
    exit_stack: AsyncExitStack,
    dependency_cache: dict[Any, Any],
    dependency_overrides_provider: Any,
) -> Solved:
    """Call ``solve_dependencies`` with the arguments this release takes."""
    kwargs: dict[str, Any] = {
        "request": request,
        "dependant": dependant,
        "dependency_overrides_provider": dependency_overrides_provider,
        "dependency_cache": dependency_cache,
    }
    if _SOLVE_TAKES_EXIT_STACK:
        kwargs["async_exit_stack"] = exit_stack
    if _SOLVE_TAKES_EMBED_BODY_FIELDS:
        kwargs["embed_body_fields"] = False
    result = await solve_dependencies(**kwargs)
    if isinstance(result, tuple):  # < 0.112.3
        values, errors, background_tasks, response, cache = result
    else:
        values = result.values
        errors = result.errors
        background_tasks = result.background_tasks
        response = result.response
        cache = result.dependency_cache
    # < 0.117 replaced an empty cache dict with a new one: keep ours complete.
    if cache is not dependency_cache:
        dependency_cache.update(cache)
    return Solved(values, list(errors), background_tasks, response)


def validation_error(errors: Sequence[Any]) -> RequestValidationError:
    """The exception a route raises for these errors."""
    return RequestValidationError(_normalize(errors))
