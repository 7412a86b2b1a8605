"""The Tensor's attributes and methods, compared with torch: metadata, conversions (Python numbers, NumPy, DLPack),
copies and views, dtype/device moves, the autograd attributes (grad, grad_fn and its name, is_leaf, hooks),
reprs, and what scripts written for torch probe on the module (devices, backends, threads, out=, subpackages)."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyautograd as ta
from helpers import cpu_only, torch_comparable

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

DTYPE_NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def name_of(dtype) -> str:
    return str(dtype).split(".")[-1]


def values(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    d = t._data
    return d if isinstance(d, np.ndarray) else d.get()


def pair(array: np.ndarray, device: str = "cpu", requires_grad: bool = False):
    """The same values as a tinyautograd tensor and a torch tensor."""
    ours = ta.tensor(array, device=device, requires_grad=requires_grad)
    theirs = torch.tensor(array, device=device, requires_grad=requires_grad)
    return ours, theirs


def their_repr(t: torch.Tensor) -> str:
    return repr(t).replace("torch.", "tinyautograd.")


# -- metadata -----------------------------------------------------------------------------------------------------


@given(hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
                  hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
def test_metadata_matches_torch(array) -> None:
    ours, theirs = pair(array)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.shape == ours.size() == theirs.shape
    assert ours.dim() == ours.ndim == ours.ndimension() == theirs.dim()
    assert ours.numel() == ours.nelement() == theirs.numel() == ta.numel(ours)
    assert name_of(ours.dtype) == name_of(theirs.dtype)
    assert ours.is_floating_point() == theirs.is_floating_point() == ta.is_floating_point(ours)
    assert ours.element_size() == theirs.element_size()
    assert ours.is_contiguous() and ours.stride() == theirs.stride()
    for d in range(-ours.dim(), ours.dim()):
        assert ours.size(d) == theirs.size(d) and ours.stride(d) == theirs.stride(d)
    if ours.dim():
        assert len(ours) == len(theirs)


def test_size_is_a_tuple_with_torch_repr() -> None:
    s = ta.zeros(2, 3).size()
    assert isinstance(s, tuple) and s == (2, 3) and s.numel() == 6
    assert repr(s) == repr(torch.zeros(2, 3).size()).replace("torch", "tinyautograd")
    assert isinstance(s[1:], ta.Size) and s[-1] == 3


def test_size_of_a_missing_dim_is_an_index_error() -> None:
    with pytest.raises(IndexError):
        torch.zeros(2, 3).size(2)
    with pytest.raises(IndexError, match=r"\[-2, 1\].*2"):
        ta.zeros(2, 3).size(2)


@cpu_only("about cpu tensors; cuda flags: test_cuda_api")
def test_device_and_cuda_flags_on_cpu() -> None:
    t = ta.zeros(2)
    assert t.device == ta.device("cpu") and t.device.type == "cpu" and t.device.index is None
    assert not t.is_cuda and t.is_cpu and t.get_device() == torch.zeros(2).get_device()
    assert repr(t.device) == repr(torch.zeros(2).device)


def test_strides_of_views_match_torch() -> None:
    ours, theirs = pair(np.arange(24.0).reshape(2, 3, 4))
    for make in (lambda t: t.transpose(0, 2), lambda t: t[:, 1], lambda t: t.permute(1, 0, 2)):
        assert make(ours).stride() == make(theirs).stride()
        assert make(ours).is_contiguous() == make(theirs).is_contiguous()


# -- Python and NumPy conversions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_item_and_tolist_give_python_values_like_torch(name) -> None:
    array = np.array([[0, 1], [1, 0]]).astype(name)
    ours, theirs = pair(array)
    assert ours.tolist() == theirs.tolist()
    assert type(ours.tolist()[0][0]) is type(theirs.tolist()[0][0])
    assert ours[0, 1].item() == theirs[0, 1].item() and type(ours[0, 1].item()) is type(theirs[0, 1].item())
    assert ours[1, 0].tolist() == theirs[1, 0].tolist()


def test_item_of_one_element_tensors_of_any_shape() -> None:
    assert ta.tensor([[7]]).item() == 7 and ta.tensor([2.5]).item() == 2.5


def test_item_of_many_elements_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).item()
    with pytest.raises(RuntimeError, match=r"2 elements.*\[2\]"):
        ta.tensor([1, 2]).item()


@cpu_only("NumPy shares host memory only; a cuda tensor's .numpy() raises (test_errors)")
def test_numpy_shares_memory_both_ways() -> None:
    t = ta.zeros(3)
    a = t.numpy()
    a[0] = 1.0
    t[1] = 2.0
    assert t.tolist() == [1.0, 2.0, 0.0] and a.tolist() == [1.0, 2.0, 0.0]


@cpu_only("on cuda .numpy() refuses the device first (test_errors)")
def test_numpy_of_a_tensor_requiring_grad_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        torch.ones(2, requires_grad=True).numpy()
    x = ta.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    assert x.numpy(force=True).tolist() == [1.0, 1.0]


@cpu_only("the array protocol hands NumPy host memory")
def test_array_protocol_shares_memory_and_converts() -> None:
    t = ta.tensor([1.0, 2.0])
    a = np.asarray(t)
    a[0] = 5.0
    assert t[0].item() == 5.0
    # a deliberate difference from torch (which raises): asking NumPy for the values of a tensor that requires
    # grad is explicit enough, and plotting libraries rely on it
    assert np.asarray(ta.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]
    assert np.array(t, dtype=np.float64).dtype == np.float64
    copied = np.array(t, copy=True)
    copied[1] = 0.0
    assert t[1].item() == 2.0


@pytest.mark.parametrize("value", [3.14159, -2.5, 0.0])
def test_number_protocols_of_0d_tensors(value) -> None:
    ours, theirs = pair(np.array(value, dtype=np.float32))
    assert float(ours) == float(theirs) and int(ours) == int(theirs) and bool(ours) == bool(theirs)
    assert f"{ours:.3f}" == f"{theirs:.3f}" and f"{ours:e}" == f"{theirs:e}"
    assert math.isclose(ours, value, rel_tol=1e-6)  # math functions accept it through __float__


def test_format_without_spec_and_of_arrays_prints_the_tensor() -> None:
    ours, theirs = pair(np.array([1.0, 2.0], dtype=np.float32))
    assert f"{ours}" == their_repr(theirs)
    with pytest.raises(TypeError):
        f"{theirs:.2f}"
    with pytest.raises(TypeError):
        f"{ours:.2f}"


def test_index_protocol_needs_one_integer() -> None:
    items = [10, 20, 30]
    assert items[ta.tensor(1)] == items[torch.tensor(1)] == 20
    assert items[ta.tensor([2])] == 30
    assert list(range(10))[ta.tensor(2):ta.tensor(5)] == [2, 3, 4]
    for bad in (lambda lib: lib.tensor(1.0), lambda lib: lib.tensor([1, 2])):
        with pytest.raises(TypeError):
            items[bad(torch)]
        with pytest.raises(TypeError):
            items[bad(ta)]


@pytest.mark.parametrize("data", [[1.0, 2.0], [], [[1.0]] * 3])
def test_bool_of_several_or_no_values_is_ambiguous(data) -> None:
    theirs = torch.tensor(data)
    if theirs.numel() == 1:
        assert bool(ta.tensor(data)) == bool(theirs)
        return
    with pytest.raises(RuntimeError):
        bool(theirs)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(ta.tensor(data))


def test_float_and_int_of_several_values_are_value_errors() -> None:
    for convert in (float, int):
        with pytest.raises(ValueError):
            convert(torch.tensor([1.0, 2.0]))
        with pytest.raises(ValueError, match=r"\[2\]"):
            convert(ta.tensor([1.0, 2.0]))


def test_len_and_iteration_walk_the_first_dimension() -> None:
    ours, theirs = pair(np.arange(6).reshape(3, 2))
    assert len(ours) == len(theirs) == 3
    rows = list(ours)
    assert [r.tolist() for r in rows] == [r.tolist() for r in theirs]
    assert all(isinstance(r, ta.Tensor) and r.shape == (2,) for r in rows)
    for fn in (len, iter):
        with pytest.raises(TypeError):
            fn(torch.tensor(1.0))
        with pytest.raises(TypeError, match="0-d"):
            fn(ta.tensor(1.0))


def test_iteration_keeps_the_graph() -> None:
    x = ta.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    total = sum(row.sum() * (i + 1) for i, row in enumerate(x))
    total.backward()
    assert x.grad.tolist() == [[1.0, 1.0], [2.0, 2.0]]


def test_tensors_hash_by_identity() -> None:
    a, b = ta.zeros(1), ta.zeros(1)
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, a, b}) == 2


# -- DLPack ------------------------------------------------------------------------------------------------------------


@cpu_only("DLPack with torch's cpu tensors; on a GPU torch's cuda tensors take CuPy's")
def test_dlpack_round_trip_with_torch_shares_memory() -> None:
    ours = ta.tensor([1.0, 2.0, 3.0])
    theirs = torch.from_dlpack(ours)
    theirs[0] = 10.0
    assert ours.tolist() == [10.0, 2.0, 3.0]
    back = ta.from_dlpack(theirs)
    back[1] = 20.0
    assert theirs.tolist() == [10.0, 20.0, 3.0] and back.dtype is ta.float32


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dlpack_keeps_dtype_shape_and_strides(name) -> None:
    source = torch.arange(6).reshape(2, 3).t().to(getattr(torch, name))
    ours = ta.from_dlpack(source)
    assert name_of(ours.dtype) == name and ours.tolist() == source.tolist()
    assert torch.from_dlpack(ours).tolist() == source.tolist()


@cpu_only("DLPack with torch's cpu tensors")
def test_dlpack_refuses_tensors_that_require_grad() -> None:
    with pytest.raises(BufferError):
        torch.ones(2, requires_grad=True).__dlpack__()
    with pytest.raises(BufferError, match="detach"):
        torch.from_dlpack(ta.ones(2, requires_grad=True))
    assert torch.from_dlpack(ta.ones(2, requires_grad=True).detach()).tolist() == [1.0, 1.0]


def test_from_dlpack_of_numpy_and_of_a_tensor() -> None:
    array = np.arange(3)
    t = ta.from_dlpack(array)
    array[0] = 7
    assert t.tolist() == [7, 1, 2]
    assert ta.from_dlpack(t) is t
    assert t.__dlpack_device__() == torch.zeros(1).__dlpack_device__()


# -- copies, views, detaching ------------------------------------------------------------------------------------------


def test_clone_copies_memory_and_keeps_the_graph() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.grad_fn.name() == torch.ones(1, requires_grad=True).clone().grad_fn.name()
    with ta.no_grad():
        y[0] = 5.0
    assert x.tolist() == [1.0, 2.0] and not y.is_leaf and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_contiguous_returns_self_when_already_contiguous() -> None:
    t = ta.ones(2, 3)
    assert t.contiguous() is t
    transposed = t.t()
    c = transposed.contiguous()
    assert c is not transposed and c.is_contiguous() and not transposed.is_contiguous()
    assert c.tolist() == transposed.tolist() and c.stride() == torch.ones(2, 3).t().contiguous().stride()


def test_detach_shares_memory_but_not_history() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    d[0] = 100.0
    assert y[0].item() == 100.0


def test_detach_shares_the_version_counter() -> None:
    # the in-place change through the detached alias must be caught by the op that saved the original
    for lib in (torch, ta):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        y.detach().zero_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_detach_in_place_turns_a_result_into_a_leaf() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    leaf = ta.ones(2, requires_grad=True)
    assert not leaf.detach_().requires_grad


def test_detach_in_place_of_a_view_is_an_error() -> None:
    base = torch.ones(2, 2, requires_grad=True) * 1
    with pytest.raises(RuntimeError):
        base[0].detach_()
    ours = ta.ones(2, 2, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="detach"):
        ours[0].detach_()


def test_data_is_a_detached_alias_and_can_be_replaced() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d[1] = 50.0
    assert x[1].item() == 50.0
    x.data = ta.tensor([5.0, 6.0, 7.0])
    assert x.shape == (3,) and x.requires_grad and x.tolist() == [5.0, 6.0, 7.0]


# -- dtype and device moves --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["float", "double", "half", "long", "int", "short", "char", "byte", "bool"])
def test_dtype_methods_convert_like_torch(method) -> None:
    ours, theirs = pair(np.array([1.7, -1.2, 0.0, 2.5], dtype=np.float64))
    if method == "byte":
        ours, theirs = ours.abs(), theirs.abs()
    o, t = getattr(ours, method)(), getattr(theirs, method)()
    assert name_of(o.dtype) == name_of(t.dtype) and o.tolist() == t.tolist()


def test_to_with_every_argument_form() -> None:
    x = ta.tensor([1.5, 2.5])
    assert x.to(ta.float64).dtype is ta.float64
    assert x.to(dtype=ta.float16).dtype is ta.float16
    assert x.to("cpu", ta.int32).tolist() == [1, 2]
    assert x.to(ta.device("cpu"), dtype=ta.float64).dtype is ta.float64
    assert x.to(ta.tensor([1], dtype=ta.int64)).dtype is ta.int64
    assert x.to(float).dtype is ta.float64 and x.to(int).dtype is ta.int64 and x.to(bool).dtype is ta.bool


@cpu_only("to('cpu') is a no-op only on the cpu; .to on cuda: test_cuda_api")
def test_to_returns_self_unless_something_changes() -> None:
    x = ta.tensor([1.0], requires_grad=True)
    assert x.to(ta.float32) is x and x.to("cpu") is x and x.cpu() is x and x.float() is x
    copy = x.to(ta.float32, copy=True)
    assert copy is not x and copy.requires_grad


def test_to_another_dtype_is_differentiable() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(ta.float64)
    assert y.grad_fn.name() == torch.ones(1, requires_grad=True).double().grad_fn.name()
    (y * y).sum().backward()
    assert x.grad.dtype is ta.float32 and x.grad.tolist() == [2.0, 4.0]


def test_to_rejects_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="colour"):
        ta.ones(1).to(colour="red")


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                                  "bool"])
def test_type_names_and_conversions_like_torch(name) -> None:
    ours, theirs = ta.ones(2, dtype=getattr(ta, name)), torch.ones(2, dtype=getattr(torch, name))
    assert ours.type() == theirs.type().replace("torch", "tinyautograd")
    converted = ta.zeros(2).type(theirs.type())
    assert converted.dtype is getattr(ta, name)
    assert ta.zeros(2).type(ours.type()).dtype is getattr(ta, name)
    assert ta.zeros(2).type(getattr(ta, name)).dtype is getattr(ta, name)


def test_type_rejects_unknown_names() -> None:
    with pytest.raises(TypeError, match="Banana"):
        ta.zeros(1).type("torch.BananaTensor")


# -- new_* -----------------------------------------------------------------------------------------------------------


def test_new_methods_inherit_dtype_and_device() -> None:
    for lib in (torch, ta):
        source = lib.ones(2, dtype=lib.float64)
        made = [source.new_zeros(3), source.new_ones((2, 2)), source.new_full((2,), 7), source.new_empty(4),
                source.new_tensor([1, 2]), source.new_zeros(2, dtype=lib.int32)]
        assert [name_of(m.dtype) for m in made] == ["float64"] * 5 + ["int32"]
        assert [tuple(m.shape) for m in made] == [(3,), (2, 2), (2,), (4,), (2,), (2,)]
        assert made[2].tolist() == [7.0, 7.0] and made[4].tolist() == [1.0, 2.0]
    assert ta.ones(1).new_zeros(2, requires_grad=True).requires_grad


# -- autograd attributes -----------------------------------------------------------------------------------------------


def test_leaves_and_results() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    c = ta.tensor([1.0, 2.0])
    y = x * c
    assert x.is_leaf and c.is_leaf and not y.is_leaf
    assert x.grad_fn is None and y.grad_fn is not None and y.requires_grad and not c.requires_grad
    with ta.no_grad():
        z = x * 2
    assert z.is_leaf and not z.requires_grad


def test_requires_grad_in_place_switch() -> None:
    x = ta.tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    x.requires_grad = True
    assert x.requires_grad and (x * 2).requires_grad


def test_requires_grad_cannot_be_dropped_on_results() -> None:
    with pytest.raises(RuntimeError):
        (torch.ones(1, requires_grad=True) * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="detach"):
        (ta.ones(1, requires_grad=True) * 2).requires_grad_(False)


def test_grad_assignment_checks_shape_like_torch() -> None:
    x = ta.ones(2, requires_grad=True)
    x.grad = ta.tensor([1.0, 2.0])
    assert x.grad.tolist() == [1.0, 2.0]
    x.grad = None
    assert x.grad is None
    with pytest.raises(RuntimeError):
        torch.ones(2, requires_grad=True).grad = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"\[3\].*\[2\]"):
        x.grad = ta.ones(3)
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0]


# the grad_fn names of common ops, which users print and match on
GRAD_FN_CASES = {
    "add": lambda lib, x, w: x + w, "add_scalar": lambda lib, x, w: x + 2, "radd": lambda lib, x, w: 2 + x,
    "sub": lambda lib, x, w: x - w, "rsub": lambda lib, x, w: 1 - x, "mul": lambda lib, x, w: x * w,
    "mul_scalar": lambda lib, x, w: x * 3, "div": lambda lib, x, w: x / w, "div_scalar": lambda lib, x, w: x / 2,
    "neg": lambda lib, x, w: -x, "pow": lambda lib, x, w: x ** 2, "pow_tensor": lambda lib, x, w: x ** w,
    "exp": lambda lib, x, w: x.exp(), "log": lambda lib, x, w: x.log(), "sqrt": lambda lib, x, w: x.sqrt(),
    "sin": lambda lib, x, w: x.sin(), "abs": lambda lib, x, w: x.abs(), "tanh": lambda lib, x, w: x.tanh(),
    "sigmoid": lambda lib, x, w: x.sigmoid(), "relu": lambda lib, x, w: x.relu(),
    "sum": lambda lib, x, w: x.sum(), "sum_dim": lambda lib, x, w: x.sum(0), "mean": lambda lib, x, w: x.mean(),
    "mm": lambda lib, x, w: x.mm(w), "matmul": lambda lib, x, w: x @ w, "bmm": lambda lib, x, w: x[None].bmm(w[None]),
    "mv": lambda lib, x, w: x.mv(w[0]), "dot": lambda lib, x, w: x[0].dot(w[0]),
    "view": lambda lib, x, w: x.view(4), "reshape": lambda lib, x, w: x.reshape(4),
    "transpose": lambda lib, x, w: x.transpose(0, 1), "permute": lambda lib, x, w: x.permute(1, 0),
    "slice": lambda lib, x, w: x[:, :1], "index": lambda lib, x, w: x[[0, 1]],
    "unsqueeze": lambda lib, x, w: x.unsqueeze(0), "squeeze": lambda lib, x, w: x[None].squeeze(0),
    "expand": lambda lib, x, w: x[:1].expand(3, 2), "cat": lambda lib, x, w: lib.cat([x, w]),
    "clone": lambda lib, x, w: x.clone(), "softmax": lambda lib, x, w: x.softmax(0),
    "log_softmax": lambda lib, x, w: x.log_softmax(1), "to_double": lambda lib, x, w: x.double(),
    "where": lambda lib, x, w: lib.where(x > 2, x, w), "clamp": lambda lib, x, w: x.clamp(0, 3),
    "max_dim": lambda lib, x, w: x.max(0)[0], "amax": lambda lib, x, w: x.amax(0),
    "flatten": lambda lib, x, w: x.flatten(), "repeat": lambda lib, x, w: x.repeat(2, 1),
    "flip": lambda lib, x, w: x.flip(0), "cumsum": lambda lib, x, w: x.cumsum(0),
    "gather": lambda lib, x, w: x.gather(0, lib.tensor([[0, 1]])), "var": lambda lib, x, w: x.var(),
    "prod": lambda lib, x, w: x.prod(), "logsumexp": lambda lib, x, w: x.logsumexp(0),
    "narrow": lambda lib, x, w: x.narrow(0, 0, 1), "contiguous": lambda lib, x, w: x.t().contiguous(),
    "rsqrt": lambda lib, x, w: x.rsqrt(), "reciprocal": lambda lib, x, w: x.reciprocal(),
    "std": lambda lib, x, w: x.std(),
    # composite ops and special forms that torch names on their own
    "t": lambda lib, x, w: x.t(), "select": lambda lib, x, w: x[0], "stack": lambda lib, x, w: lib.stack([x, w]),
    "max": lambda lib, x, w: x.max(), "min": lambda lib, x, w: x.min(),
    "sum_dims": lambda lib, x, w: x.sum((0, 1)), "addmm": lambda lib, x, w: lib.addmm(x, x, w),
    "masked_fill": lambda lib, x, w: x.masked_fill(x > 2, 0.0),
    "split": lambda lib, x, w: x.split(1)[0], "unbind": lambda lib, x, w: x.unbind()[0],
    "square": lambda lib, x, w: x.square(), "index_select": lambda lib, x, w: x.index_select(0, lib.tensor([0])),
    "rpow": lambda lib, x, w: 2 ** x, "chunk": lambda lib, x, w: x.chunk(2)[1],
    "split_sizes": lambda lib, x, w: x.split([1, 1])[0], "tensor_split": lambda lib, x, w: x.tensor_split(2)[0],
    "select_then_slice": lambda lib, x, w: x[0, :1], "slice_then_select": lambda lib, x, w: x[:1, 0],
    "index_none": lambda lib, x, w: x[None], "sum_dim_keepdim": lambda lib, x, w: x.sum((0, 1), keepdim=True),
    "setitem_basic": lambda lib, x, w: _set_and_return(x * 1, 0, w[0]),
    "setitem_advanced": lambda lib, x, w: _set_and_return(x * 1, [0], w[0]),
    "in_place_on_view": lambda lib, x, w: _mul_view_in_place(x * 1),
}


def _set_and_return(y, index, value):
    y[index] = value
    return y


def _mul_view_in_place(y):
    y[:, 0] *= 2
    return y


def _grad_fn_names(make) -> tuple[str, str]:
    names = []
    for lib in (ta, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        w = lib.tensor([[0.5, 1.5], [2.0, 0.25]])
        names.append(make(lib, x, w).grad_fn.name().replace("torch::autograd::", ""))
    return names[0], names[1]


@pytest.mark.parametrize("case", list(GRAD_FN_CASES))
def test_grad_fn_names_match_torch(case) -> None:
    ours, theirs = _grad_fn_names(GRAD_FN_CASES[case])
    assert ours == theirs


def test_comparing_with_none_is_identity_like_torch() -> None:
    for lib in (ta, torch):
        x = lib.ones(2)
        assert (x == None) is False and (x != None) is True  # noqa: E711 (the operator is what is tested)
        with pytest.raises(TypeError):
            lib.eq(x, None)


def test_grad_fn_repr_and_type_name() -> None:
    y = ta.ones(2, requires_grad=True) * ta.ones(2)
    assert y.grad_fn.name() == "MulBackward0" and "MulBackward0" in repr(y.grad_fn)
    assert isinstance(y.grad_fn, ta.autograd.graph.Node)


def test_next_functions_link_to_inputs_like_torch() -> None:
    structures = []
    for lib in (ta, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        c = lib.tensor([3.0, 4.0])
        y = (x * c + x).sum()
        sum_node = y.grad_fn
        add_node = sum_node.next_functions[0][0]
        mul_node, acc_index = add_node.next_functions[0]
        acc = add_node.next_functions[1][0]
        assert acc.variable is x and mul_node.next_functions[0][0] is acc
        structures.append([
            [(n.name().replace("torch::autograd::", "") if n is not None else None, i)
             for n, i in node.next_functions] for node in (sum_node, add_node, mul_node)])
        assert acc.next_functions == ()
    assert structures[0] == structures[1]


def test_retain_grad_keeps_non_leaf_gradients() -> None:
    results = []
    for lib in (ta, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        assert not y.retains_grad
        y.retain_grad()
        y.retain_grad()  # twice is harmless
        z = y * y
        assert y.retains_grad and not z.retains_grad and not x.retains_grad
        z.sum().backward()
        results.append((y.grad.tolist(), x.grad.tolist(), z.retains_grad))
    assert results[0] == results[1]


def test_retain_grad_accumulates_over_backward_calls() -> None:
    x = ta.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * 3).sum().backward()
    assert y.grad.tolist() == [2 * 2.0 + 3, 2 * 4.0 + 3]


def test_retain_grad_on_a_leaf_is_a_no_op_and_needs_requires_grad() -> None:
    x = ta.ones(1, requires_grad=True)
    x.retain_grad()
    assert x.is_leaf
    with pytest.raises(RuntimeError):
        torch.ones(1).retain_grad()
    with pytest.raises(RuntimeError, match="requires_grad"):
        ta.ones(1).retain_grad()


def _hooked_grads(lib, remove: bool) -> list:
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    seen = []
    handles = [y.register_hook(lambda g: seen.append(g.tolist())),
               y.register_hook(lambda g: g * 10),
               x.register_hook(lambda g: g + 1)]
    if remove:
        for h in handles:
            h.remove()
    (y * y).sum().backward()
    return [seen, x.grad.tolist()]


@pytest.mark.parametrize("remove", [False, True])
def test_hooks_change_gradients_and_removal_restores_them(remove) -> None:
    assert _hooked_grads(ta, remove) == _hooked_grads(torch, remove)


def test_hook_handle_is_a_context_manager() -> None:
    x = ta.tensor([1.0], requires_grad=True)
    with x.register_hook(lambda g: g * 0):
        pass
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0]


def test_leaf_hook_sees_the_summed_gradient_once() -> None:
    for lib in (ta, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        calls = []
        x.register_hook(lambda g: calls.append(g.tolist()))
        (x * 2 + x * 3).sum().backward()
        assert calls == [[5.0, 5.0]]


def test_retain_grad_sees_the_hooked_gradient() -> None:
    grads = []
    for lib in (ta, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g * 100)
        y.sum().backward()
        grads.append((y.grad.tolist(), x.grad.tolist()))
    assert grads[0] == grads[1]


def test_hook_errors_like_torch() -> None:
    with pytest.raises(RuntimeError):
        torch.ones(1).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="require"):
        ta.ones(1).register_hook(lambda g: g)
    x = ta.ones(2, requires_grad=True)
    x.register_hook(lambda g: ta.zeros(3))
    with pytest.raises(RuntimeError, match=r"size.*\[2\].*\[3\]"):
        x.sum().backward()


# -- reprs -------------------------------------------------------------------------------------------------------------

REPR_CASES = [
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2,
    lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True).sum(),
    lambda lib: lib.tensor([[1, 2], [3, 4]]),
    lambda lib: lib.tensor(1.5, dtype=lib.float16),
    lambda lib: lib.tensor([True, False]),
    lambda lib: lib.zeros(0, 3),
    lambda lib: lib.arange(12, dtype=lib.int32).reshape(3, 4),
    lambda lib: lib.tensor([1e-5, 1e5]),
    lambda lib: lib.ones(2, 2, requires_grad=True).transpose(0, 1),
    lambda lib: lib.tensor([[1.0]], requires_grad=True).exp().neg(),
]


@pytest.mark.parametrize("case", range(len(REPR_CASES)))
def test_repr_and_str_print_like_torch(case) -> None:
    ours, theirs = REPR_CASES[case](ta), REPR_CASES[case](torch)
    assert torch_comparable(repr(ours)) == their_repr(theirs)
    assert torch_comparable(str(ours)) == str(theirs).replace("torch.", "tinyautograd.")


# -- what scripts probe ------------------------------------------------------------------------------------------------


def test_devices_are_torch_like() -> None:
    cpu = ta.device("cpu")
    assert cpu.type == "cpu" and str(cpu) == "cpu" and repr(cpu) == repr(torch.device("cpu"))
    assert ta.device(cpu) == cpu and hash(ta.device("cpu")) == hash(cpu)
    cuda1 = ta.device("cuda:1")
    assert (cuda1.type, cuda1.index) == ("cuda", 1) and repr(cuda1) == repr(torch.device("cuda:1"))
    assert ta.device("cuda", 0) == ta.device("cuda:0") and str(ta.device("cuda", 0)) == "cuda:0"
    with pytest.raises(RuntimeError):
        torch.device("tpu")
    with pytest.raises(RuntimeError, match="tpu"):
        ta.device("tpu")


def test_availability_probes_answer_without_errors() -> None:
    assert isinstance(ta.cuda.is_available(), bool)
    assert ta.cuda.device_count() >= 0
    assert ta.backends.mps.is_available() is False and ta.backends.mps.is_built() is False
    assert isinstance(ta.backends.cudnn.deterministic, bool)
    if not ta.cuda.is_available():
        assert ta.cuda.device_count() == 0
        with pytest.raises(RuntimeError, match="CUDA"):
            ta.zeros(1, device="cuda")


def test_typical_device_selection_line_runs() -> None:
    device = ta.device("cuda" if ta.cuda.is_available() else "cpu")
    t = ta.ones(2).to(device)
    assert t.device == device if device.type == "cpu" else t.device.type == "cuda"


def test_set_default_device_places_new_tensors() -> None:
    try:
        ta.set_default_device("cpu")
        assert ta.get_default_device() == ta.device("cpu") and ta.zeros(1).device.type == "cpu"
        assert ta.tensor([1.0]).device.type == "cpu"
    finally:
        ta.set_default_device(None)
    assert ta.get_default_device() == ta.device("cpu")


def test_thread_settings_are_accepted() -> None:
    before = ta.get_num_threads()
    try:
        ta.set_num_threads(1)
        assert ta.get_num_threads() == 1
    finally:
        ta.set_num_threads(before)
    ta.set_num_interop_threads(1)
    ta.manual_seed(0)
    ta.use_deterministic_algorithms(True)


@pytest.mark.parametrize("op", ["matmul", "mul", "add"])
def test_out_argument_writes_into_the_given_tensor(op) -> None:
    a, b = np.arange(4.0).reshape(2, 2), np.full((2, 2), 2.0)
    ours_out, theirs_out = ta.empty(2, 2), torch.empty(2, 2)
    returned = getattr(ta, op)(ta.tensor(a, dtype=ta.float32), ta.tensor(b, dtype=ta.float32), out=ours_out)
    getattr(torch, op)(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), out=theirs_out)
    assert returned is ours_out and ours_out.tolist() == theirs_out.tolist()


def test_out_argument_refuses_autograd_and_lossy_casts() -> None:
    with pytest.raises(RuntimeError):
        torch.add(torch.ones(2, requires_grad=True), 1, out=torch.empty(2))
    with pytest.raises(RuntimeError, match="out="):
        ta.add(ta.ones(2, requires_grad=True), 1, out=ta.empty(2))
    with pytest.raises(RuntimeError):
        torch.mul(torch.ones(2), 1.5, out=torch.empty(2, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="int64"):
        ta.mul(ta.ones(2), 1.5, out=ta.empty(2, dtype=ta.int64))


@pytest.mark.parametrize("name", ["autograd", "utils", "cuda", "nn", "optim"])
def test_subpackages_are_attributes_after_a_plain_import(name) -> None:
    module = getattr(ta, name)
    assert module is importlib.import_module(f"tinyautograd.{name}")


def test_torch_style_entry_points_exist() -> None:
    for name in ("no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "manual_seed",
                 "tensor", "Tensor", "from_numpy", "as_tensor", "save", "load", "compile"):
        assert callable(getattr(ta, name)), name
    assert ta.autograd.grad is not None and ta.autograd.Function is not None
    with pytest.raises(AttributeError, match="no_such_thing"):
        ta.no_such_thing  # noqa: B018
