"""Whole training runs in torch and in tinyautograd, side by side, from the same start on the same data.

A :class:`Setup` describes one training run once, for either library: every builder takes ``lib`` (the ``torch``
module or the ``tinyautograd`` module) and uses only the API the two share, so the very same code builds the
torch model and ours. :func:`train_both` then

1. builds the torch model under a fixed seed, casts it to the run's dtype, moves it to the device and snapshots
   its state_dict as NumPy arrays (torch's initialisation, including any custom init the builder applies);
2. builds our model, loads that snapshot into it (a state_dict crosses between the libraries as NumPy, through
   ``tinyautograd.from_numpy``) and moves it to the device;
3. makes each library's optimizer and scheduler and runs the same batches (NumPy arrays fixed up front, so the
   order is the same) through ``zero_grad, forward, loss, backward, [clip_grad_norm_], step, [scheduler.step]``;
4. returns both :class:`Run` records: the loss of every step, the gradient norms clipping saw, the learning rate
   of every step, the initial and final weights.

:func:`assert_runs_match` compares two runs with the tolerance of their dtype. The fixed scenarios of the test
suite (the course's networks) are the ``*_setup`` functions below; tests/test_parity_hypothesis.py draws setups.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

import tinyautograd
from helpers import to_numpy
from tinyautograd.vision import datasets

Lib = Any  # the torch module or the tinyautograd module: both expose nn, optim, as_tensor, no_grad, float32, ...
Batch = tuple[np.ndarray, np.ndarray]

# Tolerances for whole runs, as the project promises: losses equal to torch's to ~1e-9 relative in float64 over
# 50+ steps, ~1e-4 in float32. Weights are compared through their *updates* (final minus initial), each tensor
# against the size of its own update, so a run in which the optimizer hardly moved is still checked closely.
# float32 updates get 2e-3 of that size: Adam divides by sqrt(v), which magnifies the rounding of gradients close
# to zero, and 50 steps accumulate it (the fixed scenarios stay near 1e-4).
LOSS_RTOL = {"float64": 1e-9, "float32": 1e-4}
LOSS_ATOL = {"float64": 1e-12, "float32": 1e-6}
UPDATE_RTOL = {"float64": 1e-9, "float32": 2e-3}


@dataclass(frozen=True)
class Setup:
    """One training run, described for either library.

    ``build_model(lib)`` returns a ``lib.nn.Module`` (initialised as the run wants: the torch one is the one whose
    weights count), ``build_loss(lib)`` the loss module, ``build_optimizer(lib, params)`` the optimizer and
    ``build_scheduler(lib, optimizer)`` the scheduler or None. ``batches`` are (input, target) NumPy pairs, float64
    inputs cast to the run's dtype; ``target_kind`` says how targets are made into tensors: ``"float"`` (cast to
    the run's dtype, e.g. one-hot rows or images) or ``"long"`` (class indices). ``clip_norm`` clips gradients
    with ``lib.nn.utils.clip_grad_norm_`` before every step; the scheduler steps after every optimizer step.
    """

    name: str
    build_model: Callable[[Lib], Any]
    build_loss: Callable[[Lib], Any]
    build_optimizer: Callable[[Lib, Any], Any]
    batches: tuple[Batch, ...] = field(repr=False, compare=False)
    target_kind: str = "long"
    build_scheduler: Callable[[Lib, Any], Any] | None = None
    clip_norm: float | None = None
    clip_norm_type: float = 2.0
    seed: int = 0

    @property
    def steps(self) -> int:
        return len(self.batches)


@dataclass
class Run:
    """What one library's training run produced: per-step loss, learning rate and (when clipping) total gradient
    norm before clipping; state_dicts as NumPy before and after; and the live objects, to evaluate or checkpoint."""

    losses: list[float]
    lrs: list[float]
    grad_norms: list[float]
    initial_state: dict[str, np.ndarray]
    final_state: dict[str, np.ndarray]
    trainer: "Trainer"


class Trainer:
    """A model, its loss, optimizer and scheduler in one library, on one device and dtype, stepping through a
    setup's batches. ``state()``/``load_state()`` give and take the whole training state (model, optimizer and
    scheduler state_dicts) so a run can stop and go on in fresh objects."""

    def __init__(self, lib: Lib, setup: Setup, *, device: str, dtype: str,
                 initial_state: dict[str, np.ndarray] | None = None) -> None:
        self.lib, self.setup, self.device = lib, setup, device
        self.dtype = getattr(lib, dtype)
        # both libraries draw their initial weights here; only torch's are kept (ours are overwritten below)
        lib.manual_seed(setup.seed)
        model = setup.build_model(lib).to(dtype=self.dtype)
        if initial_state is not None:
            model.load_state_dict({name: lib.from_numpy(value) for name, value in initial_state.items()})
        self.model = model.to(device)
        self.loss_fn = setup.build_loss(lib)
        self.optimizer = setup.build_optimizer(lib, self.model.parameters())
        self.scheduler = None if setup.build_scheduler is None else setup.build_scheduler(lib, self.optimizer)

    def tensor(self, array: np.ndarray, kind: str = "float") -> Any:
        """``array`` as a tensor of this run: floating data in the run's dtype, class indices as int64."""
        if kind == "long":
            return self.lib.as_tensor(array.astype(np.int64), device=self.device)
        return self.lib.as_tensor(array, dtype=self.dtype, device=self.device)

    def step(self, batch: Batch) -> tuple[float, float]:
        """One optimisation step on ``batch``; returns (loss, total gradient norm before clipping or NaN)."""
        x, y = self.tensor(batch[0]), self.tensor(batch[1], self.setup.target_kind)
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        norm = float("nan")
        if self.setup.clip_norm is not None:
            norm = float(self.lib.nn.utils.clip_grad_norm_(self.model.parameters(), self.setup.clip_norm,
                                                           norm_type=self.setup.clip_norm_type))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item(), norm

    def run(self, start: int = 0, stop: int | None = None) -> tuple[list[float], list[float], list[float]]:
        """Steps over ``setup.batches[start:stop]``: (losses, learning rates used, gradient norms)."""
        losses, lrs, norms = [], [], []
        self.model.train()
        for batch in self.setup.batches[start:stop]:
            lrs.append(float(self.optimizer.param_groups[0]["lr"]))
            loss, norm = self.step(batch)
            losses.append(loss)
            norms.append(norm)
        return losses, lrs, norms

    def weights(self) -> dict[str, np.ndarray]:
        """The model's state_dict as host NumPy arrays (copies)."""
        return {name: np.array(to_numpy(value)) for name, value in self.model.state_dict().items()}

    def state(self) -> dict[str, Any]:
        """The whole training state as state_dicts, as a checkpoint holds it."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])

    def predict(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Eval-mode outputs for ``images`` (float64 NumPy, batched to bound memory) as one NumPy array."""
        self.model.eval()
        outputs = []
        with self.lib.no_grad():
            for first in range(0, len(images), batch_size):
                outputs.append(to_numpy(self.model(self.tensor(images[first:first + batch_size]))))
        self.model.train()
        return np.concatenate(outputs)


@contextlib.contextmanager
def full_precision_torch(device: str) -> Iterator[None]:
    """On cuda, stop torch from multiplying float32 in TF32 (cuDNN convolutions do by default): CuPy multiplies in
    full float32, and a float32 comparison at 1e-4 needs both to. Nothing changes on the cpu."""
    if not device.startswith("cuda"):
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def train_both(setup: Setup, *, device: str = "cpu", dtype: str = "float64") -> tuple[Run, Run]:
    """Train ``setup`` in torch and in tinyautograd from torch's initial weights: (torch's run, ours)."""
    with full_precision_torch(device):
        theirs = Trainer(torch, setup, device=device, dtype=dtype)
        initial = theirs.weights()
        ours = Trainer(tinyautograd, setup, device=device, dtype=dtype, initial_state=initial)
        return _finish(theirs, initial), _finish(ours, initial)


def _finish(trainer: Trainer, initial: dict[str, np.ndarray]) -> Run:
    losses, lrs, norms = trainer.run()
    return Run(losses, lrs, norms, initial, trainer.weights(), trainer)


def assert_curves_match(ours: list[float], theirs: list[float], dtype: str, what: str = "loss") -> None:
    """Two per-step curves agree elementwise to the run tolerance of ``dtype``."""
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=LOSS_RTOL[dtype], atol=LOSS_ATOL[dtype],
                               err_msg=f"{what} curves differ (tinyautograd first, torch second)")


def assert_runs_match(ours: Run, theirs: Run, dtype: str) -> None:
    """Loss curves, learning rates, gradient norms and every state_dict entry of two runs agree.

    Floating entries are compared through their update (final minus initial) relative to the size of torch's
    update; integer entries (``num_batches_tracked``) exactly.
    """
    assert len(ours.losses) == len(theirs.losses) > 0
    assert np.all(np.isfinite(theirs.losses)), f"torch's run diverged: {theirs.losses}"
    assert_curves_match(ours.losses, theirs.losses, dtype)
    np.testing.assert_allclose(ours.lrs, theirs.lrs, rtol=1e-12, err_msg="learning-rate schedules differ")
    if not np.all(np.isnan(theirs.grad_norms)):
        assert_curves_match(ours.grad_norms, theirs.grad_norms, dtype, "gradient-norm")
    assert ours.final_state.keys() == theirs.final_state.keys()
    for name, expected in theirs.final_state.items():
        got = ours.final_state[name]
        assert got.shape == expected.shape and got.dtype == expected.dtype, (name, got.dtype, expected.dtype)
        if not np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_array_equal(got, expected, err_msg=name)
            continue
        update = expected - theirs.initial_state[name]
        scale = float(np.max(np.abs(update), initial=0.0))
        np.testing.assert_allclose(got - ours.initial_state[name], update, rtol=0.0,
                                   atol=UPDATE_RTOL[dtype] * scale + np.finfo(expected.dtype).eps * 8,
                                   err_msg=f"update of {name} differs (tinyautograd first, torch second)")


# ----- data: the bundled MNIST digits ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def mnist(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits (4,000 train / 1,000 test): float64 images (N, 28, 28) in [0, 1] and int64 labels."""
    dataset = datasets.MNIST(root=None, train=train)
    return dataset.data.numpy().astype(np.float64) / 255.0, dataset.targets.numpy().astype(np.int64)


def image_batches(steps: int, batch_size: int, *, samples: int = 600, form: str = "flat", target: str = "labels",
                  pool: int = 1, seed: int = 0) -> tuple[Batch, ...]:
    """``steps`` batches cycling through ``samples`` training digits in one fixed shuffled order.

    Images are first averaged over ``pool`` x ``pool`` blocks (28 // pool pixels a side). ``form``: "flat"
    (batch, side * side), "image" (batch, 1, side, side) or "rows" (batch, side, side): the image read row by row
    as a sequence. ``target``: "labels" (int64), "onehot" (float rows) or "input" (the input itself). Every batch
    is full, so batch-norm never sees a batch of one.
    """
    images, labels = mnist(True)
    order = np.random.default_rng(seed).permutation(len(images))[:samples]
    images, labels = images[order], labels[order]
    side = 28 // pool
    images = images.reshape(len(images), side, pool, side, pool).mean(axis=(2, 4))
    shapes = {"flat": (side * side,), "image": (1, side, side), "rows": (side, side)}
    if form not in shapes:
        raise ValueError(f"image_batches: unknown form {form!r}; expected one of {sorted(shapes)}")
    inputs = images.reshape(len(images), *shapes[form])
    targets = {"labels": labels, "onehot": np.eye(10)[labels], "input": inputs}[target]
    position = np.arange(steps * batch_size) % samples
    return tuple((inputs[idx], targets[idx]) for idx in position.reshape(steps, batch_size))


# ----- the fixed scenarios: the course's networks ---------------------------------------------------------------

def xor_setup(steps: int = 100) -> Setup:
    """The course XOR: 2-3-1 sigmoid, MSE, full-batch SGD lr 0.1, weights and biases uniform(0, 1)."""
    def build(lib):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Sigmoid(), lib.nn.Linear(3, 1), lib.nn.Sigmoid())
        for parameter in model.parameters():
            lib.nn.init.uniform_(parameter, 0.0, 1.0)
        return model

    batch = (np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([[0.0], [1.0], [1.0], [0.0]]))
    return Setup("xor", build, lambda lib: lib.nn.MSELoss(), lambda lib, p: lib.optim.SGD(p, lr=0.1),
                 (batch,) * steps, target_kind="float")


def course_mnist_setup(steps: int = 60) -> Setup:
    """The course MNIST classifier: 784-50-10 sigmoid with a softmax output, BCELoss on one-hot targets, SGD lr
    0.01, batch 100."""
    def build(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(784, 50), nn.Sigmoid(), nn.Linear(50, 10), nn.Softmax(dim=1))

    return Setup("course-mnist", build, lambda lib: lib.nn.BCELoss(), lambda lib, p: lib.optim.SGD(p, lr=0.01),
                 image_batches(steps, 100, target="onehot"), target_kind="float")


def improved_mnist_model(lib: Lib, hidden: tuple[int, ...] = (100, 50)) -> Any:
    """The course classifier improved: 784-hidden...-10, each hidden layer Linear, BatchNorm1d, ReLU; the output
    layer plain (logits for CrossEntropyLoss).

    The hidden Linears have no bias: batch-norm subtracts the batch mean, so such a bias gets an exactly zero
    gradient, and Adam would blow the rounding noise of that zero up into lr-sized random steps (in torch as much
    as here) that no two libraries share.
    """
    nn = lib.nn
    layers, width = [], 784
    for size in hidden:
        layers += [nn.Linear(width, size, bias=False), nn.BatchNorm1d(size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, 10))


def improved_mnist_setup(steps: int = 60, scheduler: bool = False) -> Setup:
    """The improved classifier with Adam lr 1e-3, batch 50 (optionally StepLR, halving every 20 steps)."""
    build_scheduler = (lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)) \
        if scheduler else None
    return Setup("improved-mnist", improved_mnist_model, lambda lib: lib.nn.CrossEntropyLoss(),
                 lambda lib, p: lib.optim.Adam(p, lr=1e-3), image_batches(steps, 50),
                 build_scheduler=build_scheduler)


def lenet_model(lib: Lib) -> Any:
    """LeNet-5 for 28x28 digits: conv 5x5 (padding 2) 1->6, ReLU, max-pool 2, conv 5x5 6->16, ReLU, max-pool 2,
    400-120-84-10 with ReLU."""
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lenet_setup(steps: int = 60) -> Setup:
    """LeNet, cross-entropy, SGD lr 0.05 with momentum 0.9, StepLR halving the rate every 20 steps, batch 32."""
    return Setup("lenet", lenet_model, lambda lib: lib.nn.CrossEntropyLoss(),
                 lambda lib, p: lib.optim.SGD(p, lr=0.05, momentum=0.9), image_batches(steps, 32, form="image"),
                 build_scheduler=lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5))


def autoencoder_setup(steps: int = 50) -> Setup:
    """A convolutional autoencoder: two stride-2 Conv2d down to 16x7x7, two ConvTranspose2d back to 1x28x28,
    sigmoid output, MSE against the input, Adam lr 3e-3, batch 32."""
    def build(lib):
        nn = lib.nn
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    return Setup("conv-autoencoder", build, lambda lib: lib.nn.MSELoss(), lambda lib, p: lib.optim.Adam(p, lr=3e-3),
                 image_batches(steps, 32, form="image", target="input"), target_kind="float")


def lstm_setup(steps: int = 50) -> Setup:
    """A sequence model: each digit (averaged to 14x14) read as 14 rows of 14 pixels by a 2-layer LSTM (hidden
    32, batch_first), the last layer's final hidden state classified by a Linear; cross-entropy, Adam lr 1e-2."""
    def build(lib):
        nn = lib.nn

        class RowReader(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(14, 32, num_layers=2, batch_first=True)
                self.head = nn.Linear(32, 10)

            def forward(self, x):
                _, (hidden, _) = self.lstm(x)
                return self.head(hidden[-1])

        return RowReader()

    return Setup("lstm", build, lambda lib: lib.nn.CrossEntropyLoss(), lambda lib, p: lib.optim.Adam(p, lr=1e-2),
                 image_batches(steps, 32, form="rows", pool=2))


def regularised_setup(steps: int = 60) -> Setup:
    """Weight decay and gradient clipping: 784-64-32-10 tanh, cross-entropy, AdamW (weight_decay 0.05) with the
    total gradient norm clipped to 0.5 before every step, and SGD-style coupled decay in a second param group."""
    def build(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))

    def optimizer(lib, params):
        params = list(params)
        # weights decay (decoupled, AdamW), biases do not: two groups, as real training code writes it
        return lib.optim.AdamW([{"params": params[0::2]}, {"params": params[1::2], "weight_decay": 0.0}],
                               lr=3e-3, weight_decay=0.05)

    return Setup("decay-and-clipping", build, lambda lib: lib.nn.CrossEntropyLoss(), optimizer,
                 image_batches(steps, 50), clip_norm=0.5)


def sgd_decay_setup(steps: int = 60) -> Setup:
    """Coupled L2 decay and clipping with plain tools: 784-32-10 ReLU, SGD lr 0.1, Nesterov momentum 0.9,
    weight_decay 1e-3, gradients clipped to norm 1, batch 50."""
    def build(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))

    return Setup("sgd-decay-and-clipping", build, lambda lib: lib.nn.CrossEntropyLoss(),
                 lambda lib, p: lib.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                 image_batches(steps, 50), clip_norm=1.0)


SCENARIOS: dict[str, Callable[[], Setup]] = {
    "xor": xor_setup,
    "course-mnist": course_mnist_setup,
    "improved-mnist": improved_mnist_setup,
    "lenet": lenet_setup,
    "conv-autoencoder": autoencoder_setup,
    "lstm": lstm_setup,
    "decay-and-clipping": regularised_setup,
    "sgd-decay-and-clipping": sgd_decay_setup,
}
