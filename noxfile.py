"""Test matrix and checks: `nox` runs the default set (what CI runs), `nox -l` lists them."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_existing_virtualenvs = False
# The default set is what CI runs (.ci/run runs `python -m nox`); README.md's Develop section
# gives what it costs, measured.
nox.options.sessions = ["lint", "typing", "lock", "tests", "release", "lowest", "docs", "demo"]

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
    runs: str  # "whole", "python" or "fastapi": which tests (SELECT)

    @property
    def name(self) -> str:
        release = "-newest" if self.fastapi == "locked" else ".".join(self.fastapi.split(".")[:2])
        pydantic = "-pydantic1" if "pydantic<2" in self.extra else ""
        return f"py{self.python}-fastapi{release}{pydantic}"

    @property
    def description(self) -> str:
        """What ``nox -l`` says of the cell: what it runs, on what."""
        suite = {
            "whole": "The whole suite",
            "python": "The suite without its `workers` and `programs` tests",
            "fastapi": "The suite without its `process` tests",
        }[self.runs]
        fastapi = (
            "the newest FastAPI (uv.lock)"
            if self.fastapi == "locked"
            else f"FastAPI {self.fastapi}"
        )
        pydantic = "pydantic 1" if "pydantic<2" in self.extra else "pydantic 2"
        others = [e for e in self.extra if not e.startswith("pydantic")]
        also = f", {', '.join(others)}" if others else ""
        return f"{suite} on {fastapi}, Python {self.python}, {pydantic}{also}."


#: Which tests a cell runs. The tests marked `process` (forks, signals, exit, threads by the
#: dozen, subprocesses) test what changes with Python rather than with FastAPI's release:
#: they run on one cell of each Python ("python"). Those also marked `workers` (real Celery,
#: Dramatiq, RQ, taskiq workers, gunicorn and uvicorn) or `programs` (the docs pages, the
#: README's blocks, the example's CLI, Alembic and pytest sessions run as programs) test
#: the integration with other programs, and take most of a cell's time: they run on the
#: newest cell ("whole") and on the lowest bounds of every dependency (`lowest`).
SELECT: dict[str, tuple[str, ...]] = {
    "whole": (),
    "python": ("-m", "not workers and not programs"),
    "fastapi": ("-m", "not process"),
}

# One cell per epoch of FastAPI's dependency internals (see docs/support.md), each
# Python at least once, and what each runs (SELECT).
MATRIX = [
    Cell("3.10", "0.100.1", ("pydantic<2", "httpx<0.28"), "fastapi"),
    Cell("3.10", "0.112.4", ("pydantic<2",), "fastapi"),
    Cell("3.11", "0.120.4", (), "python"),
    Cell("3.12", "0.122.1", (), "python"),
    Cell("3.13", "0.139.2", (), "fastapi"),
    Cell("3.10", "0.162.5", (), "python"),
    Cell("3.13", "locked", (), "whole"),
]


#: pytest-xdist, a worker per core: most tests wait on processes and threads they start,
#: so one pytest process leaves a core idle. ``nox -s tests -- -n 0`` runs in one process.
#: loadscope: the tests of a module (of a class) run on one worker, in order, so that a
#: module's costly fixtures (the request-context deployment, the plugin's session stack)
#: start once. Not loadgroup: under pytest 9.2, pytest-xdist 3.8's `xdist_group` groups
#: nothing (it renames node ids, which pytest no longer lets it do).
PARALLEL = ("--numprocesses=auto", "--dist=loadscope")


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
    session.run("pytest", *PARALLEL, *SELECT[cell.runs], *session.posargs)


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


# --- The one version ------------------------------------------------------------------

#: In each member's pyproject.toml: its version, and its exact pins on its siblings.
VERSION_LINE = re.compile(r'^version = "(?P<version>[^"]*)"$', re.MULTILINE)
SIBLING_PIN = re.compile(
    r'"(?P<name>fda-core|fda-sync)(?P<extras>\[[\w,-]+\])?==(?P<version>[^"]*)"'
)


@nox.session(python=False)
def version(session: nox.Session) -> None:
    """Print the version of the three distributions, or set it: nox -s version -- 2.1.0.

    One command writes it everywhere it lives: the version of each pyproject.toml and the
    exact pins between them (uv_build reads no dynamic version, and `uv version` sets one
    member's and no pin), then relocks. tests/test_public_api.py fails if they disagree."""
    files = [ROOT / "packages" / name / "pyproject.toml" for name in PACKAGES]
    if not session.posargs:
        found = [
            (f"{path.parent.name}: {match[0]}", match["version"])
            for path in files
            for pattern in (VERSION_LINE, SIBLING_PIN)
            for match in pattern.finditer(path.read_text())
        ]
        if len({version for _, version in found}) != 1:
            lines = "\n  ".join(line for line, _ in found)
            session.error(f"the pyproject.toml files disagree:\n  {lines}")
        session.log(f"version {_workspace_version()}")
        return
    (new,) = session.posargs
    if not re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", new):
        session.error(f"{new!r} is not a release version (like 2.1.0, 2.1.0rc1)")
    for path in files:
        text = path.read_text()
        text, count = VERSION_LINE.subn(f'version = "{new}"', text)
        assert count == 1, f"{path}: {count} version lines"
        text = SIBLING_PIN.sub(lambda m: f'"{m["name"]}{m["extras"] or ""}=={new}"', text)
        path.write_text(text)
    session.run("uv", "lock", external=True)
    session.log(f"version {new}: {', '.join(PACKAGES)} and their pins; uv.lock updated")


# --- The release artifacts, and the install shapes tested from them ----------------------

#: shape -> (what a user installs, the distribution whose locked dependencies come with it,
#: its extras). tests/wheels/test_shapes.py holds what must (not) be importable in each.
SHAPES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "core": ("fda-core", "fda-core", ()),
    "sync": ("fda-sync", "fda-sync", ()),
    "meta": ("fastapi-depends-anywhere", "fastapi-depends-anywhere", ()),
    "meta-asyncer": ("fastapi-depends-anywhere[asyncer]", "fastapi-depends-anywhere", ("asyncer",)),
    # A 1.x requirement naming 1.x's extras.
    "meta-all": (
        "fastapi-depends-anywhere[all,build]",
        "fastapi-depends-anywhere",
        ("all", "build"),
    ),
}
#: The README's install commands, each run as written with pip itself in a fresh venv: from
#: a clone ("source"), and from the wheels of `uv build` ("readme-wheels"). Both install
#: what meta-asyncer does.
README_SHAPES = {"source": "pip install ./packages/", "readme-wheels": "pip install --find-links"}
#: The shapes a 1.x code base (tests/compat) runs in too: with asyncer, as 1.x's runnify needed.
V1_SHAPES = {"meta-asyncer", "meta-all", *README_SHAPES}
ALL_SHAPES = [*SHAPES, *README_SHAPES]
#: What `release` installs: meta-asyncer is what the README's wheel command installs.
RELEASE_SHAPES = [shape for shape in ALL_SHAPES if shape != "meta-asyncer"]
WHEELS_PYTHON = "3.13"
ARTIFACTS = (".tar.gz", ".whl")  # sdists, wheels


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


def _build(session: nox.Session, tmp: Path) -> Path:
    """The sdist and the wheel of each distribution, each from the source tree, in one
    folder (the wheels are compared with those the sdists build in `release`)."""
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)  # never test yesterday's artifacts
    for kind in ("--sdist", "--wheel"):
        session.run("uv", "build", "--all-packages", kind, f"--out-dir={dist}", external=True)
    built = sorted(path.name for path in dist.iterdir() if path.name.endswith(ARTIFACTS))
    session.log(f"built: {built}")
    if len(built) != 2 * len(PACKAGES):
        session.error(f"expected an sdist and a wheel of each of {list(PACKAGES)}: {built}")
    return dist


@nox.session(python=False)
def wheels(session: nox.Session) -> None:
    """Each install shape in a fresh venv, from freshly built wheels only, runs its tests.

    `nox -s wheels -- core` tests one shape (ALL_SHAPES names them). `release`, in the
    default set, does this too, after checking the artifacts."""
    tmp = Path(session.create_tmp()).resolve()
    _install_shapes(session, tmp, _build(session, tmp), session.posargs or ALL_SHAPES)


@nox.session(python=WHEELS_PYTHON)
def release(session: nox.Session) -> None:
    """The six release artifacts: built, checked, and installed in every install shape.

    Built once (`uv build`: an sdist and a wheel per distribution); `twine check --strict`;
    a wheel built again from each unpacked sdist must be the same, file for file, and the
    metadata PyPI shows complete (tests/wheels/test_artifacts.py); then every install shape
    from them, as `wheels` does, the README's commands and `uv add` of a clone's path."""
    tmp = Path(session.create_tmp()).resolve()
    dist = _build(session, tmp)
    session.install("-r", str(_export(session, tmp / "release.txt", "--only-group", "release")))
    artifacts = sorted(str(path) for path in dist.iterdir() if path.name.endswith(ARTIFACTS))
    session.run("twine", "check", "--strict", *artifacts)
    from_sdist = tmp / "from-sdist"
    shutil.rmtree(from_sdist, ignore_errors=True)
    for sdist in sorted(dist.glob("*.tar.gz")):
        with tarfile.open(sdist) as archive:
            archive.extractall(from_sdist / "src", filter="data")
        unpacked = from_sdist / "src" / sdist.name.removesuffix(".tar.gz")
        session.run(
            "uv", "build", "--wheel", f"--out-dir={from_sdist}", str(unpacked), external=True
        )
    checks = {"FDA_DIST": str(dist), "FDA_FROM_SDIST": str(from_sdist)}
    _install_shapes(session, tmp, dist, session.posargs or RELEASE_SHAPES, checks)
    _uv_add_from_a_clone(session)


def _install_shapes(
    session: nox.Session,
    tmp: Path,
    dist: Path,
    shapes: list[str],
    artifacts: dict[str, str] | None = None,
) -> None:
    """Each shape in a fresh venv: the locked third-party packages, then the project from
    ``dist`` alone (or as the README says), then its tests: tests/wheels, tests/compat
    where a 1.x code base runs, and the artifacts' checks (``artifacts``) in the last."""
    version = _workspace_version()
    runner = _export(session, tmp / "runner.txt", "--only-group", "wheels")
    for shape in shapes:
        session.log(f"--- shape {shape}")
        venv = tmp / f"venv-{shape}"
        shutil.rmtree(venv, ignore_errors=True)
        if shape in README_SHAPES:
            _readme_install(session, tmp, venv, runner, dist, README_SHAPES[shape])
        else:
            _wheel_install(session, tmp, venv, runner, dist, shape)
        tests = ["tests/wheels", *(["tests/compat"] if shape in V1_SHAPES else [])]
        env = {"FDA_WHEEL_SHAPE": "meta-asyncer" if shape in README_SHAPES else shape}
        if artifacts and shape == shapes[-1]:
            env.update(artifacts)
        session.run(
            str(venv / "bin" / "pytest"),
            *tests,
            "-p",
            "no:cacheprovider",
            env={**env, "FDA_WHEEL_VERSION": version},
            external=True,
        )


def _wheel_install(
    session: nox.Session, tmp: Path, venv: Path, runner: Path, dist: Path, shape: str
) -> None:
    """The shape's requirement, from the built wheels alone."""
    requirement, distribution, extras = SHAPES[shape]
    session.log(f"pip install {requirement!r}")
    session.run("uv", "venv", "--quiet", f"--python={WHEELS_PYTHON}", str(venv), external=True)
    python = str(venv / "bin" / "python")
    selection = [f"--extra={extra}" for extra in extras]
    deps = _export(session, tmp / f"deps-{shape}.txt", "--package", distribution, *selection)
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


def _readme_install(
    session: nox.Session, tmp: Path, venv: Path, runner: Path, dist: Path, prefix: str
) -> None:
    """The README's install command starting with ``prefix``, run with pip itself in a
    fresh venv: from the repository's root (its ``./packages/``), or from the folder where
    `uv build` wrote ``dist``."""
    command = _readme_command(prefix)
    session.log(command)
    session.run(
        "uv", "venv", "--quiet", "--seed", f"--python={WHEELS_PYTHON}", str(venv), external=True
    )
    python = str(venv / "bin" / "python")
    # Third-party packages first, at their locked versions (quick, with uv); pip then
    # resolves the project's exact pins on itself, and builds or finds it.
    deps = _export(
        session, tmp / "deps-readme.txt", "--package", "fastapi-depends-anywhere", "--extra=asyncer"
    )
    pip = ("uv", "pip", "install", "--quiet", f"--python={python}")
    session.run(*pip, "-r", str(deps), "-r", str(runner), external=True)
    with session.chdir(ROOT if prefix.startswith("pip install ./") else dist.parent):
        session.run(python, "-m", *shlex.split(command), "--quiet", external=True)
    session.run(python, "-m", "pip", "check", external=True)


def _readme_command(prefix: str) -> str:
    """The README's one line starting with ``prefix`` (one, or the README changed)."""
    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith(prefix)
    ]
    if len(lines) != 1:
        raise RuntimeError(f"expected one {prefix!r} line in README.md: {lines}")
    return lines[0]


def _uv_add_from_a_clone(session: nox.Session) -> None:
    """The README's ``uv add ../fastapi-depends-anywhere/...`` in a new project next to a
    clone (outside this repository: uv would take the project for a workspace member)."""
    command = _readme_command('uv add "../fastapi-depends-anywhere/')
    check = (
        "import importlib.metadata as m, fastapi_depends_anywhere.core, asyncer; "
        "print({d: m.version(d) for d in ('fda-core', 'fda-sync', 'fastapi-depends-anywhere')})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fastapi-depends-anywhere").symlink_to(ROOT)
        project = Path(tmp) / "app"
        project.mkdir()
        with session.chdir(project):
            session.run("uv", "init", "--quiet", "--bare", "--name=app", external=True)
            session.run(
                *shlex.split(command), "--quiet", f"--python={WHEELS_PYTHON}", external=True
            )
            versions = session.run(
                "uv", "run", "--no-sync", "python", "-c", check, silent=True, external=True
            )
    expected = dict.fromkeys(PACKAGES, _workspace_version())
    if str(versions).strip() != str(expected):
        session.error(f"`{command}` installed {versions!r}, expected {expected}")


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
