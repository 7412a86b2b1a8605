"""Helpers shared by every tutorial: where figures go, the fast-mode switch, checked agreement, side-by-side tables,
identical batches for both libraries and copying weights from a torch module into its tinyautograd twin.

Each tutorial runs as ``python tutorials/NN_name.py`` (this folder is then first on ``sys.path``, so
``from _common import ...`` works) or as a notebook opened from this folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib

# Tutorials run headless (tests, CI, `make tutorials`): render to files only.
matplotlib.use("Agg")

import numpy as np  # noqa: E402

OUT_DIR: Path = Path(os.environ.get("TINYAUTOGRAD_TUTORIAL_OUT_DIR", Path(__file__).resolve().parent / "figures"))
"""Folder of the committed figures (tutorials/figures/), one or more PNGs per tutorial. The environment variable
TINYAUTOGRAD_TUTORIAL_OUT_DIR redirects them, so that test runs in fast mode leave the committed figures alone."""

FAST: bool = os.environ.get("TINYAUTOGRAD_TUTORIAL_FAST", "") == "1"
"""True under ``TINYAUTOGRAD_TUTORIAL_FAST=1``: tutorials shrink epochs and data so the test suite can run them all."""

_DPI = 90


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy copy of a tinyautograd tensor, a torch tensor (any device), an array, a scalar or a nested list."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    if hasattr(value, "numpy"):
        return np.array(value.numpy(), copy=True)
    return np.asarray(value)


def assert_close(actual: Any, expected: Any, what: str, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Check ``|actual - expected| <= atol + rtol * |expected|`` elementwise and print ``agree: <what>``.

    Either side may be a tinyautograd tensor, a torch tensor, an array, a list or a scalar; shapes must match
    exactly. Raises AssertionError naming ``what`` and the largest difference otherwise, so a regression in the
    library makes the tutorial (and tests/test_tutorials.py) fail.
    """
    a = to_numpy(actual).astype(np.float64)
    b = to_numpy(expected).astype(np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ, {a.shape} vs {b.shape}")
    if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(a - b)
        worst = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.ndim else ()
        raise AssertionError(
            f"{what}: values differ beyond rtol={rtol}, atol={atol}; largest difference {diff[worst]:.3g} at "
            f"index {worst} ({a[worst]!r} vs {b[worst]!r})")
    print(f"agree: {what}")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], floatfmt: str = ".6g") -> None:
    """Print rows as an aligned text table (floats with ``floatfmt``), e.g. tinyautograd and torch side by side."""
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v)

    text = [[str(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.rjust(w) for h, w in zip(text[0], widths)))
    print(line)
    for r in text[1:]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def savefig(fig: Any, name: str) -> Path:
    """Save a matplotlib figure as ``OUT_DIR/<name>.png`` (small: 90 dpi), close it and return the path."""
    import matplotlib.pyplot as plt

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / (name if name.endswith(".png") else name + ".png")
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print(f"saved figure: {shown}")
    return path


class SharedShuffle:
    """A sampler for ``DataLoader(dataset, batch_size, sampler=SharedShuffle(len(dataset), seed))`` giving each
    epoch a fresh permutation from its own NumPy generator: two loaders made with the same seed, one per
    library, serve identical batches (``shuffle=True`` would draw from each library's own generator)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return iter(self.rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def copy_torch_weights(torch_module: Any, tg_module: Any) -> None:
    """Load ``torch_module``'s parameters and buffers into ``tg_module`` (same architecture, same state_dict keys)
    through NumPy arrays, so both libraries start from identical weights."""
    state = {key: value.detach().cpu().numpy().copy() for key, value in torch_module.state_dict().items()}
    tg_module.load_state_dict(state)
