"""Distances between two batches of vectors: ``cosine_similarity`` and ``pairwise_distance``,
and between the rows of one: ``pdist``, as in ``torch.nn.functional``.  All are made of
differentiable ops (``norm``, products, sums, indexing), so their gradients, to any order,
are the ops' chain rule.
"""
import numbers

import numpy

from ...core import ops
from ...core.composite import amax, norm
from ...core.tensor import Tensor

__all__ = ["cosine_similarity", "pairwise_distance", "pdist"]


def _broadcast(op, x1, x2):
    """``x1`` and ``x2`` (floating Tensors) broadcast to one shape, as torch's binary ops."""
    for name, x in (("x1", x1), ("x2", x2)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{op}: expected a floating point {name}, got {x.dtype}")
    try:
        shape = numpy.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise RuntimeError(f"{op}: the shapes of x1 {x1.shape} and x2 {x2.shape} do not broadcast") from None
    return ops.broadcast_to(x1, shape), ops.broadcast_to(x2, shape)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along ``dim``, after broadcasting
    x1 and x2, as ``torch.nn.functional.cosine_similarity``: each vector divided by its
    norm clamped to ``eps``, then the dot product.

    As torch's, the clamp changes the value only: its gradient is the unclamped norm's (torch
    clamps the norm in place, outside autograd), so a vector shorter than ``eps`` gets
    ||x|| 's slope, not 0 -- here ``n + (max(n, eps) - n).detach()``."""
    x1, x2 = _broadcast("cosine_similarity", x1, x2)
    n = max(x1.ndim, 1)
    if not isinstance(dim, numbers.Integral) or not -n <= dim < n:
        raise IndexError(f"cosine_similarity: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim!r})")
    if x1.ndim == 0:
        x1, x2 = x1.reshape(1), x2.reshape(1)

    def unit(x):
        length = norm(x, 2, dim, keepdim=True)
        return x / (length + (length.clamp(min=eps) - length).detach())
    return (unit(x1) * unit(x2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim, after broadcasting x1 and x2, as
    ``torch.nn.functional.pairwise_distance`` (``eps`` keeps the norm's slope finite where
    x1 = x2).  For two 0-d inputs, |x1 - x2 + eps|."""
    x1, x2 = _broadcast("pairwise_distance", x1, x2)
    diff = x1 - x2 + eps
    if diff.ndim == 0:
        return diff.abs()
    return norm(diff, p, diff.ndim - 1, keepdim=keepdim)


def pdist(input, p=2):
    """The p-norm distance between each pair of rows of an (N, M) input, as
    ``torch.nn.functional.pdist``: ``||x_i - x_j||_p`` for i < j in row-major order (the
    upper triangle of ``cdist(x, x)``), shape (N (N - 1) / 2,).

    The pairs' differences are a gather of the rows, then ``norm`` along M (a coinciding
    pair's distance has gradient 0, as torch's).  For p = inf, as torch's, every entry of a
    pair that ties for the largest |x_i - x_j| gets the whole gradient: the distance is
    written d + sum((|x_i - x_j| - d) * tie), d the largest value held constant."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pdist: expected a Tensor as input, got {type(input).__name__}")
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if input.dtype.kind != "f":
        raise RuntimeError(f"pdist only supports floating-point dtypes, got {input.dtype}")
    if not isinstance(p, numbers.Real) or p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got p={p!r}")
    i, j = numpy.triu_indices(input.shape[0], 1)
    diff = input[i] - input[j]
    if p != float("inf"):
        return norm(diff, p, 1)
    size = diff.abs()
    largest = amax(size, 1, keepdim=True).detach()
    return (largest + ((size - largest) * (size == largest)).sum(1, keepdim=True)).reshape(-1)
