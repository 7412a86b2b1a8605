"""The ``Optimizer`` base class (``torch.optim.Optimizer``) and the array helpers the optimizers share.

An optimizer owns ``param_groups`` (dicts of hyperparameters with a ``'params'`` list) and ``state`` (a dict per
parameter). Each concrete optimizer's ``step`` walks the groups and hands raw arrays (``p._data``,
``p.grad._data``, the state tensors' arrays) to one small ``_update_<name>(xp, ...)`` function that changes them
in place with NumPy/CuPy ufuncs: nothing is recorded, few temporaries are made, and on CUDA the function is the
unit a fused elementwise kernel can replace.
"""
from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Iterable

import numpy as np

from .. import _dtype
from ..autograd.grad_mode import enable_grad
from ..creation import as_tensor, tensor, zeros_like
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyperparameter without default that every param group must give (``torch.optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class _RemovableHandle:
    """Handle returned by ``register_step_pre_hook``/``register_step_post_hook``; ``remove()`` unregisters."""

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict) -> None:
        self.hooks = hooks
        self.id = next(_RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> "_RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _with_step_hooks(step: Callable) -> Callable:
    """Wrap a subclass's ``step`` so the registered pre/post hooks run around it (once, even when a subclass's
    ``step`` calls its parent's)."""

    @functools.wraps(step)
    def wrapper(self: "Optimizer", *args, **kwargs):
        if self._step_depth:
            return step(self, *args, **kwargs)
        for pre_hook in list(self._optimizer_step_pre_hooks.values()):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{type(self).__name__}.step: a step pre-hook must return None or a tuple (new_args, "
                        f"new_kwargs), but got {result!r}")
                args, kwargs = result
        self._step_depth += 1
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._step_depth -= 1
        # read by the lr schedulers to warn when scheduler.step() comes before optimizer.step()
        self._opt_called = True
        for post_hook in list(self._optimizer_step_post_hooks.values()):
            post_hook(self, args, kwargs)
        return out

    return wrapper


def _typename(obj) -> str:
    return obj.type() if isinstance(obj, Tensor) else type(obj).__name__


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer``).

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (param groups) each with a
            ``'params'`` entry and per-group hyperparameters overriding ``defaults``.
        defaults: the hyperparameters every group gets unless it sets its own.

    Subclasses define ``step(closure=None)``; step hooks registered on the instance run around it.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None:
            cls.step = _with_step_hooks(step)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._step_depth = 0
        if defaults.get("differentiable", False):
            raise RuntimeError(
                f"{type(self).__name__}: differentiable=True is not supported; tinyautograd optimizers update "
                "parameters in place without recording, so the update itself cannot be differentiated. "
                "Write the update with tensor ops in your own code to differentiate through it.")
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got " + _typename(params))
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    # -- groups ---------------------------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group (a dict with ``'params'`` and optional hyperparameters; missing ones come from
        ``defaults``), e.g. to unfreeze layers during fine-tuning. Same checks as torch."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        tensors, names = [], []
        for param in params:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names

        for param in tensors:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is " + _typename(param))
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)

        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            import warnings

            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # -- gradients ------------------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's ``.grad`` (``set_to_none=True``, the default) or fill it with zeros.

        A ``None`` gradient makes ``step`` skip the parameter, a zero one still updates its state (momentum...).
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    @staticmethod
    def _evaluate_closure(closure: Callable[[], Any] | None):
        # the closure re-runs forward and backward, so it needs recording even when step() sits under no_grad
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- hooks ----------------------------------------------------------------------------------------------------
    def register_step_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` before each ``step``; it may return ``(new_args, new_kwargs)``."""
        handle = _RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> _RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after each ``step``."""
        handle = _RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}`` as torch: parameters
        are replaced by their position across all groups; the state tensors are the live ones (as in torch), so
        save or copy the result before stepping further if a snapshot is wanted."""
        mapping: dict[int, int] = {}
        start = 0

        def pack(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack(g) for g in self.param_groups]
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): dict(v) for k, v in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (from this library, or torch's converted through NumPy arrays).

        Every state tensor is copied, cast to its parameter's dtype (floating parameters) and moved to its
        device; ``'step'`` keeps its own dtype and device (as in torch, also NAdam's ``mu_product`` follows the
        parameter). Unlike torch, whose load keeps references to the source's
        tensors when nothing needs casting, the loaded optimizer never shares memory with the source.
        """
        groups = self.param_groups
        saved_groups = _deep_copy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        id_map = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in groups)))

        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast_state(param, v)
            else:
                state[k] = _deep_copy(v)

        new_groups = []
        for group, new_group in zip(groups, saved_groups):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                if default is not required:
                    new_group.setdefault(name, default)
            new_groups.append(new_group)
        self.state = state
        self.param_groups = new_groups
        self._after_load_state_dict()

    def _after_load_state_dict(self) -> None:
        # subclasses fix up loaded groups (AdamW forces decoupled weight decay, as torch's __setstate__ does)
        pass


# -- loading helpers -----------------------------------------------------------------------------------------------
_SCALAR_STATE_KEYS = ("step", "mu_product")


def _cast_state(param: Tensor, value: Any, key: Any = None) -> Any:
    """A deep copy of one parameter's state with torch's rule: ``step`` kept as it is, every other tensor copied
    onto the parameter's device and, for a floating parameter, cast to its dtype."""
    if isinstance(value, (np.ndarray, np.generic)):
        value = as_tensor(np.array(value))
    if isinstance(value, Tensor):
        if key == "step":
            return value.detach().to(copy=True)
        if param.is_floating_point():
            return value.detach().to(param.device, param.dtype, copy=True)
        return value.detach().to(param.device, copy=True)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if key in _SCALAR_STATE_KEYS and isinstance(value, (int, float)):
        # torch's __setstate__ turns a plain-number counter from an old checkpoint into a tensor
        return new_scalar_state(float(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    return copy.deepcopy(value)


def _deep_copy(value: Any) -> Any:
    """``copy.deepcopy`` that clones tensors (which refuse pickling, and so deepcopy) inside containers."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_deep_copy(v) for v in value)
    return copy.deepcopy(value)


# -- shared pieces of the optimizers -------------------------------------------------------------------------------
def scalar_dtype() -> _dtype.dtype:
    """dtype of per-parameter counters (``step``, NAdam's ``mu_product``): float64 when that is the default
    dtype, float32 otherwise, as torch's ``_get_scalar_dtype``."""
    return _dtype.float64 if _dtype.get_default_dtype() == _dtype.float64 else _dtype.float32


def new_scalar_state(value: float = 0.0) -> Tensor:
    """A 0-d counter tensor on the CPU (torch keeps ``step`` there unless capturable/fused)."""
    return tensor(value, dtype=scalar_dtype(), device="cpu")


def increment_step(step: Tensor) -> float:
    """``step += 1`` on the counter tensor; returns the new count as a Python float (torch's ``_get_value``)."""
    data = step._data
    data += 1
    return float(data)


def zeros_state(p: Tensor) -> Tensor:
    """A zero tensor with the parameter's shape, dtype and device (a moment buffer)."""
    return zeros_like(p)


def as_float(value) -> float:
    """A hyperparameter as a Python number (a 1-element tensor lr is read, as torch's ``_to_scalar``)."""
    return value.item() if isinstance(value, Tensor) else value


def check_hyperparameter(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def decayed_grad(xp, param, grad, weight_decay: float, maximize: bool):
    """The gradient an update uses: ``-grad`` when maximizing, plus ``weight_decay * param`` (L2 penalty).

    Returns ``grad`` itself when neither applies, else a new array; ``p.grad`` is never written.
    """
    # results go through out= everywhere: NumPy returns scalars, not 0-d arrays, from ufuncs on 0-d inputs
    if weight_decay != 0:
        out = xp.multiply(param, weight_decay, out=xp.empty_like(param))
        if maximize:
            return xp.subtract(out, grad, out=out)
        return xp.add(out, grad, out=out)
    if maximize:
        return xp.negative(grad, out=xp.empty_like(grad))
    return grad


def lerp_(xp, start, end, weight: float, scratch) -> None:
    """``start += weight * (end - start)`` in place with torch's two-branch lerp (exact at weight 0 and 1)."""
    xp.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1.0 - weight
        xp.subtract(end, scratch, out=start)


def square_average_(xp, average, grad, decay: float, scratch) -> None:
    """``average = decay * average + (1 - decay) * grad * grad`` in place (torch's
    ``average.mul_(decay).addcmul_(grad, grad, value=1 - decay)``)."""
    average *= decay
    xp.multiply(grad, 1.0 - decay, out=scratch)
    scratch *= grad
    average += scratch


def add_quotient_(xp, target, numerator, denominator, value: float, scratch) -> None:
    """``target += value * numerator / denominator`` (torch's ``addcdiv_``), through ``scratch`` (which may be
    ``denominator`` itself)."""
    xp.divide(numerator, denominator, out=scratch)
    if value != 1:
        scratch *= value
    target += scratch


def iter_grads(group: dict[str, Any]) -> Iterable[tuple[Tensor, Any]]:
    """The group's parameters that have a gradient, with that gradient's array."""
    for p in group["params"]:
        g = p.grad
        if g is not None:
            yield p, g._data


def check_adam_hyperparameters(lr, betas, eps, weight_decay) -> None:
    """torch's validation shared by the Adam family (Adam, AdamW, Adamax, NAdam, RAdam)."""
    check_hyperparameter(0.0 <= lr, f"Invalid learning rate: {lr}")
    check_hyperparameter(0.0 <= eps, f"Invalid epsilon value: {eps}")
    check_hyperparameter(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    check_hyperparameter(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    check_hyperparameter(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")


def adam_moments_(xp, param, grad, exp_avg, exp_avg_sq, *, lr: float, beta1: float, beta2: float,
                  weight_decay: float, decoupled_weight_decay: bool, maximize: bool):
    """The start every Adam-family update shares, in place: weight decay (added to the gradient, or decoupled as
    ``param *= 1 - lr * weight_decay``), then ``m = lerp(m, g, 1 - beta1)`` and ``v = beta2 v + (1 - beta2) g^2``.
    Returns the gradient used and a scratch array of the parameter's shape."""
    if decoupled_weight_decay:
        if weight_decay != 0:
            param *= 1.0 - lr * weight_decay
        g = decayed_grad(xp, param, grad, 0, maximize)
    else:
        g = decayed_grad(xp, param, grad, weight_decay, maximize)
    scratch = xp.empty_like(param)
    lerp_(xp, exp_avg, g, 1.0 - beta1, scratch)
    square_average_(xp, exp_avg_sq, g, beta2, scratch)
    return g, scratch
