"""Gradient checks: ``gradcheck`` and the pieces ``tinyres gradcheck`` tabulates.

Every check here is float64, under a random upstream gradient ``g``: the function's output
``y`` becomes the scalar ``L = sum(g * y)``, whose gradient the backward pass gives and
central finite differences estimate.  One vector-Jacobian product (for one random ``g``)
is checked, not the whole Jacobian: a wrong backward that happens to agree along ``g`` would
pass, which a random ``g`` makes vanishingly unlikely.
"""
import collections

import numpy

from ..core import backend
from ..core.grad_mode import enable_grad, no_grad
from ..core.tensor import Tensor

GradcheckCase = collections.namedtuple("GradcheckCase", "name fn torch_fn inputs")
GradcheckCase.__doc__ = """One row of ``tinyres gradcheck``: ``fn(*tensors)`` in tinyres, the same
computation as ``torch_fn(torch.nn.functional, *tensors)``, and ``inputs(rng)``, the float64
input arrays drawn from a NumPy Generator (integer arrays, such as class targets, are
inputs but are not differentiated).  Keep the inputs away from kinks (ties for max-pool,
0 for ReLU): finite differences mean nothing there."""


def distinct(shape, rng):
    """Values with no ties and no zeros (max-pool and ReLU have kinks there)."""
    n = int(numpy.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) / n * 4).reshape(shape)


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when the analytic and numeric gradients disagree."""


def _numeric_grad(f, x, indices, eps):
    """Central differences of the scalar ``f()`` with respect to x.data at ``indices``."""
    out = numpy.empty(len(indices))
    for k, i in enumerate(indices):
        at = numpy.unravel_index(i, x.shape)   # works for non-contiguous data too
        old = x.data[at].item()
        x.data[at] = old + eps
        fp = f()
        x.data[at] = old - eps
        fm = f()
        x.data[at] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def gradient_pairs(fn, inputs, eps=1e-6, nsamples=None, seed=0):
    """Numeric and analytic gradients of ``L = sum(g * fn(*inputs))`` for a random ``g``.

    Returns one ``(input index, checked flat indices, numeric, analytic)`` tuple per input
    that requires grad; ``gradcheck`` judges them, ``tinyres gradcheck`` tabulates them.
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    rng = numpy.random.default_rng(seed)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")
        inputs[i].grad = None

    y = fn(*inputs)
    upstream = backend.to_device(rng.standard_normal(y.shape), y.device)
    y.backward(Tensor(upstream))

    def loss():
        with no_grad(), backend.on_device(y.device):
            return float((fn(*inputs).data * upstream).sum())

    pairs = []
    for i in checked:
        x = inputs[i]
        analytic = backend.to_numpy(x.grad.data).reshape(-1) if x.grad is not None else numpy.zeros(x.data.size)
        indices = numpy.arange(x.data.size)
        if nsamples is not None and nsamples < x.data.size:
            indices = rng.choice(x.data.size, nsamples, replace=False)
        with backend.on_device(x.device):
            numeric = _numeric_grad(loss, x, indices, eps)
        pairs.append((i, indices, numeric, analytic[indices]))
    return pairs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, nsamples=None, seed=0):
    """Compare ``fn``'s analytic gradients with central finite differences.

    ``fn`` maps the tensors ``inputs`` to one tensor ``y``.  A random upstream
    gradient ``g`` (the same shape as ``y``) turns it into the scalar ``L = sum(g * y)``;
    for every element ``x_i`` of every input that requires grad, the analytic
    ``dL/dx_i`` (from ``backward``) must match ``(L(x_i + eps) - L(x_i - eps)) / (2 eps)``
    within ``atol + rtol * |numeric|``.  Inputs must be float64.  With ``nsamples``,
    only that many random elements of each input are checked.

    Returns True, or raises ``GradcheckError`` naming the input, the worst element and
    both values.
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for i, indices, numeric, analytic in gradient_pairs(fn, inputs, eps, nsamples, seed):
        diff = numpy.abs(analytic - numeric)
        bad = ~(diff <= atol + rtol * numpy.abs(numeric))     # NaN counts as bad
        if bad.any():
            k = int(numpy.where(bad)[0][numpy.nan_to_num(diff[bad], nan=numpy.inf).argmax()])
            where = numpy.unravel_index(indices[k], inputs[i].shape)
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {inputs[i].shape}) is wrong at index "
                f"{tuple(int(j) for j in where)}: numeric {numeric[k]:.8g}, analytic "
                f"{analytic[k]:.8g} ({int(bad.sum())} of {len(indices)} elements off)")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, nsamples=None, seed=0):
    """Check second derivatives, as ``torch.autograd.gradgradcheck``: ``gradcheck`` of the
    first-order backward itself.

    With ``v`` a random upstream gradient (or ``grad_outputs``), the map from ``(inputs, v)``
    to ``grad(fn(inputs), inputs, v, create_graph=True)`` is differentiated by the backward
    of the backward and by central finite differences, and the two must agree.  Inputs must
    be float64.  Returns True, or raises ``GradcheckError``.
    """
    from ..core.engine import grad
    from ..core.ops import cat
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    y = fn(*inputs)
    if grad_outputs is None:
        v = numpy.random.default_rng(seed + 1).standard_normal(y.shape)
        grad_outputs = Tensor(backend.to_device(v, y.device).astype(y.dtype), requires_grad=True)
    elif not grad_outputs.requires_grad:
        grad_outputs = grad_outputs.detach().requires_grad_()

    def first_order(*args):
        xs, v = list(args[:-1]), args[-1]
        with enable_grad():        # also inside gradcheck's finite differences, which run under no_grad
            grads = grad(fn(*xs), [xs[i] for i in checked], v, create_graph=True, allow_unused=True)
        pieces = [g.reshape(-1) for g in grads if g is not None]
        if not pieces:
            raise GradcheckError("gradgradcheck: no gradient depends on the inputs")
        return cat(pieces)
    return gradcheck(first_order, inputs + [grad_outputs], eps, atol, rtol, nsamples, seed)
