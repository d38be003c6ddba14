"""DataLoader: a dataset cut into batches of tinyres Tensors.

Reproducibility: with ``shuffle=True`` the order of epoch ``k`` is
``numpy.random.default_rng([seed, k]).permutation(len(dataset))`` -- a pure function of
``(seed, k)``, whatever happened before.  So a run resumes exactly from
``state_dict() == {"seed": s, "epoch": k, "batch": b}``: the next batch is batch ``b`` of
epoch ``k``.  Without ``seed`` one is drawn from tinyres's default generator when the
loader is made (so ``tinyres.manual_seed`` fixes it too).  With a ``sampler`` (such as
``DistributedSampler``) the order of epoch ``k`` is the sampler's after ``set_epoch(k)``.
"""
import math

import numpy as np

from ..core import backend
from ..core.tensor import tensor


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


class DataLoader:
    """Iterate over ``dataset`` in batches ``(images, labels)`` of Tensors.

    ``dataset``: anything with ``len()`` and ``dataset[i] -> (image, label)``; datasets
    with ``get_batch(indices)`` (all of ``tinyres.data``'s) are loaded a batch at a time
    without a Python loop over samples.  ``transform`` is applied to each whole image
    batch (a NumPy array), after the dataset's own transform.  ``device`` moves each batch
    there with ``Tensor.to``.  ``sampler`` (an iterable of indices with ``len()``, e.g.
    ``DistributedSampler``) replaces ``shuffle``; its ``set_epoch`` is called every epoch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 transform=None, device=None, sampler=None):
        if not _is_int(batch_size) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if len(dataset) == 0:
            raise ValueError(f"DataLoader: the dataset {type(dataset).__name__} is empty (0 samples)")
        n = len(dataset) if sampler is None else len(sampler)
        if drop_last and batch_size > n:
            raise ValueError(f"DataLoader: drop_last=True with batch_size={batch_size} larger than "
                             f"the dataset ({n} samples) would give no batch at all")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle "
                             "(the sampler decides the order)")
        if seed is None:
            seed = int(backend.default_generator().integers(2**63))
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative integer, got {seed!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.transform, self.device, self.sampler = transform, device, sampler
        self.epoch = 0          # the epoch the next iter() produces
        self._start = 0         # the batch it starts at (not 0 only after load_state_dict)
        self._position = None   # (epoch, next batch) while an epoch is under way

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch):
        """The sample indices of epoch ``epoch``, in the order they are served."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        epoch, start = self.epoch, self._start
        self.epoch, self._start = epoch + 1, 0
        order, size, batches = self.order(epoch), self.batch_size, len(self)
        try:
            for b in range(start, batches):
                self._position = (epoch, b + 1) if b + 1 < batches else None
                yield self._load(order[b * size:(b + 1) * size])
        finally:
            self._position = None

    def _load(self, indices):
        if hasattr(self.dataset, "get_batch"):
            images, labels = self.dataset.get_batch(indices)
        else:
            samples = [self.dataset[int(i)] for i in indices]
            images = np.stack([image for image, _ in samples])
            labels = np.array([label for _, label in samples])
        if self.transform is not None:
            images = self.transform(images)
        labels = np.asarray(labels)
        if labels.dtype.kind in "iub":      # class indices become int64; multi-hot or soft labels keep their dtype
            labels = labels.astype(np.int64)
        images, labels = tensor(images), tensor(labels)
        if self.device is not None:
            images, labels = images.to(self.device), labels.to(self.device)
        return images, labels

    def state_dict(self):
        """Where the loader stands: the next batch is batch ``batch`` of epoch ``epoch``."""
        epoch, batch = self._position or (self.epoch, self._start)
        return {"seed": self.seed, "epoch": epoch, "batch": batch}

    def load_state_dict(self, state):
        """Make the next ``iter()`` continue from ``state`` (see :meth:`state_dict`)."""
        seed, epoch, batch = state["seed"], state["epoch"], state["batch"]
        if not all(_is_int(v) and v >= 0 for v in (seed, epoch, batch)) or batch >= len(self):
            raise ValueError(f"DataLoader.load_state_dict: expected non-negative integers seed, "
                             f"epoch and batch < {len(self)}, got {state!r}")
        self.seed, self.epoch, self._start = int(seed), int(epoch), int(batch)
        self._position = None

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")
