"""``nox -l`` shows each session's first docstring line: it must be a whole sentence."""

from __future__ import annotations

import ast
from pathlib import Path

NOXFILE = Path(__file__).resolve().parent.parent / "noxfile.py"


def sessions() -> dict[str, str]:
    tree = ast.parse(NOXFILE.read_text())
    return {
        node.name: ast.get_docstring(node) or ""
        for node in tree.body
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


def matrix() -> list[tuple[str, str, bool]]:
    """(python, fastapi, whole) of each cell of noxfile.py's MATRIX."""
    tree = ast.parse(NOXFILE.read_text())
    (node,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "MATRIX"
    ]
    assert isinstance(node, ast.List)
    cells = []
    for call in node.elts:
        assert isinstance(call, ast.Call)
        python, fastapi, _extra, whole = (ast.literal_eval(arg) for arg in call.args)
        cells.append((python, fastapi, whole))
    return cells


def test_the_support_page_shows_the_matrix_as_it_runs() -> None:
    page = (NOXFILE.parent / "docs" / "support.md").read_text()
    rows = [line.split("|")[1:-1] for line in page.splitlines() if line.startswith("| 3.1")]
    shown = [
        (python.strip(), fastapi.split()[0].strip(), whole.strip() == "yes")
        for python, fastapi, _pydantic, whole, _covers in rows
    ]
    cells = [(py, "newest" if fa == "locked" else fa, whole) for py, fa, whole in matrix()]
    assert shown == cells
    # every Python of the matrix runs the `process` tests on at least one cell
    assert {py for py, _, whole in cells if whole} == {py for py, _, _ in cells}
