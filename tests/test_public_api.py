"""The public API is pinned: SPEC.md's names where SPEC.md says, complete ``__all__``s, the
layering of the distributions, and one version for all three."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from compat.v1_names import COMPATIBILITY_MODULES, V1_MODULES
from packaging.requirements import Requirement
from queue_imports import imports

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
#: Public names beyond SPEC.md, by module: 1.x's two other configuration readers, scoped
#: overrides, the process lifespan and the hooks of the task queues, a request's context
#: carried to Celery tasks.
EXTRA_API = {
    "fastapi_depends_anywhere": [
        "RequestContextMiddleware",
        "ambient_scope",
        "get_context_factory",
        "is_configured",
        "override",
    ],
    "fastapi_depends_anywhere.sync": [
        "BridgeError",
        "ambient_scope",
        "override",
        "scope_from_django",
        "shutdown_worker_process",
        "start_process_lifespan",
        "stop_process_lifespan",
    ],
    "fastapi_depends_anywhere.sync.celery": [
        "RequestContextError",
        "RequestContextRefusedError",
        "RequestContextTask",
        "RequestContextTooLargeError",
        "carry_request_context",
        "lifespan_per_worker_process",
    ],
    "fastapi_depends_anywhere.sync.dramatiq": ["lifespan_per_worker_process"],
    "fastapi_depends_anywhere.sync.rq": ["LifespanPerJobWorker", "LifespanWorker"],
    "fastapi_depends_anywhere.taskiq": ["lifespan_per_worker_process"],
}
#: Where the meta-package's names come from: it re-exports, it does not copy.
IMPLEMENTED_IN = {
    "fastapi_depends_anywhere": "fda_core",
    "fastapi_depends_anywhere.sync": "fda_sync",
    "fastapi_depends_anywhere.sync.runners": "fda_sync.runners",
    "fastapi_depends_anywhere.sync.celery": "fda_sync.celery",
    "fastapi_depends_anywhere.sync.dramatiq": "fda_sync.dramatiq",
    "fastapi_depends_anywhere.sync.rq": "fda_sync.rq",
    "fastapi_depends_anywhere.taskiq": "fda_core.taskiq",
}
#: 1.x's module paths, kept as modules re-exporting the 2.x objects (tests/compat).
IMPLEMENTED_IN.update(
    {
        module: "fda_core" if ".sync" not in module else "fda_sync"
        for module in COMPATIBILITY_MODULES
    }
)
#: Each queue's hook: (its extra, the distribution that has it, its modules).
HOOKS = {
    "celery": ("fda-sync", ["fda_sync.celery", "fastapi_depends_anywhere.sync.celery"]),
    "dramatiq": ("fda-sync", ["fda_sync.dramatiq", "fastapi_depends_anywhere.sync.dramatiq"]),
    "rq": ("fda-sync", ["fda_sync.rq", "fastapi_depends_anywhere.sync.rq"]),
    "taskiq": ("fda-core", ["fda_core.taskiq", "fastapi_depends_anywhere.taskiq"]),
}


def _queue_imports(module: str) -> bool:
    """Whether the queue of a hook module imports here (``queue_imports.py``)."""
    queue = next((extra for extra, (_, modules) in HOOKS.items() if module in modules), None)
    return queue is None or imports(queue)


def _where_it_imports(*values: str) -> Any:
    """A parameter set, skipped where its hook's queue does not import (module first)."""
    return pytest.param(
        *values,
        marks=pytest.mark.skipif(
            not _queue_imports(values[0]), reason=f"{values[0]}'s queue does not import here"
        ),
    )


PUBLIC_MODULES = [
    *SPEC_API,
    *COMPATIBILITY_MODULES,
    "fda_core",
    "fda_core.pytest_plugin",
    "fda_sync",
    "fda_sync.runners",
    "fda_sync.pytest_plugin",
    *(module for _, modules in HOOKS.values() for module in modules),
]
DISTRIBUTIONS = {
    "fda-core": "fda_core",
    "fda-sync": "fda_sync",
    "fastapi-depends-anywhere": "fastapi_depends_anywhere",
}


def _spec_names() -> list[Any]:
    v1 = {module: V1_MODULES[module][0] for module in COMPATIBILITY_MODULES}
    return [
        _where_it_imports(module, name)
        for module, name in sorted(
            {
                (module, name)
                for api in (SPEC_API, EXTRA_API, v1)
                for module, names in api.items()
                for name in names
            }
        )
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


@pytest.mark.parametrize("module", [_where_it_imports(module) for module in PUBLIC_MODULES])
def test_all_is_complete_sorted_and_without_duplicates(module: str) -> None:
    imported = importlib.import_module(module)
    exported = list(imported.__all__)
    assert exported == sorted(exported)
    assert len(exported) == len(set(exported))
    assert set(exported) - {"__version__"} == _public_names(imported)
    for name in exported:
        assert hasattr(imported, name), name


@pytest.mark.parametrize("module", [_where_it_imports(module) for module in PUBLIC_MODULES])
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


@pytest.mark.parametrize("name", ["override", "ambient_scope"])
def test_override_is_one_object_wherever_it_is_imported_from(name: str) -> None:
    """Scoped overrides and the ambient scope live in fda-core; the sync API and the
    meta-package re-export them (one context variable, whichever API the caller uses)."""
    import fastapi_depends_anywhere
    import fastapi_depends_anywhere.sync
    import fda_core
    import fda_sync

    assert getattr(fda_sync, name) is getattr(fda_core, name)
    assert getattr(fastapi_depends_anywhere, name) is getattr(fda_core, name)
    assert getattr(fastapi_depends_anywhere.sync, name) is getattr(fda_core, name)


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
            f"fda-core[asyncer]=={version}",  # asyncer
            f"fda-sync[celery]=={version}",  # celery
            f"fda-sync[dramatiq]=={version}",  # dramatiq
            f"fda-sync[rq]=={version}",  # rq
            f"fda-core[taskiq]=={version}",  # taskiq
            f"fda-core[asyncer]=={version}",  # all
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


def test_the_meta_package_keeps_1_x_extras() -> None:
    """A 1.x requirement installs unchanged: 1.x's asyncer, all and build, plus the queues'."""
    metadata = importlib.metadata.metadata("fastapi-depends-anywhere")
    assert sorted(metadata.get_all("Provides-Extra", [])) == [
        "all",
        "asyncer",
        "build",
        "celery",
        "dramatiq",
        "rq",
        "taskiq",
    ]
    requires = importlib.metadata.requires("fastapi-depends-anywhere") or []
    by_extra: dict[str, set[str]] = {}
    for line in requires:
        requirement = Requirement(line)
        for extra in ("all", "asyncer", "build", "celery"):
            if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}):
                by_extra.setdefault(extra, set()).add(f"{requirement.name}{requirement.extras}")
    assert by_extra["all"] == by_extra["asyncer"] | by_extra["celery"]
    assert "build" not in by_extra  # 1.x's build extra brought uv; nothing uses it


@pytest.mark.parametrize("extra", list(HOOKS))
def test_each_queue_hook_has_its_extra_here_and_in_the_meta_package(extra: str) -> None:
    distribution, _ = HOOKS[extra]
    for name in (distribution, "fastapi-depends-anywhere"):
        assert extra in importlib.metadata.metadata(name).get_all("Provides-Extra", [])


@pytest.mark.parametrize(
    ("extra", "module"),
    [(extra, module) for extra, (_, modules) in HOOKS.items() for module in modules],
)
def test_a_queue_hook_without_its_queue_names_the_extra(
    extra: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    distribution, modules = HOOKS[extra]
    private = f"{modules[0].rsplit('.', 1)[0]}._integrations.{extra}"
    for name in (private, *modules):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in [name for name in sys.modules if name.split(".")[0] == extra] or [extra]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    command = f'pip install "{distribution}[{extra}]"'
    with pytest.raises(ImportError, match=re.escape(command)):
        importlib.import_module(module)


class _Broken(importlib.abc.MetaPathFinder):
    """Finds ``name`` and fails to import it, as a queue whose own dependency is too old."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, *_: object) -> None:
        if fullname.split(".")[0] == self.name:
            raise ImportError("cannot import name 'Discriminator' from 'pydantic'", name="pydantic")


@pytest.mark.parametrize("extra", list(HOOKS))
def test_a_queue_that_fails_to_import_raises_its_own_error(
    extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, modules = HOOKS[extra]
    private = f"{modules[0].rsplit('.', 1)[0]}._integrations.{extra}"
    for name in [name for name in sys.modules if name.split(".")[0] == extra]:
        monkeypatch.delitem(sys.modules, name)
    for name in (private, *modules):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Broken(extra), *sys.meta_path])
    with pytest.raises(ImportError, match="cannot import name 'Discriminator'") as raised:
        importlib.import_module(modules[0])
    assert "pip install" not in str(raised.value)
