"""Test matrix and checks: `nox` runs the default set (what CI runs), `nox -l` lists them."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_existing_virtualenvs = False
# The default set is what CI runs (.ci/run runs `python -m nox`); README.md's Develop section
# gives what it costs, measured.
nox.options.sessions = ["lint", "typing", "lock", "tests", "wheels", "lowest", "docs", "demo"]

# Interpreters are never downloaded: use the ones installed with pyenv, if any.
for _bin in sorted(glob.glob("/root/.pyenv/versions/3.1[0-9].*/bin"), reverse=True):
    os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ['PATH']}"
os.environ["UV_PYTHON_DOWNLOADS"] = "never"

ROOT = Path(__file__).parent
#: Import name of each distribution, in dependency order.
PACKAGES = {
    "fda-core": "fda_core",
    "fda-sync": "fda_sync",
    "fastapi-depends-anywhere": "fastapi_depends_anywhere",
}


class Cell(NamedTuple):
    """One cell of the test matrix: a session of its own, ``tests(<name>)``."""

    python: str
    fastapi: str  # a release, or "locked": the newest, as pinned in uv.lock
    extra: tuple[str, ...]  # what else to install with it (pydantic 1, an older httpx)
    whole: bool  # the whole suite, or all but the tests marked `process`

    @property
    def name(self) -> str:
        release = "-newest" if self.fastapi == "locked" else ".".join(self.fastapi.split(".")[:2])
        pydantic = "-pydantic1" if "pydantic<2" in self.extra else ""
        return f"py{self.python}-fastapi{release}{pydantic}"

    @property
    def description(self) -> str:
        """What ``nox -l`` says of the cell: what it runs, on what."""
        suite = "The whole suite" if self.whole else "The suite without its `process` tests"
        fastapi = (
            "the newest FastAPI (uv.lock)"
            if self.fastapi == "locked"
            else f"FastAPI {self.fastapi}"
        )
        pydantic = "pydantic 1" if "pydantic<2" in self.extra else "pydantic 2"
        others = [e for e in self.extra if not e.startswith("pydantic")]
        also = f", {', '.join(others)}" if others else ""
        return f"{suite} on {fastapi}, Python {self.python}, {pydantic}{also}."


# One cell per epoch of FastAPI's dependency internals (see docs/support.md), each
# Python at least once. A cell runs the whole suite or leaves out the tests marked
# `process` (forks, signals, exit, worker pools, real subprocesses, the docs pages): what
# they test changes with Python, not with FastAPI's release, so they run on one cell of
# each Python (and on `lowest`). Measured on 2 idle cores: 86 tests, 2 of a cell's 2.5 minutes.
MATRIX = [
    Cell("3.10", "0.100.1", ("pydantic<2", "httpx<0.28"), False),
    Cell("3.10", "0.112.4", ("pydantic<2",), False),
    Cell("3.11", "0.120.4", (), True),
    Cell("3.12", "0.122.1", (), True),
    Cell("3.13", "0.139.2", (), False),
    Cell("3.10", "0.162.5", (), True),
    Cell("3.13", "locked", (), True),
]


#: pytest-xdist, a worker per core: most tests wait on processes and threads they start,
#: so one pytest process leaves a core idle. ``nox -s tests -- -n 0`` runs in one process.
#: loadgroup: the docs pages, which share one fixture, go to one worker (xdist_group).
PARALLEL = ("--numprocesses=auto", "--dist=loadgroup")


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked workspace (all members, all extras) plus tool groups."""
    args = ["uv", "sync", "--locked", "--all-packages", "--all-extras", "--no-default-groups"]
    for group in groups:
        args += ["--group", group]
    session.run_install(
        *args,
        f"--python={session.virtualenv.location}",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


def _ensure_redis_server(session: nox.Session) -> None:
    """Install Debian's redis-server if it is missing, for the Celery tests.

    They run a real one, so that `python -m nox` alone works on a fresh Debian or Ubuntu
    machine."""
    if shutil.which("redis-server"):
        return
    if not (shutil.which("apt-get") and os.geteuid() == 0):
        session.error(
            "The Celery tests need redis-server on PATH: install it "
            "(Debian/Ubuntu: `apt-get install redis-server`), then run nox again."
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "redis-server", external=True, env=env)


def _tests(session: nox.Session, cell: Cell) -> None:
    _ensure_redis_server(session)
    _sync(session, "test")
    if cell.fastapi != "locked":
        session.install(f"fastapi=={cell.fastapi}", *cell.extra)
    session.run(
        "python",
        "-c",
        "import fastapi, pydantic, sys; "
        "print('fastapi', fastapi.__version__, 'pydantic', pydantic.VERSION, sys.version)",
    )
    # `nox -s tests -- -m "process or not process"` runs the whole suite on every cell.
    select = () if cell.whole else ("-m", "not process")
    session.run("pytest", *PARALLEL, *select, *session.posargs)


def _cell_session(cell: Cell) -> None:
    """Register the session ``tests(<cell name>)``; its docstring is what ``nox -l`` shows."""

    def run(session: nox.Session) -> None:
        _tests(session, cell)

    run.__doc__ = cell.description
    nox.session(name=f"tests({cell.name})", python=cell.python, tags=["tests"])(run)


for _cell in MATRIX:
    _cell_session(_cell)


@nox.session(python=False, requires=[f"tests({cell.name})" for cell in MATRIX])
def tests(session: nox.Session) -> None:
    """The test suite on every cell of the matrix, each a session listed above."""
    session.log(f"{len(MATRIX)} cells run: {', '.join(cell.name for cell in MATRIX)}")


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    _sync(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typing(session: nox.Session) -> None:
    """mypy --strict and pyright strict on the packages and tests/typing; verifytypes at 100%."""
    _sync(session, "typing")
    session.run("mypy")
    session.run("pyright")
    for package in PACKAGES.values():
        # --ignoreexternal: FastAPI's and Starlette's own gaps are not this package's.
        report = session.run(
            "pyright",
            "--verifytypes",
            package,
            "--ignoreexternal",
            "--outputjson",
            silent=True,
            success_codes=[0, 1],
        )
        completeness = json.loads(str(report))["typeCompleteness"]
        score = completeness["completenessScore"]
        session.log(f"{package}: type completeness {score:.1%}")
        if score < 1:
            session.error(f"{package} is not fully typed:\n{_verifytypes_problems(completeness)}")


def _verifytypes_problems(completeness: dict[str, object]) -> str:
    symbols = completeness.get("symbols", [])
    assert isinstance(symbols, list)
    return "\n".join(
        f"  {symbol['name']}: {diagnostic['message']}"
        for symbol in symbols
        for diagnostic in symbol.get("diagnostics", [])
        if not symbol.get("isTypeKnown", True) or diagnostic.get("severity") == "error"
    )


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """uv.lock matches pyproject.toml (never rewritten here)."""
    session.run("uv", "lock", "--check")


# --- Install shapes, tested from the built wheels -------------------------------------

#: shape -> (what a user installs, the distribution whose locked dependencies come with it,
#: its extra). tests/wheels/test_shapes.py holds what must (not) be importable in each.
SHAPES = {
    "core": ("fda-core", "fda-core", None),
    "sync": ("fda-sync", "fda-sync", None),
    "meta": ("fastapi-depends-anywhere", "fastapi-depends-anywhere", None),
    "meta-asyncer": ("fastapi-depends-anywhere[asyncer]", "fastapi-depends-anywhere", "asyncer"),
}
WHEELS_PYTHON = "3.13"


def _workspace_version() -> str:
    """The one version of the three distributions (tests check they agree)."""
    for line in (ROOT / "packages/fda-core/pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no version in packages/fda-core/pyproject.toml")


def _export(session: nox.Session, target: Path, *selection: str) -> Path:
    """Locked third-party requirements (never the workspace's own packages) into a file."""
    session.run(
        "uv",
        "export",
        "--frozen",
        "--no-hashes",
        "--no-emit-workspace",
        "--no-default-groups",
        "--quiet",
        *selection,
        f"--output-file={target}",
        external=True,
    )
    return target


@nox.session(python=False)
def wheels(session: nox.Session) -> None:
    """Each install shape in a fresh venv, from the built wheels only, runs its tests.

    The wheels are built once; each shape's venv gets the locked third-party packages, then
    the project from the wheels alone (tests/wheels). The "source" shape installs the three
    package folders with plain pip, as the README says to from a clone."""
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)  # never test yesterday's wheels
    session.run("uv", "build", "--all-packages", f"--out-dir={dist}", external=True)
    built = sorted(path.name for path in dist.glob("*.whl"))
    session.log(f"built: {built}")
    if len(built) != len(PACKAGES):
        session.error(f"expected {len(PACKAGES)} wheels in {dist}, got {built}")
    version = _workspace_version()
    runner = _export(session, tmp / "runner.txt", "--only-group", "wheels")
    only = session.posargs or [*SHAPES, "source"]
    for shape in only:
        if shape == "source":
            _from_source(session, tmp, runner, version)
            continue
        requirement, distribution, extra = SHAPES[shape]
        session.log(f"--- shape {shape}: pip install {requirement!r}")
        venv = tmp / f"venv-{shape}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", f"--python={WHEELS_PYTHON}", str(venv), external=True)
        python = str(venv / "bin" / "python")
        extras = ["--extra", extra] if extra else []
        deps = _export(session, tmp / f"deps-{shape}.txt", "--package", distribution, *extras)
        # Third-party dependencies at their locked versions, then the project from the
        # built wheels alone: --no-index, so no registry can stand in for them.
        pip = ("uv", "pip", "install", "--quiet", f"--python={python}")
        session.run(*pip, "-r", str(deps), "-r", str(runner), external=True)
        session.run(
            *pip,
            "--no-index",
            f"--find-links={dist}",
            *(f"--reinstall-package={name}" for name in PACKAGES),
            requirement,
            external=True,
        )
        session.run("uv", "pip", "freeze", f"--python={python}", external=True)
        session.run("uv", "pip", "check", f"--python={python}", external=True)
        session.run(
            str(venv / "bin" / "pytest"),
            "tests/wheels",
            "-p",
            "no:cacheprovider",
            env={"FDA_WHEEL_SHAPE": shape, "FDA_WHEEL_VERSION": version},
            external=True,
        )


def _from_source(session: nox.Session, tmp: Path, runner: Path, version: str) -> None:
    """The README's from-source command, with pip itself, in a fresh venv: the three folders
    in one ``pip install`` (the exact pins between them name distributions no index has)."""
    command = _readme_source_install()
    session.log(f"--- shape source: {command}")
    venv = tmp / "venv-source"
    shutil.rmtree(venv, ignore_errors=True)
    session.run(
        "uv", "venv", "--quiet", "--seed", f"--python={WHEELS_PYTHON}", str(venv), external=True
    )
    python = str(venv / "bin" / "python")
    # Third-party packages first, at their locked versions (quick, with uv); pip then
    # resolves the three folders' exact pins on each other, and builds them.
    deps = _export(session, tmp / "deps-source.txt", "--package", "fastapi-depends-anywhere")
    session.run(
        "uv",
        "pip",
        "install",
        "--quiet",
        f"--python={python}",
        "-r",
        str(deps),
        "-r",
        str(runner),
        "asyncer",
        "hatchling",
        external=True,
    )
    session.run(python, "-m", *command.split(), "--quiet", external=True)
    session.run(python, "-m", "pip", "check", external=True)
    session.run(
        str(venv / "bin" / "pytest"),
        "tests/wheels",
        "-p",
        "no:cacheprovider",
        env={"FDA_WHEEL_SHAPE": "meta-asyncer", "FDA_WHEEL_VERSION": version},
        external=True,
    )


def _readme_source_install() -> str:
    """The README's ``pip install ./packages/...`` line (one, or the README changed)."""
    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("pip install ./packages/")
    ]
    if len(lines) != 1:
        raise RuntimeError(f"expected one 'pip install ./packages/...' line in README.md: {lines}")
    return lines[0].replace('"', "")


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """The README's demo command, as a fresh clone runs it, on a temporary database.

    Only the "demo" dependency group and the project are installed: never the developer
    tools. The command's output is checked by tests/test_demo.py."""
    python, *command = _readme_demo_command()
    assert python == "python", python
    tmp = Path(session.create_tmp()).resolve()
    env = {
        "UV_PROJECT_ENVIRONMENT": str(tmp / "venv"),
        "NOTES_DATABASE": str(tmp / "notes.sqlite3"),
    }
    (tmp / "notes.sqlite3").unlink(missing_ok=True)
    shutil.rmtree(tmp / "venv", ignore_errors=True)  # what a fresh clone would install
    # "python": the interpreter nox runs on (and uv was installed into), not a matrix one.
    session.run(sys.executable, *command, env=env, external=True)
    installed = session.run(
        "uv", "pip", "list", f"--python={tmp / 'venv'}", silent=True, external=True
    )
    for tool in ("pytest", "mypy", "pyright", "ruff", "django", "celery"):
        if f"\n{tool} " in f"\n{installed}".lower():
            session.error(f"the demo installed a developer tool: {tool}")


def _readme_demo_command() -> list[str]:
    """The README's demo line, without its ``python -m pip install uv &&`` prefix."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if " notes_service demo" in line and "uv run" in line:
            return line.split("&&", 1)[1].split()
    raise RuntimeError("no demo command in README.md")


@nox.session(python="3.10")
def lowest(session: nox.Session) -> None:
    """The test suite on the declared lower bounds of every dependency.

    uv's lowest-direct resolution, in a throwaway venv: uv.lock is never rewritten."""
    _ensure_redis_server(session)
    # FastAPI 0.100 predates the pydantic 2 releases it would meet otherwise (it fails on
    # pydantic-core APIs removed since); pair it with pydantic 1, as the matrix's floor cell.
    constraints = Path(session.create_tmp()) / "constraints.txt"
    constraints.write_text("pydantic<2\n")
    session.install(
        "--resolution=lowest-direct",
        f"--constraint={constraints}",
        *(f"--editable=packages/{name}" for name in PACKAGES if name != "fastapi-depends-anywhere"),
        "--editable=packages/fastapi-depends-anywhere[asyncer]",
        "--group=test",
    )
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m; print({d: m.version(d) for d in "
        "('fastapi', 'starlette', 'pydantic', 'asyncer', 'pytest', 'pytest-asyncio', 'httpx')})",
    )
    # At these floors, Celery results and old Starlette test clients left to the garbage
    # collector report unraisable warnings in whatever test runs next; every assertion
    # still holds, so here (only) those reports are not errors.
    session.run(
        "pytest",
        *PARALLEL,
        "-W",
        "ignore::pytest.PytestUnraisableExceptionWarning",
        *session.posargs,
    )


@nox.session(python="3.12")
def docs(session: nox.Session) -> None:
    """Build the docs site with mkdocs --strict (the examples run in the test suite)."""
    _sync(session, "docs")
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", f"--site-dir={site}")


#: What ``nox -s bench`` runs (``nox -s bench -- NAME...`` picks some): bench/bench_NAME.py.
#: ``celery`` (tasks/s of the example's worker) is not run by default.
BENCHES = ("peers", "resolution", "sync", "bridge", "override", "django", "memory", "breakdown")
#: The scripts whose tables docs/benchmarks.md shows, written there from the pinned run
#: when BENCH_PAGE names the page.
PAGE_BENCHES = ("peers", "django", "memory", "breakdown")
#: Run once, pinned: memory growth, and instruction counts (callgrind), move with neither.
ONCE = ("memory", "breakdown")


def _ensure_tool(session: nox.Session, tool: str, why: str) -> None:
    """Install Debian's package ``tool`` if it is missing (``why``: who needs it)."""
    if shutil.which(tool):
        return
    if not (shutil.which("apt-get") and os.geteuid() == 0):
        session.error(f"{why} needs {tool} on PATH (Debian/Ubuntu: apt-get install {tool})")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", tool, external=True, env=env)


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """Benchmarks, not part of the default run: what each path costs, against its peers.

    Per-call cost against FastAPI's resolver, a hand-built floor, fastapi-injectable,
    fast-depends and dishka (peers); the async API (resolution) and the sync API (sync) on
    their graphs; the bridge against a bare loop and anyio; what override() costs a call;
    a Django view on gunicorn against the same view wired by hand (django); memory over
    100,000 calls per path (memory); a sync call's cost part by part, in instructions
    (breakdown, under valgrind). Each script runs twice: as is, then with the process
    pinned to CPU 0 (no cross-CPU thread wake-ups, which a VM can make costly); memory
    and breakdown run once. ``nox -s bench -- sync`` runs one script;
    ``BENCH_PAGE=docs/benchmarks.md nox -s bench`` also writes the pinned run's tables
    into the benchmark page."""
    _sync(session, "test", "bench")
    page = os.environ.get("BENCH_PAGE")
    scripts = session.posargs or BENCHES
    if "django" in scripts:
        _ensure_tool(session, "wrk", "bench_django.py (its load generator)")
    if "breakdown" in scripts or "django" in scripts:
        _ensure_tool(session, "valgrind", "bench_breakdown.py (instruction counts)")
    runs = (("not pinned", ()), ("pinned to CPU 0 (--cpu 0)", ("--cpu", "0")))
    for script in scripts:
        for label, pin in runs[1:] if script in ONCE else runs:
            session.log(f"=== bench_{script}.py, {label} ===")
            write = ("--page", page) if page and script in PAGE_BENCHES and pin else ()
            session.run("python", f"bench/bench_{script}.py", *pin, *write)
