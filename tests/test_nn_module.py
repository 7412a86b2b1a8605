"""nn.Module's API against torch.nn.Module: registration, naming, hooks, modes, devices and dtypes, state dicts
(including the all-or-nothing strict failure), reprs, and the containers and Parameter."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyautograd
import tinyautograd.nn as nn
from helpers import torch_comparable

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")


def same_text(ours: str, theirs: str) -> None:
    ours = torch_comparable(ours)
    assert ours == theirs.replace("torch.", "tinyautograd."), f"\nours:\n{ours}\ntorch:\n{theirs}"


# -- building the same model in both libraries ------------------------------------------------------------------

# A tree spec: ("linear", i, o, bias) | ("bn", c) | ("relu",) | ("seq", [children]) | ("list", [children])
# | ("dict", [(key, child)]) | ("shared", index) reusing an earlier leaf module object.
def build(lib, spec, made: list):
    kind = spec[0]
    if kind == "linear":
        m = lib.Linear(spec[1], spec[2], bias=spec[3])
    elif kind == "bn":
        m = lib.BatchNorm1d(spec[1])
    elif kind == "relu":
        m = lib.ReLU()
    elif kind == "seq":
        m = lib.Sequential(*[build(lib, c, made) for c in spec[1]])
    elif kind == "list":
        m = lib.ModuleList([build(lib, c, made) for c in spec[1]])
    elif kind == "dict":
        m = lib.ModuleDict(OrderedDict((k, build(lib, c, made)) for k, c in spec[1]))
    else:
        return made[spec[1] % len(made)] if made else lib.Identity()
    if kind in ("linear", "bn", "relu"):
        made.append(m)
    return m


leaf = st.one_of(
    st.tuples(st.just("linear"), st.integers(1, 3), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("bn"), st.integers(1, 3)),
    st.tuples(st.just("relu")),
    st.tuples(st.just("shared"), st.integers(0, 10)),
)
keys = st.sampled_from(["enc", "dec", "head", "a", "b"])
tree = st.recursive(leaf, lambda children: st.one_of(
    st.tuples(st.just("seq"), st.lists(children, max_size=3)),
    st.tuples(st.just("list"), st.lists(children, max_size=3)),
    st.tuples(st.just("dict"), st.lists(st.tuples(keys, children), max_size=3, unique_by=lambda kv: kv[0])),
), max_leaves=8)


def twin_models(spec):
    ours = build(nn, ("seq", [spec]), [])
    theirs = build(torch.nn, ("seq", [spec]), [])
    return ours, theirs


@settings(deadline=None)
@given(tree)
def test_names_match_torch_for_random_trees(spec):
    ours, theirs = twin_models(spec)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters(prefix="model")] == \
        [n for n, _ in theirs.named_parameters(prefix="model")]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert repr(ours).replace("tinyautograd.", "torch.") == repr(theirs)


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_recurse_false_lists_own_members_only():
    model = nn.Sequential(nn.Linear(2, 2))
    model.scale = nn.Parameter(tinyautograd.ones(1))
    assert [n for n, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in model.named_parameters()] == ["scale", "0.weight", "0.bias"]


# -- registration -----------------------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(tinyautograd.ones(2))
        self.register_buffer("steps", tinyautograd.zeros(1))
        self.register_buffer("cache", tinyautograd.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("steps", torch.zeros(1))
        self.register_buffer("cache", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


def test_attribute_registration_matches_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == ["steps", "cache"]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["scale", "steps", "fc.weight", "fc.bias"]
    assert isinstance(ours.scale, nn.Parameter) and ours.fc is ours._modules["fc"]


def test_assigning_a_plain_tensor_to_a_parameter_slot_raises_type_error():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError) as ours:
        lin.weight = tinyautograd.zeros(2, 2)
    with pytest.raises(TypeError) as theirs:
        torch.nn.Linear(2, 2).weight = torch.zeros(2, 2)
    same_text(str(ours.value), str(theirs.value))
    lin.bias = None
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]


def test_missing_attribute_message_matches_torch():
    with pytest.raises(AttributeError) as ours:
        nn.Linear(2, 2).foo
    with pytest.raises(AttributeError) as theirs:
        torch.nn.Linear(2, 2).foo
    assert str(ours.value) == str(theirs.value)


def test_reassigning_and_deleting_members():
    net = Net()
    net.fc = nn.Linear(3, 4)
    assert net.fc.out_features == 4
    net.steps = tinyautograd.ones(1)
    assert net._buffers["steps"].item() == 1.0
    del net.scale
    assert "scale" not in dict(net.named_parameters())
    with pytest.raises(AttributeError):
        net.scale
    net.extra = 3
    del net.extra
    assert not hasattr(net, "extra")


def test_assignment_before_init_raises():
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(tinyautograd.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


@pytest.mark.parametrize("name, error", [("a.b", KeyError), ("", KeyError), ("weight", KeyError), (3, TypeError)])
def test_add_module_rejects_bad_names_like_torch(name, error):
    with pytest.raises(error):
        nn.Linear(2, 2).add_module(name, nn.ReLU())
    with pytest.raises(error):
        torch.nn.Linear(2, 2).add_module(name, torch.nn.ReLU())


def test_registration_type_errors():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        lin.add_module("x", 3)
    with pytest.raises(TypeError):
        lin.register_buffer("b", 3)
    with pytest.raises(TypeError):
        lin.register_parameter("p", tinyautograd.zeros(1))
    with pytest.raises(TypeError):
        lin.register_parameter("p", nn.Parameter(tinyautograd.zeros(1)) * 2)


def test_register_module_and_get_submodule_parameter_buffer():
    root = nn.Module()
    root.register_module("body", nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    assert root.get_submodule("body.1") is root.body[1]
    assert root.get_submodule("") is root
    assert root.get_parameter("body.0.weight") is root.body[0].weight
    assert root.get_buffer("body.1.running_mean") is root.body[1].running_mean
    with pytest.raises(AttributeError, match="has no attribute `x`"):
        root.get_submodule("body.x")
    with pytest.raises(AttributeError, match="is not an nn.Parameter"):
        root.get_parameter("body.1.running_mean")
    with pytest.raises(AttributeError, match="is not an nn.Module"):
        root.get_submodule("body.0.weight")


def test_non_persistent_buffers_are_moved_but_not_saved():
    net = Net().double()
    assert net.cache.dtype == tinyautograd.float64
    assert "cache" not in net.state_dict()


# -- calling and hooks ------------------------------------------------------------------------------------------

def test_forward_hooks_run_in_torch_order_and_can_replace_values():
    calls = {"ours": [], "torch": []}

    def attach(model, log, lib):
        hs = [model.register_forward_pre_hook(lambda m, args: log.append("pre1")),
              model.register_forward_pre_hook(lambda m, args: (args[0] * 2,)),
              model.register_forward_pre_hook(lambda m, args: log.append("pre0"), prepend=True),
              model.register_forward_hook(lambda m, args, out: log.append("post1")),
              model.register_forward_hook(lambda m, args, out: out + 1),
              model.register_forward_hook(lambda m, args, out: log.append("post0"), prepend=True)]
        return hs

    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
    h_ours = attach(ours, calls["ours"], nn)
    h_theirs = attach(theirs, calls["torch"], torch.nn)
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    y_ours = ours(tinyautograd.tensor(x))
    y_theirs = theirs(torch.tensor(x))
    assert calls["ours"] == calls["torch"] == ["pre0", "pre1", "post0", "post1"]
    np.testing.assert_allclose(y_ours.detach().cpu().numpy(), y_theirs.detach().cpu().numpy(), rtol=1e-6)
    for h in h_ours:
        h.remove()
    assert not ours._forward_hooks and not ours._forward_pre_hooks
    np.testing.assert_allclose(ours(tinyautograd.tensor(x)).detach().cpu().numpy(),
                               theirs.forward(torch.tensor(x)).detach().cpu().numpy(), rtol=1e-6)
    del h_theirs


def test_hooks_with_kwargs_and_handle_as_context_manager():
    class Scale(nn.Module):
        def forward(self, x, *, factor=1.0):
            return x * factor

    m = Scale()
    seen = []
    with m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True):
        with m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs["factor"]),
                                     with_kwargs=True):
            assert m(tinyautograd.tensor([1.0])).item() == 3.0
    assert seen == [3.0]
    assert m(tinyautograd.tensor([1.0])).item() == 1.0


def test_pre_hook_returning_a_single_value_is_wrapped():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, args: args[0] + 1)
    assert m(tinyautograd.tensor(1.0)).item() == 2.0


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


# -- modes, gradients, apply --------------------------------------------------------------------------------------

def test_train_eval_propagate_and_reject_non_bool():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="boolean"):
        model.train(1)


def test_requires_grad_and_zero_grad():
    model = nn.Linear(2, 1)
    model(tinyautograd.ones(3, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.cpu().numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_apply_visits_children_before_parent_like_torch():
    def order(lib):
        seen = []
        m = lib.Sequential(lib.Linear(1, 1), lib.Sequential(lib.ReLU(), lib.Tanh()))
        m.apply(lambda mod: seen.append(type(mod).__name__))
        return seen

    assert order(nn) == order(torch.nn)


def test_apply_can_initialise_weights():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    model.apply(init)
    assert all((m.weight.detach().cpu().numpy() == 0.5).all() for m in model if isinstance(m, nn.Linear))


# -- dtype and device moves ---------------------------------------------------------------------------------------

def test_to_dtype_keeps_parameter_identity_and_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = model[0].weight
    model(tinyautograd.randn(4, 2)).sum().backward()
    assert model.to(tinyautograd.float64) is model
    assert model[0].weight is weight and weight.dtype == tinyautograd.float64
    assert weight.grad.dtype == tinyautograd.float64
    assert model[1].running_mean.dtype == tinyautograd.float64
    assert model[1].num_batches_tracked.dtype == tinyautograd.int64
    model.float()
    assert weight.dtype == tinyautograd.float32
    model.half()
    assert weight.dtype == tinyautograd.float16
    model.to(tinyautograd.ones(1, dtype=tinyautograd.float64))
    assert weight.dtype == tinyautograd.float64
    model.type(tinyautograd.float32)
    assert weight.dtype == tinyautograd.float32


def test_to_integer_dtype_raises_type_error_like_torch():
    with pytest.raises(TypeError) as ours:
        nn.Linear(1, 1).to(tinyautograd.int64)
    with pytest.raises(TypeError) as theirs:
        torch.nn.Linear(1, 1).to(torch.int64)
    same_text(str(ours.value), str(theirs.value))


def test_to_device(device):
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = model[0].weight
    model.to(device)
    assert weight.device.type == device and model[1].running_var.device.type == device
    out = model(tinyautograd.randn(3, 2, device=device))
    assert out.device.type == device
    model.cpu()
    assert weight.device.type == "cpu"


# -- state dicts --------------------------------------------------------------------------------------------------

def test_state_dict_is_detached_and_shares_memory():
    model = nn.Linear(2, 2)
    sd = model.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad and not isinstance(sd["weight"], nn.Parameter)
    with tinyautograd.no_grad():
        model.weight.fill_(2.0)
    assert (sd["weight"].cpu().numpy() == 2.0).all()
    kept = model.state_dict(keep_vars=True)
    assert kept["weight"] is model.weight
    assert list(model.state_dict(prefix="m.")) == ["m.weight", "m.bias"]


def test_load_state_dict_round_trip_and_numpy_values():
    a, b = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    a(tinyautograd.randn(4, 3))
    result = b.load_state_dict({k: v.cpu().numpy() for k, v in a.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va.cpu().numpy(), vb.cpu().numpy(), err_msg=k)
    assert b[0].weight.requires_grad


def _torch_and_ours_bad_state():
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    ours = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    sd = {k: v.detach().cpu().numpy().copy() for k, v in theirs.state_dict().items()}
    sd["foo"] = np.zeros(1, np.float32)
    del sd["1.bias"]
    sd["0.weight"] = np.zeros((4, 2), np.float32)
    sd["0.bias"] = np.full(3, 7.0, np.float32)  # a good key that must not be written when the load fails
    return theirs, ours, sd


def test_strict_failure_message_matches_torch_and_changes_nothing():
    theirs, ours, sd = _torch_and_ours_bad_state()
    before = {k: v.cpu().numpy().copy() for k, v in ours.state_dict().items()}
    with pytest.raises(RuntimeError) as ours_err:
        ours.load_state_dict(sd)
    with pytest.raises(RuntimeError) as torch_err:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    same_text(str(ours_err.value), str(torch_err.value))
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.cpu().numpy(), before[k], err_msg=f"{k} changed by a failed load")
    # torch, unlike us, has already copied the good key before raising
    assert (theirs[0].bias.detach().cpu().numpy() == 7.0).all()


def test_shape_mismatch_raises_even_when_not_strict_and_names_both_shapes():
    theirs, ours, sd = _torch_and_ours_bad_state()
    with pytest.raises(RuntimeError) as err:
        ours.load_state_dict(sd, strict=False)
    msg = str(err.value)
    assert "0.weight" in msg and "[4, 2]" in msg and "[3, 2]" in msg
    assert "Missing" not in msg
    with pytest.raises(RuntimeError) as torch_err:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    same_text(msg, str(torch_err.value))


def test_non_strict_load_reports_keys_like_torch():
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    ours = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = {k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()}
    del sd["1.running_var"]
    sd["extra.weight"] = np.zeros(1, np.float32)
    r_ours = ours.load_state_dict(sd, strict=False)
    r_theirs = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    assert r_ours.missing_keys == r_theirs.missing_keys
    assert r_ours.unexpected_keys == r_theirs.unexpected_keys
    assert repr(r_ours) == repr(r_theirs)


def test_load_state_dict_assign_replaces_parameters():
    model = nn.Linear(2, 2)
    model.weight.requires_grad_(False)
    new_w = tinyautograd.full((2, 2), 3.0)
    model.load_state_dict({"weight": new_w, "bias": tinyautograd.zeros(2)}, assign=True)
    assert isinstance(model.weight, nn.Parameter) and not model.weight.requires_grad
    assert model.bias.requires_grad
    assert (model.weight.detach().cpu().numpy() == 3.0).all()


def test_load_state_dict_converts_dtype():
    model = nn.Linear(2, 2).double()
    model.load_state_dict({"weight": np.ones((2, 2), np.float32), "bias": np.zeros(2, np.float32)})
    assert model.weight.dtype == tinyautograd.float64 and model.weight.detach().cpu().numpy().sum() == 4.0


def test_load_state_dict_rejects_non_arrays():
    with pytest.raises(TypeError, match="weight"):
        nn.Linear(1, 1).load_state_dict({"weight": [[1.0]], "bias": [0.0]})


# -- copies and reprs ---------------------------------------------------------------------------------------------

def test_deepcopy_is_independent():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    clone = copy.deepcopy(model)
    with tinyautograd.no_grad():
        clone[0].weight.fill_(1.0)
    clone[1].running_mean._data[...] = 5
    assert not (model[0].weight.detach().cpu().numpy() == 1.0).all()
    assert (model[1].running_mean.cpu().numpy() == 0).all()
    assert isinstance(clone[0].weight, nn.Parameter) and clone[0].weight.requires_grad


def test_nested_repr_equals_torch():
    def make(lib):
        return lib.Sequential(OrderedDict([
            ("features", lib.Sequential(lib.Linear(4, 8), lib.BatchNorm1d(8), lib.LeakyReLU(0.1),
                                        lib.Dropout(0.25))),
            ("blocks", lib.ModuleList([lib.Linear(8, 8) for _ in range(3)] + [lib.GELU(approximate="tanh")])),
            ("heads", lib.ModuleDict({"cls": lib.Linear(8, 3, bias=False), "norm": lib.LayerNorm(8)})),
            ("embed", lib.Embedding(10, 4, padding_idx=0)),
            ("misc", lib.Sequential(lib.Flatten(), lib.Unflatten(1, (2, 4)), lib.Identity(), lib.Softmax(dim=1),
                                    lib.GroupNorm(2, 4), lib.PReLU(), lib.Hardtanh(-2.0, 2.0), lib.ReLU(True))),
            ("loss", lib.CrossEntropyLoss(label_smoothing=0.1)),
        ]))

    same_text(repr(make(nn)), repr(make(torch.nn)))


def test_parameter_repr_and_construction():
    data = np.array([[1.0, -2.5], [0.125, 3.0]], dtype=np.float32)
    ours = nn.Parameter(tinyautograd.tensor(data))
    theirs = torch.nn.Parameter(torch.tensor(data))
    same_text(repr(ours), repr(theirs))
    assert isinstance(ours, tinyautograd.Tensor) and ours.is_leaf and ours.requires_grad
    assert type(ours * 2) is tinyautograd.Tensor
    assert tuple(nn.Parameter().shape) == (0,)
    frozen = nn.Parameter(tinyautograd.zeros(2), requires_grad=False)
    assert not frozen.requires_grad
    same_text(repr(frozen), repr(torch.nn.Parameter(torch.zeros(2), requires_grad=False)))


# -- containers ---------------------------------------------------------------------------------------------------

def test_sequential_indexing_slicing_and_editing_like_torch():
    def ops(lib):
        s = lib.Sequential(lib.Linear(1, 2), lib.ReLU(), lib.Linear(2, 3), lib.Tanh())
        out = [type(s[-1]).__name__, type(s[0:2]).__name__, len(s[1:]), list(s[1:]._modules)]
        s.append(lib.Sigmoid())
        s.insert(1, lib.Identity())
        s.extend([lib.ReLU6()])
        del s[0]
        out += [[type(m).__name__ for m in s], list(s._modules), len(s)]
        s[0] = lib.ELU()
        out.append(type(s[0]).__name__)
        named = lib.Sequential(OrderedDict([("first", lib.ReLU()), ("second", lib.Tanh())]))
        out += [list(named._modules), type(named.second).__name__, type(named[1]).__name__]
        out.append(len(s + named))
        return out

    assert ops(nn) == ops(torch.nn)
    with pytest.raises(IndexError, match="out of range"):
        nn.Sequential(nn.ReLU())[3]


def test_sequential_forward_chains():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = tinyautograd.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().cpu().numpy(), s[2](s[1](s[0](x))).detach().cpu().numpy())


def test_module_list_and_dict_like_torch():
    def ops(lib):
        ml = lib.ModuleList([lib.ReLU(), lib.Tanh()])
        ml.append(lib.Sigmoid())
        ml.insert(0, lib.Identity())
        ml += [lib.ReLU()]
        out = [[type(m).__name__ for m in ml], type(ml[-1]).__name__, len(ml[1:3]), repr(ml)]
        del ml[1]
        out.append(list(ml._modules))
        md = lib.ModuleDict({"b": lib.ReLU(), "a": lib.Tanh()})
        md["c"] = lib.Sigmoid()
        out += [list(md.keys()), "a" in md, len(md), type(md.pop("b")).__name__, list(md)]
        md.update([("z", lib.ReLU())])
        out.append(list(md.keys()))
        return out

    assert ops(nn) == ops(torch.nn)


def test_parameter_list_and_dict_like_torch():
    def ops(lib, mk):
        pl = lib.ParameterList([mk([1.0, 2.0]), lib.Parameter(mk([3.0]))])
        pl.append(mk([4.0, 5.0, 6.0]))
        out = [len(pl), [type(p).__name__ for p in pl], [n for n, _ in pl.named_parameters()], repr(pl)]
        pd = lib.ParameterDict({"w": mk([1.0]), "b": mk([2.0, 3.0])})
        pd["c"] = mk([0.0])
        out += [list(pd.keys()), [n for n, _ in pd.named_parameters()], repr(pd), "w" in pd,
                type(pd["w"]).__name__]
        return out

    ours = ops(nn, lambda v: tinyautograd.tensor(v))
    theirs = ops(torch.nn, lambda v: torch.tensor(v))
    assert [torch_comparable(str(o)).replace("tinyautograd.", "torch.") for o in ours] == [str(o) for o in theirs]


def test_containers_register_parameters_for_optimisation():
    model = nn.Module()
    model.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    model.table = nn.ParameterDict({"a": tinyautograd.zeros(3)})
    assert [n for n, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "table.a"]


def test_buffer_assignment_registers_like_torch():
    def names(lib, mk):
        m = lib.Module()
        m.kept = lib.Buffer(mk())
        m.scratch = lib.Buffer(mk(), persistent=False)
        return [n for n, _ in m.named_buffers()], list(m.state_dict()), type(m.kept).__name__

    assert names(nn, lambda: tinyautograd.zeros(2)) == names(torch.nn, lambda: torch.zeros(2))
