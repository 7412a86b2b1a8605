"""Creation functions, dtypes and type promotion, compared with torch: what each function returns (values, dtype,
shape, device, requires_grad), which inputs share memory, random streams that replay under a seed, and the dtype of
every mixed-dtype arithmetic result."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinyautograd as ta
from helpers import cpu_only

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

# every dtype both libraries have, by name
DTYPE_NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
FLOAT_NAMES = ["float16", "float32", "float64"]


def ta_dtype(name: str) -> ta.dtype:
    return getattr(ta, name)


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def name_of(dtype) -> str:
    return str(dtype).split(".")[-1]


def values(t) -> np.ndarray:
    """The values of a tinyautograd or torch tensor on the host."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    d = t._data
    return d if isinstance(d, np.ndarray) else d.get()


def assert_same(ours: ta.Tensor, theirs: torch.Tensor, exact: bool = True) -> None:
    """Same dtype name, shape and values (exactly, or to float32 rounding)."""
    assert name_of(ours.dtype) == name_of(theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    if exact:
        np.testing.assert_array_equal(values(ours), values(theirs))
    else:
        np.testing.assert_allclose(values(ours), values(theirs), rtol=1e-6, atol=1e-7)


@pytest.fixture
def default_dtype() -> Iterator[None]:
    """Restore both libraries' default dtype after a test changes it."""
    yield
    ta.set_default_dtype(ta.float32)
    torch.set_default_dtype(torch.float32)


# -- tensor(): dtype inference and copies ------------------------------------------------------------------------------

INFERENCE_CASES = [
    1, 2.5, True, -3, [1, 2, 3], [1.0, 2], [True, False], [1, 2.5, True], [[1, 2], [3, 4]], [[1.5], [2.0]],
    [], [[]], (1, 2), [(1, 2), (3, 4)], 0.1, [1e300 * 0], [float("inf"), -1.0],
]


@pytest.mark.parametrize("data", INFERENCE_CASES, ids=repr)
def test_tensor_infers_dtype_and_shape_like_torch(data, device) -> None:
    ours = ta.tensor(data, device=device)
    assert_same(ours, torch.tensor(data))
    assert ours.device.type == device and ours.is_leaf and not ours.requires_grad


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_tensor_of_numpy_array_keeps_its_dtype_and_copies(name) -> None:
    array = np.arange(6).reshape(2, 3).astype(name)
    ours = ta.tensor(array)
    assert_same(ours, torch.tensor(array))
    array[0, 0] = 1
    assert values(ours)[0, 0] == 0  # a copy, as torch.tensor


@pytest.mark.parametrize("data", [[np.int32(1)], [np.float64(1.5)], [np.float32(1.0)], [np.float16(1), 1.0],
                                  [np.int64(1), 2.5], [np.bool_(True)], np.float64(2.0), np.int16(3)],
                         ids=repr)
def test_numpy_scalars_keep_their_dtype_like_torch(data) -> None:
    assert_same(ta.tensor(data), torch.tensor(data))


def test_tensor_of_tensors_stacks_values() -> None:
    ours = ta.tensor([ta.tensor(1.0), ta.tensor(2.0)])
    assert_same(ours, torch.tensor([torch.tensor(1.0), torch.tensor(2.0)]))


def test_tensor_of_tensor_copies_and_detaches() -> None:
    source = ta.tensor([1.0, 2.0], requires_grad=True)
    copy = ta.tensor(source.detach())
    copy.add_(1)
    assert source.tolist() == [1.0, 2.0] and copy.is_leaf and not copy.requires_grad


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_tensor_dtype_argument_converts_like_torch(dtype) -> None:
    data = [[1.7, 1.2], [0.0, 3.9], [0.1, 1e-8]]  # floats parsed in the target precision, truncated for integers
    assert_same(ta.tensor(data, dtype=ta_dtype(dtype)), torch.tensor(data, dtype=torch_dtype(dtype)))


@pytest.mark.parametrize("python_type", [float, int, bool])
def test_python_types_as_dtype_mean_what_they_mean_in_torch(python_type) -> None:
    assert name_of(ta.zeros(2, dtype=python_type).dtype) == name_of(torch.zeros(2, dtype=python_type).dtype)
    assert name_of(ta.ones(2).to(python_type).dtype) == name_of(torch.ones(2).to(python_type).dtype)


def test_ragged_nested_lists_raise_value_error() -> None:
    with pytest.raises(ValueError):
        torch.tensor([[1], [2, 3]])
    with pytest.raises(ValueError):
        ta.tensor([[1], [2, 3]])


@pytest.mark.parametrize("data,error", [("abc", TypeError), ([1, "a"], TypeError), (object(), RuntimeError),
                                        ({1: 2}, RuntimeError), ([object()], RuntimeError)],
                         ids=["str", "str-in-list", "object", "dict", "object-in-list"])
def test_non_numeric_data_raises_like_torch(data, error) -> None:
    with pytest.raises(error):
        torch.tensor(data)
    with pytest.raises(error, match="infer dtype"):
        ta.tensor(data)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_only_floating_tensors_can_require_grad(dtype) -> None:
    with pytest.raises(RuntimeError):
        torch.tensor([1], dtype=torch_dtype(dtype), requires_grad=True)
    with pytest.raises(RuntimeError, match=dtype):
        ta.tensor([1], dtype=ta_dtype(dtype), requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        ta.zeros(2, dtype=ta_dtype(dtype)).requires_grad_()


@pytest.mark.parametrize("dtype", FLOAT_NAMES)
def test_requires_grad_argument_makes_a_leaf(dtype, device) -> None:
    t = ta.tensor([1.0, 2.0], dtype=ta_dtype(dtype), device=device, requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


# -- memory sharing: as_tensor, from_numpy, numpy() --------------------------------------------------------------------


def test_as_tensor_shares_memory_with_numpy() -> None:
    array = np.zeros(3, dtype=np.float32)
    t = ta.as_tensor(array)
    array[1] = 5.0
    assert t[1].item() == 5.0
    t.add_(1)
    assert array.tolist() == [1.0, 6.0, 1.0]


def test_as_tensor_copies_when_the_dtype_changes() -> None:
    array = np.zeros(3, dtype=np.float64)
    t = ta.as_tensor(array, dtype=ta.float32)
    array[0] = 9.0
    assert t.dtype is ta.float32 and t[0].item() == 0.0


def test_as_tensor_returns_a_tensor_as_is_and_copies_lists() -> None:
    t = ta.ones(2)
    assert ta.as_tensor(t) is t
    assert_same(ta.as_tensor([1, 2]), torch.as_tensor([1, 2]))
    assert ta.asarray is ta.as_tensor


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_from_numpy_shares_memory_and_keeps_dtype(name) -> None:
    array = np.arange(4).astype(name)
    t = ta.from_numpy(array)
    assert_same(t, torch.from_numpy(array.copy()))
    array[...] = array[::-1].copy()
    assert t.tolist() == array.tolist()


def test_from_numpy_keeps_strides_and_zero_dims() -> None:
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]
    assert ta.from_numpy(strided).tolist() == torch.from_numpy(strided).tolist()
    assert ta.from_numpy(np.array(3.0)).shape == ()


def test_from_numpy_rejects_other_objects_and_dtypes() -> None:
    with pytest.raises(TypeError):
        torch.from_numpy([1, 2])
    with pytest.raises(TypeError):
        ta.from_numpy([1, 2])
    with pytest.raises(TypeError):
        torch.from_numpy(np.array(["a"]))
    with pytest.raises(TypeError, match="<U1"):
        ta.from_numpy(np.array(["a"]))


@cpu_only("NumPy shares host memory only; a cuda tensor's .numpy() raises (test_errors)")
def test_numpy_shares_memory_with_the_tensor() -> None:
    t = ta.zeros(3)
    t.numpy()[0] = 4.0
    assert t[0].item() == 4.0


# -- the legacy Tensor constructor -------------------------------------------------------------------------------------


def test_legacy_constructor_copies_data_as_default_float() -> None:
    assert_same(ta.Tensor([1, 2]), torch.Tensor([1, 2]))
    assert_same(ta.Tensor([[True, False]]), torch.Tensor([[True, False]]))
    assert_same(ta.Tensor(np.array([1, 2])), torch.Tensor(np.array([1, 2])))


@pytest.mark.parametrize("args", [(2, 3), (4,), (0,), ((2, 3),), ()], ids=repr)
def test_legacy_constructor_with_sizes_gives_that_shape(args) -> None:
    if len(args) == 1 and isinstance(args[0], tuple):
        ours, theirs = ta.Tensor(ta.Size(args[0])), torch.Tensor(torch.Size(args[0]))
    else:
        ours, theirs = ta.Tensor(*args), torch.Tensor(*args)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is ta.float32


def test_legacy_constructor_rejects_a_bare_float() -> None:
    with pytest.raises(TypeError):
        torch.Tensor(2.5)
    with pytest.raises(TypeError, match="sequence"):
        ta.Tensor(2.5)


def test_tensors_are_instances_of_tensor() -> None:
    assert isinstance(ta.tensor(1), ta.Tensor) and ta.is_tensor(ta.zeros(1)) and not ta.is_tensor([1])


# -- filled tensors --------------------------------------------------------------------------------------------------

SIZE_FORMS = [((2, 3), {}), (((2, 3),), {}), (([2, 3],), {}), ((), {"size": (2, 3)}), ((4,), {}), (((),), {}),
              ((0, 2), {}), ((ta.Size([3, 1]),), {})]


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("args,kwargs", SIZE_FORMS, ids=repr)
def test_filled_tensors_accept_every_size_form(fn, args, kwargs, device) -> None:
    ours = getattr(ta, fn)(*args, device=device, **kwargs)
    theirs = getattr(torch, fn)(*args, **kwargs)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is ta.float32 and ours.device.type == device
    if fn != "empty":
        assert_same(ours, theirs)


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_filled_tensors_take_a_dtype(fn, dtype) -> None:
    ours = getattr(ta, fn)(2, 2, dtype=ta_dtype(dtype))
    theirs = getattr(torch, fn)(2, 2, dtype=torch_dtype(dtype))
    assert ours.dtype is ta_dtype(dtype)
    if fn != "empty":
        assert_same(ours, theirs)


@pytest.mark.parametrize("fill", [3, 2.5, True, -1])
def test_full_infers_dtype_from_the_fill_value(fill) -> None:
    assert_same(ta.full((2, 2), fill), torch.full((2, 2), fill))
    assert_same(ta.full([3], fill, dtype=ta.float64), torch.full([3], fill, dtype=torch.float64))


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_a_missing_size_is_a_type_error(fn) -> None:
    with pytest.raises(TypeError):
        getattr(torch, fn)()
    with pytest.raises(TypeError, match="size"):
        getattr(ta, fn)()


def test_negative_sizes_raise_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        torch.zeros(2, -1)
    with pytest.raises(RuntimeError, match="-1"):
        ta.zeros(2, -1)


def test_non_integer_sizes_raise_type_error() -> None:
    with pytest.raises(TypeError):
        torch.zeros(2.5)
    with pytest.raises(TypeError, match="float"):
        ta.zeros(2.5)


@pytest.mark.parametrize("fn", ["zeros", "ones", "full", "empty", "eye", "rand", "randn"])
def test_creation_requires_grad_makes_leaves(fn) -> None:
    args = {"full": ((2,), 1.0), "eye": (2,)}.get(fn, (2,))
    t = getattr(ta, fn)(*args, requires_grad=True)
    assert t.requires_grad and t.is_leaf


# -- ranges ------------------------------------------------------------------------------------------------------------


@given(start=st.integers(-20, 20), end=st.integers(-20, 20), step=st.integers(-6, 6).filter(bool))
def test_arange_of_ints_matches_torch(start, end, step) -> None:
    if (end - start) * step < 0:
        with pytest.raises(RuntimeError):
            torch.arange(start, end, step)
        with pytest.raises(RuntimeError, match="step"):
            ta.arange(start, end, step)
        return
    assert_same(ta.arange(start, end, step), torch.arange(start, end, step))


# steps like 0.1 and bounds like 0.3 put the length at the mercy of float rounding: torch's length rule
# (ceil((end - start) / step) in double precision) must be reproduced exactly
@given(start=st.integers(-30, 30), end=st.integers(-30, 30), step=st.sampled_from([0.1, 0.25, 0.3, 0.5, 1.5, -0.1,
                                                                                   -0.7, 2.0]))
def test_arange_of_floats_matches_torch_length_and_values(start, end, step) -> None:
    start, end = start / 10, end / 10
    if (end - start) * step < 0:
        return
    ours, theirs = ta.arange(start, end, step), torch.arange(start, end, step)
    assert_same(ours, theirs, exact=False)
    assert_same(ta.arange(start, end, step, dtype=ta.float64), torch.arange(start, end, step, dtype=torch.float64),
                exact=False)


@pytest.mark.parametrize("args,kwargs", [
    ((5,), {}), ((2, 7), {}), ((5,), {"dtype": "float32"}), ((0, 5, 2), {"dtype": "float64"}),
    ((0.0, 5.0, 1.5), {"dtype": "int64"}), ((1, -1, -0.5), {}), ((0,), {}), ((3.0,), {}),
    ((0, 1, 0.1), {}), ((0.0, 1.0000001, 0.1), {}),
], ids=repr)
def test_arange_dtype_and_length_rules(args, kwargs) -> None:
    dtype = kwargs.get("dtype")
    ours = ta.arange(*args, dtype=None if dtype is None else ta_dtype(dtype))
    theirs = torch.arange(*args, dtype=None if dtype is None else torch_dtype(dtype))
    assert_same(ours, theirs, exact=False)


def test_arange_accepts_0d_tensors_as_bounds() -> None:
    assert_same(ta.arange(ta.tensor(3)), torch.arange(torch.tensor(3)))
    assert_same(ta.arange(ta.tensor(0.5), 2), torch.arange(torch.tensor(0.5), 2))


def test_arange_rejects_zero_and_inconsistent_steps() -> None:
    for args in [(0, 10, 0), (0, 10, -1), (5, 0, 1)]:
        with pytest.raises(RuntimeError):
            torch.arange(*args)
        with pytest.raises(RuntimeError, match="step"):
            ta.arange(*args)


@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-1, 1, 4), (2, 5, 1), (2, 5, 0), (3.5, -1.25, 7)])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_linspace_matches_torch(start, end, steps, dtype) -> None:
    ours = ta.linspace(start, end, steps, dtype=None if dtype is None else ta_dtype(dtype))
    theirs = torch.linspace(start, end, steps, dtype=None if dtype is None else torch_dtype(dtype))
    assert_same(ours, theirs, exact=False)


def test_linspace_to_integers_truncates_like_torch() -> None:
    assert_same(ta.linspace(0, 10, 5, dtype=ta.int64), torch.linspace(0, 10, 5, dtype=torch.int64))


def test_logspace_matches_torch() -> None:
    assert_same(ta.logspace(0, 2, 3), torch.logspace(0, 2, 3), exact=False)
    assert_same(ta.logspace(-1, 1, 5, base=2.0), torch.logspace(-1, 1, 5, base=2.0), exact=False)


@pytest.mark.parametrize("n,m", [(3, None), (2, 4), (4, 2), (0, None)])
@pytest.mark.parametrize("dtype", [None, "int64", "bool"])
def test_eye_matches_torch(n, m, dtype) -> None:
    ours = ta.eye(n, m, dtype=None if dtype is None else ta_dtype(dtype))
    theirs = torch.eye(n, n if m is None else m, dtype=None if dtype is None else torch_dtype(dtype))
    assert_same(ours, theirs)


# -- *_like ----------------------------------------------------------------------------------------------------------

LIKE_SOURCES = [([[1.5, 2.0]], "float64"), ([1, 2, 3], "int32"), ([True], "bool"), (2.0, "float32")]


@pytest.mark.parametrize("data,dtype", LIKE_SOURCES, ids=repr)
@pytest.mark.parametrize("fn", ["zeros_like", "ones_like", "empty_like"])
def test_like_functions_copy_shape_dtype_and_device(data, dtype, fn, device) -> None:
    source = ta.tensor(data, dtype=ta_dtype(dtype), device=device)
    theirs = getattr(torch, fn)(torch.tensor(data, dtype=torch_dtype(dtype)))
    ours = getattr(ta, fn)(source)
    assert ours.device == source.device and not ours.requires_grad
    if fn == "empty_like":
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is source.dtype
    else:
        assert_same(ours, theirs)


@pytest.mark.parametrize("data,dtype", LIKE_SOURCES, ids=repr)
def test_full_like_keeps_the_source_dtype(data, dtype) -> None:
    ours = ta.full_like(ta.tensor(data, dtype=ta_dtype(dtype)), 2.7)
    assert_same(ours, torch.full_like(torch.tensor(data, dtype=torch_dtype(dtype)), 2.7))


def test_like_functions_take_dtype_and_requires_grad() -> None:
    source = ta.tensor([1, 2])
    ones = ta.ones_like(source, dtype=ta.float64, requires_grad=True)
    assert ones.dtype is ta.float64 and ones.requires_grad and ones.is_leaf
    assert ta.zeros_like(source, dtype=ta.float16).dtype is ta.float16


def test_random_like_functions_match_shape_and_dtype() -> None:
    source = ta.zeros(2, 3, dtype=ta.float64)
    for fn in (ta.rand_like, ta.randn_like):
        t = fn(source)
        assert t.shape == (2, 3) and t.dtype is ta.float64
    r = ta.randint_like(source, 5)
    assert r.dtype is ta.float64 and float(r.max()) < 5
    r = ta.randint_like(source, 3, 7)
    assert 3 <= float(r.min()) and float(r.max()) < 7


def test_random_floats_need_a_floating_dtype() -> None:
    with pytest.raises(RuntimeError):
        torch.rand(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="int64"):
        ta.rand(2, dtype=ta.int64)
    with pytest.raises(RuntimeError, match="int64"):
        ta.randn(2, dtype=ta.int64)
    with pytest.raises(RuntimeError):
        ta.rand_like(ta.tensor([1, 2]))


# -- random numbers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_args", [(2, 3), ((2, 3),), ((),)], ids=repr)
@pytest.mark.parametrize("dtype", FLOAT_NAMES)
def test_rand_and_randn_shapes_and_dtypes(size_args, dtype, device) -> None:
    for fn in ("rand", "randn"):
        ours = getattr(ta, fn)(*size_args, dtype=ta_dtype(dtype), device=device)
        theirs = getattr(torch, fn)(*size_args, dtype=torch_dtype(dtype))
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is ta_dtype(dtype)
        assert ours.device.type == device


def test_rand_is_uniform_on_the_unit_interval() -> None:
    ta.manual_seed(0)
    u = values(ta.rand(20000, dtype=ta.float64))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005


def test_randn_is_standard_normal() -> None:
    ta.manual_seed(0)
    z = values(ta.randn(20000, dtype=ta.float64))
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03


@pytest.mark.parametrize("args,kwargs", [((5, (1000,)), {}), ((-3, 4, (1000,)), {}), ((2,), {"size": (7,)}),
                                         ((0, 3, (50,)), {"dtype": "int32"}),
                                         ((0, 3, (50,)), {"dtype": "float32"})], ids=repr)
def test_randint_range_shape_and_dtype_like_torch(args, kwargs) -> None:
    dtype = kwargs.pop("dtype", None)
    ours = ta.randint(*args, dtype=None if dtype is None else ta_dtype(dtype), **kwargs)
    theirs = torch.randint(*args, dtype=None if dtype is None else torch_dtype(dtype), **kwargs)
    assert tuple(ours.shape) == tuple(theirs.shape) and name_of(ours.dtype) == name_of(theirs.dtype)
    low, high = (0, args[0]) if len(args) == 1 or isinstance(args[1], tuple) else args[:2]
    v = values(ours)
    assert v.min() >= low and v.max() < high


def test_randint_hits_every_value() -> None:
    ta.manual_seed(1)
    assert sorted(set(ta.randint(-2, 3, (500,)).tolist())) == [-2, -1, 0, 1, 2]


def test_randint_rejects_an_empty_range() -> None:
    with pytest.raises(RuntimeError):
        torch.randint(3, 3, (2,))
    with pytest.raises(RuntimeError, match="3"):
        ta.randint(3, 3, (2,))


@pytest.mark.parametrize("n", [0, 1, 10, 257])
def test_randperm_is_a_permutation(n) -> None:
    p = ta.randperm(n)
    assert p.dtype is ta.int64 and sorted(p.tolist()) == list(range(n))
    assert ta.randperm(n, dtype=ta.int32).dtype is ta.int32


def _draw_all(generator=None) -> list:
    return [ta.rand(3, generator=generator).tolist(), ta.randn(2, 2, generator=generator).tolist(),
            ta.randint(0, 100, (4,), generator=generator).tolist(), ta.randperm(6, generator=generator).tolist()]


def test_manual_seed_replays_the_same_numbers() -> None:
    ta.manual_seed(1234)
    first = _draw_all()
    ta.manual_seed(1234)
    assert _draw_all() == first
    ta.manual_seed(4321)
    assert _draw_all() != first


def test_generators_are_independent_streams(default_device) -> None:
    g1, g2 = ta.Generator(default_device).manual_seed(7), ta.Generator(default_device).manual_seed(7)
    ta.manual_seed(0)
    a = _draw_all(g1)
    ta.rand(100)  # the global stream does not disturb g2
    assert _draw_all(g2) == a
    assert _draw_all(ta.Generator(default_device).manual_seed(8)) != a
    assert _draw_all(g1) != a  # a stream moves on


@cpu_only("a cpu Generator's state; CUDA generators: test_cuda_api")
def test_generator_seeds_and_state_like_torch() -> None:
    g = ta.Generator()
    assert g.initial_seed() == torch.Generator().initial_seed()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    state = g.get_state()
    first = ta.rand(4, generator=g).tolist()
    g.set_state(state)
    assert ta.rand(4, generator=g).tolist() == first


@cpu_only("get_rng_state is the cpu generator's state, as torch's")
def test_global_rng_state_round_trips() -> None:
    ta.manual_seed(3)
    state = ta.get_rng_state()
    first = ta.randn(5).tolist()
    ta.set_rng_state(state)
    assert ta.randn(5).tolist() == first
    assert ta.initial_seed() == 3


def test_manual_seed_returns_the_default_generator() -> None:
    assert ta.manual_seed(0) is ta.default_generator
    assert isinstance(ta.default_generator, ta.Generator)


# -- dtypes ----------------------------------------------------------------------------------------------------------


def test_dtype_aliases_are_torchs() -> None:
    assert ta.float is ta.float32 and ta.double is ta.float64 and ta.half is ta.float16
    assert ta.long is ta.int64 and ta.int is ta.int32 and ta.short is ta.int16


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_properties_match_torch(name) -> None:
    ours, theirs = ta_dtype(name), torch_dtype(name)
    assert ours.is_floating_point == theirs.is_floating_point
    assert ours.is_signed == theirs.is_signed
    assert ours.itemsize == theirs.itemsize
    assert str(ours) == str(theirs).replace("torch", "tinyautograd") == repr(ours)
    assert ta.zeros(1, dtype=ours).element_size() == torch.zeros(1, dtype=theirs).element_size()


def test_default_dtype_is_float32() -> None:
    assert ta.get_default_dtype() is ta.float32
    assert ta.tensor(1.0).dtype is ta.zeros(1).dtype is ta.rand(1).dtype is ta.arange(0.0, 1.0).dtype is ta.float32


@pytest.mark.parametrize("name", ["float64", "float16"])
def test_set_default_dtype_changes_new_floating_tensors(name, default_dtype) -> None:
    ta.set_default_dtype(ta_dtype(name))
    torch.set_default_dtype(torch_dtype(name))
    assert ta.get_default_dtype() is ta_dtype(name)
    for make in (lambda lib: lib.tensor([1.5]), lambda lib: lib.zeros(2), lambda lib: lib.arange(0.0, 1.0, 0.5),
                 lambda lib: lib.tensor([1, 3]) / 2, lambda lib: lib.tensor([1]) * 2.5, lambda lib: lib.Tensor([1]),
                 lambda lib: lib.linspace(0, 1, 3), lambda lib: lib.full((1,), 2.0)):
        assert_same(make(ta), make(torch), exact=False)
    # integer and explicitly typed tensors are unaffected
    assert ta.tensor([1]).dtype is ta.int64
    assert (ta.tensor([1.0], dtype=ta.float32) * 2.5).dtype is ta.float32


def test_set_default_dtype_rejects_non_floating_types(default_dtype) -> None:
    with pytest.raises(TypeError):
        torch.set_default_dtype(torch.int64)
    with pytest.raises(TypeError, match="int64"):
        ta.set_default_dtype(ta.int64)
    assert ta.get_default_dtype() is ta.float32


# -- type promotion ----------------------------------------------------------------------------------------------------


def _operand(lib, name: str, zero_dim: bool):
    dtype = getattr(lib, name)
    return lib.tensor(1, dtype=dtype) if zero_dim else lib.ones(2, dtype=dtype)


def _result_dtype(lib, op, a, b):
    try:
        return name_of(op(a, b).dtype)
    except (RuntimeError, TypeError) as e:
        return type(e).__name__


BINARY_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
              "div": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "pow": lambda a, b: a ** b}


@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_tensor_tensor_promotion_matches_torch(op) -> None:
    fn = BINARY_OPS[op]
    mismatches = []
    for a, b, za, zb in itertools.product(DTYPE_NAMES, DTYPE_NAMES, [False, True], [False, True]):
        if "bool" in (a, b) and op in ("floordiv", "pow", "sub"):
            continue  # torch has no bool kernels there; sub with a bool is tested on its own below
        ours = _result_dtype(ta, fn, _operand(ta, a, za), _operand(ta, b, zb))
        theirs = _result_dtype(torch, fn, _operand(torch, a, za), _operand(torch, b, zb))
        if ours != theirs:
            mismatches.append((a, "0-d" if za else "1-d", b, "0-d" if zb else "1-d", ours, theirs))
    assert not mismatches


SCALARS = [2, 2.5, True]


@pytest.mark.parametrize("op", ["add", "mul", "div", "sub"])
def test_python_scalars_never_upcast_within_a_category(op) -> None:
    fn = BINARY_OPS[op]
    mismatches = []
    for name, scalar, scalar_first in itertools.product(DTYPE_NAMES, SCALARS, [False, True]):
        if op == "sub" and (name == "bool" or isinstance(scalar, bool)):
            continue  # tested on its own below
        pair = (lambda lib: (scalar, _operand(lib, name, False))) if scalar_first else (
            lambda lib: (_operand(lib, name, False), scalar))
        ours = _result_dtype(ta, fn, *pair(ta))
        theirs = _result_dtype(torch, fn, *pair(torch))
        if ours != theirs:
            mismatches.append((name, scalar, scalar_first, ours, theirs))
    assert not mismatches


def test_integer_true_division_gives_the_default_float(default_dtype) -> None:
    assert_same(ta.tensor([1, 2]) / ta.tensor([2, 2]), torch.tensor([1, 2]) / torch.tensor([2, 2]))
    assert_same(ta.tensor([3], dtype=ta.int32) / 2, torch.tensor([3], dtype=torch.int32) / 2)
    ta.set_default_dtype(ta.float64)
    torch.set_default_dtype(torch.float64)
    assert_same(ta.tensor([1, 2]) / 4, torch.tensor([1, 2]) / 4)


def test_zero_dim_tensors_only_upcast_across_categories() -> None:
    cases = [(("int32", False), ("int64", True)), (("float32", False), ("float64", True)),
             (("int32", False), ("float64", True)), (("float16", False), ("float32", True)),
             (("bool", False), ("int64", True)), (("int8", False), ("uint8", True)),
             (("float64", True), ("float32", True))]
    for (a, za), (b, zb) in cases:
        ours = (_operand(ta, a, za) + _operand(ta, b, zb)).dtype
        theirs = (_operand(torch, a, za) + _operand(torch, b, zb)).dtype
        assert name_of(ours) == name_of(theirs), (a, b)


def test_subtracting_bools_raises_like_torch() -> None:
    with pytest.raises(RuntimeError):
        torch.tensor([True]) - torch.tensor([False])
    with pytest.raises(RuntimeError, match="logical_xor"):
        ta.tensor([True]) - ta.tensor([False])


@pytest.mark.parametrize("make", [lambda lib: lib.tensor([True]) - lib.tensor([1]),
                                  lambda lib: lib.tensor([1.0]) - lib.tensor([True]),
                                  lambda lib: lib.tensor([True]) - 2, lambda lib: lib.tensor([2]) - True,
                                  lambda lib: lib.tensor([True]) - True],
                         ids=["bool-int", "float-bool", "bool-scalar", "int-True", "bool-True"])
def test_subtraction_with_any_bool_operand_raises_runtime_error(make) -> None:
    with pytest.raises(RuntimeError):
        make(torch)
    with pytest.raises(RuntimeError):
        make(ta)


@pytest.mark.parametrize("a,b", [("int64", "float16"), ("uint8", "int8"), ("bool", "int32"), ("int16", "uint8"),
                                 ("float16", "float64"), ("bool", "bool")])
def test_promote_types_matches_torch(a, b) -> None:
    assert name_of(ta.promote_types(ta_dtype(a), ta_dtype(b))) == name_of(
        torch.promote_types(torch_dtype(a), torch_dtype(b)))


@given(st.lists(st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False), st.booleans()),
                min_size=1, max_size=6))
def test_mixed_python_lists_infer_like_torch(data) -> None:
    assert_same(ta.tensor(data), torch.tensor(data), exact=False)
    assert math.isclose(float(ta.tensor(data).sum()), float(torch.tensor(data).sum()), rel_tol=1e-5, abs_tol=1e-5)
