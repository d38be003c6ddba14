"""The per-image functions of ``torchvision.transforms.functional``, which the transforms call
(``import tinyres.vision.transforms.functional as TF``): ``to_tensor``, ``pil_to_tensor``,
``to_pil_image``, ``normalize``, ``pad``, ``crop``, ``center_crop``, ``hflip``, ``vflip``,
``get_image_size`` and ``get_dimensions``.

An image is a PIL image, an ``(H, W)`` / ``(H, W, C)`` NumPy array (PIL's layout), or a
``(..., C, H, W)`` Tensor; the geometric functions give back the kind they got.  They work on
data, outside the autograd graph.
"""
import numbers

import numpy as np

from ...core import backend
from ...core.tensor import Tensor

__all__ = ["to_tensor", "pil_to_tensor", "to_pil_image", "normalize", "pad", "crop", "center_crop", "hflip",
           "vflip", "get_image_size", "get_dimensions"]


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
        xp = backend.get_array_module(img.array)
        return img.array, False, lambda a: Tensor(xp.ascontiguousarray(a))
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


def center_crop(img, output_size):
    """The central ``output_size`` (an int or (h, w)) window, padded with zeros first where the
    image is smaller (torchvision's rule: the odd pixel of padding after, the crop's corner rounded)."""
    array, last, _ = _unpack("center_crop", img)
    (h, w), (th, tw) = _hw(array, last), _size("center_crop", output_size)
    if th > h or tw > w:
        img = pad(img, [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                        (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0])
        array, last, _ = _unpack("center_crop", img)
        h, w = _hw(array, last)
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def get_dimensions(img):
    """``[channels, height, width]`` of an image."""
    array, last, _ = _unpack("get_dimensions", img)
    channels = (array.shape[2] if array.ndim == 3 else 1) if last else (array.shape[-3] if array.ndim > 2 else 1)
    return [int(channels)] + [int(n) for n in _hw(array, last)]


def get_image_size(img):
    """``[width, height]`` of an image (torchvision's order)."""
    _, h, w = get_dimensions(img)
    return [w, h]


def to_tensor(pic):
    """A PIL image or ``(H, W[, C])`` array as a ``(C, H, W)`` Tensor: uint8 (and PIL's 1-bit
    mode) scaled to the default float dtype in [0, 1], other dtypes kept as they are
    (torchvision's rule)."""
    if _is_pil(pic):
        array = np.asarray(pic)
        if pic.mode == "1":
            array = array.astype(np.uint8) * 255
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"to_tensor: pic should be 2 or 3 dimensional. Got {pic.ndim} dimensions.")
        array = pic
    else:
        raise TypeError(f"to_tensor: pic should be PIL Image or ndarray. Got {type(pic)}")
    array = array[:, :, None] if array.ndim == 2 else array
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        chw = np.divide(chw, 255, dtype=backend.get_default_dtype())
    return Tensor(chw)


def pil_to_tensor(pic):
    """A PIL image as a ``(C, H, W)`` Tensor of its own dtype, not scaled."""
    if not _is_pil(pic):
        raise TypeError(f"pil_to_tensor: pic should be PIL Image. Got {type(pic)}")
    array = np.asarray(pic)
    array = array[:, :, None] if array.ndim == 2 else array
    return Tensor(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_pil_image(pic, mode=None):
    """A ``(C, H, W)`` Tensor (floats in [0, 1] scaled by 255) or ``(H, W[, C])`` array as a PIL image."""
    Image = _pil()
    if Image is None:
        raise ImportError("to_pil_image needs Pillow: pip install pillow (or pip install 'tinyres[images]')")
    if isinstance(pic, Tensor):
        if pic.ndim not in (2, 3):
            raise ValueError(f"to_pil_image: pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        array = backend.to_numpy(pic.array)
        array = array[None] if array.ndim == 2 else array
        if array.dtype.kind == "f":
            array = (array * 255).astype(np.uint8)
        array = array.transpose(1, 2, 0)
    elif isinstance(pic, np.ndarray):
        array = pic
    else:
        raise TypeError(f"to_pil_image: pic should be Tensor or ndarray. Got {type(pic)}.")
    array = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    image = Image.fromarray(np.ascontiguousarray(array))
    return image if mode is None or image.mode == mode else image.convert(mode)


def normalize(tensor, mean, std, inplace=False):
    """``(x - mean[c]) / std[c]`` for each channel ``c`` of a float ``(..., C, H, W)`` Tensor;
    ``inplace`` writes the result into ``tensor``."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                         f"{tuple(tensor.shape)}")
    xp = backend.get_array_module(tensor.array)
    means, stds = list(np.atleast_1d(mean)), list(np.atleast_1d(std))
    mean = xp.asarray(means, dtype=tensor.dtype).reshape(-1, 1, 1)
    std = xp.asarray(stds, dtype=tensor.dtype).reshape(-1, 1, 1)
    if (std == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by "
                         "zero.")
    if mean.shape[0] not in (1, tensor.shape[-3]) or std.shape[0] not in (1, tensor.shape[-3]):
        raise ValueError(f"Normalize: {len(means)} means and {len(stds)} stds for an image of "
                         f"{tensor.shape[-3]} channels")
    out = (tensor.array - mean) / std
    if inplace:
        tensor.array[...] = out
        return tensor
    return Tensor(out)
