"""Seconds per epoch on the bundled MNIST digits: tinyautograd vs torch in the same run, with ratios.

    python benchmarks/epoch.py [--threads N] [--json PATH] [--quick]

An epoch is what a user's training loop does: iterate the library's own ``DataLoader`` over a ``TensorDataset`` of
the 4,000 bundled training digits (float32 pixels in [0, 1], int64 labels), and for each batch run zero_grad,
forward, loss, backward and the optimizer step. Both libraries start from torch's initial weights (copied through
NumPy) and read the batches in the same shuffled order (one fixed permutation given as the sampler), so they do the
same computation; the first epoch's mean losses are compared before anything is timed.

- course MLP: 784-50-10, sigmoid hidden layer, softmax output, BCELoss on one-hot targets, SGD lr 0.01, batch 100
  (40 steps an epoch).
- LeNet: conv 5x5 (padding 2) 1->6, ReLU, max-pool 2, conv 5x5 6->16, ReLU, max-pool 2, 400-120-84-10 with ReLU,
  cross-entropy, SGD lr 0.05 with momentum 0.9, batch 64 (63 steps an epoch, the last one of 32).

The table reports the median over several timed epochs (after the checked first one); ``--quick`` times one epoch
of 500 digits. There is no NumPy column here: benchmarks/training.py measures the hand-written floor per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import _common  # before NumPy and torch: applies --threads while their thread pools can still be sized
from _common import Row, configure_torch, median_seconds, print_table, write_json

import numpy as np
import torch

import tinyautograd as tg
from tinyautograd.vision import datasets

LOSS_RTOL = 1e-4  # float32, one epoch from the same weights on the same batches (tests/test_parity.py: ~1e-7)


@dataclass(frozen=True)
class Workload:
    """A model and its training recipe, written once for either library (``lib`` is torch or tinyautograd)."""

    name: str
    build_model: Callable[[Any], Any]
    build_loss: Callable[[Any], Any]
    build_optimizer: Callable[[Any, Any], Any]
    batch_size: int
    images: bool  # (N, 1, 28, 28) inputs; else flattened (N, 784)
    onehot: bool  # float one-hot targets (BCELoss); else int64 labels


def course_mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 50), nn.Sigmoid(), nn.Linear(50, 10), nn.Softmax(dim=1))


def lenet(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


WORKLOADS = (
    Workload("course MLP 784-50-10 sigmoid/softmax, BCE, SGD, batch 100", course_mlp, lambda lib: lib.nn.BCELoss(),
             lambda lib, params: lib.optim.SGD(params, lr=0.01), 100, images=False, onehot=True),
    Workload("LeNet, cross-entropy, SGD momentum, batch 64", lenet, lambda lib: lib.nn.CrossEntropyLoss(),
             lambda lib, params: lib.optim.SGD(params, lr=0.05, momentum=0.9), 64, images=True, onehot=False),
)


def bundled_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` bundled training digits: float32 images (N, 1, 28, 28) in [0, 1] and int64 labels."""
    dataset = datasets.MNIST(root=None, train=True)
    images = dataset.data.numpy()[:count].astype(np.float32)[:, None] / 255.0
    return images, dataset.targets.numpy()[:count].astype(np.int64)


class Epochs:
    """One library's model, loss, optimizer and DataLoader for a workload; ``epoch()`` trains one pass and returns
    its mean loss."""

    def __init__(self, lib, workload: Workload, state: dict[str, np.ndarray], images: np.ndarray,
                 labels: np.ndarray, order: list[int]) -> None:
        self.model = workload.build_model(lib)
        self.model.load_state_dict({name: lib.from_numpy(value) for name, value in state.items()})
        self.loss_fn = workload.build_loss(lib)
        self.optimizer = workload.build_optimizer(lib, self.model.parameters())
        inputs = images if workload.images else images.reshape(len(images), -1)
        targets = np.eye(10, dtype=np.float32)[labels] if workload.onehot else labels
        dataset = lib.utils.data.TensorDataset(lib.from_numpy(inputs), lib.from_numpy(targets))
        # the same fixed permutation in both libraries: identical batches, and a shuffle's cost still paid
        self.loader = lib.utils.data.DataLoader(dataset, batch_size=workload.batch_size, sampler=order)

    def epoch(self) -> float:
        total, steps = 0.0, 0
        for x, y in self.loader:
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
            steps += 1
        return total / steps


def measure(workload: Workload, images: np.ndarray, labels: np.ndarray, repeat: int) -> Row:
    torch.manual_seed(0)
    state = {name: value.detach().numpy().copy() for name, value in workload.build_model(torch).state_dict().items()}
    order = np.random.default_rng(0).permutation(len(images)).tolist()
    theirs = Epochs(torch, workload, state, images, labels, order)
    ours = Epochs(tg, workload, state, images, labels, order)
    # the first epoch, from identical weights, is the check (and the warm-up)
    their_loss, our_loss = theirs.epoch(), ours.epoch()
    if not np.isclose(our_loss, their_loss, rtol=LOSS_RTOL, atol=0.0):
        raise SystemExit(f"{workload.name}: first-epoch mean loss {our_loss!r} (tinyautograd) differs from torch's "
                         f"{their_loss!r}; the libraries do not compute the same thing, no timing is meaningful")
    print(f"{workload.name}: first-epoch mean loss {our_loss:.6f} (torch {their_loss:.6f}); "
          f"{len(theirs.loader)} steps an epoch", flush=True)
    return Row(workload.name, "s/epoch", None,
               median_seconds(theirs.epoch, repeat=repeat, warmup=0),
               median_seconds(ours.epoch, repeat=repeat, warmup=0), _common.THREADS)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    configure_torch(torch, args.threads)
    images, labels = bundled_digits(500 if args.quick else 4000)
    repeat = 1 if args.quick else 3
    rows = [measure(workload, images, labels, repeat) for workload in WORKLOADS]
    print_table(rows, f"seconds per epoch over {len(images):,} bundled MNIST digits, {args.threads} thread(s) "
                      "(ratios below 1: tinyautograd faster)")
    write_json(rows, args.json)


if __name__ == "__main__":
    main()
