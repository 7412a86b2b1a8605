"""tinyautograd: a tape-based reverse-mode autograd on NumPy (CuPy on GPU) with PyTorch's API.

    import tinyautograd as torch   # scripts written for torch run as they are
"""
from __future__ import annotations

import builtins as _builtins
import os as _os
import types as _types
import warnings as _warnings

# torch computes inf/nan silently; NumPy would warn from inside our ops. Only warnings raised in tinyautograd's
# own code are silenced (a user's NumPy code keeps its warnings), and this costs nothing when none occurs, unlike
# an errstate block around every op.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinyautograd\.")

from . import _dtype
from ._dtype import (bool_ as bool, dtype, float16, float32, float64, get_default_dtype, int8, int16, int32, int64,
                     promote_types, set_default_dtype, uint8)
from .backend import device, get_default_device, set_default_device
from .tensor import Size, Tensor
from . import ops as _ops
from .ops import *  # noqa: F401,F403
from .ops import abs, all, any, max, min, pow, round, sum  # noqa: F401  (torch names shadow builtins here)
from .creation import (arange, as_tensor, asarray, bernoulli, empty, empty_like, eye, from_dlpack, from_numpy, full,
                       full_like, linspace, logspace, multinomial, normal, ones, ones_like, rand, rand_like, randint,
                       randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from . import autograd
from .autograd import enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, \
    set_grad_enabled
from . import cuda

half = float16
float = float32
double = float64
long = int64
int = int32
short = int16
bfloat16 = None  # not provided: NumPy has no bfloat16
cfloat = None

__version__ = "0.1.0"

# what scripts probe at the top: backends.mps / backends.cudnn
backends = _types.SimpleNamespace(
    mps=_types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False),
    cudnn=_types.SimpleNamespace(deterministic=False, benchmark=False, enabled=True, is_available=lambda: False),
)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def set_num_threads(n: int) -> None:
    """Limit the BLAS threads NumPy uses (through threadpoolctl when it is installed; otherwise the variables only
    affect libraries loaded later)."""
    # `int` is the dtype tinyautograd.int32 in this module (torch's name), so the builtin is spelled out
    n = _builtins.int(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            _os.environ[var] = str(n)
    _threads[0] = n


_threads = [_os.cpu_count() or 1]


def get_num_threads() -> int:
    return _threads[0]


def set_num_interop_threads(n: int) -> None:
    pass


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    pass


def compile(model=None, **kwargs):
    """No compiler here: returns the model (or a decorator returning the function) unchanged."""
    if model is None:
        return lambda m: m
    return model


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    from ._tensor_str import set_printoptions as _set

    _set(precision=precision, threshold=threshold, edgeitems=edgeitems, linewidth=linewidth, profile=profile,
         sci_mode=sci_mode)


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True) -> None:
    """Write ``obj`` (tensors, state dicts, nested containers) to ``f`` without pickle (see
    ``tinyautograd.serialization``). torch's pickle arguments are accepted and have no effect."""
    from .serialization import save as _save

    _save(obj, f)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None, **pickle_load_args):
    """Read what ``save`` wrote; never unpickles, so a crafted file cannot run code. torch's pickle and mmap
    arguments are accepted and have no effect."""
    from .serialization import load as _load

    return _load(f, map_location=map_location, weights_only=weights_only)


def __getattr__(name: str):
    # subpackages importable as attributes after `import tinyautograd`, as torch.nn is
    import importlib

    if name in ("nn", "optim", "utils", "vision", "viz", "serialization", "testing"):
        mod = importlib.import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'tinyautograd' has no attribute '{name}'")
