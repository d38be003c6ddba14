"""Exercise linear: the linear layer y = x W^T + b.      tinyres exercise check linear

    x (N, in), w (out, in) -- PyTorch's layout -- b (out,), y (N, out)
    y = x @ w.T + b

Given gy = dL/dy (N, out), return the three gradients, each the shape of its input:

    gx = dL/dx (N, in),   gw = dL/dw (out, in),   gb = dL/db (out,)

Hint: write y[n, o] = sum_i x[n, i] w[o, i] + b[o] and differentiate one entry; then
find the matrix product that computes all of them.  b is added to every row: its
gradient sums over the rows.
"""
import numpy as np  # noqa: F401 (for your code)


def linear_forward(x, w, b):
    raise NotImplementedError        # return y, cache


def linear_backward(gy, cache):
    raise NotImplementedError        # return gx, gw, gb
