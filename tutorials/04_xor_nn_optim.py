# %% [markdown]
# # 04 · XOR with nn, optim and DataLoader
#
# Course topic: **실습5**, the XOR network of 실습4 rebuilt from a deep-learning library's parts: `nn.Sequential`
# of `nn.Linear` and `nn.Sigmoid`, a `weight_init` function applied with `net.apply` (weights from uniform(0, 1),
# biases 0), a `Dataset` subclass served by a `DataLoader` (batch size 4: the whole data set), `nn.MSELoss` and
# `optim.SGD` with learning rate 0.1, for 20000 epochs.
#
# The course's code is written once, as a function of the library module, and run with `tinyautograd` and with
# `torch`: tinyautograd mirrors torch's API, so `lib.nn.Linear`, `lib.optim.SGD` and `lib.utils.data.DataLoader`
# are the same calls. Torch draws the initial weights; they are copied into the tinyautograd network, so both
# start from the same point and must trace the same loss curve (in float32, the libraries' default dtype, to
# float32 precision).
#
# One change to the notes' loop: it appends the loss *tensor* to `train_loss_list`, which keeps every epoch's
# whole graph alive (20000 graphs); we append `loss.item()`, a plain float.

# %%
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
from _common import FAST, assert_close, copy_torch_weights, print_table, savefig

EPOCHS = 500 if FAST else 20000
LEARNING_RATE = 0.1


# %% [markdown]
# ## The course's code, for either library

# %%
def weight_init(m) -> None:
    # m is a layer of the network: uniform(0, 1) weights and zero biases for the Linear layers
    if m.__class__.__name__.find("Linear") != -1:
        m.weight.data.uniform_(0.0, 1.0)
        m.bias.data.fill_(0)


def make_parts(lib):
    """The data set class and network class of 실습5, built on ``lib`` (tinyautograd or torch)."""
    class XorDataset(lib.utils.data.Dataset):
        def __init__(self) -> None:
            super().__init__()
            self.input = lib.Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
            self.target = lib.Tensor([[0], [1], [1], [0]])

        def __len__(self) -> int:
            return len(self.input)

        def __getitem__(self, item):
            return self.input[item], self.target[item]

    class TwoLayerNet(lib.nn.Module):
        def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
            super().__init__()
            self.network1 = lib.nn.Sequential(
                lib.nn.Linear(input_size, hidden_size),
                lib.nn.Sigmoid(),
                lib.nn.Linear(hidden_size, output_size),
                lib.nn.Sigmoid(),
            )

        def forward(self, x):
            return self.network1(x)

    return XorDataset, TwoLayerNet


def train(lib, net) -> tuple[list[float], np.ndarray]:
    """실습5's training loop; returns the loss per step and the outputs on the last batch."""
    XorDataset, _ = make_parts(lib)
    optimizer = lib.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    dataloader = lib.utils.data.DataLoader(XorDataset(), batch_size=4)
    mse = lib.nn.MSELoss()
    train_loss_list = []
    for epoch in range(EPOCHS):
        for i, (X, t) in enumerate(dataloader, 0):
            Y = net(X)
            loss = mse(Y, t)
            train_loss_list.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return train_loss_list, Y.detach().numpy()


# %% [markdown]
# ## Same initial weights, two libraries
# `copy_torch_weights` moves the state_dict through NumPy arrays; the keys are torch's
# (`network1.0.weight`, `network1.0.bias`, `network1.2.weight`, ...) in both libraries.

# %%
torch.manual_seed(0)
_, TorchNet = make_parts(torch)
_, TgNet = make_parts(tg)
net_torch = TorchNet(input_size=2, hidden_size=3, output_size=1)
net_torch.apply(weight_init)
net_tg = TgNet(input_size=2, hidden_size=3, output_size=1)
net_tg.apply(weight_init)
assert list(net_tg.state_dict()) == list(net_torch.state_dict())
print("state_dict keys:", list(net_tg.state_dict()))
copy_torch_weights(net_torch, net_tg)
print(net_tg)

curves, outputs, seconds = {}, {}, {}
for name, lib, net in [("tinyautograd", tg, net_tg), ("torch", torch, net_torch)]:
    start = time.perf_counter()
    losses, outputs[name] = train(lib, net)
    curves[name] = np.array(losses)
    seconds[name] = time.perf_counter() - start

print_table(["library", "first loss", "final loss", "outputs for [0,0] [0,1] [1,0] [1,1]", "seconds"],
            [[name, c[0], c[-1], np.round(outputs[name].ravel(), 3), f"{seconds[name]:.2f}"]
             for name, c in curves.items()])
assert_close(curves["tinyautograd"], curves["torch"], f"loss curve over {EPOCHS} epochs (float32)",
             rtol=2e-3, atol=1e-6)
assert_close(outputs["tinyautograd"], outputs["torch"], "final outputs (float32)", rtol=1e-3, atol=1e-5)
for (key, ours), theirs in zip(net_tg.state_dict().items(), net_torch.state_dict().values()):
    assert_close(ours, theirs, f"trained {key}", rtol=2e-3, atol=1e-5)

# %% [markdown]
# ## The curve
# The left panel is the course's `plt.plot(train_loss_list)` for both libraries; the right one shows the
# largest gap between them so far: float32 rounding, a few units in the last places of the loss.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
left.plot(curves["torch"], lw=2.4, label="torch")
left.plot(curves["tinyautograd"], "--", lw=1.6, label="tinyautograd")
left.set_xlabel("step (one batch of 4 per epoch)")
left.set_ylabel("MSELoss")
left.set_title("XOR with nn.Sequential, SGD(lr=0.1), DataLoader")
left.legend()
right.semilogy(np.maximum.accumulate(np.abs(curves["tinyautograd"] - curves["torch"]) / curves["torch"]) + 1e-9)
right.set_xlabel("step")
right.set_title("largest relative difference of the losses so far (float32)")
fig.tight_layout()
savefig(fig, "04_xor_nn_optim")
