# %% [markdown]
# # 05 · Softmax, one-hot targets and cross-entropy
#
# Course topics: **Softmax function**, **One Hot encoding** and **Cross Entropy loss function**, the pieces of
# the classifier in 실습6:
#
# $$\sigma(\mathbf z)_j = \frac{e^{z_j}}{\sum_k e^{z_k}}, \qquad E = -\sum_k t_k \log y_k .$$
#
# Each piece is computed by hand in NumPy, by tinyautograd and by torch, values and gradients. Along the way:
# why a softmax must subtract the largest logit before exponentiating (the stable log-sum-exp), and why the
# gradient of softmax followed by cross-entropy is simply `y - t`.

# %%
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as torch_F

import tinyautograd as tg
import tinyautograd.nn.functional as F
from _common import assert_close, print_table, savefig

# %% [markdown]
# ## Softmax: values
# Softmax turns scores into probabilities: positive, summing to one, order preserved.

# %%
z = np.array([0.3, 2.9, 4.0])


def softmax_naive(a: np.ndarray) -> np.ndarray:
    e = np.exp(a)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_stable(a: np.ndarray) -> np.ndarray:
    # e^(z - m) / sum e^(z - m) is the same ratio (e^-m cancels), and no exponent exceeds e^0 = 1
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ours = F.softmax(tg.tensor(z), dim=0)
theirs = torch.softmax(torch.tensor(z), dim=0)
print_table(["z", "by hand", "tinyautograd", "torch"],
            [[z[i], softmax_naive(z)[i], ours[i].item(), theirs[i].item()] for i in range(len(z))])
assert_close(ours, softmax_naive(z), "softmax: tinyautograd = by hand (float64)", rtol=1e-12)
assert_close(ours, theirs, "softmax: tinyautograd = torch (float64)", rtol=1e-12)
assert_close(ours.sum(), 1.0, "softmax sums to 1", rtol=1e-12)

# %% [markdown]
# ## Why subtract the maximum
# `exp(1000)` overflows (float64 tops out near e^709.8, float32 near e^88.7), so the naive softmax of large
# scores is `inf / inf = nan`. Shifting by the maximum changes nothing mathematically and keeps every
# exponent at most 0. Both libraries compute the stable form; so does the log-sum-exp,
# `log sum_k e^(z_k) = m + log sum_k e^(z_k - m)`, which gives log-softmax without ever forming the softmax.

# %%
big = np.array([1000.0, 1001.0, 1002.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive_big = softmax_naive(big)
print("naive softmax of", big, "->", naive_big)
assert np.isnan(naive_big).all()
assert_close(F.softmax(tg.tensor(big), dim=0), softmax_stable(big), "stable softmax of [1000, 1001, 1002]")
assert_close(F.softmax(tg.tensor(big), dim=0), softmax_stable(big - 1000),
             "softmax is unchanged by a shift of all scores")
for dtype_name in ("float32", "float64"):
    scores = np.array([[88.0, 89.0, 90.0], [-1000.0, 0.0, 1000.0]], dtype=dtype_name)
    lse_ours = tg.logsumexp(tg.tensor(scores), dim=1)
    lse_theirs = torch.logsumexp(torch.tensor(scores), dim=1)
    m = scores.max(axis=1)
    assert_close(lse_ours, m + np.log(np.exp(scores - m[:, None]).sum(axis=1)),
                 f"logsumexp of huge scores, {dtype_name}: tinyautograd = stable formula", rtol=1e-6)
    assert_close(lse_ours, lse_theirs, f"logsumexp of huge scores, {dtype_name}: tinyautograd = torch", rtol=1e-6)
    assert np.isfinite(F.log_softmax(tg.tensor(scores), dim=1).numpy()).all()

# %% [markdown]
# ## Softmax: gradients
# Each output depends on every input: the Jacobian is dy_i/dz_j = y_i (δ_ij - y_j), i.e. `diag(y) - y yᵀ`.
# Autograd gives one row per backward pass (the gradient of y_i), so four passes over a retained graph build it.

# %%
z4 = np.array([1.0, -0.5, 2.0, 0.25])
y4 = softmax_stable(z4)
jacobian_by_hand = np.diag(y4) - np.outer(y4, y4)
rows = {}
for name, lib in [("tinyautograd", tg), ("torch", torch)]:
    zt = lib.tensor(z4, requires_grad=True)
    yt = lib.softmax(zt, dim=0)
    rows[name] = []
    for i in range(4):
        (grad,) = lib.autograd.grad(yt[i], zt, retain_graph=True)
        rows[name].append(grad.numpy())
assert_close(np.array(rows["tinyautograd"]), jacobian_by_hand, "softmax Jacobian: tinyautograd = diag(y) - y yᵀ",
             rtol=1e-12, atol=1e-15)
assert_close(np.array(rows["tinyautograd"]), np.array(rows["torch"]), "softmax Jacobian: tinyautograd = torch",
             rtol=1e-12, atol=1e-15)

# %% [markdown]
# ## One-hot encoding
# A label k becomes a vector with a 1 in place k. The course builds it by indexing an identity matrix,
# `torch.eye(num_classes)[labels]`; `F.one_hot` does the same (as integers).

# %%
labels = [1, 0, 1, 7, 4]


def one_hot_embedding(lib, labels, num_classes: int):
    return lib.eye(num_classes)[labels]


hot_ours = one_hot_embedding(tg, tg.tensor(labels), 10)
hot_theirs = one_hot_embedding(torch, torch.tensor(labels), 10)
print(hot_ours)
assert_close(hot_ours, hot_theirs, "one-hot by eye()[labels]: tinyautograd = torch")
assert_close(F.one_hot(tg.tensor(labels), 10), torch_F.one_hot(torch.tensor(labels), 10),
             "F.one_hot: tinyautograd = torch")
assert_close(hot_ours, F.one_hot(tg.tensor(labels), 10).float(), "eye()[labels] = F.one_hot")

# %% [markdown]
# ## Cross-entropy
# The course's example: the network says y = (0.1, 0.6, 0.1, 0.1, 0.1) and the answer is class 1, so only
# the true class's term survives: E = -log 0.6 ≈ 0.51. A confident wrong answer costs much more.

# %%
y_course = np.array([0.1, 0.6, 0.1, 0.1, 0.1])
t_course = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
by_hand = -(t_course * np.log(y_course)).sum()
for name, lib in [("tinyautograd", tg), ("torch", torch)]:
    y = lib.tensor(y_course, requires_grad=True)
    loss = -(lib.tensor(t_course) * lib.log(y)).sum()
    loss.backward()
    assert_close(loss, by_hand, f"E = -sum t log y = -log 0.6 ({name})", rtol=1e-12)
    assert_close(y.grad, -t_course / y_course, f"dE/dy = -t / y ({name})", rtol=1e-12)
print(f"E = {by_hand:.4f} = -log 0.6; with y_1 = 0.1 instead: {-np.log(0.1):.4f}")

# %% [markdown]
# ## Softmax and cross-entropy together
# On scores z, `F.cross_entropy(z, labels)` is log-softmax plus the negative log-likelihood, averaged over the
# batch. Its gradient is remarkably simple: (softmax(z) - one_hot(labels)) / N. That is why the fused
# op is both stable (log-sum-exp inside) and cheap.

# %%
gen = np.random.default_rng(0)
scores = gen.normal(scale=3.0, size=(5, 10))
y_hand = softmax_stable(scores)
t_hand = np.eye(10)[labels]
loss_hand = -(t_hand * np.log(y_hand)).sum() / len(labels)
grad_hand = (y_hand - t_hand) / len(labels)
results = {}
for name, lib, functional in [("tinyautograd", tg, F), ("torch", torch, torch_F)]:
    s = lib.tensor(scores, requires_grad=True)
    loss = functional.cross_entropy(s, lib.tensor(labels))
    loss.backward()
    results[name] = (loss.item(), s.grad)
    assert_close(loss, loss_hand, f"cross_entropy of a batch of 5 = mean(-log softmax) ({name})", rtol=1e-12)
    assert_close(s.grad, grad_hand, f"d cross_entropy / d z = (softmax - one_hot) / N ({name})",
                 rtol=1e-10, atol=1e-15)
assert_close(results["tinyautograd"][1], results["torch"][1], "d cross_entropy / d z: tinyautograd = torch",
             rtol=1e-12, atol=1e-15)

# %% [markdown]
# ## Figures
# Left: softmax of the scores (z, 2.9, 4.0) as z sweeps, by tinyautograd (lines) and torch (dots). Middle:
# the cross-entropy of the true class, -log y, with the course's point. Right: the naive softmax breaks down
# (nan) once scores pass float32's exp range, the stable one does not.

# %%
sweep = np.linspace(-4.0, 8.0, 121)
grid = np.stack([sweep, np.full_like(sweep, 2.9), np.full_like(sweep, 4.0)], axis=1)
soft_ours = F.softmax(tg.tensor(grid), dim=1).numpy()
soft_theirs = torch.softmax(torch.tensor(grid), dim=1).numpy()
assert_close(soft_ours, soft_theirs, "softmax over the sweep: tinyautograd = torch", rtol=1e-12)

shift = np.linspace(0, 120, 121, dtype=np.float32)
scores32 = np.stack([shift, shift + 1, shift + 2], axis=1).astype(np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive32 = softmax_naive(scores32)[:, 2]
stable32 = F.softmax(tg.tensor(scores32), dim=1).numpy()[:, 2]
assert np.isnan(naive32[-1]) and np.isfinite(stable32).all()

fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for j, label in enumerate(["z", "2.9", "4.0"]):
    axes[0].plot(sweep, soft_ours[:, j], label=f"y for score {label}")
    axes[0].plot(sweep[::10], soft_theirs[::10, j], "o", ms=3, color=f"C{j}")
axes[0].set_xlabel("z")
axes[0].set_title("softmax(z, 2.9, 4.0): tinyautograd (lines), torch (dots)", fontsize=9)
axes[0].legend(fontsize=8)
p = np.linspace(0.01, 1.0, 200)
axes[1].plot(p, -np.log(p))
axes[1].plot([0.6], [-np.log(0.6)], "o", color="C3", label="course: y = 0.6, E = 0.51")
axes[1].set_xlabel("probability given to the true class")
axes[1].set_title("cross-entropy  E = -log y", fontsize=9)
axes[1].legend(fontsize=8)
axes[2].plot(shift, naive32, lw=3, label="naive exp(z) / sum exp(z)")
axes[2].plot(shift, stable32, "--", label="tinyautograd softmax (stable)")
axes[2].set_xlabel("shift s of the scores (s, s + 1, s + 2), float32")
axes[2].set_title("largest softmax output: overflow past s ≈ 86", fontsize=9)
axes[2].set_ylim(0.5, 0.8)
axes[2].legend(fontsize=8)
fig.tight_layout()
savefig(fig, "05_softmax_cross_entropy")
