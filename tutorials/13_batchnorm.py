# %% [markdown]
# # 13 · Batch normalisation, from its algorithm to the improved MNIST classifier
#
# Course topic: **Batch Normalization**: Algorithm 1 of Ioffe & Szegedy (mini-batch mean, mini-batch variance,
# normalise, scale and shift) and the three benefits the notes list for it: 학습 속도 개선 (faster learning),
# 초깃값 의존도 감소 (less dependence on the initial weights), 오버피팅 억제 (less overfitting).
#
# First the algorithm is written with plain tensor operations, its gradient left to autograd, and checked against
# `nn.BatchNorm1d` / `nn.BatchNorm2d` (a single fused op with its own backward in tinyautograd) and against torch,
# in training mode (batch statistics, running statistics updated) and in eval mode (running statistics used).
# Then the second benefit is put to the test: a 5-layer ReLU network trained from five weight scales, with and
# without batch norm, in both libraries from the same weights on the same batches. (Tutorial 07 adds batch norm
# to the course's MNIST classifier.)

# %%
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
import tinyautograd.nn as tnn
from _common import FAST, assert_close, copy_torch_weights, print_table, savefig
from tinyautograd.vision import datasets

start = time.perf_counter()
rng = np.random.default_rng(0)

# %% [markdown]
# ## The algorithm, written out
# For an input of shape (N, C) the mini-batch is the N values of each feature; for (N, C, H, W) it is the N·H·W
# values of each channel. Two details beyond the course's four lines are needed to match `nn.BatchNorm`:
#
# * at evaluation time there is no mini-batch to average over, so training keeps exponential moving averages
#   `running = (1 - momentum) * running + momentum * batch_statistic`, and eval normalises with those;
# * the variance used for normalising is the biased one (divide by m, as in the algorithm), but the running
#   variance is fed the unbiased one (divide by m - 1), because it estimates the population variance.

# %%
class BatchNormFromAlgorithm(tnn.Module):
    """Batch normalisation over dim 1 of ``(N, C)`` or ``(N, C, H, W)`` inputs, written from the algorithm with
    tensor operations only; the same parameters and buffers as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = tnn.Parameter(tg.ones(num_features))  # gamma
        self.bias = tnn.Parameter(tg.zeros(num_features))  # beta
        self.register_buffer("running_mean", tg.zeros(num_features))
        self.register_buffer("running_var", tg.ones(num_features))
        self.register_buffer("num_batches_tracked", tg.tensor(0))

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        dims = (0,) + tuple(range(2, x.dim()))  # every dim but the channels
        shape = (1, -1) + (1,) * (x.dim() - 2)  # a per-channel vector, broadcastable against x
        if self.training:
            mean = x.mean(dim=dims, keepdim=True)  # mini-batch mean
            var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)  # mini-batch variance (biased)
            m = x.numel() // x.shape[1]
            with tg.no_grad():  # the running statistics are bookkeeping, not part of the graph
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.reshape(-1))
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * m / (m - 1) * var.reshape(-1))
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean.reshape(shape), self.running_var.reshape(shape)
        x_hat = (x - mean) / (var + self.eps).sqrt()  # normalise
        return self.weight.reshape(shape) * x_hat + self.bias.reshape(shape)  # scale and shift


# %% [markdown]
# ## Checked against nn.BatchNorm1d, nn.BatchNorm2d and torch
# Random gamma and beta (from torch, copied through NumPy) so that scale and shift are exercised; five training
# steps on different batches with a random upstream gradient, then eval mode. The input gradient is also compared
# with the closed form of the batch-norm backward in NumPy,
# `dx = gamma / sigma / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))`, which no library computed.

# %%
def closed_form_input_grad(x: np.ndarray, dy: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    """The batch-norm input gradient for (N, C) in float64 NumPy."""
    m = x.shape[0]
    sigma = np.sqrt(x.var(axis=0) + eps)
    x_hat = (x - x.mean(axis=0)) / sigma
    return gamma / sigma / m * (m * dy - dy.sum(axis=0) - x_hat * (dy * x_hat).sum(axis=0))


for torch_cls, tg_cls, shape in ((torch.nn.BatchNorm1d, tnn.BatchNorm1d, (16, 6)),
                                 (torch.nn.BatchNorm2d, tnn.BatchNorm2d, (8, 3, 5, 5))):
    torch.manual_seed(0)
    reference = torch_cls(shape[1]).double()
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2.0)
        reference.bias.uniform_(-1.0, 1.0)
    library, ours = tg_cls(shape[1]).double(), BatchNormFromAlgorithm(shape[1]).double()
    copy_torch_weights(reference, library)
    copy_torch_weights(reference, ours)
    name = torch_cls.__name__
    for step in range(5):
        x_np = rng.normal(2.0, 3.0, size=shape)  # mean 2, std 3: far from what BN outputs
        dy_np = rng.standard_normal(shape)
        results = []
        for lib, module in ((tg, ours), (tg, library), (torch, reference)):
            x = lib.tensor(x_np, requires_grad=True)
            y = module(x)
            y.backward(lib.tensor(dy_np))
            results.append((y, x.grad, module.weight.grad, module.bias.grad))
            module.zero_grad()
        for label, index in (("output", 0), ("input grad", 1), ("gamma grad", 2), ("beta grad", 3)):
            for other, who in ((results[1], f"tinyautograd {name}"), (results[2], f"torch {name}")):
                assert_close(results[0][index], other[index], f"step {step}: algorithm vs {who}, {label}",
                             rtol=1e-10, atol=1e-12)
        if len(shape) == 2:
            assert_close(results[0][1], closed_form_input_grad(x_np, dy_np, reference.weight.detach().numpy(), 1e-5),
                         f"step {step}: input grad vs the closed form", rtol=1e-10, atol=1e-12)
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        assert_close(getattr(ours, buffer), getattr(reference, buffer), f"{name}: {buffer} after 5 steps vs torch",
                     rtol=1e-12)
        assert_close(getattr(library, buffer), getattr(reference, buffer),
                     f"tinyautograd {name}: {buffer} after 5 steps vs torch", rtol=1e-12)
    x_np = rng.normal(2.0, 3.0, size=shape)
    for module in (ours, library, reference):
        module.eval()
    expected = reference(torch.tensor(x_np)).detach()
    assert_close(ours(tg.tensor(x_np)), expected, f"{name} eval mode: algorithm vs torch", rtol=1e-10, atol=1e-12)
    assert_close(library(tg.tensor(x_np)), expected, f"{name} eval mode: tinyautograd vs torch", rtol=1e-10, atol=1e-12)

# %% [markdown]
# ## Batch norm makes training independent of the initial weight scale
# Tutorial 12 showed that the scale of the initial weights decides whether the activations of a deep network
# keep their spread: too small and they vanish, too large and they explode. Batch norm re-standardises every
# layer's pre-activations on every mini-batch, so at the start of training each layer's output is ReLU of a
# standard normal variable, whose standard deviation is `sqrt(1/2 - 1/(2 pi))` = 0.584, whatever the weights.
#
# The network: 784 -> 100 -> 100 -> 100 -> 100 -> 10 with ReLU, weights drawn from N(0, std^2) for five values of
# std, biases 0; the batch-norm version has `BatchNorm1d(100)` after each hidden Linear (not after the last).
# SGD with lr 0.1 on 1,000 MNIST digits, batches of 100 (the experiment of *Deep Learning from Scratch* §6.3).

# %%
def load_mnist(train: bool, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flattened images in [0, 1] (float32, (n, 784)) and labels (int64, (n,)) of the bundled MNIST subset."""
    dataset = datasets.MNIST(root=None, train=train)
    images = dataset.data.numpy()[:limit].reshape(-1, 28 * 28).astype(np.float32) / 255
    return images, dataset.targets.numpy()[:limit].astype(np.int64)


train_x, train_y = load_mnist(train=True, limit=300 if FAST else 1000)
epochs, batch_size = (3 if FAST else 20), 100
orders = [np.random.default_rng(epoch).permutation(len(train_x)) for epoch in range(epochs)]
SCALES = (1.0, 0.3, 0.1, 0.03, 0.01)
RELU_OF_STANDARD_NORMAL_STD = float(np.sqrt(0.5 - 1 / (2 * np.pi)))


def deep_net(nn, batch_norm: bool):
    layers, fan_in = [], 784
    for _ in range(4):
        layers += [nn.Linear(fan_in, 100)] + ([nn.BatchNorm1d(100)] if batch_norm else []) + [nn.ReLU()]
        fan_in = 100
    return nn.Sequential(*layers, nn.Linear(100, 10))


def hidden_stds(lib, net) -> np.ndarray:
    """The std of each hidden layer's ReLU output for the training digits, in training mode."""
    h, stds = lib.tensor(train_x), []
    with lib.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, lib.nn.ReLU):
                stds.append(float(h.std()))
    return np.array(stds)


def train(lib, net) -> tuple[list[float], list[float]]:
    """SGD on the fixed batches: the loss of every step and the training accuracy (eval mode) after every epoch."""
    optimizer = lib.optim.SGD(net.parameters(), lr=0.1)
    losses, accuracies = [], []
    for epoch in range(epochs):
        net.train()
        for first in range(0, len(train_x), batch_size):
            index = orders[epoch][first:first + batch_size]
            optimizer.zero_grad()
            loss = lib.nn.functional.cross_entropy(net(lib.tensor(train_x[index])), lib.tensor(train_y[index]))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        net.eval()
        with lib.no_grad():
            predicted = net(lib.tensor(train_x)).argmax(dim=1).numpy()
        accuracies.append(float((predicted == train_y).mean()))
    return losses, accuracies


def assert_curves_agree(ours: list[float], theirs: list[float], what: str) -> None:
    """The first epoch's losses agree step by step, and the runs blow up (inf or nan) at the same step or not at all.

    Later steps are compared through the per-epoch accuracies: in float32 the two libraries' matrix products round
    differently, and near the edge of stability (lr 0.1 here) SGD amplifies those last-bit differences until
    individual losses differ by several percent after a few epochs, while the accuracies still agree.
    """
    ours_np, theirs_np = np.array(ours), np.array(theirs)
    bad = ~np.isfinite(ours_np) | ~np.isfinite(theirs_np)
    stop = int(np.argmax(bad)) if bad.any() else len(ours_np)
    first_epoch = min(stop, len(train_x) // batch_size)
    assert_close(ours_np[:first_epoch], theirs_np[:first_epoch], f"{what}, first epoch", rtol=2e-3, atol=1e-5)
    if stop < len(ours_np):
        assert not np.isfinite(ours_np[stop]) and not np.isfinite(theirs_np[stop]), f"{what}: only one blew up"
        print(f"  ... and both diverge (inf/nan) at step {stop}")


runs, stds = {}, {}
for std in SCALES:
    for batch_norm in (False, True):
        torch.manual_seed(0)
        torch_net = deep_net(torch.nn, batch_norm)
        for module in torch_net:
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=std)
                torch.nn.init.zeros_(module.bias)
        tg_net = deep_net(tnn, batch_norm)
        copy_torch_weights(torch_net, tg_net)
        key = (std, batch_norm)
        stds[key] = hidden_stds(tg, tg_net)
        assert_close(stds[key], hidden_stds(torch, torch_net), f"std={std}, BN={batch_norm}: hidden stds at init",
                     rtol=1e-3, atol=1e-12)
        runs[key] = {"tinyautograd": train(tg, tg_net), "torch": train(torch, torch_net)}
        (ours_loss, ours_acc), (theirs_loss, theirs_acc) = runs[key]["tinyautograd"], runs[key]["torch"]
        assert_curves_agree(ours_loss, theirs_loss, f"std={std}, BN={batch_norm}: loss at every step vs torch")
        assert_close(ours_acc, theirs_acc, f"std={std}, BN={batch_norm}: training accuracy per epoch vs torch",
                     atol=0.03)

print_table(["weight std", "hidden std, layer 4, no BN", "with BN", "final accuracy, no BN", "with BN"],
            [(std, stds[(std, False)][-1], stds[(std, True)][-1], runs[(std, False)]["tinyautograd"][1][-1],
              runs[(std, True)]["tinyautograd"][1][-1]) for std in SCALES], floatfmt=".3g")
for std in SCALES:
    assert_close(stds[(std, True)], np.full(4, RELU_OF_STANDARD_NORMAL_STD),
                 f"std={std}: with batch norm every hidden layer starts at the std of ReLU(N(0, 1))", rtol=0.05)
if not FAST:
    # the course's claim, on the full-size run: with batch norm every scale trains, without it the extremes fail
    for std in SCALES:
        assert runs[(std, True)]["tinyautograd"][1][-1] > 0.85, f"std={std}: batch norm should train"
    for std in (1.0, 0.03, 0.01):
        assert runs[(std, False)]["tinyautograd"][1][-1] < 0.3, f"std={std}: without batch norm it should not train"

# %% [markdown]
# Without batch norm only the scales near He's `sqrt(2 / fan_in)` (0.14 for the 100-unit layers) learn: std 1
# blows the loss up to inf/nan within a few steps, and 0.03 and 0.01 leave the signal too weak to learn from in
# 20 epochs. With batch norm all five learn, the small scales fastest.

# %%
fig, axes = plt.subplots(2, 3, figsize=(12, 6.4))
epoch_axis = np.arange(1, epochs + 1)
for ax, std in zip(axes.ravel(), SCALES):
    for batch_norm, color in ((True, "C0"), (False, "C1")):
        label = "with BatchNorm" if batch_norm else "without"
        ax.plot(epoch_axis, runs[(std, batch_norm)]["tinyautograd"][1], "-", color=color, label=label)
        ax.plot(epoch_axis, runs[(std, batch_norm)]["torch"][1], "x", color=color, ms=4)
    ax.set_title(f"weights ~ N(0, {std:g}^2)", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training accuracy")
    ax.legend(fontsize=7, loc="lower right")
ax = axes.ravel()[-1]
for i, std in enumerate(SCALES):
    ax.semilogy(np.arange(1, 5), stds[(std, False)], "o--", color=f"C{i + 2}", label=f"std {std:g}, no BN")
    ax.semilogy(np.arange(1, 5), stds[(std, True)], "s-", color=f"C{i + 2}", alpha=0.7)
ax.axhline(RELU_OF_STANDARD_NORMAL_STD, color="k", lw=0.8, label="with BN (all scales)")
ax.set_xticks(np.arange(1, 5))
ax.set_ylim(1e-6, 1e7)  # room for the legend above the curves
ax.set_xlabel("hidden layer")
ax.set_ylabel("std of the ReLU outputs at init")
ax.legend(fontsize=6, ncol=2)
ax.set_title("Activation spread before training", fontsize=9)
fig.suptitle("Training accuracy: tinyautograd (lines), torch (x)", fontsize=10)
fig.tight_layout()
savefig(fig, "13_batchnorm")

print(f"done in {time.perf_counter() - start:.1f} s")
