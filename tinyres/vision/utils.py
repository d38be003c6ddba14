"""``torchvision.utils``' ``make_grid`` and ``save_image``: a batch of images tiled into one
image, and that image written to a file (PNG, JPEG, ... through PIL), as torchvision's.

The grid is arithmetic on the images' arrays, on their device: a picture to look at, outside
the autograd graph (``make_grid`` of a tensor that requires grad gives one that does not).
"""
import math
import numbers

from ..core import backend
from ..core.tensor import Tensor

__all__ = ["make_grid", "save_image"]


def _images(tensor):
    """The input as a (B, C, H, W) array: a list of tensors stacked, an (H, W) image and a
    one-channel image made 3-channel (grey repeated as R, G and B), as torchvision does."""
    if isinstance(tensor, list):
        for t in tensor:
            if not isinstance(t, Tensor):
                raise TypeError(f"make_grid: tensor or list of tensors expected, got a list containing {type(t)}")
        if not tensor:
            raise RuntimeError("make_grid: stack expects a non-empty TensorList")
        shapes = {t.shape for t in tensor}
        if len(shapes) > 1:
            raise RuntimeError(f"make_grid: stack expects each tensor to be equal size, got shapes {sorted(shapes)}")
        xp = backend.get_array_module(tensor[0].array)
        a = xp.stack([t.array for t in tensor])
    elif isinstance(tensor, Tensor):
        a = tensor.array
        xp = backend.get_array_module(a)
    else:
        raise TypeError(f"make_grid: tensor or list of tensors expected, got {type(tensor)}")
    if a.ndim not in (2, 3, 4):
        raise ValueError(f"make_grid: expected an image (H, W) or (C, H, W) or a batch (B, C, H, W), "
                         f"got shape {tuple(a.shape)}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        if a.shape[0] == 1:
            a = xp.concatenate([a, a, a], 0)
        a = a[None]
    if a.shape[1] == 1:
        a = xp.concatenate([a, a, a], 1)
    return a, xp


def _normalize(a, xp, value_range, scale_each):
    """Each image (``scale_each``) or the whole batch clamped to ``value_range`` -- by default
    its own (min, max) -- and mapped to [0, 1]: (x - low) / max(high - low, 1e-5)."""
    if value_range is not None and not isinstance(value_range, tuple):
        raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")
    a = a.copy()
    for img in (a if scale_each else [a]):
        low, high = value_range if value_range is not None else (float(img.min()), float(img.max()))
        xp.clip(img, low, high, out=img)
        img -= low
        img /= max(high - low, 1e-5)
    return a


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """Tile a batch (B, C, H, W) -- or a list of (C, H, W) tensors -- into one (C, H', W') image:
    ``min(nrow, B)`` images per row, ``ceil(B / nrow)`` rows, ``padding`` pixels of ``pad_value``
    around and between them, so H' = rows (H + padding) + padding and W' likewise with the
    columns.  One-channel images become 3-channel; ``normalize`` maps values to [0, 1] (by
    ``value_range``, or the min and max: of each image with ``scale_each``, else of the
    batch).  A batch of one image is that image, not padded."""
    a, xp = _images(tensor)
    if normalize is True:
        a = _normalize(a, xp, value_range, scale_each)
    if a.shape[0] == 1:
        return Tensor(a[0])
    if not isinstance(nrow, numbers.Integral) or nrow < 1:
        raise ValueError(f"make_grid: nrow must be a positive int, got {nrow!r}")
    nmaps, channels, h, w = a.shape
    xmaps = min(nrow, nmaps)
    ymaps = int(math.ceil(nmaps / xmaps))
    height, width = h + padding, w + padding
    grid = xp.full((channels, height * ymaps + padding, width * xmaps + padding), pad_value, dtype=a.dtype)
    for k in range(nmaps):
        y, x = divmod(k, xmaps)
        grid[:, y * height + padding:(y + 1) * height, x * width + padding:(x + 1) * width] = a[k]
    return Tensor(grid)


def save_image(tensor, fp, format=None, **kwargs):
    """``make_grid(tensor, **kwargs)`` written to ``fp`` (a path or a file object) by PIL, in
    ``format`` or the one the file name's extension names: values in [0, 1] become 0..255 as
    torchvision's (x 255 + 0.5, clamped, truncated to uint8)."""
    from PIL import Image
    grid = make_grid(tensor, **kwargs).numpy()           # on the host: the file is written from there
    pixels = (grid * 255 + 0.5).clip(0, 255).transpose(1, 2, 0).astype("uint8")
    Image.fromarray(pixels).save(fp, format=format)
