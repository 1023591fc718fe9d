"""What goes wrong says what to do: real pytest sessions with each mistake the plugin can
see, and the message each gets."""

from __future__ import annotations

import pytest

from plugin.inner import CONFTEST, SESSION_ANYIO_BACKEND, Inner, output

MISTAKES = """
import pytest

from myapp import get_user


async def test_the_stack_from_a_function_scoped_loop(fda_stack):
    pass


@pytest.mark.fda_override({get_user: str}, {get_user: str})
def test_a_marker_with_two_mappings():
    pass


@pytest.mark.fda_override({get_user: "bob"})
def test_a_marker_with_a_fake_that_is_not_callable(fda_override):
    pass


@pytest.mark.anyio
async def test_an_anyio_test_in_pytest_asyncios_auto_mode(fda_stack):
    pass
"""


@pytest.mark.programs
def test_mistakes_under_pytest_asyncio(inner: Inner) -> None:
    inner.files(
        ini="asyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n",
        conftest=CONFTEST + SESSION_ANYIO_BACKEND,
        test_mistakes=MISTAKES,
    )
    result = inner.run()
    result.assert_outcomes(errors=3, failed=1)
    text = output(result)
    for message in (
        "test_the_stack_from_a_function_scoped_loop uses fda_stack, which lives on "
        "pytest-asyncio's session event loop",
        'mark it `@pytest.mark.asyncio(loop_scope="session")`',
        "@pytest.mark.fda_override takes one mapping of dependency -> replacement",
        "the replacement of myapp.get_user must be a callable FastAPI can call",
        "This is an anyio test, but pytest-asyncio's auto mode runs async fixtures",
    ):
        assert message in text
    assert "During handling of the above exception" not in text  # one message each
    assert inner.events() == []  # nothing started


@pytest.mark.programs
def test_anyio_needs_a_session_scoped_backend(inner: Inner) -> None:
    inner.files(
        test_module_backend="""
        import pytest


        @pytest.mark.anyio
        async def test_the_stack_with_a_module_scoped_backend(fda_stack):
            pass
        """
    )
    result = inner.run("-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    text = output(result)
    assert "Give it session scope in conftest.py" in text
    assert 'def anyio_backend():\n        return "asyncio"' in "\n".join(result.outlines)
    assert "During handling of the above exception" not in text
    assert inner.events() == []
