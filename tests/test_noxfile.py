"""``nox -l`` shows each session's first docstring line: it must be a whole sentence, and
each cell of the test matrix says what it runs (nox is not installed here: the noxfile is
read, and its ``Cell`` class run on its own)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, NamedTuple

import pytest

NOXFILE = Path(__file__).resolve().parent.parent / "noxfile.py"
TREE = ast.parse(NOXFILE.read_text())


def sessions() -> dict[str, str]:
    return {
        node.name: ast.get_docstring(node) or ""
        for node in TREE.body
        if isinstance(node, ast.FunctionDef)
        and any("nox.session" in ast.unparse(decorator) for decorator in node.decorator_list)
    }


def test_every_session_has_a_one_sentence_summary_line() -> None:
    found = sessions()
    assert {"tests", "wheels", "lowest", "demo", "bench"} <= set(found)
    for name, doc in found.items():
        first, *rest = doc.splitlines() or [""]
        assert first.endswith("."), f"{name}: {first!r} is cut mid-sentence"
        assert not rest or rest[0] == "", f"{name}: the summary goes on: {rest[0]!r}"


def cells() -> list[Any]:
    """noxfile.py's MATRIX, built with its own ``Cell`` class."""
    (cell_class,) = [n for n in TREE.body if isinstance(n, ast.ClassDef) and n.name == "Cell"]
    namespace: dict[str, Any] = {"NamedTuple": NamedTuple}
    exec(compile(ast.Module([cell_class], []), str(NOXFILE), "exec"), namespace)
    (node,) = [
        node.value
        for node in TREE.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "MATRIX"
    ]
    assert isinstance(node, ast.List)
    built = []
    for call in node.elts:
        assert isinstance(call, ast.Call)
        assert ast.unparse(call.func) == "Cell"
        built.append(namespace["Cell"](*(ast.literal_eval(arg) for arg in call.args)))
    return built


def matrix() -> list[tuple[str, str, str]]:
    """(python, fastapi, runs) of each cell of noxfile.py's MATRIX."""
    return [(cell.python, cell.fastapi, cell.runs) for cell in cells()]


def test_each_cell_says_what_it_runs() -> None:
    """``nox -l`` lists the cells as ``tests(NAME) -> DESCRIPTION``: distinct, and complete."""
    found = cells()
    names = [cell.name for cell in found]
    assert names == [
        "py3.10-fastapi0.100-pydantic1",
        "py3.10-fastapi0.112-pydantic1",
        "py3.11-fastapi0.120",
        "py3.12-fastapi0.122",
        "py3.13-fastapi0.139",
        "py3.10-fastapi0.162",
        "py3.13-fastapi-newest",
    ]
    descriptions = [cell.description for cell in found]
    assert len(set(descriptions)) == len(found)
    for cell, text in zip(found, descriptions, strict=True):
        assert text.endswith("."), text
        assert "\n" not in text, text
        assert f"Python {cell.python}," in text, text
        assert ("newest FastAPI" if cell.fastapi == "locked" else cell.fastapi) in text, text
        assert ("pydantic 1" if "pydantic<2" in cell.extra else "pydantic 2") in text, text
        assert text.startswith("The whole suite" if cell.runs == "whole" else "The suite without")


def test_each_cell_is_a_session_whose_docstring_is_its_description() -> None:
    """The cells are registered in a loop (a docstring per session is what nox lists)."""
    source = NOXFILE.read_text()
    assert "run.__doc__ = cell.description" in source
    assert 'nox.session(name=f"tests({cell.name})"' in source
    assert "for _cell in MATRIX:" in source
    (umbrella,) = [n for n in TREE.body if isinstance(n, ast.FunctionDef) and n.name == "tests"]
    (decorator,) = umbrella.decorator_list
    assert isinstance(decorator, ast.Call)
    requires = {k.arg: ast.unparse(k.value) for k in decorator.keywords}["requires"]
    assert requires == "[f'tests({cell.name})' for cell in MATRIX]"


def test_the_support_page_shows_the_matrix_as_it_runs() -> None:
    page = (NOXFILE.parent / "docs" / "support.md").read_text()
    rows = [line.split("|")[1:-1] for line in page.splitlines() if line.startswith("| 3.1")]
    shown = [
        (python.strip(), fastapi.split()[0].strip(), runs.strip())
        for python, fastapi, _pydantic, runs, _covers in rows
    ]
    cells = [(py, "newest" if fa == "locked" else fa, runs) for py, fa, runs in matrix()]
    assert shown == cells
    # every Python of the matrix runs the `process` tests on at least one cell, and one
    # cell runs everything
    assert {py for py, _, runs in cells if runs != "fastapi"} == {py for py, _, _ in cells}
    assert [runs for _, _, runs in cells].count("whole") == 1


def test_a_test_of_workers_or_programs_is_a_process_test(request: pytest.FixtureRequest) -> None:
    """The cells that leave `process` out leave these out too (tests/conftest.py)."""
    marked = [
        item
        for item in request.session.items
        if item.get_closest_marker("workers") or item.get_closest_marker("programs")
    ]
    assert all(item.get_closest_marker("process") for item in marked)
