"""Exercise im2col: image patches as the columns of one matrix.   tinyres exercise check im2col

    x (N, C, H, W), a KH x KW kernel, stride s and zero padding p on every side
    OH = (H + 2p - KH) // s + 1,   OW = (W + 2p - KW) // s + 1
    cols (C*KH*KW, N*OH*OW) with
        cols[c*KH*KW + i*KW + j,  n*OH*OW + oh*OW + ow] = xpad[n, c, oh*s + i, ow*s + j]

Each column is the patch that one output pixel (n, oh, ow) reads; a convolution is then
w.reshape(O, -1) @ cols.  That row and column order is the one of docs/conv.md (and of
tinyres's own im2col, whose array is (C, KH, KW, N, OH, OW) before the reshape).

Start with four nested loops over (n, oh, ow) and the patch; then the fast way: loop only
over the KH*KW kernel offsets (i, j) and copy, for each, the strided slice
xpad[:, :, i : i + s*(OH-1) + 1 : s, j : j + s*(OW-1) + 1 : s]  -- (N, C, OH, OW) at once.
"""
import numpy as np  # noqa: F401 (for your code)


def im2col(x, kh, kw, stride=1, padding=0):
    raise NotImplementedError        # return cols
