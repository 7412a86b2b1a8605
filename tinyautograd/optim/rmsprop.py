"""RMSprop (``torch.optim.RMSprop``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from . import _fused
from .optimizer import (Optimizer, add_quotient_, as_float, check_hyperparameter, decayed_grad, increment_step,
                        iter_grads, lerp_, new_scalar_state, square_average_, zeros_state)

__all__ = ["RMSprop"]


def _update_rmsprop(xp, param, grad, square_avg, grad_avg, momentum_buffer, *, lr: float, alpha: float, eps: float,
                    weight_decay: float, momentum: float, centered: bool, maximize: bool) -> None:
    """One RMSprop update of ``param`` and its averages in place.

    ``v = alpha v + (1 - alpha) g^2``; the denominator is ``sqrt(v) + eps``, or ``sqrt(v - gavg^2) + eps`` with
    ``gavg = lerp(gavg, g, 1 - alpha)`` when centered; then ``param -= lr * g / denom``, or with momentum
    ``buf = momentum * buf + g / denom`` and ``param -= lr * buf``.
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr=lr, alpha=alpha, eps=eps,
                              weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize)
    g = decayed_grad(xp, param, grad, weight_decay, maximize)
    scratch = xp.empty_like(param)
    square_average_(xp, square_avg, g, alpha, scratch)
    if centered:
        lerp_(xp, grad_avg, g, 1.0 - alpha, scratch)
        avg = xp.multiply(grad_avg, grad_avg, out=scratch)
        xp.subtract(square_avg, avg, out=avg)
        xp.sqrt(avg, out=avg)
    else:
        avg = xp.sqrt(square_avg, out=scratch)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        add_quotient_(xp, momentum_buffer, g, avg, 1.0, avg)
        xp.multiply(momentum_buffer, -lr, out=scratch)
        param += scratch
    else:
        add_quotient_(xp, param, g, avg, -lr, avg)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), optionally centered and with momentum (``torch.optim.RMSprop``).

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the squared-gradient average (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
        maximize: maximize the objective instead of minimizing.
        capturable, foreach, differentiable: accepted for torch compatibility and kept in the groups.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        check_hyperparameter(0.0 <= lr, f"Invalid learning rate: {lr}")
        check_hyperparameter(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_hyperparameter(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        check_hyperparameter(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_hyperparameter(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_float(group["lr"])
            momentum, centered = group["momentum"], group["centered"]
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = new_scalar_state()
                    state["square_avg"] = zeros_state(p)
                    if momentum > 0:
                        state["momentum_buffer"] = zeros_state(p)
                    if centered:
                        state["grad_avg"] = zeros_state(p)
                increment_step(state["step"])
                data = p._data
                _update_rmsprop(array_module(data), data, grad, state["square_avg"]._data,
                                state["grad_avg"]._data if centered else None,
                                state["momentum_buffer"]._data if momentum > 0 else None, lr=lr,
                                alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                                momentum=momentum, centered=centered, maximize=group["maximize"])
                p._version[0] += 1
        return loss
