"""1.x's module path ``fastapi_depends_anywhere.sync.stack``, kept for compatibility.

The same object as ``fastapi_depends_anywhere.sync.FastApiDepsStack``: import from
``fastapi_depends_anywhere.sync`` in new code.
"""

from fda_sync import FastApiDepsStack

__all__ = ["FastApiDepsStack"]
