"""``--cpu N``: pin a benchmark's whole process to one CPU, for figures of the code rather
than of the machine's cross-CPU wake-ups (as pyperf does)."""

import argparse
import os
import sys


def add_cpu_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu",
        type=int,
        default=os.environ.get("BENCH_CPU") or None,
        metavar="N",
        help="pin the whole process to CPU N first (default: $BENCH_CPU, else not pinned)",
    )


def pin(parser: argparse.ArgumentParser, cpu: int | None) -> None:
    """Pin every thread of the process (and so those it starts later) to ``cpu``."""
    if cpu is None:
        print(f"not pinned: threads run, and wake each other, on any of {os.cpu_count()} CPUs")
        return
    if not hasattr(os, "sched_setaffinity"):
        parser.error("--cpu needs os.sched_setaffinity (Linux)")
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        sys.exit(f"--cpu {cpu}: this process may only run on CPUs {sorted(allowed)}")
    # sched_setaffinity(0, ...) pins the calling thread only: pin each existing thread.
    threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    for tid in threads:
        os.sched_setaffinity(tid, {cpu})
    print(
        f"pinned to CPU {cpu} of {os.cpu_count()}: os.sched_setaffinity on all "
        f"{len(threads)} thread(s) before any measurement; threads started later inherit it"
    )
