"""The Django site of bench_django.py, served by gunicorn: one view, wired two ways.

``GET /sync/notes`` lists the caller's notes through a function decorated with
``fastapi_depends_anywhere.sync.with_fastapi_depends``: the service's settings, a
SQLAlchemy session (a ``def`` generator), the caller found from the ``Authorization``
header, a repository class. ``GET /hand/notes`` is the same view with no library: the same
settings, the same session opened and closed by hand, the same two queries. Both read the
example service's tables (``notes_service.models``) on its SQLite file (``NOTES_DATABASE``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated, Any

import django
from django.conf import settings as django_settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from fastapi_depends_anywhere.sync import with_fastapi_depends
from notes_service.models import Note, User
from notes_service.settings import Settings, get_settings

app = FastAPI()  # whose dependency overrides apply: none here


@functools.cache
def engine_for(database: str) -> Engine:
    """One engine per worker process, as an app keeps one (SQLite through pysqlite)."""
    return create_engine(f"sqlite:///{database}")


def token_of(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def user_of(session: Session, token: str | None) -> User | None:
    """The first query: whose token it is."""
    if token is None:
        return None
    return session.scalar(select(User).where(User.token == token))


def notes_of_user(session: Session, user: User) -> list[dict[str, Any]]:
    """The second query: that user's notes, oldest first."""
    rows = session.scalars(select(Note).where(Note.author_id == user.id).order_by(Note.id))
    return [{"id": note.id, "text": note.text} for note in rows]


# --- the view's dependencies, from the sync API ----------------------------------------


def get_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with Session(engine_for(str(settings.database))) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_user(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> User:
    user = user_of(session, token_of(authorization))
    if user is None:
        raise HTTPException(401, "Invalid token")
    return user


class NotesRepository:
    def __init__(self, session: SessionDep) -> None:
        self.session = session

    def of(self, user: User) -> list[dict[str, Any]]:
        return notes_of_user(self.session, user)


@with_fastapi_depends(app=app)
def my_notes(
    *,
    user: Annotated[User, Depends(current_user)],
    notes: Annotated[NotesRepository, Depends()],
) -> list[dict[str, Any]]:
    return notes.of(user)


#: The caller's token, for a variant that reads it without a header parameter: what the
#: header parameter costs is the difference (bench_django.py's instruction counts).
TOKEN: ContextVar[str | None] = ContextVar("TOKEN", default=None)


def current_user_without_header(session: SessionDep) -> User:
    user = user_of(session, token_of(TOKEN.get()))
    if user is None:
        raise HTTPException(401, "Invalid token")
    return user


@with_fastapi_depends(app=app)
def my_notes_without_header(
    *,
    user: Annotated[User, Depends(current_user_without_header)],
    notes: Annotated[NotesRepository, Depends()],
) -> list[dict[str, Any]]:
    return notes.of(user)


def sync_view_without_header(request: HttpRequest) -> JsonResponse:
    TOKEN.set(request.headers.get("Authorization"))
    try:
        notes = my_notes_without_header()
    except HTTPException as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status_code)
    return JsonResponse({"notes": notes})


def sync_view(request: HttpRequest) -> JsonResponse:
    headers = {"authorization": request.headers.get("Authorization", "")}
    try:
        notes = my_notes(_scope={"headers": headers})
    except HTTPException as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status_code)
    return JsonResponse({"notes": notes})


# --- the same view, wired by hand ---------------------------------------------------------


def hand_view(request: HttpRequest) -> JsonResponse:
    settings = get_settings()
    with Session(engine_for(str(settings.database))) as session:
        user = user_of(session, token_of(request.headers.get("Authorization")))
        if user is None:
            return JsonResponse({"detail": "Invalid token"}, status=401)
        notes = notes_of_user(session, user)
    return JsonResponse({"notes": notes})


VIEWS = {"sync": "sync/notes", "hand": "hand/notes"}  # served; the variant is not
urlpatterns = [path(VIEWS["sync"], sync_view), path(VIEWS["hand"], hand_view)]

django_settings.configure(
    DEBUG=False,
    SECRET_KEY="bench only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],  # sets Content-Length
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()
application = get_wsgi_application()
