"""Per-sample image transforms, as ``torchvision.transforms``: one image at a time, in a Dataset.

An image is a PIL image, an ``(H, W)`` / ``(H, W, C)`` NumPy array (PIL's layout, as from
``numpy.asarray(pil_image)``), or a ``(..., C, H, W)`` Tensor.  The geometric transforms
(``RandomCrop``, ``CenterCrop``, ``Pad``, the flips) give back the kind they got;
``ToTensor`` turns a PIL image or array into a float ``(C, H, W)`` Tensor in [0, 1] (uint8
divided by 255); ``Normalize`` works on Tensors.  So torchvision's CIFAR recipe reads::

    transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                        transforms.ToTensor(), transforms.Normalize(mean, std)])

Random choices are drawn from tinyres's default generator (``tinyres.manual_seed``), which
each DataLoader worker seeds differently, as torchvision draws from torch's.  These work
on data, outside the autograd graph.  ``tinyres.data.transforms`` holds the vectorised
counterparts that augment a whole batch at once.
"""
import numbers

import numpy as np

from ..core import backend
from ..core.tensor import Tensor
from ..data.transforms import Compose  # noqa: F401  (one Compose for batch and per-sample transforms)


def _pil():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _is_pil(img):
    Image = _pil()
    return Image is not None and isinstance(img, Image.Image)


def _unpack(name, img):
    """``(array, channels_last, rebuild)``: the pixels, whether H and W are the first two
    axes (PIL, arrays) or the last two (Tensors), and a function making the same kind again."""
    if _is_pil(img):
        Image = _pil()           # the mode follows from the pixels' dtype and channels, as it was
        return np.asarray(img), True, lambda a: Image.fromarray(np.ascontiguousarray(a))
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise ValueError(f"{name}: a Tensor image should be (..., H, W), got shape {tuple(img.shape)}")
        xp = backend.get_array_module(img.data)
        return img.data, False, lambda a: Tensor(xp.ascontiguousarray(a))
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{name}: an array image should be (H, W) or (H, W, C), got shape {img.shape}")
        return img, True, lambda a: a
    raise TypeError(f"{name}: img should be a PIL Image, a NumPy array or a Tensor. Got {type(img)}")


def _hw(array, channels_last):
    return array.shape[:2] if channels_last else array.shape[-2:]


def _crop(array, channels_last, top, left, height, width):
    if channels_last:
        return array[top:top + height, left:left + width]
    return array[..., top:top + height, left:left + width]


def _size(name, size):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: Please provide only two dimensions (h, w) for size, got {size!r}")


def _padding(padding):
    """torchvision's padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom)."""
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def pad(img, padding, fill=0, padding_mode="constant"):
    """``img`` with ``padding`` pixels added (left, top, right, bottom), filled with ``fill``
    or by ``padding_mode`` 'edge', 'reflect' or 'symmetric'."""
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got {padding_mode!r}")
    left, top, right, bottom = _padding(padding)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"pad: negative padding {padding!r} is not supported")
    array, last, rebuild = _unpack("Pad", img)
    widths = [(top, bottom), (left, right)]
    widths = widths + [(0, 0)] * (array.ndim - 2) if last else [(0, 0)] * (array.ndim - 2) + widths
    xp = backend.get_array_module(array)
    extra = {"constant_values": fill} if padding_mode == "constant" else {}
    return rebuild(xp.pad(array, widths, mode=_PAD_MODES[padding_mode], **extra))


def crop(img, top, left, height, width):
    """The ``height`` x ``width`` window of ``img`` whose top-left pixel is (``top``, ``left``)."""
    array, last, rebuild = _unpack("crop", img)
    return rebuild(_crop(array, last, top, left, height, width))


def hflip(img):
    array, last, rebuild = _unpack("hflip", img)
    return rebuild(array[:, ::-1] if last else array[..., ::-1])


def vflip(img):
    array, last, rebuild = _unpack("vflip", img)
    return rebuild(array[::-1] if last else array[..., ::-1, :])


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
        if _is_pil(pic):
            array = np.asarray(pic)
            if pic.mode == "1":
                array = array.astype(np.uint8) * 255
        elif isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional. Got {pic.ndim} dimensions.")
            array = pic
        else:
            raise TypeError(f"ToTensor: pic should be PIL Image or ndarray. Got {type(pic)}")
        array = array[:, :, None] if array.ndim == 2 else array
        chw = np.ascontiguousarray(array.transpose(2, 0, 1))
        if chw.dtype == np.uint8:
            chw = np.divide(chw, 255, dtype=backend.get_default_dtype())
        return Tensor(chw)

    def __repr__(self):
        return "ToTensor()"


class PILToTensor:
    """A PIL image as a ``(C, H, W)`` Tensor of its own dtype, not scaled."""

    def __call__(self, pic):
        if not _is_pil(pic):
            raise TypeError(f"PILToTensor: pic should be PIL Image. Got {type(pic)}")
        array = np.asarray(pic)
        array = array[:, :, None] if array.ndim == 2 else array
        return Tensor(np.ascontiguousarray(array.transpose(2, 0, 1)))


class ToPILImage:
    """A ``(C, H, W)`` Tensor (floats in [0, 1] scaled by 255) or ``(H, W[, C])`` array as a PIL image."""

    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, pic):
        Image = _pil()
        if Image is None:
            raise ImportError("ToPILImage needs Pillow: pip install pillow (or pip install 'tinyres[images]')")
        if isinstance(pic, Tensor):
            if pic.ndim not in (2, 3):
                raise ValueError(f"ToPILImage: pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
            array = backend.to_numpy(pic.data)
            array = array[None] if array.ndim == 2 else array
            if array.dtype.kind == "f":
                array = (array * 255).astype(np.uint8)
            array = array.transpose(1, 2, 0)
        elif isinstance(pic, np.ndarray):
            array = pic
        else:
            raise TypeError(f"ToPILImage: pic should be Tensor or ndarray. Got {type(pic)}.")
        array = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
        image = Image.fromarray(np.ascontiguousarray(array))
        return image if self.mode is None or image.mode == self.mode else image.convert(self.mode)


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel ``c`` of a float ``(..., C, H, W)`` Tensor."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
        if tensor.dtype.kind != "f":
            raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
        if tensor.ndim < 3:
            raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                             f"{tuple(tensor.shape)}")
        xp = backend.get_array_module(tensor.data)
        mean = xp.asarray(self.mean, dtype=tensor.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=tensor.dtype).reshape(-1, 1, 1)
        if (std == 0).any():
            raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by "
                             "zero.")
        if mean.shape[0] not in (1, tensor.shape[-3]) or std.shape[0] not in (1, tensor.shape[-3]):
            raise ValueError(f"Normalize: {len(self.mean)} means and {len(self.std)} stds for an image of "
                             f"{tensor.shape[-3]} channels")
        out = (tensor.data - mean) / std
        if self.inplace:
            tensor.data[...] = out
            return tensor
        return Tensor(out)

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
        array, last, _ = _unpack("CenterCrop", img)
        (h, w), (th, tw) = _hw(array, last), self.size
        if th > h or tw > w:
            img = pad(img, [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                            (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0])
            array, last, _ = _unpack("CenterCrop", img)
            h, w = _hw(array, last)
        return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


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
    flip = hflip


class RandomVerticalFlip(_RandomFlip):
    """Mirror the image top to bottom with probability ``p``."""
    flip = vflip
