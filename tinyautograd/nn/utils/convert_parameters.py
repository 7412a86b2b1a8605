"""Flatten parameters into one vector and back (``torch.nn.utils.parameters_to_vector``)."""
from __future__ import annotations

from typing import Iterable

from ...ops.shape import cat, reshape
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_device(param: Tensor, old_device):
    if old_device is not None and param.device != old_device:
        raise TypeError(f"Found two parameters on different devices, this is currently not supported "
                        f"({old_device} and {param.device}).")
    return param.device


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable, as in torch)."""
    device = None
    flat = []
    for p in parameters:
        device = _check_device(p, device)
        flat.append(reshape(p, (-1,)))
    return cat(flat)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Point each parameter's data at its slice of ``vec`` (shared memory, as torch's ``param.data = ...``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device = None
    pointer = 0
    for p in parameters:
        device = _check_device(p, device)
        n = p.numel()
        if pointer + n > vec.numel():
            raise RuntimeError(f"vector_to_parameters: vec has {vec.numel()} elements, fewer than the parameters "
                               f"need (at least {pointer + n})")
        p._data = vec._data[pointer:pointer + n].reshape(p._data.shape)
        pointer += n
