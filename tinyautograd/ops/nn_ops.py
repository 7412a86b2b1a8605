"""Fused neural-network ops, each with its own Node: linear, the activations, the losses (cross_entropy, nll_loss,
the pointwise losses), batch/layer/group normalisation, embedding and dropout.

Forwards run on raw arrays; every backward formula is written once with operators and ``ns`` helpers, so it runs
on arrays for a plain backward and on Tensors (recorded again) with ``create_graph=True``. Where a formula needs a
quantity the forward already computed (softmax, the normalised input), the array path reuses the cached array and
the Tensor path recomputes it from the saved input with differentiable ops, so higher derivatives stay correct.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .. import _kernels
from ..autograd.engine import Node, freed_error
from ..random import gen_or_default
from ..tensor import Tensor, defer_check
from . import _fused as F
from . import elementwise as E
from . import reduction as R
from ._util import check_indices, check_same_device, edge, grad_state, wrap, xp_of
from .elementwise import _erf, _sigmoid_fwd
from .indexing import inplace_result

__all__ = [
    "linear", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "hardtanh", "relu6",
    "hardsigmoid", "hardswish", "threshold", "logsigmoid", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "cross_entropy", "nll_loss",
    "batch_norm", "layer_norm", "group_norm", "embedding", "dropout", "feature_dropout",
]

_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_REDUCTIONS = ("none", "mean", "sum")


def _float_input(t: Tensor, op: str, arg: str = "input") -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}(): argument '{arg}' must be Tensor, not {type(t).__name__}")
    if t._data.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating point {arg}, got {t.dtype}; convert it with .float() first")


def _check_reduction(reduction: str, op: str, extra: tuple = ()) -> None:
    if reduction not in _REDUCTIONS + extra:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction (expected one of "
                         f"{', '.join(repr(r) for r in _REDUCTIONS + extra)})")


def _const(ns, array):
    """A constant array in the formula's namespace (wrapped as a Tensor only when recording)."""
    return ns.const(array) if ns.create_graph else array


def _ns_sigmoid(ns, x):
    # ArrayNamespace.sigmoid overflows exp(-x) for x << 0; both paths here are stable
    return E.sigmoid(x) if ns.create_graph else _sigmoid_fwd(ns.xp, x)


def _ns_erf(ns, x):
    return E.erf(x) if ns.create_graph else _erf(ns.xp, x)


def _same_device(a: Tensor, b: Tensor, op: str) -> None:
    if type(a._data) is not type(b._data):
        check_same_device(a, b, op)


# ---------------------------------------------------------------------------------------------------------------
# linear

class LinearBackward(Node):
    """``y = x @ W.T + b``: dx = g @ W, dW = g^T x (leading dims flattened), db = sum of g over leading dims."""
    __slots__ = ()

    def backward(self, ns, g):
        x, w = ns.saved(self)
        nx, nw, nb = (self.next_nodes + (None,))[:3]
        out_f, in_f = w.shape
        gx = ns.matmul(g, w) if nx is not None else None
        gw = gb = None
        if nw is not None or nb is not None:
            g2 = ns.reshape(g, (-1, out_f))
            if nw is not None:
                gw = ns.matmul(ns.swap_last(g2), ns.reshape(x, (-1, in_f)))
            if nb is not None:
                gb = ns.sum(g2, 0)
        return gx, gw, gb

    def name(self) -> str:
        return "AddmmBackward0"


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` for input ``(*, in_features)``, weight ``(out_features, in_features)``,
    bias ``(out_features,)``; one fused node (``torch.nn.functional.linear``)."""
    x, w = input._data, weight._data
    if w.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape {list(w.shape)}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        lead = int(np.prod(x.shape[:-1])) if x.ndim > 1 else 1
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({lead}x{x.shape[-1] if x.ndim else 0} and "
                           f"{w.shape[1]}x{w.shape[0]})")
    if x.dtype != w.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {input.dtype} and {weight.dtype}")
    _same_device(input, weight, "linear")
    y = x @ w.T
    if bias is not None:
        _same_device(input, bias, "linear")
        b = bias._data
        if b.dtype != x.dtype:
            raise RuntimeError(f"linear: bias dtype {bias.dtype} does not match input dtype {input.dtype}")
        y += b
    if grad_state.enabled and (input.requires_grad or weight.requires_grad
                               or (bias is not None and bias.requires_grad)):
        edges = (edge(input), edge(weight)) if bias is None else (edge(input), edge(weight), edge(bias))
        node = LinearBackward(edges)
        node.saved = (input, weight)
        node.versions = (input._version[0], weight._version[0])
        return wrap(y, node)
    return wrap(y)


# ---------------------------------------------------------------------------------------------------------------
# activations: forward(xp, x, *params) on arrays, formula(ns, g, x, *params) for the backward

class _ActivationNode(Node):
    __slots__ = ("params",)
    formula = None
    kernel = None

    def backward(self, ns, g):
        x = ns.saved(self)[0]
        if self.kernel is not None and not ns.create_graph and (ns.xp is not np or _kernels._emulator is not None):
            kernel, scalars = self.kernel(self.params)
            gx = F.backward(ns, kernel, g, x, *scalars)
            if gx is not None:
                return (gx,)
        return (self.formula(ns, g, x, *self.params),)


def _activation(node_name: str, forward, formula, kernel=None, forward_kernel=None):
    """An elementwise activation op: ``forward(xp, x, *params)`` on arrays, ``formula(ns, g, x, *params)`` its
    input gradient; with ``inplace`` the result is written back into the input. ``kernel`` is the fused CUDA
    kernel of the formula (``tinyautograd.ops._fused``), or a function of the params giving (kernel, scalars);
    ``forward_kernel`` likewise replaces ``forward`` on CUDA."""
    if isinstance(kernel, F.Kernel):
        kernel = functools.partial(_kernel_with_params, kernel)
    if isinstance(forward_kernel, F.Kernel):
        forward_kernel = functools.partial(_kernel_with_params, forward_kernel)
    node_cls = type(node_name, (_ActivationNode,), {"__slots__": (), "formula": staticmethod(formula),
                                                    "kernel": staticmethod(kernel) if kernel else None})

    def apply(input: Tensor, params: tuple, op: str, inplace: bool = False) -> Tensor:
        _float_input(input, op)
        d = input._data
        y = None
        if forward_kernel is not None and (d.__class__ is not np.ndarray or _kernels._emulator is not None):
            kernel, scalars = forward_kernel(params)
            y = F.forward(xp_of(d), kernel, d, *scalars)
        if y is None:
            with np.errstate(over="ignore", under="ignore"):
                y = forward(xp_of(d), d, *params)
        recording = grad_state.enabled and input.requires_grad
        if recording:
            node = node_cls((edge(input),))
            node.params = params
            # in place, the backward needs the input as it was: keep a copy, not the tensor about to change
            node.saved = (wrap(d.copy()),) if inplace else (input,)
            node.versions = (node.saved[0]._version[0],)
            res = wrap(y, node)
        else:
            res = wrap(y)
        return inplace_result(input, res, op + "_") if inplace else res

    return apply


def _kernel_with_params(kernel, params):
    return kernel, params


def _leaky_fwd(xp, d, slope):
    return xp.where(d > 0, d, d * slope)


_leaky = _activation("LeakyReluBackward0", _leaky_fwd, lambda ns, g, x, s: ns.where(x > 0, g, g * s), F.LEAKY_RELU,
                     F.LEAKY_RELU_FORWARD)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x if x > 0 else negative_slope * x`` (``torch.nn.functional.leaky_relu``)."""
    return _leaky(input, (float(negative_slope),), "leaky_relu", inplace)


def _elu_fwd(xp, d, alpha, scale, input_scale):
    neg = xp.where(d > 0, 0, d)  # exp only of non-positive values: no overflow
    return xp.where(d > 0, d * scale, xp.expm1(neg * input_scale) * (alpha * scale))


def _elu_grad(ns, g, x, alpha, scale, input_scale):
    # torch's side for NaN: the positive one (a NaN input passes g * scale)
    neg = ns.where(x <= 0, x, 0.0)
    return ns.where(x <= 0, g * (ns.exp(neg * input_scale) * (alpha * scale * input_scale)), g * scale)


_elu = _activation("EluBackward0", _elu_fwd, _elu_grad,
                   lambda p: (F.ELU, (p[1], p[2], p[0] * p[1] * p[2])),
                   lambda p: (F.ELU_FORWARD, (p[1], p[2], p[0] * p[1])))
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x if x > 0 else alpha * (exp(x) - 1)`` (``torch.nn.functional.elu``)."""
    return _elu(input, (float(alpha), 1.0, 1.0), "elu", inplace)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants (``torch.nn.functional.selu``)."""
    return _elu(input, (_SELU_ALPHA, _SELU_SCALE, 1.0), "selu", inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``torch.nn.functional.celu``)."""
    return _elu(input, (float(alpha), 1.0, 1.0 / float(alpha)), "celu", inplace)


def _gelu_fwd(xp, d, approximate):
    if approximate == "tanh":
        inner = (d + 0.044715 * d * d * d) * 0.7978845608028654
        return 0.5 * d * (1 + xp.tanh(inner))
    return 0.5 * d * (1 + _erf(xp, d * _SQRT_HALF))


def _gelu_grad(ns, g, x, approximate):
    if approximate == "tanh":
        k = 0.7978845608028654
        t = ns.tanh((x + 0.044715 * x * x * x) * k)
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (k * (1 + 0.134145 * x * x)))
    cdf = 0.5 * (1 + _ns_erf(ns, x * _SQRT_HALF))
    pdf = ns.exp(x * x * -0.5) * _INV_SQRT_2PI
    return g * (cdf + x * pdf)


_gelu = _activation("GeluBackward0", _gelu_fwd, _gelu_grad,
                    lambda p: (F.GELU_TANH if p[0] == "tanh" else F.GELU, ()),
                    lambda p: (F.GELU_TANH_FORWARD if p[0] == "tanh" else F.GELU_FORWARD, ()))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` (Phi the standard normal cdf), or its tanh approximation with ``approximate='tanh'``
    (``torch.nn.functional.gelu``)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate argument must be either none or tanh, got {approximate!r}")
    return _gelu(input, (approximate,), "gelu")


def _silu_grad(ns, g, x):
    s = _ns_sigmoid(ns, x)
    return g * (s * (1 + x * (1 - s)))


_silu = _activation("SiluBackward0", lambda xp, d: d * _sigmoid_fwd(xp, d), _silu_grad, F.SILU, F.SILU_FORWARD)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (``torch.nn.functional.silu``)."""
    return _silu(input, (), "silu", inplace)


def _softplus_arr(xp, d, beta, threshold):
    bx = d * beta
    # log1p(exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no overflow for any bx
    soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta
    return xp.where(bx > threshold, d, soft)


def _softplus_grad(ns, g, x, beta, threshold):
    bx = x * beta
    return ns.where(bx > threshold, g, g * _ns_sigmoid(ns, bx))


_softplus = _activation("SoftplusBackward0", _softplus_arr, _softplus_grad, F.SOFTPLUS, F.SOFTPLUS_FORWARD)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold`` (``torch.nn.functional.softplus``)."""
    return _softplus(input, (float(beta), float(threshold)), "softplus")


def _mish_fwd(xp, d):
    return d * xp.tanh(_softplus_arr(xp, d, 1.0, 20.0))


def _mish_grad(ns, g, x):
    sp = ns.where(x > 20.0, x, ns.log1p(ns.exp(-ns.abs(x))) + ns.where(x > 0, x, 0.0))
    t = ns.tanh(sp)
    return g * (t + x * _ns_sigmoid(ns, x) * (1 - t * t))


_mish = _activation("MishBackward0", _mish_fwd, _mish_grad, F.MISH, F.MISH_FORWARD)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))`` (``torch.nn.functional.mish``)."""
    return _mish(input, (), "mish", inplace)


_hardtanh = _activation(
    "HardtanhBackward0", lambda xp, d, lo, hi: xp.clip(d, lo, hi),
    lambda ns, g, x, lo, hi: ns.where((x <= lo) | (x >= hi), 0.0, g), F.HARDTANH)  # NaN passes g, as in torch


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """``clamp(x, min_val, max_val)``; zero gradient outside the open interval (``torch.nn.functional.hardtanh``)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _hardtanh(input, (float(min_val), float(max_val)), "hardtanh", inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)`` (``torch.nn.functional.relu6``)."""
    return _hardtanh(input, (0.0, 6.0), "relu6", inplace)


_hardsigmoid = _activation(
    "HardsigmoidBackward0", lambda xp, d: xp.clip(d / 6 + 0.5, 0, 1),
    lambda ns, g, x: ns.where((x > -3.0) & (x < 3.0), g / 6, 0.0), F.HARDSIGMOID, F.HARDSIGMOID_FORWARD)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6`` (``torch.nn.functional.hardsigmoid``)."""
    return _hardsigmoid(input, (), "hardsigmoid", inplace)


def _hardswish_grad(ns, g, x):
    # torch's one-sided choices at the kinks: 0 at x = -3, g at x = 3
    return ns.where(x <= -3.0, 0.0, ns.where(x < 3.0, g * (x / 3 + 0.5), g))


_hardswish = _activation("HardswishBackward0", lambda xp, d: d * xp.clip(d / 6 + 0.5, 0, 1), _hardswish_grad,
                         F.HARDSWISH, F.HARDSWISH_FORWARD)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6`` (``torch.nn.functional.hardswish``)."""
    return _hardswish(input, (), "hardswish", inplace)


_threshold = _activation(
    "ThresholdBackward0", lambda xp, d, th, value: xp.where(d <= th, value, d),  # NaN stays NaN, as in torch
    lambda ns, g, x, th, value: ns.where(x <= th, 0.0, g), lambda p: (F.THRESHOLD, p[:1]), F.THRESHOLD_FORWARD)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x if x > threshold else value`` (``torch.nn.functional.threshold``)."""
    return _threshold(input, (float(threshold), float(value)), "threshold", inplace)


def _logsigmoid_fwd(xp, d):
    # -softplus(-x), stable on both sides
    return xp.minimum(d, 0) - xp.log1p(xp.exp(-xp.abs(d)))


_logsigmoid = _activation("LogSigmoidBackward0", _logsigmoid_fwd,
                          lambda ns, g, x: g * _ns_sigmoid(ns, -x), F.LOGSIGMOID, F.LOGSIGMOID_FORWARD)


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, stable for large ``|x|`` (``torch.nn.functional.logsigmoid``)."""
    return _logsigmoid(input, (), "logsigmoid")


# ---------------------------------------------------------------------------------------------------------------
# pointwise losses: loss(x, t) elementwise, then reduced; one node with gradients for input and target.
# Each _pointwise_* gives (d loss / dx, d loss / dt) elementwise; the target part may be None when not wanted.

def _pointwise_mse(ns, x, t, p, want_target):
    d = x - t
    return d * 2, d * -2


def _pointwise_l1(ns, x, t, p, want_target):
    s = ns.sign(x - t)
    return s, -s


def _pointwise_smooth_l1(ns, x, t, p, want_target):
    (beta,) = p
    d = x - t
    if beta == 0:
        s = ns.sign(d)
    else:
        s = ns.where(d <= -beta, -1.0, ns.where(d >= beta, 1.0, d / beta))
    return s, -s


def _pointwise_huber(ns, x, t, p, want_target):
    (delta,) = p
    d = x - t
    s = ns.where(d < -delta, -delta, ns.where(d > delta, delta, d))
    return s, -s


def _ns_clamp_min(ns, x, value: float):
    return E.clamp_min(x, value) if ns.create_graph else ns.xp.maximum(x, value)


def _pointwise_bce(ns, x, t, p, want_target):
    gx = (x - t) / _ns_clamp_min(ns, (1 - x) * x, 1e-12)
    gt = None
    if want_target:
        # -logit(x), unclamped as in torch: infinite where x is exactly 0 or 1
        with np.errstate(divide="ignore"):
            gt = ns.log1p(-x) - ns.log(x)
    return gx, gt


def _pointwise_bce_logits(ns, x, t, p, want_target):
    (pos_weight,) = p
    sig_neg = _ns_sigmoid(ns, -x)
    if pos_weight is None:
        gx = (1 - t) - sig_neg
        gt = -x
    else:
        pw = _const(ns, pos_weight)
        gx = (1 - t) - (1 + (pw - 1) * t) * sig_neg
        softplus_neg = ns.log1p(ns.exp(-ns.abs(x))) + ns.where(x < 0, -x, 0.0)
        gt = (pw - 1) * softplus_neg - x
    return gx, gt


def _pointwise_kl(ns, x, t, p, want_target):
    (log_target,) = p
    if log_target:
        et = ns.exp(t)
        return -et, et * (t - x + 1)
    pos = t > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_t = ns.where(pos, t, 1.0)
        # d/dt t log t is unbounded at t = 0: torch reports nan there, and so do we
        gt = ns.where(pos, ns.log(safe_t) + 1 - x, math.nan)
    return -t, gt


class PointwiseLossBackward(Node):
    """Gradient of ``reduce(w * loss(x, t))``: the kind's elementwise derivatives, scaled by the reduction."""
    __slots__ = ("kind", "params", "reduction", "divisor", "x_shape", "t_shape", "weight", "torch_name", "kernel")

    def backward(self, ns, g):
        x, t = ns.saved(self)
        want_t = self.next_nodes[1] is not None
        if self.kernel is not None and not ns.create_graph and self.weight is None and self.divisor:
            kernel, scalars = self.kernel
            grads = F.loss_backward(ns.xp, kernel, x, t, g, self.divisor, want_t, *scalars)
            if grads is not None:
                return grads
        gx, gt = self.kind(ns, x, t, self.params, want_t)
        if not isinstance(self.divisor, (int, float)):  # a weighted mean's sum of weights, a 0-d array
            with np.errstate(invalid="ignore", divide="ignore"):  # all-zero weights: NaN, as in torch
                return self._scaled(ns, g / _const(ns, self.divisor), gx, gt, want_t)
        if self.divisor != 1:
            g = g / self.divisor if self.divisor else g * 0.0
        return self._scaled(ns, g, gx, gt, want_t)

    def _scaled(self, ns, g, gx, gt, want_t):
        if self.weight is not None:
            g = g * _const(ns, self.weight)
        rx = ns.sum_to(g * gx, self.x_shape)
        rt = ns.sum_to(g * gt, self.t_shape) if want_t else None
        return rx, rt

    def name(self) -> str:
        return self.torch_name


def _broadcast_check(x: Tensor, t: Tensor, op: str, strict: str | None) -> None:
    if x._data.shape == t._data.shape:
        return
    if strict == "bce":
        raise ValueError(f"Using a target size ({_size(t.shape)}) that is different to the input size "
                         f"({_size(x.shape)}) is deprecated. Please ensure they have the same size.")
    if strict == "bce_logits":
        raise ValueError(f"Target size ({_size(t.shape)}) must be the same as input size ({_size(x.shape)})")
    if strict == "warn":
        warnings.warn(f"Using a target size ({_size(t.shape)}) that is different to the input size "
                      f"({_size(x.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=4)
    try:
        np.broadcast_shapes(x._data.shape, t._data.shape)
    except ValueError:
        raise RuntimeError(f"{op}: The size of tensor a ({list(x.shape)}) must match the size of tensor b "
                           f"({list(t.shape)}) (they must be broadcastable)") from None


def _size(shape) -> str:
    return f"tinyautograd.Size({list(shape)})"


def _pointwise_loss(input: Tensor, target: Tensor, values, kind, params: tuple, reduction: str, op: str,
                    torch_name: str, weight_arr=None, weighted_mean: bool = False, kernel=None,
                    nan_check=None) -> Tensor:
    """Reduce the elementwise ``values`` (already weighted) and record one node for input and target.
    ``weighted_mean``: 'mean' divides by the sum of the weights instead of the element count. ``kernel``: the
    fused backward (kernel, scalars) tried on CUDA. ``nan_check``: called when the result holds a NaN (the fused
    forward signals an invalid input so): at once on the CPU, at the result's first host read on CUDA."""
    if reduction == "mean" and weighted_mean and weight_arr is not None:
        # the sum of the weights stays a 0-d array (on CUDA: no wait for the device); all-zero weights give
        # torch's NaN loss and NaN gradients
        divisor = xp_of(input._data).asarray(weight_arr.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            y = values.sum() / divisor
    elif reduction == "none":
        y = values
        divisor = 1
    elif reduction == "sum" or (reduction == "batchmean" and input._data.ndim == 0):
        y = values.sum()
        divisor = 1
    elif reduction == "batchmean":
        divisor = input._data.shape[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            y = values.sum() / divisor
    else:
        # sum / n rather than ndarray.mean: the same value, a fraction of the overhead on small batches
        n = values.size
        y = values.sum() / n if n else values.sum() * np.nan
        divisor = max(n, 1)
    xp = xp_of(input._data)
    y = xp.asarray(y, dtype=values.dtype)
    if nan_check is not None and xp is np:
        if y.ndim:
            flagged = values.size and bool(np.isnan(values).any())
        else:
            value = float(y)
            flagged = value != value
        if flagged:
            nan_check()
    if grad_state.enabled and (input.requires_grad or target.requires_grad):
        node = PointwiseLossBackward((edge(input), edge(target)))
        node.kernel = kernel
        node.kind, node.params, node.reduction, node.divisor = kind, params, reduction, divisor
        node.x_shape, node.t_shape, node.weight, node.torch_name = input._data.shape, target._data.shape, \
            weight_arr, torch_name
        node.saved = (input, target)
        node.versions = (input._version[0], target._version[0])
        out = wrap(y, node)
    else:
        out = wrap(y)
    if nan_check is not None and xp is not np:  # on CUDA: at the loss's first read on the host, not with a sync now
        defer_check(out, lambda host: nan_check() if np.isnan(host).any() else None)
    return out


def _loss_operands(input: Tensor, target: Tensor, op: str):
    _float_input(input, op)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}(): argument 'target' must be Tensor, not {type(target).__name__}")
    _same_device(input, target, op)
    x, t = input._data, target._data
    if t.dtype != x.dtype:
        target = target.to(input.dtype)
        t = target._data
    return x, t, target


def _elementwise_weight(weight: Tensor | None, input: Tensor, values, op: str):
    """torch's optional same-size ``weight`` of mse/l1/huber: (weighted values, weight array or None)."""
    if weight is None:
        return values, None
    w = _weight_array(weight, input, op)
    if tuple(w.shape) != tuple(input._data.shape):
        raise ValueError("Weights and input must have the same size.")
    values = values * w
    return values, xp_of(input._data).broadcast_to(w, np.shape(values))


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Squared error ``(x - t)^2`` reduced by ``reduction``; with ``weight``, 'mean' is the weighted mean
    ``sum(w * l) / sum(w)`` (``torch.nn.functional.mse_loss``)."""
    _check_reduction(reduction, "mse_loss")
    x, t, target = _loss_operands(input, target, "mse_loss")
    _broadcast_check(input, target, "mse_loss", "warn")
    values = F.loss_values(xp_of(x), F.MSE_LOSS, x, t) if weight is None else None
    if values is None:
        d = x - t
        values = d * d
    values, w = _elementwise_weight(weight, input, values, "mse_loss")
    return _pointwise_loss(input, target, values, _pointwise_mse, (), reduction, "mse_loss", "MseLossBackward0",
                           weight_arr=w, weighted_mean=True, kernel=(F.MSE_LOSS_BACKWARD, ()))


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Absolute error ``|x - t|`` reduced by ``reduction``; with ``weight``, 'mean' is ``sum(w * l) / sum(w)``
    (``torch.nn.functional.l1_loss``)."""
    _check_reduction(reduction, "l1_loss")
    x, t, target = _loss_operands(input, target, "l1_loss")
    _broadcast_check(input, target, "l1_loss", "warn")
    values = F.loss_values(xp_of(x), F.L1_LOSS, x, t) if weight is None else None
    values, w = _elementwise_weight(weight, input, xp_of(x).abs(x - t) if values is None else values, "l1_loss")
    return _pointwise_loss(input, target, values, _pointwise_l1, (), reduction, "l1_loss", "L1LossBackward0",
                           weight_arr=w, weighted_mean=True, kernel=(F.L1_LOSS_BACKWARD, ()))


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``torch.nn.functional.smooth_l1_loss``)."""
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    x, t, target = _loss_operands(input, target, "smooth_l1_loss")
    _broadcast_check(input, target, "smooth_l1_loss", "warn")
    xp = xp_of(x)
    beta = float(beta)
    values = F.loss_values(xp, F.SMOOTH_L1_LOSS, x, t, beta)
    if values is None:
        z = xp.abs(x - t)
        values = z if beta == 0 else xp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)
    return _pointwise_loss(input, target, values, _pointwise_smooth_l1, (beta,), reduction, "smooth_l1_loss",
                           "SmoothL1LossBackward0", kernel=(F.SMOOTH_L1_LOSS_BACKWARD, (beta,)))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; an optional same-size ``weight``
    multiplies each term before the plain mean/sum (``torch.nn.functional.huber_loss``)."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    x, t, target = _loss_operands(input, target, "huber_loss")
    _broadcast_check(input, target, "huber_loss", "warn")
    xp = xp_of(x)
    delta = float(delta)
    values = F.loss_values(xp, F.HUBER_LOSS, x, t, delta) if weight is None else None
    if values is None:
        z = xp.abs(x - t)
        values = xp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    values, w = _elementwise_weight(weight, input, values, "huber_loss")
    return _pointwise_loss(input, target, values, _pointwise_huber, (delta,), reduction, "huber_loss",
                           "HuberLossBackward0", weight_arr=w, kernel=(F.HUBER_LOSS_BACKWARD, (delta,)))


def _weight_array(weight: Tensor | None, like: Tensor, op: str, name: str = "weight"):
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(weight).__name__}")
    _same_device(like, weight, op)
    w = weight._data
    return w if w.dtype == like._data.dtype else w.astype(like._data.dtype)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """``-w [t log x + (1 - t) log(1 - x)]`` for probabilities ``x``, each log clamped at -100 as in torch
    (``torch.nn.functional.binary_cross_entropy``)."""
    _check_reduction(reduction, "binary_cross_entropy")
    x, t, target = _loss_operands(input, target, "binary_cross_entropy")
    _broadcast_check(input, target, "binary_cross_entropy", "bce")
    xp = xp_of(x)
    w = _weight_array(weight, input, "binary_cross_entropy")

    def check_range():  # torch checks both, the input first; NaN is out of range
        for arr, what in ((x, "input"), (t, "target")):
            if arr.size and (bool((arr < 0).any()) or bool((arr > 1).any()) or bool(xp.isnan(arr).any())):
                raise RuntimeError(f"all elements of {what} should be between 0 and 1")

    # the kernel marks an input or target outside [0, 1] with a NaN loss: the exact check runs only when the
    # result has a NaN
    values = F.loss_values(xp, F.BCE_LOSS, x, t) if w is None else None
    fused = values is not None
    if not fused:
        check_range()
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100.0)
            log_1mx = xp.maximum(xp.log1p(-x), -100.0)
        values = (t - 1) * log_1mx - t * log_x
    if w is not None:
        values = values * w
        w = xp.broadcast_to(w, values.shape)
    return _pointwise_loss(input, target, values, _pointwise_bce, (), reduction, "binary_cross_entropy",
                           "BinaryCrossEntropyBackward0", weight_arr=w, kernel=(F.BCE_LOSS_BACKWARD, ()),
                           nan_check=check_range if fused else None)  # the formula path checked already


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(x), t)`` computed stably from logits, with optional ``pos_weight`` on the
    positive term (``torch.nn.functional.binary_cross_entropy_with_logits``)."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    x, t, target = _loss_operands(input, target, "binary_cross_entropy_with_logits")
    _broadcast_check(input, target, "binary_cross_entropy_with_logits", "bce_logits")
    xp = xp_of(x)
    w = _weight_array(weight, input, "binary_cross_entropy_with_logits")
    pw = _weight_array(pos_weight, input, "binary_cross_entropy_with_logits", "pos_weight")
    values = kernel = None
    if w is None and pw is None:
        values, kernel = F.loss_values(xp, F.BCE_LOGITS_LOSS, x, t), (F.BCE_LOGITS_LOSS_BACKWARD, ())
    elif w is None and np.broadcast_shapes(pw.shape, x.shape) == x.shape:  # pos_weight broadcast in the kernel
        values, kernel = F.loss_values(xp, F.BCE_LOGITS_PW_LOSS, x, t, pw), (F.BCE_LOGITS_PW_LOSS_BACKWARD, (pw,))
    if values is None:
        with np.errstate(under="ignore"):
            softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        if pw is None:
            values = (1 - t) * x + softplus_neg
        else:
            values = (1 - t) * x + (1 + (pw - 1) * t) * softplus_neg
    if w is not None:
        values = values * w
        w = xp.broadcast_to(w, values.shape)
    return _pointwise_loss(input, target, values, _pointwise_bce_logits, (pw,), reduction,
                           "binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0",
                           weight_arr=w, kernel=kernel)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """``t (log t - x)`` (``x`` log-probabilities; with ``log_target`` the target is log-probabilities too),
    reductions include ``'batchmean'`` (sum divided by the batch size) (``torch.nn.functional.kl_div``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    x, t, target = _loss_operands(input, target, "kl_div")
    _broadcast_check(input, target, "kl_div", None)
    xp = xp_of(x)
    values = F.loss_values(xp, F.KL_DIV_LOSS, x, t, int(bool(log_target)))
    if values is None and log_target:
        values = xp.exp(t) * (t - x)
    elif values is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = xp.where(t > 0, t * (xp.log(xp.where(t > 0, t, 1)) - x), 0 * x)
    return _pointwise_loss(input, target, values, _pointwise_kl, (bool(log_target),), reduction, "kl_div",
                           "KlDivBackward0", kernel=(F.KL_DIV_LOSS_BACKWARD, (int(bool(log_target)),)))


def legacy_reduction(size_average, reduce) -> str:
    """torch's deprecated ``size_average``/``reduce`` pair as a ``reduction`` string."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else "mean" if size_average else "sum"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  stacklevel=3)
    return reduction


# ---------------------------------------------------------------------------------------------------------------
# cross entropy and nll: class dimension 1 (0 for an unbatched (C,) input)

def _class_targets(input: Tensor, target: Tensor, op: str):
    """Validate class-index targets; returns (x as (N, C, ...), t as (N, ...), batched)."""
    x, t = input._data, target._data
    if x.ndim == 0:
        raise RuntimeError(f"{op}: input must have at least 1 dimension (C,) or (N, C, ...), got a 0-d tensor")
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected target of an integer dtype (class indices) but got {target.dtype}")
    batched = x.ndim > 1
    if not batched:
        if t.ndim != 0:
            raise RuntimeError(f"{op}: for an unbatched input of shape {list(x.shape)} the target must be 0-d, "
                               f"got shape {list(t.shape)}")
        x, t = x[None], t[None]
    elif t.ndim >= 1 and t.shape[0] != x.shape[0]:
        raise ValueError(f"Expected input batch_size ({x.shape[0]}) to match target batch_size ({t.shape[0]}).")
    elif t.shape != x.shape[:1] + x.shape[2:]:
        raise RuntimeError(f"{op}: expected target of shape {list(x.shape[:1] + x.shape[2:])} for input of shape "
                           f"{list(x.shape)}, got {list(t.shape)}")
    return x, t, batched


def _checked_targets(xp, t, classes: int, ignore_index: int):
    valid = t != ignore_index
    tt = xp.where(valid, t, 0)
    if tt.size:
        bad = (tt < 0) | (tt >= classes)
        if bool(bad.any()):
            value = int(t[bad].reshape(-1)[0]) if xp is np else int(t[bad].reshape(-1)[0].get())
            raise IndexError(f"Target {value} is out of bounds.")
    return valid, tt.astype(np.int64, copy=False)


def _reduce_per_position(xp, per, reduction: str, batched: bool, divisor, dtype):
    """Per-position class losses reduced as torch does: 'none' keeps them (the single value when unbatched), 'sum'
    adds them, 'mean' divides the sum by ``divisor`` (an array or a number; 0/0 gives nan)."""
    if reduction == "none":
        y = per if batched else per[0]
    elif reduction == "sum":
        y = per.sum()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = per.sum() / divisor
    return xp.asarray(y, dtype=dtype)


def _class_shape(ndim: int, classes: int) -> tuple:
    return (1, classes) + (1,) * (ndim - 2)


class CrossEntropyBackward(Node):
    """Cross entropy from logits: d/dx = a * (softmax(x) * sum_c q - q), where q is the per-position weighted
    (smoothed) target distribution and ``a`` the reduction's scale of the incoming gradient."""
    __slots__ = ("out", "tt", "valid", "weight", "smoothing", "reduction", "divisor", "work_shape", "prob", "rows",
                 "ignore_index", "probs")
    has_out = True

    def backward(self, ns, g):
        saved = ns.saved(self)
        x = saved[0]
        shape = self.work_shape
        classes = shape[1]
        if self.probs is not None:  # after _class_rows_cpu
            if not ns.create_graph:
                return self._rows_backward(g, tuple(x.shape)), None
            self.valid = np.ones(shape[0], dtype=bool)
        if self.rows is not None:
            if not ns.create_graph and _kernels.enabled(ns.xp) and _kernels.supported(x, g):
                if self.prob:
                    return self._prob_backward(ns.xp, x, saved[1], g)
                return self._fused_backward(ns.xp, x, g), None
            self._unfuse(xp_of(self.saved[0]._data))
        reshape = tuple(x.shape) != shape
        if reshape:
            x = ns.reshape(x, shape)
        if ns.create_graph:
            logp = R.log_softmax(x, 1)
        else:
            logp = self.out
            if logp is None:
                raise freed_error(self)
        p = ns.exp(logp)
        w = None if self.weight is None else self.weight.reshape(_class_shape(len(shape), classes))
        eps = self.smoothing
        if self.prob:
            t = saved[1]
            if reshape:
                t = ns.reshape(t, shape)
            q = t * (1 - eps) + eps / classes if eps else t
            if w is not None:
                q = q * _const(ns, w)
            s = ns.sum(q, 1, True)
        else:
            xp = xp_of(self.tt)
            dtype = logp._data.dtype if ns.create_graph else logp.dtype
            wy = self.valid.astype(dtype) if w is None else self.weight[self.tt] * self.valid
            onehot = xp.arange(classes).reshape(_class_shape(len(shape), classes)) == self.tt[:, None]
            q = onehot * (wy * (1 - eps))[:, None]
            q = q.astype(dtype, copy=False)
            if eps:
                smooth = (eps / classes) * self.valid[:, None].astype(dtype)
                q += smooth if w is None else smooth * w
            s = _const(ns, q.sum(axis=1, keepdims=True))
            q = _const(ns, q)
        a = g
        if self.reduction == "mean":
            # every target ignored: the loss is nan (0/0) but, as in torch, the gradient is zero
            divisor = _host_number(self.divisor)
            a = g / divisor if divisor else g * 0.0
        if self.reduction == "none":
            a = ns.expand_dims(ns.reshape(a, (shape[0],) + shape[2:]), 1)
        gx = (p * s - q) * a
        if reshape:
            gx = ns.reshape(gx, tuple(saved[0].shape))
        gt = None
        if self.prob and len(self.next_nodes) > 1 and self.next_nodes[1] is not None:
            gt = logp * (-(1 - eps)) * a
            if w is not None:
                gt = gt * _const(ns, w)
            if reshape:
                gt = ns.reshape(gt, tuple(saved[1].shape))
        return gx, gt

    def _rows_backward(self, g, x_shape: tuple):
        """softmax - onehot, scaled: the NumPy floor's few operations."""
        e, s = self.probs
        gx = e / s
        n = gx.shape[0]
        gx[np.arange(n), self.tt] -= 1
        if self.reduction == "mean":
            gx *= g / n
        elif self.reduction == "sum":
            gx *= g
        else:
            gx *= g.reshape(n, 1)
        return gx.reshape(x_shape)

    def _fused_backward(self, xp, x, g):
        return _class_rows_backward(xp, self, x, g, softmax=True).reshape(x.shape)

    def _prob_backward(self, xp, x, t, g):
        """Both gradients of ``_prob_rows`` in one launch (the target's only when it wants one)."""
        rowmax, logsum, qsum, w, eps = self.rows
        shape = self.work_shape
        want_t = len(self.next_nodes) > 1 and self.next_nodes[1] is not None
        tt = xp.ascontiguousarray(t.astype(x.dtype, copy=False)).reshape(-1)
        gx = xp.empty(shape, dtype=x.dtype)
        gt = xp.empty(shape if want_t else 1, dtype=x.dtype)
        F.CROSS_ENTROPY_PROB_BACKWARD(x.reshape(shape), tt, rowmax, logsum, qsum, g.reshape(-1),
                                      qsum if w is None else w, shape[1], math.prod(shape[2:]),
                                      int(self.reduction == "none"), int(self.reduction == "mean"),
                                      float(self.divisor), int(w is not None), eps, int(want_t), gx, gt)
        return gx.reshape(x.shape), (gt.reshape(t.shape).astype(t.dtype, copy=False) if want_t else None)

    def _unfuse(self, xp) -> None:
        """Recover what the formula path needs after a fused forward (a graph recorded through this backward)."""
        if self.valid is None and not self.prob:
            self.valid = self.tt != self.ignore_index
            self.tt = xp.where(self.valid, self.tt, 0)
        if self.out is None and self.rows is not None and self.saved is not None:
            shape = self.work_shape
            stat_shape = (shape[0], 1) + tuple(shape[2:])
            rowmax, logsum = (a.reshape(stat_shape) for a in self.rows[:2])
            x = self.saved[0]._data.reshape(shape)
            self.out = (x - rowmax) - logsum

    def name(self) -> str:
        return "NllLossBackward0" if not self.prob else "DivBackward1"


def _use_class_rows(x, t, weight) -> bool:
    """Whether the fused class-index kernels take an (N, C, ...) input (CUDA, float32/64, class weights or not)."""
    return (x.ndim >= 2 and 0 < x.shape[1] <= F.CROSS_ENTROPY_ROW_LIMIT and x.size > 0
            and _kernels.enabled(xp_of(x)) and _kernels.supported(x, *([] if weight is None else [weight])))


def _class_rows(input: Tensor, x, t, ignore_index: int, reduction: str, batched: bool, softmax: bool, w=None,
                eps: float = 0.0) -> Tensor:
    """``cross_entropy`` (``softmax``; with label smoothing ``eps``) or ``nll_loss`` for an (N, C, ...) input and
    class indices, class weights ``w`` or none, in fused kernels: one launch for the per-position losses, one for
    the backward."""
    xp = xp_of(x)
    shape = x.shape
    classes, positions = shape[1], x.size // shape[1]
    x = xp.ascontiguousarray(x)
    t = t.astype(np.int64, copy=False)
    loss, rowmax, logsum, count, qsum = (xp.empty(positions, dtype=x.dtype) for _ in range(5))
    # raw arrays go in flat (1-d views): the kernel indexes x[(n * C + class) * inner + position]
    flat = x.reshape(-1)
    F.CROSS_ENTROPY(flat, t.reshape(-1), flat if w is None else w, classes, positions // shape[0], int(ignore_index),
                    int(softmax), int(w is not None), float(eps), loss, rowmax, logsum, count, qsum)
    loss = loss.reshape(t.shape)
    total = count.sum()  # NaN when a target is out of range: the kernel writes NaN count and loss there

    def check(values) -> None:  # raises the IndexError naming the bad target, as torch does
        if np.isnan(values).any():
            _checked_targets(xp, t, classes, ignore_index)

    if xp is np:
        divisor = float(total)
        if divisor != divisor:
            check(loss)
    else:  # the divisor stays on the device and the check waits for the loss's first read on the host (no sync)
        divisor = total
    y = _reduce_per_position(xp, loss, reduction, batched, total, x.dtype)
    if not (grad_state.enabled and input.requires_grad):
        out = wrap(y)
        if xp is not np:
            defer_check(out, check)
        return out
    if softmax:
        node = CrossEntropyBackward((edge(input),))
        node.out, node.valid, node.weight, node.smoothing, node.prob = None, None, w, float(eps), False
        node.probs = None
        node.saved = (input,)
        node.versions = (input._version[0],)
    else:
        node = NllLossBackward((edge(input),))
        node.wy, node.in_shape = None, input._data.shape
    node.rows, node.tt, node.ignore_index = (rowmax, logsum, qsum, w, float(eps)), t, ignore_index
    node.reduction, node.divisor, node.work_shape = reduction, divisor, shape
    out = wrap(y, node)
    if xp is not np:
        defer_check(out, check)
    return out


def _host_number(value):
    """A divisor kept on the device by a fused forward, as a Python number (for the formula backward paths)."""
    return value if isinstance(value, (int, float)) else float(value)


def _prob_rows(input: Tensor, target: Tensor, x, t, reduction: str, batched: bool, w, eps: float) -> Tensor:
    """``cross_entropy`` against class probabilities ``t`` (shaped like the (N, C, ...) input), in fused kernels:
    one launch for the per-position losses, one for both gradients."""
    xp = xp_of(x)
    shape = x.shape
    classes, positions = shape[1], x.size // shape[1]
    x = xp.ascontiguousarray(x)
    flat = x.reshape(-1)
    loss, rowmax, logsum, qsum = (xp.empty(positions, dtype=x.dtype) for _ in range(4))
    F.CROSS_ENTROPY_PROB(flat, xp.ascontiguousarray(t).reshape(-1), flat if w is None else w, classes,
                         positions // shape[0], int(w is not None), float(eps), loss, rowmax, logsum, qsum)
    per = loss.reshape((shape[0],) + shape[2:])
    divisor = max(per.size, 1)
    y = _reduce_per_position(xp, per, reduction, batched, divisor, x.dtype)
    if not (grad_state.enabled and (input.requires_grad or target.requires_grad)):
        return wrap(y)
    node = CrossEntropyBackward((edge(input), edge(target)))
    node.out = node.valid = node.tt = node.ignore_index = node.probs = None
    node.weight, node.smoothing, node.prob = w, float(eps), True
    node.rows = (rowmax, logsum, qsum, w, float(eps))
    node.reduction, node.divisor, node.work_shape = reduction, divisor, shape
    node.saved = (input, target)
    node.versions = (input._version[0], target._version[0])
    return wrap(y, node)


def _class_rows_cpu(input: Tensor, x, t, ignore_index: int, reduction: str, batched: bool):
    """``cross_entropy`` of an (N, C) NumPy input with class indices, no weights and no target ignored: the
    operations of a hand-written NumPy loop (the general formula's target checks, one-hot and gathers cost more
    than the math at the course's sizes). None when a target is out of range or ignored: the formula handles (and
    reports) those."""
    if x.ndim != 2 or not x.size or x.dtype.kind != "f" or t.dtype.kind not in "iu":
        return None
    n, classes = x.shape
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= classes or (low <= ignore_index <= high and bool((t == ignore_index).any())):
        return None
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    per = np.log(s)[:, 0] - shifted[np.arange(n), t]
    if reduction == "none":
        y = per if batched else per[0]
    else:
        y = per.sum() if reduction == "sum" else per.sum() / x.dtype.type(n)
    y = np.asarray(y, dtype=x.dtype)
    if not (grad_state.enabled and input.requires_grad):
        return wrap(y)
    node = CrossEntropyBackward((edge(input),))
    node.out = node.valid = node.weight = node.rows = node.ignore_index = None
    node.smoothing, node.prob, node.probs, node.tt = 0.0, False, (e, s), t.astype(np.int64, copy=False)
    node.reduction, node.divisor, node.work_shape = reduction, float(n), (n, classes)
    node.saved = (input,)
    node.versions = (input._version[0],)
    return wrap(y, node)


def _class_rows_backward(xp, node, x, g, softmax: bool):
    """The input gradient of a ``_class_rows`` loss in one launch, shaped like the loss's input. nll_loss passes
    no ``x`` (its gradient does not depend on it): a broadcast placeholder sets the kernel's shape."""
    rowmax, logsum, qsum, w, eps = node.rows
    shape = node.work_shape
    x = xp.broadcast_to(xp.empty(1, dtype=g.dtype), shape) if x is None else x.reshape(shape)
    gx = xp.empty(shape, dtype=g.dtype)
    divisor = node.divisor
    divisor = xp.full(1, divisor, dtype=g.dtype) if isinstance(divisor, (int, float)) else divisor.reshape(1)
    F.CROSS_ENTROPY_BACKWARD(x, rowmax, logsum, node.tt.reshape(-1), g.reshape(-1), qsum if w is None else w, qsum,
                             divisor.astype(g.dtype, copy=False), shape[1], math.prod(shape[2:]), node.ignore_index,
                             int(node.reduction == "none"), int(node.reduction == "mean"), int(softmax),
                             int(w is not None), eps, gx)
    return gx


def _log_softmax_arr(xp, x):
    with np.errstate(under="ignore"):
        return R._log_softmax_arrays(xp, x, 1)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits ``input`` ``(C,)`` / ``(N, C)`` / ``(N, C, d1, ...)`` and ``target``: class
    indices ``()`` / ``(N,)`` / ``(N, d1, ...)``, or class probabilities shaped like ``input``. Stable for any logit
    magnitude; one node (``torch.nn.functional.cross_entropy``).

    With class indices, ``'mean'`` divides by the summed weights of the non-ignored targets (torch's weighted
    mean); with probabilities it divides by the number of positions ``N * d1 * ...``.
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction, "cross_entropy")
    _float_input(input, "cross_entropy")
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy(): argument 'target' must be Tensor, not {type(target).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    _same_device(input, target, "cross_entropy")
    x = input._data
    xp = xp_of(x)
    prob = target._data.dtype.kind == "f"
    batched = x.ndim > 1
    if prob:
        if target._data.shape != x.shape:
            raise RuntimeError(f"cross_entropy: with class-probability targets the target must have the input's "
                               f"shape {list(x.shape)}, got {list(target.shape)}")
        if x.ndim == 0:
            raise RuntimeError("cross_entropy: input must have at least 1 dimension (C,) or (N, C, ...)")
        t = target._data if target._data.dtype == x.dtype else target._data.astype(x.dtype)
        if not batched:
            x, t = x[None], t[None]
    else:
        x, t, batched = _class_targets(input, target, "cross_entropy")
    shape = x.shape
    classes = shape[1]
    w = _weight_array(weight, input, "cross_entropy")
    if w is not None and w.shape != (classes,):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {classes} classes or "
                           f"no classes but got weight tensor of shape: {list(w.shape)}")
    if _use_class_rows(x, t, w):
        if prob:
            return _prob_rows(input, target, x, t, reduction, batched, w, label_smoothing)
        return _class_rows(input, x, t, ignore_index, reduction, batched, True, w, label_smoothing)
    if not prob and not label_smoothing and w is None and xp is np:
        out = _class_rows_cpu(input, x, t, ignore_index, reduction, batched)
        if out is not None:
            return out
    wb = None if w is None else w.reshape(_class_shape(x.ndim, classes))
    logp = _log_softmax_arr(xp, x)
    eps = float(label_smoothing)
    tt = valid = None
    if prob:
        q = t * (1 - eps) + eps / classes if eps else t
        if wb is not None:
            q = q * wb
        per = -(q * logp).sum(axis=1)
        divisor = max(per.size, 1)
        total = None
    else:
        valid, tt = _checked_targets(xp, t, classes, ignore_index)
        picked = xp.take_along_axis(logp, tt[:, None], axis=1)[:, 0]
        wy = valid.astype(x.dtype) if w is None else w[tt] * valid
        per = -wy * picked
        if eps:
            smooth = -(logp.sum(axis=1) if wb is None else (logp * wb).sum(axis=1)) * valid
            per = (1 - eps) * per + (eps / classes) * smooth
        total = wy.sum()
        divisor = float(total)
    y = _reduce_per_position(xp, per, reduction, batched, divisor if prob else total, x.dtype)
    target_grad = prob and target.requires_grad
    if grad_state.enabled and (input.requires_grad or target_grad):
        node = CrossEntropyBackward((edge(input), edge(target)) if prob else (edge(input),))
        node.out, node.tt, node.valid, node.weight, node.smoothing = logp, tt, valid, w, eps
        node.rows = node.ignore_index = node.probs = None
        node.reduction, node.divisor, node.work_shape, node.prob = reduction, divisor, shape, prob
        node.saved = (input, target) if prob else (input,)
        node.versions = tuple(s._version[0] for s in node.saved)
        return wrap(y, node)
    return wrap(y)


class NllLossBackward(Node):
    """``-w[t] * x[n, t]``: the gradient lands at each target's class position."""
    __slots__ = ("tt", "wy", "reduction", "divisor", "work_shape", "in_shape", "rows", "ignore_index")

    def backward(self, ns, g):
        shape = self.work_shape
        if self.rows is not None:
            if not ns.create_graph and _kernels.enabled(ns.xp) and _kernels.supported(g):
                return (_class_rows_backward(ns.xp, self, None, g, softmax=False).reshape(self.in_shape),)
            if self.wy is None:  # after a fused forward: what the formula needs
                valid = self.tt != self.ignore_index
                self.tt = xp_of(self.tt).where(valid, self.tt, 0)
                w = self.rows[3]
                self.wy = valid.astype(self.rows[0].dtype) if w is None else w[self.tt] * valid
        a = g
        if self.reduction == "mean":
            # every target ignored: the loss is nan (0/0) but, as in torch, the gradient is zero
            divisor = _host_number(self.divisor)
            a = g / divisor if divisor else g * 0.0
        if self.reduction == "none":
            a = ns.reshape(a, (shape[0],) + shape[2:])
        # each position has exactly one target class: a one-hot mask places the gradient without a scatter
        onehot = xp_of(self.tt).arange(shape[1]).reshape(_class_shape(len(shape), shape[1])) == self.tt[:, None]
        gx = _const(ns, onehot) * ns.expand_dims(a * _const(ns, -self.wy), 1)
        if shape != self.in_shape:
            gx = ns.reshape(gx, self.in_shape)
        return (gx,)

    def name(self) -> str:
        return "NllLossBackward0"


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of log-probabilities ``input`` ``(C,)`` / ``(N, C)`` / ``(N, C, d1, ...)`` at class
    indices ``target``; ``'mean'`` divides by the summed weights of the non-ignored targets
    (``torch.nn.functional.nll_loss``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction, "nll_loss")
    _float_input(input, "nll_loss")
    if not isinstance(target, Tensor):
        raise TypeError(f"nll_loss(): argument 'target' must be Tensor, not {type(target).__name__}")
    _same_device(input, target, "nll_loss")
    x, t, batched = _class_targets(input, target, "nll_loss")
    xp = xp_of(x)
    classes = x.shape[1]
    w = _weight_array(weight, input, "nll_loss")
    if w is not None and w.shape != (classes,):
        raise RuntimeError(f"nll_loss: weight tensor should be defined either for all {classes} classes or no "
                           f"classes but got weight tensor of shape: {list(w.shape)}")
    if _use_class_rows(x, t, w):
        return _class_rows(input, x, t, ignore_index, reduction, batched, False, w)
    valid, tt = _checked_targets(xp, t, classes, ignore_index)
    wy = valid.astype(x.dtype) if w is None else w[tt] * valid
    per = -wy * xp.take_along_axis(x, tt[:, None], axis=1)[:, 0]
    total = wy.sum()
    y = _reduce_per_position(xp, per, reduction, batched, total, x.dtype)
    if grad_state.enabled and input.requires_grad:
        node = NllLossBackward((edge(input),))
        node.tt, node.wy, node.reduction, node.divisor = tt, wy, reduction, float(total)
        node.work_shape, node.in_shape, node.rows = x.shape, input._data.shape, None
        return wrap(y, node)
    return wrap(y)


# ---------------------------------------------------------------------------------------------------------------
# normalisation: batch_norm, layer_norm and group_norm share one node

class NormBackward(Node):
    """``y = xhat * w + b`` with ``xhat`` the input normalised over ``axes`` (after reshaping to ``group_shape``
    for group norm). With batch statistics the gradient flows through the mean and variance too; with fixed
    statistics (batch norm in eval) ``xhat`` is affine in ``x``."""
    __slots__ = ("xhat", "invstd", "axes", "group_shape", "param_shape", "param_axes", "eps", "fixed_mean",
                 "has_weight", "torch_name", "true_shape", "fused")

    def backward(self, ns, g):
        saved = ns.saved(self)
        x = saved[0]
        w = saved[1] if self.has_weight else None
        n_in = self.next_nodes
        x_shape = tuple(x.shape)
        gshape = self.group_shape or x_shape
        if ns.create_graph:
            xr = ns.reshape(x, gshape) if self.group_shape else x
            if self.fixed_mean is None:
                mean = ns.mean_keep(xr, self.axes)
                xc = xr - mean
                invstd = 1 / ns.sqrt(ns.mean_keep(xc * xc, self.axes) + self.eps)
            else:
                xc = xr - _const(ns, self.fixed_mean)
                invstd = _const(ns, self.invstd)
            xhat_r = xc * invstd
        elif self.fused is not None:
            # the forward kernels kept no xhat: the batch (C,) or row (R,) means and invstds instead
            mean, invstd = self.fused, self.invstd
            need_w, need_b = w is not None and n_in[1] is not None, n_in[2] is not None
            if self.torch_name in ("NativeLayerNormBackward0", "NativeGroupNormBackward0"):
                groups = self.group_shape[1] if self.group_shape else 0
                k = len(self.true_shape)
                stat_shape = self.group_shape[:2] + (1,) if groups else x_shape[:len(x_shape) - k] + (1,) * k
                grads = F.layer_norm_backward(ns.xp, g, x, w, mean, invstd, n_in[0] is not None, need_w, need_b,
                                              groups)
                if grads is not None:
                    gx, gw, gb = grads
                    return (gx, None if gw is None else gw.reshape(self.true_shape),
                            None if gb is None else gb.reshape(self.true_shape))
                if groups:
                    x = x.reshape(self.group_shape)
            else:
                stat_shape = self.param_shape
                grads = F.batch_norm_backward(ns.xp, g, x, w, mean, invstd, n_in[0] is not None)
                if grads is not None:
                    gx, gw, gb = grads
                    return gx, gw if need_w else None, gb if need_b else None
            invstd = invstd.reshape(stat_shape)
            xhat_r = (x - mean.reshape(stat_shape)) * invstd
        else:
            xhat_r, invstd = self.xhat, self.invstd
            if xhat_r is None:
                raise freed_error(self)
        xhat = ns.reshape(xhat_r, x_shape) if self.group_shape else xhat_r
        gx = gw = gb = None
        if n_in[0] is not None:
            gy = g * ns.reshape(w, self.param_shape) if w is not None else g
            gy_r = ns.reshape(gy, gshape) if self.group_shape else gy
            if self.fixed_mean is None:
                gx = invstd * (gy_r - ns.mean_keep(gy_r, self.axes)
                               - xhat_r * ns.mean_keep(gy_r * xhat_r, self.axes))
            else:
                gx = gy_r * invstd
            if self.group_shape:
                gx = ns.reshape(gx, x_shape)
        if w is not None and n_in[1] is not None:
            gw = g * xhat
            gw = ns.reshape(ns.sum(gw, self.param_axes) if self.param_axes else gw, self.true_shape)
        if n_in[2] is not None:
            gb = ns.reshape(ns.sum(g, self.param_axes) if self.param_axes else g, self.true_shape)
        return gx, gw, gb

    def name(self) -> str:
        return self.torch_name


def _normalize(input: Tensor, weight: Tensor | None, bias: Tensor | None, axes: tuple, group_shape, param_shape,
               param_axes: tuple, true_shape: tuple, eps: float, torch_name: str, fixed=None):
    """The shared forward: returns (output tensor, batch mean, batch biased variance) as arrays."""
    x = input._data
    xp = xp_of(x)
    xr = x.reshape(group_shape) if group_shape else x
    if fixed is None:
        mean = xr.mean(axis=axes, keepdims=True)
        xc = xr - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        invstd = 1 / xp.sqrt(var + eps)
    else:
        mean, var = fixed
        xc = xr - mean
        invstd = 1 / xp.sqrt(var + eps)
    xhat_r = xc * invstd
    y = xhat_r.reshape(x.shape) if group_shape else xhat_r
    if weight is not None:
        y = y * weight._data.reshape(param_shape)
    if bias is not None:
        y = y + bias._data.reshape(param_shape)
    if weight is None and bias is None:
        y = y.copy()  # the node keeps xhat: the output must not alias it
    y = y.astype(x.dtype, copy=False)
    out = _norm_output(y, input, weight, bias, xhat_r, invstd, axes, group_shape, param_shape, param_axes, true_shape,
                       eps, torch_name, None if fixed is None else mean)
    return out, mean, var


def _norm_output(y, input: Tensor, weight, bias, xhat_r, invstd, axes, group_shape, param_shape, param_axes,
                 true_shape, eps: float, torch_name: str, fixed_mean, fused=None):
    """The output tensor of a normalisation, with its NormBackward node when a gradient is wanted. ``fused``: the
    batch mean (C,) when batch norm's training forward ran as a kernel (``xhat_r`` None, ``invstd`` (C,)); the
    backward then tries its kernel too."""
    tracked = (input, weight, bias)
    if not (grad_state.enabled and any(t is not None and t.requires_grad for t in tracked)):
        return wrap(y)
    edges = (edge(input), edge(weight) if weight is not None else None, edge(bias) if bias is not None else None)
    node = NormBackward(edges)
    node.xhat, node.invstd, node.axes, node.group_shape = xhat_r, invstd, axes, group_shape
    node.param_shape, node.param_axes, node.eps, node.torch_name = param_shape, param_axes, eps, torch_name
    node.true_shape = true_shape
    node.fixed_mean = fixed_mean
    node.has_weight = weight is not None
    node.fused = fused
    node.saved = (input, weight) if weight is not None else (input,)
    node.versions = tuple(t._version[0] for t in node.saved)
    return wrap(y, node)


def _check_param(t: Tensor | None, shape: tuple, input: Tensor, op: str, name: str) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    _same_device(input, t, op)
    if tuple(t._data.shape) != shape:
        raise RuntimeError(f"{op}: expected {name} of shape {list(shape)}, got {list(t.shape)}")
    if t._data.dtype != input._data.dtype:
        raise RuntimeError(f"{op}: expected {name} to have dtype {input.dtype} like the input, got {t.dtype}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-05) -> Tensor:
    """Normalise each channel (dim 1) of ``(N, C, ...)`` over every other dim (``torch.nn.functional.batch_norm``).

    Training uses the batch statistics and, when running buffers are given, updates them in place:
    ``running = (1 - momentum) * running + momentum * batch`` with the unbiased batch variance. Otherwise the
    running statistics are used.
    """
    _float_input(input, "batch_norm")
    x = input._data
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {list(x.shape)}")
    channels = x.shape[1]
    for t, name in ((weight, "weight"), (bias, "bias"), (running_mean, "running_mean"),
                    (running_var, "running_var")):
        _check_param(t, (channels,), input, "batch_norm", name)
    param_shape = _class_shape(x.ndim, channels)
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        count = x.size // max(channels, 1)
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{_size(x.shape)}")
        fused = F.batch_norm_train(xp_of(x), x, *(None if t is None else t._data
                                                  for t in (weight, bias, running_mean, running_var)),
                                   float(eps), float(momentum))
        if fused is not None:
            y, mean, invstd = fused
            for t in (running_mean, running_var):
                if t is not None:
                    t._version[0] += 1
            return _norm_output(y, input, weight, bias, None, invstd, axes, None, param_shape, axes, (channels,),
                                float(eps), "NativeBatchNormBackward0", None, fused=mean)
        y, mean, var = _normalize(input, weight, bias, axes, None, param_shape, axes, (channels,), float(eps),
                                  "NativeBatchNormBackward0")
        if running_mean is not None or running_var is not None:
            m = float(momentum)
            if running_mean is not None:
                rm = running_mean._data
                rm *= 1 - m
                rm += m * mean.reshape(channels).astype(rm.dtype, copy=False)
                running_mean._version[0] += 1
            if running_var is not None:
                rv = running_var._data
                rv *= 1 - m
                rv += (m * count / (count - 1)) * var.reshape(channels).astype(rv.dtype, copy=False)
                running_var._version[0] += 1
        return y
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be given when training=False")
    if not (grad_state.enabled and any(t is not None and t.requires_grad for t in (input, weight, bias))):
        y = F.batch_norm_eval(xp_of(x), x, running_mean._data, running_var._data,
                              None if weight is None else weight._data, None if bias is None else bias._data,
                              float(eps))
        if y is not None:
            return wrap(y)
    fixed = (running_mean._data.reshape(param_shape).astype(x.dtype, copy=False),
             running_var._data.reshape(param_shape).astype(x.dtype, copy=False))
    y, _, _ = _normalize(input, weight, bias, axes, None, param_shape, axes, (channels,), float(eps),
                         "NativeBatchNormBackward0", fixed=fixed)
    return y


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-05) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims, then scale and shift elementwise
    (``torch.nn.functional.layer_norm``)."""
    _float_input(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    x = input._data
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(str(s) for s in shape)}], but got input of size{list(x.shape)}")
    _check_param(weight, shape, input, "layer_norm", "weight")
    _check_param(bias, shape, input, "layer_norm", "bias")
    axes = tuple(range(x.ndim - k, x.ndim))
    fused = F.layer_norm(xp_of(x), x, None if weight is None else weight._data, None if bias is None else bias._data,
                         float(eps), math.prod(shape))
    if fused is not None:
        y, mean, invstd = fused
        return _norm_output(y, input, weight, bias, None, invstd, axes, None, shape, tuple(range(x.ndim - k)), shape,
                            float(eps), "NativeLayerNormBackward0", None, fused=mean)
    y, _, _ = _normalize(input, weight, bias, axes, None, shape, tuple(range(x.ndim - k)), shape, float(eps),
                         "NativeLayerNormBackward0")
    return y


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-05) -> Tensor:
    """Split the channels of ``(N, C, ...)`` into ``num_groups`` groups and normalise each over its channels and
    spatial positions; per-channel scale and shift (``torch.nn.functional.group_norm``)."""
    _float_input(input, "group_norm")
    x = input._data
    if x.ndim < 2:
        raise RuntimeError(f"group_norm: expected input of shape (N, C, ...), got {list(x.shape)}")
    n, channels = x.shape[0], x.shape[1]
    if num_groups <= 0 or channels % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(x.shape)} and num_groups={num_groups}")
    _check_param(weight, (channels,), input, "group_norm", "weight")
    _check_param(bias, (channels,), input, "group_norm", "bias")
    if n * (channels // num_groups) * math.prod(x.shape[2:]) == 1:  # torch's check, with its message
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{[n * channels // num_groups, num_groups] + list(x.shape[2:])}")
    group_shape = (n, num_groups, x.size // max(n * num_groups, 1))
    param_shape = _class_shape(x.ndim, channels)
    fused = F.layer_norm(xp_of(x), x, None if weight is None else weight._data, None if bias is None else bias._data,
                         float(eps), group_shape[2], num_groups) if x.size else None
    if fused is not None:
        y, mean, invstd = fused
        return _norm_output(y, input, weight, bias, None, invstd, (2,), group_shape, param_shape,
                            (0,) + tuple(range(2, x.ndim)), (channels,), float(eps), "NativeGroupNormBackward0", None,
                            fused=mean)
    y, _, _ = _normalize(input, weight, bias, (2,), group_shape, param_shape, (0,) + tuple(range(2, x.ndim)),
                         (channels,), float(eps), "NativeGroupNormBackward0")
    return y


# ---------------------------------------------------------------------------------------------------------------
# embedding

class EmbeddingBackward(Node):
    """Rows of the weight gradient accumulate the gradients of every position that looked them up; the
    ``padding_idx`` row receives none."""
    __slots__ = ("indices", "keep", "weight_shape")

    def backward(self, ns, g):
        if self.keep is not None:
            g = g * _const(ns, self.keep)
        return (ns.index_put_acc(self.weight_shape, self.indices, g),)

    def name(self) -> str:
        return "EmbeddingBackward0"


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """``weight[input]`` for integer ``input`` of any shape; output ``(*input.shape, embedding_dim)``
    (``torch.nn.functional.embedding``). ``max_norm`` renormalises the looked-up rows in place first.
    Gradients are always dense here (``sparse`` is accepted for signature compatibility)."""
    idx = input._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding)")
    _same_device(input, weight, "embedding")
    w = weight._data
    num = w.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx + num if padding_idx < 0 else padding_idx
    def fail():
        raise IndexError(f"index out of range in self (embedding with {num} rows got indices in "
                         f"[{int(idx.min())}, {int(idx.max())}])")

    check_indices(idx, num, fail)
    xp = xp_of(w)
    if max_norm is not None:
        rows = xp.unique(idx)
        norms = xp.linalg.norm(w[rows], ord=norm_type, axis=1) if norm_type != 2 else \
            xp.sqrt((w[rows] * w[rows]).sum(axis=1))
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
        w[rows] *= scale[:, None]
        weight._version[0] += 1
    y = w[idx]
    if grad_state.enabled and weight.requires_grad:
        node = EmbeddingBackward((edge(weight),))
        node.indices, node.weight_shape = idx, w.shape
        node.keep = None
        if padding_idx is not None:
            node.keep = (idx != padding_idx)[..., None].astype(w.dtype)
        if scale_grad_by_freq:
            counts = xp.bincount(idx.reshape(-1), minlength=num).astype(w.dtype)
            freq = (1 / counts[idx])[..., None]
            node.keep = freq if node.keep is None else node.keep * freq
        return wrap(y, node)
    return wrap(y)


# ---------------------------------------------------------------------------------------------------------------
# dropout

def _dropout_mask(x, p: float, mask_shape: tuple, generator):
    xp = xp_of(x)
    if p == 1.0:
        return xp.zeros(mask_shape, dtype=x.dtype)
    rng = gen_or_default(generator).rng_for(xp)
    u = rng.random(mask_shape, dtype=np.float32 if x.dtype == np.float16 else x.dtype)
    if u.__class__ is not np.ndarray or _kernels._emulator is not None:
        mask = F.dropout_mask(xp, u, p, 1.0 / (1.0 - p))
        if mask is not None:
            return mask
    return (u >= p).astype(x.dtype) * (1.0 / (1.0 - p))


def _apply_mask(input: Tensor, mask, inplace: bool, op: str) -> Tensor:
    if inplace:
        if grad_state.enabled and input.requires_grad:
            return inplace_result(input, E.mul(input, wrap(mask)), op + "_")
        input._data *= mask
        input._version[0] += 1
        return input
    return E.mul(input, wrap(mask))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the survivors by ``1 / (1 - p)`` when ``training``;
    the identity otherwise (``torch.nn.functional.dropout``)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    _float_input(input, "dropout")
    return _apply_mask(input, _dropout_mask(input._data, float(p), input._data.shape, generator), inplace,
                       "dropout")


def feature_dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
                    generator=None) -> Tensor:
    """Zero whole channels: one draw per ``(n, c)`` of ``(N, C, *)``, broadcast over the rest (the core of
    dropout1d/2d/3d)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    _float_input(input, "feature_dropout")
    x = input._data
    if x.ndim < 2:
        raise RuntimeError(f"feature_dropout: expected input of shape (N, C, *), got {list(x.shape)}")
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return _apply_mask(input, _dropout_mask(x, float(p), mask_shape, generator), inplace, "feature_dropout")


# ---------------------------------------------------------------------------------------------------------------
# the LSTM cell: c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c'), gates (..., 4H) = i, f, g, o

def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``(h', c')`` of one LSTM step from its pre-activation ``gates`` (torch's order i, f, g, o on the last axis)
    and the cell state ``c``. On CUDA one launch forward and one per output backward (the formula takes about 12
    and 25); elsewhere the formula, as torch's LSTM cell computes it."""
    xp = xp_of(gates._data)
    if not F.lstm_apply(xp, gates._data, c._data):
        from .elementwise import sigmoid, tanh
        from .shape import chunk

        i, f, g, o = chunk(gates, 4, -1)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        return sigmoid(o) * tanh(c_new), c_new
    gd, cd = xp.ascontiguousarray(gates._data), xp.ascontiguousarray(c._data)
    c_arr, h_arr = xp.empty_like(cd), xp.empty_like(cd)
    F.LSTM_CELL(gd.reshape(-1), cd, cd.shape[-1], c_arr, h_arr)
    if not (grad_state.enabled and (gates.requires_grad or c.requires_grad)):
        return wrap(h_arr), wrap(c_arr)
    state = LstmStateBackward((edge(gates), edge(c)))
    state.saved, state.versions = (gates, c), (gates._version[0], c._version[0])
    c_new = wrap(c_arr, state)
    output = LstmOutputBackward((edge(gates), edge(c_new)))
    output.saved, output.versions = (gates, c_new), (gates._version[0], c_new._version[0])
    return wrap(h_arr, output), c_new


def _gate(ns, gates, k: int, count: int):
    """Gate ``k`` of ``count`` laid side by side on the last axis."""
    hidden = gates.shape[-1] // count
    return ns.getitem(gates, (Ellipsis, slice(k * hidden, (k + 1) * hidden)))


def _lstm_gate(ns, gates, k: int):
    return _gate(ns, gates, k, 4)


def _lstm_kernel_backward(ns, kernel, gates, state, g):
    """``(d gates, d state)`` of an LSTM cell output in one launch, or None (create_graph, unsupported dtypes)."""
    if ns.create_graph or not _kernels.supported(gates, state, g):
        return None
    xp = ns.xp
    dgates, dstate = xp.empty(gates.shape, dtype=g.dtype), xp.empty(state.shape, dtype=g.dtype)
    kernel(xp.ascontiguousarray(gates).reshape(-1), state, g, state.shape[-1], dgates.reshape(-1), dstate)
    return dgates, dstate


class LstmStateBackward(Node):
    """c' = sigmoid(f) c + sigmoid(i) tanh(g): the gradients of the gates (zero for o) and of c."""
    __slots__ = ()

    def backward(self, ns, g):
        gates, c = ns.saved(self)
        fused = _lstm_kernel_backward(ns, F.LSTM_STATE_BACKWARD, gates, c, g)
        if fused is not None:
            return fused
        si, sf = _ns_sigmoid(ns, _lstm_gate(ns, gates, 0)), _ns_sigmoid(ns, _lstm_gate(ns, gates, 1))
        tg = ns.tanh(_lstm_gate(ns, gates, 2))
        parts = [g * tg * (si * (1 - si)), g * c * (sf * (1 - sf)), g * si * (1 - tg * tg), ns.zeros_like(si)]
        return ns.cat(parts, -1), g * sf

    def name(self) -> str:
        return "LstmCellStateBackward"


class LstmOutputBackward(Node):
    """h' = sigmoid(o) tanh(c'): the gradients of the gates (only o's) and of c'."""
    __slots__ = ()

    def backward(self, ns, g):
        gates, c_new = ns.saved(self)
        fused = _lstm_kernel_backward(ns, F.LSTM_OUTPUT_BACKWARD, gates, c_new, g)
        if fused is not None:
            return fused
        so, tc = _ns_sigmoid(ns, _lstm_gate(ns, gates, 3)), ns.tanh(c_new)
        zero = ns.zeros_like(so)
        return ns.cat([zero, zero, zero, g * tc * (so * (1 - so))], -1), g * (so * (1 - tc * tc))

    def name(self) -> str:
        return "LstmCellOutputBackward"


def gru_cell(x_proj: Tensor, h_proj: Tensor, h: Tensor) -> Tensor:
    """``h'`` of one GRU step from ``x_proj = W_ih x + b_ih`` and ``h_proj = W_hh h + b_hh`` (gates r, z, n on
    the last axis) and the state ``h``, torch's formula: one launch each way on CUDA."""
    xp = xp_of(h._data)
    if not F.gru_apply(xp, x_proj._data, h_proj._data, h._data):
        from .elementwise import sigmoid, tanh
        from .shape import chunk

        x_r, x_z, x_n = chunk(x_proj, 3, -1)
        h_r, h_z, h_n = chunk(h_proj, 3, -1)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)
        return (1 - z) * n + z * h
    out = xp.empty_like(h._data)
    F.GRU_CELL(xp.ascontiguousarray(x_proj._data).reshape(-1), xp.ascontiguousarray(h_proj._data).reshape(-1),
               h._data, h._data.shape[-1], out)
    if not (grad_state.enabled and (x_proj.requires_grad or h_proj.requires_grad or h.requires_grad)):
        return wrap(out)
    node = GruCellBackward((edge(x_proj), edge(h_proj), edge(h)))
    node.saved = (x_proj, h_proj, h)
    node.versions = (x_proj._version[0], h_proj._version[0], h._version[0])
    return wrap(out, node)


class GruCellBackward(Node):
    """h' = (1 - z) n + z h: the gradients of both projections and of h."""
    __slots__ = ()

    def backward(self, ns, g):
        x_proj, h_proj, h = ns.saved(self)
        if not ns.create_graph and _kernels.supported(x_proj, h_proj, h, g):
            xp = ns.xp
            dx, dhp = xp.empty(x_proj.shape, dtype=g.dtype), xp.empty(h_proj.shape, dtype=g.dtype)
            dh = xp.empty(h.shape, dtype=g.dtype)
            F.GRU_CELL_BACKWARD(xp.ascontiguousarray(x_proj).reshape(-1), xp.ascontiguousarray(h_proj).reshape(-1),
                                h, g, h.shape[-1], dx.reshape(-1), dhp.reshape(-1), dh)
            return dx, dhp, dh
        def part(a, k):
            return _gate(ns, a, k, 3)

        r = _ns_sigmoid(ns, part(x_proj, 0) + part(h_proj, 0))
        z = _ns_sigmoid(ns, part(x_proj, 1) + part(h_proj, 1))
        h_n = part(h_proj, 2)
        n = ns.tanh(part(x_proj, 2) + r * h_n)
        dn = g * (1 - z) * (1 - n * n)
        dz = g * (h - n) * (z * (1 - z))
        dr = dn * h_n * (r * (1 - r))
        return ns.cat([dr, dz, dn], -1), ns.cat([dr, dz, dn * r], -1), g * z

    def name(self) -> str:
        return "GruCellBackward"
