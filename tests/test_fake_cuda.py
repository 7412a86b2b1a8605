"""The CuPy stand-in used for the ``fakecuda`` copies of the device tests keeps CuPy's rules (tests/fake_cupy.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fake_cupy
from conftest import CUDA
import tinyautograd as tg


@pytest.fixture()
def fake():
    with fake_cupy.active():
        yield


def test_tinyautograd_sees_one_fake_device(fake):
    assert tg.cuda.is_available() and tg.cuda.device_count() == 1
    assert "Fake" in tg.cuda.get_device_name()
    x = tg.ones(3, device="cuda")
    assert x.is_cuda and str(x.device) == "cuda:0" and type(x._data) is fake_cupy.ndarray


def test_host_arrays_and_implicit_conversions_are_refused_as_cupy_does(fake):
    d = tg.ones(3, device="cuda")._data
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(d)
    with pytest.raises(TypeError, match="host array"):
        d + np.ones(3)
    with pytest.raises(TypeError, match="host array"):
        import cupy

        cupy.maximum(d, np.zeros(3))
    np.testing.assert_array_equal(d.get(), np.ones(3))


def test_results_stay_on_the_device(fake):
    d = tg.arange(6.0, device="cuda")._data.reshape(2, 3)
    for result in (d.sum(), d[0, 1], np.concatenate([d, d]), np.exp(d), d.max(axis=0), d > 2):
        assert type(result) is fake_cupy.ndarray


def test_torch_stays_on_the_cpu_while_tinyautograd_uses_the_fake(fake):
    t = torch.ones(2, device="cuda")
    assert t.device.type == "cpu"
    assert torch.nn.Linear(2, 2).to("cuda").weight.device.type == "cpu"


def test_everything_is_restored_afterwards():
    with fake_cupy.active():
        assert tg.cuda.is_available()
    assert tg.cuda.is_available() == CUDA
    assert torch.ones(1).device.type == "cpu"
