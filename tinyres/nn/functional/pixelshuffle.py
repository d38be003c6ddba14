"""``pixel_shuffle`` and ``pixel_unshuffle``: channels to space and back, as torch's; and
``channel_shuffle``, ShuffleNet's mixing of channel groups.

With r the factor, ``pixel_shuffle`` takes (*, C r^2, H, W) to (*, C, H r, W r):

    y[..., c, h r + i, w r + j] = x[..., c r^2 + i r + j, h, w]

a reshape to (*, C, r, r, H, W), a permute to (*, C, H, r, W, r) and a reshape back.
``pixel_unshuffle`` is its inverse.  Each is a permutation of the elements, composed of
differentiable reshapes and a permute, so its gradient is the inverse permutation of the
upstream gradient (and differentiable again).  ``channel_shuffle`` is a permutation of
the channels, made the same way.
"""
import numbers

from ...core import ops
from ...core.tensor import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle"]


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


def channel_shuffle(input, groups):
    """(N, C, *) -> (N, C, *) with the channels of ``groups`` groups interleaved, as
    ``torch.nn.functional.channel_shuffle`` (ShuffleNet, Zhang et al., 2017): with g = groups,

        y[:, k g + i] = x[:, i (C / g) + k],   i < g,  k < C / g

    a reshape to (N, g, C / g, *), a transpose of those two axes and a reshape back."""
    return checked_channel_shuffle("channel_shuffle", input, groups)


def native_channel_shuffle(input, groups):
    """``channel_shuffle`` (torch's name for its kernel; the same result)."""
    return checked_channel_shuffle("native_channel_shuffle", input, groups)


def checked_channel_shuffle(op, input, groups):
    """``channel_shuffle`` after torch's checks, with ``op`` naming the caller in the errors
    (``nn.ChannelShuffle`` names itself)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if input.ndim < 3:
        raise RuntimeError(f"{op} expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"{op}: Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, channels, *spatial = input.shape
    if channels % groups:
        raise RuntimeError(f"{op}: Number of channels must be divisible by groups. Got {channels} channels and "
                           f"{groups} groups.")
    y = ops.reshape(input, n, int(groups), channels // groups, *spatial)
    return ops.reshape(ops.transpose(y, 1, 2), n, channels, *spatial)
