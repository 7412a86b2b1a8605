"""Every loss (functional and module) against torch: values, gradients for input and target, second derivatives,
Hypothesis-drawn shapes and hyperparameters, float32 and float64, and numerical stability at logits of +-1000."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyautograd
import tinyautograd.nn as nn
import tinyautograd.nn.functional as F
from helpers import assert_close, ours_tensor, settled, torch_device, torch_tensor

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

DTYPES = st.sampled_from(["float32", "float64"])
SEEDS = st.integers(0, 2 ** 31 - 1)
REDUCTIONS = st.sampled_from(["none", "mean", "sum"])
FIXTURE_OK = list(settings.default.suppress_health_check) + [HealthCheck.function_scoped_fixture]
LOSS_SETTINGS = settings(deadline=None, suppress_health_check=FIXTURE_OK)


def pair(array, device, requires_grad=False):
    a = np.array(array, copy=True)
    grad = requires_grad and a.dtype.kind == "f"
    return (tinyautograd.tensor(a, device=device, requires_grad=grad),
            torch.tensor(a, device=device, requires_grad=grad))


def check_loss(ours_fn, torch_fn, arrays, grads, dtype, device, rng, what):
    """Call both losses on the same arrays (``grads[i]``: whether argument i requires grad), compare the value
    and, after a random upstream gradient, the gradients of every argument that requires grad."""
    tensors = [pair(a, device, g) for a, g in zip(arrays, grads)]
    lo = ours_fn(*[t[0] for t in tensors])
    lt = torch_fn(*[t[1] for t in tensors])
    assert_close(lo, lt, dtype, what=f"{what} value")
    if not lt.requires_grad:
        return
    g = rng.standard_normal(tuple(lt.shape)).astype(dtype)
    lo.backward(tinyautograd.tensor(g, device=device))
    lt.backward(torch.tensor(g, device=device))
    for i, (o, t) in enumerate(tensors):
        if t.grad is not None:
            assert_close(o.grad, t.grad, dtype, what=f"{what} grad of argument {i}")


def hessian_vector(fn, arrays, lib, device, rng_seed):
    """d/dx <grad_x fn(x, ...), v> for the first argument, through create_graph (double backward)."""
    rng = np.random.default_rng(rng_seed)
    if lib is torch:
        args = [torch.tensor(a, device=device, requires_grad=(i == 0)) for i, a in enumerate(arrays)]
        (gx,) = torch.autograd.grad(fn(*args), args[0], create_graph=True)
        v = torch.tensor(rng.standard_normal(arrays[0].shape), device=device)
        (gx * v).sum().backward()
        return args[0].grad
    args = [tinyautograd.tensor(a, device=device, requires_grad=(i == 0)) for i, a in enumerate(arrays)]
    (gx,) = tinyautograd.autograd.grad(fn(*args), args[0], create_graph=True)
    v = tinyautograd.tensor(rng.standard_normal(arrays[0].shape), device=device)
    (gx * v).sum().backward()
    return args[0].grad


# -- cross entropy and nll ----------------------------------------------------------------------------------------

@st.composite
def class_problem(draw):
    """(input shape, target shape): unbatched (C,), (N, C) or (N, C, d1[, d2])."""
    c = draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["unbatched", "flat", "spatial"]))
    if layout == "unbatched":
        return (c,), ()
    n = draw(st.integers(1, 4))
    extra = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))) if layout == "spatial" else ()
    return (n, c) + extra, (n,) + extra


@LOSS_SETTINGS
@given(class_problem(), REDUCTIONS, st.booleans(), st.sampled_from([-100, 0, 1]), st.sampled_from([0.0, 0.1, 0.6]),
       st.floats(0.0, 0.7), DTYPES, SEEDS)
def test_cross_entropy_with_class_indices_matches_torch(device, problem, reduction, weighted, ignore_index,
                                                        smoothing, ignored_fraction, dtype, seed):
    rng = np.random.default_rng(seed)
    x_shape, t_shape = problem
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    x = (rng.standard_normal(x_shape) * 3).astype(dtype)
    t = rng.integers(0, c, t_shape)
    t = np.where(rng.random(t_shape) < ignored_fraction, ignore_index, t)
    w = rng.uniform(0.1, 2.0, c).astype(dtype) if weighted else None
    args = [x, t] + ([w] if weighted else [])

    def call(lib_f):
        return lambda x_, t_, *w_: lib_f(x_, t_, weight=w_[0] if w_ else None, ignore_index=ignore_index,
                                         reduction=reduction, label_smoothing=smoothing)

    check_loss(call(F.cross_entropy), call(TF.cross_entropy), args, [True, False, False], dtype, device, rng,
               "cross_entropy")
    mod = nn.CrossEntropyLoss(weight=None if w is None else tinyautograd.tensor(w, device=device),
                              ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    tmod = torch.nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w, device=device),
                                     ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    check_loss(mod, tmod, [x, t], [True, False], dtype, device, rng, "CrossEntropyLoss")


@LOSS_SETTINGS
@given(class_problem(), REDUCTIONS, st.booleans(), st.sampled_from([0.0, 0.25]), DTYPES, SEEDS)
def test_cross_entropy_with_class_probabilities_matches_torch(device, problem, reduction, weighted, smoothing,
                                                              dtype, seed):
    rng = np.random.default_rng(seed)
    x_shape, _ = problem
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    x = (rng.standard_normal(x_shape) * 3).astype(dtype)
    p = rng.random(x_shape) + 0.01
    p = (p / p.sum(axis=0 if len(x_shape) == 1 else 1, keepdims=True)).astype(dtype)
    w = rng.uniform(0.1, 2.0, c).astype(dtype)

    def call(lib_f):
        return lambda x_, p_, *w_: lib_f(x_, p_, weight=w_[0] if w_ else None, reduction=reduction,
                                         label_smoothing=smoothing)

    check_loss(call(F.cross_entropy), call(TF.cross_entropy), [x, p] + ([w] if weighted else []),
               [True, True, False], dtype, device, rng, "cross_entropy(probabilities)")


@LOSS_SETTINGS
@given(class_problem(), REDUCTIONS, st.booleans(), st.sampled_from([-100, 2]), DTYPES, SEEDS)
def test_nll_loss_matches_torch(device, problem, reduction, weighted, ignore_index, dtype, seed):
    rng = np.random.default_rng(seed)
    x_shape, t_shape = problem
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    x = rng.standard_normal(x_shape).astype(dtype)
    t = np.where(rng.random(t_shape) < 0.3, ignore_index, rng.integers(0, c, t_shape))
    w = rng.uniform(0.1, 2.0, c).astype(dtype)

    def call(lib_f):
        return lambda x_, t_, *w_: lib_f(x_, t_, weight=w_[0] if w_ else None, ignore_index=ignore_index,
                                         reduction=reduction)

    check_loss(call(F.nll_loss), call(TF.nll_loss), [x, t] + ([w] if weighted else []), [True, False, False],
               dtype, device, rng, "nll_loss")
    check_loss(nn.NLLLoss(reduction=reduction, ignore_index=ignore_index),
               torch.nn.NLLLoss(reduction=reduction, ignore_index=ignore_index), [x, t], [True, False], dtype,
               device, rng, "NLLLoss")


@pytest.mark.parametrize("weighted, smoothing", [(False, 0.0), (True, 0.2)])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_class_losses_past_the_row_kernels_limit_match_torch(device, name, weighted, smoothing):
    """More classes than the fused row kernels take (a language model's vocabulary): the array formulas, on cuda
    too, forward, backward and double backward."""
    from tinyautograd.ops import _fused

    rng = np.random.default_rng(4)
    c = _fused.CROSS_ENTROPY_ROW_LIMIT + 7
    x = rng.standard_normal((3, c))
    t = np.array([0, c - 1, 5])
    w = rng.uniform(0.1, 2.0, c) if weighted else None
    kw = {"label_smoothing": smoothing} if name == "cross_entropy" else {}

    def call(lib, lib_f):
        return lambda x_, t_, *w_: lib_f(x_ if name == "cross_entropy" else lib.log_softmax(x_, 1), t_,
                                         weight=w_[0] if w_ else None, **kw)

    args = [x, t] + ([w] if weighted else [])
    check_loss(call(tinyautograd, getattr(F, name)), call(torch, getattr(TF, name)), args, [True, False, False],
               "float64", device, rng, name)
    ours = hessian_vector(call(tinyautograd, getattr(F, name)), args, tinyautograd, device, 9)
    theirs = hessian_vector(call(torch, getattr(TF, name)), args, torch, torch_device(device), 9)
    assert_close(ours, theirs, "float64", what=f"{name} double backward")


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient_like_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    t = np.full(3, -100)
    check_loss(F.cross_entropy, TF.cross_entropy, [x, t], [True, False], "float64", "cpu", rng, "all ignored")
    check_loss(F.nll_loss, TF.nll_loss, [x, t], [True, False], "float64", "cpu", rng, "all ignored")


def test_cross_entropy_is_a_single_node():
    x = tinyautograd.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(x, tinyautograd.tensor([0, 1, 2, 0]))
    assert loss.grad_fn.next_nodes[0] is x._accumulator()
    assert loss.grad_fn.name() == "NllLossBackward0"


def test_cross_entropy_errors():
    x = tinyautograd.randn(2, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        settled(F.cross_entropy(x, tinyautograd.tensor([0, 3])))
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(x, tinyautograd.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, tinyautograd.tensor([0, 1]), reduction="avg")
    with pytest.raises(RuntimeError, match="weight"):
        F.cross_entropy(x, tinyautograd.tensor([0, 1]), weight=tinyautograd.ones(2))


# -- binary cross entropy ---------------------------------------------------------------------------------------

SHAPES = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@LOSS_SETTINGS
@given(SHAPES, REDUCTIONS, st.booleans(), st.booleans(), DTYPES, SEEDS)
def test_binary_cross_entropy_matches_torch(device, shape, reduction, weighted, saturate, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.02, 0.98, shape)
    if saturate:
        # exact 0 and 1 probabilities: the logs are clamped at -100 in both libraries
        x = np.where(rng.random(shape) < 0.3, rng.integers(0, 2, shape), x)
    x = x.astype(dtype)
    t = rng.random(shape).astype(dtype)
    w = rng.uniform(0.1, 2.0, shape[-1:]).astype(dtype)
    grads = [not saturate, True, False]  # torch's gradient at exactly 0/1 is +-1e12-scaled: compared separately

    def call(lib_f):
        return lambda x_, t_, *w_: lib_f(x_, t_, weight=w_[0] if w_ else None, reduction=reduction)

    check_loss(call(F.binary_cross_entropy), call(TF.binary_cross_entropy), [x, t] + ([w] if weighted else []),
               grads, dtype, device, rng, "binary_cross_entropy")


def test_binary_cross_entropy_gradient_at_saturated_probabilities_matches_torch():
    rng = np.random.default_rng(0)
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    check_loss(F.binary_cross_entropy, TF.binary_cross_entropy, [x, t], [True, False], "float64", "cpu", rng,
               "bce at 0/1")


def test_binary_cross_entropy_validates_inputs():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        settled(F.binary_cross_entropy(tinyautograd.tensor([1.5]), tinyautograd.tensor([1.0])))
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(tinyautograd.tensor([[0.5]]), tinyautograd.tensor([1.0]))
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(tinyautograd.tensor([[0.5]]), tinyautograd.tensor([1.0]))


@LOSS_SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), REDUCTIONS, st.booleans(), st.booleans(),
       st.sampled_from([1.0, 30.0]), DTYPES, SEEDS)
def test_binary_cross_entropy_with_logits_matches_torch(device, shape, reduction, weighted, pos_weighted, scale,
                                                       dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    t = rng.random(shape).astype(dtype)
    w = rng.uniform(0.1, 2.0, shape).astype(dtype)
    pw = rng.uniform(0.1, 3.0, shape[-1:]).astype(dtype)

    def call(lib_f):
        return lambda x_, t_, w_, pw_: lib_f(x_, t_, weight=w_ if weighted else None, reduction=reduction,
                                             pos_weight=pw_ if pos_weighted else None)

    check_loss(call(F.binary_cross_entropy_with_logits), call(TF.binary_cross_entropy_with_logits),
               [x, t, w, pw], [True, True, False, False], dtype, device, rng, "bce_with_logits")
    mod = nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=tinyautograd.tensor(pw, device=device))
    tmod = torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pw, device=device))
    check_loss(mod, tmod, [x, t], [True, False], dtype, device, rng, "BCEWithLogitsLoss")
    check_loss(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction),
               [1 / (1 + np.exp(-x.clip(-30, 30))), t], [True, False], dtype, device, rng, "BCELoss")


# -- regression losses --------------------------------------------------------------------------------------------

REGRESSION = {
    "mse_loss": ({}, nn.MSELoss, torch.nn.MSELoss),
    "l1_loss": ({}, nn.L1Loss, torch.nn.L1Loss),
    "smooth_l1_loss": ({"beta": st.sampled_from([0.0, 0.5, 1.0, 2.0])}, nn.SmoothL1Loss, torch.nn.SmoothL1Loss),
    "huber_loss": ({"delta": st.sampled_from([0.3, 1.0, 2.5])}, nn.HuberLoss, torch.nn.HuberLoss),
}


@pytest.mark.parametrize("name", list(REGRESSION))
@LOSS_SETTINGS
@given(data=st.data(), shape=SHAPES, reduction=REDUCTIONS, dtype=DTYPES, seed=SEEDS)
def test_regression_losses_match_torch(device, name, data, shape, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    extra_strategies, ours_cls, torch_cls = REGRESSION[name]
    extra = {k: data.draw(s, label=k) for k, s in extra_strategies.items()}
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    t = (rng.standard_normal(shape) * 2).astype(dtype)

    def call(lib_f):
        return lambda x_, t_: lib_f(x_, t_, reduction=reduction, **extra)

    check_loss(call(getattr(F, name)), call(getattr(TF, name)), [x, t], [True, True], dtype, device, rng, name)
    check_loss(ours_cls(reduction=reduction, **extra), torch_cls(reduction=reduction, **extra), [x, t],
               [True, True], dtype, device, rng, ours_cls.__name__)
    if name != "smooth_l1_loss":
        w = rng.uniform(0.0, 2.0, shape).astype(dtype)
        check_loss(lambda x_, t_, w_: getattr(F, name)(x_, t_, reduction=reduction, weight=w_, **extra),
                   lambda x_, t_, w_: getattr(TF, name)(x_, t_, reduction=reduction, weight=w_, **extra),
                   [x, t, w], [True, True, False], dtype, device, rng, f"{name} weighted")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("weights", [[0.0, 0.0, 0.0], [0.5, 0.0, 2.0]])
def test_weighted_mean_divides_by_the_sum_of_the_weights_as_torch(device, name, weights):
    """'mean' with a weight is sum(w * l) / sum(w) (an array on the device: no wait); all-zero weights give torch's
    NaN loss and NaN gradients for mse and l1 (huber's mean is over the elements)."""
    x, t = np.array([1.0, -2.0, 0.5]), np.array([0.0, 0.5, 0.5])
    results = []
    for lib, make in ((F, ours_tensor), (TF, torch_tensor)):
        dev = device if lib is F else torch_device(device)
        xs = make(x, dev, requires_grad=True)
        loss = getattr(lib, name)(xs, make(t, dev), weight=make(np.array(weights), dev))
        loss.backward()
        results.append((loss, xs.grad))
    (loss, grad), (their_loss, their_grad) = results
    assert_close(loss, their_loss.detach(), "float64", what=f"{name} loss")
    assert_close(grad, their_grad, "float64", what=f"{name} gradient")


def test_regression_broadcast_warns_like_torch():
    x, t = np.zeros((3, 1)), np.ones(3)
    with pytest.warns(UserWarning, match="different to the input size"):
        ours = F.mse_loss(tinyautograd.tensor(x), tinyautograd.tensor(t))
    with pytest.warns(UserWarning):
        theirs = TF.mse_loss(torch.tensor(x), torch.tensor(t))
    assert_close(ours, theirs, "float64")


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
def test_legacy_size_average_and_reduce_arguments():
    x, t = np.arange(4.0), np.zeros(4)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        nn.L1Loss(size_average=False)
    for size_average, reduce in [(None, False), (False, None), (True, True), (False, True)]:
        o = nn.MSELoss(size_average=size_average, reduce=reduce)
        th = torch.nn.MSELoss(size_average=size_average, reduce=reduce)
        assert o.reduction == th.reduction
        assert_close(o(tinyautograd.tensor(x), tinyautograd.tensor(t)), th(torch.tensor(x), torch.tensor(t)))
        assert_close(F.l1_loss(tinyautograd.tensor(x), tinyautograd.tensor(t), size_average, reduce),
                     TF.l1_loss(torch.tensor(x), torch.tensor(t), size_average, reduce))


# -- KL divergence ----------------------------------------------------------------------------------------------

@LOSS_SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.sampled_from(["none", "mean", "sum", "batchmean"]), st.booleans(), DTYPES, SEEDS)
def test_kl_div_matches_torch(device, shape, reduction, log_target, dtype, seed):
    rng = np.random.default_rng(seed)
    x = np.log(rng.dirichlet(np.ones(shape[-1]), shape[:-1]) + 1e-3).astype(dtype)
    t = rng.dirichlet(np.ones(shape[-1]), shape[:-1])
    if not log_target:
        t = np.where(rng.random(shape) < 0.2, 0.0, t)  # exact zeros contribute 0, as torch's xlogy
    else:
        t = np.log(t + 1e-3)
    t = t.astype(dtype)

    def call(lib_f):
        return lambda x_, t_: lib_f(x_, t_, reduction=reduction, log_target=log_target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note about reduction='mean'
        check_loss(call(F.kl_div), call(TF.kl_div), [x, t], [True, True], dtype, device, rng, "kl_div")
        check_loss(nn.KLDivLoss(reduction=reduction, log_target=log_target),
                   torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), [x, t], [True, False], dtype,
                   device, rng, "KLDivLoss")


# -- stability ----------------------------------------------------------------------------------------------------

def _strict_numpy():
    """Overflow, division by zero and invalid operations raise; underflow to 0 is the correct result of exp of a
    very negative number and stays silent."""
    return np.errstate(over="raise", divide="raise", invalid="raise")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_are_stable_for_logits_of_plus_minus_1000(device, dtype):
    rng = np.random.default_rng(0)
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    t = np.array([1, 2, 0])
    probs = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=dtype)
    bin_t = (rng.random(x.shape) < 0.5).astype(dtype)
    cases = [
        (lambda a, b: F.cross_entropy(a, b), lambda a, b: TF.cross_entropy(a, b), [x, t]),
        (lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1),
         lambda a, b: TF.cross_entropy(a, b, label_smoothing=0.1), [x, t]),
        (lambda a, b: F.cross_entropy(a, b), lambda a, b: TF.cross_entropy(a, b), [x, probs]),
        (lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=tinyautograd.ones(3, device=device) * 2),
         lambda a, b: TF.binary_cross_entropy_with_logits(a, b, pos_weight=torch.ones(3, device=device) * 2),
         [x, bin_t]),
        (lambda a, b: F.nll_loss(F.log_softmax(a, 1), b), lambda a, b: TF.nll_loss(TF.log_softmax(a, 1), b), [x, t]),
        (lambda a, b: F.binary_cross_entropy(F.sigmoid(a), b), lambda a, b: TF.binary_cross_entropy(a.sigmoid(), b),
         [x, bin_t]),
        (lambda a: F.softplus(a).sum(), lambda a: TF.softplus(a).sum(), [x]),
        (lambda a: F.logsigmoid(a).sum(), lambda a: TF.logsigmoid(a).sum(), [x]),
        (lambda a: F.silu(a).sum(), lambda a: TF.silu(a).sum(), [x]),
        (lambda a: F.mish(a).sum(), lambda a: TF.mish(a).sum(), [x]),
        (lambda a: F.elu(a).sum(), lambda a: TF.elu(a).sum(), [x]),
        (lambda a: F.gelu(a).sum(), lambda a: TF.gelu(a).sum(), [x]),
    ]
    for i, (ours_fn, torch_fn, args) in enumerate(cases):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with _strict_numpy():
                tensors = [pair(a, device, True) for a in args]
                lo = ours_fn(*[o for o, _ in tensors])
                lo.backward()
        lt = torch_fn(*[t_ for _, t_ in tensors])
        lt.backward()
        assert np.isfinite(lo.item()), f"case {i}: loss {lo.item()}"
        assert_close(lo, lt, dtype, what=f"case {i} value")
        assert np.isfinite(tensors[0][0].grad.numpy(force=True)).all(), f"case {i}: non-finite gradient"
        assert_close(tensors[0][0].grad, tensors[0][1].grad, dtype, what=f"case {i} grad")


# -- second derivatives -----------------------------------------------------------------------------------------

SECOND_ORDER = {
    "cross_entropy": (lambda lib: (lambda x, t: lib.cross_entropy(x, t, label_smoothing=0.2)), "indices"),
    # the plain (N, C) case takes a leaner path on the cpu: its double backward falls back to the formula
    "cross_entropy_plain": (lambda lib: (lambda x, t: lib.cross_entropy(x, t)), "indices"),
    "cross_entropy_plain_sum": (lambda lib: (lambda x, t: lib.cross_entropy(x, t, reduction="sum")), "indices"),
    "cross_entropy_weighted": (lambda lib: (lambda x, t: lib.cross_entropy(
        x, t, weight=(tinyautograd if lib is F else torch).tensor([0.5, 2.0, 1.0], dtype=x.dtype))), "indices"),
    "cross_entropy_probs": (lambda lib: (lambda x, t: lib.cross_entropy(x, t, label_smoothing=0.1)), "probs"),
    "bce_with_logits": (lambda lib: (lambda x, t: lib.binary_cross_entropy_with_logits(x, t)), "probs"),
    "bce": (lambda lib: (lambda x, t: lib.binary_cross_entropy(x, t)), "unit"),
    "mse": (lambda lib: (lambda x, t: lib.mse_loss(x, t, reduction="sum")), "values"),
    "smooth_l1": (lambda lib: (lambda x, t: lib.smooth_l1_loss(x, t, beta=0.7)), "values"),
    "nll_loss": (lambda lib: (lambda x, t: lib.nll_loss(lib.log_softmax(x, 1), t)), "indices"),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_derivatives_match_torch(name, default_device):
    rng = np.random.default_rng(7)
    make, kind = SECOND_ORDER[name]
    x = rng.standard_normal((4, 3)) * 2
    if kind == "indices":
        t = rng.integers(0, 3, 4)
    elif kind == "probs":
        t = rng.dirichlet(np.ones(3), 4)
    elif kind == "unit":
        x = rng.uniform(0.05, 0.95, (4, 3))
        t = rng.random((4, 3))
    else:
        t = rng.standard_normal((4, 3))
    ours = hessian_vector(make(F), [x, t], tinyautograd, default_device, 3)
    theirs = hessian_vector(make(TF), [x, t], torch, "cpu", 3)
    assert_close(ours, theirs, "float64", what=f"{name} Hessian-vector product")


def test_loss_module_reprs_match_torch():
    for name in ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
                 "CrossEntropyLoss", "NLLLoss", "KLDivLoss"]:
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())


def test_loss_weight_buffers_follow_the_module():
    loss = nn.CrossEntropyLoss(weight=tinyautograd.tensor([1.0, 2.0]))
    assert list(loss.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])).state_dict())
    loss.double()
    assert loss.weight.dtype == tinyautograd.float64
