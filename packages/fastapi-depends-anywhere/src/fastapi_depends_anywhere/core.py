"""1.x's module path ``fastapi_depends_anywhere.core``, kept for compatibility.

The same objects as the top-level names: import from ``fastapi_depends_anywhere`` in new code.
"""

from fda_core import aiter_with_fastapi_depends, resolve_fastapi_depends, with_fastapi_depends

__all__ = ["aiter_with_fastapi_depends", "resolve_fastapi_depends", "with_fastapi_depends"]
