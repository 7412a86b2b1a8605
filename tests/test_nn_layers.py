"""Every layer and activation module against torch: weights copied from torch through NumPy, then outputs, input
gradients, parameter gradients and buffers compared, in float32 and float64, train and eval, on each device."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinyautograd
import tinyautograd.nn as nn
from helpers import assert_close, settled, to_numpy

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

DTYPES = st.sampled_from(["float32", "float64"])
SEEDS = st.integers(0, 2 ** 31 - 1)
# the device fixture is a constant string: sharing it across examples is safe
FIXTURE_OK = list(settings.default.suppress_health_check) + [HealthCheck.function_scoped_fixture]
# torch gained BatchNorm's keyword-only `bias` in 2.13 (the CI pin); the GPU image may carry an older torch
TORCH_BATCHNORM_HAS_BIAS = "bias" in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def ours_dtype(name: str):
    return getattr(tinyautograd, name)


def twin(make, device: str, dtype: str):
    """The same layer in both libraries, ours holding torch's weights (copied through NumPy)."""
    theirs = make(torch.nn).to(device=device, dtype=torch_dtype(dtype))
    ours = make(nn).to(device=device, dtype=ours_dtype(dtype))
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def run_and_compare(ours, theirs, inputs: list, dtype: str, device: str, rng, *, grad: bool = True,
                    what: str = "") -> None:
    """Forward both modules on ``inputs`` (NumPy arrays; float ones require grad), backward a random upstream
    gradient, and compare outputs, input gradients, parameter gradients and every state_dict entry."""
    tin_ours, tin_torch = [], []
    for a in inputs:
        floating = a.dtype.kind == "f"
        a = a.astype(dtype) if floating else a
        tin_ours.append(tinyautograd.tensor(a.copy(), device=device, requires_grad=floating and grad))
        tin_torch.append(torch.tensor(a.copy(), device=device, requires_grad=floating and grad))
    y_ours = ours(*tin_ours)
    y_torch = theirs(*tin_torch)
    assert_close(y_ours, y_torch, dtype, what=f"{what} output")
    if grad and y_torch.requires_grad:
        g = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
        y_ours.backward(tinyautograd.tensor(g, device=device))
        y_torch.backward(torch.tensor(g, device=device))
        for i, (a, b) in enumerate(zip(tin_ours, tin_torch)):
            if b.grad is not None:
                assert_close(a.grad, b.grad, dtype, what=f"{what} grad of input {i}")
        params_torch = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            q = params_torch[name]
            if q.grad is None:
                assert p.grad is None or not to_numpy(p.grad).any(), f"{what} {name}: torch has no gradient"
            else:
                assert_close(p.grad, q.grad, dtype, what=f"{what} grad of {name}")
        ours.zero_grad()
        theirs.zero_grad()
    sd_torch = theirs.state_dict()
    for name, v in ours.state_dict().items():
        assert_close(v, sd_torch[name], dtype, what=f"{what} state {name}")


# -- Linear, Bilinear, Identity, Flatten ------------------------------------------------------------------------

@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(1, 6), st.integers(1, 6), st.booleans(), st.lists(st.integers(1, 4), max_size=2), DTYPES, SEEDS)
def test_linear_matches_torch(device, in_f, out_f, bias, lead, dtype, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = twin(lambda lib: lib.Linear(in_f, out_f, bias=bias), device, dtype)
    run_and_compare(ours, theirs, [rng.standard_normal((*lead, in_f))], dtype, device, rng, what="Linear")


@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.booleans(), st.integers(1, 3), DTYPES, SEEDS)
def test_bilinear_matches_torch(device, in1, in2, out_f, bias, n, dtype, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = twin(lambda lib: lib.Bilinear(in1, in2, out_f, bias=bias), device, dtype)
    run_and_compare(ours, theirs, [rng.standard_normal((n, in1)), rng.standard_normal((n, in2))], dtype, device,
                    rng, what="Bilinear")


@pytest.mark.parametrize("make, shape", [
    (lambda lib: lib.Identity(3, unused=True), (2, 3)),
    (lambda lib: lib.Flatten(), (2, 3, 4)),
    (lambda lib: lib.Flatten(0, 1), (2, 3, 4)),
    (lambda lib: lib.Unflatten(1, (2, 3)), (4, 6)),
    (lambda lib: lib.Unflatten(-1, [3, 1]), (2, 3)),
])
def test_shape_layers_match_torch(device, make, shape):
    rng = np.random.default_rng(0)
    ours, theirs = twin(make, device, "float64")
    run_and_compare(ours, theirs, [rng.standard_normal(shape)], "float64", device, rng)
    assert repr(ours) == repr(theirs)


# -- normalisation ----------------------------------------------------------------------------------------------

@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.sampled_from(["1d-2", "1d-3", "2d", "3d"]), st.integers(1, 4), st.integers(2, 5),
       st.sampled_from([0.1, 0.5, None]), st.sampled_from([1e-5, 1e-3]), st.booleans(), st.booleans(),
       st.booleans(), DTYPES, SEEDS)
def test_batch_norm_matches_torch_over_steps(device, kind, channels, batch, momentum, eps, affine, track, bias,
                                             dtype, seed):
    rng = np.random.default_rng(seed)
    cls = {"1d-2": "BatchNorm1d", "1d-3": "BatchNorm1d", "2d": "BatchNorm2d", "3d": "BatchNorm3d"}[kind]
    spatial = {"1d-2": (), "1d-3": (3,), "2d": (2, 3), "3d": (2, 1, 2)}[kind]
    extra = {"bias": bias} if TORCH_BATCHNORM_HAS_BIAS else {}
    ours, theirs = twin(lambda lib: getattr(lib, cls)(channels, eps=eps, momentum=momentum, affine=affine,
                                                      track_running_stats=track, **extra), device, dtype)
    shape = (batch, channels) + spatial
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + rng.standard_normal((1, channels) + (1,) * len(spatial))
        run_and_compare(ours, theirs, [x], dtype, device, rng, what=f"{cls} train step {step}")
    ours.eval()
    theirs.eval()
    run_and_compare(ours, theirs, [rng.standard_normal(shape)], dtype, device, rng, what=f"{cls} eval")
    if track:
        assert int(ours.num_batches_tracked.item()) == 3


def test_batch_norm_rejects_wrong_rank_and_single_value_batches():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(tinyautograd.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tinyautograd.randn(1, 3))
    nn.BatchNorm1d(3).eval()(tinyautograd.randn(1, 3))


@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 2), st.booleans(), st.booleans(),
       st.sampled_from([1e-5, 1e-2]), DTYPES, SEEDS)
def test_layer_norm_matches_torch(device, shape, k, affine, bias, eps, dtype, seed):
    rng = np.random.default_rng(seed)
    k = min(k, len(shape))
    normalized = tuple(shape[len(shape) - k:])
    assume(int(np.prod(normalized)) > 1)  # single-element groups: see test_single_element_groups_normalise_to_zero
    ours, theirs = twin(lambda lib: lib.LayerNorm(normalized, eps=eps, elementwise_affine=affine, bias=bias),
                        device, dtype)
    if affine:
        # torch starts at ones/zeros: perturb so the affine gradients are exercised
        sd = {n: v + rng.standard_normal(v.shape).astype(v.dtype) for n, v in
              ((n, v.detach().cpu().numpy()) for n, v in theirs.state_dict().items())}
        theirs.load_state_dict({n: torch.tensor(v, device=device) for n, v in sd.items()})
        ours.load_state_dict(sd)
    run_and_compare(ours, theirs, [rng.standard_normal(shape) * 3 + 1], dtype, device, rng, what="LayerNorm")


@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.sampled_from([(1, 4), (2, 4), (4, 4), (3, 6)]), st.integers(1, 3), st.lists(st.integers(1, 3), max_size=2),
       st.booleans(), DTYPES, SEEDS)
def test_group_norm_matches_torch(device, groups_channels, batch, spatial, affine, dtype, seed):
    rng = np.random.default_rng(seed)
    groups, channels = groups_channels
    assume(channels // groups * int(np.prod(spatial)) > 1)
    ours, theirs = twin(lambda lib: lib.GroupNorm(groups, channels, affine=affine), device, dtype)
    run_and_compare(ours, theirs, [rng.standard_normal((batch, channels, *spatial))], dtype, device, rng,
                    what="GroupNorm")


@pytest.mark.parametrize("make", [lambda: nn.LayerNorm(1), lambda: nn.GroupNorm(3, 3)])
def test_single_element_groups_normalise_to_zero(make):
    # a group of one value has zero variance: the output is the bias and no gradient reaches the input. (torch's
    # float32 kernels give the same up to rounding amplified by 1/sqrt(eps), too much for a tolerance check)
    layer = make()
    with tinyautograd.no_grad():
        layer.bias.fill_(0.5)
    x = tinyautograd.randn(4, 3 if isinstance(layer, nn.GroupNorm) else 1, requires_grad=True)
    y = layer(x)
    np.testing.assert_array_equal(y.detach().cpu().numpy(), np.full(tuple(x.shape), 0.5, np.float32))
    (y * tinyautograd.randn(*x.shape)).sum().backward()
    assert not x.grad.cpu().numpy().any()


# -- embedding --------------------------------------------------------------------------------------------------

@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(2, 8), st.integers(1, 4), st.one_of(st.none(), st.integers(-2, 1)),
       st.lists(st.integers(1, 4), min_size=1, max_size=2), st.booleans(), DTYPES, SEEDS)
def test_embedding_matches_torch(device, num, dim, padding_idx, idx_shape, by_freq, dtype, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = twin(lambda lib: lib.Embedding(num, dim, padding_idx=padding_idx, scale_grad_by_freq=by_freq),
                        device, dtype)
    idx = rng.integers(0, num, idx_shape)
    run_and_compare(ours, theirs, [idx], dtype, device, rng, what="Embedding")
    if padding_idx is not None:
        assert not to_numpy(ours.weight)[padding_idx].any()


def test_embedding_max_norm_renormalises_like_torch():
    rng = np.random.default_rng(1)
    ours, theirs = twin(lambda lib: lib.Embedding(6, 3, max_norm=1.0), "cpu", "float64")
    idx = rng.integers(0, 6, (4,))
    run_and_compare(ours, theirs, [idx], "float64", "cpu", rng, what="Embedding max_norm")


def test_embedding_from_pretrained_is_frozen_and_shared():
    w = tinyautograd.randn(4, 2)
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(tinyautograd.tensor([3, 0])).cpu().numpy(), w.cpu().numpy()[[3, 0]])
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    with pytest.raises(IndexError):
        settled(emb(tinyautograd.tensor([4])))


# -- activations ------------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "ReLU": lambda lib: lib.ReLU(),
    "ReLU6": lambda lib: lib.ReLU6(),
    "LeakyReLU": lambda lib: lib.LeakyReLU(),
    "LeakyReLU(0.1)": lambda lib: lib.LeakyReLU(0.1),
    "ELU": lambda lib: lib.ELU(alpha=0.7),
    "SELU": lambda lib: lib.SELU(),
    "CELU": lambda lib: lib.CELU(alpha=1.3),
    "GELU": lambda lib: lib.GELU(),
    "GELU(tanh)": lambda lib: lib.GELU(approximate="tanh"),
    "SiLU": lambda lib: lib.SiLU(),
    "Mish": lambda lib: lib.Mish(),
    "Softplus": lambda lib: lib.Softplus(),
    "Softplus(2,1)": lambda lib: lib.Softplus(beta=2.0, threshold=1.0),
    "Sigmoid": lambda lib: lib.Sigmoid(),
    "Tanh": lambda lib: lib.Tanh(),
    "Hardtanh": lambda lib: lib.Hardtanh(-0.5, 1.5),
    "Softmax": lambda lib: lib.Softmax(dim=-1),
    "LogSoftmax": lambda lib: lib.LogSoftmax(dim=0),
    "Softmin": lambda lib: lib.Softmin(dim=-1),
    "Softsign": lambda lib: lib.Softsign(),
    "Tanhshrink": lambda lib: lib.Tanhshrink(),
    "Softshrink": lambda lib: lib.Softshrink(0.3),
    "Hardshrink": lambda lib: lib.Hardshrink(0.3),
    "Hardsigmoid": lambda lib: lib.Hardsigmoid(),
    "Hardswish": lambda lib: lib.Hardswish(),
    "Threshold": lambda lib: lib.Threshold(0.2, -1.0),
    "LogSigmoid": lambda lib: lib.LogSigmoid(),
    "GLU": lambda lib: lib.GLU(dim=-1),
    "PReLU": lambda lib: lib.PReLU(),
    "PReLU(C)": lambda lib: lib.PReLU(4, init=0.1),
}
# activations whose inplace=True variant exists in torch
INPLACE = {
    "ReLU": lambda lib: lib.ReLU(inplace=True),
    "ReLU6": lambda lib: lib.ReLU6(inplace=True),
    "LeakyReLU": lambda lib: lib.LeakyReLU(0.2, inplace=True),
    "ELU": lambda lib: lib.ELU(inplace=True),
    "SELU": lambda lib: lib.SELU(inplace=True),
    "CELU": lambda lib: lib.CELU(inplace=True),
    "SiLU": lambda lib: lib.SiLU(inplace=True),
    "Mish": lambda lib: lib.Mish(inplace=True),
    "Hardtanh": lambda lib: lib.Hardtanh(inplace=True),
    "Hardsigmoid": lambda lib: lib.Hardsigmoid(inplace=True),
    "Hardswish": lambda lib: lib.Hardswish(inplace=True),
    "Threshold": lambda lib: lib.Threshold(0.1, 2.0, inplace=True),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@settings(deadline=None, max_examples=8, suppress_health_check=FIXTURE_OK)
@given(st.integers(1, 3), DTYPES, st.sampled_from([1.0, 4.0]), SEEDS)
def test_activation_modules_match_torch(device, name, batch, dtype, scale, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = twin(ACTIVATIONS[name], device, dtype)
    assert repr(ours) == repr(theirs)
    x = rng.standard_normal((batch, 4, 2)).transpose(0, 2, 1).reshape(batch, 2, 4) * scale
    if name.startswith("PReLU"):
        x = rng.standard_normal((batch, 4, 3)) * scale
    run_and_compare(ours, theirs, [x], dtype, device, rng, what=name)


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_activations_match_torch_and_modify_their_input(device, name):
    rng = np.random.default_rng(3)
    ours_m, theirs_m = twin(INPLACE[name], device, "float64")
    assert repr(ours_m) == repr(theirs_m)
    x = rng.standard_normal((3, 5)) * 3
    xo = tinyautograd.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, device=device, requires_grad=True)
    ho, ht = xo * 1.0, xt * 1.0  # non-leaf inputs, as in-place ops need
    yo, yt = ours_m(ho), theirs_m(ht)
    assert yo is ho
    assert_close(ho, ht, "float64", what=f"{name} in place")
    g = rng.standard_normal(x.shape)
    yo.backward(tinyautograd.tensor(g, device=device))
    yt.backward(torch.tensor(g, device=device))
    assert_close(xo.grad, xt.grad, "float64", what=f"{name} grad")


def test_inplace_activation_on_a_leaf_that_requires_grad_raises():
    with pytest.raises(RuntimeError, match="leaf"):
        nn.ReLU(inplace=True)(tinyautograd.randn(3, requires_grad=True))
    with pytest.raises(RuntimeError, match="leaf"):
        nn.ELU(inplace=True)(tinyautograd.randn(3, requires_grad=True))


@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), DTYPES, SEEDS)
def test_maxout_is_the_max_over_groups_of_consecutive_features(device, batch, units, pieces, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, units * pieces)).astype(dtype)
    xo = tinyautograd.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, device=device, requires_grad=True)
    m = nn.Maxout(pieces)
    assert repr(m) == f"Maxout(num_pieces={pieces}, dim=1)"
    yo = m(xo)
    yt = xt.reshape(batch, units, pieces).amax(2)
    assert_close(yo, yt, dtype)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yo.backward(tinyautograd.tensor(g, device=device))
    yt.backward(torch.tensor(g, device=device))
    assert_close(xo.grad, xt.grad, dtype)


def test_maxout_after_linear_is_the_course_formula():
    lin = nn.Linear(3, 4)
    x = tinyautograd.randn(5, 3)
    y = nn.Maxout(2)(lin(x)).detach().cpu().numpy()
    w, b = lin.weight.detach().cpu().numpy(), lin.bias.detach().cpu().numpy()
    pre = x.cpu().numpy() @ w.T + b
    np.testing.assert_allclose(y, np.maximum(pre[:, 0::2], pre[:, 1::2]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="divisible"):
        nn.Maxout(2)(x)


# -- dropout ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"])
def test_dropout_is_identity_in_eval_and_reprs_match(cls):
    m = getattr(nn, cls)(0.3)
    assert repr(m) == repr(getattr(torch.nn, cls)(0.3))
    m.eval()
    x = tinyautograd.randn(2, 3, 4, 5, 2) if cls == "Dropout3d" else tinyautograd.randn(2, 3, 4, 5)
    if cls == "Dropout1d":
        x = tinyautograd.randn(2, 3, 4)
    assert m(x) is x


@settings(deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]), DTYPES, st.integers(0, 1000))
def test_dropout_training_zeroes_a_fraction_p_and_scales_survivors(device, p, dtype, seed):
    tinyautograd.manual_seed(seed)
    x = tinyautograd.ones(4000, dtype=ours_dtype(dtype), device=device, requires_grad=True)
    y = nn.Dropout(p)(x)
    values = to_numpy(y)
    kept = values != 0
    if p < 1:
        np.testing.assert_allclose(values[kept], 1 / (1 - p), rtol=1e-6)
    # binomial: 5 standard deviations
    assert abs((~kept).mean() - p) <= 5 * np.sqrt(p * (1 - p) / values.size) + 1e-12
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), values)


@pytest.mark.parametrize("cls, shape, channel_dims", [("Dropout2d", (8, 16, 3, 3), 2), ("Dropout1d", (8, 16, 5), 2),
                                                      ("Dropout1d", (16, 5), 1), ("Dropout3d", (4, 8, 2, 2, 2), 2)])
def test_channel_dropout_zeroes_whole_channels(cls, shape, channel_dims):
    tinyautograd.manual_seed(0)
    y = to_numpy(getattr(nn, cls)(0.5)(tinyautograd.ones(*shape)))
    per_channel = y.reshape(shape[:channel_dims] + (-1,))
    assert ((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1)).all()
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.8


def test_dropout_inplace_and_invalid_p():
    x = tinyautograd.ones(100)
    assert nn.Dropout(0.5, inplace=True)(x) is x
    assert set(np.unique(x.cpu().numpy())) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_training_default_initialisations_are_torchs():
    # exact values differ (different RNG) but constants must match torch
    bn, tbn = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    for k, v in tbn.state_dict().items():
        np.testing.assert_array_equal(bn.state_dict()[k].cpu().numpy(), v.cpu().numpy(), err_msg=k)
    ln, tln = nn.LayerNorm((2, 3)), torch.nn.LayerNorm((2, 3))
    for k, v in tln.state_dict().items():
        np.testing.assert_array_equal(ln.state_dict()[k].cpu().numpy(), v.cpu().numpy(), err_msg=k)
    assert (nn.PReLU(3).weight.detach().cpu().numpy() == np.float32(0.25)).all()
    emb = nn.Embedding(5, 2, padding_idx=1)
    assert not emb.weight.detach().cpu().numpy()[1].any()

