"""DataLoader and the collate functions that turn lists of samples into batches (``torch.utils.data.dataloader``
and ``torch.utils.data._utils.collate``).

Loading runs in the calling process only (``num_workers=0``). Batches of a TensorDataset read through the default
sampler and collate are gathered with one index per tensor instead of one ``__getitem__`` per sample; the batches
are the same, built faster.
"""
from __future__ import annotations

import collections.abc
import copy
import itertools
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ... import _dtype
from ...backend import array_module
from ...creation import as_tensor, from_numpy, tensor
from ...ops import stack
from ...random import Generator
from ...tensor import Tensor
from .dataset import Dataset, IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "collate", "get_worker_info"]

_COLLATE_TYPE_ERROR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                       "found {}")


def _is_text_or_object_array(a: np.ndarray) -> bool:
    # strings, bytes, unicode and Python objects have no tensor dtype
    return a.dtype.kind in "SaUO"


def _collate_tensors(batch, *, collate_fn_map=None) -> Tensor:
    if not any(t.requires_grad for t in batch):
        try:
            # one stack of the raw arrays: no graph to record, and far fewer tensor objects than stack()
            return Tensor._wrap(array_module(batch[0]._data).stack([t._data for t in batch]))
        except (ValueError, TypeError):
            pass  # unequal shapes or mixed devices: stack() below raises torch's error naming them
    return stack(batch, 0)


def _collate_numpy_arrays(batch, *, collate_fn_map=None) -> Tensor:
    if _is_text_or_object_array(batch[0]):
        raise TypeError(_COLLATE_TYPE_ERROR.format(batch[0].dtype))
    return _collate_tensors([as_tensor(b) for b in batch])


def _collate_numpy_scalars(batch, *, collate_fn_map=None) -> Tensor:
    # NumPy scalars keep their dtype (np.float32 -> float32), as torch.as_tensor does
    return from_numpy(np.array(batch))


def _collate_floats(batch, *, collate_fn_map=None) -> Tensor:
    return tensor(batch, dtype=_dtype.float64)


def _collate_ints(batch, *, collate_fn_map=None) -> Tensor:
    # int64, or bool when every element is a bool (bool is an int subclass), as torch.tensor infers
    return tensor(batch)


def _collate_strings(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple[type, ...], Callable] = {
    Tensor: _collate_tensors,
    np.ndarray: _collate_numpy_arrays,
    (np.bool_, np.number): _collate_numpy_scalars,
    float: _collate_floats,
    int: _collate_ints,
    str: _collate_strings,
    bytes: _collate_strings,
}


def collate(batch: list | tuple, *, collate_fn_map: dict | None = None):
    """Collate a batch whose elements share one structure, with ``collate_fn_map`` giving the function for each
    leaf type (``torch.utils.data._utils.collate.collate``).

    The element's exact type is looked up first, then each key of the map is tried with ``isinstance`` in order.
    Mappings, namedtuples and sequences are collated field by field (sequences transposed); anything else raises
    ``TypeError``.
    """
    if len(batch) == 0:
        raise IndexError("collate: the batch is empty; a batch needs at least one sample to collate")
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        fn = collate_fn_map.get(elem_type)
        if fn is not None:
            return fn(batch, collate_fn_map=collate_fn_map)
        for leaf_type, fn in collate_fn_map.items():
            if isinstance(elem, leaf_type):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        fields = {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
        return _same_mapping_type(elem, fields)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, sample in enumerate(batch):
            if len(sample) != size:
                raise RuntimeError(f"each element in list of batch should be of equal size (element 0 has "
                                   f"{size} fields, element {i} has {len(sample)})")
        columns = [collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return columns  # torch returns plain tuples as lists
        return _same_sequence_type(elem, columns)
    raise TypeError(_COLLATE_TYPE_ERROR.format(elem_type))


def _same_mapping_type(template, fields: dict):
    """``fields`` as the mapping type of ``template`` where it can be rebuilt, else a plain dict (as torch)."""
    try:
        if isinstance(template, collections.abc.MutableMapping):
            out = copy.copy(template)
            out.update(fields)
            return out
        return type(template)(fields)
    except TypeError:
        return fields


def _same_sequence_type(template, items: list):
    """``items`` as the sequence type of ``template`` where it can be rebuilt, else a list (as torch)."""
    try:
        if isinstance(template, collections.abc.MutableSequence):
            out = copy.copy(template)
            for i, item in enumerate(items):
                out[i] = item
            return out
        return type(template)(items)
    except TypeError:
        return items


def default_collate(batch: list | tuple):
    """Merge a list of samples into a batch (``torch.utils.data.default_collate``).

    Tensors and NumPy arrays of shape ``S`` -> one tensor ``(B, *S)``; Python floats -> float64, ints -> int64
    (bools -> bool); NumPy scalars keep their dtype; strings and bytes -> the list as given; dicts, namedtuples and
    sequences keep their structure with each field collated (tuples become lists, as in torch).
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """Turn NumPy arrays and scalars inside ``data`` into tensors, keeping the structure (``torch.utils.data.
    default_convert``); DataLoader applies it to each sample when ``batch_size=None``."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_text_or_object_array(data) else as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping_type(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_sequence_type(data, [default_convert(d) for d in data])
    return data


def get_worker_info() -> None:
    """Information about the current loader worker (``torch.utils.data.get_worker_info``): always ``None`` here,
    since every batch is loaded in the main process."""
    return None


class _InfiniteConstantSampler(Sampler):
    """The sampler an IterableDataset gets: ``None`` forever, since the dataset decides its own order."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)


class _SingleProcessDataLoaderIter:
    """One pass over a DataLoader; ``len()`` is the loader's length."""

    __slots__ = ("_loader", "_batches", "_num_yielded")

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._batches = loader._generate_batches()
        self._num_yielded = 0

    def __iter__(self) -> _SingleProcessDataLoaderIter:
        return self

    def __next__(self):
        batch = next(self._batches)
        self._num_yielded += 1
        return batch

    def __len__(self) -> int:
        return len(self._loader)


_FROZEN_AFTER_INIT = frozenset(("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                                "persistent_workers"))


class DataLoader:
    """Iterate over a dataset in batches (``torch.utils.data.DataLoader``).

    Map-style datasets are read in the order of ``sampler`` (sequential, or ``RandomSampler`` when ``shuffle``),
    grouped by ``BatchSampler(sampler, batch_size, drop_last)`` (or the given ``batch_sampler``) and merged by
    ``collate_fn`` (``default_collate``). ``batch_size=None`` turns batching off: each sample goes through
    ``default_convert``. An IterableDataset is read in its own order and batched the same way.

    Shuffling draws from ``generator``, or from a generator seeded from the global one each epoch, so
    ``tinyautograd.manual_seed(s)`` fixes every epoch's order. Only ``num_workers=0`` is supported, so ``timeout``
    and ``worker_init_fn`` (worker settings) are accepted and unused; so is ``pin_memory``: batches stay in ordinary
    NumPy memory, from which ``.to('cuda')`` copies as it is.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None, batch_sampler: Sampler | Iterable | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context=None, generator: Generator | None = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        object.__setattr__(self, "_initialized", False)
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if num_workers > 0:
            raise ValueError(f"DataLoader: num_workers={num_workers} is not supported; tinyautograd loads every "
                             "batch in the calling process (num_workers=0). Worker processes would have to pickle "
                             "tensors across process boundaries, which tinyautograd never does, and in-memory "
                             "NumPy datasets index fast enough in process. Pass num_workers=0.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None. (tinyautograd only "
                             "loads in process: leave prefetch_factor=None.)")
        if persistent_workers:
            raise ValueError("persistent_workers option needs num_workers > 0 (tinyautograd only loads in process: "
                             "leave persistent_workers=False)")
        if multiprocessing_context is not None:
            raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > "
                             f"0), but got num_workers={num_workers}")

        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")

        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        object.__setattr__(self, "_initialized", True)

    def __setattr__(self, attr: str, value) -> None:
        # the batching plan is fixed at construction (as in torch): changing these would desynchronise it
        if self._initialized and attr in _FROZEN_AFTER_INIT:
            raise ValueError(f"{attr} attribute should not be set after {type(self).__name__} is initialized; "
                             "build a new DataLoader instead")
        object.__setattr__(self, attr, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> _SingleProcessDataLoaderIter:
        return _SingleProcessDataLoaderIter(self)

    def __len__(self) -> int:
        """Batches per epoch; for an IterableDataset this needs ``len(dataset)`` and assumes it is exact."""
        if self._is_iterable:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
            return length
        return len(self._index_sampler)

    def _generate_batches(self) -> Iterator:
        if self._is_iterable:
            return self._iterable_batches()
        batch_sampler = self.batch_sampler
        if (type(self.dataset) is TensorDataset and self.collate_fn is default_collate
                and type(batch_sampler) is BatchSampler
                and type(batch_sampler.sampler) in (SequentialSampler, RandomSampler)):
            return self._tensor_dataset_batches(batch_sampler)
        return self._map_batches()

    def _map_batches(self) -> Iterator:
        dataset, collate_fn = self.dataset, self.collate_fn
        if not self._auto_collation:
            for index in self.sampler:
                yield collate_fn(dataset[index])
            return
        fetch_many = getattr(dataset, "__getitems__", None)
        for indices in self.batch_sampler:
            samples = fetch_many(indices) if callable(fetch_many) else [dataset[i] for i in indices]
            yield collate_fn(samples)

    def _tensor_dataset_batches(self, batch_sampler: BatchSampler) -> Iterator[list[Tensor]]:
        # same batches as [dataset[i] for i in indices] + default_collate (a list with one stacked tensor per
        # dataset tensor), gathered with one fancy index per tensor; the sampler draws exactly what its __iter__ would
        order = batch_sampler.sampler._index_array()
        size = batch_sampler.batch_size
        stop = len(order) - len(order) % size if batch_sampler.drop_last else len(order)
        tensors = self.dataset.tensors
        for start in range(0, stop, size):
            indices = order[start:start + size]
            yield [t[indices] for t in tensors]

    def _iterable_batches(self) -> Iterator:
        stream = iter(self.dataset)
        collate_fn = self.collate_fn
        if not self._auto_collation:
            for sample in stream:
                yield collate_fn(sample)
            return
        size, drop_last = self.batch_size, self.drop_last
        while True:
            samples = list(itertools.islice(stream, size))
            if not samples or (drop_last and len(samples) < size):
                return
            yield collate_fn(samples)
