"""The 1.x API as a 1.x code base imports it from 1.3.0's modules, one by one."""

from fastapi_depends_anywhere.config import (
    configure,
    get_app,
    get_context_factory,
    is_configured,
    reset_config,
)
from fastapi_depends_anywhere.core import (
    aiter_with_fastapi_depends,
    resolve_fastapi_depends,
    with_fastapi_depends,
)
from fastapi_depends_anywhere.lifecycle import with_fastapi_lifecycle
from fastapi_depends_anywhere.runners import runnify_with_fastapi_depends
from fastapi_depends_anywhere.stack import FastApiDepsStack
from fastapi_depends_anywhere.sync.core import (
    iter_with_fastapi_depends as sync_iter_with_fastapi_depends,
)
from fastapi_depends_anywhere.sync.core import (
    resolve_fastapi_depends as sync_resolve_fastapi_depends,
)
from fastapi_depends_anywhere.sync.core import with_fastapi_depends as sync_with_fastapi_depends
from fastapi_depends_anywhere.sync.lifecycle import (
    with_fastapi_lifecycle as sync_with_fastapi_lifecycle,
)
from fastapi_depends_anywhere.sync.runners import (
    runnify_with_fastapi_depends as sync_runnify_with_fastapi_depends,
)
from fastapi_depends_anywhere.sync.stack import FastApiDepsStack as SyncFastApiDepsStack

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
