"""The gradient checks a user can run: ``tinyres gradcheck`` and ``examples/gradcheck_tour.py``.

Each layer op runs on small float64 inputs; its analytic backward is compared with central
finite differences under a random upstream gradient (``autograd.gradient_pairs``, the same
check as ``autograd.gradcheck``), and, when PyTorch is installed, its output and input
gradients with ``torch.nn.functional``'s.
"""
import numpy

from . import autograd
from .nn import functional as F
from .tensor import Tensor

ATOL, RTOL = 1e-5, 1e-3      # gradcheck's tolerances
TORCH_RTOL = 1e-8            # float64 against torch


def _distinct(shape, rng):
    """Values with no ties and no zeros (max-pool and ReLU have kinks there)."""
    n = int(numpy.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) / n * 4).reshape(shape)


def _cases(rng):
    """(name, tinyres fn, torch fn(F, *tensors), input arrays; integer ones are not differentiated)."""
    x = _distinct((2, 3, 7, 6), rng)
    logits = rng.standard_normal((5, 4))
    target = numpy.array([0, 3, 1, 2, 3])
    return [
        ("conv2d (stride 2, padding 1)", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
         lambda tf, x, w, b: tf.conv2d(x, w, b, stride=2, padding=1),
         [x, rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
        ("conv2d (dilation 2, groups 3)", lambda x, w: F.conv2d(x, w, dilation=2, groups=3),
         lambda tf, x, w: tf.conv2d(x, w, dilation=2, groups=3), [x, rng.standard_normal((6, 1, 2, 2))]),
        ("conv1d (padding 1)", lambda x, w: F.conv1d(x, w, padding=1), lambda tf, x, w: tf.conv1d(x, w, padding=1),
         [rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 3))]),
        ("batch_norm (training)", lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
         lambda tf, x, g, b: tf.batch_norm(x, None, None, g, b, training=True),
         [x, rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)]),
        ("relu", F.relu, lambda tf, x: tf.relu(x), [x]),
        ("max_pool2d (3, stride 2, padding 1)", lambda x: F.max_pool2d(x, 3, 2, 1),
         lambda tf, x: tf.max_pool2d(x, 3, 2, 1), [x]),
        ("avg_pool2d (2, ceil_mode)", lambda x: F.avg_pool2d(x, 2, ceil_mode=True),
         lambda tf, x: tf.avg_pool2d(x, 2, ceil_mode=True), [x]),
        ("adaptive_avg_pool2d (3, 2)", lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
         lambda tf, x: tf.adaptive_avg_pool2d(x, (3, 2)), [x]),
        ("linear", F.linear, lambda tf, x, w, b: tf.linear(x, w, b),
         [rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), rng.standard_normal(2)]),
        ("log_softmax", lambda x: F.log_softmax(x, dim=1), lambda tf, x: tf.log_softmax(x, dim=1), [logits]),
        ("cross_entropy (label smoothing 0.1)", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
         lambda tf, x, t: tf.cross_entropy(x, t, label_smoothing=0.1), [logits, target]),
        ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
         lambda tf, x, t: tf.binary_cross_entropy_with_logits(x, t), [logits, rng.uniform(0, 1, logits.shape)]),
        ("mse_loss", F.mse_loss, lambda tf, x, t: tf.mse_loss(x, t), [logits, rng.standard_normal(logits.shape)]),
    ]


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
    rng = numpy.random.default_rng(seed)
    rows = []
    for name, fn, torch_fn, arrays in _cases(rng):
        inputs = [Tensor(a.copy(), requires_grad=_differentiable(a)) for a in arrays]
        error, ok = 0.0, True
        for _, _, numeric, analytic in autograd.gradient_pairs(fn, inputs, seed=seed):
            diff = numpy.abs(analytic - numeric)
            error = max(error, float(numpy.max(diff)))
            ok &= bool(numpy.all(diff <= ATOL + RTOL * numpy.abs(numeric)))
        torch_difference = _torch_difference(fn, torch_fn, arrays, seed)
        if torch_difference is not None:
            ok &= torch_difference <= TORCH_RTOL
        rows.append({"name": name, "error": error, "torch": torch_difference, "ok": ok})
    return rows
