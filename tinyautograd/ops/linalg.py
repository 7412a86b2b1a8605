"""Matrix products: matmul (1-D, 2-D, batched with broadcasting), mm, bmm, dot, outer, einsum."""
from __future__ import annotations

import string

import numpy as np

from ..autograd.engine import Node
from ._util import check_same_device, edge, grad_state, relabel, wrap, xp_of
from ..tensor import Tensor


class MmBackward0(Node):
    """2-D @ 2-D, the hot path of Linear: dA = G B^T, dB = A^T G."""
    __slots__ = ()

    def backward(self, ns, g):
        a, b = ns.saved(self)
        ra, rb = self.next_nodes
        return (ns.matmul(g, ns.swap_last(b)) if ra is not None else None,
                ns.matmul(ns.swap_last(a), g) if rb is not None else None)


class MatmulBackward0(Node):
    """General matmul: 1-D operands are lifted to matrices, batch dims broadcast and are summed back."""
    __slots__ = ("a_shape", "b_shape")

    def backward(self, ns, g):
        a, b = ns.saved(self)
        a_shape, b_shape = self.a_shape, self.b_shape
        if len(a_shape) == 1 and len(b_shape) == 1:
            # a dot product: g is 0-d
            return g * b, g * a
        if len(a_shape) == 1:
            a = ns.reshape(a, (1, a_shape[0]))
            g = ns.expand_dims(g, -2)
        if len(b_shape) == 1:
            b = ns.reshape(b, (b_shape[0], 1))
            g = ns.expand_dims(g, -1)
        ga = ns.matmul(g, ns.swap_last(b))
        gb = ns.matmul(ns.swap_last(a), g)
        if len(a_shape) == 1:
            ga = ns.reshape(ns.sum_to(ga, (1, a_shape[0])), a_shape)
        else:
            ga = ns.sum_to(ga, a_shape)
        if len(b_shape) == 1:
            gb = ns.reshape(ns.sum_to(gb, (b_shape[0], 1)), b_shape)
        else:
            gb = ns.sum_to(gb, b_shape)
        return ga, gb

    def name(self) -> str:
        return "MmBackward0" if len(self.a_shape) == 2 and len(self.b_shape) == 2 else (
            "DotBackward0" if len(self.a_shape) == 1 and len(self.b_shape) == 1 else
            "MvBackward0" if len(self.b_shape) == 1 and len(self.a_shape) == 2 else "BmmBackward0"
            if len(self.a_shape) == 3 and len(self.b_shape) == 3 else "UnsafeViewBackward0")


def matmul(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """Matrix product with torch's rules for 1-D, 2-D and batched (broadcast) operands (``torch.matmul``)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"matmul(): argument 'other' must be Tensor, not {type(other).__name__}")
    a, b = input._data, other._data
    if type(a) is not type(b):
        check_same_device(input, other, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {input.dtype} != {other.dtype}. "
                           "Convert one with .to(other.dtype).")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        if a.ndim == 1 and b.ndim == 1:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to "
                               f"have the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements "
                               "respectively")
        ma = "x".join(map(str, a.shape if a.ndim == 2 else (int(np.prod(a.shape[:-1])), ka)))
        mb = "x".join(map(str, b.shape if b.ndim == 2 else (kb, int(np.prod(b.shape[:-2] + b.shape[-1:])))))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({ma} and {mb}): matmul needs the last dim of "
                           f"the first ({ka}) to equal the {'first' if b.ndim == 1 else 'second-to-last'} dim of the "
                           f"second ({kb}); shapes {list(a.shape)} and {list(b.shape)}")
    try:
        y = a @ b
    except ValueError:
        raise RuntimeError(f"matmul: the batch dims of {list(a.shape)} and {list(b.shape)} cannot be broadcast "
                           "together") from None
    if type(y) is not type(a):
        y = xp_of(a).asarray(y)
    if grad_state.enabled and (input.requires_grad or other.requires_grad):
        if a.ndim == 2 and b.ndim == 2:
            node = MmBackward0((edge(input), edge(other)))
        else:
            node = MatmulBackward0((edge(input), edge(other)))
            node.a_shape, node.b_shape = a.shape, b.shape
        node.saved = (input, other)
        node.versions = (input._version[0], other._version[0])
        res = wrap(y, node)
    else:
        res = wrap(y)
    if out is not None:
        from .elementwise import _write_out

        return _write_out(out, res)
    return res


def mm(input: Tensor, mat2: Tensor, *, out=None) -> Tensor:
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(f"mm: both arguments must be 2-D matrices, got {input._data.ndim}-D and {mat2._data.ndim}-D")
    return matmul(input, mat2, out=out)


def bmm(input: Tensor, mat2: Tensor, *, out=None) -> Tensor:
    if input._data.ndim != 3 or mat2._data.ndim != 3:
        raise RuntimeError(f"bmm: batch1 must be a 3D tensor and batch2 must be a 3D tensor (got "
                           f"{input._data.ndim}-D and {mat2._data.ndim}-D)")
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {input._data.shape[0]} vs {mat2._data.shape[0]} (bmm does not "
                           "broadcast; use matmul)")
    return matmul(input, mat2, out=out)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError(f"mv: expected a matrix and a vector, got {input._data.ndim}-D and {vec._data.ndim}-D")
    return matmul(input, vec)


def dot(input: Tensor, other: Tensor) -> Tensor:
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and {other._data.ndim}D tensors")
    return matmul(input, other)


inner = dot


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """``input[:, None] * vec2[None, :]`` (``torch.outer``)."""
    from .shape import reshape

    if input._data.ndim != 1 or vec2._data.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D tensors, got {input._data.ndim}-D and {vec2._data.ndim}-D")
    return reshape(input, (-1, 1)) * reshape(vec2, (1, -1))


ger = outer


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = matmul(mat1, mat2)
    if alpha != 1:
        prod = prod * alpha
    return relabel(prod + (input if beta == 1 else input * beta), "AddmmBackward0")


# -- einsum ---------------------------------------------------------------------------------------------------------

def _parse_einsum(equation: str, shapes) -> tuple:
    """Explicit form of an einsum equation with '...' replaced by letters; returns (input specs, output spec)."""
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    specs = lhs.split(",")
    if len(specs) != len(shapes):
        raise RuntimeError(f"einsum(): {len(specs)} operands in the equation but {len(shapes)} tensors were given")
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in string.ascii_letters if c not in used]
    ell_nd = 0
    for s, shp in zip(specs, shapes):
        if "..." in s:
            ell_nd = max(ell_nd, len(shp) - (len(s) - 3))
    ell = "".join(spare[:ell_nd])
    out_specs = []
    for s, shp in zip(specs, shapes):
        if "..." in s:
            n = len(shp) - (len(s) - 3)
            s = s.replace("...", ell[ell_nd - n:] if n else "")
        if len(s) != len(shp):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(s)}) does not match the "
                               f"number of dimensions ({len(shp)}) for operand {len(out_specs)}")
        out_specs.append(s)
    if rhs is None:
        counts = {}
        for s in out_specs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return out_specs, rhs


class EinsumBackward(Node):
    __slots__ = ("specs", "out_spec", "shapes")

    def backward(self, ns, g):
        ops = ns.saved(self)
        grads = []
        for i, spec in enumerate(self.specs):
            if self.next_nodes[i] is None:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(self.specs) if j != i]
            letters_elsewhere = set(self.out_spec).union(*others) if others else set(self.out_spec)
            # a repeated letter (a diagonal) or a letter only this operand has (summed out) needs care
            target = "".join(c for c in dict.fromkeys(spec) if c in letters_elsewhere)
            eq = ",".join([self.out_spec] + others) + "->" + target
            gi = ns.einsum(eq, g, *[o for j, o in enumerate(ops) if j != i])
            if target != spec:
                gi = _expand_einsum_grad(ns, gi, target, spec, self.shapes[i])
            grads.append(gi)
        return tuple(grads)

    def name(self) -> str:
        return "EinsumBackward0"


def _expand_einsum_grad(ns, gi, target: str, spec: str, shape: tuple):
    """From the gradient over ``target`` letters to the operand's ``spec``: broadcast the letters that were summed
    out, and put a repeated letter's gradient back on its diagonal (zero off it)."""
    sizes = dict(zip(spec, shape))
    unique = "".join(dict.fromkeys(spec))
    full = target + "".join(c for c in unique if c not in target)
    for c in unique:
        if c not in target:
            gi = ns.expand_dims(gi, -1)
    gi = ns.broadcast_to(gi, tuple(sizes[c] for c in full))
    if full != unique:
        gi = ns.permute(gi, tuple(full.index(c) for c in unique))
    if unique == spec:
        return gi
    spare = iter(c for c in string.ascii_letters if c not in spec)
    renamed, eyes, seen = [], [], set()
    for c in spec:
        if c in seen:
            d = next(spare)
            renamed.append(d)
            eyes.append(c + d)
        else:
            seen.add(c)
            renamed.append(c)
    eq = ",".join([unique] + eyes) + "->" + "".join(renamed)
    return ns.einsum(eq, gi, *[_identity(ns, gi, sizes[e[0]]) for e in eyes])


def _identity(ns, like, n: int):
    data = like._data if ns.create_graph else like
    return ns.const(xp_of(data).eye(n, dtype=data.dtype))


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation (``torch.einsum``), differentiable in every operand."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    arrays = [o._data for o in operands]
    specs, out_spec = _parse_einsum(equation, [a.shape for a in arrays])
    eq = ",".join(specs) + "->" + out_spec
    xp = xp_of(arrays[0])
    try:
        y = xp.einsum(eq, *arrays, optimize=len(arrays) > 2) if xp is np else xp.einsum(eq, *arrays)
    except ValueError as e:
        raise RuntimeError(f"einsum(): operands do not match the equation '{equation}' (shapes "
                           f"{[list(a.shape) for a in arrays]}): {e}") from None
    y = xp.asarray(y)
    if grad_state.enabled and any(o.requires_grad for o in operands):
        node = EinsumBackward(tuple(edge(o) for o in operands))
        node.specs, node.out_spec, node.shapes = specs, out_spec, [a.shape for a in arrays]
        node.saved = tuple(operands)
        node.versions = tuple(o._version[0] for o in operands)
        return wrap(y, node)
    return wrap(y)
