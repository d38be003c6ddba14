"""The gradient checks a user can run: ``tinyres gradcheck`` and ``examples/gradcheck_tour.py``.

The cases are not listed here: each module of ``tinyres.nn.functional`` declares its own
in a ``GRADCHECKS`` list of ``GradcheckCase`` beside its ops, and ``cases()`` gathers
them, so a new op appears in ``tinyres gradcheck`` (and in the test suite's
``tests/test_checks.py``, which runs the same table with tighter tolerances) by being
added to its module's table.

Each layer op runs on small float64 inputs; its analytic backward is compared with central
finite differences under a random upstream gradient (``autograd.gradient_pairs``, the same
check as ``autograd.gradcheck``), and, when PyTorch is installed, its output and input
gradients with ``torch.nn.functional``'s.
"""
import collections
import importlib
import pkgutil

import numpy

from . import autograd
from .tensor import Tensor

ATOL, RTOL = 1e-5, 1e-3      # gradcheck's tolerances
TORCH_RTOL = 1e-8            # float64 against torch

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


def cases():
    """Every ``GradcheckCase`` of the modules of ``tinyres.nn.functional``, module by module."""
    from .nn import functional as F
    found = []
    for info in sorted(pkgutil.iter_modules(F.__path__), key=lambda m: m.name):
        found += getattr(importlib.import_module(f"{F.__name__}.{info.name}"), "GRADCHECKS", [])
    return found


def case_inputs(case, seed=0):
    """The input arrays of ``case``, the same for the same seed."""
    return case.inputs(numpy.random.default_rng(seed))


def _differentiable(array):
    return array.dtype.kind == "f"


def _torch_difference(fn, torch_fn, arrays, seed):
    """The largest relative difference from torch in the output and the input gradients,
    or None without torch."""
    try:
        import torch
        import torch.nn.functional as tf
    except ImportError:
        return None
    ours = [Tensor(a.copy(), requires_grad=_differentiable(a)) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=_differentiable(a)) for a in arrays]
    y, ty = fn(*ours), torch_fn(tf, *theirs)
    upstream = numpy.random.default_rng(seed).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    ty.backward(torch.tensor(upstream))
    pairs = [(y.numpy(), ty.detach().numpy())] + [(a.grad.numpy(), t.grad.numpy())
                                                  for a, t in zip(ours, theirs) if a.requires_grad]
    return max(float(numpy.max(numpy.abs(a - b) / (numpy.abs(b) + 1e-12))) for a, b in pairs)


def run_layer_checks(seed=0):
    """One row per op: name, the worst |numeric - analytic|, the difference from torch, ok."""
    rows = []
    for case in cases():
        arrays = case_inputs(case, seed)
        inputs = [Tensor(a.copy(), requires_grad=_differentiable(a)) for a in arrays]
        error, ok = 0.0, True
        for _, _, numeric, analytic in autograd.gradient_pairs(case.fn, inputs, seed=seed):
            diff = numpy.abs(analytic - numeric)
            error = max(error, float(numpy.max(diff)))
            ok &= bool(numpy.all(diff <= ATOL + RTOL * numpy.abs(numeric)))
        torch_difference = _torch_difference(case.fn, case.torch_fn, arrays, seed)
        if torch_difference is not None:
            ok &= torch_difference <= TORCH_RTOL
        rows.append({"name": case.name, "error": error, "torch": torch_difference, "ok": ok})
    return rows
