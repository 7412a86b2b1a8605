# %% [markdown]
# # 03 · Sigmoid, Affine and MSE layers, and XOR with a TwoLayerNet
#
# Course topics: the **Sigmoid**, **Affine** (행렬곱, matrix product) and **MSE** layers with hand-written
# backward passes, and **실습4**: the XOR gate learned by `TwoLayerNet` (2-3-1, sigmoid, MSE, weights drawn from
# uniform(0, 1), biases 0, learning rate 0.1, 20000 epochs, full batch).
#
# The same network is trained three ways from the same initial weights: with the course's layers in NumPy, with
# tinyautograd tensors (the forward pass written once, the backward pass found by autograd), and with PyTorch
# tensors. In float64 the three loss curves are the same curve.
#
# **One inconsistency in the notes is fixed.** The notes' `MSE.forward` returns `1/2 * sum((t - y)^2)`, but its
# `backward` returns `(y - t) / batch_size`, which is the gradient of `sum((t - y)^2) / (2 * batch_size)`. The
# backward is what trains the net, so we keep it and make the forward agree with it: the loss reported here is
# `sum((t - y)^2) / (2 N)` (the notes' printed loss is N = 4 times larger; the training is the same). We also
# record the loss of the forward pass that each update uses, instead of the notes' extra forward pass after it.

# %%
from __future__ import annotations

import time
from collections import OrderedDict

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from _common import FAST, assert_close, print_table, savefig

EPOCHS = 1000 if FAST else 20000
LEARNING_RATE = 0.1


# %% [markdown]
# ## The layers
# Sigmoid's backward uses its own output: dy/dx = y(1 - y). Affine's backward, for a batch X (N, in) and
# dY (N, out): dX = dY W^T, dW = X^T dY, db = dY summed over the batch (axis 0).

# %%
class Sigmoid:
    def __init__(self) -> None:
        self.out = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.out) * self.out


class Affine:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b
        self.x = self.dW = self.db = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class MSE:
    def __init__(self) -> None:
        self.loss = self.y = self.t = None

    def forward(self, y: np.ndarray, t: np.ndarray) -> float:
        self.y, self.t = y, t
        # consistent with backward (see the note at the top): the notes omit the division by the batch size
        self.loss = 0.5 * np.square(t - y).sum() / t.shape[0]
        return self.loss

    def backward(self, dout: float = 1) -> np.ndarray:
        return dout * (self.y - self.t) / self.t.shape[0]


class TwoLayerNet:
    """The course's network; ``params`` holds W1 (in, hidden), b1, W2 (hidden, out), b2."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = {k: v.copy() for k, v in params.items()}
        self.layers = OrderedDict(Affine1=Affine(self.params["W1"], self.params["b1"]), Sigmoid1=Sigmoid(),
                                  Affine2=Affine(self.params["W2"], self.params["b2"]), Sigmoid2=Sigmoid())
        self.last_layer = MSE()

    def predict(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {"W1": self.layers["Affine1"].dW, "b1": self.layers["Affine1"].db,
                "W2": self.layers["Affine2"].dW, "b2": self.layers["Affine2"].db}


# %% [markdown]
# ## Checking the hand-written backward
# Before training, one gradient from the layers is compared with tinyautograd's autograd and with torch's on the
# same weights: that checks the three backward formulas above.

# %%
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
T = np.array([[0], [1], [1], [0]], dtype=np.float64)
rng = np.random.RandomState(3)
initial = {"W1": rng.uniform(size=(2, 3)), "b1": np.zeros(3), "W2": rng.uniform(size=(3, 1)), "b2": np.zeros(1)}


def tensor_loss(lib, params: dict, x, t):
    """The same forward pass on ``lib`` tensors: sigmoid(sigmoid(x W1 + b1) W2 + b2), MSE as above."""
    hidden = lib.sigmoid(x @ params["W1"] + params["b1"])
    y = lib.sigmoid(hidden @ params["W2"] + params["b2"])
    return 0.5 * ((t - y) ** 2).sum() / t.shape[0]


hand_grads = TwoLayerNet(initial).gradient(X, T)
for lib in (tg, torch):
    params = {k: lib.tensor(v, requires_grad=True) for k, v in initial.items()}
    tensor_loss(lib, params, lib.tensor(X), lib.tensor(T)).backward()
    for key in initial:
        assert_close(params[key].grad, hand_grads[key], f"d loss / d {key}: {lib.__name__} autograd = layers",
                     rtol=1e-12, atol=1e-15)


# %% [markdown]
# ## Training three ways
# The loops are the course's: compute the gradients, take one SGD step on every parameter, record the loss.
# With tensors the update runs under `no_grad()` (it must not be recorded) and the gradients are cleared after it,
# since `backward()` adds into `.grad`.

# %%
def train_by_hand() -> tuple[list[float], np.ndarray]:
    """The loss per epoch and the trained network's outputs on the four inputs."""
    network = TwoLayerNet(initial)
    losses = []
    for _ in range(EPOCHS):
        grad = network.gradient(X, T)
        losses.append(network.last_layer.loss)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= LEARNING_RATE * grad[key]
    return losses, network.predict(X)


def train_with_tensors(lib) -> tuple[list[float], np.ndarray]:
    params = {k: lib.tensor(v, requires_grad=True) for k, v in initial.items()}
    x, t = lib.tensor(X), lib.tensor(T)
    losses = []
    for _ in range(EPOCHS):
        loss = tensor_loss(lib, params, x, t)
        loss.backward()
        losses.append(loss.item())
        with lib.no_grad():
            for p in params.values():
                p -= LEARNING_RATE * p.grad
                p.grad = None
    with lib.no_grad():
        outputs = lib.sigmoid(lib.sigmoid(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])
    return losses, outputs.numpy()


curves, outputs, seconds = {}, {}, {}
for name, train in [("layers by hand (NumPy)", train_by_hand), ("tinyautograd", lambda: train_with_tensors(tg)),
                    ("torch", lambda: train_with_tensors(torch))]:
    start = time.perf_counter()
    losses, outputs[name] = train()
    curves[name] = np.array(losses)
    seconds[name] = time.perf_counter() - start

print_table(["implementation", "first loss", "final loss", "outputs for the 4 inputs", "seconds"],
            [[name, c[0], c[-1], np.round(outputs[name].ravel(), 3), f"{seconds[name]:.2f}"]
             for name, c in curves.items()])
hand_curve = curves["layers by hand (NumPy)"]
assert_close(curves["tinyautograd"], hand_curve, f"loss curve over {EPOCHS} epochs: tinyautograd = layers",
             rtol=1e-9, atol=1e-12)
assert_close(curves["torch"], hand_curve, f"loss curve over {EPOCHS} epochs: torch = layers",
             rtol=1e-9, atol=1e-12)
if not FAST:
    assert hand_curve[-1] < 0.5 * hand_curve[0], "the network should learn: the loss must at least halve"
print("targets:", T.ravel())

# %% [markdown]
# ## The curves
# Left: the three loss curves (drawn over each other: they are the same). Right: the largest gap so far between
# each tensor version and the NumPy layers: rounding differences only, near float64's resolution.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
for (name, curve), style in zip(curves.items(), ["-", "--", ":"]):
    left.plot(curve, style, lw=2.2 if style == "-" else 1.6, label=name)
left.set_yscale("log")
left.set_xlabel("epoch")
left.set_ylabel("MSE loss  sum((t - y)²) / 2N")
left.set_title(f"XOR, 2-3-1 sigmoid net, SGD lr {LEARNING_RATE}")
left.legend()
for name in ("tinyautograd", "torch"):
    right.semilogy(np.maximum.accumulate(np.abs(curves[name] - hand_curve)) + 1e-18, label=name)
right.set_xlabel("epoch")
right.set_title("largest |loss - loss by hand| so far  (float64)")
right.legend()
fig.tight_layout()
savefig(fig, "03_xor_three_ways")

