"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay (``torch.optim.SGD``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from ..creation import empty_like
from . import _fused
from .optimizer import Optimizer, as_float, check_hyperparameter, decayed_grad, iter_grads

__all__ = ["SGD"]


def _update_sgd(xp, param, grad, momentum_buffer, *, lr: float, weight_decay: float, momentum: float,
                dampening: float, nesterov: bool, maximize: bool, first_step: bool) -> None:
    """One SGD update of ``param`` in place (arrays of one shape, dtype and device).

    ``d = (±grad) + weight_decay * param``; with momentum ``buf = d`` on the first step, afterwards
    ``buf = momentum * buf + (1 - dampening) * d``, and ``d = d + momentum * buf`` (Nesterov) or ``d = buf``;
    finally ``param -= lr * d``. ``momentum_buffer`` is written in place (ignored when ``momentum == 0``).
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.sgd(param, grad, momentum_buffer, lr=lr, weight_decay=weight_decay, momentum=momentum,
                          dampening=dampening, nesterov=nesterov, maximize=maximize, first_step=first_step)
    d_p = decayed_grad(xp, param, grad, weight_decay, maximize)
    owned = d_p is not grad  # a fresh array we may overwrite
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = d_p
        else:
            momentum_buffer *= momentum
            if dampening != 0:
                momentum_buffer += d_p * (1.0 - dampening)
            else:
                momentum_buffer += d_p
        if nesterov:
            ahead = xp.multiply(momentum_buffer, momentum, out=xp.empty_like(param))
            d_p = xp.add(d_p, ahead, out=ahead)
            owned = True
        else:
            d_p = momentum_buffer
            owned = False
    scaled = xp.multiply(d_p, -lr, out=d_p if owned else None)
    param += scaled


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum (``torch.optim.SGD``).

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: maximize the objective instead of minimizing.
        foreach, differentiable, fused: accepted for torch compatibility and kept in the groups; one code path
            serves all (``differentiable=True`` is refused).

    State per parameter: ``momentum_buffer`` (only when ``momentum != 0``).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        check_hyperparameter(lr >= 0.0, f"Invalid learning rate: {lr}")
        check_hyperparameter(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check_hyperparameter(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach, "differentiable": differentiable,
                    "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_float(group["lr"])
            momentum = group["momentum"]
            for p, grad in iter_grads(group):
                buf = None
                first = False
                if momentum != 0:
                    state = self.state[p]
                    tensor_buf = state.get("momentum_buffer")
                    if tensor_buf is None:
                        tensor_buf = state["momentum_buffer"] = empty_like(p)
                        first = True
                    buf = tensor_buf._data
                data = p._data
                _update_sgd(array_module(data), data, grad, buf, lr=lr, weight_decay=group["weight_decay"],
                            momentum=momentum, dampening=group["dampening"], nesterov=group["nesterov"],
                            maximize=group["maximize"], first_step=first)
                p._version[0] += 1
        return loss
