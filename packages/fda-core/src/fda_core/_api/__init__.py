"""The async API: one module per public name (``fda_core/__init__.py`` re-exports them).

``decorating`` holds what the async and the sync API's decorators do alike; the sync API
(``fda_sync``) also reuses ``aiter.generator_with_dependencies``, ``stack.StackSession`` and
``stack.resolve_held``, and ``runnify``'s declared signature.
"""
