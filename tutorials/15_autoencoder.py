# %% [markdown]
# # 15 · An autoencoder on MNIST with a 2-D latent space
#
# Course topics: **오토인코더 (autoencoder)**, and the slide **Weight Initialization - autoencoder**, where an
# autoencoder trained without labels provides the initial weights of a classifier.
#
# An autoencoder is trained to output its own input through a narrow middle layer, the code. The encoder
# (784 -> 256 -> 64 -> 2) must squeeze each digit into two numbers from which the decoder (2 -> 64 -> 256 -> 784)
# redraws it; no labels are used. With a code of only two numbers we can draw the whole latent space: each test
# digit becomes a point, coloured by its label, and decoding a grid of points shows what the decoder has learned
# to draw in each region.
#
# The network is trained in tinyautograd and in torch from the same initial weights (torch's, copied through
# NumPy) on the same batches, with MSE loss (as in 실습 4) and Adam; the loss curves must agree step by step.

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

# %%
def load_mnist(train: bool, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flattened images in [0, 1] (float32, (n, 784)) and labels (int64, (n,)) of the bundled MNIST subset."""
    dataset = datasets.MNIST(root=None, train=train)
    images = dataset.data.numpy()[:limit].reshape(-1, 28 * 28).astype(np.float32) / 255
    return images, dataset.targets.numpy()[:limit].astype(np.int64)


train_x, train_y = load_mnist(train=True, limit=600 if FAST else None)
test_x, test_y = load_mnist(train=False, limit=300 if FAST else None)
epochs, batch_size = (3 if FAST else 30), 100
print(f"{len(train_x)} training digits (labels unused), {len(test_x)} test digits, {epochs} epochs")

# %% [markdown]
# ## The model
# Encoder and decoder are two `nn.Sequential`s inside one module, so `model.encoder(x)` gives the codes.

# %%
def autoencoder_class(nn):
    class AutoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(),
                                         nn.Linear(64, 2))
            self.decoder = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(),
                                         nn.Linear(256, 784), nn.Sigmoid())

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return AutoEncoder


def train(lib, model) -> list[float]:
    """Adam (lr 1e-3) on MSE between the input and its reconstruction; the loss of every step."""
    optimizer = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.MSELoss()
    order = np.random.default_rng(0)
    losses = []
    for _ in range(epochs):
        permutation = order.permutation(len(train_x))
        for first in range(0, len(train_x), batch_size):
            images = lib.tensor(train_x[permutation[first:first + batch_size]])
            optimizer.zero_grad()
            loss = loss_fn(model(images), images)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


torch.manual_seed(0)
torch_model = autoencoder_class(torch.nn)()
tg_model = autoencoder_class(tnn)()
copy_torch_weights(torch_model, tg_model)
ours, theirs = train(tg, tg_model), train(torch, torch_model)

# %% [markdown]
# ## Comparing the two runs
# Both runs start from the same weights, but float32 matrix products round differently in NumPy and in torch, and
# a thousand Adam steps amplify those last-bit differences a little. So the comparison has three parts: the
# first epoch step by step (tight), every epoch's mean loss (within 2%), and the trained functions themselves:
# torch's trained weights copied into a fresh tinyautograd model must give torch's codes and reconstructions.

# %%
steps_per_epoch = len(ours) // epochs
assert_close(ours[:steps_per_epoch], theirs[:steps_per_epoch], "first epoch: loss at every step vs torch",
             rtol=2e-3, atol=1e-5)
assert_close(np.reshape(ours, (epochs, -1)).mean(axis=1), np.reshape(theirs, (epochs, -1)).mean(axis=1),
             "mean loss of every epoch vs torch", rtol=2e-2)
with torch.no_grad():
    torch_codes = torch_model.encoder(torch.tensor(test_x)).numpy()
    torch_reconstructions = torch_model(torch.tensor(test_x)).numpy()
replica = autoencoder_class(tnn)()
copy_torch_weights(torch_model, replica)
with tg.no_grad():
    assert_close(replica.encoder(tg.tensor(test_x)), torch_codes, "torch's trained weights: test codes",
                 rtol=1e-4, atol=1e-4)
    assert_close(replica(tg.tensor(test_x)), torch_reconstructions, "torch's trained weights: reconstructions",
                 rtol=1e-4, atol=1e-5)

# %% [markdown]
# ## Codes and reconstructions of the test digits

# %%
with tg.no_grad():
    codes = tg_model.encoder(tg.tensor(test_x)).numpy()
    reconstructions = tg_model(tg.tensor(test_x)).numpy()
test_mse = float(((reconstructions - test_x) ** 2).mean())
torch_mse = float(((torch_reconstructions - test_x) ** 2).mean())
baseline_mse = float(((train_x.mean(axis=0) - test_x) ** 2).mean())  # drawing the average digit every time
print_table(["", "first-step loss", "last-epoch loss", "test MSE", "MSE of the mean digit"],
            [("tinyautograd", ours[0], np.mean(ours[-steps_per_epoch:]), test_mse, baseline_mse),
             ("torch", theirs[0], np.mean(theirs[-steps_per_epoch:]), torch_mse, baseline_mse)], floatfmt=".4f")
assert_close(test_mse, torch_mse, "test reconstruction MSE vs torch", rtol=2e-2)

# Do the codes separate the digits although no label was used? Classify each test code by its nearest training
# code (1-nearest neighbour in the 2-D latent space).
with tg.no_grad():
    train_codes = tg_model.encoder(tg.tensor(train_x)).numpy()
nearest = np.argmin(((codes[:, None, :] - train_codes[None, :, :]) ** 2).sum(axis=2), axis=1)
latent_accuracy = float((train_y[nearest] == test_y).mean())
with torch.no_grad():
    torch_train_codes = torch_model.encoder(torch.tensor(train_x)).numpy()
torch_nearest = np.argmin(((torch_codes[:, None, :] - torch_train_codes[None, :, :]) ** 2).sum(axis=2), axis=1)
torch_latent_accuracy = float((train_y[torch_nearest] == test_y).mean())
print(f"1-nearest-neighbour accuracy in the 2-D code space: {latent_accuracy:.1%} (torch: "
      f"{torch_latent_accuracy:.1%}; chance: 10%)")
assert_close(latent_accuracy, torch_latent_accuracy, "1-NN accuracy of the codes vs torch", atol=0.03)
if not FAST:  # the fast mode's few steps only reach the blurry average digit
    assert test_mse < 0.8 * baseline_mse, "the trained autoencoder should beat drawing the mean digit clearly"
    assert latent_accuracy > 0.4, "the 2-D codes should cluster by digit (chance is 10%)"

# %% [markdown]
# ## Figures: training curve, latent space, decoded grid, reconstructions

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
axes[0].plot(np.arange(len(ours)) / steps_per_epoch, ours, label="tinyautograd", lw=1.2)
axes[0].plot(np.arange(len(theirs)) / steps_per_epoch, theirs, "--", label="torch", lw=1.2)
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("MSE")
axes[0].set_yscale("log")
axes[0].set_title("Reconstruction loss per step", fontsize=9)
axes[0].legend()
scatter = axes[1].scatter(codes[:, 0], codes[:, 1], c=test_y, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
fig.colorbar(scatter, ax=axes[1], ticks=range(10), label="digit")
axes[1].set_title(f"2-D codes of {len(test_x)} test digits (tinyautograd)", fontsize=9)
axes[1].set_xlabel("code 1")
axes[1].set_ylabel("code 2")
# decode a grid covering the central 90% of the codes
grid_size = 12
low, high = np.quantile(codes, 0.05, axis=0), np.quantile(codes, 0.95, axis=0)
u, v = np.meshgrid(np.linspace(low[0], high[0], grid_size), np.linspace(high[1], low[1], grid_size))
grid_codes = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)
with tg.no_grad():
    drawn = tg_model.decoder(tg.tensor(grid_codes)).numpy().reshape(grid_size, grid_size, 28, 28)
axes[2].imshow(drawn.transpose(0, 2, 1, 3).reshape(grid_size * 28, grid_size * 28), cmap="gray_r")
axes[2].set_title("What the decoder draws across the code space", fontsize=9)
axes[2].axis("off")
fig.tight_layout()
savefig(fig, "15_autoencoder_latent")

shown = [int(np.flatnonzero(test_y == d)[0]) for d in range(10)]
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for column, index in enumerate(shown):
    for row, (images, title) in enumerate(((test_x, "input"), (reconstructions, "tinyautograd"),
                                           (torch_reconstructions, "torch"))):
        axes[row, column].imshow(images[index].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        axes[row, column].set_xticks([])
        axes[row, column].set_yticks([])
        if column == 0:
            axes[row, column].set_ylabel(title, fontsize=8)
fig.suptitle("Test digits and their reconstructions through a 2-number code", fontsize=10)
fig.tight_layout()
savefig(fig, "15_autoencoder_reconstructions")

print(f"done in {time.perf_counter() - start:.1f} s")
