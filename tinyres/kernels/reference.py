"""The plain versions that the fast convolution and pooling ops are tested against.

``conv.py`` and ``pooling.py`` are written for speed (chunks of images on threads,
scratch buffers, a channel-major memory layout); the code here is written to be
obviously right, and the tests (``tests/test_nn_conv.py``, ``tests/test_nn_pooling.py``)
keep the two equal in float64:

* ``conv2d_loop`` and ``pool2d_loop``: NumPy arrays in, one output pixel at a time, the
  forward and the gradient of ``sum(gy * y)`` together.  Slow; for small shapes.

Nothing here is shared with the fast path (no im2col, no scratch buffers, no threads), so a
mistake there cannot hide in both.

    from tinyres.kernels import reference
    y, gx, gw, gb = reference.conv2d_loop(x, w, b, gy, stride=(2, 2), padding=(1, 1))
"""
import numpy as np


__all__ = ["conv2d_loop", "pool2d_loop"]


def conv2d_loop(x, w, b, gy, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """conv2d one output pixel at a time: x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or
    None, gy (N, O, OH, OW) or None (for y alone: the gradients are then zeros); stride and
    dilation pairs; padding a pair (each side the same), a pair of (before, after) pairs, or
    torch's 'valid' / 'same' (the total d*(k-1) split with the smaller half before).  Returns
    y and the gradients of sum(gy * y) with respect to x, w and b (None without b)."""
    (sh, sw), (dh, dw) = stride, dilation
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        padding = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for d, k in zip(dilation, w.shape[2:]))
    (top, bottom), (left, right) = (p if isinstance(p, tuple) else (p, p) for p in padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    gxpad, gw = np.zeros_like(xpad), np.zeros_like(w)
    n, _, h, width = xpad.shape
    out_channels, in_per_group, kh, kw = w.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (width - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, out_channels, oh, ow), dtype=x.dtype)
    gy = np.zeros_like(y) if gy is None else gy
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
    return y, gxpad[:, :, top:top + x.shape[2], left:left + x.shape[3]], gw, gb


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
