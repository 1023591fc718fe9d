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


async def test_dependencies_local_to_the_decorating_function_are_resolved() -> None:
    """Under PEP 563 a test's local dependency and alias are found where the decorator
    was applied (FastAPI would not find them; the route answers 422)."""
    configure(app=FastAPI())

    async def get_local() -> str:
        return "local"

    LocalDep = Annotated[str, Depends(get_db)]

    @with_fastapi_depends
    async def job(*, db: LocalDep, local: Annotated[str, Depends(get_local)]) -> str:
        return f"{db}+{local}"

    assert await job() == "db+local"
    assert await job(db="passed") == "passed+local"  # the caller may still pass it


async def test_a_dependency_defined_after_decorating_is_named_and_the_body_not_run() -> None:
    configure(app=FastAPI())
    called: list[object] = []

    @with_fastapi_depends
    async def job(*, db: Annotated[str, Depends(get_later)]) -> None:
        called.append(db)

    async def get_later() -> str:  # too late: the decorator has run
        return "later"

    with pytest.raises(TypeError, match=r"parameter 'db' .*names 'get_later'"):
        await job()
    assert called == []
    assert get_later is not None


async def test_the_signature_is_exact_once_the_module_is_complete() -> None:
    import inspect

    configure(app=FastAPI())
    await charge(1)
    assert list(inspect.signature(charge).parameters) == ["amount"]
    assert list(inspect.signature(with_type_checking_import).parameters) == ["amount"]


async def test_depends_on_a_class_that_exists_only_for_type_checkers_is_an_error() -> None:
    configure(app=FastAPI())
    with pytest.raises(TypeError, match=r"'service' is `Depends\(\)` on its annotation"):
        await needs_service()


@with_fastapi_depends
async def with_type_checking_import(amount: Decimal, *, db: DbDep) -> str:
    """Decorated once ``DbDep`` exists: the signature is exact from the start."""
    return db


@with_fastapi_depends
async def needs_service(service: Decimal = Depends()) -> None: ...
