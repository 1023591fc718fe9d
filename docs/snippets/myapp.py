"""A small FastAPI app: notes in a SQLite file, a mailer opened by the lifespan."""

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request

DATABASE = "notes.sqlite3"
with closing(sqlite3.connect(DATABASE)) as conn:  # the schema: your migrations' job
    conn.execute("CREATE TABLE IF NOT EXISTS notes (author TEXT, text TEXT)")


class Mailer:
    """Stands for an SMTP or HTTP client the app opens once, at startup."""

    def __init__(self) -> None:
        self.outbox: list[tuple[str, str]] = []
        self.open = True

    def send(self, to: str, body: str) -> None:
        assert self.open, "the mailer is closed"
        self.outbox.append((to, body))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    mailer = Mailer()  # startup
    yield {"mailer": mailer}  # request.state.mailer, in routes and outside them
    mailer.open = False  # shutdown


app = FastAPI(lifespan=lifespan)


def get_db() -> Iterator[sqlite3.Connection]:
    """One connection and transaction per call: committed on success, rolled back on error."""
    conn = sqlite3.connect(DATABASE, check_same_thread=False)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def get_mailer(request: Request) -> Mailer:
    return request.state.mailer


async def get_current_user(authorization: Annotated[str, Header()]) -> str:
    if not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401)
    return authorization.removeprefix("Bearer ")


DbDep = Annotated[sqlite3.Connection, Depends(get_db)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
CurrentUserDep = Annotated[str, Depends(get_current_user)]


class Notes:
    """A repository on top of the connection."""

    def __init__(self, db: DbDep) -> None:
        self.db = db

    def add(self, author: str, text: str) -> None:
        self.db.execute("INSERT INTO notes VALUES (?, ?)", (author, text))

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM notes").fetchone()[0]


NotesDep = Annotated[Notes, Depends()]


@app.post("/notes")
async def add_note(text: str, notes: NotesDep, user: CurrentUserDep) -> dict[str, int]:
    notes.add(user, text)
    return {"count": notes.count()}
