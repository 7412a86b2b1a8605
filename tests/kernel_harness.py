"""Run tinyautograd's CUDA elementwise kernels on the CPU: each body compiled as C++ and looped over NumPy arrays.

``emulate(kernel, *args)`` does what ``cupy.ElementwiseKernel(...)(*args)`` does for the kernels the library
defines (every output passed in): non-raw array parameters are broadcast to one shape and read/written element
``i``; ``raw`` parameters are whole arrays the body indexes itself; ``float64``/``int64`` scalars are passed by
value; ``T`` is the dtype of the arrays declared ``T``. The generated translation unit is::

    typedef double T;
    extern "C" void run(long long n, const T* g_, double lr_, T* p_) {
        for (long long i = 0; i < n; ++i) { const T g = g_[i]; const double lr = lr_; T& p = p_[i]; <body> }
    }

compiled once per (kernel, T) with the system's C++ compiler into a cached shared library and called through
ctypes. With ``tinyautograd._kernels.set_emulator(emulate)`` the library takes its fused-kernel code paths on the
CPU, so the suite can compare the kernel bodies with torch and with the NumPy formulas without a GPU.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest

from tinyautograd import _kernels

CTYPES = {"float64": ("double", ctypes.c_double, np.float64), "float32": ("float", ctypes.c_float, np.float32),
          "int64": ("long long", ctypes.c_longlong, np.int64), "int32": ("int", ctypes.c_int, np.int32),
          "bool": ("bool", ctypes.c_bool, np.bool_)}
T_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_CACHE_DIR = os.path.join(tempfile.gettempdir(), f"tinyautograd-kernel-harness-{os.getuid()}")
_libs: dict = {}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    raw: bool
    out: bool


def parse(spec: str, out: bool) -> list[Param]:
    params = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        assert len(words) == 2, f"cannot parse kernel parameter {item!r}"
        params.append(Param(words[1], words[0], raw, out))
    return params


def compiler() -> str:
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        if os.environ.get("CI"):
            raise RuntimeError("the kernel tests need a C++ compiler (set CXX)")
        pytest.skip("no C++ compiler to run the CUDA kernel bodies on the CPU")
    return cxx


def source(kernel: _kernels.Kernel, ctype: str, arrays: tuple[bool, ...]) -> str:
    """The C++ translation unit for ``kernel`` with ``T = ctype``; ``arrays[k]``: parameter k gets an array."""
    params = parse(kernel.in_params, False) + parse(kernel.out_params, True)
    args, binds = ["long long n"], []
    for p, is_array in zip(params, arrays):
        c = ctype if p.type == "T" else CTYPES[p.type][0]
        const = "" if p.out else "const "
        if p.raw:
            args.append(f"{const}{c}* {p.name}")
        elif is_array:
            args.append(f"{const}{c}* {p.name}_")
            binds.append(f"{c}& {p.name} = {p.name}_[i];" if p.out else f"const {c} {p.name} = {p.name}_[i];")
        else:
            args.append(f"{c} {p.name}_")
            binds.append(f"const {c} {p.name} = {p.name}_;")
    return ("#include <cmath>\n#include <cstddef>\nusing std::sqrt; using std::exp; using std::log; "
            "using std::log1p; using std::expm1; using std::tanh; using std::erf; using std::fabs; "
            "using std::fmax; using std::fmin;\n"
            f"typedef {ctype} T;\n"
            f'extern "C" void run({", ".join(args)}) {{\n'
            "  for (long long i = 0; i < n; ++i) {\n    " + " ".join(binds) + "\n    "
            + kernel.body.replace("\n", "\n    ") + "\n  }\n}\n")


def library(kernel: _kernels.Kernel, ctype: str, arrays: tuple[bool, ...]):
    src = source(kernel, ctype, arrays)
    key = hashlib.sha256(src.encode()).hexdigest()[:20]
    lib = _libs.get(key)
    if lib is None:
        os.makedirs(_CACHE_DIR, exist_ok=True)
        path = os.path.join(_CACHE_DIR, f"{kernel.name}-{key}.so")
        if not os.path.exists(path):
            cpp = path[:-3] + ".cpp"
            with open(cpp, "w") as f:
                f.write(src)
            tmp = f"{path}.{os.getpid()}.tmp"
            done = subprocess.run([compiler(), "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Werror",
                                   "-Wno-unused-variable", "-o", tmp, cpp], capture_output=True, text=True)
            if done.returncode:
                raise AssertionError(f"kernel {kernel.name} does not compile as C++:\n{done.stderr}\n{src}")
            os.replace(tmp, path)
        lib = _libs[key] = ctypes.CDLL(path)
    return lib


def emulate(kernel: _kernels.Kernel, *args):
    params = parse(kernel.in_params, False) + parse(kernel.out_params, True)
    assert len(args) == len(params), f"{kernel.name}: {len(params)} parameters, {len(args)} arguments"
    if not any(isinstance(a, np.ndarray) and not p.raw for p, a in zip(params, args)):
        # CuPy takes the loop's size from the non-raw arrays (NumPy scalars are scalars to it)
        raise ValueError(f"{kernel.name}: Loop size is undecided (no non-raw array argument)")
    args = tuple(np.asarray(a) if isinstance(a, np.generic) else a for a in args)
    arrays = tuple(isinstance(a, np.ndarray) for a in args)
    assert all(a for p, a in zip(params, arrays) if p.raw or p.out), f"{kernel.name}: raw/output need arrays"
    typed = [a for p, a in zip(params, args) if p.type == "T"]
    assert all(isinstance(a, np.ndarray) for a in typed), f"{kernel.name}: T arguments must be arrays"
    dtype = typed[0].dtype
    assert all(a.dtype == dtype for a in typed), f"{kernel.name}: T arrays of different dtypes"
    ctype = T_TYPES[dtype]
    shape = np.broadcast_shapes(*(a.shape for p, a in zip(params, args) if not p.raw and isinstance(a, np.ndarray)))
    n = int(np.prod(shape))
    call, keep, write_back = [ctypes.c_longlong(n)], [], []
    for p, a in zip(params, args):
        if p.raw or isinstance(a, np.ndarray):
            want = dtype if p.type == "T" else CTYPES[p.type][2]
            assert a.dtype == want, f"{kernel.name}: {p.name} is {a.dtype}, declared {p.type}"
            if p.out:
                assert p.raw or a.shape == shape, f"{kernel.name}: output {p.name} {a.shape} != {shape}"
                buf = a if a.flags.c_contiguous else np.ascontiguousarray(a)
                if buf is not a:
                    write_back.append((a, buf))
            else:
                buf = np.ascontiguousarray(a if p.raw else np.broadcast_to(a, shape))
            call.append(buf.ctypes.data_as(ctypes.c_void_p))
            keep.append(buf)  # alive until the call returns
        else:
            call.append(CTYPES[p.type][1](a))
    library(kernel, ctype, arrays).run(*call)
    del keep
    for a, buf in write_back:
        a[...] = buf


class emulating:
    """Context manager: the library's fused-kernel paths run on the CPU through ``emulate``."""

    def __enter__(self):
        self.previous = _kernels.set_emulator(emulate)
        return self

    def __exit__(self, *exc):
        _kernels.set_emulator(self.previous)
