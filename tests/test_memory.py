"""The tape's memory behaviour: very deep graphs run and are freed without recursion, saved values are released
by a backward without retain_graph, and graphs hold no reference cycles, so reference counting alone frees them
(every test here runs with the cycle collector off)."""
from __future__ import annotations

import gc
import sys
import time
import weakref
from collections.abc import Iterator

import pytest

import tinyautograd as ta

# every test on each device: its tensors are made on the default device (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting may free objects during the test."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture()
def default_recursion_limit():
    """Python's default limit (the suite raises it for Hypothesis, see conftest.py): the engine must not recurse."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def test_a_million_op_chain_backward_at_the_default_recursion_limit(no_cycle_collector, default_recursion_limit,
                                                                    default_device) -> None:
    assert sys.getrecursionlimit() <= 1000
    # on cuda each op is a kernel launch (about 10 us on a GPU): a tenth of the chain shows the same there
    n = 1_000_000 if default_device == "cpu" else 100_000
    start = time.perf_counter()
    x = ta.tensor(1.0, dtype=ta.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.000001
    y.backward()
    assert x.grad.item() == pytest.approx(1.000001 ** n, rel=1e-9)
    ref = weakref.ref(y.grad_fn)
    del y
    assert ref() is None  # the whole chain was freed by reference counting, without a recursion error
    assert time.perf_counter() - start < 120


def test_a_deep_chain_is_freed_without_backward(no_cycle_collector) -> None:
    x = ta.ones(2, requires_grad=True)
    y = x
    for i in range(200_000):
        y = (y + 1) if i % 2 else y.tanh()
    first = weakref.ref(y.grad_fn)
    del y
    assert first() is None


def test_a_deep_mixed_graph_backward(no_cycle_collector) -> None:
    x = ta.tensor([0.5, -0.5], dtype=ta.float64, requires_grad=True)
    w = ta.tensor([1.0, 2.0], dtype=ta.float64, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = (y * 0.5 + w * 0.5).tanh() + y * 0.5
    y.sum().backward()
    assert x.grad.shape == (2,) and w.grad.shape == (2,)
    assert bool(ta.isfinite(x.grad).all()) and bool(ta.isfinite(w.grad).all())


# -- saved values ------------------------------------------------------------------------------------------------------


def test_saved_values_are_released_by_backward(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = h.sin()  # saves h
    loss = y.sum()
    h_ref = weakref.ref(h)
    del h
    assert h_ref() is not None  # kept for the backward
    loss.backward()
    assert h_ref() is None  # released at once, while the graph itself is still referenced
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_retain_graph_keeps_saved_values(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    loss = h.sin().sum()
    h_ref = weakref.ref(h)
    del h
    loss.backward(retain_graph=True)
    assert h_ref() is not None
    loss.backward()
    assert h_ref() is None
    assert x.grad.tolist() == pytest.approx((2 * 3 * ta.cos(ta.tensor([3.0, 6.0]))).tolist())


def test_saved_outputs_are_released_by_backward(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * 2).sum()
    exp_node = loss.grad_fn.next_functions[0][0].next_functions[0][0]
    assert exp_node.name() == "ExpBackward0" and exp_node.out is not None
    loss.backward()
    assert exp_node.out is None
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_function_saved_tensors_are_released_by_backward(no_cycle_collector) -> None:
    class Square(ta.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return 2 * a * grad

    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    loss = Square.apply(h).sum()
    h_ref = weakref.ref(h)
    del h
    loss.backward()
    assert h_ref() is None and x.grad.tolist() == [2.0, 4.0]


# -- no reference cycles -------------------------------------------------------------------------------------------


def _refs(*objects) -> list:
    return [weakref.ref(o) for o in objects]


def _graph_refs(tensors) -> list:
    """Weak references to each tensor and its node."""
    refs = []
    for t in tensors:
        refs += _refs(t, t.grad_fn)
    return refs


def test_dropping_the_loss_frees_the_graph_after_backward(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    w = ta.tensor([3.0, 4.0], requires_grad=True)
    h = (x * w).exp()
    z = h.sigmoid() * x
    loss = z.softmax(0).log().sum()
    refs = _graph_refs([h, z, loss])
    loss.backward()
    del h, z, loss
    assert [r() for r in refs] == [None] * len(refs)
    assert x.grad is not None and w.grad is not None  # leaves and their gradients stay


def test_dropping_the_loss_frees_the_graph_without_backward(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = (x * x).exp()
    loss = (h @ h).tanh()
    refs = _graph_refs([h, loss])
    del h, loss
    assert [r() for r in refs] == [None] * len(refs)


def test_hooks_and_retain_grad_make_no_cycles(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    handle = h.register_hook(lambda g: g * 2)
    x.register_hook(lambda g: g)
    loss = (h * h).sum()
    refs = _graph_refs([h, loss])
    loss.backward()
    del h, loss
    assert [r() for r in refs] == [None] * len(refs)
    handle.remove()  # removing after the graph is gone is harmless


def test_create_graph_gradients_make_no_cycles(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = (x * x).exp()
    loss = (h * h).sum()
    (g,) = ta.autograd.grad(loss, x, create_graph=True)
    second = (g * g).sum()
    refs = _graph_refs([h, loss, g, second])
    second.backward()
    del h, loss, g, second
    assert [r() for r in refs] == [None] * len(refs)


def test_custom_function_saving_its_output_makes_no_cycle(no_cycle_collector) -> None:
    class Exp(ta.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            y = a.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return y * grad

    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = Exp.apply(x)
    refs = _graph_refs([y])
    del y
    assert [r() for r in refs] == [None, None]
    y = Exp.apply(x)
    loss = y.sum()
    refs = _graph_refs([y, loss])
    loss.backward()
    del y, loss
    assert [r() for r in refs] == [None] * 4


def test_in_place_ops_on_views_make_no_cycles(no_cycle_collector) -> None:
    x = ta.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    v = y[0]
    v.mul_(2)
    y[:, 1] *= 3
    loss = (y * y).sum()
    refs = _graph_refs([y, v, loss])
    loss.backward()
    del y, v, loss
    assert [r() for r in refs] == [None] * len(refs)


def test_anomaly_mode_makes_no_cycles(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    with ta.autograd.detect_anomaly():
        h = x.exp()
        loss = (h * h).sum()
        refs = _graph_refs([h, loss])
        loss.backward()
    del h, loss
    assert [r() for r in refs] == [None] * len(refs)


def test_a_failed_backward_leaks_nothing(no_cycle_collector) -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    loss = (h * h).sum()
    h.add_(1)
    refs = _graph_refs([loss])
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()
    del h, loss
    sys.last_traceback = sys.last_value = None  # drop any interpreter-held traceback of the error
    assert [r() for r in refs] == [None, None]
