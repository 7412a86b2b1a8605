"""The op table: one ``OpSpec`` per op form, in the spirit of torch's OpInfo.

Every entry names one way of calling an op (function, method, operator, reflected operator, in-place form) and
carries what the generic tests in ``test_ops.py`` need to exercise it:

- ``fn(lib, *inputs, **kwargs)``: the call, written once against the torch API; ``ours`` binds it to
  tinyautograd and ``theirs`` to torch (an entry whose two sides differ passes them separately);
- ``inputs``: a strategy of ``(shapes, kwargs)``: the shapes of the differentiable tensor inputs and the extra
  arguments drawn to fit them (dims, keepdim, exponents, shifts, k, ...). A NumPy array among the kwargs
  (index tensors, masks) becomes a tensor of each library on the test's device;
- ``domains``: where each input's values are drawn (log on positives, division away from 0, kinks avoided);
- ``dtypes``: the floating dtypes to run, ``int_dtypes``: integer/bool dtypes checked in forward only;
- ``grad`` / ``grad2`` / ``fd``: whether first derivatives, second derivatives and the finite-difference check
  apply.

A case Hypothesis once found failing is kept as an explicit example on its entry (``examples``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from hypothesis import assume, strategies as st
from hypothesis.extra import numpy as hnp

import tinyautograd
from tinyautograd.ops import shape as _ta_shape

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")

# ---------------------------------------------------------------------------------------------------------------
# value domains

@dataclass(frozen=True)
class Domain:
    """Where an input's values come from: a union of closed intervals, or one of a few special sets.

    ``kind`` 'interval' draws from ``intervals``; 'grid' draws small integer-valued numbers (ties and equality
    happen); 'special' mixes NaN and infinities into finite values; 'bool' draws True/False.
    """
    intervals: tuple = ((-2.0, 2.0),)
    kind: str = "interval"

    def elements(self, dtype: str, spaced: bool = False) -> st.SearchStrategy:
        """Values for one element. ``spaced`` draws multiples of 1/64 (exact in float32), so distinct values are
        far apart compared with finite-difference steps and never merge when cast to float32."""
        if dtype == "bool" or self.kind == "bool":
            return st.booleans()
        if self.kind == "grid":
            return st.integers(-2, 2).map(float) if dtype.startswith("float") else st.integers(-2, 2)
        if self.kind == "special":
            return st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(-2.0, 2.0))
        if dtype.startswith("float") and spaced:
            return st.one_of(*[st.integers(math.ceil(lo * SPACING), math.floor(hi * SPACING)).map(
                lambda k: k / SPACING) for lo, hi in self.intervals])
        if dtype.startswith("float"):
            return st.one_of(*[st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
                               for lo, hi in self.intervals])
        ints = [st.integers(math.ceil(lo), math.floor(hi)) for lo, hi in self.intervals
                if math.ceil(lo) <= math.floor(hi)]
        return st.one_of(*ints)


SPACING = 64
REAL = Domain()
POSITIVE = Domain(((0.2, 3.0),))
NONZERO = Domain(((-3.0, -0.3), (0.3, 3.0)))
OPEN_UNIT = Domain(((-0.9, 0.9),))
ABOVE_MINUS_ONE = Domain(((-0.8, 3.0),))
SMALL = Domain(((-1.2, 1.2),))
# a tensor exponent: torch's pow backward zeroes d/dbase where the exponent is exactly 0, which makes its second
# derivative there wrong (d2/dbase dexp of b**e is 1/b at e = 0); stay off that point
EXPONENT = Domain(((-2.0, -0.05), (0.05, 2.0)))
# kinks (abs, relu, sign) at 0: stay a margin away so the derivative is unique and finite differences are valid
NO_ZERO_KINK = Domain(((-2.0, -0.05), (0.05, 2.0)))
# floor/ceil/trunc jump at integers, round at half-integers
BETWEEN_INTEGERS = Domain(((-1.9, -1.1), (-0.9, -0.1), (0.1, 0.9), (1.1, 1.9)))
BETWEEN_HALVES = Domain(((-1.4, -0.6), (-0.4, 0.4), (0.6, 1.4)))
# clamp(min=-0.5, max=0.5): keep inputs off the bounds
OFF_CLAMP_BOUNDS = Domain(((-2.0, -0.6), (-0.4, 0.4), (0.6, 2.0)))
# maximum/minimum of two inputs: interleaved bands, so either side can win and ties never happen
BANDS_A = Domain(((-2.0, -1.6), (-1.2, -0.8), (-0.4, 0.0), (0.4, 0.8), (1.2, 1.6)))
BANDS_B = Domain(((-1.5, -1.3), (-0.7, -0.5), (0.1, 0.3), (0.9, 1.1), (1.7, 1.9)))
# remainder x % y: |x| < |y| keeps x / y away from the integers where the result jumps
REM_DIVIDEND = Domain(((-0.9, -0.2), (0.2, 0.9)))
REM_DIVISOR = Domain(((-2.0, -1.0), (1.0, 2.0)))
GRID = Domain(kind="grid")
SPECIAL = Domain(kind="special")
BOOL = Domain(kind="bool")


# ---------------------------------------------------------------------------------------------------------------
# the spec

@dataclass(frozen=True)
class Case:
    """One drawn call: the input arrays (in the test's dtype) and the extra arguments."""
    arrays: tuple
    kwargs: dict


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per table entry
class OpSpec:
    name: str
    ours: Callable
    theirs: Callable
    inputs: st.SearchStrategy
    n_inputs: int = 1
    domains: tuple = (REAL,)
    dtypes: tuple = FLOATS
    int_dtypes: tuple = ()
    grad: bool = True
    grad2: bool = True
    fd: bool = True
    unique: bool = False  # values drawn without repeats (ties would make argmax/sort/max(dim) ambiguous)
    examples: tuple = ()  # explicit (arrays-as-lists, kwargs) cases kept from failures

    def __repr__(self) -> str:
        return f"OpSpec({self.name})"

    def _repr_pretty_(self, printer, cycle) -> None:
        # Hypothesis prints failing arguments with this: the entry's name is what a reader needs
        printer.text(repr(self))


SPECS: list[OpSpec] = []


def spec(name: str, fn: Callable | None = None, *, ours: Callable | None = None, theirs: Callable | None = None,
         inputs: st.SearchStrategy, domains=None, n_inputs: int | None = None, **kw) -> OpSpec:
    """Register a table entry; ``fn(lib, *tensors, **kwargs)`` is bound to tinyautograd and to torch."""
    n = n_inputs if n_inputs is not None else (len(domains) if domains is not None else 1)
    if domains is None:
        domains = (REAL,) * n
    if len(domains) == 1 and n > 1:
        domains = domains * n
    s = OpSpec(name=name, ours=ours or functools.partial(fn, tinyautograd),
               theirs=theirs or functools.partial(fn, torch), inputs=inputs, n_inputs=n, domains=tuple(domains), **kw)
    if any(existing.name == name for existing in SPECS):
        raise ValueError(f"duplicate op spec name {name}")
    SPECS.append(s)
    return s


@functools.lru_cache(maxsize=None)
def case_strategy(s: OpSpec, dtype: str) -> st.SearchStrategy:
    """Draw a Case for spec ``s`` in ``dtype`` (built once per pair: making a strategy is not free)."""

    @st.composite
    def draw_case(draw):
        shapes, kwargs = draw(s.inputs)
        arrays = []
        for shape, dom in zip(shapes, s.domains):
            arr = draw(_array_strategy(dom, dtype, tuple(shape), s.unique))
            arrays.append(np.asarray(arr).astype(dtype))
        return Case(tuple(arrays), kwargs)

    return draw_case()


@functools.lru_cache(maxsize=None)
def _array_strategy(dom: Domain, dtype: str, shape: tuple, unique: bool) -> st.SearchStrategy:
    # float values are drawn in float64 and cast, so every domain bound is exact
    np_dt = np.float64 if dtype.startswith("float") else np.dtype(dtype)
    return hnp.arrays(np_dt, shape, elements=dom.elements(dtype, spaced=unique),
                      unique=unique and dtype.startswith("float"))


def example_case(s: OpSpec, dtype: str, arrays, kwargs) -> Case:
    """An explicit example (arrays given as nested lists) in ``dtype``."""
    return Case(tuple(np.asarray(a, dtype=np.float64).astype(dtype) for a in arrays), dict(kwargs))


# ---------------------------------------------------------------------------------------------------------------
# shape strategies: each yields (shapes, kwargs)

@functools.lru_cache(maxsize=None)
def _shape(min_dims: int = 0, max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    # half the draws have no empty dims, the other half may (size-0 tensors are an edge case, not the norm)
    return st.one_of(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side),
                     hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side))


def unary(min_dims: int = 0, max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    return _shape(min_dims, max_dims, max_side).map(lambda s: ((s,), {}))


def broadcast(n: int, max_dims: int = 3) -> st.SearchStrategy:
    """``n`` mutually broadcastable shapes (0-d, size-1 and size-0 dims included)."""
    strat = st.one_of(
        hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims, min_side=1, max_side=3),
        hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims, min_side=0, max_side=3))
    return strat.map(lambda r: (tuple(r.input_shapes), {}))


@st.composite
def shape_broadcasting_to(draw, target: tuple) -> tuple:
    """A shape that broadcasts to exactly ``target``: a suffix of it with some sides replaced by 1."""
    k = draw(st.integers(0, len(target)))
    suffix = target[len(target) - k:]
    return tuple(1 if draw(st.booleans()) else s for s in suffix)


@st.composite
def into(draw, n_extra: int = 1, min_dims: int = 0):
    """A target shape and ``n_extra`` shapes that broadcast into it (in-place ops, copy_)."""
    target = draw(_shape(min_dims=min_dims))
    return (target,) + tuple(draw(shape_broadcasting_to(target)) for _ in range(n_extra)), {}


@functools.lru_cache(maxsize=None)
def _dim(ndim: int) -> st.SearchStrategy:
    n = max(ndim, 1)
    return st.integers(-n, n - 1)


@st.composite
def _dims(draw, ndim: int, allow_none: bool = True, allow_tuple: bool = True):
    options = ["int"] + (["none"] if allow_none else []) + (["tuple"] if allow_tuple and ndim > 0 else [])
    kind = draw(st.sampled_from(options))
    if kind == "none":
        return None
    if kind == "int":
        return draw(_dim(ndim))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def _reduced_count(shape: tuple, dim) -> int:
    if dim is None:
        axes = range(len(shape))
    else:
        axes = [d % max(len(shape), 1) for d in ((dim,) if isinstance(dim, int) else dim)] if shape else []
    n = 1
    for a in axes:
        n *= shape[a]
    return n


@st.composite
def reduction(draw, allow_none: bool = True, allow_tuple: bool = True, keepdim: bool = True, min_count: int = 0,
              nonempty: bool = False):
    """A shape, a ``dim`` (None, int or tuple) and ``keepdim``; ``min_count`` elements reduced at least."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3) if nonempty else _shape())
    dim = draw(_dims(len(shape), allow_none, allow_tuple))
    if min_count:
        assume(_reduced_count(shape, dim) >= min_count)
    kwargs = {"dim": dim}
    if keepdim:
        kwargs["keepdim"] = draw(st.booleans())
    return (shape,), kwargs


@st.composite
def along_dim(draw, min_dims: int = 0, nonempty_dim: bool = False, extra: Callable | None = None):
    """A shape and one ``dim`` in it (plus ``extra(draw, shape, dim)`` kwargs)."""
    shape = draw(_shape(min_dims=min_dims))
    dim = draw(_dim(len(shape)))
    if nonempty_dim and shape:
        shape = tuple(max(s, 1) if i == dim % len(shape) else s for i, s in enumerate(shape))
    kwargs = {"dim": dim}
    if extra is not None:
        kwargs.update(extra(draw, shape, dim))
    return (shape,), kwargs


@st.composite
def matmul_shapes(draw, a_dims=(1, 2, 3, 4), b_dims=(1, 2, 3, 4), same_batch: bool = False):
    """Compatible matmul operand shapes: 1-D, 2-D and batched, with batch broadcasting."""
    da = draw(st.sampled_from(a_dims))
    db = draw(st.sampled_from(b_dims))
    n, k, m = (draw(st.integers(0 if draw(st.booleans()) else 1, 3)) for _ in range(3))
    batch_a_nd, batch_b_nd = max(da - 2, 0), max(db - 2, 0)
    if same_batch:
        batch = draw(hnp.array_shapes(min_dims=batch_a_nd, max_dims=batch_a_nd, min_side=1, max_side=3))
        ba, bb = batch, batch
    else:
        r = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3))
        ba = (r.input_shapes[0] + (1, 1))[:batch_a_nd] if batch_a_nd else ()
        bb = (r.input_shapes[1] + (1, 1))[:batch_b_nd] if batch_b_nd else ()
        # keep the batch dims broadcastable: pad to a common length from the right
        ba, bb = _align_batches(ba, bb)
    a = (k,) if da == 1 else ba + (n, k)
    b = (k,) if db == 1 else bb + (k, m)
    return (a, b), {}


def _align_batches(ba: tuple, bb: tuple):
    fixed_a, fixed_b = list(ba), list(bb)
    for i in range(1, min(len(ba), len(bb)) + 1):
        x, y = fixed_a[-i], fixed_b[-i]
        if x != y and x != 1 and y != 1:
            fixed_b[-i] = 1
    return tuple(fixed_a), tuple(fixed_b)


def fixed(*shapes, **kwargs) -> st.SearchStrategy:
    return st.just((tuple(shapes), kwargs))


# ---------------------------------------------------------------------------------------------------------------
# elementwise arithmetic: operators, functions, methods, reflected forms

B2 = broadcast(2)
U = unary()

spec("add", lambda L, x, y: x + y, inputs=B2, n_inputs=2, int_dtypes=INTS)
spec("add_fn_alpha", lambda L, x, y: L.add(x, y, alpha=2), inputs=B2, n_inputs=2, int_dtypes=INTS)
spec("add_method", lambda L, x, y: x.add(y), inputs=B2, n_inputs=2)
spec("add_scalar", lambda L, x: x + 2.5, inputs=U, int_dtypes=INTS)
spec("radd_scalar", lambda L, x: 2 + x, inputs=U, int_dtypes=INTS)
spec("sub", lambda L, x, y: x - y, inputs=B2, n_inputs=2, int_dtypes=INTS)
spec("sub_fn_alpha", lambda L, x, y: L.sub(x, y, alpha=3), inputs=B2, n_inputs=2, int_dtypes=INTS)
spec("sub_method", lambda L, x, y: x.sub(y), inputs=B2, n_inputs=2)
spec("sub_scalar", lambda L, x: x - 1.5, inputs=U)
spec("rsub_scalar", lambda L, x: 1.5 - x, inputs=U, int_dtypes=INTS)
spec("mul", lambda L, x, y: x * y, inputs=B2, n_inputs=2, int_dtypes=INTS)
spec("mul_fn", lambda L, x, y: L.mul(x, y), inputs=B2, n_inputs=2)
spec("mul_method", lambda L, x, y: x.mul(y), inputs=B2, n_inputs=2)
spec("mul_scalar", lambda L, x: x * 0.5, inputs=U, int_dtypes=INTS)
spec("rmul_scalar", lambda L, x: 3 * x, inputs=U, int_dtypes=INTS)
spec("div", lambda L, x, y: x / y, inputs=B2, domains=(REAL, NONZERO), int_dtypes=INTS)
spec("div_fn", lambda L, x, y: L.div(x, y), inputs=B2, domains=(REAL, NONZERO))
spec("div_method", lambda L, x, y: x.div(y), inputs=B2, domains=(REAL, NONZERO))
spec("div_scalar", lambda L, x: x / 4, inputs=U, int_dtypes=INTS)
spec("rdiv_scalar", lambda L, x: 2 / x, inputs=U, domains=(NONZERO,), int_dtypes=INTS)
spec("div_trunc", lambda L, x, y: L.div(x, y, rounding_mode="trunc"), inputs=B2, domains=(REAL, NONZERO),
     int_dtypes=INTS, grad2=False, fd=False,
     examples=((([0.0], [-1.0]), {}),))  # torch records a zero gradient: the result requires grad
spec("floordiv", lambda L, x, y: x // y, inputs=B2, domains=(REAL, NONZERO), int_dtypes=INTS, grad=False,
     examples=((([[1.5]], [2.0]), {}),))  # requires grad like torch (whose backward then refuses)
spec("floordiv_scalar", lambda L, x: x // 2, inputs=U, int_dtypes=INTS, grad=False)
spec("rfloordiv_scalar", lambda L, x: 2.5 // x, inputs=U, domains=(NONZERO,), grad=False)
spec("remainder", lambda L, x, y: x % y, inputs=B2, domains=(REM_DIVIDEND, REM_DIVISOR))
spec("remainder_fn", lambda L, x, y: L.remainder(x, y), inputs=B2, domains=(REM_DIVIDEND, REM_DIVISOR))
spec("remainder_int", lambda L, x, y: x % y, inputs=B2, domains=(REAL, NONZERO), dtypes=(), int_dtypes=INTS)
spec("remainder_scalar", lambda L, x: x % 1.5, inputs=U, domains=(REM_DIVIDEND,), int_dtypes=INTS)
spec("rremainder_scalar", lambda L, x: 0.5 % x, inputs=U, domains=(REM_DIVISOR,))
spec("pow", lambda L, x, y: x ** y, inputs=B2, domains=(POSITIVE, EXPONENT))
spec("pow_fn", lambda L, x, y: L.pow(x, y), inputs=B2, domains=(POSITIVE, EXPONENT))
spec("pow_method", lambda L, x, y: x.pow(y), inputs=B2, domains=(POSITIVE, EXPONENT))
spec("pow_square", lambda L, x: x ** 2, inputs=U, int_dtypes=INTS)
spec("pow_cube", lambda L, x: x ** 3, inputs=U, int_dtypes=INTS)
spec("pow_zero", lambda L, x: x ** 0, inputs=U, int_dtypes=INTS)
spec("pow_sqrt", lambda L, x: x ** 0.5, inputs=U, domains=(POSITIVE,))
spec("pow_negative_fraction", lambda L, x: L.pow(x, -1.5), inputs=U, domains=(POSITIVE,))
spec("rpow_scalar", lambda L, x: 2 ** x, inputs=U, int_dtypes=INTS,
     examples=((([-1.0, 0.0, 3.0],), {}),))  # integer 2 ** -1 truncates to 0 (NumPy refused)
spec("pow_int_tensors", lambda L, x, y: x ** y, inputs=B2, dtypes=(), int_dtypes=INTS, grad=False,
     examples=((([2, 1, -1, -1, 0], [-1, -3, -3, -2, -1]), {}),))
spec("rpow_float_scalar", lambda L, x: 0.5 ** x, inputs=U)
spec("neg", lambda L, x: -x, inputs=U, int_dtypes=INTS)
spec("neg_fn", lambda L, x: L.neg(x), inputs=U)
spec("abs", lambda L, x: abs(x), inputs=U, domains=(NO_ZERO_KINK,), int_dtypes=INTS)
spec("abs_fn", lambda L, x: L.abs(x), inputs=U, domains=(NO_ZERO_KINK,))

# ---------------------------------------------------------------------------------------------------------------
# unary math: function and method forms

# name, domain; integer inputs are checked in forward too (float functions of ints give float32)
_UNARY = [
    ("exp", SMALL), ("log", POSITIVE), ("log1p", ABOVE_MINUS_ONE), ("expm1", SMALL), ("sqrt", POSITIVE),
    ("rsqrt", POSITIVE), ("sin", REAL), ("cos", REAL), ("tan", SMALL), ("tanh", REAL), ("sigmoid", REAL),
    ("relu", NO_ZERO_KINK), ("square", REAL), ("reciprocal", NONZERO), ("sign", NO_ZERO_KINK),
    ("asin", OPEN_UNIT), ("acos", OPEN_UNIT),
]
_UNARY_EXAMPLES = {"sigmoid": (((0.3,), {}),)}  # a 0-d input once broke the fast sigmoid
for _name, _dom in _UNARY:
    spec(_name, lambda L, x, _n=_name: getattr(L, _n)(x), inputs=U, domains=(_dom,), int_dtypes=INTS,
         examples=_UNARY_EXAMPLES.get(_name, ()))
    spec(f"{_name}_method", lambda L, x, _n=_name: getattr(x, _n)(), inputs=U, domains=(_dom,))

spec("floor", lambda L, x: L.floor(x), inputs=U, domains=(BETWEEN_INTEGERS,), int_dtypes=INTS)
spec("ceil", lambda L, x: x.ceil(), inputs=U, domains=(BETWEEN_INTEGERS,), int_dtypes=INTS)
spec("round", lambda L, x: L.round(x), inputs=U, domains=(BETWEEN_HALVES,), int_dtypes=INTS)
spec("round_method", lambda L, x: x.round(), inputs=U, domains=(BETWEEN_HALVES,))
spec("round_ties", lambda L, x: L.round(x / 2), inputs=U, domains=(GRID,), grad=False)


def _clamp_args(draw, shape, dim=None):
    which = draw(st.sampled_from(["both", "min", "max"]))
    return {"min": -0.5 if which != "max" else None, "max": 0.5 if which != "min" else None}


@st.composite
def _clamp_inputs(draw):
    (shape,), _ = draw(U)
    return (shape,), _clamp_args(draw, shape)


spec("clamp", lambda L, x, min, max: L.clamp(x, min=min, max=max), inputs=_clamp_inputs(),
     domains=(OFF_CLAMP_BOUNDS,), int_dtypes=INTS)
spec("clamp_method", lambda L, x, min, max: x.clamp(min, max), inputs=_clamp_inputs(), domains=(OFF_CLAMP_BOUNDS,))
spec("clip", lambda L, x, min, max: L.clip(x, min, max), inputs=_clamp_inputs(), domains=(OFF_CLAMP_BOUNDS,))
spec("clamp_tensor_bounds", lambda L, x, lo, hi: L.clamp(x, min=lo, max=hi), inputs=broadcast(3),
     domains=(Domain(((-2.0, -1.1), (-0.85, 0.85), (1.1, 2.0))), Domain(((-1.0, -0.95),)),
              Domain(((0.95, 1.0),))))
spec("maximum", lambda L, x, y: L.maximum(x, y), inputs=B2, domains=(BANDS_A, BANDS_B), int_dtypes=INTS)
spec("maximum_method", lambda L, x, y: x.maximum(y), inputs=B2, domains=(BANDS_A, BANDS_B))
spec("max_binary", lambda L, x, y: L.max(x, y), inputs=B2, domains=(BANDS_A, BANDS_B))
spec("minimum", lambda L, x, y: L.minimum(x, y), inputs=B2, domains=(BANDS_A, BANDS_B), int_dtypes=INTS)
spec("min_binary", lambda L, x, y: L.min(x, y), inputs=B2, domains=(BANDS_A, BANDS_B))
spec("maximum_ties", lambda L, x, y: L.maximum(x, y), inputs=B2, domains=(GRID, GRID), fd=False)


@st.composite
def _where_inputs(draw):
    shapes, _ = draw(broadcast(3))
    cond = draw(hnp.arrays(np.bool_, shapes[2]))
    return shapes[:2], {"cond": cond}


spec("where", lambda L, x, y, cond: L.where(cond, x, y), inputs=_where_inputs(), n_inputs=2, int_dtypes=INTS)
spec("where_method", lambda L, x, y, cond: x.where(cond, y), inputs=_where_inputs(), n_inputs=2)
spec("where_scalar", lambda L, x, y, cond: L.where(cond, x, 0.0), inputs=_where_inputs(), n_inputs=2)


@st.composite
def _masked_fill_inputs(draw, with_value: bool = False):
    shape = draw(_shape())
    mask = draw(hnp.arrays(np.bool_, draw(shape_broadcasting_to(shape))))
    return ((shape, ()) if with_value else (shape,)), {"mask": mask}


spec("masked_fill", lambda L, x, mask: x.masked_fill(mask, 1.5), inputs=_masked_fill_inputs(), int_dtypes=INTS)
spec("masked_fill_tensor_value", lambda L, x, v, mask: L.masked_fill(x, mask, v),
     inputs=_masked_fill_inputs(with_value=True), n_inputs=2)

# ---------------------------------------------------------------------------------------------------------------
# comparisons and logic: bool results, no gradient

for _name, _op in [("lt", lambda x, y: x < y), ("le", lambda x, y: x <= y), ("gt", lambda x, y: x > y),
                   ("ge", lambda x, y: x >= y), ("eq", lambda x, y: x == y), ("ne", lambda x, y: x != y)]:
    spec(f"cmp_{_name}", lambda L, x, y, _op=_op: _op(x, y), inputs=B2, domains=(GRID, GRID), int_dtypes=INTS,
         grad=False)
    spec(f"cmp_{_name}_fn", lambda L, x, y, _n=_name: getattr(L, _n)(x, y), inputs=B2, domains=(GRID, GRID),
         grad=False)
spec("cmp_eq_scalar", lambda L, x: x == 1.0, inputs=U, domains=(GRID,), int_dtypes=INTS, grad=False)
spec("cmp_rgt_scalar", lambda L, x: 0 > x, inputs=U, domains=(GRID,), int_dtypes=INTS, grad=False)
for _name in ("logical_and", "logical_or", "logical_xor"):
    spec(_name, lambda L, x, y, _n=_name: getattr(L, _n)(x, y), inputs=B2, domains=(GRID, GRID), grad=False,
         int_dtypes=("bool",))
spec("logical_not", lambda L, x: L.logical_not(x), inputs=U, domains=(GRID,), grad=False, int_dtypes=("bool",))
spec("bool_and_operator", lambda L, x, y: x & y, inputs=B2, dtypes=(), int_dtypes=("bool",) + INTS,
     domains=(GRID, GRID), grad=False)
spec("bool_or_operator", lambda L, x, y: x | y, inputs=B2, dtypes=(), int_dtypes=("bool",), domains=(GRID, GRID),
     grad=False)
spec("bool_invert_operator", lambda L, x: ~x, inputs=U, dtypes=(), int_dtypes=("bool",), grad=False)
for _name in ("isnan", "isinf", "isfinite"):
    spec(_name, lambda L, x, _n=_name: getattr(L, _n)(x), inputs=U, domains=(SPECIAL,), grad=False)


def _any_all_inputs():
    return reduction(allow_tuple=False)


spec("any", lambda L, x, dim, keepdim: x.any() if dim is None else L.any(x, dim, keepdim), inputs=_any_all_inputs(),
     domains=(GRID,), grad=False, int_dtypes=("bool",) + INTS)
spec("all", lambda L, x, dim, keepdim: L.all(x) if dim is None else x.all(dim, keepdim), inputs=_any_all_inputs(),
     domains=(GRID,), grad=False, int_dtypes=("bool",) + INTS)

# ---------------------------------------------------------------------------------------------------------------
# reductions

spec("sum", lambda L, x, dim, keepdim: L.sum(x, dim, keepdim), inputs=reduction(), int_dtypes=INTS + ("bool",))
spec("sum_all_method", lambda L, x: x.sum(), inputs=U, int_dtypes=INTS)
spec("mean", lambda L, x, dim, keepdim: x.mean(dim, keepdim), inputs=reduction(),
     examples=((([],), {"dim": 0, "keepdim": False}),))  # empty: no NaN in double backward
spec("mean_all", lambda L, x: L.mean(x), inputs=U)
spec("prod", lambda L, x, dim, keepdim: L.prod(x) if dim is None else L.prod(x, dim, keepdim),
     inputs=reduction(allow_tuple=False), domains=(GRID,), int_dtypes=INTS,
     examples=((([0.0, 0.0],), {"dim": 0, "keepdim": False}),  # two zeros: a nonzero mixed 2nd derivative
               ((0.0,), {"dim": None, "keepdim": False})))
spec("prod_nonzero", lambda L, x, dim, keepdim: x.prod() if dim is None else x.prod(dim, keepdim),
     inputs=reduction(allow_tuple=False), domains=(NONZERO,))
spec("max_all", lambda L, x: x.max(), inputs=unary(), unique=True, int_dtypes=INTS)
spec("min_all", lambda L, x: L.min(x), inputs=unary(), unique=True, int_dtypes=INTS)
spec("max_all_ties", lambda L, x: x.max(), inputs=unary(), domains=(GRID,), fd=False)
spec("max_dim", lambda L, x, dim, keepdim: L.max(x, dim, keepdim), inputs=reduction(allow_none=False,
     allow_tuple=False), unique=True, int_dtypes=INTS)
spec("max_dim_method_kw", lambda L, x, dim, keepdim: x.max(dim=dim, keepdim=keepdim),
     inputs=reduction(allow_none=False, allow_tuple=False), unique=True)
spec("min_dim", lambda L, x, dim, keepdim: x.min(dim, keepdim), inputs=reduction(allow_none=False,
     allow_tuple=False), unique=True, int_dtypes=INTS)
spec("amax", lambda L, x, dim, keepdim: L.amax(x, () if dim is None else dim, keepdim), inputs=reduction(),
     unique=True, int_dtypes=INTS,
     examples=((([],), {"dim": None, "keepdim": False}),))  # RuntimeError, as torch, not IndexError
spec("amin", lambda L, x, dim, keepdim: x.amin(() if dim is None else dim, keepdim), inputs=reduction(),
     unique=True)
spec("amax_ties", lambda L, x, dim, keepdim: L.amax(x, () if dim is None else dim, keepdim), inputs=reduction(),
     domains=(GRID,), fd=False)
spec("argmax", lambda L, x, dim, keepdim: L.argmax(x, dim, keepdim), inputs=reduction(allow_tuple=False,
     nonempty=True), unique=True, int_dtypes=INTS, grad=False)
spec("argmin", lambda L, x, dim, keepdim: x.argmin(dim, keepdim), inputs=reduction(allow_tuple=False,
     nonempty=True), unique=True, grad=False)


@st.composite
def _var_inputs(draw, min_count: int = 1):
    (shape,), kw = draw(reduction(min_count=min_count))
    correction = draw(st.sampled_from([0, 1, 2]))
    assume(_reduced_count(shape, kw["dim"]) > correction)
    kw["correction"] = correction
    return (shape,), kw


@st.composite
def _var_unbiased_inputs(draw):
    (shape,), kw = draw(reduction(allow_none=False, min_count=2))
    kw["unbiased"] = draw(st.booleans())
    return (shape,), kw


spec("var", lambda L, x, dim, keepdim, correction: L.var(x, dim=dim, correction=correction, keepdim=keepdim),
     inputs=_var_inputs(), unique=True)
spec("var_unbiased", lambda L, x, dim, keepdim, unbiased: x.var(dim, unbiased, keepdim),
     inputs=_var_unbiased_inputs(), unique=True)
# std of a single value is 0, where torch's second derivative is NaN: draw at least two values
spec("std", lambda L, x, dim, keepdim, correction: x.std(dim=dim, correction=correction, keepdim=keepdim),
     inputs=_var_inputs(min_count=2), unique=True)
spec("std_single_value", lambda L, x: L.std(x, correction=0), inputs=fixed(()), grad2=False)
spec("std_unbiased", lambda L, x, dim, keepdim, unbiased: L.std(x, dim, unbiased, keepdim),
     inputs=_var_unbiased_inputs(), unique=True)
spec("std_all", lambda L, x: x.std(), inputs=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3)
     .map(lambda s: ((s,), {})), unique=True)


@st.composite
def _norm_inputs(draw):
    (shape,), kw = draw(reduction())
    # p=3 on an empty input: torch's double backward w.r.t. the upstream gradient divides an empty sum by norm**2 = 0
    # and gives NaN; ours gives the exact 0 (an empty tensor's gradient does not depend on anything)
    kw["p"] = draw(st.sampled_from([2, "fro", 1, 3, math.inf] if math.prod(shape) else [2, "fro", 1, math.inf]))
    return (shape,), kw


spec("norm", lambda L, x, p, dim, keepdim: L.norm(x, p, dim, keepdim), inputs=_norm_inputs(),
     domains=(NO_ZERO_KINK,), unique=True,
     examples=((([],), {"p": math.inf, "dim": 0, "keepdim": False}),  # RuntimeError, as torch
               (([[[-0.0625]]],), {"p": "fro", "dim": (0, 1, 2), "keepdim": False})))  # 'fro' wants 2 dims
spec("norm_method", lambda L, x: x.norm(), inputs=U, domains=(NO_ZERO_KINK,))
spec("logsumexp", lambda L, x, dim, keepdim: L.logsumexp(x, dim, keepdim),
     inputs=reduction(allow_none=False))
spec("logsumexp_method", lambda L, x, dim, keepdim: x.logsumexp(dim, keepdim=keepdim),
     inputs=reduction(allow_none=False), domains=(Domain(((-30.0, 30.0),)),))
spec("softmax", lambda L, x, dim: L.softmax(x, dim), inputs=along_dim())
spec("softmax_method", lambda L, x, dim: x.softmax(dim=dim), inputs=along_dim(), domains=(Domain(((-40.0, 40.0),)),))
spec("log_softmax", lambda L, x, dim: L.log_softmax(x, dim), inputs=along_dim())
spec("log_softmax_method", lambda L, x, dim: x.log_softmax(dim), inputs=along_dim(),
     domains=(Domain(((-40.0, 40.0),)),))
spec("cumsum", lambda L, x, dim: L.cumsum(x, dim), inputs=along_dim(), int_dtypes=INTS,
     examples=(((0.5,), {"dim": 0}),))  # backward of a 0-d cumsum
spec("cumsum_method", lambda L, x, dim: x.cumsum(dim=dim), inputs=along_dim())

# ---------------------------------------------------------------------------------------------------------------
# matrix products

spec("matmul", lambda L, x, y: x @ y, inputs=matmul_shapes(), n_inputs=2,
     examples=((([0.5], [2.0]), {}),))  # 1-D @ 1-D: a 0-d gradient
spec("matmul_fn", lambda L, x, y: L.matmul(x, y), inputs=matmul_shapes(), n_inputs=2)
spec("mm", lambda L, x, y: L.mm(x, y), inputs=matmul_shapes(a_dims=(2,), b_dims=(2,)), n_inputs=2)
spec("mm_method", lambda L, x, y: x.mm(y), inputs=matmul_shapes(a_dims=(2,), b_dims=(2,)), n_inputs=2)
spec("bmm", lambda L, x, y: L.bmm(x, y), inputs=matmul_shapes(a_dims=(3,), b_dims=(3,), same_batch=True),
     n_inputs=2)
spec("dot", lambda L, x, y: L.dot(x, y), inputs=matmul_shapes(a_dims=(1,), b_dims=(1,)), n_inputs=2,
     examples=((([0.5, 1.0], [2.0, -1.0]), {}),))
spec("dot_method", lambda L, x, y: x.dot(y), inputs=matmul_shapes(a_dims=(1,), b_dims=(1,)), n_inputs=2)


@st.composite
def _outer_inputs(draw):
    return (draw(_shape(1, 1)), draw(_shape(1, 1))), {}


spec("outer", lambda L, x, y: L.outer(x, y), inputs=_outer_inputs(), n_inputs=2)


@st.composite
def _einsum_inputs(draw):
    eq, letters = draw(st.sampled_from([
        ("ij,jk->ik", ("ij", "jk")), ("bij,bjk->bik", ("bij", "bjk")), ("i,i->", ("i", "i")),
        ("ij->ji", ("ij",)), ("ij->", ("ij",)), ("ij,j->i", ("ij", "j")), ("i,j->ij", ("i", "j")),
        ("ijk->kj", ("ijk",)), ("...ij,...jk->...ik", ("aij", "ajk")), ("ij,ij->i", ("ij", "ij")),
        ("ii->i", ("ii",)), ("ii", ("ii",)), ("iij->j", ("iij",)),
    ]))
    sizes = {c: draw(st.integers(1, 3)) for c in "abijk"}
    return tuple(tuple(sizes[c] for c in spec_) for spec_ in letters), {"equation": eq}


spec("einsum_unary", lambda L, x, equation: L.einsum(equation, x),
     inputs=_einsum_inputs().filter(lambda c: len(c[0]) == 1),
     examples=((([[0.5, 1.0], [2.0, -1.0]],), {"equation": "ii->i"}),  # repeated subscripts: diagonals
               (([[0.5, 1.0], [2.0, -1.0]],), {"equation": "ii"}),
               (([[[0.5], [1.0]], [[2.0], [-1.0]]],), {"equation": "iij->j"})))
spec("einsum_binary", lambda L, x, y, equation: L.einsum(equation, x, y),
     inputs=_einsum_inputs().filter(lambda c: len(c[0]) == 2), n_inputs=2)

# ---------------------------------------------------------------------------------------------------------------
# shape ops


def _prime_factors(n: int) -> list:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def _reshape_inputs(draw):
    shape = draw(_shape())
    numel = int(np.prod(shape))
    if numel == 0:
        target = draw(st.sampled_from([(0,), (0, 2), (3, 0), tuple(reversed(shape))]))
        return (shape,), {"shape": target}
    factors = draw(st.permutations(_prime_factors(numel)))
    cuts = sorted(draw(st.lists(st.integers(0, len(factors)), max_size=3)))
    groups, prev = [], 0
    for c in cuts + [len(factors)]:
        groups.append(int(np.prod(factors[prev:c])) if c > prev else 1)
        prev = max(prev, c)
    target = groups
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return (shape,), {"shape": tuple(target)}


spec("reshape", lambda L, x, shape: x.reshape(shape), inputs=_reshape_inputs(), int_dtypes=INTS)
spec("reshape_fn_varargs", lambda L, x, shape: L.reshape(x, shape), inputs=_reshape_inputs())
spec("view", lambda L, x, shape: x.view(*shape), inputs=_reshape_inputs())


@st.composite
def _view_as_inputs(draw):
    (shape,), kw = draw(_reshape_inputs())
    target = tuple(kw["shape"])
    numel = int(np.prod(shape))
    if -1 in target:
        known = int(np.prod([t for t in target if t != -1]))
        target = tuple(numel // known if t == -1 else t for t in target)
    return (shape,), {"other": np.zeros(target)}


spec("view_as", lambda L, x, other: x.view_as(other), inputs=_view_as_inputs())
spec("view_noncontiguous", lambda L, x: x.transpose(0, -1).view(-1), inputs=unary(min_dims=2), grad2=False)


@st.composite
def _flatten_inputs(draw):
    shape = draw(_shape())
    nd = max(len(shape), 1)
    a, b = sorted([draw(st.integers(-nd, nd - 1)) % nd, draw(st.integers(-nd, nd - 1)) % nd])
    return (shape,), {"start_dim": a, "end_dim": b - nd if draw(st.booleans()) else b}


spec("flatten", lambda L, x, start_dim, end_dim: L.flatten(x, start_dim, end_dim), inputs=_flatten_inputs())
spec("flatten_method_all", lambda L, x: x.flatten(), inputs=U, int_dtypes=INTS)


@st.composite
def _unflatten_inputs(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    dim = draw(_dim(len(shape)))
    n = shape[dim]
    factors = _prime_factors(n)
    sizes = [int(np.prod(factors[:1])), int(np.prod(factors[1:]))] if factors else [1, 1]
    if draw(st.booleans()):
        sizes[0] = -1
    return (shape,), {"dim": dim, "sizes": tuple(sizes)}


spec("unflatten", lambda L, x, dim, sizes: x.unflatten(dim, sizes), inputs=_unflatten_inputs())


@st.composite
def _squeeze_inputs(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=2))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or not shape:
        return (shape,), {"dim": None}
    if kind == "int":
        return (shape,), {"dim": draw(_dim(len(shape)))}
    return (shape,), {"dim": tuple(draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)))}


spec("squeeze", lambda L, x, dim: x.squeeze() if dim is None else L.squeeze(x, dim), inputs=_squeeze_inputs(),
     int_dtypes=INTS)
spec("unsqueeze", lambda L, x, dim: x.unsqueeze(dim), inputs=_shape().flatmap(
    lambda s: st.integers(-len(s) - 1, len(s)).map(lambda d: ((s,), {"dim": d}))), int_dtypes=INTS)


@st.composite
def _transpose_inputs(draw):
    shape = draw(_shape())
    return (shape,), {"dim0": draw(_dim(len(shape))), "dim1": draw(_dim(len(shape)))}


spec("transpose", lambda L, x, dim0, dim1: L.transpose(x, dim0, dim1), inputs=_transpose_inputs(), int_dtypes=INTS)
spec("transpose_method", lambda L, x, dim0, dim1: x.transpose(dim0, dim1), inputs=_transpose_inputs())


@st.composite
def _permute_inputs(draw):
    shape = draw(_shape())
    perm = draw(st.permutations(range(len(shape))))
    return (shape,), {"dims": tuple(p - len(shape) if draw(st.booleans()) else p for p in perm)}


spec("permute", lambda L, x, dims: x.permute(*dims), inputs=_permute_inputs(), int_dtypes=INTS,
     examples=(((0.5,), {"dims": ()}),))  # x.permute() is a TypeError, as in torch
spec("permute_fn", lambda L, x, dims: L.permute(x, dims), inputs=_permute_inputs())
spec("t", lambda L, x: x.t(), inputs=unary(max_dims=2))
spec("t_fn", lambda L, x: L.t(x), inputs=unary(max_dims=2))
spec("T", lambda L, x: x.T, inputs=unary(min_dims=2, max_dims=2))
spec("mT", lambda L, x: x.mT, inputs=unary(min_dims=2, max_dims=4))


@st.composite
def _expand_inputs(draw):
    target = draw(_shape(max_dims=4))
    shape = draw(shape_broadcasting_to(target))
    lead = len(target) - len(shape)
    sizes = tuple(-1 if i >= lead and shape[i - lead] == t and draw(st.booleans()) else t
                  for i, t in enumerate(target))
    return (shape,), {"sizes": sizes}


spec("expand", lambda L, x, sizes: x.expand(*sizes), inputs=_expand_inputs(), int_dtypes=INTS)
spec("expand_tuple", lambda L, x, sizes: x.expand(sizes), inputs=_expand_inputs())
spec("broadcast_to", lambda L, x, sizes: L.broadcast_to(x, sizes), inputs=_expand_inputs())


@st.composite
def _expand_as_inputs(draw):
    (shape,), kw = draw(_expand_inputs())
    lead = len(kw["sizes"]) - len(shape)
    target = tuple(shape[i - lead] if s == -1 else s for i, s in enumerate(kw["sizes"]))
    return (shape,), {"other": np.zeros(target)}


spec("expand_as", lambda L, x, other: x.expand_as(other), inputs=_expand_as_inputs())


@st.composite
def _repeat_inputs(draw, at_least_ndim: bool = True):
    shape = draw(_shape())
    n = draw(st.integers(len(shape) if at_least_ndim else 0, len(shape) + 2))
    return (shape,), {"reps": tuple(draw(st.integers(0 if draw(st.booleans()) else 1, 3)) for _ in range(n))}


spec("repeat", lambda L, x, reps: x.repeat(*reps), inputs=_repeat_inputs(), int_dtypes=INTS)
spec("tile", lambda L, x, reps: L.tile(x, reps), inputs=_repeat_inputs(at_least_ndim=False))


@st.composite
def _flip_inputs(draw):
    shape = draw(_shape(min_dims=1))
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=0, max_size=len(shape), unique=True))
    return (shape,), {"dims": tuple(d - len(shape) if draw(st.booleans()) else d for d in dims)}


spec("flip", lambda L, x, dims: L.flip(x, dims), inputs=_flip_inputs(), int_dtypes=INTS)
spec("flip_method", lambda L, x, dims: x.flip(dims), inputs=_flip_inputs())


@st.composite
def _roll_inputs(draw):
    shape = draw(_shape(min_dims=1))
    if draw(st.booleans()):
        return (shape,), {"shifts": draw(st.integers(-5, 5)), "dims": None}
    dims = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
    return (shape,), {"shifts": tuple(draw(st.integers(-5, 5)) for _ in dims), "dims": tuple(dims)}


spec("roll", lambda L, x, shifts, dims: L.roll(x, shifts, dims), inputs=_roll_inputs(), int_dtypes=INTS)


@st.composite
def _cat_inputs(draw, same: bool = False):
    base = draw(_shape(min_dims=1))
    dim = draw(_dim(len(base)))
    shapes = []
    for _ in range(3):
        s = list(base)
        if not same:
            s[dim] = draw(st.integers(0, 3))
        shapes.append(tuple(s))
    return tuple(shapes), {"dim": dim}


spec("cat", lambda L, x, y, z, dim: L.cat([x, y, z], dim), inputs=_cat_inputs(), n_inputs=3, int_dtypes=INTS)
spec("cat_tuple_default_dim", lambda L, x, y, z, dim: L.cat((x, y, z)),
    inputs=_cat_inputs().map(lambda c: (c[0], {"dim": 0})), n_inputs=3)


@st.composite
def _stack_inputs(draw):
    shape = draw(_shape())
    n = len(shape) + 1
    return (shape,) * 3, {"dim": draw(st.integers(-n, n - 1))}


spec("stack", lambda L, x, y, z, dim: L.stack([x, y, z], dim), inputs=_stack_inputs(), n_inputs=3,
     int_dtypes=INTS)


def _split_extra(draw, shape, dim):
    n = shape[dim % len(shape)]
    if draw(st.booleans()) and n > 0:
        return {"split": draw(st.integers(1, n + 1))}
    sizes, left = [], n
    while left > 0:
        k = draw(st.integers(0, left))
        sizes.append(k)
        left -= k
        if len(sizes) > 3:
            sizes.append(left)
            left = 0
    return {"split": sizes if sizes else [0]}


spec("split", lambda L, x, dim, split: L.split(x, split, dim), inputs=along_dim(min_dims=1, extra=_split_extra),
     int_dtypes=INTS)
spec("split_method", lambda L, x, dim, split: x.split(split, dim=dim),
     inputs=along_dim(min_dims=1, extra=_split_extra))
spec("chunk", lambda L, x, dim, chunks: x.chunk(chunks, dim),
     inputs=along_dim(min_dims=1, extra=lambda draw, s, d: {"chunks": draw(st.integers(1, 4))}),
     examples=((([],), {"dim": 0, "chunks": 2}),))  # an empty dim gives `chunks` empty views
spec("unbind", lambda L, x, dim: L.unbind(x, dim), inputs=along_dim(min_dims=1))
spec("unbind_method", lambda L, x, dim: x.unbind(dim), inputs=along_dim(min_dims=1))


def _narrow_extra(draw, shape, dim):
    n = shape[dim % len(shape)]
    start = draw(st.integers(0, n))
    length = draw(st.integers(0, n - start))
    if draw(st.booleans()) and start < n:
        start -= n
    return {"start": start, "length": length}


spec("narrow", lambda L, x, dim, start, length: x.narrow(dim, start, length),
     inputs=along_dim(min_dims=1, extra=_narrow_extra), int_dtypes=INTS)


@st.composite
def _tri_inputs(draw):
    shape = draw(_shape(min_dims=2, max_dims=4))
    return (shape,), {"diagonal": draw(st.integers(-3, 3))}


spec("tril", lambda L, x, diagonal: L.tril(x, diagonal), inputs=_tri_inputs(), int_dtypes=INTS)
spec("triu", lambda L, x, diagonal: x.triu(diagonal), inputs=_tri_inputs(), int_dtypes=INTS)


@st.composite
def _pad_inputs(draw):
    shape = draw(_shape(min_dims=1))
    k = draw(st.integers(1, len(shape)))
    pads = []
    for i in range(k):
        side = shape[len(shape) - 1 - i]
        lo = draw(st.integers(-side if draw(st.booleans()) else 0, 2))
        hi = draw(st.integers(-(side + min(lo, 0)) if draw(st.booleans()) else 0, 2))
        pads += [lo, hi]
    return (shape,), {"pad": tuple(pads), "value": draw(st.sampled_from([0.0, 1.5, -2.0]))}


spec("pad_constant", ours=lambda x, pad, value: _ta_shape.pad(x, pad, mode="constant", value=value),
     theirs=lambda x, pad, value: torch.nn.functional.pad(x, pad, mode="constant", value=value),
     inputs=_pad_inputs())

# ---------------------------------------------------------------------------------------------------------------
# indexing


def _index_array(draw, n: int, unique: bool = False) -> np.ndarray:
    """A 1-D or 2-D int64 index into a dim of size ``n`` (negative indices and, unless unique, repeats)."""
    if n == 0:
        return np.zeros((0,), dtype=np.int64)
    if unique:
        picks = draw(st.permutations(range(n)))[:draw(st.integers(0, n))]
        return np.array([p - n if draw(st.booleans()) else p for p in picks], dtype=np.int64)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4))
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(-n, n - 1)))


@functools.lru_cache(maxsize=None)
def _basic_indices(shape: tuple) -> st.SearchStrategy:
    return hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True)


@st.composite
def basic_index(draw, shape: tuple):
    """ints (negative too), slices with positive steps, None and Ellipsis."""
    idx = draw(_basic_indices(shape))

    def positive_step(i):
        # torch has no negative slice steps
        if isinstance(i, slice) and i.step is not None and i.step < 0:
            return slice(i.start, i.stop, -i.step)
        return i

    return tuple(positive_step(i) for i in idx) if isinstance(idx, tuple) else positive_step(idx)


@st.composite
def advanced_index(draw, shape: tuple, unique: bool = False):
    """Integer tensors (repeated unless ``unique``), lists, bool masks, mixed with slices, None and Ellipsis."""
    kinds = ["ints"]
    if len(shape) >= 2:
        kinds += ["slice_then_ints", "two_ints", "ellipsis_ints"]
    if len(shape) >= 3:
        kinds += ["ints_slice_ints"]
    kinds += ["mask", "mask_prefix", "none_ints"]
    if not unique:
        kinds += ["list"]
    kind = draw(st.sampled_from(kinds))
    if kind == "ints":
        return _index_array(draw, shape[0], unique)
    if kind == "list":
        return [int(i) for i in _index_array(draw, shape[0]).reshape(-1)]
    if kind == "slice_then_ints":
        return (slice(None), _index_array(draw, shape[1], unique))
    if kind == "two_ints":
        if unique:
            a = _index_array(draw, shape[0], True)
            return (a, np.zeros_like(a)) if shape[1] else (a[:0], a[:0])
        return (_index_array(draw, shape[0])[:, None] if shape[0] else _index_array(draw, 0),
                _index_array(draw, shape[1]).reshape(-1))
    if kind == "ints_slice_ints":
        # advanced indices separated by a slice: their dims move to the front (numpy and torch agree)
        a = _index_array(draw, shape[0], unique)
        last = shape[-1]
        b = np.zeros_like(a) if unique or last == 0 else draw(hnp.arrays(np.int64, a.shape,
                                                                       elements=st.integers(-last, last - 1)))
        if last == 0:
            a = a[:0]
            b = b[:0]
        return (a, slice(None)) + (slice(None),) * (len(shape) - 3) + (b,)
    if kind == "ellipsis_ints":
        return (Ellipsis, _index_array(draw, shape[-1], unique))
    if kind == "none_ints":
        return (None, _index_array(draw, shape[0], unique))
    if kind == "mask":
        return draw(hnp.arrays(np.bool_, shape))
    k = draw(st.integers(1, len(shape)))
    return draw(hnp.arrays(np.bool_, shape[:k]))


@st.composite
def _getitem_inputs(draw, advanced: bool):
    shape = draw(_shape(min_dims=1 if advanced else 0, max_dims=3))
    index = draw(advanced_index(shape)) if advanced else draw(basic_index(shape))
    return (shape,), {"index": index}


spec("getitem_basic", lambda L, x, index: x[index], inputs=_getitem_inputs(False), int_dtypes=INTS)
spec("getitem_advanced", lambda L, x, index: x[index], inputs=_getitem_inputs(True), int_dtypes=INTS,
     examples=((([],), {"index": []}),))  # x[[]] selects nothing
spec("getitem_chained", lambda L, x, index: x[index][..., ::2], inputs=_getitem_inputs(False).filter(
    lambda c: np.empty(c[0][0])[c[1]["index"]].ndim >= 1))


def _selection_shape(shape: tuple, index) -> tuple:
    probe = np.empty(shape)
    return probe[index].shape


@st.composite
def _setitem_inputs(draw, advanced: bool):
    shape = draw(_shape(min_dims=1 if advanced else 0, max_dims=3))
    index = draw(advanced_index(shape, unique=True)) if advanced else draw(basic_index(shape))
    target = _selection_shape(shape, index)
    return (shape, draw(shape_broadcasting_to(target))), {"index": index}


def _setitem(L, x, v, index):
    z = x.clone()
    z[index] = v
    return z


def _setitem_scalar(L, x, index):
    z = x * 1
    z[index] = 2.5
    return z


spec("setitem_basic", _setitem, inputs=_setitem_inputs(False), n_inputs=2, int_dtypes=INTS)
spec("setitem_advanced", _setitem, inputs=_setitem_inputs(True), n_inputs=2)
spec("setitem_scalar", _setitem_scalar, inputs=_getitem_inputs(False))


@st.composite
def _gather_inputs(draw, unique: bool = False, src: bool = False):
    shape = draw(_shape(min_dims=1))
    dim = draw(_dim(len(shape)))
    axis = dim % len(shape)
    n = shape[axis]
    index_shape = [draw(st.integers(0, s)) for s in shape]
    if n == 0:
        index_shape[axis] = 0
    elif unique:
        index_shape[axis] = draw(st.integers(0, n))
    else:
        index_shape[axis] = draw(st.integers(0, 4))
    index_shape = tuple(index_shape)
    if unique and n:
        # distinct targets along dim for each position (scatter with repeats is nondeterministic in torch)
        index = np.empty(index_shape, dtype=np.int64)
        for pos in np.ndindex(*[s for i, s in enumerate(index_shape) if i != axis]):
            perm = draw(st.permutations(range(n)))[:index_shape[axis]]
            sl = list(pos)
            sl.insert(axis, slice(None))
            index[tuple(sl)] = perm
    else:
        index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, max(n - 1, 0))))
    shapes = (shape,)
    if src:
        shapes = (shape, tuple(s + draw(st.integers(0, 1)) for s in index_shape))
    return shapes, {"dim": dim, "index": index}


spec("gather", lambda L, x, dim, index: L.gather(x, dim, index), inputs=_gather_inputs(), int_dtypes=INTS,
     examples=((([[0.5], [1.0]],), {"dim": 1, "index": np.zeros((0, 0), dtype=np.int64)}),))
spec("gather_method", lambda L, x, dim, index: x.gather(dim, index), inputs=_gather_inputs())
spec("scatter", lambda L, x, src, dim, index: L.scatter(x, dim, index, src), inputs=_gather_inputs(True, True),
     n_inputs=2)
spec("scatter_value", lambda L, x, dim, index: x.scatter(dim, index, 1.5), inputs=_gather_inputs(True),
     examples=((([[0.5], [1.0]],), {"dim": 1, "index": np.zeros((0, 0), dtype=np.int64)}),))
spec("scatter_add", lambda L, x, src, dim, index: L.scatter_add(x, dim, index, src),
     inputs=_gather_inputs(False, True), n_inputs=2)
spec("scatter_add_method", lambda L, x, src, dim, index: x.scatter_add(dim, index, src),
     inputs=_gather_inputs(False, True), n_inputs=2)


@st.composite
def _index_select_inputs(draw):
    shape = draw(_shape())
    dim = draw(_dim(len(shape)))
    n = shape[dim % len(shape)] if shape else 1
    idx = _index_array(draw, n).reshape(-1)
    return (shape,), {"dim": dim, "index": idx % max(n, 1)}


spec("index_select", lambda L, x, dim, index: L.index_select(x, dim, index), inputs=_index_select_inputs(),
     int_dtypes=INTS, examples=(((0.0,), {"dim": 0, "index": np.zeros((0,), dtype=np.int64)}),
                                ((1.5,), {"dim": 0, "index": np.zeros((1,), dtype=np.int64)})))
spec("index_select_method", lambda L, x, dim, index: x.index_select(dim, index), inputs=_index_select_inputs())


@st.composite
def _take_along_dim_inputs(draw):
    shape = draw(_shape(min_dims=1))
    dim = draw(_dim(len(shape)))
    axis = dim % len(shape)
    # the index broadcasts against the input in every dim but ``dim``
    index_shape = tuple((draw(st.integers(0, 4)) if shape[axis] else 0) if i == axis else
                        (1 if draw(st.booleans()) else s) for i, s in enumerate(shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, max(shape[axis] - 1, 0))))
    return (shape,), {"dim": dim, "index": index}


@st.composite
def _take_flat_inputs(draw):
    shape = draw(_shape())
    n = int(np.prod(shape))
    index = _index_array(draw, n) % max(n, 1)
    return (shape,), {"index": index}


spec("take_along_dim", lambda L, x, dim, index: L.take_along_dim(x, index, dim), inputs=_take_along_dim_inputs())
spec("take_along_dim_flat", lambda L, x, index: x.take_along_dim(index), inputs=_take_flat_inputs())


@st.composite
def _sort_inputs(draw):
    (shape,), kw = draw(along_dim(min_dims=1))
    kw["descending"] = draw(st.booleans())
    return (shape,), kw


spec("sort", lambda L, x, dim, descending: L.sort(x, dim, descending), inputs=_sort_inputs(), unique=True,
     int_dtypes=INTS)
spec("sort_method", lambda L, x, dim, descending: x.sort(dim=dim, descending=descending), inputs=_sort_inputs(),
     unique=True)
spec("argsort", lambda L, x, dim, descending: L.argsort(x, dim, descending), inputs=_sort_inputs(), unique=True,
     grad=False)


def _topk_extra(draw, shape, dim):
    return {"k": draw(st.integers(0, shape[dim % len(shape)])), "largest": draw(st.booleans())}


spec("topk", lambda L, x, dim, k, largest: L.topk(x, k, dim, largest), unique=True,
     inputs=along_dim(min_dims=1, extra=_topk_extra), int_dtypes=INTS)
spec("topk_method", lambda L, x, dim, k, largest: x.topk(k, dim=dim, largest=largest), unique=True,
     inputs=along_dim(min_dims=1, extra=_topk_extra))

# ---------------------------------------------------------------------------------------------------------------
# in-place forms, on a non-leaf clone (grad flows through the clone to the input)


def _inplace(method: str, *args, **kwargs):
    def fn(L, x, *others, **kw):
        z = x.clone()
        getattr(z, method)(*(others + args), **{**kwargs, **kw})
        return z

    return fn


def _iadd(L, x, y):
    z = x.clone()
    z += y
    return z


def _isub(L, x, y):
    z = x * 1
    z -= y
    return z


def _imul(L, x, y):
    z = x.clone()
    z *= y
    return z


def _idiv(L, x, y):
    z = x.clone()
    z /= y
    return z


def _imul_scalar(L, x):
    z = x.clone()
    z *= 3
    return z


INTO = into()
spec("add_", _inplace("add_"), inputs=INTO, n_inputs=2, int_dtypes=INTS)
spec("add_alpha_", _inplace("add_", alpha=-2), inputs=INTO, n_inputs=2)
spec("sub_", _inplace("sub_"), inputs=INTO, n_inputs=2)
spec("mul_", _inplace("mul_"), inputs=INTO, n_inputs=2, int_dtypes=INTS,
     examples=((([0.5, -1.0], [2.0, 3.0]), {}),))  # mul_ must keep the old self for its backward
spec("div_", _inplace("div_"), inputs=INTO, domains=(REAL, NONZERO))
spec("zero_", _inplace("zero_"), inputs=U, int_dtypes=INTS)
spec("fill_", _inplace("fill_", 2.5), inputs=U)
spec("copy_", _inplace("copy_"), inputs=INTO, n_inputs=2, int_dtypes=INTS)
spec("clamp_", _inplace("clamp_", -0.5, 0.5), inputs=U, domains=(OFF_CLAMP_BOUNDS,))
spec("iadd", _iadd, inputs=INTO, n_inputs=2, int_dtypes=INTS)
spec("isub", _isub, inputs=INTO, n_inputs=2)
spec("imul", _imul, inputs=INTO, n_inputs=2)
spec("imul_scalar", _imul_scalar, inputs=U, int_dtypes=INTS)
spec("idiv", _idiv, inputs=INTO, domains=(REAL, NONZERO))


def _inplace_then_use(L, x, y):
    # the in-place op needs its old value (mul_ saves it), and its result feeds further ops
    z = x * 2
    z.mul_(y)
    z.add_(y)
    return z * z


def _inplace_on_view(L, x, y):
    z = x.clone()
    z[..., :1] += y
    return z


spec("inplace_then_use", _inplace_then_use, inputs=INTO, n_inputs=2)
spec("inplace_on_view", _inplace_on_view, inputs=into(min_dims=1).map(
    lambda c: ((c[0][0], tuple(min(s, 1) if i == len(c[0][1]) - 1 else s for i, s in enumerate(c[0][1]))), {})),
     n_inputs=2, grad2=False)

SPEC_BY_NAME = {s.name: s for s in SPECS}
