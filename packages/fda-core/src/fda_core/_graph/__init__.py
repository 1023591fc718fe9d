"""A function's dependency graph: analysed once, compiled into a plan, resolved per call.

``parameters`` (which parameters FastAPI injects) -> ``analysis`` (a decorated function's
``Dependant`` and its plans) -> ``compiler`` -> ``plan`` (a flat list of steps, with
``teardown``'s exit stacks) -> ``resolution`` (one call: the plan, or FastAPI's own
resolver for what a plan does not do, then teardown and background tasks). ``scope`` is
the synthesized request; ``decorated`` and ``injector`` are what a decorator keeps per
function and does per call. Every FastAPI-version difference they meet is in
``fda_core._compat``.
"""
