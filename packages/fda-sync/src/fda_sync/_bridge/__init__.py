"""The bridge: one asyncio loop per process, in a daemon thread, serving blocking callers.

Every part of the sync API reaches async code through ``get_bridge().run(factory)``: the
call's task runs on the loop while the caller waits, lending its thread to the call's
``def`` steps. The design rules that keep this safe (numbered in docs/architecture.md,
"Invariants") live here:

- ``thread``: one loop per process, started lazily under a lock, never found through loop
  policies (rule 1); blocking calls refused on a thread that runs an event loop (rule 3);
  a loop that dies fails every call fast (rule 7);
- ``fork``: a fork child forgets its parent's loop and starts its own (rule 2);
- ``bridge``: a blocking call, cancelled with its teardown awaited if the caller is
  interrupted (rules 4, 6, 7, 8); ``caller``: the waiting caller's thread, lent to its call;
- ``sequence``: the process's one shutdown, however it stops (interpreter exit, a
  worker's hook): calls in flight first, then what is held open, the lifespan last, and
  ``shutdown``, each bridge's part of it (rule 9);
- ``state``: what a bridge and its loop hold, and what the process tells every bridge.
"""

from fda_sync._bridge import fork as fork  # registers the fork hooks (as sequence, atexit)
from fda_sync._bridge.bridge import Bridge, get_bridge
from fda_sync._bridge.state import LoopState, foreign_owner_error, this_process
from fda_sync._errors import BridgeClosedError, BridgeDeadError, BridgeError, Carried

__all__ = [
    "Bridge",
    "BridgeClosedError",
    "BridgeDeadError",
    "BridgeError",
    "Carried",
    "LoopState",
    "foreign_owner_error",
    "get_bridge",
    "this_process",
]
