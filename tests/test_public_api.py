"""The public API is pinned: SPEC.md's names where SPEC.md says, complete ``__all__``s, the
layering of the distributions, and one version for all three."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).parent.parent

#: SPEC.md's API reference, by the module it says to import each name from.
SPEC_API = {
    "fastapi_depends_anywhere": [
        "configure",
        "get_app",
        "reset_config",
        "with_fastapi_depends",
        "aiter_with_fastapi_depends",
        "with_fastapi_lifecycle",
        "runnify_with_fastapi_depends",
        "FastApiDepsStack",
        "resolve_fastapi_depends",
        "check_routes_and_dependencies_are_async",
    ],
    "fastapi_depends_anywhere.sync": [
        "FastApiDepsStack",
        "with_fastapi_depends",
        "iter_with_fastapi_depends",
        "with_fastapi_lifecycle",
        "runnify_with_fastapi_depends",
        "resolve_fastapi_depends",
    ],
    "fastapi_depends_anywhere.sync.runners": ["runnify_with_fastapi_depends"],
}
#: Public names beyond SPEC.md, by module: scoped overrides, the process lifespan and its
#: Celery hook.
EXTRA_API = {
    "fastapi_depends_anywhere": ["override"],
    "fastapi_depends_anywhere.sync": [
        "BridgeError",
        "override",
        "shutdown_worker_process",
        "start_process_lifespan",
        "stop_process_lifespan",
    ],
    "fastapi_depends_anywhere.sync.celery": ["lifespan_per_worker_process"],
}
#: Where the meta-package's names come from: it re-exports, it does not copy.
IMPLEMENTED_IN = {
    "fastapi_depends_anywhere": "fda_core",
    "fastapi_depends_anywhere.sync": "fda_sync",
    "fastapi_depends_anywhere.sync.runners": "fda_sync.runners",
    "fastapi_depends_anywhere.sync.celery": "fda_sync.celery",
}
PUBLIC_MODULES = [
    *SPEC_API,
    "fastapi_depends_anywhere.sync.celery",
    "fda_core",
    "fda_sync",
    "fda_sync.runners",
    "fda_sync.celery",
]
DISTRIBUTIONS = {
    "fda-core": "fda_core",
    "fda-sync": "fda_sync",
    "fastapi-depends-anywhere": "fastapi_depends_anywhere",
}


def _spec_names() -> list[tuple[str, str]]:
    return [
        (module, name)
        for api in (SPEC_API, EXTRA_API)
        for module, names in api.items()
        for name in names
    ]


@pytest.mark.parametrize(("module", "name"), _spec_names())
def test_every_name_of_the_spec_is_importable_from_where_the_spec_says(
    module: str, name: str
) -> None:
    imported = importlib.import_module(module)
    value = getattr(imported, name)
    assert callable(value)
    assert name in imported.__all__
    # The very object of the implementing distribution, not a copy or a wrapper.
    assert value is getattr(importlib.import_module(IMPLEMENTED_IN[module]), name)


def _public_names(module: ModuleType) -> set[str]:
    """What a module defines or imports for its users: no private names, no submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_is_complete_sorted_and_without_duplicates(module: str) -> None:
    imported = importlib.import_module(module)
    exported = list(imported.__all__)
    assert exported == sorted(exported)
    assert len(exported) == len(set(exported))
    assert set(exported) - {"__version__"} == _public_names(imported)
    for name in exported:
        assert hasattr(imported, name), name


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_modules_use_no_star_imports(module: str) -> None:
    source = importlib.import_module(module).__file__
    assert source is not None
    tree = ast.parse(Path(source).read_text())
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert imported  # the walk sees the imports
    assert not [pair for pair in imported if pair[1] == "*"]


def test_the_documented_async_and_sync_names_are_complete() -> None:
    """Nothing public beyond SPEC.md but ``__version__`` and the names of ``EXTRA_API``."""
    import fastapi_depends_anywhere
    import fastapi_depends_anywhere.sync

    assert set(fastapi_depends_anywhere.__all__) == {
        *SPEC_API["fastapi_depends_anywhere"],
        *EXTRA_API["fastapi_depends_anywhere"],
        "__version__",
    }
    assert set(fastapi_depends_anywhere.sync.__all__) == {
        *SPEC_API["fastapi_depends_anywhere.sync"],
        *EXTRA_API["fastapi_depends_anywhere.sync"],
    }


def test_override_is_one_object_wherever_it_is_imported_from() -> None:
    """Scoped overrides live in fda-core; the sync API and the meta-package re-export them
    (one context variable, whichever API the caller uses)."""
    import fastapi_depends_anywhere
    import fastapi_depends_anywhere.sync
    import fda_core
    import fda_sync

    assert fda_sync.override is fda_core.override
    assert fastapi_depends_anywhere.override is fda_core.override
    assert fastapi_depends_anywhere.sync.override is fda_core.override


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_version_comes_from_the_distribution_metadata(distribution: str) -> None:
    module = importlib.import_module(DISTRIBUTIONS[distribution])
    assert module.__version__ == importlib.metadata.version(distribution)


# --- Layering: fda-core < fda-sync < fastapi-depends-anywhere --------------------------


def _imported_modules(package: str) -> set[str]:
    """Every module the source files of ``package`` import (at any depth of the code)."""
    found: set[str] = set()
    root = Path(importlib.import_module(package).__file__ or "").parent
    files = sorted(root.rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


@pytest.mark.process
@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("fda_core", ("fda_sync", "fastapi_depends_anywhere")),
        ("fda_sync", ("fastapi_depends_anywhere",)),
    ],
)
def test_a_lower_distribution_imports_nothing_from_a_higher_one(
    package: str, forbidden: tuple[str, ...]
) -> None:
    imports = _imported_modules(package)
    assert "fastapi" in imports  # the walk sees the imports
    offending = {name for name in imports if name.split(".")[0] in forbidden}
    assert not offending
    # ...and at run time, in a fresh interpreter.
    code = (
        f"import sys, {package}; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- Lockstep: one version, exact pins ------------------------------------------------


def _pyprojects() -> dict[str, dict[str, Any]]:
    projects = {}
    for path in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(path.read_text())["project"]
        projects[project["name"]] = project
    return projects


def _sibling_requirements(project: dict[str, Any]) -> list[Requirement]:
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return [Requirement(line) for line in lines if Requirement(line).name in DISTRIBUTIONS]


def test_the_three_pyprojects_share_one_version_and_pin_each_other_exactly() -> None:
    projects = _pyprojects()
    assert sorted(projects) == sorted(DISTRIBUTIONS)
    versions = {name: project["version"] for name, project in projects.items()}
    assert len(set(versions.values())) == 1, versions
    version = versions["fda-core"]
    pins = {
        name: [str(req) for req in _sibling_requirements(project)]
        for name, project in projects.items()
    }
    assert pins == {
        "fda-core": [],
        "fda-sync": [f"fda-core=={version}"],
        "fastapi-depends-anywhere": [
            f"fda-core=={version}",
            f"fda-sync=={version}",
            f"fda-core[asyncer]=={version}",
            f"fda-sync[celery]=={version}",
        ],
    }


def test_the_installed_distributions_agree_with_each_other() -> None:
    versions = {name: importlib.metadata.version(name) for name in DISTRIBUTIONS}
    assert len(set(versions.values())) == 1, versions
    version = versions["fda-core"]
    for name in DISTRIBUTIONS:
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.name in DISTRIBUTIONS:
                assert str(requirement.specifier) == f"=={version}", (name, line)


def test_the_meta_package_has_the_asyncer_extra() -> None:
    metadata = importlib.metadata.metadata("fastapi-depends-anywhere")
    assert "asyncer" in metadata.get_all("Provides-Extra", [])


@pytest.mark.parametrize("distribution", ["fda-sync", "fastapi-depends-anywhere"])
def test_the_celery_hook_has_its_extra(distribution: str) -> None:
    assert "celery" in importlib.metadata.metadata(distribution).get_all("Provides-Extra", [])


@pytest.mark.parametrize("module", ["fda_sync.celery", "fastapi_depends_anywhere.sync.celery"])
def test_the_celery_hook_without_celery_names_the_extra(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "fda_sync._integrations.celery",
        "fda_sync.celery",
        "fastapi_depends_anywhere.sync.celery",
    ):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "celery", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "fda-sync\[celery\]"'):
        importlib.import_module(module)
