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

__all__ = ["MARKER", "FakeMapping", "Fakes", "Overrides", "around_call", "marked", "wrap"]

#: The marker's name (and the fixture's).
MARKER = "fda_override"

FakeMapping = Mapping[Callable[..., Any], Callable[..., Any]]


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

    def enter(self, fakes: FakeMapping) -> None:
        if threading.get_ident() != self.thread or _current_task() is not self.task:
            raise RuntimeError(
                "fda_override: fakes added while the test runs must be added by the test "
                "itself, not by a thread or task it started (their changes never reach the "
                "test). There, write `with override({...}):` around the calls instead."
            )
        self.blocks.enter_context(override(fakes))


class Fakes:
    """The fakes of one test, and the call of the test that applies them: what the plugin
    keeps of a test (``Overrides`` is what the test and its fixtures see of it)."""

    def __init__(self, fakes: FakeMapping | None = None) -> None:
        self.mapping: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._call: _Call | None = None
        self._ended = False
        if fakes:
            self.add(fakes)

    def add(self, fakes: FakeMapping) -> None:
        override(fakes)  # refuses a bad key or replacement here, where it is written
        if self._ended:
            raise RuntimeError(
                "fda_override: the test is over, its fakes are gone: add fakes in the test "
                "or in the setup of a fixture, before its `yield`."
            )
        if self._call is not None:
            self._call.enter(fakes)
        self.mapping.update(fakes)

    def end(self) -> None:
        """The test and its fixtures are done: nothing more can be added."""
        self._ended = True

    @contextmanager
    def applied(self) -> Generator[None, None, None]:
        """Open the test's block; fakes added meanwhile nest in it, and close with it."""
        call = self._call = _Call()
        try:
            with override(dict(self.mapping)), call.blocks:
                yield
        finally:
            self._call = None


class Overrides(Mapping[Callable[..., Any], Callable[..., Any]]):
    """The fakes of one test: ``fda_override[get_db] = fake_db``.

    What fixtures add applies from the test's first line, what the test adds from then
    on; to the test's own calls (its task or thread, and what it starts), as an
    ``override()`` block would, and never to the next test. It wins over
    ``app.dependency_overrides``; a ``with override(...)`` block in the test wins over it.
    Fakes can be added and replaced, not removed.
    """

    __slots__ = ("_fakes",)

    def __init__(self, fakes: Fakes) -> None:
        self._fakes = fakes

    def __getitem__(self, dependency: Callable[..., Any]) -> Callable[..., Any]:
        return self._fakes.mapping[dependency]

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._fakes.mapping)

    def __len__(self) -> int:
        return len(self._fakes.mapping)

    def __setitem__(self, dependency: Callable[..., Any], fake: Callable[..., Any]) -> None:
        self._fakes.add({dependency: fake})

    def __delitem__(self, dependency: Callable[..., Any]) -> None:
        raise TypeError(
            "fda_override: fakes cannot be removed, only added or replaced. For part of a "
            "test, write `with override({...}):` around that part instead."
        )

    def update(self, fakes: FakeMapping, /) -> None:
        """Add ``fakes`` (dependency -> replacement, as ``app.dependency_overrides``)."""
        self._fakes.add(fakes)


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
            pytest.fail(
                f"{item.nodeid}: @pytest.mark.{MARKER} got fakes that override() refuses: "
                f"{problem}",
                pytrace=False,
            )
        fakes.update(mark.args[0])
    return fakes


def _problem(fakes: Any) -> str:
    """What ``override()`` says about ``fakes``, if it refuses them."""
    try:
        override(fakes)
    except TypeError as exc:
        return str(exc)
    return ""


def wrap(function: Callable[..., Any], fakes: Fakes) -> Callable[..., Any]:
    """``function`` called inside the block of ``fakes``, in the task that calls it.

    Its ``__dict__`` is not copied: a plugin that marks the wrapper it made (anyio marks
    the inner test of a Hypothesis test) must not mistake this one for it.
    """
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function, updated=())
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            with fakes.applied():
                return await function(*args, **kwargs)

        return call_async

    @functools.wraps(function, updated=())
    def call(*args: Any, **kwargs: Any) -> Any:
        with fakes.applied():
            return function(*args, **kwargs)

    return call


@contextmanager
def around_call(item: pytest.Function, fakes: Fakes) -> Generator[None, None, None]:
    """While ``item`` runs, its test function is wrapped in the block of ``fakes``.

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
        setattr(instance, item.name, wrap(item.obj, fakes))
        try:
            yield
        finally:
            delattr(instance, item.name)
        return
    if handle is not None and callable(inner):
        handle.inner_test = wrap(inner, fakes)
        try:
            yield
        finally:
            handle.inner_test = inner
        return
    function = item.obj
    item.obj = wrap(function, fakes)
    try:
        yield
    finally:
        item.obj = function
