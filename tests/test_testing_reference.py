"""tinyres.testing.reference: Conv2dReference, the plain convolution as an op (the old
tinyres.nn.functional.reference name), gives the fast Conv2dFunction's output and gradients."""
import numpy as np
import pytest

import tinyres
from tinyres.nn.functional.conv import Conv2dFunction
from tinyres.testing.reference import Conv2dReference


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("stride, padding, dilation, groups", [
    ((1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 1), ((1, 0), (1, 1)), (1, 2), 2),
])
def test_conv2d_reference_equals_the_fast_convolution(stride, padding, dilation, groups, bias):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 4 // groups, 3, 3)),
              rng.standard_normal(6) if bias else None]
    results = []
    for op in (Conv2dFunction, Conv2dReference):
        tensors = [None if a is None else tinyres.tensor(a, requires_grad=True) for a in arrays]
        y = op.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=groups)
        y.backward(tinyres.tensor(np.random.default_rng(1).standard_normal(y.shape)))
        results.append([y.numpy()] + [t.grad.numpy() for t in tensors if t is not None])
    for fast, plain in zip(*results):
        np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)
