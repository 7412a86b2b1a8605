"""``tinyautograd.autograd``: backward, grad, Function, gradcheck, anomaly detection, grad mode."""
from __future__ import annotations

import numpy as np

from ..backend import array_module
from .engine import Node, run_backward
from .function import Function, FunctionCtx
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled, state as _state)
from . import graph  # noqa: F401
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402  (after grad: it calls grad)

__all__ = ["backward", "grad", "Function", "FunctionCtx", "gradcheck", "gradgradcheck", "detect_anomaly",
           "set_detect_anomaly", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "Node"]


def _seed_grads(outputs, grad_outputs, create_graph: bool, op: str):
    from ..tensor import Tensor

    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: outputs must be Tensors, got {type(out).__name__} at position {i}")
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn. The output was computed "
                "without any input that requires grad (set requires_grad=True on the inputs, and check that it was "
                "not computed under no_grad()).")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs: {op} was called on a tensor of shape "
                    f"{list(out.shape)}. Pass gradient=... (same shape as the output) or reduce it first, e.g. "
                    "out.sum().backward().")
            from ..backend import array_module

            g = Tensor._wrap(array_module(out._data).ones(out._data.shape, dtype=out._data.dtype))
        elif not isinstance(g, Tensor):
            from ..creation import tensor as _tensor

            g = _tensor(g, dtype=out.dtype, device=out.device)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {list(g.shape)} and output[{i}] "
                               f"has a shape of {list(out.shape)}. The gradient must match the output's shape.")
        if type(g._data) is not type(out._data):
            raise RuntimeError(f"{op}: the gradient is on {g.device} but the output is on {out.device}")
        if g._data.dtype != out._data.dtype:
            # torch converts a gradient of another dtype (integers included) to the output's dtype
            g = g.to(out.dtype)
        seeds.append(g if create_graph else g._data)
    return seeds


def _as_seq(x):
    from ..tensor import Tensor

    if isinstance(x, Tensor):
        return [x]
    return list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, grad_variables=None,
             inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad`` (``torch.autograd.backward``)."""
    outputs = _as_seq(tensors)
    if grad_tensors is None:
        grad_tensors = grad_variables
    grads = [None] * len(outputs) if grad_tensors is None else _as_seq(grad_tensors) \
        if not isinstance(grad_tensors, (list, tuple)) else list(grad_tensors)
    if len(grads) != len(outputs):
        raise RuntimeError(f"backward: got {len(grads)} gradients for {len(outputs)} tensors")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = _seed_grads(outputs, grads, create_graph, "backward")
    if inputs is not None:
        inputs = _as_seq(inputs)
        if not inputs:
            raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty.")
    run_backward(outputs, seeds, retain_graph, create_graph, inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False, materialize_grads: bool = False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated (``torch.autograd.grad``).
    """
    from ..tensor import Tensor

    outs = _as_seq(outputs)
    ins = _as_seq(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    seeds = _seed_grads(outs, gos, create_graph, "grad")
    results = run_backward(outs, seeds, retain_graph, create_graph, inputs=ins, accumulate=False)
    final = []
    for i, (t, r) in enumerate(zip(ins, results)):
        if r is None:
            if materialize_grads:
                final.append(Tensor._wrap(t._data * 0))
                continue
            if not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}, shape {list(t.shape)}) appears to "
                                   "not have been used in the graph. Set allow_unused=True if this is the desired "
                                   "behavior.")
            final.append(None)
            continue
        if not isinstance(r, Tensor):
            r = Tensor._wrap(r if r.shape == t._data.shape
                             else array_module(r).broadcast_to(r, t._data.shape).copy())
        if r._data.dtype != t._data.dtype:
            r = r.to(t.dtype)
        final.append(r)
    return tuple(final)


class detect_anomaly:
    """Within this block, backward names the forward op whose backward produced NaN, with its stack trace."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self.prev = _state.anomaly
        _state.anomaly = self.check_nan

    def __exit__(self, *exc) -> None:
        _state.anomaly = self.prev


class set_detect_anomaly(detect_anomaly):
    """Switch anomaly detection on or off: at once when called, back to the previous mode when used as a context
    manager and left (``torch.autograd.set_detect_anomaly``)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        super().__init__(check_nan and mode)
        self.prev = _state.anomaly
        _state.anomaly = bool(mode) and check_nan

    def __enter__(self) -> None:
        pass


def is_anomaly_enabled() -> bool:
    return _state.anomaly
