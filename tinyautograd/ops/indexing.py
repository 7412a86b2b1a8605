"""Indexing: __getitem__/__setitem__, gather/scatter, index_select, sort/topk. Repeated indices accumulate."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from ..autograd.engine import Node
from ..backend import device_of, move
from ._util import check_indices, edge, grad_state, relabel, wrap, wrap_dim, xp_of
from ..tensor import Tensor
from .shape import _as_view, _live_views
from ..autograd.namespace import sparse_grid

_BASIC = (int, slice, type(None), type(Ellipsis))
_FULL = slice(None)


def _convert_index(index, d, op: str = "index", check: bool = True):
    """A torch index (ints, slices, None, Ellipsis, int/bool tensors, lists) as a NumPy/CuPy index, and whether
    it is basic (gives a view, no repeated elements)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for i in index:
        ti = type(i)
        if ti in _BASIC or isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            out.append(int(i) if isinstance(i, np.integer) else i)
        elif isinstance(i, Tensor):
            a = i._data
            if a.dtype.kind not in "iub":
                raise IndexError(f"{op}: tensors used as indices must be long, int, byte or bool tensors (got "
                                 f"{i.dtype})")
            if type(a) is not type(d):
                if type(a) is not np.ndarray:
                    raise RuntimeError(f"{op}: indices should be either on cpu or on the same device as the indexed "
                                       f"tensor (indices on {i.device}, tensor on cpu)")
                # cpu indices into a CUDA tensor, as torch allows: checked and copied over below
            if a.ndim == 0 and a.dtype.kind in "iu":
                out.append(int(a))
                continue
            out.append(a)
            basic = False
        elif isinstance(i, bool):
            out.append(i)
            basic = False
        elif isinstance(i, (list, np.ndarray)) or hasattr(i, "__cuda_array_interface__"):
            a = xp_of(d).asarray(i)
            if a.size == 0 and a.dtype.kind == "f":
                a = a.astype(np.int64)  # ``x[[]]`` selects nothing, as in torch
            if a.dtype.kind == "f":
                raise IndexError(f"{op}: tensors used as indices must be long, int, byte or bool tensors")
            if a.dtype.kind == "O":
                raise IndexError(f"{op}: unsupported nested index {i!r}")
            out.append(a)
            basic = False
        else:
            raise IndexError(f"{op}: only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables "
                             f"are valid indices (got {type(i).__name__})")
    if not basic and type(d) is not np.ndarray:
        out = _device_indices(out, d, check)
    return tuple(out), basic


def _consumed(entry) -> int:
    """How many axes of the indexed array one entry of a converted index uses up (Ellipsis aside)."""
    if entry is None or entry is Ellipsis or entry is True or entry is False:
        return 0
    return entry.ndim if getattr(entry, "dtype", None) is not None and entry.dtype.kind == "b" else 1


def _index_axes(entries: list, ndim: int):
    """(position, axis, entry) for each entry of a converted index but Ellipsis: the axis it starts at."""
    after_ellipsis = ndim - sum(_consumed(e) for e in entries)
    axis = 0
    for k, e in enumerate(entries):
        if e is Ellipsis:
            axis += after_ellipsis
            continue
        yield k, axis, e
        axis += _consumed(e)


def _out_of_bounds(values, size: int):
    """The first of ``values`` (host integers) outside torch's range [-size, size), or None."""
    bad = values[(values < -size) | (values >= size)]
    return None if not bad.size else int(bad.reshape(-1)[0])


def _index_error(value: int, axis: int, size: int):
    return IndexError(f"index {value} is out of bounds for dimension {axis} with size {size}")


def _device_indices(entries: list, d, check: bool) -> list:
    """The index arrays of an advanced index into the CUDA array ``d``, checked against their axes as torch does:
    CuPy alone would wrap an out-of-bounds index around. A cpu index array is checked at once and copied to the
    device. A device one gets a deferred check (``check_indices``: read at the next host read, as torch's
    device-side assert reports late), one shift, one comparison and one reduction; ``check=False`` for the
    library's own indices. Either error names the first bad value, as torch's cpu message does."""
    out = list(entries)
    for k, axis, e in _index_axes(entries, d.ndim):
        if getattr(e, "dtype", None) is None:
            continue
        integers = e.dtype.kind in "iu" and axis < d.ndim and e.size
        if type(e) is np.ndarray:
            value = _out_of_bounds(e, d.shape[axis]) if integers else None
            if value is not None:
                raise _index_error(value, axis, d.shape[axis])
            out[k] = move(e, device_of(d))
        elif check and integers:
            size = d.shape[axis]

            def fail(e=e, axis=axis, size=size):
                raise _index_error(_out_of_bounds(e.get(), size), axis, size)
            if e.dtype.kind == "u":
                check_indices(e, size, fail)
            else:  # [-size, size) shifted to [0, 2 size), in int64 so that a narrow dtype cannot overflow
                check_indices((e if e.dtype.itemsize == 8 else e.astype(np.int64)) + size, 2 * size, fail)
    return out


class IndexBackward0(Node):
    __slots__ = ("index", "in_shape", "basic")

    def backward(self, ns, g):
        return (ns.index_put_acc(self.in_shape, self.index, g, unique=self.basic),)

    def name(self) -> str:
        if not self.basic:
            return "IndexBackward0"
        # torch applies a basic index one part at a time and names the node after the last part that did
        # something (a full ``:`` does nothing)
        for i in reversed(self.index):
            if i.__class__ is int:
                return "SelectBackward0"
            if i is None:
                return "UnsqueezeBackward0"
            if i.__class__ is slice and i != _FULL:
                return "SliceBackward0"
        return "SliceBackward0" if any(i.__class__ is slice for i in self.index) else "AliasBackward0"


def getitem(input: Tensor, index, _trusted: bool = False) -> Tensor:
    """``input[index]``. ``_trusted``: the library's own index arrays, already in bounds (no device check)."""
    d = input._data
    idx, basic = _convert_index(index, d, check=not _trusted)
    try:
        y = d[idx]
    except IndexError as e:
        raise IndexError(f"index {index!r} is out of bounds for tensor of shape {list(d.shape)}: {e}") from None
    if not isinstance(y, type(d)):
        y = xp_of(d).asarray(y)
    node = None
    if grad_state.enabled and input.requires_grad:
        node = IndexBackward0((edge(input),))
        node.index, node.in_shape, node.basic = idx, d.shape, basic
    if basic:
        return _as_view(y, input, node, lambda ns, a, idx=idx: ns.getitem(a, idx))
    return wrap(y, node)


class IndexPutAccBackward(Node):
    """The op ``zeros(shape)[index] += g`` (what getitem's backward is); its own backward is indexing."""
    __slots__ = ("index",)

    def backward(self, ns, g):
        return (ns.getitem(g, self.index),)

    def name(self) -> str:
        return "IndexPutBackward0"


def index_put_acc(shape: tuple, index, g: Tensor, unique: bool = False) -> Tensor:
    from ..autograd.namespace import namespace_for

    y = namespace_for(g._data, False).index_put_acc(shape, index, g._data, unique)
    if grad_state.enabled and g.requires_grad:
        node = IndexPutAccBackward((edge(g),))
        node.index = index
        return wrap(y, node)
    return wrap(y)


class IndexPutBackward0(Node):
    """``self[index] = value``: the old self gets the gradient outside ``index``, value the part inside."""
    __slots__ = ("index", "value_shape", "accumulate")

    def backward(self, ns, g):
        gv = ns.sum_to(ns.getitem(g, self.index), self.value_shape) if self.value_shape is not None else None
        if self.accumulate:
            return g, gv
        keep = ns.index_put_acc(tuple(g.shape), self.index, ns.getitem(g, self.index), unique=True)
        return g - keep, gv

    def name(self) -> str:
        # torch writes a basic index through a view (an in-place copy on it: CopySlices)
        basic = all(i is None or i is Ellipsis or i.__class__ is int or i.__class__ is slice for i in self.index)
        return "CopySlices" if basic and not self.accumulate else "IndexPutBackward0"


def setitem(self: Tensor, index, value) -> None:
    """``self[index] = value`` in place, differentiable in both (repeated indices: the last write wins)."""
    d = self._data
    idx, basic = _convert_index(index, d, "setitem")
    if isinstance(value, Tensor):
        vd = value._data
        if type(vd) is not type(d):
            raise RuntimeError(f"setitem: value on {value.device} cannot be assigned into a tensor on {self.device}")
        if vd.dtype != d.dtype:
            vd = vd.astype(d.dtype)
    else:
        vd = value
        if isinstance(value, (list, tuple, np.ndarray)):
            vd = xp_of(d).asarray(value, dtype=d.dtype)
    recording = grad_state.enabled and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
    if recording:
        _check_inplace(self, "setitem")
    try:
        d[idx] = vd
    except ValueError as e:
        raise RuntimeError(f"setitem: cannot assign a value of shape {list(getattr(vd, 'shape', ()))} to the "
                           f"selection of shape {list(d[idx].shape)} of a tensor of shape {list(d.shape)}: "
                           f"{e}") from None
    self._version[0] += 1
    if recording:
        vt = value if isinstance(value, Tensor) and value.requires_grad else None
        node = IndexPutBackward0((edge(self), edge(vt) if vt is not None else None))
        node.index = idx
        node.value_shape = vt._data.shape if vt is not None else None
        node.accumulate = False
        _rebase(self, node)


def _check_inplace(t: Tensor, op: str) -> None:
    if t.grad_fn is None and t.requires_grad:
        raise RuntimeError(
            f"a leaf Variable that requires grad is being used in an in-place operation ({op}). Wrap the update in "
            "`with tinyautograd.no_grad():` (as optimizers do), or clone() the tensor first.")
    if t._view is not None and t._view[0].grad_fn is None and t._view[0].requires_grad:
        raise RuntimeError(
            f"a view of a leaf Variable that requires grad is being used in an in-place operation ({op}). Wrap the "
            "update in `with tinyautograd.no_grad():`, or clone() the leaf first.")


class CopySlicesBackward(Node):
    """An in-place op on a view, replayed on its base: the base's old value gets the gradient outside the view,
    the in-place op's node gets the gradient of the view's region."""
    __slots__ = ("view_fn", "base_shape")

    def backward(self, ns, g):
        if ns.create_graph:
            marker = ns.const(_view_mask(self.view_fn, g))
            return g * (1 - marker), self.view_fn(ns, g)
        xp_zero = g.copy()
        self.view_fn(ns, xp_zero)[...] = 0
        return xp_zero, self.view_fn(ns, g).copy()

    def name(self) -> str:
        return "CopySlices"


def _view_mask(view_fn, g: Tensor):
    """Ones on the view's region of a base-shaped array, zeros elsewhere."""
    from ..autograd.namespace import namespace_for

    arr_ns = namespace_for(g._data, False)
    mask = arr_ns.xp.zeros(g._data.shape, dtype=g._data.dtype)
    view_fn(arr_ns, mask)[...] = 1
    return mask


def _rebase(t: Tensor, node: Node) -> None:
    """Make ``node`` the new history of ``t`` after an in-place op; views carry the change to their base."""
    t.grad_fn = node
    t.requires_grad = True
    if t._view is not None:
        base, view_fn = t._view
        cs = CopySlicesBackward((edge(base) if base.requires_grad else None, node))
        cs.view_fn, cs.base_shape = view_fn, base._data.shape
        base.grad_fn = cs
        base.requires_grad = True
        # the view's own history now starts from the updated base
        t.grad_fn = _view_of_base(cs, view_fn, base._data.shape)
    else:
        base = t
    views = _live_views(base)
    if views:
        # every other live view sees the new values, so its history must start from the base's new history too
        shape = base._data.shape
        for v in views:
            if v is not t and v._view is not None and v._view[0] is base:
                v.grad_fn = _view_of_base(base.grad_fn, v._view[1], shape)
                v.requires_grad = True


def _view_of_base(base_node: Node, view_fn, base_shape: tuple) -> Node:
    vnode = _ViewOfBase((base_node,))
    vnode.view_fn, vnode.base_shape = view_fn, base_shape
    return vnode


class _ViewOfBase(Node):
    """A view's history after an in-place op on its base: the view function replayed on the base's new history
    (the gradient is scattered into zeros of the base's shape)."""
    __slots__ = ("view_fn", "base_shape")

    def backward(self, ns, g):
        return (_region_to_base(ns, self, g),)

    def name(self) -> str:
        return "AsStridedBackward0"


def _region_to_base(ns, node, g):
    shape = node.base_shape
    if ns.create_graph:
        # the scatter is the adjoint of the (linear) view function: differentiate it, recording, at zeros
        from ..autograd import grad

        zero = wrap(xp_of(g._data).zeros(shape, dtype=g._data.dtype))
        zero.requires_grad = True
        (out,) = grad(node.view_fn(ns, zero), zero, grad_outputs=g, create_graph=True)
        return out
    out = ns.xp.zeros(shape, dtype=g.dtype)
    node.view_fn(ns, out)[...] = g
    return out


def inplace_result(self: Tensor, result: Tensor, op: str) -> Tensor:
    """Write an out-of-place ``result`` into ``self`` and make its history ``self``'s (the generic in-place op)."""
    d = self._data
    r = result._data
    if r.dtype != d.dtype:
        if not np.can_cast(r.dtype, d.dtype, casting="same_kind"):
            raise RuntimeError(f"{op}: result type {_dtype._BY_NP[r.dtype]} can't be cast to the desired output type "
                               f"{self.dtype} (in-place ops keep the tensor's dtype)")
        r = r.astype(d.dtype)
    if r.shape != d.shape:
        raise RuntimeError(f"{op}: output with shape {list(d.shape)} doesn't match the broadcast shape "
                           f"{list(r.shape)}")
    recording = result.requires_grad and grad_state.enabled
    if recording:
        _check_inplace(self, op)
        _save_original(self, result.grad_fn)
    d[...] = r
    self._version[0] += 1
    if recording:
        _rebase(self, result.grad_fn)
    return self


def _save_original(self: Tensor, node: Node) -> None:
    """The op that computed the in-place result may have saved ``self`` (``z.mul_(y)`` needs the old z): give it a
    copy of the value before the write, with the history it had then, as torch saves the original self."""
    saved = node.saved if node is not None else None
    if not saved or not any(t is self for t in saved):
        return
    snapshot = wrap(self._data.copy(), self.grad_fn)
    snapshot.requires_grad = self.requires_grad
    node.saved = tuple(snapshot if t is self else t for t in saved)
    node.versions = tuple(0 if t is self else v for t, v in zip(saved, node.versions))


# -- gather / scatter ---------------------------------------------------------------------------------------------

def _check_index_tensor(index: Tensor, op: str):
    if not isinstance(index, Tensor) or index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got "
                           f"{getattr(index, 'dtype', type(index).__name__)}")


class GatherBackward0(Node):
    __slots__ = ("index", "axis", "in_shape")

    def backward(self, ns, g):
        idx = self.index if not ns.create_graph else ns.const(self.index)
        return (ns.scatter_add_along(self.in_shape, idx, g, self.axis),)


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0, etc. (``torch.gather``)."""
    _check_index_tensor(index, "gather")
    d = input._data
    axis = wrap_dim(dim, d.ndim, "gather")
    idx = index._data
    if idx.ndim != d.ndim and not (d.ndim == 0 and idx.ndim <= 1):
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                           f"({idx.ndim} vs {d.ndim})")
    for i, (a, b) in enumerate(zip(idx.shape, d.shape)):
        if i != axis and a > b:
            raise RuntimeError(f"gather(): Size does not match at dimension {i} expected index {list(idx.shape)} to "
                               f"be smaller than self {list(d.shape)} apart from dimension {axis}")
    size = d.shape[axis] if d.ndim else 1

    def fail():
        bad = int(idx.max()) if int(idx.min()) >= 0 else int(idx.min())
        raise RuntimeError(f"gather(): index {bad} is out of bounds for dimension {axis} with size {size} "
                           "(indices must be in [0, size))")

    check_indices(idx, max(size, 1), fail)
    src = d[tuple(slice(0, s) if i != axis else slice(None) for i, s in enumerate(idx.shape))]
    y = xp_of(d).take_along_axis(src, idx, axis=axis)
    if grad_state.enabled and input.requires_grad:
        node = GatherBackward0((edge(input),))
        node.index, node.axis, node.in_shape = idx, axis, d.shape
        return wrap(y, node)
    return wrap(y)


def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    if dim is None:
        from .shape import reshape

        return gather(reshape(input, -1), 0, reshape(indices, -1))
    d = input._data
    axis = wrap_dim(dim, d.ndim, "take_along_dim")
    shape = list(np.broadcast_shapes(tuple(s for i, s in enumerate(d.shape) if i != axis),
                                     tuple(s for i, s in enumerate(indices._data.shape) if i != axis)))
    in_shape = shape[:axis] + [d.shape[axis]] + shape[axis:]
    idx_shape = shape[:axis] + [indices._data.shape[axis]] + shape[axis:]
    from .shape import expand

    return gather(expand(input, in_shape), axis, expand(indices, idx_shape))


class ScatterAddAlongBackward(Node):
    __slots__ = ("index", "axis")

    def backward(self, ns, g):
        idx = self.index if not ns.create_graph else ns.const(self.index)
        return (ns.take_along(_index_block(ns, g, self.index.shape, self.axis), idx, self.axis),)

    def name(self) -> str:
        return "ScatterAddBackward0"


def _index_block(ns, g, index_shape: tuple, axis: int):
    """The leading block of ``g`` an index of ``index_shape`` addresses (gather/scatter allow an index smaller
    than the tensor in the dims other than ``axis``)."""
    if all(i == axis or s == n for i, (s, n) in enumerate(zip(index_shape, g.shape))):
        return g
    return ns.getitem(g, tuple(slice(0, s) if i != axis else slice(None) for i, s in enumerate(index_shape)))


def scatter_add_along(shape: tuple, index, src: Tensor, axis: int) -> Tensor:
    """zeros(shape) with src scattered (added) along ``axis`` at ``index`` (gather's backward)."""
    from ..autograd.namespace import namespace_for

    idx = index._data if isinstance(index, Tensor) else index
    y = namespace_for(src._data, False).scatter_add_along(shape, idx, src._data, axis)
    if grad_state.enabled and src.requires_grad:
        node = ScatterAddAlongBackward((edge(src),))
        node.index, node.axis = idx, axis
        return wrap(y, node)
    return wrap(y)


class ScatterBackward0(Node):
    """scatter/scatter_add: self gets the gradient (minus the overwritten places for scatter), src gathers."""
    __slots__ = ("index", "axis", "add", "src_shape")

    def backward(self, ns, g):
        idx = self.index if not ns.create_graph else ns.const(self.index)
        # the index may be smaller than the input in the other dims: only that block was scattered into
        g_block = _index_block(ns, g, self.index.shape, self.axis)
        gsrc = ns.take_along(g_block, idx, self.axis) if self.src_shape is not None else None
        if self.add:
            return g, gsrc
        hit = ns.scatter_add_along(tuple(g.shape), idx, ns.take_along(g_block, idx, self.axis) * 0 + 1, self.axis)
        return g * (hit == 0), gsrc

    def name(self) -> str:
        return "ScatterAddBackward0" if self.add else "ScatterBackward0"


def _scatter(input: Tensor, dim: int, index: Tensor, src, add: bool, op: str, reduce=None) -> Tensor:
    _check_index_tensor(index, op)
    d = input._data
    axis = wrap_dim(dim, d.ndim, op)
    idx = index._data
    xp = xp_of(d)
    src_t = src if isinstance(src, Tensor) else None
    if src_t is not None:
        sd = src_t._data
        if sd.dtype != d.dtype:
            sd = sd.astype(d.dtype)
        sd = sd[tuple(slice(0, s) for s in idx.shape)]
    else:
        sd = xp.full(idx.shape, src, dtype=d.dtype)
    def fail():
        bad = int(idx.max()) if int(idx.min()) >= 0 else int(idx.min())
        raise RuntimeError(f"{op}(): index {bad} is out of bounds for dimension {axis} with size {d.shape[axis]}")

    check_indices(idx, d.shape[axis], fail)
    y = d.copy()
    full = sparse_grid(xp, idx.shape)
    full[axis] = idx
    full = tuple(full)
    if add or reduce == "add":
        xp.add.at(y, full, sd)
    elif reduce == "multiply":
        if xp is not np:
            raise RuntimeError("scatter(reduce='multiply') is only supported on cpu tensors")
        np.multiply.at(y, full, sd)
    else:
        y[full] = sd
    if grad_state.enabled and (input.requires_grad or (src_t is not None and src_t.requires_grad)):
        node = ScatterBackward0((edge(input), edge(src_t) if src_t is not None else None))
        node.index, node.axis, node.add = idx, axis, add
        node.src_shape = idx.shape if src_t is not None and src_t.requires_grad else None
        if src_t is not None and src_t.requires_grad and src_t._data.shape != idx.shape:
            node.src_shape = idx.shape
            return _pad_src_grad(wrap(y, node), src_t, idx.shape)
        return wrap(y, node)
    return wrap(y)


def _pad_src_grad(out: Tensor, src: Tensor, used_shape: tuple) -> Tensor:
    # src larger than index: only its leading block is used; the engine's gradient must still be src-shaped
    node = out.grad_fn
    inner = _SrcBlock((node.next_nodes[1],))
    inner.used = tuple(slice(0, s) for s in used_shape)
    inner.full_shape = src._data.shape
    node.next_nodes = (node.next_nodes[0], inner)
    return out


class _SrcBlock(Node):
    __slots__ = ("used", "full_shape")

    def backward(self, ns, g):
        return (ns.index_put_acc(self.full_shape, self.used, g, unique=True),)


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None) -> Tensor:
    """Out-of-place ``torch.scatter``: write ``src`` (tensor or number) at ``index`` along ``dim``."""
    if src is None:
        src = value
    return _scatter(input, dim, index, src, False, "scatter", reduce)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """Out-of-place ``torch.scatter_add``: add ``src`` at ``index`` along ``dim`` (repeats accumulate)."""
    return _scatter(input, dim, index, src, True, "scatter_add")


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Pick entries along ``dim`` by a 1-D index (``torch.index_select``); repeats accumulate in backward."""
    _check_index_tensor(index, "index_select")
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    axis = wrap_dim(dim, input._data.ndim, "index_select")
    n = input._data.shape[axis] if input._data.ndim else 1
    if input._data.ndim == 0 and index._data.size != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index._data.size} value(s)")
    # torch accepts no negative indices here
    def fail():
        raise IndexError(f"index_select(): index out of range in self (dim {axis} has size {n}, indices must be in "
                         f"[0, {n - 1}])")

    check_indices(index._data, n, fail)
    if input._data.ndim == 0:
        from .shape import reshape

        return relabel(reshape(getitem(reshape(input, (1,)), index.reshape(-1), True), ()), "IndexSelectBackward0")
    return relabel(getitem(input, (slice(None),) * axis + (index.reshape(-1),), True), "IndexSelectBackward0")


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    from .shape import broadcast_tensors

    a, m = broadcast_tensors(input, mask)
    return getitem(a, m)


def nonzero(input: Tensor, *, as_tuple: bool = False):
    d = input._data
    nz = xp_of(d).nonzero(d) if d.ndim else xp_of(d).nonzero(d.reshape(1))
    if as_tuple:
        return tuple(wrap(a.astype(np.int64)) for a in nz)
    return wrap(xp_of(d).stack(nz, axis=1).astype(np.int64) if nz else xp_of(d).zeros((0, 0), dtype=np.int64))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


# -- sort / topk --------------------------------------------------------------------------------------------------

def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """Sorted values (differentiable) and their indices (``torch.sort``); returns (values, indices)."""
    from .reduction import values_indices

    d = input._data
    if d.ndim == 0:
        return values_indices(input.clone() if input.requires_grad else wrap(d.copy()),
                              wrap(xp_of(d).zeros((), dtype=np.int64)))
    axis = wrap_dim(dim, d.ndim, "sort")
    xp = xp_of(d)
    if descending:
        # stable descending order that keeps NaN first, like torch
        key = -d if d.dtype.kind in "fi" else ~d if d.dtype.kind == "b" else -(d.astype(np.int64))
        if d.dtype.kind == "f":
            key = xp.where(xp.isnan(d), -xp.inf, key)
        idx = xp.argsort(key, axis=axis, kind="stable")
    else:
        idx = xp.argsort(d, axis=axis, kind="stable")
    idx = idx.astype(np.int64)
    return values_indices(gather(input, axis, wrap(idx)), wrap(idx))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(input, dim, descending, stable)[1]


def msort(input: Tensor) -> Tensor:
    return sort(input, 0)[0]


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The k largest (or smallest) entries along ``dim`` and their indices (``torch.topk``)."""
    from .reduction import values_indices

    d = input._data
    axis = wrap_dim(dim, d.ndim, "topk") if d.ndim else 0
    n = d.shape[axis] if d.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, dimension {axis} has size {n})")
    _, idx = sort(input.detach(), axis, descending=largest)
    idx_t = wrap(xp_of(d).ascontiguousarray(idx._data[(slice(None),) * axis + (slice(0, k),)]) if d.ndim
                 else idx._data)
    return values_indices(gather(input, axis, idx_t), idx_t)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    from .reduction import values_indices

    axis = wrap_dim(dim, input._data.ndim, "kthvalue")
    vals, idx = sort(input, axis)
    v = select_along(vals, axis, k - 1, keepdim)
    i = select_along(idx, axis, k - 1, keepdim)
    return values_indices(v, i)


def select_along(t: Tensor, axis: int, i: int, keepdim: bool) -> Tensor:
    sl = (slice(None),) * axis + ((slice(i, i + 1),) if keepdim else (i,))
    return getitem(t, sl)
