"""The per-image functions of ``torchvision.transforms.functional``, which the transforms call
(``import tinyres.vision.transforms.functional as TF``): conversions (``to_tensor``,
``pil_to_tensor``, ``to_pil_image``, ``convert_image_dtype``, ``normalize``), geometry (``pad``,
``crop``, ``center_crop``, ``resize``, ``resized_crop``, ``five_crop``, ``ten_crop``, ``hflip``,
``vflip``, ``rotate``, ``affine``, ``perspective``, ``elastic_transform``), colour
(``adjust_brightness`` / ``contrast`` / ``saturation`` / ``hue`` / ``gamma`` / ``sharpness``, ``rgb_to_grayscale``, ``to_grayscale``, ``invert``,
``posterize``, ``solarize``, ``autocontrast``, ``equalize``), ``gaussian_blur``, ``erase``, and
``get_image_size`` / ``get_dimensions``.

An image is a PIL image, an ``(H, W)`` / ``(H, W, C)`` NumPy array (PIL's layout), or a
``(..., C, H, W)`` Tensor; every function gives back the kind it got.  A PIL image goes
through the very PIL calls torchvision makes (``Image.resize``, ``rotate``, ``transform``,
``ImageEnhance``, ``ImageOps``), so the pixels are torchvision's; a Tensor (and an array, seen
channels first) through torchvision's tensor formulas (``functional_tensor``), on tinyres ops.
They work on data, outside the autograd graph.
"""
import numbers
import warnings
from enum import Enum

import numpy as np

from ...core import backend
from ...core.tensor import Tensor
from . import functional_tensor as F_t

__all__ = ["InterpolationMode", "to_tensor", "pil_to_tensor", "to_pil_image", "convert_image_dtype", "normalize",
           "pad", "crop", "center_crop", "resize", "resized_crop", "five_crop", "ten_crop", "hflip", "vflip",
           "rotate", "affine", "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue",
           "adjust_gamma", "adjust_sharpness", "rgb_to_grayscale", "to_grayscale", "invert", "posterize",
           "solarize", "autocontrast", "equalize", "gaussian_blur", "erase", "get_image_size",
           "get_image_num_channels", "get_dimensions"]


class InterpolationMode(Enum):
    """How resampling reads between pixels (torchvision's enum); Tensors take NEAREST,
    NEAREST_EXACT, BILINEAR and BICUBIC (rotate and affine: NEAREST and BILINEAR), PIL images
    every mode."""
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"           # PIL only
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_CONSTANTS = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                  4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}
pil_modes_mapping = {mode: n for n, mode in _PIL_CONSTANTS.items()}
pil_modes_mapping[InterpolationMode.NEAREST_EXACT] = 0


def _interpolation_modes_from_int(i):
    """The mode of one of PIL's constants (``Image.BILINEAR`` is 2)."""
    return _PIL_CONSTANTS[i]


def _interpolation(interpolation):
    if isinstance(interpolation, int):
        return _interpolation_modes_from_int(interpolation)
    if not isinstance(interpolation, InterpolationMode):
        raise TypeError("Argument interpolation should be a InterpolationMode or a corresponding Pillow integer "
                        f"constant, got {interpolation!r}")
    return interpolation


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
    """The ``height`` x ``width`` window of ``img`` whose top-left pixel is (``top``, ``left``);
    where it reaches outside the image it reads zeros (PIL's ``Image.crop`` for PIL images)."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    array, last, rebuild = _unpack("crop", img)
    h, w = _hw(array, last)
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:       # pad with zeros what lies outside
        inside = rebuild(_crop(array, last, max(top, 0), max(left, 0), max(bottom - max(top, 0), 0),
                               max(right - max(left, 0), 0)))
        return pad(inside, [max(-left + min(0, right), 0), max(-top + min(0, bottom), 0),
                            max(right - max(w, left), 0), max(bottom - max(h, top), 0)])
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


def get_image_num_channels(img):
    return get_dimensions(img)[0]


def _pixels(name, img):
    """A Tensor's or an array's pixels channels first, ``(..., C, H, W)`` (an ``(H, W)`` image as
    ``(1, H, W)``), and the function turning such an array back into the kind ``img`` was."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise TypeError(f"{name}: Tensor is not a torch image: expected (..., H, W), got shape {tuple(img.shape)}")
        if img.ndim == 2:
            return img.array[None], lambda a: Tensor(a[0])
        return img.array, Tensor
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{name}: an array image should be (H, W) or (H, W, C), got shape {img.shape}")
        if img.ndim == 2:
            return img[None], lambda a: np.ascontiguousarray(a[0])
        return np.moveaxis(img, -1, -3), lambda a: np.ascontiguousarray(np.moveaxis(a, -3, -1))
    raise TypeError(f"{name}: img should be PIL Image or Tensor (or a NumPy array). Got {type(img)}")


def _channels(name, array, permitted=(1, 3)):
    if array.shape[-3] not in permitted:
        raise TypeError(f"{name}: Input image tensor permitted channel values are {list(permitted)}, but found "
                        f"{array.shape[-3]}")


def _at_least_3d(name, img):
    if isinstance(img, Tensor) and img.ndim < 3:
        raise TypeError(f"{name}: Input image tensor should have at least 3 dimensions, but found {img.ndim}")


def _pil_module(name):
    try:
        from PIL import ImageEnhance, ImageOps
    except ImportError:     # pragma: no cover - a PIL image means Pillow is there
        raise ImportError(f"{name} needs Pillow") from None
    return ImageEnhance, ImageOps


def convert_image_dtype(image, dtype=np.float32):
    """``image`` (a Tensor) in ``dtype`` with its values rescaled: uint8 [0, 255] to float [0, 1]
    and back (times 255.999, truncated), between integer dtypes by powers of two."""
    if not isinstance(image, Tensor):
        raise TypeError(f"convert_image_dtype: Input img should be Tensor Image, got {type(image)}")
    return Tensor(F_t.convert_image_dtype(image.array, backend.as_dtype(dtype)))


# ---------------------------------------------------------------------- resizing and crops

def _compute_resized_output_size(image_size, size, max_size=None):
    """[h, w] after resizing: ``size`` (h, w), or [s] for the shorter edge (the longer one
    scaled and truncated), capped by ``max_size`` on the longer edge."""
    h, w = image_size
    if len(size) == 2:
        return [size[0], size[1]]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None:
        if max_size <= size[0]:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the "
                             f"smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return [new_h, new_w]


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """``img`` resized to ``size``: (h, w), or an int (or [int]) for the shorter edge, the aspect
    ratio kept; ``max_size`` caps the longer edge.  PIL images: ``Image.resize`` (always
    antialiased); Tensors: ``interpolate`` in float, antialiased for bilinear and bicubic when
    ``antialias`` (torchvision's default since 0.17), rounded back for integer images.  An image
    already of that size is returned as it is."""
    interpolation = _interpolation(interpolation)
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(f"Size must be an int or a 1 or 2 element tuple/list, not a {len(size)} element "
                             "tuple/list")
        if max_size is not None and len(size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of the smaller edge, "
                             "i.e. size should be an int or a sequence of length 1 in torchscript mode.")
    elif not isinstance(size, numbers.Integral):
        raise TypeError(f"resize: size should be an int or a sequence of ints, got {type(size).__name__}")
    _, height, width = get_dimensions(img)
    output_size = _compute_resized_output_size((height, width), [size] if isinstance(size, numbers.Integral)
                                               else list(size), max_size)
    if [height, width] == output_size:
        return img
    if _is_pil(img):
        if antialias is False:
            warnings.warn("Anti-alias option is always applied for PIL Image input. Argument antialias is ignored.")
        return img.resize(tuple(output_size[::-1]), pil_modes_mapping[interpolation])
    if interpolation not in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT, InterpolationMode.BILINEAR,
                             InterpolationMode.BICUBIC):
        raise ValueError(f"resize: Interpolation mode '{interpolation.value}' is unsupported with Tensor input")
    array, rebuild = _pixels("resize", img)
    return rebuild(F_t.resize(array, output_size, interpolation.value, antialias))


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
    """``crop`` then ``resize`` (RandomResizedCrop's step)."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def five_crop(img, size):
    """The four corner windows of ``size`` and the central one: (tl, tr, bl, br, center)."""
    crop_height, crop_width = _size("five_crop", size)
    _, image_height, image_width = get_dimensions(img)
    if crop_width > image_width or crop_height > image_height:
        raise ValueError(f"Requested crop size {(crop_height, crop_width)} is bigger than input size "
                         f"{(image_height, image_width)}")
    tl = crop(img, 0, 0, crop_height, crop_width)
    tr = crop(img, 0, image_width - crop_width, crop_height, crop_width)
    bl = crop(img, image_height - crop_height, 0, crop_height, crop_width)
    br = crop(img, image_height - crop_height, image_width - crop_width, crop_height, crop_width)
    return tl, tr, bl, br, center_crop(img, [crop_height, crop_width])


def ten_crop(img, size, vertical_flip=False):
    """``five_crop`` of the image and of its mirror (left-right, or top-bottom with ``vertical_flip``)."""
    size = _size("ten_crop", size)
    return five_crop(img, size) + five_crop(vflip(img) if vertical_flip else hflip(img), size)


# ---------------------------------------------------------------------- rotations and affine maps

def _parse_fill(fill, img, name="fillcolor"):
    """PIL's fill colour: one value per band, ints unless the mode is 'F'."""
    channels = get_image_num_channels(img)
    fill = 0 if fill is None else fill
    if isinstance(fill, (int, float)) and channels > 1:
        fill = tuple([fill] * channels)
    if isinstance(fill, (list, tuple)):
        if len(fill) == 1:
            fill = fill * channels
        elif len(fill) != channels:
            raise ValueError(f"The number of elements in 'fill' does not match the number of channels of the image "
                             f"({len(fill)} != {channels})")
        fill = tuple(fill)
    if img.mode != "F":
        fill = tuple(int(x) for x in fill) if isinstance(fill, tuple) else int(fill)
    return {name: fill}


def _grid_pixels(name, img, interpolation, fill):
    """The checks of torchvision's ``_assert_grid_transform_inputs``, then the pixels."""
    array, rebuild = _pixels(name, img)
    channels = array.shape[-3]
    if fill is not None and not isinstance(fill, (int, float, tuple, list)):
        warnings.warn("Argument fill should be either int, float, tuple or list")
    if isinstance(fill, (tuple, list)) and len(fill) > 1 and len(fill) != channels:
        raise ValueError(f"The number of elements in 'fill' cannot broadcast to match the number of channels of "
                         f"the image ({len(fill)} != {channels})")
    if interpolation not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise ValueError(f"Interpolation mode '{interpolation.value}' is unsupported with Tensor input")
    return array, rebuild


def _tensor_center(center, img):
    """A centre in pixels (x, y) moved so that (0, 0) is the image's middle, as the grid wants."""
    if center is None:
        return [0.0, 0.0]
    _, height, width = get_dimensions(img)
    return [1.0 * (c - s * 0.5) for c, s in zip(center, [width, height])]


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=None):
    """``img`` rotated by ``angle`` degrees counter-clockwise about ``center`` (x, y; default the
    middle), the corners outside filled with ``fill``; ``expand`` grows the output to hold it
    all.  PIL images: ``Image.rotate``; Tensors: sampled through the inverse rotation."""
    interpolation = _interpolation(interpolation)
    if not isinstance(angle, (int, float)):
        raise TypeError("Argument angle should be int or float")
    if center is not None and not isinstance(center, (list, tuple)):
        raise TypeError("Argument center should be a sequence")
    if _is_pil(img):
        return img.rotate(angle, pil_modes_mapping[interpolation], expand, center, **_parse_fill(fill, img))
    array, rebuild = _grid_pixels("rotate", img, interpolation, fill)
    matrix = F_t.inverse_affine_matrix(_tensor_center(center, img), -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    h, w = array.shape[-2:]
    out_size = F_t.affine_output_size(matrix, w, h) if expand else (w, h)
    return rebuild(F_t.apply_grid(array, matrix, interpolation.value, fill, out_size))


def affine(img, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST, fill=None, center=None):
    """``img`` rotated by ``angle`` degrees (clockwise), scaled by ``scale``, sheared by ``shear``
    degrees (x, or (x, y)) about ``center`` (default the middle) and moved by ``translate``
    (dx, dy pixels), the image centre kept.  PIL images: ``Image.transform(AFFINE)`` with
    the inverse matrix; Tensors: sampled through it."""
    interpolation = _interpolation(interpolation)
    if not isinstance(angle, (int, float)):
        raise TypeError("Argument angle should be int or float")
    if not isinstance(translate, (list, tuple)):
        raise TypeError("Argument translate should be a sequence")
    if len(translate) != 2:
        raise ValueError("Argument translate should be a sequence of length 2")
    if scale <= 0.0:
        raise ValueError("Argument scale should be positive")
    if not isinstance(shear, (numbers.Number, list, tuple)):
        raise TypeError("Shear should be either a single value or a sequence of two values")
    shear = [shear, 0.0] if isinstance(shear, numbers.Number) else list(shear)
    shear = [shear[0], shear[0]] if len(shear) == 1 else shear
    if len(shear) != 2:
        raise ValueError(f"Shear should be a sequence containing two values. Got {shear}")
    if center is not None and not isinstance(center, (list, tuple)):
        raise TypeError("Argument center should be a sequence")
    angle, translate = float(angle), list(translate)
    if _is_pil(img):
        width, height = img.size
        center = [width * 0.5, height * 0.5] if center is None else center
        matrix = F_t.inverse_affine_matrix(center, angle, translate, scale, shear)
        return img.transform(img.size, _pil().AFFINE, matrix, pil_modes_mapping[interpolation],
                             **_parse_fill(fill, img))
    array, rebuild = _grid_pixels("affine", img, interpolation, fill)
    matrix = F_t.inverse_affine_matrix(_tensor_center(center, img), angle, [1.0 * t for t in translate], scale, shear)
    return rebuild(F_t.apply_grid(array, matrix, interpolation.value, fill))


def _get_perspective_coeffs(startpoints, endpoints):
    """The 8 coefficients (a, b, c, d, e, f, g, h) of the map taking each of the 4 ``endpoints``
    to its ``startpoints`` (x, y) -> ((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (g x
    + h y + 1)) -- the inverse map PIL and the grid read through -- by least squares in float64,
    rounded to float32 (torchvision's)."""
    if len(startpoints) != 4 or len(endpoints) != 4:
        raise ValueError(f"Please provide exactly four corners, got {len(startpoints)} startpoints and "
                         f"{len(endpoints)} endpoints.")
    a_matrix = np.zeros((8, 8), np.float64)
    for i, (p1, p2) in enumerate(zip(endpoints, startpoints)):
        a_matrix[2 * i] = [p1[0], p1[1], 1, 0, 0, 0, -p2[0] * p1[0], -p2[0] * p1[1]]
        a_matrix[2 * i + 1] = [0, 0, 0, p1[0], p1[1], 1, -p2[1] * p1[0], -p2[1] * p1[1]]
    b_matrix = np.asarray(startpoints, np.float64).reshape(8)
    res = np.linalg.lstsq(a_matrix, b_matrix, rcond=None)[0].astype(np.float32)
    return res.tolist()


def perspective(img, startpoints, endpoints, interpolation=InterpolationMode.BILINEAR, fill=None):
    """``img`` seen in perspective: the 4 corners ``startpoints`` ([top-left, top-right,
    bottom-right, bottom-left], (x, y) pixels) moved to ``endpoints``, the area outside filled
    with ``fill``.  PIL images: ``Image.transform(PERSPECTIVE)``; Tensors: sampled through the
    inverse map (torchvision's ``_perspective_grid``)."""
    coeffs = _get_perspective_coeffs(startpoints, endpoints)
    interpolation = _interpolation(interpolation)
    if _is_pil(img):
        return img.transform(img.size, _pil().PERSPECTIVE, coeffs, pil_modes_mapping[interpolation],
                             **_parse_fill(fill, img))
    if not isinstance(img, (Tensor, np.ndarray)):
        raise TypeError(f"perspective: img should be PIL Image or Tensor (or a NumPy array). Got {type(img)}")
    array, rebuild = _grid_pixels("perspective", img, interpolation, fill)
    return rebuild(F_t.perspective(array, coeffs, interpolation.value, fill))


def elastic_transform(img, displacement, interpolation=InterpolationMode.BILINEAR, fill=None):
    """``img`` with every output pixel (x, y) read at its place moved by ``displacement``, a
    (1, H, W, 2) Tensor of (dx, dy) in grid_sample's [-1, 1] units (``ElasticTransform`` draws
    one), the area outside filled with ``fill``.  PIL images go through the Tensor code
    (torchvision's way) and come back in their mode."""
    interpolation = _interpolation(interpolation)
    if not isinstance(displacement, Tensor):
        raise TypeError("Argument displacement should be a Tensor")
    if _is_pil(img):
        array, rebuild = pil_to_tensor(img).array, lambda a: to_pil_image(Tensor(a), mode=img.mode)
    elif isinstance(img, (Tensor, np.ndarray)):
        array, rebuild = _pixels("elastic_transform", img)
    else:
        raise TypeError(f"img should be PIL Image or Tensor. Got {type(img)}")
    shape = (1,) + tuple(array.shape[-2:]) + (2,)
    if tuple(displacement.shape) != shape:
        raise ValueError(f"Argument displacement shape should be {list(shape)}, but given {list(displacement.shape)}")
    return rebuild(F_t.elastic_transform(array, displacement.array, interpolation.value, fill))


# ---------------------------------------------------------------------- colour

def _non_negative(name, factor):
    if factor < 0:
        raise ValueError(f"{name} ({factor}) is not non-negative.")


def _colour(name, img, pil_op, tensor_op, permitted=(1, 3)):
    """``pil_op(img)`` for a PIL image, else ``tensor_op`` on the pixels (1 or 3 channels)."""
    if _is_pil(img):
        return pil_op(img)
    array, rebuild = _pixels(name, img)
    _channels(name, array, permitted)
    return rebuild(tensor_op(array))


def _enhance(name, img, factor, enhancer, tensor_op):
    """``ImageEnhance.<enhancer>(img).enhance(factor)`` for a PIL image, else ``tensor_op`` on the
    pixels (the factor must be >= 0 there)."""
    if not _is_pil(img):
        _non_negative(name[len("adjust_"):] + "_factor", factor)
    return _colour(name, img, lambda i: getattr(_pil_module(name)[0], enhancer)(i).enhance(factor), tensor_op)


def adjust_brightness(img, brightness_factor):
    """Blend with black: 0 gives black, 1 the image, 2 twice as bright (PIL: ``ImageEnhance.Brightness``)."""
    return _enhance("adjust_brightness", img, brightness_factor, "Brightness",
                    lambda a: F_t.blend(a, backend.get_array_module(a).zeros_like(a), brightness_factor))


def adjust_contrast(img, contrast_factor):
    """Blend with the grey of the image's mean luminance: 0 gives that grey, 1 the image (PIL:
    ``ImageEnhance.Contrast``)."""
    return _enhance("adjust_contrast", img, contrast_factor, "Contrast",
                    lambda a: F_t.adjust_contrast(a, contrast_factor))


def adjust_saturation(img, saturation_factor):
    """Blend with the grayscale image: 0 gives grey, 1 the image (PIL: ``ImageEnhance.Color``);
    a 1-channel image is returned as it is."""
    return _enhance("adjust_saturation", img, saturation_factor, "Color",
                    lambda a: a if a.shape[-3] == 1 else F_t.blend(a, F_t.rgb_to_grayscale(a), saturation_factor))


def _pil_hue(img, hue_factor):
    """PIL's path: H of the HSV image shifted by ``int(hue_factor * 255)``, wrapping around in uint8."""
    Image = _pil()
    if img.mode in {"L", "1", "I", "F"}:
        return img
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    np_h += np.int32(hue_factor * 255).astype(np.uint8)
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert(img.mode)


def adjust_hue(img, hue_factor):
    """Rotate the hue by ``hue_factor`` turns, in [-0.5, 0.5] (in HSV space; the values must be
    non-negative); a 1-channel image is returned as it is."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    return _colour("adjust_hue", img, lambda i: _pil_hue(i, hue_factor),
                   lambda a: a if a.shape[-3] == 1 else F_t.adjust_hue(a, hue_factor))


def adjust_gamma(img, gamma, gain=1):
    """``255 * gain * (I / 255) ** gamma`` (PIL: a lookup table through ``Image.point``)."""
    if gamma < 0:
        raise ValueError("Gamma should be a non-negative real number")

    def pil(i):
        table = [int((255 + 1 - 1e-3) * gain * pow(ele / 255.0, gamma)) for ele in range(256)] * 3
        return i.convert("RGB").point(table).convert(i.mode)
    return _colour("adjust_gamma", img, pil, lambda a: F_t.adjust_gamma(a, gamma, gain))


def adjust_sharpness(img, sharpness_factor):
    """Blend with a smoothed image: 0 blurs, 1 gives the image, 2 sharpens (PIL:
    ``ImageEnhance.Sharpness``; images of 2 pixels or fewer across are returned as they are)."""
    return _enhance("adjust_sharpness", img, sharpness_factor, "Sharpness",
                    lambda a: F_t.adjust_sharpness(a, sharpness_factor))


def _pil_grayscale(img, num_output_channels):
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    gray = img.convert("L")
    if num_output_channels == 1:
        return gray
    g = np.array(gray, dtype=np.uint8)
    return _pil().fromarray(np.dstack([g, g, g]), "RGB")


def rgb_to_grayscale(img, num_output_channels=1):
    """The luminance L = 0.2989 R + 0.587 G + 0.114 B (PIL: ``convert('L')``, ITU-R 601-2 in
    integers), as 1 channel or repeated to 3."""
    if not _is_pil(img):
        _at_least_3d("rgb_to_grayscale", img)
        if num_output_channels not in (1, 3):
            raise ValueError("num_output_channels should be either 1 or 3")
    return _colour("rgb_to_grayscale", img, lambda i: _pil_grayscale(i, num_output_channels),
                   lambda a: F_t.rgb_to_grayscale(a, num_output_channels))


def to_grayscale(img, num_output_channels=1):
    """A PIL image of any mode as grayscale (``rgb_to_grayscale`` for PIL images only)."""
    if not _is_pil(img):
        raise TypeError(f"to_grayscale: Input should be PIL Image, got {type(img)}")
    return _pil_grayscale(img, num_output_channels)


def _ops(name, img, pil_op, tensor_op, uint8_only=False):
    """One of AutoAugment's pixel ops: ``ImageOps`` for PIL images, the formula otherwise."""
    if not _is_pil(img):
        _at_least_3d(name, img)
        if uint8_only and img.dtype != np.uint8:
            raise TypeError(f"{name}: Only torch.uint8 image tensors are supported, but found {img.dtype}")
    return _colour(name, img, lambda i: pil_op(_pil_module(name)[1], i), tensor_op)


def invert(img):
    """max - I (255 - I for uint8, 1 - I for floats)."""
    return _ops("invert", img, lambda ops, i: ops.invert(i), F_t.invert)


def posterize(img, bits):
    """Keep the top ``bits`` (0 ... 8) bits of each channel of a uint8 image."""
    if not 0 <= bits <= 8:
        raise ValueError(f"The number if bits should be between 0 and 8. Got {bits}")
    return _ops("posterize", img, lambda ops, i: ops.posterize(i, bits), lambda a: F_t.posterize(a, bits),
                uint8_only=True)


def solarize(img, threshold):
    """Invert the pixels at or above ``threshold``."""
    if isinstance(img, (Tensor, np.ndarray)) and threshold > F_t.max_value(img.dtype):
        raise TypeError("Threshold should be less than bound of img.")
    return _ops("solarize", img, lambda ops, i: ops.solarize(i, threshold), lambda a: F_t.solarize(a, threshold))


def autocontrast(img):
    """Stretch each channel so its darkest pixel is black and its lightest white."""
    return _ops("autocontrast", img, lambda ops, i: ops.autocontrast(i), F_t.autocontrast)


def equalize(img):
    """Equalise the histogram of each channel of a uint8 image."""
    if isinstance(img, Tensor) and not 3 <= img.ndim <= 4:
        raise TypeError(f"equalize: Input image tensor should have 3 or 4 dimensions, but found {img.ndim}")
    return _ops("equalize", img, lambda ops, i: ops.equalize(i), F_t.equalize, uint8_only=True)


# ---------------------------------------------------------------------- blur and erasing

def gaussian_blur(img, kernel_size, sigma=None):
    """Convolve with a Gaussian of ``kernel_size`` (odd; an int or (kx, ky)) and ``sigma``
    (float or (sx, sy); default 0.3 ((k - 1) / 2 - 1) + 0.8 = 0.15 k + 0.35), the image
    reflect-padded to keep its size.  PIL images go through the same Tensor code (torchvision's
    way), and come back in their mode."""
    if not isinstance(kernel_size, (int, list, tuple)):
        raise TypeError(f"kernel_size should be int or a sequence of integers. Got {type(kernel_size)}")
    kernel_size = [kernel_size, kernel_size] if isinstance(kernel_size, int) else list(kernel_size)
    if len(kernel_size) != 2:
        raise ValueError(f"If kernel_size is a sequence its length should be 2. Got {len(kernel_size)}")
    for ksize in kernel_size:
        if ksize % 2 == 0 or ksize < 0:
            raise ValueError(f"kernel_size should have odd and positive integers. Got {kernel_size}")
    if sigma is None:
        sigma = [ksize * 0.15 + 0.35 for ksize in kernel_size]
    if not isinstance(sigma, (int, float, list, tuple)):
        raise TypeError(f"sigma should be either float or sequence of floats. Got {type(sigma)}")
    sigma = [float(sigma)] * 2 if isinstance(sigma, (int, float)) else list(sigma)
    sigma = sigma * 2 if len(sigma) == 1 else sigma
    if len(sigma) != 2:
        raise ValueError(f"If sigma is a sequence, its length should be 2. Got {len(sigma)}")
    if any(s <= 0.0 for s in sigma):
        raise ValueError(f"sigma should have positive values. Got {sigma}")
    if _is_pil(img):
        out = F_t.gaussian_blur(pil_to_tensor(img).array, kernel_size, sigma)
        return to_pil_image(Tensor(out), mode=img.mode)
    array, rebuild = _pixels("gaussian_blur", img)
    return rebuild(F_t.gaussian_blur(array, kernel_size, sigma))


def erase(img, i, j, h, w, v, inplace=False):
    """A Tensor image with the window at (``i``, ``j``) of ``h`` x ``w`` set to ``v`` (a number
    or a Tensor broadcasting to (C, h, w)); ``inplace`` writes into ``img``."""
    if not isinstance(img, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(img)}")
    array = img.array if inplace else img.array.copy()
    value = v.array if isinstance(v, Tensor) else v
    F_t.erase(array, i, j, h, w, value)
    return img if inplace else Tensor(array)
