"""ChannelShuffle, LocalResponseNorm, RMSNorm, Bilinear, MaxUnpool1d/2d, LPPool1d/2d and
F.pdist, with their functional forms and the ``*_with_indices`` pools, against torch in
float64: values, gradients under a random upstream gradient (second order where torch has
it), module reprs, parameter names and shapes, initialisation bounds, and the errors torch
raises for bad input (the same exception type, the layer named in the message).
"""
import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, TF, tnn, torch

import tinyres
from tinyres import nn
from tinyres.nn import functional as F
from tinyres.testing import distinct

pytestmark = needs_torch

RNG = np.random.default_rng(0)


def rand(*shape, low=None):
    a = RNG.standard_normal(shape)
    return np.abs(a) + low if low is not None else a


# ---------------------------------------------------------------------- channel shuffle

@pytest.mark.parametrize("shape, groups", [((2, 6, 3), 2), ((2, 6, 3, 2), 3), ((1, 8, 2, 2, 3), 4), ((2, 4, 3), 1)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_channel_shuffle(shape, groups, contiguous):
    x = rand(*shape)
    compare_with_torch(lambda t: F.channel_shuffle(t, groups), lambda t: TF.channel_shuffle(t, groups), [x],
                       contiguous=contiguous)
    compare_with_torch(lambda t: F.native_channel_shuffle(t, groups), lambda t: TF.native_channel_shuffle(t, groups),
                       [x], grad=False)       # torch's native kernel has no derivative
    compare_with_torch(lambda t: nn.ChannelShuffle(groups)(t), lambda t: tnn.ChannelShuffle(groups)(t), [x])


def test_channel_shuffle_errors():
    x = tinyres.tensor(rand(2, 6, 3))
    with pytest.raises(RuntimeError, match=r"ChannelShuffle\(groups=4\).*divisible by groups. Got 6 channels and 4"):
        nn.ChannelShuffle(4)(x)
    with pytest.raises(RuntimeError, match="channel_shuffle.*must be positive"):
        F.channel_shuffle(x, 0)
    with pytest.raises(RuntimeError, match=r"channel_shuffle expects input with > 2 dims.*\[6, 3\]"):
        F.channel_shuffle(tinyres.tensor(rand(6, 3)), 2)
    for bad in (lambda: TF.channel_shuffle(torch.zeros(2, 6, 3), 4), lambda: TF.channel_shuffle(torch.zeros(6, 3), 2)):
        with pytest.raises(RuntimeError):
            bad()


# ---------------------------------------------------------------------- local response norm

@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 6, 3, 2), (1, 4, 2, 3, 2)])
@pytest.mark.parametrize("size, alpha, beta, k", [(3, 1e-4, 0.75, 1.0), (2, 0.5, 0.6, 2.0), (7, 1.3, 1.5, 0.5)])
def test_local_response_norm(shape, size, alpha, beta, k):
    x = rand(*shape) * 2
    compare_with_torch(lambda t: F.local_response_norm(t, size, alpha, beta, k),
                       lambda t: TF.local_response_norm(t, size, alpha, beta, k), [x])
    compare_with_torch(lambda t: nn.LocalResponseNorm(size, alpha, beta, k)(t),
                       lambda t: tnn.LocalResponseNorm(size, alpha, beta, k)(t), [x], contiguous=False)


def test_local_response_norm_second_order_and_errors():
    compare_second_order_with_torch(lambda t: F.local_response_norm(t, 3, 0.5, 0.75, 1.0),
                                    lambda t: TF.local_response_norm(t, 3, 0.5, 0.75, 1.0), [rand(2, 4, 3, 2)])
    assert F.local_response_norm(tinyres.zeros(0, 3, 2), 2).shape == (0, 3, 2)
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(2, .*Expected 3D or higher.*got 2 dimensions"):
        nn.LocalResponseNorm(2)(tinyres.tensor(rand(2, 3)))
    with pytest.raises(ValueError):
        tnn.LocalResponseNorm(2)(torch.zeros(2, 3))


# ---------------------------------------------------------------------- RMSNorm

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, normalized, eps", [((2, 3, 4), (4,), None), ((2, 3, 4), (3, 4), 1e-3),
                                                    ((5, 2), (2,), 0.5)])
def test_rms_norm(dtype, shape, normalized, eps):
    x, w = rand(*shape).astype(dtype), (rand(*np.atleast_1d(normalized)) + 1).astype(dtype)
    if dtype == np.float64:
        x[0] *= 1e-9          # a row whose mean square is below float64's eps: eps matters
    compare_with_torch(lambda t, u: F.rms_norm(t, normalized, u, eps), lambda t, u: TF.rms_norm(t, normalized, u, eps),
                       [x, w])
    compare_with_torch(lambda t: F.rms_norm(t, normalized, eps=eps), lambda t: TF.rms_norm(t, normalized, eps=eps), [x],
                       contiguous=False)


def test_rms_norm_module_second_order_and_errors():
    ours, theirs = nn.RMSNorm([3, 4], dtype=tinyres.float64), tnn.RMSNorm([3, 4], dtype=torch.float64)
    assert repr(ours) == repr(theirs) and repr(nn.RMSNorm(4, 1e-3, False)) == repr(tnn.RMSNorm(4, 1e-3, False))
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, tuple(p.shape)) for n, p in
                                                                 theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict()) and np.all(ours.weight.numpy() == 1)
    assert nn.RMSNorm(4, elementwise_affine=False).weight is None
    x = rand(2, 3, 4)
    ours.weight.data.copy_(tinyres.tensor(rand(3, 4) + 1))
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
    y, ty = ours(tinyres.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    compare_second_order_with_torch(lambda t, u: F.rms_norm(t, (4,), u), lambda t, u: TF.rms_norm(t, (4,), u),
                                    [x, rand(4) + 1])
    with pytest.raises(RuntimeError, match=r"RMSNorm\(\(3, 4\).*normalized_shape=\(3, 4\)"):
        ours(tinyres.tensor(rand(2, 4, 3)))
    with pytest.raises(RuntimeError):
        theirs(torch.zeros(2, 4, 3))
    with pytest.raises(RuntimeError, match="rms_norm: expected weight of shape"):
        F.rms_norm(tinyres.tensor(x), (4,), tinyres.ones(3, dtype=tinyres.float64))


# ---------------------------------------------------------------------- Bilinear

@pytest.mark.parametrize("batch", [(5,), (2, 3), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(batch, bias):
    arrays = [rand(*batch, 3), rand(*batch, 4), rand(2, 3, 4)] + ([rand(2)] if bias else [])
    compare_with_torch(F.bilinear, TF.bilinear, arrays, contiguous=False)
    compare_second_order_with_torch(F.bilinear, TF.bilinear, arrays)


def test_bilinear_module_init_and_errors():
    tinyres.manual_seed(0)
    ours, theirs = nn.Bilinear(20, 30, 40, dtype=tinyres.float64), tnn.Bilinear(20, 30, 40, dtype=torch.float64)
    assert repr(ours) == repr(theirs) == "Bilinear(in1_features=20, in2_features=30, out_features=40, bias=True)"
    assert repr(nn.Bilinear(2, 3, 4, bias=False)) == repr(tnn.Bilinear(2, 3, 4, bias=False))
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, tuple(p.shape)) for n, p in
                                                                 theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    bound = 1 / np.sqrt(20)
    for p in (ours.weight.numpy(), ours.bias.numpy()):      # U(-1/sqrt(in1), 1/sqrt(in1)): bounds and spread
        assert p.min() >= -bound and p.max() <= bound and p.max() - p.min() > 1.8 * bound * (p.size > 100 or 0.5)
    w = ours.weight.numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - bound / np.sqrt(3)) < 0.01
    assert nn.Bilinear(2, 3, 4, bias=False).bias is None
    x1, x2 = rand(5, 20), rand(5, 30)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
    np.testing.assert_allclose(ours(tinyres.tensor(x1), tinyres.tensor(x2)).numpy(),
                               theirs(torch.tensor(x1), torch.tensor(x2)).detach().numpy(), rtol=1e-10, atol=1e-12)
    bad = [((rand(3, 20), rand(4, 30)), "batch dimensions do not match at dim 0: got 3 and 4"),
           ((rand(3, 20), rand(3, 31)), "input2 size does not match weight size: got 31 but expected 30"),
           ((rand(3, 21), rand(3, 30)), "input1 size does not match weight size: got 21 but expected 20")]
    for (a, b), message in bad:
        with pytest.raises(RuntimeError, match=r"Bilinear\(in1_features=20.*" + message):
            ours(tinyres.tensor(a), tinyres.tensor(b))
        with pytest.raises(RuntimeError, match=message):
            theirs(torch.tensor(a), torch.tensor(b))
    with pytest.raises(RuntimeError, match="bilinear: bias size does not match"):
        F.bilinear(*(tinyres.tensor(a) for a in (rand(3, 2), rand(3, 3), rand(5, 2, 3), rand(4))))


# ---------------------------------------------------------------------- pools with indices, max unpool

@pytest.mark.parametrize("shape, args", [((2, 3, 7, 6), (3, 2, 1)), ((3, 5, 4), (2,)), ((2, 2, 6, 6), (2, 1, 0, 2, True))])
def test_max_pool2d_with_indices(shape, args):
    x = distinct(shape, RNG)
    y, i = F.max_pool2d_with_indices(tinyres.tensor(x), *args)
    ty, ti = TF.max_pool2d_with_indices(torch.tensor(x), *args)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert i.dtype == np.int64
    compare_with_torch(lambda t: F.max_pool2d_with_indices(t, *args)[0],
                       lambda t: TF.max_pool2d_with_indices(t, *args)[0], [x])


@pytest.mark.parametrize("shape, args", [((2, 3, 9), (3, 2, 1)), ((3, 7), (2,)), ((2, 2, 8), (2, 1, 0, 2, True))])
def test_max_pool1d_with_indices(shape, args):
    x = distinct(shape, RNG)
    (y, i), (ty, ti) = F.max_pool1d_with_indices(tinyres.tensor(x), *args), TF.max_pool1d_with_indices(torch.tensor(x), *args)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.parametrize("dims, shape, size", [(2, (2, 3, 7, 6), (3, 2)), (2, (3, 5, 4), 2), (1, (2, 3, 7), 3),
                                               (1, (3, 5), 4)])
def test_adaptive_max_pool_with_indices(dims, shape, size):
    ours, theirs = ((F.adaptive_max_pool1d_with_indices, TF.adaptive_max_pool1d_with_indices) if dims == 1 else
                    (F.adaptive_max_pool2d_with_indices, TF.adaptive_max_pool2d_with_indices))
    x = distinct(shape, RNG)
    (y, i), (ty, ti) = ours(tinyres.tensor(x), size), theirs(torch.tensor(x), size)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    compare_with_torch(lambda t: ours(t, size)[0], lambda t: theirs(t, size)[0], [x])


UNPOOL_2D = [((2, 3, 6, 6), dict(kernel_size=2), None), ((2, 3, 7, 5), dict(kernel_size=2), (7, 5)),
             ((1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1), (7, 6)),      # overlapping windows: repeats
             ((3, 6, 6), dict(kernel_size=(2, 3), stride=(2, 3)), (1, 3, 6, 6)), ((2, 2, 5, 5), dict(kernel_size=2), (5, 5))]


@pytest.mark.parametrize("shape, kw, output_size", UNPOOL_2D)
def test_max_unpool2d(shape, kw, output_size):
    x = distinct(shape, RNG)
    ty, ti = TF.max_pool2d(torch.tensor(x), **kw, return_indices=True)
    y, i = F.max_pool2d(tinyres.tensor(x), **kw, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    pooled, index = ty.numpy(), ti.numpy()
    unpool_kw = dict(kw, output_size=output_size)
    compare_with_torch(lambda t, j: F.max_unpool2d(t, j, **unpool_kw), lambda t, j: TF.max_unpool2d(t, j, **unpool_kw),
                       [pooled, index])
    compare_with_torch(lambda t, j: nn.MaxUnpool2d(**kw)(t, j, output_size),
                       lambda t, j: tnn.MaxUnpool2d(**kw)(t, j, output_size), [pooled, index], contiguous=False)
    compare_second_order_with_torch(lambda t: F.max_unpool2d(t, i, **unpool_kw),
                                    lambda t: TF.max_unpool2d(t, ti, **unpool_kw), [pooled])


@pytest.mark.parametrize("shape, kw, output_size", [((2, 3, 8), dict(kernel_size=2), None),
                                                    ((2, 3, 9), dict(kernel_size=3, stride=2, padding=1), (9,)),
                                                    ((3, 7), dict(kernel_size=2), [7])])
def test_max_unpool1d(shape, kw, output_size):
    x = distinct(shape, RNG)
    ty, ti = TF.max_pool1d(torch.tensor(x), **kw, return_indices=True)
    pooled, index = ty.numpy(), ti.numpy()
    unpool_kw = dict(kw, output_size=output_size)
    compare_with_torch(lambda t, j: F.max_unpool1d(t, j, **unpool_kw), lambda t, j: TF.max_unpool1d(t, j, **unpool_kw),
                       [pooled, index])
    compare_with_torch(lambda t, j: nn.MaxUnpool1d(**kw)(t, j, output_size),
                       lambda t, j: tnn.MaxUnpool1d(**kw)(t, j, output_size), [pooled, index])
    compare_second_order_with_torch(lambda t: F.max_unpool1d(t, tinyres.tensor(index), **unpool_kw),
                                    lambda t: TF.max_unpool1d(t, ti, **unpool_kw), [pooled])


def test_max_unpool_modules_and_errors():
    for args in [(2,), (3, 1, 1), ((2, 3),)]:
        assert repr(nn.MaxUnpool2d(*args)) == repr(tnn.MaxUnpool2d(*args))
    for args in [(2,), (3, 1, 1)]:
        assert repr(nn.MaxUnpool1d(*args)) == repr(tnn.MaxUnpool1d(*args))
    assert not list(nn.MaxUnpool2d(2).parameters())
    x = distinct((1, 1, 4, 4), RNG)
    ty, ti = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    y, i = tinyres.tensor(ty.numpy()), tinyres.tensor(ti.numpy())
    layer, tlayer = nn.MaxUnpool2d(2), tnn.MaxUnpool2d(2)
    name = r"MaxUnpool2d\(kernel_size=\(2, 2\), stride=\(2, 2\), padding=\(0, 0\)\)"
    cases = [((y, i + 10), (ty, ti + 10), RuntimeError, "Found an invalid max index: [0-9]+ .output volumes are of size 4x4"),
             ((y, -i - 1), (ty, -ti - 1), RuntimeError, "Found an invalid max index: -"),
             ((y, i[..., :1]), (ty, ti[..., :1]), RuntimeError, "Expected shape of indices to be same as that of the input"),
             ((y, i.double()), (ty, ti.double()), RuntimeError, "indices should be type int64"),
             ((y, i, (9, 9)), (ty, ti, (9, 9)), ValueError, r'invalid output_size "\(9, 9\)" \(dim 0 must be between 2 and 6\)'),
             ((y, i, (1, 2, 3)), (ty, ti, (1, 2, 3)), ValueError, "output_size should be a sequence containing 2 or 4"),
             ((y[0, 0], i[0, 0]), (ty[0, 0], ti[0, 0]), RuntimeError, "")]
    for ours, theirs, error, message in cases:
        with pytest.raises(error, match=name + ".*" + message):
            layer(*ours)
        with pytest.raises(error):
            tlayer(*theirs)
    with pytest.raises(RuntimeError, match=r"max_unpool1d: Found an invalid max index: [0-9]+ .output volumes are of size 4"):
        F.max_unpool1d(y[0], i[0] + 10, 2)
    with pytest.raises(RuntimeError):
        TF.max_unpool1d(ty[0], ti[0] + 10, 2)


# ---------------------------------------------------------------------- LP pool

LP_2D = [(2, 2, None, False), (3, (2, 3), 1, False), (1.5, 3, 2, True), (2, 2, (1, 2), True), (float("inf"), 2, 1, False),
         (-float("inf"), 3, 2, True), (1, 2, None, False)]


@pytest.mark.parametrize("p, kernel, stride, ceil", LP_2D)
def test_lp_pool2d(p, kernel, stride, ceil):
    x = distinct((2, 3, 7, 6), RNG) + (2.5 if p == 1.5 else 0)      # a fractional power of a negative is NaN
    compare_with_torch(lambda t: F.lp_pool2d(t, p, kernel, stride, ceil), lambda t: TF.lp_pool2d(t, p, kernel, stride, ceil),
                       [x], contiguous=False)
    compare_with_torch(lambda t: nn.LPPool2d(p, kernel, stride, ceil)(t), lambda t: tnn.LPPool2d(p, kernel, stride, ceil)(t),
                       [x[0]])
    if abs(p) != float("inf"):
        compare_second_order_with_torch(lambda t: F.lp_pool2d(t, p, kernel, stride, ceil),
                                        lambda t: TF.lp_pool2d(t, p, kernel, stride, ceil), [x])


@pytest.mark.parametrize("p, kernel, stride, ceil", [(2, 2, None, False), (3, 3, 1, True), (1.5, 2, 3, True),
                                                     (float("inf"), 2, 1, False)])
def test_lp_pool1d(p, kernel, stride, ceil):
    x = distinct((2, 3, 9), RNG) + (2.5 if p == 1.5 else 0)
    compare_with_torch(lambda t: F.lp_pool1d(t, p, kernel, stride, ceil), lambda t: TF.lp_pool1d(t, p, kernel, stride, ceil),
                       [x])
    compare_with_torch(lambda t: nn.LPPool1d(p, kernel, stride, ceil)(t), lambda t: tnn.LPPool1d(p, kernel, stride, ceil)(t),
                       [x[0]])


def test_lp_pool_zero_window_repr_and_errors():
    x = rand(1, 2, 4, 4)
    x[0, 0, :2, :2] = 0                          # a window of zeros: torch's gradient there is 0
    compare_with_torch(lambda t: F.lp_pool2d(t, 2, 2), lambda t: TF.lp_pool2d(t, 2, 2), [x])
    for args in [(2, 3), (1.5, (2, 3), 2, True)]:
        assert repr(nn.LPPool2d(*args)) == repr(tnn.LPPool2d(*args))
        assert repr(nn.LPPool1d(*args[:1], 3, *args[2:])) == repr(tnn.LPPool1d(*args[:1], 3, *args[2:]))
    with pytest.raises(RuntimeError, match=r"LPPool2d\(norm_type=2, kernel_size=2.*expected 3-D .* or 4-D"):
        nn.LPPool2d(2, 2)(tinyres.tensor(rand(1, 2, 3, 4, 4)))
    with pytest.raises(RuntimeError):
        tnn.LPPool2d(2, 2)(torch.zeros(1, 2, 3, 4, 4))
    with pytest.raises(RuntimeError, match=r"LPPool1d\(norm_type=2, kernel_size=2.*expected 2-D .* or 3-D"):
        nn.LPPool1d(2, 2)(tinyres.tensor(rand(1, 2, 3, 4)))
    with pytest.raises(RuntimeError):
        tnn.LPPool1d(2, 2)(torch.zeros(1, 2, 3, 4))


# ---------------------------------------------------------------------- pdist

@pytest.mark.parametrize("p", [2, 1, 3, 0.5, 0, float("inf")])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4), (1, 3)])
def test_pdist(p, shape):
    x = distinct(shape, RNG)
    compare_with_torch(lambda t: F.pdist(t, p), lambda t: TF.pdist(t, p), [x], contiguous=False)


@pytest.mark.parametrize("p", [2, 1, 3, float("inf")])
def test_pdist_coinciding_rows_and_ties(p):
    x = np.array([[1.0, 2.0, -1.0], [1.0, 2.0, -1.0], [0.0, 1.0, 0.0], [3.0, -2.0, 0.5]])   # rows 0, 1 coincide;
    compare_with_torch(lambda t: F.pdist(t, p), lambda t: TF.pdist(t, p), [x])             # |row 0 - row 2| all tie


def test_pdist_second_order_and_errors():
    i, j = np.triu_indices(4, 1)            # torch's pdist has no second derivative: its composite instead
    compare_second_order_with_torch(lambda t: F.pdist(t), lambda t: (t[i] - t[j]).norm(dim=1), [rand(4, 3)])
    compare_second_order_with_torch(lambda t: F.pdist(t, 3), lambda t: (t[i] - t[j]).norm(3, dim=1), [rand(4, 3)])
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 3D"):
        F.pdist(tinyres.tensor(rand(2, 3, 4)))
    with pytest.raises(RuntimeError, match="pdist only supports non-negative p values"):
        F.pdist(tinyres.tensor(rand(3, 4)), -1)
    for bad in (lambda: TF.pdist(torch.zeros(2, 3, 4)), lambda: TF.pdist(torch.zeros(3, 4), -1)):
        with pytest.raises(RuntimeError):
            bad()


# ---------------------------------------------------------------------- reprs, import paths

def test_reprs_and_torch_import_paths():
    pairs = [(nn.ChannelShuffle(3), tnn.ChannelShuffle(3)), (nn.LocalResponseNorm(3), tnn.LocalResponseNorm(3)),
             (nn.LocalResponseNorm(4, 0.1, 0.5, 2), tnn.LocalResponseNorm(4, 0.1, 0.5, 2)),
             (nn.RMSNorm(4), tnn.RMSNorm(4)), (nn.Bilinear(2, 3, 4), tnn.Bilinear(2, 3, 4))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    from tinyres.nn.modules import channelshuffle, distance, linear, normalization, pooling  # noqa: F401
    assert channelshuffle.ChannelShuffle is nn.ChannelShuffle and linear.Bilinear is nn.Bilinear
    assert normalization.RMSNorm is nn.RMSNorm and normalization.LocalResponseNorm is nn.LocalResponseNorm
    assert pooling.MaxUnpool2d is nn.MaxUnpool2d and pooling.LPPool1d is nn.LPPool1d
