"""1.x's module path ``fastapi_depends_anywhere.lifecycle``, kept for compatibility.

The same object as the top-level name: import from ``fastapi_depends_anywhere`` in new code.
"""

from fda_core import with_fastapi_lifecycle

__all__ = ["with_fastapi_lifecycle"]
