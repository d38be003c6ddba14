"""Resizing a batch of signals, images or volumes: ``interpolate``, as
``torch.nn.functional.interpolate``, on (N, C, L), (N, C, H, W) or (N, C, D, H, W).

Every mode is separable: the output is made one spatial axis after the other, and along
an axis each output position is a weighted sum of a few input positions ("taps"), whose
indices and weights are computed on the host by torch's rules (in the input's precision,
as torch's CPU kernels compute them; 'nearest' in float32 as torch does):

    nearest:        src = min(floor(dst * scale), in - 1)                      1 tap, weight 1
    nearest-exact:  src = min(floor((dst + 0.5) * scale), in - 1)              1 tap, weight 1
    linear:         src = dst * scale (align_corners)  or  max((dst + 0.5) * scale - 0.5, 0),
                    i0 = floor(src),  i1 = min(i0 + 1, in - 1),  t = src - i0,
                    y[dst] = (1 - t) x[i0] + t x[i1]                            2 taps
    bicubic:        src as linear but not clamped at 0,  i = floor(src),  t = src - i,
                    y[dst] = sum_k w_k(t) x[clamp(i - 1 + k, 0, in - 1)],  k = 0..3, with Keys'
                    cubic convolution (A = -0.75): w(d) = (A+2)|d|^3 - (A+3)|d|^2 + 1 for
                    |d| <= 1, A|d|^3 - 5A|d|^2 + 8A|d| - 4A for 1 < |d| < 2     4 taps
    area:           the mean of x[floor(dst * in / out) : ceil((dst + 1) * in / out)]  (adaptive
                    average pooling; taps beyond a window's end have weight 0)

with scale = in / out, or 1 / scale_factor when one is given (and not recomputed), and for
align_corners (in - 1) / (out - 1).  ``antialias=True`` ('bilinear' and 'bicubic' on 4-D input,
torch's ``_upsample_bilinear2d_aa`` / ``_upsample_bicubic2d_aa``, PIL's resampling) widens the
filter by the scale when it shrinks, and normalises it:

    antialias:      support = r * max(scale, 1)  (r = 1 linear, 2 cubic),  centre = scale * (dst + 0.5),
                    taps i = max(trunc(centre - support + 0.5), 0) ... min(trunc(centre + support + 0.5), in) - 1,
                    w_i = f((i - centre + 0.5) / max(scale, 1)) / sum_i f(...),  with the triangle
                    f(d) = max(1 - |d|, 0), or Keys' cubic with A = -0.5 (PIL's, not -0.75)

so a downsampled pixel averages every input pixel its footprint covers, where plain bilinear
reads only the two nearest (and aliases).  'linear', 'bilinear' and 'trilinear' are the linear
rule on 1, 2 and 3 axes.  An axis whose size does not change is copied.  The taps are
differentiable ops (gathers along the axis, products and sums), so the gradient adds each
output's share back onto the positions it read, and is itself differentiable.
"""
import math
import numbers

import numpy

from ...core import backend
from ...core.composite import index_select
from ...core.tensor import Tensor
from .pooling import _adaptive_bins

__all__ = ["interpolate"]

# mode -> the number of spatial axes it needs (None: any of 1, 2, 3)
MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2, "bicubic": 2,
         "trilinear": 3}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")     # the modes align_corners belongs to
CUBIC_A = -0.75
CUBIC_A_ANTIALIAS = -0.5                  # torch's antialiased bicubic takes PIL's A
ANTIALIAS_MODES = {"bilinear": 1.0, "bicubic": 2.0}    # mode -> half the filter's width at scale 1


def _spatial(value, name, op, input):
    """A size or scale factor for every spatial axis: one number, or one per axis."""
    dims = input.ndim - 2
    if not isinstance(value, (tuple, list)):
        return (value,) * dims
    if len(value) != dims:
        raise ValueError(f"{op}: input and {name} must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(input.shape[2:])} and {name} of {value}")
    return tuple(value)


def _output_size(op, input, size, scale_factor, recompute_scale_factor):
    """The output's spatial sizes and the scale factors the index rules use (None: in / out)."""
    dims = input.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        size = _spatial(size, "output size", op, input)
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in size):
            raise TypeError(f"{op}: expected size to be an int or a tuple of ints, got {size!r}")
        out, scales = tuple(int(n) for n in size), (None,) * dims
    else:
        scales = tuple(float(s) for s in _spatial(scale_factor, "scale_factor", op, input))
        out = tuple(math.floor(n * s) for n, s in zip(input.shape[2:], scales))
        if recompute_scale_factor:
            scales = (None,) * dims
    if min(out) <= 0 or min(input.shape[2:]) <= 0:
        names = "DHW"[-dims:] if dims > 1 else "L"
        given = ", ".join(f"{k}: {n}" for k, n in zip(names, input.shape[2:]))
        wanted = ", ".join(f"{k}: {n}" for k, n in zip(names, out))
        raise RuntimeError(f"{op}: input and output sizes should be greater than 0, but got input ({given}) "
                           f"output ({wanted})")
    return out, scales


def _scale(size, out, scale_factor, dtype):
    """in / out, or 1 / scale_factor when it is given (torch's ``compute_scales_value``)."""
    if scale_factor is not None and scale_factor > 0:
        return dtype.type(1.0 / scale_factor)
    return dtype.type(size) / dtype.type(out)


def _nearest_indices(size, out, scale_factor, exact):
    """The input position of each output position, in float32 as torch computes it."""
    if out == 2 * size and not exact:
        return numpy.arange(out) // 2
    dst = numpy.arange(out, dtype=numpy.float32) + numpy.float32(0.5 if exact else 0)
    return numpy.minimum(numpy.floor(dst * _scale(size, out, scale_factor, dst.dtype)).astype(numpy.int64), size - 1)


def _source(size, out, scale_factor, align_corners, dtype, cubic):
    """Each output position's real-valued position in the input (torch's
    ``area_pixel_compute_source_index``)."""
    dst = numpy.arange(out).astype(dtype)
    if align_corners:
        return dst * (dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0))
    src = (dst + dtype.type(0.5)) * _scale(size, out, scale_factor, dtype) - dtype.type(0.5)
    return src if cubic else numpy.maximum(src, 0)


def _linear_taps(size, out, scale_factor, align_corners, dtype):
    src = _source(size, out, scale_factor, align_corners, dtype, cubic=False)
    i0 = numpy.minimum(numpy.floor(src).astype(numpy.int64), size - 1)
    l1 = numpy.clip(src - i0.astype(dtype), 0, 1)
    return [i0, numpy.minimum(i0 + 1, size - 1)], [(1 - l1).astype(dtype), l1]


def _keys_cubic(d, A):
    """Keys' cubic convolution weight at distance ``d`` (0 from |d| = 2 on)."""
    d = numpy.abs(d)
    near = ((A + 2) * d - (A + 3)) * d * d + 1
    far = ((A * d - 5 * A) * d + 8 * A) * d - 4 * A
    return numpy.where(d < 1, near, numpy.where(d < 2, far, 0)).astype(d.dtype)


def _cubic_taps(size, out, scale_factor, align_corners, dtype):
    src = _source(size, out, scale_factor, align_corners, dtype, cubic=True)
    i = numpy.floor(src)
    t, i, A = src - i, i.astype(numpy.int64), dtype.type(CUBIC_A)
    weights = [_keys_cubic(t + 1, A), _keys_cubic(t, A), _keys_cubic(1 - t, A), _keys_cubic(2 - t, A)]
    return [numpy.clip(i - 1 + k, 0, size - 1) for k in range(4)], weights


def _antialias_taps(size, out, scale_factor, align_corners, dtype, mode):
    """torch's antialiased weights (``_compute_index_ranges_weights``): the filter stretched by
    the scale when shrinking, cut to the pixels under it, normalised to sum to 1."""
    if align_corners:
        scale = dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0)
    else:
        scale = _scale(size, out, scale_factor, dtype)
    half = dtype.type(ANTIALIAS_MODES[mode])
    support, invscale = (half * scale, dtype.type(1) / scale) if scale >= 1 else (half, dtype.type(1))
    centre = scale * (numpy.arange(out).astype(dtype) + dtype.type(0.5))
    first = numpy.maximum((centre - support + dtype.type(0.5)).astype(numpy.int64), 0)     # truncated, as C++
    count = numpy.minimum((centre + support + dtype.type(0.5)).astype(numpy.int64), size) - first
    k = numpy.arange(int(count.max()))
    rows = first[:, None] + k                                                   # (out, taps)
    d = (rows.astype(dtype) - centre[:, None] + dtype.type(0.5)) * invscale
    w = numpy.maximum(1 - numpy.abs(d), 0) if mode == "bilinear" else _keys_cubic(d, dtype.type(CUBIC_A_ANTIALIAS))
    w = numpy.where(k < count[:, None], w, 0).astype(dtype)
    total = w.sum(axis=1, keepdims=True)
    w = numpy.where(total != 0, w / numpy.where(total != 0, total, 1), w).astype(dtype)
    return [numpy.minimum(rows[:, t], size - 1) for t in k], [w[:, t] for t in k]


def _area_taps(size, out, dtype):
    """area mode is adaptive average pooling: the mean over each of its bins."""
    start, end = _adaptive_bins(size, out)
    counts = end - start
    indices = [numpy.minimum(start + k, end - 1) for k in range(int(counts.max()))]
    weights = [numpy.where(start + k < end, dtype.type(1) / counts.astype(dtype), dtype.type(0)).astype(dtype)
               for k in range(len(indices))]
    return indices, weights


def _along(x, axis, rows):
    return index_select(x, axis, Tensor(backend.to_device(rows, x.device)))


def _resize_axis(x, axis, out, scale_factor, mode, align_corners, antialias=False):
    """``x`` resized along ``axis`` to ``out``: the weighted sum of its taps."""
    size = x.shape[axis]
    if out == size:
        return x
    if mode in ("nearest", "nearest-exact"):
        return _along(x, axis, _nearest_indices(size, out, scale_factor, mode == "nearest-exact"))
    if antialias:
        indices, weights = _antialias_taps(size, out, scale_factor, align_corners, x.dtype, mode)
    elif mode == "area":
        indices, weights = _area_taps(size, out, x.dtype)
    elif mode == "bicubic":
        indices, weights = _cubic_taps(size, out, scale_factor, align_corners, x.dtype)
    else:
        indices, weights = _linear_taps(size, out, scale_factor, align_corners, x.dtype)
    shape = (-1,) + (1,) * (x.ndim - 1 - axis)          # a weight per position along the axis
    y = None
    for rows, w in zip(indices, weights):
        term = _along(x, axis, rows) * Tensor(backend.to_device(w.reshape(shape), x.device))
        y = term if y is None else y + term
    return y


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) to ``size`` (an int or one per
    spatial axis) or by ``scale_factor`` (a number or one per axis; out = floor(in * scale)),
    as ``torch.nn.functional.interpolate``.

    ``mode``: 'nearest' (each output copies one input position), 'nearest-exact' (the same,
    rounding to the nearest centre, as image libraries do), 'linear' / 'bilinear' /
    'trilinear' (a weighted mean of 2, 4 or 8 neighbours on 3-, 4- and 5-D input), 'bicubic'
    (16 neighbours, Keys' cubic with A = -0.75; it can overshoot the input's range, as
    torch's) or 'area' (adaptive average pooling).  ``align_corners`` (interpolating modes
    only; default False) maps the corner positions' centres onto each other instead of
    their outer edges.  ``recompute_scale_factor=True`` computes the index rules from the
    sizes rather than from ``scale_factor``.  ``antialias=True`` ('bilinear' and 'bicubic' on
    (N, C, H, W) only) low-pass filters as it shrinks: each output averages the input pixels
    under its footprint (PIL's and torchvision's ``Resize``), with Keys' A = -0.5 for 'bicubic'.
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
        kind = "(torch's antialiased resampling) is not implemented" if mode == "lanczos" else "is not a mode"
        raise NotImplementedError(f"{op}: mode={mode!r} {kind}; tinyres has {', '.join(map(repr, MODES))}")
    if mode not in INTERPOLATING and align_corners is not None:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias and not (mode in ANTIALIAS_MODES and input.ndim == 4):
        raise ValueError(f"{op}: Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires "
                         f"a 4-D tensor as input (tinyres has no lanczos); got mode={mode!r} and {input.ndim}-D input")
    if input.ndim not in (3, 4, 5):
        raise NotImplementedError(f"{op}: only 3D, 4D and 5D input tensors are supported (got {input.ndim}D, "
                                  f"shape {input.shape}) for mode={mode!r}")
    if MODES[mode] is not None and MODES[mode] != input.ndim - 2:
        raise NotImplementedError(f"{op}: got {input.ndim}D input, but {mode} mode needs {MODES[mode] + 2}D input")
    if mode not in ("nearest", "nearest-exact") and input.dtype.kind != "f":
        raise TypeError(f"{op}: mode={mode!r} expects a floating point input, got {input.dtype}")
    out, scales = _output_size(op, input, size, scale_factor, recompute_scale_factor)
    y = input
    for axis, (n, scale) in enumerate(zip(out, scales), start=2):
        y = _resize_axis(y, axis, n, scale, mode, bool(align_corners), bool(antialias))
    return input.clone() if y is input else y          # a new tensor, as torch's, also at the same size
