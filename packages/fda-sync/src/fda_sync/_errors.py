"""The sync API's errors, and the carrier that keeps a ``BaseException`` from the loop."""

from __future__ import annotations

__all__ = ["BridgeClosedError", "BridgeDeadError", "BridgeError", "Carried"]


class BridgeError(RuntimeError):
    """The sync API cannot run this call (wrong thread, closed or dead bridge)."""


class BridgeClosedError(BridgeError):
    """The bridge was shut down (interpreter exit): no more sync calls in this process."""


class BridgeDeadError(BridgeError):
    """The bridge loop's thread died; its cause is chained."""


class Carried(Exception):
    """A ``BaseException`` from user code, carried out of a task so it cannot stop the loop.

    Unwrapped by the bridge: the caller gets the original, with its traceback.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original
