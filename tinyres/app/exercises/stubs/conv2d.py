"""Exercise conv2d: a convolution as im2col and one matrix multiply.   tinyres exercise check conv2d

    x (N, C, H, W), w (O, C, KH, KW), b (O,), one stride s and padding p for both axes
    y (N, O, OH, OW):  y[n, o, oh, ow] = b[o] + sum_{c,i,j} w[o, c, i, j] xpad[n, c, oh*s + i, ow*s + j]

Forward:  cols = im2col(x) (K, N*OH*OW), K = C*KH*KW;  y = w.reshape(O, K) @ cols + b,
          then (O, N*OH*OW) -> (N, O, OH, OW).
Backward, with gy reshaped to (O, N*OH*OW) the same way:
          gw = gy @ cols.T  (reshaped to w's shape),  gb = gy summed over n, oh, ow,
          gx = col2im(w.reshape(O, K).T @ gy).

Use your own im2col and col2im: paste them below, or import them from your files of those
exercises in the same folder (``from im2col import im2col``; the checker puts this file's
folder on the import path).  Keep in the cache what backward needs: cols and w (or x).
The math: docs/conv.md.
"""
import numpy as np  # noqa: F401 (for your code)


def conv2d_forward(x, w, b, stride=1, padding=0):
    raise NotImplementedError        # return y, cache


def conv2d_backward(gy, cache):
    raise NotImplementedError        # return gx, gw, gb
