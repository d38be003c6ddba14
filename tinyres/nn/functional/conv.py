"""Convolution: ``conv2d`` and ``conv1d`` as in ``torch.nn.functional``, by im2col.

Notation (as in docs/conv.md): input ``x`` (N, C, H, W), weight ``w`` (O, C/G, KH, KW)
for G groups, output ``y`` (N, O, OH, OW) with, per spatial axis,

    OH = (H + pad_top + pad_bottom - dilation * (KH - 1) - 1) // stride + 1.

``im2col`` copies every patch of the padded input that the kernel sees into one column
of a matrix ``cols`` (C*KH*KW rows, N*OH*OW columns), so the convolution becomes one
matrix product ``y = w (O, C*KH*KW) @ cols``.  ``col2im`` is its adjoint: it adds every
column back onto the patch it came from.  Both loop only over the KH*KW kernel offsets,
moving a whole (N, C, OH, OW) block with one strided slice each (DeZero's scheme); the
pooling ops share them.  ``conv1d`` runs on the 2-D code with H = 1.
"""
import numbers

from ...autograd import Function
from ...backend import get_array_module
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d"]

NO_PADDING = ((0, 0), (0, 0))


# ---------------------------------------------------------------------- im2col / col2im

def _window_slice(i, j, out_size, stride, dilation):
    """Index of xpad[:, :, i*dh + oh*sh, j*dw + ow*sw] for all (oh, ow): the input pixels
    that kernel offset (i, j) meets, one per output position."""
    (oh, ow), (sh, sw), (dh, dw) = out_size, stride, dilation
    return (slice(None), slice(None),
            slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def pad2d(x, padding, value=0):
    """``x`` (N, C, H, W) padded with ``value``: padding = ((top, bottom), (left, right))."""
    if padding == NO_PADDING:
        return x
    (top, bottom), (left, right) = padding
    n, c, h, w = x.shape
    out = get_array_module(x).full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def im2col(x, kernel_size, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1), fill=0):
    """The patches of ``x`` (N, C, H, W) under every kernel position.

    Returns ``cols`` of shape (C, KH, KW, N, OH, OW) with

        cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw],

    ``xpad`` being ``x`` padded with ``fill`` by ``padding`` = ((top, bottom), (left, right)).
    Reshaped to (C*KH*KW, N*OH*OW) -- a free reshape, that is the memory order -- each
    column is one flattened patch.  One strided copy per kernel offset (i, j).
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    x = pad2d(x, padding, fill)
    n, c, h, w = x.shape
    out_size = ((h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1)
    cols = get_array_module(x).empty((c, kh, kw, n) + out_size, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = x[_window_slice(i, j, out_size, stride, dilation)].transpose(1, 0, 2, 3)
    return cols


def col2im(cols, input_shape, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1)):
    """The adjoint of ``im2col``: ``gx`` of ``input_shape`` (N, C, H, W) with every entry
    of ``cols`` (C, KH, KW, N, OH, OW) added onto the input pixel it was copied from,

        gxpad[n, c, oh*sh + i*dh, ow*sw + j*dw] += cols[c, i, j, n, oh, ow],

    then the padding cut off.  Within one kernel offset (i, j) the target pixels are
    distinct, so each offset is one strided ``+=``; overlaps between windows add up
    across offsets.
    """
    _, kh, kw, _, oh, ow = cols.shape
    (top, bottom), (left, right) = padding
    n, c, h, w = input_shape
    gx = get_array_module(cols).zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[_window_slice(i, j, (oh, ow), stride, dilation)] += cols[:, i, j].transpose(1, 0, 2, 3)
    return gx[:, :, top:top + h, left:left + w]


# ---------------------------------------------------------------------- the op

class Conv2d(Function):
    """y = w * x + b (cross-correlation), G groups, by im2col.

    With cols = im2col(x) viewed as (G, K, N*OH*OW), K = C/G * KH * KW, and w viewed as
    (G, O/G, K), each group g is one matrix product (for G = 1, one big GEMM):

        y[g]     = w[g] @ cols[g]                       (O/G, N*OH*OW), then NCHW + b
        gw[g]    = gy[g] @ cols[g]^T                    gy viewed as (G, O/G, N*OH*OW)
        gcols[g] = w[g]^T @ gy[g],   gx = col2im(gcols)
        gb       = sum of gy over n, oh, ow

    Backward keeps cols and w.
    """

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        xp = get_array_module(x)
        out_channels, _, kh, kw = weight.shape
        cols = im2col(x, (kh, kw), stride, padding, dilation)
        _, _, _, n, oh, ow = cols.shape
        self.cols, self.weight, self.has_bias = cols.reshape(groups, -1, n * oh * ow), weight, bias is not None
        self.input_shape, self.stride, self.padding, self.dilation = x.shape, stride, padding, dilation
        y = xp.matmul(weight.reshape(groups, out_channels // groups, -1), self.cols)
        y = xp.ascontiguousarray(y.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3))
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        groups, k, _ = self.cols.shape
        out_channels, in_per_group, kh, kw = self.weight.shape
        n, _, oh, ow = gy.shape
        gy_cols = gy.transpose(1, 0, 2, 3).reshape(groups, out_channels // groups, -1)
        gw = xp.matmul(gy_cols, self.cols.transpose(0, 2, 1)).reshape(self.weight.shape)
        w_t = self.weight.reshape(groups, out_channels // groups, k).transpose(0, 2, 1)
        gcols = xp.matmul(w_t, gy_cols).reshape(groups * in_per_group, kh, kw, n, oh, ow)
        gx = col2im(gcols, self.input_shape, self.stride, self.padding, self.dilation)
        gb = gy.sum(axis=(0, 2, 3)) if self.has_bias else None
        return gx, gw, gb


# ---------------------------------------------------------------------- arguments

def ntuple(value, n, name, op):
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and \
            all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def check_input(op, input, spatial_dims):
    """``input`` must be a floating Tensor with ``spatial_dims`` spatial axes, batched or not."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    if input.ndim not in (spatial_dims + 1, spatial_dims + 2):
        raise RuntimeError(f"{op}: expected {spatial_dims + 1}-D (unbatched) or {spatial_dims + 2}-D "
                           f"(batched) input, got input of shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")


def as_nchw(x, spatial_dims):
    """``x`` viewed as (N, C, H, W) -- an unbatched input gets N = 1, a 1-D one H = 1 --
    and the function that maps a result (or indices) back to the caller's layout."""
    batched = x.ndim == spatial_dims + 2
    if spatial_dims == 1:
        x = x.unsqueeze(-2)
    if not batched:
        x = x.unsqueeze(0)

    def restore(y):
        if not batched:
            y = y.squeeze(0)
        return y.squeeze(-2) if spatial_dims == 1 else y
    return x, restore


def _check_params(op, input, weight, bias, groups, spatial_dims):
    """Types, ranks, dtypes and channel counts of a convolution's operands."""
    check_input(op, input, spatial_dims)
    for name, t in (("weight", weight), ("bias", bias)):
        if (t is not None or name == "weight") and not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(t).__name__}")
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{op}: expected input and {name} of one dtype, got input {input.dtype} "
                               f"and {name} {t.dtype}")
    if weight.ndim != spatial_dims + 2:
        kernel = "kH, kW" if spatial_dims == 2 else "kL"
        raise RuntimeError(f"{op}: expected {spatial_dims + 2}-D weight (out_channels, in_channels/groups, "
                           f"{kernel}), got weight of shape {weight.shape}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise RuntimeError(f"{op}: expected groups to be a positive int, got {groups!r}")
    out_channels, in_per_group = weight.shape[:2]
    if out_channels % groups:
        raise RuntimeError(f"{op}: groups={groups} must divide out_channels, got weight of shape {weight.shape}")
    channels = input.shape[-spatial_dims - 1]
    if channels != in_per_group * groups:
        raise RuntimeError(f"{op}: expected input with {in_per_group * groups} channels (weight "
                           f"{weight.shape} with groups={groups}), got input of shape {input.shape}")
    if bias is not None and bias.shape != (out_channels,):
        raise RuntimeError(f"{op}: expected bias of shape ({out_channels},) (one per output channel), "
                           f"got bias of shape {bias.shape}")


def _conv_padding(op, padding, kernel_size, stride, dilation, spatial_dims):
    """``padding`` (int, tuple, 'same' or 'valid') as one (before, after) pair per axis.
    'same' pads dilation*(k-1) in total, the odd pixel after (on the right), as torch."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * spatial_dims
        if padding != "same":
            raise RuntimeError(f"{op}: padding must be 'same', 'valid', an int or a tuple of "
                               f"{spatial_dims} ints, got {padding!r}")
        if any(s != 1 for s in stride):
            raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions, "
                               f"got stride={stride}")
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    padding = ntuple(padding, spatial_dims, "padding", op)
    if any(p < 0 for p in padding):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={padding}")
    return tuple((p, p) for p in padding)


def _conv(op, spatial_dims, input, weight, bias, stride, padding, dilation, groups):
    """Check and normalize a convolution's arguments, then run ``Conv2d`` on the NCHW view."""
    _check_params(op, input, weight, bias, groups, spatial_dims)
    stride = ntuple(stride, spatial_dims, "stride", op)
    dilation = ntuple(dilation, spatial_dims, "dilation", op)
    for name, value in (("stride", stride), ("dilation", dilation)):
        if any(v < 1 for v in value):
            raise RuntimeError(f"{op}: non-positive {name} is not supported, got {name}={value}")
    kernel_size = weight.shape[2:]
    padding = _conv_padding(op, padding, kernel_size, stride, dilation, spatial_dims)
    padded = tuple(n + a + b for n, (a, b) in zip(input.shape[-spatial_dims:], padding))
    dilated = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))
    if any(k > n for k, n in zip(dilated, padded)):
        raise RuntimeError(f"{op}: kernel size {kernel_size} (dilated: {dilated}) can't be greater "
                           f"than the padded input size {padded} (input of shape {input.shape})")
    x, restore = as_nchw(input, spatial_dims)
    if spatial_dims == 1:
        weight = weight.unsqueeze(-2)
        stride, dilation, padding = (1,) + stride, (1,) + dilation, ((0, 0),) + padding
    return restore(Conv2d.apply(x, weight, bias, stride=stride, padding=padding,
                                dilation=dilation, groups=int(groups)))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) as ``torch.nn.functional.conv2d``.

    ``input`` (N, C, H, W) or unbatched (C, H, W); ``weight`` (O, C/groups, KH, KW);
    ``bias`` (O,) or None.  ``stride``, ``padding``, ``dilation``: an int or a pair;
    ``padding`` also 'valid' (none) or 'same' (output size = input size, stride 1 only).
    ``groups`` splits the channels into independent convolutions; groups = C with
    O = k*C is a depthwise convolution.
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution as ``torch.nn.functional.conv1d``: ``input`` (N, C, L) or (C, L),
    ``weight`` (O, C/groups, K); the other arguments as ``conv2d`` with ints or 1-tuples.
    Runs on ``conv2d``'s code with H = 1."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)
