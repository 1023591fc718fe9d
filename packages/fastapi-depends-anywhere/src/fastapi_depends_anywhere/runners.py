"""1.x's module path ``fastapi_depends_anywhere.runners``, kept for compatibility.

The same object as the top-level name: import from ``fastapi_depends_anywhere`` in new code.
``runnify_with_fastapi_depends`` needs the ``asyncer`` extra, as in 1.x; without it,
decorating raises an ``ImportError`` naming the command that installs it.
"""

from fda_core import runnify_with_fastapi_depends

__all__ = ["runnify_with_fastapi_depends"]
