"""An inner pytest session's project for the plugin's tests: a real FastAPI app, run by
pytest in a subprocess (``pytester.runpytest_subprocess``) with the plugins installed.

The app has a lifespan and a yield dependency; both write what happens to the file named
by ``FDA_EVENTS``, so the outer test can count startups, shutdowns and teardowns after the
inner session is over (session fixtures tear down after the last test).
"""

from __future__ import annotations

import textwrap

import pytest

APP = """
import os
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request


def log(event):
    with open(os.environ["FDA_EVENTS"], "a") as events:
        events.write(event + "\\n")


@asynccontextmanager
async def lifespan(app):
    log("startup")
    yield {"greeting": "hello"}
    log("shutdown")


app = FastAPI(lifespan=lifespan)


async def get_db():
    log("db open")
    try:
        yield "real db"
    finally:
        log("db close")


def get_user() -> str:
    return "ann"


async def get_greeting(request: Request) -> str:
    return request.state.greeting


DbDep = Annotated[str, Depends(get_db)]
UserDep = Annotated[str, Depends(get_user)]
GreetingDep = Annotated[str, Depends(get_greeting)]


@app.get("/who")
async def who_route(user: UserDep, db: DbDep) -> str:
    return f"{user} on {db}"
"""

#: conftest.py of the inner project: the app configured at import, as most projects do.
CONFTEST = """
import pytest

from fda_core import configure
from myapp import app

configure(app=app)
"""

SESSION_ANYIO_BACKEND = """

@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"
"""


class Inner:
    """A project for an inner pytest session, in ``pytester``'s folder."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.log = pytester.path / "events.log"
        monkeypatch.setenv("FDA_EVENTS", str(self.log))
        pytester.makepyfile(myapp=APP)

    def files(self, ini: str = "", conftest: str = CONFTEST, **tests: str) -> None:
        """The inner pytest.ini (``ini``: its lines), conftest.py and test files."""
        self.pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
        self.pytester.makeconftest(conftest)
        self.pytester.makepyfile(**{name: textwrap.dedent(code) for name, code in tests.items()})

    def run(self, *args: str) -> pytest.RunResult:
        """pytest in a subprocess, with the plugins as installed (entry points)."""
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)

    def events(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)
