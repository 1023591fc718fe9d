"""1.x's module path ``fastapi_depends_anywhere.config``, kept for compatibility.

The same objects as the top-level names (``from fastapi_depends_anywhere import configure``):
import from there in new code. ``get_app()`` returns ``None`` and ``is_configured()``
``False`` when nothing is configured, as in 1.x.
"""

from fda_core import configure, get_app, get_context_factory, is_configured, reset_config

__all__ = ["configure", "get_app", "get_context_factory", "is_configured", "reset_config"]
