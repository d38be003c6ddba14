"""``tinyres.utils.data``, as ``torch.utils.data``: datasets, samplers, collation and the DataLoader.

``from tinyres.utils.data import DataLoader, TensorDataset`` reads as it does with torch.
(``tinyres.data`` holds tinyres's own datasets, batch transforms and its batch-at-a-time
``DataLoader``; both loaders take the same datasets.)
"""
from .collate import default_collate, default_convert  # noqa: F401
from .dataloader import DataLoader, WorkerInfo, get_worker_info  # noqa: F401
from .dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split  # noqa: F401
from .sampler import (BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler,  # noqa: F401
                      SubsetRandomSampler, WeightedRandomSampler)
