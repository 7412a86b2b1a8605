"""State dicts cross between torch and tinyautograd through NumPy, in both directions, for every layer type of
nn's core (conv/pooling/rnn layers are covered by their own tests): same keys in the same order, same dtypes, and
the same weights give the same outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tinyautograd
import tinyautograd.nn as nn
from helpers import assert_close

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

# name -> (factory taking the nn namespace, input factory taking a NumPy Generator)
LAYERS = {
    "Linear": (lambda lib: lib.Linear(4, 3), lambda r: [r.standard_normal((5, 4))]),
    "Linear(bias=False)": (lambda lib: lib.Linear(4, 3, bias=False), lambda r: [r.standard_normal((2, 4))]),
    "Bilinear": (lambda lib: lib.Bilinear(3, 2, 4), lambda r: [r.standard_normal((5, 3)), r.standard_normal((5, 2))]),
    "BatchNorm1d": (lambda lib: lib.BatchNorm1d(3), lambda r: [r.standard_normal((6, 3))]),
    "BatchNorm1d(momentum=None)": (lambda lib: lib.BatchNorm1d(3, momentum=None),
                                   lambda r: [r.standard_normal((6, 3, 2))]),
    "BatchNorm2d": (lambda lib: lib.BatchNorm2d(2), lambda r: [r.standard_normal((3, 2, 4, 4))]),
    "BatchNorm3d(affine=False)": (lambda lib: lib.BatchNorm3d(2, affine=False),
                                  lambda r: [r.standard_normal((2, 2, 2, 3, 3))]),
    "BatchNorm1d(track=False)": (lambda lib: lib.BatchNorm1d(3, track_running_stats=False),
                                 lambda r: [r.standard_normal((4, 3))]),
    "LayerNorm": (lambda lib: lib.LayerNorm((2, 3)), lambda r: [r.standard_normal((4, 2, 3))]),
    "LayerNorm(bias=False)": (lambda lib: lib.LayerNorm(3, bias=False), lambda r: [r.standard_normal((4, 3))]),
    "GroupNorm": (lambda lib: lib.GroupNorm(2, 4), lambda r: [r.standard_normal((3, 4, 5))]),
    "Embedding": (lambda lib: lib.Embedding(7, 3, padding_idx=0), lambda r: [r.integers(0, 7, (2, 5))]),
    "PReLU": (lambda lib: lib.PReLU(3), lambda r: [r.standard_normal((4, 3))]),
    "MLP": (lambda lib: lib.Sequential(lib.Linear(5, 8), lib.BatchNorm1d(8), lib.ReLU(), lib.Dropout(0.3),
                                       lib.Linear(8, 8), lib.LayerNorm(8), lib.GELU(), lib.Linear(8, 2)),
            lambda r: [r.standard_normal((6, 5))]),
    "nested containers": (lambda lib: lib.Sequential(lib.ModuleDict({"a": lib.Linear(3, 3)}),
                                                     lib.ModuleList([lib.Linear(3, 2)])),
                          None),
    "CrossEntropyLoss(weight)": (lambda lib: lib.CrossEntropyLoss(weight=_ones(lib, 3)), None),
    "BCEWithLogitsLoss(pos_weight)": (lambda lib: lib.BCEWithLogitsLoss(pos_weight=_ones(lib, 3)), None),
}


def _ones(lib, n):
    return (torch if lib is torch.nn else tinyautograd).ones(n)


def _perturb(sd: dict, rng) -> dict:
    """Random values for every floating entry, so the crossing is checked on non-trivial weights."""
    out = {}
    for k, v in sd.items():
        v = np.array(v)
        if v.dtype.kind == "f":
            v = v + rng.standard_normal(v.shape).astype(v.dtype) * 0.5
            if "running_var" in k:
                v = np.abs(v) + 0.1
        out[k] = v
    return out


def _run(model, make_inputs, lib, device, rng_seed):
    if make_inputs is None:
        return None
    rng = np.random.default_rng(rng_seed)
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in make_inputs(rng)]
    with (torch.no_grad() if lib is torch else tinyautograd.no_grad()):
        return model(*[lib.tensor(a, device=device) for a in arrays])


@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_state_dict_loads_into_ours(device, name):
    make, make_inputs = LAYERS[name]
    rng = np.random.default_rng(0)
    theirs = make(torch.nn).to(device)
    if make_inputs is not None:
        theirs.train()
        _run(theirs, make_inputs, torch, device, 1)  # a training step moves the running statistics
    sd = _perturb({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()}, rng)
    theirs.load_state_dict({k: torch.tensor(v, device=device) for k, v in sd.items()})
    ours = make(nn).to(device)
    result = ours.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours_sd = ours.state_dict()
    assert list(ours_sd) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert_close(ours_sd[k], v, what=f"{name} {k}")
    ours.eval()
    theirs.eval()
    y_ours, y_theirs = _run(ours, make_inputs, tinyautograd, device, 2), _run(theirs, make_inputs, torch, device, 2)
    if y_theirs is not None:
        assert_close(y_ours, y_theirs, "float32", what=f"{name} output")


@pytest.mark.parametrize("name", list(LAYERS))
def test_our_state_dict_loads_into_torch(device, name):
    make, make_inputs = LAYERS[name]
    rng = np.random.default_rng(3)
    ours = make(nn).to(device)
    if make_inputs is not None:
        _run(ours, make_inputs, tinyautograd, device, 4)
    sd = _perturb({k: v.numpy(force=True) for k, v in ours.state_dict().items()}, rng)
    ours.load_state_dict(sd)
    theirs = make(torch.nn).to(device)
    result = theirs.load_state_dict({k: torch.tensor(v, device=device) for k, v in sd.items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in theirs.state_dict().items():
        assert str(v.dtype).removeprefix("torch.") == ours.state_dict()[k].dtype.name, k
    ours.eval()
    theirs.eval()
    y_ours, y_theirs = _run(ours, make_inputs, tinyautograd, device, 5), _run(theirs, make_inputs, torch, device, 5)
    if y_theirs is not None:
        assert_close(y_ours, y_theirs, "float32", what=f"{name} output")


def test_state_dict_survives_save_and_load(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(tinyautograd.randn(5, 3))
    path = tmp_path / "model.pt"
    tinyautograd.save(model.state_dict(), path)
    restored = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    restored.load_state_dict(tinyautograd.load(path))
    for (k, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy(), err_msg=k)
        assert a.dtype == b.dtype
