"""Modules with ``from __future__ import annotations`` (string annotations everywhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import pytest
from fastapi import Depends, FastAPI

from fda_core import configure, with_fastapi_depends

if TYPE_CHECKING:
    from decimal import Decimal


async def get_db() -> str:
    return "db"


@with_fastapi_depends
async def charge(amount: Decimal, *, db: DbDep) -> tuple[Decimal, str]:
    """Decorated before ``DbDep`` exists, with a pass-through type known only to checkers."""
    return amount, db


DbDep = Annotated[str, Depends(get_db)]


async def test_alias_defined_after_decoration_and_type_checking_only_names() -> None:
    configure(app=FastAPI())
    assert await charge(3) == (3, "db")


async def test_a_dependency_alias_local_to_a_function_is_named_in_the_error() -> None:
    """Under PEP 563 an alias defined in a function cannot be evaluated by anyone."""
    configure(app=FastAPI())
    LocalDep = Annotated[str, Depends(get_db)]

    @with_fastapi_depends
    async def job(*, db: LocalDep) -> str:
        return db

    with pytest.raises(TypeError, match=r"missing argument 'db'.*'LocalDep'.*module level"):
        await job()
    assert await job(db="passed") == "passed"  # the caller may still pass it
