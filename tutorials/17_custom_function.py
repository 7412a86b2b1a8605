# %% [markdown]
# # 17 · Extending tinyautograd with a custom autograd.Function
#
# Course topic: the **hand-written layers** of the course (AddLayer, MulLayer, Sigmoid, Affine: each a `forward`
# that stores what its `backward` needs), carried over to the library: `autograd.Function` is exactly that
# pattern, and it is how a user adds an op the library does not have. It takes the same code as
# `torch.autograd.Function`:
#
# * `forward(ctx, *inputs)` computes the output (nothing inside it is recorded) and stores what backward needs
#   with `ctx.save_for_backward(...)`;
# * `backward(ctx, grad_output)` returns one gradient per input (`None` for inputs that need none; which ones do is
#   in `ctx.needs_input_grad`);
# * `Function.apply(*inputs)` runs it and records one node on the tape.
#
# The example is **Swish** with a learnable slope, `f(x, beta) = x * sigmoid(beta * x)`, an activation found by
# automated search (Ramachandran et al., 2017) that sits between ReLU (beta -> infinity) and a linear function
# (beta = 0); with beta = 1 it is SiLU. It is checked with `autograd.gradcheck` (finite differences),
# `autograd.gradgradcheck` (second derivatives: the backward is written with differentiable tensor operations, so
# `create_graph=True` differentiates through it), against the identical `torch.autograd.Function`, and in a small
# training run. A second Function shows an op whose backward is deliberately *not* the derivative: gradient
# clipping.

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

# %% [markdown]
# ## The Function, written once for either library
# `d f / d x = s + beta x s (1 - s)` and `d f / d beta = x^2 s (1 - s)` with `s = sigmoid(beta x)`. beta is one
# number shared by every element, so its gradient is summed over them and given beta's shape.

# %%
def swish_function(lib):
    class Swish(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, beta):
            ctx.save_for_backward(x, beta)
            return x * lib.sigmoid(beta * x)

        @staticmethod
        def backward(ctx, grad_output):
            x, beta = ctx.saved_tensors
            # recomputed from the saved inputs with tensor ops, so a create_graph backward can differentiate it
            s = lib.sigmoid(beta * x)
            ds = s * (1 - s)
            grad_x = grad_output * (s + beta * x * ds) if ctx.needs_input_grad[0] else None
            grad_beta = (grad_output * x * x * ds).sum().reshape(beta.shape) if ctx.needs_input_grad[1] else None
            return grad_x, grad_beta

    return Swish


Swish, TorchSwish = swish_function(tg), swish_function(torch)

# %% [markdown]
# ## gradcheck and gradgradcheck
# Both compare the analytical derivatives (from `backward`, and from differentiating `backward`) with central
# finite differences in float64. They run in both libraries on the same inputs.

# %%
rng = np.random.default_rng(0)
x_np, beta_np = rng.standard_normal((4, 5)), np.array([1.3])
for lib, fn in ((tg, Swish), (torch, TorchSwish)):
    x = lib.tensor(x_np, requires_grad=True)
    beta = lib.tensor(beta_np, requires_grad=True)
    assert lib.autograd.gradcheck(fn.apply, (x, beta), eps=1e-6, atol=1e-6)
    assert lib.autograd.gradgradcheck(fn.apply, (x, beta), eps=1e-6, atol=1e-6)
    print(f"{lib.__name__}: gradcheck and gradgradcheck pass")

# %% [markdown]
# gradcheck is there to catch mistakes: the same Function with the `beta x s (1 - s)` term forgotten in
# `grad_x` must fail it, in both libraries.

# %%
def broken_swish_function(lib):
    class BrokenSwish(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, beta):
            ctx.save_for_backward(x, beta)
            return x * lib.sigmoid(beta * x)

        @staticmethod
        def backward(ctx, grad_output):
            x, beta = ctx.saved_tensors
            s = lib.sigmoid(beta * x)
            return grad_output * s, (grad_output * x * x * s * (1 - s)).sum().reshape(beta.shape)

    return BrokenSwish


for lib in (tg, torch):
    x = lib.tensor(x_np, requires_grad=True)
    beta = lib.tensor(beta_np, requires_grad=True)
    try:
        lib.autograd.gradcheck(broken_swish_function(lib).apply, (x, beta), eps=1e-6, atol=1e-6)
    except RuntimeError as error:  # GradcheckError, a RuntimeError in both libraries
        print(f"{lib.__name__}: the broken backward is caught: {str(error).splitlines()[0]}")
    else:
        raise AssertionError(f"{lib.__name__}: gradcheck accepted a wrong backward")

# %% [markdown]
# ## Values, first and second derivatives vs torch and vs the formulas
# `f'' = beta s (1 - s) (2 + beta x (1 - 2 s))` comes from the double backward. With beta = 1 Swish must equal
# the built-in `nn.functional.silu`, derivative included.

# %%
grid = np.linspace(-6, 6, 241)
curves = {}
for b in (0.5, 1.0, 2.0, 5.0):
    results = []
    for lib, fn in ((tg, Swish), (torch, TorchSwish)):
        x = lib.tensor(grid, requires_grad=True)
        beta = lib.tensor([b], requires_grad=True)
        y = fn.apply(x, beta)
        (dx,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        d2x, dbeta = lib.autograd.grad(dx.sum(), (x, beta))
        results.append([t.detach().numpy() for t in (y, dx, d2x, dbeta)])
    for name, a, c in zip(("f", "f'", "f''", "d f' / d beta"), *results):
        assert_close(a, c, f"beta={b}: {name} vs torch", rtol=1e-10, atol=1e-12)
    s = 1 / (1 + np.exp(-b * grid))
    assert_close(results[0][0], grid * s, f"beta={b}: f vs formula", rtol=1e-12, atol=1e-12)
    assert_close(results[0][1], s + b * grid * s * (1 - s), f"beta={b}: f' vs formula", rtol=1e-10, atol=1e-12)
    assert_close(results[0][2], b * s * (1 - s) * (2 + b * grid * (1 - 2 * s)), f"beta={b}: f'' vs formula",
                 rtol=1e-10, atol=1e-12)
    curves[b] = results[0][:3]

x = tg.tensor(grid, requires_grad=True)
(silu_grad,) = tg.autograd.grad(tnn.functional.silu(x).sum(), x)
assert_close(curves[1.0][0], tnn.functional.silu(tg.tensor(grid)), "beta=1: Swish = F.silu", rtol=1e-12, atol=1e-12)
assert_close(curves[1.0][1], silu_grad, "beta=1: Swish' = F.silu'", rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## A Function whose backward is not the derivative: gradient clipping
# Forward is the identity; backward clamps the incoming gradient to [-bound, bound]. Ops like this (clipping,
# straight-through estimators) change what flows backward on purpose, so gradcheck must reject them for bounds
# below the gradients it probes with (1 per output element), and accept them above.

# %%
def clip_gradient_function(lib):
    class ClipGradient(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, bound: float):
            ctx.bound = bound  # a Python number: kept on ctx, not in save_for_backward
            return x.clone()

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output.clamp(-ctx.bound, ctx.bound), None  # no gradient for the bound

    return ClipGradient


upstream = rng.normal(0, 3, size=10)
for lib in (tg, torch):
    clip = clip_gradient_function(lib)
    x = lib.tensor(rng.standard_normal(10), requires_grad=True)
    clip.apply(x, 1.0).backward(lib.tensor(upstream))
    assert_close(x.grad, np.clip(upstream, -1, 1), f"{lib.__name__}: ClipGradient clamps the gradient", rtol=0, atol=0)
    probe = lib.tensor(rng.standard_normal(3), requires_grad=True)
    assert lib.autograd.gradcheck(lambda t: clip.apply(t, 2.0), (probe,))
    assert not lib.autograd.gradcheck(lambda t: clip.apply(t, 0.5), (probe,), raise_exception=False)
    print(f"{lib.__name__}: gradcheck accepts ClipGradient(2.0) and rejects ClipGradient(0.5)")

# %% [markdown]
# ## Training with the custom activation
# A 1-32-32-1 network with a `SwishLayer` (a Module holding a learnable beta, initialised to 1, per layer) fits
# `sin(2x)` on [-3, 3] with Adam, in both libraries from the same weights, in float64. The loss curve and the
# learned betas must agree; gradients reach beta through the Function's second output.

# %%
def swish_network(lib, fn):
    class SwishLayer(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.beta = lib.nn.Parameter(lib.ones(1))

        def forward(self, x):
            return fn.apply(x, self.beta)

    nn = lib.nn
    return nn.Sequential(nn.Linear(1, 32), SwishLayer(), nn.Linear(32, 32), SwishLayer(), nn.Linear(32, 1))


inputs = np.linspace(-3, 3, 128)[:, None]  # float64: a long run then agrees with torch to many digits
targets = np.sin(2 * inputs)
steps = 60 if FAST else 1500
torch.manual_seed(0)
torch_net, tg_net = swish_network(torch, TorchSwish).double(), swish_network(tg, Swish).double()
copy_torch_weights(torch_net, tg_net)
histories = []
for lib, net in ((tg, tg_net), (torch, torch_net)):
    optimizer = lib.optim.Adam(net.parameters(), lr=0.005)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = lib.nn.functional.mse_loss(net(lib.tensor(inputs)), lib.tensor(targets))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    histories.append(losses)
ours, theirs = histories
assert_close(ours, theirs, "loss at every step vs torch", rtol=1e-5, atol=1e-12)
betas = [float(tg_net[i].beta.item()) for i in (1, 3)]
torch_betas = [float(torch_net[i].beta.item()) for i in (1, 3)]
assert_close(betas, torch_betas, "learned betas vs torch", rtol=1e-5)
print_table(["", "first loss", "final loss", "beta 1", "beta 2"],
            [("tinyautograd", ours[0], ours[-1], *betas), ("torch", theirs[0], theirs[-1], *torch_betas)],
            floatfmt=".4g")
if not FAST:
    assert ours[-1] < 1e-2 * ours[0], "the network should fit sin(2x)"

# %% [markdown]
# ## Figure

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for i, (b, (y, dy, d2y)) in enumerate(curves.items()):
    axes[0].plot(grid, y, color=f"C{i}", label=f"beta={b:g}")
    axes[1].plot(grid, dy, color=f"C{i}", label=f"f', beta={b:g}")
    axes[1].plot(grid, d2y, "--", color=f"C{i}", lw=0.9)
axes[0].plot(grid, np.maximum(grid, 0), ":", color="0.5", label="ReLU")
axes[0].set_title("Swish x * sigmoid(beta x)", fontsize=9)
axes[0].legend(fontsize=7)
axes[1].set_title("f' (solid) and f'' (dashed, from double backward)", fontsize=9)
axes[1].set_ylim(-0.8, 2.6)
axes[1].legend(fontsize=7)
with tg.no_grad():
    fitted = tg_net(tg.tensor(inputs)).numpy()
axes[2].plot(inputs, targets, color="0.6", lw=3, label="sin(2x)")
axes[2].plot(inputs, fitted, color="C3", label=f"Swish net, betas {betas[0]:.2f}, {betas[1]:.2f}")
axes[2].set_title(f"Fit after {steps} Adam steps", fontsize=9)
axes[2].legend(fontsize=7, loc="lower left")
axes[3].semilogy(ours, lw=1.2, label="tinyautograd")
axes[3].semilogy(theirs, "--", lw=1.2, label="torch")
axes[3].set_xlabel("step")
axes[3].set_title("Training loss (MSE)", fontsize=9)
axes[3].legend(fontsize=7)
fig.tight_layout()
savefig(fig, "17_custom_function")

print(f"done in {time.perf_counter() - start:.1f} s")
