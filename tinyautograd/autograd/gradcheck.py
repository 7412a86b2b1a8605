"""``autograd.gradcheck``: compare analytical derivatives with central finite differences (float64)."""
from __future__ import annotations

import numpy as np

from .grad_mode import enable_grad, no_grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


def grad(*args, **kwargs):
    from . import grad as _grad

    return _grad(*args, **kwargs)


def _as_inputs(inputs):
    from ..tensor import Tensor

    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def _host(a):
    """A float64 NumPy copy of an array from any device, flattened."""
    a = a if isinstance(a, np.ndarray) else a.get()
    return a.astype(np.float64).ravel()


def _numerical_jacobian(fn, inputs, i: int, eps: float):
    x = inputs[i]
    data = x._data  # perturbed in place, element by element (works for non-contiguous inputs too)
    cols = []
    for k in range(data.size):
        at = np.unravel_index(k, data.shape)
        orig = data[at].item()
        data[at] = orig + eps
        plus = [_host(o._data) for o in _outputs(fn(*inputs))]
        data[at] = orig - eps
        minus = [_host(o._data) for o in _outputs(fn(*inputs))]
        data[at] = orig
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]))
    n_out = sum(o._data.size for o in _outputs(fn(*inputs)))
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _outputs(out):
    from ..tensor import Tensor

    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _analytical_jacobian(fn, inputs, diff_idx):
    from ..backend import array_module
    from ..tensor import Tensor

    outs = _outputs(fn(*inputs))
    rows = []
    for o in outs:
        for k in range(o._data.size):
            seed = array_module(o._data).zeros(o._data.size, dtype=o._data.dtype)
            seed[k] = 1
            if not o.requires_grad:
                rows.append(np.concatenate([np.zeros(inputs[i]._data.size) for i in diff_idx]))
                continue
            gs = grad([o], [inputs[i] for i in diff_idx], [Tensor._wrap(seed.reshape(o._data.shape))],
                      retain_graph=True, allow_unused=True)
            rows.append(np.concatenate([
                (_host(g._data) if g is not None else np.zeros(inputs[i]._data.size))
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
        grad_outputs = [Tensor._wrap(rng.standard_normal(o._data.shape).astype(o._data.dtype)).to(o.device)
                        for o in outs]
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

