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
from typing import Any

import django
import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.test import Client

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
    """Served as a WSGI server serves it: Django closes the view thread's connection when
    the request ends, and the ORM dependency closed the one of the thread it ran in. No
    connection Django opened in this session, in any thread, is left open."""
    environ: dict[str, Any] = {"PATH_INFO": "/me/notes", "HTTP_AUTHORIZATION": BOB["Authorization"]}
    wsgiref.util.setup_testing_defaults(environ)
    statuses: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    body = b"".join(response)
    response.close()  # the end of the request: request_finished

    assert statuses == ["200 OK"]
    assert b"Draft the release notes" in body
    assert threading.current_thread().name in {thread for thread, _ in OPENED}
    assert [(thread, wrapper.connection) for thread, wrapper in OPENED] == [
        (thread, None) for thread, _ in OPENED
    ]
