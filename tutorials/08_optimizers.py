# %% [markdown]
# # 08 · Optimizers and learning rates
#
# Course topics: **Learning rate** and **optimizers** ("산내려오는 작은 오솔길 잘찾기", finding the small path down
# the mountain: the optimizer family tree from SGD through Momentum and AdaGrad to RMSprop and Adam).
#
# The test bed is a narrow valley, f(x, y) = x²/20 + y², starting from (-7, 2): the slope along y is 20 times
# steeper than along x, so a single learning rate is too large for one direction and too small for the other.
# Each optimizer is written by hand in NumPy (its update rule in torch's form), then run as
# `tinyautograd.optim.X` and `torch.optim.X`: the three paths must be the same, step by step.

# %%
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from _common import FAST, assert_close, print_table, savefig

START = np.array([-7.0, 2.0])
STEPS = 30


def f(x, y):
    return x ** 2 / 20.0 + y ** 2


def grad_f(p: np.ndarray) -> np.ndarray:
    return np.array([p[0] / 10.0, 2.0 * p[1]])


# %% [markdown]
# ## The update rules by hand
# g is the gradient, lr the learning rate. Momentum keeps a velocity b = μb + g (a heavy ball rolling downhill);
# AdaGrad divides each coordinate's step by the root of its summed squared gradients, so steep directions slow
# down; RMSprop replaces that sum, which only grows, by a moving average; Adam combines a moving average of g
# (momentum) with RMSprop's scaling, both corrected for their zero start.

# %%
def by_hand(name: str, lr: float, steps: int = STEPS, **hyper) -> np.ndarray:
    """The path of one optimizer from START, written with NumPy in torch's update form."""
    p = START.copy()
    state = {"b": np.zeros(2), "s": np.zeros(2), "m": np.zeros(2)}
    path = [p.copy()]
    for step in range(1, steps + 1):
        g = grad_f(p)
        if name == "SGD":
            p -= lr * g
        elif name == "Momentum":
            state["b"] = hyper["momentum"] * state["b"] + g if step > 1 else g
            p -= lr * state["b"]
        elif name == "AdaGrad":
            state["s"] += g * g
            p -= lr * g / (np.sqrt(state["s"]) + 1e-10)
        elif name == "RMSprop":
            state["s"] = 0.99 * state["s"] + 0.01 * g * g
            p -= lr * g / (np.sqrt(state["s"]) + 1e-8)
        elif name == "Adam":
            beta1, beta2 = 0.9, 0.999
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["s"] = beta2 * state["s"] + (1 - beta2) * g * g
            m_hat = state["m"] / (1 - beta1 ** step)
            s_hat = state["s"] / (1 - beta2 ** step)
            p -= lr * m_hat / (np.sqrt(s_hat) + 1e-8)
        path.append(p.copy())
    return np.array(path)


# %% [markdown]
# ## The same with the libraries' optimizers
# One code path for both libraries: the point is a parameter tensor, f is computed with tensor operations and
# `backward()` fills its gradient; the optimizer's `step()` does the update.

# %%
OPTIMIZERS = {  # name: (class name in optim, learning rate, keyword arguments)
    "SGD": ("SGD", 0.95, {}),
    "Momentum": ("SGD", 0.1, {"momentum": 0.9}),
    "AdaGrad": ("Adagrad", 1.5, {}),
    "RMSprop": ("RMSprop", 0.15, {}),
    "Adam": ("Adam", 0.3, {}),
}


def with_library(lib, class_name: str, lr: float, steps: int = STEPS, **kwargs) -> np.ndarray:
    point = lib.tensor(START, requires_grad=True)
    optimizer = getattr(lib.optim, class_name)([point], lr=lr, **kwargs)
    path = [START.copy()]
    for _ in range(steps):
        optimizer.zero_grad()
        f(point[0], point[1]).backward()
        optimizer.step()
        path.append(point.detach().numpy().copy())
    return np.array(path)


paths = {}
rows = []
for name, (class_name, lr, kwargs) in OPTIMIZERS.items():
    hand = by_hand(name, lr, **kwargs)
    ours = with_library(tg, class_name, lr, **kwargs)
    theirs = with_library(torch, class_name, lr, **kwargs)
    assert_close(ours, theirs, f"{name} path, {STEPS} steps: tinyautograd.optim = torch.optim", rtol=1e-12,
                 atol=1e-14)
    assert_close(ours, hand, f"{name} path: tinyautograd.optim = the rule by hand", rtol=1e-10, atol=1e-12)
    paths[name] = ours
    rows.append([name, f"{class_name}(lr={lr}{''.join(f', {k}={v}' for k, v in kwargs.items())})",
                 f(*ours[-1]), f(*theirs[-1])])
print_table(["optimizer", "call", f"f after {STEPS} steps (tinyautograd)", "(torch)"], rows, floatfmt=".3e")

# %% [markdown]
# ## Learning rates
# Plain SGD on this valley: along y the update multiplies y by (1 - 2 lr), so any lr > 1 diverges, while along
# x it multiplies x by (1 - lr / 10), so small rates crawl. A learning rate is a compromise between the two.

# %%
RATES = [0.05, 0.3, 0.95, 1.02]
lr_steps = 20 if FAST else 60
lr_curves = {}
for lr in RATES:
    ours = with_library(tg, "SGD", lr, steps=lr_steps)
    theirs = with_library(torch, "SGD", lr, steps=lr_steps)
    assert_close(ours, theirs, f"SGD lr={lr}, {lr_steps} steps: tinyautograd = torch", rtol=1e-12, atol=1e-14)
    lr_curves[lr] = f(ours[:, 0], ours[:, 1])
assert lr_curves[1.02][-1] > lr_curves[1.02][0], "lr > 1 must diverge along y"

# %% [markdown]
# ## Figure
# Five paths on the contours of f (the minimum is at the origin), and f along SGD paths for four learning rates.

# %%
xs, ys = np.meshgrid(np.linspace(-10, 10, 201), np.linspace(-5, 5, 101))
fig, axes = plt.subplots(2, 3, figsize=(13, 7))
for ax, (name, path) in zip(axes.flat, paths.items()):
    ax.contour(xs, ys, f(xs, ys), levels=np.geomspace(0.02, 25, 12), colors="0.7", linewidths=0.7)
    ax.plot(path[:, 0], path[:, 1], "o-", color="C3", ms=3, lw=1)
    ax.plot(0, 0, "+", color="k", ms=10)
    class_name, lr, kwargs = OPTIMIZERS[name]
    ax.set_title(f"{name}: {class_name}(lr={lr}{''.join(f', {k}={v}' for k, v in kwargs.items())})",
                 fontsize=10)
    ax.set_xlim(-10, 10)
    ax.set_ylim(-5, 5)
ax = axes.flat[5]
for lr, curve in lr_curves.items():
    ax.semilogy(curve, label=f"lr = {lr}")
ax.set_xlabel("step")
ax.set_title("SGD: f(x, y) per step for four learning rates", fontsize=10)
ax.set_ylim(1e-6, 1e4)
ax.legend(fontsize=8)
fig.suptitle("f(x, y) = x²/20 + y² from (-7, 2): tinyautograd paths (identical to torch's)")
fig.tight_layout()
savefig(fig, "08_optimizers")
