"""The house stays kept: no import cycle, small modules and classes, ``py.typed`` everywhere.

The import graph is read from the source with ``ast``: every ``import`` statement counts,
wherever it stands (in a function, under ``if TYPE_CHECKING:``), since a cycle there is a
cycle of the design even when Python never runs into it. ``python tests/test_layout.py``
prints what the tests check.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
SOURCES = sorted((ROOT / "packages").glob("*/src"))
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 150


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        """What a relative import is relative to."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def modules() -> dict[str, Module]:
    """Every module of the three distributions, by its dotted name."""
    found: dict[str, Module] = {}
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            parts = list(path.relative_to(source).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            tree = ast.parse(path.read_text(), str(path))
            found[".".join(parts)] = Module(".".join(parts), path, tree)
    return found


def _imported(module: Module, known: set[str]) -> Iterator[str]:
    """The modules of the distributions that ``module`` imports. ``from X import y`` is an
    import of the submodule ``X.y`` if there is one, else of ``X``; a package's ``__init__``
    running first is not counted (every module of a package would depend on it)."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"
                elif base in known:
                    yield base


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the distributions it imports."""
    known = modules()
    return {name: set(_imported(module, set(known))) - {name} for name, module in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def module_sizes() -> dict[str, int]:
    return {name: len(m.path.read_text().splitlines()) for name, m in modules().items()}


def class_sizes() -> dict[str, int]:
    """``module.Class`` -> the lines it spans (nested classes count on their own too)."""
    sizes: dict[str, int] = {}
    for name, module in modules().items():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                sizes[f"{name}.{node.name}"] = node.end_lineno - node.lineno + 1
    return sizes


def test_the_layout_tool_sees_every_distribution() -> None:
    names = set(modules())
    assert {"fda_core", "fda_sync", "fastapi_depends_anywhere"} <= names
    assert len(names) > 40
    # A cycle is found where there is one (the tool itself is tested).
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_module_over_the_limit() -> None:
    too_long = {name: lines for name, lines in module_sizes().items() if lines > MAX_MODULE_LINES}
    assert too_long == {}


def test_no_class_over_the_limit() -> None:
    too_long = {name: lines for name, lines in class_sizes().items() if lines > MAX_CLASS_LINES}
    assert too_long == {}


def test_every_distribution_is_typed() -> None:
    packages = [path for source in SOURCES for path in source.iterdir() if path.is_dir()]
    assert len(packages) == 3
    assert [p.name for p in packages if not (p / "py.typed").is_file()] == []


def _report() -> None:
    graph = import_graph()
    print("cycles:", cycles(graph) or "none")
    print(f"\nmodules over {MAX_MODULE_LINES // 2} lines:")
    for name, lines in sorted(module_sizes().items(), key=lambda item: -item[1]):
        if lines > MAX_MODULE_LINES // 2:
            print(f"  {lines:4}  {name}")
    print(f"\nclasses over {MAX_CLASS_LINES // 2} lines:")
    for name, lines in sorted(class_sizes().items(), key=lambda item: -item[1]):
        if lines > MAX_CLASS_LINES // 2:
            print(f"  {lines:4}  {name}")


if __name__ == "__main__":
    _report()
    sys.exit(0)
