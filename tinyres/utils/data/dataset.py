"""Datasets as ``torch.utils.data`` has them: the two protocols and the ways to combine them.

A map-style ``Dataset`` answers ``len(ds)`` and ``ds[i]``; an ``IterableDataset`` answers
``iter(ds)``.  ``TensorDataset`` zips tensors along their first axis, ``Subset`` picks
indices, ``ConcatDataset`` (also ``a + b``) chains datasets, ``random_split`` cuts one into
disjoint random Subsets.  All of tinyres's own datasets (``tinyres.data.CIFAR10`` ...) are
map-style datasets and work with all of this.
"""
import bisect
import math
import numbers
import warnings

from ...core import backend


class DatasetError(ValueError, AssertionError):
    """Bad arguments to a dataset class: a ValueError, and an AssertionError as torch's are."""


class Dataset:
    """A map-style dataset: subclass it and define ``__getitem__`` (and ``__len__``)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"Subclasses of Dataset should implement __getitem__ "
                                  f"({type(self).__name__} does not).")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclass it and define ``__iter__``.  In a DataLoader
    with workers every worker iterates its own copy; split the stream with
    ``get_worker_info()`` (as in torch) or each sample comes once per worker."""

    def __iter__(self):
        raise NotImplementedError(f"Subclasses of IterableDataset should implement __iter__ "
                                  f"({type(self).__name__} does not).")

    def __add__(self, other):
        raise TypeError("IterableDataset: '+' makes a ConcatDataset, which needs map-style datasets")


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``: tensors (or arrays) of one length."""

    def __init__(self, *tensors):
        sizes = [len(t) for t in tensors]
        if not tensors or any(n != sizes[0] for n in sizes):
            raise DatasetError(f"TensorDataset: Size mismatch between tensors: expected one or more tensors "
                             f"of the same first dimension, got first dimensions {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is not None:
            return getitems([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """``datasets`` one after the other: index ``i`` falls in the dataset whose cumulative
    size first exceeds it (``cumulative_sizes``)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise DatasetError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"ConcatDataset: absolute value of index should not exceed dataset length "
                                 f"({len(self)}), got {idx}")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {idx} is out of range for a dataset of {len(self)} samples")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def _split_lengths(n, lengths):
    """``lengths`` as whole counts: fractions summing to 1 become ``floor(n * f)``, the
    remainder handed out one by one from the first split on (torch's rule)."""
    lengths = list(lengths)
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) and x >= 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative counts or fractions, got {lengths}")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(float(x).is_integer() for x in lengths):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.")
        return counts
    if not all(float(x).is_integer() for x in lengths):
        raise ValueError(f"random_split: fractions must sum to 1, got {lengths} (sum {sum(lengths)})")
    counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"random_split: Sum of input lengths ({sum(counts)}) does not equal the length of the "
                         f"input dataset ({n})!")
    return counts


def random_split(dataset, lengths, generator=None):
    """Disjoint random ``Subset`` s of ``dataset`` with the given ``lengths`` (counts, or
    fractions that sum to 1).  The permutation comes from ``generator`` (a
    ``tinyres.Generator`` or NumPy Generator), else from tinyres's default generator."""
    counts = _split_lengths(len(dataset), lengths)
    perm = (generator or backend.default_generator()).permutation(sum(counts)).tolist()
    subsets, start = [], 0
    for c in counts:
        subsets.append(Subset(dataset, perm[start:start + c]))
        start += c
    return subsets
