"""Run every CPU benchmark with 1 and with 2 threads and print one summary table.

    python benchmarks/run_all.py [--quick] [--gpu]

Each script runs in its own process (thread pools are sized when NumPy and torch load), prints its own table, and
hands its rows back as JSON; the summary gives tinyautograd/torch and tinyautograd/numpy for every workload.
--gpu adds gpu.py (one run; it prints a message and adds nothing where no GPU is visible).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Row, print_table, read_json

HERE = Path(__file__).resolve().parent
CPU_SCRIPTS = ("core.py", "training.py", "epoch.py")
THREAD_COUNTS = (1, 2)


def run_script(script: str, extra: list[str], out_dir: Path) -> list[Row]:
    """Run one benchmark script; its rows, or none (with the reason printed) if it failed."""
    json_path = out_dir / f"{script}-{'-'.join(extra) or 'default'}.json"
    command = [sys.executable, str(HERE / script), *extra, "--json", str(json_path)]
    print(f"\n$ {' '.join([Path(sys.executable).name, f'benchmarks/{script}', *extra])}", flush=True)
    result = subprocess.run(command, cwd=HERE.parent)
    if result.returncode != 0:
        print(f"benchmarks/{script} failed (exit status {result.returncode}); its rows are left out", flush=True)
        return []
    return read_json(json_path) if json_path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script (smoke run)")
    parser.add_argument("--gpu", action="store_true", help="also run gpu.py")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    rows: list[Row] = []
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        for threads in THREAD_COUNTS:
            for script in CPU_SCRIPTS:
                got = run_script(script, ["--threads", str(threads), *quick], out_dir)
                failed |= not got
                rows += got
        if args.gpu:
            rows += run_script("gpu.py", quick, out_dir)
    first_seen = {}
    for r in rows:
        first_seen.setdefault(r.workload, len(first_seen))
    rows.sort(key=lambda r: (first_seen[r.workload], r.threads))
    print_table(rows, "summary (ratios below 1: tinyautograd faster)", show_threads=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
