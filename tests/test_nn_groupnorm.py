"""group_norm and nn.GroupNorm: the hand-written backward against finite differences and
PyTorch (every shape rank, with and without the affine parameters, float32 and float64,
strided inputs), errors, and the layer in a model (summary, ResNet initialisation).
nn.GroupNorm against torch.nn.GroupNorm step by step is in test_nn_layers.py's table."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch

import tinyres
from helpers import gradcheck  # the suite's tight tolerances
from tinyres import nn
from tinyres.nn import functional as F

CASES = [((5, 6), 3), ((4, 6, 5), 2), ((2, 6, 3, 4), 3), ((2, 4, 3, 2), 4), ((3, 4, 2, 2), 1),
         ((1, 4, 2, 1, 3), 2), ((2, 3, 1, 2), 3)]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: {}}


def affine(c, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random(c) + 0.5).astype(dtype), rng.standard_normal(c).astype(dtype)


@needs_torch
@pytest.mark.parametrize("shape, groups", CASES)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float64, False), (np.float32, False)])
def test_group_norm_matches_torch(shape, groups, dtype, contiguous):
    x = randn(*shape, dtype=dtype, seed=sum(shape)) * 3 + 1     # a mean and a scale to take out
    compare_with_torch(lambda x, w, b: F.group_norm(x, groups, w, b),
                       lambda x, w, b: TF.group_norm(x, groups, w, b),
                       [x, *affine(shape[1], dtype)], contiguous=contiguous, **TOL[dtype])


@needs_torch
@pytest.mark.parametrize("which", ["none", "weight"])
def test_group_norm_without_affine_parameters_matches_torch(which):
    x = randn(3, 4, 2, 3)
    arrays = [x] if which == "none" else [x, affine(4, np.float64)[0]]
    compare_with_torch(lambda x, *w: F.group_norm(x, 2, *w, eps=1e-3),
                       lambda x, *w: TF.group_norm(x, 2, *w, eps=1e-3), arrays)


@needs_torch
def test_group_norm_with_a_bias_and_no_weight():
    """torch 2.13's backward fails there ("tensor does not have a device"): the check is
    against the same computation written with the weight set to ones."""
    x, b = randn(3, 4, 2, 3), affine(4, np.float64)[1]
    compare_with_torch(lambda x, b: F.group_norm(x, 2, None, b),
                       lambda x, b: TF.group_norm(x, 2, torch.ones(4, dtype=torch.float64), b), [x, b])


@pytest.mark.parametrize("shape, groups", CASES)
def test_group_norm_gradcheck(shape, groups):
    """A random upstream gradient: with all ones the true input gradient is 0."""
    x = tinyres.tensor(randn(*shape, seed=3), requires_grad=True)
    w, b = (tinyres.tensor(a, requires_grad=True) for a in affine(shape[1], np.float64))
    assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b])


def test_group_norm_keeps_no_graph_without_grad():
    x = tinyres.tensor(randn(2, 4, 3))
    with tinyres.no_grad():
        y = F.group_norm(x, 2)
    assert y.grad_fn is None and y.dtype == np.float64


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.group_norm(x, 3), ValueError, r"number of channels \(4\) to be divisible by num_groups"),
    (lambda x: F.group_norm(x, 0), ValueError, "divisible by num_groups"),
    (lambda x: F.group_norm(x[0, 0], 1), ValueError, r"expected an input of shape \(N, C, \*\)"),
    (lambda x: F.group_norm(x, 2, tinyres.ones(3, dtype=tinyres.float64)), ValueError, "weight should contain C=4"),
    (lambda x: F.group_norm(x.numpy(), 2), TypeError, "group_norm: expected a Tensor as input, got ndarray"),
])
def test_group_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(tinyres.tensor(randn(2, 4, 3)))


@needs_torch
def test_the_layer_has_torchs_parameters_repr_and_errors():
    layer = nn.GroupNorm(2, 4)
    assert list(layer.state_dict()) == list(torch.nn.GroupNorm(2, 4).state_dict()) == ["weight", "bias"]
    assert repr(layer) == repr(torch.nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(nn.GroupNorm(2, 4, bias=False)) == repr(torch.nn.GroupNorm(2, 4, bias=False))
    assert list(nn.GroupNorm(2, 4, bias=False).state_dict()) == ["weight"] and nn.GroupNorm(2, 4, bias=False).bias is None
    assert list(nn.GroupNorm(2, 4, affine=False).state_dict()) == []
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(5\) must be divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 5)
    with pytest.raises(RuntimeError,
                       match=r"GroupNorm\(2, 4, .*\): expected input with 4 channels, got input of shape \(2, 3, 5\)"):
        layer(tinyres.zeros(2, 3, 5))


class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(4, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.gn(self.conv(x)))).flatten(1))


def test_the_layer_counts_in_summary_and_takes_the_resnet_initialisation():
    model = GroupNormNet()
    s = tinyres.summary(model, (3, 6, 6))
    row = next(r for r in s.rows if r[0] == "gn")
    assert row[1:4] == ("GroupNorm", (1, 8, 6, 6), 16)                  # its weight and bias
    assert s.total_params == 3 * 8 * 9 + 16 + 8 * 2 + 2
    assert s.total_macs == 6 * 6 * 8 * 27 + 2 * 8                       # the conv and the fc; normalization none
    with tinyres.no_grad():
        model.gn.weight.array[...] = 5
    tinyres.models.resnet.init_weights(model, zero_init_residual=False)
    assert np.all(model.gn.weight.numpy() == 1) and np.all(model.gn.bias.numpy() == 0)
