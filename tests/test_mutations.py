"""The suite's checks can fail: a backward that is off by 0.1% is reported.

For each layer the training path relies on, the backward is patched to return its first
gradient times 1.001, and both checks the suite uses must raise: the float64 comparison
with PyTorch (``helpers.compare_with_torch``, rtol 1e-10) and the finite-difference check
with the suite's tolerances (``helpers.gradcheck``, rtol 1e-6; ``tinyres.autograd.gradcheck``'s
own defaults are torch's, rtol 1e-3, and would miss it).  A check that passed a broken
backward would prove nothing.
"""
import importlib

import numpy as np
import pytest
from helpers import compare_with_torch, gradcheck, needs_torch, randn, TF  # TF: None without PyTorch

import tinyres
from tinyres.autograd import GradcheckError

from tinyres.nn import functional as F
from tinyres.nn.functional import activation, conv, loss, normalization, pooling

linear = importlib.import_module("tinyres.nn.functional.linear")     # F.linear, the function, hides the module

LABELS = np.array([1, 0, 3, 2])

CASES = [
    ("conv2d", conv.Conv2dFunction, lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
     [(2, 3, 5, 5), (4, 3, 3, 3)]),
    ("batch_norm", normalization.BatchNormFunction, lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: TF.batch_norm(x, None, None, training=True), [(4, 3, 3, 3)]),
    ("group_norm", normalization.GroupNormFunction, lambda x: F.group_norm(x, 2), lambda x: TF.group_norm(x, 2),
     [(2, 4, 3, 3)]),
    ("max_pool2d", pooling.MaxPool2dFunction, lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), [(2, 3, 4, 4)]),
    ("avg_pool2d", pooling.AvgPool2dFunction, lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1),
     [(2, 3, 5, 5)]),
    ("cross_entropy", loss.SoftmaxCrossEntropy, lambda x: F.cross_entropy(x, _labels(F)),
     lambda x: TF.cross_entropy(x, _labels(TF)), [(4, 5)]),
    ("relu", activation.LeakyReLU, F.relu, lambda x: TF.relu(x), [(3, 7)]),
    ("linear", linear.LinearFunction, F.linear, lambda x, w: TF.linear(x, w), [(3, 4), (5, 4)]),
]


def _labels(module):
    import torch
    return tinyres.tensor(LABELS) if module is F else torch.tensor(LABELS)


@needs_torch
@pytest.mark.parametrize("name, function, ours, theirs, shapes", CASES, ids=[c[0] for c in CASES])
def test_a_backward_off_by_a_tenth_of_a_percent_is_caught(name, function, ours, theirs, shapes, monkeypatch):
    arrays = [randn(*s, seed=i, low=0.1) for i, s in enumerate(shapes)]
    compare_with_torch(ours, theirs, arrays)              # the real backward passes ...
    original = function.backward

    def off_by_a_little(self, gy):
        grads = original(self, gy)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return (grads[0] * 1.001,) + grads[1:]
    off_by_a_little.once_differentiable = getattr(original, "once_differentiable", False)
    monkeypatch.setattr(function, "backward", off_by_a_little)
    with pytest.raises(AssertionError, match="gradient of input 0"):
        compare_with_torch(ours, theirs, arrays)          # ... and a 0.1% error is reported
    with pytest.raises(GradcheckError, match="gradient of input 0"):
        gradcheck(ours, [tinyres.tensor(a, requires_grad=True) for a in arrays])
