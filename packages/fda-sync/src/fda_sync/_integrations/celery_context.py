"""A request's context travels with the Celery tasks sent while serving it.

Sending (``RequestContextTask.apply_async`` / ``apply``: ``.delay``, canvas, retries,
eager mode): the allowed items of the current request (``fda_core._graph.ambient``) go into the
message's headers, never its arguments; over the size bound, the send raises. After a
task's body, a chain's next step, a callback or a chord's body is sent by the worker: it
carries the context of the task that sends it.

Receiving (``RequestContextTask.__call__``): the worker checks the context (signature,
age, format) and runs the body inside ``ambient_scope`` of the rebuilt request; a context
it refuses fails the task, body not run. ``__call__`` runs in the thread (or greenlet)
that runs the body, in every pool and in eager mode; Celery's signals could not stop the
body (their handlers' errors are logged, not raised).
"""

# Celery ships no type information.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUnknownVariableType=false, reportUnknownArgumentType=false

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from celery import Celery, Task
from fastapi import FastAPI

from fda_core._api.request_context import RequestContextMiddleware
from fda_core._config import check_app
from fda_core._graph.ambient import RequestSource, current_source, entered
from fda_sync._integrations.context_policy import ContextPolicy
from fda_sync._integrations.context_wire import HEADER, decode, encode

__all__ = ["RequestContextTask", "carry_request_context"]

if TYPE_CHECKING:

    class _CeleryTask:
        """Celery's task class as type checkers see it (Celery ships no types): any
        attribute, so that a subclass of ``RequestContextTask`` may use all of Celery's."""

        def __getattr__(self, name: str) -> Any:
            raise NotImplementedError

        def apply_async(self, *args: Any, **options: Any) -> Any:
            raise NotImplementedError

        def apply(self, *args: Any, **options: Any) -> Any:
            raise NotImplementedError

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

else:
    _CeleryTask = Task

_policies: weakref.WeakKeyDictionary[Any, ContextPolicy] = weakref.WeakKeyDictionary()
#: Where a running task keeps its rebuilt request, on its Celery request: for the tasks
#: the worker sends for it once its body has returned.
_SOURCE = "fda_request_source"


def _policy(task: Any) -> ContextPolicy:
    policy = _policies.get(task.app)
    if policy is None:
        raise RuntimeError(
            f"Task {task.name!r} is a RequestContextTask, but its Celery app "
            f"{task.app.main!r} has no carry_request_context(): call it where the Celery "
            "app is created, naming what of a request may travel."
        )
    return policy


def _headers_with_context(task: Any, headers: Any) -> dict[str, Any] | None:
    """``headers`` with the current request's context added, or ``None``: nothing to add."""
    policy = _policy(task)
    if isinstance(headers, Mapping) and HEADER in headers:
        return None  # a retry's copy of the message's headers: already there
    source = current_source()
    if source is None:
        running = task.app.current_worker_task
        source = getattr(running.request, _SOURCE, None) if running is not None else None
    if source is None:
        return None
    return {**cast(Mapping[str, Any], headers or {}), HEADER: encode(policy, source, task.name)}


def _carried(request: Any) -> object:
    value = getattr(request, HEADER, None)  # a message header: an attribute of the request
    if value is None and isinstance(request.headers, Mapping):
        value = cast(Mapping[str, Any], request.headers).get(HEADER)  # eager mode
    return value


class RequestContextTask(_CeleryTask):
    """The task class that carries a request's context to the worker.

    Use it as the Celery app's task class, ``Celery(..., task_cls=RequestContextTask)``
    (or derive your own base class from it), and say what may travel with
    ``carry_request_context``. A task sent while a request is served carries that
    request's allowed items in its message's headers; in the worker, every decorated
    call the task makes without ``_scope=`` resolves its dependencies as in that request.
    """

    def apply_async(self, *args: Any, **options: Any) -> Any:
        headers = _headers_with_context(self, options.get("headers"))
        if headers is not None:
            options["headers"] = headers
        return super().apply_async(*args, **options)

    def apply(self, *args: Any, **options: Any) -> Any:
        headers = _headers_with_context(self, options.get("headers"))
        if headers is not None:
            options["headers"] = headers
        return super().apply(*args, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        value = None if request.called_directly else _carried(request)
        if value is None:
            return super().__call__(*args, **kwargs)
        source: RequestSource = decode(_policy(self), value, f"Task {self.name}[{request.id}]")
        setattr(request, _SOURCE, source)
        with entered(source):
            return super().__call__(*args, **kwargs)


def carry_request_context(
    celery_app: Celery,
    *,
    headers: Iterable[str] = (),
    query_string: bool = False,
    path_params: bool = False,
    client: bool = False,
    method: bool = False,
    path: bool = False,
    signing_key: str | bytes | None = None,
    fallback_keys: Iterable[str | bytes] = (),
    max_age: float | None = None,
    max_size: int = 4096,
    app: FastAPI | None = None,
) -> None:
    """Say what of a request travels with the tasks of ``celery_app`` sent while serving it.

    Nothing travels unless named here. ``headers``: header names; one ending in ``*``
    names every header that starts with what precedes it, except credential headers
    (``Authorization``, ``Cookie``, ``X-Api-Key``, any name with ``auth``, ``token``,
    ``key``, ``session``...), which travel only when named in full. ``query_string``,
    ``path_params``, ``client`` (its host), ``method``, ``path``: those items.

    ``signing_key``: sign the context (HMAC-SHA256); a worker with a key refuses an
    unsigned or altered context. ``fallback_keys``: older keys it still accepts (key
    rotation). ``max_age``: seconds after the request's capture beyond which a worker
    refuses the context. ``max_size``: the bound, in bytes, of a context (over it, the
    send raises ``RequestContextTooLargeError``). ``app``: a FastAPI app to add
    ``RequestContextMiddleware`` to, which tells which request is being served.

    Call it where the Celery app is created; the worker and the senders read it. The
    app's task class must be ``RequestContextTask``. Calling it again replaces the
    options.
    """
    if not isinstance(cast(object, celery_app), Celery):
        raise TypeError(
            f"carry_request_context() expects the Celery application, got {celery_app!r}; "
            "the FastAPI app goes in `app=`."
        )
    if not issubclass(celery_app.Task, RequestContextTask):
        raise TypeError(
            f"The tasks of Celery app {celery_app.main!r} are not RequestContextTasks, which "
            "carry the context: create the app with `Celery(..., task_cls="
            "RequestContextTask)`, or derive your task base class from RequestContextTask."
        )
    items = {"query_string": query_string, "path_params": path_params, "client": client}
    items.update(method=method, path=path)
    _policies[celery_app] = ContextPolicy.of(
        headers=headers,
        items=items,
        signing_key=signing_key,
        fallback_keys=fallback_keys,
        max_age=max_age,
        max_size=max_size,
    )
    if app is not None:
        check_app(app, "carry_request_context(app=...)")
        installed = [getattr(m, "cls", None) for m in app.user_middleware]
        if RequestContextMiddleware not in installed:
            app.add_middleware(RequestContextMiddleware)
