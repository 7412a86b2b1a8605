"""Random computation graphs, built identically in tinyautograd and torch, must give the same leaf gradients.

A Hypothesis strategy draws a small program over a few float64 leaves: each step applies one op to earlier values
(so values fan out and are used several times), mixing elementwise math, broadcasting binary ops, views
(reshape, transpose, slicing, unsqueeze, expand), indexing with repeated integer indices, reductions and an
in-place multiply on a non-leaf clone. The
loss weights every value of the program, so every node's backward runs; each leaf's ``.grad`` is compared with
torch's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinyautograd
from helpers import assert_close, ours_tensor, torch_tensor


@dataclass(frozen=True)
class Step:
    op: str
    operands: tuple
    params: tuple = ()


@dataclass(frozen=True)
class Program:
    leaf_shapes: tuple
    steps: tuple


# name -> (arity, function(L, *values, *params)); every function is written once against the torch API
OPS = {
    "tanh": (1, lambda L, x: L.tanh(x)),
    "sin": (1, lambda L, x: x.sin()),
    "sigmoid": (1, lambda L, x: L.sigmoid(x)),
    "square": (1, lambda L, x: x * x),
    "scale": (1, lambda L, x: 1.5 * x - 0.25),
    "exp_tanh": (1, lambda L, x: L.exp(L.tanh(x))),
    "add": (2, lambda L, x, y: x + y),
    "sub": (2, lambda L, x, y: x - y),
    "mul": (2, lambda L, x, y: x * y),
    "smooth_div": (2, lambda L, x, y: x / (1 + y * y)),
    "inplace_mul": (2, lambda L, x, y: x.clone().mul_(y)),
    "reshape_flat": (1, lambda L, x: x.reshape(-1)),
    "transpose": (1, lambda L, x: x.transpose(0, -1)),
    "slice_step": (1, lambda L, x: x[..., ::2]),
    "slice_tail": (1, lambda L, x: x[1:]),
    "unsqueeze": (1, lambda L, x: x.unsqueeze(0)),
    "expand": (1, lambda L, x, size: x.expand(size)),
    "index_repeat": (1, lambda L, x, idx: x[L.tensor(idx, device=x.device)]),
    "index_repeat_dim1": (1, lambda L, x, idx: x[:, L.tensor(idx, device=x.device)]),
    "sum_dim": (1, lambda L, x, dim: x.sum(dim, keepdim=True)),
    "mean_dim": (1, lambda L, x, dim: L.mean(x, dim)),
    "sum_all": (1, lambda L, x: x.sum()),
    "softmax": (1, lambda L, x, dim: L.softmax(x, dim)),
    "logsumexp": (1, lambda L, x, dim: L.logsumexp(x, dim)),
}


def _apply(op: str, L, values: list, step: Step):
    fn = OPS[op][1]
    return fn(L, *[values[i] for i in step.operands], *step.params)


@st.composite
def programs(draw) -> Program:
    leaf_shapes = tuple(draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
                        for _ in range(draw(st.integers(1, 3))))
    shapes = list(leaf_shapes)
    steps = []
    for _ in range(draw(st.integers(2, 12))):
        op = draw(st.sampled_from(sorted(OPS)))
        i = draw(st.integers(0, len(shapes) - 1))
        s = shapes[i]
        params: tuple = ()
        operands: tuple = (i,)
        if op == "inplace_mul":
            # an in-place op keeps its own shape: the partner must broadcast into it
            partners = [j for j in range(len(shapes)) if _broadcastable(s, shapes[j])
                        and np.broadcast_shapes(s, shapes[j]) == s]
            operands = (i, draw(st.sampled_from(partners)))
        elif OPS[op][0] == 2:
            partners = [j for j in range(len(shapes)) if _broadcastable(s, shapes[j])]
            operands = (i, draw(st.sampled_from(partners)))  # i itself is always a partner: x op x
        elif op in ("transpose", "slice_step") and len(s) < 1:
            continue
        elif op == "slice_tail" and (len(s) < 1 or s[0] < 2):
            continue
        elif op == "expand":
            if len(s) > 3:
                continue
            params = (tuple(draw(st.integers(1, 3)) if side == 1 else side for side in (1,) + s),)
        elif op in ("index_repeat", "index_repeat_dim1"):
            axis = 0 if op == "index_repeat" else 1
            if len(s) <= axis:
                continue
            # repeated indices: their gradients must accumulate
            params = (np.array(draw(st.lists(st.integers(0, s[axis] - 1), min_size=1, max_size=5)), dtype=np.int64),)
        elif op in ("sum_dim", "mean_dim", "softmax", "logsumexp"):
            if not s:
                continue
            params = (draw(st.integers(-len(s), len(s) - 1)),)
        step = Step(op, operands, params)
        shapes.append(_shape_after(step, shapes))
        steps.append(step)
    return Program(leaf_shapes, tuple(steps))


def _broadcastable(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _shape_after(step: Step, shapes: list) -> tuple:
    # run the step on zero-filled torch tensors: torch is the reference for shapes too
    values = [torch.zeros(s, dtype=torch.float64) for s in shapes]
    return tuple(_apply(step.op, torch, values, step).shape)


def _run(L, program: Program, leaves: list, weights_seed: int, device: str):
    """Every value of the program, and a loss that weights each of them with fixed random numbers."""
    values = list(leaves)
    for step in program.steps:
        values.append(_apply(step.op, L, values, step))
    rng = np.random.default_rng(weights_seed)
    make = ours_tensor if L is tinyautograd else torch_tensor
    loss = None
    for v in values:
        term = (v * make(rng.standard_normal(tuple(v.shape)), device)).sum()
        loss = term if loss is None else loss + term
    return loss


# the device fixture is a plain string (safe to share across examples); a graph is cheap, so draw many of them
_SETTINGS = settings(suppress_health_check=list(settings.default.suppress_health_check)
                     + [HealthCheck.function_scoped_fixture], max_examples=4 * settings.default.max_examples)


@_SETTINGS
@given(program=programs(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_graph_leaf_gradients_match_torch(device, program, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in program.leaf_shapes]
    ours_leaves = [ours_tensor(a, device, requires_grad=True) for a in arrays]
    theirs_leaves = [torch_tensor(a, device, requires_grad=True) for a in arrays]
    ours_loss = _run(tinyautograd, program, ours_leaves, seed, device)
    theirs_loss = _run(torch, program, theirs_leaves, seed, device)
    assert_close(ours_loss, theirs_loss, "float64", what="loss")
    ours_loss.backward()
    theirs_loss.backward()
    for k, (o, t) in enumerate(zip(ours_leaves, theirs_leaves)):
        assert o.grad is not None and t.grad is not None
        assert_close(o.grad, t.grad, "float64", what=f"leaf {k} gradient")


@_SETTINGS
@given(program=programs(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_graph_second_derivatives_match_torch(device, program, seed):
    """Differentiate the leaf gradients once more (create_graph=True) through the same random graph."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in program.leaf_shapes]
    directions = [rng.standard_normal(s) for s in program.leaf_shapes]
    results = []
    for L, make in ((tinyautograd, ours_tensor), (torch, torch_tensor)):
        leaves = [make(a, device, requires_grad=True) for a in arrays]
        loss = _run(L, program, leaves, seed, device)
        grads = L.autograd.grad(loss, leaves, create_graph=True)
        total = sum(((g * make(v, device)).sum() for g, v in zip(grads, directions) if g.requires_grad),
                    start=make(np.zeros(()), device))
        if not total.requires_grad:
            results.append(None)
            continue
        results.append(L.autograd.grad(total, leaves, allow_unused=True))
    ours, theirs = results
    assert (ours is None) == (theirs is None)
    if ours is None:
        return
    for k, (o, t) in enumerate(zip(ours, theirs)):
        if t is None:
            t = torch.zeros(arrays[k].shape, dtype=torch.float64, device=device)
        if o is None:
            o = ours_tensor(np.zeros(arrays[k].shape), device)
        assert_close(o, t, "float64", what=f"second derivative for leaf {k}")


@pytest.mark.parametrize("n", [3, 50])
def test_deep_fan_out_chain_matches_torch(device, n):
    """A value reused by every later step (fan-out across a long chain) accumulates all its gradients."""
    a = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    grads = []
    for L, make in ((tinyautograd, ours_tensor), (torch, torch_tensor)):
        x = make(a, device, requires_grad=True)
        h = x
        for k in range(n):
            h = L.tanh(h * 0.9 + x[:, :1] * 0.1) + x.sum(0) * 0.01
        h.sum().backward()
        grads.append(x.grad)
    assert_close(grads[0], grads[1], "float64", what="fan-out gradient")
