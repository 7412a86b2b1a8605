"""Gradient clipping (``torch.nn.utils.clip_grad_norm_`` and friends)."""
from __future__ import annotations

import math
from typing import Iterable

from ...ops._util import xp_of
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _norm_of(array, norm_type: float):
    """``array``'s ``norm_type``-norm as a 0-d float64 array on its device (no read on the host)."""
    xp = xp_of(array)
    if array.size == 0:
        if math.isinf(norm_type):
            name = "infinity" if norm_type > 0 else "-inf"
            raise RuntimeError(f"clip_grad_norm_ cannot compute the {name} norm on an empty tensor (shape "
                               f"{list(array.shape)}) because the operation does not have an identity; leave "
                               "parameters with empty gradients out, or use a finite norm_type")
        return xp.zeros((), dtype=xp.float64)
    a = xp.abs(array)
    if norm_type == math.inf:
        return a.max().astype(xp.float64)
    if norm_type == -math.inf:
        return a.min().astype(xp.float64)
    if norm_type == 0:
        return (a != 0).sum().astype(xp.float64)
    if norm_type == 2:
        return xp.sqrt((a.astype(xp.float64) ** 2).sum())
    return ((a.astype(xp.float64) ** norm_type).sum()) ** (1.0 / norm_type)


def _combine(xp, norms: list, norm_type: float):
    """The ``norm_type``-norm of the per-tensor norms, as torch combines them (so the 0-"norm" counts the tensors
    with a nonzero entry, not the entries)."""
    norms = xp.stack(norms)
    if norm_type == math.inf:
        return norms.max()
    if norm_type == -math.inf:
        return norms.min()
    if norm_type == 0:
        return (norms != 0).sum().astype(xp.float64)
    return (norms ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together: the norm of their norms, as if concatenated into one
    vector for p > 0 (``torch.nn.utils.get_total_norm``). Computed on the tensors' device, in float64: nothing is
    read on the host (a CUDA training step does not wait for the GPU) unless ``error_if_nonfinite`` asks to."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    from ...creation import tensor as _tensor

    if not tensors:
        return _tensor(0.0)
    xp = xp_of(tensors[0]._data)
    total = _combine(xp, [_norm_of(t._data, norm_type) for t in tensors], norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return Tensor._wrap(xp.asarray(total, dtype=tensors[0]._data.dtype))


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))``
    (``torch.nn.utils.clip_grads_with_norm_``), the factor computed on the device."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    norm = total_norm._data if isinstance(total_norm, Tensor) else total_norm
    xp = xp_of(grads[0]._data)
    if isinstance(norm, (int, float)) or xp_of(norm) is not xp:  # a number, or a norm computed on another device
        norm = xp.asarray(float(norm))
    coef = xp.minimum(float(max_norm) / (norm.astype(xp.float64) + 1e-6), 1.0)
    by_dtype = {}
    for g in grads:
        dtype = g._data.dtype
        if dtype not in by_dtype:
            by_dtype[dtype] = coef.astype(dtype)
        g._data *= by_dtype[dtype]
        g._version[0] += 1


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients in place so their joint ``norm_type``-norm is at most ``max_norm``; returns the norm
    before clipping as a tensor (``torch.nn.utils.clip_grad_norm_``)."""
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient in place to ``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``)."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        g = p.grad
        if g is None:
            continue
        xp_of(g._data).clip(g._data, -clip_value, clip_value, out=g._data)
        g._version[0] += 1
