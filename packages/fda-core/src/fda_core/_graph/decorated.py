"""A decorated function as its wrappers show it: analysed once, without what is injected."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from fda_core._describe import describe
from fda_core._graph.analysis import Analysis, analyse
from fda_core._graph.parameters import classify, decorating_names, signature_of
from fda_core._graph.scope import check_scope

__all__ = ["Decorated"]


class Decorated:
    """One decorated function and its decorator's options.

    The dependency graph is analysed once (at decoration if the annotations can be
    evaluated then, else on the first call); wrappers show the caller's own parameters.
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

    def arrange_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], call_scope: object
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``arrange``, once the call-time ``_scope=`` is checked: a generator's first step."""
        if call_scope is not None:
            check_scope(call_scope, "_scope")
        return self.analysis.arrange(args, kwargs)
