"""The Tensor: an array (numpy on 'cpu', cupy on 'cuda') plus its place on the tape.

Methods and operators are bound to the differentiable functions of ``tinyautograd.ops`` in one place,
``ops/_bind.py``; this module holds what a tensor is, not what it computes.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import _dtype
from .autograd import backward as _autograd_backward
from .autograd.engine import AccumulateGrad, RemovableHandle, _add_hook, _tensor_cls, run_backward
from .autograd.grad_mode import state as _grad_state
from .backend import CPU, device_of, move, normalize_device

_DTYPE_OF_NP = _dtype._BY_NP
_new = object.__new__
_ndarray = np.ndarray
_np_scalar_types = (np.generic, int, float, bool)


# Checks of CUDA results deferred to the first host read of the tensor (item, tolist, cpu, numpy, repr): reading
# whether a loss went NaN would otherwise cost a device synchronisation in every training step. The op leaves its
# result NaN where the input was invalid (an out-of-range class index, a BCE probability outside [0, 1]); the check
# looks at the values it then reads anyway and raises the op's own error. A check that raises stays, so every
# read of that tensor raises.
_DEFERRED: dict = {}  # id(tensor) -> (weak reference to it, check); not a WeakKeyDictionary, whose lookups call
# the keys' __eq__ (elementwise on tensors)


def defer_check(tensor, check) -> None:
    """Run ``check(host_values)`` on ``tensor``'s values when they are first read on the host (CUDA tensors)."""
    key = id(tensor)
    _DEFERRED[key] = (weakref.ref(tensor, lambda _, key=key: _DEFERRED.pop(key, None)), check)


# Index checks of CUDA ops (gather, index_select, embedding, scatter, one_hot): a 0-d device flag each, true when
# an index was out of range, read at the next host read of any tensor or cuda.synchronize() (torch reports its
# device-side asserts at the next synchronisation too), or once 64 have gathered.
_PENDING: list = []
_PENDING_LIMIT = 64


def defer_device_check(flag, fail) -> None:
    """Call ``fail()`` (which raises the op's error) if the device flag ``flag`` turns out true; looked at later."""
    _PENDING.append((flag, fail))
    if len(_PENDING) >= _PENDING_LIMIT:
        run_pending_checks()


def run_pending_checks() -> None:
    """Read the pending index flags (one wait for the device) and raise the first failed check's error."""
    if not _PENDING:
        return
    pending = _PENDING[:]
    del _PENDING[:len(pending)]  # not clear(): a check another thread appends meanwhile stays for the next read
    flags = [flag for flag, _ in pending]
    if len(flags) == 1:
        bad = [bool(flags[0])]
    else:
        from .ops._util import xp_of

        try:  # one transfer for all
            bad = xp_of(flags[0]).stack(flags).get().tolist()
        except Exception:  # flags on different devices
            bad = [bool(flag) for flag in flags]
    for (_, fail), failed in zip(pending, bad):
        if failed:
            fail()


def _host_data(t):
    """A CUDA tensor's data copied to the host, after the pending index checks and the check an op deferred to this
    read."""
    if _PENDING:
        run_pending_checks()
    data = t._data.get()
    if _DEFERRED:
        entry = _DEFERRED.get(id(t))
        if entry is not None and entry[0]() is t:
            entry[1](data)
            _DEFERRED.pop(id(t), None)
    return data


class Size(tuple):
    """``torch.Size``: a tuple of ints with torch's repr and ``numel``."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"tinyautograd.Size({list(self)})"

    def __getitem__(self, item):
        r = tuple.__getitem__(self, item)
        return Size(r) if isinstance(item, slice) else r


class Tensor:
    """A multi-dimensional array that records the ops applied to it, as ``torch.Tensor``."""

    __slots__ = ("_data", "_grad", "requires_grad", "grad_fn", "_version", "_accum", "_view", "__weakref__")
    __array_priority__ = 1000  # numpy scalars and arrays defer to our reflected operators

    def __new__(cls, *args, device=None, requires_grad: bool = False, dtype=None):
        # torch's legacy constructor: Tensor([1, 2]) copies data as the default float dtype, Tensor(2, 3) and
        # Tensor(size) give uninitialised tensors of that size, Tensor() an empty one
        if len(args) == 1 and not isinstance(args[0], int):
            a = args[0]
            if isinstance(a, Size):
                src = _creation.empty(tuple(a), dtype=dtype, device=device)
            elif isinstance(a, Tensor):
                src = a.detach()
            elif isinstance(a, (float, bool)) or a is None:
                raise TypeError(f"new(): data must be a sequence (got {type(a).__name__}); use "
                                "tinyautograd.tensor(value) for a 0-d tensor")
            else:
                src = _creation.tensor(a, dtype=dtype if dtype is not None else _dtype.get_default_dtype(),
                                       device=device)
        else:
            src = _creation.empty(*(args if args else (0,)), dtype=dtype, device=device)
        t = _new(cls)
        t._data = src._data
        t._grad = None
        t.requires_grad = False
        t.grad_fn = None
        t._version = [0]
        t._accum = None
        t._view = None
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, *args, **kwargs) -> None:
        pass

    # -- construction used by every op (no argument parsing) --------------------------------------------------
    @staticmethod
    def _wrap(data, grad_fn=None) -> "Tensor":
        if data.__class__ is not _ndarray and isinstance(data, _np_scalar_types):
            # NumPy turns 0-d results into scalars; a tensor always holds an array
            data = np.asarray(data)
        t = _new(Tensor)
        t._data = data
        t._grad = None
        t.grad_fn = grad_fn
        t._version = version = [0]
        t._accum = None
        t._view = None
        if grad_fn is None:
            t.requires_grad = False
        else:
            t.requires_grad = True
            if grad_fn.has_out:
                # the node keeps this output's array: backward checks this counter before trusting it
                grad_fn.out_version = version
        return t

    @classmethod
    def _make_subclass(cls, *args) -> "Tensor":
        """A new leaf of class ``cls`` sharing ``data``'s array (what nn.Parameter is built with). Called as
        ``Sub._make_subclass(data, requires_grad)`` or torch's ``Tensor._make_subclass(Sub, data, requires_grad)``."""
        if args and isinstance(args[0], type):
            cls, args = args[0], args[1:]
        data = args[0]
        requires_grad = bool(args[1]) if len(args) > 1 else False
        t = _new(cls)
        t._data = data._data
        t._grad = None
        t.requires_grad = False
        t.grad_fn = None
        t._version = data._version
        t._accum = None
        t._view = None
        if requires_grad:
            t.requires_grad_(True)
        return t

    def _accumulator(self) -> AccumulateGrad:
        a = self._accum
        if a is None:
            a = self._accum = AccumulateGrad(self)
        return a

    # -- metadata -----------------------------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    @property
    def dtype(self) -> _dtype.dtype:
        return _DTYPE_OF_NP[self._data.dtype]

    @property
    def device(self):
        return device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return type(self._data) is not np.ndarray

    @property
    def is_cpu(self) -> bool:
        return type(self._data) is np.ndarray

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_floating_point_(self) -> bool:
        return self.dtype.is_floating_point

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def element_size(self) -> int:
        return self._data.itemsize

    def stride(self, dim: int | None = None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim, "stride")]

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def get_device(self) -> int:
        return -1 if self.is_cpu else self._data.device.id

    @property
    def _version_counter(self) -> int:
        return self._version[0]

    # -- autograd attributes ------------------------------------------------------------------------------------
    @property
    def grad(self) -> "Tensor | None":
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        # what torch checks on assignment: a gradient has its tensor's shape and device
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError(f"attempting to assign a gradient of size '{list(value._data.shape)}' to a tensor "
                                   f"of size '{list(self._data.shape)}'. Please ensure that the gradient and the "
                                   "tensor are the same size")
            if value._data.dtype != self._data.dtype:
                raise RuntimeError(f"attempting to assign a gradient with dtype '{value.dtype.name}' to a tensor "
                                   f"with dtype '{self.dtype.name}'. Please ensure that the gradient and the tensor "
                                   "have the same dtype")
            if type(value._data) is not type(self._data):
                raise RuntimeError(f"attempting to assign a gradient located on device {value.device} to a tensor "
                                   f"on device {self.device}. Please ensure that the gradient and the tensor are on "
                                   "the same device")
        self._grad = value

    @property
    def data(self) -> "Tensor":
        t = Tensor._wrap(self._data)  # its own version counter, unlike detach() (torch's difference)
        if _DEFERRED and id(self) in _DEFERRED:
            defer_check(t, _DEFERRED[id(self)][1])
        return t

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, not {type(value).__name__}")
        self._data = value._data

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype}). "
                "Convert first, e.g. x = x.float().requires_grad_()")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if self.retains_grad:
            return
        import weakref

        _add_hook(self.grad_fn, ("retain", weakref.ref(self)))

    @property
    def retains_grad(self) -> bool:
        node = self.grad_fn
        if node is None or node.hooks is None:
            return False
        return any(kind == "retain" and ref() is self for kind, ref in node.hooks)

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a Tensor it returns replaces the gradient."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = self.grad_fn if self.grad_fn is not None else self._accumulator()
        return _add_hook(node, ("tensor", hook))

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad`` (torch's ``Tensor.backward``)."""
        d = self._data
        if gradient is None and inputs is None and not create_graph and self.grad_fn is not None \
                and d.size == 1 and d.__class__ is _ndarray:
            # the usual `loss.backward()`: skip the general argument checks
            run_backward((self,), (np.ones(d.shape, d.dtype),), bool(retain_graph), False)
            return
        _autograd_backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        t = Tensor._wrap(self._data)
        t._version = self._version
        if _DEFERRED and id(self) in _DEFERRED:  # the same values: the same deferred check (a logged loss)
            defer_check(t, _DEFERRED[id(self)][1])
        return t

    def detach_(self) -> "Tensor":
        if self._view is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self.requires_grad = False
        return self

    # -- conversion ---------------------------------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if type(self._data) is not np.ndarray:
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the "
                    "tensor to host memory first.")
            return _host_data(self)
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        # unlike numpy(), and unlike torch, this works on tensors that require grad: np.asarray(t) and plotting
        # libraries ask for values explicitly, and get them (host memory shared where possible)
        a = self._data if type(self._data) is np.ndarray else _host_data(self)
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar (item() needs exactly one "
                f"element; shape is {list(self._data.shape)})")
        return self._data.reshape(()).item() if type(self._data) is np.ndarray else _host_data(self).item()

    def tolist(self):
        d = self._data if type(self._data) is np.ndarray else _host_data(self)
        return d.tolist()

    def __float__(self) -> float:
        if self._data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars (float() got a tensor of "
                             f"shape {list(self._data.shape)}; index it or reduce it first)")
        return float(self.item())

    def __int__(self) -> int:
        if self._data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars (int() got a tensor of "
                             f"shape {list(self._data.shape)}; index it or reduce it first)")
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            amount = "no values" if self._data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {amount} is ambiguous (shape "
                               f"{list(self._data.shape)}); use .any() or .all()")
        return bool(self.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec) if spec else repr(self)

    def __hash__(self) -> int:
        return id(self)

    def __deepcopy__(self, memo) -> "Tensor":
        """Copy a leaf (and its grad), as torch's deepcopy protocol; graph history is not copied."""
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                               "protocol at the moment. If you were attempting to deepcopy a module, this may be "
                               "because of a torch.nn.utils.weight_norm usage, see "
                               "https://github.com/pytorch/pytorch/pull/103001")
        if id(self) in memo:
            return memo[id(self)]
        new = type(self)._make_subclass(Tensor._wrap(self._data.copy()), self.requires_grad)
        memo[id(self)] = new
        if self._grad is not None:
            new._grad = self._grad.__deepcopy__(memo)
        return new

    def __reduce_ex__(self, protocol):
        raise TypeError("tinyautograd tensors are not picklable by design; use tinyautograd.save, which never "
                        "unpickles on load")

    def __dlpack__(self, *args, **kwargs):
        if self.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __repr__(self) -> str:
        from ._tensor_str import format_tensor

        a = self._data if type(self._data) is np.ndarray else _host_data(self)
        dev = self.device
        return format_tensor(
            a, dtype_name=self.dtype.name, default_dtype_name=_dtype.get_default_dtype().name,
            device="cpu" if dev.type == "cpu" else str(dev), requires_grad=self.requires_grad,
            grad_fn_name=self.grad_fn.name() if self.grad_fn is not None else None)

    __str__ = __repr__

    # -- devices and dtypes (copies unless nothing changes, as torch) -------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``; keyword forms too."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, _dtype.dtype) or a in (float, int, bool) or isinstance(a, np.dtype):
                dtype = a
            elif a is None:
                continue
            else:
                device = a
        from .ops import to_copy

        if device is not None and (_PENDING or id(self) in _DEFERRED) and normalize_device(device).type == "cpu":
            if id(self) in _DEFERRED:  # the check looks at the values (a loss: small)
                _host_data(self)
            else:  # only the index flags: no copy of the data for them
                run_pending_checks()
        return to_copy(self, None if dtype is None else _dtype.to_dtype(dtype),
                       None if device is None else normalize_device(device), copy)

    # -- new tensors with this one's dtype and device (torch's new_* methods) ------------------------------------
    def new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return _creation.tensor(data, dtype=self.dtype if dtype is None else dtype,
                                device=self.device if device is None else device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return _creation.zeros(*size, dtype=self.dtype if dtype is None else dtype,
                               device=self.device if device is None else device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return _creation.ones(*size, dtype=self.dtype if dtype is None else dtype,
                              device=self.device if device is None else device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return _creation.empty(*size, dtype=self.dtype if dtype is None else dtype,
                               device=self.device if device is None else device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return _creation.full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                              device=self.device if device is None else device, requires_grad=requires_grad)

    def cpu(self) -> "Tensor":
        return self.to(CPU)

    def cuda(self, device=None, non_blocking: bool = False) -> "Tensor":
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def type(self, dtype=None):
        if dtype is None:
            return _LEGACY_TYPE_NAMES.get(self.dtype.name, "tinyautograd.Tensor")
        if isinstance(dtype, str):
            for k, v in _LEGACY_TYPE_NAMES.items():
                if v == dtype or v.replace("tinyautograd.", "torch.") == dtype:
                    return self.to(_dtype._BY_NAME[k])
            raise TypeError(f"invalid type: {dtype!r}")
        return self.to(_dtype.to_dtype(dtype))

    def float(self) -> "Tensor":
        return self.to(_dtype.float32)

    def double(self) -> "Tensor":
        return self.to(_dtype.float64)

    def half(self) -> "Tensor":
        return self.to(_dtype.float16)

    def long(self) -> "Tensor":
        return self.to(_dtype.int64)

    def int(self) -> "Tensor":
        return self.to(_dtype.int32)

    def bool(self) -> "Tensor":
        return self.to(_dtype.bool_)

    def byte(self) -> "Tensor":
        return self.to(_dtype.uint8)

    def short(self) -> "Tensor":
        return self.to(_dtype.int16)

    def char(self) -> "Tensor":
        return self.to(_dtype.int8)


_LEGACY_TYPE_NAMES = {
    "float32": "tinyautograd.FloatTensor", "float64": "tinyautograd.DoubleTensor",
    "float16": "tinyautograd.HalfTensor", "int64": "tinyautograd.LongTensor", "int32": "tinyautograd.IntTensor",
    "int16": "tinyautograd.ShortTensor", "int8": "tinyautograd.CharTensor", "uint8": "tinyautograd.ByteTensor",
    "bool": "tinyautograd.BoolTensor",
}


def _wrap_dim(dim: int, ndim: int, op: str) -> int:
    n = ndim if ndim > 0 else 1
    if not -n <= dim < n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


_tensor_cls[0] = Tensor

# creation makes Tensors, so it is imported once Tensor exists (the legacy constructor and new_* use it)
from . import creation as _creation  # noqa: E402
