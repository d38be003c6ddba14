"""Datasets, a DataLoader and batch transforms, in NumPy.  See docs/data.md."""
from . import transforms  # noqa: F401
from .datasets import CIFAR10, CIFAR100, MNIST, BundledMNIST, FashionMNIST, RestrictedUnpickler, UnsafePickleError, default_root
from .download import DownloadError  # noqa: F401
from .folder import ImageFolder, stratified_split  # noqa: F401
from .loader import DataLoader  # noqa: F401
from .sampler import DistributedSampler  # noqa: F401

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "BundledMNIST", "ImageFolder", "DataLoader",
           "DistributedSampler", "stratified_split",
           "transforms", "RestrictedUnpickler", "UnsafePickleError", "DownloadError", "default_root"]
