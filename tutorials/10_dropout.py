# %% [markdown]
# # 10 · Overfitting, validation and dropout
#
# Course topics: **Overfitting problem**, **dataset 분리** (separating training and validation data) and
# **Dropout** ("(a) standard neural net, (b) after applying dropout").
#
# A network with far more weights than training examples learns its training set by heart: the training loss keeps
# falling while the loss on held-out data turns back up. The validation curve is how we see it (and where early
# stopping would stop). Dropout zeroes each unit (input pixel or hidden unit) with probability p at each training
# step, scaling the survivors by 1/(1-p) so the expected activation is unchanged, and does nothing at evaluation
# time; the network can no longer rely on any single unit, and the gap between training and validation shrinks.
#
# **How the two libraries are compared.** Each library draws its dropout masks from its own random generator, so
# `nn.Dropout` cannot give the same masks in tinyautograd and torch. This tutorial therefore
#
# 1. checks `nn.Dropout` itself in both libraries by its properties: identity in eval mode and for p = 0, every
#    output either 0 or x/(1-p), a zeroed fraction of p within sampling error, a gradient equal to mask/(1-p);
# 2. trains with the same masks in both libraries: they are drawn once with NumPy and applied as
#    `x * mask / (1 - p)`, which is exactly what check 1 proves `nn.Dropout` computes. With the same weights,
#    batches and masks, the two runs' losses and accuracies must agree after every epoch.

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

# %% [markdown]
# ## 1. nn.Dropout, checked by its properties in both libraries

# %%
n, p = 200_000, 0.5
for lib in (tg, torch):
    name = lib.__name__
    lib.manual_seed(0)
    dropout = lib.nn.Dropout(p)
    x = lib.ones(n, requires_grad=True)
    y = dropout(x)
    y.sum().backward()
    out, grad = y.detach().numpy(), x.grad.numpy()
    kept = out != 0
    assert np.all(out[kept] == 1 / (1 - p)), f"{name}: survivors must be scaled by 1/(1-p)"
    dropped = 1 - kept.mean()
    tolerance = 4 * np.sqrt(p * (1 - p) / n)  # 4 standard errors of a binomial proportion
    assert abs(dropped - p) < tolerance, f"{name}: dropped fraction {dropped} is not p={p}"
    assert_close(grad, kept / (1 - p), f"{name}: Dropout's gradient is mask / (1 - p)")
    assert not np.array_equal(kept, dropout(lib.ones(n)).numpy() != 0), f"{name}: each call draws a new mask"
    dropout.eval()
    z = lib.randn(5, 7)
    assert_close(dropout(z), z, f"{name}: Dropout in eval mode is the identity", rtol=0, atol=0)
    assert_close(lib.nn.functional.dropout(z, p, training=False), z, f"{name}: F.dropout(training=False) = identity",
                 rtol=0, atol=0)
    assert_close(lib.nn.Dropout(0.0)(z), z, f"{name}: Dropout(p=0) in training mode is the identity", rtol=0, atol=0)
    print(f"{name}: dropped {dropped:.4f} of {n} (p = {p})")
# the same seed gives the same mask: reproducible runs within one library
tg.manual_seed(3)
first = tnn.Dropout(0.3)(tg.ones(1000)).numpy()
tg.manual_seed(3)
assert np.array_equal(first, tnn.Dropout(0.3)(tg.ones(1000)).numpy()), "manual_seed must make dropout reproducible"

# %% [markdown]
# ## 2. Data: a small training set and a validation set
# From the bundled MNIST subset (`datasets.MNIST(root=None)`): the first 300 training digits are all the network
# may learn from; the 1,000 test digits serve as validation data, never trained on.

# %%
def load_mnist(train: bool, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flattened images in [0, 1] (float32, (n, 784)) and labels (int64, (n,)) of the bundled MNIST subset."""
    dataset = datasets.MNIST(root=None, train=train)
    images = dataset.data.numpy()[:limit].reshape(-1, 28 * 28).astype(np.float32) / 255
    return images, dataset.targets.numpy()[:limit].astype(np.int64)


train_x, train_y = load_mnist(train=True, limit=200 if FAST else 300)
val_x, val_y = load_mnist(train=False, limit=300 if FAST else None)
epochs, batch_size, hidden = (4 if FAST else 50), 50, 256
print(f"{len(train_x)} training digits, {len(val_x)} validation digits, {epochs} epochs")

# %% [markdown]
# ## 3. The model: 784-256-256-10, with dropout on the input and after each hidden layer
# The usual recipe of the dropout paper: keep 80% of the input pixels and 50% of the hidden units (p = 0.2 and
# p = 0.5); the baseline is the same network with p = 0 everywhere. `MaskedDropout` is `nn.Dropout` with the mask
# handed in from outside: `x * mask / (1 - p)` in training mode, the identity in eval mode. Both libraries get the
# same NumPy masks at every step, drawn from one generator. Training is SGD with momentum (lr 0.05, 0.9), batches
# of 50.

# %%
def make_model(nn, p_input: float, p_hidden: float):
    class MaskedDropout(nn.Module):
        """Dropout with an externally set keep-mask (``self.mask``, 1 = keep); identity in eval mode."""

        def __init__(self, p: float) -> None:
            super().__init__()
            self.p, self.mask = p, None

        def forward(self, x):
            return x * self.mask / (1 - self.p) if self.training and self.p > 0 else x

    return nn.Sequential(MaskedDropout(p_input), nn.Linear(784, hidden), nn.ReLU(), MaskedDropout(p_hidden),
                         nn.Linear(hidden, hidden), nn.ReLU(), MaskedDropout(p_hidden),
                         nn.Linear(hidden, 10))


def evaluate(lib, model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode."""
    model.eval()
    with lib.no_grad():
        logits = model(lib.tensor(images))
        loss = lib.nn.functional.cross_entropy(logits, lib.tensor(labels)).item()
    model.train()
    return loss, float((logits.argmax(dim=1).numpy() == labels).mean())


def train(lib, model) -> dict[str, list[float]]:
    optimizer = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    masks = np.random.default_rng(1)  # the same masks for both libraries
    batches = np.random.default_rng(2)  # the same batches for both libraries
    history = {key: [] for key in ("train_loss", "train_acc", "val_loss", "val_acc")}
    dropouts = [m for m in model if type(m).__name__ == "MaskedDropout"]
    for epoch in range(epochs):
        order = batches.permutation(len(train_x))
        for first in range(0, len(train_x), batch_size):
            index = order[first:first + batch_size]
            for layer in dropouts:
                width = 784 if layer is dropouts[0] else hidden
                layer.mask = lib.tensor((masks.random((len(index), width)) >= layer.p).astype(np.float32))
            optimizer.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(train_x[index])), lib.tensor(train_y[index]))
            loss.backward()
            optimizer.step()
        for split, (images, labels) in (("train", (train_x, train_y)), ("val", (val_x, val_y))):
            split_loss, split_acc = evaluate(lib, model, images, labels)
            history[f"{split}_loss"].append(split_loss)
            history[f"{split}_acc"].append(split_acc)
    return history


histories = {}
for label, (p_input, p_hidden) in (("no dropout", (0.0, 0.0)), ("dropout 0.2 / 0.5", (0.2, 0.5))):
    torch.manual_seed(0)
    torch_model = make_model(torch.nn, p_input, p_hidden)
    tg_model = make_model(tnn, p_input, p_hidden)
    copy_torch_weights(torch_model, tg_model)
    ours, theirs = train(tg, tg_model), train(torch, torch_model)
    for key in ours:
        assert_close(ours[key], theirs[key], f"{label}: {key} after every epoch vs torch", rtol=2e-3, atol=2e-3)
    histories[label] = (ours, theirs)

# %% [markdown]
# ## 4. Reading the curves
# Without dropout the training loss goes to almost zero while the validation loss reaches its minimum after a
# few epochs and then rises: the network is fitting the noise of 300 examples. With dropout the training set is
# learned as well in the end, but the validation loss stays lower and the best validation accuracy is higher. The
# vertical lines mark the epoch with the lowest validation loss, where early stopping would keep the weights.

# %%
rows = []
for label, (ours, _) in histories.items():
    best = int(np.argmin(ours["val_loss"]))
    rows.append((label, ours["train_loss"][-1], ours["val_loss"][-1], best + 1, ours["val_loss"][best],
                 ours["val_acc"][-1], max(ours["val_acc"])))
print_table(["", "train loss", "val loss", "best epoch", "best val loss", "val acc", "best val acc"], rows,
            floatfmt=".4f")
if not FAST:
    # the claims of the text above, on the full-size run
    plain, dropped = histories["no dropout"][0], histories["dropout 0.2 / 0.5"][0]
    assert plain["train_loss"][-1] < 0.01, "without dropout the network should memorise its training set"
    assert plain["val_loss"][-1] > 1.2 * min(plain["val_loss"]), "without dropout the validation loss should rise"
    assert dropped["val_loss"][-1] < 0.9 * plain["val_loss"][-1], "dropout should keep the validation loss lower"
    assert dropped["val_loss"][-1] - dropped["train_loss"][-1] < plain["val_loss"][-1] - plain["train_loss"][-1], \
        "dropout should shrink the gap between training and validation loss"
    assert min(dropped["val_loss"]) < 0.9 * min(plain["val_loss"]), "dropout should reach a lower validation loss"
    assert max(dropped["val_acc"]) > max(plain["val_acc"]), "dropout should reach a better validation accuracy"

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
epoch_axis = np.arange(1, epochs + 1)
for i, (label, (ours, theirs)) in enumerate(histories.items()):
    for key, style in (("train", "--"), ("val", "-")):
        axes[0].plot(epoch_axis, ours[f"{key}_loss"], style, color=f"C{i}", label=f"{label}, {key}")
        axes[0].plot(epoch_axis, theirs[f"{key}_loss"], "x", color=f"C{i}", ms=3, alpha=0.5)
        axes[1].plot(epoch_axis, ours[f"{key}_acc"], style, color=f"C{i}", label=f"{label}, {key}")
    axes[0].axvline(1 + int(np.argmin(ours["val_loss"])), color=f"C{i}", lw=0.8, alpha=0.6)
axes[0].set_yscale("log")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("cross-entropy")
axes[0].set_title("Loss: tinyautograd (lines), torch (x)", fontsize=9)
axes[0].legend(fontsize=7)
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("accuracy")
axes[1].set_title(f"Accuracy on {len(train_x)} training / {len(val_x)} validation digits", fontsize=9)
axes[1].legend(fontsize=7)
fig.tight_layout()
savefig(fig, "10_dropout")

print(f"done in {time.perf_counter() - start:.1f} s")
