"""The public names of fastapi-depends-anywhere 1.3.0, by module, as its wheel has them.

Each 1.x module path is a module of 2.x holding the same objects as the 2.x names: those of
``fastapi_depends_anywhere`` for the async modules, of ``fastapi_depends_anywhere.sync`` for
the sync ones. ``fastapi_depends_anywhere.sync._loop`` (private) is the only 1.x module gone.
"""

from __future__ import annotations

ASYNC = "fastapi_depends_anywhere"
SYNC = "fastapi_depends_anywhere.sync"

#: 1.x module path -> (its public names, the 2.x module whose names they are).
V1_MODULES: dict[str, tuple[list[str], str]] = {
    ASYNC: (
        [
            "FastApiDepsStack",
            "aiter_with_fastapi_depends",
            "configure",
            "get_app",
            "reset_config",
            "resolve_fastapi_depends",
            "runnify_with_fastapi_depends",  # 1.x: loaded lazily, outside __all__
            "with_fastapi_depends",
            "with_fastapi_lifecycle",
        ],
        ASYNC,
    ),
    f"{ASYNC}.config": (
        ["configure", "get_app", "get_context_factory", "is_configured", "reset_config"],
        ASYNC,
    ),
    f"{ASYNC}.core": (
        ["aiter_with_fastapi_depends", "resolve_fastapi_depends", "with_fastapi_depends"],
        ASYNC,
    ),
    f"{ASYNC}.lifecycle": (["with_fastapi_lifecycle"], ASYNC),
    f"{ASYNC}.runners": (["runnify_with_fastapi_depends"], ASYNC),
    f"{ASYNC}.stack": (["FastApiDepsStack"], ASYNC),
    SYNC: (
        [
            "FastApiDepsStack",
            "iter_with_fastapi_depends",
            "resolve_fastapi_depends",
            "runnify_with_fastapi_depends",
            "with_fastapi_depends",
            "with_fastapi_lifecycle",
        ],
        SYNC,
    ),
    f"{SYNC}.core": (
        ["iter_with_fastapi_depends", "resolve_fastapi_depends", "with_fastapi_depends"],
        SYNC,
    ),
    f"{SYNC}.lifecycle": (["with_fastapi_lifecycle"], SYNC),
    f"{SYNC}.runners": (["runnify_with_fastapi_depends"], SYNC),
    f"{SYNC}.stack": (["FastApiDepsStack"], SYNC),
}

#: The modules that exist only to keep 1.x's paths (the others are 2.x's own modules).
COMPATIBILITY_MODULES = [
    module for module in V1_MODULES if module not in (ASYNC, SYNC, f"{SYNC}.runners")
]
