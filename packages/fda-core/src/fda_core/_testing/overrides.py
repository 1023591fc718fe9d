"""The ``fda_override`` fixture and marker: fakes for one test, applied to the test itself.

An ``override()`` block lives in a context variable, and a fixture's context is not always
the test's: anyio's plugin runs every async test of a session in one task whose context
was copied when it started, so a block a plain ``def`` fixture opens never reaches it. So
the fakes are collected while fixtures set up, and the block opens around the test
function itself, in whatever task or thread runs it (the plugin wraps the test function
for the length of its call).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import unittest
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from fda_core import override

__all__ = ["MARKER", "Overrides", "around_call", "end", "marked", "wrap"]

#: The marker's name (and the fixture's).
MARKER = "fda_override"

Fakes = Mapping[Callable[..., Any], Callable[..., Any]]


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop runs in this thread
        return None


class _Call:
    """The test call under way: where fakes added during the test must be added from."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.task = _current_task()
        self.blocks = ExitStack()

    def enter(self, fakes: Fakes) -> None:
        if threading.get_ident() != self.thread or _current_task() is not self.task:
            raise RuntimeError(
                "fda_override: fakes added while the test runs must be added by the test "
                "itself, not by a thread or task it started (their changes never reach the "
                "test). There, write `with override({...}):` around the calls instead."
            )
        self.blocks.enter_context(override(fakes))


class Overrides(Mapping[Callable[..., Any], Callable[..., Any]]):
    """The fakes of one test: ``fda_override[get_db] = fake_db``.

    What fixtures add applies from the test's first line, what the test adds from then
    on; to the test's own calls (its task or thread, and what it starts), as an
    ``override()`` block would, and never to the next test. It wins over
    ``app.dependency_overrides``; a ``with override(...)`` block in the test wins over it.
    Fakes can be added and replaced, not removed.
    """

    def __init__(self, fakes: Fakes | None = None) -> None:
        self._fakes: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._call: _Call | None = None
        self._ended = False
        if fakes:
            self.update(fakes)

    def __getitem__(self, dependency: Callable[..., Any]) -> Callable[..., Any]:
        return self._fakes[dependency]

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._fakes)

    def __len__(self) -> int:
        return len(self._fakes)

    def __setitem__(self, dependency: Callable[..., Any], fake: Callable[..., Any]) -> None:
        self.update({dependency: fake})

    def __delitem__(self, dependency: Callable[..., Any]) -> None:
        raise TypeError(
            "fda_override: fakes cannot be removed, only added or replaced. For part of a "
            "test, write `with override({...}):` around that part instead."
        )

    def update(self, fakes: Fakes, /) -> None:
        """Add ``fakes`` (dependency -> replacement, as ``app.dependency_overrides``)."""
        override(fakes)  # refuses a bad key or replacement here, where it is written
        if self._ended:
            raise RuntimeError(
                "fda_override: the test is over, its fakes are gone: add fakes in the test "
                "or in the setup of a fixture, before its `yield`."
            )
        if self._call is not None:
            self._call.enter(fakes)
        self._fakes.update(fakes)

    def _end(self) -> None:
        self._ended = True

    @contextmanager
    def _applied(self) -> Generator[None, None, None]:
        """Open the test's block; fakes added meanwhile nest in it, and close with it."""
        call = self._call = _Call()
        try:
            with override(dict(self._fakes)), call.blocks:
                yield
        finally:
            self._call = None


def end(overrides: Overrides) -> None:
    """The test and its fixtures are done: nothing more can be added."""
    overrides._end()


def marked(item: pytest.Item) -> dict[Callable[..., Any], Callable[..., Any]]:
    """The fakes of the ``fda_override`` markers of ``item``: module's first, then its
    class's, then its own, each winning over the ones before."""
    fakes: dict[Callable[..., Any], Callable[..., Any]] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):
        if mark.kwargs or len(mark.args) != 1:
            pytest.fail(
                f"{item.nodeid}: @pytest.mark.{MARKER} takes one mapping of dependency -> "
                f"replacement, as in @pytest.mark.{MARKER}({{get_db: fake_db}}); got "
                f"args={mark.args!r}, kwargs={mark.kwargs!r}.",
                pytrace=False,
            )
        problem = _problem(mark.args[0])
        if problem:
            pytest.fail(f"{item.nodeid}: @pytest.mark.{MARKER}: {problem}", pytrace=False)
        fakes.update(mark.args[0])
    return fakes


def _problem(fakes: Any) -> str:
    """What ``override()`` says about ``fakes``, if it refuses them."""
    try:
        override(fakes)
    except TypeError as exc:
        return str(exc)
    return ""


def wrap(function: Callable[..., Any], overrides: Overrides) -> Callable[..., Any]:
    """``function`` called inside the block of ``overrides``, in the task that calls it.

    Its ``__dict__`` is not copied: a plugin that marks the wrapper it made (anyio marks
    the inner test of a Hypothesis test) must not mistake this one for it.
    """
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function, updated=())
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            with overrides._applied():
                return await function(*args, **kwargs)

        return call_async

    @functools.wraps(function, updated=())
    def call(*args: Any, **kwargs: Any) -> Any:
        with overrides._applied():
            return function(*args, **kwargs)

    return call


@contextmanager
def around_call(item: pytest.Function, overrides: Overrides) -> Generator[None, None, None]:
    """While ``item`` runs, its test function is wrapped in the block of ``overrides``.

    The function is what pytest, pytest-asyncio and anyio each call in the end, in the
    task or thread the test runs in. A Hypothesis test calls its inner test once per
    example, which is what pytest-asyncio and anyio run on their loops: that one is wrapped.
    ``unittest`` looks its async test methods up on the test case.
    """
    handle = getattr(item.obj, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    instance = item.instance
    if isinstance(instance, unittest.TestCase) and inspect.iscoroutinefunction(item.obj):
        # unittest runs an async test method it looks up on the instance itself.
        setattr(instance, item.name, wrap(item.obj, overrides))
        try:
            yield
        finally:
            delattr(instance, item.name)
        return
    if handle is not None and callable(inner):
        handle.inner_test = wrap(inner, overrides)
        try:
            yield
        finally:
            handle.inner_test = inner
        return
    function = item.obj
    item.obj = wrap(function, overrides)
    try:
        yield
    finally:
        item.obj = function
