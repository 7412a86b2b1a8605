"""The two namespaces a backward formula runs in.

A formula is written once, with Python operators and the functions below. In a first-order backward the
engine passes an ``ArrayNamespace`` (raw numpy/cupy arrays, nothing recorded: the fast path); with
``create_graph=True`` it passes the ``TensorNamespace``, whose functions are tinyautograd's own differentiable
ops, so the formula is recorded and can be differentiated again.
"""
from __future__ import annotations

import numpy as np

from .engine import freed_error, output_version_error, version_error


def _check_saved(node):
    saved = node.saved
    if saved is None:
        raise freed_error(node)
    versions = node.versions
    for t, v in zip(saved, versions):
        if t._version[0] != v:
            raise version_error(node, t, v)
    return saved


def _check_out(node):
    out = node.out
    if out is None:
        raise freed_error(node)
    version = getattr(node, "out_version", None)
    if version is not None and version[0]:
        raise output_version_error(node)
    return out


def sparse_grid(xp, shape: tuple) -> list:
    """``numpy.indices(shape, sparse=True)`` on any array module (CuPy's ``indices`` has no ``sparse``)."""
    grid = np.indices(shape, sparse=True)
    return list(grid) if xp is np else [xp.asarray(a) for a in grid]


def sign_array(xp, d):
    """torch's ``sign`` on an array: NumPy's, except that NaN gives 0 (as torch's does), without a ``where``."""
    if d.dtype.kind == "b":
        return d.copy()  # torch: the sign of a bool is itself
    if d.dtype.kind != "f":
        return xp.sign(d)
    y = xp.greater(d, 0).astype(d.dtype)
    y -= xp.less(d, 0)
    return y


class ArrayNamespace:
    create_graph = False

    def __init__(self, xp) -> None:
        self.xp = xp
        for name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "abs", "log1p", "expm1", "cosh",
                     "sinh", "maximum", "minimum", "square", "reciprocal", "floor", "cumsum", "flip"):
            if hasattr(xp, name):
                setattr(self, name, getattr(xp, name))
        self.matmul = xp.matmul
        self.where = xp.where

    # saved values ----------------------------------------------------------------------------------------------
    def sign(self, d):
        return sign_array(self.xp, d)

    def saved(self, node):
        saved = _check_saved(node)
        return [t._data for t in saved]

    def out(self, node):
        """The op's own output, saved as an array (re-wrapped with its node when recording)."""
        return _check_out(node)

    def const(self, array):
        return array

    def is_tensor(self, x) -> bool:
        return False

    # shape plumbing --------------------------------------------------------------------------------------------
    @staticmethod
    def sum_to(g, shape):
        from ..ops._util import sum_to_array

        return sum_to_array(g, shape)

    @staticmethod
    def sum(x, axis=None, keepdims=False):
        return x.sum(axis=axis, keepdims=keepdims)

    def broadcast_to(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    @staticmethod
    def reshape(x, shape):
        return x.reshape(shape)

    @staticmethod
    def permute(x, axes):
        return x.transpose(axes)

    @staticmethod
    def swap_last(x):
        return x.swapaxes(-1, -2)

    def expand_dims(self, x, axes):
        return self.xp.expand_dims(x, axes)

    @staticmethod
    def getitem(x, index):
        return x[index]

    def index_put_acc(self, shape, index, g, unique: bool = False):
        """zeros(shape) with ``g`` added at ``index`` (repeated indices accumulate)."""
        xp = self.xp
        out = xp.zeros(shape, dtype=g.dtype)
        if unique:
            out[index] = g
        else:
            xp.add.at(out, index, g)
        return out

    def zeros_like(self, x):
        return self.xp.zeros_like(x)

    def ones_like(self, x):
        return self.xp.ones_like(x)

    def zeros(self, shape, like):
        return self.xp.zeros(shape, dtype=like.dtype)

    def cat(self, xs, axis):
        return self.xp.concatenate(xs, axis=axis)

    def take_along(self, x, idx, axis):
        return self.xp.take_along_axis(x, idx, axis=axis)

    def scatter_add_along(self, shape, idx, g, axis):
        """zeros(shape) with g[i] added at idx[i] along ``axis`` (the backward of gather)."""
        xp = self.xp
        out = xp.zeros(shape, dtype=g.dtype)
        index = sparse_grid(xp, idx.shape)
        index[axis] = idx
        xp.add.at(out, tuple(index), g)
        return out

    def pad(self, x, pad_width, value=0.0):
        return self.xp.pad(x, pad_width, constant_values=value)

    def roll(self, x, shifts, axis):
        return self.xp.roll(x, shifts, axis=axis)

    def tril(self, x, k):
        return self.xp.tril(x, k)

    def triu(self, x, k):
        return self.xp.triu(x, k)

    def sigmoid(self, x):
        return 1.0 / (1.0 + self.xp.exp(-x))

    def prod(self, x, axes):
        return x.prod(axis=axes, keepdims=True)

    @staticmethod
    def mean_keep(x, axes):
        return x.mean(axis=axes, keepdims=True)

    def astype_like(self, x, like):
        return x.astype(like.dtype, copy=False)

    def einsum(self, spec, *xs):
        return self.xp.einsum(spec, *xs)

    def masked_fill(self, x, mask, value):
        return self.xp.where(mask, value, x)

    def softmax(self, x, axis):
        m = x.max(axis=axis, keepdims=True)
        e = self.xp.exp(x - m)
        return e / e.sum(axis=axis, keepdims=True)

    def repeat_interleave_sum(self, g, shape, reps):
        """The backward of tile/repeat: fold each repeated block back onto its source and sum."""
        split_shape = []
        for r, s in zip(reps, shape):
            split_shape += [r, s]
        g = g.reshape(split_shape)
        return g.sum(axis=tuple(range(0, 2 * len(shape), 2)))


class TensorNamespace:
    """The same functions on Tensors; filled in by ``ops._bind`` with tinyautograd's differentiable ops."""

    create_graph = True

    def saved(self, node):
        return list(_check_saved(node))

    def out(self, node):
        from ..tensor import Tensor

        # the output again, with its node as history (its second derivative flows through it) and its own
        # version counter (wrapping it with the node would give the node a fresh counter)
        t = Tensor._wrap(_check_out(node))
        t.grad_fn = node
        t.requires_grad = True
        version = getattr(node, "out_version", None)
        if version is not None:
            t._version = version
        return t

    def const(self, array):
        from ..tensor import Tensor

        return Tensor._wrap(array)

    def is_tensor(self, x) -> bool:
        return True


tensor_namespace = TensorNamespace()
_array_namespaces: dict = {}


def namespace_for(g, create_graph: bool):
    if create_graph:
        return tensor_namespace
    t = type(g)
    ns = _array_namespaces.get(t)
    if ns is None:
        if t is np.ndarray or isinstance(g, (np.generic, float, int)):
            ns = ArrayNamespace(np)
        else:
            import cupy

            ns = ArrayNamespace(cupy)
        _array_namespaces[t] = ns
    return ns
