"""``linear``, ``bilinear``, ``flatten`` and ``pad``."""
import numbers

import numpy

from ...core import backend, ops
from ...core.engine import Function
from ...core.backend import get_array_module
from ...core.tensor import Tensor

__all__ = ["linear", "bilinear", "flatten", "pad"]

flatten = ops.flatten


class LinearFunction(Function):
    """y = x W^T + b over the last axis of x; any leading axes are a batch.

    With x2 = x flattened to (M, in) and gy2 = gy flattened to (M, out):
    gx = gy2 W (reshaped back),   gW = gy2^T x2,   gb = sum of gy2 over the M rows.
    Keeps x for gW and W for gx, each only when that gradient is wanted (as torch: then an
    optimizer's step on W between two backwards is no error when x needs no gradient).  Backward is written in tensor ops (``@``, ``sum``), so it is
    differentiable: y is bilinear in (x, W), and with ggx, ggW the upstream gradients of
    gx and gW the second derivatives are  g_gy = ggx W^T + x ggW^T  (a linear of each),
    g_W = gy2^T ggx2,  g_x = gy2 ggW.
    """

    def forward(self, x, weight, bias):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        self.x_shape = x.shape
        y = backend.matmul(x.reshape(-1, x.shape[-1]), weight.T)
        if bias is not None:
            y = y + bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, gy):
        x, weight = self.saved_tensors
        need = [self.next[i] is not None for i in range(3)]
        gy2 = gy.reshape(-1, gy.shape[-1])
        gx = (gy2 @ weight).reshape(*self.x_shape) if need[0] else None
        gw = gy2.transpose(0, 1) @ x.reshape(-1, x.shape[-1]) if need[1] else None
        return gx, gw, gy2.sum(dim=0) if need[2] else None


def linear(input, weight, bias=None):
    """y = x W^T + b, as ``torch.nn.functional.linear``: input (*, in_features), weight
    (out_features, in_features), bias (out_features,) or None; output (*, out_features)."""
    return checked_linear("linear", input, weight, bias)


def checked_linear(op, input, weight, bias):
    """``linear`` after checking its operands, with ``op`` naming the caller in the errors:
    ``linear``, or a layer with its settings (``nn.Linear`` calls this, so its input is
    checked once, under its own name)."""
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if not (isinstance(t, Tensor) or (t is None and name == "bias")):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"{op}: expected input with {weight.shape[1]} features in the last dimension, "
                           f"got input of shape {input.shape} (weight of shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},) for weight of shape "
                         f"{weight.shape}, got {bias.shape}")
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: input, weight and bias must have one dtype, got "
                        f"{', '.join(str(t.dtype) for t in (input, weight, bias) if t is not None)}")
    return LinearFunction.apply(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """y = x1^T W x2 + b for each output feature, as ``torch.nn.functional.bilinear``:
    input1 (*, in1), input2 (*, in2) with the same leading dims, weight (out, in1, in2),
    bias (out,) or None; output (*, out):

        y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]

    Made of differentiable ops: with the rows of x1 and x2 flattened to (M, in1) and (M, in2),
    u = x1 @ W' (W' = W as (in1, out * in2)), then u as (M, out, in2) times x2 and summed
    over in2; so twice differentiable (y is bilinear in x1 and x2, and linear in W)."""
    return checked_bilinear("bilinear", input1, input2, weight, bias)


def checked_bilinear(op, input1, input2, weight, bias):
    """``bilinear`` after torch's checks, with ``op`` naming the caller in the errors
    (``nn.Bilinear`` names itself and its settings)."""
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight), ("bias", bias)):
        if not (isinstance(t, Tensor) or (t is None and name == "bias")):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 3:
        raise RuntimeError(f"{op}: weight must be three-dimensional (out, in1, in2), got shape {weight.shape}")
    if input1.ndim != input2.ndim or input1.ndim == 0:
        raise RuntimeError(f"{op}: input dimensions do not match: got {input1.ndim} and {input2.ndim}")
    for d, (a, b) in enumerate(zip(input1.shape[:-1], input2.shape[:-1])):
        if a != b:
            raise RuntimeError(f"{op}: input batch dimensions do not match at dim {d}: got {a} and {b}")
    out, in1, in2 = weight.shape
    for name, x, size in (("input1", input1, in1), ("input2", input2, in2)):
        if x.shape[-1] != size:
            raise RuntimeError(f"{op}: {name} size does not match weight size: got {x.shape[-1]} but expected {size}")
    if bias is not None and bias.shape != (out,):
        raise RuntimeError(f"{op}: bias size does not match weight size: got {bias.shape[-1] if bias.ndim else bias.shape} "
                           f"but expected {out}")
    dtypes = {t.dtype for t in (input1, input2, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: input1, input2, weight and bias must have one dtype, got "
                        f"{', '.join(str(t.dtype) for t in (input1, input2, weight, bias) if t is not None)}")
    batch = input1.shape[:-1]
    m = int(numpy.prod(batch))
    u = ops.reshape(input1, m, in1) @ ops.reshape(ops.permute(weight, 1, 0, 2), in1, out * in2)
    y = (ops.reshape(u, m, out, in2) * ops.reshape(input2, m, 1, in2)).sum(2)
    if bias is not None:
        y = y + bias
    return ops.reshape(y, *batch, out)


def _pad_slices(shape, pairs):
    """For each padded axis, the slice of x that survives and where it lands in y."""
    src, dst, out = [], [], []
    for n, (before, after) in zip(shape, pairs):
        size = n + before + after
        if size < 0:
            raise ValueError(f"pad: an axis of size {n} padded by ({before}, {after}) would have "
                             f"negative size {size}")
        src.append(slice(max(-before, 0), n - max(-after, 0)))
        dst.append(slice(max(before, 0), size - max(after, 0)))
        out.append(size)
    return tuple(src), tuple(dst), tuple(out)


class ConstantPad(Function):
    """y = ``value`` everywhere, with x copied into the middle: y[dst] = x[src].
    A negative pad crops, so src may be a part of x.   gx = 0, then gx[src] = gy[dst]."""

    def forward(self, x, pairs, value):
        xp = get_array_module(x)
        self.src, self.dst, out = _pad_slices(x.shape, pairs)
        self.x_shape = x.shape
        y = xp.full(out, value, dtype=x.dtype)
        y[self.dst] = x[self.src]
        return y

    def backward(self, gy):
        from ...core.ops import IndexPut     # gx = zeros with gx[src] = gy[dst]: linear in gy
        zero = Tensor(get_array_module(gy.array).zeros(self.x_shape, dtype=gy.dtype))
        return IndexPut.apply(zero, gy[self.dst], self.src)


_NON_CONSTANT = ("reflect", "replicate", "circular")


def _source_indices(mode, n, before, after):
    """For an axis of size n padded by (before, after): the index into x of each of the
    n + before + after outputs (host integers).  'reflect' mirrors about the edge samples
    (x[1] is the first pad), 'replicate' repeats them, 'circular' wraps around; a negative
    pad crops, as torch's kernels index (reflect, replicate) and as its circular pad crops
    first, then wraps the part kept."""
    j = numpy.arange(n + before + after)
    if mode == "circular":
        start, kept = max(-before, 0), n + min(before, 0) + min(after, 0)
        return start + (j - max(before, 0)) % kept
    if mode == "replicate":
        source = numpy.clip(j, before, n + before - 1)
    else:
        source = numpy.where(j < before, 2 * before - j, numpy.where(j < n + before, j, 2 * (n + before - 1) - j))
    return source - max(before, 0) + max(-before, 0)


def _check_non_constant(mode, input, pairs):
    """torch's rules for the padding modes that read the input: pads of the last 1, 2 or 3
    dims of an input with one or two dims more (a batch and channels, or channels only);
    reflect's pads shorter than their axis, circular's at most its length.  Where torch's
    circular pad would read memory it never wrote (a pad longer than what a crop leaves of
    the axis), this refuses instead."""
    k = len(pairs)
    if input.ndim not in (k + 1, k + 2) or k not in (1, 2, 3):
        raise NotImplementedError(
            f"pad: Padding size {2 * k} is not supported for {input.ndim}D input tensor (mode={mode!r}). Supported "
            "combinations for non-constant padding: 2D or 3D input: padding size = 2 (pads last dimension); "
            "3D or 4D input: padding size = 4 (pads last 2 dimensions); 4D or 5D input: padding size = 6 "
            "(pads last 3 dimensions)")
    for axis, (before, after) in zip(range(input.ndim - k, input.ndim), pairs):
        n, where = input.shape[axis], f"at dimension {axis} of input {list(input.shape)} (mode={mode!r})"
        out, kept = n + before + after, n + min(before, 0) + min(after, 0)     # kept: what a crop leaves
        if mode == "reflect" and (before >= n or after >= n):
            raise RuntimeError(f"pad: Padding size should be less than the corresponding input dimension, but got: "
                               f"padding ({before}, {after}) {where}")
        if mode == "circular" and (before > n or after > n or max(before, after) > max(kept, 0) and out > 0):
            raise RuntimeError(f"pad: Padding value causes wrapping around more than once: padding ({before}, "
                               f"{after}) {where}")
        if mode == "circular" and (out < 0 or min(before, after) < -n):
            raise RuntimeError(f"pad: Negative padding value is resulting in an empty dimension: padding ({before}, "
                               f"{after}) {where}")
        if mode != "circular" and (n == 0 or out < (1 if k == 1 else 0)):     # (torch allows an empty 2-D, 3-D pad)
            raise RuntimeError(f"pad: input (W: {n}) is too small. Calculated output W: {out} (padding ({before}, "
                               f"{after}) {where})")


def pad(input, pad, mode="constant", value=None):
    """Pad as ``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs starting
    from the LAST axis, e.g. (left, right, top, bottom) for an (N, C, H, W) input.
    Negative pads crop.

    ``mode='constant'`` fills with ``value`` (0 by default), on any dims.  'reflect',
    'replicate' and 'circular' fill from the input itself, on the last 1, 2 or 3 dims of an
    input with one or two leading dims (torch's rules): each output sample is one input
    sample (``_source_indices``), so the pad is one gather per axis -- ``x[..., idx]``,
    differentiable as an indexing (its gradient adds back where an input sample was read
    more than once)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: expected a Tensor input, got {type(input).__name__}")
    if mode != "constant" and mode not in _NON_CONSTANT:
        raise NotImplementedError(f"pad: Unrecognised padding mode {mode!r}; expected 'constant', 'reflect', "
                                  "'replicate' or 'circular'")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(isinstance(p, numbers.Integral) for p in pad):
        raise ValueError(f"pad: expected an even number of integers, at most 2 per dimension "
                         f"({2 * input.ndim} for shape {input.shape}), got {pad}")
    pairs = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2)][::-1]
    if mode == "constant":
        pairs = [(0, 0)] * (input.ndim - len(pairs)) + pairs
        return ConstantPad.apply(input, pairs, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise RuntimeError(f"pad: Padding mode {mode!r} doesn't take in value argument, got value={value!r}")
    _check_non_constant(mode, input, pairs)
    y = input
    for axis, (before, after) in zip(range(input.ndim - len(pairs), input.ndim), pairs):
        if before or after:
            y = ops.getitem(y, (slice(None),) * axis + (_source_indices(mode, input.shape[axis], before, after),))
    return y
