# pyright: reportMissingTypeStubs=false
"""A request's context carried to Celery tasks, as the docs show it, checked by mypy and
pyright (never executed)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated, Any

from celery import Celery
from fastapi import FastAPI, Header
from typing_extensions import assert_type

from fastapi_depends_anywhere import RequestContextMiddleware, ambient_scope
from fastapi_depends_anywhere.sync import scope_from_django, with_fastapi_depends
from fastapi_depends_anywhere.sync.celery import (
    RequestContextError,
    RequestContextRefusedError,
    RequestContextTask,
    RequestContextTooLargeError,
    carry_request_context,
)

app = FastAPI()
app.add_middleware(RequestContextMiddleware)
celery = Celery("myapp", task_cls=RequestContextTask)

assert_type(carry_request_context(celery), None)
assert_type(
    carry_request_context(
        celery,
        headers=["authorization", "x-tenant", "x-request-*"],
        query_string=True,
        path_params=True,
        client=True,
        method=True,
        path=True,
        signing_key="a key of at least sixteen bytes",
        fallback_keys=[b"the key signed with before"],
        max_age=3600,
        max_size=8192,
        app=app,
    ),
    None,
)
carry_request_context(celery, headers=[b"authorization"])  # type: ignore[list-item]
carry_request_context(celery, signing_key=1234)  # type: ignore[arg-type]
carry_request_context(celery, ["authorization"])  # type: ignore[call-arg]  # keyword-only


@with_fastapi_depends(app=app)
def tenant_of(*, x_tenant: Annotated[str, Header()]) -> str:
    return x_tenant


scope: dict[str, Any] = {"headers": {"x-tenant": "acme"}}
block: AbstractContextManager[None] = ambient_scope(scope)
with ambient_scope(scope) as entered:
    assert_type(entered, None)
    assert_type(tenant_of(), str)


def view(request: Any) -> dict[str, Any]:
    return scope_from_django(request)


def refused(error: Exception) -> bool:
    assert issubclass(RequestContextRefusedError, RequestContextError)
    assert issubclass(RequestContextTooLargeError, RequestContextError)
    return isinstance(error, RequestContextRefusedError)


class AuditedTask(RequestContextTask):
    """A base class of one's own: every attribute of Celery's task class is there."""

    autoretry_for = (ConnectionError,)

    def on_failure(self, exc: Exception, task_id: str, *args: Any) -> None:
        print(self.request.id, self.name, task_id, exc)


audited = Celery("audited", task_cls=AuditedTask)
