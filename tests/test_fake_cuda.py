"""The CuPy stand-in used for the ``fakecuda`` copies of the device tests keeps CuPy's rules (tests/fake_cupy.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fake_cupy
from tinyautograd.tensor import _PENDING
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


def _syncs(fn) -> dict:
    fake_cupy.SYNCS.clear()
    fn()
    return dict(fake_cupy.SYNCS)


def test_training_steps_never_wait_for_the_device(fake):
    """No device-to-host read in a training step (as the stand-in counts them), gradient clipping, a learning
    rate schedule and recurrent models with an embedding included: the divisor of cross entropy's mean and the
    clipping norm stay on the device, and the checks of the class targets and of BCE's range wait for the loss's
    first read on the host. Reading the loss then costs one transfer, the check included (and one more for
    pending index flags)."""
    import tinyautograd.nn as nn
    import tinyautograd.nn.functional as F

    mlp = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Dropout(0.5), nn.Linear(100, 10))
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(6 * 14 * 14, 10))
    autoencoder = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784), nn.Sigmoid())
    segmenter = nn.Conv2d(3, 4, 3, padding=1)
    images, digits = tg.rand(16, 784, device="cuda"), tg.randint(0, 10, (16,), device="cuda")
    weights = tg.rand(10, device="cuda")
    words = tg.randint(0, 50, (16, 5), device="cuda")  # token ids for the recurrent models
    cases = [
        (mlp, images, lambda y: F.cross_entropy(y, digits)),
        (mlp, images, lambda y: F.cross_entropy(y, digits, weight=weights, label_smoothing=0.1, ignore_index=3)),
        (mlp, images, lambda y: F.nll_loss(F.log_softmax(y, dim=1), digits, reduction="sum")),
        (lenet, images.reshape(16, 1, 28, 28), lambda y: F.cross_entropy(y, digits)),
        (autoencoder, images, lambda y: F.binary_cross_entropy(y, images)),
        (autoencoder, images, lambda y: F.mse_loss(y, images)),
        (autoencoder, images, lambda y, w=tg.rand(16, 784, device="cuda"): F.mse_loss(y, images, weight=w)),
        (segmenter, tg.randn(2, 3, 5, 5, device="cuda"),
         lambda y, t=tg.randint(0, 4, (2, 5, 5), device="cuda"): F.cross_entropy(y, t)),
        (nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 16, batch_first=True)), words,
         lambda y: F.cross_entropy(y[0][:, -1], digits)),
        (nn.Sequential(nn.Embedding(50, 8), nn.GRU(8, 16, num_layers=2, batch_first=True)), words,
         lambda y: F.cross_entropy(y[0][:, -1], digits)),
    ]
    for i, (model, x, loss_of) in enumerate(cases):
        model.cuda()
        opt = tg.optim.Adam(model.parameters()) if i % 2 else tg.optim.SGD(model.parameters(), 0.01, momentum=0.9)
        sched = tg.optim.lr_scheduler.StepLR(opt, 2)
        losses = []

        def step():
            opt.zero_grad()
            loss = loss_of(model(x))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the norm and the factor stay on the device
            opt.step()
            sched.step()
            losses.append(loss)

        step()
        assert _syncs(step) == {}, (model, loss_of)
        value = []
        transfers = 2 if _PENDING else 1  # the embedding's index flags come in one transfer of their own
        assert _syncs(lambda: value.append(losses[-1].item())) == {"get": transfers}
        assert np.isfinite(value[0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "binary_cross_entropy"])
def test_an_invalid_target_on_cuda_raises_at_the_losss_first_host_read(fake, name, reduction):
    """torch on the CPU raises in the loss call; on CUDA it asserts on the device and reports at a later
    synchronisation. Here the loss is NaN (cross entropy's gradient too, in the bad row or, for a mean, everywhere),
    and every host read of the loss raises torch's own error: item, float, tolist, cpu, repr, np.asarray, also
    through detach() or .data (the same values)."""
    import tinyautograd.nn.functional as F

    if name == "binary_cross_entropy":
        x = tg.tensor([0.2, 1.5, 0.5], device="cuda", requires_grad=True)
        t, error, message = tg.tensor([0.0, 1.0, 0.5], device="cuda"), RuntimeError, "all elements of input"
        with pytest.raises(error, match=message):
            torch.nn.functional.binary_cross_entropy(torch.tensor([0.2, 1.5, 0.5]), torch.tensor([0.0, 1.0, 0.5]))
    else:
        x = tg.randn(3, 5, device="cuda", requires_grad=True)
        t, error, message = tg.tensor([0, 7, 1], device="cuda"), IndexError, "Target 7 is out of bounds"
        with pytest.raises(error, match=message):
            torch.nn.functional.cross_entropy(torch.randn(3, 5), torch.tensor([0, 7, 1]))
    loss = []
    assert _syncs(lambda: loss.append(getattr(F, name)(x, t, reduction=reduction))) == {}
    loss = loss[0]
    loss.sum().backward() if reduction == "none" else loss.backward()
    grad = x.grad.cpu().numpy()  # the gradient is not the checked tensor: it reads without an error
    if name != "binary_cross_entropy":  # the bad row's gradient is NaN, and all of a mean's
        assert np.isnan(grad).all() if reduction == "mean" else np.isnan(grad[1]).all() and np.isfinite(grad[0]).all()
    reads = [loss.tolist, lambda: loss.cpu(), lambda: repr(loss), lambda: np.asarray(loss),
             lambda: loss.to("cpu"), lambda: loss.detach().tolist(), lambda: loss.data.cpu()]
    if reduction != "none":
        reads += [loss.item, lambda: float(loss)]
    for read in reads:
        with pytest.raises(error, match=message):
            read()
    fine = getattr(F, name)(x.detach().clamp(0, 1), tg.tensor([0.0, 1.0, 0.5], device="cuda")) \
        if name == "binary_cross_entropy" else getattr(F, name)(x.detach(), tg.tensor([0, 4, 1], device="cuda"))
    assert np.isfinite(fine.item())


@pytest.mark.parametrize("op, error, message", [
    (lambda x, i: x.gather(1, i.reshape(1, 2)), RuntimeError, "gather.*index 9 is out of bounds"),
    (lambda x, i: x.index_select(1, i), IndexError, "index_select.*index out of range"),
    (lambda x, i: x.scatter(1, i.reshape(1, 2), 1.0), RuntimeError, "scatter.*index 9 is out of bounds"),
    (lambda x, i: tg.nn.functional.embedding(i, x.t()), IndexError, "index out of range in self"),
    (lambda x, i: tg.nn.functional.one_hot(i, 4), RuntimeError, "Class values must be smaller than num_classes"),
], ids=["gather", "index_select", "scatter", "embedding", "one_hot"])
def test_an_index_out_of_range_on_cuda_raises_at_the_next_host_read(fake, op, error, message):
    """On the CPU these raise in the call, as torch's do. On CUDA, where torch asserts on the device and reports at a
    later synchronisation, the check is a flag on the device and its error comes at the next host read of any
    tensor or at cuda.synchronize(), without a wait in the op itself."""
    x = tg.randn(1, 4, device="cuda")
    bad, fine = tg.tensor([1, 9], device="cuda"), tg.tensor([1, 2], device="cuda")
    out = []
    assert _syncs(lambda: out.append(op(x, bad))) == {}
    for read in (lambda: tg.ones(1, device="cuda").item(), tg.cuda.synchronize, lambda: out[0].cpu()):
        with pytest.raises(error, match=message):
            read()
        op(x, bad)  # each read reports the checks pending since the last one
    with pytest.raises(error, match=message):
        repr(out[0])
    assert _syncs(lambda: out.append(op(x, fine))) == {} and out[-1].cpu() is not None  # a good index: nothing
    tinyautograd_cpu = op(x.cpu(), fine.cpu())
    with pytest.raises(error, match=message):
        op(x.cpu(), bad.cpu())
    np.testing.assert_array_equal(out[-1].cpu().numpy(), tinyautograd_cpu.numpy())


def test_pending_index_checks_are_read_every_64(fake):
    x, i = tg.randn(3, 4, device="cuda"), tg.tensor([0, 2], device="cuda")

    def many():
        for _ in range(64):
            x.index_select(0, i)

    assert _syncs(many) == {"get": 1}  # the 64th check reads all 64 flags, in one transfer
    assert _syncs(lambda: x.index_select(0, i)) == {}
    x.index_select(0, tg.tensor([5], device="cuda"))  # among good ones, a bad one is still found
    x.index_select(0, i)
    with pytest.raises(IndexError, match="index_select"):
        tg.ones(1, device="cuda").item()
    assert tg.ones(1, device="cuda").item() == 1.0  # reported once


def _model_cases():
    import tinyautograd.nn as nn
    import tinyautograd.nn.functional as F

    digits = [0, 3, 9, 1, 3, 7]
    return {
        "mlp-bn-dropout-ce": (lambda: nn.Sequential(nn.Linear(12, 10), nn.BatchNorm1d(10), nn.GELU(), nn.Dropout(0.3),
                                                    nn.Linear(10, 10)),
                              (6, 12), lambda y: F.cross_entropy(y, tg.tensor(digits, device="cuda"),
                                                                 label_smoothing=0.1, ignore_index=7)),
        "lenet-ish": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                            nn.Conv2d(3, 4, 3), nn.Tanh(), nn.AvgPool2d(2, ceil_mode=True),
                                            nn.Flatten(), nn.Linear(4, 10)),
                      (6, 1, 8, 8), lambda y: F.nll_loss(F.log_softmax(y, 1), tg.tensor(digits, device="cuda"))),
        "autoencoder-bce": (lambda: nn.Sequential(nn.Linear(12, 4), nn.ELU(), nn.Linear(4, 12), nn.Sigmoid()),
                            (6, 12), lambda y: F.binary_cross_entropy(y, tg.full((6, 12), 0.25, device="cuda"))),
        "norms-kl": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4), nn.SiLU(), nn.Flatten(),
                                           nn.LayerNorm(24), nn.Linear(24, 5)),
                     (6, 2, 8), lambda y: F.kl_div(F.log_softmax(y, 1), F.softmax(y.detach() * 0.5, 1),
                                                   reduction="batchmean")),
        "bn2d-segment": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1)),
                         (2, 3, 5, 5), lambda y: F.cross_entropy(y, tg.tensor(np.arange(50).reshape(2, 5, 5) % 4,
                                                                              device="cuda"))),
        "huber-smoothl1": (lambda: nn.Sequential(nn.Linear(12, 6), nn.Softplus(), nn.Linear(6, 3)),
                           (6, 12), lambda y: F.huber_loss(y, tg.zeros(6, 3, device="cuda"), delta=0.5)
                           + F.smooth_l1_loss(y, tg.ones(6, 3, device="cuda"))),
    }


@pytest.mark.parametrize("case", sorted(_model_cases()))
def test_the_escape_hatch_runs_every_formula_on_the_device(fake, monkeypatch, case):
    """TINYAUTOGRAD_DISABLE_KERNELS=1 on CUDA: every op takes its array formula with CuPy arrays (the paths the
    kernels replace, checked here for host arrays leaking in), and gives the fused kernels' values and gradients
    (float64), through two SGD steps."""
    from tinyautograd import _kernels

    make, shape, loss_of = _model_cases()[case]
    results = {}
    for disabled in (False, True):
        monkeypatch.setattr(_kernels, "DISABLED", disabled)
        tg.manual_seed(0)
        model = make().double().cuda()
        opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # linear in the gradients: tight tolerances
        x = tg.tensor(np.linspace(-1.5, 2.0, int(np.prod(shape))).reshape(shape), device="cuda")
        losses = []
        fake_cupy.LAUNCHES.clear()
        for _ in range(2):
            tg.manual_seed(1)  # the same dropout masks both ways
            opt.zero_grad()
            loss = loss_of(model(x))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        fused = [name for name in fake_cupy.LAUNCHES if name.startswith("tinyautograd_")]
        assert (fused == []) == disabled, fused
        results[disabled] = losses, [p.detach().cpu().numpy() for p in model.parameters()]
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-10)
    for a, b in zip(results[True][1], results[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
