"""Runners: a decorator that turns a function into a complete script entry point."""

from fda_sync._api.runnify import runnify_with_fastapi_depends

__all__ = ["runnify_with_fastapi_depends"]
