"""Exercise relu: ReLU, forward and backward.            tinyres exercise check relu

    y = max(x, 0)            elementwise
    gx = gy * 1[x > 0]       the gradient passes where x was positive, and is 0 elsewhere

forward returns (y, cache): the cache is whatever backward needs (keep only that -- a mask,
or y, is enough; x itself is not needed).  backward gets gy = dL/dy, the same shape as y,
and returns gx = dL/dx.  Do not change x in place.  The math: docs/autograd.md.
"""
import numpy as np  # noqa: F401 (for your code)


def relu_forward(x):
    raise NotImplementedError


def relu_backward(gy, cache):
    raise NotImplementedError
