"""Core autograd speed: tinyautograd vs torch vs a hand-written NumPy forward/backward of the same math.

    python benchmarks/core.py [--threads N] [--json PATH] [--quick]

(a) per-op overhead: a chain of 500 add/mul/tanh/exp ops on (16,) tensors, forward and backward, in us per op;
(b) the course's XOR net (2-3-1, sigmoid, MSE, plain SGD lr 0.1, 20,000 full-batch steps) from the same initial
    weights in all three; the final losses are printed and must agree;
(c) a 100,000-node chain (y = y * 0.9999 + 0.0001, 50,000 times): forward and backward timed apart.
"""
from __future__ import annotations

import gc
import statistics

import _common  # before NumPy and torch: applies --threads while their thread pools can still be sized
from _common import Row, median_seconds, print_table, timed, write_json

import numpy as np
import torch

import tinyautograd as tg

CHAIN_BLOCKS = 125  # four ops per block: 500 ops
XOR_STEPS = 20_000
XOR_LR = 0.1
LONG_CHAIN_STEPS = 50_000  # two ops per step: 100,000 nodes


# ------------------------------------------------------------------------------------------ (a) op overhead

def op_chain_inputs():
    rng = np.random.default_rng(0)
    return (rng.uniform(-1, 1, 16).astype(np.float32), rng.uniform(-0.5, 0.5, 16).astype(np.float32),
            rng.uniform(0.5, 1.0, 16).astype(np.float32))


def op_chain_library(lib):
    """fn() running forward and backward of the 500-op chain with ``lib`` (tinyautograd or torch)."""
    x0, c0, d0 = op_chain_inputs()
    x = lib.tensor(x0, requires_grad=True)
    c, d = lib.tensor(c0), lib.tensor(d0)

    def run():
        y = x
        for _ in range(CHAIN_BLOCKS):
            y = ((y + c) * d).tanh().exp()
        x.grad = None
        y.sum().backward()
        return x.grad

    return run


def op_chain_numpy():
    x, c, d = op_chain_inputs()

    def run():
        saved = []
        y = x
        for _ in range(CHAIN_BLOCKS):
            t = np.tanh((y + c) * d)
            y = np.exp(t)
            saved.append((t, y))
        g = np.ones_like(x)
        for t, e in reversed(saved):
            g = g * e  # exp
            g = g * (1 - t * t)  # tanh
            g = g * d  # mul; add passes g through
        return g

    return run


# ---------------------------------------------------------------------------------------------- (b) XOR net

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_T = np.array([[0], [1], [1], [0]], dtype=np.float32)


def xor_initial_weights() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.uniform(-1, 1, shape).astype(np.float32) for shape in ((2, 3), (3,), (3, 1), (1,))]


def xor_library(lib, steps: int) -> float:
    """Train the XOR net for ``steps`` steps with ``lib``; the final loss."""
    w1, b1, w2, b2 = params = [lib.tensor(w, requires_grad=True) for w in xor_initial_weights()]
    x, t = lib.tensor(XOR_X), lib.tensor(XOR_T)
    for _ in range(steps):
        h = lib.sigmoid(x @ w1 + b1)
        out = lib.sigmoid(h @ w2 + b2)
        loss = ((out - t) ** 2).mean()
        loss.backward()
        with lib.no_grad():
            for p in params:
                p -= XOR_LR * p.grad
                p.grad = None
    return float(loss.item())


def xor_numpy(steps: int) -> float:
    w1, b1, w2, b2 = xor_initial_weights()
    x, t = XOR_X, XOR_T
    n = t.size
    for _ in range(steps):
        h = 1 / (1 + np.exp(-(x @ w1 + b1)))
        out = 1 / (1 + np.exp(-(h @ w2 + b2)))
        diff = out - t
        loss = (diff * diff).mean()
        g_z2 = (2 / n) * diff * out * (1 - out)
        g_z1 = (g_z2 @ w2.T) * h * (1 - h)
        w2 -= XOR_LR * (h.T @ g_z2)
        b2 -= XOR_LR * g_z2.sum(0)
        w1 -= XOR_LR * (x.T @ g_z1)
        b1 -= XOR_LR * g_z1.sum(0)
    return float(loss)


# --------------------------------------------------------------------------------------- (c) 100k-node chain

def long_chain_library(lib, steps: int):
    """(forward fn returning the output, backward fn taking it) for the long chain with ``lib``."""
    x = lib.tensor(1.0, requires_grad=True)

    def forward():
        y = x
        for _ in range(steps):
            y = y * 0.9999 + 0.0001
        return y

    def backward(y):
        x.grad = None
        y.backward()
        return float(x.grad)

    return forward, backward


def long_chain_numpy(steps: int):
    x = np.float32(1.0)
    a, b = np.float32(0.9999), np.float32(0.0001)

    def forward():
        y = x
        for _ in range(steps):
            y = y * a + b
        return y

    def backward(_y):
        g = np.float32(1.0)
        for _ in range(steps):
            g = g * a
        return float(g)

    return forward, backward


def time_forward_backward(forward, backward, repeat: int) -> tuple[float, float, float]:
    """Median forward and backward seconds over ``repeat`` runs, and the gradient of the last run."""
    forward_times, backward_times = [], []
    for _ in range(repeat):
        y, seconds = timed(forward)
        forward_times.append(seconds)
        grad, seconds = timed(backward, y)
        backward_times.append(seconds)
        del y
        gc.collect()
    return statistics.median(forward_times), statistics.median(backward_times), grad


# ------------------------------------------------------------------------------------------------------ main

def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    threads = args.threads
    _common.configure_torch(torch, threads)
    quick = args.quick
    rows: list[Row] = []

    repeat = 3 if quick else 15
    per_op = {name: median_seconds(fn, repeat=repeat, number=2 if quick else 5) / (4 * CHAIN_BLOCKS) * 1e6
              for name, fn in (("numpy", op_chain_numpy()), ("torch", op_chain_library(torch)),
                               ("tinyautograd", op_chain_library(tg)))}
    rows.append(Row("per-op fwd+bwd, (16,) chain of 500 add/mul/tanh/exp", "us/op", per_op["numpy"],
                    per_op["torch"], per_op["tinyautograd"], threads))

    steps = 2_000 if quick else XOR_STEPS
    losses, xor_times = {}, {}
    for name, train in (("numpy", xor_numpy), ("torch", lambda s: xor_library(torch, s)),
                        ("tinyautograd", lambda s: xor_library(tg, s))):
        losses[name], xor_times[name] = timed(train, steps)
    rows.append(Row(f"XOR 2-3-1 sigmoid/MSE/SGD, {steps:,} full-batch steps", "s", xor_times["numpy"],
                    xor_times["torch"], xor_times["tinyautograd"], threads))

    chain_steps = 5_000 if quick else LONG_CHAIN_STEPS
    chain = {}
    for name, (forward, backward) in (("numpy", long_chain_numpy(chain_steps)),
                                      ("torch", long_chain_library(torch, chain_steps)),
                                      ("tinyautograd", long_chain_library(tg, chain_steps))):
        chain[name] = time_forward_backward(forward, backward, repeat=2 if quick else 3)
    nodes = 2 * chain_steps
    for i, phase in enumerate(("forward", "backward")):
        rows.append(Row(f"{nodes:,}-node chain y = y*0.9999 + 0.0001, {phase}", "ms",
                        chain["numpy"][i] * 1e3, chain["torch"][i] * 1e3, chain["tinyautograd"][i] * 1e3, threads))

    print_table(rows, f"core benchmarks ({threads} thread{'s' if threads > 1 else ''}; median times)")
    print(f"\nXOR final loss after {steps:,} steps: " + ", ".join(f"{k} {v:.6f}" for k, v in losses.items()))
    spread = max(losses.values()) - min(losses.values())
    agree = spread <= 1e-4 + 1e-3 * abs(losses["torch"])
    print(f"  {'agree' if agree else 'DISAGREE'} (spread {spread:.2e}; float32 rounding differs slightly per library)")
    print("chain gradient dy/dx: " + ", ".join(f"{k} {v[2]:.6f}" for k, v in chain.items())
          + f" (0.9999^{chain_steps} in float64: {0.9999 ** chain_steps:.6f})")
    write_json(rows, args.json)
    if not agree:
        raise SystemExit("XOR final losses disagree between the implementations")


if __name__ == "__main__":
    main()
