"""Per-sample image transforms, as ``torchvision.transforms``: one image at a time, in a Dataset.

An image is a PIL image, an ``(H, W)`` / ``(H, W, C)`` NumPy array (PIL's layout, as from
``numpy.asarray(pil_image)``), or a ``(..., C, H, W)`` Tensor.  The geometric transforms
(``RandomCrop``, ``CenterCrop``, ``Pad``, the flips) give back the kind they got;
``ToTensor`` turns a PIL image or array into a float ``(C, H, W)`` Tensor in [0, 1] (uint8
divided by 255); ``Normalize`` works on Tensors.  So torchvision's CIFAR recipe reads::

    transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                        transforms.ToTensor(), transforms.Normalize(mean, std)])

As in torchvision, the classes (``transforms.py``) call the per-image functions of
``functional`` (``import tinyres.vision.transforms.functional as TF``: ``TF.hflip(img)``,
``TF.normalize(t, mean, std)``, ...), for a transform of your own that draws its parameters once.

Random choices are drawn from tinyres's default generator (``tinyres.manual_seed``), which
each DataLoader worker seeds differently, as torchvision draws from torch's.  These work
on data, outside the autograd graph.  ``tinyres.data.transforms`` holds the vectorised
counterparts that augment a whole batch at once.
"""
from . import functional  # noqa: F401
from .functional import crop, hflip, pad, vflip  # noqa: F401  (their place before functional)
from .transforms import *  # noqa: F401,F403
