"""Per-sample image transforms, as ``torchvision.transforms.transforms``: classes that hold their
settings and call ``functional``'s per-image functions (the package's docstring says more)."""
from ...core import backend
from ...data.transforms import Compose  # noqa: F401  (in __all__: one Compose for batch and per-sample transforms)
from . import functional as F
from .functional import _PAD_MODES, _hw, _padding, _size, _unpack, crop, pad

__all__ = ["Compose", "Lambda", "ToTensor", "PILToTensor", "ToPILImage", "Normalize", "Pad", "CenterCrop",
           "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip"]


def _uniform():
    return float(backend.default_generator().random())


def _randint(low, high):
    return int(backend.default_generator().integers(low, high))


class Lambda:
    """A function of your own as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class ToTensor:
    """A PIL image or ``(H, W[, C])`` array as a ``(C, H, W)`` Tensor: uint8 (and PIL's
    1-bit mode) scaled to float32 in [0, 1], other dtypes kept as they are (torchvision's rule)."""

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self):
        return "ToTensor()"


class PILToTensor:
    """A PIL image as a ``(C, H, W)`` Tensor of its own dtype, not scaled."""

    def __call__(self, pic):
        return F.pil_to_tensor(pic)


class ToPILImage:
    """A ``(C, H, W)`` Tensor (floats in [0, 1] scaled by 255) or ``(H, W[, C])`` array as a PIL image."""

    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, pic):
        return F.to_pil_image(pic, self.mode)


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel ``c`` of a float ``(..., C, H, W)`` Tensor."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Pad:
    """Pad every image by ``padding`` (see ``pad``)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        _padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        return pad(img, self.padding, self.fill, self.padding_mode)


class CenterCrop:
    """The central ``size`` window (padded with zeros first where the image is smaller)."""

    def __init__(self, size):
        self.size = _size("CenterCrop", size)

    def __call__(self, img):
        return F.center_crop(img, self.size)


class RandomCrop:
    """A random ``size`` window, after ``padding`` (torchvision's arguments): the CIFAR
    recipe's ``RandomCrop(32, padding=4)`` shifts each image by up to 4 pixels."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _size("RandomCrop", size)
        if padding is not None:
            _padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img, output_size):
        """``(top, left, height, width)`` of a random window of ``output_size``."""
        array, last, _ = _unpack("RandomCrop", img)
        (h, w), (th, tw) = _hw(array, last), output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        return _randint(0, h - th + 1), _randint(0, w - tw + 1), th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        array, last, _ = _unpack("RandomCrop", img)
        (h, w), (th, tw) = _hw(array, last), self.size
        if self.pad_if_needed and (w < tw or h < th):
            img = pad(img, [max(tw - w, 0), max(th - h, 0)], self.fill, self.padding_mode)
        return crop(img, *self.get_params(img, self.size))

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class _RandomFlip:
    flip = None

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return type(self).flip(img) if _uniform() < self.p else img

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror the image left to right with probability ``p``."""
    flip = F.hflip


class RandomVerticalFlip(_RandomFlip):
    """Mirror the image top to bottom with probability ``p``."""
    flip = F.vflip
