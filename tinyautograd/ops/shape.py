"""Shape ops: views (reshape, permute, expand, ...), joining and splitting, padding, triangles, devices."""
from __future__ import annotations

import builtins
import weakref

import numpy as np

from .. import _dtype
from ..autograd.engine import Node
from ..backend import device_of, move
from ._util import edge, grad_state, relabel, wrap, wrap_dim, xp_of
from ..tensor import Tensor


# id(root base) -> (weak ref to the base, [weak refs to its views]), so that an in-place op on the base (or on one
# of its views) can give every other live view the new history (indexing._rebase). Keyed by id, not a
# WeakKeyDictionary/WeakSet: those compare keys with ==, which is elementwise on Tensors. Only the base's ref has
# a callback (it drops the entry); dead view refs are pruned every _PRUNE_EVERY registrations, which keeps the
# per-view cost at one plain weak ref. Filled only while grad mode is on, and never for a leaf that requires grad
# (an in-place op on it is refused, so its views never need a new history).
_VIEWS: dict = {}
_PRUNE_EVERY = 64
_ref = weakref.ref


def _register_view(base: Tensor, t: Tensor) -> None:
    key = id(base)
    entry = _VIEWS.get(key)
    if entry is not None and entry[0]() is base:
        views = entry[1]
        views.append(_ref(t))
        if not len(views) % _PRUNE_EVERY:
            views[:] = [r for r in views if r() is not None]
        return

    def forget_base(ref, key=key):
        if _VIEWS.get(key, (None,))[0] is ref:
            del _VIEWS[key]
    _VIEWS[key] = (_ref(base, forget_base), [_ref(t)])


def _live_views(base: Tensor) -> list:
    """The views of ``base`` still alive (for indexing._rebase)."""
    entry = _VIEWS.get(id(base))
    if entry is None or entry[0]() is not base:
        return []
    return [v for v in (r() for r in entry[1]) if v is not None]


def _as_view(y, input: Tensor, node, view_fn) -> Tensor:
    """Wrap ``y`` (an array sharing memory with ``input``) as a view: same version counter, and the view
    function that lets an in-place op on it be replayed onto its base."""
    t = wrap(y, node)
    t._version = input._version
    base = input._view[0] if input._view is not None else input
    if input._view is not None:
        inner = input._view[1]
        t._view = (base, lambda ns, a, inner=inner, fn=view_fn: fn(ns, inner(ns, a)))
    else:
        t._view = (base, view_fn)
    if grad_state.enabled and (base.grad_fn is not None or not base.requires_grad):
        _register_view(base, t)
    return t


# -- reshape family -------------------------------------------------------------------------------------------------

class ViewBackward0(Node):
    __slots__ = ("in_shape", "label")

    def backward(self, ns, g):
        return (ns.reshape(g, self.in_shape),)

    def name(self) -> str:
        return self.label


def _infer_shape(shape, numel: int, op: str, in_shape: tuple) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (shape {list(shape)})")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"{op}: invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel} "
                               f"(input shape {list(in_shape)})")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel} "
                           f"(input shape {list(in_shape)}). The number of elements must stay the same.")
    return shape


def _reshape(input: Tensor, shape: tuple, label: str, must_view: bool = False) -> Tensor:
    d = input._data
    if d.shape == shape and not must_view:
        y = d.view()
    else:
        if must_view and not d.flags.c_contiguous and d.size > 1:
            try:
                y = d.view()
                y.shape = shape
            except AttributeError:
                raise RuntimeError(
                    f"view size is not compatible with input tensor's size and stride (at least one dimension "
                    f"spans across two contiguous subspaces). Use .reshape(...) instead. (shape {list(d.shape)} -> "
                    f"{list(shape)})") from None
        else:
            y = d.reshape(shape)
    node = None
    if grad_state.enabled and input.requires_grad:
        node = ViewBackward0((edge(input),))
        node.in_shape, node.label = d.shape, label
    if y.base is not None and (y.base is d or y.base is d.base):
        return _as_view(y, input, node, lambda ns, a, shape=shape: ns.reshape(a, shape))
    return wrap(y, node)


def _require_args(args: tuple, op: str, name: str) -> None:
    # torch's methods take the sizes as varargs or one sequence, but never nothing
    if not args:
        raise TypeError(f'{op}() missing 1 required positional arguments: "{name}"')


def reshape(input: Tensor, *shape) -> Tensor:
    """Same elements, new shape; a view when possible (``torch.reshape``)."""
    _require_args(shape, "reshape", "shape")
    return _reshape(input, _infer_shape(shape, input._data.size, "reshape", input._data.shape), "ViewBackward0")


def view(input: Tensor, *shape) -> Tensor:
    """A view with a new shape (``Tensor.view``); ``view(dtype)`` is not supported."""
    if len(shape) == 1 and isinstance(shape[0], _dtype.dtype):
        raise RuntimeError("view(dtype) reinterprets bits, which tinyautograd does not support; use .to(dtype)")
    _require_args(shape, "view", "size")
    return _reshape(input, _infer_shape(shape, input._data.size, "view", input._data.shape), "ViewBackward0",
                    must_view=True)


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, other._data.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other._data.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
    shape = input._data.shape
    if not shape:
        return _reshape(input, (1,), "ViewBackward0")
    s = wrap_dim(start_dim, len(shape), "flatten")
    e = wrap_dim(end_dim, len(shape), "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for v in shape[s:e + 1]:
        n *= v
    return _reshape(input, shape[:s] + (n,) + shape[e + 1:], "ViewBackward0")


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    shape = input._data.shape
    d = wrap_dim(dim, len(shape), "unflatten")
    sizes = _infer_shape(tuple(sizes), shape[d], "unflatten", shape)
    return _reshape(input, shape[:d] + tuple(sizes) + shape[d + 1:], "ViewBackward0")


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dims (all, or those in ``dim``) (``torch.squeeze``)."""
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
        label = "SqueezeBackward0"
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {wrap_dim(x, len(shape), "squeeze") for x in dims} if shape else set()
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
        label = "SqueezeBackward1"
    return _reshape(input, new, label)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (``torch.unsqueeze``)."""
    shape = input._data.shape
    n = len(shape) + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got "
                         f"{dim})")
    d = dim + n if dim < 0 else dim
    return _reshape(input, shape[:d] + (1,) + shape[d:], "UnsqueezeBackward0")


# -- permutations ---------------------------------------------------------------------------------------------------

class PermuteBackward0(Node):
    __slots__ = ("inverse", "label")

    def backward(self, ns, g):
        return (ns.permute(g, self.inverse),)

    def name(self) -> str:
        return self.label


def _permute(input: Tensor, axes: tuple, label: str) -> Tensor:
    y = input._data.transpose(axes)
    node = None
    if grad_state.enabled and input.requires_grad:
        node = PermuteBackward0((edge(input),))
        node.inverse = tuple(int(i) for i in np.argsort(axes))
        node.label = label
    return _as_view(y, input, node, lambda ns, a, axes=axes: ns.permute(a, axes))


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder dims (``torch.permute``)."""
    _require_args(dims, "permute", "dims")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal to "
                           f"len(dims) = {len(dims)}")
    axes = tuple(wrap_dim(d, nd, "permute") for d in dims)
    if len(set(axes)) != nd:
        raise RuntimeError(f"permute(): duplicate dims are not allowed (got {list(dims)})")
    return _permute(input, axes, "PermuteBackward0")


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (``torch.transpose``)."""
    nd = input._data.ndim
    if nd == 0:
        return _permute(input, (), "TransposeBackward0")
    a, b = wrap_dim(dim0, nd, "transpose"), wrap_dim(dim1, nd, "transpose")
    axes = list(range(nd))
    axes[a], axes[b] = axes[b], axes[a]
    return _permute(input, tuple(axes), "TransposeBackward0")


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose a matrix; 0-d and 1-d tensors come back as they are (``torch.t``)."""
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D. Use transpose or mT.")
    return _permute(input, (1, 0) if nd == 2 else tuple(range(nd)), "TBackward0")


def T_(input: Tensor) -> Tensor:
    nd = input._data.ndim
    return _permute(input, tuple(range(nd))[::-1], "PermuteBackward0")


def mT_(input: Tensor) -> Tensor:
    if input._data.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got {input.ndim}-D "
                           "tensor.")
    return transpose(input, -2, -1)


def movedim(input: Tensor, source, destination) -> Tensor:
    nd = input._data.ndim
    src = [wrap_dim(s, nd, "movedim") for s in ((source,) if isinstance(source, int) else source)]
    dst = [wrap_dim(s, nd, "movedim") for s in ((destination,) if isinstance(destination, int) else destination)]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _permute(input, tuple(order), "PermuteBackward0")


moveaxis = movedim


# -- expand ---------------------------------------------------------------------------------------------------------

class ExpandBackward0(Node):
    __slots__ = ("in_shape",)

    def backward(self, ns, g):
        return (ns.sum_to(g, self.in_shape),)


def expand(input: Tensor, *sizes) -> Tensor:
    """A broadcast view to ``sizes`` (-1 keeps a dim) (``Tensor.expand``)."""
    _require_args(sizes, "expand", "size")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    target = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing dimension {i}")
            target.append(int(s))
        else:
            cur = shape[i - lead]
            if s == -1:
                target.append(cur)
            elif cur == 1 or cur == s:
                target.append(int(s))
            else:
                raise RuntimeError(
                    f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at non-singleton "
                    f"dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}")
    target = tuple(target)
    y = xp_of(input._data).broadcast_to(input._data, target)
    node = None
    if grad_state.enabled and input.requires_grad:
        node = ExpandBackward0((edge(input),))
        node.in_shape = shape
    t_ = wrap(y, node)
    t_._version = input._version
    return t_


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other._data.shape)


def broadcast_to(input: Tensor, size) -> Tensor:
    return expand(input, tuple(size))


def broadcast_tensors(*tensors):
    shape = np.broadcast_shapes(*(t._data.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def broadcast_shapes(*shapes):
    from ..tensor import Size

    try:
        return Size(np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape {list(shapes)}") from None


# -- repeat / tile / flip / roll ------------------------------------------------------------------------------------

class RepeatBackward0(Node):
    __slots__ = ("in_shape", "reps")

    def backward(self, ns, g):
        padded = (1,) * (len(self.reps) - len(self.in_shape)) + tuple(self.in_shape)
        split = []
        for r, s in zip(self.reps, padded):
            split += [r, s]
        g = ns.reshape(g, tuple(split))
        g = ns.sum(g, axis=tuple(range(0, 2 * len(padded), 2)))
        return (ns.reshape(g, self.in_shape),)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile the tensor ``sizes`` times along each dim (``Tensor.repeat``)."""
    _require_args(sizes, "repeat", "repeats")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    d = input._data
    if len(sizes) < d.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           f"tensor (repeat dims {list(sizes)}, tensor shape {list(d.shape)})")
    y = xp_of(d).tile(d, sizes)
    if grad_state.enabled and input.requires_grad:
        node = RepeatBackward0((edge(input),))
        node.in_shape, node.reps = d.shape, tuple(sizes)
        return wrap(y, node)
    return wrap(y)


def tile(input: Tensor, dims) -> Tensor:
    dims = tuple(dims)
    if len(dims) < input._data.ndim:
        dims = (1,) * (input._data.ndim - len(dims)) + dims
    return repeat(input, dims)


class FlipBackward0(Node):
    __slots__ = ("axes",)

    def backward(self, ns, g):
        return (ns.flip(g, self.axes),)


def flip(input: Tensor, dims) -> Tensor:
    nd = input._data.ndim
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = tuple(wrap_dim(x, nd, "flip") for x in dims)
    y = xp_of(input._data).flip(input._data, axes).copy() if nd else input._data.copy()
    if grad_state.enabled and input.requires_grad:
        node = FlipBackward0((edge(input),))
        node.axes = axes
        return wrap(y, node)
    return wrap(y)


def fliplr(input: Tensor) -> Tensor:
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    return flip(input, (0,))


class RollBackward0(Node):
    __slots__ = ("shifts", "axes")

    def backward(self, ns, g):
        neg = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return (ns.roll(g, neg, self.axes),)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    d = input._data
    xp = xp_of(d)
    if dims is None:
        # torch rolls the flattened tensor and restores the shape
        return reshape(roll(reshape(input, -1), shifts, 0), d.shape)
    shifts_t = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims_t = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts_t) != len(dims_t):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts_t)}, dims:{len(dims_t)}")
    axes = tuple(wrap_dim(x, d.ndim, "roll") for x in dims_t)
    y = xp.roll(d, shifts_t, axes)
    if grad_state.enabled and input.requires_grad:
        node = RollBackward0((edge(input),))
        node.shifts, node.axes = shifts_t, axes
        return wrap(y, node)
    return wrap(y)


# -- joining and splitting --------------------------------------------------------------------------------------------

class CatBackward0(Node):
    __slots__ = ("axis", "bounds")

    def backward(self, ns, g):
        out = []
        nd = len(g.shape)
        for lo, hi in self.bounds:
            idx = (slice(None),) * self.axis + (slice(lo, hi),) + (slice(None),) * (nd - self.axis - 1)
            out.append(ns.getitem(g, idx))
        return tuple(out)


def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    """Join tensors along an existing dim (``torch.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"cat(): argument 'tensors' must be a sequence of Tensors, but element {i} is "
                            f"{type(x).__name__}")
    # torch skips legacy empty 1-d tensors
    keep = [x for x in tensors if not (x._data.ndim == 1 and x._data.shape[0] == 0)] or tensors[:1]
    ref = keep[0]._data
    axis = wrap_dim(dim, ref.ndim, "cat")
    dt = keep[0].dtype
    for number, x in enumerate(keep[1:], 1):
        if x._data.ndim != ref.ndim:
            raise RuntimeError(f"cat(): Tensors must have same number of dimensions: got {ref.ndim} and "
                               f"{x._data.ndim}")
        for i, (a, b) in enumerate(zip(ref.shape, x._data.shape)):
            if i != axis and a != b:
                raise RuntimeError(f"cat(): Sizes of tensors must match except in dimension {axis}. Expected size "
                                   f"{a} but got size {b} for tensor number {number} in the list (shapes "
                                   f"{list(ref.shape)} and {list(x._data.shape)}).")
        if type(x._data) is not type(ref):
            raise RuntimeError(f"cat(): Expected all tensors to be on the same device, but found {keep[0].device} "
                               f"and {x.device}")
        dt = _dtype.promote_types(dt, x.dtype)
    arrays = [x._data if x._data.dtype == dt.np_dtype else x._data.astype(dt.np_dtype) for x in keep]
    y = xp_of(ref).concatenate(arrays, axis=axis)
    res = None
    if grad_state.enabled and builtins.any(x.requires_grad for x in keep):
        node = CatBackward0(tuple(edge(x) for x in keep))
        bounds, lo = [], 0
        for x in keep:
            bounds.append((lo, lo + x._data.shape[axis]))
            lo += x._data.shape[axis]
        node.axis, node.bounds = axis, bounds
        res = wrap(y, node)
    else:
        res = wrap(y)
    if out is not None:
        from .elementwise import _write_out

        return _write_out(out, res)
    return res


concat = concatenate = cat


def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    """Join tensors along a new dim (``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0]._data.shape
    for i, x in enumerate(tensors):
        if x._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                               f"{list(x._data.shape)} at entry {i}")
    n = len(shape) + 1
    if not -n <= dim < n:
        raise IndexError(f"stack: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    d = dim + n if dim < 0 else dim
    if out is not None:
        return cat([unsqueeze(x, d) for x in tensors], d, out=out)
    return relabel(cat([unsqueeze(x, d) for x in tensors], d), "StackBackward0")


def hstack(tensors) -> Tensor:
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    return cat([x if x._data.ndim >= 2 else reshape(x, (1, -1)) for x in tensors], 0)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0):
    """Split into chunks of a size, or of the given sizes, along ``dim`` (``torch.split``); views."""
    label = "SplitBackward0" if isinstance(split_size_or_sections, int) else "SplitWithSizesBackward0"
    return tuple(relabel(t, label) for t in _split(tensor, split_size_or_sections, dim))


def _split(tensor: Tensor, split_size_or_sections, dim: int = 0):
    from .indexing import getitem

    nd = tensor._data.ndim
    axis = wrap_dim(dim, nd, "split")
    n = tensor._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and not (s == 0 and n == 0):
            raise RuntimeError(f"split: split_size can only be 0 if dimension size is 0, but got {s}")
        sizes = [s] * (n // s) + ([n % s] if n % s else []) if s else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {axis}), but got split_sizes={sizes}")
    out, lo = [], 0
    for s in sizes:
        idx = (slice(None),) * axis + (slice(lo, lo + s),)
        out.append(getitem(tensor, idx))
        lo += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = input._data.shape[wrap_dim(dim, input._data.ndim, "chunk")]
    if n == 0:
        # torch hands back ``chunks`` empty views of an empty dim
        return tuple(relabel(t, "SplitBackward0") for t in _split(input, [0] * chunks, dim))
    return split(input, -(-n // chunks), dim)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0):
    axis = wrap_dim(dim, input._data.ndim, "tensor_split")
    n = input._data.shape[axis]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        base, extra = divmod(n, k)
        sizes = [base + 1] * extra + [base] * (k - extra)
    else:
        bounds = [0] + list(indices_or_sections) + [n]
        sizes = [builtins.max(0, builtins.min(b, n) - builtins.min(a, n)) for a, b in zip(bounds, bounds[1:])]
    return _split(input, sizes, axis)


def unbind(input: Tensor, dim: int = 0):
    """The slices along ``dim`` as a tuple (``torch.unbind``)."""
    from .indexing import getitem

    axis = wrap_dim(dim, input._data.ndim, "unbind")
    return tuple(relabel(getitem(input, (slice(None),) * axis + (i,)), "UnbindBackward0")
                 for i in range(input._data.shape[axis]))


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    from .indexing import getitem

    axis = wrap_dim(dim, input._data.ndim, "narrow")
    n = input._data.shape[axis]
    # torch: a start outside [-n, n] is an IndexError, a window running past the end a RuntimeError
    if not -n <= start <= n:
        raise IndexError(f"narrow(): start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    if start < 0:
        start += n
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > n:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}) of dim {axis}")
    return getitem(input, (slice(None),) * axis + (slice(start, start + length),))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    from .indexing import getitem

    axis = wrap_dim(dim, input._data.ndim, "select")
    n = input._data.shape[axis]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {axis}")
    return getitem(input, (slice(None),) * axis + (index,))


# -- triangles and padding ---------------------------------------------------------------------------------------------

class TrilBackward0(Node):
    __slots__ = ("k", "upper")

    def backward(self, ns, g):
        return (ns.triu(g, self.k) if self.upper else ns.tril(g, self.k),)

    def name(self) -> str:
        return "TriuBackward0" if self.upper else "TrilBackward0"


def _tri(input: Tensor, diagonal: int, upper: bool) -> Tensor:
    d = input._data
    if d.ndim < 2:
        raise RuntimeError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 dimensions")
    xp = xp_of(d)
    y = xp.triu(d, diagonal) if upper else xp.tril(d, diagonal)
    if grad_state.enabled and input.requires_grad:
        node = TrilBackward0((edge(input),))
        node.k, node.upper = diagonal, upper
        return wrap(y, node)
    return wrap(y)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return _tri(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return _tri(input, diagonal, True)


class PadBackward(Node):
    __slots__ = ("index",)

    def backward(self, ns, g):
        return (ns.getitem(g, self.index),)

    def name(self) -> str:
        return "ConstantPadNdBackward0"


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad the last ``len(pad)//2`` dims: ``pad = (left_last, right_last, left_prev, right_prev, ...)``, as
    ``torch.nn.functional.pad``. Modes: constant (negative pads crop), reflect, replicate, circular."""
    d = input._data
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError(f"pad: Padding length must be divisible by 2 (got {len(pad)})")
    if len(pad) // 2 > d.ndim:
        raise RuntimeError(f"pad: Padding length should be less than or equal to two times the input dimension but "
                           f"got padding length {len(pad)} and input of dimension {d.ndim}")
    widths = [(0, 0)] * d.ndim
    for i in range(len(pad) // 2):
        widths[d.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    xp = xp_of(d)
    if mode != "constant":
        from .indexing import getitem

        np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
        if np_mode is None:
            raise NotImplementedError(f"pad: unknown padding mode '{mode}' (constant, reflect, replicate, circular)")
        # gather indices per padded dim, so the gradient flows back through indexing
        res = input
        for axis, (lo, hi) in enumerate(widths):
            if lo == 0 and hi == 0:
                continue
            n = d.shape[axis]
            if mode == "reflect" and (lo >= n or hi >= n):
                raise RuntimeError(f"pad: Padding size should be less than the corresponding input dimension, but "
                                   f"got: padding ({lo}, {hi}) at dimension {axis} of input {list(d.shape)}")
            src = np.pad(np.arange(n), (lo, hi), mode=np_mode)
            res = getitem(res, (slice(None),) * axis + (wrap(xp.asarray(src)),), True)
        return res
    crop = tuple(slice(-lo if lo < 0 else None, hi if hi < 0 else None) for lo, hi in widths)
    pos = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
    cropped = d[crop]
    y = xp.pad(cropped, pos, constant_values=0 if value is None else value)
    if grad_state.enabled and input.requires_grad:
        node = PadBackward((edge(input),))
        inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(pos, cropped.shape))
        if builtins.any(lo < 0 or hi < 0 for lo, hi in widths):
            # cropping pads: the gradient of the cropped-away part is zero
            node = _CropPadBackward((edge(input),))
            node.inner, node.crop, node.in_shape = inner, crop, d.shape
            return wrap(y, node)
        node.index = inner
        return wrap(y, node)
    return wrap(y)


class _CropPadBackward(Node):
    __slots__ = ("inner", "crop", "in_shape")

    def backward(self, ns, g):
        return (ns.index_put_acc(self.in_shape, self.crop, ns.getitem(g, self.inner), unique=True),)

    def name(self) -> str:
        return "ConstantPadNdBackward0"


# -- dtype and device conversion --------------------------------------------------------------------------------------

class ToCopyBackward0(Node):
    __slots__ = ("in_dtype", "in_device")

    def backward(self, ns, g):
        if ns.create_graph:
            return (g.to(device=self.in_device, dtype=self.in_dtype),)
        if g.dtype != self.in_dtype.np_dtype:
            g = g.astype(self.in_dtype.np_dtype)
        return (move(g, self.in_device),)


def to_copy(input: Tensor, dtype, device, copy: bool = False) -> Tensor:
    d = input._data
    src_dev = device_of(d)
    same_dtype = dtype is None or dtype.np_dtype == d.dtype
    same_dev = device is None or device == src_dev
    if same_dtype and same_dev and not copy:
        return input
    y = d
    if not same_dev:
        y = move(y, device)
    if not same_dtype:
        y = y.astype(dtype.np_dtype)
    elif y is d:
        y = d.copy()
    if grad_state.enabled and input.requires_grad and (dtype is None or dtype.is_floating_point):
        node = ToCopyBackward0((edge(input),))
        node.in_dtype, node.in_device = _dtype._BY_NP[d.dtype], src_dev
        return wrap(y, node)
    return wrap(y)


class CloneBackward0(Node):
    __slots__ = ()

    def backward(self, ns, g):
        return (g,)


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    y = input._data.copy()
    if grad_state.enabled and input.requires_grad:
        return wrap(y, CloneBackward0((edge(input),)))
    return wrap(y)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return clone(input)


class AliasBackward0(Node):
    __slots__ = ()

    def backward(self, ns, g):
        return (g,)
