"""Reductions and the fused normalisers (softmax, log_softmax, logsumexp)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import _dtype
from ..autograd.engine import Node
from . import _fused as F
from ._util import edge, grad_state, normalize_dims, relabel, wrap, wrap_dim, xp_of
from ..tensor import Tensor

_default_float = _dtype.get_default_dtype
values_indices = namedtuple("values_indices", ["values", "indices"])


def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _expand_back(ns, g, shape: tuple, axes: tuple, keepdim: bool):
    """A reduced gradient broadcast back to the input's shape."""
    if not keepdim and axes:
        g = ns.reshape(g, _keep_shape(shape, axes))
    return ns.broadcast_to(g, shape)


class SumBackward(Node):
    __slots__ = ("in_shape", "axes", "keepdim")

    def backward(self, ns, g):
        return (_expand_back(ns, g, self.in_shape, self.axes, self.keepdim),)

    def name(self) -> str:
        return "SumBackward0"


class SumBackward1(SumBackward):
    """A sum over given dims (torch names it apart from the full ``sum()``)."""
    __slots__ = ()

    def name(self) -> str:
        return "SumBackward1"


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (all dims when None), as ``torch.sum``; bool/int inputs sum to int64."""
    d = input._data
    axes = normalize_dims(dim, d.ndim, "sum")
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np_dtype)
    elif d.dtype.kind in "bi" or d.dtype == np.uint8:
        d = d.astype(np.int64)
    y = d.sum(axis=axes, keepdims=keepdim)
    if type(y) is not type(d):
        y = xp_of(d).asarray(y)
    if grad_state.enabled and input.requires_grad:
        node = (SumBackward if dim is None else SumBackward1)((edge(input),))
        node.in_shape, node.axes, node.keepdim = d.shape, axes, keepdim
        return wrap(y, node)
    return wrap(y)


class MeanBackward(Node):
    __slots__ = ("in_shape", "axes", "keepdim", "count")

    def backward(self, ns, g):
        # an empty reduction has no elements to pass a gradient to (and 1/0 would poison double backward)
        scale = 1.0 / self.count if self.count else 0.0
        return (_expand_back(ns, g * scale, self.in_shape, self.axes, self.keepdim),)

    def name(self) -> str:
        return "MeanBackward0" if len(self.axes) == len(self.in_shape) and not self.keepdim else "MeanBackward1"


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim`` (``torch.mean``); integer inputs need ``dtype=`` as in torch."""
    d = input._data
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np_dtype)
    if d.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
            f"Got: {input.dtype}. Convert first (x.float().mean()) or pass dtype=tinyautograd.float32.")
    axes = normalize_dims(dim, d.ndim, "mean")
    count = 1
    for a in axes:
        count *= d.shape[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = d.sum(axis=axes, keepdims=keepdim) / count if count else d.sum(axis=axes, keepdims=keepdim) * np.nan
    if type(y) is not type(d):
        y = xp_of(d).asarray(y, dtype=d.dtype)
    elif y.dtype != d.dtype:
        y = y.astype(d.dtype)
    if grad_state.enabled and input.requires_grad:
        node = MeanBackward((edge(input),))
        node.in_shape, node.axes, node.keepdim, node.count = d.shape, axes, keepdim, count
        return wrap(y, node)
    return wrap(y)


class ProdBackward(Node):
    """Exact with zeros: one zero gets the product of the others, two or more zeros give zero gradients.

    With ``create_graph`` the gradient is built as prefix * suffix products of the other entries (a polynomial in
    x), so its own derivatives stay exact at zeros too (two zeros have a nonzero mixed second derivative)."""
    __slots__ = ("axes", "keepdim", "in_shape")

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        axes = self.axes
        g = _expand_back(ns, g, self.in_shape, axes, self.keepdim)
        if ns.create_graph:
            return (g * _product_of_others(x, axes),)
        is_zero = x == 0
        n_zero = ns.sum(is_zero * 1, axis=axes, keepdims=True)
        x_nz = ns.where(is_zero, 1, x)
        p_nz = ns.prod(x_nz, axes)
        grad = ns.where(is_zero, ns.where(n_zero == 1, p_nz, 0), ns.where(n_zero == 0, p_nz / x_nz, 0))
        return (g * grad,)

    def name(self) -> str:
        return "ProdBackward0"


def _product_of_others(x: Tensor, axes: tuple) -> Tensor:
    """For each entry, the product of the other entries of its reduction group, from differentiable ops only."""
    from .indexing import getitem
    from .shape import permute, reshape, stack

    shape = tuple(x.shape)
    kept = tuple(a for a in range(len(shape)) if a not in axes)
    perm = kept + tuple(axes)
    n = 1
    for a in axes:
        n *= shape[a]
    flat = reshape(permute(x, perm), tuple(shape[a] for a in kept) + (n,))
    entries = [getitem(flat, (Ellipsis, k)) for k in range(n)]
    prefix = [None] * n  # product of the entries before k
    suffix = [None] * n  # product of the entries after k
    for k in range(1, n):
        prefix[k] = entries[k - 1] if prefix[k - 1] is None else prefix[k - 1] * entries[k - 1]
    for k in range(n - 2, -1, -1):
        suffix[k] = entries[k + 1] if suffix[k + 1] is None else suffix[k + 1] * entries[k + 1]
    others = []
    for k in range(n):
        p, q = prefix[k], suffix[k]
        others.append(entries[k] * 0 + 1 if p is None and q is None else p if q is None else q if p is None else p * q)
    out = stack(others, -1) if others else flat
    out = reshape(out, tuple(shape[a] for a in perm))
    inverse = tuple(int(i) for i in np.argsort(perm))
    return permute(out, inverse)


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over one dim or all (``torch.prod``)."""
    d = input._data
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np_dtype)
    elif d.dtype.kind in "bi" or d.dtype == np.uint8:
        d = d.astype(np.int64)
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError("prod(): argument 'dim' must be int (torch reduces one dim or all)")
    axes = normalize_dims(dim, d.ndim, "prod")
    y = xp_of(d).asarray(d.prod(axis=axes, keepdims=keepdim))
    if grad_state.enabled and input.requires_grad:
        node = ProdBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape = axes, keepdim, d.shape
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


def _prod_keep(x, axes):
    """prod with keepdim over several axes (used by formulas)."""
    return prod_axes(x, axes)


def prod_axes(x: Tensor, axes: tuple) -> Tensor:
    for a in sorted(axes, reverse=True):
        x = prod(x, a, keepdim=True)
    return x


class AmaxBackward(Node):
    """Ties share the gradient evenly (torch's amax/amin and full max/min)."""
    __slots__ = ("out", "axes", "keepdim", "in_shape", "is_max")
    has_out = True

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        y = ns.out(self)
        if not self.keepdim and self.axes:
            y = ns.reshape(y, _keep_shape(self.in_shape, self.axes))
        mask = x == y
        if ns.create_graph:
            mask = ns.const(mask._data.astype(x._data.dtype))
        else:
            mask = mask.astype(x.dtype)
        count = ns.sum(mask, axis=self.axes, keepdims=True)
        return (_expand_back(ns, g, self.in_shape, self.axes, self.keepdim) * (mask / count),)

    def name(self) -> str:
        return ("Amax" if self.is_max else "Amin") + "Backward0"


def _amax_amin(input: Tensor, dim, keepdim: bool, is_max: bool, op: str) -> Tensor:
    d = input._data
    axes = normalize_dims(dim, d.ndim, op)
    if d.size == 0:
        if dim is None:
            raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. Specify "
                               "the reduction dim with the 'dim' argument.")
        for a in axes:
            if d.shape[a] == 0:
                raise IndexError(f"{op}(): Expected reduction dim {a} to have non-zero size.")
    y = d.max(axis=axes, keepdims=keepdim) if is_max else d.min(axis=axes, keepdims=keepdim)
    y = xp_of(d).asarray(y)
    if grad_state.enabled and input.requires_grad:
        node = AmaxBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape, node.is_max = axes, keepdim, d.shape, is_max
        node.out = y
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (all dims when empty); ties share the gradient (``torch.amax``)."""
    return _amax_amin(input, None if dim == () else dim, keepdim, True, "amax")


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return _amax_amin(input, None if dim == () else dim, keepdim, False, "amin")


class MaxDimBackward(Node):
    """Max/min along one dim: the gradient goes to the selected index."""
    __slots__ = ("indices", "axis", "keepdim", "in_shape", "is_max")

    def backward(self, ns, g):
        idx = self.indices
        if not self.keepdim:
            g = ns.expand_dims(g, self.axis)
            idx = idx.reshape(_keep_shape(self.in_shape, (self.axis,)))
        if ns.create_graph:
            idx = ns.const(idx)
        return (ns.scatter_add_along(self.in_shape, idx, g, self.axis),)

    def name(self) -> str:
        return "MaxBackward0" if self.is_max else "MinBackward0"


def _max_min_dim(input: Tensor, dim, keepdim: bool, is_max: bool, op: str):
    d = input._data
    axis = wrap_dim(dim, d.ndim, op)
    if d.ndim == 0:
        return values_indices(input.clone() if input.requires_grad else wrap(d.copy()),
                              wrap(xp_of(d).asarray(0, dtype=np.int64)))
    if d.shape[axis] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {axis} to have non-zero size.")
    xp = xp_of(d)
    idx = d.argmax(axis=axis, keepdims=True) if is_max else d.argmin(axis=axis, keepdims=True)
    if d.dtype.kind == "f":
        # NaN wins, as in torch
        nan_any = xp.isnan(d).any(axis=axis, keepdims=True)
        if bool(nan_any.any()):
            idx = xp.where(nan_any, xp.isnan(d).argmax(axis=axis, keepdims=True), idx)
    vals = xp.take_along_axis(d, idx, axis=axis)
    if not keepdim:
        vals = vals.squeeze(axis)
        idx = idx.squeeze(axis)
    idx = idx.astype(np.int64, copy=False)
    if grad_state.enabled and input.requires_grad:
        node = MaxDimBackward((edge(input),))
        node.indices, node.axis, node.keepdim, node.in_shape, node.is_max = idx, axis, keepdim, d.shape, is_max
        return values_indices(wrap(vals, node), wrap(idx))
    return values_indices(wrap(vals), wrap(idx))


def _max_or_min(input: Tensor, dim, keepdim: bool, is_max: bool):
    op = "max" if is_max else "min"
    if isinstance(dim, Tensor):
        from .elementwise import maximum, minimum

        return maximum(input, dim) if is_max else minimum(input, dim)
    if dim is None:
        if input._data.size == 0:
            raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                               "reduction dim with the 'dim' argument.")
        return relabel(_amax_amin(input, None, False, is_max, op), "MaxBackward1" if is_max else "MinBackward1")
    return _max_min_dim(input, dim, keepdim, is_max, op)


def max(input: Tensor, dim=None, keepdim: bool = False, *, out=None):
    """``max(x)`` the largest value; ``max(x, dim)`` (values, indices); ``max(x, other)`` elementwise."""
    return _max_or_min(input, dim, keepdim, True)


def min(input: Tensor, dim=None, keepdim: bool = False, *, out=None):
    """``min(x)`` the smallest value; ``min(x, dim)`` (values, indices); ``min(x, other)`` elementwise."""
    return _max_or_min(input, dim, keepdim, False)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = input._data
    if dim is None:
        r = xp_of(d).asarray(d.argmax(), dtype=np.int64)
        return wrap(r.reshape((1,) * d.ndim) if keepdim else r)
    axis = wrap_dim(dim, d.ndim, "argmax")
    return wrap(d.argmax(axis=axis, keepdims=keepdim).astype(np.int64))


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = input._data
    if dim is None:
        r = xp_of(d).asarray(d.argmin(), dtype=np.int64)
        return wrap(r.reshape((1,) * d.ndim) if keepdim else r)
    axis = wrap_dim(dim, d.ndim, "argmin")
    return wrap(d.argmin(axis=axis, keepdims=keepdim).astype(np.int64))


class VarBackward(Node):
    __slots__ = ("axes", "keepdim", "in_shape", "denom")

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        centered = x - ns.mean_keep(x, self.axes)
        g = _expand_back(ns, g, self.in_shape, self.axes, self.keepdim)
        return (g * centered * (2.0 / self.denom),)

    def name(self) -> str:
        return "VarBackward0"


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance with Bessel's ``correction`` (default 1; ``unbiased=False`` means 0), as ``torch.var``."""
    if isinstance(unbiased, bool) and dim is None and correction is None:
        pass
    elif isinstance(dim, bool):
        unbiased, dim = dim, None
    d = input._data
    if d.dtype.kind != "f":
        raise RuntimeError(f"var(): expected a floating point input, got {input.dtype}")
    c = _correction(unbiased, correction)
    axes = normalize_dims(dim, d.ndim, "var")
    n = 1
    for a in axes:
        n *= d.shape[a]
    denom = n - c
    xp = xp_of(d)
    m = d.mean(axis=axes, keepdims=True) if n else d.sum(axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = ((d - m) ** 2).sum(axis=axes, keepdims=keepdim) / (denom if denom > 0 else (0.0 if denom == 0 else
                                                                                        float("nan")))
    y = xp.asarray(y, dtype=d.dtype)
    if grad_state.enabled and input.requires_grad:
        node = VarBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape, node.denom = axes, keepdim, d.shape, denom if denom else 0.0
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


class StdBackward(Node):
    """d std = (x - mean) / (denom * std); where std is 0 (all values equal) the gradient is 0, as torch."""
    __slots__ = ("out", "axes", "keepdim", "in_shape", "denom")

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        y = ns.out(self)
        if not self.keepdim and self.axes:
            y = ns.reshape(y, _keep_shape(self.in_shape, self.axes))
        g = _expand_back(ns, g, self.in_shape, self.axes, self.keepdim)
        centered = x - ns.mean_keep(x, self.axes)
        if ns.create_graph:
            scale = (y != 0) / ((y + (y == 0)) * self.denom)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = ns.where(y == 0, 0.0, 1.0 / (y * self.denom))
        return (g * centered * scale,)

    def name(self) -> str:
        return "StdBackward0"


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation, ``sqrt(var(...))`` with the same arguments (``torch.std``)."""
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    v = var(input.detach(), dim, unbiased, keepdim, correction=correction)
    y = xp_of(v._data).sqrt(v._data)
    if grad_state.enabled and input.requires_grad:
        d = input._data
        axes = normalize_dims(dim, d.ndim, "std")
        n = 1
        for a in axes:
            n *= d.shape[a]
        node = StdBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape, node.out = axes, keepdim, d.shape, y
        node.denom = n - _correction(unbiased, correction)
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class NormBackward(Node):
    """p-norm: d||x||_p = sign(x) |x|^(p-1) / ||x||_p^(p-1) (x / ||x|| for p = 2), and 0 where the norm is 0
    (torch's subgradient)."""
    __slots__ = ("out", "axes", "keepdim", "in_shape", "p")
    has_out = True

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        y = ns.out(self)
        if not self.keepdim and self.axes:
            y = ns.reshape(y, _keep_shape(self.in_shape, self.axes))
            g = ns.reshape(g, _keep_shape(self.in_shape, self.axes))
        if ns.create_graph:
            safe = y + (y == 0)
        else:
            safe = ns.where(y == 0, 1, y)
        p = self.p
        if p == 2:
            return (g * x / safe,)
        scaled = x / safe  # |x| <= ||x||, so the power cannot overflow
        return (g * ns.sign(x) * ns.abs(scaled) ** (p - 1),)

    def name(self) -> str:
        return "NormBackward1"


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over ``dim`` (``torch.norm``): 2/'fro' fused, inf/-inf via amax/amin, other p composed."""
    from .elementwise import abs as _abs, pow as _pow

    d = input._data
    if d.dtype.kind != "f":
        raise RuntimeError(f"norm(): input dtype should be a floating point type, got {input.dtype}")
    if p == "fro" and dim is not None and not isinstance(dim, (int, np.integer)) and len(dim) > 2:
        # torch treats 'fro' over an explicit dim tuple as a matrix norm
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)} (use "
                           "p=2 for the 2-norm over more dims)")
    if p == "fro" or p == 2 or p is None:
        axes = normalize_dims(dim, d.ndim, "norm")
        y = xp_of(d).sqrt((d * d).sum(axis=axes, keepdims=keepdim))
        y = xp_of(d).asarray(y, dtype=d.dtype)
        if grad_state.enabled and input.requires_grad:
            node = NormBackward((edge(input),))
            node.axes, node.keepdim, node.in_shape, node.out, node.p = axes, keepdim, d.shape, y, 2
            node.saved = (input,)
            node.versions = (input._version[0],)
            return wrap(y, node)
        return wrap(y)
    if p in (float("inf"), float("-inf")) and d.size == 0:
        for a in normalize_dims(dim, d.ndim, "norm"):
            if d.shape[a] == 0 or dim is None:
                raise RuntimeError(f"linalg.vector_norm cannot compute the {p} norm on the dimension {a} because "
                                   "this dimension is empty and the operation does not have an identity")
    if p == float("inf"):
        return amax(_abs(input), dim if dim is not None else (), keepdim)
    if p == float("-inf"):
        return amin(_abs(input), dim if dim is not None else (), keepdim)
    if p == 0:
        return sum((input != 0).to(input.dtype), dim, keepdim)
    if p == "nuc":
        raise RuntimeError("norm(p='nuc') needs a singular value decomposition, which tinyautograd does not "
                           "provide; use p=2 or 'fro'")
    if not isinstance(p, (int, float)) or p < 1:
        # below 1 it is not a norm and torch's gradient has no closed-form safety; compose it
        return _pow(sum(_pow(_abs(input), p), dim, keepdim), 1.0 / p)
    axes = normalize_dims(dim, d.ndim, "norm")
    xp = xp_of(d)
    a = xp.abs(d)
    m = a.max(axis=axes, keepdims=True) if d.size else a.sum(axis=axes, keepdims=True)
    m = xp.where(m == 0, 1, m)
    # scale by the largest entry so |x|^p neither overflows nor underflows
    y = (((a / m) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)) * m
    if not keepdim:
        y = y.reshape(tuple(s for i, s in enumerate(d.shape) if i not in axes))
    y = xp.asarray(y, dtype=d.dtype)
    if grad_state.enabled and input.requires_grad:
        node = NormBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape, node.out, node.p = axes, keepdim, d.shape, y, float(p)
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


class LogsumexpBackward(Node):
    __slots__ = ("out", "axes", "keepdim", "in_shape")
    has_out = True

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        y = ns.out(self)
        if not self.keepdim and self.axes:
            y = ns.reshape(y, _keep_shape(self.in_shape, self.axes))
            g = ns.reshape(g, _keep_shape(self.in_shape, self.axes))
        return (g * ns.exp(x - y),)

    def name(self) -> str:
        return "LogsumexpBackward0"


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x), dim))`` computed stably (``torch.logsumexp``)."""
    d = input._data
    if d.dtype.kind != "f":
        d = d.astype(_default_float().np_dtype)
    xp = xp_of(d)
    axes = normalize_dims(dim, d.ndim, "logsumexp")
    if d.size == 0:
        with np.errstate(divide="ignore"):  # the log of an empty sum is -inf, as in torch
            y = xp.log(xp.exp(d).sum(axis=axes, keepdims=keepdim))
    else:
        m = d.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):
            y = xp.log(xp.exp(d - m).sum(axis=axes, keepdims=True)) + m
        if not keepdim:
            y = y.reshape(tuple(s for i, s in enumerate(d.shape) if i not in axes))
    y = xp.asarray(y, dtype=d.dtype)
    if grad_state.enabled and input.requires_grad:
        node = LogsumexpBackward((edge(input),))
        node.axes, node.keepdim, node.in_shape, node.out = axes, keepdim, d.shape, y
        node.saved = (input,)
        node.versions = (input._version[0],)
        return wrap(y, node)
    return wrap(y)


class SoftmaxBackward(Node):
    __slots__ = ("out", "axis")
    has_out = True

    def backward(self, ns, g):
        y = ns.out(self)
        if not ns.create_graph and F.rows_apply(ns.xp, self.axis, y, g):
            return (F.rows(ns.xp, F.SOFTMAX_BACKWARD, self.axis, g, y),)
        return (y * (g - ns.sum(g * y, axis=self.axis, keepdims=True)),)

    def name(self) -> str:
        return "SoftmaxBackward0"


class LogSoftmaxBackward(Node):
    __slots__ = ("out", "axis")
    has_out = True

    def backward(self, ns, g):
        y = ns.out(self)
        if not ns.create_graph and F.rows_apply(ns.xp, self.axis, y, g):
            return (F.rows(ns.xp, F.LOG_SOFTMAX_BACKWARD, self.axis, g, y),)
        return (g - ns.exp(y) * ns.sum(g, axis=self.axis, keepdims=True),)

    def name(self) -> str:
        return "LogSoftmaxBackward0"


def _softmax_dim(input: Tensor, dim, op: str) -> int:
    if dim is None:
        # torch's legacy implicit dim choice (with a deprecation warning there)
        nd = input._data.ndim
        dim = 0 if nd in (0, 1, 3) else 1
    return wrap_dim(dim, input._data.ndim, op)


def _softmax_family(input: Tensor, dim, dtype, op: str, node_cls, kernel, formula, zero_d):
    """softmax/log_softmax: validation, dim choice, the row kernel where it applies (CUDA), else
    ``formula(xp, d, axis)``; ``zero_d(xp, d)`` for a 0-d input."""
    d = input._data if dtype is None else input._data.astype(_dtype.to_dtype(dtype).np_dtype)
    if d.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating point input, got {input.dtype}")
    axis = _softmax_dim(input, dim, op)
    xp = xp_of(d)
    if d.ndim == 0:
        y = zero_d(xp, d)
    elif d.size == 0:
        y = d.copy()
    elif F.rows_apply(xp, axis, d):
        y = F.rows(xp, kernel, axis, d)
    else:
        y = formula(xp, d, axis)
    if grad_state.enabled and input.requires_grad:
        node = node_cls((edge(input),))
        node.out, node.axis = y, axis
        return wrap(y, node)
    return wrap(y)


def _softmax_arrays(xp, d, axis):
    e = xp.exp(d - d.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax_arrays(xp, d, axis):
    shifted = d - d.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x), dim)``, stable for any magnitude (``torch.softmax``)."""
    return _softmax_family(input, dim, dtype, "softmax", SoftmaxBackward, F.SOFTMAX, _softmax_arrays,
                           lambda xp, d: xp.ones_like(d))


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``x - logsumexp(x, dim)``, stable (``torch.log_softmax``)."""
    return _softmax_family(input, dim, dtype, "log_softmax", LogSoftmaxBackward, F.LOG_SOFTMAX,
                           _log_softmax_arrays, lambda xp, d: xp.zeros_like(d))


class CumsumBackward(Node):
    __slots__ = ("axis",)

    def backward(self, ns, g):
        a = self.axis
        if g.ndim == 0:  # the running sum of a 0-d tensor is the tensor itself
            return (g,)
        return (ns.flip(ns.cumsum(ns.flip(g, a), a), a),)

    def name(self) -> str:
        return "CumsumBackward0"


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sum along ``dim`` (``torch.cumsum``)."""
    d = input._data
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np_dtype)
    elif d.dtype.kind in "bi" or d.dtype == np.uint8:
        d = d.astype(np.int64)
    axis = wrap_dim(dim, d.ndim, "cumsum")
    y = xp_of(d).cumsum(d, axis=axis) if d.ndim else d.copy()
    if grad_state.enabled and input.requires_grad:
        node = CumsumBackward((edge(input),))
        node.axis = axis
        return wrap(y, node)
    return wrap(y)


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running product along ``dim``, composed from differentiable ops (exact with zeros only in forward)."""
    from .shape import unbind, stack

    axis = wrap_dim(dim, input._data.ndim, "cumprod")
    if not input.requires_grad or not grad_state.enabled:
        return wrap(xp_of(input._data).cumprod(input._data, axis=axis))
    parts = unbind(input, axis)
    acc = []
    for p in parts:
        acc.append(p if not acc else acc[-1] * p)
    return stack(acc, axis)


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = input._data
    axes = normalize_dims(dim, d.ndim, "all")
    return wrap(xp_of(d).asarray(d.astype(bool).all(axis=axes, keepdims=keepdim)))


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = input._data
    axes = normalize_dims(dim, d.ndim, "any")
    return wrap(xp_of(d).asarray(d.astype(bool).any(axis=axes, keepdims=keepdim)))


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    d = input._data
    axes = normalize_dims(dim, d.ndim, "count_nonzero")
    return wrap(xp_of(d).asarray((d != 0).sum(axis=axes), dtype=np.int64))
