"""1.x's module path ``fastapi_depends_anywhere.sync.core``, kept for compatibility.

The same objects as the names of ``fastapi_depends_anywhere.sync``: import from there in new
code.
"""

from fda_sync import iter_with_fastapi_depends, resolve_fastapi_depends, with_fastapi_depends

__all__ = ["iter_with_fastapi_depends", "resolve_fastapi_depends", "with_fastapi_depends"]
