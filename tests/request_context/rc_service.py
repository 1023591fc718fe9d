"""The service of the request-context tests: a FastAPI app whose routes send Celery tasks,
and the tasks, which resolve the same dependency graph in the worker.

``build()`` makes a fresh pair of apps: the tests build one per broker (``memory://`` with
eager tasks, a real ``redis-server``), and the worker they start builds its own from the
environment (``rc_worker.py``). The graph (``view``) reads everything a request can carry:
the user through ``Security`` (OAuth2 bearer, with scopes), a tenant header, the locale,
every header, the query, the path parameters, the client, the method and the path.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from celery import Celery, chain, chord, group
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from starlette.concurrency import run_in_threadpool

from fastapi_depends_anywhere.sync import override, with_fastapi_depends
from fastapi_depends_anywhere.sync.celery import RequestContextTask, carry_request_context

HEADER = "fda_request_context"  # the message header that carries the context
KEY = "the-signing-key-of-the-request-context-tests"
OLD_KEY = "the-key-the-request-context-tests-had-before"
#: What may travel: named headers (two of them credentials), and a pattern.
HEADERS = ["authorization", "x-tenant", "accept-language", "x-api-key", "x-trace-*"]
USERS = {"ann-token": "ann", "bob-token": "bob"}

oauth2 = OAuth2PasswordBearer(tokenUrl="token", scopes={"notes": "Read and write notes"})


def get_current_user(
    security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]
) -> dict[str, Any]:
    if token not in USERS:
        raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})
    return {"name": USERS[token], "scopes": security_scopes.scopes}


def get_tenant(x_tenant: Annotated[str | None, Header()] = None) -> str | None:
    return x_tenant


def get_locale(accept_language: Annotated[str, Header()] = "en") -> str:
    return accept_language.split(",")[0]


def view(
    request: Request,
    user: Annotated[dict[str, Any], Security(get_current_user, scopes=["notes"])],
    tenant: Annotated[str | None, Depends(get_tenant)],
    locale: Annotated[str, Depends(get_locale)],
) -> dict[str, Any]:
    """What the graph sees of the request, as JSON."""
    return {
        "user": user,
        "tenant": tenant,
        "locale": locale,
        "headers": [list(pair) for pair in request.headers.items()],
        "query": [list(pair) for pair in request.query_params.multi_items()],
        "path_params": dict(request.path_params),
        "client": request.client.host if request.client else None,
        "method": request.method,
        "path": request.url.path,
    }


ViewDep = Annotated[dict[str, Any], Depends(view)]


@dataclass
class Service:
    api: FastAPI
    celery: Celery
    tasks: dict[str, Any]
    #: The ids of the tasks whose body ran (in this process; the worker writes files).
    ran: list[str] = field(default_factory=list)


def build(broker: str = "memory://", runs: Path | None = None, queue: str = "celery") -> Service:
    """A FastAPI app and a Celery app on ``broker`` (``memory://``: eager tasks); tasks
    go to ``queue``, and the ids of those whose body ran to files in ``runs``."""
    api = FastAPI()
    eager = broker == "memory://"
    celery = Celery(
        "rc_service",
        broker=broker,
        backend="cache+memory://" if eager else broker,
        task_cls=RequestContextTask,
    )
    celery.conf.update(
        task_always_eager=eager,
        task_store_eager_result=True,
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        task_time_limit=120,
        task_default_queue=queue,
        # One result backend for the web process's threads (FastAPI runs `def` routes in a
        # thread pool), not one per thread, with connections left to the garbage collector.
        result_backend_thread_safe=True,
    )
    carry_request_context(
        celery,
        headers=HEADERS,
        query_string=True,
        path_params=True,
        client=True,
        method=True,
        path=True,
        signing_key=KEY,
        fallback_keys=[OLD_KEY],
        max_age=3600,
        app=api,
    )
    service = Service(api, celery, {})

    @with_fastapi_depends(app=api)
    def task_view(*, seen: ViewDep) -> dict[str, Any]:
        return seen

    def record(task_id: str) -> None:
        service.ran.append(task_id)
        if runs is not None:
            (runs / task_id).touch()

    @celery.task(bind=True, name="rc.seen")
    def seen(self: Any, previous: Any = None) -> dict[str, Any]:
        record(self.request.id)
        return {"seen": task_view(), "previous": previous, "pid": os.getpid()}

    @celery.task(bind=True, name="rc.retrying", max_retries=3)
    def retrying(self: Any) -> dict[str, Any]:
        attempt = self.request.retries
        if attempt and not self.request.is_eager:
            _wait_for_the_retry_of(self, attempt - 1)
        if attempt < 2:
            raise self.retry(exc=RuntimeError(f"attempt {attempt}"), countdown=0)
        return {"seen": task_view(), "retries": attempt}

    @celery.task(bind=True, name="rc.carried")
    def carried(self: Any) -> Any:
        """What the message carried, as it arrived: the header's value."""
        request = self.request
        return getattr(request, HEADER, None) or (request.headers or {}).get(HEADER)

    @celery.task(name="rc.overridden")
    def overridden() -> dict[str, Any]:
        """An ``override()`` block in the task: it wins over the carried header."""
        with override({get_locale: lambda: "overridden"}):
            return task_view()

    service.tasks.update(seen=seen, retrying=retrying, carried=carried, overridden=overridden)

    @api.post("/notes/{note_id}")
    def enqueue(note_id: int, seen_here: ViewDep) -> dict[str, Any]:
        """A ``def`` route: it sends the task, and shows what its own graph saw."""
        return {"task": seen.delay().id, "route": seen_here}

    async def send_from_dependency() -> str:
        if eager:  # the task runs right here, and its sync calls must not block the loop
            return str((await run_in_threadpool(seen.delay)).id)
        return str(seen.delay().id)  # a publish

    @api.get("/async/{slug}")
    async def enqueue_async(
        slug: str,
        seen_here: ViewDep,
        background: BackgroundTasks,
        from_dependency: Annotated[str, Depends(send_from_dependency)],
        task_id: str,
    ) -> dict[str, Any]:
        """An ``async`` route: a dependency sends one task, a background task another."""
        background.add_task(seen.apply_async, task_id=task_id)
        return {"task": from_dependency, "route": seen_here}

    @api.post("/canvas")
    def canvas(seen_here: ViewDep) -> dict[str, Any]:
        return {
            "route": seen_here,
            "chain": chain(seen.s(), seen.s(), seen.s()).delay().id,
            "group": [result.id for result in group(seen.s(), seen.s()).delay().results],
            "chord": chord([seen.s(), seen.s()], seen.s()).delay().id,
            "retrying": retrying.delay().id,
        }

    return service


def _wait_for_the_retry_of(task: Any, attempt: int) -> None:
    """Wait until the result backend holds the RETRY state of ``attempt`` of this task.

    Celery sends a retry's message before it stores the RETRY state of the attempt that
    retried. With two processes in the pool, the next attempt can run in the other one
    meanwhile: were the last attempt to store SUCCESS first, the late RETRY would replace
    it, and ``AsyncResult.get()`` would wait for a result that never comes."""
    deadline = time.monotonic() + 100  # within the task's time limit (120 s)
    while True:
        meta = task.backend.get_task_meta(task.request.id, cache=False)
        if meta["status"] == "RETRY" and str(meta["result"]) == f"attempt {attempt}":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the RETRY of attempt {attempt} was never stored: {meta}")
        time.sleep(0.02)


def from_environment() -> Service:
    """The worker's service: ``FDA_RC_BROKER``, ``FDA_RC_RUNS`` (a folder), ``FDA_RC_QUEUE``."""
    environ = os.environ
    return build(environ["FDA_RC_BROKER"], Path(environ["FDA_RC_RUNS"]), environ["FDA_RC_QUEUE"])
