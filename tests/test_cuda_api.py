"""The CUDA user surface a torch script touches: ``tinyautograd.cuda``, moving tensors and modules, creation with
``device=``, optimizer state next to its parameter, data moved batch by batch. Runs on a GPU where one is visible,
else on the CuPy stand-in (``cuda_device`` fixture, tests/conftest.py); torch's behaviour, where it is compared,
is torch's documented one (``.to`` returning ``self`` when nothing changes, ``Module._apply`` moving gradients...).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyautograd as tg
import tinyautograd.nn as nn
import tinyautograd.utils.data as tgd
from tinyautograd import optim


def test_cuda_module_answers_like_torch_cuda(cuda_device):
    assert tg.cuda.is_available() and tg.cuda.device_count() >= 1
    assert tg.cuda.current_device() == 0
    assert isinstance(tg.cuda.get_device_name(), str) and tg.cuda.get_device_name(0) == tg.cuda.get_device_name()
    tg.cuda.synchronize()
    tg.cuda.manual_seed(3)
    a = tg.randn(5, device="cuda")
    tg.cuda.manual_seed_all(3)
    b = tg.randn(5, device="cuda")
    np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    # torch's split: cuda.manual_seed leaves the cpu stream alone; manual_seed seeds both
    tg.manual_seed(0)
    cpu_draw = tg.randn(3).numpy()
    tg.manual_seed(0)
    tg.cuda.manual_seed(9)
    np.testing.assert_array_equal(tg.randn(3).numpy(), cpu_draw)
    tg.manual_seed(4)
    c = tg.rand(4, device="cuda")
    tg.manual_seed(4)
    np.testing.assert_array_equal(tg.rand(4, device="cuda").cpu().numpy(), c.cpu().numpy())


def test_moving_a_tensor_and_back(cuda_device):
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    c = t.cuda()
    assert c.is_cuda and not t.is_cuda and c.device == tg.device("cuda", 0) and c.get_device() == 0
    assert c.requires_grad and c.grad_fn is not None  # a differentiable copy, as torch's
    assert c.cuda() is c and c.to("cuda") is c and c.to(tg.device("cuda:0")) is c
    assert c.to("cuda", non_blocking=True) is c
    back = c.cpu()
    assert back.device.type == "cpu" and back.tolist() == [1.0, 2.0]
    (c * 3).sum().backward()
    assert t.grad.device.type == "cpu" and t.grad.tolist() == [3.0, 3.0]
    d = t.detach().to("cuda", tg.float64)
    assert d.is_cuda and d.dtype == tg.float64
    e = tg.zeros(1).to(d)  # .to(other) takes the other tensor's device and dtype
    assert e.is_cuda and e.dtype == tg.float64


@pytest.mark.parametrize("make", [
    lambda d: tg.zeros(2, 3, device=d), lambda d: tg.ones(2, device=d), lambda d: tg.empty(4, device=d),
    lambda d: tg.full((2,), 7.0, device=d), lambda d: tg.arange(5, device=d), lambda d: tg.linspace(0, 1, 3, device=d),
    lambda d: tg.eye(3, device=d), lambda d: tg.rand(2, device=d), lambda d: tg.randn(2, device=d),
    lambda d: tg.randint(0, 5, (3,), device=d), lambda d: tg.randperm(4, device=d),
    lambda d: tg.tensor([1, 2], device=d), lambda d: tg.as_tensor(np.ones(2), device=d),
    lambda d: tg.zeros_like(tg.ones(2), device=d), lambda d: tg.ones(2).new_zeros(3, device=d),
], ids=["zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
        "tensor", "as_tensor", "zeros_like", "new_zeros"])
def test_every_creation_function_takes_device(cuda_device, make):
    for device in ("cuda", tg.device("cuda", 0), "cuda:0"):
        t = make(device)
        assert t.is_cuda and t.device == tg.device("cuda", 0)


def test_default_device_cuda_places_new_tensors(cuda_device):
    try:
        tg.set_default_device("cuda")
        assert tg.zeros(1).is_cuda and tg.tensor([1.0]).is_cuda and nn.Linear(2, 2).weight.is_cuda
    finally:
        tg.set_default_device(None)
    assert not tg.zeros(1).is_cuda


def test_module_to_cuda_moves_parameters_buffers_and_gradients(cuda_device):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model(tg.randn(5, 3)).sum().backward()
    weight = model[0].weight
    assert model.cuda() is model
    assert weight.is_cuda and weight.grad.is_cuda and model[1].running_mean.is_cuda
    assert all(p.is_cuda for p in model.parameters()) and all(b.is_cuda for b in model.buffers())
    assert model[0].weight is weight  # moved in place: an optimizer built before still holds it
    out = model(tg.randn(5, 3, device="cuda"))
    assert out.is_cuda
    model.to("cpu")
    assert not weight.is_cuda and not weight.grad.is_cuda


def test_optimizer_state_lives_with_its_parameter(cuda_device):
    model = nn.Linear(3, 2).cuda()
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(tg.randn(4, 3, device="cuda")).pow(2).sum().backward()
    opt.step()
    state = opt.state[model.weight]
    assert state["exp_avg"].is_cuda and state["exp_avg_sq"].is_cuda and not state["step"].is_cuda
    # a state_dict saved on the GPU loads onto cpu parameters (and back), cast to the parameters' device
    cpu_model = nn.Linear(3, 2)
    cpu_opt = optim.Adam(cpu_model.parameters(), lr=0.1)
    cpu_opt.load_state_dict(opt.state_dict())
    assert not cpu_opt.state[cpu_model.weight]["exp_avg"].is_cuda
    np.testing.assert_array_equal(cpu_opt.state[cpu_model.weight]["exp_avg"].numpy(), state["exp_avg"].cpu().numpy())
    opt.load_state_dict(cpu_opt.state_dict())
    assert opt.state[model.weight]["exp_avg"].is_cuda


def test_training_on_cuda_equals_training_on_cpu(cuda_device):
    """The same seeded model, data and optimizer: a few steps on each device give the same weights."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 6)), rng.integers(0, 3, 32)
    results = {}
    for device in ("cpu", "cuda"):
        tg.manual_seed(1)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(device=device, dtype=tg.float64)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loader = tgd.DataLoader(tgd.TensorDataset(tg.tensor(x), tg.tensor(y)), batch_size=8)
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        results[device] = [p.detach().cpu().numpy() for p in model.parameters()]
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_data_loader_pin_memory_is_accepted(cuda_device):
    loader = tgd.DataLoader(tgd.TensorDataset(tg.arange(6.0)), batch_size=4, pin_memory=True)
    batches = [b[0].to("cuda", non_blocking=True) for b in loader]
    assert [b.tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]] and all(b.is_cuda for b in batches)


@pytest.mark.parametrize("fill", [
    lambda t: t.uniform_(-2, 3), lambda t: t.normal_(1.0, 0.5), lambda t: t.bernoulli_(0.3),
    lambda t: t.exponential_(2.0), lambda t: t.random_(0, 7), lambda t: nn.init.normal_(t, 0, 0.02),
    lambda t: nn.init.trunc_normal_(t, std=0.5), lambda t: nn.init.xavier_normal_(t),
    lambda t: nn.init.kaiming_normal_(t), lambda t: nn.init.xavier_uniform_(t), lambda t: nn.init.orthogonal_(t),
    lambda t: nn.init.sparse_(t, 0.5), lambda t: nn.init.eye_(t),
], ids=["uniform_", "normal_", "bernoulli_", "exponential_", "random_", "init.normal_", "init.trunc_normal_",
        "init.xavier_normal_", "init.kaiming_normal_", "init.xavier_uniform_", "init.orthogonal_", "init.sparse_",
        "init.eye_"])
def test_random_fills_and_initialisers_draw_on_the_device(cuda_device, fill):
    """In-place random fills and nn.init draw from the CUDA generator, which has fewer methods than NumPy's (no
    normal, permutation or choice in CuPy's): each works on a CUDA tensor, in place, with plausible values, and
    a CUDA seed repeats it."""
    results = []
    for _ in range(2):
        tg.cuda.manual_seed(11)
        t = tg.empty(4, 8, device="cuda")
        out = fill(t)
        assert out is t and t.is_cuda and t.dtype == tg.float32
        results.append(t.cpu().numpy())
    assert np.isfinite(results[0]).all() and results[0].std() > 0
    np.testing.assert_array_equal(results[0], results[1])


def test_modules_built_on_the_device_initialise_there(cuda_device):
    for module in (nn.Embedding(10, 4, device="cuda"), nn.Linear(3, 2, device="cuda"),
                   nn.Conv2d(1, 2, 3, device="cuda"), nn.LSTM(3, 4, device="cuda")):
        assert all(p.is_cuda for p in module.parameters())


def test_a_generator_draws_only_on_its_own_device(cuda_device):
    """torch's rule: a Generator made for one device refuses draws on the other, with torch's message. A CUDA
    generator repeats its stream from a seed; its state cannot be read or set (CuPy's generators keep it hidden),
    which raises rather than returning the cpu stream's."""
    g = tg.Generator(device="cuda")
    draws = [g.manual_seed(5) and tg.rand(6, generator=g, device="cuda").tolist() for _ in range(2)]
    assert draws[0] == draws[1] and len(set(draws[0])) == 6
    mixes = [lambda: tg.rand(2, generator=tg.Generator(), device="cuda"),
             lambda: tg.empty(3, device="cuda").normal_(generator=tg.Generator()),
             lambda: tg.randn(2, generator=g),
             lambda: tg.empty(3).uniform_(generator=g)]
    for mix, (want, found) in zip(mixes, [("cuda", "cpu"), ("cuda", "cpu"), ("cpu", "cuda"), ("cpu", "cuda")]):
        with pytest.raises(RuntimeError, match=f"^Expected a '{want}' device type for generator but found "
                                               f"'{found}'"):
            mix()
    for call in (g.get_state, lambda: g.set_state(tg.Generator().get_state())):
        with pytest.raises(RuntimeError, match="manual_seed"):
            call()


def test_tensor_indices_on_either_device_index_a_cuda_tensor(cuda_device):
    """torch takes cpu index tensors for a CUDA tensor, and negative indices; an index out of range raises (CuPy
    alone would wrap it around): a cpu index at once, a device index at the next host read."""
    x = tg.arange(6.0, device="cuda").reshape(2, 3)
    assert x[tg.tensor([1, -2])].tolist() == [[3.0, 4.0, 5.0], [0.0, 1.0, 2.0]]
    assert x[:, tg.tensor([2, -3], device="cuda")].tolist() == [[2.0, 0.0], [5.0, 3.0]]
    x[tg.tensor([True, False]), tg.tensor([-1])] = 9.0
    assert x.tolist() == [[0.0, 1.0, 9.0], [3.0, 4.0, 5.0]]
    with pytest.raises(IndexError, match="^index 5 is out of bounds for dimension 1 with size 3$"):
        x[:, tg.tensor([0, 5])]
    for index, message in [((Ellipsis, tg.tensor([-4], device="cuda")), "index -4 .* dimension 1 with size 3"),
                           ((None, tg.tensor([2], device="cuda")), "index 2 .* dimension 0 with size 2")]:
        y = x[index]
        with pytest.raises(IndexError, match=message):
            y.tolist()
    x[tg.tensor([1], device="cuda"), tg.tensor([3], device="cuda")] = 1.0
    with pytest.raises(IndexError, match="index 3 .* dimension 1 with size 3"):
        tg.cuda.synchronize()
    with pytest.raises(RuntimeError, match="indices should be either on cpu or on the same device"):
        tg.ones(3)[tg.tensor([0], device="cuda")]
