"""A correct solution of the conv2d exercise, on the im2col and col2im solutions beside it."""

from col2im import col2im
from im2col import im2col


def conv2d_forward(x, w, b, stride=1, padding=0):
    n = x.shape[0]
    o, c, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride, padding)
    oh = (x.shape[2] + 2 * padding - kh) // stride + 1
    ow = (x.shape[3] + 2 * padding - kw) // stride + 1
    y = (w.reshape(o, -1) @ cols + b[:, None]).reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
    return y, (x.shape, w, cols, stride, padding)


def conv2d_backward(gy, cache):
    x_shape, w, cols, stride, padding = cache
    o, c, kh, kw = w.shape
    gy = gy.transpose(1, 0, 2, 3).reshape(o, -1)
    gw = (gy @ cols.T).reshape(w.shape)
    gx = col2im(w.reshape(o, -1).T @ gy, x_shape, kh, kw, stride, padding)
    return gx, gw, gy.sum(axis=1)
