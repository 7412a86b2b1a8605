"""Every optimizer's update of one parameter as one CUDA elementwise kernel (see ``tinyautograd._kernels``).

Each body repeats its ``_update_<name>`` NumPy formula operation for operation, in the same order and in double
precision, so float64 results are the formula's; float32 parameters are updated in double and rounded once.
The shared prologue: ``p`` the parameter (shrunk by ``shrink = 1 - lr * weight_decay`` under decoupled decay),
``g = sign * grad`` (``sign = -1`` maximizes) plus ``wd * p`` (L2 decay). torch's two-branch lerp and
NaN-propagating maximum are spelled out (no ``fmax``, which drops NaN).
"""
from __future__ import annotations

from .._kernels import Kernel, enabled, supported

__all__ = ["enabled", "supported", "sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam"]

_GRAD = ("double p = param; if (shrink != 1.0) p = p * shrink;\n"
         "double g = sign * (double)grad; if (wd != 0.0) g = p * wd + g;\n")
_GRAD_IN = "T grad, float64 shrink, float64 wd, float64 sign"


def _lerp(start: str, end: str, w: str) -> str:
    # torch's lerp: start + w * (end - start) for |w| < 0.5, else end - (end - start) * (1 - w)
    return f"{start} = fabs({w}) < 0.5 ? {start} + {w} * ({end} - {start}) : {end} - ({end} - {start}) * (1.0 - {w});\n"


def _square_average(avg: str, value: str, decay: str) -> str:
    return f"{avg} = {avg} * {decay} + ({value} * (1.0 - {decay})) * {value};\n"


def _maximum(target: str, other: str) -> str:
    # NaN-propagating max (numpy.maximum / torch.maximum)
    return f"{target} = ({other} != {other} || {other} > {target}) ? {other} : {target};\n"


_SGD = Kernel("sgd", f"{_GRAD_IN}, float64 neg_lr", "T param", _GRAD + "param = p + g * neg_lr;")
_SGD_MOMENTUM = Kernel(
    "sgd_momentum", f"{_GRAD_IN}, float64 neg_lr, float64 momentum, float64 keep, int64 nesterov, int64 first",
    "T param, T buf",
    _GRAD + "double b = buf;\n"
    "if (first) { b = g; } else { b = b * momentum; b = keep == 1.0 ? b + g : b + g * keep; }\n"
    "g = nesterov ? g + b * momentum : b;\n"
    "buf = b; param = p + g * neg_lr;")

_ADAM_MOMENTS = ("double m = exp_avg; double v = exp_avg_sq;\n" + _lerp("m", "g", "w1")
                 + _square_average("v", "g", "beta2"))
_ADAM_IN = f"{_GRAD_IN}, float64 w1, float64 beta2"
_ADAM_TAIL = "double denom = sqrt(vh) / bc2_sqrt + eps;\np = p + (m / denom) * neg_step;\n"
_ADAM = Kernel("adam", f"{_ADAM_IN}, float64 eps, float64 bc2_sqrt, float64 neg_step",
               "T param, T exp_avg, T exp_avg_sq",
               _GRAD + _ADAM_MOMENTS + "double vh = v;\n" + _ADAM_TAIL + "param = p; exp_avg = m; exp_avg_sq = v;")
_ADAM_AMSGRAD = Kernel(
    "adam_amsgrad", f"{_ADAM_IN}, float64 eps, float64 bc2_sqrt, float64 neg_step",
    "T param, T exp_avg, T exp_avg_sq, T max_exp_avg_sq",
    _GRAD + _ADAM_MOMENTS + "double vh = max_exp_avg_sq;\n" + _maximum("vh", "v") + _ADAM_TAIL
    + "param = p; exp_avg = m; exp_avg_sq = v; max_exp_avg_sq = vh;")
_NADAM = Kernel(
    "nadam", f"{_ADAM_IN}, float64 eps, float64 bc2, float64 grad_coef, float64 avg_coef",
    "T param, T exp_avg, T exp_avg_sq",
    _GRAD + _ADAM_MOMENTS + "double denom = sqrt(v / bc2) + eps;\n"
    "p = p + (g / denom) * grad_coef; p = p + (m / denom) * avg_coef;\n"
    "param = p; exp_avg = m; exp_avg_sq = v;")
_RADAM = Kernel(
    "radam", f"{_ADAM_IN}, float64 eps, float64 lr, float64 bc1, float64 bc2_sqrt, float64 rect, int64 rectify",
    "T param, T exp_avg, T exp_avg_sq",
    _GRAD + _ADAM_MOMENTS + "double update = m / bc1; update = update * lr;\n"
    "if (rectify) { double adaptive = sqrt(v) + eps; adaptive = bc2_sqrt / adaptive; update = update * adaptive; "
    "update = update * rect; }\n"
    "param = p - update; exp_avg = m; exp_avg_sq = v;")
_ADAMAX = Kernel(
    "adamax", f"{_GRAD_IN}, float64 w1, float64 beta2, float64 eps, float64 neg_clr", "T param, T exp_avg, T exp_inf",
    _GRAD + "double m = exp_avg; double u = exp_inf;\n" + _lerp("m", "g", "w1")
    + "u = u * beta2; double norm = fabs(g) + eps;\n" + _maximum("u", "norm")
    + "param = p + (m / u) * neg_clr; exp_avg = m; exp_inf = u;")
_ADAGRAD = Kernel(
    "adagrad", f"{_GRAD_IN}, float64 eps, float64 neg_clr", "T param, T state_sum",
    _GRAD + "double s = state_sum; s = s + g * g; double std_ = sqrt(s) + eps;\n"
    "param = p + (g / std_) * neg_clr; state_sum = s;")
_ADADELTA = Kernel(
    "adadelta", f"{_GRAD_IN}, float64 rho, float64 eps, float64 neg_lr", "T param, T square_avg, T acc_delta",
    _GRAD + "double v = square_avg; double u = acc_delta;\n" + _square_average("v", "g", "rho")
    + "double std_ = sqrt(v + eps); double delta = sqrt(u + eps); delta = delta / std_; delta = delta * g;\n"
    + _square_average("u", "delta", "rho")
    + "param = p + delta * neg_lr; square_avg = v; acc_delta = u;")


def _rmsprop_kernel(centered: bool, momentum: bool) -> Kernel:
    outs = "T param, T square_avg" + (", T grad_avg" if centered else "") + (", T buf" if momentum else "")
    body = _GRAD + "double v = square_avg;\n" + _square_average("v", "g", "alpha")
    if centered:
        body += "double ga = grad_avg;\n" + _lerp("ga", "g", "w") + "double avg = sqrt(v - ga * ga);\ngrad_avg = ga;\n"
    else:
        body += "double avg = sqrt(v);\n"
    body += "avg = avg + eps;\n"
    if momentum:
        body += "double b = buf; b = b * momentum; b = b + g / avg; buf = b; p = p + b * neg_lr;\n"
    else:
        body += "p = p + (g / avg) * neg_lr;\n"
    name = "rmsprop" + ("_centered" if centered else "") + ("_momentum" if momentum else "")
    return Kernel(name, f"{_GRAD_IN}, float64 alpha, float64 w, float64 eps, float64 momentum, float64 neg_lr",
                  outs, body + "param = p; square_avg = v;")


_RMSPROP = {(c, m): _rmsprop_kernel(c, m) for c in (False, True) for m in (False, True)}


def _grad_args(lr: float, weight_decay: float, maximize: bool, decoupled: bool = False) -> tuple:
    if decoupled:
        return (1.0 - lr * weight_decay if weight_decay != 0 else 1.0), 0.0, (-1.0 if maximize else 1.0)
    return 1.0, float(weight_decay), (-1.0 if maximize else 1.0)


def sgd(param, grad, buf, *, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step) -> None:
    head = (grad, *_grad_args(lr, weight_decay, maximize), -lr)
    if momentum != 0:
        _SGD_MOMENTUM(*head, float(momentum), 1.0 - dampening, int(nesterov), int(first_step), param, buf)
    else:
        _SGD(*head, param)


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
         maximize, decoupled_weight_decay) -> None:
    args = (grad, *_grad_args(lr, weight_decay, maximize, decoupled_weight_decay), 1.0 - beta1, float(beta2),
            float(eps), (1 - beta2 ** step) ** 0.5, -(lr / (1 - beta1 ** step)))
    if amsgrad:
        _ADAM_AMSGRAD(*args, param, exp_avg, exp_avg_sq, max_exp_avg_sq)
    else:
        _ADAM(*args, param, exp_avg, exp_avg_sq)


def nadam(param, grad, exp_avg, exp_avg_sq, *, step, mu, mu_next, mu_product, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, maximize) -> None:
    grad_coef = -lr * (1.0 - mu) / (1.0 - mu_product)
    avg_coef = (-lr * mu_next) / (1.0 - mu_product * mu_next)
    _NADAM(grad, *_grad_args(lr, weight_decay, maximize, decoupled_weight_decay), 1.0 - beta1, float(beta2),
           float(eps), 1 - beta2 ** step, grad_coef, avg_coef, param, exp_avg, exp_avg_sq)


def radam(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
          maximize) -> None:
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    rectify = rho_t > 5.0
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5 if rectify else 1.0
    _RADAM(grad, *_grad_args(lr, weight_decay, maximize, decoupled_weight_decay), 1.0 - beta1, float(beta2),
           float(eps), float(lr), 1 - beta1 ** step, bias_correction2 ** 0.5, rect, int(rectify),
           param, exp_avg, exp_avg_sq)


def adamax(param, grad, exp_avg, exp_inf, *, step, lr, beta1, beta2, eps, weight_decay, maximize) -> None:
    _ADAMAX(grad, *_grad_args(lr, weight_decay, maximize), 1.0 - beta1, float(beta2), float(eps),
            -(lr / (1 - beta1 ** step)), param, exp_avg, exp_inf)


def adagrad(param, grad, state_sum, *, step, lr, lr_decay, weight_decay, eps, maximize) -> None:
    _ADAGRAD(grad, *_grad_args(lr, weight_decay, maximize), float(eps), -(lr / (1 + (step - 1) * lr_decay)),
             param, state_sum)


def adadelta(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize) -> None:
    _ADADELTA(grad, *_grad_args(lr, weight_decay, maximize), float(rho), float(eps), -lr, param, square_avg,
              acc_delta)


def rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, centered,
            maximize) -> None:
    kernel = _RMSPROP[(bool(centered), momentum > 0)]
    args = [grad, *_grad_args(lr, weight_decay, maximize), float(alpha), 1.0 - alpha, float(eps), float(momentum),
            -lr, param, square_avg]
    if centered:
        args.append(grad_avg)
    if momentum > 0:
        args.append(momentum_buffer)
    kernel(*args)
