"""Instructions per call, counted by callgrind: the same figure on a busy machine as on a
quiet one, so a change of a few hundred instructions shows (timings move by a third).

The script re-runs itself under ``valgrind --tool=callgrind`` with collection off. Each
variant is warmed up, then called ``calls`` times inside ``itertools.starmap`` (callgrind
collects only inside ``starmap_next``: the warm-up and the imports are not counted), then
``os.getpgid`` dumps the counts (``--dump-before``): one dump per variant, in order. An
empty variant, measured the same way, is subtracted: what is left is the variant's own.

Counts are user-space instructions of the calling thread's work: a system call counts as
the instructions around it, not the time the kernel takes, and another thread's work is
counted only if it runs while the measured one is inside the loop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat, starmap
from pathlib import Path
from typing import Any

CHILD = "BENCH_CALLGRIND_CHILD"
#: The C functions that bound what is counted, and that dump the counts.
COLLECT, DUMP = "starmap_next", "os_getpgid"
WARMUP = 300
EMPTY = "(empty)"


def available() -> bool:
    return shutil.which("valgrind") is not None


def in_child() -> bool:
    """Whether this process is the one callgrind runs (``count`` started it)."""
    return os.environ.get(CHILD) == "1"


def _nothing() -> None:
    return None


def serve(variants: dict[str, Callable[[], Any]], calls: int, *, empty: bool = True) -> None:
    """In the child: each variant warmed up, then counted; one dump each, in order.
    ``empty``: the empty variant first (once per run: ``count`` expects it first)."""
    for call in [_nothing, *variants.values()] if empty else variants.values():
        for _ in range(WARMUP):
            call()
        deque(starmap(call, repeat((), calls)), maxlen=0)
        os.getpgid(0)  # --dump-before: this variant's counts


def count(script: Path, args: Sequence[str], names: Sequence[str], calls: int) -> dict[str, float]:
    """Run ``script args`` under callgrind (its ``serve`` measures ``names`` in order);
    instructions per call of each, the empty variant's subtracted."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={COLLECT}",
            f"--dump-before={DUMP}",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(script),
            *args,
        ]
        run = subprocess.run(
            command, env={**os.environ, CHILD: "1"}, capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise RuntimeError(f"callgrind run failed:\n{run.stdout}\n{run.stderr[-3000:]}")
        dumps = sorted(Path(folder).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [_summary(path) for path in dumps]
    expected = [EMPTY, *names]
    if len(totals) < len(expected):
        raise RuntimeError(f"expected {len(expected)} dumps, got {len(totals)}")
    per_call = [total / calls for total in totals[: len(expected)]]
    return {
        name: value - per_call[0] for name, value in zip(expected[1:], per_call[1:], strict=True)
    }


def _summary(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")
