"""A NumPy-backed stand-in for CuPy, so tinyautograd's ``device="cuda"`` code paths run on a machine without a GPU.

Its arrays are their own type (not ``numpy.ndarray``) and keep CuPy's rules where NumPy would be lenient:

- a host ``numpy.ndarray`` handed to a device operation or function raises ``TypeError`` (CuPy: "Unsupported
  type"), except in the transfer functions ``array``/``asarray``/``asanyarray``;
- ``numpy.asarray(device_array)`` (implicit conversion) raises ``TypeError``: copies go through ``.get()``;
- NumPy functions and ufuncs called on device arrays dispatch to the device (CuPy's ``__array_function__`` and
  ``__array_ufunc__``), and results stay on the device: reductions give 0-d device arrays, not scalars;
- ``ElementwiseKernel`` runs its C body through the test suite's C++ harness.

So a test on this device catches host arrays leaking into device code, device arrays leaking out without
``.get()``, and results or optimizer state created on the wrong device. It cannot catch what only real CuPy
shows: functions or keywords CuPy lacks, NVRTC compile errors, numerical differences of GPU libraries. Those
are for ``make gpu-check`` on a GPU.

``install()`` / ``uninstall()`` put the modules ``cupy``, ``cupyx``, ``cupyx.scipy``, ``cupyx.scipy.special`` in
``sys.modules`` and reset tinyautograd's cached CuPy lookup; ``active()`` does that and also points torch's
device-taking entry points at the cpu, for tests that compare with torch. ``LAUNCHES`` counts what a CuPy run
would launch, for launch budgets.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import operator
import sys
import types
import weakref

import numpy as np
import torch

import helpers
import kernel_harness


# id(NumPy array owning its memory) -> the device array wrapping it, for `ndarray.base`
_OWNERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class ndarray:
    """A device array: a NumPy array behind CuPy's rules (see the module docstring)."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, a) -> None:
        assert type(a) is np.ndarray
        self._a = a
        if a.base is None:
            _OWNERS[id(a)] = self

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    mT = property(lambda self: ndarray(np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: _wrap(self._a.real))
    device = property(lambda self: Device(0))

    @property
    def base(self):
        # as in CuPy, the array that owns the memory, the same object each time: `y.base is x` tells a view of x
        if self._a.base is None:
            return None
        root = self._a
        while getattr(root, "base", None) is not None:
            root = root.base
        if type(root) is not np.ndarray:
            return _wrap(self._a.base)
        owner = _OWNERS.get(id(root))
        return owner if owner is not None and owner._a is root else ndarray(root)

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self._a.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self):
        return self._a.__array_interface__

    # --- host transfer and conversions (each a device synchronisation under CuPy: counted in SYNCS)
    def get(self, stream=None, order="C", out=None):
        SYNCS["get"] += 1
        return self._a.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def item(self):
        SYNCS["item"] += 1
        return self._a.item()

    def tolist(self):
        SYNCS["tolist"] += 1
        return self._a.tolist()

    def __float__(self):
        SYNCS["__float__"] += 1
        return float(self._a)

    def __int__(self):
        SYNCS["__int__"] += 1
        return int(self._a)

    def __index__(self):
        SYNCS["__index__"] += 1
        return operator.index(self._a)

    def __bool__(self):
        SYNCS["__bool__"] += 1
        return bool(self._a)

    def __complex__(self):
        SYNCS["__complex__"] += 1
        return complex(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):
        raise TypeError("device arrays are not pickled in these tests")

    __hash__ = None

    # --- indexing (integer array indices out of bounds wrap around, as in CuPy, where NumPy raises)
    def __getitem__(self, key):
        return _counted(self._a[_wrap_indices(self._a.shape, _unwrap_key(key))], (self._a,))

    def __setitem__(self, key, value):
        LAUNCHES["__setitem__"] += 1
        self._a[_wrap_indices(self._a.shape, _unwrap_key(key))] = _device_operand(value, "__setitem__")

    # --- NumPy protocol: NumPy functions and ufuncs on device arrays run on the device
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [_device_operand(x, ufunc.__name__) for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_device_operand(o, ufunc.__name__) for o in kwargs["out"])
        LAUNCHES[ufunc.__name__] += 1
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        args, kwargs = _unwrap_all(args, func.__name__), _unwrap_all(kwargs, func.__name__)
        args = _wrap_along_axis(func.__name__, args, kwargs)
        return _counted(func(*args, **kwargs), (args, kwargs), func.__name__)

    # --- methods: NumPy's, on the device
    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: NumPy must not see the host buffer
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _counted(attr(*_unwrap_all(args, name), **_unwrap_all(kwargs, name)), (self._a,), name)

        return method


def _binary(name):
    op = getattr(operator, name)

    def method(self, other):
        LAUNCHES[name] += 1
        return _wrap(op(self._a, _device_operand(other, name)))

    def reflected(self, other):
        LAUNCHES[name] += 1
        return _wrap(op(_device_operand(other, name), self._a))

    return method, reflected


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor", "lshift",
              "rshift"):
    _dunder = _name.rstrip("_")
    _m, _r = _binary(_name)
    setattr(ndarray, f"__{_dunder}__", _m)
    setattr(ndarray, f"__r{_dunder}__", _r)

    def _inplace(self, other, _op=getattr(operator, f"i{_dunder}"), _what=f"i{_dunder}"):
        LAUNCHES[_what] += 1
        result = _op(self._a, _device_operand(other, _dunder))
        assert result is self._a
        return self

    setattr(ndarray, f"__i{_dunder}__", _inplace)

for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(_name)[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", lambda self, _op=getattr(operator, _name): _counted(_op(self._a), ()))
setattr(ndarray, "__divmod__", lambda self, other: _counted(divmod(self._a, _device_operand(other, "divmod")), ()))


# what a CuPy run would launch: each operation that writes device memory counts one (in-place operators, ufuncs,
# functions and methods whose result is new memory, kernels); views (reshape, transpose, basic slicing) and
# allocations without a fill (empty) count none. An approximation of CuPy's launches, for launch budgets in tests.
LAUNCHES: collections.Counter = collections.Counter()
# device -> host reads (get, item, tolist, float/int/bool/index of an array): each waits for the device's queue
SYNCS: collections.Counter = collections.Counter()
_NO_FILL = {"empty", "empty_like"}


def _arrays_in(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, np.generic):  # a reduction's scalar: a 0-d device array under CuPy
        yield np.asarray(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays_in(v)


def _counted(result, sources, name: str = "op"):
    """``result`` wrapped for the device, counting one launch when it holds memory none of ``sources`` holds."""
    outputs = [a for a in _arrays_in(result) if a.size]
    if outputs and name not in _NO_FILL:
        inputs = list(_arrays_in(sources))
        if any(not any(np.may_share_memory(o, i) for i in inputs) for o in outputs):
            LAUNCHES[name] += 1
    return _wrap(result)


def _wrap(value):
    """Results stay on the device: arrays (and NumPy scalars, as 0-d arrays) become device arrays."""
    if type(value) is np.ndarray:
        return ndarray(value)
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        return ndarray(np.asarray(value))
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, tuple):  # a named tuple
        return type(value)(*(_wrap(v) for v in value))
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _device_operand(value, what: str):
    """An operand of a device operation: device arrays unwrap; host arrays are refused, as CuPy does."""
    if type(value) is ndarray:
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(f"Unsupported type {type(value)} (a host array given to the device operation {what!r}; "
                        "CuPy needs it moved with cupy.asarray first)")
    return value


def _unwrap_all(value, what: str):
    if isinstance(value, dict):
        return {k: _unwrap_all(v, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_unwrap_all(v, what) for v in value)
    return _device_operand(value, what)


def _wrap_indices(shape, key):
    """``key`` with its integer index arrays taken modulo their axis's length: CuPy's integer array indexing wraps
    out-of-bounds indices around where NumPy raises."""
    parts = key if isinstance(key, tuple) else (key,)

    def consumed(p):
        if p is None or p is Ellipsis or isinstance(p, bool):
            return 0
        return p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1
    after_ellipsis = len(shape) - sum(consumed(p) for p in parts)
    wrapped, axis = [], 0
    for p in parts:
        if p is Ellipsis:
            axis += after_ellipsis
        elif isinstance(p, np.ndarray) and p.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
            p = np.mod(p, shape[axis])
        wrapped.append(p)
        axis += consumed(p)
    return tuple(wrapped) if isinstance(key, tuple) else wrapped[0]


def _unwrap_key(key):
    if isinstance(key, tuple):
        return tuple(_unwrap_key(k) for k in key)
    if type(key) is ndarray:
        return key._a
    if isinstance(key, np.ndarray):
        raise TypeError(f"Unsupported type {type(key)}: a host array used to index a device array")
    return key


# ---------------------------------------------------------------------------------------------------------------
# the module

class _Ufunc:
    def __init__(self, uf) -> None:
        self._uf = uf
        self.__name__ = uf.__name__

    def __call__(self, *args, **kwargs):
        LAUNCHES[self.__name__] += 1
        return _wrap(self._uf(*_unwrap_all(args, self.__name__), **_unwrap_all(kwargs, self.__name__)))

    def __getattr__(self, name):
        method = getattr(self._uf, name)
        if not callable(method):
            return method

        def call(*a, **k):
            what = f"{self.__name__}.{name}"
            LAUNCHES[what] += 1
            a = list(_unwrap_all(a, what))
            if name == "at":  # ufunc.at(array, indices, ...): out-of-bounds indices wrap, as in CuPy
                a[1] = _wrap_indices(a[0].shape, a[1])
            return _wrap(method(*a, **_unwrap_all(k, what)))

        return call


def _wrap_along_axis(name: str, args, kwargs):
    """take_along_axis / put_along_axis's indices modulo the axis's length (CuPy wraps out-of-bounds indices)."""
    if name not in ("take_along_axis", "put_along_axis"):
        return args
    args = list(args)
    axis = kwargs["axis"] if "axis" in kwargs else args[2]
    if axis is not None and args[0].shape[axis]:
        args[1] = np.mod(args[1], args[0].shape[axis])
    return tuple(args)


def _function(fn, name: str):
    def call(*args, **kwargs):
        args, kwargs = _unwrap_all(args, name), _unwrap_all(kwargs, name)
        args = _wrap_along_axis(name, args, kwargs)
        if "out" in kwargs:  # writes into an existing array: a launch, though the result shares its memory
            LAUNCHES[name] += 1
            return _wrap(fn(*args, **kwargs))
        return _counted(fn(*args, **kwargs), (args, kwargs), name)

    call.__name__ = name
    return call


def _asarray(obj, dtype=None, order=None, *, blocking=False):
    if type(obj) is ndarray:
        return obj if dtype is None or obj.dtype == np.dtype(dtype) else ndarray(obj._a.astype(dtype))
    if isinstance(obj, (list, tuple)) and any(type(x) is ndarray for x in obj):
        return ndarray(np.asarray(_unwrap_all(obj, "asarray"), dtype=dtype))
    return ndarray(np.array(obj, dtype=dtype, copy=True, ndmin=0))


def _array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if type(obj) is ndarray:
        return ndarray(np.array(obj._a, dtype=dtype, copy=True, ndmin=ndmin))
    if isinstance(obj, (list, tuple)) and any(type(x) is ndarray for x in obj):
        return ndarray(np.array(_unwrap_all(obj, "array"), dtype=dtype, ndmin=ndmin))
    return ndarray(np.array(obj, dtype=dtype, copy=True, ndmin=ndmin))


class Device:
    def __init__(self, device=None) -> None:
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise RuntimeError(f"the fake CUDA runtime has one device, not {self.id}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self) -> None:
        pass

    def use(self) -> None:
        pass

    compute_capability = "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("fake-device", self.id))


class _ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs) -> None:
        self.kernel = types.SimpleNamespace(in_params=in_params, out_params=out_params, body=operation, name=name)

    def __call__(self, *args, size=None, **kwargs):
        LAUNCHES[self.kernel.name] += 1
        host = [_device_operand(a, self.kernel.name) for a in args]
        kernel_harness.emulate(self.kernel, *host)


# what cupy.random.Generator offers (CuPy 14): no normal, permutation, choice or shuffle, unlike NumPy's
_GENERATOR_METHODS = {"beta", "binomial", "chisquare", "dirichlet", "exponential", "f", "gamma", "geometric",
                      "hypergeometric", "integers", "logseries", "poisson", "power", "random", "standard_exponential",
                      "standard_gamma", "standard_normal", "uniform"}


class _Generator:
    """``cupy.random.Generator``: NumPy's generator, results on the device, limited to CuPy's methods (and to
    float32/float64 for ``random`` and ``standard_normal``, as CuPy's)."""

    def __init__(self, seed=None) -> None:
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        if name not in _GENERATOR_METHODS:
            raise AttributeError(f"'cupy.random._generator_api.Generator' object has no attribute '{name}'")
        method = getattr(self._g, name)
        if name in ("random", "standard_normal"):
            def checked(size=None, dtype=np.float64, out=None, _method=method):
                if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
                    raise TypeError(f"Unsupported dtype {np.dtype(dtype).name} for {name}")
                return _method(size, dtype=dtype)
            method = checked

        def draw(*a, **k):
            LAUNCHES["random." + name] += 1
            return _wrap(method(*_unwrap_all(a, name), **_unwrap_all(k, name)))

        return draw


def _scatter_add(a, slices, value):
    a = _device_operand(a, "scatter_add")
    np.add.at(a, _wrap_indices(a.shape, _unwrap_key(slices)), _device_operand(value, "scatter_add"))


def _erf(x):
    import math

    host = _device_operand(x, "erf")
    return ndarray(np.vectorize(math.erf, otypes=[host.dtype])(host) if host.size else host.copy())


class _MemoryPool:
    def free_all_blocks(self) -> None:
        pass

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0


_POOL = _MemoryPool()


def _device_version(target, name: str):
    """NumPy's ``target`` as the device module offers it: functions and ufuncs on device arrays, submodules too."""
    if isinstance(target, np.ufunc):
        return _Ufunc(target)
    if isinstance(target, types.ModuleType):
        return _Namespace(target)
    if callable(target) and not isinstance(target, type):
        return _function(target, name)
    return target


class _Namespace:
    """A NumPy submodule (``linalg``, ``lib.stride_tricks``, ...) with device functions."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def __getattr__(self, name):
        return _device_version(getattr(self._module, name), name)


def _module_getattr(name):
    return _device_version(getattr(np, name), name)


def build() -> dict[str, types.ModuleType]:
    cupy = types.ModuleType("cupy")
    cupy.__doc__ = "fake CuPy (tests/fake_cupy.py)"
    cupy.__version__ = "0.0-fake"
    cupy.ndarray = ndarray
    cupy.asarray = cupy.asanyarray = _asarray
    cupy.array = _array
    cupy.asnumpy = lambda a, stream=None: a.get() if type(a) is ndarray else np.asarray(a)
    cupy.get_array_module = lambda *args: cupy if any(type(a) is ndarray for a in args) else np
    cupy.ElementwiseKernel = _ElementwiseKernel
    cupy.get_default_memory_pool = lambda: _POOL
    cupy.get_default_pinned_memory_pool = lambda: _POOL
    cupy.__getattr__ = _module_getattr
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDevice=lambda: 0, setDevice=lambda i: Device(i) and None,
        deviceSynchronize=lambda: None,
        getDeviceProperties=lambda i: {"name": b"Fake CUDA device (NumPy)", "major": 9, "minor": 0,
                                       "totalGlobalMem": 1 << 34})
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=Device, Stream=types.SimpleNamespace(
        null=types.SimpleNamespace(synchronize=lambda: None)), get_current_stream=lambda: types.SimpleNamespace(
        synchronize=lambda: None))
    cupy.random = types.SimpleNamespace(default_rng=_Generator, seed=lambda s=None: None)
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = _scatter_add
    scipy = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = _erf
    cupyx.scipy = scipy
    scipy.special = special
    return {"cupy": cupy, "cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special}


_saved: dict = {}


def _reset_tinyautograd() -> None:
    from tinyautograd import _kernels, backend, random
    from tinyautograd.tensor import _PENDING
    from tinyautograd.autograd import namespace

    backend._cupy, backend._cupy_checked = None, False
    _PENDING.clear()  # index checks of arrays of the CuPy that is going away
    for kernel in _kernels.REGISTRY.values():  # compiled by whichever CuPy was installed
        kernel._compiled = None
    namespace._array_namespaces.pop(ndarray, None)
    random.default_generator._cuda_rng = None


def install() -> None:
    for name, module in build().items():
        _saved[name] = sys.modules.get(name)
        sys.modules[name] = module
    _reset_tinyautograd()


def uninstall() -> None:
    for name, module in _saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
    _saved.clear()
    _reset_tinyautograd()


# torch's entry points that take a device: while the stand-in is active they put "cuda" on the cpu. (A global
# TorchFunctionMode would be simpler but re-calls torch's Python functions with the arguments their override hooks
# pass on, and some drop arguments, e.g. l1_loss's weight.)
_TORCH_FACTORIES = ("tensor", "as_tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand",
                    "randn", "randint", "randperm", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like",
                    "randn_like")


def _cpu(value):
    if isinstance(value, str) and value.startswith("cuda"):
        return "cpu"
    if isinstance(value, torch.device) and value.type == "cuda":
        return torch.device("cpu")
    return value


def _on_cpu(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        return fn(*(_cpu(a) for a in args), **kwargs)

    return call


def _patches() -> list[tuple[object, str, object]]:
    patches = [(torch, name, _on_cpu(getattr(torch, name))) for name in _TORCH_FACTORIES]
    patches += [(torch.Tensor, "to", _on_cpu(torch.Tensor.to)), (torch.nn.Module, "to", _on_cpu(torch.nn.Module.to)),
                (torch.Tensor, "cuda", lambda self, *a, **k: self),
                (torch.nn.Module, "cuda", lambda self, *a, **k: self)]
    return patches


@contextlib.contextmanager
def active():
    """tinyautograd's ``cuda`` on the stand-in and torch's ``cuda`` on the cpu, for the duration."""
    install()
    helpers.TORCH_DEVICE_FOR_CUDA = "cpu"
    saved = []
    try:
        for owner, name, replacement in _patches():
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
        helpers.TORCH_DEVICE_FOR_CUDA = None
        uninstall()
