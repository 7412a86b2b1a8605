# %% [markdown]
# # 12 · Weight initialisation: activation histograms per layer
#
# Course topic: **Weight Initialization** (small std, Xavier, Xavier + ReLU, He + ReLU). The course's figures
# push 1,000 random inputs through 5 fully connected layers of 100 units and draw a histogram of every layer's
# activations. The scale of the initial weights decides whether those activations keep a useful spread:
#
# * std 1 with sigmoid: pre-activations are large, the sigmoid saturates at 0 and 1 (where its gradient vanishes);
# * std 0.01: every layer shrinks the signal; with sigmoid all outputs pile up at 0.5, with ReLU they go to 0;
# * Xavier (std `sqrt(2 / (fan_in + fan_out))` = `1/sqrt(100)` here): keeps the spread of sigmoid and tanh layers;
# * Xavier with ReLU: ReLU zeroes half the signal, so the spread halves in variance at every layer;
# * He (std `sqrt(2 / fan_in)`): compensates exactly for ReLU, and the spread stays constant.
#
# The histograms use tinyautograd's own `nn.init` functions. Three checks tie them to torch: the same weights give
# the same activations in both libraries, tinyautograd's own random initialisation gives the same per-layer
# statistics as torch's own, and every initialiser has torch's variance on a large tensor.

# %%
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
import tinyautograd.nn as tnn
from _common import FAST, assert_close, copy_torch_weights, print_table, savefig

start = time.perf_counter()
samples, width, depth = (300 if FAST else 1000), 100, 5
inputs = np.random.default_rng(0).standard_normal((samples, width)).astype(np.float32)
tg.manual_seed(0)
torch.manual_seed(0)

# %% [markdown]
# ## The experiment
# Each configuration names an activation and an initialiser; the initialiser is spelled the same way in both
# libraries (`nn.init.normal_`, `nn.init.xavier_normal_`, `nn.init.kaiming_normal_`), so one function builds
# the network for either.

# %%
CONFIGS = {
    "std 1, sigmoid": ("sigmoid", lambda init, w: init.normal_(w, std=1.0)),
    "std 0.01, sigmoid": ("sigmoid", lambda init, w: init.normal_(w, std=0.01)),
    "Xavier, sigmoid": ("sigmoid", lambda init, w: init.xavier_normal_(w)),
    "Xavier, tanh": ("tanh", lambda init, w: init.xavier_normal_(w)),
    "std 0.01, ReLU": ("relu", lambda init, w: init.normal_(w, std=0.01)),
    "Xavier, ReLU": ("relu", lambda init, w: init.xavier_normal_(w)),
    "He, ReLU": ("relu", lambda init, w: init.kaiming_normal_(w, nonlinearity="relu")),
}


def build(nn, activation: str, initialise) -> list:
    """``depth`` bias-free Linear(100, 100) layers, each initialised by ``initialise(nn.init, weight)``."""
    layers = [nn.Linear(width, width, bias=False) for _ in range(depth)]
    for layer in layers:
        initialise(nn.init, layer.weight)
    return layers


def activations(lib, layers: list, activation: str) -> list[np.ndarray]:
    """The output of every layer's activation function for ``inputs``, as NumPy arrays."""
    fn = {"sigmoid": lib.sigmoid, "tanh": lib.tanh, "relu": lib.relu}[activation]
    h, outputs = lib.tensor(inputs), []
    with lib.no_grad():
        for layer in layers:
            h = fn(layer(h))
            outputs.append(h.numpy())
    return outputs


draws = 8  # independent initialisations per library for the statistics below
ours, theirs, std_ours, std_theirs = {}, {}, {}, {}
for name, (activation, initialise) in CONFIGS.items():
    torch_layers = build(torch.nn, activation, initialise)
    theirs[name] = activations(torch, torch_layers, activation)
    # 1. the same weights (torch's, copied through NumPy) give the same activations
    copied = build(tnn, activation, initialise)
    for torch_layer, tg_layer in zip(torch_layers, copied):
        copy_torch_weights(torch_layer, tg_layer)
    for i, (a, b) in enumerate(zip(activations(tg, copied, activation), theirs[name])):
        assert_close(a, b, f"{name}: layer {i + 1} activations with torch's weights", rtol=1e-4, atol=1e-6)
    # 2. tinyautograd's own initialisation: the first draw is the figure, all draws give the statistics
    ours[name] = activations(tg, build(tnn, activation, initialise), activation)
    std_ours[name] = np.mean([[a.std() for a in activations(tg, build(tnn, activation, initialise), activation)]
                              for _ in range(draws - 1)] + [[a.std() for a in ours[name]]], axis=0)
    std_theirs[name] = np.mean([[a.std() for a in activations(torch, build(torch.nn, activation, initialise),
                                                               activation)]
                                for _ in range(draws - 1)] + [[a.std() for a in theirs[name]]], axis=0)

# %% [markdown]
# ## Per-layer statistics
# tinyautograd's random numbers are its own, so its activations are not torch's number for number; their
# per-layer standard deviations must agree in distribution. One network's layer-5 std varies by up to 15% from
# draw to draw (a unit's offset depends on its own 100 weights), so each library's std is averaged over 8
# independent initialisations, and the two averages must agree within 30% (about 4 standard errors).

# %%
print_table(["configuration"] + [f"std layer {i + 1}" for i in range(depth)],
            [(k,) + tuple(v) for k, v in std_ours.items()], floatfmt=".3g")
for name in CONFIGS:
    assert_close(std_ours[name], std_theirs[name], f"{name}: mean per-layer std, own init vs torch's own init",
                 rtol=0.3)

# The course's observations, as assertions on tinyautograd's numbers:
last = {k: v[-1] for k, v in ours.items()}
saturated = np.mean((last["std 1, sigmoid"] < 0.02) | (last["std 1, sigmoid"] > 0.98))
print(f"std 1, sigmoid: {saturated:.0%} of layer-5 outputs are within 0.02 of 0 or 1")
assert saturated > 0.4, "std 1 should saturate a large part of the sigmoid outputs"
assert std_ours["std 0.01, sigmoid"][-1] < 0.02, "std 0.01 should collapse sigmoid outputs to about 0.5"
assert np.all(std_ours["Xavier, sigmoid"] > 0.05), "Xavier should keep a spread in every sigmoid layer"
assert np.all(std_ours["Xavier, tanh"] > 0.1), "Xavier should keep a spread in every tanh layer"
decay = {k: v[-1] / v[0] for k, v in std_ours.items()}
print_table(["ReLU configuration", "std layer 5 / std layer 1"],
            [(k, decay[k]) for k in ("std 0.01, ReLU", "Xavier, ReLU", "He, ReLU")], floatfmt=".3g")
assert decay["std 0.01, ReLU"] < 1e-3, "std 0.01 should make ReLU activations vanish"
assert 0.1 < decay["Xavier, ReLU"] < 0.5, "Xavier + ReLU should lose about half the variance per layer"
assert 0.7 < decay["He, ReLU"] < 1.4, "He + ReLU should keep the spread of the activations"

# %% [markdown]
# ## The course's figures: one row per configuration, one histogram per layer
# For ReLU rows only the positive activations are drawn (the other half are exactly 0). Each row shares its
# x-range, taken from layer 1, so a collapse shows as mass piling into one bin.

# %%
fig, axes = plt.subplots(len(CONFIGS), depth, figsize=(10, 1.45 * len(CONFIGS)))
for row, (name, layers) in enumerate(ours.items()):
    activation = CONFIGS[name][0]
    if activation == "relu":
        values = [a[a > 0] for a in layers]
        value_range = (0.0, float(np.quantile(values[0], 0.99)))
    else:
        values = [a.ravel() for a in layers]
        value_range = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
    for column, v in enumerate(values):
        ax = axes[row, column]
        ax.hist(v, bins=30, range=value_range, color=f"C{row}")
        ax.set_yticks([])
        ax.tick_params(labelsize=6)
        if row == 0:
            ax.set_title(f"layer {column + 1}", fontsize=9)
    axes[row, 0].set_ylabel(name, fontsize=8)
fig.suptitle(f"Activations of {depth} layers x {width} units for {samples} inputs (tinyautograd)", fontsize=10)
fig.tight_layout()
savefig(fig, "12_weight_init_histograms")

fig, ax = plt.subplots(figsize=(6, 3.6))
for i, name in enumerate(CONFIGS):
    ax.semilogy(np.arange(1, depth + 1), std_ours[name], "o-", color=f"C{i}", label=name)
    ax.semilogy(np.arange(1, depth + 1), std_theirs[name], "x--", color=f"C{i}", alpha=0.6)
ax.set_xticks(np.arange(1, depth + 1))
ax.set_xlabel("layer")
ax.set_ylabel("std of the activations")
ax.set_title("Spread per layer: tinyautograd (o, solid) and torch (x, dashed)", fontsize=10)
ax.legend(fontsize=7, loc="lower left", ncol=2)
fig.tight_layout()
savefig(fig, "12_weight_init_std")

# %% [markdown]
# ## The initialisers have torch's variance
# On a 400 x 300 weight (fan_in 300, fan_out 400) every initialiser's sample variance must match its formula and
# the sample variance of torch's own initialiser, within 3% (the sampling error of 120,000 draws is under 1%).
# torch's default for `nn.Linear` is `kaiming_uniform_(a=sqrt(5))`, i.e. uniform in +-1/sqrt(fan_in).

# %%
fan_in, fan_out = 300, 400
INITIALISERS = {
    "normal_(std=0.01)": (lambda init, w: init.normal_(w, std=0.01), 0.01 ** 2),
    "uniform_(-0.1, 0.1)": (lambda init, w: init.uniform_(w, -0.1, 0.1), 0.2 ** 2 / 12),
    "xavier_normal_": (lambda init, w: init.xavier_normal_(w), 2 / (fan_in + fan_out)),
    "xavier_uniform_": (lambda init, w: init.xavier_uniform_(w), 2 / (fan_in + fan_out)),
    "xavier_normal_(gain=tanh)": (lambda init, w: init.xavier_normal_(w, gain=init.calculate_gain("tanh")),
                                  (5 / 3) ** 2 * 2 / (fan_in + fan_out)),
    "kaiming_normal_(relu)": (lambda init, w: init.kaiming_normal_(w, nonlinearity="relu"), 2 / fan_in),
    "kaiming_uniform_(relu)": (lambda init, w: init.kaiming_uniform_(w, nonlinearity="relu"), 2 / fan_in),
    "kaiming_normal_(fan_out)": (lambda init, w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
                                 2 / fan_out),
    "Linear default": (lambda init, w: init.kaiming_uniform_(w, a=5 ** 0.5), 1 / (3 * fan_in)),
}
rows = []
for name, (initialise, variance) in INITIALISERS.items():
    ours_var = initialise(tnn.init, tg.empty(fan_out, fan_in)).numpy().var()
    theirs_var = initialise(torch.nn.init, torch.empty(fan_out, fan_in)).numpy().var()
    rows.append((name, variance, ours_var, theirs_var))
    assert_close(ours_var, variance, f"{name}: tinyautograd variance vs formula", rtol=0.03)
    assert_close(ours_var, theirs_var, f"{name}: tinyautograd variance vs torch's", rtol=0.03)
default_weight = tnn.Linear(fan_in, fan_out).weight.detach().numpy()
assert_close(default_weight.var(), 1 / (3 * fan_in), "nn.Linear's default weight variance", rtol=0.03)
assert np.abs(default_weight).max() <= 1 / fan_in ** 0.5, "nn.Linear's default weight must lie in +-1/sqrt(fan_in)"
print_table(["initialiser", "formula", "tinyautograd", "torch"], rows, floatfmt=".4g")

print(f"done in {time.perf_counter() - start:.1f} s")
