"""The rest of torch.nn's activations (SELU, CELU, GLU, LogSigmoid, Softsign, the shrinks,
Threshold, Softmin, Softmax2d, RReLU), alpha dropout, Dropout3d and the in-place ``_`` forms:
values at 0, +-inf and NaN and gradients against torch in float64, module reprs, torch's errors;
the random ones by their properties (torch's formula, slopes, moments)."""
import math
import re
import warnings

import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, TF, torch  # None without torch

import tinyres
from tinyres import nn
from tinyres.nn import functional as F

# torch's values: 0, -0, +-inf, NaN, the shrinks' ends +-0.5, and ordinary values around them
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 0.2, -0.2, 1.0, -1.0, 3.0, -3.0, 30.0, -30.0])

# name: (tinyres op, torch op), the same call in both
OPS = {
    "selu": (F.selu, lambda x: TF.selu(x)),
    "celu": (F.celu, lambda x: TF.celu(x)),
    "logsigmoid": (F.logsigmoid, lambda x: TF.logsigmoid(x)),
    "softsign": (F.softsign, lambda x: TF.softsign(x)),
    "softshrink": (F.softshrink, lambda x: TF.softshrink(x)),
    "softshrink (0)": (lambda x: F.softshrink(x, 0.0), lambda x: TF.softshrink(x, 0.0)),
    "hardshrink": (F.hardshrink, lambda x: TF.hardshrink(x)),
    "hardshrink (-0.3)": (lambda x: F.hardshrink(x, -0.3), lambda x: TF.hardshrink(x, -0.3)),
    "tanhshrink": (F.tanhshrink, lambda x: TF.tanhshrink(x)),
    "threshold (0.2, -3)": (lambda x: F.threshold(x, 0.2, -3.0), lambda x: TF.threshold(x, 0.2, -3.0)),
    "rrelu (eval)": (F.rrelu, lambda x: TF.rrelu(x)),
}


def _nan_warnings_off():
    return np.errstate(invalid="ignore", divide="ignore")      # inf / inf (softsign), as torch: no warning


@needs_torch
@pytest.mark.parametrize("name", OPS)
def test_values_and_gradients_at_the_special_values_match_torch(name):
    """Including 0, the ends, +-inf and NaN, where torch defines the value and (NaN aside) the gradient."""
    ours, theirs = OPS[name]
    x = tinyres.tensor(SPECIAL, requires_grad=True)
    t = torch.tensor(SPECIAL, requires_grad=True)
    with _nan_warnings_off():
        y = ours(x)
        y.backward(tinyres.ones_like(y))
    ty = theirs(t)
    ty.backward(torch.ones_like(ty))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14, atol=0)
    number = ~np.isnan(SPECIAL)     # torch's gradient at NaN differs between its scalar and vectorised
    np.testing.assert_allclose(x.grad.numpy()[number], t.grad.numpy()[number], rtol=1e-14, atol=0)  # loops


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", OPS)
def test_random_values_match_torch(name, dtype, contiguous):
    x = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(dtype) * 2
    compare_with_torch(*OPS[name], [x], contiguous=contiguous)


@needs_torch
@pytest.mark.parametrize("alpha", [1.0, 0.7, 2.5])
def test_celu_values_match_torch_and_its_gradient_is_exact(alpha):
    """torch's celu backward rounds 1 / alpha to float32 (3e-8 off in float64 for alpha = 0.7),
    so the gradient is checked against the exact derivative, e^(x / alpha) for x <= 0."""
    x = np.random.default_rng(0).standard_normal(40) * 3
    y = F.celu(tinyres.tensor(x), alpha)
    np.testing.assert_allclose(y.numpy(), TF.celu(torch.tensor(x), alpha).numpy(), rtol=1e-14)
    xt = tinyres.tensor(x, requires_grad=True)
    F.celu(xt, alpha).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), np.where(x > 0, 1.0, np.exp(x / alpha)), rtol=1e-14)


@needs_torch
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_glu_and_softmin_match_torch(dim):
    x = np.random.default_rng(1).standard_normal((4, 6, 2))
    compare_with_torch(lambda t: F.glu(t, dim), lambda t: TF.glu(t, dim), [x], contiguous=False)
    compare_with_torch(lambda t: F.softmin(t, dim), lambda t: TF.softmin(t, dim), [x], contiguous=False)
    compare_second_order_with_torch(lambda t: F.glu(t, dim), lambda t: TF.glu(t, dim), [x])


@needs_torch
def test_glu_at_infinities_and_softmin_dtype_and_implicit_dim():
    x = np.array([[1.0, -2.0, np.inf, -np.inf], [np.nan, 0.0, 50.0, -50.0]])
    np.testing.assert_allclose(F.glu(tinyres.tensor(x)).numpy(), TF.glu(torch.tensor(x)).numpy(), rtol=1e-14)
    np.testing.assert_allclose(F.glu(tinyres.tensor(x), 0).numpy(), TF.glu(torch.tensor(x), 0).numpy(), rtol=1e-14)
    y = F.softmin(tinyres.tensor(x[:, :2].astype(np.float32)), 1, dtype=tinyres.float64)
    assert y.dtype == np.float64
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        y = F.softmin(tinyres.tensor(x[:, :2]))
    np.testing.assert_allclose(y.numpy(), TF.softmin(torch.tensor(x[:, :2]), 1).numpy(), rtol=1e-14)


MODULES = [  # (tinyres module, torch module): same arguments
    ("SELU", (), {}), ("SELU", (True,), {}), ("CELU", (), {}), ("CELU", (0.5,), {"inplace": True}),
    ("GLU", (), {}), ("GLU", (1,), {}), ("LogSigmoid", (), {}), ("Softsign", (), {}), ("Tanhshrink", (), {}),
    ("Softshrink", (), {}), ("Softshrink", (1,), {}), ("Hardshrink", (), {}), ("Hardshrink", (0.25,), {}),
    ("Threshold", (0.1, 20), {}), ("Threshold", (0.1, -2.0, True), {}), ("Softmin", (), {}), ("Softmin", (1,), {}),
    ("Softmax2d", (), {}), ("RReLU", (), {}), ("RReLU", (0.1, 0.3, True), {}), ("Dropout3d", (), {}),
    ("Dropout3d", (0.2, True), {}), ("AlphaDropout", (), {}), ("AlphaDropout", (0.1,), {}),
    ("FeatureAlphaDropout", (0.2, True), {}),
]


@needs_torch
@pytest.mark.parametrize("name, args, kwargs", MODULES, ids=lambda v: repr(v) if not isinstance(v, str) else v)
def test_module_repr_equals_torchs(name, args, kwargs):
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_the_torch_import_paths_hold_the_new_modules():
    from tinyres.nn.modules.activation import (CELU, GLU, SELU, Hardshrink, LogSigmoid, RReLU, Softmax2d,  # noqa
                                               Softmin, Softshrink, Softsign, Tanhshrink, Threshold)
    from tinyres.nn.modules.dropout import AlphaDropout, Dropout3d, FeatureAlphaDropout  # noqa: F401
    assert SELU is nn.SELU and Dropout3d is nn.Dropout3d


@needs_torch
@pytest.mark.parametrize("name, args", [("SELU", ()), ("CELU", (0.5,)), ("GLU", (1,)), ("LogSigmoid", ()),
                                        ("Softsign", ()), ("Tanhshrink", ()), ("Softshrink", (0.3,)),
                                        ("Hardshrink", (0.3,)), ("Threshold", (0.1, -2.0)), ("Softmin", (1,)),
                                        ("Softmax2d", ())])
def test_modules_compute_torchs_values(name, args):
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 5))
    compare_with_torch(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), [x])


def test_modules_refuse_a_non_tensor_naming_themselves():
    for layer in (nn.SELU(), nn.GLU(), nn.Softshrink(), nn.Threshold(0, 0), nn.Softmin(0), nn.RReLU(),
                  nn.AlphaDropout(), nn.Dropout3d()):
        with pytest.raises(TypeError, match=type(layer).__name__):
            layer([1.0, 2.0])


# ---------------------------------------------------------------------- errors, as torch raises them

def _cases():
    x = np.random.default_rng(0).standard_normal((3, 5))
    return [
        ("glu odd", lambda f: f.glu(x, 1), "Halving dimension must be even, but dimension 1 is size 5"),
        ("glu scalar", lambda f: f.glu(x[0, 0]), "glu does not support scalars"),
        ("glu dim", lambda f: f.glu(x, 3), r"Dimension out of range \(expected to be in range of \[-2, 1\]"),
        ("softshrink lambd", lambda f: f.softshrink(x, -0.5), "lambda must be in range"),
        ("celu alpha 0", lambda f: f.celu(x, 0.0), "alpha cannot be 0 for CELU"),
        ("rrelu bounds", lambda f: f.rrelu(x, 0.5, 0.1), "Lower bound should be less than or equal to the upper"),
        ("rrelu bounds, training", lambda f: f.rrelu(x, 0.5, 0.1, training=True), "Lower bound should be"),
        ("alpha_dropout p", lambda f: f.alpha_dropout(x, 1.5, True), "dropout probability has to be between 0 and 1"),
        ("feature_alpha_dropout p", lambda f: f.feature_alpha_dropout(x, -0.1), "dropout probability has to be"),
        ("feature_alpha_dropout 1-D", lambda f: f.feature_alpha_dropout(x[0], 0.5, True),
         "Feature dropout requires at least 2 dimensions in the input"),
        ("dropout3d p", lambda f: f.dropout3d(x, 2.0), "dropout probability has to be between 0 and 1"),
        ("dropout3d 0-D", lambda f: f.dropout3d(x[0, 0], 0.5), "Feature dropout requires at least 2 dimensions"),
    ]


@needs_torch
@pytest.mark.parametrize("name, call, message", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_errors_are_torchs(name, call, message):
    def run(f, wrap):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                call(_Wrapped(f, wrap))
            except Exception as e:       # noqa: BLE001 -- the types are compared below
                return e
        raise AssertionError(f"{name}: no error")
    ours, theirs = run(F, tinyres.tensor), run(TF, torch.tensor)
    assert type(ours) is type(theirs), (ours, theirs)
    assert re.search(message, str(ours)), str(ours)
    assert name.split()[0] in str(ours), f"the message names the op: {ours}"


class _Wrapped:
    """``F`` or torch's ``F``, with each array argument made a tensor of that library."""

    def __init__(self, module, wrap):
        self.module, self.wrap = module, wrap

    def __getattr__(self, op):
        fn = getattr(self.module, op)
        return lambda x, *args, **kwargs: fn(self.wrap(np.asarray(x)), *args, **kwargs)


@needs_torch
def test_softmax2d_and_dropout_modules_errors_are_torchs():
    for ours, theirs, x in [(nn.Softmax2d(), torch.nn.Softmax2d(), np.zeros((2, 3))),
                            (nn.Softmax2d(), torch.nn.Softmax2d(), np.zeros((1, 2, 3, 4, 5)))]:
        with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got"):
            ours(tinyres.tensor(x))
        with pytest.raises(ValueError):
            theirs(torch.tensor(x))
    for name in ("Dropout3d", "AlphaDropout", "FeatureAlphaDropout"):
        with pytest.raises(ValueError, match=f"{name}: dropout probability has to be between 0 and 1, but got 1.5"):
            getattr(nn, name)(1.5)
        with pytest.raises(ValueError):
            getattr(torch.nn, name)(1.5)


# ---------------------------------------------------------------------- the in-place forms

# name: (tinyres in-place call, torch in-place call), on the same arguments; celu's alphas have a 1 / alpha
# exact in float32, which torch's celu backward rounds it to (test_celu_values_match_torch_...)
INPLACE = {
    "selu_": (F.selu_, lambda x: TF.selu_(x)),
    "celu_": (lambda x: F.celu_(x, 0.5), lambda x: TF.celu_(x, 0.5)),
    "elu_": (lambda x: F.elu_(x, 0.6), lambda x: TF.elu_(x, 0.6)),
    "hardtanh_": (lambda x: F.hardtanh_(x, -0.4, 0.7), lambda x: TF.hardtanh_(x, -0.4, 0.7)),
    "leaky_relu_": (lambda x: F.leaky_relu_(x, 0.2), lambda x: TF.leaky_relu_(x, 0.2)),
    "threshold_": (lambda x: F.threshold_(x, 0.1, -2.0), lambda x: TF.threshold_(x, 0.1, -2.0)),
    "rrelu_ (eval)": (lambda x: F.rrelu_(x, 0.1, 0.3), lambda x: TF.rrelu_(x, 0.1, 0.3)),
    "selu (inplace)": (lambda x: F.selu(x, inplace=True), lambda x: TF.selu(x, inplace=True)),
    "celu (inplace)": (lambda x: F.celu(x, 2.0, inplace=True), lambda x: TF.celu(x, 2.0, inplace=True)),

    "threshold (inplace)": (lambda x: F.threshold(x, 0.1, 5.0, True), lambda x: TF.threshold(x, 0.1, 5.0, True)),
    "SELU(inplace=True)": (nn.SELU(inplace=True), torch.nn.SELU(inplace=True) if torch else None),
    "CELU(inplace=True)": (nn.CELU(0.5, inplace=True), torch.nn.CELU(0.5, inplace=True) if torch else None),
    "Threshold(inplace=True)": (nn.Threshold(0.0, 1.0, True), torch.nn.Threshold(0.0, 1.0, True) if torch else None),
    "RReLU(inplace=True).eval()": (nn.RReLU(inplace=True).eval(),
                                   torch.nn.RReLU(inplace=True).eval() if torch else None),
}
_X = np.array([[-1.5, -0.3, 0.05, 0.4, 2.0], [0.9, -2.2, 0.3, -0.05, 1.2]])


@needs_torch
@pytest.mark.parametrize("name", INPLACE)
def test_inplace_writes_into_a_tensor_that_needs_no_grad(name):
    ours, theirs = INPLACE[name]
    x, t = tinyres.tensor(_X), torch.tensor(_X)
    assert ours(x) is x
    theirs(t)
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-14)


@needs_torch
@pytest.mark.parametrize("name", INPLACE)
def test_inplace_in_a_graph_has_torchs_gradients_and_refuses_a_leaf(name):
    ours, theirs = INPLACE[name]
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad"):
        ours(tinyres.tensor(_X, requires_grad=True))
    compare_with_torch(lambda x: ours(x * 1.0), lambda x: theirs(x * 1.0), [_X])
    if "rrelu" not in name.lower() and "hardtanh" not in name and "leaky" not in name and "hreshold" not in name:
        compare_second_order_with_torch(lambda x: ours(x * 1.0), lambda x: theirs(x * 1.0), [_X])


def test_inplace_in_a_graph_bumps_the_version_and_returns_the_input():
    x = tinyres.tensor(_X, requires_grad=True)
    h = x * 2.0
    version = h._version
    y = F.selu_(h)
    assert y is h and h._version == version + 1
    y.sum().backward()
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    expected = 2.0 * np.where(2 * _X > 0, scale, scale * alpha * np.exp(2 * _X))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-14)


# ---------------------------------------------------------------------- RReLU in training (random)

def test_rrelu_training_draws_one_slope_per_negative_element_and_its_gradient_is_that_slope():
    lower, upper = 0.1, 0.4
    tinyres.manual_seed(0)
    a = np.random.default_rng(0).standard_normal((50, 40))
    x = tinyres.tensor(a, requires_grad=True)
    y = F.rrelu(x, lower, upper, training=True)
    y.backward(tinyres.ones_like(y))
    negative = a <= 0
    slope = y.numpy()[negative] / a[negative]
    assert np.all((slope >= lower) & (slope <= upper))
    assert len(np.unique(slope)) > 0.99 * negative.sum()             # one draw per element
    assert abs(slope.mean() - (lower + upper) / 2) < 0.01           # uniform on [lower, upper)
    np.testing.assert_array_equal(y.numpy()[~negative], a[~negative])
    np.testing.assert_allclose(x.grad.numpy()[negative], slope, rtol=1e-15)
    np.testing.assert_array_equal(x.grad.numpy()[~negative], 1.0)
    tinyres.manual_seed(0)                                           # the default generator: reproducible
    np.testing.assert_array_equal(F.rrelu(tinyres.tensor(a), lower, upper, training=True).numpy(), y.numpy())


def test_rrelu_training_second_derivative_is_zero_and_module_follows_training_flag():
    tinyres.manual_seed(1)
    x = tinyres.tensor(_X, requires_grad=True)
    y = F.rrelu(x, training=True)
    g, = tinyres.autograd.grad(y.sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), np.where(_X > 0, 1.0, y.numpy() / _X), rtol=1e-15)
    layer = nn.RReLU(0.2, 0.3)
    out = layer(tinyres.tensor(_X)).numpy()
    ratio = out[_X < 0] / _X[_X < 0]
    assert np.all((ratio >= 0.2) & (ratio <= 0.3))
    layer.eval()
    np.testing.assert_allclose(layer(tinyres.tensor(_X)).numpy(), np.where(_X > 0, _X, 0.25 * _X), rtol=1e-15)


def test_rrelu_training_in_place():
    tinyres.manual_seed(2)
    x = tinyres.tensor(_X)
    assert F.rrelu_(x, 0.1, 0.2, training=True) is x
    ratio = x.numpy()[_X < 0] / _X[_X < 0]
    assert np.all((ratio >= 0.1) & (ratio <= 0.2))


# ---------------------------------------------------------------------- alpha dropout (random)

ALPHA_PRIME = -1.7580993408473766        # torch's: -SELU scale * alpha


def _alpha_constants(p):
    a = 1.0 / math.sqrt((ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    return a, -a * ALPHA_PRIME * p


@pytest.mark.parametrize("op", [F.alpha_dropout, F.feature_alpha_dropout])
def test_alpha_dropout_is_the_identity_in_evaluation_and_at_p_0(op):
    x = tinyres.randn(3, 4, 5)
    assert op(x) is x and op(x, 0.3, training=False) is x and op(x, 0.0, training=True) is x
    layer = (nn.AlphaDropout if op is F.alpha_dropout else nn.FeatureAlphaDropout)(0.3).eval()
    assert layer(x) is x


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_a_x_plus_b_and_sets_the_rest_to_a_alpha_prime_plus_b(p):
    tinyres.manual_seed(0)
    a_, b_ = _alpha_constants(p)
    x = np.random.default_rng(1).standard_normal((40, 50))
    t = tinyres.tensor(x, requires_grad=True)
    y = F.alpha_dropout(t, p, training=True)
    y.backward(tinyres.ones_like(y))
    kept = np.isclose(y.numpy(), a_ * x + b_, rtol=1e-14, atol=0)
    dropped = np.isclose(y.numpy(), a_ * ALPHA_PRIME + b_, rtol=1e-14, atol=0)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - p) < 0.03
    np.testing.assert_allclose(t.grad.numpy(), np.where(kept, a_, 0.0), rtol=1e-15)   # gx = gy a m


def test_alpha_dropout_keeps_mean_and_variance_of_a_selu_normal_sample():
    """On x ~ N(0, 1), SELU's fixed point, the output keeps mean 0 and variance 1 (seeded)."""
    tinyres.manual_seed(3)
    x = tinyres.tensor(np.random.default_rng(3).standard_normal(200_000))
    for p in (0.2, 0.5):
        y = F.alpha_dropout(x, p, training=True).numpy()
        assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.02, (p, y.mean(), y.var())
    y = F.feature_alpha_dropout(x.reshape(2000, 100, 1), 0.3, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.04


def test_feature_alpha_dropout_draws_one_value_per_channel():
    tinyres.manual_seed(4)
    p = 0.4
    a_, b_ = _alpha_constants(p)
    x = np.random.default_rng(4).standard_normal((6, 8, 3, 2))
    y = F.feature_alpha_dropout(tinyres.tensor(x), p, training=True).numpy()
    kept = np.isclose(y, a_ * x + b_, rtol=1e-14, atol=0)
    dropped = np.isclose(y, a_ * ALPHA_PRIME + b_, rtol=1e-14, atol=0)
    assert np.all(kept | dropped) and dropped.any() and kept.any()
    per_channel = kept.reshape(6, 8, -1)
    assert np.all(per_channel.all(-1) | ~per_channel.any(-1))      # whole channels


@needs_torch
@pytest.mark.parametrize("op", ["alpha_dropout", "feature_alpha_dropout"])
def test_alpha_dropout_at_p_1_is_x_times_0_as_torch(op):
    x = np.array([[1.0, -2.0, np.inf], [0.5, np.nan, -0.0]])
    with _nan_warnings_off():       # inf * 0
        ours = getattr(F, op)(tinyres.tensor(x), 1.0, training=True).numpy()
    np.testing.assert_array_equal(ours, getattr(TF, op)(torch.tensor(x), 1.0, training=True).numpy())


def test_alpha_dropout_in_place_and_the_module_in_training():
    tinyres.manual_seed(5)
    x = tinyres.tensor(_X)
    assert F.alpha_dropout(x, 0.5, True, inplace=True) is x
    a_, b_ = _alpha_constants(0.5)
    y = nn.AlphaDropout(0.5)(tinyres.tensor(_X)).numpy()
    assert np.all(np.isclose(y, a_ * _X + b_, rtol=1e-14) | np.isclose(y, a_ * ALPHA_PRIME + b_, rtol=1e-14))


# ---------------------------------------------------------------------- dropout3d (random)

@pytest.mark.parametrize("shape, drawn", [((4, 6, 2, 3, 2), (4, 6, 1, 1, 1)), ((6, 2, 3, 2), (6, 1, 1, 1))],
                         ids=["batched", "unbatched"])
def test_dropout3d_zeroes_whole_channels_and_scales_the_rest(shape, drawn):
    tinyres.manual_seed(0)
    p = 0.4
    x = tinyres.tensor(np.random.default_rng(0).uniform(1, 2, shape), requires_grad=True)
    y = F.dropout3d(x, p)
    ratio = y.numpy() / x.numpy()
    mask = ratio.reshape(*[d for d in drawn if d != 1], -1)
    np.testing.assert_allclose(mask, np.broadcast_to(mask[..., :1], mask.shape), rtol=1e-14)  # one per channel
    assert set(np.unique(mask.round(12))) <= {0.0, round(1 / (1 - p), 12)}
    y.backward(tinyres.ones_like(y))
    np.testing.assert_allclose(x.grad.numpy(), ratio, rtol=1e-14)


def test_dropout3d_evaluation_other_ranks_and_the_module():
    x = tinyres.randn(2, 3, 2, 2, 2)
    assert F.dropout3d(x, 0.5, training=False) is x
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input to dropout3d"):
        y = F.dropout3d(tinyres.ones(5, 4, 3), 0.5)
    rows = y.numpy().reshape(5, -1)
    assert np.all(rows == rows[:, :1])                               # one draw per index of dim 0, as torch
    layer = nn.Dropout3d(0.5)
    assert set(np.unique(layer(tinyres.ones(2, 3, 2, 2, 2)).numpy())) <= {0.0, 2.0}
    assert layer.eval()(x) is x
    ones = tinyres.ones(2, 3, 2, 2, 2)
    assert F.dropout3d(ones, 0.5, inplace=True) is ones


# ---------------------------------------------------------------------- the random ones on a GPU (the CuPy double)

def test_the_random_ones_run_on_the_device(fake_cupy):
    """rrelu's slopes, alpha dropout's and dropout3d's masks are made on the input's device."""
    from cupy_double import on
    tinyres.manual_seed(0)
    a = np.random.default_rng(0).standard_normal((4, 6, 2, 3, 2))
    x = tinyres.tensor(a, device="cuda:0", requires_grad=True)
    for y in (F.rrelu(x, training=True), F.alpha_dropout(x, 0.3, True), F.feature_alpha_dropout(x, 0.3, True),
              F.dropout3d(x, 0.3), F.selu(x) + F.glu(x, 1).sum() + F.softshrink(x).sum()):
        assert y.device == x.device
        y.backward(tinyres.ones_like(y))
        assert on(x.grad, "cuda:0").shape == a.shape
        x.grad = None
    ratio = on(F.rrelu(x, 0.1, 0.2, training=True), "cuda:0").numpy()[a < 0] / a[a < 0]
    assert np.all((ratio >= 0.1) & (ratio <= 0.2))
