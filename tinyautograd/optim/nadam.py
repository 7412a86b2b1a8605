"""NAdam, Adam with Nesterov momentum (``torch.optim.NAdam``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from . import _fused
from .optimizer import (Optimizer, adam_moments_, add_quotient_, as_float, check_adam_hyperparameters,
                         check_hyperparameter, increment_step, iter_grads, new_scalar_state, zeros_state)

__all__ = ["NAdam"]


def _momentum_at(beta1: float, step: float, momentum_decay: float) -> float:
    # Dozat's warming momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi))
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def _update_nadam(xp, param, grad, exp_avg, exp_avg_sq, *, step: float, mu: float, mu_next: float,
                  mu_product: float, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                  decoupled_weight_decay: bool, maximize: bool) -> None:
    """One NAdam update in place, given this step's momentum ``mu``, the next one ``mu_next`` and the running
    product ``mu_product`` of all momenta up to this step.

    ``param -= lr (1 - mu) / (1 - prod) * g / denom + lr mu_next / (1 - prod mu_next) * m / denom`` with
    ``denom = sqrt(v / (1 - beta2^t)) + eps``; moments as Adam.
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.nadam(param, grad, exp_avg, exp_avg_sq, step=step, mu=mu, mu_next=mu_next, mu_product=mu_product,
                            lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    g, scratch = adam_moments_(xp, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                               weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                               maximize=maximize)
    bias_correction2 = 1 - beta2 ** step
    denom = xp.divide(exp_avg_sq, bias_correction2, out=xp.empty_like(param))
    xp.sqrt(denom, out=denom)
    denom += eps
    mu_product_next = mu_product * mu_next
    add_quotient_(xp, param, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product), scratch)
    add_quotient_(xp, param, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_product_next), scratch)


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), ``torch.optim.NAdam``.

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the moment averages (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0), decoupled (AdamW style) with ``decoupled_weight_decay=True``.
        momentum_decay: psi of the momentum schedule (default 4e-3).
        foreach, maximize, capturable, differentiable: as torch; ``maximize`` flips the gradient's sign.

    State per parameter: ``step``, ``mu_product`` (0-d, in the counters' dtype), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        check_hyperparameter(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = as_float(group["lr"])
            momentum_decay = group["momentum_decay"]
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = new_scalar_state()
                    state["mu_product"] = new_scalar_state(1.0)
                    state["exp_avg"] = zeros_state(p)
                    state["exp_avg_sq"] = zeros_state(p)
                step = increment_step(state["step"])
                mu = _momentum_at(beta1, step, momentum_decay)
                mu_next = _momentum_at(beta1, step + 1, momentum_decay)
                # the product lives in the counter's dtype (float32 by default), rounded like torch's
                product = state["mu_product"]._data
                product *= mu
                data = p._data
                _update_nadam(array_module(data), data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                              step=step, mu=mu, mu_next=mu_next, mu_product=float(product), lr=lr, beta1=beta1,
                              beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                              decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
                p._version[0] += 1
        return loss
