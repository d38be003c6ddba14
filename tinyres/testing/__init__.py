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


class GradcheckError(RuntimeError, AssertionError):
    """Raised by ``gradcheck`` when the analytic and numeric gradients disagree: a
    RuntimeError, as ``torch.autograd.gradcheck.GradcheckError``, and an AssertionError (a
    failed check, as tinyres has always raised)."""


def _outputs(y, fn="gradcheck"):
    """What ``fn`` returned, as a tuple of Tensors (a Tensor, or a tuple or list of them)."""
    ys = (y,) if isinstance(y, Tensor) else tuple(y) if isinstance(y, (tuple, list)) else None
    if ys is None or not all(isinstance(t, Tensor) for t in ys):
        raise TypeError(f"{fn}: expected the function to return a Tensor or a tuple of Tensors, got "
                        f"{type(y).__name__}")
    return ys


def _numeric_grad(f, x, indices, eps):
    """Central differences of the scalar ``f()`` with respect to x.array at ``indices``."""
    out = numpy.empty(len(indices))
    for k, i in enumerate(indices):
        at = numpy.unravel_index(i, x.shape)   # works for non-contiguous data too
        old = x.array[at].item()
        x.array[at] = old + eps
        fp = f()
        x.array[at] = old - eps
        fm = f()
        x.array[at] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def gradient_pairs(fn, inputs, eps=1e-6, nsamples=None, seed=0, output=None):
    """Numeric and analytic gradients of ``L = sum_k sum(g_k * y_k)`` for random ``g_k``, the
    ``y_k`` the floating outputs of ``fn(*inputs)`` (a Tensor or a tuple; only output
    ``output`` when given).

    Returns one ``(input index, checked flat indices, numeric, analytic)`` tuple per input
    that requires grad; ``gradcheck`` judges them, ``tinyres gradcheck`` tabulates them.
    """
    from ..core.engine import grad
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    rng = numpy.random.default_rng(seed)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")

    ys = _outputs(fn(*inputs))
    device = ys[0].device
    which = [k for k, y in enumerate(ys) if y.dtype.kind == "f" and output in (None, k)]
    upstream = {k: backend.to_device(rng.standard_normal(ys[k].shape), device) for k in which}
    used = [k for k in which if ys[k].requires_grad]        # an output with no graph: its gradients are 0
    grads = grad([ys[k] for k in used], [inputs[i] for i in checked], [Tensor(upstream[k]) for k in used],
                 allow_unused=True) if used else [None] * len(checked)

    def loss():
        with no_grad(), backend.on_device(device):
            out = _outputs(fn(*inputs))
            return float(sum(float((out[k].array * upstream[k]).sum()) for k in which))

    pairs = []
    for i, g in zip(checked, grads):
        x = inputs[i]
        analytic = backend.to_numpy(g.array).reshape(-1) if g is not None else numpy.zeros(x.array.size)
        indices = numpy.arange(x.array.size)
        if nsamples is not None and nsamples < x.array.size:
            indices = rng.choice(x.array.size, nsamples, replace=False)
        with backend.on_device(x.device):
            numeric = _numeric_grad(loss, x, indices, eps)
        pairs.append((i, indices, numeric, analytic[indices]))
    return pairs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, nsamples=None, seed=0, *, raise_exception=True,
              fast_mode=False):
    """Compare ``fn``'s analytic gradients with central finite differences.

    ``fn`` maps the tensors ``inputs`` to a tensor ``y`` (or a tuple of them, each checked on
    its own).  A random upstream gradient ``g`` (the same shape as ``y``) turns it into the
    scalar ``L = sum(g * y)``; for every element ``x_i`` of every input that requires grad,
    the analytic ``dL/dx_i`` (from the backward pass) must match
    ``(L(x_i + eps) - L(x_i - eps)) / (2 eps)`` within ``atol + rtol * |numeric|``.  Inputs
    must be float64.  With ``nsamples``, only that many random elements of each input are
    checked.  ``fast_mode`` is torch's and accepted: the check is this one either way.

    Returns True, or raises ``GradcheckError`` naming the output, the input, the worst
    element and both values (returns False instead with ``raise_exception=False``).
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    with no_grad():
        n = len(_outputs(fn(*inputs)))
    for k in range(n) if n > 1 else [None]:
        for i, indices, numeric, analytic in gradient_pairs(fn, inputs, eps, nsamples, seed, output=k):
            diff = numpy.abs(analytic - numeric)
            bad = ~(diff <= atol + rtol * numpy.abs(numeric))     # NaN counts as bad
            if not bad.any():
                continue
            if not raise_exception:
                return False
            j = int(numpy.where(bad)[0][numpy.nan_to_num(diff[bad], nan=numpy.inf).argmax()])
            where = numpy.unravel_index(indices[j], inputs[i].shape)
            raise GradcheckError(
                f"gradcheck: Jacobian mismatch for output {k or 0} with respect to input {i}: the gradient of "
                f"input {i} (shape {inputs[i].shape}) is wrong at index {tuple(int(m) for m in where)}: numeric "
                f"{numeric[j]:.8g}, analytic {analytic[j]:.8g} ({int(bad.sum())} of {len(indices)} elements off)")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, nsamples=None, seed=0, *,
                  raise_exception=True, fast_mode=False):
    """Check second derivatives, as ``torch.autograd.gradgradcheck``: ``gradcheck`` of the
    first-order backward itself.

    With ``v`` a random upstream gradient per output (or ``grad_outputs``: a Tensor, or a tuple
    with one per output, None for a random one), the map from ``(inputs, v)`` to
    ``grad(fn(inputs), inputs, v, create_graph=True)`` is differentiated by the backward of
    the backward and by central finite differences, and the two must agree.  Inputs must be
    float64.  Returns True, or raises ``GradcheckError`` (False with ``raise_exception=False``).
    """
    from ..core.engine import grad
    from ..core.ops import cat
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    ys = _outputs(fn(*inputs), "gradgradcheck")
    floating = [k for k, y in enumerate(ys) if y.dtype.kind == "f"]
    given = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs or [None] * len(floating))
    if len(given) != len(floating):
        raise ValueError(f"gradgradcheck: expected one grad_output per floating output ({len(floating)}), "
                         f"got {len(given)}")
    rng = numpy.random.default_rng(seed + 1)
    vs = []
    for k, v in zip(floating, given):
        if v is None:
            v = Tensor(backend.to_device(rng.standard_normal(ys[k].shape), ys[k].device).astype(ys[k].dtype))
        vs.append(v if v.requires_grad else v.detach().requires_grad_())

    def first_order(*args):
        xs, v = list(args[:len(inputs)]), args[len(inputs):]
        with enable_grad():        # also inside gradcheck's finite differences, which run under no_grad
            out = _outputs(fn(*xs), "gradgradcheck")
            pairs = [(out[k], u) for k, u in zip(floating, v) if out[k].requires_grad]
            grads = grad([y for y, _ in pairs], [xs[i] for i in checked], [u for _, u in pairs],
                         create_graph=True, allow_unused=True) if pairs else []
        pieces = [g.reshape(-1) for g in grads if g is not None]
        if not pieces:
            raise GradcheckError("gradgradcheck: no gradient depends on the inputs")
        return cat(pieces)
    try:
        return gradcheck(first_order, inputs + vs, eps, atol, rtol, nsamples, seed, raise_exception=raise_exception)
    except GradcheckError:
        if raise_exception:
            raise
        return False
