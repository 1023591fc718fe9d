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
