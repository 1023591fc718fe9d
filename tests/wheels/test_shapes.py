"""One install shape, tested in a venv made by ``nox -s wheels`` from the built wheels alone.

``FDA_WHEEL_SHAPE`` names the shape, ``FDA_WHEEL_VERSION`` the workspace's version:

- core (``pip install fda-core``): the async API; nothing else of the project, no asyncer.
- sync (``pip install fda-sync``): the sync API with fda-core pulled in; no meta, no asyncer.
- meta (``pip install fastapi-depends-anywhere``): everything in SPEC.md but runnify, which
  raises an ImportError naming the command that installs it.
- meta-asyncer (``pip install "fastapi-depends-anywhere[asyncer]"``): everything. The
  README's install commands give this shape too.
- meta-all (``pip install "fastapi-depends-anywhere[all,build]"``, 1.x's extras): everything,
  Celery for the worker hook included.

In the meta shapes with asyncer, ``tests/compat`` (a 1.x code base) runs too.

In every shape, pytest finds fda-core's plugin (the async fixtures); with fda-sync, fda-sync's
too (the sync ones), and no others.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, Request
from packaging.requirements import Requirement

SHAPE = os.environ["FDA_WHEEL_SHAPE"]
VERSION = os.environ["FDA_WHEEL_VERSION"]

MODULES = {
    "fda-core": "fda_core",
    "fda-sync": "fda_sync",
    "fastapi-depends-anywhere": "fastapi_depends_anywhere",
    "asyncer": "asyncer",
    "celery": "celery",
}
META = {"fda-core", "fda-sync", "fastapi-depends-anywhere"}
PRESENT = {
    "core": {"fda-core"},
    "sync": {"fda-core", "fda-sync"},
    "meta": META,
    "meta-asyncer": {*META, "asyncer"},
    "meta-all": {*META, "asyncer", "celery"},
}[SHAPE]
OURS = [name for name in MODULES if name not in ("asyncer", "celery")]
HAS_META = "fastapi-depends-anywhere" in PRESENT
HAS_SYNC = "fda-sync" in PRESENT
HAS_ASYNCER = "asyncer" in PRESENT
HAS_CELERY = "celery" in PRESENT

#: SPEC.md's API reference, by the module it says to import from.
SPEC_API = {
    "fastapi_depends_anywhere": [
        "FastApiDepsStack",
        "aiter_with_fastapi_depends",
        "check_routes_and_dependencies_are_async",
        "configure",
        "get_app",
        "reset_config",
        "resolve_fastapi_depends",
        "runnify_with_fastapi_depends",
        "with_fastapi_depends",
        "with_fastapi_lifecycle",
    ],
    "fastapi_depends_anywhere.sync": [
        "FastApiDepsStack",
        "iter_with_fastapi_depends",
        "resolve_fastapi_depends",
        "runnify_with_fastapi_depends",
        "with_fastapi_depends",
        "with_fastapi_lifecycle",
    ],
    "fastapi_depends_anywhere.sync.runners": ["runnify_with_fastapi_depends"],
}
MISSING_ASYNCER = 'pip install "fastapi-depends-anywhere[asyncer]"'


# --- What is installed, and from where ------------------------------------------------


@pytest.mark.parametrize("distribution", list(MODULES))
def test_exactly_the_shapes_distributions_are_importable(distribution: str) -> None:
    module = MODULES[distribution]
    if distribution not in PRESENT:
        assert importlib.util.find_spec(module) is None
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(distribution)
        return
    imported = importlib.import_module(module)
    assert imported.__file__ is not None
    # From the venv's site-packages, not from the workspace's source folders.
    assert Path(imported.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
    if distribution in OURS:
        assert (Path(imported.__file__).parent / "py.typed").is_file()  # typed, PEP 561
        assert importlib.metadata.version(distribution) == VERSION
        assert imported.__version__ == VERSION
        direct_url = importlib.metadata.distribution(distribution).read_text("direct_url.json")
        if direct_url is not None:
            assert not json.loads(direct_url).get("dir_info", {}).get("editable")


@pytest.mark.parametrize("distribution", sorted(PRESENT & set(OURS)))
def test_pins_between_the_distributions_are_exact_and_in_lockstep(distribution: str) -> None:
    siblings = [
        Requirement(line)
        for line in importlib.metadata.requires(distribution) or []
        if Requirement(line).name in OURS
    ]
    expected = {"fda-core": 0, "fda-sync": 1, "fastapi-depends-anywhere": 9}[distribution]
    # the meta: fda-core, fda-sync, [asyncer], [celery], [dramatiq], [rq], [taskiq], and
    # [all] (asyncer and celery)
    assert len(siblings) == expected
    for requirement in siblings:
        assert str(requirement.specifier) == f"=={VERSION}", requirement
        assert importlib.metadata.version(requirement.name) == VERSION


# --- A real app: a SQLite file, a lifespan, a yield dependency, a header ----------------


class App:
    def __init__(self, path: Path) -> None:
        self.events: list[str] = []
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
            self.events.append("startup")
            yield {"greeting": "hello"}
            self.events.append("shutdown")

        self.app = FastAPI(lifespan=lifespan)
        self.app.state.path = path

        @self.app.get("/notes")
        def list_notes(db: DbDep) -> list[str]:  # a def route, for the async check
            return notes(db)


def get_db(request: Request) -> Iterator[sqlite3.Connection]:
    """One transaction per call: committed on success, rolled back on error."""
    conn = sqlite3.connect(request.app.state.path, check_same_thread=False)
    try:
        yield conn
    except Exception:
        conn.rollback()
        raise
    else:
        conn.commit()
    finally:
        conn.close()


async def get_user(x_user: Annotated[str, Header()]) -> str:
    return x_user


async def get_greeting(request: Request) -> str:
    return str(request.state.greeting)


DbDep = Annotated[sqlite3.Connection, Depends(get_db)]
UserDep = Annotated[str, Depends(get_user)]
GreetingDep = Annotated[str, Depends(get_greeting)]


def notes(db: sqlite3.Connection) -> list[str]:
    return [text for (text,) in db.execute("SELECT text FROM notes ORDER BY rowid")]


def saved(app: App) -> list[str]:
    with closing(sqlite3.connect(app.app.state.path)) as conn:
        return notes(conn)


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App(tmp_path / "notes.sqlite3")


# --- The async API --------------------------------------------------------------------

ASYNC_MODULES = ["fda_core"] + (["fastapi_depends_anywhere"] if HAS_META else [])


@pytest.mark.parametrize("module", ASYNC_MODULES)
async def test_the_async_api_works(module: str, app: App) -> None:
    api = importlib.import_module(module)
    api.configure(app=app.app)
    assert api.get_app() is app.app

    @api.with_fastapi_depends
    async def add(text: str, *, db: DbDep, user: UserDep) -> int:
        db.execute("INSERT INTO notes VALUES (?)", (f"{user}: {text}",))
        return len(notes(db))

    assert await add("one", _scope={"headers": {"x-user": "ann"}}) == 1

    @api.with_fastapi_depends
    async def fail(*, db: DbDep) -> None:
        db.execute("INSERT INTO notes VALUES ('never saved')")
        raise LookupError("after an insert")

    with pytest.raises(LookupError):
        await fail()
    assert saved(app) == ["ann: one"]

    @api.aiter_with_fastapi_depends
    async def stream(*, db: DbDep) -> AsyncIterator[str]:
        for text in notes(db):
            yield text

    assert [text async for text in stream()] == ["ann: one"]

    async def greeting(*, greeting: GreetingDep) -> str:
        return greeting

    @api.with_fastapi_lifecycle
    async def greet() -> str:
        return str(await api.with_fastapi_depends(greeting)())

    assert await greet() == "hello"
    assert app.events == ["startup", "shutdown"]

    async with api.FastApiDepsStack(app=app.app) as stack:
        db = await stack.resolve(DbDep)
        db.execute("INSERT INTO notes VALUES ('from a stack')")
        assert await stack.resolve(GreetingDep) == "hello"
    assert saved(app) == ["ann: one", "from a stack"]

    async def needs(*, db: DbDep, user: UserDep) -> None: ...

    async with api.resolve_fastapi_depends(needs, scope={"headers": {"x-user": "bob"}}) as kwargs:
        assert sorted(kwargs) == ["db", "user"]
        assert kwargs["user"] == "bob"

    with pytest.raises(RuntimeError, match="list_notes"):
        api.check_routes_and_dependencies_are_async(app.app)

    api.reset_config()
    assert api.get_app() is None
    assert not api.is_configured()


@pytest.mark.parametrize("module", ASYNC_MODULES)
def test_runnify_needs_the_asyncer_extra(module: str, app: App) -> None:
    api = importlib.import_module(module)

    async def report(*, db: DbDep, greeting: GreetingDep) -> str:
        db.execute("INSERT INTO notes VALUES ('from a script')")
        return greeting

    if not HAS_ASYNCER:
        with pytest.raises(ImportError, match=MISSING_ASYNCER.replace("[", r"\[")):
            api.runnify_with_fastapi_depends(report, app=app.app)
        return
    assert api.runnify_with_fastapi_depends(report, app=app.app)() == "hello"
    assert app.events == ["startup", "shutdown"]
    assert saved(app) == ["from a script"]


# --- The sync API ---------------------------------------------------------------------

SYNC_MODULES = (["fda_sync"] if HAS_SYNC else []) + (
    ["fastapi_depends_anywhere.sync"] if HAS_META else []
)


#: Each queue's hook, where this shape has it: (module, its queue, the command it names).
HOOKS = [
    *(
        (f"{module}.{queue}", queue, f'pip install "fda-sync[{queue}]"')
        for module in SYNC_MODULES
        for queue in ("celery", "dramatiq", "rq")
    ),
    *((f"{module}.taskiq", "taskiq", 'pip install "fda-core[taskiq]"') for module in ASYNC_MODULES),
]


@pytest.mark.parametrize(("module", "queue", "command"), HOOKS)
def test_each_queue_hook_needs_its_extra(module: str, queue: str, command: str) -> None:
    if queue == "celery" and HAS_CELERY:  # the meta-package's `all` extra brings it
        assert callable(importlib.import_module(module).lifespan_per_worker_process)
        return
    assert importlib.util.find_spec(queue) is None  # no shape installs another queue
    with pytest.raises(ImportError, match=re.escape(command)):
        importlib.import_module(module)


@pytest.mark.skipif(not HAS_SYNC, reason="this shape has no sync API (checked above)")
@pytest.mark.parametrize("module", SYNC_MODULES)
def test_the_sync_api_works(module: str, app: App) -> None:
    api = importlib.import_module(module)
    runners = importlib.import_module(f"{module}.runners")
    top = importlib.import_module("fda_core" if module == "fda_sync" else module.split(".")[0])
    top.configure(app=app.app)

    @api.with_fastapi_depends
    def add(text: str, *, db: DbDep, user: UserDep) -> int:
        db.execute("INSERT INTO notes VALUES (?)", (f"{user}: {text}",))
        return len(notes(db))

    @api.with_fastapi_depends
    async def add_async(text: str, *, db: DbDep) -> int:
        db.execute("INSERT INTO notes VALUES (?)", (text,))
        return len(notes(db))

    assert add("one", _scope={"headers": {"x-user": "ann"}}) == 1
    assert add_async("two") == 2

    @api.iter_with_fastapi_depends
    def stream(*, db: DbDep) -> Iterator[str]:
        yield from notes(db)

    assert list(stream()) == ["ann: one", "two"]

    @api.with_fastapi_lifecycle
    def in_lifespan() -> list[str]:
        return list(app.events)

    assert in_lifespan() == ["startup"]

    @runners.runnify_with_fastapi_depends
    def script(*, db: DbDep, greeting: GreetingDep) -> str:
        db.execute("INSERT INTO notes VALUES ('from a script')")
        return greeting

    assert script() == "hello"
    assert api.runnify_with_fastapi_depends is runners.runnify_with_fastapi_depends
    assert app.events == ["startup", "shutdown", "startup", "shutdown"]

    with api.FastApiDepsStack(app=app.app) as stack:
        db = stack.resolve(DbDep)
        db.execute("INSERT INTO notes VALUES ('from a stack')")
        assert stack.resolve(GreetingDep) == "hello"

    def needs(*, db: DbDep, user: UserDep) -> None: ...

    with api.resolve_fastapi_depends(needs, scope={"headers": {"x-user": "bob"}}) as kwargs:
        assert kwargs["user"] == "bob"

    assert saved(app) == ["ann: one", "two", "from a script", "from a stack"]


# --- The documented API of the meta-package -------------------------------------------


@pytest.mark.skipif(not HAS_META, reason="this shape has no meta-package (checked above)")
@pytest.mark.parametrize("module", list(SPEC_API))
def test_every_name_of_the_spec_is_where_the_spec_says(module: str) -> None:
    imported = importlib.import_module(module)
    for name in SPEC_API[module]:
        assert callable(getattr(imported, name)), name
        assert name in imported.__all__


# --- The README's first example, with the import name of this shape --------------------

#: The module the README's install table says to import the async API from, per shape.
README_IMPORT = {
    "core": "fda_core",
    "sync": "fda_core",
    "meta": "fastapi_depends_anywhere",
    "meta-asyncer": "fastapi_depends_anywhere",
    "meta-all": "fastapi_depends_anywhere",
}


def test_the_readmes_first_example_runs_with_this_shapes_import_name(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    first = re.search(r"```python\n(?P<code>.*?)```.*?```text\n(?P<output>.*?)```", readme, re.S)
    assert first is not None
    module = README_IMPORT[SHAPE]
    assert f"from {module} import" in readme, "the README names this shape's import"
    script = tmp_path / "example.py"
    script.write_text(first["code"].replace("fastapi_depends_anywhere", module))
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, check=False
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == first["output"]


# --- The pytest plugins: each shape's fixtures, and no others ----------------------------

#: The pytest11 entry points each shape registers: fda-core's plugin in every shape,
#: fda-sync's where fda-sync is installed; the meta-package brings both as dependencies.
PLUGINS = {"fda_core": "fda_core.pytest_plugin"} | (
    {"fda_sync": "fda_sync.pytest_plugin"} if HAS_SYNC else {}
)
SYNC_FIXTURES = ["fda_sync_stack", "fda_process_lifespan"]

PLUGIN_APP = """
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
    yield "real db"
    log("db close")


async def get_greeting(request: Request) -> str:
    return request.state.greeting


DbDep = Annotated[str, Depends(get_db)]
GreetingDep = Annotated[str, Depends(get_greeting)]
"""

PLUGIN_TESTS = """
import pytest

from fda_core import with_fastapi_depends
from myapp import DbDep, GreetingDep, app, get_db


@with_fastapi_depends(app=app)
async def which_db(*, db: DbDep) -> str:
    return db


async def test_the_async_fixtures(fda_stack, fda_override):
    assert await fda_stack.resolve(GreetingDep) == "hello"
    fda_override[get_db] = lambda: "fake db"
    assert await which_db() == "fake db"


def test_the_sync_stack(fda_sync_stack):
    assert fda_sync_stack.resolve(DbDep) == "real db"


def test_the_process_lifespan(fda_process_lifespan, fda_app):
    assert fda_process_lifespan is fda_app
"""


def test_the_shapes_pytest_plugins_are_registered() -> None:
    ours = {
        entry.name: entry.value
        for entry in importlib.metadata.entry_points(group="pytest11")
        if entry.value.split(".")[0] in set(MODULES.values())
    }
    assert ours == PLUGINS
    for value in PLUGINS.values():
        assert importlib.import_module(value).__file__ is not None


def test_the_shapes_fixtures_in_a_pytest_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fda-core alone has the async fixtures and no sync ones (and no ImportError for want
    of fda-sync); a shape with fda-sync has both."""
    events = pytester.path / "events.log"
    monkeypatch.setenv("FDA_EVENTS", str(events))
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = session\n"
        "asyncio_default_test_loop_scope = session\n"
        "fda_app = myapp:app\n"
    )
    pytester.makepyfile(myapp=PLUGIN_APP, test_fixtures=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    text = "\n".join(result.outlines + result.errlines)
    assert "ImportError" not in text
    assert "ModuleNotFoundError" not in text
    if HAS_SYNC:
        result.assert_outcomes(passed=3)
        # The async stack's lifespan on the tests' loop, and the one on the sync API's loop
        # that the sync stack (its db) and the process lifespan share.
        lines = events.read_text().splitlines()
        assert sorted(lines) == sorted(["startup", "shutdown"] * 2 + ["db open", "db close"])
        return
    result.assert_outcomes(passed=1, errors=2)
    for fixture in SYNC_FIXTURES:
        assert f"fixture '{fixture}' not found" in text
    assert events.read_text().splitlines() == ["startup", "shutdown"]
