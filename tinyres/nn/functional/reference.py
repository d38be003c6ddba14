"""The plain versions that the fast convolution and pooling ops are tested against.

``conv.py`` and ``pooling.py`` are written for speed (chunks of images on threads,
scratch buffers, a channel-major memory layout); the code here is written to be
obviously right, and the tests (``tests/test_nn_conv.py``, ``tests/test_nn_pooling.py``)
keep the two equal in float64:

* ``conv2d_loop`` and ``pool2d_loop``: NumPy arrays in, one output pixel at a time, the
  forward and the gradient of ``sum(gy * y)`` together.  Slow; for small shapes.
* ``Conv2dReference``: the convolution by one im2col and one GEMM per group, with the
  formulas of docs/conv.md line for line and nothing else (``Conv2dFunction`` must equal it
  on every grid of arguments, threads and layouts).

    from tinyres.nn.functional import reference
    y, gx, gw, gb = reference.conv2d_loop(x, w, b, gy, stride=(2, 2), padding=(1, 1))
"""
import numpy as np

from ...autograd import Function
from ...backend import get_array_module
from .conv import col2im, im2col

__all__ = ["conv2d_loop", "pool2d_loop", "Conv2dReference"]


def conv2d_loop(x, w, b, gy, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """conv2d one output pixel at a time: x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or
    None, gy (N, O, OH, OW), each argument a pair (symmetric int padding).  Returns y
    and the gradients of sum(gy * y) with respect to x, w and b (None without b)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxpad, gw = np.zeros_like(xpad), np.zeros_like(w)
    n, _, h, width = xpad.shape
    out_channels, in_per_group, kh, kw = w.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (width - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, out_channels, oh, ow), dtype=x.dtype)
    for o in range(out_channels):
        c0 = o // (out_channels // groups) * in_per_group
        for i in range(oh):
            for j in range(ow):
                window = (slice(None), slice(c0, c0 + in_per_group),
                          slice(i * sh, i * sh + dh * (kh - 1) + 1, dh),
                          slice(j * sw, j * sw + dw * (kw - 1) + 1, dw))
                y[:, o, i, j] = (xpad[window] * w[o]).sum(axis=(1, 2, 3))
                g = gy[:, o, i, j].reshape(-1, 1, 1, 1)
                gxpad[window] += g * w[o]
                gw[o] += (g * xpad[window]).sum(axis=0)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    gb = None if b is None else gy.sum(axis=(0, 2, 3))
    return y, gxpad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]], gw, gb


def _pool_output_size(size, k, s, p, d, ceil_mode):
    """torch's pooling output length (with ceil_mode, the last window starts inside the
    input or its left padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = -(-span // s) + 1 if ceil_mode else span // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def pool2d_loop(kind, x, gy, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                count_include_pad=True, divisor_override=None):
    """Max (``kind="max"``) or average (``"avg"``) pooling one output pixel at a time:
    x (N, C, H, W), square windows (int arguments), torch's keywords.  Returns y and the
    gradient of sum(gy * y) with respect to x: max sends it to the window's first
    maximum, average divides it by torch's divisor."""
    k, s, p, d = kernel_size, stride or kernel_size, padding, dilation
    n, c, h, w = x.shape
    oh, ow = _pool_output_size(h, k, s, p, d, ceil_mode), _pool_output_size(w, k, s, p, d, ceil_mode)
    y, gx = np.zeros((n, c, oh, ow)), np.zeros_like(x)
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * s - p, i * s - p + d * (k - 1) + 1, d) if 0 <= r < h]
            cols = [q for q in range(j * s - p, j * s - p + d * (k - 1) + 1, d) if 0 <= q < w]
            window = x[:, :, rows][:, :, :, cols].reshape(n, c, -1)
            if kind == "max":
                y[:, :, i, j] = window.max(axis=2)
                first = window.argmax(axis=2)
                for a in range(n):
                    for b in range(c):
                        r, q = divmod(first[a, b], len(cols))
                        gx[a, b, rows[r], cols[q]] += gy[a, b, i, j]
            else:
                rows_pad = min(i * s - p + k, h + p) - (i * s - p)
                cols_pad = min(j * s - p + k, w + p) - (j * s - p)
                divisor = divisor_override or (rows_pad * cols_pad if count_include_pad else len(rows) * len(cols))
                y[:, :, i, j] = window.sum(axis=2) / divisor
                gx[:, :, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] += gy[:, :, i:i + 1, j:j + 1] / divisor
    return y, gx


class Conv2dReference(Function):
    """The plain im2col convolution that ``Conv2dFunction`` is tested against: the same formulas,
    with cols kept from forward, gx always by col2im, no scratch buffers, and y copied
    back to the usual (N, C, H, W) memory order.  Called as ``Conv2dFunction`` is:
    ``Conv2dReference.apply(x, w, b, stride=, padding=, dilation=, groups=)`` with pairs
    for stride and dilation and ((top, bottom), (left, right)) for padding.

        y[g] = w[g] @ cols[g],   gw[g] = gy[g] @ cols[g]^T,   gx = col2im(w[g]^T @ gy[g])
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
