"""The report of a failed test of the real workers (test_worker.py) shows what each worker
wrote to its log while the test ran: what it received, retried, refused, and why."""

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

#: Where each worker's log stood when the test's set-up was done.
_STARTS = pytest.StashKey[dict[Path, int]]()


def _logs(item: pytest.Item) -> dict[str, Path]:
    deployment: Any = getattr(item, "funcargs", {}).get("deployment")
    return dict(deployment.logs) if deployment is not None else {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    logs = _logs(item)
    if call.when == "setup":
        item.stash[_STARTS] = {log: log.stat().st_size for log in logs.values()}
    elif report.failed:
        starts = item.stash.get(_STARTS, {})
        for pool, log in logs.items():
            with log.open("rb") as file:
                file.seek(starts.get(log, 0))
                text = file.read().decode(errors="replace")
            report.sections.append((f"{pool} worker's log during the test", text[-20000:]))
    return report
