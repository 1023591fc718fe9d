"""The 1.x API as 1.3.0's README imports it: from the package, ``.sync`` and ``.sync.runners``
(and, for the two names 1.x had only there, ``.config``)."""

from fastapi_depends_anywhere import (
    FastApiDepsStack,
    aiter_with_fastapi_depends,
    configure,
    get_app,
    reset_config,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fastapi_depends_anywhere.config import get_context_factory, is_configured
from fastapi_depends_anywhere.sync import FastApiDepsStack as SyncFastApiDepsStack
from fastapi_depends_anywhere.sync import (
    iter_with_fastapi_depends as sync_iter_with_fastapi_depends,
)
from fastapi_depends_anywhere.sync import (
    resolve_fastapi_depends as sync_resolve_fastapi_depends,
)
from fastapi_depends_anywhere.sync import with_fastapi_depends as sync_with_fastapi_depends
from fastapi_depends_anywhere.sync import with_fastapi_lifecycle as sync_with_fastapi_lifecycle
from fastapi_depends_anywhere.sync.runners import (
    runnify_with_fastapi_depends as sync_runnify_with_fastapi_depends,
)

__all__ = [
    "FastApiDepsStack",
    "SyncFastApiDepsStack",
    "aiter_with_fastapi_depends",
    "configure",
    "get_app",
    "get_context_factory",
    "is_configured",
    "reset_config",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "sync_iter_with_fastapi_depends",
    "sync_resolve_fastapi_depends",
    "sync_runnify_with_fastapi_depends",
    "sync_with_fastapi_depends",
    "sync_with_fastapi_lifecycle",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
]
