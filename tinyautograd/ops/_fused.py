"""One-launch CUDA kernels for the ops' chains of array operations (see ``tinyautograd._kernels``).

Here: the activations' forward and backward formulas, cross entropy / nll_loss with class indices, softmax and
log_softmax along any axis, the pointwise losses, batch, layer and group norm, dropout's mask, 1-d/2-d max and
average pooling, and the im2col / col2im / output transpose of 1-d/2-d convolutions. Each kernel computes, for one
element (or one row or channel), what the op's NumPy/CuPy formula computes with several array operations. The
formula stays the CPU path, the ``create_graph`` path (through the ``TensorNamespace``) and the reference the tests
hold the kernel to. Every entry point returns None when its kernel does not apply (no kernels for the array module,
a recorded graph, dtypes other than float32/float64, shapes the kernel is not written for), and the caller runs the
formula. ``forward(xp, kernel, x, *scalars)`` and ``backward(ns, kernel, g, saved, *scalars)`` are the
activations' call sites.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _kernels
from .._kernels import Kernel

# stable logistic of a double expression: exp of a non-positive number only
_SIGMOID = "double {dst}; {{ double e_ = exp(-fabs({src})); double r_ = 1.0 / (1.0 + e_); " \
           "{dst} = {src} >= 0 ? r_ : e_ * r_; }}\n"


def _grad_kernel(name: str, saved: str, body: str, params: str = "") -> Kernel:
    """``gx = f(g, saved, params)`` with ``G`` and ``X``/``Y`` the double values of ``g`` and the saved array."""
    local = saved.upper()
    return Kernel(name, f"T g, T {saved}" + (f", {params}" if params else ""), "T gx",
                  f"const double G = g; const double {local} = {saved};\n{body}")


RELU = _grad_kernel("relu_backward", "y", "gx = Y <= 0 ? 0.0 : G;")  # a NaN output passes g, as in torch
SIGMOID = _grad_kernel("sigmoid_backward", "y", "gx = G * (Y * (1.0 - Y));")
TANH = _grad_kernel("tanh_backward", "y", "gx = G * (1.0 - Y * Y);")
LEAKY_RELU = _grad_kernel("leaky_relu_backward", "x", "gx = X > 0 ? G : G * slope;", "float64 slope")
ELU = _grad_kernel("elu_backward", "x",
                   "double neg = X <= 0 ? X : 0.0;\n"
                   "gx = X <= 0 ? G * (exp(neg * input_scale) * coef) : G * scale;",
                   "float64 scale, float64 input_scale, float64 coef")
GELU = _grad_kernel("gelu_backward", "x",
                    "double cdf = 0.5 * (1.0 + erf(X * 0.7071067811865476));\n"
                    "double pdf = exp(X * X * -0.5) * 0.3989422804014327;\n"
                    "gx = G * (cdf + X * pdf);")
GELU_TANH = _grad_kernel("gelu_tanh_backward", "x",
                         "const double k = 0.7978845608028654;\n"
                         "double t = tanh((X + 0.044715 * X * X * X) * k);\n"
                         "gx = G * (0.5 * (1.0 + t) + 0.5 * X * (1.0 - t * t) * (k * (1.0 + 0.134145 * X * X)));")
SILU = _grad_kernel("silu_backward", "x", _SIGMOID.format(dst="s", src="X") + "gx = G * (s * (1.0 + X * (1.0 - s)));")
SOFTPLUS = _grad_kernel("softplus_backward", "x",
                        "double bx = X * beta;\n" + _SIGMOID.format(dst="s", src="bx")
                        + "gx = bx > threshold ? G : G * s;", "float64 beta, float64 threshold")
MISH = _grad_kernel("mish_backward", "x",
                    "double sp = X > 20.0 ? X : log1p(exp(-fabs(X))) + (X > 0 ? X : 0.0);\n"
                    "double t = tanh(sp);\n" + _SIGMOID.format(dst="s", src="X")
                    + "gx = G * (t + X * s * (1.0 - t * t));")
HARDTANH = _grad_kernel("hardtanh_backward", "x", "gx = (X <= lo || X >= hi) ? 0.0 : G;", "float64 lo, float64 hi")
HARDSIGMOID = _grad_kernel("hardsigmoid_backward", "x", "gx = (X > -3.0 && X < 3.0) ? G / 6.0 : 0.0;")
HARDSWISH = _grad_kernel("hardswish_backward", "x", "gx = X <= -3.0 ? 0.0 : (X < 3.0 ? G * (X / 3.0 + 0.5) : G);")
THRESHOLD = _grad_kernel("threshold_backward", "x", "gx = X <= th ? 0.0 : G;", "float64 th")
LOGSIGMOID = _grad_kernel("logsigmoid_backward", "x", _SIGMOID.format(dst="s", src="-X") + "gx = G * s;")

# the activations' forward formulas, one launch each where the formula takes several (and, for sigmoid, no check
# of the input's minimum on the host): ``y = f(x, params)`` with ``X`` the double value of ``x``
def _value_kernel(name: str, body: str, params: str = "") -> Kernel:
    return Kernel(name, "T x" + (f", {params}" if params else ""), "T y", f"const double X = x;\n{body}")


_SOFTPLUS = "((({bx}) > 0 ? ({bx}) : 0.0) + log1p(exp(-fabs({bx}))))"  # log(1 + exp(bx)) without overflow
SIGMOID_FORWARD = _value_kernel("sigmoid", _SIGMOID.format(dst="s", src="X") + "y = s;")
SILU_FORWARD = _value_kernel("silu", _SIGMOID.format(dst="s", src="X") + "y = X * s;")
LOGSIGMOID_FORWARD = _value_kernel("logsigmoid", "y = (X < 0 ? X : 0.0) - log1p(exp(-fabs(X)));")
SOFTPLUS_FORWARD = _value_kernel("softplus", "const double bx = X * beta;\n"
                                 f"y = bx > threshold ? X : {_SOFTPLUS.format(bx='bx')} / beta;",
                                 "float64 beta, float64 threshold")
MISH_FORWARD = _value_kernel("mish", f"const double sp = X > 20.0 ? X : {_SOFTPLUS.format(bx='X')};\n"
                             "y = X * tanh(sp);")
GELU_FORWARD = _value_kernel("gelu", "y = 0.5 * X * (1.0 + erf(X * 0.7071067811865476));")
GELU_TANH_FORWARD = _value_kernel("gelu_tanh", "const double inner = (X + 0.044715 * X * X * X) * 0.7978845608028654;\n"
                                  "y = 0.5 * X * (1.0 + tanh(inner));")
ELU_FORWARD = _value_kernel("elu", "const double neg = X > 0 ? 0.0 : X;\n"
                            "y = X > 0 ? X * scale : expm1(neg * input_scale) * alpha_scale;",
                            "float64 scale, float64 input_scale, float64 alpha_scale")
LEAKY_RELU_FORWARD = _value_kernel("leaky_relu", "y = X > 0 ? X : X * slope;", "float64 slope")
_CLIP01 = "double c = X / 6.0 + 0.5;\nc = c < 0.0 ? 0.0 : (c > 1.0 ? 1.0 : c);\n"
HARDSIGMOID_FORWARD = _value_kernel("hardsigmoid", _CLIP01 + "y = c;")
HARDSWISH_FORWARD = _value_kernel("hardswish", _CLIP01 + "y = X * c;")
THRESHOLD_FORWARD = _value_kernel("threshold", "y = X <= th ? value : X;", "float64 th, float64 value")


def forward(xp, kernel: Kernel, x, *scalars):
    """``kernel(x, *scalars)`` into a new array shaped like ``x``, or None when the kernel does not apply."""
    if not _kernels.enabled(xp) or not _kernels.supported(x):
        return None
    y = xp.empty_like(x)
    kernel(x, *scalars, y)
    return y


# Cross entropy from logits (``softmax`` = 1) or nll_loss of log-probabilities (``softmax`` = 0) with class
# indices, optional class weights ``w`` and label smoothing ``eps``, one thread per position of an (N, C, inner)
# array (its C values ``inner`` apart; inner = 1 for (N, C)): the row's max, log of the summed exponentials and loss
# in one launch; ``count`` is the target's weight (1 without
# weights), 0 (ignore_index) or NaN (a target out of range: its loss is NaN too, which sends the caller to its exact
# check, at once on the CPU and at the loss's first host read on CUDA, so that no step waits for the device); ``qsum``
# is the row's total target mass, sum_c q_c, for the backward. The backward is one launch over the (N, C)
# elements: a * (p_c * qsum - q_c), with q_c = w_t (1 - eps) [c = t] + (eps / C) w_c.
# a row's first element in an (outer, C, inner) array, for thread i over its outer * inner rows
_ROW = "const long long base = ((long long)i / inner) * C * inner + (long long)i % inner;\n"
CROSS_ENTROPY_ROW_LIMIT = 4096
CROSS_ENTROPY = Kernel(
    "cross_entropy_rows",
    "raw T x, int64 t, raw T w, int64 C, int64 inner, int64 ignore_index, int64 softmax, int64 has_w, float64 eps",
    "T loss, T rowmax, T logsum, T count, T qsum",
    _ROW + "double m = 0.0, ls = 0.0;\n"
    "if (softmax) {\n"
    "  m = x[base];\n"
    "  for (long long j = 1; j < C; ++j) { const double v = x[base + j * inner]; m = (v != v || v > m) ? v : m; }\n"
    "  double s = 0.0;\n"
    "  for (long long j = 0; j < C; ++j) s += exp((double)x[base + j * inner] - m);\n"
    "  ls = log(s);\n"
    "}\n"
    "rowmax = m; logsum = ls;\n"
    "if (t == ignore_index) { loss = 0.0; count = 0.0; qsum = 0.0; }\n"
    "else if (t < 0 || t >= C) { const double zero = 0.0; loss = zero / zero; count = zero / zero; qsum = 0.0; }\n"
    "else {\n"
    "  const double wt = has_w ? (double)w[t] : 1.0;\n"
    "  const double nll = -(wt * (((double)x[base + t * inner] - m) - ls));\n"
    "  double value = nll, mass = wt;\n"
    "  if (eps != 0.0) {\n"
    "    double sm = 0.0, ws = 0.0;\n"
    "    for (long long j = 0; j < C; ++j) {\n"
    "      const double wj = has_w ? (double)w[j] : 1.0;\n"
    "      sm += wj * (((double)x[base + j * inner] - m) - ls); ws += wj;\n"
    "    }\n"
    "    value = (1.0 - eps) * nll + (eps / (double)C) * -sm;\n"
    "    mass = wt * (1.0 - eps) + (eps / (double)C) * ws;\n"
    "  }\n"
    "  loss = value; count = wt; qsum = mass;\n"
    "}")
CROSS_ENTROPY_BACKWARD = Kernel(
    "cross_entropy_backward",
    "T x, raw T rowmax, raw T logsum, raw int64 t, raw T a, raw T w, raw T qsum, raw T total, int64 C, int64 inner, "
    "int64 ignore_index, int64 per_row, int64 mean, int64 softmax, int64 has_w, float64 eps", "T gx",
    "const long long r = ((long long)i / (C * inner)) * inner + (long long)i % inner;\n"
    "const long long c = ((long long)i / inner) % C;\n"
    "const long long tr = t[r];\n"
    "const bool valid = tr != ignore_index;\n"
    "const double p = softmax ? exp(((double)x - (double)rowmax[r]) - (double)logsum[r]) : 0.0;\n"
    "double q = 0.0;\n"
    "if (valid) {\n"
    "  if (c == tr) q = (has_w ? (double)w[tr] : 1.0) * (1.0 - eps);\n"
    "  if (eps != 0.0) q += (eps / (double)C) * (has_w ? (double)w[c] : 1.0);\n"
    "}\n"
    "double scale = per_row ? (double)a[r] : (double)a[0];\n"
    "if (mean) { const double divisor = total[0]; scale = divisor != 0.0 ? scale / divisor : scale * 0.0; }\n"
    "const double zero = 0.0;\n"
    "gx = (valid && (tr < 0 || tr >= C)) ? zero / zero : (p * (double)qsum[r] - q) * scale;")

# softmax / log_softmax along one axis of a contiguous array seen as (outer, C, inner), one thread per (outer, inner)
# row, whose C values lie ``inner`` apart; ``rows`` is an (outer * inner,) output that sets the launch size (it
# receives the row's log-sum-exp or sum)
_ROW_MAX = (_ROW + "double m = x[base];\n"
            "for (long long j = 1; j < C; ++j) {\n"
            "  const double v = x[base + j * inner]; m = (v != v || v > m) ? v : m;\n"
            "}\n"
            "double s = 0.0;\n"
            "for (long long j = 0; j < C; ++j) s += exp((double)x[base + j * inner] - m);\n")
SOFTMAX_ROW_LIMIT = 4096
LOG_SOFTMAX = Kernel("log_softmax_rows", "raw T x, int64 C, int64 inner", "raw T y, T rows",
                     _ROW_MAX + "const double ls = log(s);\n"
                     "for (long long j = 0; j < C; ++j) y[base + j * inner] = ((double)x[base + j * inner] - m) - ls;\n"
                     "rows = m + ls;")
SOFTMAX = Kernel("softmax_rows", "raw T x, int64 C, int64 inner", "raw T y, T rows",
                 _ROW_MAX + "for (long long j = 0; j < C; ++j) {\n"
                 "  y[base + j * inner] = exp((double)x[base + j * inner] - m) / s;\n"
                 "}\n"
                 "rows = m + log(s);")
LOG_SOFTMAX_BACKWARD = Kernel(
    "log_softmax_backward_rows", "raw T g, raw T y, int64 C, int64 inner", "raw T gx, T rows",
    _ROW + "double s = 0.0;\n"
    "for (long long j = 0; j < C; ++j) s += (double)g[base + j * inner];\n"
    "for (long long j = 0; j < C; ++j) {\n"
    "  const long long k = base + j * inner;\n"
    "  gx[k] = (double)g[k] - exp((double)y[k]) * s;\n"
    "}\n"
    "rows = s;")
SOFTMAX_BACKWARD = Kernel(
    "softmax_backward_rows", "raw T g, raw T y, int64 C, int64 inner", "raw T gx, T rows",
    _ROW + "double s = 0.0;\n"
    "for (long long j = 0; j < C; ++j) s += (double)g[base + j * inner] * (double)y[base + j * inner];\n"
    "for (long long j = 0; j < C; ++j) {\n"
    "  const long long k = base + j * inner;\n"
    "  gx[k] = (double)y[k] * ((double)g[k] - s);\n"
    "}\n"
    "rows = s;")


# cross entropy against class probabilities ``t`` (shaped like ``x``), with label smoothing ``eps`` and class
# weights ``w``, one thread per position: loss = -sum_c w_c q_c logp_c with q = t (1 - eps) + eps / C, and ``qsum``
# = sum_c w_c q_c for the backward, which also writes the target's gradient -(1 - eps) w_c logp_c when wanted
_PROB_Q = ("(eps != 0.0 ? (double)t[{k}] * (1.0 - eps) + eps / (double)C : (double)t[{k}])"
           " * (has_w ? (double)w[{c}] : 1.0)")
CROSS_ENTROPY_PROB = Kernel(
    "cross_entropy_prob_rows", "raw T x, raw T t, raw T w, int64 C, int64 inner, int64 has_w, float64 eps",
    "T loss, T rowmax, T logsum, T qsum",
    _ROW_MAX + "const double ls = log(s);\n"
    "double sm = 0.0, qs = 0.0;\n"
    "for (long long j = 0; j < C; ++j) {\n"
    "  const long long k = base + j * inner;\n"
    f"  const double q = {_PROB_Q.format(k='k', c='j')};\n"
    "  sm += q * (((double)x[k] - m) - ls); qs += q;\n"
    "}\n"
    "loss = -sm; rowmax = m; logsum = ls; qsum = qs;")
CROSS_ENTROPY_PROB_BACKWARD = Kernel(
    "cross_entropy_prob_backward",
    "T x, raw T t, raw T rowmax, raw T logsum, raw T qsum, raw T a, raw T w, int64 C, int64 inner, int64 per_row, "
    "int64 mean, float64 divisor, int64 has_w, float64 eps, int64 want_t", "T gx, raw T gt",
    "const long long r = ((long long)i / (C * inner)) * inner + (long long)i % inner;\n"
    "const long long c = ((long long)i / inner) % C;\n"
    "const double lp = ((double)x - (double)rowmax[r]) - (double)logsum[r];\n"
    f"const double q = {_PROB_Q.format(k='i', c='c')};\n"
    "double scale = per_row ? (double)a[r] : (double)a[0];\n"
    "if (mean) scale = divisor != 0.0 ? scale / divisor : scale * 0.0;\n"
    "gx = (exp(lp) * (double)qsum[r] - q) * scale;\n"
    "if (want_t) gt[i] = lp * -(1.0 - eps) * scale * (has_w ? (double)w[c] : 1.0);")


def rows(xp, kernel: Kernel, axis: int, *arrays):
    """Run a row kernel over arrays whose ``axis`` is the row: returns the new (same-shaped) result array."""
    shape = arrays[0].shape
    classes = shape[axis]
    inner = math.prod(shape[axis + 1:])
    flat = [xp.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = xp.empty(shape, dtype=arrays[0].dtype)
    kernel(*flat, classes, inner, out.reshape(-1), xp.empty(arrays[0].size // classes, dtype=out.dtype))
    return out


def rows_apply(xp, axis: int, *arrays) -> bool:
    """Whether the softmax row kernels apply: 1 to SOFTMAX_ROW_LIMIT values along ``axis``, float32/float64."""
    if not _kernels.enabled(xp):
        return False
    a = arrays[0]
    return a.ndim > 0 and 0 < a.shape[axis] <= SOFTMAX_ROW_LIMIT and a.size > 0 and _kernels.supported(*arrays)


# 2-d max pooling, one thread per output (forward) or per input element (backward).
# Positions outside the input count as -inf, as the formula's padded buffer does; the arg-max is the first offset
# (row-major) holding the maximum, or the last NaN of the window (torch's rules).
_POOL_GEOMETRY = ("int64 H, int64 W, int64 OH, int64 OW, int64 KH, int64 KW, int64 SH, int64 SW, int64 PH, int64 PW, "
                  "int64 DH, int64 DW")
MAX_POOL2D = Kernel(
    "max_pool2d", f"raw T x, {_POOL_GEOMETRY}, float64 neg_inf", "T y, int32 offset",
    "const long long ow = (long long)i % OW, oh = ((long long)i / OW) % OH;\n"
    "const long long base = ((long long)i / (OW * OH)) * H * W;\n"
    "double best = 0.0, nan_value = 0.0; long long bk = -1, nk = -1;\n"
    "for (long long kh = 0; kh < KH; ++kh) {\n"
    "  const long long ih = oh * SH - PH + kh * DH;\n"
    "  for (long long kw = 0; kw < KW; ++kw) {\n"
    "    const long long iw = ow * SW - PW + kw * DW;\n"
    "    const double v = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? (double)x[base + ih * W + iw] : neg_inf;\n"
    "    if (v != v) { nk = kh * KW + kw; nan_value = v; }\n"
    "    else if (bk < 0 || v > best) { best = v; bk = kh * KW + kw; }\n"
    "  }\n"
    "}\n"
    "if (nk >= 0) { y = nan_value; offset = nk; } else { y = best; offset = bk; }")
def _covering_windows(body: str) -> str:
    """C loop over the outputs whose window holds input element (ih, iw): for each kernel offset (kh, kw), in the
    formula's row-major order, ``body`` runs with that output's (oh, ow) and ``p = oh * OW + ow``."""
    return ("for (long long kh = 0; kh < KH; ++kh) {\n"
            "  const long long th = ih + PH - kh * DH;\n"
            "  if (th < 0 || th % SH != 0 || th / SH >= OH) continue;\n"
            "  for (long long kw = 0; kw < KW; ++kw) {\n"
            "    const long long tw = iw + PW - kw * DW;\n"
            "    if (tw < 0 || tw % SW != 0 || tw / SW >= OW) continue;\n"
            "    const long long oh = th / SH, ow = tw / SW, p = oh * OW + ow;\n"
            f"    {body}\n"
            "  }\n"
            "}\n")


_INPUT_ELEMENT = "const long long iw = (long long)i % W, ih = ((long long)i / W) % H, nc = (long long)i / (W * H);\n"
MAX_POOL2D_BACKWARD = Kernel(
    "max_pool2d_backward", f"raw T g, raw int32 offset, {_POOL_GEOMETRY}", "T gx",
    _INPUT_ELEMENT + "double v = 0.0;\n"
    + _covering_windows("if (offset[nc * OH * OW + p] == kh * KW + kw) v += (double)g[nc * OH * OW + p];")
    + "gx = v;")


def _pool_scalars(geom, x_shape) -> tuple:
    """The 2-d kernels' geometry scalars; a 1-d geometry is a 2-d one with a unit first axis (the same kernels
    serve conv1d, conv_transpose1d, max_pool1d and avg_pool1d)."""
    if len(geom.kernel) == 1:
        (w,), (ow,), (kw,), (sw,), (pw,), (dw,) = x_shape[2:], geom.out, geom.kernel, geom.stride, geom.pad_lo, \
            geom.dilation
        return (1, w, 1, ow, 1, kw, 1, sw, 0, pw, 1, dw)
    (h, w), (oh, ow), (kh, kw) = x_shape[2:], geom.out, geom.kernel
    return (h, w, oh, ow, kh, kw, *geom.stride, *geom.pad_lo, *geom.dilation)


def _planar(geom, ndim: int) -> bool:
    """Whether the 2-d kernels take this geometry (1-d or 2-d windows) over an input of ``ndim`` dims."""
    return len(geom.kernel) in (1, 2) and ndim == len(geom.kernel) + 2


def max_pool2d(xp, x, geom):
    """``(y, offset)`` of a 1-d or 2-d max pool in one launch, or None when the kernel does not apply."""
    if not _planar(geom, x.ndim) or not x.size or not _kernels.enabled(xp) or not _kernels.supported(x):
        return None
    y = xp.empty(x.shape[:2] + tuple(geom.out), dtype=x.dtype)
    offset = xp.empty(y.shape, dtype=np.int32)
    MAX_POOL2D(xp.ascontiguousarray(x).reshape(-1), *_pool_scalars(geom, x.shape), float("-inf"), y, offset)
    return y, offset


def max_pool2d_backward(xp, g, offset, geom, x_shape):
    """The input gradient of a 2-d max pool in one launch (each input element gathers, in offset order, the
    gradients of the outputs whose arg-max it is), or None."""
    if (not _planar(geom, len(x_shape)) or offset.dtype != np.int32 or not _kernels.enabled(xp)
            or not _kernels.supported(g)):
        return None
    gx = xp.empty(x_shape, dtype=g.dtype)
    MAX_POOL2D_BACKWARD(xp.ascontiguousarray(g).reshape(-1), xp.ascontiguousarray(offset).reshape(-1),
                        *_pool_scalars(geom, x_shape), gx)
    return gx


# 2-d average pooling: the window sums (zeros outside the input) in offset order over the divisor, one thread per
# output; the backward gathers each input element's shares (g / divisor) in the same order, one thread per element.
# ``div`` is torch's divisor per output position (OH, OW) when ``per_position``, else the scalar ``div0``
AVG_POOL2D = Kernel(
    "avg_pool2d", f"raw T x, raw T div, {_POOL_GEOMETRY}, float64 div0, int64 per_position", "T y",
    "const long long ow = (long long)i % OW, oh = ((long long)i / OW) % OH;\n"
    "const long long base = ((long long)i / (OW * OH)) * H * W;\n"
    "double s = 0.0;\n"
    "for (long long kh = 0; kh < KH; ++kh) {\n"
    "  const long long ih = oh * SH - PH + kh * DH;\n"
    "  for (long long kw = 0; kw < KW; ++kw) {\n"
    "    const long long iw = ow * SW - PW + kw * DW;\n"
    "    if (ih >= 0 && ih < H && iw >= 0 && iw < W) s += (double)x[base + ih * W + iw];\n"
    "  }\n"
    "}\n"
    "y = s / (per_position ? (double)div[oh * OW + ow] : div0);")
AVG_POOL2D_BACKWARD = Kernel(
    "avg_pool2d_backward", f"raw T g, raw T div, {_POOL_GEOMETRY}, float64 div0, int64 per_position", "T gx",
    _INPUT_ELEMENT + "double v = 0.0;\n"
    + _covering_windows("v += (double)g[nc * OH * OW + p] / (per_position ? (double)div[p] : div0);")
    + "gx = v;")


def _avg_divisor_args(xp, divisor, like) -> tuple:
    if isinstance(divisor, float):
        return like, divisor, 0
    return xp.asarray(divisor, dtype=like.dtype).reshape(-1), 1.0, 1


def avg_pool2d(xp, x, geom, divisor):
    """A 1-d or 2-d average pool in one launch, or None when the kernel does not apply."""
    if not _planar(geom, x.ndim) or not x.size or not _kernels.enabled(xp) or not _kernels.supported(x):
        return None
    y = xp.empty(x.shape[:2] + tuple(geom.out), dtype=x.dtype)
    flat = xp.ascontiguousarray(x).reshape(-1)
    div, div0, per_position = _avg_divisor_args(xp, divisor, flat)
    AVG_POOL2D(flat, div, *_pool_scalars(geom, x.shape), div0, per_position, y)
    return y


def avg_pool2d_backward(xp, g, geom, divisor, x_shape):
    """The input gradient of a 2-d average pool in one launch, or None."""
    if not _planar(geom, len(x_shape)) or not _kernels.enabled(xp) or not _kernels.supported(g):
        return None
    gx = xp.empty(x_shape, dtype=g.dtype)
    if not gx.size:
        return gx
    flat = xp.ascontiguousarray(g).reshape(-1)
    div, div0, per_position = _avg_divisor_args(xp, divisor, flat)
    AVG_POOL2D_BACKWARD(flat, div, *_pool_scalars(geom, x_shape), div0, per_position, gx)
    return gx


# col2im of a 2-d convolution's input gradient (a transposed convolution's output), one thread per output element:
# it sums, in the formula's order, the column entries of every kernel offset whose window covers it, plus the bias
COL2IM2D = Kernel(
    "col2im2d", f"raw T cols, raw T b, int64 N, int64 C, {_POOL_GEOMETRY}, int64 has_bias", "T x",
    "const long long iw = (long long)i % W, ih = ((long long)i / W) % H, c = ((long long)i / (W * H)) % C;\n"
    "const long long n = (long long)i / (W * H * C);\n"
    "double s = 0.0;\n"
    + _covering_windows("s += (double)cols[((((c * KH + kh) * KW + kw) * OH + oh) * OW + ow) * N + n];")
    + "if (has_bias) s += (double)b[c];\n"
    "x = s;")


def col2im2d(xp, cols, b, geom, x_shape):
    """The (N, C, H, W) image of a 2-d convolution's columns ``(C, KH, KW, OH, OW, N)`` (plus ``b`` per channel)
    in one launch, or None when the kernel does not apply."""
    if not _planar(geom, len(x_shape)) or not _kernels.enabled(xp) or not _kernels.supported(
            cols, *([] if b is None else [b])):
        return None
    x = xp.empty(x_shape, dtype=cols.dtype)
    n, c = x_shape[:2]
    COL2IM2D(xp.ascontiguousarray(cols).reshape(-1), cols.reshape(-1) if b is None else b.reshape(-1), n, c,
             *_pool_scalars(geom, x_shape), int(b is not None), x)
    return x


# batch norm in training (batch statistics) over a contiguous (N, C, S) input, one thread per channel: the mean,
# the biased variance, xhat, y = xhat * w + b and the running statistics' update in one launch; the backward's four
# per-channel sums and the input gradient in another. A thread walks its channel's N * S values three times, so
# these run only up to BATCH_NORM_LIMIT values per channel (BatchNorm1d's (N, C) batches); bigger ones (2-d
# feature maps) take the wide kernels below. In eval mode (running statistics) the normalisation is one
# elementwise launch.
BATCH_NORM_LIMIT = 1024
_CHANNEL_LOOP = ("for (long long n = 0; n < N; ++n) for (long long s = 0; s < S; ++s) "
                 "{{ const long long k = (n * C + i) * S + s; {} }}\n")
BATCH_NORM = Kernel(
    "batch_norm",
    "raw T x, raw T w, raw T b, int64 N, int64 C, int64 S, float64 eps, float64 momentum, float64 var_scale, "
    "int64 has_w, int64 has_b, int64 track_mean, int64 track_var",
    "raw T y, T mean, T invstd, T running_mean, T running_var",
    "const double count = (double)(N * S);\n"
    "double m = 0.0, v = 0.0;\n"
    + _CHANNEL_LOOP.format("m += (double)x[k];") + "m /= count;\n"
    + _CHANNEL_LOOP.format("const double d = (double)x[k] - m; v += d * d;") + "v /= count;\n"
    "const double inv = 1.0 / sqrt(v + eps);\n"
    "const double wc = has_w ? (double)w[i] : 1.0, bc = has_b ? (double)b[i] : 0.0;\n"
    + _CHANNEL_LOOP.format("y[k] = (((double)x[k] - m) * inv) * wc + bc;")
    + "mean = m; invstd = inv;\n"
    "if (track_mean) running_mean = (double)running_mean * (1.0 - momentum) + momentum * m;\n"
    "if (track_var) running_var = (double)running_var * (1.0 - momentum) + var_scale * v;")
BATCH_NORM_BACKWARD = Kernel(
    "batch_norm_backward",
    "raw T g, raw T x, raw T w, T mean, T invstd, int64 N, int64 C, int64 S, int64 has_w, int64 need_gx",
    "raw T gx, T gw, T gb",
    "const double count = (double)(N * S), m = mean, inv = invstd;\n"
    "const double wc = has_w ? (double)w[i] : 1.0;\n"
    "double sg = 0.0, sgh = 0.0, sgy = 0.0, sgyh = 0.0;\n"
    + _CHANNEL_LOOP.format("const double gk = g[k], hk = ((double)x[k] - m) * inv, gy = gk * wc; "
                           "sg += gk; sgh += gk * hk; sgy += gy; sgyh += gy * hk;")
    + "gw = sgh; gb = sg;\n"
    "if (need_gx) {\n"
    "  const double my = sgy / count, myh = sgyh / count;\n"
    "  " + _CHANNEL_LOOP.format("gx[k] = inv * (((double)g[k] * wc - my) - (((double)x[k] - m) * inv) * myh);")
    + "}")
BATCH_NORM_EVAL = Kernel(
    "batch_norm_eval",
    "T x, raw T mean, raw T var, raw T w, raw T b, int64 C, int64 S, float64 eps, int64 has_w, int64 has_b", "T y",
    "const long long c = ((long long)i / S) % C;\n"
    "const double h = ((double)x - (double)mean[c]) * (1.0 / sqrt((double)var[c] + eps));\n"
    "y = h * (has_w ? (double)w[c] : 1.0) + (has_b ? (double)b[c] : 0.0);")


# batch norm with more than BATCH_NORM_LIMIT values per channel: CuPy's reductions over the (N, spatial) axes (one
# launch each, spread over the whole GPU) around elementwise kernels that find an element's channel from its index:
# forward = mean, squared deviations, their mean, per-channel statistics (invstd, running update), normalisation
# (5 launches); backward = g * xhat, two sums, input gradient (4 launches)
_CHANNEL = "const long long c = ((long long)i / S) % C;\n"
BATCH_NORM_SQUARED_DEVIATION = Kernel(
    "batch_norm_squared_deviation", "T x, raw T mean, int64 C, int64 S", "T d2",
    _CHANNEL + "const double d = (double)x - (double)mean[c]; d2 = d * d;")
BATCH_NORM_STATS = Kernel(
    "batch_norm_stats",
    "T mean, T var, float64 eps, float64 momentum, float64 var_scale, int64 track_mean, int64 track_var",
    "T invstd, T running_mean, T running_var",
    "invstd = 1.0 / sqrt((double)var + eps);\n"
    "if (track_mean) running_mean = (double)running_mean * (1.0 - momentum) + momentum * (double)mean;\n"
    "if (track_var) running_var = (double)running_var * (1.0 - momentum) + var_scale * (double)var;")
BATCH_NORM_NORMALIZE = Kernel(
    "batch_norm_normalize",
    "T x, raw T mean, raw T invstd, raw T w, raw T b, int64 C, int64 S, int64 has_w, int64 has_b",
    "T y", _CHANNEL + "const double h = ((double)x - (double)mean[c]) * (double)invstd[c];\n"
    "y = h * (has_w ? (double)w[c] : 1.0) + (has_b ? (double)b[c] : 0.0);")
BATCH_NORM_G_XHAT = Kernel(
    "batch_norm_g_xhat", "T g, T x, raw T mean, raw T invstd, int64 C, int64 S", "T gh",
    _CHANNEL + "gh = (double)g * (((double)x - (double)mean[c]) * (double)invstd[c]);")
BATCH_NORM_INPUT_GRAD = Kernel(
    "batch_norm_input_grad",
    "T g, T x, raw T mean, raw T invstd, raw T w, raw T sg, raw T sgh, int64 C, int64 S, float64 count, int64 has_w",
    "T gx", _CHANNEL + "const double inv = invstd[c], wc = has_w ? (double)w[c] : 1.0;\n"
    "const double h = ((double)x - (double)mean[c]) * inv;\n"
    "gx = inv * (((double)g * wc - wc * (double)sg[c] / count) - h * (wc * (double)sgh[c] / count));")


# layer norm over the last D values of each of R rows, the same way: the rows' means and variances by CuPy's
# reductions, the squared deviations and per-row invstd by the batch-norm kernels (a row is a "channel" of one
# (R, D) block), then one launch to normalise and apply the per-feature affine map (5 launches, the formula 10).
# Backward: the products g*w, g*w*xhat, g*xhat in one launch, their sums over features (per row) and over rows
# (the weight's and bias's gradients), the input gradient in one more (6 launches, the formula about 12).
# group norm uses the same kernels: a row is one (sample, group), D its channels times positions, and the affine
# parameters are per channel (``S`` positions per channel, ``C`` channels) instead of per feature
_ROW_AND_PARAM = ("const long long r = (long long)i / D;\n"
                  "const long long j = per_channel ? ((long long)i / S) % C : (long long)i % D;\n")
LAYER_NORM_NORMALIZE = Kernel(
    "layer_norm_normalize",
    "T x, raw T mean, raw T invstd, raw T w, raw T b, int64 D, int64 S, int64 C, int64 per_channel, int64 has_w, "
    "int64 has_b", "T y", _ROW_AND_PARAM
    + "const double h = ((double)x - (double)mean[r]) * (double)invstd[r];\n"
    "y = h * (has_w ? (double)w[j] : 1.0) + (has_b ? (double)b[j] : 0.0);")
LAYER_NORM_PRODUCTS = Kernel(
    "layer_norm_products",
    "T g, T x, raw T mean, raw T invstd, raw T w, int64 D, int64 S, int64 C, int64 per_channel, int64 has_w",
    "T gy, T gyh, T gh", _ROW_AND_PARAM
    + "const double h = ((double)x - (double)mean[r]) * (double)invstd[r];\n"
    "const double G = g, wy = G * (has_w ? (double)w[j] : 1.0);\n"
    "gy = wy; gyh = wy * h; gh = G * h;")
LAYER_NORM_INPUT_GRAD = Kernel(
    "layer_norm_input_grad", "T gy, T x, raw T mean, raw T invstd, raw T sgy, raw T sgyh, int64 D", "T gx",
    "const long long r = (long long)i / D;\n"
    "const double inv = invstd[r], h = ((double)x - (double)mean[r]) * inv;\n"
    "gx = inv * (((double)gy - (double)sgy[r] / (double)D) - h * ((double)sgyh[r] / (double)D));")


def _batch_norm_apply(xp, x, *params) -> bool:
    return (x.ndim >= 2 and x.size > 0 and _kernels.enabled(xp)
            and _kernels.supported(x, *(p for p in params if p is not None)))


def batch_norm_train(xp, x, w, b, running_mean, running_var, eps: float, momentum: float):
    """``(y, mean, invstd)`` of batch norm with batch statistics (running statistics updated in place), or None
    when the kernel does not apply. ``mean``/``invstd`` are per channel, shaped (C,); the backward recomputes
    ``xhat`` from them and the input in double (nothing input-sized is kept)."""
    n, c = x.shape[:2]
    if not _batch_norm_apply(xp, x, w, b, running_mean, running_var):
        return None
    spatial = x.size // (n * c)
    count = n * spatial
    x = xp.ascontiguousarray(x)
    if count > BATCH_NORM_LIMIT:
        return _batch_norm_train_wide(xp, x, w, b, running_mean, running_var, eps, momentum, spatial)
    y = xp.empty_like(x)
    mean, invstd = xp.empty(c, dtype=x.dtype), xp.empty(c, dtype=x.dtype)
    flat = x.reshape(-1)
    BATCH_NORM(flat, flat if w is None else w, flat if b is None else b, n, c, spatial, eps, momentum,
               momentum * count / (count - 1), int(w is not None), int(b is not None), int(running_mean is not None),
               int(running_var is not None), y.reshape(-1), mean, invstd,
               xp.empty(c, dtype=x.dtype) if running_mean is None else running_mean,
               xp.empty(c, dtype=x.dtype) if running_var is None else running_var)
    return y, mean, invstd


def _batch_norm_train_wide(xp, x, w, b, running_mean, running_var, eps: float, momentum: float, spatial: int):
    n, c = x.shape[:2]
    count = n * spatial
    x3 = x.reshape(n, c, spatial)
    mean = x3.mean(axis=(0, 2))
    d2 = xp.empty(x3.shape, dtype=x.dtype)
    BATCH_NORM_SQUARED_DEVIATION(x3, mean, c, spatial, d2)
    var = d2.mean(axis=(0, 2))
    invstd = xp.empty(c, dtype=x.dtype)
    BATCH_NORM_STATS(mean, var, eps, momentum, momentum * count / (count - 1), int(running_mean is not None),
                     int(running_var is not None), invstd,
                     xp.empty(c, dtype=x.dtype) if running_mean is None else running_mean,
                     xp.empty(c, dtype=x.dtype) if running_var is None else running_var)
    y = xp.empty(x.shape, dtype=x.dtype)
    BATCH_NORM_NORMALIZE(x, mean, invstd, mean if w is None else w, mean if b is None else b, c, spatial,
                         int(w is not None), int(b is not None), y)
    return y, mean, invstd


def _batch_norm_backward_wide(xp, g, x, w, mean, invstd, need_gx: bool):
    n, c = g.shape[:2]
    spatial = g.size // (n * c)
    g3, x3 = xp.ascontiguousarray(g).reshape(n, c, spatial), xp.ascontiguousarray(x).reshape(n, c, spatial)
    gh = xp.empty(g3.shape, dtype=g.dtype)
    BATCH_NORM_G_XHAT(g3, x3, mean, invstd, c, spatial, gh)
    sg, sgh = g3.sum(axis=(0, 2)), gh.sum(axis=(0, 2))
    gx = None
    if need_gx:
        gx = xp.empty(x.shape, dtype=g.dtype)
        BATCH_NORM_INPUT_GRAD(g3, x3, mean, invstd, mean if w is None else w, sg, sgh, c, spatial,
                              float(n * spatial), int(w is not None), gx.reshape(g3.shape))
    return gx, sgh, sg


def batch_norm_backward(xp, g, x, w, mean, invstd, need_gx: bool):
    """``(gx, gw, gb)`` of a ``batch_norm_train`` (``gx`` None unless ``need_gx``): one launch for up to
    BATCH_NORM_LIMIT values per channel, four above; None when the kernels do not apply."""
    if not _batch_norm_apply(xp, g, x, w, mean, invstd):
        return None
    if g.size // g.shape[1] > BATCH_NORM_LIMIT:
        return _batch_norm_backward_wide(xp, g, x, w, mean, invstd, need_gx)
    n, c = g.shape[:2]
    g = xp.ascontiguousarray(g).reshape(-1)
    gx = xp.empty(x.shape if need_gx else 1, dtype=g.dtype)
    gw, gb = xp.empty(c, dtype=g.dtype), xp.empty(c, dtype=g.dtype)
    BATCH_NORM_BACKWARD(g, xp.ascontiguousarray(x).reshape(-1), g if w is None else w, mean, invstd, n, c,
                        g.size // (n * c), int(w is not None), int(need_gx), gx.reshape(-1), gw, gb)
    return (gx if need_gx else None), gw, gb


def layer_norm(xp, x, w, b, eps: float, features: int, groups: int = 0):
    """``(y, mean, invstd)`` of layer norm over the last ``features`` values (mean/invstd per row, shaped (R,)), or
    of group norm with ``groups`` groups (rows = (sample, group), ``features`` = C / groups * positions, per-channel
    ``w``/``b``); None when the kernels do not apply."""
    if not x.size or not _kernels.enabled(xp) or not _kernels.supported(x, *(p for p in (w, b) if p is not None)):
        return None
    rows = x.size // features
    x2 = xp.ascontiguousarray(x).reshape(rows, features)
    mean = x2.mean(axis=1)
    d2 = xp.empty(x2.shape, dtype=x.dtype)
    BATCH_NORM_SQUARED_DEVIATION(x2, mean, rows, features, d2)  # a row is a channel of one (R, D) block
    var = d2.mean(axis=1)
    invstd = xp.empty(rows, dtype=x.dtype)
    BATCH_NORM_STATS(mean, var, eps, 0.0, 0.0, 0, 0, invstd, xp.empty(rows, dtype=x.dtype),
                     xp.empty(rows, dtype=x.dtype))
    y = xp.empty(x.shape, dtype=x.dtype)
    LAYER_NORM_NORMALIZE(x2, mean, invstd, mean if w is None else w.reshape(-1), mean if b is None else b.reshape(-1),
                         features, *_param_layout(x, groups), int(w is not None), int(b is not None),
                         y.reshape(rows, features))
    return y, mean, invstd


def _param_layout(x, groups: int) -> tuple:
    """(S, C, per_channel) for the row kernels: group norm's parameters are per channel of (N, C, S...)."""
    if not groups:
        return 1, 1, 0
    channels = x.shape[1]
    return x.size // (x.shape[0] * channels), channels, 1


def layer_norm_backward(xp, g, x, w, mean, invstd, need_gx: bool, need_w: bool, need_b: bool, groups: int = 0):
    """``(gx, gw, gb)`` (flat (D,) parameter gradients, (C,) for group norm; None where not needed) of a fused
    layer or group norm, or None."""
    if not g.size or not _kernels.enabled(xp) or not _kernels.supported(g, x, mean, *([] if w is None else [w])):
        return None
    rows = mean.size
    features = g.size // rows
    g2, x2 = xp.ascontiguousarray(g).reshape(rows, features), xp.ascontiguousarray(x).reshape(rows, features)
    gy, gyh, gh = (xp.empty(g2.shape, dtype=g.dtype) for _ in range(3))
    layout = _param_layout(x, groups)
    LAYER_NORM_PRODUCTS(g2, x2, mean, invstd, mean if w is None else w.reshape(-1), features, *layout,
                        int(w is not None), gy, gyh, gh)
    gx = None
    if need_gx:
        gx = xp.empty(x.shape, dtype=g.dtype)
        LAYER_NORM_INPUT_GRAD(gy, x2, mean, invstd, gy.sum(axis=1), gyh.sum(axis=1), features,
                              gx.reshape(rows, features))
    if groups:  # per channel: sum over the samples and positions
        by_channel = (x.shape[0], layout[1], layout[0])
        return (gx, gh.reshape(by_channel).sum(axis=(0, 2)) if need_w else None,
                g2.reshape(by_channel).sum(axis=(0, 2)) if need_b else None)
    return gx, (gh.sum(axis=0) if need_w else None), (g2.sum(axis=0) if need_b else None)


def batch_norm_eval(xp, x, running_mean, running_var, w, b, eps: float):
    """Batch norm with the running statistics in one launch, or None when the kernel does not apply."""
    if not _batch_norm_apply(xp, x, running_mean, running_var, w, b):
        return None
    n, c = x.shape[:2]
    x = xp.ascontiguousarray(x)  # the kernel finds an element's channel from its C-order index
    y = xp.empty(x.shape, dtype=x.dtype)
    BATCH_NORM_EVAL(x, running_mean, running_var, running_mean if w is None else w,
                    running_mean if b is None else b, c, x.size // (n * c), eps, int(w is not None),
                    int(b is not None), y)
    return y


# dropout's mask from uniform draws: ``scale`` where the draw is at least ``p``, else 0, in one launch (the formula
# compares, casts and scales); ``p`` arrives rounded to the arrays' dtype, as the formula's comparison rounds it
DROPOUT_MASK = Kernel("dropout_mask", "T u, float64 p, float64 scale", "T mask", "mask = (double)u >= p ? scale : 0.0;")


def dropout_mask(xp, u, p: float, scale: float):
    """The dropout mask of the draws ``u`` (float32/float64) in one launch, or None when the kernel does not apply."""
    if not _kernels.enabled(xp) or not _kernels.supported(u):
        return None
    mask = xp.empty_like(u)
    DROPOUT_MASK(u, float(u.dtype.type(p)), scale, mask)
    return mask


# im2col of a 2-d convolution, one thread per column entry: the (C, KH, KW, OH, OW, N) columns read straight from
# the (N, C, H, W) input, zeros outside it (the formula pads a batch-last copy, then copies its window view)
IM2COL2D = Kernel(
    "im2col2d", f"raw T x, int64 N, int64 C, {_POOL_GEOMETRY}", "T cols",
    "long long r = i;\n"
    "const long long n = r % N; r /= N;\n"
    "const long long ow = r % OW; r /= OW;\n"
    "const long long oh = r % OH; r /= OH;\n"
    "const long long kw = r % KW; r /= KW;\n"
    "const long long kh = r % KH; const long long c = r / KH;\n"
    "const long long ih = oh * SH - PH + kh * DH, iw = ow * SW - PW + kw * DW;\n"
    "cols = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? (double)x[((n * C + c) * H + ih) * W + iw] : 0.0;")

# a convolution's GEMM result (C, P, N) (P the output positions) as the (N, C, P) output plus the bias per channel:
# the transposing copy and the bias add in one launch
BATCH_FIRST_BIAS = Kernel(
    "batch_first_bias", "raw T y, raw T b, int64 N, int64 C, int64 P, int64 has_bias", "T out",
    "const long long p = (long long)i % P, c = ((long long)i / P) % C, n = (long long)i / (P * C);\n"
    "out = has_bias ? (double)y[(c * P + p) * N + n] + (double)b[c] : (double)y[(c * P + p) * N + n];")


def im2col2d(xp, x, geom):
    """The columns ``(C, KH, KW, OH, OW, N)`` (``(C, K, O, N)`` in 1-d) of a convolution's input in one launch, or
    None."""
    if not _planar(geom, x.ndim) or not x.size or not _kernels.enabled(xp) or not _kernels.supported(x):
        return None
    n, c = x.shape[:2]
    cols = xp.empty((c,) + tuple(geom.kernel) + tuple(geom.out) + (n,), dtype=x.dtype)
    if cols.size:
        IM2COL2D(xp.ascontiguousarray(x).reshape(-1), n, c, *_pool_scalars(geom, x.shape), cols)
    return cols


def batch_first_bias(xp, y, b, shape):
    """``y`` (groups, C/groups, P * N) as the (N, C, *O) array ``shape`` plus ``b`` per channel, or None."""
    if not y.size or not _kernels.enabled(xp) or not _kernels.supported(y, *([] if b is None else [b])):
        return None
    n, c = shape[:2]
    out = xp.empty(shape, dtype=y.dtype)
    flat = xp.ascontiguousarray(y).reshape(-1)
    BATCH_FIRST_BIAS(flat, flat if b is None else b.reshape(-1), n, c, y.size // (n * c), int(b is not None), out)
    return out


# pointwise losses without weights, input and target of one shape: the elementwise loss ``v`` in one launch (then a
# sum for 'mean'/'sum'), and the backward -- both derivatives ``dx``/``dt`` at (X, Tv) times the incoming gradient
# over the reduction's divisor -- in another (``gt`` written only when the target wants a gradient)
def _loss_kernels(kind: str, values: str, grads: str, params: str = "") -> tuple[Kernel, Kernel]:
    extra = f", {params}" if params else ""
    head = "const double X = x, Tv = t;\n"
    return (Kernel(kind + "_loss", "T x, T t" + extra, "T v", head + values),
            Kernel(kind + "_loss_backward", "T x, T t, T g, float64 divisor, int64 want_t" + extra, "T gx, raw T gt",
                   head + "double dx, dt;\n" + grads + "\nconst double G = (double)g / divisor;\n"
                   "gx = G * dx;\nif (want_t) gt[i] = G * dt;"))


_SIGN = "(({d}) > 0 ? 1.0 : (({d}) < 0 ? -1.0 : 0.0))"  # torch's sign: 0 for NaN
MSE_LOSS, MSE_LOSS_BACKWARD = _loss_kernels(
    "mse", "const double d = X - Tv; v = d * d;", "const double d = X - Tv; dx = d * 2.0; dt = d * -2.0;")
L1_LOSS, L1_LOSS_BACKWARD = _loss_kernels(
    "l1", "v = fabs(X - Tv);", f"const double d = X - Tv; dx = {_SIGN.format(d='d')}; dt = -dx;")
SMOOTH_L1_LOSS, SMOOTH_L1_LOSS_BACKWARD = _loss_kernels(
    "smooth_l1",
    "const double z = fabs(X - Tv);\nv = beta == 0 ? z : (z < beta ? 0.5 * z * z / beta : z - 0.5 * beta);",
    "const double d = X - Tv;\n"
    f"dx = beta == 0 ? {_SIGN.format(d='d')} : (d <= -beta ? -1.0 : (d >= beta ? 1.0 : d / beta));\ndt = -dx;",
    "float64 beta")
HUBER_LOSS, HUBER_LOSS_BACKWARD = _loss_kernels(
    "huber", "const double z = fabs(X - Tv);\nv = z < delta ? 0.5 * z * z : delta * (z - 0.5 * delta);",
    "const double d = X - Tv;\ndx = d < -delta ? -delta : (d > delta ? delta : d);\ndt = -dx;", "float64 delta")
# kl_div of log-probabilities x against probabilities t (0 where t <= 0, as the formula's where) or, with
# log_target, against log-probabilities; d/dt of t log t is unbounded at t = 0, reported as NaN
KL_DIV_LOSS, KL_DIV_LOSS_BACKWARD = _loss_kernels(
    "kl_div", "v = log_target ? exp(Tv) * (Tv - X) : (Tv > 0.0 ? Tv * (log(Tv) - X) : 0.0 * X);",
    "const double zero = 0.0;\n"
    "if (log_target) { const double et = exp(Tv); dx = -et; dt = et * ((Tv - X) + 1.0); }\n"
    "else { dx = -Tv; dt = Tv > 0.0 ? (log(Tv) + 1.0) - X : zero / zero; }", "int64 log_target")
# an input or target outside [0, 1] (or NaN) gives a NaN loss, which sends the caller to its exact range check
BCE_LOSS, BCE_LOSS_BACKWARD = _loss_kernels(
    "bce", "double lx = log(X), l1x = log1p(-X);\n"
    "lx = lx < -100.0 ? -100.0 : lx; l1x = l1x < -100.0 ? -100.0 : l1x;\n"
    "const double zero = 0.0;\n"
    "v = (X >= 0.0 && X <= 1.0 && Tv >= 0.0 && Tv <= 1.0) ? (Tv - 1.0) * l1x - Tv * lx : zero / zero;",
    "const double p = (1.0 - X) * X;\n"
    "dx = (X - Tv) / (p > 1e-12 || p != p ? p : 1e-12);\n"
    "dt = log1p(-X) - log(X);")
BCE_LOGITS_LOSS, BCE_LOGITS_LOSS_BACKWARD = _loss_kernels(
    "bce_logits", "v = (1.0 - Tv) * X + (log1p(exp(-fabs(X))) + (-X > 0 ? -X : 0.0));",
    "const double nx = -X;\n" + _SIGMOID.format(dst="s", src="nx") + "dx = (1.0 - Tv) - s;\ndt = -X;")
# with pos_weight ``pw`` (broadcast against the input like any non-raw argument) on the positive term
BCE_LOGITS_PW_LOSS, BCE_LOGITS_PW_LOSS_BACKWARD = _loss_kernels(
    "bce_logits_pw", "const double sp = log1p(exp(-fabs(X))) + (-X > 0 ? -X : 0.0);\n"
    "v = (1.0 - Tv) * X + (1.0 + ((double)pw - 1.0) * Tv) * sp;",
    "const double nx = -X;\n" + _SIGMOID.format(dst="s", src="nx")
    + "const double sp = log1p(exp(-fabs(X))) + (X < 0 ? -X : 0.0);\n"
    "dx = (1.0 - Tv) - (1.0 + ((double)pw - 1.0) * Tv) * s;\ndt = ((double)pw - 1.0) * sp - X;", "T pw")


def _loss_apply(xp, x, t) -> bool:
    return _kernels.enabled(xp) and x.shape == t.shape and _kernels.supported(x, t)


def loss_values(xp, kernel: Kernel, x, t, *scalars):
    """The elementwise loss of ``x`` and ``t`` (same shape) in one launch, or None when the kernel does not apply."""
    if not _loss_apply(xp, x, t):
        return None
    v = xp.empty(x.shape, dtype=x.dtype)
    kernel(x, t, *scalars, v)
    return v


def loss_backward(xp, kernel: Kernel, x, t, g, divisor, want_t: bool, *scalars):
    """``(gx, gt)`` of a pointwise loss (``gt`` None unless ``want_t``) in one launch, or None."""
    if not _loss_apply(xp, x, t) or g.dtype != x.dtype:
        return None
    gx = xp.empty(x.shape, dtype=x.dtype)
    gt = xp.empty(x.shape if want_t else 1, dtype=x.dtype)
    kernel(x, t, g, float(divisor), int(want_t), *scalars, gx, gt)
    return gx, (gt if want_t else None)


def backward(ns, kernel: Kernel | None, g, saved, *scalars):
    """The kernel's gradient array, or None when the caller should run the formula instead."""
    if kernel is None or ns.create_graph:
        return None
    xp = ns.xp
    if not _kernels.enabled(xp) or not _kernels.supported(g, saved):
        return None
    out = xp.empty_like(saved)
    kernel(g, saved, *scalars, out)
    return out


# ---------------------------------------------------------------------------------------------------------------
# LSTM cell, gates (N, 4H) in torch's order i, f, g, o; one thread per (n, j) of the (N, H) state:
# c' = sigmoid(f) c + sigmoid(i) tanh(g) and h' = sigmoid(o) tanh(c') in one launch; each backward in one launch,
# writing all four gate columns of its (N, 4H) gradient (zeros where its output does not depend on a gate)
_LSTM_GATES = ("const long long j = (long long)i % H, base = ((long long)i / H) * 4 * H + j;\n"
               "const double gi = gates[base], gf = gates[base + H], gg = gates[base + 2 * H], "
               "go = gates[base + 3 * H];\n")
LSTM_CELL = Kernel(
    "lstm_cell", "raw T gates, T c, int64 H", "T c_new, T h_new",
    _LSTM_GATES + _SIGMOID.format(dst="si", src="gi") + _SIGMOID.format(dst="sf", src="gf")
    + _SIGMOID.format(dst="so", src="go")
    + "const double cn = sf * (double)c + si * tanh(gg);\nc_new = cn;\nh_new = so * tanh((double)(T)cn);")
LSTM_STATE_BACKWARD = Kernel(
    "lstm_state_backward", "raw T gates, T c, T gc, int64 H", "raw T dgates, T dc",
    _LSTM_GATES + _SIGMOID.format(dst="si", src="gi") + _SIGMOID.format(dst="sf", src="gf")
    + "const double tg = tanh(gg), G = gc;\n"
    "dgates[base] = G * tg * (si * (1.0 - si));\ndgates[base + H] = G * (double)c * (sf * (1.0 - sf));\n"
    "dgates[base + 2 * H] = G * si * (1.0 - tg * tg);\ndgates[base + 3 * H] = 0.0;\ndc = G * sf;")
LSTM_OUTPUT_BACKWARD = Kernel(
    "lstm_output_backward", "raw T gates, T c_new, T gh, int64 H", "raw T dgates, T dc_new",
    _LSTM_GATES + _SIGMOID.format(dst="so", src="go")
    + "const double tc = tanh((double)c_new), G = gh;\n"
    "dgates[base] = 0.0;\ndgates[base + H] = 0.0;\ndgates[base + 2 * H] = 0.0;\n"
    "dgates[base + 3 * H] = G * tc * (so * (1.0 - so));\ndc_new = G * (so * (1.0 - tc * tc));")


def lstm_apply(xp, gates, c) -> bool:
    """Whether the LSTM cell kernels take ``gates`` (..., 4H) and ``c`` (..., H): CUDA (or the test emulator),
    float32/float64, matching leading shapes."""
    return (_kernels.enabled(xp) and gates.ndim == c.ndim and gates.shape[:-1] == c.shape[:-1]
            and gates.shape[-1] == 4 * c.shape[-1] and c.size > 0 and _kernels.supported(gates, c))


# GRU cell from the input projection xp = W_ih x + b_ih and hp = W_hh h + b_hh (both (N, 3H), gates r, z, n):
# r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r h_n), h' = (1 - z) n + z h, one thread per
# (n, j); the backward writes both projections' gradients and h's in one launch
_GRU_GATES = ("const long long j = (long long)i % H, base = ((long long)i / H) * 3 * H + j;\n"
              "const double ar = (double)xp[base] + (double)hp[base];\n"
              "const double az = (double)xp[base + H] + (double)hp[base + H];\n"
              "const double hn = hp[base + 2 * H];\n")
_GRU_ACTIVATIONS = (_GRU_GATES + _SIGMOID.format(dst="r", src="ar") + _SIGMOID.format(dst="z", src="az")
                    + "const double n = tanh((double)xp[base + 2 * H] + r * hn);\n")
GRU_CELL = Kernel("gru_cell", "raw T xp, raw T hp, T h, int64 H", "T h_new",
                  _GRU_ACTIVATIONS + "h_new = (1.0 - z) * n + z * (double)h;")
GRU_CELL_BACKWARD = Kernel(
    "gru_cell_backward", "raw T xp, raw T hp, T h, T g, int64 H", "raw T dxp, raw T dhp, T dh",
    _GRU_ACTIVATIONS + "const double G = g;\n"
    "const double dn = G * (1.0 - z) * (1.0 - n * n), dz = G * ((double)h - n) * (z * (1.0 - z));\n"
    "const double dr = dn * hn * (r * (1.0 - r));\n"
    "dxp[base] = dr; dxp[base + H] = dz; dxp[base + 2 * H] = dn;\n"
    "dhp[base] = dr; dhp[base + H] = dz; dhp[base + 2 * H] = dn * r;\ndh = G * z;")


def gru_apply(xp, x_proj, h_proj, h) -> bool:
    """Whether the GRU cell kernels take the (..., 3H) projections and the (..., H) state."""
    return (_kernels.enabled(xp) and x_proj.shape == h_proj.shape and x_proj.ndim == h.ndim
            and x_proj.shape[:-1] == h.shape[:-1] and x_proj.shape[-1] == 3 * h.shape[-1] and h.size > 0
            and _kernels.supported(x_proj, h_proj, h))
