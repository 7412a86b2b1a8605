"""The one binding point between Tensor and the ops: methods, operators, and the recording namespace."""
from __future__ import annotations

from ..autograd.namespace import tensor_namespace as _tns
from ..tensor import Tensor
from . import elementwise as E, indexing as I, inplace as IP, linalg as L, reduction as R, shape as S


def _swap(fn):
    def reflected(self, other):
        return fn(other, self)

    reflected.__name__ = fn.__name__
    return reflected


def _iop(inplace_fn):
    def method(self, other):
        return inplace_fn(self, other)

    return method


_METHODS = {
    # arithmetic and math
    "add": E.add, "sub": E.sub, "subtract": E.sub, "mul": E.mul, "multiply": E.mul, "div": E.div,
    "divide": E.div, "true_divide": E.div, "floor_divide": E.floor_divide, "remainder": E.remainder, "fmod": E.fmod,
    "pow": E.pow, "neg": E.neg, "negative": E.neg, "abs": E.abs, "absolute": E.abs, "exp": E.exp, "log": E.log,
    "log2": E.log2, "log10": E.log10, "log1p": E.log1p, "expm1": E.expm1, "sqrt": E.sqrt, "rsqrt": E.rsqrt,
    "sin": E.sin, "cos": E.cos, "tan": E.tan, "tanh": E.tanh, "sinh": E.sinh, "cosh": E.cosh, "asin": E.asin,
    "acos": E.acos, "atan": E.atan, "arcsin": E.asin, "arccos": E.acos, "arctan": E.atan, "sigmoid": E.sigmoid,
    "relu": E.relu, "square": E.square, "reciprocal": E.reciprocal, "sign": E.sign, "floor": E.floor,
    "ceil": E.ceil, "trunc": E.trunc, "frac": E.frac, "round": E.round, "erf": E.erf, "clamp": E.clamp,
    "clip": E.clamp, "clamp_min": E.clamp_min, "clamp_max": E.clamp_max, "maximum": E.maximum,
    "minimum": E.minimum, "fmax": E.maximum, "fmin": E.minimum, "where": lambda self, cond, other: E.where(
        cond, self, other), "masked_fill": E.masked_fill, "lerp": E.lerp, "addcmul": E.addcmul,
    "addcdiv": E.addcdiv, "nan_to_num": E.nan_to_num,
    # comparisons
    "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge, "greater": E.gt, "less": E.lt,
    "greater_equal": E.ge, "less_equal": E.le, "not_equal": E.ne, "logical_and": E.logical_and,
    "logical_or": E.logical_or, "logical_xor": E.logical_xor, "logical_not": E.logical_not,
    "bitwise_not": E.bitwise_not, "isnan": E.isnan, "isinf": E.isinf, "isfinite": E.isfinite,
    "isposinf": E.isposinf, "isneginf": E.isneginf, "signbit": E.signbit, "isclose": E.isclose,
    "allclose": E.allclose, "equal": E.equal,
    # reductions
    "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min, "amax": R.amax, "amin": R.amin,
    "argmax": R.argmax, "argmin": R.argmin, "var": R.var, "std": R.std, "norm": R.norm, "logsumexp": R.logsumexp,
    "softmax": R.softmax, "log_softmax": R.log_softmax, "cumsum": R.cumsum, "cumprod": R.cumprod, "all": R.all,
    "any": R.any, "count_nonzero": R.count_nonzero,
    # shape
    "reshape": S.reshape, "view": S.view, "view_as": S.view_as, "reshape_as": S.reshape_as, "flatten": S.flatten,
    "unflatten": S.unflatten, "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "permute": S.permute,
    "transpose": S.transpose, "swapaxes": S.transpose, "swapdims": S.transpose, "t": S.t, "movedim": S.movedim,
    "moveaxis": S.movedim, "expand": S.expand, "expand_as": S.expand_as, "broadcast_to": S.broadcast_to,
    "repeat": S.repeat, "tile": S.tile, "flip": S.flip, "fliplr": S.fliplr, "flipud": S.flipud, "roll": S.roll,
    "split": S.split, "chunk": S.chunk, "tensor_split": S.tensor_split, "unbind": S.unbind, "narrow": S.narrow,
    "select": S.select, "tril": S.tril, "triu": S.triu, "clone": S.clone, "contiguous": S.contiguous,
    # indexing
    "gather": I.gather, "scatter": I.scatter, "scatter_add": I.scatter_add, "index_select": I.index_select,
    "take_along_dim": I.take_along_dim, "masked_select": I.masked_select, "nonzero": I.nonzero,
    "argwhere": I.argwhere, "sort": I.sort, "argsort": I.argsort, "msort": I.msort, "topk": I.topk,
    "kthvalue": I.kthvalue,
    # linear algebra
    "matmul": L.matmul, "mm": L.mm, "bmm": L.bmm, "mv": L.mv, "dot": L.dot, "inner": L.dot, "outer": L.outer,
    "ger": L.outer, "addmm": L.addmm,
    # in place
    "add_": IP.add_, "sub_": IP.sub_, "mul_": IP.mul_, "div_": IP.div_, "pow_": IP.pow_, "exp_": IP.exp_,
    "log_": IP.log_, "sqrt_": IP.sqrt_, "neg_": IP.neg_, "abs_": IP.abs_, "relu_": IP.relu_,
    "sigmoid_": IP.sigmoid_, "tanh_": IP.tanh_, "floor_": IP.floor_, "ceil_": IP.ceil_, "round_": IP.round_,
    "reciprocal_": IP.reciprocal_, "square_": IP.square_, "sign_": IP.sign_, "clamp_": IP.clamp_,
    "clip_": IP.clamp_, "clamp_min_": IP.clamp_min_, "clamp_max_": IP.clamp_max_, "masked_fill_": IP.masked_fill_,
    "zero_": IP.zero_, "fill_": IP.fill_, "copy_": IP.copy_, "uniform_": IP.uniform_, "normal_": IP.normal_,
    "bernoulli_": IP.bernoulli_, "exponential_": IP.exponential_, "random_": IP.random_,
    "index_add_": IP.index_add_, "scatter_": IP.scatter_, "scatter_add_": IP.scatter_add_, "lerp_": IP.lerp_,
    "addcmul_": IP.addcmul_, "addcdiv_": IP.addcdiv_, "unsqueeze_": IP.unsqueeze_, "squeeze_": IP.squeeze_,
    "t_": IP.t_, "resize_": IP.resize_,
}

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

# operators
Tensor.__add__ = E.add
Tensor.__radd__ = lambda self, other: E.add(self, other)
Tensor.__sub__ = E.sub
Tensor.__rsub__ = lambda self, other: E.rsub(self, other)
Tensor.__mul__ = E.mul
Tensor.__rmul__ = lambda self, other: E.mul(self, other)
Tensor.__truediv__ = E.div
Tensor.__rtruediv__ = lambda self, other: E.rdiv(self, other)
Tensor.__floordiv__ = E.floor_divide
Tensor.__rfloordiv__ = _swap(E.floor_divide)
Tensor.__mod__ = E.remainder
Tensor.__rmod__ = _swap(E.remainder)
Tensor.__pow__ = E.pow
Tensor.__rpow__ = lambda self, other: E._rpow(other, self)
Tensor.__matmul__ = L.matmul
Tensor.__rmatmul__ = _swap(L.matmul)
Tensor.__neg__ = E.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = E.abs
Tensor.__invert__ = E.bitwise_not
Tensor.__and__ = E.bitwise_and
Tensor.__or__ = E.bitwise_or
Tensor.__xor__ = E.bitwise_xor
Tensor.__rand__ = _swap(E.bitwise_and)
Tensor.__ror__ = _swap(E.bitwise_or)
Tensor.__rxor__ = _swap(E.bitwise_xor)
# torch: comparing with None is plain identity (False / True), not an elementwise op
Tensor.__eq__ = lambda self, other: False if other is None else E.eq(self, other)
Tensor.__ne__ = lambda self, other: True if other is None else E.ne(self, other)
Tensor.__lt__ = E.lt
Tensor.__le__ = E.le
Tensor.__gt__ = E.gt
Tensor.__ge__ = E.ge
Tensor.__iadd__ = _iop(IP.add_)
Tensor.__isub__ = _iop(IP.sub_)
Tensor.__imul__ = _iop(IP.mul_)
Tensor.__itruediv__ = _iop(IP.div_)
Tensor.__getitem__ = I.getitem
Tensor.__setitem__ = I.setitem
Tensor.__hash__ = object.__hash__  # defining __eq__ would otherwise drop hashing
Tensor.T = property(S.T_)
Tensor.mT = property(S.mT_)
Tensor.H = property(S.T_)
Tensor.mH = property(S.mT_)


def _ns_sum(x, axis=None, keepdims=False):
    return R.sum(x, axis, keepdims)


# the recording namespace: the same names as ArrayNamespace, on Tensors
for _name, _fn in {
    "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "sin": E.sin, "cos": E.cos, "tanh": E.tanh, "sign": E.sign,
    "abs": E.abs, "log1p": E.log1p, "expm1": E.expm1, "cosh": E.cosh, "sinh": E.sinh, "maximum": E.maximum,
    "minimum": E.minimum, "square": E.square, "reciprocal": E.reciprocal, "floor": E.floor, "matmul": L.matmul,
    "sigmoid": E.sigmoid,
    "where": lambda c, a, b: E.where(c, a, b),
    "cumsum": lambda x, axis: R.cumsum(x, axis),
    "flip": lambda x, axes: S.flip(x, axes),
    "sum_to": lambda g, shape: g if tuple(g.shape) == tuple(shape) else S.reshape(
        R.sum(g, _sum_axes(tuple(g.shape), tuple(shape)), True), shape),
    "sum": _ns_sum,
    "broadcast_to": lambda x, shape: S.expand(x, shape),
    "reshape": lambda x, shape: S.reshape(x, shape),
    "permute": lambda x, axes: S.permute(x, axes),
    "swap_last": lambda x: S.transpose(x, -1, -2),
    "expand_dims": lambda x, axes: _expand_dims(x, axes),
    "getitem": lambda x, index: I.getitem(x, index),
    "index_put_acc": lambda shape, index, g, unique=False: I.index_put_acc(shape, index, g, unique),
    "take_along": lambda x, idx, axis: I.gather(x, axis, idx),
    "scatter_add_along": lambda shape, idx, g, axis: I.scatter_add_along(shape, idx, g, axis),
    "roll": lambda x, shifts, axis: S.roll(x, shifts, axis),
    "tril": lambda x, k: S.tril(x, k),
    "triu": lambda x, k: S.triu(x, k),
    "einsum": lambda spec, *xs: L.einsum(spec, *xs),
    "prod": lambda x, axes: R.prod_axes(x, axes),
    "mean_keep": lambda x, axes: R.mean(x, axes, True),
    "zeros_like": lambda x: x * 0,
    "cat": lambda xs, axis: S.cat(xs, axis),
}.items():
    setattr(_tns, _name, _fn)


def _sum_axes(gshape: tuple, shape: tuple) -> tuple:
    lead = len(gshape) - len(shape)
    return tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 1)


def _expand_dims(x, axes):
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    nd = len(x.shape) + len(axes)
    for a in sorted(ax % nd for ax in axes):
        x = S.unsqueeze(x, a)
    return x
