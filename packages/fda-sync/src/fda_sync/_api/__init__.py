"""The sync API: one module per public name (``fda_sync/__init__.py`` re-exports them).

``decorators`` decides where each sync call goes (``fda_sync._caller_path`` or
``fda_sync._loop_path``); ``iter``, ``stack`` and ``resolve`` hold their dependencies open
on the loop across calls (``fda_sync._loop_path.held``); ``process_lifespan`` runs the app's
lifespan for the life of a process, started before a call that needs it (``before_call``).
"""
