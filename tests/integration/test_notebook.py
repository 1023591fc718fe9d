"""The notebook recipe: the cells of examples/notebook.py (start, resolve, use, close) run
one by one on one event loop, in one namespace, as a Jupyter kernel runs them."""

import ast
import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from notes_service.deps import NotesDep

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.py"


def cells(source: str) -> list[str]:
    """The code cells of a percent-format notebook (``# %%`` starts one)."""
    found: list[list[str]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            found.append([])
        elif found:
            found[-1].append(line)
    return ["\n".join(cell) for cell in found]


class Kernel:
    """Runs cells as IPython does: top-level ``await`` allowed, one loop and one namespace
    for all cells, and the value of a cell's last expression is its output."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.namespace: dict[str, Any] = {"__name__": "__main__"}

    def run(self, cell: str) -> Any:
        tree = ast.parse(cell)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        self._execute(ast.Module(body=tree.body, type_ignores=[]), "exec")
        if last is None:
            return None
        return self._execute(ast.Expression(body=last.value), "eval")

    def _execute(self, tree: ast.Module | ast.Expression, mode: str) -> Any:
        code = compile(tree, str(NOTEBOOK), mode, flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, self.namespace)
        if asyncio.iscoroutine(result):
            result = self.loop.run_until_complete(result)
        return result

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    kernel = Kernel()
    yield kernel
    stack = kernel.namespace.get("stack")
    if stack is not None and not kernel.loop.is_closed():  # a failed test: close it anyway
        kernel.loop.run_until_complete(stack.close())
    kernel.close()


def test_the_notebook_cell_by_cell(database: Path, kernel: Kernel) -> None:
    start, explore, use, close = cells(NOTEBOOK.read_text())

    assert kernel.run(start) is None
    stack = kernel.namespace["stack"]
    assert type(kernel.namespace["notes"]).__name__ == "NotesRepository"

    assert kernel.run(explore) == [("ann", 3), ("bob", 1)]
    assert kernel.run(use) == [
        "Buy milk",
        "Call the plumber",
        "Renew the passport",
        "Explored in a notebook",
    ]
    with closing(sqlite3.connect(database)) as conn:  # not committed while the stack is open
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (4,)

    assert kernel.run(close) is None
    with closing(sqlite3.connect(database)) as conn:  # the session committed at close
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (5,)
    with pytest.raises(RuntimeError, match="closed"):
        kernel.loop.run_until_complete(stack.resolve(NotesDep))
