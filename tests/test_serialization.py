"""tinyautograd.save / tinyautograd.load: exact round trips of what checkpoints hold, torch's map_location rules,
atomic saves, and files that are never unpickled (crafted, corrupted and foreign files raise RuntimeError)."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import re
import stat
import zipfile
from collections import OrderedDict
from enum import IntEnum
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyautograd
from tinyautograd import serialization
from tinyautograd.tensor import Tensor
from helpers import cpu_only

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

CUDA = tinyautograd.cuda.is_available()

TENSOR_DTYPES = [tinyautograd.float32, tinyautograd.float64, tinyautograd.float16, tinyautograd.int64,
                 tinyautograd.int32, tinyautograd.int16, tinyautograd.int8, tinyautograd.uint8, tinyautograd.bool]
NDARRAY_DTYPES = ["?", "i1", "i2", "<i4", ">i4", "i8", "u1", "u2", "u4", "u8", "f2", "<f4", ">f8", "c8", "c16",
                  "U3", "S2", "M8[s]", "m8[ms]", np.dtype([("x", "<i4"), ("y", ">f8")])]


# -- helpers -----------------------------------------------------------------------------------------------------


def roundtrip(obj: Any, **load_kwargs: Any) -> Any:
    buffer = io.BytesIO()
    tinyautograd.save(obj, buffer)
    buffer.seek(0)
    return tinyautograd.load(buffer, **load_kwargs)


def saved_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    tinyautograd.save(obj, buffer)
    return buffer.getvalue()


def assert_same(expected: Any, actual: Any, path: str = "obj") -> None:
    """Equal values of identical types all the way down (tuple is not list, OrderedDict is not dict, NaN == NaN,
    -0.0 is not 0.0, arrays bit for bit)."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert [(type(k), k) for k in actual] == [(type(k), k) for k in expected], f"{path}: keys or their order"
        for key in expected:
            assert_same(expected[key], actual[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert (math.isnan(expected) and math.isnan(actual)) or (
            expected == actual and math.copysign(1, expected) == math.copysign(1, actual)), path
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, path
        assert np.asarray(actual).tobytes() == np.asarray(expected).tobytes(), path
        if isinstance(expected, np.ndarray) and expected.flags.f_contiguous and not expected.flags.c_contiguous:
            assert actual.flags.f_contiguous, f"{path}: Fortran order is kept"
    elif isinstance(expected, Tensor):
        assert_same_tensor(expected, actual, path)
    else:
        assert actual == expected, path


def assert_same_tensor(expected: Tensor, actual: Tensor, path: str = "obj") -> None:
    assert actual.dtype == expected.dtype and tuple(actual.shape) == tuple(expected.shape), path
    assert actual.device == expected.device, path
    assert actual.requires_grad == expected.requires_grad, path
    assert actual.is_leaf and actual.grad is None, path
    assert np.asarray(actual).tobytes() == np.ascontiguousarray(np.asarray(expected)).tobytes(), path


def archive_bytes(structure: Any, members: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("structure.json", structure if isinstance(structure, bytes) else json.dumps(structure))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def structure_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("structure.json"))


def replace_structure(data: bytes, structure: dict) -> bytes:
    """The same archive with another structure.json (a forged or edited file)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "structure.json"}
    return archive_bytes(structure, members)


def load_bytes(data: bytes, **kwargs: Any) -> Any:
    return tinyautograd.load(io.BytesIO(data), **kwargs)


class MakesDirectoryWhenUnpickled:
    """A pickle payload: unpickling it calls os.mkdir(path), the stand-in for arbitrary code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything reaches pickle's loaders (numpy's .npy reader included)."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pickle was asked to load data")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


# -- strategies ----------------------------------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


@st.composite
def ndarrays(draw: st.DrawFn) -> np.ndarray:
    array = draw(hnp.arrays(st.sampled_from(NDARRAY_DTYPES), shapes))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        return array[::2]
    return array


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    dtype = draw(st.sampled_from(TENSOR_DTYPES))
    values = draw(hnp.arrays(dtype.np_dtype, shapes))
    tensor = tinyautograd.from_numpy(values)
    if draw(st.booleans()) and values.ndim >= 2:
        tensor = tensor.transpose(0, 1)  # a non-contiguous tensor saves its values, not its memory layout
    if dtype.is_floating_point and draw(st.booleans()):
        tensor.requires_grad_(True)
    return tensor


numpy_scalars = hnp.arrays(st.sampled_from(NDARRAY_DTYPES), ()).map(lambda a: a[()])
leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
          | st.text() | st.sampled_from(["", "\ud800 lone surrogate", "fc.weight", "ünï €"])
          | ndarrays() | numpy_scalars | tensors())
keys = st.text(max_size=5) | st.integers(-(2**40), 2**40)
nested = st.recursive(
    leaves,
    lambda children: (st.lists(children, max_size=4) | st.lists(children, max_size=4).map(tuple)
                      | st.dictionaries(keys, children, max_size=4)
                      | st.dictionaries(keys, children, max_size=4).map(lambda d: OrderedDict(d))),
    max_leaves=12)


# -- round trips ---------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(nested)
def test_nested_structures_round_trip_exactly(obj: Any) -> None:
    assert_same(obj, roundtrip(obj))


@settings(deadline=None)
@given(ndarrays())
def test_ndarrays_round_trip_as_ndarrays(array: np.ndarray) -> None:
    loaded = roundtrip(array)
    assert type(loaded) is np.ndarray and loaded.flags.writeable
    assert_same(array, loaded)


@settings(deadline=None)
@given(tensors())
def test_tensors_keep_values_dtype_shape_and_requires_grad(tensor: Tensor) -> None:
    loaded = roundtrip(tensor)
    assert type(loaded) is Tensor
    assert_same_tensor(tensor, loaded)


@settings(deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=8))
def test_key_order_is_kept_for_dict_and_ordered_dict(mapping: dict) -> None:
    reversed_order = dict(reversed(list(mapping.items())))
    assert list(roundtrip(reversed_order)) == list(reversed_order)
    loaded = roundtrip(OrderedDict(reversed_order))
    assert type(loaded) is OrderedDict and list(loaded) == list(reversed_order)


def test_loaded_tensor_is_a_leaf_that_trains() -> None:
    weight = tinyautograd.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (weight * weight).sum().backward()
    loaded = roundtrip({"w": weight})["w"]
    assert loaded.grad is None and loaded.is_leaf and loaded.requires_grad  # .grad is not saved, as torch
    (loaded * 3).sum().backward()
    assert loaded.grad.tolist() == [3.0, 3.0, 3.0]


@cpu_only("whether a loaded array shares host memory")
def test_loaded_tensor_owns_its_memory() -> None:
    original = tinyautograd.zeros(3)
    loaded = roundtrip(original)
    loaded.numpy()[0] = 1.0
    assert original.tolist() == [0.0, 0.0, 0.0]


def test_parameters_round_trip_as_parameters_as_in_torch() -> None:
    from tinyautograd.nn import Parameter

    state = OrderedDict(weight=Parameter(tinyautograd.ones(2, 3)),
                        frozen=Parameter(tinyautograd.zeros(2), requires_grad=False))
    loaded = roundtrip(state)
    buffer = io.BytesIO()
    torch.save(OrderedDict(weight=torch.nn.Parameter(torch.ones(2, 3)),
                           frozen=torch.nn.Parameter(torch.zeros(2), requires_grad=False)), buffer)
    buffer.seek(0)
    from_torch = torch.load(buffer)
    for key in state:
        assert type(loaded[key]) is Parameter and type(from_torch[key]) is torch.nn.Parameter
        assert loaded[key].requires_grad == from_torch[key].requires_grad == state[key].requires_grad
        assert_same_tensor(state[key], loaded[key])
    assert structure_of(saved_bytes(state))["arrays"][0]["parameter"] is True


def test_parameters_load_as_tensors_when_nn_cannot_be_imported(monkeypatch) -> None:
    data = saved_bytes({"w": tinyautograd.ones(2, requires_grad=True)})
    structure = structure_of(data)
    structure["arrays"][0]["parameter"] = True
    monkeypatch.setattr(serialization, "_parameter_class", lambda: None)
    loaded = load_bytes(replace_structure(data, structure))["w"]
    assert type(loaded) is Tensor and loaded.requires_grad and loaded.is_leaf


def test_optimizer_state_dict_keeps_int_keys_tuples_and_tensors() -> None:
    state = {
        "state": {0: {"step": tinyautograd.tensor(3.0), "exp_avg": tinyautograd.zeros(2, 3),
                      "exp_avg_sq": tinyautograd.ones(2, 3)},
                  1: {"step": tinyautograd.tensor(3.0), "exp_avg": tinyautograd.zeros(3)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                          "maximize": False, "foreach": None, "params": [0, 1]}],
    }
    assert_same(state, roundtrip(state))


def test_matches_torch_round_trip_of_a_real_optimizer_state_dict() -> None:
    """A torch Adam state dict, its tensors moved through NumPy, comes back with the structure torch.load gives."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        optimizer.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    from_torch = torch.load(buffer)

    def to_tinyautograd(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return tinyautograd.from_numpy(value.detach().numpy().copy())
        if isinstance(value, dict):
            return type(value)((k, to_tinyautograd(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return type(value)(to_tinyautograd(v) for v in value)
        return value

    assert_same(to_tinyautograd(from_torch), roundtrip(to_tinyautograd(optimizer.state_dict())))


def test_requires_grad_and_leafness_match_torch() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours = roundtrip({"a": tinyautograd.tensor(values, requires_grad=True), "b": tinyautograd.tensor(values),
                      "c": tinyautograd.tensor(values.astype(np.int64))})
    buffer = io.BytesIO()
    torch.save({"a": torch.tensor(values, requires_grad=True), "b": torch.tensor(values),
                "c": torch.tensor(values.astype(np.int64))}, buffer)
    buffer.seek(0)
    theirs = torch.load(buffer)
    for key in "abc":
        assert (ours[key].requires_grad, ours[key].is_leaf, ours[key].grad) == (
            theirs[key].requires_grad, theirs[key].is_leaf, theirs[key].grad)
        assert ours[key].dtype.name == str(theirs[key].dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours[key].detach().cpu().numpy(), theirs[key].detach().cpu().numpy())


def test_one_object_saved_twice_loads_as_one_object() -> None:
    weight = tinyautograd.ones(2)
    table = np.arange(3)
    loaded = roundtrip({"a": weight, "b": [weight], "t1": table, "t2": table})
    assert loaded["a"] is loaded["b"][0]
    assert loaded["t1"] is loaded["t2"]
    assert len(structure_of(saved_bytes({"a": weight, "b": [weight]}))["arrays"]) == 1


def test_views_load_as_independent_copies() -> None:
    base = np.arange(6.0)
    loaded = roundtrip({"base": base, "view": base[1:3]})
    loaded["base"][1] = 100.0
    assert loaded["view"].tolist() == [1.0, 2.0]


def test_numpy_scalars_come_back_as_numpy_scalars() -> None:
    obj = {"best": np.float64(0.25), "epoch": np.int32(7), "flag": np.bool_(True)}
    loaded = roundtrip(obj)
    assert_same(obj, loaded)
    assert type(loaded["best"]) is np.float64  # not the Python float it subclasses


def test_saving_the_same_object_twice_gives_identical_bytes() -> None:
    obj = OrderedDict(w=tinyautograd.ones(2, 2), b=np.zeros(3), meta={"epoch": 3, "loss": 0.5})
    assert saved_bytes(obj) == saved_bytes(obj)


# -- the format ----------------------------------------------------------------------------------------------------


@cpu_only("the layout of a cpu tensor's entry; cuda: test_cuda_tensors_load_back_on_their_device_unless_mapped")
def test_archive_layout_is_the_documented_one() -> None:
    data = saved_bytes({"w": tinyautograd.ones(2, requires_grad=True), "n": np.zeros(2), 0: (1.5, None)})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["structure.json", "arrays/0.npy", "arrays/1.npy"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        with archive.open("arrays/1.npy") as member:
            np.testing.assert_array_equal(np.load(member, allow_pickle=False), np.zeros(2))
    structure = structure_of(data)
    assert structure["format"] == "tinyautograd.save" and structure["version"] == 1
    assert structure["arrays"] == [
        {"kind": "tensor", "device": "cpu", "requires_grad": True, "parameter": False, "file": "arrays/0.npy"},
        {"kind": "ndarray", "file": "arrays/1.npy"}]
    assert structure["root"] == {"type": "dict", "items": [
        ["w", {"type": "array", "index": 0}], ["n", {"type": "array", "index": 1}],
        [0, {"type": "tuple", "items": [{"type": "float", "value": "1.5"}, {"type": "none"}]}]]}


def test_members_not_named_in_the_structure_are_ignored(no_unpickling: None, tmp_path) -> None:
    marker = tmp_path / "pwned"
    structure = structure_of(saved_bytes([1, 2]))
    data = archive_bytes(structure, {"data.pkl": pickle.dumps(MakesDirectoryWhenUnpickled(str(marker)))})
    assert load_bytes(data) == [1, 2]
    assert not marker.exists()


# -- files and paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_path", [str, os.fspath, lambda p: p, os.fsencode], ids=["str", "fspath", "Path",
                                                                                        "bytes"])
def test_paths_of_every_kind(tmp_path, as_path) -> None:
    obj = {"w": tinyautograd.arange(4.0), "n": np.eye(2)}
    path = as_path(tmp_path / "checkpoint.pt")
    tinyautograd.save(obj, path)
    assert_same(obj, tinyautograd.load(path))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_binary_file_objects(tmp_path) -> None:
    obj = [tinyautograd.ones(2), "x"]
    with open(tmp_path / "f.bin", "wb") as out:
        tinyautograd.save(obj, out)
    with open(tmp_path / "f.bin", "rb") as stream:
        assert_same(obj, tinyautograd.load(stream))


def test_archive_after_other_data_in_the_same_stream() -> None:
    buffer = io.BytesIO()
    buffer.write(b"header written by the caller")
    tinyautograd.save({"a": 1}, buffer)
    buffer.seek(len(b"header written by the caller"))
    assert tinyautograd.load(buffer) == {"a": 1}


def test_streams_that_cannot_seek() -> None:
    class WriteOnly:
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def write(self, data: bytes) -> int:
            self.chunks.append(bytes(data))
            return len(data)

        def flush(self) -> None:
            pass

    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self.stream = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self.stream.read(size)

        def seekable(self) -> bool:
            return False

    out = WriteOnly()
    obj = {"w": tinyautograd.ones(3), "step": 4}
    tinyautograd.save(obj, out)
    assert_same(obj, tinyautograd.load(ReadOnly(b"".join(out.chunks))))


def test_save_rejects_what_is_neither_path_nor_file() -> None:
    with pytest.raises(TypeError, match="path .* or a binary file object"):
        tinyautograd.save({}, 42)
    with pytest.raises(TypeError, match="path .* or a binary file object"):
        tinyautograd.load(42)


def test_missing_file_raises_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        tinyautograd.load(tmp_path / "absent.pt")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_gets_the_umask_mode_and_overwrite_keeps_the_old_mode(tmp_path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "new.pt"
    tinyautograd.save([1], path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    tinyautograd.save([2], path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and tinyautograd.load(path) == [2]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_saving_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.pt"
    tinyautograd.save([1], target)
    link = tmp_path / "latest.pt"
    link.symlink_to(target)
    tinyautograd.save([2], link)
    assert link.is_symlink() and tinyautograd.load(target) == [2]


# -- failed and refused saves -------------------------------------------------------------------------------------


def test_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.pt"
    tinyautograd.save({"w": tinyautograd.zeros(4)}, path)
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array

    def write_half_then_fail(stream, array, **kwargs):
        real_write_array(stream, array[: array.size // 2], **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        tinyautograd.save({"w": tinyautograd.ones(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]


@pytest.mark.parametrize("failure", [OSError("rename failed"), KeyboardInterrupt()])
def test_failure_at_rename_or_interrupt_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                               failure) -> None:
    path = tmp_path / "model.pt"
    tinyautograd.save([1], path)
    before = path.read_bytes()

    def fail(*args: Any) -> None:
        raise failure

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(type(failure)):
        tinyautograd.save([2], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]


class Custom:
    pass


class Color(IntEnum):
    RED = 1


class HasStateDict:
    def state_dict(self) -> dict:
        return {}


class TensorSubclass(Tensor):
    __slots__ = ()


UNSUPPORTED = [
    ({"model": {"fc.weight": lambda x: x}}, r"obj\['model'\]\['fc.weight'\] of type function"),
    ([1, {2, 3}], r"obj\[1\] of type set"),
    ({"opt": (0, Custom())}, r"obj\['opt'\]\[1\] of type .*Custom"),
    ({"a": {1.5: 2}}, r"obj\['a'\] has a key 1.5 of type float"),
    ({(1, 2): 3}, r"obj has a key \(1, 2\) of type tuple"),
    ({True: 1}, r"obj has a key True of type bool"),
    ({"x": np.array([None, 1], dtype=object)}, r"obj\['x'\].*dtype object"),
    ({"x": np.ma.masked_array([1, 2])}, r"obj\['x'\] of type numpy.ma.*MaskedArray"),
    ({"c": 1j}, r"obj\['c'\] of type complex"),
    ({"b": b"raw"}, r"obj\['b'\] of type bytes"),
    ({"e": Color.RED}, r"obj\['e'\] of type .*Color"),
    ({"model": HasStateDict()}, r"obj\['model'\].*save its state_dict\(\)"),
    ({"n": np.zeros(1, dtype=[("é", "f4")])}, r"obj\['n'\].*non-ASCII field names"),
]


@pytest.mark.parametrize(("obj", "message"), UNSUPPORTED)
def test_unsupported_objects_raise_type_error_naming_their_place_before_writing(tmp_path, obj, message) -> None:
    buffer = io.BytesIO()
    with pytest.raises(TypeError, match=message):
        tinyautograd.save(obj, buffer)
    assert buffer.getvalue() == b""
    path = tmp_path / "existing.pt"
    tinyautograd.save("old", path)
    with pytest.raises(TypeError):
        tinyautograd.save(obj, path)
    assert tinyautograd.load(path) == "old" and os.listdir(tmp_path) == ["existing.pt"]


def test_tensor_subclasses_other_than_parameter_are_refused() -> None:
    subclassed = TensorSubclass._make_subclass(tinyautograd.ones(2))
    with pytest.raises(TypeError, match=r"obj\['t'\] of type .*TensorSubclass"):
        tinyautograd.save({"t": subclassed}, io.BytesIO())


def test_a_container_that_contains_itself_raises_value_error() -> None:
    loop: list = [1]
    loop.append({"again": loop})
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match=r"obj\[1\]\['again'\] contains itself"):
        tinyautograd.save(loop, buffer)
    assert buffer.getvalue() == b""


def test_a_container_that_appears_twice_is_not_a_cycle() -> None:
    shared = [1, 2]
    assert roundtrip([shared, shared]) == [[1, 2], [1, 2]]


# -- crafted, corrupted and foreign files ----------------------------------------------------------------------


def test_object_dtype_member_is_refused_without_unpickling(no_unpickling: None, tmp_path) -> None:
    marker = tmp_path / "pwned"
    payload = np.array([MakesDirectoryWhenUnpickled(str(marker))], dtype=object)
    structure = {"format": "tinyautograd.save", "version": 1, "arrays": [{"kind": "ndarray", "file": "a.npy"}],
                 "root": {"type": "array", "index": 0}}
    with pytest.raises(RuntimeError, match="dtype object.*refused"):
        load_bytes(archive_bytes(structure, {"a.npy": npy_bytes(payload)}))
    assert not marker.exists()


def test_pickle_member_named_as_an_array_is_refused_without_unpickling(no_unpickling: None, tmp_path) -> None:
    marker = tmp_path / "pwned"
    structure = {"format": "tinyautograd.save", "version": 1,
                 "arrays": [{"kind": "tensor", "file": "data.pkl", "device": "cpu", "requires_grad": False,
                             "parameter": False}],
                 "root": {"type": "array", "index": 0}}
    data = archive_bytes(structure, {"data.pkl": pickle.dumps(MakesDirectoryWhenUnpickled(str(marker)))})
    with pytest.raises(RuntimeError, match="corrupted"):
        load_bytes(data)
    assert not marker.exists()


def test_torch_save_files_are_refused_without_unpickling(no_unpickling: None, tmp_path) -> None:
    path = tmp_path / "torch.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match=f"{path.name}.*written by torch.save.*never unpickles"):
        tinyautograd.load(path)
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match=f"{path.name}.*holds a pickle"):
        tinyautograd.load(path)


def test_plain_pickle_files_are_refused_without_unpickling(no_unpickling: None, tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(MakesDirectoryWhenUnpickled(str(marker))))
    with pytest.raises(RuntimeError, match="holds a pickle"):
        tinyautograd.load(path)
    assert not marker.exists()


def foreign_files() -> dict[str, tuple[bytes, str]]:
    random_zip = io.BytesIO()
    with zipfile.ZipFile(random_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    npz = io.BytesIO()
    np.savez(npz, a=np.arange(3))
    return {
        "empty": (b"", "is empty"),
        "text": (b"epoch,loss\n1,0.5\n", "is not a tinyautograd archive"),
        "random zip": (random_zip.getvalue(), "is a zip archive without the 'structure.json'"),
        "npy": (npy_bytes(np.arange(3)), "is a NumPy .npy file"),
        "npz": (npz.getvalue(), "is a NumPy .npz archive"),
    }


@pytest.mark.parametrize("kind", ["empty", "text", "random zip", "npy", "npz"])
def test_foreign_files_raise_runtime_error_naming_the_file(tmp_path, kind) -> None:
    data, message = foreign_files()[kind]
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(data)
    with pytest.raises(RuntimeError, match=re.escape(f"'{path}' ") + message):
        tinyautograd.load(path)


def sample_archive() -> bytes:
    return saved_bytes(OrderedDict(w=tinyautograd.arange(6.0).reshape(2, 3), step=3, name="adam",
                                   hist=np.arange(4, dtype=np.int16)))


def test_every_truncation_raises_runtime_error_naming_the_file(tmp_path) -> None:
    data = sample_archive()
    path = tmp_path / "cut.pt"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(RuntimeError, match=re.escape(f"'{path}' ") + "(is empty|is truncated or corrupted)"):
            tinyautograd.load(path)


def test_every_single_byte_corruption_loads_or_raises_runtime_error(no_unpickling: None) -> None:
    """Flipping any one byte never escapes as another exception type (CRC, headers and sizes are checked)."""
    data = sample_archive()
    expected = load_bytes(data)
    outcomes = set()
    for position in range(len(data)):
        corrupted = bytearray(data)
        corrupted[position] ^= 0xFF
        try:
            loaded = load_bytes(bytes(corrupted))
        except RuntimeError as exc:
            assert "tinyautograd.load: the BytesIO file object" in str(exc)
            outcomes.add("raised")
        else:
            assert_same(expected, loaded)  # only bytes zip ignores (timestamps, attributes) may change
            outcomes.add("loaded")
    assert "raised" in outcomes


@settings(deadline=None)
@given(st.data())
def test_random_byte_corruptions_load_or_raise_runtime_error(data: st.DataObject) -> None:
    original = sample_archive()
    corrupted = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        corrupted[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        loaded = load_bytes(bytes(corrupted))
    except RuntimeError as exc:
        assert "tinyautograd.load: the BytesIO file object" in str(exc)
    else:
        assert_same(load_bytes(original), loaded)


def test_encrypted_members_are_refused_naming_the_file() -> None:
    data = bytearray(sample_archive())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        central_directory = archive.start_dir
    flag_offset = data.index(b"PK\x01\x02", central_directory) + 8  # general purpose flags of the first entry
    data[flag_offset] |= 0x1
    with pytest.raises(RuntimeError, match="the BytesIO file object has an encrypted member 'structure.json'"):
        load_bytes(bytes(data))


def test_flipped_array_data_fails_the_crc_check() -> None:
    data = bytearray(sample_archive())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("arrays/0.npy")
    data[info.header_offset + 30 + len(info.filename) + 130] ^= 0x01  # inside the float data after the header
    with pytest.raises(RuntimeError, match="corrupted.*CRC"):
        load_bytes(bytes(data))


def valid_structure() -> dict:
    return structure_of(saved_bytes({"w": tinyautograd.ones(2, requires_grad=True), "k": [1]}))


def edited(change) -> dict:
    structure = valid_structure()
    change(structure)
    return structure


MALFORMED = [
    (b"{not json", "structure.json is not valid JSON"),
    (b"\xff\xfe", "structure.json is not valid JSON"),
    (b"[1, 2]", "has format 'list'"),
    (json.dumps({"format": "other", "version": 1}).encode(), "has format 'other'"),
    (edited(lambda s: s.update(version=2)), "format version 2 by a newer tinyautograd"),
    (edited(lambda s: s.update(version="1")), "invalid format version '1'"),
    (edited(lambda s: s.pop("root")), "lacks the 'arrays' list or the 'root' node"),
    (edited(lambda s: s["root"].update(type="set")), "node obj is not a valid node"),
    (edited(lambda s: s["root"]["items"][1][1]["items"][0].update(value=1.5)), r"node obj\['k'\]\[0\] of type"),
    (edited(lambda s: s["root"]["items"][1][1]["items"][0].update(type="float", value="x")), "not a number"),
    (edited(lambda s: s["root"]["items"].append([1.5, {"type": "none"}])), "not a \\[str or int key, node\\]"),
    (edited(lambda s: s["root"]["items"][0][1].update(index=5)), "refers to array 5, but the archive lists 1"),
    (edited(lambda s: s["arrays"][0].update(kind="pickle")), "array entry 0 is not valid"),
    (edited(lambda s: s["arrays"][0].update(file="arrays/9.npy")), "member 'arrays/9.npy' is missing"),
    (edited(lambda s: s["arrays"][0].update(device="tpu")), "invalid device 'tpu'"),
    (edited(lambda s: s["arrays"][0].update(requires_grad="yes")), "tensor entry 0 is not valid"),
    (edited(lambda s: s["arrays"][0].update(file="structure.json")), "corrupted"),
]


@pytest.mark.parametrize(("structure", "message"), MALFORMED)
def test_malformed_structures_raise_runtime_error(no_unpickling: None, structure, message) -> None:
    members = {"arrays/0.npy": npy_bytes(np.ones(2, dtype=np.float32))}
    with pytest.raises(RuntimeError, match=f"tinyautograd.load: the BytesIO file object .*{message}"):
        load_bytes(archive_bytes(structure, members))


def test_absurdly_nested_structure_raises_runtime_error() -> None:
    depth = 100_000
    text = ('{"format": "tinyautograd.save", "version": 1, "arrays": [], "root": '
            + '{"type": "list", "items": [' * depth + '{"type": "none"}' + "]}" * depth + "}")
    with pytest.raises(RuntimeError, match="not valid JSON|corrupted"):
        load_bytes(archive_bytes(text.encode()))


ARRAY_MEMBER_PROBLEMS = [
    ("tensor of a dtype tinyautograd lacks", {"kind": "tensor"}, np.ones(2, dtype=np.complex64),
     "dtype complex64, which tinyautograd tensors do not support"),
    ("int tensor that requires grad", {"kind": "tensor", "requires_grad": True}, np.ones(2, dtype=np.int64),
     "claims requires_grad=True"),
    ("scalar entry with a shape", {"kind": "numpy_scalar"}, np.ones(2), "is a NumPy scalar but"),
]


@pytest.mark.parametrize(("entry_change", "array", "message"),
                         [case[1:] for case in ARRAY_MEMBER_PROBLEMS], ids=[c[0] for c in ARRAY_MEMBER_PROBLEMS])
def test_inconsistent_array_entries_raise_runtime_error(entry_change, array, message) -> None:
    entry = {"kind": "tensor", "file": "a.npy", "device": "cpu", "requires_grad": False, "parameter": False}
    entry.update(entry_change)
    structure = {"format": "tinyautograd.save", "version": 1, "arrays": [entry],
                 "root": {"type": "array", "index": 0}}
    with pytest.raises(RuntimeError, match=message):
        load_bytes(archive_bytes(structure, {"a.npy": npy_bytes(array)}))


def test_npy_member_whose_header_claims_more_data_than_it_holds() -> None:
    honest = npy_bytes(np.zeros(4))
    header = honest[: len(honest) - 32].replace(b"(4,)", b"(9,)")
    structure = {"format": "tinyautograd.save", "version": 1, "arrays": [{"kind": "ndarray", "file": "a.npy"}],
                 "root": {"type": "array", "index": 0}}
    with pytest.raises(RuntimeError, match=r"truncated or corrupted: the header says shape \(9,\)"):
        load_bytes(archive_bytes(structure, {"a.npy": header + honest[-32:]}))


def test_big_endian_tensor_members_load_as_native_tensors() -> None:
    structure = {"format": "tinyautograd.save", "version": 1,
                 "arrays": [{"kind": "tensor", "file": "a.npy", "device": "cpu", "requires_grad": True,
                             "parameter": False}],
                 "root": {"type": "array", "index": 0}}
    loaded = load_bytes(archive_bytes(structure, {"a.npy": npy_bytes(np.array([1.5, -2.0], dtype=">f4"))}))
    assert loaded.dtype == tinyautograd.float32 and loaded.tolist() == [1.5, -2.0] and loaded.requires_grad


# -- map_location -------------------------------------------------------------------------------------------------


@cpu_only("tensors saved on the cpu; cuda: test_cuda_tensors_load_back_on_their_device_unless_mapped")
@pytest.mark.parametrize("map_location", ["cpu", tinyautograd.device("cpu"), {"cpu": "cpu"}, {"cuda:0": "cpu"},
                                          lambda tensor, location: tensor, lambda tensor, location: None])
def test_map_location_forms_that_keep_tensors_on_cpu(map_location) -> None:
    obj = {"w": tinyautograd.ones(2, 3, requires_grad=True), "n": np.ones(2)}
    loaded = roundtrip(obj, map_location=map_location)
    assert_same(obj, loaded)


def test_map_location_callable_gets_a_cpu_tensor_and_its_saved_location(default_device) -> None:
    seen = []

    def double(tensor: Tensor, location: str) -> Tensor:
        seen.append((tuple(tensor.shape), str(tensor.device), location))
        return tensor * 2

    loaded = roundtrip({"w": tinyautograd.ones(2, requires_grad=True)}, map_location=double)["w"]
    assert seen == [((2,), "cpu", "cpu" if default_device == "cpu" else "cuda:0")]
    assert loaded.tolist() == [2.0, 2.0] and loaded.requires_grad and loaded.is_leaf


def test_map_location_callable_must_return_a_tensor_or_none() -> None:
    with pytest.raises(TypeError, match="map_location returned int"):
        roundtrip(tinyautograd.ones(1), map_location=lambda tensor, location: 0)


@pytest.mark.parametrize(("map_location", "error"), [(42, TypeError), ("tpu", RuntimeError)])
def test_invalid_map_location_raises_before_reading(map_location, error) -> None:
    with pytest.raises(error):
        tinyautograd.load(io.BytesIO(b"not even read"), map_location=map_location)


def saved_on_cuda() -> bytes:
    """An archive that says its tensor was saved from cuda:0 (what a GPU machine writes)."""
    data = saved_bytes({"w": tinyautograd.arange(3.0).requires_grad_()})
    structure = structure_of(data)
    structure["arrays"][0]["device"] = "cuda:0"
    return replace_structure(data, structure)


@cpu_only("loading where CUDA is missing")
@pytest.mark.skipif(CUDA, reason="checks the CPU-only machine's error")
def test_cuda_tensors_without_cuda_raise_and_suggest_map_location() -> None:
    with pytest.raises(RuntimeError, match="'cuda:0'.*CUDA is not available.*map_location='cpu'"):
        load_bytes(saved_on_cuda())


@pytest.mark.parametrize("map_location", ["cpu", {"cuda:0": "cpu"}, lambda tensor, location: tensor])
def test_cuda_tensors_map_to_cpu(map_location) -> None:
    loaded = load_bytes(saved_on_cuda(), map_location=map_location)["w"]
    assert loaded.device == tinyautograd.device("cpu") and loaded.tolist() == [0.0, 1.0, 2.0]
    assert loaded.requires_grad and loaded.is_leaf


def test_map_location_callable_sees_the_cuda_location() -> None:
    locations = []
    load_bytes(saved_on_cuda(), map_location=lambda tensor, location: locations.append(location) or tensor)
    assert locations == ["cuda:0"]


@pytest.mark.parametrize("weights_only", [True, False])
def test_weights_only_is_accepted_and_never_unpickles(no_unpickling: None, weights_only: bool) -> None:
    buffer = io.BytesIO(saved_bytes([tinyautograd.ones(1)]))
    assert tinyautograd.load(buffer, weights_only=weights_only)[0].tolist() == [1.0]


def test_cuda_tensors_load_back_on_their_device_unless_mapped(cuda_device) -> None:
    weight = tinyautograd.arange(6.0, device="cuda").reshape(2, 3).requires_grad_()
    loaded = roundtrip({"w": weight})["w"]
    assert loaded.device == weight.device and loaded.requires_grad and loaded.is_leaf
    assert loaded.tolist() == weight.tolist()
    on_cpu = roundtrip({"w": weight}, map_location="cpu")["w"]
    assert on_cpu.device == tinyautograd.device("cpu") and on_cpu.tolist() == weight.tolist()
    locations = []
    roundtrip(weight, map_location=lambda tensor, location: locations.append(location))
    assert locations == [str(weight.device)]


@pytest.mark.parametrize("map_location", ["cuda", "cuda:0", tinyautograd.device("cuda", 0), {"cpu": "cuda:0"},
                                          lambda tensor, location: tensor.cuda()])
def test_cpu_tensors_map_to_cuda(cuda_device, map_location) -> None:
    loaded = roundtrip({"w": tinyautograd.ones(3, requires_grad=True)}, map_location=map_location)["w"]
    assert loaded.device == tinyautograd.device("cuda", 0)
    assert loaded.tolist() == [1.0, 1.0, 1.0] and loaded.requires_grad and loaded.is_leaf
