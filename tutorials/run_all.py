"""Run every tutorial (tutorials/NN_*.py) at full size, one after another, regenerating tutorials/figures/.

Usage: ``python tutorials/run_all.py [--fast] [NN ...]`` (``make tutorials`` runs them all). ``--fast`` sets
TINYAUTOGRAD_TUTORIAL_FAST=1; numbers select tutorials by prefix (``run_all.py 03 07``). Each tutorial runs in its
own process and asserts its agreements with torch; the exit status is 1 if any of them failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="shrink epochs (TINYAUTOGRAD_TUTORIAL_FAST=1)")
    parser.add_argument("only", nargs="*", help="tutorial numbers to run, e.g. 03 07 (default: all)")
    args = parser.parse_args(argv)
    tutorials = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if args.only:
        tutorials = [p for p in tutorials if p.name[:2] in args.only]
        if not tutorials:
            parser.error(f"no tutorial numbered {' '.join(args.only)} in {HERE.name}/")
    env = dict(os.environ, MPLBACKEND="Agg")
    if args.fast:
        env["TINYAUTOGRAD_TUTORIAL_FAST"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    failed = []
    for path in tutorials:
        print(f"=== {path.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(path)], env=env, cwd=HERE.parent)
        print(f"=== {path.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in "
              f"{time.perf_counter() - start:.1f} s\n", flush=True)
        if code != 0:
            failed.append(path.name)
    print(f"{len(tutorials) - len(failed)} of {len(tutorials)} tutorials passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
