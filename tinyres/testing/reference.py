"""The plain convolution as an op, for code written against ``tinyres.nn.functional.reference``.

That module (before the package had layers) held the plain loops, now in
``kernels/reference.py``, and ``Conv2dReference``, an op called as ``Conv2dFunction`` is.
Ops live above the kernels, so ``Conv2dReference`` is here, built on those loops, and the
old name ``tinyres.nn.functional.reference`` is this module:

    from tinyres.nn.functional.reference import Conv2dReference, conv2d_loop, pool2d_loop
"""
from ..core.engine import Function, once_differentiable
from ..kernels.reference import conv2d_loop, pool2d_loop

__all__ = ["conv2d_loop", "pool2d_loop", "Conv2dReference"]


class Conv2dReference(Function):
    """conv2d by ``conv2d_loop``, one output pixel at a time (slow: for small shapes), with
    nothing shared with the fast path.  Called as ``Conv2dFunction`` is:
    ``Conv2dReference.apply(x, w, b, stride=, padding=, dilation=, groups=)`` with pairs for
    stride and dilation and ((top, bottom), (left, right)) for padding.  Its backward is
    written on arrays: first-order gradients only.

        forward:  y = conv2d_loop(x, w, b)
        backward: gx, gw, gb = the gradients of sum(gy * y), by conv2d_loop(x, w, b, gy)
    """

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        self.save_for_backward(x, weight, bias)
        self.options = stride, padding, dilation, groups
        return conv2d_loop(x, weight, bias, None, *self.options)[0]

    @once_differentiable
    def backward(self, gy):
        x, weight, bias = (None if t is None else t.array for t in self.saved_tensors)
        return conv2d_loop(x, weight, bias, gy, *self.options)[1:]
