"""Tensor printing: a host array rendered character for character as ``repr(torch.Tensor)``.

``format_tensor`` is pure: it sees a NumPy array and the tensor's metadata (dtype name, device, autograd
state), so Tensor.__repr__ stays a one-liner and the layout rules can be tested against torch on their own.
The rules follow ``torch/_tensor_str.py``: one element formatter sized over the elements that will be shown,
rows wrapped at ``linewidth``, nested brackets indented under the prefix, ``...`` summaries past
``threshold`` elements, and suffixes (device, size, dtype, grad_fn) appended with the same wrapping.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTIONS = _PrintOptions()

# "tinyautograd.float64" is 7 characters longer than torch's "torch.float64". The dtype suffix is measured
# at torch's length so that line breaks fall exactly where torch puts them: a repr then differs from
# torch's only in the module name, which keeps side-by-side outputs (tutorials, doctests) aligned.
_DTYPE_SPELLING_GAP = len("tinyautograd.") - len("torch.")

_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set how tensors print, as ``torch.set_printoptions``.

    ``precision`` digits after the point (4), ``threshold`` element count above which the middle of every
    long dimension is elided (1000), ``edgeitems`` items kept at each end of an elided dimension (3),
    ``linewidth`` characters per line (80), ``profile`` one of ``"default"``, ``"short"``, ``"full"``
    applied before the other arguments, ``sci_mode`` forces scientific notation on (True) or off (False).
    As in torch, ``sci_mode`` is always assigned, so leaving it out restores automatic choice.
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(
                f"set_printoptions: unknown profile {profile!r}; expected one of {sorted(_PROFILES)}")
        for name, value in _PROFILES[profile].items():
            setattr(_OPTIONS, name, value)
    if precision is not None:
        _OPTIONS.precision = precision
    if threshold is not None:
        _OPTIONS.threshold = threshold
    if edgeitems is not None:
        _OPTIONS.edgeitems = edgeitems
    if linewidth is not None:
        _OPTIONS.linewidth = linewidth
    _OPTIONS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current print options as keyword arguments for ``set_printoptions`` (torch's ``get_printoptions``)."""
    return dataclasses.asdict(_OPTIONS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Apply ``set_printoptions(**kwargs)`` inside a ``with`` block and restore the previous options after."""
    saved = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**saved)


class _ElementFormatter:
    """Formats single elements of one tensor to a common width.

    Sized once over the elements that will be printed (``shown``, a 1-d array); for floats the style
    (integer-valued ``1.``, fixed ``1.5000`` or scientific ``1.5000e+10``) is chosen from the nonzero finite
    values only, so nan, inf and zeros never switch the style or widen the column.
    """

    def __init__(self, shown: np.ndarray, floating: bool, options: _PrintOptions) -> None:
        self.floating = floating
        self.precision = options.precision
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if not floating:
            for value in shown.tolist():
                self.width = max(self.width, len(f"{value}"))
            return
        nonzero_finite = shown[np.isfinite(shown) & (shown != 0)]
        if nonzero_finite.size == 0:
            return
        # Decide in float64 as torch does: a float16 ratio would overflow long before the 1e8 test.
        magnitudes = np.abs(nonzero_finite).astype(np.float64)
        smallest, largest = float(magnitudes.min()), float(magnitudes.max())
        self.int_mode = bool(np.all(nonzero_finite == np.ceil(nonzero_finite)))
        if options.sci_mode is None:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            self.sci_mode = bool(options.sci_mode)
        values = nonzero_finite.tolist()
        if self.sci_mode:
            widths = [len(f"{value:.{self.precision}e}") for value in values]
        elif self.int_mode:
            # The trailing "." that marks an integer-valued float counts towards the width.
            widths = [len(f"{value:.0f}") + 1 for value in values]
        else:
            widths = [len(f"{value:.{self.precision}f}") for value in values]
        self.width = max(self.width, *widths)

    def format(self, value: float | int | bool) -> str:
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:.{self.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if math.isfinite(value):
                text += "."
        else:
            text = f"{value:.{self.precision}f}"
        return text.rjust(self.width)


def _shown_elements(array: np.ndarray, edgeitems: int) -> np.ndarray:
    """The elements a summarized print shows, flattened: the formatter is sized on these alone.

    Mirrors torch's ``get_summarized_data``, including its edge case: with ``edgeitems == 0`` a 1-d tensor
    keeps all its elements (``x[-0:]`` is the whole of ``x``) while a tensor of 2 or more dims keeps none.
    """
    if array.ndim == 0:
        return array.reshape(-1)
    if array.ndim >= 2 and not edgeitems:
        return array.reshape(-1)[:0]
    if array.ndim == 1:
        if array.shape[0] > 2 * edgeitems:
            return np.concatenate((array[:edgeitems], array[-edgeitems:]))
        return array
    rows = range(array.shape[0])
    if array.shape[0] > 2 * edgeitems:
        rows = [*range(edgeitems), *range(array.shape[0] - edgeitems, array.shape[0])]
    return np.concatenate([_shown_elements(array[i], edgeitems) for i in rows])


def _vector_str(row: np.ndarray, indent: int, summarize: bool, formatter: _ElementFormatter,
                options: _PrintOptions) -> str:
    """A 1-d array as ``[a, b, ...]``, wrapped so each line fits ``linewidth`` after ``indent`` columns."""
    element_length = formatter.width + 2  # the element plus its ", " separator
    per_line = max(1, math.floor((options.linewidth - indent) / element_length))
    edge = options.edgeitems
    if summarize and not edge:
        items = ["..."]
    elif summarize and row.shape[0] > 2 * edge:
        items = ([formatter.format(v) for v in row[:edge].tolist()] + [" ..."]
                 + [formatter.format(v) for v in row[-edge:].tolist()])
    else:
        items = [formatter.format(v) for v in row.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(array: np.ndarray, indent: int, summarize: bool, formatter: _ElementFormatter,
                options: _PrintOptions) -> str:
    """Any non-empty array as nested brackets; sub-blocks of a k-d array are separated by k-1 newlines."""
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return _vector_str(array, indent, summarize, formatter, options)
    edge = options.edgeitems
    count = array.shape[0]
    if summarize and count > 2 * edge:
        blocks = ([_nested_str(array[i], indent + 1, summarize, formatter, options) for i in range(edge)]
                  + ["..."]
                  + [_nested_str(array[i], indent + 1, summarize, formatter, options)
                     for i in range(count - edge, count)])
    else:
        blocks = [_nested_str(array[i], indent + 1, summarize, formatter, options) for i in range(count)]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(blocks) + "]"


def _append_suffixes(text: str, suffixes: list[tuple[str, int]], indent: int, linewidth: int) -> str:
    """Close the repr, putting each ``key=value`` suffix on a new line when it would pass ``linewidth``.

    Each suffix comes with the width it is measured by (see ``_DTYPE_SPELLING_GAP``).
    """
    parts = [text]
    # torch measures the last line as its length + 1 (+ 1 more when there is no newline); kept for parity.
    last_line_length = len(text) - text.rfind("\n") + 1
    for suffix, width in suffixes:
        if last_line_length + width + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_length = indent + width
        else:
            parts.append(", " + suffix)
            last_line_length += width + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(
    array: np.ndarray,
    *,
    dtype_name: str,
    default_dtype_name: str,
    device: str,
    requires_grad: bool,
    grad_fn_name: str | None,
    prefix: str = "tensor(",
) -> str:
    """``repr`` of a tensor whose values are ``array`` (a host NumPy array of the tensor's shape).

    ``dtype_name`` is the tensor's dtype ("float32", "int64", ...), ``default_dtype_name`` the current
    default float dtype, ``device`` "cpu" or e.g. "cuda:0", ``grad_fn_name`` the node class name
    ("AddBackward0") or None. Uses the options of ``set_printoptions``. torch equivalent:
    ``torch._tensor_str._str`` (``repr(tensor)``), with "tinyautograd." in place of "torch.".
    """
    options = _OPTIONS
    indent = len(prefix)
    shape_suffix = f"size={tuple(array.shape)}"
    # Pairs (text, width it is measured by); they differ only for the dtype, see _DTYPE_SPELLING_GAP.
    suffixes: list[tuple[str, int]] = []
    if device != "cpu":
        device_suffix = f"device='{device}'"
        suffixes.append((device_suffix, len(device_suffix)))
    if array.size == 0:
        # Only (0,) reads unambiguously from "[]"; every other empty shape is spelled out, and so is any
        # dtype but the default float, since there are no elements to hint at it.
        if array.ndim != 1:
            suffixes.append((shape_suffix, len(shape_suffix)))
        show_dtype = dtype_name != default_dtype_name
        body = "[]"
    else:
        if not options.edgeitems:
            suffixes.append((shape_suffix, len(shape_suffix)))
        show_dtype = dtype_name not in (default_dtype_name, "int64", "bool")
        summarize = array.size > options.threshold
        shown = _shown_elements(array, options.edgeitems) if summarize else array.reshape(-1)
        formatter = _ElementFormatter(shown, array.dtype.kind == "f", options)
        body = _nested_str(array, indent, summarize, formatter, options)
    if show_dtype:
        dtype_suffix = f"dtype=tinyautograd.{dtype_name}"
        suffixes.append((dtype_suffix, len(dtype_suffix) - _DTYPE_SPELLING_GAP))
    if grad_fn_name is not None:
        grad_suffix = f"grad_fn=<{grad_fn_name}>"
        suffixes.append((grad_suffix, len(grad_suffix)))
    elif requires_grad:
        suffixes.append(("requires_grad=True", len("requires_grad=True")))
    return _append_suffixes(prefix + body, suffixes, indent, options.linewidth)
