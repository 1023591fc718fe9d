"""1.x's module path ``fastapi_depends_anywhere.sync.lifecycle``, kept for compatibility.

The same object as ``fastapi_depends_anywhere.sync.with_fastapi_lifecycle``: import from
``fastapi_depends_anywhere.sync`` in new code.
"""

from fda_sync import with_fastapi_lifecycle

__all__ = ["with_fastapi_lifecycle"]
