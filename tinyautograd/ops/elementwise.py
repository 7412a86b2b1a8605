"""Elementwise ops: arithmetic, unary math, comparisons. Each op's forward and backward sit side by side."""
from __future__ import annotations

import numpy as np

from .. import _dtype, _kernels
from ..autograd.engine import Node
from ..autograd.namespace import sign_array
from . import _fused
from ._util import (binary_operands, broadcast_error, edge, grad_state, relabel, wrap, xp_of, as_tensor_arg)
from ..tensor import Tensor

_default_float = _dtype.get_default_dtype
_ndarray = np.ndarray


def _float_data(d):
    """Integer and bool inputs of float-valued functions are computed in the default float dtype (as torch)."""
    if d.dtype.kind == "f":
        return d
    return d.astype(_default_float().np_dtype)


def _write_out(out: Tensor, result: Tensor) -> Tensor:
    """torch's ``out=``: the result is written into ``out`` (resized if needed) and ``out`` is returned."""
    if not isinstance(out, Tensor):
        raise TypeError(f"out= must be a Tensor, got {type(out).__name__}")
    if grad_state.enabled and (result.requires_grad or out.requires_grad):
        raise RuntimeError("functions with out=... arguments don't support automatic differentiation, but one of "
                           "the arguments requires grad. Call it under no_grad() or drop out=.")
    r = result._data
    if r.dtype != out._data.dtype:
        if np.can_cast(r.dtype, out._data.dtype, casting="same_kind"):
            r = r.astype(out._data.dtype)
        else:
            raise RuntimeError(f"result type {_dtype._BY_NP[r.dtype]} can't be cast to the desired output type "
                               f"{out.dtype}")
    if out._data.shape == r.shape:
        out._data[...] = r
    else:
        out._data = r.copy()
    out._version[0] += 1
    return out


# ---------------------------------------------------------------------------------------------------------------
# binary arithmetic

class BinaryNode(Node):
    """A two-input op whose inputs may have been broadcast: ``reduced`` sums each gradient back to its input's
    shape (``shapes`` is None when no broadcasting happened)."""
    __slots__ = ()

    def reduced(self, ns, ga, gb):
        if self.shapes is None:
            return ga, gb
        sa, sb = self.shapes
        return (ns.sum_to(ga, sa) if ga is not None else None), (ns.sum_to(gb, sb) if gb is not None else None)


class AddBackward0(BinaryNode):
    __slots__ = ("alpha",)

    def backward(self, ns, g):
        return self.reduced(ns, g, (g if self.alpha == 1 else g * self.alpha))


class AddScalarBackward(Node):
    __slots__ = ()
    name_ = "AddBackward0"

    def backward(self, ns, g):
        return (g,)

    def name(self) -> str:
        return "AddBackward0"


def add(input, other, *, alpha=1, out=None) -> Tensor:
    """``input + alpha * other`` with broadcasting (``torch.add``)."""
    if other.__class__ is float and alpha == 1 and out is None and input.__class__ is Tensor \
            and input._data.dtype.kind == "f":
        # the common `x + 0.5`: no promotion, one edge, no saved values
        y = input._data + other
        if input.requires_grad and grad_state.enabled:
            fn = input.grad_fn
            return wrap(y, AddScalarBackward((fn if fn is not None else input._accumulator(),)))
        return wrap(y)
    if other.__class__ is Tensor and input.__class__ is Tensor and alpha == 1 and out is None:
        ad, bd = input._data, other._data
        if ad.dtype is bd.dtype and ad.shape == bd.shape and ad.__class__ is _ndarray and bd.__class__ is _ndarray:
            # two same-shaped cpu tensors of one dtype: no promotion, no broadcasting bookkeeping
            y = ad + bd
            if grad_state.enabled and (input.requires_grad or other.requires_grad):
                fa, fb = input.grad_fn, other.grad_fn
                node = AddBackward0((
                    (fa if fa is not None else input._accumulator()) if input.requires_grad else None,
                    (fb if fb is not None else other._accumulator()) if other.requires_grad else None))
                node.alpha = 1
                return wrap(y, node)
            return wrap(y)
    a, b, ta, tb = binary_operands(input, other, "add")
    if alpha != 1:
        b = b * alpha
    try:
        y = a + b
    except ValueError as e:
        raise broadcast_error("add", a, b, e) from None
    res = _record_binary(y, ta, tb, a, b, AddBackward0, AddScalarBackward, alpha)
    return res if out is None else _write_out(out, res)


def _record_binary(y, ta, tb, a, b, cls, scalar_cls, alpha=None):
    # shared bookkeeping of add/sub: no saved values, only shapes when broadcasting happened
    if not grad_state.enabled:
        return wrap(y)
    ra = ta is not None and ta.requires_grad
    rb = tb is not None and tb.requires_grad
    if not (ra or rb):
        return wrap(y)
    if tb is None or ta is None:
        node = scalar_cls((edge(ta if ta is not None else tb),))
        if scalar_cls is SubScalarBackward:
            node.sign = 1 if ta is not None else -1
        if y.shape != (ta if ta is not None else tb)._data.shape:
            node.shapes = ((ta if ta is not None else tb)._data.shape,)
        return wrap(y, node)
    node = cls((edge(ta), edge(tb)))
    node.alpha = alpha
    if a.shape != b.shape:
        node.shapes = (a.shape, b.shape)
    return wrap(y, node)


class SubBackward0(BinaryNode):
    __slots__ = ("alpha",)

    def backward(self, ns, g):
        gb = -g if self.alpha == 1 else g * (-self.alpha)
        return self.reduced(ns, g, gb)


class SubScalarBackward(Node):
    __slots__ = ("sign",)

    def backward(self, ns, g):
        return (g if self.sign == 1 else -g,)

    def name(self) -> str:
        return "SubBackward0" if self.sign == 1 else "RsubBackward1"


def sub(input, other, *, alpha=1, out=None) -> Tensor:
    """``input - alpha * other`` (``torch.sub``)."""
    if _is_bool(input) or _is_bool(other):
        raise _bool_sub_error(input, other)
    a, b, ta, tb = binary_operands(input, other, "sub")
    if alpha != 1:
        b = b * alpha
    try:
        y = a - b
    except ValueError as e:
        raise broadcast_error("sub", a, b, e) from None
    res = _record_binary(y, ta, tb, a, b, SubBackward0, SubScalarBackward, alpha)
    return res if out is None else _write_out(out, res)


def _is_bool(x) -> bool:
    """A bool tensor or a Python bool (torch refuses both in subtraction)."""
    return x.__class__ is bool or (isinstance(x, Tensor) and x._data.dtype.kind == "b")


def _bool_sub_error(input, other) -> RuntimeError:
    """torch's refusal of ``-`` with a bool operand: two bools point to xor, one bool to logical_not."""
    if _is_bool(input) and _is_bool(other):
        return RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                            "`logical_xor()` operator instead.")
    return RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                        "to invert a mask, use the `~` or `logical_not()` operator instead.")


def _refuse_bool_result(a, b, kernel: str) -> None:
    """torch has no bool kernel for floor/trunc division, remainder and tensor powers: refuse as it does."""
    if getattr(a, "dtype", None) is not None and a.dtype.kind == "b" or a.__class__ is bool:
        if getattr(b, "dtype", None) is not None and b.dtype.kind == "b" or b.__class__ is bool:
            raise RuntimeError(f'"{kernel}" not implemented for \'Bool\' (convert the operands with .int() or '
                               '.float() first)')


def rsub(input, other, *, alpha=1) -> Tensor:
    if _is_bool(input) or _is_bool(other):
        raise _bool_sub_error(input, other)
    return sub(other, input, alpha=alpha) if isinstance(other, Tensor) else _rsub_scalar(input, other)


def _rsub_scalar(t: Tensor, s) -> Tensor:
    a, b, ta, _ = binary_operands(t, s, "rsub")
    y = b - a
    return _record_binary(y, None, ta, b, a, SubBackward0, SubScalarBackward)


class MulBackward0(BinaryNode):
    __slots__ = ()

    def backward(self, ns, g):
        a, b = ns.saved(self)
        na, nb = self.next_nodes
        ga = g * b if na is not None else None
        gb = g * a if nb is not None else None
        return self.reduced(ns, ga, gb)


class MulScalarBackward(Node):
    __slots__ = ("scalar",)

    def backward(self, ns, g):
        return (g * self.scalar,)

    def name(self) -> str:
        return "MulBackward0"


def mul(input, other, *, out=None) -> Tensor:
    """Elementwise product with broadcasting (``torch.mul``)."""
    if other.__class__ is float and out is None and input.__class__ is Tensor and input._data.dtype.kind == "f":
        y = input._data * other
        if input.requires_grad and grad_state.enabled:
            fn = input.grad_fn
            node = MulScalarBackward((fn if fn is not None else input._accumulator(),))
            node.scalar = other
            return wrap(y, node)
        return wrap(y)
    if other.__class__ is Tensor and input.__class__ is Tensor and out is None:
        ad, bd = input._data, other._data
        if ad.dtype is bd.dtype and ad.shape == bd.shape and ad.__class__ is _ndarray and bd.__class__ is _ndarray:
            y = ad * bd
            if grad_state.enabled and (input.requires_grad or other.requires_grad):
                fa, fb = input.grad_fn, other.grad_fn
                node = MulBackward0((
                    (fa if fa is not None else input._accumulator()) if input.requires_grad else None,
                    (fb if fb is not None else other._accumulator()) if other.requires_grad else None))
                node.saved = (input, other)
                node.versions = (input._version[0], other._version[0])
                return wrap(y, node)
            return wrap(y)
    a, b, ta, tb = binary_operands(input, other, "mul")
    try:
        y = a * b
    except ValueError as e:
        raise broadcast_error("mul", a, b, e) from None
    if grad_state.enabled and ((ta is not None and ta.requires_grad) or (tb is not None and tb.requires_grad)):
        if ta is None or tb is None:
            t, s = (ta, b) if ta is not None else (tb, a)
            node = MulScalarBackward((edge(t),))
            node.scalar = s
        else:
            node = MulBackward0((edge(ta), edge(tb)))
            node.saved = (ta, tb)
            node.versions = (ta._version[0], tb._version[0])
            if a.shape != b.shape:
                node.shapes = (a.shape, b.shape)
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


class DivBackward0(BinaryNode):
    __slots__ = ()

    def backward(self, ns, g):
        a, b = ns.saved(self)
        ga = g / b
        gb = -ga * a / b
        return self.reduced(ns, ga, gb)


class DivScalarBackward(Node):
    __slots__ = ("scalar",)

    def backward(self, ns, g):
        return (g / self.scalar,)

    def name(self) -> str:
        return "DivBackward0"


class RdivBackward(Node):
    """``scalar / x``: d/dx = -scalar / x^2 = -y / x."""
    __slots__ = ("scalar",)

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        return (-g * self.scalar / (x * x),)

    def name(self) -> str:
        return "DivBackward0"


def div(input, other, *, rounding_mode=None, out=None) -> Tensor:
    """True division (``torch.div``); ``rounding_mode`` 'trunc' or 'floor' gives integer-valued, gradient-free
    results. Integer inputs divide to the default float dtype."""
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                             f"'{rounding_mode}'")
        a, b, ta, tb = binary_operands(input, other, "div")
        _refuse_bool_result(a, b, "div_floor" if rounding_mode == "floor" else "div_trunc")
        xp = xp_of(a if ta is not None else b)
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = xp.floor_divide(a, b) if rounding_mode == "floor" else xp.trunc(xp.true_divide(a, b))
        except ValueError as e:
            raise broadcast_error("div", a, b, e) from None
        if y.dtype != (a.dtype if ta is not None else b.dtype) and not isinstance(b, float):
            y = y.astype(a.dtype if ta is not None else b.dtype)
        y = xp.asarray(y)
        if grad_state.enabled and y.dtype.kind == "f" and (
                (ta is not None and ta.requires_grad) or (tb is not None and tb.requires_grad)):
            # rounded quotients are piecewise constant: torch records them with a zero gradient
            node = RoundedDivBackward((edge(ta) if ta is not None else None, edge(tb) if tb is not None else None))
            node.shapes = (a.shape if ta is not None else (), b.shape if tb is not None else ())
            res = wrap(y, node)
        else:
            res = wrap(y)
        return res if out is None else _write_out(out, res)
    a, b, ta, tb = binary_operands(input, other, "div")
    if ta is not None and a.dtype.kind != "f":
        a = a.astype(_default_float().np_dtype)
    if tb is not None and b.dtype.kind != "f":
        b = b.astype(_default_float().np_dtype)
    try:
        y = a / b
    except ValueError as e:
        raise broadcast_error("div", a, b, e) from None
    if ta is not None and tb is not None and y.dtype != a.dtype and a.dtype == b.dtype:
        y = y.astype(a.dtype)
    if grad_state.enabled and ((ta is not None and ta.requires_grad) or (tb is not None and tb.requires_grad)):
        if tb is None:
            node = DivScalarBackward((edge(ta),))
            node.scalar = b
        elif ta is None:
            node = RdivBackward((edge(tb),))
            node.scalar = a
            node.saved = (tb,)
            node.versions = (tb._version[0],)
        else:
            node = DivBackward0((edge(ta), edge(tb)))
            node.saved = (_same_dtype_tensor(ta, a), _same_dtype_tensor(tb, b))
            node.versions = (node.saved[0]._version[0], node.saved[1]._version[0])
            if a.shape != b.shape:
                node.shapes = (a.shape, b.shape)
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


def _same_dtype_tensor(t: Tensor, data) -> Tensor:
    # a promoted operand is saved as its promoted copy (it cannot change under us: nobody else holds it)
    return t if t._data is data else wrap(data)


def true_divide(input, other) -> Tensor:
    return div(input, other)


def rdiv(input: Tensor, other) -> Tensor:
    if isinstance(other, Tensor):
        return div(other, input)
    return div(other, input) if not isinstance(other, (int, float, bool)) else _rdiv_scalar(input, other)


def _rdiv_scalar(t: Tensor, s) -> Tensor:
    d = _float_data(t._data)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = s / d
    if grad_state.enabled and t.requires_grad:
        node = RdivBackward((edge(t),))
        node.scalar = s
        node.saved = (t,)
        node.versions = (t._version[0],)
        return wrap(y, node)
    return wrap(y)


class RoundedDivBackward(Node):
    """``div(a, b, rounding_mode=...)``: the gradient is zero almost everywhere (torch's DivBackward2)."""
    __slots__ = ()

    def backward(self, ns, g):
        sa, sb = self.shapes
        zero = g * 0
        return (ns.sum_to(zero, sa) if self.next_nodes[0] is not None else None,
                ns.sum_to(zero, sb) if self.next_nodes[1] is not None else None)

    def name(self) -> str:
        return "DivBackward2"


class FloorDivideBackward(Node):
    """torch records ``//`` on tensors that require grad but has no derivative for it: backward raises."""
    __slots__ = ()

    def backward(self, ns, g):
        raise RuntimeError("derivative for floor_divide is not implemented (as in torch). Use "
                           "div(a, b, rounding_mode='floor'), whose gradient is zero, or detach() the operands.")

    def name(self) -> str:
        return "NotImplemented"


def floor_divide(input, other, *, out=None) -> Tensor:
    """``//``: floor division. Like torch, the result of float tensors that require grad is recorded, but
    backward through it raises (torch implements no derivative for floor_divide)."""
    res = div(input, other, rounding_mode="floor", out=out)
    if res.grad_fn is not None:
        res.grad_fn = FloorDivideBackward(res.grad_fn.next_nodes)
    return res


class RemainderBackward0(BinaryNode):
    __slots__ = ()

    def backward(self, ns, g):
        a, b = ns.saved(self)
        gb = -g * ns.floor(a / b)
        return self.reduced(ns, g, gb)


class RemainderScalarBackward(Node):
    __slots__ = ()

    def backward(self, ns, g):
        return (g,)

    def name(self) -> str:
        return "RemainderBackward0"


def remainder(input, other, *, out=None) -> Tensor:
    """Python-style modulus, the sign of the divisor (``torch.remainder`` / ``%``)."""
    a, b, ta, tb = binary_operands(input, other, "remainder")
    _refuse_bool_result(a, b, "remainder")
    xp = xp_of(a if ta is not None else b)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = xp.asarray(xp.remainder(a, b))
    except ValueError as e:
        raise broadcast_error("remainder", a, b, e) from None
    if grad_state.enabled and ((ta is not None and ta.requires_grad) or (tb is not None and tb.requires_grad)):
        if tb is None:
            node = RemainderScalarBackward((edge(ta),))
        else:
            if ta is None:
                ta = wrap(xp.asarray(a, dtype=b.dtype))
            node = RemainderBackward0((edge(ta), edge(tb)))
            node.saved = (ta, tb)
            node.versions = (ta._version[0], tb._version[0])
            if ta._data.shape != tb._data.shape:
                node.shapes = (ta._data.shape, tb._data.shape)
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


fmod_np = np.fmod


def fmod(input, other) -> Tensor:
    """C-style remainder, the sign of the dividend; gradient 1 with respect to ``input``."""
    a, b, ta, tb = binary_operands(input, other, "fmod")
    try:
        y = xp_of(a).fmod(a, b)
    except ValueError as e:
        raise broadcast_error("fmod", a, b, e) from None
    if grad_state.enabled and ta is not None and ta.requires_grad:
        node = RemainderScalarBackward((edge(ta),) if tb is None else (edge(ta), None))
        if tb is not None and a.shape != y.shape:
            node.shapes = (a.shape,)
        return wrap(xp_of(a).asarray(y), node)
    return wrap(xp_of(a).asarray(y))


class PowBackward0(Node):
    """``x ** c`` for a number c: d/dx = c * x^(c-1)."""
    __slots__ = ("exponent",)

    def backward(self, ns, g):
        (x,) = ns.saved(self)
        c = self.exponent
        if ns.create_graph:
            # torch records pow(x, c - 1) for every c != 0 (so x ** 1 still leads back to x) and a
            # history-free zero for c == 0
            if c == 0:
                return (ns.const(xp_of(g._data).zeros_like(g._data)),)
            return (g * (c * x ** (c - 1)),)
        if c == 0:
            return (g * 0,)
        if c == 2:
            return (g * (2.0 * x),)
        return (g * (c * x ** (c - 1)),)


class PowBackward1(BinaryNode):
    """``a ** b`` for two tensors: da = b a^(b-1), db = a^b log a (0 where a == 0 and b >= 0, as torch)."""
    __slots__ = ("out",)
    has_out = True

    def backward(self, ns, g):
        a, b = ns.saved(self)
        y = ns.out(self)
        ga = g * b * a ** (b - 1)
        gb = g * y * ns.log(ns.where(a == 0, 1.0, a) if not ns.create_graph else _safe_base(ns, a))
        gb = ns.where((a == 0) & (b >= 0), 0.0, gb) if not ns.create_graph else gb * ((a != 0) | (b < 0))
        return self.reduced(ns, ga, gb)


def _safe_base(ns, a):
    return a + (a == 0)


class RpowBackward(Node):
    """``c ** x`` for a number c: d/dx = c^x log c."""
    __slots__ = ("out", "log_base")
    has_out = True

    def backward(self, ns, g):
        return (g * ns.out(self) * self.log_base,)

    def name(self) -> str:
        return "PowBackward2"


def pow(input, exponent, *, out=None) -> Tensor:
    """``input ** exponent`` (``torch.pow``), number or tensor exponent, either side."""
    if not isinstance(input, Tensor):
        return _rpow(input, exponent)
    a, b, ta, tb = binary_operands(input, exponent, "pow")
    if tb is None and isinstance(b, int) and b < 0 and a.dtype.kind in "iub":
        raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
    if tb is None and b.__class__ is bool and a.dtype.kind == "b":
        # torch keeps bool ** bool-scalar bool: x ** True is x, x ** False is all True
        return wrap(a.copy() if b else xp_of(a).ones_like(a))
    if tb is not None:
        _refuse_bool_result(a, b, "pow")
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            if tb is None and b == 2:
                y = a * a
            elif tb is None and b == 0.5 and a.dtype.kind == "f":
                y = xp_of(a).sqrt(a)
            elif tb is not None and a.dtype.kind in "iu" and b.dtype.kind in "iu":
                y = _int_power(xp_of(a), a, b)
            else:
                y = a ** b
    except ValueError as e:
        raise broadcast_error("pow", a, b, e) from None
    if grad_state.enabled and (ta.requires_grad or (tb is not None and tb.requires_grad)):
        if tb is None:
            node = PowBackward0((edge(ta),))
            node.exponent = b
            node.saved = (ta if ta._data is a else wrap(a),)
            node.versions = (node.saved[0]._version[0],)
        else:
            node = PowBackward1((edge(ta), edge(tb)))
            node.saved = (_same_dtype_tensor(ta, a), _same_dtype_tensor(tb, b))
            node.versions = (node.saved[0]._version[0], node.saved[1]._version[0])
            node.out = y
            if a.shape != b.shape:
                node.shapes = (a.shape, b.shape)
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


def _rpow(base, t: Tensor) -> Tensor:
    if isinstance(base, Tensor):
        return pow(base, t)
    if not isinstance(base, (int, float, bool)):
        return pow(as_tensor_arg(base, t, "pow"), t)
    _refuse_bool_result(base, t._data, "pow")
    d = t._data if (t._data.dtype.kind == "f" or isinstance(base, int)) else _float_data(t._data)
    if isinstance(base, float):
        d = _float_data(d)
    xp = xp_of(d)
    y = xp.asarray(base ** d if d.dtype.kind == "f" else _int_power(xp, base, d))
    if grad_state.enabled and t.requires_grad:
        node = RpowBackward((edge(t),))
        node.out = y
        node.log_base = float(np.log(base)) if base > 0 else (float("-inf") if base == 0 else float("nan"))
        return wrap(y, node)
    return wrap(y)


def _int_power(xp, base, exponent):
    """Integer ``base ** exponent`` with torch's rule for negative exponents: the exact result truncated toward
    zero, i.e. 1 for base 1, +-1 for base -1, 0 otherwise (NumPy refuses negative integer powers)."""
    negative = exponent < 0
    y = xp.power(base, xp.where(negative, 0, exponent))
    if bool(negative.any()):
        minus_one = xp.where(exponent % 2 == 0, 1, -1)
        y = xp.where(negative, xp.where(base == 1, 1, xp.where(base == -1, minus_one, 0)), y).astype(y.dtype)
    return y


# ---------------------------------------------------------------------------------------------------------------
# unary math: (forward on arrays, backward formula, what the formula needs)

class UnaryNode(Node):
    """A one-input op whose backward is ``formula(ns, g, x, y)`` (x: saved input, y: output), specialised per op
    by ``_make_unary`` to fetch only what the formula needs."""
    __slots__ = ("out",)
    has_out = True
    formula = None


def _make_unary(torch_name: str, forward, formula, save: str, float_only: bool = True, doc: str = "",
                kernel=None):
    if kernel is not None:
        assert save == "output"

        def backward(self, ns, g):
            y = ns.out(self)
            if not ns.create_graph and (ns.xp is not np or _kernels._emulator is not None):
                gx = _fused.backward(ns, kernel, g, y)
                if gx is not None:
                    return (gx,)
            return (formula(ns, g, None, y),)
    elif save == "input":
        def backward(self, ns, g):
            return (formula(ns, g, ns.saved(self)[0], None),)
    elif save == "output":
        def backward(self, ns, g):
            return (formula(ns, g, None, ns.out(self)),)
    else:
        def backward(self, ns, g):
            return (formula(ns, g, None, None),)
    node_cls = type(f"{torch_name.capitalize()}Backward0", (UnaryNode,), {
        "__slots__": (), "backward": backward, "formula": staticmethod(formula)})
    save_in = save == "input"
    save_out = save == "output"
    default_np = _default_float

    def op(input: Tensor, *, out=None) -> Tensor:
        d = input._data
        if float_only and d.dtype.kind != "f":
            d = d.astype(default_np().np_dtype)
        y = forward(np if d.__class__ is _ndarray else xp_of(d), d)
        if input.requires_grad and grad_state.enabled:
            fn = input.grad_fn
            node = node_cls((fn if fn is not None else input._accumulator(),))
            if save_in:
                node.saved = (input,)
                node.versions = (input._version[0],)
            elif save_out:
                node.out = y
            res = wrap(y, node)
        else:
            res = wrap(y)
        return res if out is None else _write_out(out, res)

    op.__name__ = op.__qualname__ = torch_name
    op.__doc__ = doc or f"Elementwise ``{torch_name}`` (``torch.{torch_name}``)."
    return op, node_cls


_EXP_SAFE = {np.dtype(np.float16): -11.0, np.dtype(np.float32): -88.0, np.dtype(np.float64): -709.0}


def _sigmoid_fwd(xp, d):
    if xp is not np or _kernels._emulator is not None:
        y = _fused.forward(xp, _fused.SIGMOID_FORWARD, d)  # one launch, and no look at the minimum on the host
        if y is not None:
            return y
    if d.ndim and d.size and float(d.min()) > _EXP_SAFE[d.dtype]:
        # no exp(-x) can overflow: the short formula, in place (a 0-d exp gives a NumPy scalar: no out=)
        e = xp.exp(-d)
        e += 1
        return xp.reciprocal(e, out=e)
    # exp of a non-positive number only: no overflow for large |x| (and nan stays nan)
    e = xp.exp(-xp.abs(d))
    r = 1.0 / (1.0 + e)
    return xp.where(d >= 0, r, e * r)


neg, NegBackward0 = _make_unary("neg", lambda xp, d: -d, lambda ns, g, x, y: -g, "none", float_only=False)
exp, ExpBackward0 = _make_unary("exp", lambda xp, d: xp.exp(d), lambda ns, g, x, y: g * y, "output")
log, LogBackward0 = _make_unary("log", lambda xp, d: xp.log(d), lambda ns, g, x, y: g / x, "input")
log2, Log2Backward0 = _make_unary("log2", lambda xp, d: xp.log2(d),
                                  lambda ns, g, x, y: g / (x * 0.6931471805599453), "input")
log10, Log10Backward0 = _make_unary("log10", lambda xp, d: xp.log10(d),
                                    lambda ns, g, x, y: g / (x * 2.302585092994046), "input")
log1p, Log1PBackward0 = _make_unary("log1p", lambda xp, d: xp.log1p(d), lambda ns, g, x, y: g / (x + 1), "input")
expm1, Expm1Backward0 = _make_unary("expm1", lambda xp, d: xp.expm1(d), lambda ns, g, x, y: g * (y + 1), "output")
sqrt, SqrtBackward0 = _make_unary("sqrt", lambda xp, d: xp.sqrt(d), lambda ns, g, x, y: g / (2 * y), "output")
rsqrt, RsqrtBackward0 = _make_unary("rsqrt", lambda xp, d: 1 / xp.sqrt(d),
                                    lambda ns, g, x, y: g * (-0.5) * y * y * y, "output")
sin, SinBackward0 = _make_unary("sin", lambda xp, d: xp.sin(d), lambda ns, g, x, y: g * ns.cos(x), "input")
cos, CosBackward0 = _make_unary("cos", lambda xp, d: xp.cos(d), lambda ns, g, x, y: -g * ns.sin(x), "input")
tan, TanBackward0 = _make_unary("tan", lambda xp, d: xp.tan(d), lambda ns, g, x, y: g * (1 + y * y), "output")
tanh, TanhBackward0 = _make_unary("tanh", lambda xp, d: xp.tanh(d), lambda ns, g, x, y: g * (1 - y * y), "output",
                                  kernel=_fused.TANH)
sinh, SinhBackward0 = _make_unary("sinh", lambda xp, d: xp.sinh(d), lambda ns, g, x, y: g * ns.cosh(x), "input")
cosh, CoshBackward0 = _make_unary("cosh", lambda xp, d: xp.cosh(d), lambda ns, g, x, y: g * ns.sinh(x), "input")
asin, AsinBackward0 = _make_unary("asin", lambda xp, d: xp.arcsin(d),
                                  lambda ns, g, x, y: g / ns.sqrt(1 - x * x), "input")
acos, AcosBackward0 = _make_unary("acos", lambda xp, d: xp.arccos(d),
                                  lambda ns, g, x, y: -g / ns.sqrt(1 - x * x), "input")
atan, AtanBackward0 = _make_unary("atan", lambda xp, d: xp.arctan(d), lambda ns, g, x, y: g / (1 + x * x), "input")
sigmoid, SigmoidBackward0 = _make_unary("sigmoid", _sigmoid_fwd, lambda ns, g, x, y: g * (y * (1 - y)), "output",
                                        kernel=_fused.SIGMOID)
_SAME_SIZE_INT = {2: (np.int16, np.uint16), 4: (np.int32, np.uint32), 8: (np.int64, np.uint64)}


def _keep_where(xp, keep, g):
    """``g`` where ``keep`` and +0 elsewhere, as a select: an infinite or NaN ``g`` where not kept gives 0 (``g *
    keep`` would give NaN there). A bitwise and with an all-ones/zeros mask: several times faster on NumPy than
    ``where``, whose per-element branch is slow on unpredictable masks."""
    signed, unsigned = _SAME_SIZE_INT[g.dtype.itemsize]
    bits = xp.asarray(keep, dtype=signed)  # (a 0-d comparison gives a NumPy scalar: asarray makes it an array)
    xp.negative(bits, out=bits)  # 1 -> all ones
    return xp.bitwise_and(g.view(unsigned), bits.view(unsigned)).view(g.dtype)


def _relu_grad(ns, g, x, y):
    # torch: 0 where the output is <= 0, g elsewhere (a NaN output passes g); the output is >= 0 or NaN
    if ns.create_graph:
        return ns.where(y <= 0, 0.0, g)
    return _keep_where(ns.xp, y != 0, g)


relu, ReluBackward0 = _make_unary("relu", lambda xp, d: xp.maximum(d, 0), _relu_grad, "output",
                                  float_only=False, kernel=_fused.RELU)
square, SquareBackward0 = _make_unary("square", lambda xp, d: d * d, lambda ns, g, x, y: g * (2 * x), "input",
                                      float_only=False)
SquareBackward0.name = lambda self: "PowBackward0"  # torch computes square as pow(x, 2)
reciprocal, ReciprocalBackward0 = _make_unary("reciprocal", lambda xp, d: 1 / d, lambda ns, g, x, y: -g * (y * y),
                                              "output")
abs, AbsBackward0 = _make_unary("abs", lambda xp, d: xp.abs(d), lambda ns, g, x, y: g * ns.sign(x), "input",
                                float_only=False)
sign, SignBackward0 = _make_unary("sign", sign_array, lambda ns, g, x, y: g * 0, "none",
                                  float_only=False)
floor, FloorBackward0 = _make_unary("floor", lambda xp, d: xp.floor(d) if d.dtype.kind == "f" else d.copy(),
                                    lambda ns, g, x, y: g * 0, "none", float_only=False)
ceil, CeilBackward0 = _make_unary("ceil", lambda xp, d: xp.ceil(d) if d.dtype.kind == "f" else d.copy(),
                                  lambda ns, g, x, y: g * 0, "none", float_only=False)
trunc, TruncBackward0 = _make_unary("trunc", lambda xp, d: xp.trunc(d) if d.dtype.kind == "f" else d.copy(),
                                    lambda ns, g, x, y: g * 0, "none", float_only=False)
frac, FracBackward0 = _make_unary("frac", lambda xp, d: d - xp.trunc(d), lambda ns, g, x, y: g, "none")
erf, ErfBackward0 = _make_unary(
    "erf", lambda xp, d: _erf(xp, d), lambda ns, g, x, y: g * (1.1283791670955126 * ns.exp(-(x * x))), "input")

fix = trunc
negative = neg
absolute = abs
arcsin, arccos, arctan = asin, acos, atan


def _erf(xp, d):
    if xp is np:
        try:
            from scipy.special import erf as _scipy_erf

            return _scipy_erf(d).astype(d.dtype, copy=False)
        except ImportError:
            import math

            return np.vectorize(math.erf, otypes=[d.dtype])(d) if d.size else d.copy()
    import cupyx.scipy.special

    return cupyx.scipy.special.erf(d)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even, as ``torch.round``; zero gradient."""
    d = input._data
    y = xp_of(d).round(d, decimals) if d.dtype.kind == "f" else d.copy()
    if grad_state.enabled and input.requires_grad:
        return wrap(y, FloorBackward0((edge(input),)))
    return wrap(y)


def positive(input: Tensor) -> Tensor:
    return input


# ---------------------------------------------------------------------------------------------------------------
# clamp, maximum/minimum, where

class ClampBackward1(Node):
    __slots__ = ("mask",)

    def backward(self, ns, g):
        return (g * (self.mask if not ns.create_graph else ns.const(self.mask)),)


def clamp(input: Tensor, min=None, max=None, *, out=None) -> Tensor:
    """Limit values to [min, max] (``torch.clamp``); the gradient passes where the input was inside."""
    if min is None and max is None:
        raise RuntimeError("clamp: At least one of 'min' or 'max' must not be None")
    d = input._data
    xp = xp_of(d)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        res = input
        if min is not None:
            res = maximum(res, min if isinstance(min, Tensor) else _full_like_scalar(d, min))
        if max is not None:
            res = minimum(res, max if isinstance(max, Tensor) else _full_like_scalar(d, max))
        return res if out is None else _write_out(out, res)
    if d.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        d = d.astype(_default_float().np_dtype)
    y = xp.clip(d, min, max)
    if y.dtype != d.dtype:
        y = y.astype(d.dtype)
    if grad_state.enabled and input.requires_grad:
        node = ClampBackward1((edge(input),))
        mask = xp.ones(d.shape, dtype=bool)
        if min is not None:
            mask &= d >= min
        if max is not None:
            mask &= d <= max
        node.mask = mask
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


clip = clamp


def clamp_min(input: Tensor, min) -> Tensor:
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:
    return clamp(input, max=max)


def _full_like_scalar(d, value):
    return wrap(xp_of(d).asarray(value, dtype=d.dtype))


class MaximumBackward0(BinaryNode):
    """Ties split the gradient in half, as torch."""
    __slots__ = ("is_max",)

    def backward(self, ns, g):
        a, b = ns.saved(self)
        if self.is_max:
            wa = (a > b) + (a == b) * 0.5
        else:
            wa = (a < b) + (a == b) * 0.5
        if ns.create_graph:
            wa = ns.const(wa._data.astype(a._data.dtype))
        else:
            wa = wa.astype(a.dtype, copy=False)
        ga, gb = g * wa, g * (1 - wa)
        return self.reduced(ns, ga, gb)

    def name(self) -> str:
        return "MaximumBackward0" if self.is_max else "MinimumBackward0"


def _max_min(input, other, is_max: bool, op: str) -> Tensor:
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}(): argument 'other' must be Tensor, not {type(other).__name__}")
    a, b, ta, tb = binary_operands(input, other, op)
    xp = xp_of(a)
    try:
        y = xp.maximum(a, b) if is_max else xp.minimum(a, b)
    except ValueError as e:
        raise broadcast_error(op, a, b, e) from None
    if grad_state.enabled and (ta.requires_grad or tb.requires_grad):
        node = MaximumBackward0((edge(ta), edge(tb)))
        node.is_max = is_max
        node.saved = (_same_dtype_tensor(ta, a), _same_dtype_tensor(tb, b))
        node.versions = (node.saved[0]._version[0], node.saved[1]._version[0])
        if a.shape != b.shape:
            node.shapes = (a.shape, b.shape)
        return wrap(y, node)
    return wrap(y)


def maximum(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """Elementwise maximum (``torch.maximum``); NaN propagates."""
    res = _max_min(input, other, True, "maximum")
    return res if out is None else _write_out(out, res)


def minimum(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """Elementwise minimum (``torch.minimum``); NaN propagates."""
    res = _max_min(input, other, False, "minimum")
    return res if out is None else _write_out(out, res)


fmax = maximum
fmin = minimum


class WhereBackward0(BinaryNode):
    __slots__ = ("cond",)

    def backward(self, ns, g):
        c = self.cond if not ns.create_graph else ns.const(self.cond)
        ga = ns.where(c, g, 0.0) if not ns.create_graph else g * c
        gb = ns.where(c, 0.0, g) if not ns.create_graph else g * (~c)
        return self.reduced(ns, ga, gb)


def where(condition, input=None, other=None, *, out=None):
    """``condition ? input : other`` with broadcasting (``torch.where``); one argument gives ``nonzero`` tuples."""
    if input is None and other is None:
        from .indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        condition = as_tensor_arg(condition, None, "where")
    if condition._data.dtype.kind != "b":
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{condition.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = as_tensor_arg(input, condition, "where")
    a, b, ta, tb = binary_operands(input, other, "where")
    cd = condition._data
    xp = xp_of(cd)
    try:
        y = xp.where(cd, a, b)
    except ValueError:
        raise RuntimeError(f"where: condition {list(cd.shape)}, input {list(getattr(a, 'shape', ()))} and other "
                           f"{list(getattr(b, 'shape', ()))} cannot be broadcast together") from None
    if y.dtype != (a.dtype if ta is not None else b.dtype):
        y = y.astype(a.dtype if ta is not None else b.dtype)
    if grad_state.enabled and ((ta is not None and ta.requires_grad) or (tb is not None and tb.requires_grad)):
        node = WhereBackward0((edge(ta) if ta is not None else None, edge(tb) if tb is not None else None))
        node.cond = xp.broadcast_to(cd, y.shape)
        sa = a.shape if ta is not None else ()
        sb = b.shape if tb is not None else ()
        if sa != y.shape or sb != y.shape:
            node.shapes = (sa, sb)
        res = wrap(y, node)
    else:
        res = wrap(y)
    return res if out is None else _write_out(out, res)


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """Replace entries where ``mask`` is True by ``value`` (``Tensor.masked_fill``); mask broadcasts to input."""
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        fits = tuple(np.broadcast_shapes(mask._data.shape, input._data.shape)) == input._data.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"masked_fill: the mask of shape {list(mask.shape)} must broadcast to the input's shape "
                           f"{list(input.shape)}")
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value._data.ndim} dimension(s).")
        return relabel(where(mask, value.to(input.dtype), input), "MaskedFillBackward0")
    fill = wrap(xp_of(input._data).asarray(value, dtype=input._data.dtype))
    return relabel(where(mask, fill, input), "MaskedFillBackward0")


# ---------------------------------------------------------------------------------------------------------------
# comparisons and logic: no gradient, bool results

def _compare(ufunc_name: str, op: str):
    def fn(input, other, *, out=None) -> Tensor:
        a, b, ta, tb = binary_operands(input, other, op)
        xp = xp_of(a if ta is not None else b)
        try:
            y = getattr(xp, ufunc_name)(a, b)
        except ValueError as e:
            raise broadcast_error(op, a, b, e) from None
        res = wrap(xp.asarray(y))
        return res if out is None else _write_out(out, res)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise ``{op}`` with broadcasting; a bool tensor, never differentiable (``torch.{op}``)."
    return fn


eq = _compare("equal", "eq")
ne = _compare("not_equal", "ne")
lt = _compare("less", "lt")
le = _compare("less_equal", "le")
gt = _compare("greater", "gt")
ge = _compare("greater_equal", "ge")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
logical_and = _compare("logical_and", "logical_and")
logical_or = _compare("logical_or", "logical_or")
logical_xor = _compare("logical_xor", "logical_xor")


def _bitwise(ufunc_name: str, op: str):
    def fn(input, other) -> Tensor:
        a, b, ta, tb = binary_operands(input, other, op)
        dt = a.dtype if ta is not None else b.dtype
        if dt.kind == "f":
            raise TypeError(f"{op}: bitwise operations are only defined for integer and bool tensors, got {dt}")
        try:
            y = getattr(np, ufunc_name)(a, b)
        except ValueError as e:
            raise broadcast_error(op, a, b, e) from None
        return wrap(xp_of(a if ta is not None else b).asarray(y))

    fn.__name__ = fn.__qualname__ = op
    return fn


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")


def logical_not(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).logical_not(input._data))


def bitwise_not(input: Tensor) -> Tensor:
    d = input._data
    if d.dtype.kind == "f":
        raise TypeError("bitwise_not is only defined for integer and bool tensors (the ~ operator)")
    return wrap(xp_of(d).invert(d))


def isnan(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).isnan(input._data))


def isinf(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).isinf(input._data))


def isfinite(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).isfinite(input._data))


def isposinf(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).isposinf(input._data))


def isneginf(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).isneginf(input._data))


def signbit(input: Tensor) -> Tensor:
    return wrap(xp_of(input._data).signbit(input._data))


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    a, b, _, _ = binary_operands(input, other, "isclose")
    try:
        y = xp_of(a).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    except ValueError as e:
        raise broadcast_error("isclose", a, b, e) from None
    return wrap(xp_of(a).asarray(y))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input: Tensor, other: Tensor) -> bool:
    return input._data.shape == other._data.shape and bool((input._data == other._data).all())


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    d = input._data
    y = xp_of(d).nan_to_num(d, nan=nan, posinf=posinf, neginf=neginf)
    if grad_state.enabled and input.requires_grad:
        node = ClampBackward1((edge(input),))
        node.mask = xp_of(d).isfinite(d)
        return wrap(y, node)
    return wrap(y)


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    return input + weight * (end - input)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    return input + value * (tensor1 * tensor2)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    return input + value * (tensor1 / tensor2)
