"""Shared benchmark plumbing: thread limits, timing (median of repeats), result rows and the printed table.

Import this module before NumPy or torch: on import it reads ``--threads N`` from the command line and sets
OMP/OPENBLAS/MKL_NUM_THREADS, which the BLAS and OpenMP pools read once, when their libraries load. A process
that loaded NumPy before that is re-executed with the variables set, so the limit always holds.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # run from a checkout without installing: `python benchmarks/core.py`
    sys.path.insert(0, str(REPO))

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def _threads_from_argv(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    known, _ = parser.parse_known_args(argv)
    if known.threads < 1:
        raise SystemExit(f"--threads must be at least 1 (got {known.threads})")
    return known.threads


def limit_threads(threads: int) -> None:
    """Set the thread variables to ``threads``; re-execute the process if NumPy or torch already loaded without
    them (their pools would keep the old size)."""
    wanted = str(threads)
    if all(os.environ.get(name) == wanted for name in THREAD_VARIABLES):
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = wanted
    if "numpy" in sys.modules or "torch" in sys.modules:
        os.execv(sys.executable, [sys.executable, *sys.argv])


THREADS = _threads_from_argv(sys.argv[1:])
limit_threads(THREADS)


def parse_args(description: str) -> argparse.Namespace:
    """The benchmark scripts' common options: --threads N (applied on import), --json PATH, --quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for NumPy and torch (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the result rows to PATH as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="far fewer steps and repeats: checks that everything runs, timings are rough")
    return parser.parse_args()


def configure_torch(torch_module, threads: int) -> None:
    """Give torch the same intra-op thread count as the BLAS pools."""
    torch_module.set_num_threads(threads)


def median_seconds(fn: Callable[[], object], *, repeat: int = 5, number: int = 1, warmup: int = 1,
                   sync: Callable[[], None] | None = None) -> float:
    """Median over ``repeat`` runs of the seconds one call of ``fn`` takes, each run timing ``number`` calls.

    The cycle collector is paused while timing (as ``timeit`` does) so a collection triggered by one library's
    garbage is not billed to another; ``sync`` (e.g. a CUDA synchronise) runs before every clock read.
    """
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    times = []
    collector_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            if sync is not None:
                sync()
            times.append((time.perf_counter() - start) / number)
            gc.collect()
    finally:
        if collector_was_on:
            gc.enable()
    return statistics.median(times)


def timed(fn: Callable[..., object], *args, sync: Callable[[], None] | None = None) -> tuple[object, float]:
    """``(fn(*args), seconds)`` for one call, with the cycle collector paused and ``sync`` run before the clock
    is read at each end."""
    collector_was_on = gc.isenabled()
    gc.disable()
    try:
        if sync is not None:
            sync()
        start = time.perf_counter()
        result = fn(*args)
        if sync is not None:
            sync()
        return result, time.perf_counter() - start
    finally:
        if collector_was_on:
            gc.enable()


@dataclass
class Row:
    """One workload's times (in ``unit``) for each implementation; None where one was not run."""

    workload: str
    unit: str
    numpy: float | None
    torch: float | None
    tinyautograd: float | None
    threads: int = 1

    def ratio(self, other: str) -> float | None:
        base = getattr(self, other)
        if self.tinyautograd is None or not base:
            return None
        return self.tinyautograd / base


def _fmt(value: float | None, ratio: bool = False) -> str:
    if value is None:
        return "-"
    if ratio:
        return f"{value:.2f}x"
    return f"{value:.3g}"


def print_table(rows: list[Row], title: str, show_threads: bool = False) -> None:
    """The rows as a fixed-width table with tinyautograd/torch and tinyautograd/numpy ratios (below 1: faster)."""
    header = ["workload", "unit", "numpy", "torch", "tinyautograd", "tg/torch", "tg/numpy"]
    lines = [[r.workload, r.unit, _fmt(r.numpy), _fmt(r.torch), _fmt(r.tinyautograd),
              _fmt(r.ratio("torch"), True), _fmt(r.ratio("numpy"), True)] for r in rows]
    if show_threads:
        header.insert(1, "threads")
        for line, r in zip(lines, rows):
            line.insert(1, str(r.threads))
    left = header.index("unit") + 1  # text columns left-aligned, numbers right-aligned
    widths = [max(len(x) for x in column) for column in zip(header, *lines)]
    print(f"\n{title}")
    for line in [header, ["-" * w for w in widths], *lines]:
        print("  ".join(x.ljust(w) if i < left else x.rjust(w) for i, (x, w) in enumerate(zip(line, widths))))
    sys.stdout.flush()


def write_json(rows: list[Row], path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps([asdict(r) for r in rows], indent=1))


def read_json(path: str | Path) -> list[Row]:
    return [Row(**item) for item in json.loads(Path(path).read_text())]
