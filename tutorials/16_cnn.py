# %% [markdown]
# # 16 · Convolutional networks: convolution and pooling by hand, then LeNet on MNIST
#
# Course topics: **Convolutional Neural Network 이론**, **CNN 구현하기** and **CNN 프로젝트** (the "next time"
# list at the end of the notes), on the course's **이미지 데이터**, MNIST.
#
# A convolution layer slides each of its filters over the image and takes a dot product at every position; a max
# pooling layer keeps the largest value of each window. Both are written here with plain NumPy loops, forward
# and backward, on tiny inputs, and compared with `nn.functional.conv2d` / `max_pool2d` and with torch. Then
# LeNet-5 is trained on MNIST in both libraries from the same weights on the same batches.

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
from tinyautograd.utils.data import DataLoader
from tinyautograd.vision import datasets, transforms

start = time.perf_counter()

# %% [markdown]
# ## Convolution and max pooling with loops
# Shapes follow torch: input (N, C, H, W), weight (O, C, kH, kW), output (N, O, H', W') with
# `H' = (H + 2 * padding - kH) // stride + 1`. (Deep-learning "convolution" is a cross-correlation: the filter is
# not flipped.) The backward loops follow from the forward one: every output position added `w[o] * patch`, so it
# sends `dy * w[o]` back to the patch of the input and `dy * patch` to the weight.

# %%
def conv2d_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    y = np.zeros((n, o, out_h, out_w))
    for sample in range(n):
        for f in range(o):
            for i in range(out_h):
                for j in range(out_w):
                    patch = xp[sample, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    y[sample, f, i, j] = (patch * w[f]).sum() + b[f]
    return y


def conv2d_loops_backward(x: np.ndarray, w: np.ndarray, dy: np.ndarray, stride: int = 1,
                          padding: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of ``sum(dy * conv2d_loops(x, w, b))``."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    n, o, out_h, out_w = dy.shape
    for sample in range(n):
        for f in range(o):
            for i in range(out_h):
                for j in range(out_w):
                    rows, columns = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                    window = (sample, slice(None), rows, columns)
                    dw[f] += dy[sample, f, i, j] * xp[window]
                    dxp[window] += dy[sample, f, i, j] * w[f]
    dx = dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def max_pool2d_loops(x: np.ndarray, size: int, dy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling with a ``size`` x ``size`` window and stride ``size``, and the gradient of ``sum(dy * y)``: each
    window's upstream value goes to the position of its maximum, the rest of the window gets 0."""
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // size, w // size))
    dx = np.zeros_like(x)
    for sample in range(n):
        for channel in range(c):
            for i in range(h // size):
                for j in range(w // size):
                    window = x[sample, channel, i * size:(i + 1) * size, j * size:(j + 1) * size]
                    y[sample, channel, i, j] = window.max()
                    r, s = np.unravel_index(window.argmax(), window.shape)
                    if dy is not None:
                        dx[sample, channel, i * size + r, j * size + s] = dy[sample, channel, i, j]
    return y, dx


# %% [markdown]
# ### A tiny image: an edge detector
# A 6 x 6 image, dark on the left and bright on the right, and the vertical-edge filter `[[-1, 0, 1]] * 3`: the
# 4 x 4 output is large only where the 3 x 3 window straddles the edge; 2 x 2 max pooling keeps that response at a
# quarter of the size.

# %%
image = np.zeros((1, 1, 6, 6))
image[..., 3:] = 1.0
edge = np.array([[[[-1.0, 0.0, 1.0]] * 3]])  # (1, 1, 3, 3): responds to dark-to-bright, left to right
edge_map = conv2d_loops(image, edge, np.zeros(1))
pooled, _ = max_pool2d_loops(edge_map, 2)
print("edge response (loops):\n", edge_map[0, 0])
assert_close(TF.conv2d(tg.tensor(image), tg.tensor(edge)), edge_map, "edge filter: F.conv2d vs loops",
             rtol=0, atol=1e-12)
assert_close(torch.nn.functional.conv2d(torch.tensor(image), torch.tensor(edge)), edge_map,
             "edge filter: torch conv2d vs loops", rtol=0, atol=1e-12)
assert_close(TF.max_pool2d(tg.tensor(edge_map), 2), pooled, "edge map: F.max_pool2d vs loops", rtol=0, atol=0)

# %% [markdown]
# ### Random inputs, several channels, stride and padding, forward and backward
# Float64, a batch of 2 images with 3 channels, 4 filters of 3 x 3, stride 2, padding 1, then a 2 x 2 max pool on
# a second random input. The upstream gradient is random. Loops, tinyautograd and torch must agree on the output
# and on every gradient.

# %%
rng = np.random.default_rng(0)
x_np, w_np, b_np = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
y_loops = conv2d_loops(x_np, w_np, b_np, stride=2, padding=1)
dy_np = rng.standard_normal(y_loops.shape)
grads_loops = conv2d_loops_backward(x_np, w_np, dy_np, stride=2, padding=1)
for lib in (tg, torch):
    x, w, b = (lib.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    y = lib.nn.functional.conv2d(x, w, b, stride=2, padding=1)
    y.backward(lib.tensor(dy_np))
    assert_close(y, y_loops, f"{lib.__name__} conv2d(stride=2, padding=1) vs loops", rtol=1e-12, atol=1e-12)
    for name, grad, expected in zip(("input", "weight", "bias"), (x.grad, w.grad, b.grad), grads_loops):
        assert_close(grad, expected, f"{lib.__name__} conv2d gradient w.r.t. {name} vs loops", rtol=1e-12, atol=1e-12)

z_np = rng.standard_normal((2, 3, 6, 6))
dz_np = rng.standard_normal((2, 3, 3, 3))
z_pooled, expected_grad = max_pool2d_loops(z_np, 2, dz_np)
for lib in (tg, torch):
    z = lib.tensor(z_np, requires_grad=True)
    z_out = lib.nn.functional.max_pool2d(z, 2)
    z_out.backward(lib.tensor(dz_np))
    assert_close(z_out, z_pooled, f"{lib.__name__} max_pool2d vs loops", rtol=0, atol=0)
    assert_close(z.grad, expected_grad, f"{lib.__name__} max_pool2d gradient: all to the window's max",
                 rtol=0, atol=0)

fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
for ax, (array, title) in zip(axes, ((image[0, 0], "image 6x6"), (edge[0, 0], "filter 3x3"),
                                      (edge_map[0, 0], "conv2d"), (pooled[0, 0], "max_pool2d 2x2"))):
    ax.imshow(array, cmap="coolwarm", vmin=-3, vmax=3)
    for (r, c), value in np.ndenumerate(array):
        ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
savefig(fig, "16_conv_by_hand")

# %% [markdown]
# ## LeNet-5 on MNIST
# The data go through the torch-style pipeline: `datasets.MNIST(root=None, transform=...)` with
# `transforms.ToTensor()` and `transforms.Normalize`, batched by `DataLoader`. Both libraries are handed the same
# shuffled order through the loader's `sampler`, so they see the same batches (the first one is compared below).
#
# The network, with ReLU and max pooling as is usual today: conv 6@5x5 (padding 2) -> pool -> conv 16@5x5 ->
# pool -> 120 -> 84 -> 10, trained with Adam (lr 0.001) and cross-entropy in batches of 64.

# %%
MEAN, STD = 0.1307, 0.3081  # of the full MNIST training set, the usual normalisation
normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
train_set = datasets.MNIST(root=None, train=True, transform=normalise)
test_set = datasets.MNIST(root=None, train=False, transform=normalise)
train_count, test_count = (320, 200) if FAST else (len(train_set), len(test_set))
epochs, batch_size = (1 if FAST else 3), (32 if FAST else 64)
orders = [np.random.default_rng(epoch).permutation(train_count).tolist() for epoch in range(epochs)]

# torch gets the same normalised images as arrays (torchvision is not needed)
train_images = (train_set.data.numpy()[:train_count, None].astype(np.float32) / 255 - MEAN) / STD
test_images = (test_set.data.numpy()[:test_count, None].astype(np.float32) / 255 - MEAN) / STD
train_labels = train_set.targets.numpy()[:train_count]
test_labels = test_set.targets.numpy()[:test_count]
torch_train_set = torch.utils.data.TensorDataset(torch.tensor(train_images), torch.tensor(train_labels))


def lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def train(lib, model, loader_for_epoch) -> tuple[list[float], list[float]]:
    optimizer = lib.optim.Adam(model.parameters(), lr=1e-3)
    losses, accuracies = [], []
    for epoch in range(epochs):
        model.train()
        for images, labels in loader_for_epoch(epoch):
            optimizer.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with lib.no_grad():
            predicted = model(lib.tensor(test_images)).argmax(dim=1).numpy()
        accuracies.append(float((predicted == test_labels).mean()))
    return losses, accuracies


def tg_loader(epoch: int) -> DataLoader:
    return DataLoader(train_set, batch_size=batch_size, sampler=orders[epoch])


def torch_loader(epoch: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch_train_set, batch_size=batch_size, sampler=orders[epoch])


first_tg, first_torch = next(iter(tg_loader(0))), next(iter(torch_loader(0)))
assert_close(first_tg[0], first_torch[0], "first batch: ToTensor + Normalize images vs torch's", rtol=1e-6, atol=1e-6)
assert_close(first_tg[1], first_torch[1], "first batch: labels", rtol=0, atol=0)

torch.manual_seed(0)
torch_net, tg_net = lenet(torch.nn), lenet(tnn)
copy_torch_weights(torch_net, tg_net)
print(tg_net)
tg_seconds = time.perf_counter()
ours = train(tg, tg_net, tg_loader)
tg_seconds = time.perf_counter() - tg_seconds
torch_seconds = time.perf_counter()
theirs = train(torch, torch_net, torch_loader)
torch_seconds = time.perf_counter() - torch_seconds
assert_close(ours[0], theirs[0], "LeNet: loss at every step vs torch", rtol=5e-3, atol=1e-5)
assert_close(ours[1], theirs[1], "LeNet: test accuracy after every epoch vs torch", atol=0.005)
print_table(["", "steps", "first loss", "last loss", "test accuracy", "training seconds"],
            [("tinyautograd", len(ours[0]), ours[0][0], ours[0][-1], ours[1][-1], tg_seconds),
             ("torch", len(theirs[0]), theirs[0][0], theirs[0][-1], theirs[1][-1], torch_seconds)], floatfmt=".4g")
if not FAST:
    assert ours[1][-1] > 0.9, "LeNet should recognise more than 90% of the test digits"

# %% [markdown]
# ## What the first layer learned
# The six 5 x 5 filters of the first convolution after training, and their feature maps (after ReLU) for one test
# digit, from tinyautograd (top) and torch (bottom).

# %%
digit = tg.tensor(test_images[:1])
with tg.no_grad():
    maps = tg_net[1](tg_net[0](digit)).numpy()[0]
with torch.no_grad():
    torch_maps = torch_net[1](torch_net[0](torch.tensor(test_images[:1]))).numpy()[0]
assert_close(maps, torch_maps, "trained first-layer feature maps vs torch", rtol=0,
             atol=5e-2 * np.abs(torch_maps).max())

fig = plt.figure(figsize=(13, 4.4))
grid = fig.add_gridspec(3, 10)
loss_ax = fig.add_subplot(grid[:, :4])
loss_ax.plot(ours[0], label="tinyautograd", lw=1.2)
loss_ax.plot(theirs[0], "--", label="torch", lw=1.2)
loss_ax.set_xlabel(f"step (batch of {batch_size})")
loss_ax.set_ylabel("cross-entropy")
loss_ax.set_yscale("log")
loss_ax.set_title(f"LeNet-5 training; test accuracy {ours[1][-1]:.1%} (tinyautograd), {theirs[1][-1]:.1%} (torch)",
                  fontsize=9)
loss_ax.legend()
filters = tg_net[0].weight.detach().numpy()[:, 0]
for k in range(6):
    for row, (source, name) in enumerate(((filters, "filters"), (maps, "maps, tinyautograd"),
                                          (torch_maps, "maps, torch"))):
        ax = fig.add_subplot(grid[row, 4 + k])
        ax.imshow(source[k], cmap="coolwarm" if row == 0 else "viridis")
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:
            ax.set_ylabel(name, fontsize=8)
fig.tight_layout()
savefig(fig, "16_lenet")

print(f"done in {time.perf_counter() - start:.1f} s")
