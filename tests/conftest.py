"""Shared test setup: Hypothesis profiles and the device parameter.

HYPOTHESIS_PROFILE=ci (default) keeps the suite within the CI budget on 2 cores; HYPOTHESIS_PROFILE=thorough
runs many more examples per property.
"""
from __future__ import annotations

import os

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


def _cuda_pair_available() -> bool:
    try:
        import torch
        import tinyautograd

        return bool(torch.cuda.is_available() and tinyautograd.cuda.is_available())
    except Exception:
        return False


CUDA = _cuda_pair_available()
DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
               not CUDA, reason="needs a GPU visible to both CuPy and torch")])]


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu' always; 'cuda' where tinyautograd and torch both see a GPU (compared with torch on cuda)."""
    return request.param


def pytest_collection_modifyitems(config, items):
    # `-m gpu` selects device-parametrised tests on cuda only
    for item in items:
        if "[cuda" in item.nodeid or "-cuda" in item.nodeid:
            item.add_marker(pytest.mark.gpu)
