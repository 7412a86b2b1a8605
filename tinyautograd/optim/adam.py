"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from ..tensor import Tensor
from . import _fused
from .optimizer import (Optimizer, adam_moments_, add_quotient_, as_float, check_adam_hyperparameters, increment_step,
                         iter_grads, new_scalar_state, zeros_state)

__all__ = ["Adam", "AdamW"]


def _update_adam(xp, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step: float, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
                 decoupled_weight_decay: bool) -> None:
    """One Adam(W) update of ``param`` and its moments in place, ``step`` being the count after this update.

    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2`` (``v_max = max(v_max, v)`` with amsgrad),
    ``param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``. Weight decay is added to ``g``
    (Adam) or applied as ``param *= 1 - lr * weight_decay`` first (decoupled, AdamW).
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step=step, lr=lr, beta1=beta1, beta2=beta2,
                           eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                           decoupled_weight_decay=decoupled_weight_decay)
    g, scratch = adam_moments_(xp, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                               weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                               maximize=maximize)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    second = exp_avg_sq
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    denom = xp.sqrt(second, out=scratch)
    denom /= bias_correction2_sqrt
    denom += eps
    add_quotient_(xp, param, exp_avg, denom, -(lr / bias_correction1), denom)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), optionally AMSGrad and decoupled weight decay (``torch.optim.Adam``).

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment averages (default (0.9, 0.999)); both floats
            (or both 1-element tensors).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0), or decoupled with
            ``decoupled_weight_decay=True`` (then identical to AdamW).
        amsgrad: normalise by the running maximum of the second moment.
        maximize: maximize the objective instead of minimizing.
        foreach, capturable, differentiable, fused: accepted for torch compatibility and kept in the groups.

    State per parameter: ``step`` (0-d counter tensor), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = as_float(group["lr"])
            amsgrad = group["amsgrad"]
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = new_scalar_state()
                    state["exp_avg"] = zeros_state(p)
                    state["exp_avg_sq"] = zeros_state(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = zeros_state(p)
                step = increment_step(state["step"])
                data = p._data
                _update_adam(array_module(data), data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                             state["max_exp_avg_sq"]._data if amsgrad else None, step=step, lr=lr,
                             beta1=as_float(beta1), beta2=as_float(beta2), eps=group["eps"],
                             weight_decay=group["weight_decay"], amsgrad=amsgrad, maximize=group["maximize"],
                             decoupled_weight_decay=group["decoupled_weight_decay"])
                p._version[0] += 1
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2017), ``torch.optim.AdamW``.

    Same arguments as ``Adam`` except ``weight_decay`` (default 1e-2) always shrinks the parameter directly,
    ``param *= 1 - lr * weight_decay``, instead of entering the moment averages.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _after_load_state_dict(self) -> None:
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
