"""Django: a view and a management command of a Django app call functions decorated with
``fastapi_depends_anywhere.sync``; one of their dependencies is a ``def`` on Django's ORM.

Django's settings are the test's (configured once for the session), on the service's own
SQLite file, which the FastAPI app migrates and seeds.
"""

import io
import threading
import wsgiref.util
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import django
import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.test import Client
from fastapi import Depends

from fastapi_depends_anywhere.sync import with_fastapi_depends
from notes_service.cli import init_db, seed
from notes_service.settings import Settings, get_settings

BOB = {"Authorization": "Bearer bob-token"}


#: Every database connection Django opens in this session, with the thread that opened it.
OPENED: list[tuple[str, BaseDatabaseWrapper]] = []


def record(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    OPENED.append((threading.current_thread().name, connection))


@pytest.fixture(scope="session")
def django_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Django's settings, for the session: this Django app on the service's database."""
    if django_settings.configured:
        pytest.fail("Django was configured before these tests: they configure it themselves.")
    database = tmp_path_factory.mktemp("django") / "notes.sqlite3"
    django_settings.configure(
        SECRET_KEY="not a secret: tests only",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        INSTALLED_APPS=["notes_service.django_site"],
        ROOT_URLCONF="notes_service.django_site.urls",
        MIDDLEWARE=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        LOGGING_CONFIG=None,
    )
    django.setup()
    connection_created.connect(record)
    yield database
    connection_created.disconnect(record)


@pytest.fixture
def shared_database(django_database: Path, overrides: dict[Any, Any]) -> Iterator[Path]:
    """The FastAPI app on Django's database, migrated and seeded (once)."""
    overrides[get_settings] = lambda: Settings(database=django_database)
    init_db()
    seed()
    yield django_database
    connections.close_all()  # this thread's: Django's test client leaves it open


def test_the_view_lists_the_callers_notes(shared_database: Path) -> None:
    response = Client().get("/me/notes", headers=BOB)
    assert response.status_code == 200
    assert response.json() == {"notes": [{"id": 3, "text": "Draft the release notes"}]}


def test_the_view_refuses_a_bad_token(shared_database: Path) -> None:
    wrong = Client().get("/me/notes", headers={"Authorization": "Bearer wrong"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid token"})
    missing = Client().get("/me/notes")
    assert (missing.status_code, missing.json()) == (401, {"detail": "Not authenticated"})


def test_the_management_command(shared_database: Path) -> None:
    out = io.StringIO()
    call_command("notes_report", stdout=out)
    assert out.getvalue().splitlines() == ["ann: 3", "bob: 1"]


def test_a_served_request_leaves_no_connection_open(shared_database: Path) -> None:
    """Served as a threaded WSGI server serves it: the ORM dependency runs in the request's
    thread, on the view's connection, and Django closes it when the request ends. No
    connection Django opened in this session, in any thread, is left open."""
    environ: dict[str, Any] = {"PATH_INFO": "/me/notes", "HTTP_AUTHORIZATION": BOB["Authorization"]}
    wsgiref.util.setup_testing_defaults(environ)
    statuses: list[str] = []
    bodies: list[bytes] = []
    before = len(OPENED)

    def serve() -> None:
        response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
        bodies.append(b"".join(response))
        response.close()  # the end of the request: request_finished

    server = threading.Thread(target=serve, name="wsgi-request")
    server.start()
    server.join(120)

    assert statuses == ["200 OK"]
    assert b"Draft the release notes" in bodies[0]
    # One connection for the whole request, the request thread's, used by the dependency
    # (a query in any other thread would have opened one there).
    assert [thread for thread, _ in OPENED[before:]] == ["wsgi-request"]
    assert [(thread, wrapper.connection) for thread, wrapper in OPENED] == [
        (thread, None) for thread, _ in OPENED
    ]


def test_the_orm_dependency_runs_in_the_callers_thread(shared_database: Path) -> None:
    from notes_service.django_site.services import AccountDep  # Django is set up now

    seen: list[tuple[str, Any]] = []

    def orm_user(account: AccountDep) -> str:
        seen.append((threading.current_thread().name, connection.connection))
        return str(account.name)

    @with_fastapi_depends
    def whoami(*, name: Annotated[str, Depends(orm_user)]) -> str:
        return name

    results: list[str] = []

    def call() -> None:
        results.append(whoami(_scope={"headers": [(b"authorization", b"Bearer bob-token")]}))
        results.append("open" if connection.connection is not None else "closed")
        connection.close()  # a thread of our own: nobody else would close it

    before = len(OPENED)
    caller = threading.Thread(target=call, name="caller")
    caller.start()
    caller.join(120)
    assert results == ["bob", "open"]
    # The dependency ran in the caller's thread, on the caller's connection.
    assert [thread for thread, _ in seen] == ["caller"]
    assert [thread for thread, _ in OPENED[before:]] == ["caller"]
    assert OPENED[-1][1].connection is None
