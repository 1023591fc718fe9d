"""The six release artifacts as PyPI and installers read them (run by ``nox -s release``).

``FDA_DIST``: the sdist and the wheel of each distribution, built from the source tree;
``FDA_FROM_SDIST``: the wheels built again from the unpacked sdists, as an installer does.
``twine check --strict`` runs in the session; this checks what it does not.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

DIST = Path(os.environ["FDA_DIST"])
FROM_SDIST = Path(os.environ["FDA_FROM_SDIST"])
VERSION = os.environ["FDA_WHEEL_VERSION"]
ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    "fda-core": "fda_core",
    "fda-sync": "fda_sync",
    "fastapi-depends-anywhere": "fastapi_depends_anywhere",
}
CLASSIFIERS = {
    "Development Status :: 5 - Production/Stable",
    "Framework :: FastAPI",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
}
REPOSITORY = "https://github.com/ADR-007/fastapi-depends-anywhere"
URLS = {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}


def wheel_path(distribution: str, folder: Path = DIST) -> Path:
    return folder / f"{DISTRIBUTIONS[distribution]}-{VERSION}-py3-none-any.whl"


def sdist_path(distribution: str) -> Path:
    return DIST / f"{DISTRIBUTIONS[distribution]}-{VERSION}.tar.gz"


def wheel_file(distribution: str, name: str) -> bytes:
    with zipfile.ZipFile(wheel_path(distribution)) as wheel:
        return wheel.read(f"{DISTRIBUTIONS[distribution]}-{VERSION}.dist-info/{name}")


def sdist_file(distribution: str, name: str) -> bytes:
    with tarfile.open(sdist_path(distribution)) as sdist:
        member = sdist.extractfile(f"{DISTRIBUTIONS[distribution]}-{VERSION}/{name}")
        assert member is not None
        return member.read()


def metadata(distribution: str, kind: str) -> Message:
    raw = (
        wheel_file(distribution, "METADATA")
        if kind == "wheel"
        else sdist_file(distribution, "PKG-INFO")
    )
    return Parser().parsestr(raw.decode())


def source_files(distribution: str) -> set[str]:
    """The package's files in the repository, relative to its ``src`` folder."""
    src = ROOT / "packages" / distribution / "src"
    return {
        str(path.relative_to(src))
        for path in (src / DISTRIBUTIONS[distribution]).rglob("*")
        if path.is_file() and path.suffix in {".py", ".typed"}
    }


def test_an_sdist_and_a_wheel_of_each_distribution_and_nothing_else() -> None:
    expected = {path(name).name for name in DISTRIBUTIONS for path in (wheel_path, sdist_path)}
    assert {path.name for path in DIST.iterdir() if not path.name.startswith(".")} == expected


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_the_metadata_pypi_shows_is_complete(distribution: str, kind: str) -> None:
    meta = metadata(distribution, kind)
    assert tuple(map(int, meta["Metadata-Version"].split("."))) >= (2, 4)
    assert (meta["Name"], meta["Version"]) == (distribution, VERSION)
    assert meta["Summary"]
    assert meta["Keywords"]
    assert meta["Requires-Python"] == ">=3.10"
    # PEP 639: the license as an SPDX expression and its file. PyPI refuses a License ::
    # classifier beside an expression, so the classifiers carry none.
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    classifiers = meta.get_all("Classifier") or []
    assert set(classifiers) >= CLASSIFIERS
    assert not [c for c in classifiers if c.startswith("License ::")]
    urls = dict(line.split(", ", 1) for line in meta.get_all("Project-URL") or [])
    assert set(urls) == URLS
    assert all(url.startswith(REPOSITORY) for url in urls.values())
    # The long description: the package's README, whose links work on PyPI (absolute).
    assert meta["Description-Content-Type"] == "text/markdown"
    description = str(meta.get_payload())
    assert (
        description.strip() == (ROOT / "packages" / distribution / "README.md").read_text().strip()
    )
    assert not re.findall(r"\]\((?!https://)[^)]*\)", description)


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_the_sdist_and_the_wheel_carry_the_same_metadata(distribution: str) -> None:
    assert metadata(distribution, "sdist").items() == metadata(distribution, "wheel").items()


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_the_license_file_is_in_the_sdist_and_in_the_wheel(distribution: str) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert wheel_file(distribution, "licenses/LICENSE") == license_text
    assert sdist_file(distribution, "LICENSE") == license_text


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_the_wheel_holds_the_package_and_its_metadata_only(distribution: str) -> None:
    module = DISTRIBUTIONS[distribution]
    with zipfile.ZipFile(wheel_path(distribution)) as wheel:
        names = [name for name in wheel.namelist() if not name.endswith("/")]
    package = {name for name in names if name.startswith(f"{module}/")}
    assert package == source_files(distribution)  # the sources, py.typed included
    # fda-core and fda-sync register their pytest plugins (entry_points.txt).
    entry_points = ("entry_points.txt",) if distribution in {"fda-core", "fda-sync"} else ()
    assert set(names) - package == {
        f"{module}-{VERSION}.dist-info/{name}"
        for name in ("METADATA", "WHEEL", "RECORD", "licenses/LICENSE", *entry_points)
    }


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_the_sdist_builds_the_same_wheel(distribution: str) -> None:
    """File for file, byte for byte: the sdist holds everything the wheel is made of."""
    with (
        zipfile.ZipFile(wheel_path(distribution)) as built,
        zipfile.ZipFile(wheel_path(distribution, FROM_SDIST)) as rebuilt,
    ):
        assert built.namelist() == rebuilt.namelist()
        assert [name for name in built.namelist() if built.read(name) != rebuilt.read(name)] == []
    with tarfile.open(sdist_path(distribution)) as sdist:
        base = f"{DISTRIBUTIONS[distribution]}-{VERSION}/"
        names = {member.name.removeprefix(base) for member in sdist.getmembers() if member.isfile()}
    assert {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE"} <= names
    assert {name for name in names if name.startswith("src/")} == {
        f"src/{name}" for name in source_files(distribution)
    }
