"""The expected answers: tinyres's own ops, run on float64 arrays through tinyres's autograd.

No PyTorch: the reference for every exercise is the library op it re-derives
(``F.relu``, ``F.linear``, ``F.conv2d``, ...).  im2col and col2im are not public ops, so
they are expressed through one: im2col is a convolution with one-hot kernels (one output
channel per row ``(c, i, j)`` of ``cols``, ``groups=C``), and col2im, its adjoint, is that
convolution's input gradient.
"""
import numpy as np

from ...core.grad_mode import no_grad
from ...core.tensor import tensor
from ...nn import functional as F


def run(fn, arrays, gy=None):
    """``fn`` on tensors made from ``arrays`` (float64, requiring grad): (its output as an
    array, the gradient of ``sum(gy * output)`` -- of the output itself when it is a scalar
    and ``gy`` is None -- with respect to each array)."""
    tensors = [tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    y = fn(*tensors)
    y.backward(None if gy is None else tensor(np.asarray(gy, dtype=np.float64)))
    return y.numpy(), [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in tensors]


def value(fn, arrays):
    """``fn`` on tensors made from ``arrays`` (float64), without a graph: its output as an array."""
    with no_grad():
        return fn(*[tensor(np.asarray(a, dtype=np.float64)) for a in arrays]).numpy()


def one_hot_kernels(channels, kh, kw):
    """(C*KH*KW, 1, KH, KW): kernel number c*KH*KW + i*KW + j is 1 at (i, j), 0 elsewhere."""
    w = np.zeros((channels * kh * kw, 1, kh, kw))
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                w[(c * kh + i) * kw + j, 0, i, j] = 1.0
    return w


def im2col(x, kh, kw, stride=1, padding=0):
    """cols (C*KH*KW, N*OH*OW): row c*KH*KW + i*KW + j, column n*OH*OW + oh*OW + ow."""
    n, c = x.shape[:2]
    y = F.conv2d(tensor(np.asarray(x, dtype=np.float64)), tensor(one_hot_kernels(c, kh, kw)),
                 stride=stride, padding=padding, groups=c).numpy()
    return y.transpose(1, 0, 2, 3).reshape(c * kh * kw, -1)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: every column's entries added back where they were copied from."""
    n, c, h, w = x_shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    gy = np.asarray(cols, dtype=np.float64).reshape(c * kh * kw, n, oh, ow).transpose(1, 0, 2, 3)
    kernels = one_hot_kernels(c, kh, kw)
    _, (gx,) = run(lambda x: F.conv2d(x, tensor(kernels), stride=stride, padding=padding, groups=c),
                   [np.zeros(x_shape)], gy)
    return gx


def basic_block(x, conv1_weight, bn1_weight, bn1_bias, conv2_weight, bn2_weight, bn2_bias, eps=1e-5):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`` on tensors, BN in training mode:
    ``tinyres.models.BasicBlock(C, C)``'s forward (stride 1, identity shortcut)."""
    out = F.relu(F.batch_norm(F.conv2d(x, conv1_weight, padding=1), None, None, bn1_weight, bn1_bias,
                              training=True, eps=eps))
    out = F.batch_norm(F.conv2d(out, conv2_weight, padding=1), None, None, bn2_weight, bn2_bias,
                       training=True, eps=eps)
    return F.relu(out + x)
