"""``tinyres.vision``, as ``torchvision``: per-sample ``transforms``, ``datasets`` that give PIL
images, ``models``, and ``utils`` (``make_grid``, ``save_image``).  A PyTorch script's
``import torchvision`` and ``import torchvision.transforms as transforms`` become
``import tinyres.vision as torchvision`` and ``import tinyres.vision.transforms as transforms``.
"""
from . import datasets, models, transforms, utils  # noqa: F401
