"""Whole training runs equal torch's: the course's networks, trained in both libraries from the same weights on
the same batches, give the same loss curve and the same final weights (float64 to ~1e-9, float32 to ~1e-4); the
same training gives the same test accuracy; a checkpoint saved mid-run continues on exactly the same curve, and
training state handed between the libraries half-way continues on torch's curve; the demo's main job runs.

The scenarios and the machinery that trains them live in tests/parity.py.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import tinyautograd
from helpers import to_numpy
from parity import (SCENARIOS, Trainer, assert_curves_match, assert_runs_match, full_precision_torch,
                    image_batches, improved_mnist_setup, lenet_setup, lstm_setup, mnist, train_both)

DTYPES = ["float64", "float32"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_training_run_matches_torch(scenario: str, dtype: str, device: str) -> None:
    setup = SCENARIOS[scenario]()
    assert setup.steps >= 50
    theirs, ours = train_both(setup, device=device, dtype=dtype)
    # the scenario really trains: otherwise equal curves would say little about the gradients
    assert theirs.losses[-1] < theirs.losses[0]
    assert_runs_match(ours, theirs, dtype)


def test_test_accuracy_after_the_same_training_matches_torch(device: str) -> None:
    # two epochs of the improved classifier over all 4,000 bundled training digits, in float32
    train_images, _ = mnist(True)
    setup = improved_mnist_setup(steps=2 * len(train_images) // 100, scheduler=True)
    setup = replace(setup, batches=image_batches(setup.steps, 100, samples=len(train_images)))
    theirs, ours = train_both(setup, device=device, dtype="float32")
    assert_runs_match(ours, theirs, "float32")

    test_images, test_labels = mnist(False)
    flat = test_images.reshape(len(test_images), 784)
    their_logits, our_logits = theirs.trainer.predict(flat), ours.trainer.predict(flat)
    # eval mode uses the running statistics both libraries accumulated
    np.testing.assert_allclose(our_logits, their_logits, rtol=1e-3, atol=1e-3)
    their_accuracy = 100.0 * np.mean(their_logits.argmax(1) == test_labels)
    our_accuracy = 100.0 * np.mean(our_logits.argmax(1) == test_labels)
    assert their_accuracy > 85.0, f"torch reached only {their_accuracy:.1f}%: the scenario does not train"
    assert abs(our_accuracy - their_accuracy) <= 1.0, (our_accuracy, their_accuracy)


@pytest.mark.parametrize("make_setup", [lambda: improved_mnist_setup(steps=50, scheduler=True), lenet_setup],
                         ids=["improved-mnist-adam-steplr", "lenet-momentum-steplr"])
def test_checkpoint_continues_on_exactly_the_same_curve(make_setup, device: str, tmp_path) -> None:
    setup, dtype, stop = make_setup(), "float64", 30
    theirs, ours = train_both(setup, device=device, dtype=dtype)

    # the same run again, saved (model, optimizer and scheduler state_dicts) after `stop` steps
    first = Trainer(tinyautograd, setup, device=device, dtype=dtype, initial_state=ours.initial_state)
    first_losses, _, _ = first.run(0, stop)
    path = tmp_path / "checkpoint.pt"
    tinyautograd.save({**first.state(), "step": stop}, path)
    del first

    # fresh objects with other initial weights, so every value that matters must come from the file
    resumed = Trainer(tinyautograd, replace(setup, seed=setup.seed + 1), device=device, dtype=dtype)
    checkpoint = tinyautograd.load(path, map_location=device)
    assert checkpoint["step"] == stop
    resumed.load_state(checkpoint)
    rest_losses, rest_lrs, _ = resumed.run(stop)

    assert first_losses + rest_losses == ours.losses  # bit for bit
    assert rest_lrs == ours.lrs[stop:]
    for name, value in resumed.weights().items():
        np.testing.assert_array_equal(value, ours.final_state[name], err_msg=name)
    assert_curves_match(first_losses + rest_losses, theirs.losses, dtype)


def _convert(value, lib, device: str):
    """A state_dict (nested dicts, lists, tuples, numbers, tensors of either library) with every tensor made a
    ``lib`` tensor on ``device``, through NumPy."""
    if isinstance(value, (torch.Tensor, tinyautograd.Tensor)):
        return lib.from_numpy(np.array(to_numpy(value))).to(device)
    if isinstance(value, dict):
        return {key: _convert(item, lib, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(item, lib, device) for item in value)
    return value


@pytest.mark.parametrize("make_setup", [lambda: improved_mnist_setup(steps=50, scheduler=True), lstm_setup],
                         ids=["improved-mnist-adam-steplr", "lstm-adam"])
@pytest.mark.parametrize("source, target", [(tinyautograd, torch), (torch, tinyautograd)],
                         ids=["tinyautograd-to-torch", "torch-to-tinyautograd"])
def test_mid_run_state_continues_in_the_other_library(source, target, make_setup, device: str) -> None:
    # model, optimizer (and scheduler) state_dicts taken half-way from one library are loaded, through NumPy,
    # into the other library's own fresh objects, which finish the run on the curve torch follows alone
    setup, dtype, stop = make_setup(), "float64", 25
    theirs, ours = train_both(setup, device=device, dtype=dtype)
    with full_precision_torch(device):
        first = Trainer(source, setup, device=device, dtype=dtype, initial_state=ours.initial_state)
        first.run(0, stop)
        handover = Trainer(target, replace(setup, seed=setup.seed + 1), device=device, dtype=dtype)
        handover.load_state(_convert(first.state(), target, device))
        rest_losses, rest_lrs, _ = handover.run(stop)
    assert_curves_match(rest_losses, theirs.losses[stop:], dtype)
    assert rest_lrs == theirs.lrs[stop:]


def test_demo_trains_the_classifier_and_writes_checkpoint_and_figure(device: str, tmp_path, capsys) -> None:
    from tinyautograd.demo import classifier, main

    main(["--epochs", "1", "--device", device, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "z = 49, dz/dx = 14, dz/dy = 14" in printed and "price 715" in printed
    accuracy = float(printed.split("test accuracy")[1].split("%")[0])
    assert accuracy > 80.0, printed

    checkpoint = tinyautograd.load(tmp_path / "mnist_classifier.pt", map_location="cpu")
    assert checkpoint["epoch"] == 1 and checkpoint["test_accuracy"] == [pytest.approx(accuracy, abs=0.05)]
    model = classifier()
    model.load_state_dict(checkpoint["model"])
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
