"""Fused elementwise kernels for the CUDA backend: one launch where the NumPy formula would make several.

On the GPU every kernel launch costs 12-15 us, so the chains of elementwise operations that the library itself
emits (an optimizer's update of one parameter, an activation's backward, softmax + cross entropy) are written
once more as a single ``cupy.ElementwiseKernel``. A ``Kernel`` is that kernel's source: the parameter lists and
a C body in CuPy's dialect (``T`` a type placeholder, ``raw`` arrays indexed by hand, ``i`` the element index).
It is compiled by CuPy on first use on a device; the NumPy formula stays the CPU path and the reference.

Rules every body follows so that it means the same to NVRTC and to a host C++ compiler: scalars are
``float64``/``int64`` parameters, arithmetic is done in ``double`` locals (so no call mixes float and double
overloads), only ``sqrt exp log log1p expm1 tanh erf fabs fmax fmin`` are called, and no CUDA intrinsic or
``INFINITY``/``isnan`` appears. That is what lets the test suite compile each body as C++ on the CPU, run it
over NumPy arrays through the emulator hook below, and check it against the NumPy formula and against torch
(``tests/kernel_harness.py``) on machines without a GPU. ``tests/test_cupy_offline.py`` compiles the CUDA
translation unit CuPy generates for every kernel with NVRTC, which needs no GPU either.

Only float32 and float64 arrays use a kernel (``supported``); everything else takes the NumPy/CuPy formula.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

__all__ = ["Kernel", "REGISTRY", "enabled", "supported", "set_emulator", "DISABLED"]

REGISTRY: dict[str, "Kernel"] = {}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_emulator: Callable | None = None
# TINYAUTOGRAD_DISABLE_KERNELS=1: the array formulas everywhere, also on CUDA (an escape hatch should a kernel not
# compile with some CUDA/CuPy version; every kernel has its formula)
DISABLED = os.environ.get("TINYAUTOGRAD_DISABLE_KERNELS", "") not in ("", "0")


class Kernel:
    """One fused elementwise kernel: ``Kernel(name, in_params, out_params, body)``, called like the
    ``cupy.ElementwiseKernel`` it compiles to, with every output array passed in (outputs are written in place)."""

    __slots__ = ("name", "in_params", "out_params", "body", "_compiled")

    def __init__(self, name: str, in_params: str, out_params: str, body: str) -> None:
        if name in REGISTRY:
            raise ValueError(f"kernel {name!r} is defined twice")
        self.name, self.in_params, self.out_params, self.body = name, in_params, out_params, body
        self._compiled = None
        REGISTRY[name] = self

    def __call__(self, *args):
        if _emulator is not None and not any(_is_device_array(a) for a in args):
            return _emulator(self, *args)
        k = self._compiled
        if k is None:
            import cupy

            k = self._compiled = cupy.ElementwiseKernel(self.in_params, self.out_params, self.body,
                                                        "tinyautograd_" + self.name)
        try:
            return k(*args)
        except Exception as exc:  # CuPy compiles on the first call for each dtype
            if "Compile" not in type(exc).__name__:
                raise
            raise RuntimeError(f"tinyautograd: the fused CUDA kernel {self.name!r} did not compile with this "
                               f"CUDA/CuPy ({type(exc).__name__}: {exc}). Set TINYAUTOGRAD_DISABLE_KERNELS=1 to use "
                               "the array formulas instead, and please report it.") from exc

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, {self.in_params!r}, {self.out_params!r})"


def _is_device_array(a) -> bool:
    return hasattr(a, "__cuda_array_interface__")


def enabled(xp) -> bool:
    """Whether fused kernels replace the array formulas for arrays of module ``xp`` (CuPy, or NumPy while a test
    emulator is installed)."""
    return not DISABLED and (xp is not np or _emulator is not None)


def supported(*arrays) -> bool:
    """True when every array is float32 or float64 and all share one dtype (what the kernels are written for)."""
    dtype = arrays[0].dtype
    return dtype in _FLOATS and all(a.dtype == dtype for a in arrays)


def set_emulator(fn: Callable | None) -> Callable | None:
    """Install ``fn(kernel, *numpy_args)`` to run kernels on NumPy arrays (the test suite's C++ harness), or
    ``None`` to go back to the NumPy formulas on the CPU. Returns the previous emulator."""
    global _emulator
    previous, _emulator = _emulator, fn
    return previous
