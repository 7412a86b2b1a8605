"""Drawn training setups train identically in torch and tinyautograd.

A Hypothesis strategy draws a whole training setup: an MLP on (pooled) bundled MNIST digits with drawn depth,
widths, activation and normalisation, optionally behind a convolutional stem; a loss; an optimizer and its
hyperparameters; an optional learning-rate scheduler and gradient clipping; batch size and number of steps. Both
libraries train it from torch's initial weights on the same batches in float64, and the loss curves, learning
rates, gradient norms and final weights must agree to the float64 run tolerance of tests/parity.py.

Only float64 is drawn: in float32 an Adam-like optimizer turns a few-ulp difference in a gradient that is almost
zero (a weight reading a pixel that is nearly always blank) into a visibly different step, so a drawn float32 run
can differ from torch's in one weight by more than any fixed tolerance says, without anything being wrong. The
fixed scenarios of tests/test_parity.py run in float32 as well.

The ci profile runs a third of its usual example count here (each example is two whole training runs);
HYPOTHESIS_PROFILE=thorough runs a hundred.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import Setup, assert_runs_match, image_batches, train_both

ACTIVATIONS = {
    "ReLU": {}, "Sigmoid": {}, "Tanh": {}, "LeakyReLU": {"negative_slope": 0.1}, "ELU": {}, "GELU": {},
    "Softplus": {}, "SiLU": {},
}
LOSSES = ("cross_entropy", "label_smoothing", "log_softmax_nll", "softmax_bce", "bce_with_logits", "mse")


@dataclass(frozen=True)
class TrainingSpec:
    """A drawn training setup, as plain data so that Hypothesis prints a failing one readably.

    The inputs are the digits averaged over ``pool`` x ``pool`` blocks. ``conv``, when present, is a
    convolutional stem before the MLP: Conv2d(1, channels, kernel, stride, padding), optional BatchNorm2d, the
    activation, then "max"/"avg" 2x2 pooling or "none". ``optimizer`` and ``scheduler`` are (class name, keyword
    arguments); the scheduler may be None.
    """

    pool: int
    conv: tuple[int, int, int, int, bool, str] | None  # (channels, kernel, stride, padding, BatchNorm2d, pooling)
    widths: tuple[int, ...]
    activation: str
    norm: str  # "none", "batch" (BatchNorm1d) or "layer" (LayerNorm) after each hidden Linear
    loss: str
    optimizer: tuple[str, dict]
    scheduler: tuple[str, dict] | None
    clip: tuple[float, float] | None  # (max_norm, norm_type)
    batch_size: int
    steps: int
    seed: int


def _optimizers(draw) -> tuple[str, dict]:
    name = draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
                                 "Adadelta"]))
    decay = draw(st.sampled_from([0.0, 0.0, 1e-3, 0.05]))
    betas = (draw(st.sampled_from([0.8, 0.9])), draw(st.sampled_from([0.99, 0.999])))
    if name == "SGD":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = momentum > 0 and draw(st.booleans())
        dampening = 0.0 if nesterov or momentum == 0 else draw(st.sampled_from([0.0, 0.1]))
        return name, dict(lr=draw(st.sampled_from([0.01, 0.05, 0.1])), momentum=momentum, dampening=dampening,
                          nesterov=nesterov, weight_decay=decay)
    if name in ("Adam", "AdamW"):
        return name, dict(lr=draw(st.sampled_from([1e-3, 3e-3, 1e-2])), betas=betas, weight_decay=decay,
                          amsgrad=draw(st.booleans()))
    if name == "RMSprop":
        return name, dict(lr=draw(st.sampled_from([1e-3, 3e-3])), alpha=draw(st.sampled_from([0.9, 0.99])),
                          momentum=draw(st.sampled_from([0.0, 0.5])), centered=draw(st.booleans()),
                          weight_decay=decay)
    if name == "Adagrad":
        return name, dict(lr=draw(st.sampled_from([0.01, 0.05])), lr_decay=draw(st.sampled_from([0.0, 0.01])),
                          weight_decay=decay, initial_accumulator_value=draw(st.sampled_from([0.0, 0.1])))
    if name == "Adadelta":
        return name, dict(lr=1.0, rho=draw(st.sampled_from([0.9, 0.95])), weight_decay=decay)
    if name == "NAdam":
        return name, dict(lr=draw(st.sampled_from([2e-3, 1e-2])), betas=betas, weight_decay=decay,
                          decoupled_weight_decay=draw(st.booleans()))
    if name == "RAdam":
        return name, dict(lr=draw(st.sampled_from([1e-3, 1e-2])), betas=betas, weight_decay=decay,
                          decoupled_weight_decay=draw(st.booleans()))
    return name, dict(lr=draw(st.sampled_from([2e-3, 1e-2])), betas=betas, weight_decay=decay)


def _schedulers(draw, steps: int, optimizer: tuple[str, dict]) -> tuple[str, dict] | None:
    name = draw(st.sampled_from([None, "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                                 "OneCycleLR"]))
    if name == "StepLR":
        return name, dict(step_size=draw(st.integers(1, 10)), gamma=draw(st.sampled_from([0.5, 0.9])))
    if name == "MultiStepLR":
        milestones = sorted(draw(st.sets(st.integers(1, steps), min_size=1, max_size=3)))
        return name, dict(milestones=milestones, gamma=draw(st.sampled_from([0.1, 0.5])))
    if name == "ExponentialLR":
        return name, dict(gamma=draw(st.sampled_from([0.9, 0.97])))
    if name == "CosineAnnealingLR":
        return name, dict(T_max=draw(st.integers(1, steps)), eta_min=draw(st.sampled_from([0.0, 1e-4])))
    if name == "LinearLR":
        return name, dict(start_factor=draw(st.sampled_from([0.25, 0.5])), total_iters=draw(st.integers(1, steps)))
    if name == "OneCycleLR" and steps >= 10:
        # torch divides by zero when the warm-up phase is shorter than two steps (pct_start * total_steps < 2);
        # momentum cycling needs a momentum or betas hyperparameter to cycle
        cyclable = "betas" in optimizer[1] or "momentum" in optimizer[1]
        return name, dict(max_lr=optimizer[1]["lr"], total_steps=steps,
                          pct_start=draw(st.sampled_from([0.2, 0.3])),
                          cycle_momentum=cyclable and draw(st.booleans()))
    return None


def _conv_output_side(side: int, conv: tuple) -> int:
    _, kernel, stride, padding, _, pooling = conv
    side = (side + 2 * padding - kernel) // stride + 1
    return side // 2 if pooling != "none" else side


@st.composite
def training_specs(draw) -> TrainingSpec:
    """A whole training setup: model, loss, optimizer, scheduler, clipping, batch size and length."""
    steps = draw(st.integers(5, 30))
    optimizer = _optimizers(draw)
    clip = draw(st.none() | st.tuples(st.sampled_from([0.1, 0.5, 2.0]), st.sampled_from([2.0, 1.0, math.inf])))
    pool = draw(st.sampled_from([1, 2, 4]))
    conv = None
    if draw(st.booleans()):
        kernel = draw(st.sampled_from([1, 3, 5]))
        # a 1x1 kernel on one input channel is a single weight, a pure scale that batch-norm cancels: its gradient
        # is exactly zero and its rounding noise is all an optimizer sees
        batch_norm = kernel > 1 and draw(st.booleans())
        conv = (draw(st.integers(1, 6)), kernel, draw(st.sampled_from([1, 2])), draw(st.integers(0, 2)), batch_norm,
                draw(st.sampled_from(["none", "max", "avg"])))
        if _conv_output_side(28 // pool, conv) < 1:
            conv = None
    return TrainingSpec(
        pool=pool,
        conv=conv,
        widths=tuple(draw(st.lists(st.integers(4, 32), max_size=3))),
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        # after a conv stem, border pixels are the same nonzero constant in every image of a batch; batch-norm on
        # the first Linear cancels such inputs, their weights get an exactly zero gradient, and Adam-like
        # optimizers turn its rounding noise into lr-sized steps (as for a bias before batch-norm)
        norm=draw(st.sampled_from(["none", "batch", "layer"] if conv is None else ["none", "layer"])),
        loss=draw(st.sampled_from(LOSSES)),
        optimizer=optimizer,
        scheduler=_schedulers(draw, steps, optimizer),
        clip=clip,
        batch_size=draw(st.integers(8, 48)),
        steps=steps,
        seed=draw(st.integers(0, 2**16)),
    )


def _build_model(lib, spec: TrainingSpec):
    nn = lib.nn
    layers, width = [], (28 // spec.pool) ** 2
    if spec.conv is not None:
        channels, kernel, stride, padding, batch_norm, pooling = spec.conv
        layers.append(nn.Conv2d(1, channels, kernel, stride=stride, padding=padding, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(getattr(nn, spec.activation)(**ACTIVATIONS[spec.activation]))
        if pooling != "none":
            layers.append(nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2))
        layers.append(nn.Flatten())
        width = channels * _conv_output_side(28 // spec.pool, spec.conv) ** 2
    for size in spec.widths:
        # a bias right before batch-norm gets an exactly zero gradient (see parity.improved_mnist_model)
        layers.append(nn.Linear(width, size, bias=spec.norm != "batch"))
        if spec.norm == "batch":
            layers.append(nn.BatchNorm1d(size))
        elif spec.norm == "layer":
            layers.append(nn.LayerNorm(size))
        layers.append(getattr(nn, spec.activation)(**ACTIVATIONS[spec.activation]))
        width = size
    layers.append(nn.Linear(width, 10))
    if spec.loss == "log_softmax_nll":
        layers.append(nn.LogSoftmax(dim=1))
    elif spec.loss == "softmax_bce":
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


def _build_loss(lib, spec: TrainingSpec):
    nn = lib.nn
    return {"cross_entropy": nn.CrossEntropyLoss, "label_smoothing": lambda: nn.CrossEntropyLoss(label_smoothing=0.1),
            "log_softmax_nll": nn.NLLLoss, "softmax_bce": nn.BCELoss, "bce_with_logits": nn.BCEWithLogitsLoss,
            "mse": nn.MSELoss}[spec.loss]()


def to_setup(spec: TrainingSpec) -> Setup:
    """The :class:`parity.Setup` a drawn spec describes."""
    onehot = spec.loss in ("softmax_bce", "bce_with_logits", "mse")

    def build_optimizer(lib, params):
        name, arguments = spec.optimizer
        return getattr(lib.optim, name)(params, **arguments)

    def build_scheduler(lib, optimizer):
        name, arguments = spec.scheduler
        return getattr(lib.optim.lr_scheduler, name)(optimizer, **arguments)

    return Setup(
        name="drawn", build_model=lambda lib: _build_model(lib, spec), build_loss=lambda lib: _build_loss(lib, spec),
        build_optimizer=build_optimizer,
        batches=image_batches(spec.steps, spec.batch_size, samples=300, pool=spec.pool,
                              form="flat" if spec.conv is None else "image",
                              target="onehot" if onehot else "labels", seed=spec.seed),
        target_kind="float" if onehot else "long",
        build_scheduler=None if spec.scheduler is None else build_scheduler,
        clip_norm=None if spec.clip is None else spec.clip[0],
        clip_norm_type=2.0 if spec.clip is None else spec.clip[1], seed=spec.seed)


@settings(max_examples=max(3, settings.default.max_examples // 3),
          suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture])
@given(spec=training_specs())
def test_drawn_training_setup_matches_torch(spec: TrainingSpec, device: str) -> None:
    theirs, ours = train_both(to_setup(spec), device=device, dtype="float64")
    assert_runs_match(ours, theirs, "float64")
