# %% [markdown]
# # 01 · The chain rule on a computational graph
#
# Course topic: **Computational Graph** and **chain rule**, the notes' first example:
#
# $$t = x + y, \qquad z = t^2, \qquad
#   \frac{\partial z}{\partial x} = \frac{\partial z}{\partial t}\frac{\partial t}{\partial x} = 2t \cdot 1
#   = 2(x + y).$$
#
# We compute the derivative three ways: by hand (the formula above, in plain Python), by tinyautograd's
# reverse-mode autograd, and by PyTorch, then draw the graph that tinyautograd recorded, with forward values along
# the edges and gradients (red) under them.

# %%
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from tinyautograd import viz
from _common import assert_close, print_table, savefig

# %% [markdown]
# ## By hand
# Forward pass: compute and remember every intermediate value. Backward pass: start from dz/dz = 1 and multiply
# by each local derivative on the way back, which is all the chain rule says.

# %%
x_value, y_value = 3.0, 4.0
t_value = x_value + y_value
z_value = t_value ** 2
dz_dz = 1.0
dz_dt = dz_dz * 2 * t_value  # local derivative of t^2
dz_dx = dz_dt * 1.0  # local derivative of x + y with respect to x
dz_dy = dz_dt * 1.0
print(f"by hand: t = {t_value}, z = {z_value}, dz/dt = {dz_dt}, dz/dx = {dz_dx}, dz/dy = {dz_dy}")

# %% [markdown]
# ## By autograd, in both libraries
# The code is the same for tinyautograd and torch: tensors that require grad are leaves of the graph; every
# operation on them records a node (`grad_fn`), and `backward()` replays the nodes in reverse. `retain_grad()`
# keeps the gradient of the intermediate `t` (by default only leaves keep theirs).


# %%
def chain(lib):
    """t = x + y, z = t^2 in ``lib`` (tinyautograd or torch); returns the tensors after backward."""
    x = lib.tensor(x_value, requires_grad=True)
    y = lib.tensor(y_value, requires_grad=True)
    t = x + y
    t.retain_grad()
    z = t ** 2
    z.retain_grad()
    z.backward()
    return {"x": x, "y": y, "t": t, "z": z}


ours, theirs = chain(tg), chain(torch)
print_table(["quantity", "by hand", "tinyautograd", "torch"],
            [["z", z_value, ours["z"].item(), theirs["z"].item()],
             ["dz/dt", dz_dt, ours["t"].grad.item(), theirs["t"].grad.item()],
             ["dz/dx", dz_dx, ours["x"].grad.item(), theirs["x"].grad.item()],
             ["dz/dy", dz_dy, ours["y"].grad.item(), theirs["y"].grad.item()]])
for name, hand in [("x", dz_dx), ("y", dz_dy), ("t", dz_dt)]:
    assert_close(ours[name].grad, hand, f"dz/d{name} by tinyautograd = by hand")
    assert_close(ours[name].grad, theirs[name].grad, f"dz/d{name} by tinyautograd = by torch")
assert_close(ours["x"].grad, 2 * (x_value + y_value), "dz/dx = 2(x + y)")
print("graph recorded by tinyautograd:", ours["z"].grad_fn.name(), "<-",
      ours["z"].grad_fn.next_functions[0][0].name())
assert ours["z"].grad_fn.name() == theirs["z"].grad_fn.name() == "PowBackward0"
assert ours["t"].grad_fn.name() == theirs["t"].grad_fn.name() == "AddBackward0"

# %% [markdown]
# ## The same derivative everywhere
# dz/dx = 2(x + y) for every x and y, not only at (3, 4): evaluate it on a batch of points with a single backward
# (the sum of independent z's has the same per-point gradients), and compare with the formula.

# %%
grid = np.linspace(-8.0, 4.0, 61)
xs = tg.tensor(grid, requires_grad=True)
zs = (xs + y_value) ** 2
zs.sum().backward()
xs_torch = torch.tensor(grid, requires_grad=True)
((xs_torch + y_value) ** 2).sum().backward()
assert_close(xs.grad, 2 * (grid + y_value), "dz/dx = 2(x + y) on 61 points (float64)", rtol=1e-12)
assert_close(xs.grad, xs_torch.grad, "dz/dx on 61 points, tinyautograd vs torch", rtol=1e-12)

# %% [markdown]
# ## The graph
# `tinyautograd.viz.draw` walks `z.grad_fn.next_functions` back to the leaves (the `AccumulateGrad` nodes) and
# lays the graph out left to right, as the course draws it. The right panel shows z(x) and its slope at x = 3.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
viz.draw(ours["z"], ax=left, names=ours, title="t = x + y, z = t²  (values above, gradients in red)")
right.plot(grid, zs.detach().numpy(), label="z = (x + 4)²")
right.plot(grid, z_value + dz_dx * (grid - x_value), "--",
           label=f"tangent at x = 3, slope {dz_dx:g}")
right.plot([x_value], [z_value], "o", color="C3")
right.set_ylim(-10, 70)
right.set_xlabel("x")
right.legend(loc="upper left", fontsize=8)
right.set_title("dz/dx = 2(x + y) = 14 at (3, 4)", fontsize=10)
savefig(fig, "01_chain_rule")
print(viz.to_dot(ours["z"], names=ours))
