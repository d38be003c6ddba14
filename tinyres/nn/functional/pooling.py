"""Pooling as in ``torch.nn.functional``: max, average, power-average (``lp_pool``) and
adaptive (output-sized) pools, and ``max_unpool``, a max pool's partial inverse.

Notation (as in docs/pooling.md): input ``x`` (N, C, H, W), output ``y`` (N, C, OH, OW).
``max_pool2d`` and ``avg_pool2d`` reuse conv's ``im2col`` / ``col2im``: a window is a
patch, ``y`` is its max or mean, and backward adds gradients back onto the patch with
``col2im``.  Adaptive pools cut each axis into ``out`` bins
[floor(i*in/out), ceil((i+1)*in/out)), which may differ in size and overlap.
1-D variants run on the 2-D code with H = 1.
"""
import numbers

import numpy

from ...core.engine import Function
from ...core.ops import scatter_add, where
from ...core.backend import get_array_module, is_cpu, matmul, on_device, to_device
from ...kernels.threads import parallel_for, workspace
from ...core.tensor import Tensor
from ...kernels.im2col import (NO_PADDING, channel_major, col2im, conv_output_size, pad_into, padded_shape,
                               scratch_im2col, unpad, window_slice)
from .conv import as_nchw, check_input, ntuple

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "avg_pool1d", "avg_pool2d", "max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "max_unpool1d", "max_unpool2d",
           "lp_pool1d", "lp_pool2d"]


# ---------------------------------------------------------------------- windows

def _pool_output_size(size, k, s, p, d, ceil_mode):
    """torch's output length: floor (or ceil) of (size + 2p - d(k-1) - 1) / s, plus 1; in
    ceil mode the last window must start inside the input or the left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, spatial_dims):
    """Check a window pool's arguments; return them for the 2-D code, with ``padding`` as
    (before, after) pairs -- ``after`` grown in ceil mode so the last window fits."""
    check_input(op, input, spatial_dims)
    kernel_size = ntuple(kernel_size, spatial_dims, "kernel_size", op)
    stride = kernel_size if stride is None else ntuple(stride, spatial_dims, "stride", op)
    padding = ntuple(padding, spatial_dims, "padding", op)
    dilation = ntuple(dilation, spatial_dims, "dilation", op)
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if any(v < 1 for v in value):
            raise RuntimeError(f"{op}: {name} must be positive, got {name}={value}")
    if any(p < 0 or p > k // 2 for p, k in zip(padding, kernel_size)):
        raise RuntimeError(f"{op}: padding should be non-negative and at most half of the kernel size, "
                           f"got padding={padding} for kernel_size={kernel_size}")
    sizes = input.shape[-spatial_dims:]
    out = tuple(_pool_output_size(*a, ceil_mode) for a in zip(sizes, kernel_size, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: output size would be {out} for input of shape {input.shape} with "
                           f"kernel_size={kernel_size}, stride={stride}, padding={padding}, "
                           f"dilation={dilation}; the input is too small")
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, o, k, s, p, d in zip(sizes, out, kernel_size, stride, padding, dilation))
    if spatial_dims == 1:
        kernel_size, stride, dilation, pads = (1,) + kernel_size, (1,) + stride, (1,) + dilation, ((0, 0),) + pads
    return kernel_size, stride, pads, dilation


# ---------------------------------------------------------------------- max pool

def _window_max(x, kernel_size, stride, padding, dilation, with_argmax=True):
    """Each window's max of ``x`` (padded with -inf), y (N, C, OH, OW) in channel-major
    memory, and its argmax: the offset in the window, 0 .. KH*KW-1 in row-major order, the
    first on ties (as torch) -- or None without ``with_argmax``.

    No columns are made: a view of the padded input per kernel offset holds that offset's
    pixel of every window, so y is a running maximum over the KH*KW views, and the argmax
    one comparison per view, last offset first so that the first match wins.  As in
    torch, the padding never wins (a window of -inf inputs points at its first input
    pixel), and a NaN propagates to y with the argmax at the window's last NaN.  The
    images are split between threads.
    """
    xp = get_array_module(x)
    kh, kw = kernel_size
    n, c, h, w = padded = padded_shape(x.shape, padding)
    out_size = conv_output_size((h, w), kernel_size, stride, NO_PADDING, dilation)
    y = channel_major((n, c) + out_size, x.dtype, xp)
    argmax = None
    if with_argmax:                     # offsets fit in the smallest unsigned type (uint8 for up to 16x16)
        argmax = channel_major((n, c) + out_size, numpy.min_scalar_type(kh * kw - 1), xp, xp.zeros)
    xpad = x
    if padding != NO_PADDING:
        xpad = channel_major(padded, x.dtype, xp, lambda *a, **k: workspace("im2col.pad", *a, xp=xp, **k))

    inside = _inside_masks(x.shape[2:], kernel_size, stride, padding, dilation, out_size, xp)

    def pool(b):                        # the images b of the batch
        if xpad is not x:
            pad_into(xpad[b], x[b], padding, -numpy.inf, xp)
        views = [xpad[b][window_slice(i, j, out_size, stride, dilation)] for i in range(kh) for j in range(kw)]
        xp.copyto(y[b], views[0])
        for v in views[1:]:
            xp.maximum(y[b], v, out=y[b])
        if argmax is not None:
            offsets = numpy.arange(kh * kw, dtype=argmax.dtype)    # copyto from a Python int fails on CuPy < 13.3
            for k in reversed(range(kh * kw)):
                hit = views[k] == y[b]
                xp.copyto(argmax[b], offsets[k], where=hit if inside is None else hit & inside[k])
            if not is_cpu(xp) or xp.isnan(y[b]).any():    # on a GPU, asking would stop it: always do it
                for k in range(kh * kw):
                    xp.copyto(argmax[b], offsets[k], where=xp.isnan(views[k]))
    parallel_for(pool, n, xp)
    return y, argmax


def _inside_masks(size, kernel_size, stride, padding, dilation, out_size, xp):
    """For each kernel offset, an (OH, OW) mask of the windows whose pixel at that offset is
    in the input, not the padding; None without padding."""
    if padding == NO_PADDING:
        return None
    masks = []
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, cols = (xp.arange(o) * s + k * d - before
                          for o, s, k, d, (before, _) in zip(out_size, stride, (i, j), dilation, padding))
            masks.append(((rows >= 0) & (rows < size[0]))[:, None] & ((cols >= 0) & (cols < size[1]))[None, :])
    return masks


class MaxPool2dFunction(Function):
    """y = max of each window of x (padded with -inf).

    The gradient of a window goes to its argmax, the first in window order on ties:
    gx = unpool(gy) (``MaxUnpool2d``).  Backward keeps only the argmax, a constant: gx
    does not depend on x, so the second derivative with respect to x is zero, and with
    respect to gy it is the gather ``MaxGather2d`` of ggx at the argmax positions.
    """

    _backward_reads_input = True    # as torch's: under create_graph gx is in the graph (engine._connected)

    def forward(self, x, kernel_size, stride, padding, dilation):
        y, self.argmax = _window_max(x, kernel_size, stride, padding, dilation, with_argmax=self.needs_grad)
        self.geometry = (x.shape, kernel_size, stride, padding, dilation)
        return y

    def backward(self, gy):
        return MaxUnpool2d.apply(gy, self.argmax, *self.geometry)


class MaxUnpool2d(Function):
    """gx = unpool(gy): for each kernel offset k, gxpad[pixels at offset k] += gy where
    argmax == k (the same window views as forward; overlapping windows add up), then the
    padding cut off.  Linear in gy; its adjoint is the gather,  g_gy = ``MaxGather2d``(ggx)."""

    def forward(self, gy, argmax, input_shape, kernel_size, stride, padding, dilation):
        xp = get_array_module(gy)
        self.argmax, self.geometry = argmax, (input_shape, kernel_size, stride, padding, dilation)
        kw, out_size = kernel_size[1], gy.shape[2:]
        gxpad = channel_major(padded_shape(input_shape, padding), gy.dtype, xp, xp.zeros)
        zero = gy.dtype.type(0)

        def unpool(b):
            for k in range(kernel_size[0] * kw):
                window = window_slice(k // kw, k % kw, out_size, stride, dilation)
                gxpad[b][window] += xp.where(argmax[b] == k, gy[b], zero)
        parallel_for(unpool, gy.shape[0], xp)
        return unpad(gxpad, input_shape, padding)

    def backward(self, ggx):
        return MaxGather2d.apply(ggx, self.argmax, *self.geometry)


class MaxGather2d(Function):
    """y[n, c, oh, ow] = xpad at the argmax of window (oh, ow): the value a max pool with
    these (constant) argmax positions picks, linear in its input.  Its adjoint is
    ``MaxUnpool2d``, so  g_x = unpool(gy)  -- a pair closed under differentiation."""

    def forward(self, x, argmax, input_shape, kernel_size, stride, padding, dilation):
        xp = get_array_module(x)
        self.argmax, self.geometry = argmax, (input_shape, kernel_size, stride, padding, dilation)
        kw, out_size = kernel_size[1], argmax.shape[2:]
        xpad = x
        if padding != NO_PADDING:            # the argmax never points at the padding: zeros will do
            xpad = channel_major(padded_shape(x.shape, padding), x.dtype, xp, xp.zeros)
            pad_into(xpad, x, padding, 0, xp)
        y = channel_major(argmax.shape, x.dtype, xp, xp.zeros)
        for k in range(kernel_size[0] * kw):
            xp.copyto(y, xpad[window_slice(k // kw, k % kw, out_size, stride, dilation)], where=argmax == k)
        return y

    def backward(self, gy):
        return MaxUnpool2d.apply(gy, self.argmax, *self.geometry)


def _max_pool_indices(x, kernel_size, stride, padding, dilation):
    """torch's ``return_indices``: each window's argmax as a flat index h * W + w into
    its (unpadded) input plane, int64, (N, C, OH, OW)."""
    _, argmax = _window_max(x, kernel_size, stride, padding, dilation)
    return _argmax_positions(argmax, kernel_size, stride, padding, dilation, x.shape[3])


def _argmax_positions(argmax, kernel_size, stride, padding, dilation, width):
    """Each window's argmax (its kernel offset) as a flat index h * W + w into the plane."""
    xp = get_array_module(argmax)
    argmax = argmax.astype(numpy.int64)
    _, _, oh, ow = argmax.shape
    (_, kw), (sh, sw), (dh, dw), ((top, _), (left, _)) = kernel_size, stride, dilation, padding
    h = xp.arange(oh).reshape(-1, 1) * sh + (argmax // kw) * dh - top
    w = xp.arange(ow) * sw + (argmax % kw) * dw - left
    return xp.ascontiguousarray(h * width + w)


def _max_pool(op, spatial_dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geometry = _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, spatial_dims)
    x, restore = as_nchw(input, spatial_dims)
    y = restore(MaxPool2dFunction.apply(x, *geometry))
    if not return_indices:
        return y
    with on_device(x.device):          # the indices are computed (and live) on x's GPU
        return y, restore(Tensor(_max_pool_indices(x.array, *geometry)))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling as ``torch.nn.functional.max_pool2d`` over (N, C, H, W) or (C, H, W).

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with
    -inf; ``ceil_mode`` rounds the output size up (the last window must still start inside
    the input or the left padding).  With ``return_indices``, also the flat h * W + w index
    of each max in its input plane.
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling as ``torch.nn.functional.max_pool1d`` over (N, C, L) or (C, L)."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------------- average pool

def _window_counts(size, k, s, pads, count_include_pad):
    """Along one axis, for each output position, how many of its window's k positions
    count toward the divisor: torch clips a window at the padded border (size + p), and
    with ``count_include_pad=False`` further to the input itself.  ``pads`` = (p, after),
    ``after`` >= p being p plus what ceil mode added."""
    p, after = pads
    start = numpy.arange((size + p + after - k) // s + 1) * s - p
    end = numpy.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return numpy.minimum(end, size) - numpy.maximum(start, 0)


class AvgPool2dFunction(Function):
    """y = sum of each window of x (zero-padded) / divisor[oh, ow]: linear in x.

    Backward is its adjoint (``AvgUnpool2d``): gcols = gy / divisor, the same for every
    pixel of a window;  gx = col2im(gcols).  That adjoint's own adjoint is this pool, so
    the second derivative with respect to x is zero and with respect to gy it is
    avg_pool(ggx).
    """

    _backward_reads_input = True    # as torch's: under create_graph gx is in the graph (engine._connected)

    def forward(self, x, kernel_size, stride, padding, divisor):
        cols = scratch_im2col(x, kernel_size, stride, padding)
        self.geometry = (x.shape, kernel_size, stride, padding, divisor)
        y = cols.sum(axis=(1, 2)) / divisor
        return y.transpose(1, 0, 2, 3)     # channel-major memory, as conv's output

    def backward(self, gy):
        return AvgUnpool2d.apply(gy, *self.geometry)


class AvgUnpool2d(Function):
    """gx = col2im(gy / divisor broadcast over each window): the adjoint of ``AvgPool2dFunction``.
    Linear in gy; its backward is the pool again,  g_gy = avg_pool(ggx)."""

    def forward(self, gy, input_shape, kernel_size, stride, padding, divisor):
        xp = get_array_module(gy)
        self.geometry = (kernel_size, stride, padding, divisor)
        n, c, oh, ow = gy.shape
        share = (gy.transpose(1, 0, 2, 3) / divisor).reshape(c, 1, 1, n, oh, ow)
        gcols = xp.broadcast_to(share, (c,) + tuple(kernel_size) + (n, oh, ow))
        return col2im(gcols, input_shape, stride, padding)

    def backward(self, ggx):
        return AvgPool2dFunction.apply(ggx, *self.geometry)


def _avg_pool(op, spatial_dims, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    kernel_size, stride, pads, _ = _pool_geometry(op, input, kernel_size, stride, padding, 1, ceil_mode,
                                                  spatial_dims)
    x, restore = as_nchw(input, spatial_dims)
    if divisor_override is not None:
        if not isinstance(divisor_override, numbers.Integral) or divisor_override == 0:
            raise RuntimeError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
        divisor = float(divisor_override)       # a Python number keeps x's dtype
    else:
        rows, cols = (_window_counts(*a, count_include_pad) for a in zip(x.shape[2:], kernel_size, stride, pads))
        divisor = to_device(numpy.outer(rows, cols).astype(x.dtype), x.device)    # made on the host, copied
    return restore(AvgPool2dFunction.apply(x, kernel_size, stride, pads, divisor))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling as ``torch.nn.functional.avg_pool2d`` over (N, C, H, W) or (C, H, W).

    Zero padding; the divisor of a window is its size clipped at the padded border
    (``count_include_pad=True``) or at the input (``False``), or ``divisor_override``.
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling as ``torch.nn.functional.avg_pool1d`` over (N, C, L) or (C, L)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


# ---------------------------------------------------------------------- adaptive pools

def _adaptive_bins(size, out):
    """torch's adaptive bins along one axis: start_i = floor(i*size/out), end_i = ceil((i+1)*size/out)."""
    i = numpy.arange(out)
    return i * size // out, -(-(i + 1) * size // out)


def _averaging_matrix(size, out, dtype, device):
    """A (out, size) with A[i, h] = 1 / (end_i - start_i) on bin i, so A @ v averages each
    bin; made on the host and copied to ``device``."""
    start, end = _adaptive_bins(size, out)
    h = numpy.arange(size)
    inside = (start[:, None] <= h) & (h < end[:, None])
    return to_device((inside / (end - start)[:, None]).astype(dtype), device)


class AdaptiveAvgPool2dFunction(Function):
    """y = A_h @ x @ A_w^T per (n, c) plane: a rectangle's mean is the mean over its
    rows of the means over its columns.   gx = A_h^T @ gy @ A_w."""

    def forward(self, x, a_h, a_w):
        self.a_h, self.a_w = a_h, a_w
        return matmul(matmul(a_h, x), a_w.T)

    def backward(self, gy):
        return Tensor(self.a_h.T) @ gy @ Tensor(self.a_w)


def _adaptive_output_size(op, input, output_size, spatial_dims):
    check_input(op, input, spatial_dims)
    sizes = input.shape[-spatial_dims:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == spatial_dims:
        output_size = tuple(n if o is None else o for o, n in zip(output_size, sizes))
    out = ntuple(output_size, spatial_dims, "output_size", op)
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: output_size must be positive, got {out}")
    if any(n == 0 for n in sizes):
        raise RuntimeError(f"{op}: expected non-empty spatial dimensions, got input of shape {input.shape}")
    return ((1,) + out) if spatial_dims == 1 else out


def _adaptive_avg_pool(op, spatial_dims, input, output_size):
    oh, ow = _adaptive_output_size(op, input, output_size, spatial_dims)
    x, restore = as_nchw(input, spatial_dims)
    if (oh, ow) == (1, 1):
        return restore(x.mean(dim=(2, 3), keepdim=True))
    _, _, h, w = x.shape
    return restore(AdaptiveAvgPool2dFunction.apply(x, _averaging_matrix(h, oh, x.dtype, x.device),
                                           _averaging_matrix(w, ow, x.dtype, x.device)))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a given output size, as ``torch.nn.functional.adaptive_avg_pool2d``.
    ``output_size``: an int, or a pair whose None entries keep the input size.  Output 1
    (the global average pool that ends a ResNet) is the mean over H and W."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool1d(input, output_size):
    """1-D adaptive average pooling over (N, C, L) or (C, L)."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def _bin_members(size, out):
    """The indices of each bin, (out, widest bin), short bins padded by repeating their last index
    (a repeat never changes a max, nor which position is the first max)."""
    start, end = _adaptive_bins(size, out)
    return numpy.minimum(start[:, None] + numpy.arange((end - start).max()), end[:, None] - 1)


def _adaptive_max_indices(x, out_size):
    """For each bin of ``x`` (N, C, H, W), the flat index h * W + w of its max (the first
    in row-major order on ties, as torch), int64 (N, C, OH, OW)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    rows, cols = (xp.asarray(_bin_members(size, out)) for size, out in zip((h, w), out_size))
    oh, kh = rows.shape
    ow, kw = cols.shape
    windows = x[:, :, rows[:, :, None, None], cols[None, None, :, :]]        # (N, C, OH, KH, OW, KW)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, kh * kw)
    k = windows.argmax(axis=-1)
    return (rows[xp.arange(oh)[:, None], k // kw] * w + cols[xp.arange(ow), k % kw]).astype(numpy.int64)


class TakeFromPlanes(Function):
    """y[n, c, o] = x[n, c].flat[index[n, c, o]] -- the value at each max's position, the
    indices constant: linear in x.   gx = ``PutIntoPlanes``(gy), whose backward is this op
    again (so the second derivative with respect to x is zero)."""

    _backward_reads_input = True    # as torch's: under create_graph gx is in the graph (engine._connected)

    def forward(self, x, index):
        n, c, h, w = x.shape
        self.input_shape, self.index = x.shape, index
        y = get_array_module(x).take_along_axis(x.reshape(n, c, h * w), index.reshape(n, c, -1), axis=2)
        return y.reshape(index.shape)

    def backward(self, gy):
        return PutIntoPlanes.apply(gy, self.index, self.input_shape)


class PutIntoPlanes(Function):
    """gx = zeros of ``input_shape`` with gy added onto the positions ``index``: the adjoint
    of ``TakeFromPlanes``.  Several outputs may pick one pixel, so the adds are a
    deterministic ``scatter_add`` over the flat positions (not ``bincount``, whose weighted
    GPU version adds with atomics, in no fixed order).   g_gy = ``TakeFromPlanes``(ggx)."""

    def forward(self, gy, index, input_shape):
        n, c, h, w = input_shape
        self.index = index
        planes = get_array_module(gy).arange(n * c).reshape(n, c, 1, 1) * (h * w)
        gx = scatter_add((n * c * h * w,), (index + planes).ravel(), gy.ravel())
        return gx.reshape(input_shape)

    def backward(self, ggx):
        return TakeFromPlanes.apply(ggx, self.index)


def _adaptive_max_pool(op, spatial_dims, input, output_size, return_indices):
    out_size = _adaptive_output_size(op, input, output_size, spatial_dims)
    x, restore = as_nchw(input, spatial_dims)
    with on_device(x.device):          # the indices are computed (and live) on x's GPU
        index = _adaptive_max_indices(x.array, out_size)
    y = restore(TakeFromPlanes.apply(x, index))
    return (y, restore(Tensor(index))) if return_indices else y


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to a given output size, as ``torch.nn.functional.adaptive_max_pool2d``
    (bins as ``adaptive_avg_pool2d``; with ``return_indices``, the flat h * W + w index of
    each max)."""
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """1-D adaptive max pooling over (N, C, L) or (C, L)."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


# ---------------------------------------------------------------------- with indices, unpool

def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``max_pool2d`` with ``return_indices=True`` (whatever ``return_indices`` says, as torch):
    the output and the flat h * W + w index of each max in its input plane."""
    return _max_pool("max_pool2d_with_indices", 2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``max_pool1d`` with ``return_indices=True``: the output and each max's index along L."""
    return _max_pool("max_pool1d_with_indices", 1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """``adaptive_max_pool2d`` with ``return_indices=True``: the output and the indices."""
    return _adaptive_max_pool("adaptive_max_pool2d_with_indices", 2, input, output_size, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """``adaptive_max_pool1d`` with ``return_indices=True``: the output and the indices."""
    return _adaptive_max_pool("adaptive_max_pool1d_with_indices", 1, input, output_size, True)


class MaxUnpoolFunction(Function):
    """y = zeros of ``output_shape`` (N, C, OH, OW), then y[n, c].flat[index[n, c, i]] = x[n, c, i]:
    each value put back where its max pool took it from.  The values are written, not added:
    a position named twice (overlapping windows) keeps one of them, as torch's.

    Linear in x; its adjoint is the gather at the same positions,

        gx[n, c, i] = gy[n, c].flat[index[n, c, i]]      (``TakeFromPlanes``)

    whose own backward adds ggx back onto the positions (``PutIntoPlanes``), so second
    derivatives work; the index is a constant."""

    def forward(self, x, index, output_shape):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        self.index = index
        planes = xp.zeros((n * c, output_shape[2] * output_shape[3]), x.dtype)
        planes[xp.arange(n * c)[:, None], index.reshape(n * c, -1)] = x.reshape(n * c, -1)
        return planes.reshape(output_shape)

    def backward(self, gy):
        return TakeFromPlanes.apply(gy, self.index)


def _unpool_output_size(op, input, kernel_size, stride, padding, output_size):
    """torch's: (in - 1) * stride + kernel - 2 * padding along each axis, or ``output_size``
    (its last dims), which must lie strictly within one stride of that."""
    k = len(kernel_size)
    default = [(n - 1) * s + ks - 2 * p for n, ks, s, p in zip(input.shape[-k:], kernel_size, stride, padding)]
    if output_size is None:
        return tuple(default)
    output_size = tuple(output_size)
    if len(output_size) == k + 2:
        output_size = output_size[2:]
    if len(output_size) != k:
        raise ValueError(f"{op}: output_size should be a sequence containing {k} or {k + 2} elements, but it has "
                         f"a length of '{len(output_size)}'")
    for d, (size, s) in enumerate(zip(default, stride)):
        if not size - s < output_size[d] < size + s:
            raise ValueError(f'{op}: invalid output_size "{output_size}" (dim {d} must be between {size - s} and '
                             f'{size + s})')
    return tuple(int(o) for o in output_size)


def checked_max_unpool(op, spatial_dims, input, indices, kernel_size, stride, padding, output_size):
    """``max_unpool1d`` / ``max_unpool2d`` after torch's checks, ``op`` naming the caller in the
    errors (``nn.MaxUnpool2d`` names itself and its settings)."""
    check_input(op, input, spatial_dims)
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: expected indices to be a Tensor, got {type(indices).__name__}")
    if indices.dtype != numpy.int64:
        raise RuntimeError(f"{op}: elements in indices should be type int64 but got: {indices.dtype}")
    if indices.shape != input.shape:
        raise RuntimeError(f"{op}: Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    kernel_size = ntuple(kernel_size, spatial_dims, "kernel_size", op)
    stride = kernel_size if stride is None else ntuple(stride, spatial_dims, "stride", op)
    padding = ntuple(padding, spatial_dims, "padding", op)
    out = _unpool_output_size(op, input, kernel_size, stride, padding, output_size)
    if indices.device != input.device:
        raise RuntimeError(f"{op}: expected indices on the input's device {input.device}, got them on "
                           f"{indices.device}")
    x, restore = as_nchw(input, spatial_dims)
    size = int(numpy.prod(out))
    with on_device(input.device):          # CuPy computes on the current GPU: make it the input's
        index = indices.array.reshape(x.shape)
        bad = index[(index < 0) | (index >= size)]      # (checked on a GPU too: a bad index writes anywhere)
        if bad.size:
            raise RuntimeError(f"{op}: Found an invalid max index: {int(bad[0])} (output volumes are of size "
                               f"{'x'.join(map(str, out))})")
        return restore(MaxUnpoolFunction.apply(x, index, x.shape[:2] + ((1,) + out if spatial_dims == 1 else out)))


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """A partial inverse of ``max_pool2d``, as ``torch.nn.functional.max_unpool2d``: zeros of
    (N, C, OH, OW) with each value of ``input`` put at its flat h * OW + w position in
    ``indices`` (``max_pool2d(..., return_indices=True)``'s).  OH, OW are (H - 1) * stride +
    kernel_size - 2 * padding, or ``output_size`` (within one stride of that: the sizes that
    pool back to H, W)."""
    return checked_max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """A partial inverse of ``max_pool1d`` over (N, C, L) or (C, L) (``max_unpool2d`` with H = 1)."""
    return checked_max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------------- power-average pool

def checked_lp_pool(op, spatial_dims, input, norm_type, kernel_size, stride, ceil_mode):
    """``lp_pool1d`` / ``lp_pool2d``, ``op`` naming the caller in the errors (``nn.LPPool2d``
    names itself)."""
    check_input(op, input, spatial_dims)
    pool = max_pool2d if spatial_dims == 2 else max_pool1d
    if norm_type == float("inf"):
        return pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    pool = avg_pool2d if spatial_dims == 2 else avg_pool1d
    mean = pool(input ** norm_type, kernel_size, stride, 0, ceil_mode)
    window = int(numpy.prod(ntuple(kernel_size, spatial_dims, "kernel_size", op)))
    return (where(mean != 0, mean, 0.0) * window) ** (1.0 / norm_type)      # torch's sign(a) * relu(|a|)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D power-average pooling, as ``torch.nn.functional.lp_pool2d``: with p = ``norm_type``,

        y = (sign(a) relu(|a|) * KH KW) ^ (1 / p),   a = avg_pool2d(x ^ p)  (no padding)

    torch's formula: the window's sum of x^p, its p-th root; in ``ceil_mode`` a window cut by
    the border is scaled by the full kernel size, as torch's.  ``p = inf`` is the max pool of
    |x|, ``p = -inf`` its min pool.  Made of differentiable ops.  sign(a) relu(|a|) is a
    itself, with slope 1 -- but 0 where a = 0 (relu's), which keeps the root's infinite slope
    out: a window of zeros gets gradient 0, as torch's.  Here it is where(a != 0, a, 0)."""
    return checked_lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """1-D power-average pooling over (N, C, L) or (C, L): ``lp_pool2d`` along L."""
    return checked_lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)
