"""RAdam, rectified Adam (``torch.optim.RAdam``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from . import _fused
from .optimizer import (Optimizer, adam_moments_, as_float, check_adam_hyperparameters, increment_step, iter_grads,
                         new_scalar_state, zeros_state)

__all__ = ["RAdam"]


def _update_radam(xp, param, grad, exp_avg, exp_avg_sq, *, step: float, lr: float, beta1: float, beta2: float,
                  eps: float, weight_decay: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """One RAdam update in place. Moments as Adam; with ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``, the step is ``lr * m_hat * r_t * sqrt(1 - beta2^t) /
    (sqrt(v) + eps)`` when ``rho_t > 5`` (``r_t`` the variance rectification term), else plain momentum
    ``lr * m_hat``, where ``m_hat = m / (1 - beta1^t)``.
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.radam(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    g, scratch = adam_moments_(xp, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                               weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                               maximize=maximize)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    update = xp.divide(exp_avg, bias_correction1, out=xp.empty_like(param))
    update *= lr
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive = xp.sqrt(exp_avg_sq, out=scratch)
        adaptive += eps
        xp.divide(bias_correction2 ** 0.5, adaptive, out=adaptive)
        update *= adaptive
        update *= rect
    param -= update


class RAdam(Optimizer):
    """RAdam (Liu et al., 2019), ``torch.optim.RAdam``.

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the moment averages (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0), decoupled (AdamW style) with ``decoupled_weight_decay=True``.
        foreach, maximize, capturable, differentiable: as torch; ``maximize`` flips the gradient's sign.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False) -> None:
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay, "differentiable": differentiable}
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
                    state["exp_avg_sq"] = zeros_state(p)
                step = increment_step(state["step"])
                data = p._data
                _update_radam(array_module(data), data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                              step=step, lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
                              weight_decay=group["weight_decay"],
                              decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
                p._version[0] += 1
        return loss
