"""``autograd.Function``: user-defined ops with ``forward(ctx, ...)`` / ``backward(ctx, *grads)``, as torch."""
from __future__ import annotations

import weakref

from .engine import Node, _tensor_cls, freed_error, version_error
from .grad_mode import no_grad, state as _grad_state


class FunctionCtx:
    """The ``ctx`` of a custom Function: ``save_for_backward``, ``saved_tensors``, ``needs_input_grad``,
    ``mark_non_differentiable``, ``mark_dirty``, ``set_materialize_grads``; any other attribute is free to use."""

    def __init__(self) -> None:
        self.to_save = ()
        self.non_differentiable = ()
        self.dirty = ()
        self.materialize_grads = True
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors) -> None:
        self.to_save = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self.dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


class BackwardCFunction(Node):
    """The tape node of one ``Function.apply`` call: runs the user's ``backward`` on Tensors."""

    __slots__ = ("ctx", "fn_cls", "out_meta", "index_of_output", "in_shapes")

    def backward(self, ns, g):
        from ..tensor import Tensor

        ctx = self.ctx
        if ctx is None or ctx._saved is None:
            raise freed_error(self)
        gt = g if isinstance(g, Tensor) else Tensor._wrap(g)
        for t, v in zip(ctx._saved, self.versions):
            if t is not None and t._version[0] != v:
                raise version_error(self, _unpack(t), v)
        n_out = len(self.out_meta)
        grads_out = [None] * n_out
        grads_out[self.index_of_output] = gt
        if ctx.materialize_grads:
            from ..creation import zeros

            grads_out = [x if x is not None else zeros(shape, dtype=dt, device=dev)
                         for x, (shape, dt, dev) in zip(grads_out, self.out_meta)]
        res = self.fn_cls.backward(ctx, *grads_out)
        if not isinstance(res, tuple):
            res = (res,)
        n_in = len(self.next_nodes)
        if len(res) < n_in or any(r is not None for r in res[n_in:]):
            raise RuntimeError(f"function {self.fn_cls.__name__}Backward returned an incorrect number of gradients "
                               f"(expected {n_in}, got {len(res)})")
        out = []
        for i in range(n_in):
            r = res[i]
            if r is None or self.next_nodes[i] is None:
                out.append(None)
                continue
            if not isinstance(r, Tensor):
                raise TypeError(f"{self.fn_cls.__name__}.backward must return Tensors or None, got "
                                f"{type(r).__name__} for input {i}")
            shape = self.in_shapes[i]
            if tuple(r.shape) != shape and _sums_to(tuple(r.shape), shape):
                # torch sums a gradient that broadcasts over the input back down to the input's shape
                r = ns_sum_to(r, shape)
            if tuple(r.shape) != shape:
                raise RuntimeError(f"Function {self.fn_cls.__name__}Backward returned an invalid gradient at index {i}"
                                   f" - got {list(r.shape)} but expected shape compatible with {list(shape)}")
            out.append(r if ns.create_graph else r._data)
        return tuple(out)

    def release(self) -> None:
        # one node per differentiable output shares the ctx: free it when the last of them has run
        ctx = self.ctx
        if ctx is not None and ctx._saved is not None:
            ctx._live_nodes -= 1
            if ctx._live_nodes <= 0:
                ctx._saved = None

    def name(self) -> str:
        return f"{self.fn_cls.__name__}Backward"


class _SavedOutput:
    """An output of the Function saved for its own backward. Holding the output tensor would make a cycle (output ->
    node -> ctx -> output), so only its array and version counter are kept, and the node weakly; ``saved_tensors``
    rebuilds the tensor with the node as its history (so double backward flows through it)."""

    __slots__ = ("data", "_version", "node_ref")

    def __init__(self, t, node: Node) -> None:
        self.data = t._data
        self._version = t._version
        self.node_ref = weakref.ref(node)

    def unpack(self):
        t = _tensor_cls[0]._wrap(self.data)
        t._version = self._version
        node = self.node_ref()
        if node is not None:
            t.grad_fn = node
            t.requires_grad = True
        return t


def _unpack(t):
    return t.unpack() if type(t) is _SavedOutput else t


class Function:
    """Subclass with ``@staticmethod forward(ctx, *args)`` and ``@staticmethod backward(ctx, *grad_outputs)``, then
    call ``MyFn.apply(*args)``."""

    _backward_cls = BackwardCFunction

    def __init_subclass__(cls, **kwargs) -> None:
        # each Function gets its own node class, so type(y.grad_fn).__name__ reads "MyFnBackward" as in torch
        super().__init_subclass__(**kwargs)
        cls._backward_cls = type(f"{cls.__name__}Backward", (BackwardCFunction,), {"__slots__": ()})

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must implement backward(ctx, *grad_outputs) to be "
                                  "differentiated")

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor
        from ..ops._util import edge

        ctx = FunctionCtx()
        tensor_args = [a if isinstance(a, Tensor) else None for a in args]
        ctx.needs_input_grad = tuple(bool(t is not None and t.requires_grad) for t in tensor_args)
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        record = _grad_state.enabled and any(ctx.needs_input_grad)
        saved = tuple(ctx.to_save)
        ctx._saved = saved
        ctx.to_save = ()  # held from now on by _saved only (which must not hold this call's outputs)
        if not record:
            return outputs
        next_nodes = tuple(edge(t) if t is not None else None for t in tensor_args)
        out_meta = [(tuple(o.shape), o.dtype, o.device) if isinstance(o, Tensor) else None for o in outs]
        non_diff = {id(t) for t in ctx.non_differentiable}
        results = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor) or id(o) in non_diff or not o.is_floating_point():
                results.append(o)
                continue
            node = cls._backward_cls(next_nodes)
            node.ctx, node.fn_cls, node.out_meta, node.index_of_output = ctx, cls, out_meta, i
            node.in_shapes = tuple(tuple(t.shape) if t is not None else () for t in tensor_args)
            node.versions = tuple(t._version[0] if t is not None else 0 for t in saved)
            if o._view is not None or any(o is a for a in tensor_args):
                # an input returned as is (or a view of one): give the output its own identity on the tape
                o = Tensor._wrap(o._data)
            o.grad_fn = node
            o.requires_grad = True
            results.append(o)
        own = {id(r): r.grad_fn for r in results
               if isinstance(r, Tensor) and isinstance(r.grad_fn, BackwardCFunction) and r.grad_fn.ctx is ctx}
        ctx._live_nodes = len(own)
        if any(id(t) in own for t in saved):
            ctx._saved = tuple(_SavedOutput(t, own[id(t)]) if id(t) in own else t for t in saved)
        return results[0] if single else tuple(results)


def _saved_tensors(self):
    if self._saved is None:
        raise RuntimeError("Trying to backward through the graph a second time (or directly access saved tensors "
                           "after they have already been freed). Specify retain_graph=True if you need to.")
    return tuple(_unpack(t) for t in self._saved)


FunctionCtx.saved_tensors = property(_saved_tensors)
FunctionCtx.saved_variables = property(_saved_tensors)


def _sums_to(gshape: tuple, shape: tuple) -> bool:
    """Whether ``shape`` broadcasts to ``gshape`` (so a gradient of ``gshape`` can be summed down to it)."""
    if len(shape) > len(gshape):
        return False
    lead = len(gshape) - len(shape)
    return all(s == 1 or s == gs for s, gs in zip(shape, gshape[lead:]))


def ns_sum_to(r, shape: tuple):
    from .namespace import tensor_namespace

    return tensor_namespace.sum_to(r, shape)
