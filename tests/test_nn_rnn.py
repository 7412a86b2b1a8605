"""Recurrent layers against torch: RNN (tanh and relu), LSTM (with and without proj_size), GRU and the three cells.

Sizes, num_layers, bias, batch_first, bidirectional, sequence length, batch (or unbatched input) and whether an
initial state is passed are drawn by Hypothesis; with torch's weights loaded, the output, the final states and the
gradients of the input, the initial state and every parameter must match torch, in float32 (loose) and float64
(tight). Dropout between layers acts in training only; state_dicts move both ways; reprs, parameter names and
error types match torch.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyautograd
import tinyautograd.nn as nn
from helpers import Tolerance, assert_close, ours_tensor, to_numpy, tolerance, torch_tensor

# on cuda torch would round float32 convolutions and matmuls through TF32: compare against full float32
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
# the device fixture is a plain string: sharing it across Hypothesis examples is safe
_SETTINGS = settings(suppress_health_check=list(settings.default.suppress_health_check)
                     + [HealthCheck.function_scoped_fixture])
# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device). Torch's own notice that its oneDNN path has no LSTM projections is not about the code
# under test.
pytestmark = [pytest.mark.usefixtures("default_device"),
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")]
# errors compound over time steps and layers in float32
_TOL = {"float32": Tolerance(rtol=1e-4, atol=1e-5), "float64": tolerance("float64")}
DTYPES = st.sampled_from(["float32", "float64"])
SEEDS = st.integers(0, 2 ** 32 - 1)


def _pair_modules(name: str, args: tuple, kwargs: dict, dtype: str, device: str):
    """A torch module and ours with torch's (seeded) weights loaded through NumPy."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(device=device, dtype=getattr(torch, dtype))
    ours = getattr(nn, name)(*args, **kwargs, dtype=getattr(tinyautograd, dtype))
    ours.load_state_dict({k: tinyautograd.tensor(to_numpy(v)) for k, v in theirs.state_dict().items()})
    return ours.to(device), theirs


def _flatten(result) -> list:
    """(output, h_n) or (output, (h_n, c_n)) -> [output, h_n(, c_n)]; a cell's h or (h, c) likewise."""
    if not isinstance(result, tuple):
        return [result]
    out = []
    for r in result:
        out.extend(_flatten(r))
    return out


def _compare(ours, theirs, arrays: list, call, device: str, dtype: str, seed: int) -> None:
    """Call both modules via ``call(module, tensors)``; compare every result, then the gradients of the inputs
    and of all parameters for random upstream gradients."""
    tol = _TOL[dtype]
    xs = [ours_tensor(a, device, True) for a in arrays]
    txs = [torch_tensor(a, device, True) for a in arrays]
    results, tresults = _flatten(call(ours, xs)), _flatten(call(theirs, txs))
    assert len(results) == len(tresults)
    rng = np.random.default_rng(seed)
    loss, tloss = 0, 0
    for i, (r, tr) in enumerate(zip(results, tresults)):
        assert_close(r, tr, tol=tol, what=f"result {i}")
        g = rng.standard_normal(tuple(tr.shape)).astype(dtype)
        loss = loss + (r * ours_tensor(g, device)).sum()
        tloss = tloss + (tr * torch_tensor(g, device)).sum()
    loss.backward()
    tloss.backward()
    for i, (x, tx) in enumerate(zip(xs, txs)):
        assert_close(x.grad, tx.grad, tol=tol, what=f"gradient of argument {i}")
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, tp.grad, tol=tol, what=f"gradient of {name}")


@st.composite
def rnn_cases(draw):
    kind = draw(st.sampled_from(["RNN_TANH", "RNN_RELU", "LSTM", "LSTM_PROJ", "GRU"]))
    hidden = draw(st.integers(2 if kind == "LSTM_PROJ" else 1, 5))
    kwargs = dict(num_layers=draw(st.integers(1, 3)), bias=draw(st.booleans()), batch_first=draw(st.booleans()),
                  bidirectional=draw(st.booleans()))
    if kind.startswith("RNN"):
        kwargs["nonlinearity"] = "tanh" if kind == "RNN_TANH" else "relu"
    if kind == "LSTM_PROJ":
        kwargs["proj_size"] = draw(st.integers(1, hidden - 1))
    name = kind.split("_")[0] if kind != "LSTM_PROJ" else "LSTM"
    return name, (draw(st.integers(1, 4)), hidden), kwargs, draw(st.integers(1, 5)), draw(st.integers(0, 3)), \
        draw(st.booleans())


@_SETTINGS
@given(case=rnn_cases(), dtype=DTYPES, seed=SEEDS)
def test_recurrent_layer_matches_torch(device, case, dtype, seed):
    name, (input_size, hidden), kwargs, length, batch, with_state = case
    ours, theirs = _pair_modules(name, (input_size, hidden), kwargs, dtype, device)
    rng = np.random.default_rng(seed)
    lead = (length,) if batch == 0 else (batch, length) if kwargs["batch_first"] else (length, batch)
    arrays = [rng.standard_normal(lead + (input_size,)).astype(dtype)]
    layers = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
    state_lead = (layers,) if batch == 0 else (layers, batch)
    if with_state:
        arrays.append(rng.standard_normal(state_lead + (kwargs.get("proj_size") or hidden,)).astype(dtype))
        if name == "LSTM":
            arrays.append(rng.standard_normal(state_lead + (hidden,)).astype(dtype))

    def call(module, tensors):
        if len(tensors) == 1:
            return module(tensors[0])
        return module(tensors[0], tuple(tensors[1:]) if name == "LSTM" else tensors[1])

    _compare(ours, theirs, arrays, call, device, dtype, seed + 1)


@_SETTINGS
@given(name=st.sampled_from(["RNNCell", "LSTMCell", "GRUCell"]), sizes=st.tuples(st.integers(1, 4),
       st.integers(1, 5)), bias=st.booleans(), relu=st.booleans(), batch=st.integers(0, 3), with_state=st.booleans(),
       dtype=DTYPES, seed=SEEDS)
def test_cell_matches_torch(device, name, sizes, bias, relu, batch, with_state, dtype, seed):
    kwargs = dict(bias=bias)
    if name == "RNNCell":
        kwargs["nonlinearity"] = "relu" if relu else "tanh"
    ours, theirs = _pair_modules(name, sizes, kwargs, dtype, device)
    rng = np.random.default_rng(seed)
    lead = (batch,) if batch else ()
    arrays = [rng.standard_normal(lead + (sizes[0],)).astype(dtype)]
    if with_state:
        arrays += [rng.standard_normal(lead + (sizes[1],)).astype(dtype)
                   for _ in range(2 if name == "LSTMCell" else 1)]

    def call(module, tensors):
        if len(tensors) == 1:
            return module(tensors[0])
        return module(tensors[0], tuple(tensors[1:]) if name == "LSTMCell" else tensors[1])

    _compare(ours, theirs, arrays, call, device, dtype, seed + 1)


def test_gru_uses_torchs_reset_gate_placement():
    """n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): the reset gate multiplies the bias b_hn too."""
    cell = nn.GRUCell(1, 1)
    with tinyautograd.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_hh[2] = 1.0  # b_hn
        cell.bias_ih[0] = 50.0  # r = sigmoid(50) ~ 1
        cell.bias_ih[1] = -50.0  # z ~ 0: h' = n
    h = cell(tinyautograd.zeros(1, 1), tinyautograd.zeros(1, 1))
    assert h.item() == pytest.approx(math.tanh(1.0))


# ---------------------------------------------------------------------------------------------------------------
# dropout, state_dict, reprs, initialisation

@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_dropout_acts_between_layers_in_training_only(name, default_device):
    ours, theirs = _pair_modules(name, (3, 4), dict(num_layers=2, dropout=0.5), "float64", "cpu")
    ours.to(default_device)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    tinyautograd.manual_seed(1)
    first, second = ours(tinyautograd.tensor(x))[0], ours(tinyautograd.tensor(x))[0]
    assert not np.allclose(to_numpy(first), to_numpy(second)), "training outputs should differ between calls"
    ours.eval()
    theirs.eval()
    assert_close(ours(tinyautograd.tensor(x))[0], theirs(torch.from_numpy(x))[0].detach())


def test_dropout_on_a_single_layer_warns_as_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.GRU(3, 4, num_layers=2, dropout=0.5)


MODULES = [
    ("RNN", (3, 4), dict(num_layers=2, nonlinearity="relu", batch_first=True, dropout=0.5, bidirectional=True)),
    ("RNN", (3, 4), {}),
    ("LSTM", (3, 4), dict(proj_size=2, bias=False)),
    ("LSTM", (3, 4), dict(num_layers=2, bidirectional=True, proj_size=3)),
    ("GRU", (3, 4), dict(num_layers=2)),
    ("RNNCell", (3, 4), dict(nonlinearity="relu", bias=False)),
    ("LSTMCell", (3, 4), {}),
    ("GRUCell", (3, 4), {}),
]


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_parameters_and_repr_match_torch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(p.shape)) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_state_dict_round_trip_with_torch_gives_the_same_outputs(name, args, kwargs):
    tinyautograd.manual_seed(0)
    ours = getattr(nn, name)(*args, **kwargs).eval()
    theirs = getattr(torch.nn, name)(*args, **kwargs).eval()
    theirs.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in ours.state_dict().items()})
    back = getattr(nn, name)(*args, **kwargs).eval()
    back.load_state_dict({k: tinyautograd.tensor(to_numpy(v)) for k, v in theirs.state_dict().items()})
    shape = (2, args[0]) if name.endswith("Cell") else (5, 2, args[0])
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    want = _flatten(theirs(torch.from_numpy(x)))
    for module in (ours, back):
        for a, b in zip(_flatten(module(tinyautograd.tensor(x))), want):
            assert_close(a, b.detach(), tol=_TOL["float32"])


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_default_initialisation_is_uniform_within_one_over_sqrt_hidden(name, args, kwargs):
    tinyautograd.manual_seed(0)
    module = getattr(nn, name)(*args, **kwargs)
    bound = 1 / math.sqrt(args[1])
    values = np.concatenate([to_numpy(p).ravel() for p in module.parameters()])
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.8 * bound and values.std() == pytest.approx(bound / math.sqrt(3), rel=0.3)


def test_long_sequence_backward_matches_torch():
    ours, theirs = _pair_modules("LSTM", (2, 3), {}, "float64", "cpu")
    x = np.random.default_rng(0).standard_normal((200, 1, 2))
    _compare(ours, theirs, [x], lambda m, t: m(t[0]), "cpu", "float64", 1)


# ---------------------------------------------------------------------------------------------------------------
# errors: the same exception type as torch, and a message that says what is wrong

def _bad_calls(lib):
    randn = lib.randn
    lstm = lib.nn.LSTM(3, 4, 2)
    cell = lib.nn.LSTMCell(3, 4)
    return {
        "input dims": (lambda: lstm(randn(5)), "Expected input to be 2D or 3D"),
        "input size": (lambda: lstm(randn(5, 2, 4)), "input.size\\(-1\\) must be equal to input_size"),
        "h0 shape": (lambda: lstm(randn(5, 2, 3), (randn(2, 3, 4), randn(2, 2, 4))), "Expected hidden\\[0\\] size"),
        "c0 shape": (lambda: lstm(randn(5, 2, 3), (randn(2, 2, 4), randn(1, 2, 4))), "Expected hidden\\[1\\] size"),
        "state dims": (lambda: lstm(randn(5, 2, 3), (randn(2, 4), randn(2, 4))), "should also be 3-D"),
        "unbatched state dims": (lambda: lstm(randn(5, 3), (randn(2, 2, 4), randn(2, 2, 4))), "should also be 2-D"),
        "gru h0": (lambda: lib.nn.GRU(3, 4)(randn(5, 2, 3), randn(2, 2, 4)), "Expected hidden size"),
        "dtype": (lambda: lib.nn.GRU(3, 4)(randn(5, 2, 3).double()), "does not match weight dtype"),
        "nonlinearity": (lambda: lib.nn.RNN(3, 4, nonlinearity="foo"), "Unknown nonlinearity"),
        "dropout": (lambda: lib.nn.RNN(3, 4, dropout=2), "dropout should be a number in range"),
        "hidden size": (lambda: lib.nn.RNN(3, 0), "hidden_size must be greater than zero"),
        "layers": (lambda: lib.nn.RNN(3, 4, 0), "num_layers must be greater than zero"),
        "proj size": (lambda: lib.nn.LSTM(3, 4, proj_size=4), "proj_size has to be smaller than hidden_size"),
        "cell input size": (lambda: cell(randn(2, 5)), "input has inconsistent input_size"),
        "cell dims": (lambda: cell(randn(2, 3, 3)), "Expected input to be 1D or 2D"),
        "cell batch": (lambda: cell(randn(2, 3), (randn(3, 4), randn(3, 4))), "doesn't match hidden0 batch size"),
        "cell hidden": (lambda: cell(randn(2, 3), (randn(2, 5), randn(2, 4))), "hidden0 has inconsistent"),
    }


@pytest.mark.parametrize("case", sorted(_bad_calls(tinyautograd)))
def test_bad_calls_raise_like_torch(case):
    ours, pattern = _bad_calls(tinyautograd)[case]
    theirs, _ = _bad_calls(torch)[case]
    with pytest.raises(Exception) as torch_error:
        theirs()
    with pytest.raises(type(torch_error.value), match=pattern):
        ours()
