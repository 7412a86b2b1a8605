# %% [markdown]
# # 09 · Weight decay on a polynomial fit
#
# Course topic: **weight decay (L2 normalization)**, with the notes' two tables (from Bishop's *Pattern
# Recognition and Machine Learning*, §1.1): polynomials y(x, w) = w_0 + w_1 x + ... + w_M x^M of order
# M = 0, 1, 6, 9 fitted to ten noisy samples of sin(2πx), and the order-9 fit again with the penalty
#
# $$\tilde E(\mathbf w) = \frac12 \sum_{n=1}^{N} \{y(x_n, \mathbf w) - t_n\}^2 + \frac{\lambda}{2}\|\mathbf w\|^2$$
#
# for ln λ = -∞ (no penalty), -18 and 0. With ten points an order-9 polynomial passes through every one of them,
# noise included, with coefficients in the hundreds of thousands; a tiny penalty is enough to tame them.
#
# Our ten points are drawn afresh (the book's data is not in the notes), so the numbers differ from the
# notes' table, but the pattern is the same. The fits are exact minimisers computed in NumPy; tinyautograd and
# torch then check them with autograd (the gradient of Ẽ vanishes there, its Hessian is Φᵀ Φ + λ I, one Newton
# step lands on the minimum), and both libraries' `optim.SGD(weight_decay=λ)` find the regularised fit by descent.

# %%
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from _common import FAST, assert_close, print_table, savefig

rng = np.random.default_rng(19)
N = 10
x_train = np.linspace(0.0, 1.0, N)
t_train = np.sin(2 * np.pi * x_train) + rng.normal(scale=0.3, size=N)
x_test = rng.uniform(0.0, 1.0, size=100)
t_test = np.sin(2 * np.pi * x_test) + rng.normal(scale=0.3, size=100)


def design(x: np.ndarray, order: int) -> np.ndarray:
    """Φ (len(x), M + 1): the powers x^0 .. x^M of each point."""
    return x[:, None] ** np.arange(order + 1)


def fit(order: int, ln_lambda: float) -> np.ndarray:
    """The minimiser of Ẽ: least squares on Φ stacked over sqrt(λ) I (better conditioned than Φᵀ Φ)."""
    phi = design(x_train, order)
    lam = np.exp(ln_lambda)
    a = np.vstack([phi, np.sqrt(lam) * np.eye(order + 1)])
    b = np.concatenate([t_train, np.zeros(order + 1)])
    return np.linalg.lstsq(a, b, rcond=None)[0]


# %% [markdown]
# ## The coefficient tables

# %%
ORDERS = [0, 1, 6, 9]
LN_LAMBDAS = [-np.inf, -18.0, 0.0]
by_order = {m: fit(m, -np.inf) for m in ORDERS}
by_lambda = {ln: fit(9, ln) for ln in LN_LAMBDAS}


def table(columns: dict, header: list[str]) -> None:
    rows = []
    for i in range(10):
        rows.append([f"w_{i}*"] + [f"{w[i]:.2f}" if i < len(w) else "" for w in columns.values()])
    print_table([""] + header, rows)


table(by_order, [f"M = {m}" for m in ORDERS])
print()
table(by_lambda, ["ln λ = -inf", "ln λ = -18", "ln λ = 0"])

# the shape of the notes' tables: the order-9 interpolant's coefficients explode, the penalty shrinks them
assert np.abs(by_order[9]).max() > 1e4 > 1e3 * np.abs(by_order[1]).max()
assert np.abs(by_lambda[-18.0]).max() < np.abs(by_lambda[-np.inf]).max() / 100
assert np.abs(by_lambda[0.0]).max() < 1.0
rms_train_9 = np.sqrt(np.mean((design(x_train, 9) @ by_order[9] - t_train) ** 2))
assert rms_train_9 < 1e-6, "order 9 through 10 points interpolates them"

# %% [markdown]
# ## Autograd checks, tinyautograd and torch
# Ẽ is written once with tensor operations. At each fitted w*, its gradient (one backward pass) must vanish
# relative to its size at w = 0. Its Hessian, from differentiating the gradient again (`create_graph=True`),
# must be Φᵀ Φ + λ I: Ẽ is quadratic, so a single Newton step from w = 0, w = -H⁻¹ ∇Ẽ(0), is the answer.


# %%
def penalised_error(lib, w, order: int, lam: float):
    phi = lib.tensor(design(x_train, order))
    residual = phi @ w - lib.tensor(t_train)
    return 0.5 * (residual * residual).sum() + 0.5 * lam * (w * w).sum()


def gradient(lib, w_value: np.ndarray, order: int, lam: float, create_graph: bool = False):
    w = lib.tensor(w_value, requires_grad=True)
    (g,) = lib.autograd.grad(penalised_error(lib, w, order, lam), w, create_graph=create_graph)
    return w, g


cases = [(m, -np.inf, w) for m, w in by_order.items()] + [(9, ln, by_lambda[ln]) for ln in LN_LAMBDAS[1:]]
for order, ln_lambda, w_star in cases:
    lam = float(np.exp(ln_lambda))
    label = f"M = {order}, ln λ = {ln_lambda:g}"
    grads = {}
    for lib in (tg, torch):
        _, g_star = gradient(lib, w_star, order, lam)
        _, g_zero = gradient(lib, np.zeros(order + 1), order, lam)
        grads[lib.__name__] = (g_star.numpy(), g_zero.numpy())
        assert np.abs(g_star.numpy()).max() < 1e-6 * np.abs(g_zero.numpy()).max(), f"∇Ẽ(w*) = 0 ({label})"
    print(f"agree: ∇Ẽ vanishes at the fit, {label} (tinyautograd and torch)")
    assert_close(grads["tinyautograd"][1], grads["torch"][1], f"∇Ẽ(0): tinyautograd = torch ({label})",
                 rtol=1e-12)

order, lam = 9, 1.0
hessians = {}
for lib in (tg, torch):
    w, g = gradient(lib, np.zeros(order + 1), order, lam, create_graph=True)
    hessians[lib.__name__] = np.array([lib.autograd.grad(g[i], w, retain_graph=True)[0].numpy()
                                       for i in range(order + 1)])
phi9 = design(x_train, 9)
assert_close(hessians["tinyautograd"], phi9.T @ phi9 + lam * np.eye(10), "Hessian of Ẽ (M = 9, λ = 1) = ΦᵀΦ + λI",
             rtol=1e-12)
assert_close(hessians["tinyautograd"], hessians["torch"], "Hessian of Ẽ: tinyautograd = torch", rtol=1e-12)
_, g0 = gradient(tg, np.zeros(10), 9, lam)
newton = -np.linalg.solve(hessians["tinyautograd"], g0.numpy())
assert_close(newton, by_lambda[0.0], "one Newton step from 0 = the fit for M = 9, ln λ = 0", rtol=1e-9, atol=1e-12)

# %% [markdown]
# ## Weight decay in the optimizer
# `optim.SGD(params, lr, weight_decay=λ)` adds λw to the gradient before the step, which is exactly the gradient
# of the penalty λ/2 ‖w‖². So descending the *unpenalised* error ½ Σ (y - t)² with `weight_decay=λ` minimises
# Ẽ. For M = 9 and λ = 1 the problem is well conditioned (the Hessian's eigenvalues span 1 to about 21), and SGD
# with lr = 1/21.4 converges in a few hundred steps; both libraries take identical steps.

# %%
steps = 150 if FAST else 400
descent = {}
for lib in (tg, torch):
    w = lib.zeros(10, dtype=lib.float64, requires_grad=True)
    optimizer = lib.optim.SGD([w], lr=1 / 21.4, weight_decay=lam)
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        penalised_error(lib, w, 9, 0.0).backward()
        optimizer.step()
        path.append(w.detach().numpy().copy())
    descent[lib.__name__] = np.array(path)
assert_close(descent["tinyautograd"], descent["torch"],
             f"SGD(weight_decay=1) path, {steps} steps: tinyautograd = torch", rtol=1e-10, atol=1e-13)
assert_close(descent["tinyautograd"][-1], by_lambda[0.0], "SGD with weight_decay reaches the regularised fit",
             rtol=1e-3 if FAST else 1e-8, atol=1e-5 if FAST else 1e-10)

# %% [markdown]
# ## Error on new points
# The training error falls to zero as M grows, but the error on 100 new points from the same source (test set)
# rises sharply at M = 9: over-fitting. With the penalty, the test error is lowest for a moderate λ.

# %%
def rms(w: np.ndarray, x: np.ndarray, t: np.ndarray) -> float:
    return float(np.sqrt(np.mean((design(x, len(w) - 1) @ w - t) ** 2)))


all_orders = list(range(10))
rms_by_order = np.array([[rms(fit(m, -np.inf), x_train, t_train), rms(fit(m, -np.inf), x_test, t_test)]
                         for m in all_orders])
sweep = np.linspace(-35, 0, 36)
rms_by_lambda = np.array([[rms(fit(9, ln), x_train, t_train), rms(fit(9, ln), x_test, t_test)] for ln in sweep])
assert rms_by_order[9, 1] > 2 * rms_by_order[3, 1], "order 9 generalises far worse than order 3"

# %% [markdown]
# ## Figure
# The fitted curves are evaluated by tinyautograd (dots: torch, on a coarser grid).

# %%
grid = np.linspace(0.0, 1.0, 200)


def curve(lib, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    xt = lib.tensor(x)
    return (xt.unsqueeze(1) ** lib.arange(len(w)) @ lib.tensor(w)).numpy()


panels = [(f"M = {m}", by_order[m]) for m in ORDERS] + [("M = 9, ln λ = -18", by_lambda[-18.0]),
                                                        ("M = 9, ln λ = 0", by_lambda[0.0])]
fig, axes = plt.subplots(2, 4, figsize=(15, 6.5))
for ax, (title, w) in zip(axes.flat, panels):
    ours = curve(tg, w, grid)
    theirs = curve(torch, w, grid[::10])
    assert_close(ours[::10], theirs, f"fitted curve {title}: tinyautograd = torch", rtol=1e-9, atol=1e-9)
    ax.plot(grid, np.sin(2 * np.pi * grid), color="C2", lw=1, label="sin(2πx)")
    ax.plot(grid, ours, color="C3", label="fit (tinyautograd)")
    ax.plot(grid[::10], theirs, ".", color="k", ms=4, label="fit (torch)")
    ax.plot(x_train, t_train, "o", mfc="none", color="C0", label="data")
    ax.set_ylim(-1.6, 1.6)
    ax.set_title(title, fontsize=10)
axes.flat[0].legend(fontsize=7, loc="lower left")
ax = axes.flat[6]
ax.plot(all_orders, rms_by_order[:, 0], "o-", label="training")
ax.plot(all_orders, rms_by_order[:, 1], "o-", label="test")
ax.set_xlabel("M")
ax.set_ylabel("RMS error")
ax.set_ylim(0, 1.2)
ax.legend(fontsize=8)
ax.set_title("error vs order (ln λ = -inf)", fontsize=10)
ax = axes.flat[7]
ax.plot(sweep, rms_by_lambda[:, 0], label="training")
ax.plot(sweep, rms_by_lambda[:, 1], label="test")
ax.set_xlabel("ln λ")
ax.set_ylim(0, 1.2)
ax.legend(fontsize=8)
ax.set_title("M = 9: error vs ln λ", fontsize=10)
fig.tight_layout()
savefig(fig, "09_weight_decay")
