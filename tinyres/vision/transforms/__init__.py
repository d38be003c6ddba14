"""Per-sample image transforms, as ``torchvision.transforms``: one image at a time, in a Dataset.

An image is a PIL image, an ``(H, W)`` / ``(H, W, C)`` NumPy array (PIL's layout, as from
``numpy.asarray(pil_image)``), or a ``(..., C, H, W)`` Tensor, and every transform gives back the
kind it got: geometry (``Resize``, ``RandomResizedCrop``, ``RandomCrop``, ``CenterCrop``,
``FiveCrop``, ``TenCrop``, ``Pad``, the flips, ``RandomRotation``, ``RandomAffine``,
``RandomPerspective``, ``ElasticTransform``), colour
(``ColorJitter``, ``Grayscale``, ``RandomGrayscale``, ``GaussianBlur``, ``RandomInvert`` ...),
the policies (``AutoAugment``, ``RandAugment``, ``TrivialAugmentWide``) and the containers
(``RandomApply``, ``RandomChoice``, ``RandomOrder``).  A PIL image is processed by the PIL calls
torchvision makes, so the pixels are torchvision's; a Tensor (or an array) by torchvision's
tensor formulas.  ``ToTensor`` turns a PIL image or array into a float ``(C, H, W)`` Tensor in
[0, 1] (uint8 divided by 255); ``Normalize`` and ``RandomErasing`` work on Tensors.  So
torchvision's CIFAR and ImageNet recipes read::

    transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                        transforms.ToTensor(), transforms.Normalize(mean, std)])
    transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
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
from .autoaugment import *  # noqa: F401,F403
from .functional import InterpolationMode  # noqa: F401
from .functional import crop, hflip, pad, vflip  # noqa: F401  (their place before functional)
from .transforms import *  # noqa: F401,F403
