"""tinyautograd.optim against torch.optim and against the update rules written out in NumPy.

Every optimizer runs many steps on several parameters in two param groups, fed identical gradients drawn with
NumPy, with Hypothesis-drawn hyperparameters covering every flag; parameters and every state entry must match
torch's in float64 to rtol 1e-10. SGD, Adam and AdamW are also checked against plain NumPy formulas so the suite
does not rest on torch alone. Then: state_dict layout and round trips (no aliasing, dtype casts, torch's state
through NumPy), torch's argument validation and messages, zero_grad, closures, hooks, add_param_group.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tinyautograd
from tinyautograd import optim
from helpers import ours_tensor, shares_memory, to_numpy, torch_device, torch_tensor

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"]
SHAPES = [(3, 4), (5,), (), (2, 1, 3)]
STEPS = 25
RTOL, ATOL = 1e-10, 1e-12
# function-scoped `device` fixture with @given: the fixture's value does not change between examples
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                      deadline=None)

LR = st.floats(1e-4, 0.5)
DECAY = st.one_of(st.just(0.0), st.floats(1e-4, 0.2))
EPS = st.sampled_from([1e-8, 1e-6, 1e-3])
# beta1 below and above 0.5 takes both branches of torch's lerp
BETAS = st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999))


@st.composite
def sgd_kwargs(draw):
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0.0, 0.99))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 0.9))
    return dict(lr=draw(LR), momentum=momentum, dampening=dampening, weight_decay=draw(DECAY), nesterov=nesterov,
                maximize=draw(st.booleans()))


@st.composite
def adam_kwargs(draw):
    return dict(lr=draw(LR), betas=draw(BETAS), eps=draw(EPS), weight_decay=draw(DECAY), amsgrad=draw(st.booleans()),
                maximize=draw(st.booleans()))


@st.composite
def rmsprop_kwargs(draw):
    # alpha near 0 would make the centered variance a difference of equal numbers (sqrt of +-1 ulp)
    return dict(lr=draw(st.floats(1e-4, 0.05)), alpha=draw(st.floats(0.5, 0.999)), eps=draw(EPS),
                weight_decay=draw(DECAY), momentum=draw(st.sampled_from([0.0, 0.9]) | st.floats(0.0, 0.99)),
                centered=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def adagrad_kwargs(draw):
    return dict(lr=draw(LR), lr_decay=draw(DECAY), weight_decay=draw(DECAY),
                initial_accumulator_value=draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 1.0)),
                eps=draw(st.sampled_from([1e-10, 1e-6])), maximize=draw(st.booleans()))


@st.composite
def adadelta_kwargs(draw):
    return dict(lr=draw(st.floats(1e-2, 1.0)), rho=draw(st.floats(0.5, 0.99)), eps=draw(EPS),
                weight_decay=draw(DECAY), maximize=draw(st.booleans()))


@st.composite
def adamax_kwargs(draw):
    return dict(lr=draw(LR), betas=draw(BETAS), eps=draw(EPS), weight_decay=draw(DECAY), maximize=draw(st.booleans()))


@st.composite
def nadam_kwargs(draw):
    return dict(lr=draw(LR), betas=draw(BETAS), eps=draw(EPS), weight_decay=draw(DECAY),
                momentum_decay=draw(st.sampled_from([4e-3, 0.0]) | st.floats(0.0, 0.1)),
                decoupled_weight_decay=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def radam_kwargs(draw):
    return dict(lr=draw(LR), betas=draw(BETAS), eps=draw(EPS), weight_decay=draw(DECAY),
                decoupled_weight_decay=draw(st.booleans()), maximize=draw(st.booleans()))


KWARGS = {"SGD": sgd_kwargs(), "Adam": adam_kwargs(), "AdamW": adam_kwargs(), "RMSprop": rmsprop_kwargs(),
          "Adagrad": adagrad_kwargs(), "Adadelta": adadelta_kwargs(), "Adamax": adamax_kwargs(),
          "NAdam": nadam_kwargs(), "RAdam": radam_kwargs()}


def make_pair(name: str, kwargs: dict, group_overrides: dict, values: list[np.ndarray], device: str = "cpu"):
    """The same optimizer in both libraries over copies of ``values``: parameters 0-1 in a group with
    ``kwargs``, 2-3 in a second group that overrides some hyperparameters."""
    ours = [ours_tensor(v, device, requires_grad=True) for v in values]
    theirs = [torch_tensor(v, device, requires_grad=True) for v in values]
    half = len(values) // 2

    def groups(params):
        return [{"params": params[:half]}, {"params": params[half:], **group_overrides}]

    return (ours, getattr(optim, name)(groups(ours), **kwargs),
            theirs, getattr(torch.optim, name)(groups(theirs), **kwargs))


def feed_grads(rng: np.random.Generator, step: int, ours, theirs, device: str) -> None:
    """Identical fresh gradients for both; the last parameter gets none every third step (it must be skipped)."""
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if i == len(ours) - 1 and step % 3 == 2:
            p.grad, q.grad = None, None
            continue
        g = (rng.standard_normal(p.shape) * rng.choice([0.01, 1.0, 10.0])).astype(to_numpy(p).dtype)
        p.grad = ours_tensor(g, device)
        q.grad = torch_tensor(g, device)


def assert_state_equal(opt_ours, ours, opt_theirs, theirs, rtol=RTOL, atol=ATOL) -> None:
    for i, (p, q) in enumerate(zip(ours, theirs)):
        mine, ref = opt_ours.state.get(p, {}), opt_theirs.state.get(q, {})
        assert sorted(mine) == sorted(ref), f"param {i}: state keys {sorted(mine)} != torch's {sorted(ref)}"
        for key, value in ref.items():
            if isinstance(value, torch.Tensor):
                assert isinstance(mine[key], tinyautograd.Tensor), f"param {i}: state[{key!r}] is not a Tensor"
                assert mine[key].dtype.name == str(value.dtype).removeprefix("torch."), f"state[{key!r}] dtype"
                # torch keeps the step counters on the cpu and the moments with the parameter
                want = str(value.device) if torch_device("cuda") == "cuda" else \
                    ("cpu" if key in ("step", "mu_product") else str(p.device))
                assert str(mine[key].device) == want, f"state[{key!r}] device"
                np.testing.assert_allclose(to_numpy(mine[key]), to_numpy(value), rtol=rtol, atol=atol,
                                           err_msg=f"param {i}: state[{key!r}]")
            else:
                assert mine[key] == value


@pytest.mark.parametrize("name", NAMES)
@FIXTURE_OK
@given(data=st.data())
def test_optimizer_matches_torch_over_many_steps(device, name, data):
    kwargs = data.draw(KWARGS[name], label="kwargs")
    overrides = {"lr": data.draw(LR, label="group 1 lr"), "weight_decay": data.draw(DECAY, label="group 1 decay")}
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    values = [rng.standard_normal(s) for s in SHAPES]
    ours, opt, theirs, ref = make_pair(name, kwargs, overrides, values, device)
    for step in range(STEPS):
        feed_grads(rng, step, ours, theirs, device)
        opt.step()
        ref.step()
        for i, (p, q) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(to_numpy(p), to_numpy(q), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} {kwargs}: param {i} after step {step + 1}")
    assert_state_equal(opt, ours, ref, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_float32_parameters_keep_float32_state_and_track_torch(device, name):
    rng = np.random.default_rng(5)
    values = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours, opt, theirs, ref = make_pair(name, {"lr": 0.01, "weight_decay": 0.01}, {"lr": 0.02}, values, device)
    for step in range(10):
        feed_grads(rng, step, ours, theirs, device)
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs):
        assert p.dtype == tinyautograd.float32
        np.testing.assert_allclose(to_numpy(p), to_numpy(q), rtol=1e-5, atol=1e-6)
    assert_state_equal(opt, ours, ref, theirs, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ NumPy reference formulas

def numpy_sgd(params, grads_per_step, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD as written in torch's documentation, in plain NumPy."""
    params = [p.copy() for p in params]
    bufs = [None] * len(params)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = -g if maximize else g
            g = g + weight_decay * params[i]
            if momentum != 0:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * g
    return params


def numpy_adam(params, grads_per_step, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    """Adam (Kingma & Ba, algorithm 1) with L2 or decoupled (Loshchilov & Hutter) weight decay and AMSGrad."""
    beta1, beta2 = betas
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    v_max = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            g = -g if maximize else g
            if decoupled:
                params[i] = params[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * params[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1 ** t)
            v_max[i] = np.maximum(v_max[i], v[i])
            v_hat = (v_max[i] if amsgrad else v[i]) / (1 - beta2 ** t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def run_ours(name, kwargs, values, grads_per_step):
    params = [tinyautograd.tensor(v.copy(), requires_grad=True) for v in values]
    opt = getattr(optim, name)(params, **kwargs)
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = tinyautograd.tensor(g.copy())
        opt.step()
    return [p.detach().cpu().numpy() for p in params]


@settings(deadline=None)
@given(kwargs=sgd_kwargs(), seed=st.integers(0, 2 ** 32 - 1))
def test_sgd_matches_numpy_formula(kwargs, seed):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    expected = numpy_sgd(values, grads, **kwargs)
    for got, want in zip(run_ours("SGD", kwargs, values, grads), expected):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@settings(deadline=None)
@given(kwargs=adam_kwargs(), seed=st.integers(0, 2 ** 32 - 1))
def test_adam_and_adamw_match_numpy_formula(name, kwargs, seed):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    expected = numpy_adam(values, grads, decoupled=name == "AdamW", **kwargs)
    for got, want in zip(run_ours(name, kwargs, values, grads), expected):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_adamw_default_weight_decay_is_decoupled_and_nonzero():
    p = tinyautograd.tensor([1.0, -2.0], dtype=tinyautograd.float64, requires_grad=True)
    opt = optim.AdamW([p])
    assert opt.defaults["weight_decay"] == 1e-2 and opt.param_groups[0]["decoupled_weight_decay"] is True
    p.grad = tinyautograd.zeros(2, dtype=tinyautograd.float64)
    opt.step()
    # a zero gradient leaves only the decay: p * (1 - lr * wd)
    np.testing.assert_allclose(p.detach().cpu().numpy(), np.array([1.0, -2.0]) * (1 - 1e-3 * 1e-2), rtol=1e-15)


# ------------------------------------------------------------------------------ state_dict

def draw_run(data, name):
    kwargs = data.draw(KWARGS[name], label="kwargs")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    values = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(12)]
    return kwargs, values, grads


def new_ours(name, kwargs, values):
    params = [tinyautograd.tensor(v.copy(), requires_grad=True) for v in values]
    return params, getattr(optim, name)([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}], **kwargs)


def run_steps(params, opt, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = tinyautograd.tensor(g.copy())
        opt.step()


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None)
@given(data=st.data())
def test_state_dict_round_trip_continues_exactly_without_aliasing(name, data):
    kwargs, values, grads = draw_run(data, name)
    k = data.draw(st.integers(1, len(grads) - 1), label="k")
    # torch's load casts NAdam's mu_product (kept in the float32 counter dtype while training) to the float64
    # parameter dtype, so a resumed run is exact only when the counters are float64 from the start
    with default_dtype(tinyautograd.float64 if name == "NAdam" else tinyautograd.float32):
        check_round_trip(name, kwargs, values, grads, k)


@contextlib.contextmanager
def default_dtype(dtype):
    previous = tinyautograd.get_default_dtype()
    tinyautograd.set_default_dtype(dtype)
    try:
        yield
    finally:
        tinyautograd.set_default_dtype(previous)


def check_round_trip(name, kwargs, values, grads, k):
    params, opt = new_ours(name, kwargs, values)
    run_steps(params, opt, grads)

    first, opt1 = new_ours(name, kwargs, values)
    run_steps(first, opt1, grads[:k])
    saved = opt1.state_dict()
    copies, opt2 = new_ours(name, kwargs, [p.detach().cpu().numpy() for p in first])
    opt2.load_state_dict(saved)
    for p, q in zip(first, copies):
        for key, value in opt1.state[p].items():
            if isinstance(value, tinyautograd.Tensor):
                loaded = opt2.state[q][key]
                assert loaded is not value and not shares_memory(loaded, value), f"state[{key!r}] aliases"
                np.testing.assert_array_equal(loaded.cpu().numpy(), value.cpu().numpy())
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt2.param_groups] == \
        [{k: v for k, v in g.items() if k != "params"} for g in opt1.param_groups]
    # the source keeps training: the loaded optimizer must not see it
    run_steps(first, opt1, grads[k:])
    run_steps(copies, opt2, grads[k:])
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(q.detach().cpu().numpy(), p.detach().cpu().numpy())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout_equals_torch(name):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s) for s in SHAPES]
    ours, opt, theirs, ref = make_pair(name, {}, {"lr": 0.05}, values)
    for step in range(3):
        feed_grads(rng, step, ours, theirs, "cpu")
        opt.step()
        ref.step()
    mine, expected = opt.state_dict(), ref.state_dict()
    assert mine["param_groups"] == expected["param_groups"]
    assert sorted(mine["state"]) == sorted(expected["state"])
    for index, entry in expected["state"].items():
        assert sorted(mine["state"][index]) == sorted(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(to_numpy(mine["state"][index][key]), value.cpu().numpy(), rtol=RTOL, atol=ATOL)
            assert mine["state"][index][key].dtype.name == str(value.dtype).removeprefix("torch.")
    assert repr(opt) == repr(ref)


@pytest.mark.parametrize("name", NAMES)
def test_torch_state_dict_loads_through_numpy_and_continues_like_torch(name):
    rng = np.random.default_rng(1)
    values = [rng.standard_normal(s) for s in SHAPES]
    ours, opt, theirs, ref = make_pair(name, {}, {"lr": 0.05}, values)
    for step in range(4):
        feed_grads(rng, step, ours, theirs, "cpu")
        ref.step()
    sd = ref.state_dict()
    converted = {"state": {i: {k: v.cpu().numpy().copy() for k, v in s.items()} for i, s in sd["state"].items()},
                 "param_groups": sd["param_groups"]}
    with tinyautograd.no_grad():
        for p, q in zip(ours, theirs):
            p.copy_(tinyautograd.tensor(q.detach().cpu().numpy()))
    opt.load_state_dict(converted)
    # torch loads its own state_dict the same way (its load casts, e.g., NAdam's mu_product to the param dtype)
    fresh = [torch.tensor(q.detach().cpu().numpy(), requires_grad=True) for q in theirs]
    ref = getattr(torch.optim, name)([{"params": fresh[:2]}, {"params": fresh[2:], "lr": 0.05}])
    ref.load_state_dict(sd)
    theirs = fresh
    for step in range(4, 10):
        feed_grads(rng, step, ours, theirs, "cpu")
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(to_numpy(p), to_numpy(q), rtol=RTOL, atol=ATOL)
    assert_state_equal(opt, ours, ref, theirs)


def test_load_state_dict_casts_state_to_the_parameter_dtype_but_keeps_step():
    p64 = tinyautograd.tensor([1.0, 2.0], dtype=tinyautograd.float64, requires_grad=True)
    opt = optim.Adam([p64])
    p64.grad = tinyautograd.tensor([0.5, -0.5], dtype=tinyautograd.float64)
    opt.step()
    p32 = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    opt32 = optim.Adam([p32])
    opt32.load_state_dict(opt.state_dict())
    state = opt32.state[p32]
    assert state["exp_avg"].dtype == tinyautograd.float32 and state["exp_avg_sq"].dtype == tinyautograd.float32
    assert isinstance(state["step"], tinyautograd.Tensor) and state["step"].dtype == tinyautograd.float32
    assert state["step"].item() == 1.0


def test_load_state_dict_turns_plain_number_step_into_tensor():
    p = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p])
    p.grad = tinyautograd.tensor([0.5, -0.5])
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = 1
    q = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    opt2 = optim.Adam([q])
    opt2.load_state_dict(sd)
    assert isinstance(opt2.state[q]["step"], tinyautograd.Tensor) and opt2.state[q]["step"].item() == 1.0


def test_load_state_dict_rejects_mismatched_groups_as_torch():
    p, q = (tinyautograd.tensor([1.0], requires_grad=True) for _ in range(2))
    opt = optim.SGD([p, q], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1).state_dict())
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(optim.SGD([p], lr=0.1).state_dict())


def test_adamw_load_keeps_decoupled_weight_decay():
    p = tinyautograd.tensor([1.0], requires_grad=True)
    sd = optim.Adam([p]).state_dict()
    opt = optim.AdamW([tinyautograd.tensor([1.0], requires_grad=True)])
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


# ------------------------------------------------------------------------------ validation as torch

INVALID = [
    ("SGD", dict(lr=-0.1)), ("SGD", dict(momentum=-0.5)), ("SGD", dict(weight_decay=-1.0)),
    ("SGD", dict(nesterov=True)), ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1)),
    ("Adam", dict(lr=-1e-3)), ("Adam", dict(eps=-1.0)), ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, 1.0))), ("Adam", dict(betas=(-0.1, 0.999))), ("Adam", dict(weight_decay=-0.1)),
    ("Adam", dict(betas=(0, 0.999))), ("AdamW", dict(lr=-1.0)), ("AdamW", dict(weight_decay=-1e-2)),
    ("AdamW", dict(betas=(0.9, 1.5))),
    ("RMSprop", dict(lr=-1.0)), ("RMSprop", dict(eps=-1.0)), ("RMSprop", dict(momentum=-1.0)),
    ("RMSprop", dict(weight_decay=-1.0)), ("RMSprop", dict(alpha=-0.1)),
    ("Adagrad", dict(lr=-1.0)), ("Adagrad", dict(lr_decay=-1.0)), ("Adagrad", dict(weight_decay=-1.0)),
    ("Adagrad", dict(initial_accumulator_value=-1.0)), ("Adagrad", dict(eps=-1.0)),
    ("Adadelta", dict(lr=-1.0)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(rho=-0.5)),
    ("Adadelta", dict(eps=-1.0)), ("Adadelta", dict(weight_decay=-1.0)),
    ("Adamax", dict(lr=-1.0)), ("Adamax", dict(eps=-1.0)), ("Adamax", dict(betas=(1.0, 0.9))),
    ("Adamax", dict(betas=(0.9, 1.0))), ("Adamax", dict(weight_decay=-1.0)),
    ("NAdam", dict(lr=-1.0)), ("NAdam", dict(eps=-1.0)), ("NAdam", dict(betas=(1.0, 0.9))),
    ("NAdam", dict(betas=(0.9, 1.0))), ("NAdam", dict(weight_decay=-1.0)), ("NAdam", dict(momentum_decay=-1.0)),
    ("RAdam", dict(lr=-1.0)), ("RAdam", dict(eps=-1.0)), ("RAdam", dict(betas=(1.0, 0.9))),
    ("RAdam", dict(betas=(0.9, 1.0))), ("RAdam", dict(weight_decay=-1.0)),
]


def raised(fn) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name,kwargs", INVALID, ids=[f"{n}-{sorted(k)}" for n, k in INVALID])
def test_invalid_hyperparameters_raise_torch_error(name, kwargs):
    ours = raised(lambda: getattr(optim, name)([tinyautograd.tensor([1.0], requires_grad=True)], **kwargs))
    theirs = raised(lambda: getattr(torch.optim, name)([torch.tensor([1.0], requires_grad=True)], **kwargs))
    assert ours == theirs


def _params_cases(lib):
    p = lib.tensor([1.0, 2.0], requires_grad=True)
    return {
        "empty": lambda: lib.optim.SGD([]),
        "bare tensor": lambda: lib.optim.SGD(p),
        "non-leaf": lambda: lib.optim.SGD([p * 2]),
        "not a tensor": lambda: lib.optim.SGD([1.0]),
        "duplicate across groups": lambda: lib.optim.SGD([{"params": [p]}, {"params": [p]}]),
        "set in a group": lambda: lib.optim.SGD([{"params": {p}}]),
        "group not a dict": lambda: lib.optim.SGD([p]).add_param_group([p]),
        "names for some params only": lambda: lib.optim.SGD([("a", p), lib.tensor([1.0], requires_grad=True)]),
    }


@pytest.mark.parametrize("case", list(_params_cases(torch)))
def test_bad_parameter_lists_raise_torch_error(case):
    ours_type, ours_msg = raised(_params_cases(tinyautograd)[case])
    theirs_type, theirs_msg = raised(_params_cases(torch)[case])
    assert ours_type is theirs_type
    assert ours_msg == theirs_msg.replace("torch.", "tinyautograd.")


def test_duplicate_parameters_within_a_group_warn_as_torch():
    p = tinyautograd.tensor([1.0], requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p])


def test_differentiable_true_is_refused_with_an_explanation():
    with pytest.raises(RuntimeError, match="differentiable=True is not supported"):
        optim.Adam([tinyautograd.tensor([1.0], requires_grad=True)], differentiable=True)


# ------------------------------------------------------------------------------ behaviour

def test_param_groups_hold_torch_keys_and_defaults():
    for name in NAMES:
        ours = getattr(optim, name)([tinyautograd.tensor([1.0], requires_grad=True)])
        theirs = getattr(torch.optim, name)([torch.tensor([1.0], requires_grad=True)])
        mine = {k: v for k, v in ours.param_groups[0].items() if k != "params"}
        expected = {k: v for k, v in theirs.param_groups[0].items() if k != "params"}
        assert mine == expected, name
        assert ours.defaults == theirs.defaults, name


def test_named_parameters_record_param_names_as_torch():
    p, q = tinyautograd.tensor([1.0], requires_grad=True), tinyautograd.tensor([2.0], requires_grad=True)
    opt = optim.SGD([("w", p), ("b", q)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_zero_grad_sets_none_or_zeros():
    p = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad.tolist() == [0.0, 0.0] and not p.grad.requires_grad
    opt.zero_grad()
    assert p.grad is None


def test_parameter_without_grad_is_skipped_and_gets_no_state():
    p, q = tinyautograd.tensor([1.0], requires_grad=True), tinyautograd.tensor([2.0], requires_grad=True)
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = tinyautograd.tensor([1.0])
    opt.step()
    assert q.tolist() == [2.0] and q not in opt.state and p.tolist() != [1.0]


def test_closure_is_evaluated_with_grad_enabled_and_its_loss_returned():
    values = np.array([1.5, -0.5, 2.0])
    p = tinyautograd.tensor(values.copy(), requires_grad=True)
    q = torch.tensor(values.copy(), requires_grad=True)
    opt, ref = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([q], lr=0.1, momentum=0.9)

    def closure_for(param, optimizer):
        def closure():
            optimizer.zero_grad()
            loss = (param * param * param).sum()
            loss.backward()
            return loss
        return closure

    for _ in range(5):
        with tinyautograd.no_grad():
            loss = opt.step(closure_for(p, opt))
        with torch.no_grad():
            expected = ref.step(closure_for(q, ref))
        assert isinstance(loss, tinyautograd.Tensor)
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().cpu().numpy(), rtol=1e-12)
    assert optim.SGD([p]).step() is None


def test_step_hooks_run_around_step_and_can_be_removed():
    p = tinyautograd.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o is opt, p.tolist())))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o is opt, p.tolist())))
    p.grad = tinyautograd.tensor([1.0])
    opt.step()
    assert calls == [("pre", True, [1.0]), ("post", True, [0.5])]
    pre.remove()
    post.remove()
    opt.step()
    assert len(calls) == 2


def test_step_pre_hook_can_replace_the_arguments():
    p = tinyautograd.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": lambda: "from hook"}))
    p.grad = tinyautograd.tensor([1.0])
    assert opt.step() == "from hook"


def test_subclass_calling_parent_step_runs_hooks_once():
    class CountingSGD(optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    p = tinyautograd.tensor([1.0], requires_grad=True)
    opt = CountingSGD([p], lr=0.5)
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append(1))
    p.grad = tinyautograd.tensor([1.0])
    opt.step()
    assert calls == [1] and p.tolist() == [0.5]


def test_add_param_group_fills_defaults_and_trains_like_torch():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    p1, p2 = tinyautograd.tensor(a.copy(), requires_grad=True), tinyautograd.tensor(b.copy(), requires_grad=True)
    q1, q2 = torch.tensor(a.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)
    opt, ref = optim.Adam([p1], lr=0.01), torch.optim.Adam([q1], lr=0.01)
    opt.add_param_group({"params": p2, "amsgrad": True})
    ref.add_param_group({"params": q2, "amsgrad": True})
    assert {k: v for k, v in opt.param_groups[1].items() if k != "params"} == \
        {k: v for k, v in ref.param_groups[1].items() if k != "params"}
    for _ in range(5):
        for p, q in ((p1, q1), (p2, q2)):
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = tinyautograd.tensor(g.copy()), torch.tensor(g.copy())
        opt.step()
        ref.step()
    for p, q in ((p1, q1), (p2, q2)):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().cpu().numpy(), rtol=RTOL)
    assert "max_exp_avg_sq" in opt.state[p2] and "max_exp_avg_sq" not in opt.state[p1]


def test_adagrad_creates_its_state_at_construction_as_torch():
    p = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adagrad([{"params": [p], "initial_accumulator_value": 5.0}], initial_accumulator_value=0.5)
    assert opt.state[p]["sum"].tolist() == [0.5, 0.5] and opt.state[p]["step"].item() == 0.0


def test_step_counts_as_an_in_place_change_of_the_parameter():
    p = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    loss = (p * p).sum()  # saves p for backward
    opt = optim.SGD([p], lr=0.1)
    p.grad = tinyautograd.tensor([1.0, 1.0])
    opt.step()
    with pytest.raises(RuntimeError):
        loss.backward()


def test_step_updates_the_parameter_array_in_place():
    # the parameters are changed in place: references to them (e.g. a module's) see the update
    p = tinyautograd.tensor([1.0, 2.0], requires_grad=True)
    alias = p.detach()
    opt = optim.SGD([p], lr=0.5)
    p.grad = tinyautograd.tensor([2.0, 2.0])
    opt.step()
    assert alias.tolist() == [0.0, 1.0]


def test_state_dict_saved_with_tinyautograd_save_resumes_module_parameters_exactly(tmp_path):
    rng = np.random.default_rng(7)
    values = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(8)]

    def parameters(arrays):
        return [tinyautograd.nn.Parameter(tinyautograd.tensor(a.copy())) for a in arrays]

    full = parameters(values)
    full_opt = optim.Adam(full, lr=0.01, weight_decay=0.1, amsgrad=True)
    run_steps(full, full_opt, grads)

    first = parameters(values)
    first_opt = optim.Adam(first, lr=0.01, weight_decay=0.1, amsgrad=True)
    run_steps(first, first_opt, grads[:3])
    tinyautograd.save(first_opt.state_dict(), tmp_path / "optim.pt")
    resumed = parameters([p.detach().cpu().numpy() for p in first])
    resumed_opt = optim.Adam(resumed, lr=0.01, weight_decay=0.1, amsgrad=True)
    resumed_opt.load_state_dict(tinyautograd.load(tmp_path / "optim.pt"))
    run_steps(resumed, resumed_opt, grads[3:])
    for p, q in zip(full, resumed):
        np.testing.assert_array_equal(q.detach().cpu().numpy(), p.detach().cpu().numpy())


# ------------------------------------------------------------------------------ gradient clipping

CLIP_SHAPES = [(3, 4), (5,), (0,), (2, 1, 3)]


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(norm_type=0.0, max_norm=0.1, dtype="float32", seed=0)  # found by Hypothesis: torch counts nonzero tensors
@given(norm_type=st.sampled_from([2.0, 1.0, 3.0, math.inf, -math.inf, 0.0]),
       max_norm=st.sampled_from([0.1, 1.0, 1e3]), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_clip_grad_norm_matches_torch(device, norm_type, max_norm, dtype, seed):
    """clip_grad_norm_ (= get_total_norm + clip_grads_with_norm_) and clip_grad_value_, against torch on the same
    gradients: the returned norm, its dtype and device, and the gradients scaled in place."""
    rng = np.random.default_rng(seed)
    grads = [(rng.standard_normal(s) * rng.choice([0.01, 1.0, 30.0])).astype(dtype) for s in CLIP_SHAPES]
    ours = [ours_tensor(g, device, requires_grad=True) for g in grads]
    theirs = [torch_tensor(g, torch_device(device), requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = ours_tensor(g, device), torch_tensor(g, torch_device(device))
    ours[0].grad = None  # a parameter without a gradient is left out
    theirs[0].grad = None
    if math.isinf(norm_type):  # ... and an empty gradient has no max or min
        for lib, params in ((tinyautograd, ours), (torch, theirs)):
            with pytest.raises(RuntimeError, match="cannot compute the (infinity|-inf) norm on an empty tensor"):
                lib.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        ours[2].grad = theirs[2].grad = None
    total = tinyautograd.nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-14}
    assert total.dtype.name == dtype and total.device.type == tinyautograd.device(device).type and total.ndim == 0
    np.testing.assert_allclose(to_numpy(total), to_numpy(ref), **tol)
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(to_numpy(p.grad), to_numpy(q.grad), **tol)
    tinyautograd.nn.utils.clip_grad_value_(ours, max_norm / 10)
    torch.nn.utils.clip_grad_value_(theirs, max_norm / 10)
    for p, q in zip(ours, theirs):
        if p.grad is not None:
            np.testing.assert_allclose(to_numpy(p.grad), to_numpy(q.grad), **tol)


def test_clip_grad_norm_by_hand_and_its_errors(device):
    """The norm and the factor against their definitions (no torch), the 1e-6 in the factor, and the
    non-finite error torch raises when asked."""
    p = ours_tensor(np.zeros(2), device, requires_grad=True)
    q = ours_tensor(np.zeros(1), device, requires_grad=True)
    p.grad, q.grad = ours_tensor(np.array([3.0, 0.0]), device), ours_tensor(np.array([4.0]), device)
    total = tinyautograd.nn.utils.clip_grad_norm_([p, q], 1.0)
    assert total.item() == 5.0
    np.testing.assert_allclose(to_numpy(p.grad), [3.0 / (5.0 + 1e-6), 0.0], rtol=1e-15)
    np.testing.assert_allclose(to_numpy(q.grad), [4.0 / (5.0 + 1e-6)], rtol=1e-15)
    assert tinyautograd.nn.utils.get_total_norm([p.grad, q.grad], math.inf).item() == pytest.approx(4.0 / 5.000001)
    q.grad = ours_tensor(np.array([np.nan]), device)
    with pytest.raises(RuntimeError, match="non-finite"):
        tinyautograd.nn.utils.clip_grad_norm_([p, q], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        _torch_nonfinite()
    assert np.isnan(tinyautograd.nn.utils.clip_grad_norm_([p, q], 1.0).item())  # without the flag: scaled by NaN
    assert np.isnan(to_numpy(p.grad)).all()


def _torch_nonfinite():
    x = torch.zeros(1, requires_grad=True)
    x.grad = torch.tensor([float("nan")])
    torch.nn.utils.clip_grad_norm_([x], 1.0, error_if_nonfinite=True)
