"""1.x's module path ``fastapi_depends_anywhere.stack``, kept for compatibility.

The same object as the top-level name: import from ``fastapi_depends_anywhere`` in new code.
"""

from fda_core import FastApiDepsStack

__all__ = ["FastApiDepsStack"]
