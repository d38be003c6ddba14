"""DistributedSampler: each rank's share of a dataset, a different share every epoch.

As ``torch.utils.data.distributed.DistributedSampler``: the epoch's order (a permutation
seeded by ``(seed, epoch)``, the same on every rank, as the DataLoader's own shuffling)
is made a multiple of ``num_replicas`` long -- by repeating its first indices
(``drop_last=False``) or dropping its last ones (``drop_last=True``) -- and rank r takes
positions r, r + P, r + 2P, ...  So the shards are disjoint, of equal size, and together
hold every index once per epoch (plus the few repeats that pad the last round).
"""
import math

import numpy as np

from .. import collectives
from .loader import _is_int


class DistributedSampler:
    """Indices of ``dataset`` for rank ``rank`` of ``num_replicas`` (default: this process's
    rank and the world size of ``tinyres.distributed``).

    Give it to ``DataLoader(dataset, batch_size, sampler=...)``; the loader calls
    ``set_epoch`` itself at every epoch.  ``even=False`` (a tinyres option for evaluation)
    neither pads nor drops: rank r takes indices r, r + P, ... of the unshuffled order, so
    that summing each rank's counts counts every sample exactly once.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False,
                 *, even=True):
        if num_replicas is None or rank is None:
            collectives.init()
        num_replicas = collectives.world_size() if num_replicas is None else num_replicas
        rank = collectives.rank() if rank is None else rank
        if not _is_int(num_replicas) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if not _is_int(rank) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"DistributedSampler: seed must be a non-negative integer, got {seed!r}")
        n = len(dataset)
        if drop_last and n < num_replicas:
            raise ValueError(f"DistributedSampler: drop_last=True with {n} samples for {num_replicas} "
                             "replicas would leave every rank without data")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.even = shuffle, int(seed), drop_last, even
        self.epoch = 0
        if not even:
            self.num_samples = len(range(self.rank, n, self.num_replicas))
        elif drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Make the next ``iter()`` give epoch ``epoch``'s shard."""
        self.epoch = int(epoch)

    def indices(self, epoch):
        """This rank's indices of epoch ``epoch`` (a pure function of seed, epoch and rank)."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        if not self.even:
            return order[self.rank::self.num_replicas]
        if self.total_size > n:       # pad by repeating the start (more than once if n < replicas)
            order = np.resize(order, self.total_size)
        return order[:self.total_size][self.rank::self.num_replicas]

    def __iter__(self):
        return iter(self.indices(self.epoch).tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler(rank={self.rank}, num_replicas={self.num_replicas}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last}, even={self.even})")
