"""Every op in ``tinyres.ops``, checked twice from one table.

Each case is an expression written once as ``fn(lib, *inputs)`` so that the same lambda runs
with ``lib = tinyres`` and ``lib = torch`` (a separate torch expression only where PyTorch
spells it differently).  Each case runs through
  (a) ``gradcheck`` in float64: finite differences under a random upstream gradient, and
  (b) ``compare_with_torch``: forward and every input gradient against PyTorch, in float32
      and float64, on contiguous and on non-contiguous (strided) inputs.
The engine checks that every backward returns its input's shape and dtype, so the float32
runs also prove that float32 stays float32 all the way back.

Inputs are generated per kind, away from the kinks of the op under test (0 for abs, the
bounds of clamp, ties for max/min/maximum); ties and kinks get their own tests against
PyTorch's conventions below.
"""

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch
from helpers import gradcheck, gradgradcheck  # the suite's tight tolerances
from cases import BOUNDARY, OP_CASES, TIES, make_inputs, run_case


# ---------------------------------------------------------------------- inputs

@pytest.mark.parametrize("case", OP_CASES, ids=[c.name for c in OP_CASES])
def test_gradcheck(case):
    inputs = [tinyres.tensor(a, requires_grad=True) for a in make_inputs(case.inputs)]
    assert gradcheck(run_case(case, tinyres), inputs)


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", OP_CASES, ids=[c.name for c in OP_CASES])
def test_against_torch(case, dtype, contiguous):
    compare_with_torch(run_case(case, tinyres), run_case(case, torch), make_inputs(case.inputs, dtype),
                       contiguous=contiguous)


@pytest.mark.parametrize("case", OP_CASES, ids=[c.name for c in OP_CASES])
def test_gradgradcheck(case):
    """Every op's backward is itself differentiable, and right: finite differences of it."""
    inputs = [tinyres.tensor(a, requires_grad=True) for a in make_inputs(case.inputs)]
    assert gradgradcheck(run_case(case, tinyres), inputs)


@needs_torch
@pytest.mark.parametrize("case", OP_CASES, ids=[c.name for c in OP_CASES])
def test_second_derivatives_against_torch(case):
    compare_second_order_with_torch(run_case(case, tinyres), run_case(case, torch), make_inputs(case.inputs))


# ---------------------------------------------------------------------- ties and kinks
# Here finite differences are meaningless, so PyTorch's conventions are the reference.

@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, fn, data", TIES, ids=[t[0] for t in TIES])
def test_ties_and_kinks_follow_torch(name, fn, data, dtype):
    compare_with_torch(lambda x: fn(tinyres, x), lambda x: fn(torch, x), [np.array(data, dtype)])


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_maximum_tie_splits_in_half(dtype):
    a, b = np.array([1.0, 2.0, 3.0], dtype), np.array([1.0, 3.0, 2.0], dtype)
    compare_with_torch(lambda x, y: tinyres.maximum(x, y), torch.maximum, [a, b])


@needs_torch
def test_max_dim_returns_indices_like_torch():
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    values, indices = tinyres.tensor(data).max(dim=1, keepdim=True)
    expected = torch.tensor(data).max(dim=1, keepdim=True)
    np.testing.assert_array_equal(values.numpy(), expected.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
    assert indices.dtype == tinyres.int64


def test_pow_zero_exponent_has_zero_gradient_at_zero():
    x = tinyres.zeros(3, dtype="float64", requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))


# ---------------------------------------------------------------------- dtypes

@needs_torch
@pytest.mark.parametrize("fn", [lambda m, x: m.exp(x), lambda m, x: m.sqrt(x), lambda m, x: x / 2,
                                lambda m, x: x ** 0.5, lambda m, x: x * 1.5],
                         ids=["exp", "sqrt", "div", "pow_float", "mul_float"])
def test_integer_inputs_give_default_float_like_torch(fn):
    data = np.array([1, 4, 9])       # no float input, so the float32 tolerance is given here
    compare_with_torch(lambda x: fn(tinyres, x), lambda x: fn(torch, x), [data], rtol=1e-5, atol=1e-6)


def test_integer_ops_stay_integer():
    x = tinyres.tensor([1, 2, 3])
    for y in (x + 1, x * 2, -x, x.sum(), x[[0, 0]], x ** 2):
        assert y.dtype == tinyres.int64


def test_int_and_float_tensors_promote_to_float():
    y = tinyres.tensor([1, 2]) + tinyres.tensor([0.5, 0.5])
    assert y.dtype == tinyres.float32
    np.testing.assert_allclose(y.numpy(), [1.5, 2.5])


def test_comparisons_give_bool_tensors():
    x = tinyres.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    np.testing.assert_array_equal((2 >= x).numpy(), [True, True, False])
    assert (x == x).dtype == tinyres.bool_


def test_ops_on_0d_tensors():
    x = tinyres.tensor(2.0, dtype="float64", requires_grad=True)
    assert gradcheck(lambda t: (t * 3).sum(0).exp().reshape(1).squeeze(), [x])
    assert x.flatten().shape == (1,)


# ---------------------------------------------------------------------- bad input

def _t(*shape):
    return tinyres.zeros(*shape)


BAD = [
    # (callable, exception, regex on the message: the op and the shapes/dtypes involved)
    (lambda: _t(2, 3) + _t(4), ValueError, r"add: expected shapes that broadcast.*\(2, 3\) and \(4,\)"),
    (lambda: _t(2, 3) - _t(2, 2), ValueError, r"sub: .*\(2, 3\) and \(2, 2\)"),
    (lambda: _t(3) * _t(2), ValueError, r"mul: .*\(3,\) and \(2,\)"),
    (lambda: _t(3) / _t(2), ValueError, r"div: .*\(3,\) and \(2,\)"),
    (lambda: tinyres.maximum(_t(3), _t(2)), ValueError, r"maximum: .*\(3,\) and \(2,\)"),
    (lambda: tinyres.where(tinyres.ones(3, dtype=bool), _t(2), _t(2)), ValueError, r"where: .*\(3,\)"),
    (lambda: tinyres.where(_t(2), _t(2), _t(2)), TypeError, r"where: expected a bool condition, got float32"),
    (lambda: _t(2, 3) @ _t(4, 5), ValueError, r"matmul: expected .* got shapes \(2, 3\) and \(4, 5\)"),
    (lambda: _t(3) @ _t(4), ValueError, r"matmul: .*\(3,\) and \(4,\)"),
    (lambda: _t(2, 2, 3) @ _t(3, 3, 1), ValueError,
     r"matmul \(batch dims of \(2, 2, 3\) and \(3, 3, 1\)\): .*got \(2,\) and \(3,\)"),
    (lambda: tinyres.matmul(_t(), _t(3)), ValueError, r"matmul: .*\(\) and \(3,\)"),
    (lambda: _t(2, 3).reshape(4, -1), ValueError,
     r"reshape: expected a shape with 6 elements.*\(2, 3\).*\(4, -1\)"),
    (lambda: _t(2, 3).reshape(-1, -1), ValueError, r"reshape: .*\(-1, -1\)"),
    (lambda: _t(2, 3).permute(1, 2), ValueError, r"permute: expected a permutation .*\(2, 3\), got \(1, 2\)"),
    (lambda: _t(2, 3).permute(0, 0), ValueError, r"permute: .*got \(0, 0\)"),
    (lambda: _t(2, 3).sum(2), IndexError, r"sum: expected a dim in \[-2, 1\].*got 2"),
    (lambda: _t(2, 3).max(dim=-3), IndexError, r"max: expected a dim in \[-2, 1\]"),
    (lambda: _t(2, 3).unsqueeze(3), IndexError, r"unsqueeze: .*got 3"),
    (lambda: tinyres.cat([_t(2, 3), _t(3, 3)], dim=1), ValueError, r"cat: .*dim 1.*\(2, 3\), \(3, 3\)"),
    (lambda: tinyres.cat([], dim=0), ValueError, r"cat: expected a non-empty list"),
    (lambda: tinyres.cat([_t(), _t()]), ValueError, r"cat: expected a tensor with at least 1 dimension"),
    (lambda: tinyres.stack([_t(2), _t(3)]), ValueError, r"stack: .*\(2,\), \(3,\)"),
    (lambda: _t(3) ** "2", TypeError, r"pow: expected a number or a Tensor as exponent, got str"),
    (lambda: _t(3).clamp(), ValueError, r"clamp: at least one of min and max"),
    (lambda: tinyres.zeros(3, dtype="int64").mean(), TypeError,
     r"mean: expected a floating point tensor, got int64"),
    (lambda: tinyres.zeros(3, dtype="int64").var(), TypeError, r"var: .*got int64"),
    (lambda: tinyres.exp([1.0]), TypeError, r"exp: expected a Tensor, got list"),
    (lambda: _t(2, 3)[2], IndexError, r"index: expected an index valid for a tensor of shape \(2, 3\)"),
    (lambda: _t(2, 3)[tinyres.tensor([0.5])], IndexError, r"index: expected integer or bool indices, got float32"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------- boundary values

@pytest.mark.parametrize("name, ours, theirs, arrays", BOUNDARY, ids=[b[0] for b in BOUNDARY])
def test_piecewise_ops_at_boundary_values_as_torch(name, ours, theirs, arrays):
    """0, -0, ties, +-inf and NaN, where a piecewise op's gradient rule decides: every value
    and gradient as torch (abs: 0 at 0 and NaN; clamp: 1 at the bounds; maximum: half each on
    a tie, all to both where a NaN is involved; max/min over a dim: the first extreme)."""
    compare_with_torch(ours, theirs, arrays)


@needs_torch
@pytest.mark.parametrize("kind", ["all", "any"])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), (0, True), ((0, 1), False)])
def test_all_and_any_match_torch(kind, dim, keepdim):
    data = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    for x in (data, data > 0):
        ours = getattr(tinyres.tensor(x), kind)() if dim is None else getattr(tinyres, kind)(tinyres.tensor(x), dim, keepdim)
        theirs = getattr(torch.tensor(x), kind)() if dim is None else getattr(torch, kind)(torch.tensor(x), dim, keepdim)
        assert ours.dtype == np.bool_ and ours.tolist() == theirs.tolist()


@needs_torch
def test_sum_and_mean_take_numpys_axis_and_a_dtype_as_torch():
    x = np.arange(6).reshape(2, 3)
    for lib in (tinyres, torch):
        t = lib.tensor(x)
        assert t.sum(axis=0).tolist() == [3, 5, 7] and lib.sum(t, axis=1, keepdims=True).tolist() == [[3], [12]]
        assert t.sum(dtype=lib.float64).dtype == lib.float64 and t.sum(1, dtype=lib.float64).tolist() == [3.0, 12.0]
        assert t.mean(dtype=lib.float64).item() == 2.5 and lib.mean(t.double(), axis=0).tolist() == [1.5, 2.5, 3.5]
    compare_with_torch(lambda a: a.sum(axis=(0, 2), dtype=tinyres.float64), lambda a: a.sum(axis=(0, 2), dtype=torch.float64),
                       [np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)], rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="sum: expected dim or its alias axis, got both"):
        tinyres.tensor(x).sum(0, axis=1)
