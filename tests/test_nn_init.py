"""nn.init and the layers' default initialisations against torch: exact for the deterministic initialisers, and
for the random ones the same distribution (two-sample Kolmogorov-Smirnov test against torch's samples, plus the
exact bounds). The numbers themselves differ: the two libraries have different random streams."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyautograd
import tinyautograd.nn as nn
import tinyautograd.nn.init as init

# every test on each device: its tensors are made on the default device (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

# two-sample KS critical value at significance 1e-4: c(alpha) = sqrt(-ln(alpha / 2) / 2)
KS_C = math.sqrt(-math.log(1e-4 / 2) / 2)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup |F_a - F_b| of the two empirical distribution functions."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def assert_same_distribution(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    n, m = ours.size, theirs.size
    critical = KS_C * math.sqrt((n + m) / (n * m))
    d = ks_statistic(ours, theirs)
    assert d < critical, f"{what}: KS statistic {d:.4f} >= {critical:.4f} (distributions differ)"
    # the scale, more sharply than KS: a sample std's relative error is about 1/sqrt(2n); allow 6 of those
    ratio = ours.std() / theirs.std()
    assert abs(ratio - 1) < 6 * (math.sqrt(1 / (2 * n)) + math.sqrt(1 / (2 * m))), f"{what}: std ratio {ratio:.4f}"


def samples(make_ours, make_torch, seed: int):
    tinyautograd.manual_seed(seed)
    torch.manual_seed(seed)
    return make_ours().detach().cpu().numpy().astype(np.float64), make_torch().detach().cpu().numpy().astype(np.float64)


SHAPES = st.sampled_from([(64, 48), (40, 30, 3), (24, 16, 3, 3), (300, 10), (10, 300)])


def test_calculate_gain_matches_torch():
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    for slope in [None, 0, 0.1, 0.2, 1]:
        assert init.calculate_gain("leaky_relu", slope) == torch.nn.init.calculate_gain("leaky_relu", slope)
    for bad in [("leaky_relu", True), ("leaky_relu", "x"), ("softmax", None)]:
        with pytest.raises(ValueError):
            init.calculate_gain(*bad)
        with pytest.raises(ValueError):
            torch.nn.init.calculate_gain(*bad)


@given(st.lists(st.integers(1, 5), min_size=2, max_size=5))
def test_fan_in_and_fan_out_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(tinyautograd.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fan_needs_two_dimensions():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(tinyautograd.empty(3))


@settings(deadline=None, max_examples=6)
@given(SHAPES, st.floats(0.5, 2.0), st.integers(0, 1000))
def test_xavier_initialisers_match_torch_distribution(shape, gain, seed):
    ours, theirs = samples(lambda: init.xavier_uniform_(tinyautograd.empty(*shape), gain),
                           lambda: torch.nn.init.xavier_uniform_(torch.empty(*shape), gain), seed)
    assert_same_distribution(ours, theirs, "xavier_uniform_")
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(ours).max() <= bound
    ours, theirs = samples(lambda: init.xavier_normal_(tinyautograd.empty(*shape), gain),
                           lambda: torch.nn.init.xavier_normal_(torch.empty(*shape), gain), seed)
    assert_same_distribution(ours, theirs, "xavier_normal_")


@settings(deadline=None, max_examples=8)
@given(SHAPES, st.sampled_from([0, 0.1, math.sqrt(5)]), st.sampled_from(["fan_in", "fan_out", "FAN_IN"]),
       st.sampled_from(["leaky_relu", "relu", "tanh", "linear"]), st.integers(0, 1000))
def test_kaiming_initialisers_match_torch_distribution(shape, a, mode, nonlinearity, seed):
    kwargs = dict(a=a, mode=mode, nonlinearity=nonlinearity)
    ours, theirs = samples(lambda: init.kaiming_uniform_(tinyautograd.empty(*shape), **kwargs),
                           lambda: torch.nn.init.kaiming_uniform_(torch.empty(*shape), **kwargs), seed)
    assert_same_distribution(ours, theirs, "kaiming_uniform_")
    ours, theirs = samples(lambda: init.kaiming_normal_(tinyautograd.empty(*shape), **kwargs),
                           lambda: torch.nn.init.kaiming_normal_(torch.empty(*shape), **kwargs), seed)
    assert_same_distribution(ours, theirs, "kaiming_normal_")


def test_kaiming_rejects_unknown_mode_and_skips_empty_tensors():
    with pytest.raises(ValueError, match="not supported"):
        init.kaiming_uniform_(tinyautograd.empty(3, 3), mode="fan_avg")
    with pytest.warns(UserWarning, match="no-op"):
        init.kaiming_normal_(tinyautograd.empty(0, 3))


@settings(deadline=None, max_examples=6)
@given(st.floats(-1.0, 1.0), st.floats(0.2, 2.0), st.floats(-2.5, -0.5), st.floats(0.5, 2.5), st.integers(0, 1000))
def test_uniform_normal_and_trunc_normal_match_torch_distribution(mean, std, a, b, seed):
    shape = (60, 50)
    ours, theirs = samples(lambda: init.uniform_(tinyautograd.empty(*shape), a, b),
                           lambda: torch.nn.init.uniform_(torch.empty(*shape), a, b), seed)
    assert_same_distribution(ours, theirs, "uniform_")
    assert ours.min() >= a and ours.max() <= b
    ours, theirs = samples(lambda: init.normal_(tinyautograd.empty(*shape), mean, std),
                           lambda: torch.nn.init.normal_(torch.empty(*shape), mean, std), seed)
    assert_same_distribution(ours, theirs, "normal_")
    lo, hi = mean + a * std, mean + b * std
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = samples(lambda: init.trunc_normal_(tinyautograd.empty(*shape), mean, std, lo, hi),
                               lambda: torch.nn.init.trunc_normal_(torch.empty(*shape), mean, std, lo, hi), seed)
    assert_same_distribution(ours, theirs, "trunc_normal_")
    assert ours.min() >= lo and ours.max() <= hi


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (4, 2, 3)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    w = init.orthogonal_(tinyautograd.empty(*shape), gain=2.0).detach().cpu().numpy().reshape(shape[0], -1) / 2.0
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


def test_deterministic_initialisers_equal_torch():
    for shape in [(3, 3), (2, 4)]:
        np.testing.assert_array_equal(init.eye_(tinyautograd.empty(*shape)).cpu().numpy(),
                                      torch.nn.init.eye_(torch.empty(*shape)).cpu().numpy())
    for shape, groups in [((4, 2, 3), 1), ((4, 2, 3, 3), 2), ((2, 3, 1, 3, 3), 1)]:
        np.testing.assert_array_equal(init.dirac_(tinyautograd.empty(*shape), groups).cpu().numpy(),
                                      torch.nn.init.dirac_(torch.empty(*shape), groups).cpu().numpy())
    assert (init.constant_(tinyautograd.empty(2, 2), 0.3).cpu().numpy() == np.float32(0.3)).all()
    assert (init.ones_(tinyautograd.empty(3)).cpu().numpy() == 1).all()
    assert not init.zeros_(tinyautograd.ones(3)).cpu().numpy().any()
    with pytest.raises(ValueError):
        init.eye_(tinyautograd.empty(2, 2, 2))


def test_initialisers_work_on_parameters_without_recording():
    p = nn.Parameter(tinyautograd.empty(4, 4))
    for fn in (init.xavier_uniform_, init.kaiming_normal_, init.ones_, init.orthogonal_,
               lambda t: init.trunc_normal_(t, std=0.02)):
        out = fn(p)
        assert out is p and p.grad_fn is None and p.requires_grad


def test_sparse_zeroes_a_fraction_of_each_column():
    w = init.sparse_(tinyautograd.empty(10, 6), sparsity=0.3).cpu().numpy()
    assert ((w == 0).sum(axis=0) >= 3).all()


# -- the layers' default initialisations --------------------------------------------------------------------------

DEFAULT_INITS = {
    "Linear.weight": lambda lib: lib.Linear(50, 40).weight,
    "Linear.bias": lambda lib: lib.Linear(30, 2000).bias,
    "Bilinear.weight": lambda lib: lib.Bilinear(20, 7, 30).weight,
    "Bilinear.bias": lambda lib: lib.Bilinear(20, 7, 2000).bias,
    "Embedding.weight": lambda lib: lib.Embedding(100, 30).weight,
}


@pytest.mark.parametrize("name", list(DEFAULT_INITS))
@pytest.mark.parametrize("seed", [0, 1])
def test_default_layer_initialisation_matches_torch_distribution(name, seed):
    make = DEFAULT_INITS[name]
    ours, theirs = samples(lambda: make(nn), lambda: make(torch.nn), seed)
    assert_same_distribution(ours, theirs, name)


def test_linear_default_bounds_are_one_over_sqrt_fan_in():
    lin = nn.Linear(16, 500)
    bound = 1 / math.sqrt(16)
    for p in (lin.weight, lin.bias):
        values = p.detach().cpu().numpy()
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.9 * bound  # the whole range is used


def test_layer_default_dtype_and_device_arguments():
    lin = nn.Linear(2, 3, dtype=tinyautograd.float64)
    assert lin.weight.dtype == tinyautograd.float64 and lin.bias.dtype == tinyautograd.float64
    bn = nn.BatchNorm1d(3, dtype=tinyautograd.float64)
    assert bn.running_mean.dtype == tinyautograd.float64 and bn.num_batches_tracked.dtype == tinyautograd.int64
    assert nn.Embedding(3, 2, device="cpu").weight.device.type == "cpu"
