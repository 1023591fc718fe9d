"""Sync code served by tasks on the bridge loop.

``call``: a decorated call run as one task on the loop (dependencies, body, teardown), the
waiting caller lending its thread to the ``def`` steps; ``held``: an async context held open
by one task across several blocking calls (generators, stacks, ``resolve_fastapi_depends``,
and the async steps of a call driven from the caller's thread).
"""
