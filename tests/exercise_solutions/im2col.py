"""A correct solution of the im2col exercise: a loop over the kernel offsets."""
import numpy as np


def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    s, p = stride, padding
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((c, kh, kw, n, oh, ow))
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)
