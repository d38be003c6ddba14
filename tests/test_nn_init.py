"""tinyres.nn.init: gains and fans equal torch's, the drawn values have the theoretical
statistics, everything is in place, seeded and dtype-preserving; the layers' default
initialisation follows torch's."""
import math
import warnings

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.nn as nn
from tinyres.nn import init

SHAPE = (128, 64, 3, 3)     # fan_in = 576, fan_out = 1152; 73,728 draws


@needs_torch
@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv_transpose2d", None), ("sigmoid", None),
    ("tanh", None), ("relu", None), ("selu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("leaky_relu", 0),
])
def test_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("nonlinearity, param, match", [
    ("softplus", None, "unsupported nonlinearity 'softplus'"), ("leaky_relu", "x", "not a valid number"),
    ("leaky_relu", True, "not a valid number"),
])
def test_gain_rejects_unknown_input(nonlinearity, param, match):
    with pytest.raises(ValueError, match=match):
        init.calculate_gain(nonlinearity, param)


@needs_torch
@pytest.mark.parametrize("shape", [(3, 5), (16, 3, 3, 3), (8, 4, 5), (4, 2, 1, 1), (1, 1)])
def test_fans_equal_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(tinyres.zeros(*shape)) == expected
    assert init._calculate_fan_in_and_fan_out is init.calculate_fan_in_and_fan_out


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions \(got shape \(5,\)\)"):
        init.calculate_fan_in_and_fan_out(tinyres.zeros(5))


def _uniform(bound):
    return {"mean": 0.0, "std": bound / math.sqrt(3), "bound": bound}


def _normal(std):
    return {"mean": 0.0, "std": std, "bound": None}


FAN_IN, FAN_OUT = 64 * 9, 128 * 9
CASES = {
    "uniform": (lambda t: init.uniform_(t, -2.0, 4.0), {"mean": 1.0, "std": 6 / math.sqrt(12), "bound": None}),
    "normal": (lambda t: init.normal_(t, 0.5, 2.0), {"mean": 0.5, "std": 2.0, "bound": None}),
    "xavier_uniform": (lambda t: init.xavier_uniform_(t, gain=2.0),
                       _uniform(2.0 * math.sqrt(6 / (FAN_IN + FAN_OUT)))),
    "xavier_normal": (lambda t: init.xavier_normal_(t), _normal(math.sqrt(2 / (FAN_IN + FAN_OUT)))),
    "kaiming_uniform": (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"),
                        _uniform(math.sqrt(3) * math.sqrt(2) / math.sqrt(FAN_IN))),
    "kaiming_uniform_a5": (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), _uniform(1 / math.sqrt(FAN_IN))),
    "kaiming_normal_fan_out": (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
                               _normal(math.sqrt(2) / math.sqrt(FAN_OUT))),
    "kaiming_normal_leaky": (lambda t: init.kaiming_normal_(t, a=0.1),
                             _normal(math.sqrt(2 / 1.01) / math.sqrt(FAN_IN))),
}


@pytest.mark.parametrize("case", CASES)
def test_random_init_statistics(case):
    fill, expected = CASES[case]
    t = tinyres.zeros(*SHAPE)
    assert fill(t) is t
    values = t.numpy().astype(np.float64)
    # the sample mean and std of n draws are within a few std / sqrt(n) of the truth
    n, std = values.size, expected["std"]
    assert abs(values.mean() - expected["mean"]) < 5 * std / math.sqrt(n)
    assert abs(values.std() - std) < 0.02 * std
    if expected["bound"] is not None:
        assert np.abs(values).max() <= expected["bound"]
        assert np.abs(values).max() > 0.99 * expected["bound"]


@pytest.mark.parametrize("case", CASES)
def test_random_init_is_in_place_seeded_and_keeps_dtype(case):
    fill, _ = CASES[case]
    p = nn.Parameter(tinyres.zeros(8, 4, 3, dtype=tinyres.float64))
    data = p.array
    tinyres.manual_seed(3)
    first = fill(p).numpy()
    tinyres.manual_seed(3)
    assert fill(p) is p and p.array is data and p.dtype == np.float64
    np.testing.assert_array_equal(p.numpy(), first)
    assert p.is_leaf and p.requires_grad and p.grad is None
    assert fill(tinyres.zeros(8, 4, 3)).dtype == np.float32


def test_explicit_generator():
    a = init.normal_(tinyres.zeros(10), generator=np.random.default_rng(1)).numpy()
    b = init.normal_(tinyres.zeros(10), generator=np.random.default_rng(1)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fill, value", [
    (lambda t: init.constant_(t, 0.25), 0.25), (init.zeros_, 0.0), (init.ones_, 1.0)])
def test_constant_fills(fill, value):
    p = nn.Parameter(tinyres.full((2, 3), float("nan")))
    assert fill(p) is p
    np.testing.assert_array_equal(p.numpy(), np.full((2, 3), value, dtype=np.float32))
    assert p.dtype == np.float32


def test_bad_mode_and_empty_tensor():
    with pytest.raises(ValueError, match="mode 'fan_avg' is not supported"):
        init.kaiming_uniform_(tinyres.zeros(3, 3), mode="fan_avg")
    empty = tinyres.zeros(0, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert init.kaiming_normal_(empty) is empty
    assert "zero-element" in str(caught[0].message)


# ---------------------------------------------------------------------- default layer init

@pytest.mark.parametrize("build, fan_in", [
    (lambda: nn.Conv2d(64, 96, 3), 64 * 9),
    (lambda: nn.Conv2d(64, 96, 3, groups=4), 16 * 9),
    (lambda: nn.Conv1d(32, 64, 5), 32 * 5),
    (lambda: nn.Linear(300, 200), 300),
])
def test_conv_and_linear_default_init_is_uniform_over_one_over_sqrt_fan_in(build, fan_in):
    layer = build()
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound / math.sqrt(3)
    assert np.abs(layer.bias.numpy()).max() <= bound and layer.bias.numpy().std() > 0


def test_default_init_is_seeded():
    tinyres.manual_seed(0)
    a = nn.Conv2d(2, 3, 3).weight.numpy()
    tinyres.manual_seed(0)
    np.testing.assert_array_equal(nn.Conv2d(2, 3, 3).weight.numpy(), a)


@needs_torch
def test_batchnorm_default_init_matches_torch():
    ours, theirs = nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    for (k, v), (tk, tv) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k == tk and v.shape == tuple(tv.shape)
        assert v.dtype == np.dtype(str(tv.dtype).replace("torch.", ""))
        np.testing.assert_array_equal(v.numpy(), tv.numpy())


@needs_torch
@pytest.mark.parametrize("build", [
    lambda n, **kw: n.Conv2d(4, 6, (3, 2), groups=2, **kw), lambda n, **kw: n.Conv1d(2, 4, 3, **kw),
    lambda n, **kw: n.Linear(5, 3, **kw), lambda n, **kw: n.BatchNorm1d(4, **kw),
])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_names_and_shapes_equal_torch(build, bias):
    kw = {"bias": bias}
    ours = {k: v.shape for k, v in build(nn, **kw).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in build(torch.nn, **kw).state_dict().items()}
    assert list(ours.items()) == list(theirs.items())
