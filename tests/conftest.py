"""Shared test setup: Hypothesis profiles and the device parameter.

HYPOTHESIS_PROFILE=ci (default) keeps the suite within the CI budget on 2 cores; HYPOTHESIS_PROFILE=thorough
runs many more examples per property.
"""
from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=300, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=5, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# Hypothesis's pytest plugin wraps a parametrised test's settings once per invocation, each wrapper falling back to
# the previous one; reading a setting walks that chain recursively. The op table's generic tests are invoked a few
# thousand times (every op on cpu and cuda), more than the default recursion limit allows.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))


def _cuda_pair_available() -> bool:
    try:
        import torch
        import tinyautograd

        return bool(torch.cuda.is_available() and tinyautograd.cuda.is_available())
    except Exception:
        return False


CUDA = _cuda_pair_available()
# without a GPU, the cuda copy of every device-parametrised test runs on the NumPy-backed CuPy stand-in (torch on
# the cpu): it finds host arrays on CUDA paths and results on the wrong device. TINYAUTOGRAD_FAKE_CUDA=0 skips it.
FAKE_CUDA = not CUDA and os.environ.get("TINYAUTOGRAD_FAKE_CUDA", "1") != "0"
if CUDA:
    _CUDA_PARAM = pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)
elif FAKE_CUDA:
    _CUDA_PARAM = pytest.param("cuda", id="fakecuda", marks=pytest.mark.fakecuda)
else:
    _CUDA_PARAM = pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, pytest.mark.skip(
        reason="needs a GPU visible to both CuPy and torch (or TINYAUTOGRAD_FAKE_CUDA=1)")])
DEVICES = [pytest.param("cpu", id="cpu"), _CUDA_PARAM]


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu' always; 'cuda' where tinyautograd and torch both see a GPU (compared with torch on cuda), else on
    the CuPy stand-in against torch on the cpu."""
    if request.param == "cuda" and FAKE_CUDA:
        import fake_cupy

        with fake_cupy.active():
            yield "cuda"
    else:
        yield request.param


@pytest.fixture(params=[_CUDA_PARAM])
def cuda_device(request):
    """Just the 'cuda' copy of ``device``, for tests that only mean something on a GPU."""
    if FAKE_CUDA:
        import fake_cupy

        with fake_cupy.active():
            yield "cuda"
    else:
        yield "cuda"


@pytest.fixture
def default_device(device):
    """Runs a test on each device by making it tinyautograd's default one: the test's own tensors go there. For
    modules that test machinery rather than numerics (the engine, memory, modules, initialisers, optimizers' API,
    errors): `pytestmark = pytest.mark.usefixtures("default_device")`. Torch stays on the cpu: its
    `set_default_device` mode changes results (under it, `l1_loss` ignores `weight`), and on a GPU a torch
    error case would raise a device-side assert that spoils the CUDA context for the rest of the run."""
    import tinyautograd

    tinyautograd.set_default_device(device)
    try:
        yield device
    finally:
        tinyautograd.set_default_device(None)


def pytest_collection_modifyitems(config, items):
    # a cuda-only test (`cuda_device`) in a module that runs every test on each device (`default_device`) needs
    # one copy, the one whose default device is the cpu
    twins = [item for item in items if {"cuda_device", "default_device"} <= set(getattr(item, "fixturenames", ()))
             and item.callspec.params.get("device") == "cuda"]
    if twins:
        config.hook.pytest_deselected(items=twins)
        items[:] = [item for item in items if item not in twins]
    # `-m gpu` selects device-parametrised tests on cuda only
    for item in items:
        if "[cuda" in item.nodeid or "-cuda" in item.nodeid:
            item.add_marker(pytest.mark.gpu)


class _Shard:
    """TINYAUTOGRAD_TEST_SHARD=i/n keeps every n-th selected test from the i-th (0-based): scripts/gpu_check.sh
    runs n such processes side by side where pytest-xdist is missing, so that CuPy's first compilations of its
    kernels spread over the cores."""

    def __init__(self, index: int, count: int) -> None:
        self.index, self.count = index, count

    @pytest.hookimpl(trylast=True)  # after `-m` and `-k` have deselected theirs
    def pytest_collection_modifyitems(self, config, items):
        config.hook.pytest_deselected(items=[item for k, item in enumerate(items) if k % self.count != self.index])
        items[:] = [item for k, item in enumerate(items) if k % self.count == self.index]


def pytest_configure(config):
    shard = os.environ.get("TINYAUTOGRAD_TEST_SHARD")
    if shard:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise pytest.UsageError(f"TINYAUTOGRAD_TEST_SHARD={shard!r}: expected i/n with 0 <= i < n")
        config.pluginmanager.register(_Shard(index, count), "tinyautograd-shard")
