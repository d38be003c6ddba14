"""The case tables that more than one test module runs: each module's own tests, test_gpu.py
(every row again on the CuPy double's second GPU) and test_backend.py read them here, so
no test module imports another.  A case added to a table runs everywhere it is read.

torch is imported if it is there: the tinyres side of every row works without it, and the
comparisons with torch (``helpers.compare_with_torch``) skip when it is absent.
"""
import collections

import numpy as np
import pytest

import tinyres
from helpers import randn
from tinyres.nn import functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:              # the torch side of a row is a lambda, called only when torch is there
    torch = TF = None


# ---------------------------------------------------------------------- tensor ops (test_ops.py)

def spaced(shape, seed, offset=0.13):
    """Shuffled values on the grid 0.3 k + offset: no ties (for max/min), and at least 0.03
    away from 0, +-0.5 and +-1 (the kinks of abs and of the clamps below)."""
    n = int(np.prod(shape))
    k = np.random.default_rng(seed).permutation(n) - n // 2
    return (0.3 * k + offset).reshape(shape)


KINDS = {
    "n": lambda shape, seed: randn(*shape, seed=seed),                    # normal
    "a": lambda shape, seed: randn(*shape, seed=seed, low=0.2),           # |x| >= 0.2
    "p": lambda shape, seed: np.abs(randn(*shape, seed=seed)) + 0.5,      # x >= 0.5
    "d": lambda shape, seed: spaced(shape, seed),                         # no ties
    "e": lambda shape, seed: spaced(shape, seed, offset=0.28),            # never ties with "d"
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

OP_CASES = [
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
    Case("sin", lambda m, x: m.sin(x), [("n", (2, 3))]),
    Case("cos", lambda m, x: x.cos(), [("n", (2, 3))]),
    Case("log1p", lambda m, x: m.log1p(x), [("p", (2, 3))]),
    Case("expm1", lambda m, x: x.expm1(), [("n", (2, 3))]),
    Case("square", lambda m, x: m.square(x), [("n", (2, 3))]),
    Case("reciprocal", lambda m, x: x.reciprocal(), [("a", (2, 3))]),
    Case("rsqrt", lambda m, x: m.rsqrt(x), [("p", (2, 3))]),
    Case("log2", lambda m, x: x.log2(), [("p", (2, 3))]),
    Case("log10", lambda m, x: m.log10(x), [("p", (2, 3))]),
    Case("sinh", lambda m, x: x.sinh(), [("n", (2, 3))]),
    Case("cosh", lambda m, x: m.cosh(x), [("n", (2, 3))]),
    Case("erf", lambda m, x: m.erf(x) * x.erf(), [("n", (2, 3))]),
    Case("frac", lambda m, x: x.frac() * x, [("d", (2, 3))]),
    Case("steps", lambda m, x: (x.sign() + x.floor() + m.ceil(x) + x.round() + m.trunc(x)) * x, [("d", (2, 3))]),
    Case("remainder", lambda m, a, b: a % b, [("d", (2, 3)), ("p", (3,))]),
    Case("minimum", lambda m, a, b: m.minimum(a, b), [("d", (2, 3)), ("e", (3,))]),
    Case("max_of_two", lambda m, a, b: m.max(a, b) + m.min(a, b) * a, [("d", (2, 3)), ("e", (2, 3))]),
    Case("cumsum", lambda m, x: m.cumsum(x, 1) * x, [("n", (2, 3, 2))]),
    Case("cumsum_negative_dim", lambda m, x: x.cumsum(-1) ** 2, [("n", (3, 4))]),
    Case("add_alpha", lambda m, a, b: a.add(b, alpha=2.5) * a.sub(b, alpha=0.5), [("n", (2, 3)), ("n", (3,))]),
    Case("mul_div_methods", lambda m, a, b: a.mul(b).div(b * b + 1), [("n", (2, 3)), ("n", (2, 3))]),
    Case("norm_2", lambda m, x: x.norm() * x.norm(dim=1).sum(), [("n", (3, 4))]),
    Case("var_correction", lambda m, x: x.var(dim=1, correction=0) + x.std(correction=2), [("n", (3, 4))]),
    Case("flip", lambda m, x: m.flip(x, (0, 2)) * x, [("n", (2, 3, 2))]),
    Case("narrow_select", lambda m, x: x.narrow(0, 1, 2).sum(0) * x.select(1, 1), [("n", (3, 3))]),
    Case("unbind", lambda m, x: m.stack([t * t for t in x.unbind(1)]), [("n", (2, 3))]),
    Case("index_select", lambda m, x: x.index_select(1, m.tensor([2, 0, 2], device=x.device)) ** 2, [("n", (2, 3))]),
    Case("tril_triu", lambda m, x: m.tril(x) * m.triu(x, 1) + x.tril(-1) * x, [("n", (2, 3, 3))]),
    Case("dot_outer_trace", lambda m, a, b: m.outer(a, b) * m.dot(a, b) + m.trace(m.outer(a, a)),
         [("n", (3,)), ("n", (3,))]),
    Case("softmax_method", lambda m, x: x.softmax(1) * x.log_softmax(-1), [("n", (2, 3))]),
    Case("view_as_mm", lambda m, a, b: a.mm(b).view_as(a[:, :2].reshape(4)) * a[:, 1:].reshape(4),
         [("n", (2, 3)), ("n", (3, 2))]),
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


def run_case(case, lib):
    """``case`` as a function of its input tensors, in ``lib`` (tinyres or torch)."""
    fn = case.torch_fn if (lib is torch and case.torch_fn) else case.fn
    return lambda *xs: fn(lib, *xs)


# ties and kinks: finite differences are meaningless there, so PyTorch's conventions are the
# reference
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


# boundary values: 0, -0, ties, +-inf and NaN, where a piecewise op's gradient rule decides
EDGE = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.0])
EDGE_OTHER = np.array([0.0, 0.0, 1.0, 0.0, np.inf, 1.0, 0.0, np.nan])     # ties, inf and NaN on both sides

BOUNDARY = [
    ("abs", lambda x: x.abs(), lambda x: x.abs(), [EDGE]),
    ("clamp", lambda x: tinyres.clamp(x, -1.0, 1.0), lambda x: torch.clamp(x, -1.0, 1.0), [EDGE]),
    ("clamp-min", lambda x: tinyres.clamp(x, min=0.0), lambda x: torch.clamp(x, min=0.0), [EDGE]),
    ("maximum", tinyres.maximum, lambda a, b: torch.maximum(a, b), [EDGE, EDGE_OTHER]),
    ("max-dim-ties", lambda x: x.reshape(2, 4).max(1)[0], lambda x: x.reshape(2, 4).max(1)[0],
     [np.array([1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0])]),
    ("min-dim-nan", lambda x: x.reshape(2, 4).min(1)[0], lambda x: x.reshape(2, 4).min(1)[0],
     [np.array([1.0, 0.0, 0.0, 3.0, np.nan, 2.0, 1.0, 2.0])]),
]


# ---------------------------------------------------------------------- convolution (test_nn_conv.py)

def conv_case(n, c, h, w, o, k, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """Input shape, weight shape, bias flag and conv2d's keyword arguments."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return pytest.param((n, c, h, w), (o, c // groups, kh, kw), bias,
                        dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                        id=f"x{n}x{c}x{h}x{w}-w{o}x{kh}x{kw}-s{stride}-p{padding}-d{dilation}-g{groups}"
                           f"-b{int(bias)}")


CONV2D_CASES = [
    conv_case(2, 3, 5, 5, 4, 3),
    conv_case(1, 2, 6, 7, 3, 3, padding=1, bias=False),
    conv_case(2, 4, 7, 5, 4, 3, stride=2, padding=1, groups=2),
    conv_case(1, 3, 9, 8, 3, 3, stride=3, padding=2, groups=3),            # depthwise
    conv_case(1, 2, 7, 6, 2, 3, padding="same", dilation=2),
    conv_case(1, 2, 5, 6, 2, (2, 4), padding="same"),                      # even kernel: odd pixel after
    conv_case(2, 4, 5, 5, 6, 3, padding="valid", groups=2),
    conv_case(1, 3, 5, 6, 4, 1, stride=2),                                 # ResNet downsample 1x1
    conv_case(1, 2, 8, 9, 2, 5, stride=2, padding=2),
    conv_case(1, 1, 9, 10, 2, 7, stride=2, padding=3, bias=False),         # ResNet stem 7x7
    conv_case(1, 4, 8, 7, 8, 3, stride=2, padding=2, dilation=2, groups=4, bias=False),  # depthwise, multiplier 2
    conv_case(1, 2, 4, 6, 3, (1, 3), stride=(2, 1), padding=(0, 1), dilation=(2, 1)),
    conv_case(2, 1, 1, 5, 2, (1, 3)),                                      # size-1 spatial axis
    conv_case(1, 2, 3, 3, 2, 7, padding=2),                                # kernel larger than the input
    conv_case(5, 3, 4, 5, 2, 1, padding=1),       # 1x1 with padding: gx of a stride-1 conv by col2im
    conv_case(5, 4, 6, 6, 6, 3, padding=(2, 0), dilation=(1, 2), groups=2),     # gx by a dilated transposed conv
    conv_case(2, 6, 2, 2, 8, 3, padding=1, groups=2),  # a deep layer: fewer pixels than channels, rows split
    conv_case(3, 4, 3, 3, 9, 3, stride=2, padding=1),  # the same, strided: gx by col2im
]


CONV1D_CASES = [
    pytest.param((2, 3, 9), (4, 3, 3), dict(), id="basic"),
    pytest.param((1, 4, 10), (6, 2, 5), dict(stride=2, padding=2, groups=2), id="stride2-groups2"),
    pytest.param((2, 2, 7), (2, 2, 4), dict(padding="same", dilation=2), id="same-even-dilated"),
    pytest.param((1, 3, 8), (3, 1, 3), dict(stride=(3,), padding=(1,), groups=3), id="depthwise-tuples"),
    pytest.param((3, 6), (4, 3, 3), dict(padding=1), id="unbatched"),
]


# ---------------------------------------------------------------------- pooling (test_nn_pooling.py)

def distinct(*shape, dtype=np.float64, seed=0):
    """Values 0.1 apart in random order: no ties inside a pooling window, so max-pool
    gradients are well defined and finite differences don't cross a kink."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1 - n * 0.05).astype(dtype)


MAX_CASES = [
    ("k2", (2, 3, 6, 6), dict(kernel_size=2)),
    ("resnet-k3s2p1", (1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("k3s2p1-ceil", (1, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("k2s2-ceil-adds-window", (1, 1, 7, 8), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("k2s3-ceil-last-window-rule", (1, 2, 6, 9), dict(kernel_size=2, stride=3, ceil_mode=True)),
    ("k3s1p1d2", (2, 1, 5, 6), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    ("k1s2", (1, 3, 5, 5), dict(kernel_size=1, stride=2)),
    ("pairs-dilated-ceil", (1, 2, 8, 5), dict(kernel_size=(2, 3), stride=(3, 1), padding=(1, 1), dilation=2,
                                              ceil_mode=True)),
    ("unbatched", (3, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
]
AVG_CASES = [
    ("k2", (2, 3, 6, 6), dict(kernel_size=2)),
    ("k3s2p1", (1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("k3s2p1-ceil", (1, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("k3s2p1-ceil-exclude-pad", (1, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                   count_include_pad=False)),
    ("k2s2-ceil", (1, 1, 7, 8), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("k2s3p1-ceil-exclude-pad", (2, 2, 6, 7), dict(kernel_size=2, stride=3, padding=1, ceil_mode=True,
                                                   count_include_pad=False)),
    ("k3s3p1-ceil-exclude-pad", (1, 2, 6, 9), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True,
                                                   count_include_pad=False)),
    ("k5p2-exclude-pad", (1, 2, 5, 7), dict(kernel_size=5, stride=1, padding=2, count_include_pad=False)),
    ("pairs-ceil", (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), ceil_mode=True)),
    ("divisor-override", (1, 2, 5, 5), dict(kernel_size=3, stride=2, padding=1, divisor_override=4)),
    ("unbatched", (2, 5, 4), dict(kernel_size=2, stride=1, padding=1)),
]
ADAPTIVE_CASES = [
    ("global", (2, 3, 7, 6), 1),
    ("2x3", (1, 2, 7, 6), (2, 3)),
    ("None-keeps-H", (1, 2, 7, 6), (None, 4)),
    ("larger-than-input", (1, 2, 5, 4), (7, 6)),
    ("identity", (1, 2, 5, 7), (5, 7)),
    ("unbatched", (3, 9, 5), (4, 2)),
]
POOL_2D = ([pytest.param("max_pool2d", shape, kw, id=f"max-{name}") for name, shape, kw in MAX_CASES]
           + [pytest.param("avg_pool2d", shape, kw, id=f"avg-{name}") for name, shape, kw in AVG_CASES]
           + [pytest.param(op, shape, dict(output_size=size), id=f"{op[:-6]}-{name}")
              for op in ("adaptive_avg_pool2d", "adaptive_max_pool2d") for name, shape, size in ADAPTIVE_CASES])


POOL_1D = [
    pytest.param("max_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), id="max-k3s2p1-ceil"),
    pytest.param("max_pool1d", dict(kernel_size=2, dilation=2), id="max-k2d2"),
    pytest.param("avg_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                 id="avg-k3s2p1-ceil-exclude"),
    pytest.param("adaptive_avg_pool1d", dict(output_size=4), id="adaptive-avg"),
    pytest.param("adaptive_max_pool1d", dict(output_size=3), id="adaptive-max"),
]


POOL_EDGES = [
    pytest.param(np.full((1, 1, 2, 2), -np.inf), (3, 1, 1), id="-inf-next-to-padding"),
    pytest.param([[[[1.0, np.nan], [3.0, 2.0]]]], (2, 2, 0), id="one-nan"),
    pytest.param([[[[np.nan, np.nan], [3.0, 2.0]]]], (2, 2, 0), id="two-nans-the-last-wins"),
    pytest.param([[[[np.nan, 1, 2], [3.0, np.nan, 5], [1, 2, 3]]]], (3, 1, 1), id="nans-with-padding"),
    pytest.param([[[[2.0, 2.0, -np.inf], [2.0, np.inf, 2.0], [0.0, 0.0, 0.0]]]], (2, 1, 1), id="ties-and-inf"),
]


# ---------------------------------------------------------------------- activations (test_nn_activation.py), pad

# (tinyres op, torch op): the same call in both libraries
ACTIVATIONS = {
    "relu": (F.relu, lambda x: TF.relu(x)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "leaky_relu_default": (F.leaky_relu, lambda x: TF.leaky_relu(x)),
    "sigmoid": (F.sigmoid, lambda x: torch.sigmoid(x)),
    "tanh": (F.tanh, lambda x: torch.tanh(x)),
    "softmax_dim1": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    "softmax_dim-1": (lambda x: F.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1)),
    "log_softmax_dim0": (lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0)),
    "log_softmax_dim-1": (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    "gelu": (F.gelu, lambda x: TF.gelu(x)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
}

# (input shape, pad) for F.pad (test_nn_linear.py)
PADS = [
    ((2, 3, 4, 5), (1, 1)),
    ((2, 3, 4, 5), (1, 2, 0, 3)),
    ((2, 3, 4, 5), (0, 1, 2, 0, 1, 1)),
    ((3, 4), (2, 0, 1, 1)),
    ((2, 3, 4, 5), (-1, 2, 1, -2)),     # negative pads crop
    ((1, 1, 3), (0, 0)),
]


# ---------------------------------------------------------------------- layers (test_nn_layers.py)

def small_cnn(n):
    return n.Sequential(
        n.Conv2d(3, 4, 3, padding=1, bias=False), n.BatchNorm2d(4), n.ReLU(inplace=True),
        n.MaxPool2d(3, stride=2, padding=1),
        n.Conv2d(4, 6, 3, stride=2, padding=1), n.BatchNorm2d(6), n.ReLU(),
        n.AdaptiveAvgPool2d((1, 1)), n.Flatten(), n.Dropout(0.0), n.Linear(6, 5), n.Identity())


LAYERS = {
    "conv2d": (lambda n: n.Conv2d(3, 4, 3), (2, 3, 6, 5)),
    "conv2d_strided_no_bias": (lambda n: n.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), (2, 3, 7, 6)),
    "conv2d_groups_dilation": (lambda n: n.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1),
                                                  groups=2), (1, 4, 7, 5)),
    "conv2d_same": (lambda n: n.Conv2d(2, 3, (3, 4), padding="same"), (2, 2, 5, 5)),
    "conv2d_unbatched": (lambda n: n.Conv2d(2, 3, 1), (2, 4, 3)),
    "conv1d": (lambda n: n.Conv1d(2, 4, 3, padding=1), (3, 2, 7)),
    "conv1d_depthwise": (lambda n: n.Conv1d(4, 4, 3, stride=2, groups=4), (2, 4, 9)),
    "linear": (lambda n: n.Linear(5, 3), (4, 5)),
    "linear_3d_no_bias": (lambda n: n.Linear(5, 3, bias=False), (2, 3, 5)),
    "batchnorm2d": (lambda n: n.BatchNorm2d(3), (4, 3, 3, 2)),
    "batchnorm2d_no_affine": (lambda n: n.BatchNorm2d(3, affine=False), (4, 3, 2, 2)),
    "batchnorm2d_no_bias": (lambda n: n.BatchNorm2d(3, bias=False), (4, 3, 2, 2)),
    "batchnorm2d_no_running_stats": (lambda n: n.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
    "batchnorm1d_2d": (lambda n: n.BatchNorm1d(3), (5, 3)),
    "batchnorm1d_3d": (lambda n: n.BatchNorm1d(3, momentum=None), (2, 3, 4)),
    "groupnorm": (lambda n: n.GroupNorm(2, 4), (3, 4, 3, 2)),
    "groupnorm_3d_eps": (lambda n: n.GroupNorm(3, 6, eps=1e-3), (2, 6, 5)),
    "groupnorm_no_affine": (lambda n: n.GroupNorm(1, 4, affine=False), (2, 4, 2, 2)),
    "groupnorm_no_bias": (lambda n: n.GroupNorm(4, 4, bias=False), (2, 4, 2, 3)),
    "layernorm": (lambda n: n.LayerNorm(5), (2, 3, 5)),
    "layernorm_2d_no_bias": (lambda n: n.LayerNorm((3, 2), eps=1e-3, bias=False), (2, 4, 3, 2)),
    "layernorm_no_affine": (lambda n: n.LayerNorm([4, 2], elementwise_affine=False), (3, 4, 2)),
    "conv_transpose2d": (lambda n: n.ConvTranspose2d(3, 4, 3), (2, 3, 4, 5)),
    "conv_transpose2d_strided": (lambda n: n.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1,
                                                             groups=2, bias=False), (1, 4, 3, 4)),
    "relu": (lambda n: n.ReLU(), (2, 3, 4)),
    "leaky_relu": (lambda n: n.LeakyReLU(0.2), (2, 3, 4)),
    "tanh": (lambda n: n.Tanh(), (2, 3, 4)),
    "sigmoid": (lambda n: n.Sigmoid(), (2, 3, 4)),
    "gelu": (lambda n: n.GELU(), (2, 3, 4)),
    "gelu_tanh": (lambda n: n.GELU("tanh"), (2, 3, 4)),
    "softplus": (lambda n: n.Softplus(beta=2.0, threshold=1.5), (2, 3, 4)),
    "softmax": (lambda n: n.Softmax(dim=1), (2, 3, 4)),
    "log_softmax": (lambda n: n.LogSoftmax(dim=-1), (2, 3, 4)),
    "maxpool2d": (lambda n: n.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    "maxpool2d_ceil": (lambda n: n.MaxPool2d(2, ceil_mode=True), (1, 2, 5, 5)),
    "avgpool2d": (lambda n: n.AvgPool2d(2), (2, 3, 5, 4)),
    "avgpool2d_padded": (lambda n: n.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 6)),
    "adaptive_avgpool2d": (lambda n: n.AdaptiveAvgPool2d((1, 1)), (2, 3, 5, 4)),
    "adaptive_avgpool2d_uneven": (lambda n: n.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7)),
    "adaptive_maxpool2d": (lambda n: n.AdaptiveMaxPool2d((2, 3)), (2, 3, 5, 7)),
    "upsample_nearest": (lambda n: n.Upsample(scale_factor=2), (2, 3, 3, 2)),
    "upsample_bilinear": (lambda n: n.Upsample(size=(5, 3), mode="bilinear"), (2, 3, 3, 4)),
    "upsample_bilinear_corners": (lambda n: n.Upsample(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=True),
                                  (1, 2, 4, 3)),
    "unfold": (lambda n: n.Unfold((2, 3), padding=1, stride=2), (2, 3, 5, 6)),
    "fold": (lambda n: n.Fold((4, 5), 2, dilation=(1, 2)), (2, 12, 9)),
    "flatten": (lambda n: n.Flatten(), (2, 3, 2, 2)),
    "flatten_middle": (lambda n: n.Flatten(1, 2), (2, 3, 2, 2)),
    "identity": (lambda n: n.Identity(7, key=1), (2, 3)),
    "dropout_p0": (lambda n: n.Dropout(0.0), (2, 3)),
    "small_cnn": (small_cnn, (2, 3, 9, 8)),
    # weight reparametrisations (tests/test_nn_parametrize.py): torch's u and v come with its state_dict
    "linear_weight_norm": (lambda n: n.utils.parametrizations.weight_norm(n.Linear(5, 3)), (4, 5)),
    "conv2d_weight_norm_dim1": (lambda n: n.utils.parametrizations.weight_norm(n.Conv2d(3, 4, 3), dim=1),
                                (2, 3, 5, 4)),
    "conv2d_spectral_norm": (lambda n: n.utils.parametrizations.spectral_norm(n.Conv2d(3, 4, 3),
                                                                              n_power_iterations=2), (2, 3, 6, 5)),
    "conv_transpose2d_spectral_norm": (lambda n: n.utils.parametrizations.spectral_norm(
        n.ConvTranspose2d(3, 4, 3, bias=False)), (2, 3, 4, 5)),
    "linear_old_spectral_norm": (lambda n: n.utils.spectral_norm(n.Linear(5, 3)), (4, 5)),
}


# ---------------------------------------------------------------------- test_optim.py, test_lr_scheduler.py

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=0.05, betas=(0.0, 0.9))),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
]


SCHEDULER_STEPS = 40
BASE_LRS = [0.1, 0.05, 0.3]

SCHEDULES = {
    "StepLR": lambda s, o: s.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda s, o: s.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3),
    "MultiStepLR-cifar": lambda s, o: s.MultiStepLR(o, milestones=[SCHEDULER_STEPS // 2, 3 * SCHEDULER_STEPS // 4]),
    "CosineAnnealingLR": lambda s, o: s.CosineAnnealingLR(o, T_max=13, eta_min=1e-3),
    "LinearLR": lambda s, o: s.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=9),
    "LinearLR-defaults": lambda s, o: s.LinearLR(o),
    "ExponentialLR": lambda s, o: s.ExponentialLR(o, gamma=0.93),
    "LambdaLR": lambda s, o: s.LambdaLR(o, lambda epoch: 1 / (1 + epoch)),
    "LambdaLR-per-group": lambda s, o: s.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: e + 1, abs]),
    "SequentialLR-warmup-cosine": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.01, total_iters=5), s.CosineAnnealingLR(o, T_max=30)],
        milestones=[5]),
    "SequentialLR-three": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, total_iters=4), s.StepLR(o, 4), s.ExponentialLR(o, 0.9)], milestones=[6, 20]),
    "OneCycleLR": lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5, 2.0], total_steps=SCHEDULER_STEPS + 1),
    "OneCycleLR-three-phase-linear": lambda s, o: s.OneCycleLR(
        o, max_lr=1.0, epochs=8, steps_per_epoch=5, three_phase=True, anneal_strategy="linear",
        base_momentum=[0.8, 0.7, 0.6], max_momentum=0.9, div_factor=10.0),
    "OneCycleLR-no-momentum": lambda s, o: s.OneCycleLR(
        o, max_lr=0.4, total_steps=SCHEDULER_STEPS, pct_start=0.25, cycle_momentum=False),
    "ConstantLR": lambda s, o: s.ConstantLR(o),
    "ConstantLR-factor": lambda s, o: s.ConstantLR(o, factor=0.5, total_iters=8),
    "PolynomialLR": lambda s, o: s.PolynomialLR(o),
    "PolynomialLR-power": lambda s, o: s.PolynomialLR(o, total_iters=30, power=2.0),
    "CyclicLR": lambda s, o: s.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "CyclicLR-up-down-per-group": lambda s, o: s.CyclicLR(o, base_lr=[0.01, 0.02, 0.001], max_lr=[0.1, 0.3, 0.2],
                                                          step_size_up=3, step_size_down=7),
    "CyclicLR-triangular2": lambda s, o: s.CyclicLR(o, 0.001, 0.1, step_size_up=3, mode="triangular2",
                                                    base_momentum=[0.7, 0.8, 0.85], max_momentum=0.95),
    "CyclicLR-exp_range": lambda s, o: s.CyclicLR(o, 0.001, 0.1, step_size_up=5, mode="exp_range", gamma=0.97),
    "CyclicLR-scale_fn-iterations": lambda s, o: s.CyclicLR(o, 0.01, 0.05, step_size_up=2, scale_fn=lambda x: 0.9 ** x,
                                                            scale_mode="iterations"),
    "CyclicLR-no-momentum": lambda s, o: s.CyclicLR(o, 0.01, 0.05, step_size_up=6, cycle_momentum=False),
    "ChainedScheduler-constant-exponential": lambda s, o: s.ChainedScheduler(
        [s.ConstantLR(o, factor=0.1, total_iters=20), s.ExponentialLR(o, gamma=0.9)]),
    "ChainedScheduler-linear-multistep": lambda s, o: s.ChainedScheduler(
        [s.LinearLR(o, start_factor=0.2, total_iters=6), s.MultiStepLR(o, milestones=[10, 25], gamma=0.5)],
        optimizer=o),
    "SequentialLR-constant-polynomial": lambda s, o: s.SequentialLR(
        o, [s.ConstantLR(o, factor=0.1, total_iters=3), s.PolynomialLR(o, total_iters=20, power=0.5)], milestones=[6]),
}
