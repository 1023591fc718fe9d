"""Every code block of the README runs as pasted, and prints what the README shows.

Each ```` ```python ```` block is saved as a file of its own and run in a fresh interpreter,
in an empty folder: a reader pastes one block, not the page. A ```` ```text ```` block that
comes next (before any other block) is that file's output, exactly. ``bash`` blocks are
commands, run elsewhere: the demo by tests/test_demo.py, the tests by CI (.ci/run), the
installs by ``nox -s release`` and ``nox -s demo``.

A block runs with what the README's install brings (``pip install
fastapi-depends-anywhere``) and what its own comments tell to install
(``# pip install "fastapi[standard]"``), nothing more: the test suite's environment has
httpx, Celery and Django, a reader's does not, so every other installed distribution's
modules are refused to it (tests/only_installed.py).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docs_runner import Block, blocks
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TESTS = Path(__file__).resolve().parent
README = TESTS.parent / "README.md"
#: The install the README gives first, which its examples are written for.
INSTALL = "fastapi-depends-anywhere"
PIP_INSTALL = re.compile(r"#.*\bpip install (?P<requirements>[^#\n]+)")
BLOCKS = blocks(README)
EXAMPLES = [
    (block, following.body if following and following.lang == "text" else None)
    for block, following in zip(BLOCKS, [*BLOCKS[1:], None], strict=True)
    if block.lang == "python"
]


class UnknownExtra(Exception):
    """A requirement names an extra the installed release does not have."""


def installed_by(*requirements: str) -> set[str]:
    """The distributions ``pip install REQUIREMENTS`` brings (as installed here)."""
    found: set[str] = set()
    todo = [Requirement(requirement) for requirement in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            metadata = importlib.metadata.metadata(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not for this platform or Python: not installed here either
        provided = {canonicalize_name(e) for e in metadata.get_all("Provides-Extra") or []}
        if unknown := {canonicalize_name(e) for e in requirement.extras} - provided:
            raise UnknownExtra(f"{name} {metadata['Version']} has no extra {unknown}")
        if name in found and not requirement.extras:
            continue
        found.add(name)
        extras = {"", *requirement.extras}
        for need in map(Requirement, metadata.get_all("Requires-Dist") or []):
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in extras):
                todo.append(need)
    return found


def refused_modules(code: str) -> set[str]:
    """Top-level modules of the distributions installed here that a reader of ``code``
    would not have: neither the README's install nor ``pip install``s its comments name.

    Nothing is refused where an install it names is an extra of a later release than the
    one installed (``fastapi[standard]`` with FastAPI 0.100, in the ``lowest`` session):
    what that extra brings cannot be read here."""
    named = [
        word.strip("\"'")
        for match in PIP_INSTALL.finditer(code)
        for word in match["requirements"].split()
    ]
    try:
        allowed = installed_by(INSTALL, *named)
    except UnknownExtra:
        return set()
    return {
        module
        for distribution in importlib.metadata.distributions()
        if canonicalize_name(distribution.metadata["Name"]) not in allowed
        for module in top_level_modules(distribution)
    } - {
        module
        for distribution in importlib.metadata.distributions()
        if canonicalize_name(distribution.metadata["Name"]) in allowed
        for module in top_level_modules(distribution)
    }


def top_level_modules(distribution: importlib.metadata.Distribution) -> set[str]:
    """The top-level modules a distribution installs, read from its file list (Python
    3.10's ``packages_distributions()`` reads only ``top_level.txt``, which most wheels
    built today lack)."""
    names = set()
    for file in distribution.files or []:
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in {"..", "__pycache__"}:
            continue
        if len(file.parts) > 1:
            names.add(top)
        elif file.suffix in {".py", ".so", ".pyd"}:
            names.add(file.name.split(".")[0])
    return names


def run_as_installed(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``code`` saved as a file and run with only what its reader would have installed."""
    script = folder / "example.py"
    script.write_text(code)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [
            sys.executable,
            str(TESTS / "only_installed.py"),
            ",".join(sorted(refused_modules(code))),
            str(script),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_readme_gives_the_install_its_examples_are_run_with() -> None:
    # From a clone today (./packages/fastapi-depends-anywhere[asyncer]), from PyPI later.
    installs = re.findall(r"^pip install .*$", README.read_text(), re.MULTILINE)
    assert any(f"packages/{INSTALL}" in line for line in installs), installs
    assert any(f'"{INSTALL}>=2"' in line for line in installs), installs
    assert {"fastapi", "fastapi-depends-anywhere", "fda-core"} <= installed_by(INSTALL)
    assert "httpx" not in installed_by(INSTALL)
    assert "httpx" in refused_modules("import httpx")
    assert "httpx" not in refused_modules("import httpx  # pip install httpx")
    assert "fastapi" not in refused_modules("import fastapi")
    assert "django" in refused_modules("import httpx  # pip install httpx")


@pytest.mark.programs
def test_a_block_cannot_use_what_the_install_does_not_bring(tmp_path: Path) -> None:
    unsaid = run_as_installed("import httpx\n", tmp_path)
    assert unsaid.returncode == 1
    assert "ModuleNotFoundError: No module named 'httpx'" in unsaid.stderr
    said = run_as_installed("import httpx  # pip install httpx\nprint('ok')\n", tmp_path)
    assert (said.returncode, said.stdout) == (0, "ok\n")


def test_the_readme_shows_runnable_examples_and_their_output() -> None:
    assert len(EXAMPLES) >= 2
    assert EXAMPLES[0][1], "the first example shows its output"
    assert {block.lang for block in BLOCKS} <= {"python", "bash", "text"}


@pytest.mark.programs
@pytest.mark.parametrize(("block", "output"), EXAMPLES, ids=[f"line{b.line}" for b, _ in EXAMPLES])
def test_the_block_runs_as_a_file(block: Block, output: str | None, tmp_path: Path) -> None:
    run = run_as_installed(block.body, tmp_path)
    assert run.returncode == 0, run.stderr
    if output is not None:
        assert run.stdout == output
