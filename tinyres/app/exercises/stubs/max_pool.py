"""Exercise max_pool: the backward of max pooling.    tinyres exercise check max_pool

max_pool_forward is written: it pads with -inf, takes each window's maximum, and keeps,
per output pixel, which of the k*k offsets held it (argmax = i*k + j; np.argmax takes the
first on ties, as torch does).  Write max_pool_backward: each output's gradient goes to the
input pixel that was its window's maximum, and nowhere else.

Careful where windows overlap (kernel 3, stride 2, as ResNet's stem pool): one input pixel
can be the maximum of several windows, and then it receives the sum of their gradients.
The gradient that lands in the padding is dropped.  The math: docs/pooling.md.
"""
import numpy as np


def max_pool_forward(x, kernel_size, stride, padding=0):
    n, c, h, w = x.shape
    k, s, p = kernel_size, stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    windows = np.stack([xpad[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
                        for i in range(k) for j in range(k)], axis=-1)          # (N, C, OH, OW, k*k)
    argmax = windows.argmax(axis=-1)
    y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
    return y, (x.shape, k, s, p, argmax)


def max_pool_backward(gy, cache):
    shape, k, s, p, argmax = cache
    raise NotImplementedError        # return gx, of shape `shape`
