"""Convolution: ``conv2d``, ``conv1d`` and ``conv_transpose2d`` as in ``torch.nn.functional``, by im2col.

Notation (as in docs/conv.md): input ``x`` (N, C, H, W), weight ``w`` (O, C/G, KH, KW)
for G groups, output ``y`` (N, O, OH, OW) with, per spatial axis,

    OH = (H + pad_top + pad_bottom - dilation * (KH - 1) - 1) // stride + 1.

``im2col`` copies every patch of the padded input that the kernel sees into one column
of a matrix ``cols`` (C*KH*KW rows, N*OH*OW columns), so the convolution becomes one
matrix product ``y = w (O, C*KH*KW) @ cols``.  ``col2im`` is its adjoint: it adds every
column back onto the patch it came from.  Both loop only over the KH*KW kernel offsets,
moving a whole (N, C, OH, OW) block with one strided slice each (DeZero's scheme); the
pooling ops share them.  On a GPU, where each copy is a kernel launch, im2col makes all of
them one copy from an ``as_strided`` view.  ``conv1d`` runs on the 2-D code with H = 1.
"""
import numbers

from ...core import backend
from ...core.backend import get_array_module, is_cpu
from ...core.engine import Function
from ...core.tensor import Tensor
from ...kernels.im2col import (NO_PADDING, add_windows, channel_major, col2im, conv_output_size,  # noqa: F401
                               im2col, padded_shape, scratch_im2col, unpad)  # (im2col, col2im: their old home)
from ...kernels.threads import get_num_threads, parallel_for, parallel_matmul
from .linear import pad

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


# ---------------------------------------------------------------------- the op

CHUNK_BYTES = 2 ** 23     # the im2col columns of one chunk of images (measured: 2**21..2**25 all within 10%)


def _columns(x, kernel_size, stride, padding, dilation):
    """im2col(x) as (C*KH*KW, N*OH*OW), in this thread's scratch buffer -- or, for a 1x1
    kernel with no stride or padding, x itself: its channel-major memory is that matrix."""
    c = x.shape[1]
    if kernel_size == (1, 1) and stride == (1, 1) and padding == NO_PADDING:
        return x.transpose(1, 0, 2, 3).reshape(c, -1)      # free when x is channel-major
    return scratch_im2col(x, kernel_size, stride, padding, dilation).reshape(c * kernel_size[0] * kernel_size[1], -1)


def _few_pixels(pixels, out_channels):
    """True for a deep layer, where a thread's share of the output pixels would be fewer
    than the output channels: splitting the batch between threads would then cost more
    (a whole partial weight gradient per thread, thin products) than splitting the rows of
    each product over the whole batch (``kernels.threads.parallel_matmul``)."""
    return pixels < get_num_threads() * out_channels


def _over_images(fn, n, few_pixels, xp):
    """[fn(images)...] over the batch: shared between the threads, or at once for a deep layer."""
    return [fn(slice(0, n))] if few_pixels else parallel_for(fn, n, xp)


def _chunks(images, column_bytes, xp, few_pixels=False):
    """The slice ``images`` of the batch cut into chunks whose im2col columns take about
    CHUNK_BYTES (``column_bytes`` per image).  On a GPU or for a deep layer, one chunk."""
    if few_pixels or not is_cpu(xp):
        return [images]
    step = max(1, CHUNK_BYTES // column_bytes)
    return [slice(i, min(i + step, images.stop)) for i in range(images.start, images.stop, step)]


def conv2d_array(x, weight, stride=(1, 1), padding=NO_PADDING, dilation=(1, 1), groups=1):
    """The convolution of the array ``x`` (N, C, H, W) with ``weight`` (O, C/G, KH, KW),
    G = ``groups``: y (N, O, OH, OW), its memory channel-major (see ``Conv2dFunction``).

    With cols = im2col(x) viewed as (G, K, N*OH*OW), K = C/G * KH * KW, and the weight as
    (G, O/G, K), each group is one matrix product, y[g] = w[g] @ cols[g], of shape
    (O/G, N*OH*OW): y in (O, N, OH, OW) order.  It is done a chunk of images at a time,
    the chunks shared between the CPU threads.
    """
    xp = get_array_module(x)
    out_channels, _, kh, kw = weight.shape
    n, c = x.shape[:2]
    oh, ow = conv_output_size(x.shape[2:], (kh, kw), stride, padding, dilation)
    w = weight.reshape(groups, out_channels // groups, -1)
    y = xp.empty((out_channels, n, oh, ow), dtype=x.dtype)
    few = _few_pixels(n * oh * ow, out_channels)
    matmul = parallel_matmul if few else backend.matmul

    def convolve(images):
        for b in _chunks(images, c * kh * kw * oh * ow * x.itemsize, xp, few):
            cols = _columns(x[b], (kh, kw), stride, padding, dilation).reshape(groups, w.shape[2], -1)
            y[:, b] = matmul(w, cols).reshape(out_channels, -1, oh, ow)
    _over_images(convolve, n, few, xp)
    return y.transpose(1, 0, 2, 3)


def transposed_weight(weight, groups):
    """The kernel of the convolution that maps gy back to gx (stride 1): flipped in space,
    input and output channels swapped within each group, (C, O/G, KH, KW)."""
    out_channels, in_per_group, kh, kw = weight.shape
    w = weight.reshape(groups, out_channels // groups, in_per_group, kh, kw)[:, :, :, ::-1, ::-1]
    return w.transpose(0, 2, 1, 3, 4).reshape(groups * in_per_group, out_channels // groups, kh, kw)


def conv2d_grad_arrays(gy, weight, x, x_shape, weight_shape, stride, padding, dilation, groups,
                       need_gx=True, need_gw=True):
    """The array kernel of the convolution's backward: (gx, gw) from the upstream gradient
    ``gy``, either one None when not wanted.  ``gx`` needs ``weight`` (not x: only
    ``x_shape``), ``gw`` needs ``x`` (not the weight: only ``weight_shape``).  When both
    are wanted they share one pass over the chunks of images (see ``Conv2dFunction``)."""
    xp = get_array_module(gy)
    out_channels, in_per_group, kh, kw = weight_shape
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    flipped_padding = tuple((d * (k - 1) - a, d * (k - 1) - b)
                            for k, d, (a, b) in zip((kh, kw), dilation, padding))
    by_convolution = stride == (1, 1) and min(min(p) for p in flipped_padding) >= 0
    if need_gx and by_convolution:
        w_t = transposed_weight(weight, groups).reshape(groups, in_per_group, -1)
        gx = xp.empty((c, n, h, w), dtype=gy.dtype)
    elif need_gx:
        w_t = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)
        gxpad = channel_major(padded_shape(x_shape, padding), gy.dtype, xp, xp.zeros)
    gy_cn = gy.transpose(1, 0, 2, 3)
    few = _few_pixels(n * oh * ow, out_channels)
    matmul = parallel_matmul if few else backend.matmul

    def grad(images):                # these images' part of gw (returned) and of gx (written)
        gw = 0
        for b in _chunks(images, c * kh * kw * oh * ow * gy.itemsize, xp, few):
            g = gy_cn[:, b].reshape(groups, out_channels // groups, -1)
            if need_gw:
                cols = _columns(x[b], (kh, kw), stride, padding, dilation).reshape(groups, -1, g.shape[2])
                if few:                          # gw (O, K) directly: transposing a large one is slow
                    gw = gw + matmul(g, cols.transpose(0, 2, 1))
                else:                            # gw^T (K, O): OpenBLAS is faster this way round
                    gw = gw + matmul(cols, g.transpose(0, 2, 1)).transpose(0, 2, 1)
                del cols
            # cols (this thread's scratch buffer "im2col") is used up and no longer referenced:
            # gx may take the same buffer for its own im2col.  Every array returned from here
            # is freshly allocated, so a later convolution (say, one run by a backward of this
            # gradient's graph) cannot overwrite it.
            if need_gx and by_convolution:
                gcols = _columns(gy[b], (kh, kw), (1, 1), flipped_padding, dilation)
                gx[:, b] = matmul(w_t, gcols.reshape(groups, w_t.shape[2], -1)).reshape(c, -1, h, w)
            elif need_gx:
                gcols = matmul(w_t, g).reshape(c, kh, kw, -1, oh, ow)
                add_windows(gxpad[b], gcols, stride, dilation)
        return gw
    gws = _over_images(grad, n, few, xp)
    gw = xp.ascontiguousarray(sum(gws)).reshape(weight_shape) if need_gw else None
    if not need_gx:
        return None, gw
    gx = gx.transpose(1, 0, 2, 3) if by_convolution else unpad(gxpad, x_shape, padding)
    return gx, gw


class Conv2dFunction(Function):
    """y = w * x + b (cross-correlation), G groups, by im2col and one GEMM per group.

    Layout: tensors are (N, C, H, W) to the caller, but the arrays a convolution returns
    are *channel-major* in memory -- the (N, C, H, W) view of a (C, N, H, W) array.  The
    GEMM w (O, K) @ cols (K, N*OH*OW) yields exactly that order, so no copy is needed to
    hand y back; batch norm and ReLU keep the layout (they follow their input's memory
    order), and the next convolution's im2col reads its input in memory order.

    With cols = im2col(x) viewed as (G, K, N*OH*OW) and gy as (G, O/G, N*OH*OW):

        y[g]  = w[g] @ cols[g]                              (``conv2d_array``), then + b
        gw[g] = gy[g] @ cols[g]^T                           (``Conv2dGradWeight``)
        gx    = conv^T(gy, w)                               (``Conv2dGradInput``):
                for stride 1 the convolution of gy, padded by d*(K-1) - p on each side,
                with ``transposed_weight(w)`` -- a transposed convolution is a convolution,
                so gx comes out of one more im2col and GEMM, with no col2im;
                otherwise col2im(w[g]^T @ gy[g])
        gb    = sum of gy over n, oh, ow                    (a tensor op)

    Every product is done a chunk of images at a time (about CHUNK_BYTES of columns, in a
    scratch buffer), the chunks shared between threads; gw is the sum of the chunks'
    products.  A deep layer, with fewer pixels per thread than output channels, runs as
    one chunk whose products split their rows between the threads instead.  Backward
    keeps x and w and computes cols again: keeping them would hold KH*KW times the
    input's memory per layer until the backward pass.
    ``kernels/reference.py``'s ``conv2d_loop`` is the plain version this one must equal.

    Second derivatives: y is bilinear in (x, w), so gx = conv^T(gy, w) is bilinear in
    (gy, w) and gw = gradw(x, gy) in (x, gy); both are Functions whose backward is again
    a convolution, a transposed convolution or a weight gradient (see their docstrings),
    so the pair is closed under differentiation, to any order.  The design choice: backward
    computes gx and gw together with the one fused array kernel (``conv2d_grad_arrays``,
    one pass over the chunks that shares x's columns and the scratch buffers -- the
    first-order training step is as fast as before), then hands each array to its
    Function as a precomputed ``result`` so that it enters the graph with a known
    backward.  Without ``create_graph`` those Functions build no node and cost a call.
    """

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        self.save_for_backward(x, weight)
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        y = conv2d_array(x, weight, stride, padding, dilation, groups)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        x, weight = self.saved_tensors
        need_gx, need_gw, need_gb = (self.next[i] is not None if i < len(self.next) else False for i in range(3))
        gx, gw = conv2d_grad_arrays(gy.array, weight.array, x.array, x.shape, weight.shape, need_gx=need_gx,
                                    need_gw=need_gw, **self.geometry)
        if need_gx:
            gx = Conv2dGradInput.apply(gy, weight, x_shape=x.shape, result=gx, **self.geometry)
        if need_gw:
            gw = Conv2dGradWeight.apply(x, gy, weight_shape=weight.shape, result=gw, **self.geometry)
        gb = gy.sum(dim=(0, 2, 3)) if need_gb else None
        return gx, gw, gb


class Conv2dGradInput(Function):
    """gx = conv^T(gy, w), the input gradient of ``Conv2dFunction`` (a transposed
    convolution), as an op of its own: linear in gy and in w.

    Since <ggx, conv^T(gy, w)> = <conv(ggx, w), gy>, its backward for an upstream ``ggx``
    (the shape of x) is

        g_gy = conv(ggx, w)            (``Conv2dFunction``)
        g_w  = gradw(ggx, gy)          (``Conv2dGradWeight``: the weight gradient of input ggx)

    ``result``: gx when the caller already has it (``Conv2dFunction.backward``'s fused kernel).
    """

    def forward(self, gy, weight, x_shape, stride, padding, dilation, groups, result=None):
        self.save_for_backward(gy, weight)
        self.x_shape = x_shape
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        if result is None:
            result = conv2d_grad_arrays(gy, weight, None, x_shape, weight.shape, stride, padding, dilation,
                                        groups, need_gw=False)[0]
        return result

    def backward(self, ggx):
        gy, weight = self.saved_tensors
        g_gy = g_w = None
        if self.next[0] is not None:
            g_gy = Conv2dFunction.apply(ggx, weight, None, **self.geometry)
        if self.next[1] is not None:
            g_w = Conv2dGradWeight.apply(ggx, gy, weight_shape=weight.shape, **self.geometry)
        return g_gy, g_w


class Conv2dGradWeight(Function):
    """gw = gradw(x, gy), the weight gradient of ``Conv2dFunction``:  gw[g] = gy[g] @ im2col(x)[g]^T,
    as an op of its own: linear in x and in gy.

    Since <ggw, gradw(x, gy)> = <conv(x, ggw), gy> = <x, conv^T(gy, ggw)>, its backward for
    an upstream ``ggw`` (the shape of w) is

        g_x  = conv^T(gy, ggw)         (``Conv2dGradInput``)
        g_gy = conv(x, ggw)            (``Conv2dFunction``)

    ``result``: gw when the caller already has it (``Conv2dFunction.backward``'s fused kernel).
    """

    def forward(self, x, gy, weight_shape, stride, padding, dilation, groups, result=None):
        self.save_for_backward(x, gy)
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        if result is None:
            result = conv2d_grad_arrays(gy, None, x, x.shape, weight_shape, stride, padding, dilation, groups,
                                        need_gx=False)[1]
        return result

    def backward(self, ggw):
        x, gy = self.saved_tensors
        g_x = g_gy = None
        if self.next[0] is not None:
            g_x = Conv2dGradInput.apply(gy, ggw, x_shape=x.shape, **self.geometry)
        if self.next[1] is not None:
            g_gy = Conv2dFunction.apply(x, ggw, None, **self.geometry)
        return g_x, g_gy


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


def _check_params(op, input, weight, bias, groups, spatial_dims, transposed=False):
    """Types, ranks, dtypes and channel counts of a convolution's operands.  A transposed
    convolution's weight is (in_channels, out_channels / groups, *kernel_size)."""
    check_input(op, input, spatial_dims)
    for name, t in (("weight", weight), ("bias", bias)):
        if (t is not None or name == "weight") and not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(t).__name__}")
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{op}: expected input and {name} of one dtype, got input {input.dtype} "
                               f"and {name} {t.dtype}")
    first, second = ("in_channels", "out_channels") if transposed else ("out_channels", "in_channels")
    if weight.ndim != spatial_dims + 2:
        kernel = "kH, kW" if spatial_dims == 2 else "kL"
        raise RuntimeError(f"{op}: expected {spatial_dims + 2}-D weight ({first}, {second}/groups, "
                           f"{kernel}), got weight of shape {weight.shape}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise RuntimeError(f"{op}: expected groups to be a positive int, got {groups!r}")
    if weight.shape[0] % groups:
        raise RuntimeError(f"{op}: groups={groups} must divide {first}, got weight of shape {weight.shape}")
    in_channels = weight.shape[0] if transposed else weight.shape[1] * groups
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    channels = input.shape[-spatial_dims - 1]
    if channels != in_channels:
        raise RuntimeError(f"{op}: expected input with {in_channels} channels, got input of shape "
                           f"{input.shape} (weight {weight.shape} with groups={groups})")
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


def convolution(op, spatial_dims, input, weight, bias, stride, padding, dilation, groups):
    """Check and normalize a convolution's arguments, then run ``Conv2dFunction`` on the NCHW view.
    ``op`` names the caller in error messages: ``conv2d``, or a layer with its settings
    (``nn.Conv2d`` calls this directly, so its input is checked once, under its own name)."""
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
    return restore(Conv2dFunction.apply(x, weight, bias, stride=stride, padding=padding,
                                dilation=dilation, groups=int(groups)))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) as ``torch.nn.functional.conv2d``.

    ``input`` (N, C, H, W) or unbatched (C, H, W); ``weight`` (O, C/groups, KH, KW);
    ``bias`` (O,) or None.  ``stride``, ``padding``, ``dilation``: an int or a pair;
    ``padding`` also 'valid' (none) or 'same' (output size = input size, stride 1 only).
    ``groups`` splits the channels into independent convolutions; groups = C with
    O = k*C is a depthwise convolution.
    """
    return convolution("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution as ``torch.nn.functional.conv1d``: ``input`` (N, C, L) or (C, L),
    ``weight`` (O, C/groups, K); the other arguments as ``conv2d`` with ints or 1-tuples.
    Runs on ``conv2d``'s code with H = 1."""
    return convolution("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------------- transposed convolution

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution") as ``torch.nn.functional.conv_transpose2d``.

    ``input`` (N, C_in, H, W) or unbatched (C_in, H, W); ``weight`` (C_in, C_out/groups, KH, KW);
    ``bias`` (C_out,) or None.  Per spatial axis the output is

        OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1,

    ``output_padding`` (smaller than stride or dilation) adding rows at the bottom and right
    only, to pick among the sizes a strided convolution maps to the same H.  It is the input
    gradient of ``conv2d`` with this weight and these settings (``Conv2dGradInput``), so it
    runs on the convolution backward's kernel (col2im; for stride 1 a convolution), and its
    gradients are a convolution (input) and conv2d's weight gradient (weight).
    """
    return transposed_convolution("conv_transpose2d", input, weight, bias, stride, padding, output_padding,
                                  groups, dilation)


def transposed_convolution(op, input, weight, bias, stride, padding, output_padding, groups, dilation):
    """Check and normalize a transposed convolution's arguments, then run it; ``op`` names the
    caller in the errors (``nn.ConvTranspose2d`` names itself and its settings).

    The output_padding rows come out of the convolution's geometry: conv2d with padding
    (p, p - op) on each axis maps an input of OH rows to exactly H, so its input gradient
    has OH rows.  Where op > p that bottom padding would be negative; then the last op - p
    rows, which no input pixel reaches, are zeros padded on afterwards."""
    _check_params(op, input, weight, bias, groups, 2, transposed=True)
    stride, padding, output_padding, dilation = (ntuple(v, 2, name, op) for v, name in (
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"), (dilation, "dilation")))
    for name, value in (("stride", stride), ("dilation", dilation)):
        if any(v < 1 for v in value):
            raise RuntimeError(f"{op}: non-positive {name} is not supported, got {name}={value}")
    if any(v < 0 for v in padding + output_padding):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={padding}, "
                           f"output_padding={output_padding}")
    if any(o >= max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"{op}: output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    x, restore = as_nchw(input, 2)
    kernel_size = weight.shape[2:]
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1
                for n, s, p, d, k, o in zip(x.shape[2:], stride, padding, dilation, kernel_size, output_padding))
    if any(n < 1 for n in out):
        raise RuntimeError(f"{op}: the output size would be {out} for input of shape {input.shape}, "
                           f"weight {weight.shape}, stride={stride}, padding={padding}, dilation={dilation}: "
                           "too small")
    unreached = tuple(max(o - p, 0) for o, p in zip(output_padding, padding))
    pads = tuple((p, p - o + u) for p, o, u in zip(padding, output_padding, unreached))
    shape = (x.shape[0], weight.shape[1] * groups) + tuple(n - u for n, u in zip(out, unreached))
    y = Conv2dGradInput.apply(x, weight, x_shape=shape, stride=stride, padding=pads, dilation=dilation,
                              groups=int(groups))
    if any(unreached):
        y = pad(y, (0, unreached[1], 0, unreached[0]))
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return restore(y)
