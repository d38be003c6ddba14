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
import collections

import numpy as np
import pytest
import torch

import tinyres
from helpers import compare_with_torch, randn
from helpers import gradcheck  # the suite's tight tolerances


# ---------------------------------------------------------------------- inputs

def distinct(shape, seed, offset=0.13):
    """Shuffled values on the grid 0.3 k + offset: no ties (for max/min), and at least 0.03
    away from 0, +-0.5 and +-1 (the kinks of abs and of the clamps below)."""
    n = int(np.prod(shape))
    k = np.random.default_rng(seed).permutation(n) - n // 2
    return (0.3 * k + offset).reshape(shape)


KINDS = {
    "n": lambda shape, seed: randn(*shape, seed=seed),                    # normal
    "a": lambda shape, seed: randn(*shape, seed=seed, low=0.2),           # |x| >= 0.2
    "p": lambda shape, seed: np.abs(randn(*shape, seed=seed)) + 0.5,      # x >= 0.5
    "d": lambda shape, seed: distinct(shape, seed),                       # no ties
    "e": lambda shape, seed: distinct(shape, seed, offset=0.28),          # never ties with "d"
}


def make_inputs(specs, dtype=np.float64):
    """One array per ``(kind, shape)`` spec, each from its own seed."""
    return [KINDS[kind](shape, seed).astype(dtype) for seed, (kind, shape) in enumerate(specs)]


Case = collections.namedtuple("Case", "name fn inputs torch_fn", defaults=(None,))

def cond(m, like):
    """The constant condition COND as a tensor of library ``m`` on ``like``'s device."""
    return m.tensor(COND, device=like.device)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
COND = np.array([[True], [False], [True]])

CASES = [
    # elementwise binary, with broadcasting and size-1 dims
    Case("add", lambda m, a, b: a + b, [("n", (2, 3)), ("n", (3,))]),
    Case("add_size1", lambda m, a, b: a + b, [("n", (2, 1, 3)), ("n", (4, 1))]),
    Case("sub", lambda m, a, b: a - b, [("n", (3, 1)), ("n", (1, 4))]),
    Case("mul", lambda m, a, b: a * b, [("n", (2, 3, 1)), ("n", (3, 4))]),
    Case("truediv", lambda m, a, b: a / b, [("n", (2, 3)), ("a", (1, 3))]),
    Case("truediv_bcast_numerator", lambda m, a, b: a / b, [("n", (3,)), ("a", (2, 1, 3))]),
    Case("maximum", lambda m, a, b: m.maximum(a, b), [("d", (2, 3)), ("e", (3,))]),
    Case("where", lambda m, a, b: m.where(cond(m, a), a, b), [("n", (1, 4)), ("n", (3, 4))]),
    Case("where_scalar", lambda m, a: m.where(cond(m, a), a, 0.5), [("n", (3, 4))]),
    Case("where_bcast_both", lambda m, a, b: m.where(cond(m, a), a, b), [("n", (4,)), ("n", (3, 1))]),
    # Python scalars on either side
    Case("add_scalar", lambda m, x: x + 1.5, [("n", (2, 3))]),
    Case("radd_scalar", lambda m, x: 1.5 + x, [("n", (2, 3))]),
    Case("sub_scalar", lambda m, x: x - 2, [("n", (2, 3))]),
    Case("rsub_scalar", lambda m, x: 2 - x, [("n", (2, 3))]),
    Case("mul_scalar", lambda m, x: x * 3, [("n", (2, 3))]),
    Case("rmul_scalar", lambda m, x: 3.5 * x, [("n", (2, 3))]),
    Case("div_scalar", lambda m, x: x / 2.5, [("n", (2, 3))]),
    Case("rdiv_scalar", lambda m, x: 2.5 / x, [("a", (2, 3))]),
    Case("neg", lambda m, x: -x, [("n", (2, 1, 3))]),
    Case("pow_2", lambda m, x: x ** 2, [("n", (2, 3))]),
    Case("pow_3", lambda m, x: x ** 3, [("n", (1, 4))]),
    Case("pow_half", lambda m, x: x ** 0.5, [("p", (2, 3))]),
    Case("pow_negative", lambda m, x: x.pow(-1.5), [("p", (2, 3))]),
    Case("rpow", lambda m, x: 2.0 ** x, [("n", (2, 3))]),
    # elementwise unary
    Case("exp", lambda m, x: m.exp(x), [("n", (2, 3))]),
    Case("log", lambda m, x: m.log(x), [("p", (3, 1))]),
    Case("sqrt", lambda m, x: x.sqrt(), [("p", (2, 3))]),
    Case("abs", lambda m, x: m.abs(x), [("d", (2, 3))]),
    Case("abs_builtin", lambda m, x: abs(x), [("a", (4,))]),
    Case("clamp", lambda m, x: m.clamp(x, -0.5, 0.5), [("d", (3, 4))]),
    Case("clamp_min", lambda m, x: x.clamp(min=0.0), [("d", (3, 4))]),
    Case("clamp_max", lambda m, x: x.clamp(max=1.0), [("d", (3, 4))]),
    # matmul: 1-D, 2-D, batched with broadcasting
    Case("matmul_1d_1d", lambda m, a, b: a @ b, [("n", (3,)), ("n", (3,))]),
    Case("matmul_1d_2d", lambda m, a, b: a @ b, [("n", (3,)), ("n", (3, 4))]),
    Case("matmul_2d_1d", lambda m, a, b: m.matmul(a, b), [("n", (2, 3)), ("n", (3,))]),
    Case("matmul_2d_2d", lambda m, a, b: a @ b, [("n", (2, 3)), ("n", (3, 4))]),
    Case("matmul_size1", lambda m, a, b: a @ b, [("n", (1, 3)), ("n", (3, 1))]),
    Case("matmul_batch_bcast", lambda m, a, b: a @ b, [("n", (2, 1, 2, 3)), ("n", (3, 3, 2))]),
    Case("matmul_batch_1d", lambda m, a, b: a @ b, [("n", (2, 2, 3)), ("n", (3,))]),
    Case("matmul_1d_batch", lambda m, a, b: a @ b, [("n", (3,)), ("n", (2, 3, 2))]),
    # reductions
    Case("sum", lambda m, x: x.sum(), [("n", (2, 3))]),
    Case("sum_dim", lambda m, x: m.sum(x, 1), [("n", (2, 3, 2))]),
    Case("sum_dims_keepdim", lambda m, x: x.sum(dim=(0, 2), keepdim=True), [("n", (2, 3, 2))]),
    Case("sum_negative_dim", lambda m, x: x.sum(-1), [("n", (2, 1, 3))]),
    Case("mean", lambda m, x: x.mean(), [("n", (2, 3))]),
    Case("mean_dims", lambda m, x: m.mean(x, dim=(-1, 0)), [("n", (2, 3, 2))]),
    Case("mean_keepdim", lambda m, x: x.mean(1, keepdim=True), [("n", (3, 4))]),
    Case("var", lambda m, x: x.var(), [("n", (3, 4))]),
    Case("var_biased_dim", lambda m, x: m.var(x, 1, unbiased=False), [("n", (3, 4))]),
    Case("var_dims_keepdim", lambda m, x: x.var(dim=(0, -1), keepdim=True), [("n", (2, 3, 2))]),
    Case("std", lambda m, x: x.std(), [("n", (3, 4))]),
    Case("std_biased_dim", lambda m, x: m.std(x, -1, unbiased=False, keepdim=True), [("n", (3, 4))]),
    Case("std_dims", lambda m, x: x.std(dim=(0, 2)), [("n", (2, 3, 2))]),
    Case("max", lambda m, x: x.max(), [("d", (3, 4))]),
    Case("min", lambda m, x: m.min(x), [("d", (3, 4))]),
    Case("max_dim", lambda m, x: x.max(dim=1).values, [("d", (3, 4))]),
    Case("max_dim0_3d", lambda m, x: m.max(x, 0)[0], [("d", (3, 2, 2))]),
    Case("min_dim_keepdim", lambda m, x: x.min(-1, keepdim=True).values, [("d", (3, 4))]),
    # shapes
    Case("reshape", lambda m, x: x.reshape(3, -1), [("n", (2, 3, 2))]),
    Case("reshape_tuple", lambda m, x: m.reshape(x, (2, 1, 6)), [("n", (3, 4))]),
    Case("view", lambda m, x: x.view(-1), [("n", (2, 3))]),
    Case("flatten", lambda m, x: x.flatten(), [("n", (2, 3, 2))]),
    Case("flatten_start", lambda m, x: m.flatten(x, 1), [("n", (2, 3, 2))]),
    Case("flatten_range", lambda m, x: x.flatten(0, 1), [("n", (2, 3, 2))]),
    Case("transpose", lambda m, x: x.transpose(0, 2), [("n", (2, 3, 4))]),
    Case("transpose_negative", lambda m, x: m.transpose(x, -1, 0), [("n", (2, 3))]),
    Case("permute", lambda m, x: x.permute(2, 0, 1), [("n", (2, 3, 4))]),
    Case("squeeze", lambda m, x: x.squeeze(), [("n", (1, 3, 1))]),
    Case("squeeze_dim", lambda m, x: m.squeeze(x, 2), [("n", (1, 3, 1))]),
    Case("unsqueeze", lambda m, x: x.unsqueeze(0), [("n", (2, 3))]),
    Case("unsqueeze_negative", lambda m, x: m.unsqueeze(x, -1), [("n", (2, 3))]),
    # indexing
    Case("index_int", lambda m, x: x[1], [("n", (3, 4))]),
    Case("index_int_slice", lambda m, x: x[-1, 1:], [("n", (3, 4))]),
    Case("index_step", lambda m, x: x[:, ::2], [("n", (3, 4))]),
    Case("index_negative_step", lambda m, x: x[::-1, 1], [("n", (3, 4))],
         lambda m, x: x.flip(0)[:, 1]),             # torch has no negative steps
    Case("index_ellipsis_none", lambda m, x: x[None, ..., 1], [("n", (2, 3, 4))]),
    Case("index_array_repeats", lambda m, x: x[[0, 2, 0]], [("n", (3, 4))]),
    Case("index_array_dim1", lambda m, x: x[:, [3, 0, 3]], [("n", (3, 4))]),
    Case("index_array_2d", lambda m, x: x[m.tensor(np.array([[0, 1], [1, 0]]))], [("n", (2, 3))]),
    Case("index_array_pairs", lambda m, x: x[[0, 1, 1], [1, 2, 1]], [("n", (3, 4))]),
    Case("index_bool_mask", lambda m, x: x[m.tensor(MASK, device=x.device)], [("n", (3, 4))]),
    # joining
    Case("cat", lambda m, a, b, c: m.cat([a, b, c], dim=1),
         [("n", (2, 1, 3)), ("n", (2, 3, 3)), ("n", (2, 2, 3))]),
    Case("cat_negative_dim", lambda m, a, b: m.cat([a, b], -1), [("n", (2, 1)), ("n", (2, 3))]),
    Case("stack", lambda m, a, b: m.stack([a, b]), [("n", (2, 3)), ("n", (2, 3))]),
    Case("stack_last", lambda m, a, b, c: m.stack([a, b, c], dim=-1),
         [("n", (3, 1)), ("n", (3, 1)), ("n", (3, 1))]),
    # copies
    Case("clone", lambda m, x: x.clone(), [("n", (2, 3))]),
    Case("to_float64", lambda m, x: x.to(m.float64) * 2, [("n", (2, 3))]),
    # a graph where one input feeds several ops (gradients that meet must add up)
    Case("composite", lambda m, a, b: ((a @ b).exp().sum(1) / (a * a).sum(1).sqrt() + a.max()).mean(),
         [("d", (2, 3)), ("n", (3, 2))]),
]


def _run(case, lib):
    fn = case.torch_fn if (lib is torch and case.torch_fn) else case.fn
    return lambda *xs: fn(lib, *xs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradcheck(case):
    inputs = [tinyres.tensor(a, requires_grad=True) for a in make_inputs(case.inputs)]
    assert gradcheck(_run(case, tinyres), inputs)


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_against_torch(case, dtype, contiguous):
    compare_with_torch(_run(case, tinyres), _run(case, torch), make_inputs(case.inputs, dtype),
                       contiguous=contiguous)


# ---------------------------------------------------------------------- ties and kinks
# Here finite differences are meaningless, so PyTorch's conventions are the reference.

TIES = [
    # full max/min: the gradient is split evenly among all tied elements
    ("max_full_ties", lambda m, x: x.max(), [[1.0, 3.0, 3.0], [2.0, 0.0, 3.0]]),
    ("min_full_ties", lambda m, x: m.min(x), [[1.0, -3.0, 3.0], [-3.0, 0.0, 3.0]]),
    # max/min along a dim: all of it goes to the index returned (the first)
    ("max_dim_ties", lambda m, x: x.max(dim=1).values, [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]),
    ("min_dim_ties", lambda m, x: x.min(dim=0).values, [[1.0, 3.0, 0.0], [1.0, 2.0, 0.0]]),
    ("abs_at_zero", lambda m, x: abs(x), [0.0, -1.0, 2.0]),
    ("clamp_at_bounds", lambda m, x: x.clamp(-1.0, 1.0), [-1.0, 0.0, 1.0, 2.0]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, fn, data", TIES, ids=[t[0] for t in TIES])
def test_ties_and_kinks_follow_torch(name, fn, data, dtype):
    compare_with_torch(lambda x: fn(tinyres, x), lambda x: fn(torch, x), [np.array(data, dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_maximum_tie_splits_in_half(dtype):
    a, b = np.array([1.0, 2.0, 3.0], dtype), np.array([1.0, 3.0, 2.0], dtype)
    compare_with_torch(lambda x, y: tinyres.maximum(x, y), torch.maximum, [a, b])


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
    (lambda: _t(3) ** _t(3), TypeError, r"pow: only a constant scalar exponent"),
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

EDGE = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.0])
EDGE_OTHER = np.array([0.0, 0.0, 1.0, 0.0, np.inf, 1.0, 0.0, np.nan])     # ties, inf and NaN on both sides

BOUNDARY = [
    ("abs", lambda x: x.abs(), lambda x: x.abs(), [EDGE]),
    ("clamp", lambda x: tinyres.clamp(x, -1.0, 1.0), lambda x: torch.clamp(x, -1.0, 1.0), [EDGE]),
    ("clamp-min", lambda x: tinyres.clamp(x, min=0.0), lambda x: torch.clamp(x, min=0.0), [EDGE]),
    ("maximum", tinyres.maximum, torch.maximum, [EDGE, EDGE_OTHER]),
    ("max-dim-ties", lambda x: x.reshape(2, 4).max(1)[0], lambda x: x.reshape(2, 4).max(1)[0],
     [np.array([1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0])]),
    ("min-dim-nan", lambda x: x.reshape(2, 4).min(1)[0], lambda x: x.reshape(2, 4).min(1)[0],
     [np.array([1.0, 0.0, 0.0, 3.0, np.nan, 2.0, 1.0, 2.0])]),
]


@pytest.mark.parametrize("name, ours, theirs, arrays", BOUNDARY, ids=[b[0] for b in BOUNDARY])
def test_piecewise_ops_at_boundary_values_as_torch(name, ours, theirs, arrays):
    """0, -0, ties, +-inf and NaN, where a piecewise op's gradient rule decides: every value
    and gradient as torch (abs: 0 at 0 and NaN; clamp: 1 at the bounds; maximum: half each on
    a tie, all to both where a NaN is involved; max/min over a dim: the first extreme)."""
    compare_with_torch(ours, theirs, arrays)
