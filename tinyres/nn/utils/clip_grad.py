"""``tinyres.nn.utils.clip_grad``: gradient clipping, as ``torch.nn.utils.clip_grad``.

    clip_grad_norm_(parameters, max_norm, norm_type=2.0)   scale all gradients together so
        that their total norm  ||(||g_1||, ..., ||g_k||)||  is at most max_norm:
        g <- g * min(1, max_norm / (total + 1e-6)); returns the total norm (before clipping)
    clip_grad_value_(parameters, clip_value)               clamp each gradient entry to
        [-clip_value, clip_value]

The gradients are changed in place (``p.grad``'s array), as torch does; parameters without
a gradient are skipped.  The norm is computed in the gradients' dtype.
"""
import math

import numpy

from ...core import backend
from ...core.backend import get_array_module
from ...core.grad_mode import no_grad
from ...core.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _as_list(tensors):
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _norm(x, norm_type):
    """The ``norm_type`` vector norm of the array ``x`` (all entries), as an array."""
    xp = get_array_module(x)
    a = xp.abs(x)
    if norm_type == math.inf:
        return a.max() if a.size else xp.zeros((), x.dtype)
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return (a != 0).sum().astype(x.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return xp.sqrt(xp.vdot(a.ravel(), a.ravel()))
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False):
    """The norm of the norms of ``tensors`` (the norm of them all concatenated), a 0-d Tensor."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(numpy.zeros((), dtype=backend.get_default_dtype()))
    xp = get_array_module(tensors[0].array)
    norms = xp.stack([_norm(t.array, norm_type) for t in tensors])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                           "non-finite, so it cannot be clipped. To disable this error and scale the "
                           "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return Tensor(total)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    is at most ``max_norm``; returns the total norm before clipping (a 0-d Tensor).

    The factor is ``min(1, max_norm / (total + 1e-6))``, applied to every gradient (as torch,
    also when it is 1).  ``error_if_nonfinite``: raise RuntimeError for a nan or inf total
    instead of scaling by it.  ``foreach`` is accepted for torch's signature and ignored.
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    xp = get_array_module(total.array)
    coef = xp.minimum(float(max_norm) / (total.array + 1e-6), 1.0).astype(total.dtype)
    with no_grad(), numpy.errstate(invalid="ignore"):      # an inf norm: factor 0, and inf * 0 = nan, as torch
        for g in grads:
            g.array *= coef.astype(g.dtype)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient entry of ``parameters`` to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            xp = get_array_module(p.grad.array)
            xp.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)
