"""Scoped overrides: dependencies replaced for one block, in this task or thread only.

``app.dependency_overrides`` is one dict for the whole process: a test that fails before
clearing it leaks its fakes, and two concurrent tasks cannot use different fakes. A block
of ``override`` sets a context variable instead, so it reaches exactly the calls made in
its task or thread (and in tasks started from it, and sync calls it hands to the bridge,
which copy the context). Its value is an immutable chain of frames: entering pushes one,
exiting restores the previous value with the context variable's token.

A call under no block pays one ``ContextVar.get``. Under a block, the overrides that apply
to the call's app are merged once per frame and app, and keyed for the plan cache, so a
call does not recompile its plan.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token, copy_context
from types import TracebackType
from typing import Annotated, Any, TypeVar, get_args, get_origin

from fastapi import FastAPI, params

from fda_core._config import check_app
from fda_core._describe import describe

__all__ = [
    "Override",
    "Scoped",
    "current_block",
    "override",
    "overrides_provider",
    "scoped_overrides",
    "without_overrides",
]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


class Scoped:
    """The scoped overrides that apply to one app: merged, and a key for plan caches."""

    __slots__ = ("key", "mapping")

    def __init__(self, mapping: dict[Any, Any]) -> None:
        self.mapping = mapping
        key: tuple[Any, ...] | None = tuple(mapping.items())
        try:
            hash(key)
        except TypeError:  # an unhashable replacement: plans are compiled per call
            key = None
        self.key = key

    def merged(self, app_overrides: Mapping[Any, Any]) -> dict[Any, Any]:
        """The app's overrides, with these winning for the same dependency."""
        return {**app_overrides, **self.mapping}


class _Frame:
    """One entered block: its overrides, the block it is nested in, how to restore."""

    __slots__ = ("app", "last", "overrides", "owner", "parent", "token", "views")

    def __init__(
        self, owner: Override, overrides: dict[Any, Any], app: FastAPI | None, parent: _Frame | None
    ) -> None:
        self.owner = owner
        self.overrides = overrides
        self.app = app
        self.parent = parent
        self.token: Token[_Frame | None] | None = None
        self.views: dict[FastAPI | None, Scoped | None] = {}
        self.last: tuple[FastAPI | None, Scoped | None] = (None, None)  # the last view

    def view(self, app: FastAPI | None) -> Scoped | None:
        """What applies to ``app`` here: outer blocks first, inner ones winning."""
        last_app, last_view = self.last  # one tuple: threads may replace it meanwhile
        if app is last_app and last_view is not None:
            return last_view
        if app in self.views:
            view = self.views[app]
            self.last = (app, view)
            return view
        chain: list[_Frame] = []
        frame: _Frame | None = self
        while frame is not None:
            chain.append(frame)
            frame = frame.parent
        merged: dict[Any, Any] = {}
        for frame in reversed(chain):
            if frame.app is None or frame.app is app:
                merged.update(frame.overrides)
        view = self.views[app] = Scoped(merged) if merged else None
        self.last = (app, view)
        return view


_current: ContextVar[_Frame | None] = ContextVar("fda_core.override", default=None)
#: The innermost open block, or ``None``: hot paths test this before anything else.
current_block = _current.get


def without_overrides(function: Callable[[], R]) -> R:
    """Run ``function`` in a copy of this context outside every block: for what outlives
    the block, such as the app's lifespan for a whole process, which must never resolve
    with a caller's fakes."""
    context = copy_context()
    context.run(_current.set, None)
    return context.run(function)


def scoped_overrides(app: FastAPI | None) -> Scoped | None:
    """The scoped overrides of this context for a call resolved against ``app``."""
    frame = _current.get()
    if frame is None:
        return None
    return frame.view(app)


class _Provider:
    """What FastAPI's resolver reads overrides from (``dependency_overrides``)."""

    __slots__ = ("dependency_overrides",)

    def __init__(self, overrides: dict[Any, Any]) -> None:
        self.dependency_overrides = overrides


def overrides_provider(provider: Any, scoped: Scoped | None) -> Any:
    """``provider`` (an app, say), or one whose overrides include the scoped ones."""
    if scoped is None:
        return provider
    return _Provider(scoped.merged(getattr(provider, "dependency_overrides", None) or {}))


def _check(overrides: Mapping[Any, Any]) -> dict[Any, Any]:
    if not isinstance(overrides, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"override() takes a mapping of dependency -> replacement, got {overrides!r}: "
            "write `override({get_db: fake_db})`, as `app.dependency_overrides[get_db] = "
            "fake_db` would."
        )
    checked: dict[Any, Any] = {}
    for dependency, replacement in overrides.items():
        inner = _inner_dependency(dependency)
        if inner is not None:
            raise TypeError(
                f"override() keys are dependency callables, got {dependency!r}: use the "
                f"callable inside Depends(...), `{describe(inner)}`, as a key."
            )
        if not callable(dependency) or _is_annotated(dependency):
            raise TypeError(
                f"override() keys are dependency callables (what you pass to Depends), got "
                f"{dependency!r}, which is not callable."
            )
        if _inner_dependency(replacement) is not None or not callable(replacement):
            raise TypeError(
                f"override(): the replacement of {describe(dependency)} must be a callable "
                f"FastAPI can call in its place (a function or a class), got {replacement!r}."
            )
        checked[dependency] = replacement
    return checked


def _is_annotated(value: object) -> bool:
    return get_origin(value) is Annotated


def _inner_dependency(value: Any) -> Any:
    """The dependency inside ``Depends(dep)`` or ``Annotated[T, Depends(dep)]``, if any."""
    base, markers = value, [value]
    if _is_annotated(value):
        base, *markers = get_args(value)
    for marker in markers:
        if isinstance(marker, params.Depends):
            return marker.dependency or base
    return None


class Override:
    """Dependencies replaced while a block runs, for calls made in this task or thread.

    Made by ``override()``; a ``with``/``async with`` block or a decorator. One object may
    be entered several times, nested or from several threads at once.
    """

    __slots__ = ("_app", "_overrides")

    def __init__(self, overrides: Mapping[Any, Callable[..., Any]], app: FastAPI | None) -> None:
        if app is not None:
            check_app(app, "override(app=...)")
        self._overrides = _check(overrides)
        self._app = app

    def __enter__(self) -> Override:
        frame = _Frame(self, self._overrides, self._app, _current.get())
        frame.token = _current.set(frame)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        frame = _current.get()
        if frame is None or frame.owner is not self or frame.token is None:
            raise RuntimeError(
                "override blocks exited out of order, or in another task than the one that "
                "entered them: the block entered last must exit first, in its own task "
                "(use `with override(...):`, which does both)."
            )
        try:
            _current.reset(frame.token)
        except (ValueError, RuntimeError):  # another context's token, or one used already
            raise RuntimeError(
                "An override block was exited in another task or context than the one that "
                "entered it; enter and exit it in the same task (`with`/`async with`)."
            ) from None

    async def __aenter__(self) -> Override:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __call__(self, func: F) -> F:
        """Decorate a function (a test, say): the overrides apply while each call runs."""
        if inspect.isclass(func):
            raise TypeError(
                f"@override decorates functions, not the class {describe(func)}: decorate "
                "its test methods, or open the block in a fixture."
            )
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"@override cannot decorate the generator {describe(func)}: its body runs "
                "after the call returns. Write `with override(...):` around its `yield`."
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                result = func(*args, **kwargs)
            if inspect.isawaitable(result):  # a wrapper of an async def, an async __call__
                return self._awaited(result)
            return result

        return wrapper  # type: ignore[return-value]

    async def _awaited(self, result: Awaitable[Any]) -> Any:
        """The body of an awaitable a plain function returned runs when awaited: then."""
        with self:
            return await result


def override(
    overrides: Mapping[Any, Callable[..., Any]], /, *, app: FastAPI | None = None
) -> Override:
    """Replace dependencies for the extent of a block, in this task or thread only.

    ``overrides`` maps dependency callables to replacements, as
    ``app.dependency_overrides`` does, and wins over that dict for the same dependency.
    By default the block applies to every app this library resolves against; ``app=``
    narrows it to one. Use it as ``with``/``async with`` or as a decorator; blocks nest
    (the inner one wins) and restore what was there on exit, whatever the exit.
    """
    return Override(overrides, app)
