"""The app of the plugin's in-process tests (this suite's ``fda_app``): a lifespan and a
yield dependency that record what happens to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

EVENTS: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    EVENTS.append("startup")
    yield {"greeting": "hello"}
    EVENTS.append("shutdown")


app = FastAPI(lifespan=lifespan)


async def get_db() -> AsyncIterator[str]:
    EVENTS.append("db open")
    try:
        yield "real db"
    finally:
        EVENTS.append("db close")


def get_user() -> str:
    return "ann"


async def get_greeting(request: Request) -> str:
    return str(request.state.greeting)


DbDep = Annotated[str, Depends(get_db)]
UserDep = Annotated[str, Depends(get_user)]
GreetingDep = Annotated[str, Depends(get_greeting)]
