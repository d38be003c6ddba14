"""Resizing an image batch: ``interpolate``, as ``torch.nn.functional.interpolate``, for
the modes 'nearest' and 'bilinear' on (N, C, H, W).

Each output row reads input rows chosen by torch's rules (indices and weights computed on
the host, in the input's precision as torch's CPU kernels compute them), and so does each
column, one axis after the other:

    nearest:   src = min(floor(dst * scale), in - 1)
    bilinear:  src = dst * scale (align_corners)  or  max((dst + 0.5) * scale - 0.5, 0),
               i0 = floor(src),  i1 = min(i0 + 1, in - 1),  l1 = src - i0,  l0 = 1 - l1,
               y[dst] = l0 * x[i0] + l1 * x[i1]

with scale = in / out, or 1 / scale_factor when one is given (and not recomputed), and for
align_corners (in - 1) / (out - 1).  An axis whose size does not change is copied.  Both
are made of differentiable ops (row and column gathers, products and sums), so the gradient
adds each output's share back onto the pixels it read, and is itself differentiable.
"""
import math
import numbers

import numpy

from ...core import backend
from ...core.composite import index_select
from ...core.tensor import Tensor

__all__ = ["interpolate"]

MODES = ("nearest", "bilinear")
_OTHER_MODES = ("linear", "bicubic", "trilinear", "area", "nearest-exact")


def _pair(value, name, op, input):
    """A size or scale factor for both spatial axes: one number, or a pair of them."""
    if not isinstance(value, (tuple, list)):
        return (value, value)
    if len(value) != 2:
        raise ValueError(f"{op}: input and {name} must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(input.shape[2:])} and {name} of {value}")
    return tuple(value)


def _output_size(op, input, size, scale_factor, recompute_scale_factor):
    """(OH, OW) and the scale factors the index rules use (None: in / out)."""
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        size = _pair(size, "output size", op, input)
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in size):
            raise TypeError(f"{op}: expected size to be an int or a pair of ints, got {size!r}")
        out, scales = tuple(int(n) for n in size), (None, None)
    else:
        scales = tuple(float(s) for s in _pair(scale_factor, "scale_factor", op, input))
        out = tuple(math.floor(n * s) for n, s in zip(input.shape[2:], scales))
        if recompute_scale_factor:
            scales = (None, None)
    if min(out) <= 0 or min(input.shape[2:]) <= 0:
        raise RuntimeError(f"{op}: input and output sizes should be greater than 0, but got input "
                           f"(H: {input.shape[2]}, W: {input.shape[3]}) output (H: {out[0]}, W: {out[1]})")
    return out, scales


def _scale(size, out, scale_factor, dtype):
    """in / out, or 1 / scale_factor when it is given (torch's ``compute_scales_value``)."""
    if scale_factor is not None and scale_factor > 0:
        return dtype.type(1.0 / scale_factor)
    return dtype.type(size) / dtype.type(out)


def _nearest_indices(size, out, scale_factor):
    """The input row of each output row: floor(dst * scale), in float32 as torch computes it."""
    if out == 2 * size:
        return numpy.arange(out) // 2
    dst = numpy.arange(out, dtype=numpy.float32)
    return numpy.minimum(numpy.floor(dst * _scale(size, out, scale_factor, dst.dtype)).astype(numpy.int64), size - 1)


def _linear_weights(size, out, scale_factor, align_corners, dtype):
    """(i0, i1, l0, l1): the two input rows each output row mixes, and their weights."""
    dst = numpy.arange(out).astype(dtype)
    if align_corners:
        src = dst * (dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0))
    else:
        src = numpy.maximum((dst + dtype.type(0.5)) * _scale(size, out, scale_factor, dtype) - dtype.type(0.5), 0)
    i0 = numpy.minimum(numpy.floor(src).astype(numpy.int64), size - 1)
    l1 = numpy.clip(src - i0.astype(dtype), 0, 1)
    return i0, numpy.minimum(i0 + 1, size - 1), (1 - l1).astype(dtype), l1


def _along(x, axis, rows, device):
    return index_select(x, axis, Tensor(backend.to_device(rows, device)))


def _resize_axis(x, axis, out, scale_factor, mode, align_corners):
    """``x`` resized along ``axis`` (2: rows, 3: columns) to ``out``."""
    size = x.shape[axis]
    if out == size:
        return x
    if mode == "nearest":
        return _along(x, axis, _nearest_indices(size, out, scale_factor), x.device)
    i0, i1, l0, l1 = _linear_weights(size, out, scale_factor, align_corners, x.dtype)
    shape = (-1, 1) if axis == 2 else (-1,)
    l0, l1 = (Tensor(backend.to_device(w.reshape(shape), x.device)) for w in (l0, l1))
    return _along(x, axis, i0, x.device) * l0 + _along(x, axis, i1, x.device) * l1


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, H, W) to ``size`` (an int or (OH, OW)) or by ``scale_factor`` (a number
    or a pair; OH = floor(H * scale)), as ``torch.nn.functional.interpolate``.

    ``mode``: 'nearest' (each output pixel copies one input pixel) or 'bilinear' (a weighted
    mean of four); ``align_corners`` (bilinear only; default False) maps the corner pixels'
    centres onto each other instead of their outer edges.  ``recompute_scale_factor=True``
    computes the index rules from the sizes rather than from ``scale_factor``.
    """
    return checked_interpolate("interpolate", input, size, scale_factor, mode, align_corners,
                               recompute_scale_factor, antialias)


def checked_interpolate(op, input, size, scale_factor, mode, align_corners, recompute_scale_factor,
                        antialias=False):
    """``interpolate`` after checking its arguments, ``op`` naming the caller in the errors
    (``nn.Upsample`` names itself and its settings)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    if mode not in MODES:
        kind = "is not implemented" if mode in _OTHER_MODES else "is not a mode"
        raise NotImplementedError(f"{op}: mode={mode!r} {kind}; tinyres has {' and '.join(map(repr, MODES))}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not implemented")
    if input.ndim != 4:
        raise NotImplementedError(f"{op}: expected 4-D input (N, C, H, W) for mode={mode!r}, got input of "
                                  f"shape {input.shape} (tinyres resizes images only)")
    if mode == "bilinear" and input.dtype.kind != "f":
        raise TypeError(f"{op}: mode='bilinear' expects a floating point input, got {input.dtype}")
    out, scales = _output_size(op, input, size, scale_factor, recompute_scale_factor)
    y = _resize_axis(input, 2, out[0], scales[0], mode, bool(align_corners))
    y = _resize_axis(y, 3, out[1], scales[1], mode, bool(align_corners))
    return input.clone() if y is input else y          # a new tensor, as torch's, also at the same size
