"""In-place ops. Outside recording (optimizer updates under no_grad) they write straight into the array; while
recording they compute out of place and rebase the tensor's history (``indexing.inplace_result``)."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from ._util import broadcast_error, grad_state, xp_of
from ..tensor import Tensor
from . import elementwise as E
from .indexing import inplace_result
from ..random import gen_or_default


def _recording(self: Tensor, other=None) -> bool:
    return grad_state.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))


def _direct(self: Tensor, ufunc, other, op: str) -> Tensor:
    d = self._data
    od = other._data if isinstance(other, Tensor) else other
    if isinstance(other, Tensor) and type(od) is not type(d):
        raise RuntimeError(f"{op}: Expected all tensors to be on the same device, but found {self.device} and "
                           f"{other.device}")
    try:
        ufunc(d, od, out=d, casting="same_kind")
    except TypeError:  # numpy's casting errors derive from TypeError
        raise RuntimeError(_cast_msg(op, od, self)) from None
    except ValueError as e:
        try:
            shape = np.broadcast_shapes(d.shape, getattr(od, "shape", ()))
        except ValueError:
            raise broadcast_error(op, d, od, e) from None
        raise RuntimeError(f"{op}: output with shape {list(d.shape)} doesn't match the broadcast shape "
                           f"{list(shape)}") from None
    self._version[0] += 1
    return self


def _cast_msg(op: str, od, self: Tensor) -> str:
    kind = getattr(od, "dtype", None)
    name = _dtype._BY_NP[kind].name if kind is not None and kind in _dtype._BY_NP else type(od).__name__
    return (f"{op}: result type {name} can't be cast to the desired output type {self.dtype} (in-place ops keep "
            "the tensor's dtype; use an out-of-place op)")


def add_(self: Tensor, other, *, alpha=1) -> Tensor:
    if not _recording(self, other):
        if alpha != 1:
            other = (other._data if isinstance(other, Tensor) else other) * alpha
        return _direct(self, xp_of(self._data).add, other, "add_")
    return inplace_result(self, E.add(self, other, alpha=alpha), "add_")


def sub_(self: Tensor, other, *, alpha=1) -> Tensor:
    if not _recording(self, other):
        if alpha != 1:
            other = (other._data if isinstance(other, Tensor) else other) * alpha
        return _direct(self, xp_of(self._data).subtract, other, "sub_")
    return inplace_result(self, E.sub(self, other, alpha=alpha), "sub_")


def mul_(self: Tensor, other) -> Tensor:
    if not _recording(self, other):
        return _direct(self, xp_of(self._data).multiply, other, "mul_")
    return inplace_result(self, E.mul(self, other), "mul_")


def div_(self: Tensor, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is None and not _recording(self, other):
        if self._data.dtype.kind != "f":
            raise RuntimeError(f"div_: result type Float can't be cast to the desired output type {self.dtype}")
        return _direct(self, xp_of(self._data).true_divide, other, "div_")
    return inplace_result(self, E.div(self, other, rounding_mode=rounding_mode), "div_")


def pow_(self: Tensor, exponent) -> Tensor:
    return inplace_result(self, E.pow(self, exponent), "pow_")


def _unary_inplace(fn, name: str):
    def method(self: Tensor) -> Tensor:
        return inplace_result(self, fn(self), name)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``."
    return method


exp_ = _unary_inplace(E.exp, "exp_")
log_ = _unary_inplace(E.log, "log_")
sqrt_ = _unary_inplace(E.sqrt, "sqrt_")
neg_ = _unary_inplace(E.neg, "neg_")
abs_ = _unary_inplace(E.abs, "abs_")
relu_ = _unary_inplace(E.relu, "relu_")
sigmoid_ = _unary_inplace(E.sigmoid, "sigmoid_")
tanh_ = _unary_inplace(E.tanh, "tanh_")
floor_ = _unary_inplace(E.floor, "floor_")
ceil_ = _unary_inplace(E.ceil, "ceil_")
round_ = _unary_inplace(E.round, "round_")
reciprocal_ = _unary_inplace(E.reciprocal, "reciprocal_")
square_ = _unary_inplace(E.square, "square_")
sign_ = _unary_inplace(E.sign, "sign_")


def clamp_(self: Tensor, min=None, max=None) -> Tensor:
    if not _recording(self) and not isinstance(min, Tensor) and not isinstance(max, Tensor):
        if min is None and max is None:
            raise RuntimeError("clamp_: At least one of 'min' or 'max' must not be None")
        xp_of(self._data).clip(self._data, min, max, out=self._data)
        self._version[0] += 1
        return self
    return inplace_result(self, E.clamp(self, min, max), "clamp_")


clip_ = clamp_


def clamp_min_(self: Tensor, min) -> Tensor:
    return clamp_(self, min=min)


def clamp_max_(self: Tensor, max) -> Tensor:
    return clamp_(self, max=max)


def masked_fill_(self: Tensor, mask: Tensor, value) -> Tensor:
    if not _recording(self, value):
        E.masked_fill(self.detach(), mask, value)  # validates the arguments
        v = value._data if isinstance(value, Tensor) else value
        xp = xp_of(self._data)
        self._data[...] = xp.where(mask._data, v, self._data)
        self._version[0] += 1
        return self
    return inplace_result(self, E.masked_fill(self, mask, value), "masked_fill_")


def _overwrite(self: Tensor, op: str) -> None:
    if grad_state.enabled and self.requires_grad and self.grad_fn is None:
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place operation ({op}). "
                           "Wrap it in `with tinyautograd.no_grad():`.")


def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0)


def fill_(self: Tensor, value) -> Tensor:
    """Set every element to ``value`` in place; the history restarts (gradient zero to what was there)."""
    if _recording(self, value):
        _overwrite(self, "fill_")
        src = E.mul(self, 0)
        if isinstance(value, Tensor):
            src = E.add(src, value)
        else:
            src = E.add(src, value)
        return inplace_result(self, src, "fill_")
    v = value._data if isinstance(value, Tensor) else value
    self._data[...] = v
    self._version[0] += 1
    return self


def copy_(self: Tensor, src: Tensor, non_blocking: bool = False) -> Tensor:
    """Copy ``src`` (broadcast, converted to this tensor's dtype and device) into ``self`` in place."""
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")
    s = src if type(src._data) is type(self._data) else src.to(self.device)
    if _recording(self, s):
        _overwrite(self, "copy_")
        from .shape import expand

        moved = expand(s.to(self.dtype), self._data.shape)
        res = E.add(E.mul(self.detach(), 0), moved) if self._data.dtype.kind == "f" else moved
        return inplace_result(self, res, "copy_")
    sd = s._data
    try:
        self._data[...] = sd
    except ValueError:
        raise RuntimeError(f"copy_: the size of src {list(sd.shape)} must be broadcastable to the destination "
                           f"{list(self._data.shape)}") from None
    self._version[0] += 1
    return self


def _random_fill(self: Tensor, make, op: str, generator) -> Tensor:
    if grad_state.enabled and self.requires_grad and self.grad_fn is None:
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place operation ({op}). "
                           "Initialise parameters under `with tinyautograd.no_grad():`.")
    xp = xp_of(self._data)
    rng = gen_or_default(generator).rng_for(xp)
    self._data[...] = make(rng, self._data.shape)
    self._version[0] += 1
    return self


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    return _random_fill(self, lambda rng, s: rng.uniform(a, b, s), "uniform_", generator)


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    # standard_normal * std + mean: what NumPy's normal computes (the same draws), and all CuPy's Generator has
    return _random_fill(self, lambda rng, s: rng.standard_normal(s) * std + mean, "normal_", generator)


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    return _random_fill(self, lambda rng, s: rng.random(s) < p, "bernoulli_", generator)


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    return _random_fill(self, lambda rng, s: rng.exponential(1.0 / lambd, s), "exponential_", generator)


def random_(self: Tensor, from_=0, to=None, *, generator=None) -> Tensor:
    if to is None:
        from_, to = 0, from_ if from_ else 2 ** 24
    return _random_fill(self, lambda rng, s: rng.integers(from_, to, s), "random_", generator)


def index_add_(self: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    from .indexing import getitem  # noqa: F401
    from ._util import wrap_dim

    axis = wrap_dim(dim, self._data.ndim, "index_add_")
    idx = (slice(None),) * axis + (index._data,)
    src = source._data * alpha if alpha != 1 else source._data
    if not _recording(self, source):
        xp = xp_of(self._data)
        xp.add.at(self._data, idx, src)
        self._version[0] += 1
        return self
    from .indexing import index_put_acc

    contrib = index_put_acc(self._data.shape, idx, source * alpha if alpha != 1 else source)
    return inplace_result(self, E.add(self, contrib), "index_add_")


def scatter_(self: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None) -> Tensor:
    from .indexing import scatter

    return inplace_result(self, scatter(self, dim, index, src if src is not None else value, reduce=reduce),
                          "scatter_")


def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    from .indexing import scatter_add

    return inplace_result(self, scatter_add(self, dim, index, src), "scatter_add_")


def lerp_(self: Tensor, end: Tensor, weight) -> Tensor:
    return inplace_result(self, E.lerp(self, end, weight), "lerp_")


def addcmul_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if not _recording(self, tensor1) and not (isinstance(tensor2, Tensor) and tensor2.requires_grad
                                              and grad_state.enabled):
        prod = tensor1._data * tensor2._data
        return _direct(self, xp_of(self._data).add, prod * value if value != 1 else prod, "addcmul_")
    return inplace_result(self, E.addcmul(self, tensor1, tensor2, value=value), "addcmul_")


def addcdiv_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if not _recording(self, tensor1) and not (isinstance(tensor2, Tensor) and tensor2.requires_grad
                                              and grad_state.enabled):
        q = tensor1._data / tensor2._data
        return _direct(self, xp_of(self._data).add, q * value if value != 1 else q, "addcdiv_")
    return inplace_result(self, E.addcdiv(self, tensor1, tensor2, value=value), "addcdiv_")


def unsqueeze_(self: Tensor, dim: int) -> Tensor:
    from .shape import unsqueeze

    r = unsqueeze(self.detach(), dim)
    self._data = r._data
    return self


def squeeze_(self: Tensor, dim=None) -> Tensor:
    from .shape import squeeze

    self._data = squeeze(self.detach(), dim)._data
    return self


def t_(self: Tensor) -> Tensor:
    from .shape import t

    self._data = t(self.detach())._data
    return self


def resize_(self: Tensor, *sizes) -> Tensor:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    n = int(np.prod(sizes))
    flat = self._data.reshape(-1)
    if flat.size >= n:
        self._data = flat[:n].reshape(sizes).copy()
    else:
        self._data = xp_of(flat).concatenate([flat, xp_of(flat).zeros(n - flat.size, flat.dtype)]).reshape(sizes)
    self._version[0] += 1
    return self
