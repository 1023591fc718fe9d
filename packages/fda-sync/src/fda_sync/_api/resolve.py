"""``resolve_fastapi_depends``: the low-level sync context manager."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from typing import Any

import fda_core
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge
from fda_sync._loop_path.held import SyncHeld

__all__ = ["resolve_fastapi_depends"]


@contextmanager
def resolve_fastapi_depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None = None,
    dependency_overrides_provider: Any = None,
) -> Generator[dict[str, Any], None, None]:
    """Resolve ``func``'s injected parameters on the bridge loop; yield them as kwargs.

    They stay open (held by one task on the loop) until the block exits; the block's
    exception is thrown into yield dependencies. Same arguments as the async version.
    """
    before_call()
    held = SyncHeld(
        get_bridge(),
        lambda: fda_core.resolve_fastapi_depends(func, scope, dependency_overrides_provider),
    )
    values = held.open()
    try:
        yield values
    except GeneratorExit:
        held.close_from_finalizer()
        raise
    except BaseException as exc:
        if not held.close(exc):
            raise
    else:
        held.close(None)
