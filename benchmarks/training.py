"""Training-step speed: tinyautograd vs torch vs a hand-written NumPy forward/backward/update of the same math.

    python benchmarks/training.py [--threads N] [--json PATH] [--quick]

Each workload trains from the same initial weights (torch's default initialisation, copied across) on the same
MNIST-shaped batches (random pixels and labels: the data does not change the work) and reports the median seconds
per step (zero_grad, forward, loss, backward, optimizer step). Before timing, the first steps' losses of the three
implementations are compared, so each table row is known to time the same computation.

- MLP 784-50-10: the course's two-layer net: sigmoid hidden layer, softmax cross-entropy, SGD lr 0.1, batch 100.
- MLP 784-512-512-10: ReLU, cross-entropy, Adam lr 1e-3, batch 128.
- LeNet: conv 1->6 5x5, ReLU, max-pool 2, conv 6->16 5x5, ReLU, max-pool 2, 256-120-84-10 with ReLU,
  cross-entropy, SGD lr 0.01, batch 64.

gpu.py runs the library halves of these workloads on cuda.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import _common  # before NumPy and torch: applies --threads while their thread pools can still be sized
from _common import Row, median_seconds, print_table, write_json

import numpy as np
import torch

import tinyautograd as tg

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
CHECK_STEPS = 3


@dataclass(frozen=True)
class Workload:
    """A model, its optimizer and its batches: ``layers`` is ('linear', in, out) / ('conv', in, out, k) /
    ('sigmoid',) / ('relu',) / ('maxpool', 2) / ('flatten',) in order."""

    name: str
    layers: tuple
    input_shape: tuple
    batch_size: int
    optimizer: str  # 'sgd' or 'adam'
    lr: float
    steps: int  # timed steps per repeat on the CPU


MLP_SMALL = Workload("MLP 784-50-10 sigmoid, SGD, batch 100",
                     (("linear", 784, 50), ("sigmoid",), ("linear", 50, 10)), (784,), 100, "sgd", 0.1, 60)
MLP_WIDE = Workload("MLP 784-512-512-10 ReLU, Adam, batch 128",
                    (("linear", 784, 512), ("relu",), ("linear", 512, 512), ("relu",), ("linear", 512, 10)),
                    (784,), 128, "adam", 1e-3, 20)
LENET = Workload("LeNet 2 conv + 3 linear, SGD, batch 64",
                 (("conv", 1, 6, 5), ("relu",), ("maxpool", 2), ("conv", 6, 16, 5), ("relu",), ("maxpool", 2),
                  ("flatten",), ("linear", 256, 120), ("relu",), ("linear", 120, 84), ("relu",),
                  ("linear", 84, 10)), (1, 28, 28), 64, "sgd", 0.01, 10)
CPU_WORKLOADS = (MLP_SMALL, MLP_WIDE, LENET)


def make_batches(workload: Workload, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` batches of float32 pixels in [0, 1) shaped (batch, *input_shape) and int64 labels in 0..9."""
    rng = np.random.default_rng(seed)
    return [(rng.random((workload.batch_size, *workload.input_shape), dtype=np.float32),
             rng.integers(0, 10, workload.batch_size)) for _ in range(count)]


def build_model(lib, workload: Workload):
    """The workload's network as ``lib.nn.Sequential`` (lib is torch or tinyautograd)."""
    nn = lib.nn
    layers = []
    for spec in workload.layers:
        kind = spec[0]
        if kind == "linear":
            layers.append(nn.Linear(spec[1], spec[2]))
        elif kind == "conv":
            layers.append(nn.Conv2d(spec[1], spec[2], spec[3]))
        elif kind == "sigmoid":
            layers.append(nn.Sigmoid())
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(spec[1]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    return nn.Sequential(*layers)


def initial_state(workload: Workload) -> dict[str, np.ndarray]:
    """torch's default initialisation (seeded), as NumPy arrays keyed like its state_dict."""
    torch.manual_seed(0)
    model = build_model(torch, workload)
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def library_trainer(lib, workload: Workload, state: dict[str, np.ndarray], device: str = "cpu"):
    """(step(x, y) -> loss tensor, to_device(array) -> tensor) for ``lib`` from the weights in ``state``."""
    model = build_model(lib, workload)
    model.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    model.to(device)
    if workload.optimizer == "adam":
        optimizer = lib.optim.Adam(model.parameters(), lr=workload.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    else:
        optimizer = lib.optim.SGD(model.parameters(), lr=workload.lr)
    cross_entropy = lib.nn.functional.cross_entropy

    def step(x, y):
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def to_device(array: np.ndarray):
        return lib.tensor(array, device=device)

    return step, to_device


# ------------------------------------------------------------------------------- the hand-written NumPy floor

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _im2col(h: np.ndarray, k: int) -> np.ndarray:
    """(C, B, H, W) -> columns (k * k * C, B * Ho * Wo): one strided block copy per kernel offset, each with runs of
    Wo contiguous elements (a per-window copy would move runs of only k)."""
    c, b, height, width = h.shape
    ho, wo = height - k + 1, width - k + 1
    cols = np.empty((k, k, c, b, ho, wo), dtype=h.dtype)
    for i in range(k):
        for j in range(k):
            cols[i, j] = h[:, :, i:i + ho, j:j + wo]
    return cols.reshape(k * k * c, b * ho * wo)


def _col2im(g_cols: np.ndarray, in_shape: tuple, k: int) -> np.ndarray:
    """The adjoint of _im2col: columns (k * k * C, B * Ho * Wo) summed back into (C, B, H, W)."""
    c, b, height, width = in_shape
    ho, wo = height - k + 1, width - k + 1
    patches = g_cols.reshape(k, k, c, b, ho, wo)
    out = np.zeros(in_shape, dtype=g_cols.dtype)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + ho, j:j + wo] += patches[i, j]
    return out


class NumpyNet:
    """The workload's network written out by hand: forward keeps what backward needs, backward walks the layers in
    reverse, the optimizer updates the arrays in place.

    Linear weights keep torch's (out, in) layout. The convolutional part runs in (C, B, H, W) layout: a convolution
    is then one matrix product of the (out, k * k * in) weight with the im2col columns whose result is already
    (out, B, Ho, Wo), so no activation is ever transposed; conv weights are stored as (out, k, k, in) to match the
    columns, and ``flatten`` returns to torch's (B, C * H * W) order.
    """

    def __init__(self, workload: Workload, state: dict[str, np.ndarray]) -> None:
        self.workload = workload
        self.layers = []
        self.params: list[np.ndarray] = []
        for index, spec in enumerate(workload.layers):
            weight, bias = state.get(f"{index}.weight"), state.get(f"{index}.bias")
            if spec[0] == "conv":
                weight = weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
            if weight is not None:
                weight, bias = weight.copy(), bias.copy()
                self.params += [weight, bias]
            self.layers.append((spec, weight, bias))
        self.channels_first = workload.layers[0][0] == "conv"
        # Adam's first and second moments and one scratch array per parameter, so updates allocate nothing
        self.moments = [(np.zeros_like(p), np.zeros_like(p), np.empty_like(p)) for p in self.params]
        self.step_count = 0

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        saved = []
        h = np.ascontiguousarray(x.transpose(1, 0, 2, 3)) if self.channels_first else x
        for spec, weight, bias in self.layers:
            kind = spec[0]
            if kind == "linear":
                saved.append(h)
                h = h @ weight.T + bias
            elif kind == "conv":
                k = spec[3]
                _, b, height, width = h.shape
                cols = _im2col(h, k)
                saved.append((cols, h.shape))
                h = (weight @ cols + bias[:, None]).reshape(-1, b, height - k + 1, width - k + 1)
            elif kind == "sigmoid":
                h = _sigmoid(h)
                saved.append(h)
            elif kind == "relu":
                saved.append(h > 0)
                h = h * saved[-1]
            elif kind == "maxpool":
                # the four corners of every 2x2 window as strided views: elementwise maxima beat a reduction
                # over two non-adjacent axes by far
                corners = [h[:, :, i::2, j::2] for i in range(2) for j in range(2)]
                pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
                # ties only occur between zeros after ReLU, whose gradient the ReLU mask zeroes anyway
                saved.append(([corner == pooled for corner in corners], h.shape))
                h = pooled
            elif kind == "flatten":
                saved.append(h.shape)
                h = h.transpose(1, 0, 2, 3).reshape(h.shape[1], -1)

        logits = h
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        g = exp / total
        g[rows, y] -= 1
        g /= len(y)

        grads = []
        for index in reversed(range(len(self.layers))):
            (spec, weight, _), keep = self.layers[index], saved[index]
            kind = spec[0]
            first = index == 0  # the data needs no gradient
            if kind == "linear":
                grads += [g.sum(axis=0), g.T @ keep]
                if not first:
                    g = g @ weight
            elif kind == "conv":
                cols, in_shape = keep
                g_rows = g.reshape(weight.shape[0], -1)
                grads += [g_rows.sum(axis=1), g_rows @ cols.T]
                if not first:
                    g = _col2im(weight.T @ g_rows, in_shape, spec[3])
            elif kind == "sigmoid":
                g = g * keep * (1 - keep)
            elif kind == "relu":
                g = g * keep
            elif kind == "maxpool":
                masks, in_shape = keep
                g_in = np.empty(in_shape, dtype=g.dtype)
                for (i, j), mask in zip(((0, 0), (0, 1), (1, 0), (1, 1)), masks):
                    np.multiply(g, mask, out=g_in[:, :, i::2, j::2])
                g = g_in
            elif kind == "flatten":
                c, b, height, width = keep
                g = np.ascontiguousarray(g.reshape(b, c, height, width).transpose(1, 0, 2, 3))
        grads.reverse()  # now [w0, b0, w1, b1, ...], the order of self.params
        self._update(grads)
        return loss

    def _update(self, grads: list[np.ndarray]) -> None:
        lr = self.workload.lr
        if self.workload.optimizer == "sgd":
            for p, g in zip(self.params, grads):
                p -= lr * g
            return
        beta1, beta2 = ADAM_BETAS
        self.step_count += 1
        step_size = lr / (1 - beta1 ** self.step_count)
        root_correction = np.sqrt(1 - beta2 ** self.step_count)
        for p, g, (m, v, scratch) in zip(self.params, grads, self.moments):
            m *= beta1
            np.multiply(g, 1 - beta1, out=scratch)
            m += scratch
            v *= beta2
            np.multiply(g, g, out=scratch)
            scratch *= 1 - beta2
            v += scratch
            np.sqrt(v, out=scratch)
            scratch /= root_correction
            scratch += ADAM_EPS
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            p -= scratch


# ----------------------------------------------------------------------------------------------------- timing

def per_step_seconds(step: Callable, batches: list, steps: int, repeat: int, sync=None) -> float:
    """Median seconds per step over ``repeat`` runs of ``steps`` steps cycling through ``batches``."""
    def run():
        for i in range(steps):
            step(*batches[i % len(batches)])

    return median_seconds(run, repeat=repeat, warmup=1, sync=sync) / steps


def check_losses(losses: dict[str, list[float]], workload: Workload) -> None:
    """The first steps' losses must agree across implementations (float32: loose tolerance)."""
    reference = np.array(losses["torch"])
    for name, values in losses.items():
        if not np.allclose(values, reference, rtol=2e-3, atol=1e-4):
            raise SystemExit(f"{workload.name}: {name} losses {values} differ from torch's {list(reference)}; the "
                             "timings would not compare the same computation")
    print(f"  {workload.name}: first {CHECK_STEPS} losses agree "
          f"({', '.join(f'{v:.4f}' for v in reference)})", flush=True)


def run_cpu_workload(workload: Workload, threads: int, quick: bool) -> Row:
    state = initial_state(workload)
    raw_batches = make_batches(workload, 4)
    steps = max(2, workload.steps // 5) if quick else workload.steps
    repeat = 2 if quick else 5
    seconds, losses = {}, {}

    net = NumpyNet(workload, state)
    losses["numpy"] = [net.step(*raw_batches[i]) for i in range(CHECK_STEPS)]
    seconds["numpy"] = per_step_seconds(net.step, raw_batches, steps, repeat)
    for name, lib in (("torch", torch), ("tinyautograd", tg)):
        step, to_device = library_trainer(lib, workload, state)
        batches = [(to_device(x), to_device(y)) for x, y in raw_batches]
        losses[name] = [float(step(*batches[i]).item()) for i in range(CHECK_STEPS)]
        seconds[name] = per_step_seconds(step, batches, steps, repeat)
    check_losses(losses, workload)
    return Row(workload.name, "ms/step", seconds["numpy"] * 1e3, seconds["torch"] * 1e3,
               seconds["tinyautograd"] * 1e3, threads)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    _common.configure_torch(torch, args.threads)
    rows = [run_cpu_workload(w, args.threads, args.quick) for w in CPU_WORKLOADS]
    print_table(rows, f"training steps ({args.threads} thread{'s' if args.threads > 1 else ''}; median per step)")
    write_json(rows, args.json)


if __name__ == "__main__":
    main()
