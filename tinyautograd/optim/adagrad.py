"""Adagrad (``torch.optim.Adagrad``)."""
from __future__ import annotations

from typing import Any, Callable

from ..backend import array_module
from ..creation import full_like
from . import _fused
from .optimizer import (Optimizer, add_quotient_, as_float, check_hyperparameter, decayed_grad, increment_step,
                        iter_grads, new_scalar_state)

__all__ = ["Adagrad"]


def _update_adagrad(xp, param, grad, state_sum, *, step: float, lr: float, lr_decay: float, weight_decay: float,
                    eps: float, maximize: bool) -> None:
    """One Adagrad update in place: ``sum += g^2``, ``param -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)``.
    """
    if _fused.enabled(xp) and _fused.supported(param, grad):
        return _fused.adagrad(param, grad, state_sum, step=step, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                              eps=eps, maximize=maximize)
    g = decayed_grad(xp, param, grad, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    scratch = xp.multiply(g, g, out=xp.empty_like(param))
    state_sum += scratch
    std = xp.sqrt(state_sum, out=scratch)
    std += eps
    add_quotient_(xp, param, g, std, -clr, std)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), ``torch.optim.Adagrad``.

    Args:
        params: tensors or param group dicts to optimize.
        lr: learning rate (default 1e-2).
        lr_decay: the step size is ``lr / (1 + (step - 1) * lr_decay)`` (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        initial_accumulator_value: starting value of the squared-gradient sum (default 0).
        eps: added to the denominator (default 1e-10).
        foreach, maximize, differentiable, fused: as torch; ``maximize`` flips the gradient's sign.

    State per parameter (created at construction, as torch): ``step``, ``sum``.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        check_hyperparameter(0.0 <= lr, f"Invalid learning rate: {lr}")
        check_hyperparameter(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        check_hyperparameter(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_hyperparameter(0.0 <= initial_accumulator_value,
                             f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        check_hyperparameter(0.0 <= eps, f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p) -> None:
        # torch fills the sum from the constructor's value, even for groups that set their own
        state = self.state[p]
        state["step"] = new_scalar_state()
        state["sum"] = full_like(p, self.defaults["initial_accumulator_value"])

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss (or None)."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_float(group["lr"])
            for p, grad in iter_grads(group):
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(p)
                step = increment_step(state["step"])
                data = p._data
                _update_adagrad(array_module(data), data, grad, state["sum"]._data, step=step, lr=lr,
                                lr_decay=group["lr_decay"], weight_decay=group["weight_decay"], eps=group["eps"],
                                maximize=group["maximize"])
                p._version[0] += 1
        return loss
