"""Convolutions against torch: conv1d/2d/3d, conv_transpose1d/2d/3d, unfold/fold and the Conv layers.

Shapes and hyperparameters (stride, padding as ints, tuples, 'same' and 'valid', dilation, groups, output_padding,
kernel sizes, bias) are drawn by Hypothesis; outputs and every gradient (input, weight, bias) must match torch's
for a drawn upstream gradient, in float32 (loose) and float64 (tight), and second derivatives match too. Finite
differences, without torch, check first and second derivatives of small cases. Layers load torch's state_dict
(and torch loads theirs) and give the same outputs; reprs and error types match torch.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyautograd
import tinyautograd.nn as nn
import tinyautograd.nn.functional as F
from helpers import Tolerance, assert_close, ours_tensor, to_numpy, tolerance, torch_tensor

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

# on cuda torch would round float32 convolutions and matmuls through TF32: compare against full float32
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
# the device fixture is a plain string: sharing it across Hypothesis examples is safe
_SETTINGS = settings(suppress_health_check=list(settings.default.suppress_health_check)
                     + [HealthCheck.function_scoped_fixture])
# second derivatives cost several passes: half the profile's examples
_FEWER = settings(_SETTINGS, max_examples=max(1, settings.default.max_examples // 2))
# a convolution sums C_in * prod(kernel) products: float32 rounding grows with that count
_CONV_TOL = {"float32": Tolerance(rtol=1e-4, atol=1e-4), "float64": tolerance("float64")}
_GRAD2_TOL = {"float32": Tolerance(rtol=1e-3, atol=1e-3), "float64": Tolerance(rtol=1e-7, atol=1e-8)}
DTYPES = st.sampled_from(["float32", "float64"])


def _pair(rng, shape, dtype: str, device: str, requires_grad: bool = True):
    a = rng.standard_normal(shape).astype(dtype)
    return ours_tensor(a, device, requires_grad), torch_tensor(a, device, requires_grad)


def _check_forward_backward(ours_fn, torch_fn, arrays, device: str, dtype: str, seed: int) -> None:
    """Both libraries on the same inputs: outputs equal, and each input's gradient for a random upstream one."""
    tol = _CONV_TOL[dtype]
    ours_in = [None if a is None else ours_tensor(a, device, True) for a in arrays]
    torch_in = [None if a is None else torch_tensor(a, device, True) for a in arrays]
    y, ty = ours_fn(*ours_in), torch_fn(*torch_in)
    assert_close(y, ty, tol=tol, what="output")
    g = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(ours_tensor(g, device))
    ty.backward(torch_tensor(g, device))
    for i, (a, b) in enumerate(zip(ours_in, torch_in)):
        if a is not None:
            assert_close(a.grad, b.grad, tol=tol, what=f"gradient of input {i}")


@st.composite
def conv_cases(draw, transposed: bool = False):
    """(d, x shape, weight shape, bias?, kwargs) for a valid conv (or transposed conv) call."""
    d = draw(st.sampled_from([1, 1, 2, 2, 2, 3]))
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3 if d < 3 else 2)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    uniform_stride = draw(st.booleans())
    if uniform_stride:
        stride = (stride[0],) * d
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    extent = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    kwargs = dict(stride=stride[0] if uniform_stride else stride, dilation=dilation, groups=groups)
    if transposed:
        pad = tuple(draw(st.integers(0, (e - 1) // 2)) for e in extent)
        kwargs["padding"] = pad
        kwargs["output_padding"] = tuple(draw(st.integers(0, max(s, dl) - 1)) for s, dl in zip(stride, dilation))
        size = tuple(draw(st.integers(1, 5 if d < 3 else 3)) for _ in range(d))
        weight = (cin, cout // groups) + kernel
    else:
        choices = ["int", "tuple", "valid"] + (["same"] if all(s == 1 for s in stride) else [])
        kind = draw(st.sampled_from(choices))
        if kind == "same":
            kwargs["stride"] = 1
            pads = [0] * d
        elif kind == "valid":
            pads = [0] * d
        else:
            pads = [draw(st.integers(0, 2)) for _ in range(d)]
            if kind == "int":
                pads = [pads[0]] * d
        kwargs["padding"] = {"same": "same", "valid": "valid", "int": pads[0], "tuple": tuple(pads)}[kind]
        size = tuple(draw(st.integers(max(1, e - 2 * p), max(1, e - 2 * p) + (5 if d < 3 else 2)))
                     for e, p in zip(extent, pads))
        weight = (cout, cin // groups) + kernel
    batch = draw(st.integers(1, 3))
    x_shape = (batch, cin) + size if draw(st.integers(0, 4)) else (cin,) + size
    return d, x_shape, weight, draw(st.booleans()), kwargs


def _arrays(rng, x_shape, w_shape, bias_len, dtype):
    return [rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(bias_len).astype(dtype) if bias_len else None]


@_SETTINGS
@given(case=conv_cases(), dtype=DTYPES, seed=st.integers(0, 2 ** 32 - 1))
def test_conv_matches_torch_forward_and_gradients(device, case, dtype, seed):
    d, x_shape, w_shape, bias, kwargs = case
    ours, theirs = getattr(F, f"conv{d}d"), getattr(torch.nn.functional, f"conv{d}d")
    arrays = _arrays(np.random.default_rng(seed), x_shape, w_shape, w_shape[0] if bias else 0, dtype)
    _check_forward_backward(lambda x, w, b: ours(x, w, b, **kwargs), lambda x, w, b: theirs(x, w, b, **kwargs),
                            arrays, device, dtype, seed + 1)


@_SETTINGS
@given(case=conv_cases(transposed=True), dtype=DTYPES, seed=st.integers(0, 2 ** 32 - 1))
def test_conv_transpose_matches_torch_forward_and_gradients(device, case, dtype, seed):
    d, x_shape, w_shape, bias, kwargs = case
    ours = getattr(F, f"conv_transpose{d}d")
    theirs = getattr(torch.nn.functional, f"conv_transpose{d}d")
    c_out = w_shape[1] * kwargs["groups"]
    arrays = _arrays(np.random.default_rng(seed), x_shape, w_shape, c_out if bias else 0, dtype)
    _check_forward_backward(lambda x, w, b: ours(x, w, b, **kwargs), lambda x, w, b: theirs(x, w, b, **kwargs),
                            arrays, device, dtype, seed + 1)


def _second_derivatives(lib, fn, x, w, go):
    """Gradients of ``<grad_x, r1> + <grad_w, r2>`` (the first derivatives built with create_graph) with respect to
    x, w and the upstream gradient: exercises every derivative of the conv maps."""
    grad = lib.autograd.grad
    y = fn(x, w)
    gx, gw = grad(y, (x, w), go, create_graph=True)
    s = (gx * gx).sum() + (gw * gw.tanh()).sum()
    return grad(s, (x, w, go))


@_FEWER
@given(case=conv_cases(), transposed=st.booleans(), dtype=DTYPES, seed=st.integers(0, 2 ** 32 - 1))
def test_conv_second_derivatives_match_torch(device, case, transposed, dtype, seed):
    d, x_shape, w_shape, _, kwargs = case
    if transposed:
        kwargs = dict(kwargs, padding=0, output_padding=0)
        w_shape = (x_shape[-d - 1],) + w_shape[1:]
        name = f"conv_transpose{d}d"
    else:
        name = f"conv{d}d"
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    rng = np.random.default_rng(seed)
    x, tx = _pair(rng, x_shape, dtype, device)
    w, tw = _pair(rng, w_shape, dtype, device)
    out_shape = tuple(theirs(tx, tw, **kwargs).shape)
    go, tgo = _pair(rng, out_shape, dtype, device)
    got = _second_derivatives(tinyautograd, lambda a, b: ours(a, b, **kwargs), x, w, go)
    want = _second_derivatives(torch, lambda a, b: theirs(a, b, **kwargs), tx, tw, tgo)
    for name_, a, b in zip(("x", "weight", "grad_output"), got, want):
        assert_close(a, b, tol=_GRAD2_TOL[dtype], what=f"second derivative for {name_}")


@pytest.mark.parametrize("fn, kwargs, x_shape, w_shape", [
    ("conv2d", dict(stride=2, padding=1, dilation=1, groups=2), (2, 4, 5, 4), (2, 2, 3, 2)),
    ("conv1d", dict(padding="same", dilation=2), (1, 2, 6), (3, 2, 2)),
    ("conv_transpose2d", dict(stride=2, padding=1, output_padding=1), (1, 2, 3, 3), (2, 3, 3, 3)),
    ("conv_transpose1d", dict(stride=3, dilation=2, groups=2), (2, 2, 3), (2, 1, 2)),
])
def test_conv_gradients_match_finite_differences(fn, kwargs, x_shape, w_shape):
    rng = np.random.default_rng(0)
    x = tinyautograd.tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = tinyautograd.tensor(rng.standard_normal(w_shape), requires_grad=True)
    c_out = w_shape[0] if fn.startswith("conv") and "transpose" not in fn else w_shape[1] * kwargs.get("groups", 1)
    b = tinyautograd.tensor(rng.standard_normal(c_out), requires_grad=True)
    f = getattr(F, fn)
    assert tinyautograd.autograd.gradcheck(lambda x, w, b: f(x, w, b, **kwargs), (x, w, b))
    assert tinyautograd.autograd.gradgradcheck(lambda x, w: f(x, w, None, **kwargs), (x, w))


# ---------------------------------------------------------------------------------------------------------------
# unfold / fold

@st.composite
def fold_cases(draw):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    size = tuple(draw(st.integers(max(1, dl * (k - 1) + 1 - 2 * p), 7))
                 for k, dl, p in zip(kernel, dilation, padding))
    return dict(kernel_size=kernel, dilation=dilation, padding=padding, stride=stride), size


@_SETTINGS
@given(case=fold_cases(), batched=st.booleans(), channels=st.integers(1, 3), dtype=DTYPES,
       seed=st.integers(0, 2 ** 32 - 1))
def test_unfold_and_fold_match_torch(device, case, batched, channels, dtype, seed):
    kwargs, size = case
    lead = (2, channels) if batched else (channels,)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(lead + size).astype(dtype)
    _check_forward_backward(lambda t, _: F.unfold(t, **kwargs), lambda t, _: torch.nn.functional.unfold(t, **kwargs),
                            [x, None], device, dtype, seed + 1)
    cols_shape = tuple(torch.nn.functional.unfold(torch.from_numpy(x), **kwargs).shape)
    cols = rng.standard_normal(cols_shape).astype(dtype)
    _check_forward_backward(lambda t, _: F.fold(t, size, **kwargs),
                            lambda t, _: torch.nn.functional.fold(t, size, **kwargs), [cols, None], device, dtype,
                            seed + 2)


def test_unfold_fold_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    kwargs = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
    x = tinyautograd.tensor(rng.standard_normal((1, 2, 4, 5)), requires_grad=True)
    assert tinyautograd.autograd.gradcheck(lambda t: F.unfold(t, **kwargs), (x,))
    cols = tinyautograd.tensor(rng.standard_normal(tuple(F.unfold(x, **kwargs).shape)), requires_grad=True)
    assert tinyautograd.autograd.gradcheck(lambda t: F.fold(t, (4, 5), **kwargs), (cols,))
    assert tinyautograd.autograd.gradgradcheck(lambda t: F.fold(t, (4, 5), **kwargs) ** 2, (cols,))


# ---------------------------------------------------------------------------------------------------------------
# layers

def _load_from_torch(ours: nn.Module, theirs: torch.nn.Module) -> None:
    ours.load_state_dict({k: tinyautograd.tensor(to_numpy(v)) for k, v in theirs.state_dict().items()})


LAYERS = [
    ("Conv1d", (3, 4, 3), dict(stride=2, padding=1, bias=False), (2, 3, 9)),
    ("Conv1d", (2, 4, 4), dict(padding="same", padding_mode="circular", dilation=2, groups=2), (2, 2, 11)),
    ("Conv2d", (1, 6, 5), {}, (2, 1, 12, 12)),
    ("Conv2d", (4, 6, (3, 2)), dict(padding="same", padding_mode="reflect", groups=2), (2, 4, 7, 6)),
    ("Conv2d", (3, 2, 3), dict(padding=(2, 1), padding_mode="replicate", stride=(1, 2)), (3, 7, 6)),
    ("Conv2d", (3, 2, 3), dict(padding="valid", dilation=(2, 1)), (1, 3, 7, 6)),
    ("Conv3d", (2, 3, 2), dict(padding=1, padding_mode="circular"), (1, 2, 4, 3, 5)),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=2, output_padding=1), (2, 3, 5)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1), (2, 4, 4, 5)),
    ("ConvTranspose2d", (2, 3, (2, 3)), dict(dilation=2, bias=False), (2, 3, 4)),
    ("ConvTranspose3d", (2, 2, 2), dict(stride=2), (1, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_with_torch_weights_matches_torch(device, name, args, kwargs, x_shape, dtype):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(device=device, dtype=getattr(torch, dtype))
    ours = getattr(nn, name)(*args, **kwargs, dtype=getattr(tinyautograd, dtype))
    _load_from_torch(ours, theirs)
    ours.to(device)
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(p.shape)) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in theirs.named_parameters()]
    rng = np.random.default_rng(0)
    x, tx = _pair(rng, x_shape, dtype, device)
    y, ty = ours(x), theirs(tx)
    tol = _CONV_TOL[dtype]
    assert_close(y, ty, tol=tol)
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(ours_tensor(g, device))
    ty.backward(torch_tensor(g, device))
    assert_close(x.grad, tx.grad, tol=tol, what="input gradient")
    for (k, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, tp.grad, tol=tol, what=f"gradient of {k}")


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
def test_torch_loads_our_state_dict_and_gives_the_same_outputs(name, args, kwargs, x_shape):
    tinyautograd.manual_seed(3)
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    theirs.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(x_shape).astype("float32")
    assert_close(ours(tinyautograd.tensor(x)), theirs(torch.from_numpy(x)).detach(), tol=_CONV_TOL["float32"])


def test_conv_transpose_output_size_picks_the_output_padding_as_torch():
    ours, theirs = nn.ConvTranspose2d(2, 3, 3, stride=3), torch.nn.ConvTranspose2d(2, 3, 3, stride=3)
    _load_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype("float32")
    for size in ([13, 14], [1, 3, 12, 13]):
        assert_close(ours(tinyautograd.tensor(x), output_size=size), theirs(torch.from_numpy(x), output_size=size),
                     tol=_CONV_TOL["float32"])
    with pytest.raises(ValueError, match="valid sizes range"):
        ours(tinyautograd.tensor(x), output_size=[16, 12])


@pytest.mark.parametrize("name, args", [("Conv1d", (3, 8, 5)), ("Conv2d", (6, 16, (5, 3))),
                                        ("Conv2d", (4, 4, 3, 1, 0, 1, 2)), ("ConvTranspose2d", (6, 4, 3))])
def test_default_initialisation_follows_torch_bounds(name, args):
    """kaiming_uniform_(a=sqrt(5)) gives weights uniform in +-1/sqrt(fan_in); the bias uses the same bound."""
    tinyautograd.manual_seed(0)
    layer = getattr(nn, name)(*args)
    w = layer.weight.detach().cpu().numpy()
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    for values in (w, layer.bias.detach().cpu().numpy()):
        assert np.abs(values).max() <= bound
    # uniform over the whole range, not a narrower one: the extremes come close to the bound
    assert np.abs(w).max() > 0.8 * bound and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.3)


def test_conv_leaves_its_inputs_unchanged_and_gradients_own_their_memory():
    rng = np.random.default_rng(0)
    x_np, w_np = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    x = tinyautograd.tensor(x_np.copy(), requires_grad=True)
    w = tinyautograd.tensor(w_np.copy(), requires_grad=True)
    F.conv2d(x, w, padding=1, stride=2).sum().backward()
    np.testing.assert_array_equal(x.detach().cpu().numpy(), x_np)
    np.testing.assert_array_equal(w.detach().cpu().numpy(), w_np)
    grad = x.grad.cpu().numpy()
    assert not np.shares_memory(grad, x.detach().cpu().numpy()) and grad.flags.c_contiguous


def test_conv_output_is_contiguous_so_view_works_as_in_torch():
    x = tinyautograd.randn(4, 3, 8, 8)
    y = nn.Conv2d(3, 5, 3)(x)
    assert y.view(4, -1).shape == (4, 5 * 36)


def test_second_backward_without_retain_graph_raises():
    x = tinyautograd.randn(1, 2, 5, 5, requires_grad=True)
    y = F.conv2d(x, tinyautograd.randn(3, 2, 3, 3, requires_grad=True)).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_conv_grad_fn_names_match_torch():
    x = tinyautograd.randn(1, 2, 5, 5, requires_grad=True)
    w = tinyautograd.randn(3, 2, 3, 3)
    assert F.conv2d(x, w).grad_fn.name() == "ConvolutionBackward0"
    assert F.conv_transpose2d(x, w.transpose(0, 1)).grad_fn.name() == "ConvolutionBackward0"
    assert F.fold(F.unfold(x, 2), (5, 5), 2).grad_fn.name() == "Col2ImBackward0"


# ---------------------------------------------------------------------------------------------------------------
# errors: the same exception type as torch, and a message that says what is wrong

def _bad_calls(lib):
    fn = lib.nn.functional
    randn = lib.randn
    x, w = randn(2, 3, 8, 8), randn(4, 3, 3, 3)
    return {
        "input dims": (lambda: fn.conv2d(randn(2, 3), w), "Expected 3D \\(unbatched\\) or 4D"),
        "channels": (lambda: fn.conv2d(randn(2, 2, 8, 8), w), "to have 3 channels, but got 2"),
        "groups channels": (lambda: fn.conv2d(x, w, groups=2), "to have 6 channels"),
        "kernel too big": (lambda: fn.conv2d(randn(2, 3, 2, 2), w), "Kernel size can't be greater"),
        "dtype": (lambda: fn.conv2d(x.double(), w), "(?i)double|float64"),
        "bias dtype": (lambda: fn.conv2d(x, w, randn(4).double()), "bias type"),
        "bias size": (lambda: fn.conv2d(x, w, randn(5)), "expected bias to be 1-dimensional with 4 elements"),
        "stride zero": (lambda: fn.conv2d(x, w, stride=0), "non-positive stride"),
        "negative padding": (lambda: fn.conv2d(x, w, padding=-1), "negative padding"),
        "same with stride": (lambda: fn.conv2d(x, w, padding="same", stride=2), "strided convolutions"),
        "bad padding string": (lambda: fn.conv2d(x, w, padding="foo"), "Invalid padding string"),
        "stride length": (lambda: fn.conv2d(x, w, stride=(1, 1, 1)), "stride"),
        "transpose channels": (lambda: fn.conv_transpose2d(x, randn(4, 3, 3, 3)), "to have 4 channels"),
        "output padding": (lambda: fn.conv_transpose2d(x, randn(3, 3, 3, 3), output_padding=1),
                           "output padding must be smaller than either stride or dilation"),
        "unfold too small": (lambda: fn.unfold(x, 9), "calculated shape of the array of sliding blocks"),
        "fold channels": (lambda: fn.fold(randn(2, 13, 9), (4, 4), 2), "divisible by the product of kernel_size"),
        "fold blocks": (lambda: fn.fold(randn(2, 12, 10), (4, 4), 2), "number of sliding blocks"),
        "layer groups": (lambda: lib.nn.Conv2d(3, 4, 3, groups=2), "in_channels must be divisible by groups"),
        "layer padding mode": (lambda: lib.nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
        "layer same stride": (lambda: lib.nn.Conv2d(3, 4, 3, stride=2, padding="same"), "strided convolutions"),
        "transpose padding mode": (lambda: lib.nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"),
                                   'Only "zeros" padding mode'),
    }


@pytest.mark.parametrize("case", sorted(_bad_calls(tinyautograd)))
def test_bad_calls_raise_like_torch(case):
    ours, pattern = _bad_calls(tinyautograd)[case]
    theirs, _ = _bad_calls(torch)[case]
    with pytest.raises(Exception) as torch_error:
        theirs()
    with pytest.raises(type(torch_error.value), match=pattern):
        ours()


def test_an_empty_batch_gives_an_empty_result_and_zero_weight_gradient_as_torch():
    x = tinyautograd.zeros(0, 3, 5, 5, requires_grad=True)
    w = tinyautograd.randn(4, 3, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert tuple(y.shape) == tuple(torch.nn.functional.conv2d(torch.zeros(0, 3, 5, 5), torch.zeros(4, 3, 3, 3),
                                                              padding=1).shape)
    y.sum().backward()
    assert x.grad.shape == x.shape and not w.grad.cpu().numpy().any()
