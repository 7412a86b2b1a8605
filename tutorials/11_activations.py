# %% [markdown]
# # 11 · Activation functions and their derivatives
#
# Course topic: **Activation Functions** (sigmoid, tanh, ReLU, leaky ReLU `max(0.1x, x)`, Maxout, ELU), which
# the notes introduce right after the *vanishing gradient problem*.
#
# Every activation here is evaluated on the same grid in tinyautograd and in PyTorch; its first derivative comes
# from autograd (`autograd.grad` of the sum, which for an elementwise function is exactly the elementwise
# derivative) and its second derivative from a second pass through the graph (`create_graph=True`). Each curve is
# checked twice: against torch, and against the textbook formula written in NumPy. Maxout has no torch
# counterpart, so it is checked against the NumPy formula only. The last section shows why the course moves from
# sigmoid to ReLU: the gradient reaching the first layer of a deep sigmoid network is orders of magnitude smaller.

# %%
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
import tinyautograd.nn as tnn
import tinyautograd.nn.functional as TF
from _common import FAST, assert_close, copy_torch_weights, print_table, savefig

start = time.perf_counter()
points = 161 if FAST else 801
grid = np.linspace(-4.0, 4.0, points)  # float64 so that the agreement can be checked tightly

# %% [markdown]
# ## The functions, side by side
# Each entry names the tinyautograd call, the torch call and the NumPy formulas for f, f' and f'' (the course's
# leaky ReLU uses the slope 0.1; ELU uses alpha = 1). At x = 0 ReLU and leaky ReLU are not differentiable: both
# libraries use the left slope for ReLU (0) and the negative slope for leaky ReLU (0.1), which is what the NumPy
# formulas below encode with `x > 0`. ELU's second derivative jumps at 0 as well; there torch's double backward
# returns 0 while its first derivative used the `x <= 0` branch, and tinyautograd returns alpha (the derivative of
# that same branch), so that single point is left out of the torch comparison.

# %%
ALPHA = 1.0
SLOPE = 0.1


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "sigmoid": (tg.sigmoid, torch.sigmoid,
                np_sigmoid,
                lambda x: np_sigmoid(x) * (1 - np_sigmoid(x)),
                lambda x: np_sigmoid(x) * (1 - np_sigmoid(x)) * (1 - 2 * np_sigmoid(x))),
    "tanh": (tg.tanh, torch.tanh,
             np.tanh,
             lambda x: 1 - np.tanh(x) ** 2,
             lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "ReLU": (TF.relu, torch.nn.functional.relu,
             lambda x: np.maximum(x, 0),
             lambda x: (x > 0).astype(float),
             lambda x: np.zeros_like(x)),
    "leaky ReLU (0.1)": (lambda x: TF.leaky_relu(x, SLOPE), lambda x: torch.nn.functional.leaky_relu(x, SLOPE),
                         lambda x: np.maximum(SLOPE * x, x),
                         lambda x: np.where(x > 0, 1.0, SLOPE),
                         lambda x: np.zeros_like(x)),
    "ELU": (lambda x: TF.elu(x, ALPHA), lambda x: torch.nn.functional.elu(x, ALPHA),
            lambda x: np.where(x > 0, x, ALPHA * np.expm1(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 1.0, ALPHA * np.exp(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 0.0, ALPHA * np.exp(np.minimum(x, 0)))),
}


def value_and_derivatives(lib, fn, x_np: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f(x), f'(x), f''(x) from autograd (``lib`` is tinyautograd or torch; both spell it the same way)."""
    x = lib.tensor(x_np, requires_grad=True)
    y = fn(x)
    (first,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    # ReLU's derivative is piecewise constant: its graph may not depend on x, so allow an unused input
    (second,) = lib.autograd.grad(first.sum(), x, allow_unused=True) if first.requires_grad else (None,)
    second_np = np.zeros_like(x_np) if second is None else second.detach().numpy()
    return y.detach().numpy(), first.detach().numpy(), second_np


curves = {}
for name, (tg_fn, torch_fn, f, df, d2f) in ACTIVATIONS.items():
    ours = value_and_derivatives(tg, tg_fn, grid)
    theirs = value_and_derivatives(torch, torch_fn, grid)
    for order, (a, b, formula) in enumerate(zip(ours, theirs, (f, df, d2f))):
        what = ("f", "f'", "f''")[order]
        # ELU'' jumps from alpha to 0 at x = 0; torch's double backward takes 0 there although its f'(0) uses the
        # x <= 0 branch (alpha), tinyautograd differentiates the branch f' used: compare away from the kink
        away = grid != 0 if name == "ELU" and order == 2 else slice(None)
        assert_close(a[away], b[away], f"{name}: {what} tinyautograd vs torch", rtol=1e-12, atol=1e-12)
        assert_close(a, formula(grid), f"{name}: {what} tinyautograd vs the NumPy formula", rtol=1e-12, atol=1e-12)
    curves[name] = ours

# %% [markdown]
# ## Maxout
# A Maxout unit takes the maximum of k affine pieces, `max(w1·x + b1, w2·x + b2)` in the course. It is a learned
# convex piecewise-linear activation (ReLU is the special case w1 = 1, b1 = 0, w2 = 0, b2 = 0). tinyautograd has it
# as `nn.functional.maxout(input, num_pieces)` / `nn.Maxout(num_pieces)` after a Linear layer with
# `num_pieces` outputs per unit; torch has no Maxout, so the check is the NumPy formula. Its derivative with
# respect to x is the slope of whichever piece wins.

# %%
pieces_weight = np.array([[1.0], [-0.5], [0.25]])  # three pieces of one unit: rows 0, 1, 2 of the Linear weight
pieces_bias = np.array([0.0, 0.5, 1.0])
x = tg.tensor(grid[:, None], requires_grad=True)
maxout_y = TF.maxout(TF.linear(x, tg.tensor(pieces_weight), tg.tensor(pieces_bias)), 3)
(maxout_dy,) = tg.autograd.grad(maxout_y.sum(), x)
affine = grid[:, None] * pieces_weight[:, 0] + pieces_bias  # (points, 3): every piece at every x
assert_close(maxout_y[:, 0], affine.max(axis=1), "Maxout value vs max over the NumPy pieces", rtol=1e-12, atol=1e-12)
assert_close(maxout_dy[:, 0], pieces_weight[affine.argmax(axis=1), 0], "Maxout derivative = slope of the winning piece",
             rtol=1e-12, atol=1e-12)
curves["Maxout (3 pieces)"] = (maxout_y[:, 0].detach().numpy(), maxout_dy[:, 0].numpy(), np.zeros_like(grid))

# The module form on a batch: 8 samples, 4 units of 2 pieces after a Linear(5, 8).
rng = np.random.default_rng(0)
features = rng.standard_normal((8, 5))
layer = tnn.Sequential(tnn.Linear(5, 8), tnn.Maxout(num_pieces=2)).double()
w, b = layer[0].weight.detach().numpy(), layer[0].bias.detach().numpy()
expected = (features @ w.T + b).reshape(8, 4, 2).max(axis=2)
assert_close(layer(tg.tensor(features)), expected, "nn.Maxout(2) after Linear(5, 8) vs NumPy", rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## The figure: f, f' and f''

# %%
fig, axes = plt.subplots(3, len(curves), figsize=(2.2 * len(curves), 5.6), sharex=True)
for column, (name, (y, dy, d2y)) in enumerate(curves.items()):
    for row, (values, label) in enumerate(((y, "f(x)"), (dy, "f'(x)"), (d2y, "f''(x)"))):
        ax = axes[row, column]
        ax.plot(grid, values, color=("C0", "C1", "C2")[row])
        ax.axhline(0, color="0.8", lw=0.6)
        ax.axvline(0, color="0.8", lw=0.6)
        if row == 0:
            ax.set_title(name, fontsize=9)
        if column == 0:
            ax.set_ylabel(label)
        ax.tick_params(labelsize=7)
axes[2, -1].text(0.5, 0.75, "piecewise linear:\nf'' = 0", ha="center", va="center",
                 transform=axes[2, -1].transAxes, fontsize=8)
fig.suptitle("Activations and their derivatives from autograd (identical in tinyautograd and torch)", fontsize=10)
fig.tight_layout()
savefig(fig, "11_activations")

# %% [markdown]
# ## Vanishing gradients: sigmoid vs ReLU in a deep network
# sigmoid' is at most 0.25, so every sigmoid layer shrinks the backward signal by that factor or more. Here a
# 10-layer MLP (width 64, the same He-initialised weights and zero biases in both libraries, see tutorial 12)
# gets one batch of random inputs; we record the gradient norm of each layer's weight. With sigmoid the first
# layer's gradient is some 10^5 times smaller than the last layer's; with ReLU it keeps its size.

# %%
depth, width = 10, 64
inputs = np.random.default_rng(1).standard_normal((32, width)).astype(np.float32)


def deep_mlp(nn, activation: str):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Sigmoid() if activation == "sigmoid" else nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


grad_norms = {}
for activation in ("sigmoid", "ReLU"):
    torch.manual_seed(0)
    torch_net = deep_mlp(torch.nn, activation)
    for module in torch_net:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    tg_net = deep_mlp(tnn, activation)
    copy_torch_weights(torch_net, tg_net)
    norms = []
    for lib, net in ((tg, tg_net), (torch, torch_net)):
        net(lib.tensor(inputs)).pow(2).mean().backward()
        norms.append(np.array([np.linalg.norm(m.weight.grad.numpy()) for m in net if hasattr(m, "weight")]))
    assert_close(norms[0], norms[1], f"{activation} net: per-layer weight-gradient norms vs torch", rtol=1e-3)
    grad_norms[activation] = norms[0]

ratio = {k: v[0] / v[-1] for k, v in grad_norms.items()}
print_table(["activation", "|grad W1|", f"|grad W{depth}|", "first / last"],
            [(k, v[0], v[-1], ratio[k]) for k, v in grad_norms.items()], floatfmt=".3g")
assert ratio["sigmoid"] < 1e-3, "the sigmoid network's first layer should get a vanishing gradient"
assert 0.1 < ratio["ReLU"] < 10, "the ReLU network's first layer should get a gradient of the last layer's size"

fig, ax = plt.subplots(figsize=(5, 3.2))
for name, norms in grad_norms.items():
    ax.semilogy(np.arange(1, depth + 1), norms, "o-", label=name)
ax.set_xlabel("layer (1 = next to the input)")
ax.set_ylabel("|dL/dW| (Frobenius norm)")
ax.set_title(f"Gradient reaching each layer of a {depth}-layer MLP", fontsize=10)
ax.legend()
fig.tight_layout()
savefig(fig, "11_vanishing_gradient")

print(f"done in {time.perf_counter() - start:.1f} s")
