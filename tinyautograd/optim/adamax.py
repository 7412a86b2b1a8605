"""Adamax, Adam with an infinity norm (``torch.optim.Adamax``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from . import _fused
from .optimizer import (Optimizer, add_quotient_, as_float, check_adam_hyperparameters, decayed_grad, increment_step,
                         iter_grads, lerp_, new_scalar_state, zeros_state)

__all__ = ["Adamax"]


def _update_adamax(xp, param, grad, exp_avg, exp_inf, *, step: float, lr: float, beta1: float, beta2: float,
                   eps: float, weight_decay: float, maximize: bool) -> None:
    """One Adamax update in place: ``m = lerp(m, g, 1 - beta1)``, ``u = max(beta2 u, |g| + eps)``,
    ``param -= lr / (1 - beta1^t) * m / u``."""
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.adamax(param, grad, exp_avg, exp_inf, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                             weight_decay=weight_decay, maximize=maximize)
    g = decayed_grad(xp, param, grad, weight_decay, maximize)
    scratch = xp.empty_like(param)
    lerp_(xp, exp_avg, g, 1.0 - beta1, scratch)
    exp_inf *= beta2
    norm = xp.abs(g, out=scratch)
    norm += eps
    xp.maximum(exp_inf, norm, out=exp_inf)
    clr = lr / (1 - beta1 ** step)
    add_quotient_(xp, param, exp_avg, exp_inf, -clr, scratch)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2014, section 7), ``torch.optim.Adamax``.

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the first moment and of the infinity norm (default (0.9, 0.999)).
        eps: floor added to ``|g|`` (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        foreach, maximize, differentiable, capturable: as torch; ``maximize`` flips the gradient's sign.

    State per parameter: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = as_float(group["lr"])
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = new_scalar_state()
                    state["exp_avg"] = zeros_state(p)
                    state["exp_inf"] = zeros_state(p)
                step = increment_step(state["step"])
                data = p._data
                _update_adamax(array_module(data), data, grad, state["exp_avg"]._data, state["exp_inf"]._data,
                               step=step, lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
                               weight_decay=group["weight_decay"], maximize=group["maximize"])
                p._version[0] += 1
        return loss
