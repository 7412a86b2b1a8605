"""What every op shares: operand coercion, dtype promotion, broadcasting bookkeeping, making results."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from ..autograd.grad_mode import state as grad_state
from ..backend import device_of
from ..tensor import Tensor, defer_device_check

wrap = Tensor._wrap
_np_ndarray = np.ndarray
_SCALAR_TYPES = (int, float, bool)


def xp_of(data):
    if type(data) is _np_ndarray:
        return np
    import cupy

    return cupy


def edge(t: Tensor):
    """The node a gradient for ``t`` flows into, or None when it needs none."""
    if not t.requires_grad:
        return None
    fn = t.grad_fn
    return fn if fn is not None else t._accumulator()


def needs_grad(*tensors) -> bool:
    if not grad_state.enabled:
        return False
    for t in tensors:
        if t.__class__ is not int and t.__class__ is not float and getattr(t, "requires_grad", False):
            return True
    return False


def as_tensor_arg(x, like: Tensor | None = None, op: str = "op") -> Tensor:
    """Coerce an array-like argument to a Tensor on ``like``'s device (scalars are handled by the callers)."""
    if isinstance(x, Tensor):
        return x
    from ..creation import tensor as _tensor

    if isinstance(x, np.ndarray):
        t = wrap(x)
    elif isinstance(x, _SCALAR_TYPES) or isinstance(x, (list, tuple)) or isinstance(x, np.generic):
        t = _tensor(x)
    elif hasattr(x, "__cuda_array_interface__"):
        t = wrap(x)
    else:
        raise TypeError(f"{op}(): expected a Tensor, a number or an array-like, got {type(x).__name__}")
    if like is not None and type(t._data) is not type(like._data):
        t = t.to(like.device)
    return t


def check_same_device(a: Tensor, b: Tensor, op: str) -> None:
    if type(a._data) is not type(b._data) or (type(a._data) is not np.ndarray and a._data.device != b._data.device):
        raise RuntimeError(
            f"{op}: Expected all tensors to be on the same device, but found at least two devices, "
            f"{device_of(a._data)} and {device_of(b._data)}! Move one with .to(device) first.")


def binary_operands(a, b, op: str):
    """Arrays for ``a op b`` with torch's promotion: returns (a_data, b_data_or_scalar, a_tensor, b_tensor)."""
    if isinstance(a, Tensor):
        ad = a._data
        if isinstance(b, Tensor):
            bd = b._data
            if type(ad) is not type(bd):
                check_same_device(a, b, op)
            if ad.dtype is not bd.dtype and ad.dtype != bd.dtype:
                rt = _dtype.result_type_tensors(_dtype._BY_NP[ad.dtype], ad.ndim == 0,
                                                _dtype._BY_NP[bd.dtype], bd.ndim == 0).np_dtype
                if ad.dtype != rt:
                    ad = ad.astype(rt)
                if bd.dtype != rt:
                    bd = bd.astype(rt)
            return ad, bd, a, b
        tb = type(b)
        if tb is float:
            if ad.dtype.kind != "f":
                ad = ad.astype(_dtype.get_default_dtype().np_dtype)
            return ad, b, a, None
        if tb is int or tb is bool:
            if ad.dtype.kind == "b" and tb is int:
                ad = ad.astype(np.int64)
            elif tb is int and ad.dtype.kind in "iu" and ad.dtype.itemsize < 8:
                info = np.iinfo(ad.dtype)
                if not info.min <= b <= info.max:
                    # torch wraps an out-of-range scalar into the tensor's integer type; NumPy 2 would raise
                    b = np.array(b).astype(ad.dtype)[()]  # a NumPy scalar: CuPy takes those, not arrays
            return ad, b, a, None
        return binary_operands(a, as_tensor_arg(b, a, op), op)
    if isinstance(b, Tensor):
        bd2, ad2, _, _ = binary_operands(b, a, op)
        return ad2, bd2, None, b
    raise TypeError(f"{op}: expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")


_RELABELED: dict = {}


def relabel(t: Tensor, label: str) -> Tensor:
    """Give ``t``'s node torch's name for the composite op that produced it (``stack`` records a cat, torch calls
    it StackBackward0): the node's class becomes a same-layout subclass whose ``name()`` is ``label``."""
    node = t.grad_fn
    if node is not None:
        key = (node.__class__, label)
        cls = _RELABELED.get(key)
        if cls is None:
            cls = _RELABELED[key] = type(label, (node.__class__,), {"__slots__": (), "name": lambda self: label})
        node.__class__ = cls
    return t


def broadcast_error(op: str, a, b, err: Exception) -> RuntimeError:
    sa = list(getattr(a, "shape", ()))
    sb = list(getattr(b, "shape", ()))
    return RuntimeError(
        f"{op}: the shapes {sa} and {sb} cannot be broadcast together (each dimension, aligned from the right, "
        f"must be equal or 1). Reshape, unsqueeze or expand one operand so the shapes match.")


_SUM_AXES: dict = {}


def sum_to_array(g, shape: tuple):
    """Sum a broadcast gradient back down to ``shape``."""
    gshape = g.shape
    if gshape == shape:
        return g
    key = (gshape, shape)
    plan = _SUM_AXES.get(key)
    if plan is None:
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 1)
        plan = _SUM_AXES[key] = axes
    if plan:
        g = g.sum(axis=plan, keepdims=True)
    if g.shape != shape:
        g = g.reshape(shape)
    return g


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """A dim / tuple of dims / None as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (int(dim),)
    n = ndim if ndim > 0 else 1
    out = []
    for d in dim:
        if not -n <= d < n:
            raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                             f"but got {d})")
        d = d + n if d < 0 else d
        if ndim == 0:
            continue
        if d in out:
            raise RuntimeError(f"{op}: dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(sorted(out))


def wrap_dim(d: int, ndim: int, op: str) -> int:
    n = ndim if ndim > 0 else 1
    if not -n <= d < n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    return d + n if d < 0 else d


def float_check(t: Tensor, op: str) -> None:
    if t._data.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating point tensor, got {t.dtype}; convert with .float() first")


def check_indices(idx, size: int, fail) -> None:
    """Call ``fail()`` (which raises the op's error) when the integer array ``idx`` holds a value outside
    [0, ``size``). NumPy arrays are checked at once. On CUDA the check is a flag computed on the device (negative
    values read as unsigned are too big, so one comparison and one reduction) and read at the next host read
    (``tensor.defer_device_check``): the op does not wait for the GPU, as torch's device-side asserts do not."""
    if not idx.size:
        return
    if type(idx) is np.ndarray:
        if int(idx.min()) < 0 or int(idx.max()) >= size:
            fail()
        return
    unsigned = idx.view(np.dtype(f"u{idx.dtype.itemsize}")) if idx.dtype.kind == "i" else idx
    defer_device_check((unsigned >= size).any(), fail)
