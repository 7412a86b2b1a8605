"""tinyautograd.utils.data against torch.utils.data: the same batches, collated values, lengths and errors."""
from __future__ import annotations

import collections
import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud
from hypothesis import given, strategies as st

import tinyautograd as tg
import tinyautograd.utils.data as tgd
from helpers import torch_device

# every test on each device: those without a device parameter make their tensors on the default device
# (conftest.default_device)
pytestmark = pytest.mark.usefixtures("default_device")

Point = collections.namedtuple("Point", "x y")


# ---------------------------------------------------------------------------------------------------- helpers

def plain(obj):
    """A library-neutral view of a (collated) structure: tensors become (dtype name, array); containers keep
    their kind, so the two libraries' outputs compare with ==-like checks in `assert_same`."""
    if isinstance(obj, (tg.Tensor, torch.Tensor)):
        return ("tensor", str(obj.dtype).split(".")[-1], obj.detach().cpu().numpy())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("namedtuple", type(obj).__name__, [plain(v) for v in obj])
    if isinstance(obj, dict):
        return ("dict", {k: plain(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return ("list", [plain(v) for v in obj])
    if isinstance(obj, tuple):
        return ("tuple", [plain(v) for v in obj])
    return ("leaf", obj)


def assert_same(ours, theirs) -> None:
    a, b = plain(ours), plain(theirs)
    _assert_plain_equal(a, b)


def _assert_plain_equal(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "tensor":
        assert a[1] == b[1], f"dtype {a[1]} != torch's {b[1]}"
        assert a[2].shape == b[2].shape
        np.testing.assert_array_equal(a[2], b[2])
    elif a[0] == "namedtuple":
        assert a[1] == b[1]
        assert len(a[2]) == len(b[2])
        for x, y in zip(a[2], b[2]):
            _assert_plain_equal(x, y)
    elif a[0] == "dict":
        assert list(a[1]) == list(b[1])
        for k in a[1]:
            _assert_plain_equal(a[1][k], b[1][k])
    elif a[0] in ("list", "tuple"):
        assert len(a[1]) == len(b[1])
        for x, y in zip(a[1], b[1]):
            _assert_plain_equal(x, y)
    else:
        assert type(a[1]) is type(b[1]) and a[1] == b[1], (a, b)


def tensor_pair(n: int, seed: int = 0):
    """The same (inputs, labels) rows in both libraries: float32 (n, 3) and int64 (n,)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return (tgd.TensorDataset(tg.tensor(x), tg.tensor(y)),
            tud.TensorDataset(torch.tensor(x), torch.tensor(y)))


class ListDataset(tgd.Dataset):
    """A plain map-style dataset over a list (no fast path, no __getitems__)."""

    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


class TorchListDataset(tud.Dataset):
    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


class RangeStream(tgd.IterableDataset):
    def __init__(self, n, with_len=True):
        self.n, self.with_len = n, with_len

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        if not self.with_len:
            raise TypeError("no len")
        return self.n


class TorchRangeStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def labels_of(loader) -> list[list[int]]:
    return [b[1].tolist() for b in loader]


# ---------------------------------------------------------------------------------------- ordering and batching

@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_unshuffled_tensor_dataset_batches_equal_torch(n, batch_size, drop_last):
    ours, theirs = tensor_pair(n)
    a = list(tgd.DataLoader(ours, batch_size=batch_size, drop_last=drop_last))
    b = list(tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_same(x, y)


@given(n=st.integers(0, 30), batch_size=st.integers(1, 8), drop_last=st.booleans())
def test_unshuffled_generic_dataset_batches_equal_torch(n, batch_size, drop_last):
    items = [(float(i) / 3, i, f"s{i}", np.full(2, i, dtype=np.int16)) for i in range(n)]
    a = list(tgd.DataLoader(ListDataset(items), batch_size=batch_size, drop_last=drop_last))
    b = list(tud.DataLoader(TorchListDataset(items), batch_size=batch_size, drop_last=drop_last))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_same(x, y)


def test_last_partial_batch_is_kept_unless_drop_last():
    ours, _ = tensor_pair(10)
    sizes = [len(b[1]) for b in tgd.DataLoader(ours, batch_size=4)]
    assert sizes == [4, 4, 2]
    sizes = [len(b[1]) for b in tgd.DataLoader(ours, batch_size=4, drop_last=True)]
    assert sizes == [4, 4]


@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), seed=st.integers(0, 2 ** 32))
def test_shuffled_epoch_covers_the_same_set_as_torch(n, batch_size, drop_last, seed):
    ours, theirs = tensor_pair(n)
    a = labels_of(tgd.DataLoader(ours, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                 generator=tg.Generator().manual_seed(seed)))
    torch_loader = tud.DataLoader(theirs, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                  generator=torch.Generator().manual_seed(seed))
    b = labels_of(torch_loader)
    assert [len(x) for x in a] == [len(x) for x in b]
    if not drop_last:
        assert sorted(itertools.chain(*a)) == sorted(itertools.chain(*b))
    # which rows were drawn: indices are recovered from the float rows, which are distinct
    rows = [tuple(r) for batch in tgd.DataLoader(ours, batch_size=batch_size, shuffle=True, drop_last=drop_last)
            for r in batch[0].tolist()]
    assert len(set(rows)) == len(rows) == (n - n % batch_size if drop_last else n)


@given(n=st.integers(1, 30), batch_size=st.integers(1, 8), drop_last=st.booleans(), seed=st.integers(0, 1000),
       replacement=st.booleans())
def test_fast_tensor_path_gives_the_batches_of_per_sample_collation(n, batch_size, drop_last, seed, replacement):
    ours, _ = tensor_pair(n)
    # a Subset over every index is not a TensorDataset, so it goes through __getitem__ + default_collate
    slow_ds = tgd.Subset(ours, list(range(n)))
    for shuffle in (False, True):
        def loader(ds):
            if shuffle:
                sampler = tgd.RandomSampler(ds, replacement=replacement, generator=tg.Generator().manual_seed(seed))
                return tgd.DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=drop_last)
            return tgd.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)

        fast, slow = list(loader(ours)), list(loader(slow_ds))
        assert len(fast) == len(slow)
        for x, y in zip(fast, slow):
            assert_same(x, y)


def test_fast_path_batches_are_copies_not_views_of_the_dataset():
    ours, _ = tensor_pair(6)
    before = ours.tensors[0].clone()
    for x, _ in tgd.DataLoader(ours, batch_size=3):
        x.zero_()
    np.testing.assert_array_equal(ours.tensors[0].cpu().numpy(), before.cpu().numpy())


def test_manual_seed_makes_shuffled_epochs_reproducible_and_epochs_differ():
    ours, _ = tensor_pair(50)
    loader = tgd.DataLoader(ours, batch_size=7, shuffle=True)
    tg.manual_seed(123)
    run1 = [labels_of(loader) for _ in range(3)]
    tg.manual_seed(123)
    run2 = [labels_of(loader) for _ in range(3)]
    assert run1 == run2
    assert run1[0] != run1[1]  # two equal permutations of 50 would be a 1 in 50! event


def test_loader_generator_makes_epochs_reproducible_independently_of_the_global_seed():
    ours, _ = tensor_pair(30)
    g = tg.Generator()
    loader = tgd.DataLoader(ours, batch_size=4, shuffle=True, generator=g)
    g.manual_seed(7)
    tg.manual_seed(1)
    first = labels_of(loader)
    g.manual_seed(7)
    tg.manual_seed(2)
    assert labels_of(loader) == first


def test_tensor_dataset_batches_on_the_device_equal_torch(device):
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    ours = tgd.TensorDataset(tg.tensor(x, device=device))
    theirs = tud.TensorDataset(torch.tensor(x, device=device))
    for a, b in zip(tgd.DataLoader(ours, batch_size=5), tud.DataLoader(theirs, batch_size=5), strict=True):
        assert a[0].device.type == device and b[0].device.type == torch_device(device)
        assert_same(a, b)


# --------------------------------------------------------------------- batch_size=None and iterable datasets

def test_batch_size_none_converts_each_sample_as_torch():
    items = [(np.arange(3, dtype=np.float32) + i, i, {"k": np.int32(i)}) for i in range(4)]
    a = list(tgd.DataLoader(ListDataset(items), batch_size=None))
    b = list(tud.DataLoader(TorchListDataset(items), batch_size=None))
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert_same(x, y)
    assert len(tgd.DataLoader(ListDataset(items), batch_size=None)) == 4


@given(n=st.integers(0, 30), batch_size=st.one_of(st.none(), st.integers(1, 8)), drop_last=st.booleans())
def test_iterable_dataset_batches_and_len_equal_torch(n, batch_size, drop_last):
    if batch_size is None:
        drop_last = False
    ours = tgd.DataLoader(RangeStream(n), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchRangeStream(n), batch_size=batch_size, drop_last=drop_last)
    a, b = list(ours), list(theirs)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_same(x, y)
    assert len(ours) == len(theirs)


def test_iterable_dataset_without_len_has_no_loader_len():
    loader = tgd.DataLoader(RangeStream(5, with_len=False), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]
    with pytest.raises(TypeError):
        len(loader)


def test_iterable_dataset_rejects_shuffle_and_samplers_as_torch():
    for kwargs in ({"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError, match="IterableDataset"):
            tgd.DataLoader(RangeStream(3), **kwargs)
        with pytest.raises(ValueError, match="IterableDataset"):
            tud.DataLoader(TorchRangeStream(3), **kwargs)


def test_chain_dataset_and_plus_on_iterables():
    chained = RangeStream(3) + RangeStream(2)
    assert isinstance(chained, tgd.ChainDataset)
    assert list(chained) == [0, 1, 2, 0, 1] and len(chained) == 5


# ------------------------------------------------------------------------------------------- loader properties

@given(n=st.integers(0, 50), batch_size=st.integers(1, 16), drop_last=st.booleans(), shuffle=st.booleans())
def test_len_and_attributes_equal_torch(n, batch_size, drop_last, shuffle):
    ours_ds, theirs_ds = tensor_pair(n)
    if shuffle and n == 0:
        return  # RandomSampler refuses empty datasets in both libraries (tested in the errors below)
    ours = tgd.DataLoader(ours_ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    theirs = tud.DataLoader(theirs_ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    assert len(ours) == len(theirs) == len(list(ours))
    assert ours.dataset is ours_ds
    assert (ours.batch_size, ours.drop_last) == (theirs.batch_size, theirs.drop_last)
    assert type(ours.sampler).__name__ == type(theirs.sampler).__name__
    assert type(ours.batch_sampler).__name__ == type(theirs.batch_sampler).__name__
    assert len(iter(ours)) == len(ours)


def test_batch_sampler_argument_sets_batch_size_none_as_torch():
    ours_ds, theirs_ds = tensor_pair(10)
    ours = tgd.DataLoader(ours_ds, batch_sampler=tgd.BatchSampler(tgd.SequentialSampler(ours_ds), 3, True))
    theirs = tud.DataLoader(theirs_ds, batch_sampler=tud.BatchSampler(tud.SequentialSampler(theirs_ds), 3, True))
    assert ours.batch_size is None and theirs.batch_size is None
    assert ours.drop_last is False
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        assert_same(a, b)


def test_custom_sampler_and_collate_fn_are_used():
    ds = ListDataset(list(range(10)))
    loader = tgd.DataLoader(ds, batch_size=3, sampler=[9, 8, 7, 1], collate_fn=lambda b: sum(b))
    assert list(loader) == [24, 1]


def test_subset_getitems_goes_to_the_dataset_in_one_call():
    calls = []

    class Batched(ListDataset):
        def __getitems__(self, indices):
            calls.append(list(indices))
            return [self.items[i] for i in indices]

    sub = tgd.Subset(Batched(list(range(10, 20))), [5, 3, 1, 0])
    assert [b.tolist() for b in tgd.DataLoader(sub, batch_size=3)] == [[15, 13, 11], [10]]
    assert calls == [[5, 3, 1], [0]]


def test_subset_subclass_overriding_getitem_is_respected():
    class Doubled(tgd.Subset):
        def __getitem__(self, idx):
            return 2 * super().__getitem__(idx)

    sub = Doubled(ListDataset(list(range(5))), [4, 2])
    assert [b.tolist() for b in tgd.DataLoader(sub, batch_size=2)] == [[8, 4]]


# ------------------------------------------------------------------------------------------------- collation

def _collate_cases():
    return {
        "float32 tensors": [torch.tensor([1.5, 2.0]), torch.tensor([3.0, -1.0])],
        "int64 0-d tensors": [torch.tensor(3), torch.tensor(-4)],
        "bool tensors": [torch.tensor([True]), torch.tensor([False])],
        "python floats": [1.5, 2.25, -3.0],
        "python ints": [1, 2, -3],
        "python bools": [True, False],
        "bools and ints": [True, 2],
        "float64 arrays": [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
        "uint8 arrays": [np.array([[1, 2]], dtype=np.uint8), np.array([[3, 4]], dtype=np.uint8)],
        "int32 0-d arrays": [np.array(3, dtype=np.int32), np.array(4, dtype=np.int32)],
        "float32 scalars": [np.float32(1.5), np.float32(2.5)],
        "float64 scalars": [np.float64(1.5), np.float64(2.5)],
        "int16 scalars": [np.int16(3), np.int16(4)],
        "numpy bools": [np.bool_(True), np.bool_(False)],
        "strings": ["a", "bc"],
        "bytes": [b"a", b"bc"],
        "tuples": [(1, 2.0), (3, 4.0)],
        "lists": [[1, 2], [3, 4]],
        "dicts": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
        "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
        "tuples of strings": [("a", 1), ("b", 2)],
        "nested": [{"img": np.ones((2, 2), np.float32), "meta": (Point(1, "p"), [0.5, 1])},
                   {"img": np.zeros((2, 2), np.float32), "meta": (Point(2, "q"), [1.5, 2])}],
    }


def _to_tg(obj):
    """The same sample with torch tensors replaced by tinyautograd tensors."""
    if isinstance(obj, torch.Tensor):
        return tg.tensor(obj.cpu().numpy())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_tg(v) for v in obj))
    if isinstance(obj, dict):
        return {k: _to_tg(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tg(v) for v in obj)
    return obj


@pytest.mark.parametrize("case", list(_collate_cases()))
def test_default_collate_matches_torch(case):
    batch = _collate_cases()[case]
    assert_same(tgd.default_collate(_to_tg(batch)), tud.default_collate(batch))


@pytest.mark.parametrize("case", list(_collate_cases()))
def test_default_convert_matches_torch(case):
    for sample in _collate_cases()[case]:
        assert_same(tgd.default_convert(_to_tg(sample)), tud.default_convert(sample))


def test_default_convert_leaves_string_arrays_alone_as_torch():
    a = np.array(["a", "b"])
    assert tgd.default_convert(a) is a


@given(shape=st.lists(st.integers(0, 3), max_size=3), batch=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]))
def test_default_collate_of_arrays_and_tensors_matches_torch(shape, batch, dtype):
    rng = np.random.default_rng(len(shape) * 10 + batch)
    arrays = [(rng.standard_normal(shape) * 5).astype(dtype) for _ in range(batch)]
    assert_same(tgd.default_collate(arrays), tud.default_collate(arrays))
    assert_same(tgd.default_collate([tg.tensor(a) for a in arrays]),
                tud.default_collate([torch.tensor(a) for a in arrays]))


def test_default_collate_of_tensors_requiring_grad_records_the_stack():
    w = [tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)]
    out = tgd.default_collate(w)
    (out * tg.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert w[1].grad.tolist() == [3.0, 4.0]


def test_default_collate_errors_match_torch():
    cases = [
        ([(1, 2), (1,)], RuntimeError),
        ([object(), object()], TypeError),
        ([np.array(["a"]), np.array(["b"])], TypeError),
        ([np.zeros(2), np.zeros(3)], RuntimeError),
    ]
    for batch, error in cases:
        with pytest.raises(error) as ours:
            tgd.default_collate(batch)
        with pytest.raises(error) as theirs:
            tud.default_collate(batch)
        if error is TypeError:
            assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        tgd.default_collate([tg.zeros(2), tg.zeros(3)])


# --------------------------------------------------------------------------------------------- random_split

@given(n=st.integers(0, 200), weights=st.lists(st.integers(1, 20), min_size=1, max_size=5))
def test_random_split_fraction_lengths_equal_torch(n, weights):
    fractions = [w / sum(weights) for w in weights]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = [len(s) for s in tud.random_split(range(n), fractions)]
        except ValueError:
            with pytest.raises(ValueError):
                tgd.random_split(range(n), fractions)
            return
        splits = tgd.random_split(range(n), fractions)
    assert [len(s) for s in splits] == expected
    drawn = [i for s in splits for i in s.indices]
    assert sorted(drawn) == list(range(n))


def test_random_split_integer_lengths_and_seeded_generator():
    a = tgd.random_split(range(10), [3, 7], generator=tg.Generator().manual_seed(42))
    b = tgd.random_split(range(10), [3, 7], generator=tg.Generator().manual_seed(42))
    assert [len(s) for s in a] == [3, 7]
    assert [s.indices for s in a] == [s.indices for s in b]
    assert sorted(a[0].indices + a[1].indices) == list(range(10))
    assert [a[0][i] for i in range(3)] == a[0].indices


def test_random_split_errors_and_warning_match_torch():
    for lengths in ([3, 3], [0.5, 0.6], [1.5, -0.5]):
        with pytest.raises(ValueError):
            tud.random_split(range(10), lengths)
        with pytest.raises(ValueError):
            tgd.random_split(range(10), lengths)
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        tgd.random_split(range(1), [0.5, 0.5])


# ------------------------------------------------------------------------------------------------- samplers

def test_sequential_and_batch_samplers_equal_torch():
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (0, 2, False)]:
        ours = tgd.BatchSampler(tgd.SequentialSampler(range(n)), bs, drop)
        theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@given(n=st.integers(1, 20), num_samples=st.one_of(st.none(), st.integers(1, 50)), replacement=st.booleans())
def test_random_sampler_draws_the_right_multiset(n, num_samples, replacement):
    sampler = tgd.RandomSampler(range(n), replacement=replacement, num_samples=num_samples)
    drawn = list(sampler)
    count = n if num_samples is None else num_samples
    assert len(drawn) == len(sampler) == len(tud.RandomSampler(range(n), replacement, num_samples)) == count
    assert all(isinstance(i, int) and 0 <= i < n for i in drawn)
    if not replacement:
        # every full block of n is a permutation, the rest distinct
        for start in range(0, count, n):
            block = drawn[start:start + n]
            assert len(set(block)) == len(block)


def test_subset_random_sampler_permutes_its_indices():
    g = tg.Generator().manual_seed(3)
    indices = [10, 20, 30, 40]
    drawn = list(tgd.SubsetRandomSampler(indices, generator=g))
    assert sorted(drawn) == indices and len(tgd.SubsetRandomSampler(indices)) == 4


def test_weighted_random_sampler_respects_zero_weights_and_replacement():
    g = tg.Generator().manual_seed(0)
    drawn = list(tgd.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 200, generator=g))
    assert set(drawn) <= {1, 3} and drawn.count(3) > drawn.count(1)
    unique = list(tgd.WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 4, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 2, 3]
    assert len(tgd.WeightedRandomSampler([1, 2], 7)) == 7


@pytest.mark.parametrize("make", [
    lambda m: m.RandomSampler(range(3), replacement=1),
    lambda m: m.RandomSampler(range(3), num_samples=0),
    lambda m: m.RandomSampler(range(0)),
    lambda m: m.BatchSampler(range(3), 0, False),
    lambda m: m.BatchSampler(range(3), True, False),
    lambda m: m.BatchSampler(range(3), 2, 1),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 0),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 2, replacement=None),
    lambda m: m.WeightedRandomSampler([[1.0, 2.0]], 2),
], ids=["replacement", "num_samples", "empty", "batch_size", "bool_batch_size", "drop_last", "weighted_num",
        "weighted_replacement", "weighted_2d"])
def test_sampler_argument_errors_match_torch(make):
    with pytest.raises((TypeError, ValueError)) as theirs:
        make(tud)
    with pytest.raises(theirs.type):
        make(tgd)


# --------------------------------------------------------------------------------------------------- datasets

def test_concat_dataset_indexing_equals_torch():
    parts = [list(range(3)), [], list(range(10, 15)), [99]]
    ours = tgd.ConcatDataset([ListDataset(p) for p in parts])
    theirs = tud.ConcatDataset([TorchListDataset(p) for p in parts])
    assert len(ours) == len(theirs) and ours.cumulative_sizes == theirs.cumulative_sizes
    for i in range(-len(theirs), len(theirs)):
        assert ours[i] == theirs[i]
    with pytest.raises(ValueError):
        ours[-len(ours) - 1]
    with pytest.raises(IndexError):
        ours[len(ours)]


def test_plus_on_datasets_concatenates():
    combined = ListDataset([1, 2]) + ListDataset([3])
    assert isinstance(combined, tgd.ConcatDataset)
    assert [combined[i] for i in range(len(combined))] == [1, 2, 3]


def test_concat_dataset_errors_match_torch():
    for args in ([], [RangeStream(2)]):
        with pytest.raises(AssertionError):
            tgd.ConcatDataset(args)
    with pytest.raises(AssertionError):
        tud.ConcatDataset([])


def test_tensor_dataset_items_and_errors():
    ds = tgd.TensorDataset(tg.arange(6).reshape(3, 2), tg.tensor([7, 8, 9]))
    x, y = ds[1]
    assert x.tolist() == [2, 3] and y.item() == 8 and len(ds) == 3
    with pytest.raises(AssertionError, match="Size mismatch"):
        tgd.TensorDataset(tg.zeros(3), tg.zeros(4))
    with pytest.raises(AssertionError):
        tud.TensorDataset(torch.zeros(3), torch.zeros(4))


def test_dataset_without_getitem_raises_not_implemented():
    class Empty(tgd.Dataset):
        pass

    with pytest.raises(NotImplementedError, match="__getitem__"):
        Empty()[0]


def test_subset_reads_through_its_indices():
    sub = tgd.Subset(ListDataset(list("abcdef")), [5, 0, 2])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == ["f", "a", "c"]


# ----------------------------------------------------------------------------------------------- loader errors

@pytest.mark.parametrize("kwargs", [
    {"shuffle": True, "sampler": [0, 1]},
    {"batch_sampler": [[0]], "batch_size": 2},
    {"batch_sampler": [[0]], "shuffle": True},
    {"batch_sampler": [[0]], "sampler": [0]},
    {"batch_sampler": [[0]], "drop_last": True},
    {"batch_size": None, "drop_last": True},
    {"num_workers": -1},
    {"timeout": -1},
    {"prefetch_factor": 2},
    {"persistent_workers": True},
    {"batch_size": 0},
], ids=lambda k: ",".join(k))
def test_loader_argument_errors_match_torch(kwargs):
    with pytest.raises(ValueError):
        tud.DataLoader(TorchListDataset([0, 1]), **kwargs)
    with pytest.raises(ValueError):
        tgd.DataLoader(ListDataset([0, 1]), **kwargs)


def test_worker_processes_are_refused_with_the_fix_in_the_message():
    with pytest.raises(ValueError, match=r"num_workers=2 is not supported.*num_workers=0"):
        tgd.DataLoader(ListDataset([0, 1]), num_workers=2)
    assert tgd.get_worker_info() is None


def test_batching_attributes_are_frozen_after_construction():
    loader = tgd.DataLoader(ListDataset([0, 1]), batch_size=2)
    for attr in ("batch_size", "sampler", "batch_sampler", "drop_last", "dataset"):
        with pytest.raises(ValueError, match="should not be set"):
            setattr(loader, attr, None)
    loader.collate_fn = lambda b: b
    assert list(loader) == [[0, 1]]


def test_shuffled_loader_of_an_empty_dataset_fails_as_torch():
    with pytest.raises(ValueError, match="num_samples"):
        tgd.DataLoader(ListDataset([]), shuffle=True)
    with pytest.raises(ValueError, match="num_samples"):
        tud.DataLoader(TorchListDataset([]), shuffle=True)
