"""The tape and the engine.

Every differentiable op that runs while grad mode is on, with an input that requires grad, records one ``Node``:
its backward formula, the values it saved, and the nodes of its inputs (``next_nodes``). Each node takes a
number from a global counter when it is made, so recording order is a topological order: ``backward`` replays
the reachable nodes in decreasing sequence number from a heap, summing gradients that fan in, without recursion.

Nodes point to their inputs' nodes and never to their own outputs, so dropping the last reference to a result
frees its whole graph by reference counting. A leaf that requires grad is reached through its
``AccumulateGrad`` node, which holds the leaf weakly.
"""
from __future__ import annotations

import heapq
import itertools
import sys
import traceback
import weakref

from ..backend import array_module


def _namespace_for(g, create_graph):
    from .namespace import namespace_for

    return namespace_for(g, create_graph)
from .grad_mode import state as _grad_state

anomaly_traces: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

_counter = itertools.count()


class Node:
    """One recorded op. Subclasses define ``backward(self, ns, grad)`` returning one gradient per input (or
    None), written with operators and the namespace ``ns`` so the same formula runs on raw arrays (first-order
    backward) and on Tensors (``create_graph=True``, recorded again: higher-order derivatives)."""

    # out_version: the version counter of the output, set by Tensor._wrap on nodes that keep their output array
    __slots__ = ("next_nodes", "seq", "saved", "versions", "shapes", "hooks", "out_version", "__weakref__")
    has_out = False  # subclasses that keep their output array in ``out`` set this

    def __init__(self, next_nodes: tuple) -> None:
        self.next_nodes = next_nodes
        self.seq = next(_counter)
        self.saved = ()
        self.versions = ()
        self.shapes = None
        self.hooks = None
        if _grad_state.anomaly:
            anomaly_traces[self] = "".join(traceback.format_stack()[:-2])

    def backward(self, ns, grad):
        raise RuntimeError(f"{type(self).__name__} has no backward formula")

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self) -> tuple:
        return tuple((n, 0) for n in self.next_nodes)

    def register_hook(self, hook):
        """Call ``hook(grad_inputs, grad_outputs)`` after this node's backward (torch's Node.register_hook)."""
        return _add_hook(self, ("post", hook))

    def register_prehook(self, hook):
        return _add_hook(self, ("pre", hook))

    def release(self) -> None:
        """Drop saved values after a backward without retain_graph; a later use raises a clear error."""
        if self.saved:
            self.saved = None
        if self.has_out:
            self.out = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` takes the hook off again."""

    _ids = itertools.count()

    def __init__(self, hooks_list: list, entry) -> None:
        self._ref = hooks_list
        self._entry = entry
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        try:
            self._ref.remove(self._entry)
        except ValueError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _add_hook(node: Node, entry) -> RemovableHandle:
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(entry)
    return RemovableHandle(node.hooks, entry)


class AccumulateGrad(Node):
    """The node of a leaf tensor that requires grad: adds incoming gradients into ``leaf.grad``."""

    __slots__ = ("leaf_ref",)

    def __init__(self, leaf) -> None:
        self.next_nodes = ()
        self.seq = -1
        self.saved = ()
        self.versions = ()
        self.shapes = None
        self.hooks = None
        self.leaf_ref = weakref.ref(leaf)

    @property
    def variable(self):
        return self.leaf_ref()


def freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time (or directly access saved tensors after they have "
        f"already been freed) in {node.name()}. Saved intermediate values of the graph are freed when you call "
        ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a "
        "second time or if you need to access saved tensors after calling backward.")


def version_error(node: Node, tensor, saved_version: int) -> RuntimeError:
    producer = tensor.grad_fn.name() if tensor.grad_fn is not None else "a leaf"
    return _version_message(node, tensor.dtype.name, tensor.shape, producer, tensor._version[0], saved_version)


def output_version_error(node: Node) -> RuntimeError:
    """The output that ``node`` saved (as an array) was modified in place after the forward."""
    out = node.out
    return _version_message(node, str(out.dtype), out.shape, node.name(), node.out_version[0], 0)


def _version_message(node: Node, dtype_name: str, shape, producer: str, now: int, expected: int) -> RuntimeError:
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{dtype_name} tensor of shape {list(shape)}], which is output 0 of {producer}, is at version {now}; "
        f"expected version {expected} instead (saved by {node.name()}). Hint: replace the in-place operation "
        "with an out-of-place one (e.g. `x = x + 1` instead of `x += 1`), or clone() the tensor before modifying it.")


def run_backward(roots, grads, retain_graph: bool, create_graph: bool, inputs=None, accumulate: bool = True,
                 allow_unused: bool = True):
    """Replay the tape from ``roots`` (tensors) seeded with ``grads`` (arrays, or Tensors when create_graph).

    With ``accumulate`` the leaves' ``.grad`` (or the given ``inputs``' ``.grad``) receive the gradients; without
    it (autograd.grad) the gradients for ``inputs`` are returned instead.
    """
    from .namespace import namespace_for  # engine <-> namespace are one module pair; bound at first use

    Tensor = _tensor_cls[0]
    capture = None
    stop_at = None
    if inputs is not None:
        # gradients are wanted for these tensors only: leaves by their accumulator, non-leaves by their node
        capture = {}
        for i, t in enumerate(inputs):
            if not t.requires_grad:
                raise RuntimeError(f"autograd: input {i} (shape {list(t.shape)}) does not require grad, so no "
                                   "gradient can be computed for it. Call .requires_grad_() on it first.")
            key = t.grad_fn if t.grad_fn is not None else t._accumulator()
            capture.setdefault(key, []).append(i)
        stop_at = _nodes_leading_to(roots, capture)
    results = [None] * (len(inputs) if inputs is not None else 0)

    pending: dict = {}
    heap: list = []
    leaf_grads: dict = {}
    ns = None
    for root, g in zip(roots, grads):
        node = root.grad_fn
        if node is None:
            node = root._accumulator()
        ns = namespace_for(g, create_graph)
        if node.seq < 0:
            _add_to(leaf_grads, node, g)
            continue
        if node in pending:
            pending[node] = pending[node] + g
        else:
            pending[node] = g
            heapq.heappush(heap, (-node.seq, node))

    ns_type = None if create_graph else type(grads[0]) if grads else None
    prev_enabled = _grad_state.enabled
    _grad_state.enabled = create_graph
    anomaly = _grad_state.anomaly
    heappush, heappop = heapq.heappush, heapq.heappop
    direct = None  # the only pending node, processed without a heap round trip (chains)
    if len(heap) == 1:
        direct = heap.pop()[1]
    try:
        if capture is None and not anomaly and not create_graph:
            _replay_first_order(direct, heap, pending, leaf_grads, ns, ns_type, retain_graph, Tensor)
            direct = None
            heap = ()
            pending = {}
        while direct is not None or heap:
            if direct is not None:
                node = direct
                direct = None
            else:
                node = heappop(heap)[1]
            g = pending.pop(node)
            if not create_graph and type(g) is not ns_type:
                # a graph can cross devices (.to / .cuda): the array module follows the gradient
                ns = namespace_for(g, False)
                ns_type = type(g)
            if node.hooks is not None:
                g = _run_pre_hooks(node, g, ns, Tensor)
            if capture is not None:
                idx = capture.get(node)
                if idx is not None:
                    for i in idx:
                        results[i] = g if results[i] is None else results[i] + g
                if stop_at is not None and node not in stop_at:
                    continue
            out_grads = node.backward(ns, g)
            if anomaly:
                _check_anomaly(node, out_grads, ns)
            if not retain_graph:
                node.release()
            if node.hooks is not None:
                _run_post_hooks(node, out_grads, g, ns, Tensor)
            for nxt, ng in zip(node.next_nodes, out_grads):
                if nxt is None or ng is None:
                    continue
                if nxt.seq < 0:
                    if stop_at is not None and nxt not in stop_at:
                        continue
                    _add_to(leaf_grads, nxt, ng)
                elif nxt in pending:
                    pending[nxt] = pending[nxt] + ng
                elif stop_at is None or nxt in stop_at:
                    pending[nxt] = ng
                    if direct is None and not heap:
                        direct = nxt
                    else:
                        if direct is not None:
                            heappush(heap, (-direct.seq, direct))
                            direct = None
                        heappush(heap, (-nxt.seq, nxt))
    finally:
        _grad_state.enabled = prev_enabled

    if capture is not None:
        for acc, g in leaf_grads.items():
            idx = capture.get(acc)
            if idx is None:
                continue
            if acc.hooks is not None:
                g = _run_pre_hooks(acc, g, ns, Tensor)
            for i in idx:
                results[i] = g if results[i] is None else results[i] + g
        if accumulate:
            for i, t in enumerate(inputs):
                # a non-leaf that retains its grad got it from its retain hook already
                if results[i] is not None and not (t.grad_fn is not None and t.retains_grad):
                    _accumulate_into(t, results[i], create_graph, Tensor)
            return None
        return results
    while leaf_grads:
        acc, g = leaf_grads.popitem()
        leaf = acc.leaf_ref()
        if leaf is None:
            continue
        if acc.hooks is not None:
            g = _run_pre_hooks(acc, g, ns, Tensor)
        owned = _engine_owned(g)  # before the call below puts g on the stack once more
        _accumulate_into(leaf, g, create_graph, Tensor, owned)
    return None


# CPython's reference counts are exact up to 3.13 (3.14 may borrow references on the stack): there, an array whose
# only references are the caller's local and this function's argument was made by a backward formula in this pass
# and reached nobody else (no other leaf, hook, retained graph, saved tensor or user gradient holds it)
_EXACT_REFCOUNTS = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


def _engine_owned(g) -> bool:
    """Whether a leaf may keep ``g`` itself as its new ``.grad`` buffer instead of a copy (torch steals a gradient
    whose use count is 1 the same way): saves a copy (a kernel launch on CUDA) per parameter per step."""
    return (_EXACT_REFCOUNTS and getattr(g, "base", False) is None and getattr(g.flags, "writeable", True)
            and sys.getrefcount(g) <= 3)


def _replay_first_order(direct, heap, pending, leaf_grads, ns, ns_type, retain_graph, Tensor) -> None:
    """The common ``loss.backward()`` loop: raw arrays, no captured inputs, no anomaly checks. The gradient of a
    node taken straight from its predecessor (a chain) stays in a local instead of the pending dict."""
    heappush, heappop = heapq.heappush, heapq.heappop
    direct_g = pending.pop(direct) if direct is not None else None
    while True:
        if direct is not None:
            node, g = direct, direct_g
            direct = None
        elif heap:
            node = heappop(heap)[1]
            g = pending.pop(node)
        else:
            return
        if type(g) is not ns_type:
            # a graph can cross devices (.to / .cuda): the array module follows the gradient
            ns = _namespace_for(g, False)
            ns_type = type(g)
        hooks = node.hooks
        if hooks is not None:
            g = _run_pre_hooks(node, g, ns, Tensor)
        out_grads = node.backward(ns, g)
        if not retain_graph:
            node.release()
        if hooks is not None:
            _run_post_hooks(node, out_grads, g, ns, Tensor)
        for nxt, ng in zip(node.next_nodes, out_grads):
            if nxt is None or ng is None:
                continue
            if nxt.seq < 0:
                prev = leaf_grads.get(nxt)
                leaf_grads[nxt] = ng if prev is None else prev + ng
            elif nxt is direct:
                direct_g = direct_g + ng
            elif nxt in pending:
                pending[nxt] = pending[nxt] + ng
            elif direct is None and not heap:
                direct, direct_g = nxt, ng
            else:
                if direct is not None:
                    pending[direct] = direct_g
                    heappush(heap, (-direct.seq, direct))
                    direct = None
                pending[nxt] = ng
                heappush(heap, (-nxt.seq, nxt))


_tensor_cls: list = [None]


def _add_to(d: dict, key, g) -> None:
    prev = d.get(key)
    d[key] = g if prev is None else prev + g


def _accumulate_into(t, g, create_graph: bool, Tensor, owned: bool = False) -> None:
    if create_graph:
        if not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        if g.dtype is not t.dtype:
            g = g.to(t.dtype)
        t.grad = g if t.grad is None else t.grad + g
        return
    if isinstance(g, Tensor):
        g = g._data
    xp_shape = getattr(g, "shape", None)
    if xp_shape != t._data.shape:
        g = _broadcast_or_fail(g, t)
    if t.grad is None:
        # own a fresh buffer: the same array may have been handed to several leaves (e.g. by an add), or be a
        # view, or be held by a hook or the caller; only an array nobody else holds is kept as it is
        t.grad = Tensor._wrap(g if owned and g.dtype == t._data.dtype else g.astype(t._data.dtype, copy=True))
    else:
        buf = t.grad._data
        if g.dtype != buf.dtype:
            g = g.astype(buf.dtype)
        if t.grad.requires_grad:
            t.grad = t.grad + Tensor._wrap(g)
        else:
            buf += g
            t.grad._version[0] += 1


def _broadcast_or_fail(g, t):
    g = array_module(t._data).asarray(g, dtype=t._data.dtype)
    if g.shape != t._data.shape:
        raise RuntimeError(f"backward: a gradient of shape {list(g.shape)} reached a leaf of shape "
                           f"{list(t._data.shape)}; the backward formula or hook that produced it is wrong.")
    return g


def _run_pre_hooks(node: Node, g, ns, Tensor):
    # tensor hooks first, in registration order; retain_grad sees the hooked gradient (as torch)
    hooks = sorted(node.hooks, key=lambda entry: entry[0] == "retain")
    for kind, hook in hooks:
        if kind == "retain":
            t = hook()
            if t is not None:
                gt = g if isinstance(g, Tensor) else Tensor._wrap(g)
                if t.grad is None:
                    t.grad = gt if ns.create_graph else Tensor._wrap(gt._data.copy())
                else:
                    t.grad = t.grad + gt
        elif kind == "tensor":
            gt = g if isinstance(g, Tensor) else Tensor._wrap(g)
            res = hook(gt)
            if res is not None:
                if not isinstance(res, Tensor):
                    raise TypeError(f"a tensor hook returned {type(res).__name__}; it must return a Tensor or None")
                if tuple(res.shape) != tuple(gt.shape):
                    raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the size of value: "
                                       f"expected {list(gt.shape)}, got {list(res.shape)}")
                g = res if ns.create_graph else res._data
        elif kind == "pre":
            res = hook((_as_tensor(g, Tensor),))
            if res is not None:
                g = res[0] if ns.create_graph else res[0]._data
    return g


def _run_post_hooks(node: Node, out_grads, g, ns, Tensor) -> None:
    for kind, hook in list(node.hooks):
        if kind == "post":
            hook(tuple(_as_tensor(x, Tensor) for x in out_grads), (_as_tensor(g, Tensor),))


def _as_tensor(g, Tensor):
    if g is None or isinstance(g, Tensor):
        return g
    return Tensor._wrap(g)


def _nodes_leading_to(roots, capture: dict) -> set:
    """The nodes from which some node in ``capture`` is reachable (iterative; avoids work on unused branches)."""
    targets = set(capture)
    order = []
    seen = set()
    stack = []
    for r in roots:
        n = r.grad_fn if r.grad_fn is not None else r._accumulator()
        if n not in seen:
            seen.add(n)
            stack.append(n)
    while stack:
        n = stack.pop()
        order.append(n)
        for m in n.next_nodes:
            if m is not None and m not in seen:
                seen.add(m)
                stack.append(m)
    useful = set()
    # decreasing seq puts consumers first; walk increasing so inputs are decided before their consumers
    for n in sorted(order, key=lambda n: n.seq):
        if n in targets or any(m in useful for m in n.next_nodes if m is not None):
            useful.add(n)
    return useful


def _check_anomaly(node: Node, out_grads, ns) -> None:
    for i, g in enumerate(out_grads):
        if g is None:
            continue
        arr = g._data if hasattr(g, "_data") else g
        xp = ns.xp
        if bool(xp.isnan(arr).any()):
            trace = anomaly_traces.get(node)
            where = f"\nThe forward call that created it:\n{trace}" if trace else ""
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.{where}")
