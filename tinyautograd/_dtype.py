"""dtypes: torch-named wrappers around NumPy dtypes, and torch's type promotion rules."""
from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type, printed and compared like ``torch.dtype``."""

    __slots__ = ("name", "np_dtype", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype: np.dtype, category: int) -> None:
        self.name = name
        self.np_dtype = np.dtype(np_dtype)
        self.is_floating_point = category == _FLOAT
        self.is_signed = category != _BOOL and name != "uint8"
        self.itemsize = self.np_dtype.itemsize
        self._category = category

    @property
    def is_complex(self) -> bool:
        return False

    def to_real(self) -> "dtype":
        return self

    def __repr__(self) -> str:
        return f"tinyautograd.{self.name}"

    def __reduce__(self):
        return (_lookup_name, (self.name,))


_BOOL, _INT, _FLOAT = 0, 1, 2

bool_ = dtype("bool", np.bool_, _BOOL)
uint8 = dtype("uint8", np.uint8, _INT)
int8 = dtype("int8", np.int8, _INT)
int16 = dtype("int16", np.int16, _INT)
int32 = dtype("int32", np.int32, _INT)
int64 = dtype("int64", np.int64, _INT)
float16 = dtype("float16", np.float16, _FLOAT)
float32 = dtype("float32", np.float32, _FLOAT)
float64 = dtype("float64", np.float64, _FLOAT)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_BY_NP = {d.np_dtype: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
                 "short": int16, "bool": bool_})


def _lookup_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """The tinyautograd dtype of a NumPy dtype; TypeError for types tinyautograd has no tensor for."""
    try:
        return _BY_NP[np_dtype]
    except (KeyError, TypeError):
        pass
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(np_dtype)}. The only supported types are: "
            "float64, float32, float16, int64, int32, int16, int8, uint8, and bool.") from None


_state = {"default": float32}


def get_default_dtype() -> dtype:
    return _state["default"]


def set_default_dtype(d: dtype) -> None:
    """Set the dtype of new floating tensors (float32 by default), as ``torch.set_default_dtype``."""
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, got {d}")
    _state["default"] = d


def to_dtype(d) -> dtype:
    """Accept a tinyautograd dtype, a NumPy dtype or type, or a Python type (float, int, bool: float64, int64 and
    bool as in torch, whatever the default dtype)."""
    if type(d) is dtype:
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        try:
            return _BY_NAME[d.replace("torch.", "").replace("tinyautograd.", "")]
        except KeyError:
            raise TypeError(f"invalid dtype name {d!r}") from None
    return from_numpy_dtype(d)


def promote_types(a: dtype, b: dtype) -> dtype:
    """``torch.promote_types``: a higher category wins outright (int64 with float16 gives float16); within one
    category, the smallest dtype that holds both."""
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    return _BY_NP[np.promote_types(a.np_dtype, b.np_dtype)]


def result_type_tensors(a: dtype, a_zero_dim: bool, b: dtype, b_zero_dim: bool) -> dtype:
    """dtype of ``tensor op tensor``: a 0-d tensor only matters when it is of a higher category (torch's rule)."""
    if a is b:
        return a
    if a_zero_dim != b_zero_dim:
        dim_d, zero_d = (b, a) if a_zero_dim else (a, b)
        if zero_d._category > dim_d._category:
            return zero_d
        return dim_d
    return promote_types(a, b)


def result_type_scalar(d: dtype, scalar) -> dtype:
    """dtype of ``tensor op python_scalar``: the scalar only matters when it is of a higher category."""
    t = type(scalar)
    if t is float:
        return d if d._category == _FLOAT else _state["default"]
    if t is bool:
        return d
    if t is int:
        return int64 if d is bool_ else d
    return d
