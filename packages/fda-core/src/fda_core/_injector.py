"""What a decorator keeps per decorated function: its analysis, options and app lookup."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from fda_core._analysis import (
    Analysis,
    analyse,
    classify,
    decorating_names,
    describe,
    signature_of,
)
from fda_core._config import get_context_factory, resolve_app
from fda_core._lifespan import lifespan_state
from fda_core._override import current_block, overrides_provider, scoped_overrides
from fda_core._plan import Plan
from fda_core._resolution import (
    call_context,
    call_planned,
    context_manager,
    planned_resolution,
    request_factory,
    resolution,
)
from fda_core._scope import check_scope

__all__ = ["Injector"]

_NEW: Any = object()  # no context manager made yet


class Injector:
    """Resolves the injected parameters of one function, as a route would, per call.

    The dependency graph is analysed once (at decoration if the annotations can be
    evaluated then, else on the first call); the app is looked up on every call.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        scope: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        app: FastAPI | None = None,
    ) -> None:
        check_scope(scope, "scope")
        if "_scope" in signature_of(func).parameters:
            raise TypeError(
                f"{describe(func)} has a parameter named `_scope`, which clashes with the "
                "`_scope=` keyword every decorated call accepts (the ASGI scope of the "
                "request the call stands for). Rename the parameter."
            )
        self.func = func
        self.scope = dict(scope) if scope else None
        self.context = dict(context) if context else None
        self.app = app
        self._analysis: Analysis | None = None
        self._wrappers: list[Callable[..., Any]] = []
        #: What the annotations name among the locals of the code decorating ``func``.
        self._local = decorating_names(func)
        # Forward references may resolve only once their module is complete; a real
        # problem is raised again, with its message, on the first call.
        with contextlib.suppress(Exception):
            self._analysis = analyse(func, strict=True, local=self._local)

    @property
    def analysis(self) -> Analysis:
        if self._analysis is None:
            self._analysis = analyse(self.func, local=self._local)
            for wrapper in self._wrappers:  # now the signature can be told exactly
                wrapper.__signature__ = self.signature()  # type: ignore[attr-defined]
        return self._analysis

    def signature(self) -> inspect.Signature:
        """The caller-facing signature: the caller's own parameters.

        The call-time ``_scope=`` keyword is accepted but not shown: FastAPI (a decorated
        function used as a dependency), Typer and Celery read the signature, and would
        make it a query or body parameter, or a CLI option. Before the first call, names
        the module defines later count as the caller's.
        """
        signature = signature_of(self.func)
        if self._analysis is not None:
            parameters, injected = self._analysis.parameters, self._analysis.injected
        else:
            try:
                parameters, injected = classify(self.func, local=self._local)
            except Exception:  # the first call reports it
                parameters, injected = tuple(signature.parameters.values()), frozenset[str]()
        return signature.replace(parameters=[p for p in parameters if p.name not in injected])

    def wraps(self, wrapper: Callable[..., Any]) -> None:
        """Give ``wrapper`` the function's metadata and its caller-facing signature."""
        functools.update_wrapper(wrapper, self.func)
        self._wrappers.append(wrapper)
        wrapper.__signature__ = self.signature()  # type: ignore[attr-defined]

    def arrange(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments as the function takes them: positional arguments fill the
        caller's own parameters (those of the wrapper's signature), never injected ones.
        Apply before ``values`` and before calling the function."""
        return self.analysis.arrange(args, kwargs)

    def planned(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[FastAPI, Plan | None]:
        """The app of this call and its compiled plan (``None``: FastAPI's resolver must
        solve it). Raises at once for a forgotten parameter the analysis could not place."""
        app = resolve_app(self.app)
        analysis = self.analysis
        if analysis.unresolved:
            analysis.check_unresolved(args, kwargs)
        provided = analysis.provided(args, kwargs)
        return app, analysis.plan(provided, app.dependency_overrides, scoped_overrides(app))

    def prepare(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], FastAPI, Plan | None]:
        """``arrange`` and ``planned`` in one step: the sync API's per-call entry."""
        analysis = self.analysis
        args, kwargs = analysis.arrange(args, kwargs)
        app = resolve_app(self.app)
        if analysis.unresolved:
            analysis.check_unresolved(args, kwargs)
        provided = analysis.provided(args, kwargs)
        block = current_block()
        scoped = None if block is None else block.view(app)
        plan = analysis.plan(provided, app.dependency_overrides, scoped)
        return args, kwargs, app, plan

    def context_manager(self) -> Any:
        """The configured context factory's manager for this call, or ``None``."""
        return context_manager(self.context)

    @asynccontextmanager
    async def values(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_scope: Mapping[str, Any] | None,
        manager: Any = _NEW,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Resolve what the caller did not pass, keep it open for the body, tear down.

        ``manager``: the call's ``context_manager``, if the caller made it already.
        """
        app, plan = self.planned(args, kwargs)
        if manager is _NEW:
            manager = self.context_manager()
        async with call_context(manager):
            if plan is not None:
                async with planned_resolution(plan, self.request(app, call_scope)) as values:
                    yield values
                return
            provided = self.analysis.provided(args, kwargs)
            async with resolution(
                self.analysis.dependant(provided),
                app=app,
                overrides_provider=overrides_provider(app, scoped_overrides(app)),
                static_scope=self.scope,
                dynamic_scope=call_scope,
                lifespan_state=lifespan_state(app),
            ) as values:
                yield values

    def request(
        self,
        app: FastAPI,
        call_scope: Mapping[str, Any] | None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Callable[[], Any]:
        """Builds this call's request; ``request.state`` holds the state of the app's
        lifespan if it runs on ``loop`` (by default the running one)."""
        return request_factory(
            app=app,
            static_scope=self.scope,
            dynamic_scope=call_scope,
            lifespan_state=lifespan_state(app, loop),
        )

    async def call(
        self,
        body: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_scope: Mapping[str, Any] | None,
    ) -> Any:
        """Resolve, run ``body`` with the values, tear down: the per-call hot path."""
        analysis = self.analysis
        args, kwargs = analysis.arrange(args, kwargs)
        app = resolve_app(self.app)
        if not analysis.unresolved and get_context_factory() is None:
            provided = analysis.provided(args, kwargs)
            block = current_block()  # the one cost of override() to a call outside blocks
            scoped = None if block is None else block.view(app)
            plan = analysis.plan(provided, app.dependency_overrides, scoped)
            if plan is not None:
                request = self.request(app, call_scope)
                return await call_planned(plan, request, body, args, kwargs)
        async with self.values(args, kwargs, call_scope) as values:
            return await body(*args, **kwargs, **values)
