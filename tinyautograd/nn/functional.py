"""``torch.nn.functional`` for tinyautograd: stateless layers, activations and losses.

The heavy ops (linear, losses, normalisation, embedding) are fused ops with their own backward in
``tinyautograd.ops.nn_ops``; the rest are short compositions of differentiable tensor ops. Convolution and pooling
come from ``tinyautograd.ops.conv`` (re-exported at the end).
"""
from __future__ import annotations

import numpy as np

from ..ops import elementwise as _E
from ..ops import inplace as _IP
from ..ops import reduction as _R
from ..ops import shape as _S
from ..ops import linalg as _L
from ..ops import nn_ops as _N
from ..ops.nn_ops import (batch_norm, celu, elu, embedding, gelu, group_norm, hardsigmoid, hardswish, hardtanh,
                          layer_norm, leaky_relu, legacy_reduction, linear, logsigmoid, mish, relu6, selu, silu,
                          softplus, threshold, cross_entropy, nll_loss, kl_div)
from ..ops.shape import pad
from ..tensor import Tensor

__all__ = [
    "linear", "bilinear", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu",
    "gelu", "silu", "mish", "softplus", "hardtanh", "hardtanh_", "hardsigmoid", "hardswish", "threshold",
    "logsigmoid", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "softsign", "tanhshrink", "softshrink",
    "hardshrink", "glu", "prelu", "maxout", "dropout", "dropout1d", "dropout2d", "dropout3d", "batch_norm",
    "layer_norm", "group_norm", "embedding", "one_hot", "pad", "normalize", "cosine_similarity",
    "pairwise_distance", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div",
]

sigmoid = _E.sigmoid
tanh = _E.tanh


# -- activations ------------------------------------------------------------------------------------------------

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(0, x)`` (``torch.nn.functional.relu``)."""
    return _IP.relu_(input) if inplace else _E.relu(input)


def relu_(input: Tensor) -> Tensor:
    return _IP.relu_(input)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x), dim)`` (``torch.nn.functional.softmax``)."""
    return _R.softmax(input, dim, _stacklevel, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``x - logsumexp(x, dim)`` (``torch.nn.functional.log_softmax``)."""
    return _R.log_softmax(input, dim, _stacklevel, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x, dim)`` (``torch.nn.functional.softmin``)."""
    return _R.softmax(_E.neg(input), dim, _stacklevel, dtype)


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)`` (``torch.nn.functional.softsign``)."""
    return input / (_E.abs(input) + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)`` (``torch.nn.functional.tanhshrink``)."""
    return input - _E.tanh(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0 (``torch.nn.functional.softshrink``)."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _E.where(input > lambd, input - lambd, _E.where(input < -lambd, input + lambd, 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (``torch.nn.functional.hardshrink``)."""
    return _E.where((input > lambd) | (input < -lambd), input, 0.0)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``dim`` in halves ``a, b`` and return ``a * sigmoid(b)``
    (``torch.nn.functional.glu``)."""
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    size = input.shape[dim]
    if size % 2:
        axis = dim % input.dim()
        raise RuntimeError(f"Halving dimension must be even, but dimension {axis} is size {size}")
    a, b = _S.chunk(input, 2, dim)
    return a * _E.sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, ``weight * x`` elsewhere; a 1-D weight of size C applies per channel (dim 1)
    (``torch.nn.functional.prelu``)."""
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: weight must be a scalar or 1-D, got shape {list(weight.shape)}")
    n = weight.numel()
    # torch's rule: the channel count is input.size(1) for inputs of 2+ dims, 1 otherwise
    channels = input.shape[1] if input.dim() >= 2 else 1
    if n != 1 and n != channels:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {n} "
                           f"and channel size = {channels}.")
    if n == 1:
        w = _S.reshape(weight, ())
    else:
        w = _S.reshape(weight, (n,) + (1,) * (input.dim() - 2))
    return _E.where(input > 0, input, w * input)


def maxout(input: Tensor, num_pieces: int, dim: int = 1) -> Tensor:
    """Maxout (Goodfellow et al., 2013; not in torch): split dimension ``dim`` of size ``k * num_pieces`` into
    ``k`` groups of ``num_pieces`` consecutive features and keep each group's maximum, giving size ``k``.

    ``maxout(linear(x, W, b), 2)`` computes ``max(w1 x + b1, w2 x + b2)`` per output unit, where unit ``j``'s
    pieces are rows ``2j`` and ``2j + 1`` of ``W``.
    """
    if num_pieces < 1:
        raise ValueError(f"maxout: num_pieces must be positive, got {num_pieces}")
    axis = dim % input.dim() if input.dim() else 0
    size = input.shape[axis]
    if size % num_pieces:
        raise RuntimeError(f"maxout: dimension {axis} has size {size}, which is not divisible by "
                           f"num_pieces={num_pieces}")
    shape = tuple(input.shape)
    grouped = _S.reshape(input, shape[:axis] + (size // num_pieces, num_pieces) + shape[axis + 1:])
    return _R.amax(grouped, axis + 1)


# -- linear -----------------------------------------------------------------------------------------------------

def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_o = x1^T W_o x2 + b_o`` for inputs ``(*, in1)``, ``(*, in2)`` and weight ``(out, in1, in2)``
    (``torch.nn.functional.bilinear``)."""
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear: input1 and input2 must have the same leading dims, got "
                           f"{list(input1.shape)} and {list(input2.shape)}")
    if weight.dim() != 3 or weight.shape[1] != input1.shape[-1] or weight.shape[2] != input2.shape[-1]:
        raise RuntimeError(f"bilinear: weight of shape {list(weight.shape)} does not match inputs "
                           f"{list(input1.shape)} and {list(input2.shape)} (expected (out, in1, in2))")
    y = _L.einsum("...i,oij,...j->...o", input1, weight, input2)
    return y + bias if bias is not None else y


# -- dropout ----------------------------------------------------------------------------------------------------

def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero elements with probability ``p`` and scale the rest by ``1 / (1 - p)`` while ``training``
    (``torch.nn.functional.dropout``)."""
    return _N.dropout(input, p, training, inplace)


def _channel_dropout(input: Tensor, p: float, training: bool, inplace: bool, spatial: int, name: str) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    ndim = input.dim()
    if ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{name}: Expected {spatial + 1}D or {spatial + 2}D input, but received a {ndim}D input. "
                           f"{name} zeroes whole channels of (N, C, *spatial) inputs with {spatial} spatial dims.")
    if ndim == spatial + 1:
        # unbatched (C, *spatial): one draw per channel
        if inplace:
            out = _N.feature_dropout(_S.unsqueeze(input, 0), p, training, False)
            return _IP.copy_(input, _S.squeeze(out, 0)) if training and p > 0 else input
        return _S.squeeze(_N.feature_dropout(_S.unsqueeze(input, 0), p, training, False), 0)
    return _N.feature_dropout(input, p, training, inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` / ``(C, L)`` with probability ``p`` (``torch.nn.functional.dropout1d``)."""
    return _channel_dropout(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p`` (``torch.nn.functional.dropout2d``).

    As in torch, a 3-D input is read as ``(N, C, L)`` (one draw per channel of each sample)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return _N.feature_dropout(input, p, training, inplace)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` / ``(C, D, H, W)`` with probability ``p``
    (``torch.nn.functional.dropout3d``)."""
    return _channel_dropout(input, p, training, inplace, 3, "dropout3d")


# -- encodings, distances ---------------------------------------------------------------------------------------

def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``(*, num_classes)`` int64 one-hot encoding of integer class indices; ``num_classes=-1`` uses
    ``max + 1`` (``torch.nn.functional.one_hot``)."""
    d = tensor._data
    if d.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    from ..ops._util import check_indices, xp_of

    xp = xp_of(d)
    if num_classes == -1:
        if d.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(d.max()) + 1
    def fail():
        if int(d.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        raise RuntimeError("Class values must be smaller than num_classes.")

    check_indices(d, num_classes, fail)
    out = (d[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim`` (``torch.nn.functional.normalize``)."""
    denom = _E.clamp_min(_R.norm(input, p, dim, True), eps)
    res = input / denom
    if out is not None:
        return _IP.copy_(out, res)
    return res


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim``, inputs broadcast
    (``torch.nn.functional.cosine_similarity``)."""
    n1 = _E.clamp_min(_R.norm(x1, 2, dim, True), eps)
    n2 = _E.clamp_min(_R.norm(x2, 2, dim, True), eps)
    return _R.sum((x1 / n1) * (x2 / n2), dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dim (``torch.nn.functional.pairwise_distance``)."""
    return _R.norm(x1 - x2 + eps, p, -1, keepdim)


# -- losses (torch's legacy size_average / reduce arguments are accepted) ---------------------------------------

def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Mean squared error (``torch.nn.functional.mse_loss``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return _N.mse_loss(input, target, reduction, weight)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Mean absolute error (``torch.nn.functional.l1_loss``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return _N.l1_loss(input, target, reduction, weight)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Quadratic below ``beta``, linear above (``torch.nn.functional.smooth_l1_loss``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return _N.smooth_l1_loss(input, target, reduction, beta)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Quadratic below ``delta``, linear (slope ``delta``) above (``torch.nn.functional.huber_loss``)."""
    return _N.huber_loss(input, target, reduction, delta, weight)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy of probabilities (``torch.nn.functional.binary_cross_entropy``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return _N.binary_cross_entropy(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross entropy of logits, stable for any magnitude
    (``torch.nn.functional.binary_cross_entropy_with_logits``)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return _N.binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)


from ..ops import conv as _conv  # noqa: E402
from ..ops.conv import *  # noqa: E402,F401,F403  (convolution and pooling, torch's functional signatures)

__all__ += list(_conv.__all__)
