"""The fused CUDA kernels, run on the CPU: every body compiled as C++ by ``kernel_harness`` and held to torch.

With the harness installed as ``tinyautograd._kernels``' emulator, the library takes its CUDA code paths on NumPy
arrays: optimizers update through one kernel per parameter, activations' backward and cross entropy through
theirs. Each test checks that the kernel it names really ran (a counting emulator) and that the results equal
torch's (float64 tightly, float32 loosely) and the NumPy formulas'. ``test_every_kernel_has_a_test`` keeps the
table complete: a new kernel without a test here fails the suite. On a GPU the same kernels are compiled by CuPy
and the device-parametrised suites compare them with torch on cuda (``make gpu-check``).
"""
from __future__ import annotations

import contextlib
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tinyautograd as tg
import tinyautograd.nn.functional as F
from tinyautograd import _kernels, optim
import kernel_harness
import test_optim
from helpers import to_numpy, tolerance

RUNS: Counter = Counter()


def _counting(kernel, *args):
    RUNS[kernel.name] += 1
    return kernel_harness.emulate(kernel, *args)


@contextlib.contextmanager
def kernels_on_cpu(expect: str | None = None):
    """Run the library's fused-kernel paths on the CPU; with ``expect``, assert that kernel ran."""
    before = RUNS[expect] if expect else 0
    previous = _kernels.set_emulator(_counting)
    try:
        yield
    finally:
        _kernels.set_emulator(previous)
    if expect:
        assert RUNS[expect] > before, f"kernel {expect} did not run"


# ---------------------------------------------------------------------------------------------------------------
# optimizers: one kernel per parameter per step

OPTIMIZER_CASES = {
    "sgd": ("SGD", {"lr": 0.1, "weight_decay": 0.01, "maximize": True}),
    "sgd_momentum": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "adam": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "adam_amsgrad": ("AdamW", {"lr": 0.01, "amsgrad": True, "betas": (0.3, 0.9)}),
    "nadam": ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "radam": ("RAdam", {"lr": 0.01, "weight_decay": 0.1}),  # the rectified branch starts at step 6
    "adamax": ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    "adagrad": ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
    "adadelta": ("Adadelta", {"lr": 0.5, "weight_decay": 0.1}),
    "rmsprop": ("RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
    "rmsprop_centered": ("RMSprop", {"lr": 0.01, "centered": True}),
    "rmsprop_momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    "rmsprop_centered_momentum": ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "maximize": True}),
}


def _run_pair(name, kwargs, dtype, steps=test_optim.STEPS):
    rng = np.random.default_rng(7)
    values = [rng.standard_normal(s).astype(dtype) for s in test_optim.SHAPES]
    ours, opt, theirs, ref = test_optim.make_pair(name, kwargs, {"lr": 0.02}, values)
    for step in range(steps):
        test_optim.feed_grads(rng, step, ours, theirs, "cpu")
        opt.step()
        ref.step()
    return ours, opt, theirs, ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", sorted(OPTIMIZER_CASES))
def test_optimizer_kernel_matches_torch(kernel, dtype):
    name, kwargs = OPTIMIZER_CASES[kernel]
    with kernels_on_cpu(expect=kernel):
        ours, opt, theirs, ref = _run_pair(name, kwargs, dtype)
    rtol, atol = (test_optim.RTOL, test_optim.ATOL) if dtype == np.float64 else (1e-4, 1e-5)
    for p, q in zip(ours, theirs):
        assert p.dtype.name == str(q.dtype).removeprefix("torch.")
        np.testing.assert_allclose(to_numpy(p), to_numpy(q), rtol=rtol, atol=atol)
    test_optim.assert_state_equal(opt, ours, ref, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("kernel", sorted(OPTIMIZER_CASES))
def test_optimizer_kernel_equals_the_numpy_formula(kernel):
    """float64: the kernel repeats the formula's operations in order, so both paths agree to the last bits."""
    name, kwargs = OPTIMIZER_CASES[kernel]
    with kernels_on_cpu(expect=kernel):
        fused, fused_opt, _, _ = _run_pair(name, kwargs, np.float64, steps=8)
    plain, plain_opt, _, _ = _run_pair(name, kwargs, np.float64, steps=8)
    for p, q in zip(fused, plain):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-14, atol=1e-300)
    for p, q in zip(fused, plain):
        for key, value in plain_opt.state[q].items():
            np.testing.assert_allclose(fused_opt.state[p][key].numpy(), value.numpy(), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", test_optim.NAMES)
@settings(deadline=None)
@given(data=st.data())
def test_fused_optimizers_match_torch_for_drawn_hyperparameters(name, data):
    """The whole hyperparameter space of ``test_optim`` (every flag), with the kernels doing the updates."""
    with kernels_on_cpu(expect=None):
        test_optim.test_optimizer_matches_torch_over_many_steps.hypothesis.inner_test("cpu", name, data)


def test_optimizer_kernels_propagate_nan_like_torch():
    """amsgrad's and Adamax's maxima keep a NaN, as torch.maximum does (fmax would drop it)."""
    for name, kwargs in [("Adam", {"amsgrad": True}), ("Adamax", {})]:
        p, q = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True), torch.tensor([1.0, 2.0],
                                                                                        dtype=torch.float64,
                                                                                        requires_grad=True)
        opt, ref = getattr(optim, name)([p], lr=0.1, **kwargs), getattr(torch.optim, name)([q], lr=0.1, **kwargs)
        with kernels_on_cpu(expect="adam_amsgrad" if name == "Adam" else "adamax"):
            for g in ([np.nan, 1.0], [1.0, 1.0]):
                p.grad, q.grad = tg.tensor(g, dtype=tg.float64), torch.tensor(g, dtype=torch.float64)
                opt.step()
                ref.step()
        np.testing.assert_array_equal(np.isnan(p.detach().numpy()), np.isnan(q.detach().numpy()))
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# activations: one kernel for the backward formula

ACTIVATION_CASES = {
    "relu_backward": (tg.relu, torch.relu),
    "sigmoid_backward": (tg.sigmoid, torch.sigmoid),
    "tanh_backward": (tg.tanh, torch.tanh),
    "leaky_relu_backward": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu_backward": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "gelu_backward": (F.gelu, TF.gelu),
    "gelu_tanh_backward": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu_backward": (F.silu, TF.silu),
    "softplus_backward": (lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    "mish_backward": (F.mish, TF.mish),
    "hardtanh_backward": (lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: TF.hardtanh(x, -2.0, 1.5)),
    "hardsigmoid_backward": (F.hardsigmoid, TF.hardsigmoid),
    "hardswish_backward": (F.hardswish, TF.hardswish),
    "threshold_backward": (lambda x: F.threshold(x, 0.5, -1.0), lambda x: TF.threshold(x, 0.5, -1.0)),
    "logsigmoid_backward": (F.logsigmoid, TF.logsigmoid),
}
# the same functions reach the elu kernel with other constants
ELU_FAMILY = [(F.selu, TF.selu), (lambda x: F.celu(x, 1.5), lambda x: TF.celu(x, 1.5))]

# values away from the kinks (0, +-3, thresholds) where a one-sided derivative would be compared; large magnitudes
# to reach the overflow-safe branches; exact kink points are checked separately below
VALUES = st.lists(st.floats(-40, 40).filter(lambda v: min(abs(v - k) for k in (0, 3, -3, 0.5, -2, 1.5, 2.5)) > 1e-3),
                  min_size=1, max_size=24)


def _activation_grads(ours_fn, theirs_fn, values, dtype, seed=0):
    x = np.asarray(values, dtype=dtype)
    g = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours_fn(a).backward(tg.tensor(g))
    theirs_fn(b).backward(torch.tensor(g))
    return a.grad.numpy(), b.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", sorted(ACTIVATION_CASES))
@given(values=VALUES)
@example(values=[-40.0, -20.5, -1.0, 0.25, 1.0, 19.0, 25.0, 40.0])
@example(values=[1.0, 1.0, -4.75])  # gelu_tanh's cancellation (found by the thorough profile)
def test_activation_backward_kernel_matches_torch(kernel, dtype, values):
    _check_activation_kernel(kernel, ACTIVATION_CASES[kernel], _activation_grads, dtype, values)


def _check_activation_kernel(kernel, fns, run, dtype, values):
    """``run(ours, theirs, values, dtype)`` -> (ours, torch's) with the kernel, then ours again with the formula.
    torch is held to the suite's tolerance (it rounds some constants, e.g. hardsigmoid's 1/6, to float32); the
    NumPy formula, whose operations the kernel repeats in double, tightly."""
    with kernels_on_cpu(expect=kernel):
        mine, ref = run(*fns, values, dtype)
    assert mine.dtype == dtype
    np.testing.assert_allclose(mine, ref, **vars(tolerance(dtype)))
    plain, _ = run(*fns, values, dtype)
    # float64: a few ulps of the O(1) terms (NumPy's tanh/exp and the C library's may differ by an ulp, which a
    # cancellation such as gelu_tanh's 1 + tanh(...) near -5 turns into a larger relative difference)
    tight = {"rtol": 1e-13, "atol": 1e-14} if dtype == np.float64 else vars(tolerance(dtype))
    np.testing.assert_allclose(mine, plain, **tight)


@pytest.mark.parametrize("fns", ELU_FAMILY, ids=["selu", "celu"])
def test_selu_and_celu_use_the_elu_kernel_with_their_constants(fns):
    values = np.linspace(-5, 5, 41)
    with kernels_on_cpu(expect="elu_backward"):
        mine, ref = _activation_grads(*fns, values, np.float64)
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel", sorted(ACTIVATION_CASES))
def test_activation_backward_kernel_at_kinks_and_specials_matches_the_formula(kernel):
    """At kinks the kernel picks the same side as the formula; inf/-inf inputs give the formula's values; a NaN
    input gives torch's gradient (which for relu, hardtanh, threshold and elu is ``g``, not NaN or 0)."""
    values = [0.0, -0.0, 3.0, -3.0, 0.5, -2.0, 1.5, 20.0, -20.0, np.inf, -np.inf, np.nan]
    _check_activation_kernel_at_specials(kernel, ACTIVATION_CASES[kernel], _activation_grads, values)


def _check_activation_kernel_at_specials(kernel, fns, run, values):
    """float64 at special values: the kernel equals the formula and torch, NaN where they have NaN."""
    with np.errstate(all="ignore"):
        with kernels_on_cpu(expect=kernel):
            mine, ref = run(*fns, values, np.float64)
        plain, _ = run(*fns, values, np.float64)
    np.testing.assert_allclose(mine, plain, rtol=1e-13, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(mine, ref, **vars(tolerance(np.float64)), equal_nan=True)


@pytest.mark.parametrize("kernels", [False, True])
def test_relu_family_gradient_is_zero_where_cut_even_for_an_infinite_incoming_gradient(kernels):
    """torch selects (``where``) rather than multiplies by a mask: ``inf * 0`` would be NaN."""
    g = np.array([np.inf, -np.inf, 1.0])
    for ours_fn, theirs_fn in (ACTIVATION_CASES["relu_backward"], ACTIVATION_CASES["hardtanh_backward"],
                               ACTIVATION_CASES["threshold_backward"]):
        a, b = tg.tensor([-5.0, -4.0, 0.25], requires_grad=True), torch.tensor([-5.0, -4.0, 0.25], requires_grad=True)
        with kernels_on_cpu() if kernels else contextlib.nullcontext():
            ours_fn(a).backward(tg.tensor(g))
        theirs_fn(b).backward(torch.tensor(g))
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


# the same activations' forward formulas, one kernel each (relu, tanh and hardtanh are one CuPy launch already)
FORWARD_CASES = {"sigmoid": ACTIVATION_CASES["sigmoid_backward"]} | {
    name: ACTIVATION_CASES[name + "_backward"]
    for name in ("silu", "logsigmoid", "softplus", "mish", "gelu", "gelu_tanh", "elu", "leaky_relu", "hardsigmoid",
                 "hardswish", "threshold")}


def _activation_values(ours_fn, theirs_fn, values, dtype):
    x = np.asarray(values, dtype=dtype)
    return ours_fn(tg.tensor(x)).numpy(), theirs_fn(torch.tensor(x)).numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", sorted(FORWARD_CASES))
@given(values=VALUES)
@example(values=[-40.0, -20.5, -1.0, 0.25, 1.0, 19.0, 25.0, 40.0])
def test_activation_forward_kernel_matches_torch(kernel, dtype, values):
    _check_activation_kernel(kernel, FORWARD_CASES[kernel], _activation_values, dtype, values)


@pytest.mark.parametrize("kernel", sorted(FORWARD_CASES))
def test_activation_forward_kernel_at_kinks_and_specials_matches_the_formula(kernel):
    """Kinks, signed zeros, +-inf and NaN give the formula's values (NaN stays NaN)."""
    values = [0.0, -0.0, 3.0, -3.0, 0.5, -2.0, 1.5, 20.0, -20.0, 710.0, -710.0, np.inf, -np.inf, np.nan]
    _check_activation_kernel_at_specials(kernel, FORWARD_CASES[kernel], _activation_values, values)


def test_selu_and_celu_use_the_elu_forward_kernel_with_their_constants():
    values = np.linspace(-5, 5, 41)
    for ours_fn, theirs_fn in ELU_FAMILY:
        with kernels_on_cpu(expect="elu"):
            mine, ref = _activation_values(ours_fn, theirs_fn, values, np.float64)
        np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-14)


def test_activation_forward_kernels_keep_inplace_and_float16_behaviour():
    """``inplace=True`` still writes into the input and backpropagates from the input as it was; float16 (no
    kernel) takes the formula."""
    x = np.linspace(-3, 3, 7)
    a = tg.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="silu"):
        h = a * 1.0
        out = F.silu(h, inplace=True)
        assert out is h
        out.sum().backward()
    TF.silu(b * 1.0, inplace=True).sum().backward()
    np.testing.assert_allclose(h.detach().numpy(), TF.silu(torch.tensor(x)).numpy(), rtol=1e-13)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
    half = tg.tensor(x, dtype=tg.float16)
    runs = sum(RUNS.values())
    with kernels_on_cpu():
        y = tg.sigmoid(half)
    assert sum(RUNS.values()) == runs and y.dtype == tg.float16
    np.testing.assert_allclose(y.numpy(), torch.sigmoid(torch.tensor(x, dtype=torch.float16)).numpy(), rtol=1e-3)


def test_second_derivatives_do_not_use_the_kernels():
    """create_graph=True records the formula (differentiable), not an opaque backward kernel (the ops the formula
    records may still compute their values with forward kernels: sigmoid's does)."""
    x = tg.tensor([-1.0, 0.5, 2.0], dtype=tg.float64, requires_grad=True)
    y = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    with kernels_on_cpu():
        y_ = F.silu(x).sum()
        backward_runs = lambda: sum(n for name, n in RUNS.items() if name.endswith("_backward"))  # noqa: E731
        before, sigmoids = backward_runs(), RUNS["sigmoid"]
        (g,) = tg.autograd.grad(y_, x, create_graph=True)
        assert backward_runs() == before and RUNS["sigmoid"] > sigmoids
        g.sum().backward()  # a first-order pass over the recorded formula: its own ops may use kernels
    (h,) = torch.autograd.grad(TF.silu(y).sum(), y, create_graph=True)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# cross entropy: per-row losses in one launch, the backward in another

@st.composite
def class_problems(draw):
    n = draw(st.integers(1, 9))
    c = draw(st.integers(1, 12))
    scale = draw(st.sampled_from([1.0, 30.0, 300.0]))
    x = np.asarray(draw(st.lists(st.floats(-1, 1), min_size=n * c, max_size=n * c))).reshape(n, c) * scale
    t = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    ignore = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    t[np.asarray(ignore)] = -100
    return x, t


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(problem=class_problems(), unbatched=st.booleans(), weighted=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.0, 0.1, 1.0]))
@example(problem=(np.zeros((3, 4)), np.full(3, -100)), unbatched=False, weighted=False,
         smoothing=0.0)  # every target ignored: nan loss, zero grad
def test_class_index_loss_kernels_match_torch(name, dtype, reduction, problem, unbatched, weighted, smoothing):
    """cross_entropy from logits (with class weights and label smoothing) and nll_loss of log-probabilities (with
    class weights) share the row kernel and its backward."""
    x, t = problem
    x = x.astype(dtype)
    if unbatched:
        x, t = x[0], t[0]
    w = np.linspace(0.5, 2.0, x.shape[-1]).astype(dtype) if weighted else None
    kw = {"reduction": reduction, "weight": None}
    if name == "cross_entropy":
        kw["label_smoothing"] = smoothing
    ours_kw, theirs_kw = dict(kw), dict(kw)
    if weighted:
        ours_kw["weight"], theirs_kw["weight"] = tg.tensor(w), torch.tensor(w)
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="cross_entropy_rows"):
        loss = getattr(F, name)(a, tg.tensor(t), **ours_kw)
        ref = getattr(TF, name)(b, torch.tensor(t), **theirs_kw)
        seed = np.random.default_rng(1).standard_normal(tuple(ref.shape)).astype(dtype)
        with kernels_on_cpu(expect="cross_entropy_backward"):
            loss.backward(tg.tensor(seed))
    ref.backward(torch.tensor(seed))
    tol = {"rtol": 1e-12, "atol": 1e-13} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    assert loss.shape == tuple(ref.shape) and loss.dtype.name == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(loss.detach().numpy(), ref.detach().numpy(), equal_nan=True, **tol)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_class_index_kernel_reports_an_out_of_range_target(name):
    with kernels_on_cpu(expect="cross_entropy_rows"):
        with pytest.raises(IndexError, match="Target 7 is out of bounds"):
            getattr(F, name)(tg.randn(3, 5), tg.tensor([0, 7, 1]))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_class_index_losses_after_the_kernels_still_have_second_derivatives(name):
    x = np.random.default_rng(3).standard_normal((4, 3))
    t = [0, 2, -100, 1]
    w = [0.5, 2.0, 1.5]
    extra = {"label_smoothing": 0.2} if name == "cross_entropy" else {}
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="cross_entropy_rows"):
        (g,) = tg.autograd.grad(getattr(F, name)(a * a, tg.tensor(t), weight=tg.tensor(w), **extra), a,
                                create_graph=True)
        (g * g).sum().backward()
    (h,) = torch.autograd.grad(getattr(TF, name)(b * b, torch.tensor(t), weight=torch.tensor(w, dtype=torch.float64),
                                                 **extra), b, create_graph=True)
    (h * h).sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), h.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_outside_the_kernel_cases_takes_the_formula():
    """float16 keeps the general formula."""
    x = tg.randn(4, 3, requires_grad=True)
    with kernels_on_cpu():
        before = RUNS["cross_entropy_rows"] + RUNS["cross_entropy_prob_rows"]
        F.cross_entropy(x.half(), tg.tensor([0, 1, 2, 0]), weight=tg.ones(3, dtype=tg.float16))
        F.cross_entropy(x.half(), tg.softmax(tg.randn(4, 3), 1).half())
        assert RUNS["cross_entropy_rows"] + RUNS["cross_entropy_prob_rows"] == before


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(n=st.integers(1, 3), c=st.integers(1, 5), spatial=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2 ** 16))
def test_class_index_kernels_take_per_position_targets(name, dtype, n, c, spatial, reduction, weighted, smoothing,
                                                        seed):
    """(N, C, d1, ...) logits with (N, d1, ...) targets (a segmentation loss): a row per position, its classes
    ``d1 * ...`` apart."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c) + tuple(spatial)) * 4).astype(dtype)
    t = rng.integers(0, c, (n,) + tuple(spatial))
    t[rng.random(t.shape) < 0.2] = -100
    kw = {"reduction": reduction} | ({"label_smoothing": smoothing} if name == "cross_entropy" else {})
    w = np.linspace(0.5, 2.0, c).astype(dtype) if weighted else None
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="cross_entropy_rows"), kernels_on_cpu(expect="cross_entropy_backward"):
        loss = getattr(F, name)(a, tg.tensor(t), weight=None if w is None else tg.tensor(w), **kw)
        g = rng.standard_normal(tuple(loss.shape)).astype(dtype)
        loss.backward(tg.tensor(g))
    ref = getattr(TF, name)(b, torch.tensor(t), weight=None if w is None else torch.tensor(w), **kw)
    ref.backward(torch.tensor(g))
    tol = {"rtol": 1e-11, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    assert tuple(loss.shape) == tuple(ref.shape)
    np.testing.assert_allclose(loss.detach().numpy(), ref.detach().numpy(), equal_nan=True, **tol)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)


def _prob_ce_run(lib, fn, x, t, w, kw, want_t, g):
    a, b = lib.tensor(x, requires_grad=True), lib.tensor(t, requires_grad=want_t)
    loss = fn(a, b, weight=None if w is None else lib.tensor(w), **kw)
    loss.backward(lib.tensor(g))
    return [loss.detach().numpy(), a.grad.numpy()] + ([b.grad.numpy()] if want_t else [])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(shape=st.sampled_from([(4,), (3, 4), (2, 3, 2), (2, 4, 2, 3)]), reduction=st.sampled_from(["mean", "sum",
                                                                                                  "none"]),
       weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.25]), want_t=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_probability_target_cross_entropy_kernels_match_torch(dtype, shape, reduction, weighted, smoothing, want_t,
                                                              seed):
    """Soft targets (distillation, mixup): a row kernel for the losses, one launch for both gradients."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.dirichlet(np.ones(shape[1] if len(shape) > 1 else shape[0]), x.size // (shape[1] if len(shape) > 1
                                                                                      else shape[0]))
    t = np.moveaxis(t.reshape((shape[0],) + shape[2:] + (shape[1],)), -1, 1) if len(shape) > 1 else t[0]
    t = t.astype(dtype)
    w = np.linspace(0.5, 2.0, shape[1] if len(shape) > 1 else shape[0]).astype(dtype) if weighted else None
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    out_shape = () if reduction != "none" else ((shape[0],) + shape[2:] if len(shape) > 1 else ())
    g = rng.standard_normal(out_shape).astype(dtype)
    with kernels_on_cpu(expect="cross_entropy_prob_rows"), kernels_on_cpu(expect="cross_entropy_prob_backward"):
        mine = _prob_ce_run(tg, F.cross_entropy, x, t, w, kw, want_t, g)
    plain = _prob_ce_run(tg, F.cross_entropy, x, t, w, kw, want_t, g)
    theirs = _prob_ce_run(torch, TF.cross_entropy, x, t, w, kw, want_t, g)
    for m, p_, r in zip(mine, plain, theirs):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)))
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-11, atol=1e-13)


def test_probability_target_cross_entropy_after_the_kernels_keeps_double_backward():
    x, t = np.random.default_rng(6).standard_normal((3, 4)), np.random.default_rng(7).dirichlet(np.ones(4), 3)
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="cross_entropy_prob_rows"):
        (ga,) = tg.autograd.grad(F.cross_entropy(a * a, tg.tensor(t), label_smoothing=0.1), a, create_graph=True)
        (ga * ga).sum().backward()
    (gb,) = torch.autograd.grad(TF.cross_entropy(b * b, torch.tensor(t), label_smoothing=0.1), b, create_graph=True)
    (gb * gb).sum().backward()
    np.testing.assert_allclose(ga.detach().numpy(), gb.detach().numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# softmax and log_softmax along any axis: one launch forward, one backward

SOFTMAX_CASES = {"softmax": (tg.softmax, torch.softmax, "softmax_rows", "softmax_backward_rows"),
                 "log_softmax": (tg.log_softmax, torch.log_softmax, "log_softmax_rows", "log_softmax_backward_rows")}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", sorted(SOFTMAX_CASES))
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), scale=st.sampled_from([1.0, 50.0, 1000.0]),
       seed=st.integers(0, 2 ** 16), transposed=st.booleans(), data=st.data())
def test_softmax_row_kernels_match_torch(op, dtype, shape, scale, seed, transposed, data):
    """Along any axis: the kernels walk a row whose values lie ``inner`` apart."""
    ours_fn, theirs_fn, forward, backward = SOFTMAX_CASES[op]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if transposed and x.ndim > 1:
        x = x.swapaxes(0, -1)  # a non-contiguous input
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    g = rng.standard_normal(x.shape).astype(dtype)
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect=forward):
        y = ours_fn(a, dim)
        with kernels_on_cpu(expect=backward):
            y.backward(tg.tensor(g))
    ref = theirs_fn(b, dim)
    ref.backward(torch.tensor(g))
    tol = vars(tolerance(dtype))
    np.testing.assert_allclose(y.detach().numpy(), ref.detach().numpy(), **tol)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)


@pytest.mark.parametrize("op", sorted(SOFTMAX_CASES))
def test_softmax_of_a_0d_tensor_with_the_kernels_on(op):
    """No row to walk: the 0-d forward and backward keep their formulas (found by the CI lane on the stand-in)."""
    ours_fn, theirs_fn, _, _ = SOFTMAX_CASES[op]
    a, b = tg.tensor(0.5, requires_grad=True), torch.tensor(0.5, requires_grad=True)
    with kernels_on_cpu():
        y = ours_fn(a, 0)
        y.backward()
    z = theirs_fn(b, 0)
    z.backward()
    assert y.item() == z.item() and a.grad.item() == b.grad.item()


@pytest.mark.parametrize("op", sorted(SOFTMAX_CASES))
def test_softmax_row_kernels_over_a_middle_axis_equal_the_formula(op):
    """dim=1 of (N, C, H, W), as a segmentation net's softmax: float64 to rounding."""
    ours_fn, _, forward, backward = SOFTMAX_CASES[op]
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 4)) * 7
    g = np.random.default_rng(1).standard_normal(x.shape)
    results = []
    for kernels in (True, False):
        a = tg.tensor(x, requires_grad=True)
        with kernels_on_cpu(expect=forward) if kernels else contextlib.nullcontext():
            y = ours_fn(a, 1)
            y.backward(tg.tensor(g))
        results.append((y.detach().numpy(), a.grad.numpy()))
    for mine, plain in zip(*results):
        np.testing.assert_allclose(mine, plain, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------
# 2-d max pooling: one launch forward, one backward (overlapping windows too)

@st.composite
def pool_geometries(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = tuple(draw(st.integers(1, d * (kk - 1) + 2)) for kk, d in zip(k, dilation))
    padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    size = tuple(draw(st.integers(d * (kk - 1) + 1, 7)) for kk, d in zip(k, dilation))
    return dict(kernel_size=k, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=draw(st.booleans())), size


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=pool_geometries(), seed=st.integers(0, 2 ** 16), ties=st.booleans(), nan=st.booleans())
def test_max_pool2d_kernels_match_torch(dtype, problem, seed, ties, nan):
    kwargs, size = problem
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, 3) + size).astype(dtype) if ties else rng.standard_normal((2, 3) + size).astype(dtype)
    if nan:
        x[0, 1, 0, 0] = np.nan
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="max_pool2d"):
        y, idx = F.max_pool2d(a, return_indices=True, **kwargs)
        ref, ref_idx = TF.max_pool2d(b, return_indices=True, **kwargs)
        g = rng.standard_normal(tuple(ref.shape)).astype(dtype)
        y.backward(tg.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **vars(tolerance(dtype)))


def _avg_pool_run(x, g, kwargs):
    a = tg.tensor(x, requires_grad=True)
    y = F.avg_pool2d(a, **kwargs)
    y.backward(tg.tensor(g))
    return y.detach().numpy(), a.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=pool_geometries(), seed=st.integers(0, 2 ** 16), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 3]))
def test_avg_pool2d_kernels_match_torch(dtype, problem, seed, count_include_pad, divisor_override):
    """Window sums over torch's divisor (per position where windows are clipped), and the gradient's shares
    gathered back; float64 equal to the formula's to the bit (same additions in the same order)."""
    kwargs, size = problem
    kwargs = {k: v for k, v in kwargs.items() if k != "dilation"}
    kwargs |= {"count_include_pad": count_include_pad, "divisor_override": divisor_override}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3) + size).astype(dtype)
    b = torch.tensor(x, requires_grad=True)
    ref = TF.avg_pool2d(b, **kwargs)
    g = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    ref.backward(torch.tensor(g))
    with kernels_on_cpu(expect="avg_pool2d"), kernels_on_cpu(expect="avg_pool2d_backward"):
        mine = _avg_pool_run(x, g, kwargs)
    plain = _avg_pool_run(x, g, kwargs)
    for m, p_, r in zip(mine, plain, (ref.detach().numpy(), b.grad.numpy())):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)))
        if dtype == np.float64:
            np.testing.assert_array_equal(m, p_)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                                    {"kernel_size": 3, "stride": 1, "ceil_mode": True, "dilation": 2}])
def test_max_pool2d_backward_kernel_sums_overlapping_windows_like_the_formula(kwargs):
    """Overlapping windows: an element that is the arg-max of several outputs gets their gradients summed, in
    offset order, as the formula adds them (float64: to the bit)."""
    x = np.random.default_rng(0).integers(-1, 2, (2, 2, 7, 7)).astype(np.float64)  # ties: shared arg-maxes
    g = np.random.default_rng(1).standard_normal(tuple(TF.max_pool2d(torch.tensor(x), **kwargs).shape))
    grads = []
    for kernels in (True, False):
        a = tg.tensor(x, requires_grad=True)
        with kernels_on_cpu(expect="max_pool2d_backward") if kernels else contextlib.nullcontext():
            F.max_pool2d(a, **kwargs).backward(tg.tensor(g))
        grads.append(a.grad.numpy())
    b = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(b, **kwargs).backward(torch.tensor(g))
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_allclose(grads[0], b.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=pool_geometries(), groups=st.sampled_from([1, 2]), bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_col2im2d_kernel_gives_torch_conv_input_gradients_and_transposed_convs(dtype, problem, groups, bias, seed):
    """col2im is both a conv2d's input gradient and a conv_transpose2d's forward (with its bias)."""
    geometry, size = problem
    kernel, stride, padding, dilation = (geometry[k] for k in ("kernel_size", "stride", "padding", "dilation"))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2 * groups) + size).astype(dtype)
    w = rng.standard_normal((2 * groups, 2) + kernel).astype(dtype)
    a, b = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with kernels_on_cpu(expect="col2im2d"):
        y = F.conv2d(a, tg.tensor(w), **kw)
        g = rng.standard_normal(tuple(y.shape)).astype(dtype)
        y.backward(tg.tensor(g))
    TF.conv2d(b, torch.tensor(w), **kw).backward(torch.tensor(g))
    tol = vars(tolerance(dtype))
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    # the transposed convolution of g is the same map, with a bias
    wt = rng.standard_normal((2 * groups, 3) + kernel).astype(dtype)
    bt = rng.standard_normal(3 * groups).astype(dtype) if bias else None
    with kernels_on_cpu(expect="col2im2d"):
        ours = F.conv_transpose2d(tg.tensor(x), tg.tensor(wt), None if bt is None else tg.tensor(bt), **kw)
    theirs = TF.conv_transpose2d(torch.tensor(x), torch.tensor(wt), None if bt is None else torch.tensor(bt), **kw)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **tol)


def _conv2d_run(x, w, b, g, kw):
    a, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    bt = None if b is None else tg.tensor(b, requires_grad=True)
    y = F.conv2d(a, wt, bt, **kw)
    y.backward(tg.tensor(g))
    return [y.detach().numpy(), a.grad.numpy(), wt.grad.numpy()] + ([] if b is None else [bt.grad.numpy()])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=pool_geometries(), groups=st.sampled_from([1, 2]), bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_im2col2d_and_batch_first_kernels_give_torch_conv2d(dtype, problem, groups, bias, seed):
    """A conv2d's forward (columns read from the unpadded input; output transposed with the bias added) and its
    gradients, against torch; in float64 equal to the formula's to the bit (the same GEMMs on the same columns)."""
    geometry, size = problem
    kw = {k: geometry[k] for k in ("stride", "padding", "dilation")} | {"groups": groups}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 2 * groups) + size).astype(dtype)
    w = rng.standard_normal((2 * groups, 2) + geometry["kernel_size"]).astype(dtype)
    b = rng.standard_normal(2 * groups).astype(dtype) if bias else None
    out_shape = tuple(TF.conv2d(torch.tensor(x), torch.tensor(w), **kw).shape)
    g = rng.standard_normal(out_shape).astype(dtype)
    with kernels_on_cpu(expect="im2col2d"), kernels_on_cpu(expect="batch_first_bias"):
        mine = _conv2d_run(x, w, b, g, kw)
    plain = _conv2d_run(x, w, b, g, kw)
    t = [torch.tensor(v, requires_grad=True) for v in (x, w) + (() if b is None else (b,))]
    yt = TF.conv2d(t[0], t[1], t[2] if bias else None, **kw)
    yt.backward(torch.tensor(g))
    theirs = [yt.detach().numpy()] + [v.grad.numpy() for v in t]
    for m, p_, r in zip(mine, plain, theirs):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)))
        if dtype == np.float64:
            np.testing.assert_array_equal(m, p_)


# ---------------------------------------------------------------------------------------------------------------
# batch norm: statistics, normalisation and running-statistics update in one launch; the backward in another

@st.composite
def batch_norm_problems(draw):
    channels = draw(st.integers(1, 6))
    batch = draw(st.integers(2, 9))
    spatial = draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    return (batch, channels) + spatial


@contextlib.contextmanager
def _batch_norm_limit(limit):
    """Route batch norm through the per-channel kernels (limit None: the library's) or, with a small limit, through
    the wide ones (CuPy reductions around elementwise kernels) that bigger feature maps take."""
    from tinyautograd.ops import _fused

    saved = _fused.BATCH_NORM_LIMIT
    _fused.BATCH_NORM_LIMIT = saved if limit is None else limit
    try:
        yield
    finally:
        _fused.BATCH_NORM_LIMIT = saved


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(deadline=None)
@given(shape=batch_norm_problems(), affine=st.booleans(), track=st.booleans(),
       momentum=st.sampled_from([0.1, 0.7, None]), eps=st.sampled_from([1e-5, 0.5]), seed=st.integers(0, 2 ** 16))
def test_batch_norm_kernels_match_torch_over_steps(wide, dtype, shape, affine, track, momentum, eps, seed):
    """Train steps (output, input/weight/bias gradients, running statistics) then an eval step, kernels on."""
    with _batch_norm_limit(1 if wide else None):
        _batch_norm_steps(wide, dtype, shape, affine, track, momentum, eps, seed)


def _batch_norm_steps(wide, dtype, shape, affine, track, momentum, eps, seed):
    forward, backward = ("batch_norm_normalize", "batch_norm_input_grad") if wide else ("batch_norm",
                                                                                       "batch_norm_backward")
    rng = np.random.default_rng(seed)
    channels = shape[1]
    cls = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}[len(shape)]
    ours = getattr(tg.nn, cls)(channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    theirs = getattr(torch.nn, cls)(channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    if affine:
        w, b = rng.standard_normal(channels).astype(dtype), rng.standard_normal(channels).astype(dtype)
        with tg.no_grad(), torch.no_grad():
            ours.weight.copy_(tg.tensor(w))
            ours.bias.copy_(tg.tensor(b))
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    tol = vars(tolerance(dtype))
    for step in range(3):
        shift = rng.standard_normal((1, channels) + (1,) * (len(shape) - 2))
        x = (rng.standard_normal(shape) * 3 + shift).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        a, t = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        with kernels_on_cpu(expect=backward):
            with kernels_on_cpu(expect=forward):
                y = ours(a)
            y.backward(tg.tensor(g))
        yt = theirs(t)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **tol)
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), **tol)
        if affine:
            np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **tol)
            np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), **tol)
        if track:
            np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), **tol)
            np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), **tol)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(dtype)
    with torch.no_grad(), tg.no_grad():
        with kernels_on_cpu(expect="batch_norm_eval" if track else forward):
            mine = ours(tg.tensor(x)).numpy()
        np.testing.assert_allclose(mine, theirs(torch.tensor(x)).numpy(), **tol)


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_kernels_equal_the_formula(affine, wide):
    """float64: the kernels' outputs, gradients and running statistics equal the array formula's to rounding."""
    with _batch_norm_limit(1 if wide else None):
        _batch_norm_against_formula(affine, "batch_norm_normalize" if wide else "batch_norm")


def _batch_norm_against_formula(affine, forward):
    rng = np.random.default_rng(3)
    x, g, w = rng.standard_normal((7, 4, 3)) * 5 + 2, rng.standard_normal((7, 4, 3)), rng.standard_normal(4)
    results = []
    for fused in (True, False):
        bn = tg.nn.BatchNorm1d(4, affine=affine).double()
        if affine:
            with tg.no_grad():
                bn.weight.copy_(tg.tensor(w))
        a = tg.tensor(x, requires_grad=True)
        with kernels_on_cpu(expect=forward) if fused else contextlib.nullcontext():
            y = bn(a)
            y.backward(tg.tensor(g))
            bn.eval()
            z = bn(tg.tensor(x)).detach()
        results.append([y.detach().numpy(), a.grad.numpy(), bn.running_mean.numpy(), bn.running_var.numpy(),
                        z.numpy()] + ([bn.weight.grad.numpy(), bn.bias.grad.numpy()] if affine else []))
    for mine, plain in zip(*results):
        np.testing.assert_allclose(mine, plain, rtol=1e-12, atol=1e-13)


def test_batch_norm_takes_the_wide_kernels_above_the_limit_and_keeps_double_backward():
    """More than BATCH_NORM_LIMIT values per channel take the wide kernels (one thread per channel would be slow),
    as a BatchNorm2d over real feature maps does; create_graph=True records the formula, whose second derivatives
    match torch's."""
    from tinyautograd.ops import _fused

    x = np.random.default_rng(1).standard_normal((2, 3, _fused.BATCH_NORM_LIMIT)) * 4 + 1
    before = RUNS["batch_norm"]
    with kernels_on_cpu(expect="batch_norm_normalize"), kernels_on_cpu(expect="batch_norm_input_grad"):
        a = tg.tensor(x, requires_grad=True)
        y = F.batch_norm(a, None, None, training=True)
        (y * y * y).sum().backward()
    assert RUNS["batch_norm"] == before
    t = torch.tensor(x, requires_grad=True)
    z = TF.batch_norm(t, None, None, training=True)
    (z * z * z).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), z.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)
    x = np.random.default_rng(0).standard_normal((5, 3))
    a, t = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="batch_norm"):
        (ga,) = tg.autograd.grad((F.batch_norm(a, None, None, training=True) ** 3).sum(), a, create_graph=True)
        ga.pow(2).sum().backward()
    (gt,) = torch.autograd.grad((TF.batch_norm(t, None, None, training=True) ** 3).sum(), t, create_graph=True)
    gt.pow(2).sum().backward()
    np.testing.assert_allclose(ga.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# pointwise losses: the elementwise loss in one launch, both gradients in another

LOSS_CASES = {  # kernel -> (ours, theirs, input domain)
    "mse_loss": (F.mse_loss, TF.mse_loss, "real"),
    "l1_loss": (F.l1_loss, TF.l1_loss, "real"),
    "smooth_l1_loss": (lambda x, t, **k: F.smooth_l1_loss(x, t, beta=0.5, **k),
                       lambda x, t, **k: TF.smooth_l1_loss(x, t, beta=0.5, **k), "real"),
    "huber_loss": (lambda x, t, **k: F.huber_loss(x, t, delta=0.7, **k),
                   lambda x, t, **k: TF.huber_loss(x, t, delta=0.7, **k), "real"),
    "bce_loss": (F.binary_cross_entropy, TF.binary_cross_entropy, "probability"),
    "bce_logits_loss": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, "real"),
    "kl_div_loss": (F.kl_div, TF.kl_div, "probability"),  # log_target: test_kl_div_kernel_with_log_targets
}


def _loss_run(lib, fn, x, t, g, reduction, want_t):
    a, b = lib.tensor(x, requires_grad=True), lib.tensor(t, requires_grad=want_t)
    y = fn(a, b, reduction=reduction)
    y.backward(lib.tensor(g) if reduction == "none" else None)
    return [y.detach().numpy(), a.grad.numpy()] + ([b.grad.numpy()] if want_t else [])


def _check_loss_kernel(kernel, ours, theirs, x, t, g, reduction, want_t, dtype, equal_nan=False):
    """The loss, its input gradient and (``want_t``) its target gradient through ``kernel`` and its backward:
    against torch, and in float64 against the formula to rounding."""
    with kernels_on_cpu(expect=kernel), kernels_on_cpu(expect=kernel + "_backward"):
        mine = _loss_run(tg, ours, x, t, g, reduction, want_t)
    plain = _loss_run(tg, ours, x, t, g, reduction, want_t)
    ref = _loss_run(torch, theirs, x, t, g, reduction, want_t)
    for m, p_, r in zip(mine, plain, ref):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)), equal_nan=equal_nan)
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-12, atol=1e-14, equal_nan=equal_nan)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")  # kl_div's, as torch's
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", sorted(LOSS_CASES))
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=3), reduction=st.sampled_from(["mean", "sum", "none"]),
       want_t=st.booleans(), seed=st.integers(0, 2 ** 16), scale=st.sampled_from([0.3, 1.0, 30.0]))
def test_pointwise_loss_kernels_match_torch(kernel, dtype, shape, reduction, want_t, seed, scale):
    ours_fn, theirs_fn, domain = LOSS_CASES[kernel]
    rng = np.random.default_rng(seed)
    if domain == "probability":
        x = rng.uniform(0.02, 0.98, shape).astype(dtype)
        t = rng.uniform(0, 1, shape).astype(dtype)
    else:
        x = (rng.standard_normal(shape) * scale).astype(dtype)
        t = (rng.standard_normal(shape) * scale).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    _check_loss_kernel(kernel, ours_fn, theirs_fn, x, t, g, reduction, want_t, dtype)


@pytest.mark.parametrize("kernel", sorted(LOSS_CASES))
def test_pointwise_loss_kernels_at_edges_match_the_formula(kernel):
    """Kinks (d = 0, +-beta, +-delta), saturated logs (x = 0, 1), huge logits, NaN and infinite targets."""
    ours_fn, theirs_fn, domain = LOSS_CASES[kernel]
    if domain == "probability":
        x = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-300, 0.25, 0.5])
        t = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.25, 1.0])
    else:
        x = np.array([0.0, 0.5, -0.5, 0.7, -0.7, 800.0, -800.0, 1.0, 2.0])
        t = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, np.nan, np.inf])
    for reduction in ("none", "sum"):
        with np.errstate(all="ignore"):
            with kernels_on_cpu(expect=kernel):
                mine = _loss_run(tg, ours_fn, x, t, np.ones_like(x), reduction, True)
            plain = _loss_run(tg, ours_fn, x, t, np.ones_like(x), reduction, True)
            theirs = _loss_run(torch, theirs_fn, x, t, np.ones_like(x), reduction, True)
        for m, p_, r in zip(mine, plain, theirs):
            np.testing.assert_allclose(m, p_, rtol=1e-13, atol=1e-15, equal_nan=True)
            np.testing.assert_allclose(m, r, **vars(tolerance(np.float64)), equal_nan=True)


@pytest.mark.parametrize("kernels", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("bad", [-0.5, 1.5, np.nan])
def test_bce_rejects_inputs_and_targets_outside_0_1_like_torch(kernels, reduction, bad):
    """torch checks the input, then the target (NaN counts as outside); the kernel path finds them through the
    NaN it writes there. An empty batch is no error (a NaN mean)."""
    cases = [([0.2, bad, 0.7], [0.0, 1.0, 0.5], "input"), ([0.2, 0.5, 0.7], [0.0, bad, 1.0], "target"),
             ([bad, 0.5], [bad, 1.0], "input")]
    with kernels_on_cpu(expect="bce_loss") if kernels else contextlib.nullcontext():
        for x, t, what in cases:
            with pytest.raises(RuntimeError, match=f"all elements of {what} should be between 0 and 1"):
                F.binary_cross_entropy(tg.tensor(x), tg.tensor(t), reduction=reduction)
            with pytest.raises(RuntimeError, match=f"all elements of {what} should be between 0 and 1"):
                TF.binary_cross_entropy(torch.tensor(x), torch.tensor(t), reduction=reduction)
        assert np.isnan(F.binary_cross_entropy(tg.zeros(0), tg.zeros(0)).item())


def test_pointwise_loss_kernels_leave_weights_broadcasts_and_double_backward_to_the_formula():
    runs = dict(RUNS)
    x, t = tg.tensor([0.2, 0.6], requires_grad=True), tg.tensor([0.0, 1.0])
    with kernels_on_cpu():
        F.mse_loss(x, t, weight=tg.tensor([1.0, 2.0])).backward()
        F.binary_cross_entropy(x, t, weight=tg.tensor([1.0, 2.0])).backward()
        F.binary_cross_entropy_with_logits(x, t, weight=tg.tensor([3.0]), pos_weight=tg.tensor([3.0])).backward()
        with pytest.warns(UserWarning):
            F.mse_loss(x, tg.tensor([0.5])).backward()
    assert all(RUNS[k] == runs.get(k, 0) for k in RUNS if k.endswith("_loss") or k.endswith("_loss_backward"))
    a, b = tg.tensor([0.3, -1.2], dtype=tg.float64, requires_grad=True), torch.tensor([0.3, -1.2],
                                                                                     dtype=torch.float64,
                                                                                     requires_grad=True)
    with kernels_on_cpu(expect="huber_loss"):
        (ga,) = tg.autograd.grad(F.huber_loss(a ** 3, tg.zeros(2, dtype=tg.float64)), a, create_graph=True)
        ga.sum().backward()
    (gb,) = torch.autograd.grad(TF.huber_loss(b ** 3, torch.zeros(2, dtype=torch.float64)), b, create_graph=True)
    gb.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# dropout: the mask from the uniform draws in one launch

@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
@settings(deadline=None)
@given(p=st.one_of(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), st.floats(1e-6, 1 - 1e-6)),
       feature=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_dropout_mask_kernel_equals_the_formula(dtype, p, feature, seed):
    """Same generator state, same mask, to the bit: the kernel compares with ``p`` rounded to the dtype as the
    formula's comparison does. The zeroed fraction and the survivors' scale are torch's."""
    x = tg.ones(64, 32, dtype=dtype, requires_grad=True)
    fn = (lambda t: F.dropout2d(t[:, :, None], p)[:, :, 0]) if feature else (lambda t: F.dropout(t, p))
    tg.manual_seed(seed)
    with kernels_on_cpu(expect="dropout_mask"):
        y = fn(x)
        y.backward(tg.ones_like(y))
    tg.manual_seed(seed)
    z = fn(x.detach())
    np.testing.assert_array_equal(y.detach().numpy(), z.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    scale = np.float32(1 / (1 - p)) if dtype == tg.float32 else 1 / (1 - p)
    assert set(np.unique(y.detach().numpy())) <= {0.0, scale}


# ---------------------------------------------------------------------------------------------------------------

def test_every_kernel_has_a_test():
    tested = set(OPTIMIZER_CASES) | set(ACTIVATION_CASES) | set(FORWARD_CASES)
    tested |= {"cross_entropy_rows", "cross_entropy_backward", "cross_entropy_prob_rows",
               "cross_entropy_prob_backward"}
    tested |= {name for case in SOFTMAX_CASES.values() for name in case[2:]}
    tested |= {"max_pool2d", "max_pool2d_backward", "col2im2d", "batch_norm", "batch_norm_backward",
               "batch_norm_eval", "dropout_mask", "im2col2d", "batch_first_bias", "batch_norm_squared_deviation",
               "batch_norm_stats", "batch_norm_normalize", "batch_norm_g_xhat", "batch_norm_input_grad",
               "layer_norm_normalize", "layer_norm_products", "layer_norm_input_grad"}
    tested |= set(LOSS_CASES) | {name + "_backward" for name in LOSS_CASES} | {"avg_pool2d", "avg_pool2d_backward"}
    tested |= {"bce_logits_pw_loss", "bce_logits_pw_loss_backward"}  # test_bce_with_logits_pos_weight_kernel
    tested |= {"lstm_cell", "lstm_state_backward", "lstm_output_backward"}  # test_lstm_cell_kernels_match_torch...
    tested |= {"gru_cell", "gru_cell_backward"}  # test_gru_cell_kernels_match_torch_and_the_formula
    assert set(_kernels.REGISTRY) == tested


def test_kernels_are_off_on_the_cpu_by_default():
    assert not _kernels.enabled(np)
    before = sum(RUNS.values())
    x = tg.randn(5, requires_grad=True)
    opt = optim.Adam([x])
    F.cross_entropy(tg.relu(x)[None], tg.tensor([1])).backward()
    opt.step()
    assert sum(RUNS.values()) == before


def test_cuda_takes_the_fused_paths(cuda_device):
    """On cuda (a GPU, or the CuPy stand-in) the library calls its kernels: each one used here gets compiled."""
    used = ["adam", "sgd_momentum", "relu_backward", "sigmoid_backward", "cross_entropy_rows",
            "cross_entropy_backward", "log_softmax_rows", "log_softmax_backward_rows"]
    for name in used:
        _kernels.REGISTRY[name]._compiled = None
    x = tg.randn(8, 5, device=cuda_device)
    w = tg.randn(5, 4, device=cuda_device, requires_grad=True)
    v = tg.randn(4, 3, device=cuda_device, requires_grad=True)
    adam, sgd = optim.Adam([w]), optim.SGD([v], lr=0.1, momentum=0.9)
    h = tg.sigmoid(tg.relu(x @ w))
    loss = F.cross_entropy(h @ v, tg.tensor([0, 1, 2, 0, 1, 2, 0, 1], device=cuda_device))
    loss = loss + tg.log_softmax(h @ v, -1).mean()
    loss.backward()
    adam.step()
    sgd.step()
    assert [n for n in used if _kernels.REGISTRY[n]._compiled is None] == []


def test_kernels_can_be_switched_off(monkeypatch):
    """TINYAUTOGRAD_DISABLE_KERNELS=1 (read at import into ``_kernels.DISABLED``) sends every op to its formula."""
    monkeypatch.setattr(_kernels, "DISABLED", True)
    before = sum(RUNS.values())
    with kernels_on_cpu():
        x = tg.randn(5, 3, requires_grad=True)
        opt = optim.Adam([x])
        F.cross_entropy(tg.sigmoid(tg.relu(x)), tg.tensor([0, 1, 2, 0, 1])).backward()
        opt.step()
    assert sum(RUNS.values()) == before


def test_a_kernel_that_does_not_compile_says_which_and_how_to_go_on(monkeypatch):
    import fake_cupy

    class CompileException(Exception):
        pass

    class Uncompilable:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            raise CompileException("error: identifier 'foo' is undefined")

    with fake_cupy.active():
        import cupy

        monkeypatch.setattr(cupy, "ElementwiseKernel", Uncompilable)
        _kernels.REGISTRY["relu_backward"]._compiled = None
        x = tg.randn(4, device="cuda", requires_grad=True)
        with pytest.raises(RuntimeError, match=r"'relu_backward' did not compile.*TINYAUTOGRAD_DISABLE_KERNELS=1"):
            tg.relu(x).sum().backward()
    _kernels.REGISTRY["relu_backward"]._compiled = None


@pytest.mark.parametrize("wide", [False, True])
def test_batch_norm_kernels_on_an_input_without_gradient(wide):
    """A batch norm straight on the data (the input needs no gradient): only the weight and bias gradients."""
    x = np.random.default_rng(5).standard_normal((8, 3, 5))
    with _batch_norm_limit(1 if wide else None):
        ours, theirs = tg.nn.BatchNorm1d(3).double(), torch.nn.BatchNorm1d(3).double()
        with kernels_on_cpu(expect="batch_norm_g_xhat" if wide else "batch_norm_backward"):
            (ours(tg.tensor(x)) ** 2).sum().backward()
        (theirs(torch.tensor(x)) ** 2).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# layer norm: CuPy's row reductions around elementwise kernels

def _layer_norm_run(lib, x, g, shape, w, b, input_grad=True):
    a = lib.tensor(x, requires_grad=input_grad)
    params = [None if v is None else lib.tensor(v, requires_grad=True) for v in (w, b)]
    fn = F.layer_norm if lib is tg else TF.layer_norm
    y = fn(a, shape, *params, eps=1e-5)
    y.backward(lib.tensor(g))
    return [y.detach().numpy()] + ([a.grad.numpy()] if input_grad else []) + [p.grad.numpy() for p in params
                                                                              if p is not None]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(lead=st.lists(st.integers(1, 4), min_size=0, max_size=2), normalized=st.lists(st.integers(1, 5), min_size=1,
                                                                                      max_size=2),
       affine=st.sampled_from(["none", "weight", "both"]), input_grad=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_layer_norm_kernels_match_torch(dtype, lead, normalized, affine, input_grad, seed):
    input_grad = input_grad or affine == "none"  # something must want a gradient
    rng = np.random.default_rng(seed)
    shape = tuple(normalized)
    x = (rng.standard_normal(tuple(lead) + shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(shape).astype(dtype) if affine != "none" else None
    b = rng.standard_normal(shape).astype(dtype) if affine == "both" else None
    expect = "layer_norm_input_grad" if input_grad else "layer_norm_products"
    with kernels_on_cpu(expect="layer_norm_normalize"), kernels_on_cpu(expect=expect):
        mine = _layer_norm_run(tg, x, g, shape, w, b, input_grad)
    plain = _layer_norm_run(tg, x, g, shape, w, b, input_grad)
    # float32: torch in float64 on the same values (the kernels compute in double; torch's own float32 kernel loses
    # several digits when a row's values nearly coincide, e.g. two of them)
    wide = [None if v is None else v.astype(np.float64) for v in (x, g, w, b)]
    theirs = _layer_norm_run(torch, wide[0], wide[1], shape, wide[2], wide[3], input_grad)
    _assert_normalised_close(mine, plain, theirs, dtype, x.reshape(-1, int(np.prod(shape))))


def _assert_normalised_close(mine, plain, theirs, dtype, rows):
    """Ours against torch (float64) and the formula. In float32 the gradients carry the rounding of float32
    intermediates times invstd, which reaches 1/sqrt(eps) when a row's values nearly coincide: the absolute
    tolerance scales with the rows' largest invstd (the problem's condition)."""
    rows = rows.astype(np.float64)
    invstd = 1 / np.sqrt(rows.var(axis=1) + 1e-5)
    tol = dict(vars(tolerance(dtype)))  # a copy: vars() is the shared tolerance's own __dict__
    if dtype == np.float32:
        tol["atol"] *= max(1.0, float(invstd.max()))
    for m, p_, r in zip(mine, plain, theirs):
        np.testing.assert_allclose(m, r, **tol)
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-11, atol=1e-12)


def test_layer_norm_after_the_kernels_keeps_double_backward():
    x = np.random.default_rng(2).standard_normal((3, 4))
    a, t = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="layer_norm_normalize"):
        (ga,) = tg.autograd.grad((F.layer_norm(a, (4,)) ** 3).sum(), a, create_graph=True)
        ga.pow(2).sum().backward()
    (gt,) = torch.autograd.grad((TF.layer_norm(t, (4,)) ** 3).sum(), t, create_graph=True)
    gt.pow(2).sum().backward()
    np.testing.assert_allclose(ga.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# 1-d windows: the 2-d kernels with a unit first axis (conv1d, conv_transpose1d, max_pool1d, avg_pool1d)

@st.composite
def window_geometries_1d(draw):
    k, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 2))
    stride = draw(st.integers(1, dilation * (k - 1) + 2))
    padding = draw(st.integers(0, k // 2))
    size = draw(st.integers(dilation * (k - 1) + 1, 9))
    return dict(kernel_size=k, stride=stride, padding=padding, dilation=dilation, ceil_mode=draw(st.booleans())), size


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=window_geometries_1d(), groups=st.sampled_from([1, 2]), bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_1d_convolutions_and_pools_take_the_2d_kernels(dtype, problem, groups, bias, seed):
    geometry, size = problem
    rng = np.random.default_rng(seed)
    tol = vars(tolerance(dtype))
    x = rng.standard_normal((3, 2 * groups, size)).astype(dtype)
    kw = {k: geometry[k] for k in ("stride", "padding", "dilation")} | {"groups": groups}
    w = rng.standard_normal((2 * groups, 2, geometry["kernel_size"])).astype(dtype)
    b = rng.standard_normal(2 * groups).astype(dtype) if bias else None
    g = rng.standard_normal(tuple(TF.conv1d(torch.tensor(x), torch.tensor(w), **kw).shape)).astype(dtype)
    runs = []
    for kernels in (True, False):
        a, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
        with (kernels_on_cpu(expect="im2col2d") if kernels else contextlib.nullcontext()), \
                (kernels_on_cpu(expect="col2im2d") if kernels else contextlib.nullcontext()):
            y = F.conv1d(a, wt, None if b is None else tg.tensor(b), **kw)
            y.backward(tg.tensor(g))
            z = F.conv_transpose1d(tg.tensor(x), tg.tensor(w), None if b is None else tg.tensor(b), **kw)
        runs.append([y.detach().numpy(), a.grad.numpy(), wt.grad.numpy(), z.numpy()])
    t, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TF.conv1d(t, wt, None if b is None else torch.tensor(b), **kw)
    yt.backward(torch.tensor(g))
    zt = TF.conv_transpose1d(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), **kw)
    for m, p_, r in zip(*runs, [yt.detach().numpy(), t.grad.numpy(), wt.grad.numpy(), zt.numpy()]):
        np.testing.assert_allclose(m, r, **tol)
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-13, atol=1e-14)
    # pools
    pool = {k: v for k, v in geometry.items()}
    for ours_fn, theirs_fn, names, kwargs in [
            (F.max_pool1d, TF.max_pool1d, ("max_pool2d", "max_pool2d_backward"), pool),
            (F.avg_pool1d, TF.avg_pool1d, ("avg_pool2d", "avg_pool2d_backward"),
             {k: v for k, v in pool.items() if k != "dilation"} | {"count_include_pad": bool(seed % 2)})]:
        ref_in = torch.tensor(x, requires_grad=True)
        ref = theirs_fn(ref_in, **kwargs)
        gp = rng.standard_normal(tuple(ref.shape)).astype(dtype)
        ref.backward(torch.tensor(gp))
        a = tg.tensor(x, requires_grad=True)
        with kernels_on_cpu(expect=names[0]), kernels_on_cpu(expect=names[1]):
            out = ours_fn(a, **kwargs)
            out.backward(tg.tensor(gp))
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **tol)
        np.testing.assert_allclose(a.grad.numpy(), ref_in.grad.numpy(), **tol)
    _, idx = F.max_pool1d(tg.tensor(x), return_indices=True, **pool)
    with kernels_on_cpu(expect="max_pool2d"):
        _, kidx = F.max_pool1d(tg.tensor(x), return_indices=True, **pool)
    np.testing.assert_array_equal(kidx.numpy(), idx.numpy())


def _group_norm_run(lib, x, g, groups, w, b):
    a = lib.tensor(x, requires_grad=True)
    params = [None if v is None else lib.tensor(v, requires_grad=True) for v in (w, b)]
    y = (F.group_norm if lib is tg else TF.group_norm)(a, groups, *params, eps=1e-5)
    y.backward(lib.tensor(g))
    return [y.detach().numpy(), a.grad.numpy()] + [p.grad.numpy() for p in params if p is not None]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(n=st.integers(1, 3), groups=st.integers(1, 3), per_group=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2), affine=st.sampled_from(["none", "weight", "both"]),
       seed=st.integers(0, 2 ** 16))
def test_group_norm_takes_the_layer_norm_kernels_with_per_channel_parameters(dtype, n, groups, per_group, spatial,
                                                                              affine, seed):
    rng = np.random.default_rng(seed)
    c = groups * per_group
    x = (rng.standard_normal((n, c) + tuple(spatial)) * 3 + 1).astype(dtype)
    if n * per_group * int(np.prod(spatial)) == 1:  # one value per group: torch refuses, and so do we
        for lib, fn in ((tg, F.group_norm), (torch, TF.group_norm)):
            size = ", ".join(str(v) for v in [n * c // groups, groups] + list(spatial))
            with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input "
                                                 rf"size \[{size}\]"):
                fn(lib.tensor(x), groups)
        return
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine != "none" else None
    b = rng.standard_normal(c).astype(dtype) if affine == "both" else None
    with kernels_on_cpu(expect="layer_norm_normalize"), kernels_on_cpu(expect="layer_norm_input_grad"):
        mine = _group_norm_run(tg, x, g, groups, w, b)
    plain = _group_norm_run(tg, x, g, groups, w, b)
    wide = [None if v is None else v.astype(np.float64) for v in (x, g, w, b)]  # as for layer norm
    theirs = _group_norm_run(torch, wide[0], wide[1], groups, wide[2], wide[3])
    _assert_normalised_close(mine, plain, theirs, dtype, x.reshape(n * groups, -1))


def test_group_norm_after_the_kernels_keeps_double_backward():
    x = np.random.default_rng(4).standard_normal((2, 4, 3))
    a, t = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with kernels_on_cpu(expect="layer_norm_normalize"):
        (ga,) = tg.autograd.grad((F.group_norm(a, 2) ** 3).sum(), a, create_graph=True)
        ga.pow(2).sum().backward()
    (gt,) = torch.autograd.grad((TF.group_norm(t, 2) ** 3).sum(), t, create_graph=True)
    gt.pow(2).sum().backward()
    np.testing.assert_allclose(ga.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_kl_div_kernel_with_log_targets_and_zero_targets(dtype, reduction):
    """kl_div's kernel both ways: log-probability targets (exp(t) (t - x)), and probability targets with zeros
    (a zero loss there, a NaN target gradient as torch's), against torch and the formula."""
    rng = np.random.default_rng(3)
    x = np.log(rng.dirichlet(np.ones(5), size=4)).astype(dtype)
    for log_target, t in ((True, np.log(rng.dirichlet(np.ones(5), size=4))),
                          (False, np.where(rng.random((4, 5)) < 0.3, 0.0, rng.dirichlet(np.ones(5), size=4)))):
        t = t.astype(dtype)
        g = rng.standard_normal((4, 5)).astype(dtype)

        def ours(a, b, **k):
            return F.kl_div(a, b, log_target=log_target, **k)

        def theirs(a, b, **k):
            return TF.kl_div(a, b, log_target=log_target, **k)

        _check_loss_kernel("kl_div_loss", ours, theirs, x, t, g, reduction, True, dtype, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pw_shape", [(5,), (1,), (4, 5), ()])
def test_bce_with_logits_pos_weight_kernel(dtype, pw_shape):
    """pos_weight broadcast against the input inside the kernel, both gradients, against torch and the formula
    (logits large enough to saturate, targets in [0, 1])."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4, 5)) * 8).astype(dtype)
    t = rng.random((4, 5)).astype(dtype)
    pw = rng.uniform(0.2, 4.0, pw_shape).astype(dtype)
    g = rng.standard_normal((4, 5)).astype(dtype)
    for reduction in ("mean", "sum", "none"):
        def ours(a, b, **k):
            return F.binary_cross_entropy_with_logits(a, b, pos_weight=tg.tensor(pw), **k)

        def theirs(a, b, **k):
            return TF.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(pw), **k)

        _check_loss_kernel("bce_logits_pw_loss", ours, theirs, x, t, g, reduction, True, dtype)


# ---------------------------------------------------------------------------------------------------------------
# LSTM cell: one launch forward, one per output backward

def _lstm_run(lib, weights, x, h0, c0, g_out, g_c, create_graph=False):
    """An LSTM layer (with its state) forward and backward; returns output, h_n, c_n and every gradient. With
    ``create_graph`` the gradient of the input goes through a second backward (a Hessian-vector product)."""
    lstm = lib.nn.LSTM(x.shape[-1], h0.shape[-1], batch_first=True, dtype=lib.float64 if x.dtype == np.float64
                       else lib.float32)
    with lib.no_grad():
        for p, w in zip(lstm.parameters(), weights):
            p.copy_(lib.tensor(w))
    xs = lib.tensor(x, requires_grad=True)
    out, (hn, cn) = lstm(xs, (lib.tensor(h0), lib.tensor(c0)))
    loss = (out * lib.tensor(g_out)).sum() + (cn * lib.tensor(g_c)).sum()
    if create_graph:
        (gx,) = lib.autograd.grad(loss, xs, create_graph=True)
        (gx ** 2).sum().backward()
        return [xs.grad.numpy()] + [p.grad.numpy() for p in lstm.parameters()]
    loss.backward()
    return ([out.detach().numpy(), hn.detach().numpy(), cn.detach().numpy(), xs.grad.numpy()]
            + [p.grad.numpy() for p in lstm.parameters()])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_cell_kernels_match_torch_and_the_formula(dtype):
    """Four steps of a one-layer LSTM from a given state, gates large enough to saturate some sigmoids: output,
    final state and every gradient through the kernels, against torch and (float64) the formula."""
    rng = np.random.default_rng(2)
    n, steps, inp, hid = 3, 4, 5, 6
    weights = [rng.standard_normal(s) * 1.5 for s in [(4 * hid, inp), (4 * hid, hid), (4 * hid,), (4 * hid,)]]
    weights = [w.astype(dtype) for w in weights]
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in [(n, steps, inp), (1, n, hid), (1, n, hid)])
    g_out, g_c = rng.standard_normal((n, steps, hid)).astype(dtype), rng.standard_normal((1, n, hid)).astype(dtype)
    with kernels_on_cpu(expect="lstm_cell"), kernels_on_cpu(expect="lstm_state_backward"), \
            kernels_on_cpu(expect="lstm_output_backward"):
        mine = _lstm_run(tg, weights, x, h0, c0, g_out, g_c)
    plain = _lstm_run(tg, weights, x, h0, c0, g_out, g_c)
    ref = _lstm_run(torch, weights, x, h0, c0, g_out, g_c)
    for m, p_, r in zip(mine, plain, ref):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)))
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-12, atol=1e-13)


def test_lstm_cell_kernels_keep_second_derivatives():
    """After a fused forward, create_graph takes the cell's formula backward: a Hessian-vector product through
    the LSTM agrees with torch's."""
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal(s) for s in [(8, 3), (8, 2), (8,), (8,)]]
    x, h0, c0 = rng.standard_normal((2, 3, 3)), rng.standard_normal((1, 2, 2)), rng.standard_normal((1, 2, 2))
    g_out, g_c = rng.standard_normal((2, 3, 2)), rng.standard_normal((1, 2, 2))
    with kernels_on_cpu(expect="lstm_cell"):
        mine = _lstm_run(tg, weights, x, h0, c0, g_out, g_c, create_graph=True)
    ref = _lstm_run(torch, weights, x, h0, c0, g_out, g_c, create_graph=True)
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m, r, rtol=1e-10, atol=1e-12)


def _gru_run(lib, weights, x, h0, g_out, create_graph=False):
    gru = lib.nn.GRU(x.shape[-1], h0.shape[-1], batch_first=True,
                     dtype=lib.float64 if x.dtype == np.float64 else lib.float32)
    with lib.no_grad():
        for p, w in zip(gru.parameters(), weights):
            p.copy_(lib.tensor(w))
    xs, hs = lib.tensor(x, requires_grad=True), lib.tensor(h0, requires_grad=True)
    out, hn = gru(xs, hs)
    loss = (out * lib.tensor(g_out)).sum()
    if create_graph:
        (gx,) = lib.autograd.grad(loss, xs, create_graph=True)
        (gx ** 2).sum().backward()
        return [xs.grad.numpy()] + [p.grad.numpy() for p in gru.parameters()]
    loss.backward()
    return [out.detach().numpy(), hn.detach().numpy(), xs.grad.numpy(), hs.grad.numpy()] + \
        [p.grad.numpy() for p in gru.parameters()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gru_cell_kernels_match_torch_and_the_formula(dtype):
    """Four GRU steps from a given state: output, final state and every gradient (input, initial state,
    weights) through the kernels, against torch and (float64) the formula; then second derivatives, which take
    the formula backward after a fused forward."""
    rng = np.random.default_rng(5)
    n, steps, inp, hid = 3, 4, 5, 6
    weights = [(rng.standard_normal(s) * 1.5).astype(dtype)
               for s in [(3 * hid, inp), (3 * hid, hid), (3 * hid,), (3 * hid,)]]
    x, h0 = rng.standard_normal((n, steps, inp)).astype(dtype), rng.standard_normal((1, n, hid)).astype(dtype)
    g_out = rng.standard_normal((n, steps, hid)).astype(dtype)
    with kernels_on_cpu(expect="gru_cell"), kernels_on_cpu(expect="gru_cell_backward"):
        mine = _gru_run(tg, weights, x, h0, g_out)
    plain = _gru_run(tg, weights, x, h0, g_out)
    ref = _gru_run(torch, weights, x, h0, g_out)
    for m, p_, r in zip(mine, plain, ref):
        np.testing.assert_allclose(m, r, **vars(tolerance(dtype)))
        if dtype == np.float64:
            np.testing.assert_allclose(m, p_, rtol=1e-12, atol=1e-13)
    if dtype == np.float64:
        with kernels_on_cpu(expect="gru_cell"):
            mine = _gru_run(tg, weights, x, h0, g_out, create_graph=True)
        ref = _gru_run(torch, weights, x, h0, g_out, create_graph=True)
        for m, r in zip(mine, ref):
            np.testing.assert_allclose(m, r, rtol=1e-10, atol=1e-12)
