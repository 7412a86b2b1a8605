"""Errors: each mistake raises the exception type torch raises, and tinyautograd's message names the op and the
shapes or dtypes involved (and says what to do), so a user can fix the call from the message alone."""
from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest
import torch

import tinyautograd as ta
from helpers import cpu_only, torch_device

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

CUDA = ta.cuda.is_available() and torch.cuda.is_available()


def raises_like_torch(make, error: type[BaseException], *fragments: str) -> str:
    """``make(lib)`` raises ``error`` in torch and in tinyautograd; tinyautograd's message contains every fragment
    (regular expressions). Returns tinyautograd's message."""
    with pytest.raises(error):
        make(torch)
    with pytest.raises(error) as info:
        make(ta)
    message = str(info.value)
    for fragment in fragments:
        assert re.search(fragment, message), (fragment, message)
    return message


def device_checked_raises_like_torch(make, error: type[BaseException], *fragments: str) -> str:
    """``raises_like_torch`` for index checks that CUDA makes on the device. Torch runs on the cpu (conftest's
    default_device leaves it there). Ours is followed by a synchronisation, where a deferred check reports (as
    torch's device-side asserts do), with torch's cpu message."""
    def make_and_sync(lib):
        result = make(lib)
        if lib is ta and ta.get_default_device().type == "cuda":
            ta.cuda.synchronize()
        return result

    return raises_like_torch(make_and_sync, error, *fragments)


# -- the backward pass -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [lambda lib, x: (x * x).sum(), lambda lib, x: x.exp().sum(),
                                   lambda lib, x: (x @ x.t()).sum(), lambda lib, x: x.sigmoid().mean()],
                         ids=["mul", "exp", "matmul", "sigmoid"])
def test_backward_through_a_freed_graph(build) -> None:
    def make(lib):
        x = lib.ones(2, 2, requires_grad=True)
        y = build(lib, x)
        y.backward()
        y.backward()
    message = raises_like_torch(make, RuntimeError, "second time", "retain_graph=True")
    assert re.search(r"Backward\d", message)  # names the node whose saved values are gone


def test_freed_graph_also_blocks_autograd_grad() -> None:
    def make(lib):
        x = lib.ones(2, requires_grad=True)
        y = (x * x).sum()
        lib.autograd.grad(y, x)
        lib.autograd.grad(y, x)
    raises_like_torch(make, RuntimeError, "second time", "retain_graph=True")


def test_non_scalar_backward_without_gradient() -> None:
    def make(lib):
        (lib.ones(2, 3, requires_grad=True) * 2).backward()
    raises_like_torch(make, RuntimeError, "scalar outputs", r"\[2, 3\]", "gradient=")


def test_non_scalar_grad_without_grad_outputs() -> None:
    def make(lib):
        x = lib.ones(4, requires_grad=True)
        lib.autograd.grad(x * 2, x)
    raises_like_torch(make, RuntimeError, "scalar outputs", r"\[4\]")


@pytest.mark.parametrize("shapes", [((2,), (3,)), ((2, 3), (3, 2)), ((), (1,))], ids=repr)
def test_gradient_of_the_wrong_shape(shapes) -> None:
    out_shape, grad_shape = shapes

    def make(lib):
        y = lib.ones(out_shape, requires_grad=True) * 2
        y.backward(lib.ones(grad_shape))
    raises_like_torch(make, RuntimeError, "Mismatch in shape", re.escape(str(list(grad_shape))),
                      re.escape(str(list(out_shape))))


def test_backward_of_a_tensor_without_history() -> None:
    raises_like_torch(lambda lib: (lib.ones(2) * 2).sum().backward(), RuntimeError,
                      "does not require grad", "requires_grad=True")


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "uint8", "bool"])
def test_integer_tensors_cannot_require_grad(dtype) -> None:
    def make(lib):
        lib.zeros(3, dtype=getattr(lib, dtype)).requires_grad_()
    raises_like_torch(make, RuntimeError, "floating point", dtype, r"\.float\(\)")


# -- shapes of operands ------------------------------------------------------------------------------------------------

BROADCAST_OPS = {
    "add": lambda lib, a, b: a + b, "sub": lambda lib, a, b: a - b, "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b, "pow": lambda lib, a, b: a ** b, "maximum": lambda lib, a, b: lib.maximum(a, b),
    "lt": lambda lib, a, b: a < b, "eq": lambda lib, a, b: a == b, "minimum": lambda lib, a, b: lib.minimum(a, b),
    "where": lambda lib, a, b: lib.where(a > 0, a, b),
}


@pytest.mark.parametrize("op", list(BROADCAST_OPS))
@pytest.mark.parametrize("shapes", [((2, 3), (4,)), ((2, 3), (4, 3)), ((5, 1, 2), (3, 3))], ids=repr)
def test_broadcasting_mismatch_in_binary_ops(op, shapes) -> None:
    a_shape, b_shape = shapes
    message = raises_like_torch(lambda lib: BROADCAST_OPS[op](lib, lib.ones(a_shape), lib.ones(b_shape)),
                                RuntimeError, re.escape(str(list(a_shape))), re.escape(str(list(b_shape))))
    assert op in message


def test_broadcasting_mismatch_while_recording() -> None:
    def make(lib):
        x = lib.ones(2, 3, requires_grad=True)
        return x * lib.ones(4)
    raises_like_torch(make, RuntimeError, r"\[2, 3\]", r"\[4\]")


@pytest.mark.parametrize("make", [lambda lib: lib.ones(2, 3).add_(lib.ones(4)),
                                  lambda lib: lib.ones(2, 3).masked_fill(lib.ones(4) > 0, 0.0),
                                  lambda lib: lib.ones(2, 3) % lib.ones(4), lambda lib: lib.ones(2, 3) // lib.ones(4),
                                  lambda lib: lib.fmod(lib.ones(2, 3), lib.ones(4)),
                                  lambda lib: lib.isclose(lib.ones(2, 3), lib.ones(4)),
                                  lambda lib: (lib.ones(2, 3) > 0) & (lib.ones(4) > 0)],
                         ids=["add_", "masked_fill", "remainder", "floor_divide", "fmod", "isclose", "bitwise_and"])
def test_broadcasting_mismatch_in_ops_that_leak_numpy_errors(make) -> None:
    raises_like_torch(make, RuntimeError, r"\[2, 3\]", r"\[4\]")


def test_in_place_result_must_fit_the_tensor() -> None:
    raises_like_torch(lambda lib: lib.ones(3).mul_(lib.ones(2, 3)), RuntimeError, "mul_", r"\[3\]", r"\[2, 3\]")


def test_in_place_result_must_keep_the_dtype() -> None:
    raises_like_torch(lambda lib: lib.ones(3, dtype=lib.int64).add_(1.5), RuntimeError, "add_", "int64")


@pytest.mark.parametrize("shapes", [((2, 3), (4, 3)), ((5, 2), (3, 4)), ((1, 7), (6, 1))], ids=repr)
def test_matmul_shape_mismatch(shapes) -> None:
    a_shape, b_shape = shapes
    sizes = f"{a_shape[0]}x{a_shape[1]} and {b_shape[0]}x{b_shape[1]}"
    for op in (lambda lib, a, b: a @ b, lambda lib, a, b: lib.mm(a, b), lambda lib, a, b: lib.matmul(a, b)):
        raises_like_torch(lambda lib: op(lib, lib.ones(a_shape), lib.ones(b_shape)), RuntimeError,
                          "cannot be multiplied", sizes)


def test_batched_matmul_shape_mismatch_names_both_shapes() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 2, 3) @ lib.ones(2, 4, 3), RuntimeError,
                      r"\[2, 2, 3\]", r"\[2, 4, 3\]")
    raises_like_torch(lambda lib: lib.ones(2, 2, 3).bmm(lib.ones(2, 4, 3)), RuntimeError)
    raises_like_torch(lambda lib: lib.ones(2, 3).mv(lib.ones(2)), RuntimeError, r"\[2, 3\]", r"\[2\]")


def test_matmul_operands_must_be_matrices_for_mm_and_bmm() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3).mm(lib.ones(3)), RuntimeError, "mm", "2-D")
    raises_like_torch(lambda lib: lib.ones(2, 2).bmm(lib.ones(2, 2)), RuntimeError, "bmm", "3")


def test_matmul_dtype_mismatch() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 2) @ lib.ones(2, 2, dtype=lib.float64), RuntimeError,
                      "float32", "float64")


def test_vector_dot_mismatch_names_both_lengths() -> None:
    raises_like_torch(lambda lib: lib.ones(3) @ lib.ones(4), RuntimeError, "3 and 4")


@pytest.mark.parametrize("dim", [0, 1])
def test_cat_shape_mismatch(dim) -> None:
    def make(lib):
        return lib.cat([lib.ones(2, 3), lib.ones(4, 5)], dim)
    raises_like_torch(make, RuntimeError, "cat", "Sizes of tensors must match", r"\[2, 3\]|\b3\b", r"\[4, 5\]|\b5\b")


def test_cat_of_nothing_is_a_value_error() -> None:
    raises_like_torch(lambda lib: lib.cat([]), ValueError, "non-empty")


@pytest.mark.parametrize("args, error, fragment", [((0, 2, 3), RuntimeError, "exceeds dimension size"),
                                                   ((0, 5, 1), IndexError, "start out of range"),
                                                   ((0, -4, 1), IndexError, "start out of range"),
                                                   ((0, 0, -1), RuntimeError, "non-negative"),
                                                   ((2, 0, 1), IndexError, "out of range")], ids=repr)
def test_narrow_out_of_range(args, error, fragment) -> None:
    raises_like_torch(lambda lib: lib.ones(3).narrow(*args), error, fragment)


def test_cat_dimension_count_mismatch() -> None:
    raises_like_torch(lambda lib: lib.cat([lib.ones(2, 3), lib.ones(3)]), RuntimeError, "cat", "2 and 1")


def test_stack_shape_mismatch() -> None:
    raises_like_torch(lambda lib: lib.stack([lib.ones(2, 3), lib.ones(3, 2)]), RuntimeError, "stack")


@pytest.mark.parametrize("shape", [(4, 2), (5,), (-1, 4), (7, -1)], ids=repr)
@pytest.mark.parametrize("op", ["reshape", "view"])
def test_reshape_to_an_incompatible_size(shape, op) -> None:
    raises_like_torch(lambda lib: getattr(lib.ones(2, 3), op)(*shape), RuntimeError,
                      op, re.escape(str(list(shape))), "size 6", r"\[2, 3\]")


def test_view_of_a_non_contiguous_tensor_suggests_reshape() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3).t().view(6), RuntimeError, r"\.reshape\(")


def test_only_one_dimension_can_be_inferred() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3).view(-1, -1), RuntimeError, "only one dimension", r"\[-1, -1\]")


def test_expand_to_an_incompatible_size() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3).expand(4, 3), RuntimeError)
    raises_like_torch(lambda lib: lib.ones(2, 3).expand(3), RuntimeError, "expand", r"\(1\)", r"\(2\)")


# -- indices and dims --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [5, -3, (0, 3), (1, 5), (0, 0, 0)], ids=repr)
def test_index_out_of_range(index) -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3)[index], IndexError, r"\[2, 3\]")


def test_index_out_of_range_names_the_index_and_size() -> None:
    message = device_checked_raises_like_torch(lambda lib: lib.ones(2, 3)[5], IndexError, r"\b5\b", "size 2")
    assert "[2, 3]" in message
    device_checked_raises_like_torch(lambda lib: lib.ones(2, 3)[lib.tensor([0, 7])], IndexError, r"\b7\b")
    device_checked_raises_like_torch(lambda lib: lib.ones(2, 3).__setitem__(5, 1.0), IndexError, r"\b5\b")


def test_index_of_the_wrong_type() -> None:
    device_checked_raises_like_torch(lambda lib: lib.ones(2, 3)[1.5], IndexError, "float")


def test_index_ops_out_of_range() -> None:
    check = device_checked_raises_like_torch
    check(lambda lib: lib.ones(2, 3).gather(1, lib.tensor([[0, 5], [0, 1]])), RuntimeError, "gather", r"\b5\b",
          "size 3")
    check(lambda lib: lib.ones(2, 3).index_select(0, lib.tensor([3])), IndexError, "index_select")
    # negative indices are out of bounds for scatter (they used to wrap around silently)
    check(lambda lib: lib.zeros(2, 3).scatter(1, lib.tensor([[0, -1]]), 1.0), RuntimeError, "scatter",
          r"index -1 is out of bounds", "size 3")
    check(lambda lib: lib.zeros(2, 3).scatter_add(1, lib.tensor([[-4]]), lib.ones(1, 1)), RuntimeError,
          "scatter_add", r"index -4 is out of bounds")
    check(lambda lib: lib.ones(2, 3).gather(1, lib.tensor([[0.0]])), RuntimeError, "gather", "int64")


@pytest.mark.parametrize("op", [lambda t: t.sum(2), lambda t: t.softmax(2), lambda t: t.transpose(0, 2),
                                lambda t: t.unsqueeze(3), lambda t: t.squeeze(3), lambda t: t.max(2),
                                lambda t: t.argmax(-3), lambda t: t.size(2), lambda t: t.flatten(2)],
                         ids=["sum", "softmax", "transpose", "unsqueeze", "squeeze", "max", "argmax", "size",
                              "flatten"])
def test_dimension_out_of_range(op) -> None:
    raises_like_torch(lambda lib: op(lib.ones(2, 3)), IndexError, "Dimension out of range", r"\[-\d, \d\]")


def test_duplicate_dims() -> None:
    raises_like_torch(lambda lib: lib.ones(2, 3).sum((0, 0)), RuntimeError, "multiple times")
    raises_like_torch(lambda lib: lib.ones(2, 3).permute(0, 0), RuntimeError, "duplicate")


# -- dtypes --------------------------------------------------------------------------------------------------------


def test_floating_reductions_of_integers() -> None:
    raises_like_torch(lambda lib: lib.tensor([1, 2]).mean(), RuntimeError, "mean", "int64", r"\.float\(\)")
    raises_like_torch(lambda lib: lib.tensor([1, 2]).var(), RuntimeError, "int64")


def test_where_needs_a_boolean_condition() -> None:
    raises_like_torch(lambda lib: lib.where(lib.ones(2), lib.ones(2), lib.zeros(2)), RuntimeError,
                      "boolean", "float32")


def test_out_argument_cannot_take_a_lossy_cast() -> None:
    raises_like_torch(lambda lib: lib.add(lib.ones(2), 1.5, out=lib.empty(2, dtype=lib.int64)), RuntimeError,
                      "int64")


def test_item_needs_exactly_one_element() -> None:
    raises_like_torch(lambda lib: lib.ones(0).item(), RuntimeError, "0 elements", r"\[0\]")
    raises_like_torch(lambda lib: lib.ones(2, 2).item(), RuntimeError, "4 elements", r"\[2, 2\]")


def test_construction_errors() -> None:
    raises_like_torch(lambda lib: lib.tensor([[1], [2, 3]]), ValueError)
    raises_like_torch(lambda lib: lib.zeros(2, -3), RuntimeError, "-3")
    raises_like_torch(lambda lib: lib.arange(0, 5, 0), RuntimeError, "step")
    raises_like_torch(lambda lib: lib.randint(4, 2, (3,)), RuntimeError, r"\b4\b", r"\b2\b")
    raises_like_torch(lambda lib: lib.from_numpy(np.array(["x"])), TypeError)


# -- devices -------------------------------------------------------------------------------------------------------


def test_unknown_device_strings() -> None:
    raises_like_torch(lambda lib: lib.device("tpu"), RuntimeError, "tpu", "cpu", "cuda")
    raises_like_torch(lambda lib: lib.device("cuda:x"), RuntimeError, "cuda:x")


@pytest.mark.skipif(CUDA, reason="checks the message a machine without a GPU gives")
@cpu_only("asks the cpu for CUDA; on the CuPy stand-in CUDA is there")
def test_cuda_without_a_gpu_explains_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available.*cupy"):
        ta.ones(2).cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ta.zeros(2, device="cuda")


def _stub_cupy(get_device_count):
    """A module that imports as ``cupy`` and whose runtime answers ``getDeviceCount`` with the given function."""
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module = types.ModuleType("cupy")
    module.__version__ = "14.2.0"
    module.cuda = types.SimpleNamespace(runtime=runtime)
    return module


def _no_driver():
    raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")


@pytest.mark.parametrize("stub, says", [
    (None, r"CuPy could not be imported.*pip install tinyautograd\[cuda\]"),
    (lambda: _stub_cupy(_no_driver), r"CuPy 14\.2\.0 is installed but cannot reach a GPU.*InsufficientDriver.*driver"),
    (lambda: _stub_cupy(lambda: 0), r"CuPy 14\.2\.0 is installed but sees no GPU"),
], ids=["no-cupy", "no-driver", "no-device"])
def test_unavailable_cuda_says_why(monkeypatch, stub, says) -> None:
    # what a user without CuPy, with CuPy but an old or missing driver, or with no GPU at all is told; also that
    # is_available() stays False without raising in each case
    from tinyautograd import backend

    monkeypatch.setitem(sys.modules, "cupy", None if stub is None else stub())
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_checked", False)
    assert ta.cuda.is_available() is False and ta.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="CUDA is not available.*" + says + ".*keep the tensor on 'cpu'"):
        ta.zeros(2, device="cuda")


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a @ b,
                                lambda a, b: ta.cat([a, b]), lambda a, b: a.add_(b)],
                         ids=["add", "mul", "matmul", "cat", "add_"])
def test_mixing_devices_names_both(cuda_device, op) -> None:
    if torch_device(cuda_device) == "cuda":
        with pytest.raises(RuntimeError):
            op(torch.ones(2, 2), torch.ones(2, 2, device="cuda"))
    with pytest.raises(RuntimeError, match=r"cpu.*cuda:0|cuda:0.*cpu"):
        op(ta.ones(2, 2), ta.ones(2, 2, device="cuda"))


def test_numpy_of_a_cuda_tensor_asks_for_cpu_first(cuda_device) -> None:
    if torch_device(cuda_device) == "cuda":
        with pytest.raises(TypeError):
            torch.ones(2, device="cuda").numpy()
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        ta.ones(2, device="cuda").numpy()
