"""The computational graph behind a tensor, as Graphviz DOT text (:func:`to_dot`) or a matplotlib figure
(:func:`draw`), drawn the way the course draws it: data flows left to right, forward values along the edges and
gradients (red) under them.

The graph is found exactly as torch exposes it: from ``tensor.grad_fn`` through ``node.next_functions``; a leaf
that requires grad is the ``variable`` of its ``AccumulateGrad`` node. Since only that public surface is used,
both functions also draw torch tensors (the torch counterpart is the third-party ``torchviz.make_dot``).

What can be shown: a node does not keep its output, so a value appears on an edge only where its tensor is known:
leaves, the root, and intermediate tensors passed in ``names``. Gradients appear where ``.grad`` holds them after
``backward()``: leaves, and non-leaf tensors on which ``retain_grad()`` was called. Tensors that do not require
grad (constants) are not part of the graph, in torch as here.
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["to_dot", "draw"]

_FILL = {"op": "#dde6f5", "leaf": "#d4ecd4", "output": "#f6e2c4"}


@dataclass
class _Node:
    key: str
    kind: str  # "op", "leaf" or "output"
    lines: list[str]


@dataclass
class _Edge:
    src: str
    dst: str
    value: list[str] = field(default_factory=list)  # the name and forward value of the tensor on this edge
    grad: list[str] = field(default_factory=list)  # its gradient


@dataclass
class _Graph:
    nodes: list[_Node]
    edges: list[_Edge]


def _shape_text(tensor: Any) -> str:
    shape = tuple(tensor.shape)
    return "scalar" if not shape else "(" + ", ".join(str(s) for s in shape) + ")"


def _array_of(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy())


def _format_array(array: np.ndarray) -> list[str]:
    """Compact text of a small array (4 significant digits), one line per row of a matrix."""
    def number(v: Any) -> str:
        return f"{float(v):.4g}" if array.dtype.kind in "fc" else str(v)

    if array.ndim == 0:
        return [number(array)]
    text = np.array2string(array, separator=", ", formatter={"all": number}, max_line_width=10_000)
    return text.splitlines()


def _tensor_text(tensor: Any | None, max_elements: int) -> list[str]:
    if tensor is None:
        return []
    if int(np.prod(tuple(tensor.shape), dtype=np.int64)) > max_elements:
        return [_shape_text(tensor)]
    return _format_array(_array_of(tensor))


def _grad_of(tensor: Any) -> Any | None:
    # torch warns when .grad of a non-leaf without retain_grad is read; None is the answer we want then
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tensor.grad


def _build(tensor: Any, names: Mapping[str, Any] | None, show_values: bool, show_grads: bool,
           max_elements: int) -> _Graph:
    """Walk the graph behind ``tensor`` (iteratively: deep graphs must not hit the recursion limit)."""
    if not hasattr(tensor, "grad_fn"):
        raise TypeError(f"viz: expected a tensor, got {type(tensor).__name__}")
    name_by_tensor: dict[int, str] = {}
    named_output: dict[int, tuple[str, Any]] = {}  # id(grad_fn) -> (name, tensor) for named non-leaf tensors
    for name, value in (names or {}).items():
        if not hasattr(value, "grad_fn"):
            raise TypeError(f"viz: names[{name!r}] must be a tensor, got {type(value).__name__}")
        name_by_tensor[id(value)] = name
        if value.grad_fn is not None:
            named_output[id(value.grad_fn)] = (name, value)

    def edge_label(t: Any | None, name: str | None) -> tuple[list[str], list[str]]:
        value = _tensor_text(t, max_elements) if (show_values and t is not None) else []
        if name is not None and value:
            value = [f"{name} = {value[0]}"] + value[1:]
        elif name is not None:
            value = [name]
        grad = _tensor_text(_grad_of(t), max_elements) if (show_grads and t is not None) else []
        return value, grad

    nodes: list[_Node] = []
    edges: list[_Edge] = []
    root_name = name_by_tensor.get(id(tensor))
    if tensor.grad_fn is None:
        # a leaf on its own: one tensor node, its value and gradient inside it
        value, grad = edge_label(tensor, None)
        lines = [root_name or "tensor", _shape_text(tensor)] + value + [f"grad {g}" for g in grad]
        return _Graph([_Node("leaf0", "leaf", lines)], [])

    keys: dict[int, str] = {}
    leaf_keys: dict[int, str] = {}
    keep_alive: list[Any] = []  # ids are only unique while the objects live

    def key_of(node: Any) -> tuple[str, bool]:
        if hasattr(node, "variable"):
            variable = node.variable
            # an AccumulateGrad whose tensor is gone (torch keeps only a weak reference) is still a leaf
            ident = id(variable) if variable is not None else id(node)
            if ident not in leaf_keys:
                leaf_keys[ident] = f"leaf{len(leaf_keys)}"
                keep_alive.append(variable if variable is not None else node)
                lines = ([name_by_tensor.get(id(variable), "leaf"), _shape_text(variable)]
                         if variable is not None else ["leaf"])
                nodes.append(_Node(leaf_keys[ident], "leaf", lines))
                return leaf_keys[ident], True
            return leaf_keys[ident], False
        if id(node) not in keys:
            keys[id(node)] = f"op{len(keys)}"
            keep_alive.append(node)
            nodes.append(_Node(keys[id(node)], "op", [node.name()]))
            return keys[id(node)], True
        return keys[id(node)], False

    nodes.append(_Node("output", "output", [root_name or "output", _shape_text(tensor)]))
    root_key, _ = key_of(tensor.grad_fn)
    value, grad = edge_label(tensor, None)
    edges.append(_Edge(root_key, "output", value, grad))
    stack = [tensor.grad_fn]
    while stack:
        node = stack.pop()
        node_key = keys[id(node)]
        unvisited = []
        for child, _ in node.next_functions:
            if child is None:
                continue
            child_key, new = key_of(child)
            if hasattr(child, "variable"):
                value, grad = edge_label(child.variable, None)
            else:
                name, known = named_output.get(id(child), (None, None))
                value, grad = edge_label(known, name)
                if new:
                    unvisited.append(child)
            edges.append(_Edge(child_key, node_key, value, grad))
        # first inputs first, so a node's inputs are listed (and drawn) top to bottom in argument order
        stack.extend(reversed(unvisited))
    return _Graph(nodes, edges)


def _html(lines: list[str], color: str | None = None) -> str:
    body = "<br/>".join(html.escape(line, quote=False) for line in lines)
    return f'<font color="{color}">{body}</font>' if color and body else body


def to_dot(tensor: Any, show_values: bool = True, show_grads: bool = True, names: Mapping[str, Any] | None = None,
           max_elements: int = 6) -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Op nodes (ellipses) carry ``grad_fn.name()``; tensor nodes (boxes) are the leaves that require grad and the
    output, labelled with their name from ``names`` ({name: tensor}) and their shape. Every edge carries the
    tensor flowing along it: its name (for named intermediate tensors), its forward value and, under it in red,
    its gradient, for tensors with at most ``max_elements`` elements (larger ones show their shape).

    Render with ``dot -Tpng``; :func:`draw` needs no Graphviz. Torch counterpart: ``torchviz.make_dot``.
    """
    graph = _build(tensor, names, show_values, show_grads, max_elements)
    out = ["digraph {", '  graph [rankdir=LR, nodesep=0.4, ranksep=0.9];',
           '  node [fontname="Helvetica", fontsize=11, style=filled];',
           '  edge [fontname="Helvetica", fontsize=10];']
    for node in graph.nodes:
        shape = "ellipse" if node.kind == "op" else "box"
        out.append(f'  {node.key} [label=<{_html(node.lines)}>, shape={shape}, fillcolor="{_FILL[node.kind]}"];')
    for edge in graph.edges:
        parts = [p for p in (_html(edge.value), _html(edge.grad, "red")) if p]
        label = f" [label=<{'<br/>'.join(parts)}>]" if parts else ""
        out.append(f"  {edge.src} -> {edge.dst}{label};")
    out.append("}")
    return "\n".join(out) + "\n"


# -- matplotlib rendering ----------------------------------------------------------------------------------------
_CHAR_W = 0.07  # inches per character at the fontsize used below (a little over the average glyph)
_LINE_H = 0.19  # inches per text line


def _layers(graph: _Graph) -> dict[str, int]:
    """Column of each node: ops and the output at their longest distance from the leaves, each leaf one column
    before its first consumer, so a late input (the course's tax) sits next to the op that uses it."""
    preds: dict[str, list[str]] = {n.key: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n.key: [] for n in graph.nodes}
    for e in graph.edges:
        preds[e.dst].append(e.src)
        succs[e.src].append(e.dst)
    kind = {n.key: n.kind for n in graph.nodes}
    layer: dict[str, int] = {}
    # Kahn's order over the whole DAG; leaves start at 0 for the longest-path pass
    indegree = {k: len(v) for k, v in preds.items()}
    ready = [k for k, d in indegree.items() if d == 0]
    order = []
    while ready:
        k = ready.pop()
        order.append(k)
        for s in succs[k]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    for k in order:
        layer[k] = 1 + max((layer[p] for p in preds[k]), default=-1)
    for k in order:
        if kind[k] == "leaf" and succs[k]:
            layer[k] = min(layer[s] for s in succs[k]) - 1
    return layer


def _order_rows(graph: _Graph, layer: dict[str, int]) -> list[list[str]]:
    """Nodes per column, ordered by the barycenter heuristic to keep edge crossings few."""
    columns: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for n in graph.nodes:
        columns[layer[n.key]].append(n.key)
    neighbours: dict[str, list[str]] = {n.key: [] for n in graph.nodes}
    for e in graph.edges:
        neighbours[e.src].append(e.dst)
        neighbours[e.dst].append(e.src)
    for sweep in range(4):
        sequence = range(1, len(columns)) if sweep % 2 == 0 else range(len(columns) - 2, -1, -1)
        position = {k: i - (len(col) - 1) / 2 for col in columns for i, k in enumerate(col)}
        for c in sequence:
            def centre(k: str) -> float:
                ys = [position[m] for m in neighbours[k] if layer[m] != c]
                return sum(ys) / len(ys) if ys else position[k]

            columns[c].sort(key=centre)
            position.update({k: i - (len(columns[c]) - 1) / 2 for i, k in enumerate(columns[c])})
    return columns


def draw(tensor: Any, ax: Any = None, show_values: bool = True, show_grads: bool = True,
         names: Mapping[str, Any] | None = None, max_elements: int = 6, title: str | None = None) -> Any:
    """Draw the graph of :func:`to_dot` with matplotlib alone (no Graphviz): columns by depth from left to right,
    ops as rounded boxes, leaves green, the output orange, forward values above each edge and gradients in red
    below. Draws into ``ax`` when given (its axis is switched off), else into a new figure sized to the graph.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    graph = _build(tensor, names, show_values, show_grads, max_elements)
    by_key = {n.key: n for n in graph.nodes}
    layer = _layers(graph) if graph.edges else {graph.nodes[0].key: 0}
    columns = _order_rows(graph, layer)

    def box(node: _Node) -> tuple[float, float]:
        return (max(len(s) for s in node.lines) * _CHAR_W + 0.3, len(node.lines) * _LINE_H + 0.2)

    def label_size(lines: list[str]) -> tuple[float, float]:
        return (max((len(s) for s in lines), default=0) * _CHAR_W * 0.9, len(lines) * _LINE_H)

    size = {k: box(n) for k, n in by_key.items()}
    # each gap between columns is wide enough for the widest edge label leaving the left column
    gap = [0.7] * len(columns)
    label_h = 0.0
    for e in graph.edges:
        w = max(label_size(e.value)[0], label_size(e.grad)[0])
        gap[layer[e.src]] = max(gap[layer[e.src]], w + 0.4)
        label_h = max(label_h, label_size(e.value)[1] + label_size(e.grad)[1])
    x_of: dict[str, float] = {}
    x = 0.0
    for c, col in enumerate(columns):
        width = max(size[k][0] for k in col) if col else 0.0
        x += width / 2
        for k in col:
            x_of[k] = x
        x += width / 2 + gap[c]
    row_h = max(max(h for _, h in size.values()), label_h) + 0.45
    y_of = {k: ((len(col) - 1) / 2 - i) * row_h for col in columns for i, k in enumerate(col)}

    xmin = min(x_of[k] - size[k][0] / 2 for k in by_key) - 0.2
    xmax = max(x_of[k] + size[k][0] / 2 for k in by_key) + 0.2
    ymax = max(abs(y_of[k]) + size[k][1] / 2 for k in by_key) + label_h / 2 + 0.2
    if ax is None:
        fig, ax = plt.subplots(figsize=(xmax - xmin, 2 * ymax + (0.3 if title else 0.0)))
        fig.subplots_adjust(0, 0, 1, 0.92 if title else 1)
        scale = 1.0
    else:
        # sizes above are in inches at one data unit per inch: shrink the text to what the given axes hold
        fig = ax.figure
        width, height = ax.get_position().size * fig.get_size_inches()
        scale = min(1.0, width / (xmax - xmin), height / (2 * ymax))
        # widen the limits to the axes' own proportions so a data unit is as long across as it is up
        extra = width / scale - (xmax - xmin)
        xmin, xmax = xmin - extra / 2, xmax + extra / 2
        ymax = height / scale / 2
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(-ymax, ymax)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)

    for e in graph.edges:
        x0, y0 = x_of[e.src] + size[e.src][0] / 2, y_of[e.src]
        x1, y1 = x_of[e.dst] - size[e.dst][0] / 2, y_of[e.dst]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.0, shrinkA=0, shrinkB=0), zorder=1)
        # labels sit over the part of the edge in the gap right after the source column
        lx = x0 + min(gap[layer[e.src]], x1 - x0) / 2
        ly = y0 + (y1 - y0) * (lx - x0) / max(x1 - x0, 1e-9)
        if e.value:
            ax.text(lx, ly + 0.04, "\n".join(e.value), ha="center", va="bottom", fontsize=8 * scale, zorder=3,
                    bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.8))
        if e.grad:
            ax.text(lx, ly - 0.04, "\n".join(e.grad), ha="center", va="top", fontsize=8 * scale, color="#c00000",
                    zorder=3, bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.8))
    for k, node in by_key.items():
        w, h = size[k]
        style = "round,pad=0.02,rounding_size=0.15" if node.kind == "op" else "square,pad=0.02"
        ax.add_patch(FancyBboxPatch((x_of[k] - w / 2, y_of[k] - h / 2), w, h, boxstyle=style,
                                    fc=_FILL[node.kind], ec="0.3", lw=1.0, zorder=2))
        ax.text(x_of[k], y_of[k], "\n".join(node.lines), ha="center", va="center", fontsize=9 * scale, zorder=4,
                fontweight="bold" if node.kind != "op" else "normal")
    return fig
