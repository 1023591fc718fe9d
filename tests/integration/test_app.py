"""The app's routes through real requests (TestClient, and httpx's ASGI transport): a
background task queued with ``_scope=request.scope`` finds the caller's user through the
copied headers and writes through a session of its own."""

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from notes_service.app import app

ANN = {"Authorization": "Bearer ann-token"}
BOB = {"Authorization": "Bearer bob-token"}


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(database)) as conn:
        return conn.execute(query).fetchall()


def test_the_current_user_comes_from_the_bearer_token(client: TestClient) -> None:
    assert client.get("/me", headers=ANN).json() == {"name": "ann"}
    assert client.get("/me", headers=BOB).json() == {"name": "bob"}
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_each_users_notes(client: TestClient) -> None:
    assert [note["text"] for note in client.get("/notes", headers=BOB).json()] == [
        "Draft the release notes"
    ]
    assert len(client.get("/notes", headers=ANN).json()) == 3


def test_a_background_task_writes_as_the_caller(client: TestClient, database: Path) -> None:
    created = client.post("/notes", json={"text": "From the API"}, headers=BOB)
    assert created.status_code == 201
    note = created.json()
    assert (note["author"], note["text"]) == ("bob", "From the API")
    # The response is out and the background task has run (TestClient waits for it).
    assert rows(
        database, "SELECT u.name, a.action FROM activity a JOIN users u ON u.id = a.user_id"
    ) == [("bob", f"created note {note['id']}")]
    assert rows(database, f"SELECT text FROM notes WHERE id = {note['id']}") == [("From the API",)]


def test_background_tasks_of_two_callers(client: TestClient, database: Path) -> None:
    first = client.post("/notes", json={"text": "one"}, headers=ANN).json()
    second = client.post("/notes", json={"text": "two"}, headers=BOB).json()
    assert rows(
        database,
        "SELECT u.name, a.action FROM activity a JOIN users u ON u.id = a.user_id ORDER BY a.id",
    ) == [("ann", f"created note {first['id']}"), ("bob", f"created note {second['id']}")]


def test_an_unauthenticated_post_writes_nothing(client: TestClient, database: Path) -> None:
    assert client.post("/notes", json={"text": "anonymous"}).status_code == 401
    assert rows(database, "SELECT count(*) FROM notes WHERE text = 'anonymous'") == [(0,)]
    assert rows(database, "SELECT count(*) FROM activity") == [(0,)]


@pytest.mark.asyncio
async def test_through_httpx_asgi_transport(database: Path) -> None:
    """httpx's ASGI transport sends requests but runs no lifespan: run it here, and hand its
    state to each request as a server does."""
    async with app.router.lifespan_context(app) as state:

        async def server(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://notes") as client:
            created = await client.post("/notes", json={"text": "Via httpx"}, headers=ANN)
            assert created.status_code == 201
            assert (await client.get("/me", headers=ANN)).json() == {"name": "ann"}
    assert rows(
        database, "SELECT u.name, a.action FROM activity a JOIN users u ON u.id = a.user_id"
    ) == [("ann", f"created note {created.json()['id']}")]
