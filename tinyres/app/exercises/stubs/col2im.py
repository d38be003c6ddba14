"""Exercise col2im: the adjoint of im2col.          tinyres exercise check col2im

col2im(cols, x_shape, kh, kw, stride, padding) returns an array of shape x_shape in which
every entry of cols is *added* back to the input pixel that im2col copied it from
(cols's layout as in the im2col exercise); what landed in the padding is dropped.

With overlapping windows (stride < kernel) one pixel is in several patches, and its
entries add up: so col2im(im2col(x)) is not x.  col2im is the backward of im2col --
gx = col2im(gcols) -- and the checker tests exactly that: col2im(c) must be the gradient of
sum(c * im2col(x)) with respect to x, by finite differences.

The fast way: the same loop over the KH*KW offsets as im2col, with += into a zero padded
array instead of a copy (for one offset the target pixels are all distinct, so a plain
strided += is right; across offsets the sums accumulate).  The math: docs/conv.md.
"""
import numpy as np  # noqa: F401 (for your code)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    raise NotImplementedError        # return gx, of shape x_shape
