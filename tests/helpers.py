"""What the op tests share: the tolerances (written once, here), moving values between tinyautograd and torch,
and comparing results.

Every comparison goes through ``assert_close(ours, theirs, dtype)``: shapes must be equal, dtypes must have the
same name, and values must agree within the tolerance of ``dtype`` (the floating dtype the test runs in).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import tinyautograd


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


# float64 is compared tightly: both libraries evaluate the same formulas in double precision, so only the order of
# summation may differ. float32 is loose: NumPy and torch pick different kernels (pairwise vs. blocked sums, FMA).
TOLERANCES = {
    "float64": Tolerance(rtol=1e-7, atol=1e-9),
    "float32": Tolerance(rtol=1e-4, atol=1e-5),
    "float16": Tolerance(rtol=1e-2, atol=1e-3),
}
# integer and bool results must match exactly
EXACT = Tolerance(rtol=0.0, atol=0.0)
# central finite differences in float64 with step FD_EPS: truncation ~eps^2, rounding ~1e-16/eps
FD_EPS = 1e-6
FD_TOLERANCE = Tolerance(rtol=1e-5, atol=1e-6)


def tolerance(dtype) -> Tolerance:
    """The tolerance for results of a test run in ``dtype`` (a name, or a tinyautograd/torch/NumPy dtype)."""
    name = dtype_name(dtype)
    return TOLERANCES.get(name, EXACT)


def dtype_name(dtype) -> str:
    """'float32' for tinyautograd.float32, torch.float32, np.float32 or 'float32'."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, tinyautograd.dtype):
        return dtype.name
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return np.dtype(dtype).name


def to_numpy(t) -> np.ndarray:
    """The values of a tinyautograd or torch tensor (any device) as a NumPy array on the host."""
    if isinstance(t, torch.Tensor):
        if t._is_zerotensor():  # torch's lazily-zero gradients (double backward of abs, ...)
            return np.zeros(tuple(t.shape), dtype=dtype_name(t.dtype))
        return t.detach().cpu().numpy()
    if isinstance(t, tinyautograd.Tensor):
        d = t._data
        return d if isinstance(d, np.ndarray) else d.get()
    return np.asarray(t)


def ours_tensor(array: np.ndarray, device: str, requires_grad: bool = False) -> tinyautograd.Tensor:
    """A tinyautograd tensor holding a private copy of ``array`` on ``device``."""
    t = tinyautograd.tensor(np.array(array, copy=True), device=device)
    return t.requires_grad_(True) if requires_grad else t


# set to "cpu" while tinyautograd's "cuda" is the NumPy-backed fake (tests/test_fake_cuda.py): torch stays on the cpu
TORCH_DEVICE_FOR_CUDA: str | None = None


def torch_device(device: str) -> str:
    """Where the torch side of a test runs for tinyautograd's ``device``: the same, except on the CuPy stand-in."""
    if TORCH_DEVICE_FOR_CUDA is not None and device.startswith("cuda"):
        return TORCH_DEVICE_FOR_CUDA
    return device


_CUDA_IN_TEXT = re.compile(r", device='cuda:0'|device='cuda:0', |device='cuda:0'| \(cuda:0\)")


def torch_comparable(text: str) -> str:
    """Our printed text, to compare with torch's: unchanged on a GPU; on the CuPy stand-in, where torch runs on the
    cpu, without the parts a cuda tensor adds (``device='cuda:0'``, `` (cuda:0)``)."""
    return text if TORCH_DEVICE_FOR_CUDA is None else _CUDA_IN_TEXT.sub("", text)


def settled(t):
    """``t``'s values on the host. On CUDA, index and range checks wait for the first host read (as torch's
    device-side asserts report late), so an error case reads its result to see the error."""
    return t.tolist()


def cpu_only(reason: str):
    """Marks a test, in a module whose tests run on every device (conftest.default_device), as one about the host:
    NumPy sharing memory, the cpu generator's state... ``reason`` says why, and where the cuda counterpart is."""
    del reason  # documentation at the call site
    return pytest.mark.parametrize("device", [pytest.param("cpu", id="cpu")], indirect=True)


def torch_tensor(array: np.ndarray, device: str, requires_grad: bool = False) -> torch.Tensor:
    """A torch tensor holding a private copy of ``array`` on ``device``."""
    t = torch.tensor(np.array(array, copy=True), device=torch_device(device))
    return t.requires_grad_(True) if requires_grad else t


def assert_close(ours, theirs, dtype=None, *, tol: Tolerance | None = None, what: str = "result") -> None:
    """Assert a tinyautograd result equals torch's: same shape, same dtype name, values within tolerance.

    ``dtype`` picks the tolerance (defaults to the result's own dtype); integer and bool results must match
    exactly. NaNs must appear in the same places.
    """
    assert isinstance(ours, tinyautograd.Tensor), f"{what}: expected a tinyautograd.Tensor, got {type(ours)}"
    assert isinstance(theirs, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(theirs)}"
    assert tuple(ours.shape) == tuple(theirs.shape), \
        f"{what}: shape {tuple(ours.shape)} != torch's {tuple(theirs.shape)}"
    assert dtype_name(ours.dtype) == dtype_name(theirs.dtype), \
        f"{what}: dtype {dtype_name(ours.dtype)} != torch's {dtype_name(theirs.dtype)}"
    a, b = to_numpy(ours), to_numpy(theirs)
    if a.dtype.kind in "biu":
        if not np.array_equal(a, b):
            np.testing.assert_array_equal(a, b, err_msg=what)
        return
    if tol is None:
        # a float result of an integer run (exp of an int tensor) is compared in its own precision
        run = dtype_name(dtype) if dtype is not None else ""
        tol = tolerance(run if run.startswith("float") else ours.dtype)
    assert_arrays_close(a, b, tol, what)


def assert_arrays_close(actual: np.ndarray, expected: np.ndarray, tol: Tolerance, what: str) -> None:
    """Two host arrays of the same shape within ``tol`` (NaNs in the same places)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    # the quick check first; NumPy's assert (slow, but with a readable report) only when it fails
    if not np.allclose(actual, expected, rtol=tol.rtol, atol=tol.atol, equal_nan=True):
        np.testing.assert_allclose(actual, expected, rtol=tol.rtol, atol=tol.atol, equal_nan=True, err_msg=what)


def shares_memory(a: tinyautograd.Tensor, b: tinyautograd.Tensor) -> bool:
    """Whether two tinyautograd tensors' arrays overlap in memory (on cpu or cuda)."""
    da, db = a._data, b._data
    if type(da) is not type(db):
        return False
    if da.size == 0 or db.size == 0:
        return False
    xp = tinyautograd.backend.array_module(da)
    return bool(xp.shares_memory(da, db))


def exception_family(exc: BaseException) -> type:
    """The builtin exception class a test compares: torch's error types derive from these."""
    # NotImplementedError (torch's "not implemented for 'Bool'") is a RuntimeError: either will do
    for cls in (IndexError, TypeError, ValueError, RuntimeError):
        if isinstance(exc, cls):
            return cls
    return type(exc)
