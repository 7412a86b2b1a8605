"""The autograd engine against torch: backward and autograd.grad with all their arguments, higher-order derivatives,
gradient accumulation, grad modes (context managers, decorators, threads), custom Functions, version counters and
in-place semantics (leaves, views of results), gradcheck/gradgradcheck, and anomaly detection."""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinyautograd as ta

# the engine on every device: each test's tensors (both libraries') are made on the default device
pytestmark = pytest.mark.usefixtures("default_device")


def values(t) -> np.ndarray | None:
    if t is None:
        return None
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    d = t._data
    return d if isinstance(d, np.ndarray) else d.get()


def assert_grads_equal(ours, theirs, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Two sequences of gradients (tensors or None) agree: the same Nones, shapes and values."""
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert (o is None) == (t is None), (o, t)
        if o is not None:
            assert tuple(o.shape) == tuple(t.shape)
            np.testing.assert_allclose(values(o), values(t), rtol=rtol, atol=atol)


def both(scenario):
    """Run ``scenario(lib)`` with tinyautograd and with torch; the results must agree."""
    return scenario(ta), scenario(torch)


finite = st.floats(-2.0, 2.0, allow_nan=False, width=64)


# -- backward ----------------------------------------------------------------------------------------------------------


def test_backward_of_a_scalar_fills_leaf_gradients() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        w = lib.tensor([0.5, 0.25, 2.0], requires_grad=True)
        loss = ((x * w).sin() + x.exp() * w).sum()
        loss.backward()
        return [x.grad, w.grad]
    assert_grads_equal(*both(scenario))


def test_backward_with_an_explicit_gradient() -> None:
    def scenario(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x * x
        y.backward(lib.tensor([[1.0, 0.5], [-1.0, 2.0]]))
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_backward_gradient_of_another_dtype_is_converted() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).backward(lib.tensor([1, 2]))
        return [x.grad]
    ours, theirs = both(scenario)
    assert_grads_equal(ours, theirs)
    assert ours[0].dtype is ta.float32


def test_gradients_accumulate_across_backward_calls() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        (x * 3).sum().backward()
        first = x.grad.clone()
        x.grad = None
        (x * 5).sum().backward()
        return [first, x.grad]
    assert_grads_equal(*both(scenario))


def test_accumulated_gradient_buffer_is_updated_in_place() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    buffer = x.grad
    (x * 3).sum().backward()
    assert x.grad is buffer and buffer.tolist() == [5.0, 5.0]


def test_gradients_of_shared_inputs_sum_over_every_use() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        a = x * 2
        b = a + x
        c = (a * b).sum() + a.sum() + (x ** 2).mean()
        c.backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_retain_graph_allows_a_second_backward() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        y.backward(retain_graph=True)
        y.backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_backward_inputs_restricts_which_tensors_get_gradients() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        h = x * w
        (h * h).sum().backward(inputs=[x])
        first = (x.grad.clone(), w.grad)
        h2 = x * w
        h2.retain_grad()
        (h2 * h2).sum().backward(inputs=[h2, w])
        return [first[0], first[1], x.grad, w.grad, h2.grad]
    assert_grads_equal(*both(scenario))


def test_backward_inputs_accepts_a_single_tensor_and_rejects_an_empty_list() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward(inputs=x)
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError):
        (torch.ones(1, requires_grad=True) * 2).sum().backward(inputs=[])
    with pytest.raises(RuntimeError, match="inputs"):
        (x * 2).sum().backward(inputs=[])


def test_autograd_backward_of_several_tensors() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        lib.autograd.backward([(x * 2).sum(), (x * x).sum()])
        first = x.grad.clone()
        x.grad = None
        lib.autograd.backward([x * 2, x * 3], [lib.ones(2), lib.tensor([2.0, -1.0])])
        return [first, x.grad]
    assert_grads_equal(*both(scenario))


def test_gradient_dtype_follows_the_leaf() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x.float() * 2).sum().backward()
        return x.grad
    ours, theirs = both(scenario)
    assert ours.dtype is ta.float64 and str(theirs.dtype) == "torch.float64"


@given(st.lists(finite, min_size=1, max_size=5), st.lists(finite, min_size=1, max_size=5))
def test_random_expression_gradients_match_torch(xs, ws) -> None:
    n = min(len(xs), len(ws))

    def scenario(lib):
        x = lib.tensor(xs[:n], dtype=lib.float64, requires_grad=True)
        w = lib.tensor(ws[:n], dtype=lib.float64, requires_grad=True)
        h = (x * w).tanh() + x.sigmoid() * w - (w * w + 1).log()
        out = (h * h).sum() + (x - w).abs().mean() + (x.exp() / (1 + w * w)).max()
        out.backward()
        return [x.grad, w.grad]
    assert_grads_equal(*both(scenario), rtol=1e-10, atol=1e-12)


# -- autograd.grad -----------------------------------------------------------------------------------------------------


def test_grad_returns_gradients_without_touching_dot_grad() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, -1.0], requires_grad=True)
        gx, gw = lib.autograd.grad((x * w * x).sum(), [x, w])
        assert x.grad is None and w.grad is None and not gx.requires_grad
        return [gx, gw]
    assert_grads_equal(*both(scenario))


def test_grad_with_grad_outputs_and_several_outputs() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = x.exp()
        (single,) = lib.autograd.grad(y, x, grad_outputs=lib.tensor([1.0, -3.0]), retain_graph=True)
        (summed,) = lib.autograd.grad([y, z], x, grad_outputs=[lib.ones(2), lib.tensor([0.5, 2.0])])
        return [single, summed]
    assert_grads_equal(*both(scenario))


def test_grad_with_respect_to_an_intermediate() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = (y * y).sum()
        return list(lib.autograd.grad(z, [y, x]))
    assert_grads_equal(*both(scenario))


def test_grad_of_unused_inputs_needs_allow_unused() -> None:
    for lib in (torch, ta):
        x = lib.tensor(1.0, requires_grad=True)
        y = lib.tensor(1.0, requires_grad=True)
        with pytest.raises(RuntimeError, match="not have been used in the graph"):
            lib.autograd.grad(x * 2, [x, y], retain_graph=True)
    ours = ta.autograd.grad(x * 2, [x, y], allow_unused=True)
    assert ours[0].item() == 2.0 and ours[1] is None
    materialized = ta.autograd.grad(x * 2, [x, y], materialize_grads=True)
    assert materialized[1].item() == 0.0


def test_grad_needs_inputs_that_require_grad() -> None:
    with pytest.raises(RuntimeError):
        torch.autograd.grad(torch.ones(1, requires_grad=True).sum(), torch.ones(1))
    with pytest.raises(RuntimeError, match="does not require grad"):
        ta.autograd.grad(ta.ones(1, requires_grad=True).sum(), ta.ones(1))


def test_grad_of_a_leaf_with_respect_to_itself() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        return list(lib.autograd.grad(x, x, lib.tensor([3.0, 4.0]))) + list(lib.autograd.grad(x.sum(), x))
    assert_grads_equal(*both(scenario))


def test_grad_frees_the_graph_without_retain_graph() -> None:
    for lib in (torch, ta):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        lib.autograd.grad(y, x)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()


# -- higher order --------------------------------------------------------------------------------------------------


@given(st.floats(0.2, 2.0))
def test_derivatives_of_x_to_the_fourth_up_to_the_fourth(x0) -> None:
    def scenario(lib):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        out = [x ** 4]
        for _ in range(4):
            (g,) = lib.autograd.grad(out[-1], x, create_graph=True)
            out.append(g)
        return out[1:]
    ours, theirs = both(scenario)
    assert_grads_equal(ours, theirs, rtol=1e-12)
    assert ours[2].item() == pytest.approx(24 * x0)


def test_fifth_derivative_of_x_to_the_fourth_is_a_zero_like_torch() -> None:
    def scenario(lib):
        x = lib.tensor(1.5, requires_grad=True)
        g = x ** 4
        for _ in range(4):
            (g,) = lib.autograd.grad(g, x, create_graph=True)
        return list(lib.autograd.grad(g, x, allow_unused=True))
    assert_grads_equal(*both(scenario))


# a tiny nonzero `a` (3.3e-88, say) makes torch's prod double backward divide by an underflowed a**6 and give NaN
# where the exact third derivative (ours) is finite: that is torch's rounding, not a rule to copy
@given(st.floats(-1.5, 1.5).filter(lambda v: v == 0 or abs(v) > 1e-30), st.floats(0.5, 2.0))
def test_second_and_third_derivatives_of_a_composite(a, b) -> None:
    def scenario(lib):
        x = lib.tensor([a, b], dtype=lib.float64, requires_grad=True)
        y = ((x.sin() * x.exp()) / (1 + x * x)).sum() + (x ** 3).prod()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x, create_graph=True)
        (k,) = lib.autograd.grad((h * h).sum(), x)
        return [g, h, k]
    assert_grads_equal(*both(scenario), rtol=1e-9, atol=1e-12)


def test_second_derivative_of_a_linear_function_like_torch() -> None:
    for lib in (torch, ta):
        x = lib.tensor(2.0, requires_grad=True)
        (g,) = lib.autograd.grad(3 * x + 1, x, create_graph=True)
        # the first derivative is a constant: it has no graph at all, exactly as in torch
        assert g.item() == 3.0 and not g.requires_grad and g.grad_fn is None
        with pytest.raises(RuntimeError, match="does not require grad"):
            lib.autograd.grad(g, x, allow_unused=True)


def test_derivative_that_does_not_depend_on_an_input_is_none_with_allow_unused() -> None:
    def scenario(lib):
        x = lib.tensor(2.0, requires_grad=True)
        y = lib.tensor(3.0, requires_grad=True)
        (gx,) = lib.autograd.grad(x * y, x, create_graph=True)  # gx = y: no x in it
        unused = lib.autograd.grad(gx, x, allow_unused=True, retain_graph=True)
        with pytest.raises(RuntimeError, match="not have been used"):
            lib.autograd.grad(gx, x, retain_graph=True)
        return list(unused) + list(lib.autograd.grad(gx, y))
    assert_grads_equal(*both(scenario))


def test_second_derivative_of_a_quadratic_is_a_constant_with_history() -> None:
    def scenario(lib):
        x = lib.tensor(2.0, requires_grad=True)
        (g,) = lib.autograd.grad(x * x, x, create_graph=True)
        (h,) = lib.autograd.grad(g, x, create_graph=True)
        return [g, h]
    ours, theirs = both(scenario)
    assert_grads_equal(ours, theirs)
    assert ours[1].requires_grad == theirs[1].requires_grad


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_backward_with_create_graph_makes_differentiable_grads() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        first = x.grad
        assert first.requires_grad
        penalty = (first * first).sum()
        x.grad = None
        penalty.backward()
        return [first, x.grad]
    assert_grads_equal(*both(scenario))


@given(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3))
def test_hessian_vector_product_matches_torch(v) -> None:
    def scenario(lib):
        x = lib.tensor([0.3, -0.7, 1.1], dtype=lib.float64, requires_grad=True)
        y = (x.tanh() * x.roll(1, 0)).sum() + (x ** 2).sum() * x[0]
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (hv,) = lib.autograd.grad(g, x, grad_outputs=lib.tensor(v, dtype=lib.float64))
        return [g, hv]
    assert_grads_equal(*both(scenario), rtol=1e-10, atol=1e-12)


def test_gradient_penalty_through_a_matmul() -> None:
    def scenario(lib):
        gen = np.random.default_rng(0)
        w = lib.tensor(gen.standard_normal((3, 4)), dtype=lib.float64, requires_grad=True)
        x = lib.tensor(gen.standard_normal((5, 3)), dtype=lib.float64, requires_grad=True)
        out = (x @ w).tanh().sum()
        (gx,) = lib.autograd.grad(out, x, create_graph=True)
        penalty = ((gx.norm(dim=1) - 1) ** 2).mean()
        penalty.backward()
        return [w.grad, x.grad]
    assert_grads_equal(*both(scenario), rtol=1e-10, atol=1e-12)


# -- grad mode ---------------------------------------------------------------------------------------------------------


def test_no_grad_and_enable_grad_nest() -> None:
    x = ta.tensor([1.0], requires_grad=True)
    with ta.no_grad():
        assert not ta.is_grad_enabled()
        y = x * 2
        with ta.enable_grad():
            assert ta.is_grad_enabled()
            z = x * 2
        assert not ta.is_grad_enabled()
    assert ta.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and z.requires_grad


def test_leaves_made_under_no_grad_still_require_grad() -> None:
    with ta.no_grad():
        x = ta.tensor([1.0], requires_grad=True)
    assert x.requires_grad and (x * 2).requires_grad


def test_grad_modes_restore_after_exceptions() -> None:
    # set_grad_enabled switches when it is created, so each manager is made right where it is entered
    for make in (ta.no_grad, ta.enable_grad, lambda: ta.set_grad_enabled(False), ta.inference_mode):
        with pytest.raises(ValueError):
            with make():
                raise ValueError
        assert ta.is_grad_enabled() and not ta.is_inference_mode_enabled()


def test_grad_mode_decorators_with_and_without_parentheses() -> None:
    x = ta.tensor([1.0], requires_grad=True)

    @ta.no_grad()
    def with_parens():
        return x * 2

    @ta.no_grad
    def bare():
        return x * 2

    @ta.enable_grad()
    def enabled():
        return x * 2

    @ta.inference_mode()
    def inference():
        return x * 2, ta.is_inference_mode_enabled()

    @ta.set_grad_enabled(False)
    def disabled():
        return x * 2

    assert ta.is_grad_enabled()  # set_grad_enabled(False) as a decorator changes nothing outside the function
    assert not with_parens().requires_grad and not bare().requires_grad and not disabled().requires_grad
    with ta.no_grad():
        assert enabled().requires_grad
    out, flag = inference()
    assert not out.requires_grad and flag and not ta.is_inference_mode_enabled()
    assert with_parens.__name__ == "with_parens" and bare.__name__ == "bare"


def test_decorated_generators_run_their_steps_inside_the_mode() -> None:
    def trace(lib):
        @lib.no_grad()
        def steps():
            yield lib.is_grad_enabled()
            received = yield lib.is_grad_enabled()
            yield received, lib.is_grad_enabled()

        gen = steps()
        seen = [next(gen), lib.is_grad_enabled(), next(gen), gen.send("ping"), lib.is_grad_enabled()]
        gen.close()
        return seen
    assert trace(ta) == trace(torch)


def test_set_grad_enabled_as_a_call_and_a_context() -> None:
    x = ta.tensor([1.0], requires_grad=True)
    try:
        ta.set_grad_enabled(False)
        assert not (x * 2).requires_grad
    finally:
        ta.set_grad_enabled(True)
    with ta.set_grad_enabled(False):
        assert not ta.is_grad_enabled()
        with ta.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not ta.is_grad_enabled()
    assert ta.is_grad_enabled()


def test_inference_mode_flags() -> None:
    x = ta.tensor([1.0], requires_grad=True)
    with ta.inference_mode():
        assert ta.is_inference_mode_enabled() and not ta.is_grad_enabled()
        assert not (x * 2).requires_grad
    with ta.inference_mode(False):
        assert not ta.is_inference_mode_enabled() and (x * 2).requires_grad
    assert not ta.is_inference_mode_enabled()


def test_grad_mode_is_thread_local() -> None:
    inside, other = threading.Event(), threading.Event()
    seen = {}

    def worker():
        inside.wait()
        x = ta.ones(1, requires_grad=True)
        seen["enabled"] = ta.is_grad_enabled()
        seen["recorded"] = (x * 2).requires_grad
        with ta.no_grad():
            seen["own_no_grad"] = ta.is_grad_enabled()
        other.set()

    thread = threading.Thread(target=worker)
    thread.start()
    with ta.no_grad():
        inside.set()
        other.wait(10)
        assert not ta.is_grad_enabled()
    thread.join()
    assert seen == {"enabled": True, "recorded": True, "own_no_grad": False}
    assert ta.is_grad_enabled()


# -- custom Functions ----------------------------------------------------------------------------------------------


def make_functions(lib):
    """The same custom Functions written against either library."""

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class ScaledMul(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, w):
            ctx.scale = scale
            ctx.flags = ctx.needs_input_grad
            ctx.save_for_backward(x, w)
            return x * w * scale

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            gx = grad * w * ctx.scale if ctx.needs_input_grad[0] else None
            gw = grad * x * ctx.scale if ctx.needs_input_grad[2] else None
            return gx, None, gw

    class SplitTwo(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2 + g2 * 3

    class MaxWithIndex(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            index = x.argmax()
            ctx.mark_non_differentiable(index)
            ctx.save_for_backward(x, index)
            return x.max(), index

        @staticmethod
        def backward(ctx, grad, grad_index):
            x, index = ctx.saved_tensors
            out = lib.zeros_like(x)
            out[index] = grad
            return out

    class Cube(lib.autograd.Function):
        # backward written with differentiable ops: double backward works through it
        @staticmethod
        def forward(ctx, x):
            y = x ** 3
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return 3 * y / x * grad

    return {"Exp": Exp, "ScaledMul": ScaledMul, "SplitTwo": SplitTwo, "MaxWithIndex": MaxWithIndex, "Cube": Cube}


def test_function_saves_tensors_and_names_its_node() -> None:
    def scenario(lib):
        fns = make_functions(lib)
        x = lib.tensor([0.0, 1.0, -1.0], requires_grad=True)
        y = fns["Exp"].apply(x)
        assert y.grad_fn.name() == type(y.grad_fn).__name__ == "ExpBackward"
        assert not y.is_leaf and y.requires_grad
        y.sum().backward()
        return [y, x.grad]
    assert_grads_equal(*both(scenario))


def test_function_with_non_tensor_arguments_and_needs_input_grad() -> None:
    def scenario(lib):
        fns = make_functions(lib)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0])
        y = fns["ScaledMul"].apply(x, 2.0, w)
        y.sum().backward()
        assert w.grad is None
        return [x.grad], y.grad_fn.name()
    (ours, our_name), (theirs, their_name) = both(scenario)
    assert_grads_equal(ours, theirs)
    assert our_name == their_name == "ScaledMulBackward"


def test_needs_input_grad_lists_every_argument() -> None:
    captured = []
    for lib in (ta, torch):
        class Probe(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, scale, b):
                captured.append(ctx.needs_input_grad)
                return a * b

            @staticmethod
            def backward(ctx, grad):
                return grad, None, grad

        Probe.apply(lib.tensor([1.0], requires_grad=True), 2.0, lib.tensor([1.0]))
    assert captured == [(True, False, False)] * 2


def test_function_with_several_outputs() -> None:
    def scenario(lib):
        fns = make_functions(lib)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        a, b = fns["SplitTwo"].apply(x)
        (a.sum() + 10 * b.sum()).backward()
        first = x.grad.clone()
        x.grad = None
        a, _ = fns["SplitTwo"].apply(x)
        a.sum().backward()  # the unused output's gradient arrives as zeros
        return [first, x.grad]
    assert_grads_equal(*both(scenario))


def test_function_marks_outputs_non_differentiable() -> None:
    def scenario(lib):
        fns = make_functions(lib)
        x = lib.tensor([1.0, 5.0, 2.0], requires_grad=True)
        value, index = fns["MaxWithIndex"].apply(x)
        assert not index.requires_grad and value.requires_grad
        (value * 2).backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_function_used_twice_in_one_graph() -> None:
    def scenario(lib):
        exp = make_functions(lib)["Exp"]
        x = lib.tensor([0.0, 0.5], requires_grad=True)
        y = exp.apply(x)
        z = exp.apply(y)
        w = exp.apply(x)
        (z.sum() + (y * w).sum()).backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_function_double_backward_through_saved_input_and_output() -> None:
    def scenario(lib):
        cube = make_functions(lib)["Cube"]
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(cube.apply(x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        return [g, h]
    assert_grads_equal(*both(scenario))


def test_function_apply_under_no_grad_records_nothing() -> None:
    exp = make_functions(ta)["Exp"]
    x = ta.tensor([1.0], requires_grad=True)
    with ta.no_grad():
        y = exp.apply(x)
    assert not y.requires_grad and y.grad_fn is None


def test_function_returning_its_input_gets_its_own_node() -> None:
    def scenario(lib):
        class Identity(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a

            @staticmethod
            def backward(ctx, grad):
                return grad * 5

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = Identity.apply(x)
        assert y is not x and x.is_leaf
        y.sum().backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


def test_function_without_materialized_grads_gets_none() -> None:
    def scenario(lib):
        class Pair(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(False)
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, g1, g2):
                assert g2 is None
                return g1 * 2

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        a, _ = Pair.apply(x)
        a.sum().backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


@pytest.mark.parametrize("returned", ["too_few", "too_many", "wrong_shape"])
def test_function_backward_returning_the_wrong_gradients_is_an_error(returned) -> None:
    for lib in (torch, ta):
        class Bad(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                return x * y

            @staticmethod
            def backward(ctx, grad):
                if returned == "too_few":
                    return (grad,)
                if returned == "too_many":
                    return grad, grad, grad
                return grad.sum(), grad

        out = Bad.apply(lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True))
        with pytest.raises(RuntimeError, match="incorrect number of gradients|invalid gradient"):
            out.sum().backward()


def test_function_backward_may_pad_with_trailing_nones() -> None:
    class Padded(ta.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, None, None

    x = ta.ones(2, requires_grad=True)
    Padded.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_function_saved_tensors_are_freed_after_backward() -> None:
    for lib in (torch, ta):
        exp = make_functions(lib)["Exp"]
        x = lib.tensor([1.0], requires_grad=True)
        y = exp.apply(x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="second time"):
            y.backward()


# -- version counters and in-place ops ---------------------------------------------------------------------------------


def test_modifying_a_saved_input_names_the_op_and_versions() -> None:
    for lib in (torch, ta):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = y * y
        y.add_(1)
        with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; expected version 0"):
            z.sum().backward()
    with pytest.raises(RuntimeError, match=r"MulBackward0.*\[2\]|\[2\].*MulBackward0"):
        y = ta.tensor([1.0, 2.0], requires_grad=True) * 2
        z = y * y
        y.mul_(3)
        z.sum().backward()


@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh", "softmax"])
def test_modifying_a_saved_output_is_caught(op) -> None:
    for lib in (torch, ta):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = getattr(x, op)(0) if op == "softmax" else getattr(x, op)()
        with lib.no_grad():
            y.mul_(2)
        with pytest.raises(RuntimeError, match="version 1; expected version 0"):
            y.sum().backward()


def test_modifying_a_tensor_saved_by_a_function_is_caught() -> None:
    for lib in (torch, ta):
        exp = make_functions(lib)["Exp"]
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = exp.apply(x)
        with lib.no_grad():
            y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_modifying_an_unsaved_value_is_fine() -> None:
    def scenario(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = y + 1  # add saves nothing
        y.add_(1)
        (z * 3).sum().backward()
        return [x.grad]
    assert_grads_equal(*both(scenario))


@pytest.mark.parametrize("mutate", [lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.__setitem__(0, 5.0),
                                    lambda t: t.zero_(), lambda t: t.copy_(t * 2)],
                         ids=["add_", "mul_", "setitem", "zero_", "copy_"])
def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad(mutate) -> None:
    for lib in (torch, ta):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            mutate(x)


def test_in_place_on_a_leaf_works_under_no_grad_and_bumps_its_version() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    before = x._version_counter
    with ta.no_grad():
        x.add_(1)
        x.mul_(2)
        x[0] = 5.0
    assert x.tolist() == [5.0, 6.0] and x.is_leaf and x.requires_grad and x._version_counter == before + 3
    (x * x).sum().backward()
    assert x.grad.tolist() == [10.0, 12.0]


def test_in_place_on_a_view_of_a_leaf_raises() -> None:
    for lib in (torch, ta):
        x = lib.tensor([[1.0, 2.0]], requires_grad=True)
        with pytest.raises(RuntimeError, match="view of a leaf Variable"):
            x[0].mul_(2)


def _in_place_scenarios():
    def column(lib, x, w):
        y = x * 1
        y[:, 0] *= 2
        return y.sum()

    def flat_view(lib, x, w):
        y = x * 1
        y.view(-1).mul_(2)
        return (y * w).sum()

    def row_exp(lib, x, w):
        y = x * 1
        y[0].exp_()
        return (y * w).sum()

    def transposed_setitem(lib, x, w):
        y = x * 1
        y.t()[0, 1] = 10.0
        return (y * w).sum()

    def view_of_view(lib, x, w):
        y = x * 1
        y[0][1:].mul_(5)
        return (y * y).sum()

    def two_updates(lib, x, w):
        y = x * 1
        y[:, 0] *= 2
        y[0] += y[1]
        return (y ** 2).sum()

    def several_views(lib, x, w):
        y = x * 1
        y.unsqueeze(0).mul_(2)
        y.permute(1, 0).add_(1)
        return (y ** 2).sum()

    def setitem_from_self(lib, x, w):
        y = x.clone()
        y[1] = y[0] * 10
        return (y ** 2).sum()

    def add_tensor(lib, x, w):
        y = x * 1
        y.add_(w * x)
        return (y * y).sum()

    def setitem_tensor(lib, x, w):
        y = x * 1
        y[0] = w[1] * 2
        return (y * y).sum()

    def relu_in_place(lib, x, w):
        y = x - 2.5
        y.relu_()
        return (y * w).sum()

    def masked(lib, x, w):
        y = x * 1
        y.masked_fill_(y > 2, 0.0)
        return (y * w).sum()

    def mul_by_tensor(lib, x, w):
        y = x * 1
        y.mul_(w)  # w's gradient needs the old y: torch keeps it
        return y.sum()

    def view_mul_by_tensor(lib, x, w):
        y = x * 1
        y[0].mul_(x[1])
        return (y * y).sum()

    return {f.__name__: f for f in (column, flat_view, row_exp, transposed_setitem, view_of_view, two_updates,
                                    several_views, setitem_from_self, add_tensor, setitem_tensor, relu_in_place,
                                    masked, mul_by_tensor, view_mul_by_tensor)}


IN_PLACE = _in_place_scenarios()


def _run_in_place(make, lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = lib.tensor([[0.5, -1.0], [2.0, 1.5]], requires_grad=True)
    make(lib, x, w).backward()
    return [x.grad, w.grad]


@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_on_results_and_their_views_gives_torchs_gradients(name) -> None:
    assert_grads_equal(_run_in_place(IN_PLACE[name], ta), _run_in_place(IN_PLACE[name], torch))


def _view_after_base_update(lib, x, w):
    y = x * 1
    v = y[0]
    y.mul_(3)  # the view sees the new values, and its history must follow them
    return (v * v).sum()


def test_view_sees_the_history_of_an_in_place_update_of_its_base() -> None:
    assert_grads_equal(_run_in_place(_view_after_base_update, ta), _run_in_place(_view_after_base_update, torch))


def _sibling_view_after_view_update(lib, x, w):
    y = x * 1
    row, col = y[0], y.t()[1]
    y[1].mul_(w[0])  # an update through one view reaches its siblings
    return (row * col * w[1]).sum()


def _view_of_view_after_base_update(lib, x, w):
    y = x * 1
    inner = y[:, 0][1:]
    flat = y.view(4)
    y.add_(x * w)
    return (inner * flat[2] * 3).sum()


def _view_of_a_constant_base(lib, x, w):
    y = lib.zeros(2, 2)
    v = y[0]
    y.add_(x * w)  # the base gains a history only now: the view must follow it
    return (v * v).sum()


def _two_updates_seen_by_a_view(lib, x, w):
    y = x * 1
    v = y[:, 1]
    y.mul_(w)
    y[0].exp_()
    return (v * x[0]).sum()


@pytest.mark.parametrize("make", [_sibling_view_after_view_update, _view_of_view_after_base_update,
                                  _view_of_a_constant_base, _two_updates_seen_by_a_view],
                         ids=lambda f: f.__name__.strip("_"))
def test_every_live_view_follows_in_place_updates(make) -> None:
    assert_grads_equal(_run_in_place(make, ta), _run_in_place(make, torch))


def test_double_backward_through_views_of_an_in_place_update() -> None:
    def scenario(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        y = x * 1
        col = y.t()[0]
        y[1].mul_(x[0])
        (g,) = lib.autograd.grad((col ** 3).sum() + (y ** 2).sum(), x, create_graph=True)
        return [g, *lib.autograd.grad((g * g).sum(), x)]
    assert_grads_equal(*both(scenario))


# -- gradcheck -----------------------------------------------------------------------------------------------------

GRADCHECK_FUNCTIONS = {
    "polynomial": lambda x, w: (x ** 3 * w).sum(),
    "smooth": lambda x, w: (x.sin() * w.exp() + (x * w).tanh()),
    "matmul": lambda x, w: x.reshape(2, 2) @ w.reshape(2, 2),
    "two_outputs": lambda x, w: (x * w, x.exp() + w),
    "broadcast": lambda x, w: x.reshape(4, 1) * w.reshape(1, 4),
}


@pytest.mark.parametrize("name", list(GRADCHECK_FUNCTIONS))
def test_gradcheck_and_gradgradcheck_pass_on_correct_functions(name) -> None:
    gen = np.random.default_rng(1)
    x = ta.tensor(gen.uniform(0.5, 1.5, 4), dtype=ta.float64, requires_grad=True)
    w = ta.tensor(gen.uniform(-1, 1, 4), dtype=ta.float64, requires_grad=True)
    fn = GRADCHECK_FUNCTIONS[name]
    assert ta.autograd.gradcheck(fn, (x, w))
    assert ta.autograd.gradgradcheck(fn, (x, w))


def test_gradcheck_handles_non_contiguous_inputs_and_constants() -> None:
    x = ta.tensor(np.arange(1.0, 7.0).reshape(2, 3), dtype=ta.float64).t().requires_grad_()
    c = ta.tensor([1.0, 2.0], dtype=ta.float64)
    assert not x.is_contiguous()
    assert ta.autograd.gradcheck(lambda a, b: (a * a) @ b, (x, c))


def _wrong_functions(lib):
    class WrongFirst(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # should be 2 * x

    class WrongSecond(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x.detach() ** 2  # right values, but not differentiable again

    return WrongFirst, WrongSecond


def test_gradcheck_fails_on_a_wrong_backward() -> None:
    for lib in (torch, ta):
        wrong_first, _ = _wrong_functions(lib)
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        with pytest.raises(RuntimeError, match="Jacobian mismatch"):
            lib.autograd.gradcheck(wrong_first.apply, (x,))
        assert lib.autograd.gradcheck(wrong_first.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_fails_on_a_backward_that_is_not_differentiable() -> None:
    for lib in (torch, ta):
        _, wrong_second = _wrong_functions(lib)
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(wrong_second.apply, (x,))
        with pytest.raises(RuntimeError, match="Jacobian mismatch"):
            lib.autograd.gradgradcheck(wrong_second.apply, (x,))


def test_gradcheck_error_is_a_runtime_error_subclass() -> None:
    assert issubclass(ta.autograd.GradcheckError, RuntimeError)


# -- anomaly detection ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's 0 * inf warning, the point of the test
def test_detect_anomaly_names_the_forward_op_whose_backward_made_nan() -> None:
    for lib in (torch, ta):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        with pytest.warns(UserWarning) if lib is torch else contextlib.nullcontext():
            with lib.autograd.detect_anomaly():
                y = x.sqrt()  # the forward line the error must point at
                z = y * 0  # 0 * inf = nan in sqrt's backward
                with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values") as info:
                    z.sum().backward()
        if lib is ta:
            assert "y = x.sqrt()" in str(info.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_without_anomaly_mode_nan_gradients_pass_silently() -> None:
    def scenario(lib):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        (x.sqrt() * 0).sum().backward()
        return [x.grad]
    ours, theirs = both(scenario)
    assert np.isnan(values(ours[0])[0]) and np.isnan(values(theirs[0])[0])


def test_set_detect_anomaly_switches_the_mode() -> None:
    assert not ta.autograd.is_anomaly_enabled()
    with ta.autograd.set_detect_anomaly(True):
        assert ta.autograd.is_anomaly_enabled()
    assert not ta.autograd.is_anomaly_enabled()
