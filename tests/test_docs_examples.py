"""Every code example in docs/ runs, so none can rot.

Each page runs in a fresh interpreter (``python tests/test_docs_examples.py PAGE``), in an
empty working folder, its blocks in order and in one namespace, like a notebook:

- a ```` ```python ```` block is executed; ``__name__`` is ``"__main__"``, so an
  ``if __name__ == "__main__":`` block runs as a script would. A block with a top-level
  ``await`` runs on the page's event loop (one loop for the whole page, as in a notebook);
  other blocks run with no loop running, as a script does.
- a block with ``title="some/file.py"`` (any language) is a file of the example project:
  all of them are written first, so blocks can ``import`` them wherever the page shows them;
  ``title="test_*.py"`` files are run with pytest after the blocks.
- a link whose text is a path, to another page (``[`myapp/main.py`](../getting-started.md)``,
  ``[`notes_service/`](index.md)`` for a folder), brings the files that page shows under
  that path: a page shows its own code and links to the files it builds on, and reads the
  same on the code host as on the built site.
- ``bash``, ``text`` and ``mermaid`` blocks are not code to run (commands, output,
  diagrams); any other language without a title fails the test, so no example escapes by
  its language.

A block with a top-level ``await`` says so in its first comment line: pasted into a file, it
would not run. A page that shows a file of the example service (``notes_service/...``, or
``tests/...``) shows it exactly as it is in the repository.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_runner import (
    AWAIT_LABEL,
    FILE_LINK,
    NOT_CODE,
    ROOT,
    SNIPPET,
    awaits_at_top_level,
    blocks,
    leading_comment,
    page_id,
    pages,
    slug,
)
from queue_imports import REASON, imports

RUNNER = Path(__file__).parent / "docs_runner.py"
#: Files of the repository shown on a page in a block without a title (run as code).
SHOWN_UNTITLED = {"integrations/notebooks.md": "examples/notebook.py"}


def test_the_docs_have_examples() -> None:
    counted = {page_id(page): len(blocks(page)) for page in pages()}
    assert counted["getting-started.md"] > 0
    assert sum(counted.values()) > 20


def test_every_block_is_run_written_or_not_code() -> None:
    unrunnable = [
        f"{page_id(page)}:{block.line} ({block.lang or 'no language'})"
        for page in pages()
        for block in blocks(page)
        if block.title is None and block.lang not in {"python", *NOT_CODE}
    ]
    assert not unrunnable


def test_pages_show_their_code_instead_of_including_it() -> None:
    """On the code host, an include line shows as itself, not as the file it names."""
    including = {page_id(page) for page in pages() if SNIPPET.search(page.read_text())}
    assert not including


def test_every_file_link_names_files_the_linked_page_shows() -> None:
    for page in pages():
        for link in FILE_LINK.finditer(page.read_text()):
            path, target = link["path"], (page.parent / link["target"]).resolve()
            assert target.is_file(), f"{page_id(page)}: {link[0]} links to no page"
            titles = [block.title for block in blocks(target) if block.title]
            shown = [t for t in titles if t == path or (path.endswith("/") and t.startswith(path))]
            assert shown, f"{page_id(page)}: {link[0]}: {page_id(target)} shows no {path}"


def test_a_file_shown_on_several_pages_is_the_same_everywhere() -> None:
    texts: dict[str, dict[str, list[str]]] = {}
    for page in pages():
        for block in blocks(page):
            if block.title is not None:
                texts.setdefault(block.title, {}).setdefault(block.body, []).append(page_id(page))
    differing = {title: list(shown.values()) for title, shown in texts.items() if len(shown) > 1}
    assert not differing


def repository_file(title: str) -> Path | None:
    """The repository's file a block titled ``title`` shows, if it shows one."""
    top = title.split("/")[0]
    if "/" in title and (ROOT / "examples" / top).is_dir():
        return ROOT / "examples" / title
    if top == "tests":
        return ROOT / title
    return None


def test_the_example_files_shown_are_the_repositorys() -> None:
    shown = set()
    for page in pages():
        for block in blocks(page):
            path = repository_file(block.title) if block.title else None
            if path is not None:
                assert path.is_file(), f"{page_id(page)}:{block.line}: no {path} in the repository"
                assert block.body == path.read_text(), f"{page_id(page)}:{block.line}: not {path}"
                shown.add(path)
    for name, file in SHOWN_UNTITLED.items():
        bodies = [block.body for block in blocks(ROOT / "docs" / name) if block.title is None]
        assert (ROOT / file).read_text() in bodies, f"{name} does not show {file} as it is"
    service = ROOT / "examples" / "notes_service"
    files = {p for p in service.rglob("*") if p.suffix in {".py", ".ini"} and p.stat().st_size}
    assert files - shown == set(), "files of the example service no page shows"


def test_top_level_await_is_labelled() -> None:
    """Pasted into a file, ``await`` outside a function is a SyntaxError: say where it runs."""
    unlabelled = [
        f"{page_id(page)}:{block.line}"
        for page in pages()
        for block in blocks(page)
        if block.lang == "python"
        and block.title is None
        and awaits_at_top_level(block.body)
        and AWAIT_LABEL not in leading_comment(block.body).lower()
    ]
    assert not unlabelled


DIAGRAMS = ("flowchart ", "sequenceDiagram", "stateDiagram-v2")


def test_diagrams_are_mermaid_kinds_both_renderers_know() -> None:
    diagrams = [
        (page, block) for page in pages() for block in blocks(page) if block.lang == "mermaid"
    ]
    assert len(diagrams) >= 3
    for page, block in diagrams:
        assert block.body.startswith(DIAGRAMS), f"{page_id(page)}:{block.line}"


RUNNABLE = [page for page in pages() if any(b.lang == "python" or b.title for b in blocks(page))]
#: Pages whose code needs a task queue that does not import on every cell -> that queue.
NEEDS = {"integrations/taskiq.md": "taskiq"}


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every page, each in its own process forked from one interpreter (docs_runner.py),
    once per test session: under pytest-xdist, the first worker to get here runs them and
    the others wait for its results, whichever of these tests each worker was given."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder; each worker has its own below it
    out, status = shared / "docs-pages", shared / "docs-pages.status"
    with (shared / "docs-pages.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its process ends
        if not status.exists():  # the first worker here, or one after a worker that crashed
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
            outcome = "did not finish"
            try:
                command = [sys.executable, str(RUNNER), str(out), *map(str, RUNNABLE)]
                returncode = subprocess.run(command, env=env, timeout=900).returncode
                outcome = f"exited with status {returncode}"
            finally:
                status.write_text(outcome)
    if status.read_text() != "exited with status 0":
        pytest.fail(f"docs_runner.py {status.read_text()}")
    return out


# The pages run once, in the first test's fixture: its limit covers them all, on a busy machine.
@pytest.mark.programs
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_page(page: Path, results: Path) -> None:
    needs = NEEDS.get(page_id(page))
    if needs is not None and not imports(needs):
        pytest.skip(REASON)
    log = (results / f"{slug(page)}.log").read_text()
    status = (results / f"{slug(page)}.status").read_text()
    assert status == "0", f"{page_id(page)} failed:\n{log}"
    assert f"ran all examples of {page_id(page)}" in log
