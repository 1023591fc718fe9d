"""Run FastAPI dependency injection anywhere: background tasks, scripts, CLI commands,
tests, notebooks and workers.

The async API is re-exported from ``fda_core``, the sync API (``.sync``) from ``fda_sync``.
1.x's module paths (``.config``, ``.core``, ``.lifecycle``, ``.runners``, ``.stack``,
``.sync.core``, ``.sync.lifecycle``, ``.sync.stack``) remain as compatibility modules holding
the same objects.
"""

from importlib.metadata import version as _version

from fda_core import (
    FastApiDepsStack,
    RequestContextMiddleware,
    aiter_with_fastapi_depends,
    ambient_scope,
    check_routes_and_dependencies_are_async,
    configure,
    get_app,
    get_context_factory,
    is_configured,
    override,
    reset_config,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)

__version__ = _version("fastapi-depends-anywhere")

__all__ = [
    "FastApiDepsStack",
    "RequestContextMiddleware",
    "__version__",
    "aiter_with_fastapi_depends",
    "ambient_scope",
    "check_routes_and_dependencies_are_async",
    "configure",
    "get_app",
    "get_context_factory",
    "is_configured",
    "override",
    "reset_config",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
]
