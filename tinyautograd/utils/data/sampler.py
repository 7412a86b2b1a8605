"""Samplers: iterables of dataset indices (or of index batches) that decide the order DataLoader reads in
(``torch.utils.data.sampler``).

Random samplers draw from a ``Generator``: the one given, or, when none is given, a fresh one seeded from the global
generator at the start of every epoch, as torch does, so ``tinyautograd.manual_seed`` makes a run's epochs
reproducible while consecutive epochs still differ.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Iterator, Sequence, Sized

import numpy as np

from ... import _dtype
from ...creation import as_tensor, multinomial, randint, randperm
from ...random import Generator

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


class Sampler:
    """Base class of samplers: subclasses define ``__iter__`` over indices and, when they can, ``__len__``
    (``torch.utils.data.Sampler``)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        # torch accepts and ignores this argument; kept so subclasses written for torch run unchanged
        pass

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} is a Sampler and must define __iter__(self)")


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")


class SequentialSampler(Sampler):
    """Indices ``0, 1, ..., len(data_source) - 1`` in order (``torch.utils.data.SequentialSampler``)."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)

    def _index_array(self) -> np.ndarray:
        """The epoch's indices as one int64 array (DataLoader's whole-batch path for TensorDataset)."""
        return np.arange(len(self.data_source), dtype=np.int64)


class RandomSampler(Sampler):
    """Indices in random order (``torch.utils.data.RandomSampler``).

    Without replacement each block of ``len(data_source)`` indices is a permutation (the last block cut to
    ``num_samples``); with replacement indices are drawn uniformly and independently. ``num_samples`` defaults to
    ``len(data_source)``.

    The samplers draw on the CPU whatever the default device (``set_default_device("cuda")``), where torch's
    refuse their CPU generator; the indices are only used on the host.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        _check_positive_int("num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        # read at each use, as torch, so a data_source that grows is followed
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _epoch_generator(self) -> Generator:
        if self.generator is not None:
            return self.generator
        seed = int(randint(0, 2 ** 63 - 1, (), device="cpu").item())
        return Generator().manual_seed(seed)

    def _index_array(self) -> np.ndarray:
        """The epoch's indices as one int64 array; ``__iter__`` yields exactly these."""
        n = len(self.data_source)
        count = self.num_samples
        generator = self._epoch_generator()
        if self.replacement:
            return randint(0, n, (count,), generator=generator, device="cpu").numpy()
        blocks = [randperm(n, generator=generator, device="cpu").numpy() for _ in range(-(-count // n))]
        return np.concatenate(blocks)[:count]

    def __iter__(self) -> Iterator[int]:
        yield from self._index_array().tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, without replacement (``torch.utils.data.SubsetRandomSampler``)."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in randperm(len(self.indices), generator=self.generator, device="cpu").tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices into ``weights`` drawn with probability proportional to the weights
    (``torch.utils.data.WeightedRandomSampler``); ``weights`` need not sum to one."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Generator | None = None) -> None:
        _check_positive_int("num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        weights_tensor = as_tensor(weights, dtype=_dtype.float64, device="cpu")
        if weights_tensor.dim() != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(weights_tensor.shape)}")
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        yield from multinomial(self.weights, self.num_samples, self.replacement, generator=self.generator).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (``torch.utils.data.BatchSampler``); the last,
    shorter list is dropped when ``drop_last``."""

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        _check_positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        indices = iter(self.sampler)
        batch = list(itertools.islice(indices, self.batch_size))
        while batch:
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch
            batch = list(itertools.islice(indices, self.batch_size))

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return -(-len(self.sampler) // self.batch_size)
