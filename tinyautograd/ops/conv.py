"""Convolution, pooling and im2col as fused ops, each with its own Node (``torch.nn.functional``'s signatures).

How the work is laid out:

- Convolution is im2col plus one GEMM. The input is copied once into a zero-padded buffer in *batch-last* layout
  ``(C, *P, N)``; a strided view of it lists every window, ``(C, *K, *O, N)``; reshaping that view is the im2col
  copy, ``(groups, C/groups * prod(K), prod(O) * N)``; one batched ``matmul`` with the weight gives the output.
  Batch-last keeps the innermost runs long (``O_w * N`` elements) in both the im2col copy and in col2im.
- Its backward is two more GEMMs: the weight gradient against the saved columns, and the input gradient, whose
  columns are folded back (col2im) by one strided add per kernel offset (25 for a 5x5 kernel), never per pixel.
- The three maps are bilinear and each one's derivatives are the other two, with roles swapped:
  ``y = conv(x, w)``, ``gx = conv_transpose(g, w)``, ``gw = conv_weight(x, g)``. Each has a Node whose formula
  calls the other two, on arrays in a first-order backward and as recorded ops under ``create_graph``, so every
  derivative order works. ``conv_transpose*d`` is the second map, with a bias.
- Max pooling keeps, per output, which kernel offset held the maximum (a small int), found with one elementwise
  pass per offset over strided views; its backward scatters by offset (overlapping windows add up), and the
  backward of that scatter is the matching gather. Average pooling is a linear map and its adjoint. ``unfold``
  and ``fold`` are adjoint to each other in the same way.
"""
from __future__ import annotations

import builtins
import functools
import itertools
import math

import numpy as np

from ..autograd.engine import Node
from . import _fused as F
from ._util import check_same_device, edge, grad_state, wrap, xp_of
from .indexing import gather
from .linalg import matmul
from .shape import flatten, movedim
from ..tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "unfold", "fold"]

_ALL = slice(None)


# ---------------------------------------------------------------------------------------------------------------
# geometry: where the windows sit

class _Geom:
    """The windows of one convolution or pooling over ``d`` spatial dims.

    ``size`` is the input's spatial size, ``pad_lo`` the padding before it, ``padded`` a buffer size that holds
    the padded input and every window, ``out`` the number of windows per dim. ``offsets`` lists, for every kernel
    offset, the offset and the spatial slices of the padded buffer that hold that element of every window.
    """

    __slots__ = ("kernel", "stride", "dilation", "pad_lo", "size", "padded", "out", "interior", "offsets")

    def __init__(self, kernel: tuple, stride: tuple, dilation: tuple, pad_lo: tuple, pad_hi: tuple, size: tuple,
                 out: tuple) -> None:
        self.kernel, self.stride, self.dilation, self.pad_lo, self.size, self.out = \
            kernel, stride, dilation, pad_lo, size, out
        self.padded = tuple(builtins.max(lo + s + hi, (o - 1) * st + dl * (k - 1) + 1)
                            for k, st, dl, lo, hi, s, o in zip(kernel, stride, dilation, pad_lo, pad_hi, size, out))
        self.interior = tuple(slice(lo, lo + s) for lo, s in zip(pad_lo, size))
        self.offsets = [(off, tuple(slice(k * dl, k * dl + st * (o - 1) + 1, st)
                                    for k, dl, st, o in zip(off, dilation, stride, out)))
                        for off in itertools.product(*(range(k) for k in kernel))]

    @property
    def is_padded(self) -> bool:
        return self.padded != self.size

    def disjoint(self) -> bool:
        """Whether no input element lies in two windows (then scatters may assign instead of add)."""
        return builtins.all(st >= dl * (k - 1) + 1 for k, st, dl in zip(self.kernel, self.stride, self.dilation))


@functools.lru_cache(maxsize=512)
def _geom(kernel: tuple, stride: tuple, dilation: tuple, pad_lo: tuple, pad_hi: tuple, size: tuple,
          out: tuple) -> _Geom:
    """A shared ``_Geom`` per distinct geometry: a training loop builds the same few again every step."""
    return _Geom(kernel, stride, dilation, pad_lo, pad_hi, size, out)


def _ntuple(value, n: int, name: str, op: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    try:
        value = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}(): {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise RuntimeError(f"{op}(): expected {name} to be a single integer value or a list of {n} values to match "
                           f"the {n} spatial dims, but got {name}={list(value)}")
    return value


def _fmt(t: tuple) -> str:
    return " x ".join(str(v) for v in t)


def _padded_batch_last(xp, x, geom: _Geom):
    """``(N, C, *S)`` -> ``(C, *P, N)`` with zeros around the input: one copy that also moves the batch last."""
    d = x.ndim - 2
    perm = tuple(range(1, d + 2)) + (0,)
    if not geom.is_padded:
        return xp.ascontiguousarray(x.transpose(perm))
    buf = xp.zeros((x.shape[1],) + geom.padded + (x.shape[0],), dtype=x.dtype)
    buf[(_ALL,) + geom.interior + (_ALL,)] = x.transpose(perm)
    return buf


def _padded_batch_first(xp, x, geom: _Geom, fill):
    """``(N, C, *S)`` -> ``(N, C, *P)`` filled with ``fill`` around the input (the input itself when unpadded)."""
    if not geom.is_padded:
        return x
    buf = xp.full(x.shape[:2] + geom.padded, fill, dtype=x.dtype)
    buf[(_ALL, _ALL) + geom.interior] = x
    return buf


def _window_view(xp, buf, lead: int, geom: _Geom):
    """A view of ``buf`` = ``(lead axes, *P, trailing axes)`` as ``(lead axes, *K, *O, trailing axes)``."""
    d = len(geom.kernel)
    st = buf.strides
    spatial = st[lead:lead + d]
    shape = buf.shape[:lead] + geom.kernel + geom.out + buf.shape[lead + d:]
    strides = st[:lead] + tuple(s * dl for s, dl in zip(spatial, geom.dilation)) + \
        tuple(s * sd for s, sd in zip(spatial, geom.stride)) + st[lead + d:]
    return xp.lib.stride_tricks.as_strided(buf, shape, strides)


def _interior(buf, geom: _Geom, lead: int):
    """The input-sized part of a padded buffer (lead axes first)."""
    if not geom.is_padded:
        return buf
    return buf[(_ALL,) * lead + geom.interior + (_ALL,) * (buf.ndim - lead - len(geom.kernel))]


# ---------------------------------------------------------------------------------------------------------------
# convolution: the three bilinear maps on arrays

class _ConvSpec:
    """Everything the conv maps share: window geometry, groups, and the input, weight and output shapes."""

    __slots__ = ("geom", "groups", "x_shape", "w_shape", "y_shape")

    def __init__(self, geom: _Geom, groups: int, x_shape: tuple, w_shape: tuple) -> None:
        self.geom, self.groups, self.x_shape, self.w_shape = geom, groups, x_shape, w_shape
        self.y_shape = (x_shape[0], w_shape[0]) + geom.out

    @property
    def bias_axes(self) -> tuple:
        return (0,) + tuple(range(2, 2 + len(self.geom.kernel)))


def _im2col(xp, x, spec: _ConvSpec):
    """``(N, C, *S)`` -> columns ``(groups, C/groups * prod(K), prod(O) * N)``."""
    geom, groups = spec.geom, spec.groups
    n, c = x.shape[:2]
    view = F.im2col2d(xp, x, geom)
    if view is None:
        view = _window_view(xp, _padded_batch_last(xp, x, geom), 1, geom)
    return view.reshape(groups, c // groups * math.prod(geom.kernel), math.prod(geom.out) * n)


def _to_batch_last(xp, g, groups: int):
    """``(N, C, *O)`` -> ``(groups, C/groups, prod(O) * N)`` (a contiguous copy)."""
    d = g.ndim - 2
    gt = xp.ascontiguousarray(g.transpose(tuple(range(1, d + 2)) + (0,)))
    return gt.reshape(groups, g.shape[1] // groups, math.prod(g.shape[2:]) * g.shape[0])


def _to_batch_first(xp, y, shape: tuple):
    """``(groups, C/groups, prod(O) * N)`` -> ``(N, C, *O)`` = ``shape`` (a contiguous copy)."""
    n = shape[0]
    rows = y.size // n if n else 0
    flat = y.reshape(rows, n)
    if xp is not np or y.nbytes < _BLOCKED_TRANSPOSE_BYTES:
        return xp.ascontiguousarray(flat.T).reshape(shape)
    # NumPy transposes a large matrix element by element across the cache; row blocks that fit in L1 run ~3x faster
    out = np.empty((n, rows), dtype=y.dtype)
    step = builtins.max(1, 4096 // n)
    for r in range(0, rows, step):
        out[:, r:r + step] = flat[r:r + step].T
    return out.reshape(shape)


_BLOCKED_TRANSPOSE_BYTES = 1 << 18


def _conv_arrays(x, w, b, spec: _ConvSpec, cols=None):
    """``y = conv(x, w) + b``; returns ``(y, cols)``."""
    xp = xp_of(x)
    if cols is None:
        cols = _im2col(xp, x, spec)
    g = spec.groups
    y = xp.matmul(w.reshape(g, w.shape[0] // g, cols.shape[1]), cols)
    out = F.batch_first_bias(xp, y, b, spec.y_shape)
    if out is not None:
        return out, cols
    if b is not None:
        y += b.reshape(g, -1, 1)
    return _to_batch_first(xp, y, spec.y_shape), cols


def _conv_input_arrays(g2, w, b, spec: _ConvSpec):
    """The input gradient of a conv (= a transposed conv) from the batch-last output gradient ``g2``: one GEMM
    into columns, then col2im by one strided add per kernel offset."""
    xp = xp_of(g2)
    groups, geom = spec.groups, spec.geom
    n, c = spec.x_shape[:2]
    wm = w.reshape(groups, w.shape[0] // groups, -1)
    cols = xp.matmul(wm.transpose(0, 2, 1), g2).reshape((c,) + geom.kernel + geom.out + (n,))
    fused = F.col2im2d(xp, cols, b, geom, spec.x_shape)
    if fused is not None:
        return fused
    buf = xp.zeros((c,) + geom.padded + (n,), dtype=cols.dtype)
    for off, sl in geom.offsets:
        dst = buf[(_ALL,) + sl + (_ALL,)]  # a view added into: `buf[...] += ` would also copy it back
        dst += cols[(_ALL,) + off]
    if b is not None:
        buf += b.reshape((c,) + (1,) * (len(geom.kernel) + 1))
    d = len(geom.kernel)
    return xp.ascontiguousarray(_interior(buf, geom, 1).transpose((d + 1,) + tuple(range(d + 1))))


def _conv_weight_arrays(cols, g2, spec: _ConvSpec):
    """The weight gradient: ``g2 @ cols^T`` per group, one GEMM, written into a fresh weight-shaped array (not a
    reshaped view: the engine hands an unshared array of its own to the weight's ``.grad`` without a copy)."""
    xp = xp_of(g2)
    out = xp.empty(spec.w_shape, dtype=g2.dtype)
    xp.matmul(g2, cols.transpose(0, 2, 1), out=out.reshape(g2.shape[0], g2.shape[1], cols.shape[1]))
    return out


# the differentiable maps: each Node's formula uses the other two --------------------------------------------------

def _needs(*tensors) -> bool:
    return grad_state.enabled and builtins.any(t is not None and t.requires_grad for t in tensors)


def _edges(*tensors) -> tuple:
    return tuple(edge(t) for t in tensors if t is not None)


class ConvolutionBackward0(Node):
    """``y = conv(x, w) + b``: ``gx = conv_transpose(g, w)``, ``gw = conv_weight(x, g)``, ``gb = sum(g)``."""

    __slots__ = ("spec", "cols")

    def backward(self, ns, g):
        x, w = ns.saved(self)
        spec, nodes = self.spec, self.next_nodes
        gb = ns.sum(g, axis=spec.bias_axes) if len(nodes) == 3 and nodes[2] is not None else None
        if ns.create_graph:
            gx = _conv_transpose_op(g, w, None, spec) if nodes[0] is not None else None
            gw = _conv_weight_op(x, g, spec) if nodes[1] is not None else None
        else:
            xp = ns.xp
            gx = gw = None
            if nodes[0] is not None or nodes[1] is not None:
                g2 = _to_batch_last(xp, g, spec.groups)
            if nodes[0] is not None:
                gx = _conv_input_arrays(g2, w, None, spec)
            if nodes[1] is not None:
                cols = self.cols if self.cols is not None else _im2col(xp, x, spec)
                gw = _conv_weight_arrays(cols, g2, spec)
        return (gx, gw, gb) if len(nodes) == 3 else (gx, gw)

    def release(self) -> None:
        super().release()
        self.cols = None


def _conv_op(x: Tensor, w: Tensor, b: Tensor | None, spec: _ConvSpec) -> Tensor:
    need = _needs(x, w, b)
    y, cols = _conv_arrays(x._data, w._data, None if b is None else b._data, spec)
    if not need:
        return wrap(y)
    node = ConvolutionBackward0(_edges(x, w, b))
    node.saved, node.versions = (x, w), (x._version[0], w._version[0])
    node.spec = spec
    # the columns are the weight gradient's other factor: keep them rather than redo the im2col copy
    node.cols = cols if w.requires_grad else None
    return wrap(y, node)


class ConvTransposeBackward0(Node):
    """``y = conv_transpose(g, w) + b``: ``dg = conv(h, w)``, ``dw = conv_weight(h, g)``, ``db = sum(h)``."""

    __slots__ = ("spec",)

    def backward(self, ns, h):
        g, w = ns.saved(self)
        spec, nodes = self.spec, self.next_nodes
        db = ns.sum(h, axis=spec.bias_axes) if len(nodes) == 3 and nodes[2] is not None else None
        if ns.create_graph:
            dg = _conv_op(h, w, None, spec) if nodes[0] is not None else None
            dw = _conv_weight_op(h, g, spec) if nodes[1] is not None else None
        else:
            xp = ns.xp
            cols = _im2col(xp, h, spec)
            dg = _conv_arrays(h, w, None, spec, cols)[0] if nodes[0] is not None else None
            dw = _conv_weight_arrays(cols, _to_batch_last(xp, g, spec.groups), spec) if nodes[1] is not None \
                else None
        return (dg, dw, db) if len(nodes) == 3 else (dg, dw)

    def name(self) -> str:
        return "ConvolutionBackward0"


def _conv_transpose_op(g: Tensor, w: Tensor, b: Tensor | None, spec: _ConvSpec) -> Tensor:
    gd = g._data
    y = _conv_input_arrays(_to_batch_last(xp_of(gd), gd, spec.groups), w._data, None if b is None else b._data,
                           spec)
    if not _needs(g, w, b):
        return wrap(y)
    node = ConvTransposeBackward0(_edges(g, w, b))
    node.saved, node.versions = (g, w), (g._version[0], w._version[0])
    node.spec = spec
    return wrap(y, node)


class ConvolutionBackwardBackward0(Node):
    """``gw = conv_weight(x, g)``: ``dx = conv_transpose(g, h)``, ``dg = conv(x, h)``."""

    __slots__ = ("spec",)

    def backward(self, ns, h):
        x, g = ns.saved(self)
        spec, nodes = self.spec, self.next_nodes
        if ns.create_graph:
            dx = _conv_transpose_op(g, h, None, spec) if nodes[0] is not None else None
            dg = _conv_op(x, h, None, spec) if nodes[1] is not None else None
        else:
            dx = _conv_input_arrays(_to_batch_last(ns.xp, g, spec.groups), h, None, spec) \
                if nodes[0] is not None else None
            dg = _conv_arrays(x, h, None, spec)[0] if nodes[1] is not None else None
        return dx, dg


def _conv_weight_op(x: Tensor, g: Tensor, spec: _ConvSpec) -> Tensor:
    xd, gd = x._data, g._data
    xp = xp_of(xd)
    gw = _conv_weight_arrays(_im2col(xp, xd, spec), _to_batch_last(xp, gd, spec.groups), spec)
    if not _needs(x, g):
        return wrap(gw)
    node = ConvolutionBackwardBackward0(_edges(x, g))
    node.saved, node.versions = (x, g), (x._version[0], g._version[0])
    node.spec = spec
    return wrap(gw, node)


# ---------------------------------------------------------------------------------------------------------------
# convolution: the public functions

def _check_float_pair(input: Tensor, weight: Tensor, bias, op: str) -> None:
    check_same_device(input, weight, op)
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(f"{op}(): expected input and weight to have the same dtype, but got input {input.dtype} "
                           f"and weight {weight.dtype} (torch: expected scalar type ... but found ...). Convert one "
                           "with .to(dtype) first.")
    if bias is not None:
        check_same_device(input, bias, op)
        if bias._data.dtype != input._data.dtype:
            raise RuntimeError(f"{op}(): Input type ({input.dtype}) and bias type ({bias.dtype}) should be the "
                               "same. Convert the bias with .to(dtype).")


def _batched(input: Tensor, d: int, op: str, what: str = "input") -> tuple[Tensor, bool]:
    """The input with a batch dim (and whether one was added): ``d+1`` dims is an unbatched sample."""
    nd = input._data.ndim
    if nd == d + 2:
        return input, False
    if nd == d + 1:
        return input.unsqueeze(0), True
    raise RuntimeError(f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) {what} to {op}, but got input of size: "
                       f"{list(input.shape)}")


def _conv_padding(padding, d: int, kernel: tuple, stride: tuple, dilation: tuple, op: str) -> tuple:
    """(pad_lo, pad_hi) from an int, a tuple, 'valid' or 'same' (extra padding of 'same' goes after, as torch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * d, (0,) * d
        if padding == "same":
            if builtins.any(s != 1 for s in stride):
                raise RuntimeError(f"{op}(): padding='same' is not supported for strided convolutions (got stride="
                                   f"{list(stride)}); use an explicit padding or stride=1.")
            total = tuple(dl * (k - 1) for k, dl in zip(kernel, dilation))
            lo = tuple(t // 2 for t in total)
            return lo, tuple(t - lo_ for t, lo_ in zip(total, lo))
        raise RuntimeError(f"{op}(): Invalid padding string: '{padding}' (expected 'valid', 'same' or ints)")
    pad = _ntuple(padding, d, "padding", op)
    if builtins.any(p < 0 for p in pad):
        raise RuntimeError(f"{op}(): negative padding is not supported (got padding={list(pad)})")
    return pad, pad


def _check_positive(values: tuple, name: str, op: str) -> None:
    if builtins.any(v <= 0 for v in values):
        raise RuntimeError(f"{op}(): non-positive {name} is not supported (got {name}={list(values)})")


def _convnd(input, weight, bias, stride, padding, dilation, groups, d: int, op: str) -> Tensor:
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}(): input and weight must be Tensors, got {type(input).__name__} and "
                        f"{type(weight).__name__}")
    _check_float_pair(input, weight, bias, op)
    x, unbatched = _batched(input, d, op)
    w = weight._data
    if w.ndim != d + 2:
        raise RuntimeError(f"{op}(): expected a {d + 2}-D weight (out_channels, in_channels/groups, "
                           f"{', '.join('k' + str(i) for i in range(d))}), but got weight of size {list(w.shape)}")
    stride = _ntuple(stride, d, "stride", op)
    dilation = _ntuple(dilation, d, "dilation", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if groups <= 0:
        raise RuntimeError(f"{op}(): non-positive groups is not supported (got groups={groups})")
    kernel = tuple(w.shape[2:])
    lo, hi = _conv_padding(padding, d, kernel, stride, dilation, op)
    xs = x._data.shape
    if w.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(w.shape)} instead")
    if xs[1] != w.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(w.shape)}, expected input{list(xs)} to have "
                           f"{w.shape[1] * groups} channels, but got {xs[1]} channels instead")
    if bias is not None and (bias._data.ndim != 1 or bias._data.shape[0] != w.shape[0]):
        raise RuntimeError(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with "
                           f"{w.shape[0]} elements, but got bias of size {list(bias.shape)} instead")
    padded = tuple(s + a + b for s, a, b in zip(xs[2:], lo, hi))
    extent = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    if builtins.any(p < e for p, e in zip(padded, extent)):
        raise RuntimeError(f"{op}(): Calculated padded input size per channel: ({_fmt(padded)}). Kernel size: "
                           f"({_fmt(extent)}). Kernel size can't be greater than actual input size")
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, stride))
    spec = _ConvSpec(_geom(kernel, stride, dilation, lo, hi, tuple(xs[2:]), out), groups, tuple(xs), w.shape)
    y = _conv_op(x, weight, bias, spec)
    return y.squeeze(0) if unbatched else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation: input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in/groups, k)`` ->
    ``(N, C_out, L_out)``; ``padding`` is an int, a 1-tuple, 'valid' or 'same' (``torch.nn.functional.conv1d``)."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_out, C_in/groups, kH, kW)``
    -> ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1``;
    ``padding`` may be 'valid' or 'same' (``torch.nn.functional.conv2d``)."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-D cross-correlation: input ``(N, C_in, D, H, W)`` or unbatched, weight ``(C_out, C_in/groups, kD, kH, kW)``
    (``torch.nn.functional.conv3d``)."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, d: int,
                      op: str) -> Tensor:
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}(): input and weight must be Tensors, got {type(input).__name__} and "
                        f"{type(weight).__name__}")
    _check_float_pair(input, weight, bias, op)
    g, unbatched = _batched(input, d, op)
    w = weight._data
    if w.ndim != d + 2:
        raise RuntimeError(f"{op}(): expected a {d + 2}-D weight (in_channels, out_channels/groups, "
                           f"{', '.join('k' + str(i) for i in range(d))}), but got weight of size {list(w.shape)}")
    stride = _ntuple(stride, d, "stride", op)
    dilation = _ntuple(dilation, d, "dilation", op)
    pad = _ntuple(padding, d, "padding", op)
    out_pad = _ntuple(output_padding, d, "output_padding", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if builtins.any(p < 0 for p in pad):
        raise RuntimeError(f"{op}(): negative padding is not supported (got padding={list(pad)})")
    if groups <= 0:
        raise RuntimeError(f"{op}(): non-positive groups is not supported (got groups={groups})")
    if builtins.any(op_ < 0 or op_ >= builtins.max(s, dl) for op_, s, dl in zip(out_pad, stride, dilation)):
        raise RuntimeError(f"{op}(): output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={list(out_pad)}, stride={list(stride)}, dilation={list(dilation)}")
    gs = g._data.shape
    if gs[1] != w.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(w.shape)}, expected input{list(gs)} to have "
                           f"{w.shape[0]} channels, but got {gs[1]} channels instead")
    if w.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(w.shape)} instead")
    c_out = w.shape[1] * groups
    if bias is not None and (bias._data.ndim != 1 or bias._data.shape[0] != c_out):
        raise RuntimeError(f"Given transposed=1, weight of size {list(w.shape)}, expected bias to be 1-dimensional "
                           f"with {c_out} elements, but got bias of size {list(bias.shape)} instead")
    kernel = tuple(w.shape[2:])
    size = tuple((o - 1) * s - 2 * p + dl * (k - 1) + op_ + 1
                 for o, s, p, dl, k, op_ in zip(gs[2:], stride, pad, dilation, kernel, out_pad))
    if builtins.any(s <= 0 for s in size):
        raise RuntimeError(f"{op}(): the calculated output size ({_fmt(size)}) is too small for input size "
                           f"({_fmt(gs[2:])}), kernel {list(kernel)}, stride {list(stride)}, padding {list(pad)}; "
                           "reduce the padding.")
    geom = _geom(kernel, stride, dilation, pad, pad, size, tuple(gs[2:]))
    spec = _ConvSpec(geom, groups, (gs[0], c_out) + size, w.shape)
    y = _conv_transpose_op(g, weight, bias, spec)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution (the input gradient of conv1d): input ``(N, C_in, L)``, weight
    ``(C_in, C_out/groups, k)`` -> ``(N, C_out, (L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1)``
    (``torch.nn.functional.conv_transpose1d``)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution: input ``(N, C_in, H, W)``, weight ``(C_in, C_out/groups, kH, kW)`` ->
    ``(N, C_out, H_out, W_out)``, ``H_out = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1``
    (``torch.nn.functional.conv_transpose2d``)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             "conv_transpose2d")


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """3-D transposed convolution (``torch.nn.functional.conv_transpose3d``)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                             "conv_transpose3d")


# ---------------------------------------------------------------------------------------------------------------
# pooling geometry

def _pool_out(size: int, k: int, s: int, p: int, dl: int, ceil_mode: bool) -> int:
    """torch's pooling output size: with ceil_mode the last window must still start inside input or left pad."""
    span = size + 2 * p - dl * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geom(x: Tensor, d: int, kernel_size, stride, padding, dilation, ceil_mode: bool, op: str) -> _Geom:
    kernel = _ntuple(kernel_size, d, "kernel_size", op)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _ntuple(stride, d, "stride", op)
    pad = _ntuple(padding, d, "padding", op)
    dilation = _ntuple(dilation, d, "dilation", op)
    if builtins.any(k <= 0 for k in kernel):
        raise RuntimeError(f"{op}(): kernel_size must be greater than zero, but got kernel_size={list(kernel)}")
    if builtins.any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}(): stride should not be zero (got stride={list(stride)})")
    if builtins.any(dl <= 0 for dl in dilation):
        raise RuntimeError(f"{op}(): dilation should be greater than zero, but got dilation={list(dilation)}")
    for p, k in zip(pad, kernel):
        if p < 0 or 2 * p > k:
            raise RuntimeError(f"{op}(): pad should be at most half of kernel size, but got pad={p} and "
                               f"kernel_size={k}")
    size = tuple(x._data.shape[2:])
    out = tuple(_pool_out(s, k, st, p, dl, ceil_mode) for s, k, st, p, dl in zip(size, kernel, stride, pad, dilation))
    if builtins.any(o <= 0 for o in out):
        c = x._data.shape[1]
        raise RuntimeError(f"{op}(): Given input size: ({'x'.join(map(str, (c,) + size))}). Calculated output size: "
                           f"({'x'.join(map(str, (c,) + out))}). Output size is too small")
    return _geom(kernel, stride, dilation, pad, pad, size, out)


def _pool_input(input, d: int, op: str) -> tuple[Tensor, bool]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): input must be a Tensor, got {type(input).__name__}")
    nd = input._data.ndim
    if nd not in (d + 1, d + 2) or builtins.any(s == 0 for s in input._data.shape[-d - 1 if nd == d + 1 else 1:]):
        raise RuntimeError(f"{op}(): Expected {d + 1}D (unbatched) or {d + 2}D (batched) non-empty input (batch "
                           f"may be 0), but got input of size: {list(input.shape)}")
    if nd == d + 1:
        return input.unsqueeze(0), True
    return input, False


# ---------------------------------------------------------------------------------------------------------------
# max pooling: gather at the arg-max offsets; its adjoint scatters back

def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _max_pool_arrays(x, geom: _Geom):
    """``(y, offset)``: the window maxima and, per output, the first kernel offset (row-major) holding them."""
    xp = xp_of(x)
    fused = F.max_pool2d(xp, x, geom)
    if fused is not None:
        return fused
    buf = _padded_batch_first(xp, x, geom, _lowest(x.dtype))
    views = [buf[(_ALL, _ALL) + sl] for _, sl in geom.offsets]
    n = len(views)
    y = views[0].copy() if n == 1 else xp.maximum(views[0], views[1])
    for v in views[2:]:
        xp.maximum(y, v, out=y)
    offset = xp.full(y.shape, n - 1, dtype=np.int8 if n <= 127 else np.int32)
    # backwards, so the first offset holding the maximum is the one that stays (torch's tie rule)
    for k in range(n - 2, -1, -1):
        xp.putmask(offset, views[k] == y, k)
    if x.dtype.kind == "f" and bool(xp.isnan(y).any()):
        # a NaN is the maximum (it propagates), and torch points at the last NaN of its window
        for k in range(n):
            xp.putmask(offset, xp.isnan(views[k]), k)
    return y, offset


def _max_scatter_arrays(g, offset, geom: _Geom, x_shape: tuple):
    """The adjoint of the gather: each output gradient goes to its arg-max element (summed where windows overlap)."""
    xp = xp_of(g)
    fused = F.max_pool2d_backward(xp, g, offset, geom, x_shape)
    if fused is not None:
        return fused
    buf = xp.zeros(x_shape[:2] + geom.padded, dtype=g.dtype)
    disjoint = geom.disjoint()
    for k, (_, sl) in enumerate(geom.offsets):
        dst = buf[(_ALL, _ALL) + sl]
        if disjoint:
            xp.multiply(g, offset == k, out=dst)
        else:
            dst += g * (offset == k)
    return _interior(buf, geom, 2)


def _max_gather_arrays(x, offset, geom: _Geom):
    xp = xp_of(x)
    buf = _padded_batch_first(xp, x, geom, 0)
    y = xp.zeros(offset.shape, dtype=x.dtype)
    for k, (_, sl) in enumerate(geom.offsets):
        y += buf[(_ALL, _ALL) + sl] * (offset == k)
    return y


class _MaxPoolNode(Node):
    """Saved: the arg-max offsets, the geometry, the input shape, and ``dims`` for torch's node name."""

    __slots__ = ("offset", "geom", "x_shape", "dims")

    def copy_as(self, cls, edges: tuple) -> "_MaxPoolNode":
        node = cls(edges)
        node.offset, node.geom, node.x_shape, node.dims = self.offset, self.geom, self.x_shape, self.dims
        return node


class MaxPoolBackward(_MaxPoolNode):
    """``y = x[arg-max]``: the gradient scatters back to the arg-max elements."""

    __slots__ = ()

    def backward(self, ns, g):
        if ns.create_graph:
            return (_max_scatter_op(g, self),)
        return (_max_scatter_arrays(g, self.offset, self.geom, self.x_shape),)

    def name(self) -> str:
        return f"MaxPool{self.dims}DWithIndicesBackward0"


class MaxPoolBackwardBackward(_MaxPoolNode):
    """The scatter's own backward gathers at the same arg-max elements."""

    __slots__ = ()

    def backward(self, ns, h):
        if ns.create_graph:
            return (_max_gather_op(h, self),)
        return (_max_gather_arrays(h, self.offset, self.geom),)

    def name(self) -> str:
        return f"MaxPool{self.dims}DWithIndicesBackwardBackward0"


def _max_scatter_op(g: Tensor, src: _MaxPoolNode) -> Tensor:
    y = _max_scatter_arrays(g._data, src.offset, src.geom, src.x_shape)
    if not _needs(g):
        return wrap(y)
    return wrap(y, src.copy_as(MaxPoolBackwardBackward, (edge(g),)))


def _max_gather_op(h: Tensor, src: _MaxPoolNode) -> Tensor:
    y = _max_gather_arrays(h._data, src.offset, src.geom)
    if not _needs(h):
        return wrap(y)
    return wrap(y, src.copy_as(MaxPoolBackward, (edge(h),)))


def _flat_indices(offset, geom: _Geom):
    """torch's ``return_indices``: each arg-max as a flat index into its (unpadded) input plane."""
    xp = xp_of(offset)
    d = len(geom.kernel)
    plane = [math.prod(geom.size[i + 1:]) for i in range(d)]
    table = np.array([builtins.sum(k * dl * p for k, dl, p in zip(off, geom.dilation, plane))
                      for off, _ in geom.offsets], dtype=np.int64)
    base = np.zeros(geom.out, dtype=np.int64)
    for i in range(d):
        pos = np.arange(geom.out[i]) * geom.stride[i] - geom.pad_lo[i]
        base = base + (pos * plane[i]).reshape((-1,) + (1,) * (d - 1 - i))
    return xp.asarray(base) + xp.asarray(table)[offset]


def _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, d: int, op: str):
    x, unbatched = _pool_input(input, d, op)
    geom = _pool_geom(x, d, kernel_size, stride, padding, dilation, ceil_mode, op)
    xd = x._data
    y, offset = _max_pool_arrays(xd, geom)
    if _needs(x):
        node = MaxPoolBackward((edge(x),))
        node.offset, node.geom, node.x_shape, node.dims = offset, geom, xd.shape, d
        out = wrap(y, node)
    else:
        out = wrap(y)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    idx = wrap(_flat_indices(offset, geom))
    return out, idx.squeeze(0) if unbatched else idx


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over sliding windows: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_out)``; padding counts as -inf; with
    ``return_indices`` also the flat arg-max positions (``torch.nn.functional.max_pool1d``)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over sliding windows: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, H_out, W_out)``; ``stride``
    defaults to ``kernel_size``; ties go to the first element in row-major order, as torch
    (``torch.nn.functional.max_pool2d``)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over sliding 3-D windows (``torch.nn.functional.max_pool3d``)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


# ---------------------------------------------------------------------------------------------------------------
# average pooling: a linear map and its adjoint

@functools.lru_cache(maxsize=256)
def _avg_divisor(geom: _Geom, count_include_pad: bool, divisor_override):
    """torch's divisor per output: the window clipped to the padded input (or to the input itself), or the
    override. A scalar where every window has the same one."""
    if divisor_override is not None:
        return float(divisor_override)
    counts = []
    for k, s, p, size, out in zip(geom.kernel, geom.stride, geom.pad_lo, geom.size, geom.out):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    if builtins.all((c == c[0]).all() for c in counts):
        return float(math.prod(int(c[0]) for c in counts))
    div = np.ones(geom.out)
    for i, c in enumerate(counts):
        div = div * c.reshape((-1,) + (1,) * (len(counts) - 1 - i))
    return div


def _avg_pool_arrays(x, geom: _Geom, divisor):
    xp = xp_of(x)
    fused = F.avg_pool2d(xp, x, geom, divisor)
    if fused is not None:
        return fused
    buf = _padded_batch_first(xp, x, geom, 0)
    views = [buf[(_ALL, _ALL) + sl] for _, sl in geom.offsets]
    acc = views[0].copy()
    for v in views[1:]:
        acc += v
    acc /= divisor if isinstance(divisor, float) else xp.asarray(divisor, dtype=acc.dtype)
    return acc


def _avg_adjoint_arrays(g, geom: _Geom, divisor, x_shape: tuple):
    xp = xp_of(g)
    fused = F.avg_pool2d_backward(xp, g, geom, divisor, x_shape)
    if fused is not None:
        return fused
    share = g / (divisor if isinstance(divisor, float) else xp.asarray(divisor, dtype=g.dtype))
    buf = xp.zeros(x_shape[:2] + geom.padded, dtype=g.dtype)
    for _, sl in geom.offsets:
        dst = buf[(_ALL, _ALL) + sl]
        dst += share
    return _interior(buf, geom, 2)


class _AvgPoolNode(Node):
    """Saved: the geometry, the divisor, the input shape, and ``dims`` for torch's node name."""

    __slots__ = ("geom", "divisor", "x_shape", "dims")


class AvgPoolBackward(_AvgPoolNode):
    """``y = avg_pool(x)``: the gradient is the adjoint map, each share spread over its window."""

    __slots__ = ()

    def backward(self, ns, g):
        if ns.create_graph:
            return (_avg_pool_op(g, self, adjoint=True),)
        return (_avg_adjoint_arrays(g, self.geom, self.divisor, self.x_shape),)

    def name(self) -> str:
        return f"AvgPool{self.dims}DBackward0"


class AvgPoolBackwardBackward(_AvgPoolNode):
    """The adjoint's own backward is the pooling again."""

    __slots__ = ()

    def backward(self, ns, h):
        if ns.create_graph:
            return (_avg_pool_op(h, self, adjoint=False),)
        return (_avg_pool_arrays(h, self.geom, self.divisor),)

    def name(self) -> str:
        return f"AvgPool{self.dims}DBackwardBackward0"


def _avg_pool_op(t: Tensor, src: _AvgPoolNode, adjoint: bool) -> Tensor:
    if adjoint:
        y = _avg_adjoint_arrays(t._data, src.geom, src.divisor, src.x_shape)
    else:
        y = _avg_pool_arrays(t._data, src.geom, src.divisor)
    if not _needs(t):
        return wrap(y)
    node = (AvgPoolBackwardBackward if adjoint else AvgPoolBackward)((edge(t),))
    node.geom, node.divisor, node.x_shape, node.dims = src.geom, src.divisor, src.x_shape, src.dims
    return wrap(y, node)


def _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, d: int,
                op: str) -> Tensor:
    x, unbatched = _pool_input(input, d, op)
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"{op}(): expected a floating point input, got {x.dtype}; convert it with .float()")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"{op}(): divisor must be not zero")
    geom = _pool_geom(x, d, kernel_size, stride, padding, 1, ceil_mode, op)
    divisor = _avg_divisor(geom, count_include_pad, divisor_override)
    xd = x._data
    y = _avg_pool_arrays(xd, geom, divisor)
    if _needs(x):
        node = AvgPoolBackward((edge(x),))
        node.geom, node.divisor, node.x_shape, node.dims = geom, divisor, xd.shape, d
        out = wrap(y, node)
    else:
        out = wrap(y)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_out)``
    (``torch.nn.functional.avg_pool1d``)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over sliding windows: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, H_out, W_out)``; the divisor counts
    zero padding when ``count_include_pad``, never the overhang of ``ceil_mode``, and ``divisor_override``
    replaces it (``torch.nn.functional.avg_pool2d``)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                       "avg_pool2d")


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over sliding 3-D windows (``torch.nn.functional.avg_pool3d``)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3,
                       "avg_pool3d")


# ---------------------------------------------------------------------------------------------------------------
# adaptive pooling

def _adaptive_sizes(x: Tensor, output_size, d: int, op: str) -> tuple:
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * d
    output_size = tuple(output_size)
    if len(output_size) == 1 and d > 1:
        output_size = output_size * d
    if len(output_size) != d:
        raise RuntimeError(f"{op}(): output_size must have {d} elements, got {list(output_size)}")
    size = x._data.shape[2:]
    out = tuple(s if o is None else int(o) for o, s in zip(output_size, size))
    if builtins.any(o < 0 for o in out):
        raise RuntimeError(f"{op}(): elements of output_size must be greater than or equal to 0, but got "
                           f"{list(out)}")
    return out


def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive windows: ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _adaptive_input(input, d: int, op: str) -> tuple[Tensor, bool]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): input must be a Tensor, got {type(input).__name__}")
    nd = input._data.ndim
    if nd not in (d + 1, d + 2) or builtins.any(s == 0 for s in input._data.shape[nd - d:]):
        raise RuntimeError(f"{op}(): Expected {d + 1}D or {d + 2}D tensor with non-zero spatial sizes, but got "
                           f"{list(input.shape)}")
    return (input.unsqueeze(0), True) if nd == d + 1 else (input, False)


def _adaptive_avg_poolnd(input, output_size, d: int, op: str) -> Tensor:
    x, unbatched = _adaptive_input(input, d, op)
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"{op}(): expected a floating point input, got {x.dtype}; convert it with .float()")
    out = _adaptive_sizes(x, output_size, d, op)
    size = x._data.shape[2:]
    if builtins.all(o > 0 and s % o == 0 for s, o in zip(size, out)):
        # equal windows: an ordinary average pool, summed exactly as torch does
        k = tuple(s // o for s, o in zip(size, out))
        y = _avg_poolnd(x, k, k, 0, False, True, None, d, op)
    else:
        # each spatial dim is averaged by a constant (out, size) matrix: separable, and differentiable through
        # matmul to any order
        y = x
        xp = xp_of(x._data)
        for i, (s, o) in enumerate(zip(size, out)):
            start, end = _adaptive_bounds(s, o)
            cols = np.arange(s)
            avg = ((cols >= start[:, None]) & (cols < end[:, None])) / (end - start)[:, None]
            m = wrap(xp.asarray(avg.T, dtype=x._data.dtype))
            y = movedim(matmul(movedim(y, 2 + i, -1), m), -1, 2 + i)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output length: ``(N, C, L)`` -> ``(N, C, output_size)``
    (``torch.nn.functional.adaptive_avg_pool1d``)."""
    return _adaptive_avg_poolnd(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size: ``(N, C, H, W)`` -> ``(N, C, *output_size)``; window ``i`` spans
    ``[floor(i*H/out), ceil((i+1)*H/out))``; ``None`` keeps that dim (``torch.nn.functional.adaptive_avg_pool2d``)."""
    return _adaptive_avg_poolnd(input, output_size, 2, "adaptive_avg_pool2d")


def _adaptive_argmax_cells(xd, size: tuple, out: tuple, d: int):
    """The flat (per plane) index of each uneven adaptive window's maximum, one output cell at a time (the first
    in row-major order on ties and NaN, as torch)."""
    xp = xp_of(xd)
    n, c = xd.shape[:2]
    bounds = [_adaptive_bounds(s, o) for s, o in zip(size, out)]
    plane = [math.prod(size[i + 1:]) for i in range(d)]
    idx = xp.zeros((n, c) + out, dtype=np.int64)
    for cell in itertools.product(*(range(o) for o in out)):
        region = xd[(_ALL, _ALL) + tuple(slice(int(b[0][i]), int(b[1][i])) for b, i in zip(bounds, cell))]
        local = region.reshape(n, c, math.prod(region.shape[2:])).argmax(axis=2)
        coords = xp.unravel_index(local, region.shape[2:])
        idx[(_ALL, _ALL) + cell] = builtins.sum((cd + int(b[0][i])) * p
                                                for cd, b, i, p in zip(coords, bounds, cell, plane))
    return idx


def _adaptive_argmax(xd, size: tuple, out: tuple, d: int):
    """What ``_adaptive_argmax_cells`` gives, for all windows at once: every window is read padded to the widest,
    with the lowest value (a padding entry can then only tie with a window whose values are all that lowest
    value, and the window's first entry, which comes before any padding, wins that tie), so a handful of array
    operations replace the loop over the output cells."""
    xp = xp_of(xd)
    n, c = xd.shape[:2]
    pos, valid = [], []
    for s, o in zip(size, out):
        lo, hi = _adaptive_bounds(s, o)
        p = lo[:, None] + np.arange(int((hi - lo).max()))[None, :]  # (o, widest window)
        valid.append(p < hi[:, None])
        pos.append(np.minimum(p, s - 1))
    widths = tuple(p.shape[1] for p in pos)

    def interleaved(k, a):  # a (o_k, w_k) table placed on axes (2k, 2k + 1) of (o_1, w_1, ..., o_d, w_d)
        shape = [1] * (2 * d)
        shape[2 * k], shape[2 * k + 1] = a.shape
        return a.reshape(shape)

    windows = xd[(_ALL, _ALL) + tuple(xp.asarray(interleaved(k, p)) for k, p in enumerate(pos))]
    mask = functools.reduce(np.logical_and, (interleaved(k, v) for k, v in enumerate(valid)))
    lowest = -np.inf if xd.dtype.kind == "f" else np.iinfo(xd.dtype).min
    windows = xp.where(xp.asarray(mask), windows, xp.asarray(lowest, dtype=xd.dtype))
    order = (0, 1) + tuple(2 + 2 * k for k in range(d)) + tuple(3 + 2 * k for k in range(d))
    local = windows.transpose(order).reshape((n, c) + out + (-1,)).argmax(axis=-1)
    plane = [math.prod(size[k + 1:]) for k in range(d)]
    flat = builtins.sum(interleaved(k, p * plane[k]) for k, p in enumerate(pos))  # (o_1, w_1, ..., o_d, w_d)
    flat = flat.transpose(tuple(2 * k for k in range(d)) + tuple(2 * k + 1 for k in range(d)))
    table = xp.asarray(np.ascontiguousarray(flat).reshape(out + (math.prod(widths),)))
    table = xp.broadcast_to(table, (n, c) + table.shape)
    return xp.take_along_axis(table, local[..., None], axis=-1)[..., 0].astype(np.int64, copy=False)


def _adaptive_max_poolnd(input, output_size, return_indices: bool, d: int, op: str):
    x, unbatched = _adaptive_input(input, d, op)
    out = _adaptive_sizes(x, output_size, d, op)
    xd = x._data
    size = xd.shape[2:]
    if builtins.all(o > 0 and s % o == 0 for s, o in zip(size, out)):
        # equal windows: an ordinary max pool (same values, same indices)
        k = tuple(s // o for s, o in zip(size, out))
        res = _max_poolnd(x, k, k, 0, 1, False, return_indices, d, op)
        if not unbatched:
            return res
        return tuple(r.squeeze(0) for r in res) if return_indices else res.squeeze(0)
    # on the CPU a loop over the output cells (slices are views, each argmax a pass over one window) is fastest;
    # on CUDA that loop costs several launches per cell, and all the windows at once take a handful
    idx = _adaptive_argmax_cells(xd, size, out, d) if xp_of(xd) is np else _adaptive_argmax(xd, size, out, d)
    n, c = xd.shape[:2]
    index = wrap(idx)
    y = gather(flatten(x, 2), 2, flatten(index, 2)).reshape((n, c) + out)
    if unbatched:
        y, index = y.squeeze(0), index.squeeze(0)
    return (y, index) if return_indices else y


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed output length (``torch.nn.functional.adaptive_max_pool1d``)."""
    return _adaptive_max_poolnd(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed output size over torch's adaptive windows
    (``torch.nn.functional.adaptive_max_pool2d``)."""
    return _adaptive_max_poolnd(input, output_size, return_indices, 2, "adaptive_max_pool2d")


# ---------------------------------------------------------------------------------------------------------------
# unfold (im2col) and fold (col2im): adjoint linear maps

def _unfold_arrays(x, geom: _Geom):
    xp = xp_of(x)
    buf = _padded_batch_first(xp, x, geom, 0)
    view = _window_view(xp, buf, 2, geom)
    n, c = x.shape[:2]
    return view.reshape(n, c * math.prod(geom.kernel), math.prod(geom.out))


def _fold_arrays(cols, geom: _Geom, x_shape: tuple):
    xp = xp_of(cols)
    n, c = x_shape[:2]
    blocks = cols.reshape((n, c) + geom.kernel + geom.out)
    buf = xp.zeros((n, c) + geom.padded, dtype=cols.dtype)
    for off, sl in geom.offsets:
        dst = buf[(_ALL, _ALL) + sl]
        dst += blocks[(_ALL, _ALL) + off]
    return _interior(buf, geom, 2)


class _FoldNode(Node):
    __slots__ = ("geom", "x_shape")


class Im2ColBackward0(_FoldNode):
    __slots__ = ()

    def backward(self, ns, g):
        if ns.create_graph:
            return (_fold_op(g, self.geom, self.x_shape),)
        return (_fold_arrays(g, self.geom, self.x_shape),)


class Col2ImBackward0(_FoldNode):
    __slots__ = ()

    def backward(self, ns, g):
        if ns.create_graph:
            return (_unfold_op(g, self.geom),)
        return (_unfold_arrays(g, self.geom),)


def _unfold_op(x: Tensor, geom: _Geom) -> Tensor:
    y = _unfold_arrays(x._data, geom)
    if not _needs(x):
        return wrap(y)
    node = Im2ColBackward0((edge(x),))
    node.geom, node.x_shape = geom, x._data.shape
    return wrap(y, node)


def _fold_op(cols: Tensor, geom: _Geom, x_shape: tuple) -> Tensor:
    y = _fold_arrays(cols._data, geom, x_shape)
    if not _needs(cols):
        return wrap(y)
    node = Col2ImBackward0((edge(cols),))
    node.geom, node.x_shape = geom, x_shape
    return wrap(y, node)


def _fold_geom(size: tuple, kernel_size, dilation, padding, stride, op: str) -> _Geom:
    kernel = _ntuple(kernel_size, 2, "kernel_size", op)
    dilation = _ntuple(dilation, 2, "dilation", op)
    pad = _ntuple(padding, 2, "padding", op)
    stride = _ntuple(stride, 2, "stride", op)
    if builtins.any(v <= 0 for v in kernel + dilation + stride) or builtins.any(p < 0 for p in pad):
        raise RuntimeError(f"{op}(): kernel_size, dilation and stride must be positive and padding non-negative, "
                           f"got kernel_size={list(kernel)}, dilation={list(dilation)}, padding={list(pad)}, "
                           f"stride={list(stride)}")
    out = tuple((s + 2 * p - dl * (k - 1) - 1) // st + 1
                for s, p, dl, k, st in zip(size, pad, dilation, kernel, stride))
    if builtins.any(o < 1 for o in out):
        raise RuntimeError(f"{op}(): Given input with spatial size {tuple(size)}, kernel_size={kernel}, dilation="
                           f"{dilation}, padding={pad}, calculated shape of the array of sliding blocks as {out}, but "
                           "its components must be at least one.")
    return _geom(kernel, stride, dilation, pad, pad, tuple(size), out)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: every sliding block of ``(N, C, H, W)`` as a column, ``(N, C*kH*kW, L)`` with ``L`` the number of
    blocks; channel-major, then kernel row, kernel column (``torch.nn.functional.unfold``)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"unfold(): input must be a Tensor, got {type(input).__name__}")
    nd = input._data.ndim
    if nd not in (3, 4):
        raise RuntimeError(f"unfold(): Input Error: Only 3D or 4D input Tensors are supported (got {nd}D)")
    x = input.unsqueeze(0) if nd == 3 else input
    geom = _fold_geom(x._data.shape[2:], kernel_size, dilation, padding, stride, "unfold")
    y = _unfold_op(x, geom)
    return y.squeeze(0) if nd == 3 else y


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of ``unfold``: ``(N, C*kH*kW, L)`` -> ``(N, C, *output_size)``, overlapping values
    summed (``torch.nn.functional.fold``)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fold(): input must be a Tensor, got {type(input).__name__}")
    nd = input._data.ndim
    if nd not in (2, 3):
        raise RuntimeError(f"fold(): Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size "
                           f"and non-zero dimensions for input, but got: {list(input.shape)}")
    cols = input.unsqueeze(0) if nd == 2 else input
    size = _ntuple(output_size, 2, "output_size", "fold")
    geom = _fold_geom(size, kernel_size, dilation, padding, stride, "fold")
    n, ck, blocks = cols._data.shape
    kprod = math.prod(geom.kernel)
    if ck % kprod:
        raise RuntimeError(f"fold(): Expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={ck} and kernel_size={geom.kernel}.")
    if blocks != math.prod(geom.out):
        raise RuntimeError(f"fold(): Given output_size={size}, kernel_size={geom.kernel}, dilation={geom.dilation}, "
                           f"padding={geom.pad_lo}, stride={geom.stride}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {' * '.join(map(str, geom.out))} = "
                           f"{math.prod(geom.out)}, but got input.size(2)={blocks}.")
    y = _fold_op(cols, geom, (n, ck // kprod) + size)
    return y.squeeze(0) if nd == 2 else y
