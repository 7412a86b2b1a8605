"""tinyautograd.optim.lr_scheduler against torch.optim.lr_scheduler.

Each scheduler is built with Hypothesis-drawn hyperparameters on the same two-group optimizer in both libraries
and stepped for many epochs; the learning rates (and momenta/betas where the scheduler cycles them) must be the
same floats at every epoch. Also: ReduceLROnPlateau driven by drawn metric sequences, the deprecated
``step(epoch)`` closed forms, state_dict round trips that continue exactly, get_last_lr, torch's warnings and
errors.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyautograd
from tinyautograd import optim

# every test on each device: its tensors are made on the default device (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

EXACT = dict(rtol=1e-14, atol=0.0)  # both sides evaluate the same Python float expressions
FACTOR = st.floats(0.05, 1.0)
GAMMA = st.floats(0.1, 0.999)
ITERS = st.integers(1, 20)


def make_optimizer(lib, kind: str = "SGD"):
    """Two param groups with different learning rates (and momentum or betas to cycle)."""
    a, b = lib.tensor([1.0, 2.0], requires_grad=True), lib.tensor([3.0], requires_grad=True)
    groups = [{"params": [a]}, {"params": [b], "lr": 0.02}]
    if kind == "Adam":
        return lib.optim.Adam(groups, lr=0.1, betas=(0.9, 0.99))
    return lib.optim.SGD(groups, lr=0.1, momentum=0.9)


def snapshot(scheduler, optimizer) -> list:
    """What a step changes: the last lrs, and each group's lr, momentum and betas."""
    groups = [(g["lr"], g.get("momentum"), g.get("betas")) for g in optimizer.param_groups]
    return [list(scheduler.get_last_lr()), groups]


def history(lib, build, epochs: int, kind: str = "SGD") -> list:
    optimizer = make_optimizer(lib, kind)
    scheduler = build(lib.optim.lr_scheduler, optimizer)
    out = [snapshot(scheduler, optimizer)]
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        out.append(snapshot(scheduler, optimizer))
    return out


def assert_same_history(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for epoch, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a[0], b[0], **EXACT, err_msg=f"get_last_lr at epoch {epoch}")
        for (lr, momentum, betas), (lr_t, momentum_t, betas_t) in zip(a[1], b[1]):
            np.testing.assert_allclose(lr, lr_t, **EXACT, err_msg=f"lr at epoch {epoch}")
            assert (momentum is None) == (momentum_t is None)
            if momentum is not None:
                np.testing.assert_allclose(momentum, momentum_t, **EXACT, err_msg=f"momentum at epoch {epoch}")
            assert (betas is None) == (betas_t is None)
            if betas is not None:
                np.testing.assert_allclose(betas, betas_t, **EXACT, err_msg=f"betas at epoch {epoch}")


# -------------------------------------------------------------------------- builders with drawn hyperparameters

@st.composite
def lambda_lr(draw):
    base, decay = draw(st.floats(0.8, 1.0)), draw(st.floats(0.0, 0.5))
    return lambda S, opt: S.LambdaLR(opt, lr_lambda=[lambda e: base ** e, lambda e: 1.0 / (1.0 + decay * e)])


@st.composite
def multiplicative_lr(draw):
    factor = draw(st.floats(0.8, 1.0))
    return lambda S, opt: S.MultiplicativeLR(opt, lr_lambda=lambda e: factor)


@st.composite
def step_lr(draw):
    kw = dict(step_size=draw(st.integers(1, 10)), gamma=draw(GAMMA))
    return lambda S, opt: S.StepLR(opt, **kw)


@st.composite
def multi_step_lr(draw):
    milestones = sorted(draw(st.lists(st.integers(1, 40), min_size=1, max_size=5)))  # repeats compound
    gamma = draw(GAMMA)
    return lambda S, opt: S.MultiStepLR(opt, milestones=milestones, gamma=gamma)


@st.composite
def constant_lr(draw):
    kw = dict(factor=draw(FACTOR), total_iters=draw(ITERS))
    return lambda S, opt: S.ConstantLR(opt, **kw)


@st.composite
def linear_lr(draw):
    kw = dict(start_factor=draw(FACTOR), end_factor=draw(st.floats(0.0, 1.0)), total_iters=draw(ITERS))
    return lambda S, opt: S.LinearLR(opt, **kw)


@st.composite
def exponential_lr(draw):
    gamma = draw(GAMMA)
    return lambda S, opt: S.ExponentialLR(opt, gamma=gamma)


@st.composite
def polynomial_lr(draw):
    kw = dict(total_iters=draw(ITERS), power=draw(st.floats(0.5, 3.0)))
    return lambda S, opt: S.PolynomialLR(opt, **kw)


@st.composite
def cosine_annealing_lr(draw):
    kw = dict(T_max=draw(st.integers(1, 15)), eta_min=draw(st.sampled_from([0.0, 1e-3]) | st.floats(0.0, 0.01)))
    return lambda S, opt: S.CosineAnnealingLR(opt, **kw)


@st.composite
def cyclic_lr(draw):
    kw = dict(base_lr=draw(st.floats(1e-4, 0.01)), max_lr=draw(st.floats(0.02, 1.0)),
              step_size_up=draw(st.integers(1, 10)), step_size_down=draw(st.none() | st.integers(1, 10)),
              mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])), gamma=draw(GAMMA),
              cycle_momentum=draw(st.booleans()), base_momentum=draw(st.floats(0.5, 0.85)),
              max_momentum=draw(st.floats(0.86, 0.99)))
    return lambda S, opt: S.CyclicLR(opt, **kw)


@st.composite
def warm_restarts(draw):
    kw = dict(T_0=draw(st.integers(1, 10)), T_mult=draw(st.integers(1, 3)), eta_min=draw(st.floats(0.0, 0.01)))
    return lambda S, opt: S.CosineAnnealingWarmRestarts(opt, **kw)


@st.composite
def sequential_lr(draw):
    factor, iters, gamma = draw(FACTOR), draw(ITERS), draw(GAMMA)
    t_max, first, second = draw(st.integers(1, 10)), draw(st.integers(1, 15)), draw(st.integers(1, 15))

    def build(S, opt):
        members = [S.ConstantLR(opt, factor=factor, total_iters=iters), S.ExponentialLR(opt, gamma=gamma),
                   S.CosineAnnealingLR(opt, T_max=t_max)]
        return S.SequentialLR(opt, members, milestones=[first, first + second])

    return build


@st.composite
def chained_scheduler(draw):
    factor, iters, gamma, step = draw(FACTOR), draw(ITERS), draw(GAMMA), draw(st.integers(1, 10))

    def build(S, opt):
        return S.ChainedScheduler([S.ConstantLR(opt, factor=factor, total_iters=iters),
                                   S.ExponentialLR(opt, gamma=gamma), S.StepLR(opt, step_size=step, gamma=0.5)])

    return build


SCHEDULERS = {
    "LambdaLR": lambda_lr(), "MultiplicativeLR": multiplicative_lr(), "StepLR": step_lr(),
    "MultiStepLR": multi_step_lr(), "ConstantLR": constant_lr(), "LinearLR": linear_lr(),
    "ExponentialLR": exponential_lr(), "PolynomialLR": polynomial_lr(), "CosineAnnealingLR": cosine_annealing_lr(),
    "CyclicLR": cyclic_lr(), "CosineAnnealingWarmRestarts": warm_restarts(), "SequentialLR": sequential_lr(),
    "ChainedScheduler": chained_scheduler(),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
@settings(deadline=None)
@given(data=st.data())
def test_scheduler_lrs_match_torch_every_epoch(name, data):
    build = data.draw(SCHEDULERS[name], label="scheduler")
    epochs = data.draw(st.integers(30, 80), label="epochs")
    assert_same_history(history(tinyautograd, build, epochs), history(torch, build, epochs))


@st.composite
def one_cycle(draw):
    three_phase = draw(st.booleans())
    total = draw(st.integers(20, 80))
    # every phase must span at least one step (torch divides by each phase's length)
    pct = draw(st.floats(0.2, 0.45) if three_phase else st.floats(0.2, 0.8))
    kw = dict(max_lr=draw(st.floats(0.01, 1.0) | st.lists(st.floats(0.01, 1.0), min_size=2, max_size=2)),
              pct_start=pct, anneal_strategy=draw(st.sampled_from(["cos", "linear"])),
              cycle_momentum=draw(st.booleans()), base_momentum=draw(st.floats(0.5, 0.85)),
              max_momentum=draw(st.floats(0.86, 0.99)), div_factor=draw(st.floats(2.0, 100.0)),
              final_div_factor=draw(st.floats(10.0, 1e4)), three_phase=three_phase)
    if draw(st.booleans()):
        kw["total_steps"] = total
    else:
        kw["epochs"], kw["steps_per_epoch"] = draw(st.integers(2, 8)), draw(st.integers(3, 10))
        total = kw["epochs"] * kw["steps_per_epoch"]
    return total, kw


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@settings(deadline=None)
@given(drawn=one_cycle())
def test_one_cycle_lr_and_momentum_or_beta1_match_torch(kind, drawn):
    total, kw = drawn

    def build(S, opt):
        return S.OneCycleLR(opt, **kw)

    assert_same_history(history(tinyautograd, build, total, kind), history(torch, build, total, kind))


def test_one_cycle_refuses_to_step_past_total_steps_as_torch():
    errors = []
    for lib in (tinyautograd, torch):
        opt = make_optimizer(lib)
        scheduler = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=5)
        for _ in range(5):
            opt.step()
            scheduler.step()
        with pytest.raises(ValueError) as info:
            scheduler.step()
        errors.append(str(info.value))
    assert errors[0] == errors[1]


# -------------------------------------------------------------------------- ReduceLROnPlateau

@st.composite
def plateau_run(draw):
    kw = dict(mode=draw(st.sampled_from(["min", "max"])), factor=draw(st.floats(0.1, 0.9)),
              patience=draw(st.integers(0, 5)), threshold=draw(st.sampled_from([1e-4, 0.0]) | st.floats(0.0, 0.1)),
              threshold_mode=draw(st.sampled_from(["rel", "abs"])), cooldown=draw(st.integers(0, 3)),
              min_lr=draw(st.sampled_from([0.0, 1e-3]) | st.lists(st.floats(0.0, 0.01), min_size=2, max_size=2)),
              eps=draw(st.sampled_from([1e-8, 1e-3])))
    # few distinct values make plateaus and exact ties likely
    metrics = draw(st.lists(st.sampled_from([1.0, 0.9, 0.95, 0.5, 0.49995, 2.0]) | st.floats(0.0, 2.0),
                            min_size=20, max_size=60))
    return kw, metrics


@settings(deadline=None)
@given(drawn=plateau_run())
def test_reduce_lr_on_plateau_follows_torch_on_drawn_metrics(drawn):
    kw, metrics = drawn
    runs = []
    for lib in (tinyautograd, torch):
        opt = make_optimizer(lib)
        scheduler = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        trace = [[g["lr"] for g in opt.param_groups]]
        for m in metrics:
            opt.step()
            scheduler.step(m)
            trace.append([g["lr"] for g in opt.param_groups] + list(scheduler.get_last_lr())
                         + [scheduler.best, scheduler.num_bad_epochs, scheduler.cooldown_counter,
                            scheduler.last_epoch])
        runs.append(trace)
    assert runs[0] == runs[1]


def test_reduce_lr_on_plateau_state_dict_round_trip():
    metrics = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]
    opt = make_optimizer(tinyautograd)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for m in metrics[:5]:
        scheduler.step(m)
    saved, saved_opt = copy.deepcopy(scheduler.state_dict()), copy.deepcopy(opt.state_dict())
    assert "optimizer" not in saved
    opt2 = make_optimizer(tinyautograd)
    resumed = optim.lr_scheduler.ReduceLROnPlateau(opt2, mode="max")  # overwritten by the load
    opt2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for m in metrics[5:]:
        scheduler.step(m)
        resumed.step(m)
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    assert resumed.mode == "min" and resumed.mode_worse == float("inf")


@pytest.mark.parametrize("kwargs", [dict(factor=1.0), dict(mode="up"), dict(threshold_mode="relative"),
                                    dict(min_lr=[0.1])])
def test_reduce_lr_on_plateau_rejects_bad_arguments_as_torch(kwargs):
    errors = []
    for lib in (tinyautograd, torch):
        with pytest.raises(ValueError) as info:
            lib.optim.lr_scheduler.ReduceLROnPlateau(make_optimizer(lib), **kwargs)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


# -------------------------------------------------------------------------- deprecated step(epoch): closed forms

CLOSED_FORM = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
               "CosineAnnealingLR"]


@pytest.mark.parametrize("name", CLOSED_FORM)
@settings(deadline=None)
@given(data=st.data())
def test_step_with_epoch_uses_torch_closed_form(name, data):
    build = data.draw(SCHEDULERS[name], label="scheduler")
    epochs = data.draw(st.lists(st.integers(0, 60), min_size=1, max_size=10), label="epochs")
    traces = []
    for lib in (tinyautograd, torch):
        opt = make_optimizer(lib)
        scheduler = build(lib.optim.lr_scheduler, opt)
        trace = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in epochs:
                opt.step()
                scheduler.step(epoch)
                trace.append(list(scheduler.get_last_lr()))
        traces.append(trace)
    np.testing.assert_allclose(traces[0], traces[1], **EXACT)


@settings(deadline=None)
@given(data=st.data())
def test_warm_restarts_with_fractional_epochs_match_torch(data):
    build = data.draw(warm_restarts(), label="scheduler")
    epochs = data.draw(st.lists(st.floats(0.0, 60.0), min_size=1, max_size=15), label="epochs")
    traces = []
    for lib in (tinyautograd, torch):
        opt = make_optimizer(lib)
        scheduler = build(lib.optim.lr_scheduler, opt)
        trace = []
        for epoch in epochs:
            opt.step()
            scheduler.step(epoch)
            trace.append([scheduler.T_cur, scheduler.T_i, scheduler.last_epoch] + list(scheduler.get_last_lr()))
        traces.append(trace)
    np.testing.assert_allclose(np.array(traces[0], dtype=float), np.array(traces[1], dtype=float), **EXACT)


# -------------------------------------------------------------------------- state_dict

@pytest.mark.parametrize("name", list(SCHEDULERS))
@settings(deadline=None)
@given(data=st.data())
def test_state_dict_round_trip_continues_the_schedule(name, data):
    build = data.draw(SCHEDULERS[name], label="scheduler")
    epochs = data.draw(st.integers(5, 40), label="epochs")
    k = data.draw(st.integers(0, epochs), label="k")
    uninterrupted = history(tinyautograd, build, epochs)

    opt = make_optimizer(tinyautograd)
    scheduler = build(optim.lr_scheduler, opt)
    for _ in range(k):
        opt.step()
        scheduler.step()
    saved = copy.deepcopy(scheduler.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    assert "optimizer" not in saved

    opt2 = make_optimizer(tinyautograd)
    resumed = build(optim.lr_scheduler, opt2)
    opt2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    resumed_history = [snapshot(resumed, opt2)]
    for _ in range(epochs - k):
        opt2.step()
        resumed.step()
        resumed_history.append(snapshot(resumed, opt2))
    assert_same_history(resumed_history, uninterrupted[k:])


def test_state_dict_holds_what_torch_holds():
    for name in ["StepLR", "CosineAnnealingLR", "OneCycleLR", "LambdaLR", "SequentialLR"]:
        keys = []
        for lib in (tinyautograd, torch):
            opt = make_optimizer(lib)
            S = lib.optim.lr_scheduler
            scheduler = {
                "StepLR": lambda: S.StepLR(opt, step_size=3),
                "CosineAnnealingLR": lambda: S.CosineAnnealingLR(opt, T_max=5),
                "OneCycleLR": lambda: S.OneCycleLR(opt, max_lr=0.5, total_steps=10),
                "LambdaLR": lambda: S.LambdaLR(opt, lambda e: 0.5 ** e),
                "SequentialLR": lambda: S.SequentialLR(opt, [S.ConstantLR(opt), S.ExponentialLR(opt, 0.9)], [3]),
            }[name]()
            opt.step()
            scheduler.step()
            sd = scheduler.state_dict()
            keys.append(sorted(sd))
            if name == "LambdaLR":
                assert sd["lr_lambdas"] == [None, None]  # plain functions are not saved
        assert keys[0] == keys[1], name


# -------------------------------------------------------------------------- construction, warnings, errors

def test_construction_takes_the_first_step_and_records_initial_lr():
    opt = make_optimizer(tinyautograd)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    assert scheduler.last_epoch == 0 and scheduler._step_count == 1
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02] == scheduler.base_lrs
    assert scheduler.get_last_lr() == [0.1, 0.02]
    last = scheduler.get_last_lr()
    last[0] = 123.0  # a copy: the optimizer must not change
    assert opt.param_groups[0]["lr"] == 0.1


def test_resuming_without_initial_lr_raises_key_error_as_torch():
    for lib in (tinyautograd, torch):
        with pytest.raises(KeyError, match="initial_lr"):
            lib.optim.lr_scheduler.StepLR(make_optimizer(lib), step_size=2, last_epoch=3)


def test_scheduler_step_before_optimizer_step_warns_as_torch():
    for lib in (tinyautograd, torch):
        scheduler = lib.optim.lr_scheduler.StepLR(make_optimizer(lib), step_size=2)
        with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
            scheduler.step()


def test_optimizer_stepped_first_gives_no_warning():
    opt = make_optimizer(tinyautograd)
    scheduler = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        scheduler.step()
    assert scheduler.get_last_lr() == [0.05, 0.01]


def test_get_lr_outside_step_warns_to_use_get_last_lr():
    scheduler = optim.lr_scheduler.StepLR(make_optimizer(tinyautograd), step_size=2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        scheduler.get_lr()


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        optim.lr_scheduler.StepLR(object(), step_size=2)


@pytest.mark.parametrize("build", [
    lambda S, opt: S.ConstantLR(opt, factor=1.5),
    lambda S, opt: S.LinearLR(opt, start_factor=0.0),
    lambda S, opt: S.LinearLR(opt, end_factor=1.5),
    lambda S, opt: S.LambdaLR(opt, [lambda e: 1.0]),
    lambda S, opt: S.OneCycleLR(opt, max_lr=0.1),
    lambda S, opt: S.OneCycleLR(opt, max_lr=0.1, total_steps=0),
    lambda S, opt: S.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=1.5),
    lambda S, opt: S.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
    lambda S, opt: S.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=10),
    lambda S, opt: S.CyclicLR(opt, 0.01, 0.1, mode="square"),
    lambda S, opt: S.CosineAnnealingWarmRestarts(opt, T_0=0),
    lambda S, opt: S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0),
    lambda S, opt: S.SequentialLR(opt, [S.ConstantLR(opt)], milestones=[2]),
    lambda S, opt: S.SequentialLR(opt, [], milestones=[]),
    lambda S, opt: S.ChainedScheduler([]),
], ids=["constant-factor", "linear-start", "linear-end", "lambda-count", "onecycle-no-steps",
        "onecycle-zero-steps", "onecycle-pct", "onecycle-anneal", "onecycle-max-lr-count", "cyclic-mode",
        "restarts-T0", "restarts-Tmult", "sequential-milestones", "sequential-empty", "chained-empty"])
def test_invalid_scheduler_arguments_raise_torch_error(build):
    errors = []
    for lib in (tinyautograd, torch):
        with pytest.raises(ValueError) as info:
            build(lib.optim.lr_scheduler, make_optimizer(lib))
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_cycle_momentum_needs_momentum_or_betas_as_torch():
    errors = []
    for lib in (tinyautograd, torch):
        p = lib.tensor([1.0], requires_grad=True)
        with pytest.raises(ValueError) as info:
            lib.optim.lr_scheduler.OneCycleLR(lib.optim.Adagrad([p]), max_lr=0.1, total_steps=10)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_sequential_and_chained_reject_reduce_on_plateau_as_torch():
    for lib in (tinyautograd, torch):
        opt = make_optimizer(lib)
        S = lib.optim.lr_scheduler
        plateau = S.ReduceLROnPlateau(opt)
        with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
            S.ChainedScheduler([S.ExponentialLR(opt, 0.9), plateau])
        with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
            S.SequentialLR(opt, [S.ExponentialLR(opt, 0.9), plateau], milestones=[2])
