"""Runs the code examples of docs pages: ``python tests/docs_runner.py OUT PAGE...``.

The rules are in ``tests/test_docs_examples.py``. Each page runs in a process of its own,
forked from this one once FastAPI is imported (no thread or loop exists yet), in the empty
folder ``OUT/<page>/``; its output goes to ``OUT/<page>.log`` and its exit status to
``OUT/<page>.status``. Pages run as many at a time as there are cores.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
#: Fences that are not code to run: commands, output, diagrams.
NOT_CODE = {"bash", "console", "mermaid", "text"}
FENCE = re.compile(
    r"^(?P<fence>```+)(?P<lang>[\w+-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
#: pymdownx.snippets' include line: the docs show a file of the repository in full.
SNIPPET = re.compile(r'^[ \t]*--8<-- "(?P<path>[^"]+)"$', re.MULTILINE)


@dataclass
class Block:
    line: int
    lang: str
    title: str | None
    body: str


def blocks(page: Path, text: str | None = None, at: int | None = None) -> list[Block]:
    """The fenced blocks of a page, in order. A snippet line outside a fence includes the
    blocks of that file (numbered at the include line); inside a fence, that file's text."""
    text = page.read_text() if text is None else text
    found: list[tuple[int, list[Block]]] = []
    fences = list(FENCE.finditer(text))
    for match in fences:
        title = TITLE.search(match["attrs"])
        line = text.count("\n", 0, match.start()) + 1
        body = SNIPPET.sub(lambda m: (ROOT / m["path"]).read_text(), match["body"])
        block = Block(at or line, match["lang"], title["title"] if title else None, body)
        found.append((match.start(), [block]))
    for include in SNIPPET.finditer(text):
        if not any(fence.start() <= include.start() < fence.end() for fence in fences):
            line = at or text.count("\n", 0, include.start()) + 1
            included = (ROOT / include["path"]).read_text()
            found.append((include.start(), blocks(page, included, line)))
    return [block for _, group in sorted(found, key=lambda item: item[0]) for block in group]


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


# --- Running one page (in the subprocess) -----------------------------------------------


def run_page(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__main__", "__file__": str(page)}
    loop = asyncio.new_event_loop()
    tests_written = False
    try:
        for block in blocks(page):  # the example project's files, before any code runs
            if block.title is not None:
                target = Path(block.title)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.body)
                tests_written |= target.name.startswith("test_") and target.suffix == ".py"
        for block in blocks(page):
            if block.title is not None or block.lang != "python":
                continue
            where = f"{page_id(page)}:{block.line}"
            code = compile(block.body, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            print(f"--- {where}", flush=True)
            result = eval(code, namespace)
            if asyncio.iscoroutine(result):
                loop.run_until_complete(result)
        if tests_written:
            print(f"--- {page_id(page)}: pytest on the test files it wrote", flush=True)
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
                check=True,
            )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    print(f"ran all examples of {page_id(page)}")


def slug(page: Path) -> str:
    return page_id(page).replace("/", "-").removesuffix(".md")


def _child(page: Path, out: Path) -> int:
    folder = out / slug(page)
    folder.mkdir()
    log = os.open(out / f"{slug(page)}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = str(folder)  # for the scripts and pytest runs of a page
    try:
        run_page(page)
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def run_pages(out: Path, pages: list[Path]) -> None:
    import fastapi
    import fastapi.testclient  # noqa: F401

    running: dict[int, Path] = {}
    queue = list(pages)
    while queue or running:
        while queue and len(running) < (os.cpu_count() or 2):
            page = queue.pop(0)
            pid = os.fork()
            if pid == 0:  # the child: never returns into this loop
                os._exit(_child(page, out))
            running[pid] = page
        pid, status = os.wait()
        page = running.pop(pid)
        (out / f"{slug(page)}.status").write_text(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    run_pages(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
