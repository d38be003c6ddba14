"""tinyres.nn.utils against torch.nn.utils, float64: clip_grad_norm_ (every norm type, the
returned total, the clipped gradients), clip_grad_value_, parameters_to_vector and
vector_to_parameters; and nn.SyncBatchNorm.convert_sync_batchnorm."""
import math

import numpy as np
import pytest
from helpers import needs_torch, torch

import tinyres
from tinyres import nn

rng = np.random.default_rng(0)
SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def grads_pair(scale=1.0, missing=()):
    """The same parameters with gradients in both libraries (those in ``missing`` have none)."""
    arrays = [rng.standard_normal(s) for s in SHAPES]
    grads = [scale * rng.standard_normal(s) for s in SHAPES]
    ours, theirs = [], []
    for i, (a, g) in enumerate(zip(arrays, grads)):
        p, q = nn.Parameter(tinyres.tensor(a)), torch.nn.Parameter(torch.tensor(a))
        if i not in missing:
            p.grad, q.grad = tinyres.tensor(g), torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def assert_grads_equal(ours, theirs, rtol=1e-13):
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=1e-15)


@needs_torch
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, 0.5, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])     # clipped, and left alone (factor 1)
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = grads_pair(missing=(1,))
    norm_type = float(norm_type)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, tinyres.Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), want.item(), rtol=1e-13)
    assert_grads_equal(ours, theirs)


@needs_torch
def test_clip_grad_norm_of_one_tensor_and_of_none():
    ours, theirs = grads_pair()
    total = nn.utils.clip_grad_norm_(ours[0], 0.1)
    np.testing.assert_allclose(total.item(), torch.nn.utils.clip_grad_norm_(theirs[0], 0.1).item(), rtol=1e-13)
    assert_grads_equal(ours, theirs)
    p = nn.Parameter(tinyres.zeros(3))
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0


@needs_torch
def test_clip_grad_norm_nonfinite():
    ours, theirs = grads_pair()
    ours[0].grad.array[0, 0], theirs[0].grad[0, 0] = np.inf, np.inf
    with pytest.raises(RuntimeError, match="non-finite") as info:
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as torch_info:
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    assert str(info.value) == str(torch_info.value)
    total = nn.utils.clip_grad_norm_(ours, 1.0)          # scales by inf, as torch
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.item() == want.item() == math.inf
    assert_grads_equal(ours, theirs)


@needs_torch
@pytest.mark.parametrize("clip_value", [0.3, 5])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = grads_pair(missing=(2,))
    assert nn.utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert_grads_equal(ours, theirs, rtol=0)


@needs_torch
def test_parameters_to_vector_and_back():
    ours, theirs = grads_pair()
    vec = nn.utils.parameters_to_vector(ours)
    np.testing.assert_array_equal(vec.numpy(), torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    g = rng.standard_normal(vec.shape)
    for p in ours:
        p.grad = None
    (vec * tinyres.tensor(g)).sum().backward()            # differentiable, as torch's
    np.testing.assert_array_equal(np.concatenate([p.grad.numpy().ravel() for p in ours]), g)
    new = rng.standard_normal(vec.shape)
    nn.utils.vector_to_parameters(tinyres.tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, q in zip(ours, theirs):
        assert p.shape == tuple(q.shape)
        np.testing.assert_array_equal(p.numpy(), q.detach().numpy())


@needs_torch
def test_vector_to_parameters_refuses_a_non_tensor():
    ours, theirs = grads_pair()
    with pytest.raises(TypeError, match="expected Tensor, but got: ndarray"):
        nn.utils.vector_to_parameters(np.zeros(24), ours)
    with pytest.raises(TypeError):
        torch.nn.utils.vector_to_parameters(np.zeros(24), theirs)
    with pytest.raises(RuntimeError, match="24 entries"):
        nn.utils.vector_to_parameters(tinyres.zeros(3), ours)


def test_convert_sync_batchnorm_is_a_classmethod_that_keeps_the_weights():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                          nn.Sequential(nn.BatchNorm1d(4, momentum=None, affine=False)))
    model[1].running_mean.array[...] = 0.5
    model.eval()
    weight = model[1].weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert type(model[1]) is nn.SyncBatchNorm and type(model[2][0]) is nn.SyncBatchNorm
    assert model[1].weight is weight and float(model[1].running_mean.array[0]) == 0.5
    assert model[2][0].momentum is None and not model[2][0].affine and not model[1].training
    bn = nn.BatchNorm2d(3)
    assert type(nn.SyncBatchNorm.convert_sync_batchnorm(bn)) is nn.SyncBatchNorm
    assert tinyres.distributed.convert_sync_batchnorm(nn.BatchNorm2d(2)).__class__ is nn.SyncBatchNorm
    with pytest.raises(ValueError, match="process group"):
        nn.SyncBatchNorm.convert_sync_batchnorm(bn, process_group=object())
