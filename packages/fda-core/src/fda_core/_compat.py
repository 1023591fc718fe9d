"""Every difference between FastAPI releases (0.100 → newest) that this library touches.

FastAPI has no public API for resolving dependencies outside a request, so the private
machinery is driven here and nowhere else. Each difference is detected from the installed
FastAPI itself (a signature or an attribute); only routing behaviour that leaves no such
trace is told by the version number.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, cast

import fastapi._compat
import fastapi.concurrency
import fastapi.dependencies.models
import fastapi.dependencies.utils
from anyio import CancelScope
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from fda_core._shielded import ShieldedExit

__all__ = [
    "DEPENDS_HAS_SCOPE",
    "VALIDATION_ERROR_AFTER_TEARDOWN",
    "BackgroundTasksClass",
    "CallKind",
    "RouteInfo",
    "Solved",
    "awaited_by_route",
    "build_dependant",
    "cache_key",
    "call_kind",
    "enter_cleanup_scope",
    "install_exit_stacks",
    "is_function_scoped",
    "is_required",
    "iter_routes",
    "kind_of",
    "needs_fastapi",
    "oauth_scopes",
    "override_dependant",
    "parse_params",
    "request_params",
    "shield_teardown",
    "solve",
    "validation_error",
]

# Typed as Any: what they hold depends on the installed release.
fastapi_compat: Any = fastapi._compat
fastapi_models: Any = fastapi.dependencies.models
fastapi_utils: Any = fastapi.dependencies.utils

_SOLVE_PARAMETERS = inspect.signature(solve_dependencies).parameters
# 0.106+: yield dependencies are entered on this stack (required, unused from 0.121).
_SOLVE_TAKES_EXIT_STACK = "async_exit_stack" in _SOLVE_PARAMETERS
# 0.112.4+: required; False is what routing computes for a call without body fields.
_SOLVE_TAKES_EMBED_BODY_FIELDS = "embed_body_fields" in _SOLVE_PARAMETERS

#: 0.121+: ``Depends(scope="function" | "request")``.
DEPENDS_HAS_SCOPE = "scope" in inspect.signature(params.Depends).parameters

# Releases that support pydantic 1 wrap errors and normalize them before raising.
_normalize: Callable[[Sequence[Any]], Sequence[Any]] = getattr(
    fastapi_compat, "_normalize_errors", lambda errors: errors
)


_GET_DEPENDANT_PARAMETERS = inspect.signature(get_dependant).parameters

#: The class ``solve_dependencies`` instantiates for a ``BackgroundTasks`` parameter.
BackgroundTasksClass: type[BackgroundTasks] = fastapi_utils.BackgroundTasks

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
    result: Any = await solve_dependencies(**kwargs)  # a tuple or a SolvedDependency
    if isinstance(result, tuple):  # < 0.112.3
        values, errors, background_tasks, response, cache = cast(
            "tuple[Any, Any, Any, Any, Any]", result
        )
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


class RouteInfo(NamedTuple):
    """An endpoint with its full path, or a mounted app to look into."""

    path: str
    endpoint: Callable[..., Any] | None
    dependant: Dependant | None
    mounted: Any = None


def iter_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[RouteInfo]:
    """Every endpoint of ``routes``, included routers flattened.

    Up to 0.136 ``include_router`` copies routes into the app; from 0.137 it adds one lazy
    ``_IncludedRouter`` whose ``effective_route_contexts()`` yields the effective routes.
    """
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                original = context.original_route
                if isinstance(original, Mount):
                    yield RouteInfo(prefix + context.path, None, None, original.app)
                elif context.dependant is not None:
                    yield RouteInfo(prefix + context.path, context.endpoint, context.dependant)
        elif isinstance(route, (APIRoute, APIWebSocketRoute)):
            yield RouteInfo(prefix + route.path, route.endpoint, route.dependant)
        elif isinstance(route, Mount):
            yield RouteInfo(prefix + route.path, None, None, route.app)
        elif isinstance(route, Route):  # Starlette's own (``app.add_route``): no dependant
            yield RouteInfo(prefix + route.path, route.endpoint, None)


class CallKind(Enum):
    """How FastAPI calls a dependency."""

    COROUTINE = "coroutine"
    THREADPOOL = "threadpool"
    GENERATOR = "generator"  # a context manager entered in the threadpool
    ASYNC_GENERATOR = "async generator"


def call_kind(dependant: Any) -> CallKind:
    """Decide as this release's ``solve_dependencies`` decides (partials, wraps...)."""
    call = dependant.call
    if hasattr(fastapi_models, "_is_gen_callable"):  # 0.140+: lru-cached functions
        is_async_gen = fastapi_models._is_async_gen_callable(call)
        is_gen = fastapi_models._is_gen_callable(call)
        is_coroutine = fastapi_models._is_coroutine_callable(call)
    elif hasattr(Dependant, "is_gen_callable"):  # 0.121-0.139: cached properties
        is_async_gen = dependant.is_async_gen_callable
        is_gen = dependant.is_gen_callable
        is_coroutine = dependant.is_coroutine_callable
    else:  # <= 0.120: functions of the solver module
        is_async_gen = fastapi_utils.is_async_gen_callable(call)
        is_gen = fastapi_utils.is_gen_callable(call)
        is_coroutine = fastapi_utils.is_coroutine_callable(call)
    if is_async_gen:
        return CallKind.ASYNC_GENERATOR
    if is_gen:
        return CallKind.GENERATOR
    return CallKind.COROUTINE if is_coroutine else CallKind.THREADPOOL


# 0.162.7+: an async-generator dependency's teardown is shielded from cancellation by a
# CancelScope entered on the request's exit stack before the first such dependency
# (``ShieldedExit`` takes the steps of FastAPI's wrapper, at less cost).
_shielded_exit: Any = getattr(fastapi.concurrency, "_asynccontextmanager_with_shielded_exit", None)


def shield_teardown(
    manager: AbstractAsyncContextManager[Any], request_stack: AsyncExitStack, cleanup: list[Any]
) -> AbstractAsyncContextManager[Any]:
    """Wrap an async-generator dependency as this release does (``cleanup`` holds the
    call's one shared cancel scope, created on first use)."""
    if _shielded_exit is None:
        return manager
    enter_cleanup_scope(request_stack, cleanup)
    return ShieldedExit(manager, cleanup[0])


def enter_cleanup_scope(request_stack: AsyncExitStack, cleanup: list[Any]) -> None:
    """Enter the cancel scope ``shield_teardown`` shares, now rather than at the first async
    generator: for a task whose async generators go on several exit stacks entered later
    (the sync stack's), each of which may enter cancel scopes of its own, all inside it."""
    if _shielded_exit is not None and not cleanup:
        cleanup.append(request_stack.enter_context(CancelScope()))


# 0.110-0.117 raise a route's RequestValidationError once its dependencies are torn down
# (their stack is closed first), so teardown sees no exception; before and after, it is
# raised inside the stack. Routing behaviour leaves no trace to detect: the version tells.
_VERSION = tuple(int(part) for part in fastapi.__version__.split(".")[:2])
VALIDATION_ERROR_AFTER_TEARDOWN = (0, 110) <= _VERSION < (0, 118)


def kind_of(call: Callable[..., Any]) -> CallKind:
    """How this release's FastAPI would call ``call`` (partials, ``functools.wraps``,
    callable objects and mocks included), for code that has no ``Dependant`` yet."""
    return call_kind(Dependant(call=call))


def _looks_through_wraps() -> bool:
    async def target() -> None: ...

    def wrapper() -> None: ...

    wrapper.__wrapped__ = target  # type: ignore[attr-defined]
    return kind_of(wrapper) is CallKind.COROUTINE


# 0.123.6+: a ``functools.wraps`` wrapper of an ``async def`` is awaited, as a dependency
# and as an endpoint (routing decides with the dependencies' classifier).
_ENDPOINTS_LOOK_THROUGH_WRAPS = _looks_through_wraps()


def awaited_by_route(call: Callable[..., Any]) -> bool:
    """Whether a route of this release awaits what its endpoint ``call`` returns.

    Before 0.123.6 routing asks ``iscoroutinefunction``; partials of coroutine functions
    and objects with an ``async def __call__`` count here too, as they do from 0.123.6.
    """
    if _ENDPOINTS_LOOK_THROUGH_WRAPS:
        return kind_of(call) is CallKind.COROUTINE
    while isinstance(call, functools.partial):
        call = call.func
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - the method, not callability
    )


def cache_key(dependant: Any) -> Any:
    """The key of ``dependant`` in the per-request dependency cache."""
    if hasattr(fastapi_models, "_get_cache_key"):  # 0.140+
        return fastapi_models._get_cache_key(dependant=dependant)
    return dependant.cache_key


def oauth_scopes(dependant: Any) -> list[str]:
    """The security scopes a ``SecurityScopes`` parameter of ``dependant`` receives."""
    if hasattr(fastapi_models, "_get_oauth_scopes"):  # 0.140+
        return list(fastapi_models._get_oauth_scopes(dependant=dependant))
    if hasattr(dependant, "oauth_scopes"):  # 0.123-0.139
        return list(dependant.oauth_scopes)
    return list(dependant.security_scopes or [])  # <= 0.122


def override_dependant(sub: Any, call: Callable[..., Any]) -> Dependant:
    """The dependant ``solve_dependencies`` builds for an overridden sub-dependency."""
    kwargs: dict[str, Any] = {"path": sub.path, "call": call, "name": sub.name}
    if "security_scopes" in _GET_DEPENDANT_PARAMETERS:  # <= 0.122
        kwargs["security_scopes"] = sub.security_scopes
    if "parent_oauth_scopes" in _GET_DEPENDANT_PARAMETERS:  # 0.123+
        kwargs["parent_oauth_scopes"] = oauth_scopes(sub)
    if "scope" in _GET_DEPENDANT_PARAMETERS:  # 0.121+
        kwargs["scope"] = sub.scope
    if "concurrency" in _GET_DEPENDANT_PARAMETERS:  # 0.163+
        kwargs["concurrency"] = sub.concurrency
    return get_dependant(**kwargs)


def is_function_scoped(sub: Dependant) -> bool:
    """``Depends(..., scope="function")``: torn down before request-scoped ones (0.121+)."""
    return getattr(sub, "scope", None) == "function"


_REQUEST_PARAMS = (
    ("path_params", "path_params"),
    ("query_params", "query_params"),
    ("header_params", "headers"),
    ("cookie_params", "cookies"),
)


def request_params(dependant: Dependant) -> tuple[tuple[Sequence[Any], str], ...]:
    """``dependant``'s own request parameters, in the order FastAPI parses them, each with
    the attribute of the request they are read from."""
    return tuple(
        (fields, source)
        for attribute, source in _REQUEST_PARAMS
        if (fields := getattr(dependant, attribute))
    )


def needs_fastapi(dependant: Any) -> str | None:
    """What ``dependant`` uses that only FastAPI's resolver handles, if anything."""
    if dependant.websocket_param_name or dependant.response_param_name:
        return "a websocket or response parameter"
    if dependant.body_params:  # only an override can bring one; FastAPI reports it
        return "a body parameter"
    if getattr(dependant, "concurrency", None) is not None:  # 0.163+: max_concurrency
        return "max_concurrency"
    return None


def is_required(field: Any) -> bool:
    """Whether a parameter field has no default: ``.required`` up to 0.16x (pydantic 1
    and 2), ``field_info.is_required()`` on the newest releases."""
    required = getattr(field, "required", None)
    if required is None:
        return bool(field.field_info.is_required())
    return bool(required)


def parse_params(
    fields: Sequence[Any], request: Request | None, source: str
) -> tuple[dict[str, Any], list[Any]]:
    """Validate request parameters with FastAPI's own ``request_params_to_args``."""
    values, errors = fastapi_utils.request_params_to_args(fields, getattr(request, source))
    return values, list(errors)
