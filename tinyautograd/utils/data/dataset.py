"""Datasets: the map-style and iterable protocols, and the wrappers built on them (``torch.utils.data.dataset``).

A map-style dataset answers ``len(ds)`` and ``ds[i]``; an iterable dataset answers ``iter(ds)``. The wrappers here
(TensorDataset, Subset, ConcatDataset, ChainDataset, random_split) only use those protocols, so they work on any
dataset, tinyautograd's or the user's.
"""
from __future__ import annotations

import bisect
import math
import warnings
from typing import Iterable, Iterator, Sequence

from ...creation import randperm
from ...random import default_generator
from ...tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split"]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__`` (``torch.utils.data.
    Dataset``). ``a + b`` concatenates two datasets into a ConcatDataset."""

    def __getitem__(self, index):
        # the abstract method of the protocol, as torch: a subclass that forgets it fails on first access
        raise NotImplementedError(f"{type(self).__name__} is a Dataset and must define __getitem__(self, index)")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses define ``__iter__`` (``torch.utils.data.IterableDataset``).
    ``a + b`` chains two iterable datasets into a ChainDataset. DataLoader reads it in order, with no sampler."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} is an IterableDataset and must define __iter__(self)")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of tensors sharing their first dimension (``torch.utils.data.TensorDataset``).

    ``TensorDataset(x, y)[i] == (x[i], y[i])``; every tensor has shape ``(N, ...)`` with the same ``N``.
    DataLoader recognises this class and gathers a whole batch with one index per tensor.
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor, e.g. TensorDataset(inputs, targets)")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.dim() == 0:
                what = "a 0-d tensor" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError(f"TensorDataset: argument {i} must be a tensor with at least one dimension (got "
                                f"{what}); wrap arrays with tinyautograd.as_tensor")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            # AssertionError is what torch raises here
            raise AssertionError(f"Size mismatch between tensors: TensorDataset needs the same first dimension in "
                                 f"every tensor, got sizes {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (``torch.utils.data.Subset``)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        """A batch of samples at once; DataLoader calls it instead of ``__getitem__`` per index."""
        if type(self).__getitem__ is not Subset.__getitem__:
            # a subclass that redefines __getitem__ must see every access (torch refuses such subclasses instead)
            return [self[i] for i in indices]
        fetch_many = getattr(self.dataset, "__getitems__", None)
        if callable(fetch_many):
            return fetch_many([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several map-style datasets read one after another (``torch.utils.data.ConcatDataset``).

    ``cumulative_sizes[k]`` is the number of samples in ``datasets[:k + 1]``.
    """

    @staticmethod
    def cumsum(sequence: Iterable[Dataset]) -> list[int]:
        sizes, total = [], 0
        for d in sequence:
            total += len(d)
            sizes.append(total)
        return sizes

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        # AssertionError in both checks is what torch raises
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset; chain iterable datasets with "
                                     "ChainDataset (or `a + b`)")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"absolute value of index should not exceed dataset length (index {idx}, length "
                                 f"{len(self)})")
            idx += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset index {idx} is out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets read one after another (``torch.utils.data.ChainDataset``)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError(f"ChainDataset only supports IterableDataset (got {type(d).__name__})")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError(f"ChainDataset only supports IterableDataset (got {type(d).__name__})")
            total += len(d)
        return total


def random_split(dataset: Dataset, lengths: Sequence[int | float], generator=default_generator) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths (``torch.utils.data.random_split``).

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1: each split then gets
    ``floor(frac * len(dataset))`` samples and the remainder is dealt out one by one from the first split on,
    exactly as torch does. The permutation comes from ``generator`` (the global generator by default).
    """
    lengths = list(lengths)
    n = len(dataset)
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(math.floor(n * frac))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths does not equal the length of the input dataset! (lengths {lengths} "
                         f"sum to {sum(lengths)}, the dataset has {n} samples; give sizes summing to {n} or "
                         "fractions summing to 1)")
    order = randperm(n, generator=generator, device="cpu").tolist()
    splits, offset = [], 0
    for size in lengths:
        splits.append(Subset(dataset, order[offset:offset + size]))
        offset += size
    return splits
