"""The private names of fda_core the pytest plugin needs, imported in this one place."""

from fda_core._config import ContextFactory, get_app, get_context_factory

__all__ = ["ContextFactory", "get_app", "get_context_factory"]
