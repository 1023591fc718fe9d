"""A ``GeneratorExit`` raised by user code, carried across futures as a plain exception.

A task that awaits a future throws the future's exception into its coroutine; thrown in,
a ``GeneratorExit`` is taken for ``close()``: every coroutine the task awaits is closed on
the spot, and any teardown that awaits fails with "coroutine ignored GeneratorExit" (the
other dependencies' teardowns were lost). Raised in a frame, it is an exception like
others. So wherever an outcome of user code goes through a future, a ``GeneratorExit`` is
wrapped before and unwrapped right after, and propagates as raised, as in a route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["CarriedExit", "carry", "carry_exit"]

T = TypeVar("T")


class CarriedExit(Exception):
    """Unwrapped where the future is awaited: ``except CarriedExit as c: raise c.original``."""

    def __init__(self, original: GeneratorExit) -> None:
        super().__init__(original)
        self.original = original


def carry(exc: BaseException) -> BaseException:
    """What to set on a future for ``exc``."""
    if isinstance(exc, GeneratorExit):
        return CarriedExit(exc)
    return exc


def carry_exit(func: Callable[[], T]) -> Callable[[], T]:
    """``func``, raising a ``GeneratorExit`` carried (it runs in a worker thread)."""

    def carried() -> T:
        try:
            return func()
        except GeneratorExit as exc:
            raise CarriedExit(exc) from None

    return carried
