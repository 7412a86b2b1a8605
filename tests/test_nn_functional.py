"""nn.functional against torch.nn.functional: activations with drawn hyperparameters (values, gradients and second
derivatives), normalisation with running statistics, embedding, one_hot, distances, and argument errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyautograd
import tinyautograd.nn.functional as F
from helpers import assert_close, settled

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

DTYPES = st.sampled_from(["float32", "float64"])
SEEDS = st.integers(0, 2 ** 31 - 1)
FIXTURE_OK = list(settings.default.suppress_health_check) + [HealthCheck.function_scoped_fixture]
FN_SETTINGS = settings(deadline=None, suppress_health_check=FIXTURE_OK)


def run_both(fn_ours, fn_torch, arrays, device, dtype, rng, requires=None, what=""):
    """Apply both functions to the same arrays and compare outputs and the gradients of float arguments."""
    requires = requires or [a.dtype.kind == "f" for a in arrays]
    ours = [tinyautograd.tensor(a.copy(), device=device, requires_grad=r) for a, r in zip(arrays, requires)]
    theirs = [torch.tensor(a.copy(), device=device, requires_grad=r) for a, r in zip(arrays, requires)]
    yo, yt = fn_ours(*ours), fn_torch(*theirs)
    assert_close(yo, yt, dtype, what=f"{what} output")
    if yt.requires_grad:
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yo.backward(tinyautograd.tensor(g, device=device))
        yt.backward(torch.tensor(g, device=device))
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if b.grad is not None:
                assert_close(a.grad, b.grad, dtype, what=f"{what} grad {i}")
    return yo, yt


# -- activations with hyperparameters -----------------------------------------------------------------------------

ACTIVATION_FNS = {
    "leaky_relu": {"negative_slope": st.floats(0.0, 0.5)},
    "elu": {"alpha": st.floats(0.1, 2.0)},
    "celu": {"alpha": st.floats(0.2, 2.0)},
    "selu": {},
    "gelu": {"approximate": st.sampled_from(["none", "tanh"])},
    "silu": {},
    "mish": {},
    "softplus": {"beta": st.floats(0.5, 3.0), "threshold": st.floats(1.0, 20.0)},
    "hardtanh": {"min_val": st.floats(-2.0, -0.1), "max_val": st.floats(0.1, 2.0)},
    "relu6": {},
    "relu": {},
    "hardsigmoid": {},
    "hardswish": {},
    "threshold": {"threshold": st.floats(-1.0, 1.0), "value": st.floats(-2.0, 2.0)},
    "logsigmoid": {},
    "softsign": {},
    "tanhshrink": {},
    "softshrink": {"lambd": st.floats(0.0, 1.0)},
    "hardshrink": {"lambd": st.floats(0.0, 1.0)},
    "sigmoid": {},
    "tanh": {},
}


@pytest.mark.parametrize("name", list(ACTIVATION_FNS))
@settings(deadline=None, max_examples=8, suppress_health_check=FIXTURE_OK)
@given(data=st.data(), shape=st.lists(st.integers(1, 4), max_size=3), dtype=DTYPES, seed=SEEDS)
def test_activation_functions_match_torch(device, name, data, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    kwargs = {k: data.draw(s, label=k) for k, s in ACTIVATION_FNS[name].items()}
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    run_both(lambda t: getattr(F, name)(t, **kwargs), lambda t: getattr(TF, name)(t, **kwargs), [x], device, dtype,
             rng, what=name)


SMOOTH = ["gelu", "silu", "mish", "softplus", "elu", "selu", "celu", "logsigmoid", "softsign", "tanhshrink"]


@pytest.mark.parametrize("name", SMOOTH + ["gelu_tanh"])
def test_activation_second_derivatives_match_torch(name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)) * 2
    v = rng.standard_normal((3, 4))
    kwargs = {"approximate": "tanh"} if name == "gelu_tanh" else {}
    fn = name.removesuffix("_tanh")
    xo = tinyautograd.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (go,) = tinyautograd.autograd.grad(getattr(F, fn)(xo, **kwargs).sum(), xo, create_graph=True)
    (gt,) = torch.autograd.grad(getattr(TF, fn)(xt, **kwargs).sum(), xt, create_graph=True)
    assert_close(go, gt, "float64", what="first derivative")
    (go * tinyautograd.tensor(v)).sum().backward()
    (gt * torch.tensor(v)).sum().backward()
    assert_close(xo.grad, xt.grad, "float64", what="second derivative")


@FN_SETTINGS
@given(st.integers(0, 2), st.sampled_from([None, "float64"]), DTYPES, SEEDS)
def test_softmax_family_matches_torch(device, dim, out_dtype, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 3, 4)) * 5).astype(dtype)
    for name in ("softmax", "log_softmax", "softmin"):
        kw_ours = {"dtype": getattr(tinyautograd, out_dtype)} if out_dtype else {}
        kw_torch = {"dtype": getattr(torch, out_dtype)} if out_dtype else {}
        run_both(lambda t: getattr(F, name)(t, dim, **kw_ours), lambda t: getattr(TF, name)(t, dim, **kw_torch),
                 [x], device, out_dtype or dtype, rng, what=name)


@FN_SETTINGS
@given(st.sampled_from([(2, 4), (3, 4, 2), (4,)]), st.integers(-1, 0), DTYPES, SEEDS)
def test_glu_matches_torch(device, shape, dim, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if shape[dim] % 2:
        with pytest.raises(RuntimeError, match="Halving dimension must be even"):
            F.glu(tinyautograd.tensor(x), dim)
        return
    run_both(lambda t: F.glu(t, dim), lambda t: TF.glu(t, dim), [x], device, dtype, rng, what="glu")


@FN_SETTINGS
@given(st.sampled_from([(3,), (2, 3), (2, 3, 4), (2, 3, 2, 2)]), st.booleans(), DTYPES, SEEDS)
def test_prelu_matches_torch(device, shape, per_channel, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0, 0.5, shape[1 if len(shape) >= 2 else 0] if per_channel else 1).astype(dtype)
    if len(shape) == 1 and per_channel:
        # torch counts one channel for 1-D inputs, so a weight of size > 1 is an error in both
        with pytest.raises(RuntimeError, match="Mismatch of parameter numbers"):
            F.prelu(tinyautograd.tensor(x), tinyautograd.tensor(w))
        return
    run_both(F.prelu, TF.prelu, [x, w], device, dtype, rng, what="prelu")


@FN_SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.booleans(), DTYPES, SEEDS)
def test_linear_and_bilinear_functions_match_torch(device, n, i, o, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal(o)
    args = [a.astype(dtype) for a in ([x, w, b] if bias else [x, w])]
    run_both(F.linear, TF.linear, args, device, dtype, rng, what="linear")
    run_both(F.linear, TF.linear, [args[0][0]] + args[1:], device, dtype, rng, what="linear 1-D")
    x2, wb = rng.standard_normal((n, 2)), rng.standard_normal((o, i, 2))
    bargs = [a.astype(dtype) for a in ([x, x2, wb, b] if bias else [x, x2, wb])]
    run_both(F.bilinear, TF.bilinear, bargs, device, dtype, rng, what="bilinear")


def test_linear_shape_error_matches_torch():
    with pytest.raises(RuntimeError) as ours:
        F.linear(tinyautograd.randn(2, 3), tinyautograd.randn(5, 4))
    with pytest.raises(RuntimeError) as theirs:
        TF.linear(torch.randn(2, 3), torch.randn(5, 4))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(tinyautograd.randn(2, 3), tinyautograd.randn(5, 3, dtype=tinyautograd.float64))


def test_linear_second_derivative_through_a_nonlinearity():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    results = []
    for lib, fn in ((tinyautograd, F), (torch, TF)):
        xt, wt = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        (gw,) = lib.autograd.grad(fn.gelu(fn.linear(xt, wt)).pow(2).sum(), wt, create_graph=True)
        gw.sum().backward()
        results.append((xt.grad, wt.grad))
    assert_close(results[0][0], results[1][0], "float64")
    assert_close(results[0][1], results[1][1], "float64")


# -- normalisation ----------------------------------------------------------------------------------------------

@FN_SETTINGS
@given(st.sampled_from([(4, 3), (3, 2, 5), (2, 3, 2, 2)]), st.floats(0.0, 1.0), st.booleans(), DTYPES, SEEDS)
def test_batch_norm_function_updates_running_stats_like_torch(device, shape, momentum, affine, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm_o, rv_o = tinyautograd.tensor(rm, device=device), tinyautograd.tensor(rv, device=device)
    rm_t, rv_t = torch.tensor(rm, device=device), torch.tensor(rv, device=device)
    arrays = [x, w, b] if affine else [x]

    def ours(xt, *wb):
        return F.batch_norm(xt, rm_o, rv_o, *wb, training=True, momentum=momentum)

    def theirs(xt, *wb):
        return TF.batch_norm(xt, rm_t, rv_t, *wb, training=True, momentum=momentum)

    run_both(ours, theirs, arrays, device, dtype, rng, what="batch_norm train")
    assert_close(rm_o, rm_t, dtype, what="running_mean")
    assert_close(rv_o, rv_t, dtype, what="running_var")
    run_both(lambda xt, *wb: F.batch_norm(xt, rm_o, rv_o, *wb, training=False),
             lambda xt, *wb: TF.batch_norm(xt, rm_t, rv_t, *wb, training=False), arrays, device, dtype, rng,
             what="batch_norm eval")


@pytest.mark.parametrize("name", ["batch_norm", "layer_norm", "group_norm", "batch_norm_eval"])
def test_normalisation_second_derivatives_match_torch(name):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 4, 3)) * 2
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    v = rng.standard_normal(x.shape)

    def call(lib, fn, xt, wt, bt):
        if name == "batch_norm":
            return fn.batch_norm(xt, None, None, wt, bt, training=True)
        if name == "batch_norm_eval":
            return fn.batch_norm(xt, lib.tensor(rm), lib.tensor(rv), wt, bt, training=False)
        if name == "layer_norm":
            return fn.layer_norm(xt, (3,), wt[:3], bt[:3])
        return fn.group_norm(xt, 2, wt, bt)

    grads = []
    for lib, fn in ((tinyautograd, F), (torch, TF)):
        xt, wt, bt = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        y = call(lib, fn, xt, wt, bt)
        (gx,) = lib.autograd.grad((y * y * y).sum(), xt, create_graph=True)
        (gx * lib.tensor(v)).sum().backward()
        grads.append((xt.grad, wt.grad, bt.grad))
    for i, (a, c) in enumerate(zip(*grads)):
        if c is None:
            assert a is None or not a.cpu().numpy().any()
        else:
            assert_close(a, c, "float64", what=f"{name} second derivative of argument {i}")


def test_normalisation_argument_errors():
    x = tinyautograd.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (3,))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(x, 2)
    with pytest.raises(RuntimeError, match="running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(RuntimeError, match="weight"):
        F.batch_norm(x, None, None, tinyautograd.ones(4), training=True)


# -- embedding, one_hot, distances ------------------------------------------------------------------------------

@FN_SETTINGS
@given(st.one_of(st.none(), st.integers(0, 4)), DTYPES, SEEDS)
def test_embedding_function_matches_torch_and_skips_the_padding_row(device, padding_idx, dtype, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 5, (3, 4))
    w = rng.standard_normal((5, 2)).astype(dtype)
    run_both(lambda i, wt: F.embedding(i, wt, padding_idx), lambda i, wt: TF.embedding(i, wt, padding_idx),
             [idx, w], device, dtype, rng, what="embedding")


def test_embedding_rejects_float_indices():
    with pytest.raises(RuntimeError, match="indices"):
        F.embedding(tinyautograd.tensor([0.0]), tinyautograd.randn(2, 2))


@given(st.lists(st.integers(0, 5), max_size=6), st.sampled_from([-1, 6, 9]))
def test_one_hot_matches_torch(values, num_classes):
    ours_t, theirs_t = tinyautograd.tensor(values, dtype=tinyautograd.int64), torch.tensor(values,
                                                                                         dtype=torch.int64)
    if not values and num_classes == -1:
        with pytest.raises(RuntimeError, match="infer"):
            F.one_hot(ours_t)
        return
    assert_close(F.one_hot(ours_t, num_classes), TF.one_hot(theirs_t, num_classes))
    grid = tinyautograd.tensor([[0, 2], [1, 0]])
    assert_close(F.one_hot(grid), TF.one_hot(torch.tensor([[0, 2], [1, 0]])))


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        settled(F.one_hot(tinyautograd.tensor([-1, 0])))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        settled(F.one_hot(tinyautograd.tensor([3]), 2))
    with pytest.raises(RuntimeError, match="index tensor"):
        F.one_hot(tinyautograd.tensor([1.0]))


@FN_SETTINGS
@given(st.sampled_from([1.0, 2.0, 3.0]), st.integers(0, 1), DTYPES, SEEDS)
def test_normalize_and_distances_match_torch(device, p, dim, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4)).astype(dtype)
    if p in (1.0, 2.0):
        x[0] = 0  # a zero row exercises the eps clamps (the core's p=3 norm has a nan gradient at zero)
    y = rng.standard_normal((3, 4)).astype(dtype)
    run_both(lambda t: F.normalize(t, p, dim), lambda t: TF.normalize(t, p, dim), [x], device, dtype, rng,
             what="normalize")
    run_both(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim),
             [x + 0.5, y], device, dtype, rng, what="cosine_similarity")
    run_both(lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b),
             [x[:1] + 0.5, y], device, dtype, rng, what="cosine_similarity broadcast")
    run_both(lambda a, b: F.pairwise_distance(a, b, p), lambda a, b: TF.pairwise_distance(a, b, p), [x, y], device,
             dtype, rng, what="pairwise_distance")


def test_pad_is_the_tensor_op():
    x = np.arange(6.0).reshape(1, 2, 3)
    assert_close(F.pad(tinyautograd.tensor(x), (1, 2), value=-1.0), TF.pad(torch.tensor(x), (1, 2), value=-1.0))
    assert F.pad is tinyautograd.ops.shape.pad


def test_dropout_function_respects_training_flag():
    x = tinyautograd.randn(10)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, -0.1)
    assert not F.dropout(x, 1.0).cpu().numpy().any()
