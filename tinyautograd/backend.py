"""Devices and their array modules: numpy on 'cpu', cupy on 'cuda'. Nothing else in the package imports cupy."""
from __future__ import annotations

import numpy as np

_cupy = None
_cupy_checked = False
_cupy_problem = ""  # why CUDA is unavailable, for cupy_or_raise's message


def _load_cupy():
    global _cupy, _cupy_checked, _cupy_problem
    if not _cupy_checked:
        _cupy_checked = True
        _cupy = None
        try:
            import cupy
        except Exception as exc:  # ImportError, or a broken install
            _cupy_problem = (f"CuPy could not be imported ({type(exc).__name__}: {exc}). Install the extra with "
                             "`pip install tinyautograd[cuda]` (cupy-cuda12x; use cupy-cuda13x for CUDA 13)")
            return None
        try:
            count = int(cupy.cuda.runtime.getDeviceCount())
        except Exception as exc:  # no driver, a driver older than CuPy's CUDA, no device node
            _cupy_problem = (f"CuPy {getattr(cupy, '__version__', '?')} is installed but cannot reach a GPU "
                             f"({type(exc).__name__}: {exc}). Check the NVIDIA driver, and that the CuPy package "
                             "matches its CUDA version (cupy-cuda12x or cupy-cuda13x)")
            return None
        if count < 1:
            _cupy_problem = f"CuPy {getattr(cupy, '__version__', '?')} is installed but sees no GPU"
            return None
        _cupy = cupy
    return _cupy


def cuda_available() -> bool:
    return _load_cupy() is not None


def cupy_or_raise():
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            "CUDA is not available: tinyautograd needs CuPy and a visible NVIDIA GPU for device='cuda'. "
            f"{_cupy_problem}, or keep the tensor on 'cpu'.")
    return cp


class device:
    """``torch.device``: a type ('cpu' or 'cuda') and an optional index."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | "device", index: int | None = None) -> None:
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int):
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got {type!r}")
        if ":" in type:
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type} "
                "(tinyautograd supports 'cpu' and 'cuda')")
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = device("cpu")
_CUDA_DEVICES: dict[int, device] = {}
_default = {"device": CPU}


def cuda_device(index: int) -> device:
    d = _CUDA_DEVICES.get(index)
    if d is None:
        d = _CUDA_DEVICES[index] = device("cuda", index)
    return d


def device_of(data) -> device:
    """The device an array lives on."""
    if type(data) is np.ndarray:
        return CPU
    return cuda_device(data.device.id)


def array_module(obj):
    """numpy or cupy for an array, a tensor's array, a device or a device string."""
    if type(obj) is np.ndarray or obj is None:
        return np
    if isinstance(obj, (str, device)):
        d = device(obj)
        return np if d.type == "cpu" else cupy_or_raise()
    if hasattr(obj, "_data"):
        obj = obj._data
    if isinstance(obj, np.ndarray) or np.isscalar(obj):
        return np
    return cupy_or_raise()


def normalize_device(d) -> device:
    if d is None:
        return _default["device"]
    if type(d) is device and (d.type == "cpu" or d.index is not None):
        return d
    d = device(d)
    if d.type == "cuda":
        cp = cupy_or_raise()
        return cuda_device(cp.cuda.runtime.getDevice() if d.index is None else d.index)
    return CPU


def set_default_device(d) -> None:
    _default["device"] = CPU if d is None else normalize_device(d)


def get_default_device() -> device:
    return _default["device"]


def move(data, dev: device):
    """Copy an array to a device (no copy when it is already there)."""
    if dev.type == "cpu":
        if type(data) is np.ndarray:
            return data
        return data.get()
    cp = cupy_or_raise()
    if type(data) is not np.ndarray and data.device.id == dev.index:
        return data
    with cp.cuda.Device(dev.index):
        return cp.asarray(data)
