"""Test matrix and checks: `nox` runs the default set (what CI runs), `nox -l` lists them."""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "typing", "lock", "tests"]

# Interpreters are never downloaded: use the ones installed with pyenv, if any.
for _bin in sorted(glob.glob("/root/.pyenv/versions/3.1[0-9].*/bin"), reverse=True):
    os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ['PATH']}"
os.environ["UV_PYTHON_DOWNLOADS"] = "never"

# One cell per epoch of FastAPI's dependency internals (see docs/support.md), each
# Python at least once. "locked" is the newest FastAPI, as pinned in uv.lock.
MATRIX = [
    nox.param("3.10", "0.100.1", ("pydantic<2", "httpx<0.28"), id="py3.10-fastapi0.100-pydantic1"),
    nox.param("3.10", "0.112.4", ("pydantic<2",), id="py3.10-fastapi0.112-pydantic1"),
    nox.param("3.11", "0.120.4", (), id="py3.11-fastapi0.120"),
    nox.param("3.12", "0.122.1", (), id="py3.12-fastapi0.122"),
    nox.param("3.13", "0.139.2", (), id="py3.13-fastapi0.139"),
    nox.param("3.10", "0.162.5", (), id="py3.10-fastapi0.162"),
    nox.param("3.13", "locked", (), id="py3.13-fastapi-newest"),
]


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


@nox.session
@nox.parametrize(("python", "fastapi", "extra"), MATRIX)
def tests(session: nox.Session, fastapi: str, extra: tuple[str, ...]) -> None:
    """The test suite on one FastAPI x Python x pydantic cell."""
    _sync(session, "test")
    if fastapi != "locked":
        session.install(f"fastapi=={fastapi}", *extra)
    session.run(
        "python",
        "-c",
        "import fastapi, pydantic, sys; "
        "print('fastapi', fastapi.__version__, 'pydantic', pydantic.VERSION, sys.version)",
    )
    session.run("pytest", *session.posargs)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    _sync(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typing(session: nox.Session) -> None:
    """mypy --strict on the three packages."""
    _sync(session, "typing")
    session.run("mypy")


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """uv.lock matches pyproject.toml (never rewritten here)."""
    session.run("uv", "lock", "--check")
