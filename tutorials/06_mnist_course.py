# %% [markdown]
# # 06 · The course's MNIST classifier, and why it barely learns
#
# Course topic: **실습6**, an MNIST classifier in PyTorch exactly as the notes write it: 784-50-10 with a sigmoid
# hidden layer and a softmax output, trained with `nn.BCELoss` on one-hot targets, weights drawn from
# uniform(0, 1) and biases 0 (`weight_init`), `optim.SGD(lr=0.01)`, batches of 100, 5 epochs.
#
# Data: the 5,000 real MNIST digits bundled with tinyautograd (`vision.datasets.MNIST(root=None)`: 4,000 for
# training, 1,000 for testing, balanced), read once as NumPy arrays and given to both libraries. Torch draws the
# initial weights, they are copied into tinyautograd, and both loaders use the same shuffled order, so the two
# runs must agree step for step.
#
# The outcome: **the network stays at 10% test accuracy**, chance level, in both libraries. The second half of
# this tutorial finds out why: with uniform(0, 1) weights, every hidden unit receives a sum of ~100 bright pixels
# times weights averaging 0.5, so its sigmoid is saturated at exactly 1.0 in float32, its derivative is exactly
# 0, and the first layer never receives a gradient. Tutorial 07 fixes it step by step.
#
# Two small departures from the notes: `nn.Softmax(dim=1)` (the notes' `nn.Softmax()` makes torch guess the
# dimension and warn), and we append `loss.item()` rather than the loss tensor to the loss list (a tensor keeps
# its whole graph alive).

# %%
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from tinyautograd.vision import datasets, transforms
from _common import FAST, SharedShuffle, assert_close, copy_torch_weights, print_table, savefig

EPOCHS = 1 if FAST else 5
LEARNING_RATE = 0.01
BATCH_SIZE = 100

# %% [markdown]
# ## The data
# tinyautograd's `MNIST` follows torchvision's signature; `transforms.ToTensor()` gives float32 (1, 28, 28)
# images in [0, 1] as in the notes. For speed the whole split is converted once into (N, 784) arrays, exactly
# what `X.view(-1, 784)` produces batch by batch in the notes. `SharedShuffle` (from `_common`) gives both
# libraries' loaders the same shuffled order; `DataLoader(shuffle=True)` would draw from each library's own
# random generator.

# %%
train_set = datasets.MNIST(root=None, train=True, transform=transforms.ToTensor())
test_set = datasets.MNIST(root=None, train=False, transform=transforms.ToTensor())
image, label = train_set[0]
print(train_set)
print("one sample:", tuple(image.shape), image.dtype, "label", label)
x_train = train_set.data.numpy().reshape(-1, 784).astype(np.float32) / 255
y_train = train_set.targets.numpy().astype(np.int64)
x_test = test_set.data.numpy().reshape(-1, 784).astype(np.float32) / 255
y_test = test_set.targets.numpy().astype(np.int64)
assert_close(image.reshape(784), x_train[0], "ToTensor() = pixels / 255")


def loaders(lib, seed: int = 0):
    train = lib.utils.data.TensorDataset(lib.tensor(x_train), lib.tensor(y_train))
    test = lib.utils.data.TensorDataset(lib.tensor(x_test), lib.tensor(y_test))
    return (lib.utils.data.DataLoader(train, batch_size=BATCH_SIZE, sampler=SharedShuffle(len(train), seed)),
            lib.utils.data.DataLoader(test, batch_size=BATCH_SIZE))


# %% [markdown]
# ## The course's code, for either library

# %%
def one_hot_embedding(lib, labels, num_classes: int):
    return lib.eye(num_classes)[labels]


def softmax_to_one_hot(lib, tensor):
    max_idx = lib.argmax(tensor, 1, keepdim=True)
    return lib.zeros(tensor.shape).scatter_(1, max_idx, 1)


def weight_init(m) -> None:
    if m.__class__.__name__.find("Linear") != -1:
        m.weight.data.uniform_(0.0, 1.0)
        m.bias.data.fill_(0)


def make_net(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 50), nn.Sigmoid(), nn.Linear(50, 10), nn.Softmax(dim=1))


def train_and_test(lib, net, epochs: int) -> dict:
    """The notes' loop; also records, per step, the gradient norm reaching each Linear layer's weight."""
    train_loader, test_loader = loaders(lib)
    loss_function = lib.nn.BCELoss()
    optimizer = lib.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    history = {"loss": [], "grad_W1": [], "grad_W2": []}
    net.train()
    for epoch in range(epochs):
        for i, (X, t) in enumerate(train_loader):
            X = X.view(-1, 784)
            t = one_hot_embedding(lib, t, 10)
            Y = net(X)
            loss = loss_function(Y, t)
            history["loss"].append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            history["grad_W1"].append(net[0].weight.grad.norm().item())
            history["grad_W2"].append(net[2].weight.grad.norm().item())
            optimizer.step()
        print(f"[{lib.__name__}] epoch {epoch + 1}/{epochs}  loss {loss.item():.4f}")
    net.eval()
    correct = 0
    predicted = []
    with lib.no_grad():
        for X, t in test_loader:
            Y = net(X.view(-1, 784))
            onehot_y = softmax_to_one_hot(lib, Y)
            correct += int(lib.sum(onehot_y * one_hot_embedding(lib, t, 10)))
            predicted.append(lib.argmax(Y, 1).numpy())
    history["accuracy"] = 100.0 * correct / len(test_loader.dataset)
    history["predicted"] = np.concatenate(predicted)
    return history


# %% [markdown]
# ## Training in both libraries from the same weights

# %%
torch.manual_seed(0)
net_torch = make_net(torch)
net_torch.apply(weight_init)
net_tg = make_net(tg)
copy_torch_weights(net_torch, net_tg)
initial_state = {k: v.detach().numpy().copy() for k, v in net_torch.state_dict().items()}

runs = {"tinyautograd": train_and_test(tg, net_tg, EPOCHS), "torch": train_and_test(torch, net_torch, EPOCHS)}
print_table(["library", "first loss", "last loss", "test accuracy %", "classes predicted"],
            [[name, r["loss"][0], r["loss"][-1], r["accuracy"], sorted(set(r["predicted"].tolist()))]
             for name, r in runs.items()])
assert_close(runs["tinyautograd"]["loss"], runs["torch"]["loss"], f"BCE loss per step ({EPOCHS} epochs, float32)",
             rtol=1e-4, atol=1e-6)
assert_close(runs["tinyautograd"]["grad_W2"], runs["torch"]["grad_W2"], "gradient norm of W2 per step",
             rtol=1e-3, atol=1e-7)
assert runs["tinyautograd"]["accuracy"] == runs["torch"]["accuracy"] == 10.0, "chance level in both"

# %% [markdown]
# ## Why: saturated sigmoids
# Look inside the network at its initial weights, on one batch. The hidden pre-activations a = x W1ᵀ are sums of
# the ~150 lit pixels (values up to 1) times weights averaging 0.5, so they sit in the tens; sigmoid(a) is then 1
# to within 1e-10 or closer (for a > 17, exactly 1.0 in float32), and its derivative sigmoid(a)(1 - sigmoid(a))
# is ~0. The backward pass multiplies the first layer's gradient by that derivative: W1 receives nothing, the
# hidden layer outputs the same all-ones vector for every image, and the output layer cannot tell digits apart:
# it predicts one class for every test image.

# %%
batch = x_train[:BATCH_SIZE]
inspect = {}
for name, lib in [("tinyautograd", tg), ("torch", torch)]:
    net = make_net(lib)
    net.load_state_dict({k: lib.tensor(v) for k, v in initial_state.items()})
    x = lib.tensor(batch)
    pre = net[0](x)
    pre.retain_grad()
    hidden = net[1](pre)
    out = net[3](net[2](hidden))
    lib.nn.BCELoss()(out, one_hot_embedding(lib, lib.tensor(y_train[:BATCH_SIZE]), 10)).backward()
    inspect[name] = {"pre": pre.detach().numpy(), "hidden": hidden.detach().numpy(),
                     "dpre": pre.grad.numpy(), "grad_W1": net[0].weight.grad.numpy()}
ours = inspect["tinyautograd"]
for key in ("pre", "hidden"):
    assert_close(ours[key], inspect["torch"][key], f"hidden layer {key} at the initial weights", rtol=1e-5)
saturated = np.mean(ours["hidden"] == 1.0)
print(f"pre-activations: min {ours['pre'].min():.1f}, median {np.median(ours['pre']):.1f}; "
      f"sigmoid outputs exactly 1.0 in float32: {100 * saturated:.1f}%")
print(f"|dL/dW1| = {np.abs(ours['grad_W1']).max():.3g} (tinyautograd), "
      f"{np.abs(inspect['torch']['grad_W1']).max():.3g} (torch)")
assert saturated > 0.99
assert np.abs(ours["grad_W1"]).max() < 1e-6 and np.abs(inspect["torch"]["grad_W1"]).max() < 1e-6
print("agree: the first layer's gradient vanishes in both libraries")

# %% [markdown]
# ## Figure
# Top left: the loss curves (identical). Top right: the gradient norm reaching each layer, per step: W2 gets
# a gradient, W1 gets (numerically) none. Bottom: the hidden pre-activations at initialisation, far to the right
# of sigmoid's useful range (shaded), and what the sigmoid makes of them.

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 7))
ax = axes[0, 0]
ax.plot(runs["torch"]["loss"], lw=2.4, label="torch")
ax.plot(runs["tinyautograd"]["loss"], "--", lw=1.5, label="tinyautograd")
ax.set_xlabel("step (batch of 100)")
ax.set_ylabel("BCELoss")
ax.set_title(f"course's net: test accuracy {runs['tinyautograd']['accuracy']:.0f}% (both)", fontsize=10)
ax.legend()
ax = axes[0, 1]
for key, color in [("grad_W2", "C0"), ("grad_W1", "C3")]:
    ax.semilogy(np.array(runs["torch"][key]) + 1e-30, color=color, lw=2.4, alpha=0.5)
    ax.semilogy(np.array(runs["tinyautograd"][key]) + 1e-30, "--", color=color,
                label=f"‖dL/d{key[5:]}‖ (tinyautograd dashed, torch wide)")
ax.set_xlabel("step")
ax.set_title("gradient norm per layer (1e-30 = exactly zero)", fontsize=10)
ax.legend(fontsize=8)
ax = axes[1, 0]
ax.hist(ours["pre"].ravel(), bins=60, color="C1")
ax.axvspan(-4, 4, color="C2", alpha=0.25, label="sigmoid not saturated (|a| < 4)")
ax.set_xlabel("hidden pre-activation a = W1 x + b1 (initial weights, one batch)")
ax.legend(fontsize=8)
ax = axes[1, 1]
a = np.linspace(-10, 60, 500)
s = 1 / (1 + np.exp(-a))
ax.plot(a, s, label="sigmoid(a)")
ax.plot(a, s * (1 - s), label="sigmoid'(a)")
ax.plot(ours["pre"].ravel()[::20], ours["hidden"].ravel()[::20], "o", ms=2, color="C1",
        label="hidden units (one batch)")
ax.set_xlabel("a")
ax.set_title("every hidden unit is saturated: sigmoid' ≈ 0", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
savefig(fig, "06_mnist_course")
