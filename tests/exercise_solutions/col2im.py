"""A correct solution of the col2im exercise: the offsets loop of im2col with +=."""
import numpy as np


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    s, p = stride, padding
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    xpad = np.zeros((n, c, h + 2 * p, w + 2 * p))
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += cols[:, i, j].transpose(1, 0, 2, 3)
    return xpad[:, :, p:p + h, p:p + w]
