"""Teardown in the caller's thread: ``ExitStack``'s rules, without its cost.

The ``def`` generator dependencies of a sync call driven from the caller's thread
(``walk``) are set up and torn down there. A call pays for its teardown on every call,
so the pieces ``contextlib`` would give (``contextmanager``, two nested ``ExitStack``s)
are written out here with the same rules: what a ``with`` block of a generator-based
context manager does, and how nested ``with`` blocks hand an exception from one exit to
the next.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from contextlib import contextmanager
from types import GeneratorType, TracebackType
from typing import Any

from starlette.background import BackgroundTasks

from fda_core import _compat
from fda_sync._guards.signals import held_call

__all__ = ["Teardown", "exit_generator", "suspended"]


if sys.version_info >= (3, 11):
    #: Whether a generator waits at a ``yield`` (``inspect.getgeneratorstate``). (In C:
    #: every ``def`` generator's teardown asks.)
    suspended: Callable[[GeneratorType[Any, Any, Any]], bool] = operator.attrgetter("gi_suspended")

else:  # pragma: no cover - version-specific

    def suspended(generator: GeneratorType[Any, Any, Any]) -> bool:
        """Whether ``generator`` waits at a ``yield`` (``inspect.getgeneratorstate``)."""
        frame = generator.gi_frame
        return frame is not None and frame.f_lasti != -1 and not generator.gi_running


def exit_generator(
    generator: GeneratorType[Any, Any, Any],
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """``contextmanager``'s ``__exit__``: run the teardown, ``exc`` thrown in at the
    ``yield``; whether it was suppressed. Nothing to do for a generator that is not at its
    ``yield``: its set-up failed, or an interrupt came before it started."""
    if not suspended(generator):
        return False
    if exc_type is None:
        # ``next`` and ``except StopIteration``, as contextlib writes it, without making
        # the StopIteration object a generator that ends makes (a loop never sees one).
        for _ in generator:
            raise RuntimeError("generator didn't stop")
        return False
    # A thrown exception has subtle rules (StopIteration, re-raised or replaced): those
    # of contextlib itself, on a manager around the generator already running.
    return bool(contextmanager(lambda: generator)().__exit__(exc_type, exc, traceback))


class Teardown:
    """The sync twin of ``fda_core._graph.plan.Teardown``: exits of function-scoped and of
    request-scoped dependencies, closed in that order."""

    __slots__ = ("background", "function", "request")

    def __init__(self) -> None:
        self.request: list[Callable[..., Any]] = []
        self.function: list[Callable[..., Any]] = []
        self.background: BackgroundTasks | None = None

    def push(self, exit_: Callable[..., bool], function_scoped: bool) -> None:
        """Add an ``__exit__``-like callable."""
        (self.function if function_scoped else self.request).append(exit_)

    def background_tasks(self) -> BackgroundTasks:
        if self.background is None:
            self.background = _compat.BackgroundTasksClass()
        return self.background

    def exit(self, exc: BaseException | None) -> bool:
        """Close as ``with request_stack: with function_stack: ...`` would; whether ``exc``
        was suppressed. Raises an exception teardown raised.

        Each exit is dropped once it ran: if an interrupt cuts this short, calling it
        again goes on with the rest (an exit run twice does nothing the second time).
        """
        if not self.function and not self.request:
            return False
        # In the main thread, Ctrl-C waits for the end of teardown.
        return held_call(_unwind, (self.function, self.request), exc)


def _unwind(stacks: tuple[list[Callable[..., Any]], ...], exc: BaseException | None) -> bool:
    """``contextlib.ExitStack.__exit__`` over ``stacks``, one after the other, each last in
    first out: each exit gets what the one before left, an exception raised replaces the
    one passed in, chained to it."""
    received = exc is not None
    frame_exc = sys.exc_info()[1]
    suppressed = pending = False
    for stack in stacks:
        while stack:
            exit_ = stack[-1]
            try:
                if (
                    exit_(None, None, None)
                    if exc is None
                    else exit_(type(exc), exc, exc.__traceback__)
                ):
                    suppressed, pending, exc = True, False, None
            except BaseException as raised:
                _chain(raised, exc, frame_exc)
                pending, exc = True, raised
            stack.pop()
    if pending:
        assert exc is not None
        context = exc.__context__
        try:
            raise exc
        except BaseException:
            exc.__context__ = context  # as set by _chain, not by this raise
            raise
    return received and suppressed


def _chain(raised: BaseException, previous: BaseException | None, frame_exc: Any) -> None:
    """Make ``previous`` the context of ``raised``'s chain, as nested ``with`` blocks do."""
    while True:
        context = raised.__context__
        if context is None or context is previous:
            return
        if context is frame_exc:
            break
        raised = context
    raised.__context__ = previous
