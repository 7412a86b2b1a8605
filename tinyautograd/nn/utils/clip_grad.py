"""Gradient clipping (``torch.nn.utils.clip_grad_norm_`` and friends)."""
from __future__ import annotations

import math
from typing import Iterable

from ...ops._util import xp_of
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _norm_of(array, norm_type: float) -> float:
    xp = xp_of(array)
    if array.size == 0:
        return 0.0
    a = xp.abs(array)
    if norm_type == math.inf:
        return float(a.max())
    if norm_type == -math.inf:
        return float(a.min())
    if norm_type == 0:
        return float((a != 0).sum())
    if norm_type == 2:
        return float(xp.sqrt((a.astype(xp.float64) ** 2).sum()))
    return float(((a.astype(xp.float64) ** norm_type).sum()) ** (1.0 / norm_type))


def _combine(norms: list[float], norm_type: float) -> float:
    if norm_type == math.inf:
        return max(norms)
    if norm_type == -math.inf:
        return min(norms)
    if norm_type == 0:
        return float(sum(norms))
    return float(sum(n ** norm_type for n in norms) ** (1.0 / norm_type))


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector
    (``torch.nn.utils.get_total_norm``)."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    from ...creation import tensor as _tensor

    if not tensors:
        return _tensor(0.0)
    total = _combine([_norm_of(t._data, norm_type) for t in tensors], norm_type)
    if error_if_nonfinite and (math.isnan(total) or math.isinf(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return _tensor(total, dtype=tensors[0].dtype, device=tensors[0].device)


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))``
    (``torch.nn.utils.clip_grads_with_norm_``)."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    coef = min(float(max_norm) / (float(total_norm) + 1e-6), 1.0)
    for g in grads:
        g._data *= coef
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
