"""The public surface of fda-sync and its re-export as fastapi_depends_anywhere.sync, and V1:
no deprecated asyncio API."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import fastapi_depends_anywhere.sync
import fastapi_depends_anywhere.sync.runners
import fda_sync
import fda_sync.runners

from .conftest import run_script

SPEC_NAMES = {
    "FastApiDepsStack",
    "iter_with_fastapi_depends",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
}


@pytest.mark.chosen_path
@pytest.mark.parametrize(
    "module",
    [
        fda_sync,
        fda_sync.runners,
        fastapi_depends_anywhere.sync,
        fastapi_depends_anywhere.sync.runners,
    ],
    ids=lambda module: module.__name__,
)
def test_all_is_sorted_unique_and_complete(module: object) -> None:
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert names == sorted(set(names))
    public = {name for name in vars(module) if not name.startswith("_")}
    public -= {name for name, value in vars(module).items() if inspect.ismodule(value)}
    assert set(names) - {"__version__"} == public


@pytest.mark.chosen_path
def test_the_sync_api_of_the_spec_is_exported_once_everywhere() -> None:
    assert set(fda_sync.__all__) >= SPEC_NAMES
    facade = fastapi_depends_anywhere.sync
    assert set(facade.__all__) == set(fda_sync.__all__) - {"__version__"}
    for name in facade.__all__:
        assert getattr(facade, name) is getattr(fda_sync, name)
    runnify = fda_sync.runnify_with_fastapi_depends
    assert fda_sync.runners.runnify_with_fastapi_depends is runnify
    assert fastapi_depends_anywhere.sync.runners.runnify_with_fastapi_depends is runnify


@pytest.mark.chosen_path
def test_version_comes_from_the_distribution() -> None:
    assert fda_sync.__version__ == importlib.metadata.version("fda-sync")


DEPRECATED_ASYNCIO = {
    "get_event_loop",  # raises without a current loop on 3.14
    "set_event_loop",
    "get_event_loop_policy",  # policies are deprecated in 3.14
    "set_event_loop_policy",
    "AbstractEventLoopPolicy",
    "DefaultEventLoopPolicy",
    "iscoroutinefunction",  # asyncio's, deprecated in 3.14
    "get_child_watcher",
    "set_child_watcher",
}


@pytest.mark.chosen_path
def test_v1_no_deprecated_asyncio_api_in_the_source() -> None:
    source_dir = Path(fda_sync.__file__).parent
    found = []
    for path in sorted(source_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in DEPRECATED_ASYNCIO:
                found.append(f"{path.name}:{node.lineno} {node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "asyncio":
                found += [f"{path.name}: from asyncio import {alias.name}" for alias in node.names]
    assert found == []


@pytest.mark.process
def test_v1_whole_api_under_warnings_as_errors() -> None:
    script = run_script(
        """
import asyncio, os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from fastapi import Depends, FastAPI, Request
from fastapi_depends_anywhere import configure
from fastapi_depends_anywhere.sync import (
    FastApiDepsStack, iter_with_fastapi_depends, resolve_fastapi_depends,
    with_fastapi_depends, with_fastapi_lifecycle,
)
from fastapi_depends_anywhere.sync.runners import runnify_with_fastapi_depends

@asynccontextmanager
async def lifespan(app):
    yield {"pool": "pool"}

app = FastAPI(lifespan=lifespan)
configure(app=app)

async def adep(request: Request) -> AsyncIterator[str]:
    yield getattr(request.state, "pool", "no-pool")

def sdep():
    yield "s"

A = Annotated[str, Depends(adep)]
S = Annotated[str, Depends(sdep)]

@with_fastapi_depends
def f(*, a: A, s: S): return a + s

@with_fastapi_depends
async def g(*, a: A, s: S): return a + s

@iter_with_fastapi_depends
def h(*, a: A):
    yield a

@iter_with_fastapi_depends
async def i(*, a: A):
    yield a

@runnify_with_fastapi_depends
def script(*, a: A): return a

@with_fastapi_lifecycle
def lifecycle(): return f() + g()

with FastApiDepsStack() as stack:
    stacked = stack.resolve(A)
with resolve_fastapi_depends(f.__wrapped__) as values:
    resolved = values["a"]
pid = os.fork()
if pid == 0:
    os._exit(0 if f() == "no-pools" else 1)
_, status = os.waitpid(pid, 0)
print(f(), g(), list(h()), list(i()), script(), lifecycle(), stacked, resolved,
      os.waitstatus_to_exitcode(status))
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines == [
        "no-pools no-pools ['no-pool'] ['no-pool'] pool poolspools pool no-pool 0"
    ]
