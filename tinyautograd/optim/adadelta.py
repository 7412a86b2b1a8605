"""Adadelta (``torch.optim.Adadelta``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from . import _fused
from .optimizer import (Optimizer, as_float, check_hyperparameter, decayed_grad, increment_step, iter_grads,
                        new_scalar_state, square_average_, zeros_state)

__all__ = ["Adadelta"]


def _update_adadelta(xp, param, grad, square_avg, acc_delta, *, lr: float, rho: float, eps: float,
                     weight_decay: float, maximize: bool) -> None:
    """One Adadelta update in place: ``v = rho v + (1 - rho) g^2``,
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho u + (1 - rho) delta^2``, ``param -= lr * delta``."""
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.adadelta(param, grad, square_avg, acc_delta, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                               maximize=maximize)
    g = decayed_grad(xp, param, grad, weight_decay, maximize)
    scratch = xp.empty_like(param)
    square_average_(xp, square_avg, g, rho, scratch)
    std = xp.add(square_avg, eps, out=scratch)
    xp.sqrt(std, out=std)
    delta = xp.add(acc_delta, eps, out=xp.empty_like(param))
    xp.sqrt(delta, out=delta)
    delta /= std
    delta *= g
    square_average_(xp, acc_delta, delta, rho, scratch)
    delta *= -lr
    param += delta


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), ``torch.optim.Adadelta``.

    Args:
        params: tensors or param group dicts to optimize.
        lr: scale applied to the computed update (default 1.0).
        rho: decay rate of the running averages (default 0.9).
        eps: added inside the square roots (default 1e-6).
        weight_decay: L2 penalty added to the gradient (default 0).
        foreach, capturable, maximize, differentiable: as torch; ``maximize`` flips the gradient's sign.

    State per parameter: ``step``, ``square_avg``, ``acc_delta``.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        check_hyperparameter(0.0 <= lr, f"Invalid learning rate: {lr}")
        check_hyperparameter(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        check_hyperparameter(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_hyperparameter(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_float(group["lr"])
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = new_scalar_state()
                    state["square_avg"] = zeros_state(p)
                    state["acc_delta"] = zeros_state(p)
                increment_step(state["step"])
                data = p._data
                _update_adadelta(array_module(data), data, grad, state["square_avg"]._data,
                                 state["acc_delta"]._data, lr=lr, rho=group["rho"], eps=group["eps"],
                                 weight_decay=group["weight_decay"], maximize=group["maximize"])
                p._version[0] += 1
        return loss
