"""Every tutorial (tutorials/NN_*.py) runs to completion in fast mode.

Each tutorial asserts the agreements it prints ("agree: ..."), so a regression in the library fails here. Fast mode
(TINYAUTOGRAD_TUTORIAL_FAST=1) shrinks epochs; figures go to a temporary folder so the committed ones stay as they
are. BLAS/OpenMP pools are pinned to one thread: on a shared CI machine torch's default thread pool can be tens of
times slower than one thread for these small problems.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS_DIR = Path(__file__).resolve().parent.parent / "tutorials"
TUTORIALS = sorted(TUTORIALS_DIR.glob("[0-9][0-9]_*.py"))


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 9


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_fast_mode_and_checks_agreement(path: Path, tmp_path: Path):
    env = dict(os.environ, TINYAUTOGRAD_TUTORIAL_FAST="1", TINYAUTOGRAD_TUTORIAL_OUT_DIR=str(tmp_path),
               MPLBACKEND="Agg")
    # the tutorials import the package from this checkout even where it is not installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TUTORIALS_DIR.parent), os.environ.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{path.name} failed:\n{output[-6000:]}"
    assert "agree: " in proc.stdout, f"{path.name} checks no agreement"
    assert list(tmp_path.glob("*.png")), f"{path.name} saved no figure"


def test_gallery_lists_existing_figures_for_every_tutorial():
    readme = (TUTORIALS_DIR / "README.md").read_text(encoding="utf-8")
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", readme)
    assert figures, "tutorials/README.md shows no figure"
    for figure in figures:
        assert (TUTORIALS_DIR / figure).is_file(), f"README.md shows {figure}, which does not exist"
    for path in TUTORIALS:
        assert f"({path.name})" in readme, f"README.md does not link {path.name}"
