"""``pixel_shuffle`` and ``pixel_unshuffle``: channels to space and back, as torch's.

With r the factor, ``pixel_shuffle`` takes (*, C r^2, H, W) to (*, C, H r, W r):

    y[..., c, h r + i, w r + j] = x[..., c r^2 + i r + j, h, w]

a reshape to (*, C, r, r, H, W), a permute to (*, C, H, r, W, r) and a reshape back.
``pixel_unshuffle`` is its inverse.  Each is a permutation of the elements, composed of
differentiable reshapes and a permute, so its gradient is the inverse permutation of the
upstream gradient (and differentiable again).
"""
import numbers

from ...core import ops
from ...core.tensor import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _check(op, input, factor, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    if not isinstance(factor, numbers.Integral) or isinstance(factor, bool):
        raise TypeError(f"{op}: {name} must be an int, got {factor!r}")
    if factor <= 0:
        raise RuntimeError(f"{op} expects a positive {name}, but got {factor}")
    if input.ndim < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    return int(factor)


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r), r = ``upscale_factor`` (sub-pixel convolution's
    rearrangement)."""
    r = _check("pixel_shuffle", input, upscale_factor, "upscale_factor")
    *batch, channels, h, w = input.shape
    if channels % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={channels} is not divisible by {r * r}")
    n = len(batch)
    y = ops.reshape(input, *batch, channels // (r * r), r, r, h, w)
    y = ops.permute(y, *range(n), n, n + 3, n + 1, n + 4, n + 2)
    return ops.reshape(y, *batch, channels // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W), r = ``downscale_factor``: ``pixel_shuffle``'s inverse."""
    r = _check("pixel_unshuffle", input, downscale_factor, "downscale_factor")
    *batch, channels, h, w = input.shape
    for name, axis, size in (("height", -2, h), ("width", -1, w)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                               f"input.size({axis})={size} is not divisible by {r}")
    n = len(batch)
    y = ops.reshape(input, *batch, channels, h // r, r, w // r, r)
    y = ops.permute(y, *range(n), n, n + 2, n + 4, n + 1, n + 3)
    return ops.reshape(y, *batch, channels * r * r, h // r, w // r)
