"""``tinyres.vision``, as ``torchvision``: per-sample ``transforms``, ``datasets`` that give PIL
images, and ``models``.  A PyTorch script's ``import torchvision`` and
``import torchvision.transforms as transforms`` become ``import tinyres.vision as torchvision``
and ``import tinyres.vision.transforms as transforms``.
"""
from . import datasets, models, transforms  # noqa: F401
