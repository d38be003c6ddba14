"""linear, flatten and pad: finite differences, PyTorch on the same inputs, errors."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF  # TF: None without PyTorch
from helpers import compare_grad_chain_with_torch, compare_second_order_with_torch, gradgradcheck

import tinyres
from helpers import gradcheck  # the suite's tight tolerances
from cases import PADS
from tinyres.nn import functional as F


@needs_torch
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 5, 3), (3,), (1, 1, 3)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float32, False)])
def test_linear_matches_torch(x_shape, bias, dtype, contiguous):
    arrays = [randn(*x_shape, dtype=dtype), randn(2, 3, dtype=dtype, seed=1)]
    arrays += [randn(2, dtype=dtype, seed=2)] if bias else []
    compare_with_torch(F.linear, TF.linear, arrays, contiguous=contiguous)


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 2, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(x_shape, bias):
    arrays = [randn(*x_shape), randn(2, 3, seed=1)] + ([randn(2, seed=2)] if bias else [])
    gradcheck(F.linear, [tinyres.tensor(a, requires_grad=True) for a in arrays])


@needs_torch
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 2, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_higher_derivatives_match_torch(x_shape, bias):
    data = [randn(*x_shape, seed=0), randn(5, 3, seed=1)] + ([randn(5, seed=2)] if bias else [])
    compare_second_order_with_torch(F.linear, TF.linear, data)
    compare_grad_chain_with_torch(F.linear, TF.linear, data)


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 2, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradgradcheck(x_shape, bias):
    shapes = [x_shape, (5, 3)] + ([(5,)] if bias else [])
    assert gradgradcheck(F.linear, [tinyres.tensor(randn(*s, seed=i), requires_grad=True) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.linear(tinyres.randn(4, 5), tinyres.randn(2, 3)), RuntimeError,     # as torch: RuntimeError
     r"linear: expected input with 3 features in the last dimension, got input of shape \(4, 5\)"),
    (lambda: F.linear(tinyres.randn(4, 3), tinyres.randn(3)), ValueError, "weight must be 2-D"),
    (lambda: F.linear(tinyres.randn(4, 3), tinyres.randn(2, 3), tinyres.randn(3)), ValueError,
     r"bias must have shape \(2,\)"),
    (lambda: F.linear(tinyres.randn(4, 3), tinyres.randn(2, 3, dtype="float64")), TypeError,
     "float32, float64"),
    (lambda: F.linear(np.ones((4, 3)), tinyres.randn(2, 3)), TypeError, "input must be a Tensor"),
])
def test_linear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_flatten_is_the_tensor_op():
    assert F.flatten is tinyres.flatten
    assert F.flatten(tinyres.randn(2, 3, 4, 5), 1).shape == (2, 60)


@needs_torch
@pytest.mark.parametrize("shape, pad", PADS)
@pytest.mark.parametrize("value", [0.0, -1.5])
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float32, False)])
def test_pad_matches_torch(shape, pad, value, dtype, contiguous):
    compare_with_torch(lambda x: F.pad(x, pad, value=value), lambda x: TF.pad(x, pad, value=value),
                       [randn(*shape, dtype=dtype)], contiguous=contiguous)


@pytest.mark.parametrize("shape, pad", PADS[:5])
def test_pad_gradcheck(shape, pad):
    gradcheck(lambda x: F.pad(x, pad, value=2.0), [tinyres.tensor(randn(*shape), requires_grad=True)])


def test_pad_keeps_integer_dtype():
    y = F.pad(tinyres.tensor([[1, 2]]), (1, 0), value=7)
    assert y.dtype == np.int64 and y.tolist() == [[7, 1, 2]]


@pytest.mark.parametrize("pad, kwargs, error, match", [
    ((1,), {}, ValueError, "even number"),
    ((1, 1) * 4, {}, ValueError, r"at most 2 per dimension \(6 for shape \(2, 3, 4\)\)"),
    ((4, 4), {"mode": "reflect"}, RuntimeError, "Padding size should be less than the corresponding input dimension"),
    ((1, 1), {"mode": "mirror"}, NotImplementedError, "Unrecognised padding mode 'mirror'"),
    ((-3, -2), {}, ValueError, "size 4 padded by .-3, -2. would have negative size -1"),
])
def test_pad_errors(pad, kwargs, error, match):
    with pytest.raises(error, match=match):
        F.pad(tinyres.randn(2, 3, 4), pad, **kwargs)


@needs_torch
@pytest.mark.parametrize("shape, pad", PADS[:5])
def test_pad_higher_derivatives_match_torch_and_gradgradcheck(shape, pad):
    tiny, ref = (lambda x: F.pad(x, pad, value=2.0)), (lambda x: TF.pad(x, pad, value=2.0))
    compare_second_order_with_torch(tiny, ref, [randn(*shape)])
    compare_grad_chain_with_torch(tiny, ref, [randn(*shape)])
    assert gradgradcheck(tiny, [tinyres.tensor(randn(*shape), requires_grad=True)])
