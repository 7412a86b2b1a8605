# %% [markdown]
# # 14 · Fine-tuning: start from pretrained weights
#
# Course topic: **Fine-tuning** ("pretrained model -> 학습 -> weights -> 얻은 weights로 초기화 -> finetuning"):
# instead of starting from random weights, a network is initialised with weights learned on a related task and
# then trained briefly on the task at hand, which may have very little data.
#
# Here the pretraining task is recognising the ten digits (3,000 labelled training images). The task at hand is
# new: tell even digits from odd ones, with only 50 labelled images. Its labels are a function of what the
# pretrained network already recognises, so its features should transfer. The pretrained network is saved with
# `tinyautograd.save`, loaded into a fresh model with `tinyautograd.load`, its 10-way output layer (the "head") is
# replaced by a new 2-way one, and it is trained on the 50 images in two ways: all weights fine-tuned, or the
# pretrained features frozen and only the head trained. Training the same network from scratch on the same 50
# images is the baseline. Every run happens in tinyautograd and in torch from the same initial weights on the same
# batches, and the curves must agree.

# %%
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinyautograd as tg
import tinyautograd.nn as tnn
from _common import FAST, assert_close, copy_torch_weights, print_table, savefig
from tinyautograd.vision import datasets

start = time.perf_counter()

# %% [markdown]
# ## Data: two tasks from the bundled MNIST subset
# Pretraining uses the first 3,000 of the 4,000 training digits; the 50 fine-tuning images come from the other
# 1,000, so the new task's data were never seen; the 1,000 test digits (labelled even/odd) are the validation set.

# %%
def load_mnist(train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flattened images in [0, 1] (float32, (n, 784)) and labels (int64, (n,)) of the bundled MNIST subset."""
    dataset = datasets.MNIST(root=None, train=train)
    return dataset.data.numpy().reshape(-1, 28 * 28).astype(np.float32) / 255, dataset.targets.numpy().astype(np.int64)


images, labels = load_mnist(train=True)
test_images, test_labels = load_mnist(train=False)
pretrain_count, finetune_count = (1000, 40) if FAST else (3000, 50)
pretrain_x, pretrain_y = images[:pretrain_count], labels[:pretrain_count]
finetune_x, finetune_y = images[3000:3000 + finetune_count], labels[3000:3000 + finetune_count] % 2  # 1 = odd
val_x, val_y = test_images, test_labels % 2
print(f"pretraining: {len(pretrain_x)} digits, 10 classes; fine-tuning: {len(finetune_x)} digits, even/odd "
      f"({finetune_y.sum()} odd); validation: {len(val_x)} digits, even/odd")

# %% [markdown]
# ## The network: features, then a head
# The same class in both libraries (built by a small factory, since each library has its own `nn.Module`).

# %%
def network_class(nn):
    class Net(nn.Module):
        """784 -> 256 -> 64 features (ReLU), then a Linear head with ``classes`` outputs."""

        def __init__(self, classes: int) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU())
            self.head = nn.Linear(64, classes)

        def forward(self, x):
            return self.head(self.features(x))

    return Net


TgNet, TorchNet = network_class(tnn), network_class(torch.nn)


def fit(lib, model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, seed: int,
        val: tuple[np.ndarray, np.ndarray]) -> dict[str, list[float]]:
    """Adam (lr 1e-3) on the parameters that require grad; per-step training loss, per-epoch accuracy on ``val``."""
    optimizer = lib.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-3)
    order = np.random.default_rng(seed)
    history = {"loss": [], "val_acc": []}
    for _ in range(epochs):
        permutation = order.permutation(len(x))
        for first in range(0, len(x), batch_size):
            index = permutation[first:first + batch_size]
            optimizer.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x[index])), lib.tensor(y[index]))
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
        with lib.no_grad():
            predicted = model(lib.tensor(val[0])).argmax(dim=1).numpy()
        history["val_acc"].append(float((predicted == val[1]).mean()))
    return history


# %% [markdown]
# ## 1. Pretrain on the ten digits in both libraries, then save

# %%
torch.manual_seed(0)
torch_pretrained, tg_pretrained = TorchNet(10), TgNet(10)
copy_torch_weights(torch_pretrained, tg_pretrained)
pretrain_epochs = 3 if FAST else 5
digits = (test_images, test_labels)
ours = fit(tg, tg_pretrained, pretrain_x, pretrain_y, pretrain_epochs, 64, seed=1, val=digits)
theirs = fit(torch, torch_pretrained, pretrain_x, pretrain_y, pretrain_epochs, 64, seed=1, val=digits)
assert_close(ours["loss"], theirs["loss"], "pretraining loss at every step vs torch", rtol=2e-3, atol=1e-5)
assert_close(ours["val_acc"], theirs["val_acc"], "pretraining test accuracy per epoch vs torch", atol=0.003)
print(f"pretrained network: {ours['val_acc'][-1]:.1%} of the 1,000 test digits recognised")

workdir = tempfile.TemporaryDirectory()
checkpoint = Path(workdir.name) / "pretrained_digits.pt"
tg.save(tg_pretrained.state_dict(), checkpoint)
torch_checkpoint = Path(workdir.name) / "pretrained_digits_torch.pt"
torch.save(torch_pretrained.state_dict(), torch_checkpoint)
print(f"saved {sorted(tg_pretrained.state_dict())} ({checkpoint.stat().st_size} bytes)")

# %% [markdown]
# ## 2. Load into a new model and replace the head
# `tinyautograd.load` reads the file back (a zip of `.npy` arrays and JSON: nothing is unpickled). The reloaded
# model must compute exactly what the saved one did. The new head (2 outputs: even, odd) is a fresh
# `nn.Linear(64, 2)` with torch's initial weights copied, so both libraries fine-tune from the same point.

# %%
def pretrained_with_new_head(lib, Net, path: Path, new_head_state: dict[str, np.ndarray]):
    model = Net(10)
    model.load_state_dict(lib.load(path))
    model.head = lib.nn.Linear(64, 2)
    model.head.load_state_dict({k: lib.tensor(v) for k, v in new_head_state.items()})
    return model


reloaded = TgNet(10)
reloaded.load_state_dict(tg.load(checkpoint))
probe = tg.tensor(val_x[:50])
with tg.no_grad():
    assert_close(reloaded(probe), tg_pretrained(probe), "reloaded model = saved model", rtol=0, atol=0)
torch_head = torch.nn.Linear(64, 2)
new_head_state = {k: v.detach().numpy().copy() for k, v in torch_head.state_dict().items()}

# %% [markdown]
# ## 3. Fine-tune vs train from scratch on 50 images
# Three runs per library, in batches of 10:
#
# * **scratch**: a fresh network (torch's initial weights, copied) with a 2-way head;
# * **fine-tune all**: the pretrained features and the new head, all trained;
# * **frozen features**: `model.features.requires_grad_(False)`, only the head (130 weights) trained.

# %%
finetune_epochs = 8 if FAST else 30
runs = {}
for variant in ("scratch", "fine-tune all", "frozen features"):
    if variant == "scratch":
        torch.manual_seed(2)
        torch_model, tg_model = TorchNet(2), TgNet(2)
        copy_torch_weights(torch_model, tg_model)
    else:
        tg_model = pretrained_with_new_head(tg, TgNet, checkpoint, new_head_state)
        torch_model = pretrained_with_new_head(torch, TorchNet, torch_checkpoint, new_head_state)
        if variant == "frozen features":
            for model in (tg_model, torch_model):
                model.features.requires_grad_(False)
    before = [q.detach().numpy().copy() for q in tg_model.features.parameters()]
    ours = fit(tg, tg_model, finetune_x, finetune_y, finetune_epochs, 10, seed=3, val=(val_x, val_y))
    theirs = fit(torch, torch_model, finetune_x, finetune_y, finetune_epochs, 10, seed=3, val=(val_x, val_y))
    assert_close(ours["loss"], theirs["loss"], f"{variant}: training loss at every step vs torch", rtol=2e-3,
                 atol=1e-5)
    assert_close(ours["val_acc"], theirs["val_acc"], f"{variant}: validation accuracy per epoch vs torch",
                 atol=0.003)
    if variant == "frozen features":
        for b, q in zip(before, tg_model.features.parameters()):
            assert q.grad is None and np.array_equal(b, q.detach().numpy()), "frozen weights must not change"
        print("frozen features: no gradient, weights unchanged")
    runs[variant] = (ours, theirs)

print_table(["variant", "val acc after 1 epoch", "best val acc", "final val acc", "final train loss"],
            [(v, o["val_acc"][0], max(o["val_acc"]), o["val_acc"][-1], np.mean(o["loss"][-5:]))
             for v, (o, _) in runs.items()], floatfmt=".3f")
scratch, finetuned, frozen = (runs[v][0]["val_acc"] for v in ("scratch", "fine-tune all", "frozen features"))
assert finetuned[0] > scratch[0] + 0.1, "pretrained features should give a head start"
assert max(finetuned) > max(scratch), "fine-tuning should reach a better accuracy than training from scratch"
if not FAST:  # the head alone needs the full 30 epochs to converge
    assert frozen[-1] > scratch[-1], "frozen pretrained features should end above training from scratch"

# %% [markdown]
# The pretrained runs start far above chance after one epoch, where the scratch network is still guessing, and
# stay above it. With only 50 labels, fine-tuning every weight slowly overfits them, while the frozen features
# cannot: the fewer new labels there are, the more of the pretrained network it pays to keep fixed.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for i, (variant, (ours, theirs)) in enumerate(runs.items()):
    epoch_axis = np.arange(1, finetune_epochs + 1)
    axes[0].plot(epoch_axis, ours["val_acc"], "-", color=f"C{i}", label=variant)
    axes[0].plot(epoch_axis, theirs["val_acc"], "x", color=f"C{i}", ms=4)
    steps_per_epoch = len(ours["loss"]) / finetune_epochs
    step_axis = np.arange(len(ours["loss"])) / steps_per_epoch
    axes[1].plot(step_axis, ours["loss"], "-", color=f"C{i}", label=variant, lw=1)
    axes[1].plot(step_axis, theirs["loss"], "--", color=f"C{i}", lw=1, alpha=0.6)
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("even/odd accuracy on 1,000 test digits")
axes[0].set_title("Validation: tinyautograd (lines), torch (x)", fontsize=9)
axes[0].legend(fontsize=8)
axes[1].set_yscale("log")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("training cross-entropy")
axes[1].set_title(f"Training on {len(finetune_x)} images: tinyautograd (solid), torch (dashed)", fontsize=9)
axes[1].legend(fontsize=8)
fig.tight_layout()
savefig(fig, "14_finetuning")
workdir.cleanup()

print(f"done in {time.perf_counter() - start:.1f} s")
