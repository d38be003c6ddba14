"""``unfold`` and ``fold``: the im2col matrix and its adjoint, as ``torch.nn.functional``'s.

With input x (N, C, H, W), kernel (KH, KW), dilation (dh, dw), padding (ph, pw) and stride
(sh, sw), xpad is x with ph zero rows above and below and pw zero columns left and right, and
each axis has

    OH = (H + 2 ph - dh (KH - 1) - 1) // sh + 1    blocks (OW likewise), L = OH * OW.

``unfold`` copies every block into one column (torch's layout: channel first, then the
kernel offsets, then the blocks row by row):

    cols[n, (c KH + i) KW + j, oh OW + ow] = xpad[n, c, oh sh + i dh, ow sw + j dw]

which is the convolution's ``im2col`` (``kernels/im2col.py``) with its axes moved
((C, KH, KW, N, OH, OW) to (N, C KH KW, OH OW)).  ``fold`` is its adjoint, ``col2im``: it
adds every column back onto the block it came from, summing where blocks overlap, and cuts
the padding off.  Both are linear, and each is the other's adjoint,

    <unfold(x), g> = <x, fold(g)>,

so each one's backward is the other (and so is every derivative after it).
"""
import numbers

from ...core.backend import get_array_module
from ...core.engine import Function
from ...core.tensor import Tensor
from ...kernels.im2col import col2im, conv_output_size, im2col

__all__ = ["fold", "unfold"]


class UnfoldFunction(Function):
    """cols = unfold(x): (N, C, H, W) -> (N, C KH KW, L), the im2col matrix (see the module).
    gx = fold(gcols) (``FoldFunction``): each pixel collects the gradients of every column
    entry copied from it."""

    def forward(self, x, kernel_size, dilation, padding, stride):
        self.geometry = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        self.output_size = x.shape[2:]
        n, c = x.shape[:2]
        pads = tuple((p, p) for p in padding)
        cols = im2col(x, kernel_size, stride, pads, dilation)                  # (C, KH, KW, N, OH, OW)
        return cols.transpose(3, 0, 1, 2, 4, 5).reshape(n, c * kernel_size[0] * kernel_size[1],
                                                        cols.shape[4] * cols.shape[5])

    def backward(self, gcols):
        return FoldFunction.apply(gcols, self.output_size, **self.geometry)


class FoldFunction(Function):
    """x = fold(cols): (N, C KH KW, L) -> (N, C, H, W) with H, W = ``output_size``:

        xpad[n, c, oh sh + i dh, ow sw + j dw] += cols[n, (c KH + i) KW + j, oh OW + ow],

    the padding cut off (``col2im``).  gcols = unfold(gx) (``UnfoldFunction``): each column
    entry reads the gradient of the pixel it was added onto."""

    def forward(self, cols, output_size, kernel_size, dilation, padding, stride):
        self.geometry = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        (kh, kw), n = kernel_size, cols.shape[0]
        c = cols.shape[1] // (kh * kw)
        pads = tuple((p, p) for p in padding)
        oh, ow = conv_output_size(output_size, kernel_size, stride, pads, dilation)
        blocks = cols.reshape(n, c, kh, kw, oh, ow).transpose(1, 2, 3, 0, 4, 5)
        blocks = get_array_module(cols).ascontiguousarray(blocks)     # the GPU's col2im kernel reads it flat
        return col2im(blocks, (n, c) + tuple(output_size), stride, pads, dilation)

    def backward(self, gx):
        return UnfoldFunction.apply(gx, **self.geometry)


# ---------------------------------------------------------------------- arguments (torch's checks)

def _pair(value, name, op):
    """An int or a sequence of two ints as a pair (torch's ``_pair``, then im2col's length check)."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if is_int(value):
        return (int(value),) * 2
    if isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        if len(value) != 2:
            raise RuntimeError(f"{op}: It is expected {name} equals to 2, but got size {len(value)}")
        return tuple(int(v) for v in value)
    raise TypeError(f"{op}: {name} must be an int or a tuple of 2 ints, got {value!r}")


def _check_geometry(op, kernel_size, dilation, padding, stride, order):
    """The kernel, dilation, padding and stride checks of torch's im2col / col2im, in ``order``."""
    rules = {"kernel size": (kernel_size, "greater than zero", "kernel_height", "kernel_width", 1),
             "dilation": (dilation, "greater than zero", "dilation_height", "dilation_width", 1),
             "padding": (padding, "non-negative", "pad_height", "pad_width", 0),
             "stride": (stride, "greater than zero", "stride_height", "stride_width", 1)}
    for name in order:
        (h, w), should, h_name, w_name, low = rules[name]
        if h < low or w < low:
            raise RuntimeError(f"{op}: {name} should be {should}, but got {h_name}: {h} {w_name}: {w}")


def _check_tensor(op, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for {input.dtype} input (a floating point tensor is "
                                  "expected)")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """The sliding blocks of ``input`` (N, C, H, W) or unbatched (C, H, W), as the columns of
    (N, C KH KW, L) or (C KH KW, L): ``torch.nn.functional.unfold`` (see the module).
    ``kernel_size``, ``dilation``, ``padding``, ``stride``: an int or a pair."""
    op = "unfold"
    _check_tensor(op, input)
    kernel_size, dilation, padding, stride = (_pair(v, name, op) for v, name in (
        (kernel_size, "kernel_size"), (dilation, "dilation"), (padding, "padding"), (stride, "stride")))
    _check_geometry(op, kernel_size, dilation, padding, stride, ("kernel size", "dilation", "padding", "stride"))
    if input.ndim not in (3, 4) or 0 in input.shape[-3:]:
        raise RuntimeError(f"{op}: Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {list(input.shape)}")
    blocks = conv_output_size(input.shape[-2:], kernel_size, stride, tuple((p, p) for p in padding), dilation)
    if min(blocks) < 1:
        raise RuntimeError(f"{op}: Given input with spatial size {tuple(input.shape[-2:])}, kernel_size="
                           f"{kernel_size}, dilation={dilation}, padding={padding}, calculated shape of the array "
                           f"of sliding blocks as {blocks}, but its components must be at least one.")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    cols = UnfoldFunction.apply(x, kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
    return cols if input.ndim == 4 else cols.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Columns (N, C KH KW, L) or unbatched (C KH KW, L) added back into an image (N, C, H, W)
    or (C, H, W), (H, W) = ``output_size``: ``torch.nn.functional.fold``, the adjoint of
    ``unfold`` (overlapping blocks add up)."""
    op = "fold"
    _check_tensor(op, input)
    output_size, kernel_size, dilation, padding, stride = (_pair(v, name, op) for v, name in (
        (output_size, "output_size"), (kernel_size, "kernel_size"), (dilation, "dilation"), (padding, "padding"),
        (stride, "stride")))
    _check_geometry(op, kernel_size, dilation, padding, stride, ("kernel size", "stride", "dilation", "padding"))
    if input.ndim not in (2, 3) or 0 in input.shape[-2:]:
        raise RuntimeError(f"{op}: Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and "
                           f"non-zero dimensions for input, but got: {list(input.shape)}")
    rows, length = input.shape[-2:]
    if rows % (kernel_size[0] * kernel_size[1]):
        raise RuntimeError(f"{op}: Expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={rows} and kernel_size={kernel_size}.")
    blocks = conv_output_size(output_size, kernel_size, stride, tuple((p, p) for p in padding), dilation)
    given = (f"Given output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, "
             f"padding={padding}, stride={stride}")
    if length != blocks[0] * blocks[1]:
        raise RuntimeError(f"{op}: {given}, expected size of input's dimension 2 to match the calculated number of "
                           f"sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                           f"input.size(2)={length}.")
    if min(blocks) < 1:
        raise RuntimeError(f"{op}: {given}, calculated shape of the array of sliding blocks as {blocks}, which is "
                           "too small (non-positive)")
    cols = input if input.ndim == 3 else input.unsqueeze(0)
    x = FoldFunction.apply(cols, output_size, kernel_size=kernel_size, dilation=dilation, padding=padding,
                           stride=stride)
    return x if input.ndim == 3 else x.squeeze(0)
