"""format_tensor prints an array exactly as torch prints the same tensor, module name aside."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyautograd._tensor_str import format_tensor, get_printoptions, printoptions, set_printoptions

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

FLOAT_DTYPES = ["float32", "float64", "float16"]
OTHER_DTYPES = ["int64", "int32", "uint8", "bool"]
ALL_DTYPES = FLOAT_DTYPES + OTHER_DTYPES

# Values that steer torch's formatter: zeros of both signs, non-finite values (never sized), magnitudes at
# the edges of the fixed-point range (1e-4, 1e8) and integer-valued floats that print as "1.".
SPECIAL_FLOATS = [0.0, -0.0, math.nan, math.inf, -math.inf, 1.0, -1.0, 0.5, 1e-4, 9.9e-5, 1e8, 1.1e8,
                  123456.0, -7.25, 1e-30, 3e38, 1e300]


def torch_repr(tensor: torch.Tensor) -> str:
    return repr(tensor).replace("torch.", "tinyautograd.")


def ours(array: np.ndarray, *, requires_grad: bool = False, grad_fn_name: str | None = None,
         default_dtype_name: str = "float32", device: str = "cpu", prefix: str = "tensor(") -> str:
    return format_tensor(array, dtype_name=array.dtype.name, default_dtype_name=default_dtype_name,
                         device=device, requires_grad=requires_grad, grad_fn_name=grad_fn_name, prefix=prefix)


@contextlib.contextmanager
def both_printoptions(**options) -> Iterator[None]:
    """The same print options in torch and tinyautograd, both back to the defaults afterwards."""
    try:
        torch.set_printoptions(**options)
        set_printoptions(**options)
        yield
    finally:
        torch.set_printoptions(profile="default")
        set_printoptions(profile="default")


def float_elements(kind: str) -> st.SearchStrategy[float]:
    """Float64 values of one flavour; arrays are drawn in float64 and then cast to the tested dtype."""
    if kind == "integral":
        return st.integers(-3000, 3000).map(float)
    if kind == "moderate":
        return st.floats(-100, 100)
    if kind == "special":
        return st.sampled_from(SPECIAL_FLOATS)
    if kind == "mixed":
        return st.one_of(st.integers(-50, 50).map(float), st.sampled_from(SPECIAL_FLOATS), st.floats(-5, 5))
    return st.floats(allow_nan=True, allow_infinity=True)  # huge, tiny and subnormal values included


@st.composite
def arrays(draw, dtypes: list[str] = ALL_DTYPES, max_dims: int = 4, max_side: int = 6) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    if dtype.kind != "f":
        return draw(hnp.arrays(dtype, shape))
    kind = draw(st.sampled_from(["integral", "moderate", "special", "mixed", "any"]))
    values = draw(hnp.arrays(np.float64, shape, elements=float_elements(kind)))
    with np.errstate(over="ignore"):  # float16/float32 overflow to inf, which is one more case to print
        return values.astype(dtype)


@st.composite
def large_arrays(draw) -> np.ndarray:
    """Arrays of more than 1000 elements (torch's default threshold), filled from a drawn seed."""
    ndim = draw(st.integers(1, 4))
    sides = [draw(st.integers(1, 12)) for _ in range(ndim - 1)]
    sides.append(max(draw(st.integers(1, 12)), math.ceil(1001 / math.prod(sides))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = np.dtype(draw(st.sampled_from(ALL_DTYPES)))
    if dtype.kind == "b":
        return rng.random(sides) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        high = min(draw(st.sampled_from([10, 1000, int(info.max)])), int(info.max))
        return rng.integers(max(int(info.min), -high), high, size=sides, endpoint=True, dtype=dtype)
    scale = draw(st.sampled_from([1e-6, 1.0, 100.0, 1e10]))
    values = rng.standard_normal(sides) * scale
    if draw(st.booleans()):
        values = np.round(values)
    flat = values.reshape(-1)
    specials = rng.choice(SPECIAL_FLOATS, size=draw(st.integers(0, 5)))
    flat[rng.integers(0, flat.size, size=specials.size)] = specials
    with np.errstate(over="ignore"):
        return values.astype(dtype)


@settings(deadline=None)
@given(arrays())
def test_matches_torch_repr(array: np.ndarray) -> None:
    assert ours(array) == torch_repr(torch.from_numpy(array))


@settings(deadline=None)
@given(arrays(dtypes=FLOAT_DTYPES))
def test_requires_grad_suffix_matches_torch(array: np.ndarray) -> None:
    leaf = torch.from_numpy(array).requires_grad_()
    assert ours(array, requires_grad=True) == torch_repr(leaf)


@settings(deadline=None)
@given(arrays(dtypes=FLOAT_DTYPES))
def test_grad_fn_suffix_matches_torch(array: np.ndarray) -> None:
    result = torch.from_numpy(array).requires_grad_().clone()  # clone keeps -0.0 and nan bits as they are
    name = type(result.grad_fn).__name__
    assert ours(array, requires_grad=True, grad_fn_name=name) == torch_repr(result)


@settings(deadline=None, max_examples=40)
@given(large_arrays())
def test_summarized_print_matches_torch(array: np.ndarray) -> None:
    assert ours(array) == torch_repr(torch.from_numpy(array))


@settings(deadline=None)
@given(
    arrays(max_side=8),
    st.fixed_dictionaries({}, optional={
        "precision": st.integers(0, 10),
        "threshold": st.integers(0, 200),
        "edgeitems": st.integers(0, 4),
        "linewidth": st.integers(10, 150),
        "profile": st.sampled_from(["default", "short", "full"]),
        "sci_mode": st.booleans(),
    }),
    st.booleans(),
)
def test_printoptions_match_torch(array: np.ndarray, options: dict, requires_grad: bool) -> None:
    requires_grad = requires_grad and array.dtype.kind == "f"
    with both_printoptions(**options):
        expected = torch_repr(torch.from_numpy(array).requires_grad_(requires_grad))
        assert ours(array, requires_grad=requires_grad) == expected
        assert get_printoptions() == torch._tensor_str.get_printoptions()


@settings(deadline=None, max_examples=30)
@given(arrays())
def test_dtype_suffix_follows_default_dtype_like_torch(array: np.ndarray) -> None:
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert ours(array, default_dtype_name="float64") == torch_repr(torch.from_numpy(array))
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([1.0, 2.0], np.float32), "tensor([1., 2.])"),
        (np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), "tensor([[1., 2.],\n        [3., 4.]])"),
        (np.array(3.0, np.float32), "tensor(3.)"),
        (np.zeros(0, np.float32), "tensor([])"),
        (np.zeros((0, 3), np.float32), "tensor([], size=(0, 3))"),
        (np.zeros(0, np.int64), "tensor([], dtype=tinyautograd.int64)"),
        (np.array([True, False]), "tensor([ True, False])"),
        (np.array([1, -20, 300], np.int64), "tensor([  1, -20, 300])"),
        (np.array([1, 2], np.int32), "tensor([1, 2], dtype=tinyautograd.int32)"),
        (np.array([0.5, np.nan, -np.inf], np.float32), "tensor([0.5000,    nan,   -inf])"),
        (np.array([0.0, -0.0], np.float32), "tensor([0., -0.])"),
        (np.array([1e-5, 1.0], np.float32), "tensor([1.0000e-05, 1.0000e+00])"),
        (np.array([1.5, 2.0], np.float16), "tensor([1.5000, 2.0000], dtype=tinyautograd.float16)"),
        (np.arange(2000, dtype=np.int64), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    ],
)
def test_known_reprs(array: np.ndarray, expected: str) -> None:
    assert ours(array) == expected
    assert torch_repr(torch.from_numpy(array)) == expected


def test_device_suffix_comes_before_dtype_and_grad() -> None:
    assert (ours(np.array([1.0, 2.0], np.float32), device="cuda:0", requires_grad=True)
            == "tensor([1., 2.], device='cuda:0', requires_grad=True)")
    assert (ours(np.array([1, 2], np.int32), device="cuda:0")
            == "tensor([1, 2], device='cuda:0', dtype=tinyautograd.int32)")
    assert (ours(np.zeros((2, 0), np.float64), device="cuda:0", grad_fn_name="MulBackward0")
            == "tensor([], device='cuda:0', size=(2, 0), dtype=tinyautograd.float64,\n       grad_fn=<MulBackward0>)")


def test_suffix_that_would_pass_linewidth_moves_to_its_own_line() -> None:
    # The 71-character first line leaves no room for ", device='cuda:0')" within 80 columns.
    assert (ours(np.full(8, 0.5, np.float32), device="cuda:0")
            == "tensor([0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000],\n"
               "       device='cuda:0')")
    # After a wrapped body the last line is short, so the suffix stays on it.
    assert ours(np.full(10, 0.5, np.float32), device="cuda:0").endswith("\n        0.5000], device='cuda:0')")


def test_line_breaks_fall_where_torch_puts_them_despite_the_longer_dtype_name() -> None:
    # torch's ", dtype=torch.float64)" just fits on this 55-character line; the tinyautograd spelling
    # would not, but the break is decided at torch's length so the two reprs keep the same lines.
    array = np.full(6, 0.25, np.float64)
    assert ours(array) == "tensor([0.2500, 0.2500, 0.2500, 0.2500, 0.2500, 0.2500], dtype=tinyautograd.float64)"
    assert ours(array) == torch_repr(torch.from_numpy(array))


def test_prefix_sets_the_indent_of_continuation_lines() -> None:
    assert ours(np.eye(2, dtype=np.float32), prefix="Param(") == "Param([[1., 0.],\n       [0., 1.]])"


def test_hidden_middle_values_do_not_change_the_format() -> None:
    array = np.arange(1000, 4000, dtype=np.float64)
    array[1500] = 1e30  # would force scientific notation if it were sized
    assert ours(array) == torch_repr(torch.from_numpy(array))
    assert "e+" not in ours(array)


def test_set_printoptions_resets_sci_mode_and_profiles_like_torch() -> None:
    with both_printoptions(sci_mode=True, precision=2):
        assert ours(np.array([1.0, 2.5], np.float32)) == "tensor([1.00e+00, 2.50e+00])"
        set_printoptions(precision=3)
        torch.set_printoptions(precision=3)
        assert get_printoptions() == torch._tensor_str.get_printoptions()
        assert get_printoptions()["sci_mode"] is None
    assert get_printoptions() == {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80,
                                  "sci_mode": None}


def test_printoptions_context_restores_previous_options() -> None:
    with printoptions(precision=1, threshold=5):
        assert ours(np.arange(10, dtype=np.int64)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
        assert ours(np.array([1.25], np.float32)) == "tensor([1.2])"
    assert get_printoptions()["precision"] == 4
    assert ours(np.arange(10, dtype=np.int64)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"


def test_unknown_profile_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="set_printoptions.*'wide'.*default"):
        set_printoptions(profile="wide")
    assert get_printoptions()["precision"] == 4
