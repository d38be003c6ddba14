"""im2col and col2im: the array kernels of convolution and pooling.

``im2col`` copies every patch of the padded input that a kernel sees into one column of a
matrix ``cols`` (C*KH*KW rows, N*OH*OW columns); ``col2im`` is its adjoint: it adds every
column back onto the patch it came from.  Both loop only over the KH*KW kernel offsets,
moving a whole (N, C, OH, OW) block with one strided slice each (DeZero's scheme).  On a
GPU, where each copy is a kernel launch, each is one fused kernel (``kernels.fused``).
Arrays in, arrays out: no Tensor, no autograd.
"""
from ..core.backend import get_array_module, is_cpu
from . import fused
from .threads import parallel_for, workspace

NO_PADDING = ((0, 0), (0, 0))


def window_slice(i, j, out_size, stride, dilation):
    """Index of xpad[:, :, i*dh + oh*sh, j*dw + ow*sw] for all (oh, ow): the input pixels
    that kernel offset (i, j) meets, one per output position."""
    (oh, ow), (sh, sw), (dh, dw) = out_size, stride, dilation
    return (slice(None), slice(None),
            slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def channel_major(shape, dtype, xp, empty=None):
    """A new (N, C, H, W) array whose memory is in (C, N, H, W) order: the transposed view
    of a C-contiguous (C, N, H, W) array (see ``Conv2dFunction``).  ``empty`` makes that array
    (``xp.empty`` by default; a scratch buffer for temporaries)."""
    n, c, h, w = shape
    return (empty or xp.empty)((c, n, h, w), dtype=dtype).transpose(1, 0, 2, 3)


def padded_shape(shape, padding):
    (top, bottom), (left, right) = padding
    n, c, h, w = shape
    return n, c, h + top + bottom, w + left + right


def pad_into(out, x, padding, value, xp):
    """out = x padded with ``value``: the borders filled, the interior copied.  On a GPU
    the whole of ``out`` is filled first: two kernels instead of five."""
    (top, bottom), (left, right) = padding
    h, w = x.shape[2:]
    if is_cpu(xp):
        out[:, :, :top], out[:, :, top + h:] = value, value
        out[:, :, top:top + h, :left], out[:, :, top:top + h, left + w:] = value, value
    else:
        out.fill(value)
    out[:, :, top:top + h, left:left + w] = x


def im2col(x, kernel_size, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1), fill=0, out=None):
    """The patches of ``x`` (N, C, H, W) under every kernel position.

    Returns ``cols`` of shape (C, KH, KW, N, OH, OW) with

        cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw],

    ``xpad`` being ``x`` padded with ``fill`` by ``padding`` = ((top, bottom), (left, right)).
    Reshaped to (C*KH*KW, N*OH*OW) -- a free reshape, that is the memory order -- each
    column is one flattened patch.  One strided copy per kernel offset (i, j), the images
    split between threads (on a GPU: one kernel, ``fused.im2col``).
    ``out``: a C-contiguous array of that shape to fill (a scratch buffer), instead of a
    new one.
    """
    xp = get_array_module(x)
    n, c, h, w = padded = padded_shape(x.shape, padding)
    out_size = conv_output_size((h, w), kernel_size, stride, NO_PADDING, dilation)
    cols = xp.empty((c,) + kernel_size + (n,) + out_size, dtype=x.dtype) if out is None else out
    if not is_cpu(xp):                  # a GPU: one kernel, the padding included
        return fused.im2col(x, cols, stride, padding, dilation, fill)
    xpad = x
    if padding != NO_PADDING:
        xpad = channel_major(padded, x.dtype, xp, lambda *a, **k: workspace("im2col.pad", *a, xp=xp, **k))

    def fill_images(b):                 # the images b of the batch
        if xpad is not x:
            pad_into(xpad[b], x[b], padding, fill, xp)
        _copy_windows(cols[:, :, :, b], xpad[b], stride, dilation)
    parallel_for(fill_images, n, xp)
    return cols


def _copy_windows(cols, xpad, stride, dilation):
    """cols[:, i, j] = the pixels of ``xpad`` that kernel offset (i, j) meets (im2col's loop)."""
    _, kh, kw, _, oh, ow = cols.shape
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[window_slice(i, j, (oh, ow), stride, dilation)].transpose(1, 0, 2, 3)


def add_windows(gxpad, cols, stride, dilation):
    """gxpad[window of offset (i, j)] += cols[:, i, j] for every (i, j) (col2im's loop; on a
    GPU one kernel)."""
    if not is_cpu(get_array_module(gxpad)):
        return fused.add_windows(gxpad, cols, stride, dilation)
    _, kh, kw, _, oh, ow = cols.shape
    for i in range(kh):
        for j in range(kw):
            gxpad[window_slice(i, j, (oh, ow), stride, dilation)] += cols[:, i, j].transpose(1, 0, 2, 3)


def col2im(cols, input_shape, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1)):
    """The adjoint of ``im2col``: ``gx`` of ``input_shape`` (N, C, H, W) with every entry
    of ``cols`` (C, KH, KW, N, OH, OW) added onto the input pixel it was copied from,

        gxpad[n, c, oh*sh + i*dh, ow*sw + j*dw] += cols[c, i, j, n, oh, ow],

    then the padding cut off.  Within one kernel offset (i, j) the target pixels are
    distinct, so each offset is one strided ``+=``; overlaps between windows add up
    across offsets.  Threads take their share of the images.
    """
    xp = get_array_module(cols)
    gx = channel_major(padded_shape(input_shape, padding), cols.dtype, xp, xp.zeros)
    parallel_for(lambda b: add_windows(gx[b], cols[:, :, :, b], stride, dilation), input_shape[0], xp)
    return unpad(gx, input_shape, padding)


def unpad(xpad, shape, padding):
    (top, _), (left, _) = padding
    return xpad[:, :, top:top + shape[2], left:left + shape[3]]


def conv_output_size(input_size, kernel_size, stride, padding, dilation):
    """(OH, OW) of a convolution; ``padding`` as ((top, bottom), (left, right))."""
    return tuple((n + a + b - d * (k - 1) - 1) // s + 1
                 for n, k, s, (a, b), d in zip(input_size, kernel_size, stride, padding, dilation))


def scratch_im2col(x, kernel_size, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1), fill=0):
    """im2col(x) in this thread's scratch buffer: for columns that are used up before the
    next im2col (see ``threads.workspace``)."""
    n, c = x.shape[:2]
    shape = (c,) + kernel_size + (n,) + conv_output_size(x.shape[2:], kernel_size, stride, padding, dilation)
    out = workspace("im2col", shape, x.dtype, get_array_module(x))
    return im2col(x, kernel_size, stride, padding, dilation, fill, out=out)
