"""Creation functions: tensor, zeros, ones, arange, rand, ... with dtype=, device=, requires_grad= as torch."""
from __future__ import annotations

import math

import numpy as np

from . import _dtype
from .backend import array_module, get_default_device, move, normalize_device
from .random import gen_or_default
from .tensor import Tensor

wrap = Tensor._wrap


def _finish(arr, device, requires_grad: bool) -> Tensor:
    dev = normalize_device(device)
    if dev.type != "cpu":
        arr = move(arr, dev)
    t = wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data):
    """torch's inference for Python data: bools -> bool, ints -> int64, any float -> the default float."""
    if isinstance(data, bool):
        return _dtype.bool_
    if isinstance(data, int):
        return _dtype.int64
    if isinstance(data, float):
        return _dtype.get_default_dtype()
    if isinstance(data, (list, tuple)):
        kinds = set()
        stack = [data]
        while stack:
            x = stack.pop()
            if isinstance(x, (list, tuple)):
                stack.extend(x)
            elif isinstance(x, Tensor):
                kinds.add(x.dtype)
            elif isinstance(x, np.generic) and x.dtype in _dtype._BY_NP:
                kinds.add(_dtype._BY_NP[x.dtype])
            elif isinstance(x, bool):
                kinds.add(_dtype.bool_)
            elif isinstance(x, int):
                kinds.add(_dtype.int64)
            elif isinstance(x, float):
                kinds.add(_dtype.get_default_dtype())
            else:
                raise (TypeError if isinstance(x, str) else RuntimeError)(
                    f"tensor(): could not infer dtype of {type(x).__name__}")
        if not kinds:
            return _dtype.get_default_dtype()
        out = None
        for k in kinds:
            out = k if out is None else _dtype.promote_types(out, k)
        return out
    return None


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (``torch.tensor``)."""
    if isinstance(data, Tensor):
        arr = data._data.copy()
        if dtype is not None:
            arr = arr.astype(_dtype.to_dtype(dtype).np_dtype)
        return _finish(arr, device if device is not None else data.device, requires_grad)
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.array(data, copy=True)
        if dtype is None and arr.dtype.kind not in "biuf":
            raise TypeError(f"can't convert np.ndarray of type {arr.dtype}; only numeric and bool arrays are "
                            "supported")
        if dtype is None:
            _dtype.from_numpy_dtype(arr.dtype)
    elif hasattr(data, "__cuda_array_interface__"):
        xp = array_module("cuda")
        arr = xp.array(data, copy=True)
        if dtype is not None:
            arr = arr.astype(_dtype.to_dtype(dtype).np_dtype)
        t = wrap(arr)
        if device is not None:
            t = t.to(normalize_device(device))
        if requires_grad:
            t.requires_grad_(True)
        return t
    else:
        inferred = _infer_dtype(data)
        if inferred is None:
            # torch: a string is a TypeError, any other object a RuntimeError
            raise (TypeError if isinstance(data, str) else RuntimeError)(
                f"tensor(): could not infer dtype of {type(data).__name__}; give a number, a (nested) list or tuple, "
                "a NumPy array or a Tensor")
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
            data = _tensors_to_lists(data)
        target = None if dtype is None else _dtype.to_dtype(dtype)
        if target is not None and target.is_floating_point:
            build = target  # parsed straight into the wanted precision
        elif target is not None and inferred.is_floating_point:
            build = _dtype.float64  # floats to integers truncate from the exact values, as torch
        else:
            build = inferred
        try:
            arr = np.array(data, dtype=build.np_dtype)
        except ValueError as e:
            raise ValueError(f"tensor(): expected a rectangular nested sequence: {e}") from None
    if dtype is not None:
        arr = arr.astype(_dtype.to_dtype(dtype).np_dtype, copy=False)
    return _finish(arr, device, requires_grad)


def _flat(seq):
    stack = list(seq)
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        else:
            yield x


def _tensors_to_lists(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_tensors_to_lists(x) for x in data]
    return data


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Share memory with ``data`` where possible (NumPy arrays on cpu, tensors), else copy (``torch.as_tensor``)."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (dtype is not None or device is not None) else data
    if isinstance(data, np.ndarray):
        _dtype.from_numpy_dtype(data.dtype)
        t = wrap(data)
        if dtype is not None or device is not None:
            t = t.to(device=device, dtype=dtype)
        return t
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (``torch.from_numpy``)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    _dtype.from_numpy_dtype(ndarray.dtype)
    return wrap(ndarray)


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing memory with any DLPack producer (torch tensors, CuPy/NumPy arrays)."""
    if isinstance(ext_tensor, Tensor):
        return ext_tensor
    dev_type = ext_tensor.__dlpack_device__()[0] if hasattr(ext_tensor, "__dlpack_device__") else 1
    if dev_type == 1:
        return wrap(np.from_dlpack(ext_tensor))
    return wrap(array_module("cuda").from_dlpack(ext_tensor))


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"size must be a sequence of ints, got {type(s).__name__} in {size}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _size_arg(size: tuple, size_kw: dict, op: str) -> tuple:
    """The size given positionally, or as torch's keyword ``size=`` (the only extra keyword accepted)."""
    if size_kw:
        if size or set(size_kw) != {"size"}:
            raise TypeError(f"{op}() got unexpected keyword arguments {sorted(size_kw)}")
        return (tuple(size_kw["size"]),)
    if not size:
        raise TypeError(f"{op}() missing 1 required positional argument: 'size' (use {op}(()) for a 0-d tensor)")
    return size


def _float_or(dtype):
    return (_dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)).np_dtype


def _xp_for(device):
    return array_module(normalize_device(device))


def _fill(size, value, dtype, device, requires_grad) -> Tensor:
    dev = normalize_device(device)
    xp = array_module(dev)
    arr = xp.full(_size(size), value, dtype=dtype) if xp is np else _on(dev, lambda: xp.full(_size(size), value,
                                                                                              dtype=dtype))
    t = wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _on(dev, make):
    import cupy

    with cupy.cuda.Device(dev.index):
        return make()


def zeros(*size, out=None, dtype=None, device=None, requires_grad: bool = False, **size_kw) -> Tensor:
    """A tensor filled with 0s (``torch.zeros(*size)`` or ``torch.zeros(size=...)``)."""
    return _fill(_size_arg(size, size_kw, "zeros"), 0, _float_or(dtype), device, requires_grad)


def ones(*size, out=None, dtype=None, device=None, requires_grad: bool = False, **size_kw) -> Tensor:
    """A tensor filled with 1s (``torch.ones(*size)`` or ``torch.ones(size=...)``)."""
    return _fill(_size_arg(size, size_kw, "ones"), 1, _float_or(dtype), device, requires_grad)


def empty(*size, out=None, dtype=None, device=None, requires_grad: bool = False, memory_format=None,
          **size_kw) -> Tensor:
    """``torch.empty``; the memory is zeroed here (NumPy has no cheaper uninitialised buffer worth the surprise)."""
    return _fill(_size_arg(size, size_kw, "empty"), 0, _float_or(dtype), device, requires_grad)


def full(size, fill_value, *, out=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = _infer_dtype(fill_value) or _dtype.get_default_dtype()
    return _fill((tuple(size),), fill_value, _dtype.to_dtype(dtype).np_dtype, device, requires_grad)


def _like(input: Tensor, dtype, device):
    return (input.dtype if dtype is None else _dtype.to_dtype(dtype)).np_dtype, (
        input.device if device is None else device)


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _fill((input._data.shape,), 0, dt, dev, requires_grad)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _fill((input._data.shape,), 1, dt, dev, requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _fill((input._data.shape,), fill_value, dt, dev, requires_grad)


def arange(start, end=None, step=1, *, out=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 for integer arguments (``torch.arange``)."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0 and end != start:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign (start={start}, "
                           f"end={end}, step={step})")
    if dtype is None:
        dtype = _dtype.int64 if all(isinstance(v, (int, np.integer)) for v in vals) else _dtype.get_default_dtype()
    dt = _dtype.to_dtype(dtype)
    if not dt.is_floating_point:
        # torch computes integer ranges in integers: the bounds and step are truncated first
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise RuntimeError(f"arange: step {vals[2]} truncates to 0 for the integer dtype {dt}")
    n = max(0, math.ceil((end - start) / step))
    arr = (start + step * np.arange(n, dtype=np.float64)).astype(dt.np_dtype) if dt.is_floating_point else \
        np.arange(start, end, step).astype(dt.np_dtype)
    return _finish(arr, device, requires_grad)


def linspace(start, end, steps: int, *, out=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _float_or(dtype)
    arr = np.linspace(float(start), float(end), int(steps)).astype(dt)
    return _finish(arr, device, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    arr = np.logspace(float(start), float(end), int(steps), base=base).astype(_float_or(dtype))
    return _finish(arr, device, requires_grad)


def eye(n: int, m: int | None = None, *, out=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    arr = np.eye(n, n if m is None else m, dtype=_float_or(dtype))
    return _finish(arr, device, requires_grad)


def _float_only(np_dtype, op: str) -> None:
    if np_dtype.kind != "f":
        raise RuntimeError(f"{op}: only floating point dtypes are supported, got {_dtype._BY_NP[np_dtype]}; draw "
                           "floats and convert, or use randint for integers")


def _random(size, generator, device, make, dtype) -> Tensor:
    dev = normalize_device(device)
    xp = array_module(dev)
    rng = gen_or_default(generator).rng_for(xp)
    if xp is np:
        return wrap(make(rng, _size(size)).astype(dtype, copy=False))
    return wrap(_on(dev, lambda: make(rng, _size(size)).astype(dtype, copy=False)))


def rand(*size, generator=None, out=None, dtype=None, device=None, requires_grad: bool = False,
         **size_kw) -> Tensor:
    """Uniform on [0, 1) (``torch.rand``)."""
    dt = _float_or(dtype)
    _float_only(dt, "rand")
    draw_dtype = np.float32 if dt == np.float32 else np.float64  # float16 is drawn in float64 and rounded

    def make(rng, shape):
        return rng.random(shape, dtype=draw_dtype)

    t = _random(_size_arg(size, size_kw, "rand"), generator, device, make, dt)
    return t.requires_grad_(True) if requires_grad else t


def randn(*size, generator=None, out=None, dtype=None, device=None, requires_grad: bool = False,
          **size_kw) -> Tensor:
    """Standard normal (``torch.randn``)."""
    dt = _float_or(dtype)
    _float_only(dt, "randn")
    draw_dtype = np.float32 if dt == np.float32 else np.float64

    def make(rng, shape):
        return rng.standard_normal(shape, dtype=draw_dtype)

    t = _random(_size_arg(size, size_kw, "randn"), generator, device, make, dt)
    return t.requires_grad_(True) if requires_grad else t


def randint(low, high=None, size=None, *, generator=None, out=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high) (``torch.randint(low=0, high, size)``)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = (_dtype.int64 if dtype is None else _dtype.to_dtype(dtype)).np_dtype
    return _random((tuple(size),), generator, device, lambda rng, s: rng.integers(low, high, s), dt)


def randint_like(input: Tensor, low=0, high=None, *, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device)


def randperm(n: int, *, generator=None, out=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (``torch.randperm``)."""
    dt = (_dtype.int64 if dtype is None else _dtype.to_dtype(dtype)).np_dtype
    rng = gen_or_default(generator).numpy_rng()
    return _finish(rng.permutation(int(n)).astype(dt), device, requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m = mean if isinstance(mean, Tensor) else None
        s = std if isinstance(std, Tensor) else None
        ref = m if m is not None else s
        noise = randn(tuple(ref.shape), generator=generator, dtype=ref.dtype, device=ref.device)
        return (noise * std + mean).detach()
    return randn(tuple(size), generator=generator, dtype=dtype, device=device) * std + mean


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    probs = input if p is None else full_like(input, p)
    u = rand(tuple(input.shape), generator=generator, dtype=input.dtype, device=input.device)
    return wrap((u._data < probs._data).astype(input._data.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Sample category indices from the (unnormalised) rows of ``input`` (``torch.multinomial``)."""
    rng = gen_or_default(generator).numpy_rng()
    p = np.asarray(input.detach().cpu()._data, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {p.ndim}-D")
    if not np.isfinite(p).all() or (p < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    rows = p.reshape(-1, p.shape[-1])
    if (rows.sum(axis=1) <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                           f"({num_samples} > {rows.shape[1]})")
    if not replacement and num_samples > int((rows > 0).sum(axis=1).min()):
        raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, not enough "
                           "non-negative category to sample)")
    out = np.stack([rng.choice(rows.shape[1], num_samples, replace=replacement, p=r / r.sum()) for r in rows])
    out = out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64)
    return _finish(out, input.device, False)
