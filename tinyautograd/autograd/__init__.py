"""``tinyautograd.autograd``: backward, grad, Function, gradcheck, anomaly detection, grad mode."""
from __future__ import annotations

import numpy as np

from .engine import Node, run_backward
from .function import Function, FunctionCtx
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled, state as _state)
from . import graph  # noqa: F401

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
            r = Tensor._wrap(r if r.shape == t._data.shape else np.broadcast_to(r, t._data.shape).copy())
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


def _as_inputs(inputs):
    from ..tensor import Tensor

    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def _numerical_jacobian(fn, inputs, i: int, eps: float):
    x = inputs[i]
    data = x._data  # perturbed in place, element by element (works for non-contiguous inputs too)
    cols = []
    for k in range(data.size):
        at = np.unravel_index(k, data.shape)
        orig = data[at].item()
        data[at] = orig + eps
        plus = [o._data.astype(np.float64).ravel().copy() for o in _outputs(fn(*inputs))]
        data[at] = orig - eps
        minus = [o._data.astype(np.float64).ravel().copy() for o in _outputs(fn(*inputs))]
        data[at] = orig
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]))
    n_out = sum(o._data.size for o in _outputs(fn(*inputs)))
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _outputs(out):
    from ..tensor import Tensor

    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _analytical_jacobian(fn, inputs, diff_idx):
    from ..tensor import Tensor

    outs = _outputs(fn(*inputs))
    rows = []
    for o in outs:
        for k in range(o._data.size):
            seed = np.zeros(o._data.size, dtype=o._data.dtype)
            seed[k] = 1
            if not o.requires_grad:
                rows.append(np.concatenate([np.zeros(inputs[i]._data.size) for i in diff_idx]))
                continue
            gs = grad([o], [inputs[i] for i in diff_idx], [Tensor._wrap(seed.reshape(o._data.shape))],
                      retain_graph=True, allow_unused=True)
            rows.append(np.concatenate([
                (g._data.astype(np.float64).ravel() if g is not None else np.zeros(inputs[i]._data.size))
                for g, i in zip(gs, diff_idx)]))
    n_in = sum(inputs[i]._data.size for i in diff_idx)
    return np.stack(rows) if rows else np.zeros((0, n_in))


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **_ignored) -> bool:
    """Compare the backward of ``func`` with central finite differences (inputs should be float64), as
    ``torch.autograd.gradcheck``."""
    inputs = _as_inputs(inputs)
    from ..tensor import Tensor

    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    for i in diff_idx:
        if inputs[i]._data.dtype != np.float64:
            import warnings

            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}, not float64; the check may fail from "
                          "rounding alone", stacklevel=2)
    analytical = _analytical_jacobian(func, inputs, diff_idx)
    with no_grad():
        numerical = np.concatenate([_numerical_jacobian(func, inputs, i, eps) for i in diff_idx], axis=1) \
            if diff_idx else np.zeros_like(analytical)
    if not np.allclose(analytical, numerical, rtol=rtol, atol=atol, equal_nan=False):
        if raise_exception:
            diff = np.abs(analytical - numerical)
            raise GradcheckError(
                f"Jacobian mismatch for output 0 with respect to the differentiable inputs {diff_idx}: the largest "
                f"difference is {diff.max():.3e}.\nnumerical:{numerical}\nanalytical:{analytical}")
        return False
    return True


class GradcheckError(RuntimeError):
    pass


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, **_ignored) -> bool:
    """gradcheck of the first derivative (built with ``create_graph=True``): checks second derivatives."""
    from ..tensor import Tensor

    inputs = _as_inputs(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _outputs(func(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [Tensor._wrap(rng.standard_normal(o._data.shape).astype(o._data.dtype)) for o in outs]
    grad_outputs = list(_as_inputs(grad_outputs))
    for g in grad_outputs:
        g.requires_grad_(True)

    def first_derivative(*args):
        xs = args[:len(inputs)]
        gos = args[len(inputs):]
        # gradcheck evaluates this under no_grad for its finite differences; the first derivative needs the tape
        with enable_grad():
            os_ = _outputs(func(*xs))
            gs = grad(list(os_), [xs[i] for i in diff_idx], list(gos), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor._wrap(xs[i]._data * 0) for g, i in zip(gs, diff_idx))

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)

