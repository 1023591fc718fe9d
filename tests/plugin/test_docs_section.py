"""The plugin's section of docs/testing.md, run as pasted: its files, with the page's app and
pytest configuration, in a pytest session of their own (the docs pages' run checks only
that the page's pytest run passes; this checks what each test of the section does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_runner import blocks, files

PAGE = Path(__file__).parents[2] / "docs" / "testing.md"
#: The page's project files the section's files need, and the section's own.
SHARED = ("pyproject.toml", "myapp/main.py")
SECTION = "plugin/"


def test_the_section_holds_its_files_in_the_page() -> None:
    text = PAGE.read_text()
    section = text[text.index("## The pytest plugin") :]
    assert "--8<--" not in section
    titles = [block.title for block in blocks(PAGE) if block.title]
    assert [title for title in titles if title.startswith(SECTION)] == [
        "plugin/conftest.py",
        "plugin/test_plugin.py",
    ]


@pytest.mark.programs
def test_the_sections_tests_pass_as_pasted(pytester: pytest.Pytester) -> None:
    # The page's own files and those it links to (myapp/main.py is on Getting started).
    needed = {
        title: body
        for title, body in files(PAGE).items()
        if title in SHARED or title.startswith(SECTION)
    }
    assert set(SHARED) <= set(needed)
    for title, body in needed.items():
        path = pytester.path / title
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", SECTION, timeout=240
    )
    tests = re.findall(r"^(?:async )?def (test_\w+)", needed["plugin/test_plugin.py"], re.M)
    assert len(tests) == 5
    result.assert_outcomes(passed=len(tests))
