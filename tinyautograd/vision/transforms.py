"""Image transforms, as ``torchvision.transforms``: Compose, ToTensor, Normalize, Lambda, Resize, RandomCrop,
RandomHorizontalFlip and Pad.

Images are tinyautograd tensors of shape (..., C, H, W) (any leading batch dimensions), on any device.
``ToTensor`` is the way in: it accepts a NumPy array (H, W) or (H, W, C), which is what the datasets return, or a
PIL image when Pillow is installed. A typical pipeline::

    transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

Random transforms draw from tinyautograd's global generator (``tinyautograd.rand`` / ``tinyautograd.randint``,
as torchvision draws from torch's), so ``tinyautograd.manual_seed(s)`` makes them reproducible.

Differences from torchvision: the transforms are plain callables, not ``nn.Module`` subclasses; the geometric
ones (Resize, RandomCrop, RandomHorizontalFlip, Pad) compute on the tensor's array and return a new tensor that
does not record autograd history (Normalize does, being ordinary tensor arithmetic); they accept tensors only, not
PIL images (apply ``ToTensor`` first); ``InterpolationMode`` has the modes that are implemented: NEAREST,
NEAREST_EXACT and BILINEAR.
"""
from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, Callable

import numpy as np

import tinyautograd
from tinyautograd.backend import array_module, move
from tinyautograd.tensor import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda", "Resize", "RandomCrop", "RandomHorizontalFlip", "Pad",
           "InterpolationMode"]


class Compose:
    """Apply ``transforms`` one after the other, as ``torchvision.transforms.Compose``."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = transforms

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """NumPy array (H, W) or (H, W, C), or PIL image -> tensor (C, H, W), as ``torchvision.transforms.ToTensor``.

    uint8 input (and PIL images of 8-bit modes) becomes float32 in [0, 1] (divided by 255). Other dtypes keep
    their dtype and values (float arrays are not rescaled), except uint16 (PIL mode ``I;16``), which becomes
    int32 since tinyautograd has no uint16. The result is always a new CPU tensor that shares no memory with
    the input (torchvision's can share it with a non-uint8 array).
    """

    def __call__(self, pic: Any) -> Tensor:
        if _is_pil_image(pic):
            array = _pil_to_array(pic)
        elif isinstance(pic, np.ndarray):
            array = pic
        else:
            raise TypeError(f"ToTensor: pic should be PIL Image or ndarray. Got {type(pic)}; convert tensors "
                            "back with .numpy(), or leave them out of ToTensor")
        if array.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2/3 dimensional. Got {array.ndim} dimensions "
                             f"(shape {array.shape}); expected (H, W) or (H, W, C)")
        if array.ndim == 2:
            array = array[:, :, None]
        chw = array.transpose(2, 0, 1)
        if chw.dtype == np.uint8:
            out = np.ascontiguousarray(chw, dtype=np.float32)
            out /= np.float32(255)
        elif chw.dtype == np.uint16:
            out = np.ascontiguousarray(chw, dtype=np.int32)
        else:
            out = np.array(chw, order="C", copy=True)
        return Tensor._wrap(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a float tensor (..., C, H, W), as
    ``torchvision.transforms.Normalize``. ``mean`` and ``std`` are sequences of length C (or 1), or numbers.
    With ``inplace=True`` the input tensor is overwritten and returned."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float, inplace: bool = False) -> None:
        self.mean = mean
        self.std = std
        self.inplace = inplace

    def __call__(self, tensor: Tensor) -> Tensor:
        name = type(self).__name__
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}: input should be a tinyautograd tensor. Got {type(tensor)}; apply "
                            "ToTensor() first")
        if not tensor.is_floating_point():
            raise TypeError(f"{name}: input tensor should be a float tensor. Got {tensor.dtype}; apply "
                            "ToTensor() or .float() first")
        if tensor.ndim < 3:
            raise ValueError(f"{name}: expected tensor to be a tensor image of size (..., C, H, W). Got "
                             f"tensor.size() = {tensor.size()}")
        np_dtype = tensor._data.dtype
        mean = np.asarray(self.mean, dtype=np_dtype)
        std = np.asarray(self.std, dtype=np_dtype)
        if (std == 0).any():
            raise ValueError(f"{name}: std evaluated to zero after conversion to {tensor.dtype}, leading to "
                             f"division by zero (std={self.std})")
        channels = tensor.shape[-3]
        for label, values in (("mean", mean), ("std", std)):
            if values.ndim > 1 or (values.ndim == 1 and len(values) not in (1, channels)):
                raise ValueError(f"{name}: {label} has shape {values.shape} but the image has {channels} "
                                 f"channels (size {tuple(tensor.shape)}); give 1 or {channels} values")
        if mean.ndim == 1:
            mean = mean.reshape(-1, 1, 1)
        if std.ndim == 1:
            std = std.reshape(-1, 1, 1)
        mean_t = Tensor._wrap(move(mean, tensor.device))
        std_t = Tensor._wrap(move(std, tensor.device))
        if self.inplace:
            return tensor.sub_(mean_t).div_(std_t)
        return (tensor - mean_t) / std_t

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class Lambda:
    """Wrap a function as a transform, as ``torchvision.transforms.Lambda``."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InterpolationMode(Enum):
    """The interpolation modes of ``Resize`` (those of ``torchvision.transforms.InterpolationMode`` that are
    implemented). The values are ``torch.nn.functional.interpolate``'s mode names."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"


class Resize:
    """Resize a tensor image (..., H, W), as ``torchvision.transforms.Resize`` on tensors.

    Args:
        size: ``(h, w)``, or an int (or 1-sequence): the smaller edge becomes ``size`` and the other keeps the
            aspect ratio, ``int(size * long / short)``.
        interpolation: an ``InterpolationMode`` or its value string; the results equal
            ``torch.nn.functional.interpolate(x, (h, w), mode=..., align_corners=False, antialias=...)``.
        max_size: with an int ``size``, the longer edge is capped at ``max_size`` (the shorter one shrinks to
            keep the ratio).
        antialias: for BILINEAR, low-pass filter when downsampling (torch's ``antialias=True``, torchvision's
            default); when upsampling it gives plain bilinear up to rounding; ignored by the NEAREST modes.

    Integer images are resized in float32 and rounded back (half to even), as torchvision does; for uint8 with
    antialiasing, torchvision 0.26 uses torch's native uint8 kernel instead, whose results can differ from these
    by 1 in a few pixels.
    """

    def __init__(self, size: int | Sequence[int], interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool = True) -> None:
        if not isinstance(size, (int, Sequence)) or isinstance(size, bool):
            raise TypeError(f"Resize: size should be int or sequence. Got {type(size)}")
        if isinstance(size, Sequence) and len(size) not in (1, 2):
            raise ValueError(f"Resize: if size is a sequence, it should have 1 or 2 values, got {size!r}")
        if max_size is not None and isinstance(size, Sequence) and len(size) != 1:
            raise ValueError("Resize: max_size should only be passed if size specifies the length of the smaller "
                             f"edge, i.e. size should be an int or a sequence of length 1; got size={size!r}")
        try:
            interpolation = InterpolationMode(interpolation)
        except ValueError:
            supported = ", ".join(m.value for m in InterpolationMode)
            raise ValueError(f"Resize: interpolation {interpolation!r} is not supported; use one of "
                             f"InterpolationMode's: {supported}") from None
        self.size = size
        self.interpolation = interpolation
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img: Tensor) -> Tensor:
        array, xp = _image_array(img, type(self).__name__)
        height, width = array.shape[-2:]
        new_h, new_w = _resized_size(height, width, self.size, self.max_size)
        if (new_h, new_w) == (height, width):
            return img
        mode = self.interpolation
        if mode is InterpolationMode.BILINEAR:
            source = array if array.dtype.kind == "f" else array.astype(np.float32)
            out = _resample_linear(xp, source, new_h, new_w, self.antialias)
            if array.dtype.kind != "f":
                out = xp.round(out).astype(array.dtype)
        else:
            rows = _nearest_indices(height, new_h, mode is InterpolationMode.NEAREST_EXACT)
            cols = _nearest_indices(width, new_w, mode is InterpolationMode.NEAREST_EXACT)
            out = array[..., xp.asarray(rows)[:, None], xp.asarray(cols)]
        return Tensor._wrap(out)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class Pad:
    """Pad the borders of a tensor image (..., H, W), as ``torchvision.transforms.Pad``.

    Args:
        padding: an int (all sides), ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``. Negative
            values crop, as in torchvision.
        fill: the border value for ``padding_mode='constant'``: a number, or one value per channel.
        padding_mode: ``'constant'``, ``'edge'`` (repeat the border pixel), ``'reflect'`` (mirror about the border
            pixel: 1 2 3 padded by 2 gives 3 2 1 2 3 2 1) or ``'symmetric'`` (mirror including it: 2 1 1 2 3 3 2).
    """

    def __init__(self, padding: int | Sequence[int], fill: float | Sequence[float] = 0,
                 padding_mode: str = "constant") -> None:
        _check_padding(padding, type(self).__name__)
        _check_fill(fill, padding_mode, type(self).__name__)
        self.padding = padding
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img: Tensor) -> Tensor:
        array, xp = _image_array(img, type(self).__name__)
        return Tensor._wrap(_pad(xp, array, self.padding, self.fill, self.padding_mode, type(self).__name__))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(padding={self.padding}, fill={self.fill}, "
                f"padding_mode={self.padding_mode})")


class RandomCrop:
    """Crop a random (h, w) window out of a tensor image (..., H, W), as ``torchvision.transforms.RandomCrop``.

    Args:
        size: ``(h, w)``, or an int for a square crop.
        padding: pad the image first, as ``Pad(padding, fill, padding_mode)`` (``None``: no padding).
        pad_if_needed: when the image is smaller than ``size``, pad both sides of the short dimension by the
            shortfall first (torchvision's rule) instead of raising.
        fill, padding_mode: as for ``Pad``.

    The window's top-left corner is drawn with ``tinyautograd.randint`` (rows, then columns).
    """

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: float | Sequence[float] = 0,
                 padding_mode: str = "constant") -> None:
        name = type(self).__name__
        self.size = _pair(size, name)
        if padding is not None:
            _check_padding(padding, name)
        _check_fill(fill, padding_mode, name)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img: Tensor) -> Tensor:
        name = type(self).__name__
        array, xp = _image_array(img, name)
        if self.padding is not None:
            array = _pad(xp, array, self.padding, self.fill, self.padding_mode, name)
        crop_h, crop_w = self.size
        if self.pad_if_needed and array.shape[-1] < crop_w:
            array = _pad(xp, array, [crop_w - array.shape[-1], 0], self.fill, self.padding_mode, name)
        if self.pad_if_needed and array.shape[-2] < crop_h:
            array = _pad(xp, array, [0, crop_h - array.shape[-2]], self.fill, self.padding_mode, name)
        height, width = array.shape[-2:]
        if height < crop_h or width < crop_w:
            raise ValueError(f"{name}: required crop size {(crop_h, crop_w)} is larger than input image size "
                             f"{(height, width)}; pass pad_if_needed=True or a padding")
        top = tinyautograd.randint(0, height - crop_h + 1, size=(1,)).item()
        left = tinyautograd.randint(0, width - crop_w + 1, size=(1,)).item()
        return Tensor._wrap(xp.ascontiguousarray(array[..., top:top + crop_h, left:left + crop_w]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror a tensor image (..., H, W) left-right with probability ``p``, as
    ``torchvision.transforms.RandomHorizontalFlip`` (one ``tinyautograd.rand(1)`` draw per call)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Tensor) -> Tensor:
        array, xp = _image_array(img, type(self).__name__)
        if tinyautograd.rand(1).item() < self.p:
            return Tensor._wrap(xp.ascontiguousarray(array[..., ::-1]))
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


# -- helpers on arrays (numpy or cupy, shape (..., H, W)) ----------------------------------------------------------
def _is_pil_image(obj: Any) -> bool:
    # only an already-imported Pillow can have made obj, so Pillow is never imported here
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def _pil_to_array(pic: Any) -> np.ndarray:
    """PIL image -> array (H, W) or (H, W, C) with torchvision's dtype per mode."""
    if pic.mode == "1":
        # torchvision scales 1-bit images to 0/255 so that ToTensor gives 0.0/1.0
        return np.asarray(pic, dtype=np.uint8) * np.uint8(255)
    return np.asarray(pic)


def _image_array(img: Any, name: str) -> tuple[Any, Any]:
    """The array of a tensor image (..., H, W) and its array module, or a TypeError that says what to pass."""
    if not isinstance(img, Tensor):
        raise TypeError(f"{name}: expected a tinyautograd tensor image of shape (..., C, H, W), got {type(img)}; "
                        "convert arrays and PIL images with ToTensor() first")
    if img.ndim < 2:
        raise ValueError(f"{name}: expected a tensor image of shape (..., H, W), got size {tuple(img.shape)}")
    return img._data, array_module(img)


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """torchvision's size rule: an int or 1-sequence is square, a 2-sequence is (h, w)."""
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(f"{name}: please provide only two dimensions (h, w) for size, got {size!r}")
    return int(size[0]), int(size[1])


def _resized_size(height: int, width: int, size: int | Sequence[int], max_size: int | None) -> tuple[int, int]:
    """Output (h, w) of Resize, with torchvision's rounding (``int()``, i.e. towards zero)."""
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    requested = int(size if isinstance(size, int) else size[0])
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ValueError(f"Resize: max_size = {max_size} must be strictly greater than the requested size for "
                             f"the smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _nearest_indices(in_size: int, out_size: int, exact: bool) -> np.ndarray:
    """Source index of each output position for torch's 'nearest' / 'nearest-exact' (align_corners=False).

    torch computes the scale and the product in float32 (``floorf(i * scale)``) and clamps to the last index;
    doing the same here, rather than exact rational arithmetic, keeps the rare off-by-one cases identical.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    if exact:
        # torch adds 0.5 in double, multiplies by the float scale in double and floors as float
        position = ((np.arange(out_size, dtype=np.float64) + 0.5) * np.float64(scale)).astype(np.float32)
    else:
        position = np.arange(out_size, dtype=np.float32) * scale
    return np.minimum(np.floor(position).astype(np.int64), in_size - 1)


def _linear_taps(in_size: int, out_size: int, antialias: bool, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, each (out_size, taps), of torch's bilinear resampling along one axis."""
    if not antialias:
        # plain bilinear: two neighbours of src = scale * (i + 0.5) - 0.5, clamped at 0. The scale is in the
        # image's float type as in torch; the rest is done in float64 and rounded once, which for float32 is
        # exactly the fused multiply-add that torch's CPU kernel is compiled to
        scale = dtype.type(in_size) / dtype.type(out_size)
        source = (np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5).astype(dtype)
        source = np.maximum(source, dtype.type(0))
        low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
        frac = np.clip(source - low.astype(dtype), 0, 1)
        high = low + (low < in_size - 1)
        return np.stack([low, high], axis=1), np.stack([1 - frac, frac], axis=1).astype(dtype)
    # antialiased (torch's _upsample_bilinear2d_aa, PIL's scheme): a triangle filter, stretched to the scale
    # when downsampling, centred on each output pixel's footprint, weights normalised to sum to one; when
    # upsampling this is plain bilinear up to rounding. The arithmetic follows torch's types (the image's float
    # type, with double where its kernel uses double literals) so that float32 results agree to a few ulps
    real = dtype.type
    scale = real(in_size) / real(out_size)
    support, inverse_scale = (scale, real(1) / scale) if scale >= 1 else (real(1), real(1))
    taps = int(np.ceil(support)) * 2 + 1
    center = scale * (np.arange(out_size) + real(0.5)).astype(dtype)
    first = np.maximum(np.trunc((center - support).astype(np.float64) + 0.5).astype(np.int64), 0)
    last = np.minimum(np.trunc((center + support).astype(np.float64) + 0.5).astype(np.int64), in_size)
    count = np.clip(last - first, 0, taps)
    offsets = np.arange(taps)
    distance = (((first[:, None] + offsets) - center[:, None]).astype(np.float64) + 0.5) * np.float64(inverse_scale)
    weights = np.maximum(real(1) - np.abs(distance.astype(dtype)), real(0))
    weights = np.where(offsets < count[:, None], weights, real(0))
    totals = np.zeros(out_size, dtype=dtype)
    for k in range(taps):  # sequential sum, in the image's type, as torch accumulates
        totals += weights[:, k]
    weights = np.divide(weights, totals[:, None], out=np.zeros_like(weights), where=totals[:, None] != 0)
    indices = np.minimum(first[:, None] + offsets, in_size - 1)
    return indices, weights


def _resample_axis(xp: Any, array: Any, indices: np.ndarray, weights: np.ndarray, axis: int) -> Any:
    """Weighted sum of gathered source lines along ``axis`` (-1 or -2): sum_k array[idx[:, k]] * w[:, k]."""
    out = None
    for k in range(indices.shape[1]):
        taken = xp.take(array, xp.asarray(indices[:, k]), axis=axis)
        w = xp.asarray(weights[:, k])
        term = taken * (w if axis == -1 else w[:, None])
        out = term if out is None else out + term
    return out


def _resample_linear(xp: Any, array: Any, new_h: int, new_w: int, antialias: bool) -> Any:
    """Bilinear (optionally antialiased) resize of a float array (..., H, W); width first, then height, as torch."""
    height, width = array.shape[-2:]
    dtype = np.dtype(array.dtype)
    if new_w != width:
        array = _resample_axis(xp, array, *_linear_taps(width, new_w, antialias, dtype), axis=-1)
    if new_h != height:
        array = _resample_axis(xp, array, *_linear_taps(height, new_h, antialias, dtype), axis=-2)
    return array


_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _check_padding(padding: Any, name: str) -> None:
    if isinstance(padding, bool) or not isinstance(padding, (int, Sequence)) or (
            isinstance(padding, Sequence) and not all(isinstance(p, int) for p in padding)):
        raise TypeError(f"{name}: padding should be an int or a sequence of ints, got {padding!r}")
    if isinstance(padding, Sequence) and len(padding) not in (1, 2, 4):
        raise ValueError(f"{name}: padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} "
                         "element tuple")


def _check_fill(fill: Any, padding_mode: str, name: str) -> None:
    if not isinstance(fill, (numbers.Number, Sequence)) or (
            isinstance(fill, Sequence) and not all(isinstance(f, numbers.Number) for f in fill)):
        raise TypeError(f"{name}: fill should be a number or a sequence of numbers (one per channel), "
                        f"got {fill!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{name}: padding mode should be either constant, edge, reflect or symmetric, "
                         f"got {padding_mode!r}")


def _pad(xp: Any, array: Any, padding: int | Sequence[int], fill: Any, padding_mode: str, name: str) -> Any:
    """Pad (negative: crop) the last two axes; padding as torchvision (int, (lr, tb) or (l, t, r, b))."""
    if isinstance(padding, int):
        left = top = right = bottom = padding
    elif len(padding) == 1:
        left = top = right = bottom = padding[0]
    elif len(padding) == 2:
        left = right = padding[0]
        top = bottom = padding[1]
    else:
        left, top, right, bottom = padding
    crops = (max(-left, 0), max(-top, 0), max(-right, 0), max(-bottom, 0))
    left, top, right, bottom = max(left, 0), max(top, 0), max(right, 0), max(bottom, 0)
    # torchvision crops before its symmetric padding; torch's pad (every other mode) pads the whole image first,
    # so a reflection may show pixels that a negative pad on the other side then crops away
    if padding_mode == "symmetric":
        array = _crop_borders(array, crops, name)
    height, width = array.shape[-2:]
    if padding_mode == "constant":
        fill_values = np.asarray(fill)
        if fill_values.ndim == 1:
            channels = array.shape[-3] if array.ndim >= 3 else 1
            if len(fill_values) not in (1, channels):
                raise ValueError(f"{name}: fill has {len(fill_values)} values but the image has {channels} "
                                 "channels; give one value or one per channel")
            fill_values = fill_values.reshape(-1, 1, 1)
        out = xp.empty(array.shape[:-2] + (height + top + bottom, width + left + right), dtype=array.dtype)
        out[...] = xp.asarray(fill_values.astype(out.dtype))
        out[..., top:top + height, left:left + width] = array
        return _crop_borders(out, crops, name)
    # torch's reflect needs each pad below the size, torchvision's symmetric at most the size
    limit_h, limit_w = (height - 1, width - 1) if padding_mode == "reflect" else (height, width)
    if padding_mode != "edge" and (max(top, bottom) > limit_h or max(left, right) > limit_w):
        raise RuntimeError(f"{name}: {padding_mode} padding (left={left}, top={top}, right={right}, "
                           f"bottom={bottom}) is too large for an image of size {(height, width)}: each pad must be "
                           f"{'smaller than' if padding_mode == 'reflect' else 'at most'} the size of its dimension")
    if padding_mode == "edge" and (height == 0 or width == 0):
        raise RuntimeError(f"{name}: edge padding needs a non-empty image, got size {(height, width)}")
    pad_width = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
    out = xp.pad(array, pad_width, mode=padding_mode)
    return out if padding_mode == "symmetric" else _crop_borders(out, crops, name)


def _crop_borders(array: Any, crops: tuple[int, int, int, int], name: str) -> Any:
    """Remove (left, top, right, bottom) pixels from the borders of (..., H, W) (a negative padding)."""
    if not any(crops):
        return array
    left, top, right, bottom = crops
    height, width = array.shape[-2:]
    if top + bottom > height or left + right > width:
        raise RuntimeError(f"{name}: negative padding crops (left={left}, top={top}, right={right}, "
                           f"bottom={bottom}) more than the image of size {(height, width)} has")
    return array[..., top:height - bottom, left:width - right].copy()
