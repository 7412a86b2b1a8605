"""tinyautograd.viz: the DOT text and the matplotlib drawing of a tensor's graph.

torch's own graph (walked by the same code through its public grad_fn API) is the reference for the structure.
"""
from __future__ import annotations

import re

import matplotlib
import matplotlib.text

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tinyautograd as tg  # noqa: E402
from tinyautograd import viz  # noqa: E402

# every test on each device: its tensors are made on the default device (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

NODE = re.compile(r"^  (\w+) \[label=<(.*?)>, shape=(\w+)", re.M)
EDGE = re.compile(r"^  (\w+) -> (\w+)(?: \[label=<(.*)>\])?;$", re.M)


def nodes_of(dot: str) -> dict[str, tuple[str, str]]:
    return {key: (label, shape) for key, label, shape in NODE.findall(dot)}


def edges_of(dot: str) -> list[tuple[str, str, str]]:
    return EDGE.findall(dot)


def shopping(lib, backward: bool = True):
    """The course's apple-and-orange graph (실습3) in either library, intermediates kept for their gradients."""
    leaves = dict(apple=100.0, apple_num=2.0, orange=150.0, orange_num=3.0, tax=1.1)
    t = {k: lib.tensor(v, dtype=lib.float64, requires_grad=True) for k, v in leaves.items()}
    t["apple_price"] = t["apple"] * t["apple_num"]
    t["orange_price"] = t["orange"] * t["orange_num"]
    t["all_price"] = t["apple_price"] + t["orange_price"]
    t["price"] = t["all_price"] * t["tax"]
    for k in ("apple_price", "orange_price", "all_price", "price"):
        t[k].retain_grad()
    if backward:
        t["price"].backward()
    return t


def test_shopping_graph_has_four_ops_five_leaves_one_output_and_nine_edges():
    t = shopping(tg)
    dot = viz.to_dot(t["price"], names=t)
    nodes = nodes_of(dot)
    shapes = [shape for _, shape in nodes.values()]
    assert shapes.count("ellipse") == 4 and shapes.count("box") == 6
    assert sorted(label for label, shape in nodes.values() if shape == "ellipse") == \
        ["AddBackward0", "MulBackward0", "MulBackward0", "MulBackward0"]
    assert len(edges_of(dot)) == 9
    assert dot.startswith("digraph {") and dot.rstrip().endswith("}")


def test_shopping_graph_labels_leaves_by_name_with_values_and_gradients_of_the_course():
    t = shopping(tg)
    dot = viz.to_dot(t["price"], names=t)
    nodes = nodes_of(dot)
    key_of = {label.split("<br/>")[0]: key for key, (label, _) in nodes.items()}
    assert {"apple", "apple_num", "orange", "orange_num", "tax", "price"} <= set(key_of)
    label_from = {src: label for src, _, label in edges_of(dot)}
    expected = {"apple": ("100", "2.2"), "apple_num": ("2", "110"), "orange": ("150", "3.3"),
                "orange_num": ("3", "165"), "tax": ("1.1", "650")}
    for name, (value, grad) in expected.items():
        assert label_from[key_of[name]] == f'{value}<br/><font color="red">{grad}</font>'
    # named intermediates carry their name and value; the output edge carries 715 and dprice = 1
    assert 'all_price = 650<br/><font color="red">1.1</font>' in dot
    assert 'apple_price = 200' in dot and 'orange_price = 450' in dot
    assert '-> output [label=<715<br/><font color="red">1</font>>]' in dot


def test_gradients_appear_only_after_backward_and_can_be_switched_off():
    before = viz.to_dot(shopping(tg, backward=False)["price"])
    assert 'color="red"' not in before and "715" in before
    t = shopping(tg)
    assert 'color="red"' in viz.to_dot(t["price"])
    assert 'color="red"' not in viz.to_dot(t["price"], show_grads=False)
    bare = viz.to_dot(t["price"], show_values=False, show_grads=False)
    assert "label=<" not in "".join(line for line in bare.splitlines() if "->" in line)


@pytest.mark.parametrize("show", [True, False])
def test_dot_text_is_the_same_for_tinyautograd_and_torch_on_the_shopping_graph(show):
    a, b = shopping(tg), shopping(torch)
    assert viz.to_dot(a["price"], show, show, names=a) == viz.to_dot(b["price"], show, show, names=b)


UNARY = ["exp", "tanh", "sigmoid", "neg", "square"]
BINARY = ["add", "sub", "mul", "div"]


NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?")


def assert_same_dot(ours: str, theirs: str) -> None:
    """The same DOT text up to the printed numbers, which agree to their 4 significant digits or to 1e-12: a
    gradient that cancels to about zero prints as 1.11e-16 in one library and 0 in the other."""
    assert NUMBER.sub("#", ours) == NUMBER.sub("#", theirs)
    np.testing.assert_allclose([float(v) for v in NUMBER.findall(ours)], [float(v) for v in NUMBER.findall(theirs)],
                               rtol=1e-3, atol=1e-12)


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 100), st.integers(0, 100)),
                min_size=1, max_size=12),
       st.integers(1, 3), st.booleans())
@example([("exp", 0, 0), ("div", 1, 1)] + [("exp", 0, 0)] * 6 + [("tanh", 13, 0)], 2, False)  # a gradient of ~0
def test_random_graphs_have_the_structure_torch_reports(program, n_leaves, reduce_by_sum):
    def build(lib):
        gen = np.random.default_rng(0)
        values = [lib.tensor(gen.uniform(0.5, 1.5, size=(2,)), requires_grad=True) for _ in range(n_leaves)]
        constant = lib.tensor([0.5, 2.0], dtype=lib.float64)  # no grad: must not appear in the graph
        for op, i, j in program:
            x, y = values[i % len(values)], values[j % len(values)]
            if op == "square":
                values.append(x * x)
            elif op in UNARY:
                values.append(getattr(x, op)())
            else:
                values.append(getattr(lib, op)(x, constant if j % 5 == 0 else y))
        out = values[-1].sum() if reduce_by_sum else values[-1]
        out.backward(lib.ones_like(out))
        return out, values

    (ours, _ours_alive), (theirs, _theirs_alive) = build(tg), build(torch)
    assert viz.to_dot(ours, show_values=False, show_grads=False) == \
        viz.to_dot(theirs, show_values=False, show_grads=False)
    assert_same_dot(viz.to_dot(ours), viz.to_dot(theirs))


def test_a_tensor_used_twice_gives_two_edges_from_one_leaf_and_constants_are_absent():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * tg.tensor([3.0, 4.0])).sum()
    y.backward()
    dot = viz.to_dot(y, names={"x": x})
    nodes = nodes_of(dot)
    leaves = [k for k, (label, shape) in nodes.items() if shape == "box" and label.startswith("x")]
    assert len(leaves) == 1
    assert [src for src, _, _ in edges_of(dot)].count(leaves[0]) == 2
    # d/dx sum(3 x^2 .. 4 x^2) = (6 x_0, 8 x_1)
    assert '[1, 2]<br/><font color="red">[6, 16]</font>' in dot
    assert "[3, 4]" not in dot


def test_large_tensors_show_their_shape_instead_of_values():
    w = tg.ones(4, 3, requires_grad=True)
    x = tg.ones(5, 4)
    loss = (x @ w).sum()
    loss.backward()
    dot = viz.to_dot(loss, names={"W": w})
    assert "W<br/>(4, 3)" in dot
    assert '(4, 3)<br/><font color="red">(4, 3)</font>' in dot
    small = viz.to_dot(loss, names={"W": w}, max_elements=12)
    assert "[[1, 1, 1]" in small


def test_a_leaf_alone_is_one_box_with_its_value_and_gradient():
    x = tg.tensor(3.0, requires_grad=True)
    (x * 2).backward()
    dot = viz.to_dot(x, names={"x": x})
    assert nodes_of(dot) == {"leaf0": ("x<br/>scalar<br/>3<br/>grad 2", "box")}
    assert edges_of(dot) == []


def test_label_text_is_escaped_for_graphviz():
    x = tg.tensor(1.0, requires_grad=True)
    dot = viz.to_dot(x * 2, names={"<x & y>": x})
    assert "&lt;x &amp; y&gt;" in dot


def test_deep_chains_do_not_hit_the_recursion_limit():
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    dot = viz.to_dot(y)
    assert len(edges_of(dot)) == 3001


def test_non_tensors_raise_type_error_naming_the_argument():
    x = tg.tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match="expected a tensor"):
        viz.to_dot([1.0])
    with pytest.raises(TypeError, match=r"names\['w'\] must be a tensor"):
        viz.to_dot(x * 2, names={"w": 1.0})


def test_draw_renders_every_node_and_edge_label_and_returns_the_figure():
    t = shopping(tg)
    fig = viz.draw(t["price"], names=t, title="shopping")
    try:
        ax = fig.axes[0]
        assert len(ax.patches) == 10  # one box per node
        texts = [txt.get_text() for txt in ax.texts]
        for expected in ("MulBackward0", "AddBackward0", "apple\nscalar", "tax\nscalar", "price\nscalar",
                         "715", "2.2", "110", "3.3", "165", "650", "all_price = 650"):
            assert expected in texts
        red = [txt.get_text() for txt in ax.texts if txt.get_color() == "#c00000"]
        assert sorted(red) == sorted(["2.2", "110", "3.3", "165", "1.1", "1.1", "650", "1.1", "1"])
        arrows = [txt for txt in ax.texts if isinstance(txt, matplotlib.text.Annotation)]
        assert len(arrows) == 9 and len(ax.texts) == 10 + 9 + 9 + 9  # node labels, values, gradients, arrows
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_draw_places_data_flow_left_to_right():
    t = shopping(tg)
    fig = viz.draw(t["price"], names=t)
    try:
        x_of = {txt.get_text().split("\n")[0]: txt.get_position()[0] for txt in fig.axes[0].texts
                if txt.get_text()}
        assert x_of["apple"] < x_of["AddBackward0"] < x_of["price"]
        assert x_of["tax"] == x_of["AddBackward0"]  # a late input sits in the column before its op
    finally:
        plt.close(fig)


def test_draw_into_a_given_axes_and_draw_torch_graphs():
    fig, axes = plt.subplots(1, 2)
    try:
        x = tg.tensor([1.0, -2.0], requires_grad=True)
        assert viz.draw((x.exp() + x).sum(), ax=axes[0]) is fig
        xt = torch.tensor([1.0, -2.0], requires_grad=True)
        assert viz.draw((xt.exp() + xt).sum(), ax=axes[1]) is fig
        assert [len(ax.patches) for ax in axes] == [5, 5]
    finally:
        plt.close(fig)


def test_draw_of_a_lone_leaf():
    fig = viz.draw(tg.tensor([1.0, 2.0], requires_grad=True))
    try:
        assert len(fig.axes[0].patches) == 1
    finally:
        plt.close(fig)
