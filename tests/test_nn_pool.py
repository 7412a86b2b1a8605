"""Pooling against torch: max_pool1d/2d/3d, avg_pool1d/2d/3d, adaptive average and max pooling, and the layers.

Kernel sizes, strides, padding, dilation, ceil_mode, count_include_pad and divisor_override are drawn by
Hypothesis; outputs, arg-max indices and input gradients must match torch, ties included (the gradient goes to
the first maximum, as torch's), and so must second derivatives. Finite differences check the gradients without
torch.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyautograd
import tinyautograd.nn as nn
import tinyautograd.nn.functional as F
from helpers import assert_close, ours_tensor, to_numpy, torch_tensor

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

# on cuda torch would round float32 convolutions and matmuls through TF32: compare against full float32
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
# the device fixture is a plain string: sharing it across Hypothesis examples is safe
_SETTINGS = settings(suppress_health_check=list(settings.default.suppress_health_check)
                     + [HealthCheck.function_scoped_fixture])
DTYPES = st.sampled_from(["float32", "float64"])
SEEDS = st.integers(0, 2 ** 32 - 1)


def _values(rng, shape, dtype: str, ties: bool) -> np.ndarray:
    """Normal values, or small integers so that windows hold equal maxima (the tie rule is then visible)."""
    if ties:
        return rng.integers(-2, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _compare(ours_fn, torch_fn, x_np: np.ndarray, device: str, dtype: str, seed: int, second: bool = False):
    """Forward, indices (when returned), the input gradient for a random upstream one, and optionally the second
    derivative through ``grad(out, x, create_graph=True)``."""
    x, tx = ours_tensor(x_np, device, True), torch_tensor(x_np, device, True)
    out, tout = ours_fn(x), torch_fn(tx)
    if isinstance(tout, tuple):
        out, idx = out
        tout, tidx = tout
        assert_close(idx, tidx, what="indices")
    assert_close(out, tout, dtype)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(tuple(tout.shape)).astype(dtype)
    go, tgo = ours_tensor(g, device, second), torch_tensor(g, device, second)
    gx, = tinyautograd.autograd.grad(out, x, go, create_graph=second)
    tgx, = torch.autograd.grad(tout, tx, tgo, create_graph=second)
    assert_close(gx, tgx, dtype, what="input gradient")
    if second:
        r = rng.standard_normal(tuple(tgx.shape)).astype(dtype)
        s = (gx * ours_tensor(r, device)).sum() + (out * out).sum()
        ts = (tgx * torch_tensor(r, device)).sum() + (tout * tout).sum()
        for a, b, what in zip(tinyautograd.autograd.grad(s, (x, go)), torch.autograd.grad(ts, (tx, tgo)),
                              ("x", "grad_output")):
            assert_close(a, b, dtype, what=f"second derivative for {what}")


@st.composite
def pool_cases(draw, avg: bool):
    d = draw(st.sampled_from([1, 2, 2, 3]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = (1,) * d if avg else tuple(draw(st.integers(1, 2)) for _ in range(d))
    # with dilation a window could hold padding only: torch's CPU kernel then writes an index outside the input
    # (and its backward out of bounds), so such windows are left out
    padding = tuple(draw(st.integers(0, k // 2)) if dl == 1 else 0 for k, dl in zip(kernel, dilation))
    # torch's 3-D pooling wants the unpadded input at least as large as the kernel
    lows = [max(1, dl * (k - 1) + 1 - (2 * p if d < 3 else 0)) for k, dl, p in zip(kernel, dilation, padding)]
    size = tuple(draw(st.integers(low, low + (4 if d < 3 else 2))) for low in lows)
    batched = draw(st.integers(0, 3))
    shape = ((2, draw(st.integers(1, 3))) if batched else (draw(st.integers(1, 3)),)) + size
    kwargs = dict(kernel_size=kernel if draw(st.booleans()) else kernel[0] if len(set(kernel)) == 1 else kernel,
                  stride=None if draw(st.booleans()) else stride, padding=padding, ceil_mode=draw(st.booleans()))
    if avg:
        kwargs["count_include_pad"] = draw(st.booleans())
        if d > 1 and draw(st.booleans()):
            kwargs["divisor_override"] = draw(st.integers(1, 5))
    else:
        kwargs["dilation"] = dilation
    return d, shape, kwargs


@_SETTINGS
@given(case=pool_cases(avg=False), ties=st.booleans(), return_indices=st.booleans(), dtype=DTYPES, seed=SEEDS)
def test_max_pool_matches_torch(device, case, ties, return_indices, dtype, seed):
    d, shape, kwargs = case
    kwargs = dict(kwargs, return_indices=return_indices)
    x = _values(np.random.default_rng(seed), shape, dtype, ties)
    _compare(lambda t: getattr(F, f"max_pool{d}d")(t, **kwargs),
             lambda t: getattr(torch.nn.functional, f"max_pool{d}d")(t, **kwargs), x, device, dtype, seed + 1)


@_SETTINGS
@given(case=pool_cases(avg=True), dtype=DTYPES, seed=SEEDS)
def test_avg_pool_matches_torch(device, case, dtype, seed):
    d, shape, kwargs = case
    x = _values(np.random.default_rng(seed), shape, dtype, False)
    _compare(lambda t: getattr(F, f"avg_pool{d}d")(t, **kwargs),
             lambda t: getattr(torch.nn.functional, f"avg_pool{d}d")(t, **kwargs), x, device, dtype, seed + 1)


@_SETTINGS
@given(case=pool_cases(avg=False), avg=st.booleans(), dtype=DTYPES, seed=SEEDS)
def test_pooling_second_derivatives_match_torch(device, case, avg, dtype, seed):
    d, shape, kwargs = case
    if avg:
        kwargs = {k: v for k, v in kwargs.items() if k != "dilation"}
        if any(p * 2 > k for p, k in zip(kwargs["padding"], np.broadcast_to(kwargs["kernel_size"], (d,)))):
            kwargs["padding"] = 0
    name = f"{'avg' if avg else 'max'}_pool{d}d"
    x = _values(np.random.default_rng(seed), shape, dtype, False)
    _compare(lambda t: getattr(F, name)(t, **kwargs), lambda t: getattr(torch.nn.functional, name)(t, **kwargs),
             x, device, dtype, seed + 1, second=True)


@st.composite
def adaptive_cases(draw):
    d = draw(st.sampled_from([1, 2]))
    size = tuple(draw(st.integers(1, 9)) for _ in range(d))
    out = tuple(draw(st.one_of(st.integers(1, 6), st.just(s))) for s in size)
    if d == 2 and draw(st.booleans()):
        out = (out[0], None)
    elif d == 1 or draw(st.booleans()):
        out = out[0] if d == 1 or len(set(out)) == 1 else out
    batched = draw(st.booleans())
    shape = ((2, draw(st.integers(1, 3))) if batched else (draw(st.integers(1, 3)),)) + size
    return d, shape, out


@_SETTINGS
@given(case=adaptive_cases(), dtype=DTYPES, seed=SEEDS)
def test_adaptive_avg_pool_matches_torch(device, case, dtype, seed):
    d, shape, out = case
    x = _values(np.random.default_rng(seed), shape, dtype, False)
    _compare(lambda t: getattr(F, f"adaptive_avg_pool{d}d")(t, out),
             lambda t: getattr(torch.nn.functional, f"adaptive_avg_pool{d}d")(t, out), x, device, dtype, seed + 1,
             second=dtype == "float64")


@pytest.mark.parametrize("d, shape, out", [(1, (2, 3, 7), (3,)), (2, (2, 2, 7, 5), (3, 2)), (2, (1, 1, 9, 9), (4, 5))])
def test_adaptive_max_pool_uneven_windows_with_infinities_and_nan(device, d, shape, out):
    """Uneven windows (on CUDA all read at once, padded with -inf): windows of -inf only, ties with -inf, a NaN,
    huge values; values, indices and the input gradient against torch."""
    x = np.random.default_rng(1).standard_normal(shape)
    flat = x.reshape(-1)
    flat[::3] = -np.inf
    flat[1::11] = np.inf
    flat[5] = np.nan
    x[0, 0] = -np.inf  # a whole plane of -inf: every window ties
    _compare(lambda t: getattr(F, f"adaptive_max_pool{d}d")(t, out, True),
             lambda t: getattr(torch.nn.functional, f"adaptive_max_pool{d}d")(t, out, True), x, device, "float64", 2)


@_SETTINGS
@given(case=adaptive_cases(), ties=st.booleans(), return_indices=st.booleans(), dtype=DTYPES, seed=SEEDS)
def test_adaptive_max_pool_matches_torch(device, case, ties, return_indices, dtype, seed):
    d, shape, out = case
    x = _values(np.random.default_rng(seed), shape, dtype, ties)
    _compare(lambda t: getattr(F, f"adaptive_max_pool{d}d")(t, out, return_indices),
             lambda t: getattr(torch.nn.functional, f"adaptive_max_pool{d}d")(t, out, return_indices), x, device,
             dtype, seed + 1)


@pytest.mark.parametrize("fn, kwargs", [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool1d", dict(kernel_size=2, stride=1, dilation=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=2, divisor_override=3)),
    ("avg_pool1d", dict(kernel_size=3, stride=1, padding=1)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 2))),
    ("adaptive_max_pool2d", dict(output_size=(2, 3))),
])
def test_pool_gradients_match_finite_differences(fn, kwargs):
    # distinct values spaced far beyond the finite-difference step: the arg-max never flips
    rng = np.random.default_rng(0)
    shape = (1, 2, 7) if fn.endswith("1d") else (1, 2, 5, 6)
    values = rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0
    x = tinyautograd.tensor(values, requires_grad=True)
    f = getattr(F, fn)
    assert tinyautograd.autograd.gradcheck(lambda t: f(t, **kwargs), (x,))
    assert tinyautograd.autograd.gradgradcheck(lambda t: f(t, **kwargs) ** 2, (x,))


def test_max_pool_sends_the_gradient_of_a_tied_window_to_its_first_maximum():
    x = tinyautograd.tensor([[[[1.0, 1.0], [1.0, 1.0]]]], requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_gradients_add_up_where_windows_overlap():
    x = tinyautograd.tensor([[[0.0, 5.0, 1.0, 0.0]]], requires_grad=True)
    F.max_pool1d(x, 3, stride=1).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[[0.0, 2.0, 0.0, 0.0]]])


# ---------------------------------------------------------------------------------------------------------------
# layers

LAYERS = [
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 9)),
    ("MaxPool2d", (2,), {}, (2, 3, 8, 8)),
    ("MaxPool2d", ((3, 2),), dict(stride=1, padding=(1, 0), dilation=(1, 2), ceil_mode=True), (3, 7, 6)),
    ("MaxPool3d", (2,), dict(stride=1), (1, 2, 3, 4, 3)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9)),
    ("AvgPool2d", (2,), {}, (2, 3, 8, 8)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, divisor_override=4), (1, 2, 7, 6)),
    ("AvgPool3d", (2,), dict(stride=1, padding=1), (1, 2, 3, 4, 3)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 7, 5)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveMaxPool2d", ((2, 3),), dict(return_indices=True), (2, 3, 7, 5)),
    ("MaxPool2d", (2,), dict(return_indices=True), (1, 3, 5, 5)),
]


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
def test_layer_matches_torch(device, name, args, kwargs, x_shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict() == {} and not list(ours.parameters())
    x = np.random.default_rng(0).standard_normal(x_shape)
    _compare(ours, theirs, x, device, "float64", 1)


# ---------------------------------------------------------------------------------------------------------------
# errors: the same exception type as torch, and a message that says what is wrong

def _bad_calls(lib):
    fn = lib.nn.functional
    x = lib.randn(2, 3, 8, 8)
    return {
        "pad too big": (lambda: fn.max_pool2d(x, 3, padding=2), "pad should be at most half of kernel size"),
        "output too small": (lambda: fn.max_pool2d(x, 9), "Output size is too small"),
        "max dims": (lambda: fn.max_pool2d(lib.randn(3), 2), "3D|4D"),
        "max stride zero": (lambda: fn.max_pool2d(x, 2, stride=0), "stride should not be zero"),
        "dilation zero": (lambda: fn.max_pool2d(x, 2, dilation=0), "dilation should be greater than zero"),
        "avg pad too big": (lambda: fn.avg_pool2d(x, 3, padding=2), "pad should be at most half"),
        "avg too small": (lambda: fn.avg_pool2d(x, 9), "Output size is too small"),
        "avg 1d dims": (lambda: fn.avg_pool1d(lib.randn(3), 2), "2D|3D"),
        "max 1d dims": (lambda: fn.max_pool1d(lib.randn(3), 2), "2D|3D"),
        "adaptive dims": (lambda: fn.adaptive_avg_pool2d(lib.randn(3), 2), "3D or 4D"),
    }


@pytest.mark.parametrize("case", sorted(_bad_calls(tinyautograd)))
def test_bad_calls_raise_like_torch(case):
    ours, pattern = _bad_calls(tinyautograd)[case]
    theirs, _ = _bad_calls(torch)[case]
    with pytest.raises(Exception) as torch_error:
        theirs()
    with pytest.raises(type(torch_error.value), match=pattern):
        ours()


def test_pooling_output_matches_torch_on_a_lenet_sized_batch():
    x = np.random.default_rng(0).standard_normal((64, 6, 24, 24)).astype("float32")
    ours, theirs = F.max_pool2d(tinyautograd.tensor(x), 2), torch.nn.functional.max_pool2d(torch.from_numpy(x), 2)
    np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


@pytest.mark.parametrize("fn, args", [("max_pool2d", (2,)), ("avg_pool2d", (2,)), ("max_pool3d", (2,)),
                                      ("avg_pool3d", (2,)), ("unfold", (2,))])
def test_grad_fn_names_match_torch(fn, args):
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4, 4) if fn.endswith("3d") else (1, 2, 4, 4))
    ours = getattr(F, fn)(tinyautograd.tensor(x, requires_grad=True), *args)
    theirs = getattr(torch.nn.functional, fn)(torch.tensor(x, requires_grad=True), *args)
    assert ours.grad_fn.name() == theirs.grad_fn.name()


@pytest.mark.parametrize("fn, args", [("max_pool2d", (2,)), ("avg_pool2d", (2,)), ("adaptive_avg_pool2d", (3,)),
                                      ("adaptive_max_pool2d", (3,))])
def test_an_empty_batch_gives_an_empty_result_as_torch(fn, args):
    x = np.zeros((0, 2, 6, 6))
    ours = getattr(F, fn)(tinyautograd.tensor(x, requires_grad=True), *args)
    theirs = getattr(torch.nn.functional, fn)(torch.tensor(x, requires_grad=True), *args)
    assert tuple(ours.shape) == tuple(theirs.shape)
    ours.sum().backward()


def test_max_pool_propagates_nan_and_routes_its_gradient_as_torch():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan], [0.0, 2.0, np.nan, 1.0]]]])
    _compare(lambda t: F.max_pool2d(t, 2, return_indices=True),
             lambda t: torch.nn.functional.max_pool2d(t, 2, return_indices=True), x, "cpu", "float64", 0)
