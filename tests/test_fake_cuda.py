"""The CuPy stand-in used for the ``fakecuda`` copies of the device tests keeps CuPy's rules (tests/fake_cupy.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fake_cupy
from conftest import CUDA
import tinyautograd as tg


@pytest.fixture()
def fake():
    with fake_cupy.active():
        yield


def test_tinyautograd_sees_one_fake_device(fake):
    assert tg.cuda.is_available() and tg.cuda.device_count() == 1
    assert "Fake" in tg.cuda.get_device_name()
    x = tg.ones(3, device="cuda")
    assert x.is_cuda and str(x.device) == "cuda:0" and type(x._data) is fake_cupy.ndarray


def test_host_arrays_and_implicit_conversions_are_refused_as_cupy_does(fake):
    d = tg.ones(3, device="cuda")._data
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(d)
    with pytest.raises(TypeError, match="host array"):
        d + np.ones(3)
    with pytest.raises(TypeError, match="host array"):
        import cupy

        cupy.maximum(d, np.zeros(3))
    np.testing.assert_array_equal(d.get(), np.ones(3))


def test_results_stay_on_the_device(fake):
    d = tg.arange(6.0, device="cuda")._data.reshape(2, 3)
    for result in (d.sum(), d[0, 1], np.concatenate([d, d]), np.exp(d), d.max(axis=0), d > 2):
        assert type(result) is fake_cupy.ndarray


def test_torch_stays_on_the_cpu_while_tinyautograd_uses_the_fake(fake):
    t = torch.ones(2, device="cuda")
    assert t.device.type == "cpu"
    assert torch.nn.Linear(2, 2).to("cuda").weight.device.type == "cpu"


def test_everything_is_restored_afterwards():
    with fake_cupy.active():
        assert tg.cuda.is_available()
    assert tg.cuda.is_available() == CUDA
    assert torch.ones(1).device.type == "cpu"


def _step_launches(model, opt, x, t) -> dict:
    """The launches of one training step (zero_grad, forward, cross entropy, backward, update), after a first one
    has created the gradients and optimizer state."""
    import tinyautograd.nn.functional as F

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), t).backward()
        opt.step()

    step()
    return _launches(step)


def _launches(fn) -> dict:
    fake_cupy.LAUNCHES.clear()
    fn()
    return dict(fake_cupy.LAUNCHES)


def test_launch_budget_of_a_training_step(fake):
    """What one step of the course's MLP costs in kernel launches on CUDA (as the stand-in counts them): one per
    optimizer update, two for cross entropy's rows and backward, no copies of fresh gradients."""
    import tinyautograd.nn as nn

    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10)).cuda()
    x, t = tg.randn(100, 784, device="cuda"), tg.randint(0, 10, (100,), device="cuda")
    for opt, update in [(tg.optim.SGD(model.parameters(), lr=0.1), "tinyautograd_sgd"),
                        (tg.optim.Adam(model.parameters()), "tinyautograd_adam")]:
        launches = _step_launches(model, opt, x, t)
        assert launches[update] == 4 and launches["tinyautograd_cross_entropy_rows"] == 1
        assert launches["tinyautograd_relu_backward"] == 1 and "astype" not in launches, launches
        # matmuls 2 forward + 3 backward, 2 bias adds, relu, 2 bias-grad sums, loss sum/count/mean, seed ones
        assert sum(launches.values()) <= 21, launches


def test_launch_budget_of_the_improved_mnist_lenet_and_batch_norm_cnn_steps(fake):
    """Batch norm is one launch forward and one backward (5 and 4 over big feature maps), dropout's mask one,
    sigmoid one; a conv2d's forward is im2col + GEMM + transpose-with-bias, and its weight gradient is adopted as
    the weight's .grad (no copy)."""
    import tinyautograd.nn as nn

    mlp = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Sigmoid(), nn.Dropout(0.5),
                        nn.Linear(100, 10)).cuda()
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10)).cuda()
    bn_cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(16 * 49, 10)).cuda()
    for model, x, budget in [(mlp, tg.randn(100, 784, device="cuda"), 30),
                             (lenet, tg.randn(64, 1, 28, 28, device="cuda"), 49),
                             (bn_cnn, tg.randn(64, 1, 28, 28, device="cuda"), 63)]:
        t = tg.randint(0, 10, (x.shape[0],), device="cuda")
        opt = tg.optim.Adam(model.parameters())
        launches = _step_launches(model, opt, x, t)
        params = len(list(model.parameters()))
        assert launches["tinyautograd_adam"] == params and "astype" not in launches, launches
        if model is mlp:
            assert launches["tinyautograd_batch_norm"] == launches["tinyautograd_batch_norm_backward"] == 1
            assert launches["tinyautograd_dropout_mask"] == launches["tinyautograd_sigmoid"] == 1, launches
        else:
            assert launches["tinyautograd_im2col2d"] == launches["tinyautograd_batch_first_bias"] == 2, launches
            assert "reshape" not in launches, launches
        if model is bn_cnn:  # 28 x 28 and 14 x 14 maps: more values per channel than one thread should walk
            assert launches["tinyautograd_batch_norm_normalize"] == launches["tinyautograd_batch_norm_input_grad"] == 2
        assert sum(launches.values()) <= budget, launches


def test_a_leaf_keeps_a_fresh_gradient_but_never_a_shared_one():
    """The leaf adopts a gradient array nobody else holds; shared ones (a user's gradient, one given to two
    leaves, one a retained non-leaf also keeps) are copied, so accumulating later changes nothing else."""
    G = tg.ones(3)
    a, b = tg.randn(3, requires_grad=True), tg.randn(3, requires_grad=True)
    (a + b).backward(G)
    c = a * 1.0
    c.retain_grad()
    (c + a).backward(G)
    (a + b).backward(G)
    assert G.tolist() == [1.0, 1.0, 1.0] and c.grad.tolist() == [1.0, 1.0, 1.0]
    assert a.grad.tolist() == [4.0, 4.0, 4.0] and b.grad.tolist() == [2.0, 2.0, 2.0]
    for x, y in [(a.grad, b.grad), (a.grad, c.grad), (a.grad, G), (b.grad, G)]:
        assert not np.shares_memory(x.numpy(), y.numpy())
