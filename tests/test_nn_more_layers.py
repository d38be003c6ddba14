"""More of torch.nn and torchvision that ported code reaches for: PReLU, ELU, Hardswish,
Hardsigmoid, Mish, InstanceNorm, HuberLoss, the distances, F.pad's reflect / replicate /
circular modes and Conv2d's padding_mode, softmax's implicit dim, ParameterList and
ParameterDict, nn.init's trunc_normal_, orthogonal_, eye_, dirac_ and torch's deprecated
names, Module.register_backward_hook, optim.lr_scheduler._LRScheduler, the
``nn.modules.<kind>`` import paths, and vision's ImageFolder and transforms.functional.

Each against torch in float64 (values and gradients, with 0, the kinks, +-inf and NaN for
the activations; second order where it is cheap); the random initialisations by their
statistics and shapes, not their bits.
"""
import itertools
import math
import warnings

import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, randn, TF, torch, write_images

import tinyres
from tinyres import nn, optim
from tinyres.nn import functional as F

EDGES = np.array([0.0, -0.0, 1e-300, -1e-310, 0.5, -0.5, 2.9, 3.0, -3.0, 3.1, 6.0, -6.0, 10.0, -10.0, 20.0, 21.0,
                  30.0, -30.0, 800.0, -800.0, np.inf, -np.inf, np.nan])


def as_torch(array):
    return torch.tensor(np.array(array))


def copy_parameters(module, torch_module):
    """``module`` with ``torch_module``'s parameters and buffers (the same names)."""
    module.load_state_dict({k: tinyres.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})
    return module


def assert_same_grads(module, torch_module, rtol=1e-10, atol=1e-12):
    theirs = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


# ---------------------------------------------------------------------- activations

ACTIVATIONS = {
    "elu": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "hardswish": (F.hardswish, lambda x: TF.hardswish(x)),
    "hardsigmoid": (F.hardsigmoid, lambda x: TF.hardsigmoid(x)),
    "mish": (F.mish, lambda x: TF.mish(x)),
    "prelu": (lambda x: F.prelu(x, tinyres.tensor(np.array([0.3], dtype=x.dtype))),
              lambda x: TF.prelu(x, torch.tensor([0.3], dtype=x.dtype))),
}


@needs_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_match_torch_to_the_bit_at_the_edges(name):
    """0 and -0, the kinks (0, +-3), large |x|, +-inf and NaN: values (and signs of zero) as
    torch's, gradients too (hardsigmoid's to 3e-8: torch multiplies by a float32 1/6; mish's,
    a chain of ops, to rounding)."""
    ours, theirs = ACTIVATIONS[name]
    x, px = tinyres.tensor(EDGES, requires_grad=True), as_torch(EDGES).requires_grad_()
    with np.errstate(invalid="ignore"):            # hardswish(-inf) is -inf * 0 = NaN, as in torch
        y = ours(x)
        y.backward(tinyres.ones(*y.shape, dtype=y.dtype))
    py = theirs(px)
    py.backward(torch.ones_like(py))
    np.testing.assert_allclose(y.numpy(), py.detach().numpy(), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(np.signbit(y.numpy()), np.signbit(py.detach().numpy()))
    rtol = {"hardsigmoid": 1e-7, "mish": 1e-13}.get(name, 1e-15)      # mish: the chain rule's rounding
    np.testing.assert_allclose(x.grad.numpy(), px.grad.numpy(), rtol=rtol, atol=0)


@needs_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_match_torch_on_random_strided_inputs_and_to_second_order(name):
    ours, theirs = ACTIVATIONS[name]
    x = randn(4, 6, low=0.05) * 2.5                     # |x| > 0.05, away from 0; +-3 not hit exactly
    tol = dict(rtol=1e-7) if name == "hardsigmoid" else {}
    compare_with_torch(ours, theirs, [x], contiguous=False, **tol)
    compare_with_torch(ours, theirs, [x.astype(np.float32)])
    if name != "hardsigmoid":                          # torch has no second derivative of hardsigmoid
        compare_second_order_with_torch(ours, theirs, [x])


def test_hardsigmoid_second_derivative_is_zero_and_its_gradient_one_sixth_inside():
    x = tinyres.tensor(np.array([-4.0, -3.0, -1.0, 0.0, 2.5, 3.0]), requires_grad=True)
    g, = tinyres.autograd.grad(F.hardsigmoid(x).sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [0, 0, 1 / 6, 1 / 6, 1 / 6, 0])
    h, = tinyres.autograd.grad(g.sum(), [x], allow_unused=True)
    assert h is None or not h.numpy().any()


@needs_torch
@pytest.mark.parametrize("shape, channels", [((2, 3, 4, 2), 3), ((2, 3), 3), ((5,), 1), ((2, 3, 4), 1)])
def test_prelu_matches_torch_per_channel_and_shared(shape, channels):
    x, w = randn(*shape, low=0.05), np.linspace(0.1, 0.4, channels)
    compare_with_torch(F.prelu, TF.prelu, [x, w])
    compare_second_order_with_torch(F.prelu, TF.prelu, [x, w])
    layer, theirs = nn.PReLU(channels, init=0.2).double(), torch.nn.PReLU(channels, init=0.2).double()
    assert list(layer.state_dict()) == ["weight"] and np.all(layer.weight.numpy() == np.float32(0.2))
    compare_with_torch(layer, theirs, [x])
    assert_same_grads(layer, theirs)


@needs_torch
def test_prelu_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size. Found parameter "
                                           "numbers = 2 and channel size = 3"):
        F.prelu(tinyres.zeros(2, 3), tinyres.zeros(2))
    with pytest.raises(RuntimeError, match="Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"):
        F.prelu(tinyres.zeros(2, 3), tinyres.zeros(1, 1))
    with pytest.raises(TypeError, match="prelu: expected a floating point tensor"):
        F.prelu(tinyres.tensor([1, 2]), tinyres.zeros(1))


@needs_torch
def test_activation_layers_repr_and_inplace_as_torch():
    for ours, theirs in [(nn.PReLU(), torch.nn.PReLU()), (nn.PReLU(3, 0.1), torch.nn.PReLU(3, 0.1)),
                         (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5, True), torch.nn.ELU(0.5, True)),
                         (nn.Hardswish(True), torch.nn.Hardswish(True)), (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
                         (nn.Mish(), torch.nn.Mish()), (nn.Mish(True), torch.nn.Mish(True))]:
        assert repr(ours) == repr(theirs)
    for layer, fn in [(nn.ELU(0.7, inplace=True), lambda x: TF.elu(x, 0.7)), (nn.Hardswish(True), TF.hardswish),
                      (nn.Hardsigmoid(True), TF.hardsigmoid), (nn.Mish(True), TF.mish)]:
        x = randn(3, 4)
        t = tinyres.tensor(x.copy())
        assert layer(t) is t                              # written into its input, as torch's inplace=True
        np.testing.assert_allclose(t.numpy(), fn(as_torch(x)).numpy(), rtol=1e-15)


# ---------------------------------------------------------------------- instance normalization

@needs_torch
@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (True, True), (False, True)])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5)])           # batched and unbatched
def test_instance_norm2d_matches_torch_in_training_and_evaluation(affine, track, shape):
    layer = nn.InstanceNorm2d(3, momentum=0.3, affine=affine, track_running_stats=track).double()
    theirs = torch.nn.InstanceNorm2d(3, momentum=0.3, affine=affine, track_running_stats=track).double()
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.normal_()
    copy_parameters(layer, theirs)
    assert list(layer.state_dict()) == list(theirs.state_dict()) and repr(layer) == repr(theirs)
    for step in range(2):
        compare_with_torch(layer, theirs, [randn(*shape, seed=step) * 2 + 1])
        if affine:
            assert_same_grads(layer, theirs)
            for p in (*layer.parameters(), *theirs.parameters()):
                p.grad = None
    for name, buffer in theirs.state_dict().items():
        np.testing.assert_allclose(layer.state_dict()[name].numpy(), buffer.numpy(), rtol=1e-12, err_msg=name)
    layer.eval(), theirs.eval()
    compare_with_torch(layer, theirs, [randn(*shape, seed=5)])


@needs_torch
def test_instance_norm_functional_matches_torch_to_second_order_and_its_running_stats():
    x, w, b = randn(2, 3, 4, 3), np.linspace(0.5, 1.5, 3), np.linspace(-1, 1, 3)
    compare_with_torch(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), lambda x, w, b: TF.instance_norm(
        x, weight=w, bias=b), [x, w, b], contiguous=False)
    compare_second_order_with_torch(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                                    lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), [x, w, b])
    compare_with_torch(lambda x: nn.InstanceNorm1d(3)(x), lambda x: torch.nn.InstanceNorm1d(3)(x), [randn(2, 3, 6)])
    mean, var = tinyres.zeros(3, dtype=np.float64), tinyres.ones(3, dtype=np.float64)
    t_mean, t_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    F.instance_norm(tinyres.tensor(x), mean, var, momentum=0.2)
    TF.instance_norm(as_torch(x), t_mean, t_var, momentum=0.2)
    np.testing.assert_allclose(mean.numpy(), t_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(var.numpy(), t_var.numpy(), rtol=1e-13)


def test_instance_norm_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(3)(tinyres.zeros(2, 3))
    with pytest.raises(ValueError, match="expected input's size at dim=1 to match num_features \\(3\\), but got: 4"):
        nn.InstanceNorm2d(3, affine=True)(tinyres.zeros(2, 4, 3, 3))
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        nn.InstanceNorm2d(3)(tinyres.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        F.instance_norm(tinyres.zeros(2, 3, 1, 1))
    with pytest.raises(RuntimeError, match="Expected running_mean and running_var to be defined"):
        F.instance_norm(tinyres.zeros(2, 3, 2, 2), use_input_stats=False)


def test_instance_norms_are_not_batch_norms_as_in_torch():
    from tinyres.nn.modules.batchnorm import _BatchNorm, _NormBase
    for layer, is_batch_norm in [(nn.BatchNorm1d(2), True), (nn.BatchNorm2d(2), True), (nn.SyncBatchNorm(2), True),
                                 (nn.InstanceNorm2d(2), False), (nn.InstanceNorm1d(2), False)]:
        assert isinstance(layer, _BatchNorm) == is_batch_norm and isinstance(layer, _NormBase)


# ---------------------------------------------------------------------- pad modes, Conv2d's padding_mode

MODES = ["reflect", "replicate", "circular"]


@needs_torch
@pytest.mark.parametrize("mode", MODES)
def test_pad_modes_match_torch_on_every_small_padding_including_crops(mode):
    x = np.arange(2 * 3 * 4.0).reshape(1, 2, 3, 4)
    checked = 0
    for left, right in itertools.product(range(-3, 5), repeat=2):
        for pads in [(left, right), (left, right, 1, -1), (left, right, 2, 2)]:
            try:
                want = TF.pad(as_torch(x if len(pads) == 4 else x[0]), pads, mode=mode).numpy()
            except (RuntimeError, NotImplementedError) as error:
                with pytest.raises(type(error)):
                    F.pad(tinyres.tensor(x if len(pads) == 4 else x[0]), pads, mode=mode)
                continue
            if mode == "circular" and max(left, right) > max(4 + min(left, 0) + min(right, 0), 0):
                with pytest.raises(RuntimeError, match="wrapping around more than once"):     # torch reads memory
                    F.pad(tinyres.tensor(x), pads + (0, 0) * (len(pads) == 2), mode=mode)     # it never wrote
                continue
            np.testing.assert_array_equal(F.pad(tinyres.tensor(x if len(pads) == 4 else x[0]), pads,
                                                mode=mode).numpy(), want, err_msg=str(pads))
            checked += 1
    assert checked > 100


@needs_torch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, pads", [((2, 3, 5, 4), (2, 1, 3, 0)), ((3, 5, 4), (1, 2)), ((2, 3, 4), (3, 2)),
                                         ((3, 4, 5), (2, 1, -1, 3)), ((1, 2, 3, 4, 3), (1, 1, 2, 0, 1, 2))])
def test_pad_modes_gradients_and_second_order_match_torch(mode, shape, pads):
    x = randn(*shape)
    compare_with_torch(lambda t: F.pad(t, pads, mode=mode), lambda t: TF.pad(t, pads, mode=mode), [x],
                       contiguous=False)
    compare_second_order_with_torch(lambda t: F.pad(t, pads, mode=mode), lambda t: TF.pad(t, pads, mode=mode), [x])


def test_pad_modes_refuse_what_torch_refuses():
    x = tinyres.zeros(1, 2, 3, 4)
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D input tensor"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(NotImplementedError, match="Padding size 4 is not supported for 2D input tensor"):
        F.pad(tinyres.zeros(3, 4), (1, 1, 1, 1), mode="replicate")
    with pytest.raises(RuntimeError, match=r"Padding size should be less than the corresponding input dimension, "
                                           r"but got: padding \(4, 4\) at dimension 3"):
        F.pad(x, (4, 4, 0, 0), mode="reflect")
    with pytest.raises(RuntimeError, match="Padding value causes wrapping around more than once"):
        F.pad(x, (5, 0, 0, 0), mode="circular")
    with pytest.raises(RuntimeError, match="Padding mode 'reflect' doesn't take in value argument"):
        F.pad(x, (1, 1, 1, 1), mode="reflect", value=1.0)
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode 'wrap'"):
        F.pad(x, (1, 1), mode="wrap")
    assert F.pad(x, (1, 1, 1, 1), mode="reflect", value=0.0).shape == (1, 2, 5, 6)


@needs_torch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("settings", [dict(padding=(1, 2)), dict(padding="same", dilation=(1, 2)),
                                      dict(padding=2, stride=2, groups=2), dict(padding="valid")])
def test_conv2d_padding_mode_matches_torch(mode, settings):
    layer = nn.Conv2d(4, 6, 3, padding_mode=mode, **settings).double()
    theirs = torch.nn.Conv2d(4, 6, 3, padding_mode=mode, **settings).double()
    copy_parameters(layer, theirs)
    assert repr(layer) == repr(theirs) and list(layer.state_dict()) == list(theirs.state_dict())
    assert layer._reversed_padding_repeated_twice == tuple(theirs._reversed_padding_repeated_twice)
    compare_with_torch(layer, theirs, [randn(2, 4, 6, 7)])
    assert_same_grads(layer, theirs)
    compare_with_torch(layer, theirs, [randn(4, 6, 7)])                   # unbatched


@needs_torch
def test_conv1d_circular_padding_and_the_modes_conv_layers_refuse():
    layer, theirs = nn.Conv1d(2, 3, 3, padding=2, padding_mode="circular").double(), \
        torch.nn.Conv1d(2, 3, 3, padding=2, padding_mode="circular").double()
    copy_parameters(layer, theirs)
    compare_with_torch(layer, theirs, [randn(2, 2, 5)])
    with pytest.raises(ValueError, match="padding_mode must be one of .*, but got padding_mode='wrap'"):
        nn.Conv2d(1, 1, 3, padding_mode="wrap")
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(RuntimeError, match=r"Conv2d\(1, 1, kernel_size=\(3, 3\).*padding_mode=reflect\): expected "
                                           r"3-D \(unbatched\) or 4-D"):
        nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")(tinyres.zeros(4, 4))


# ---------------------------------------------------------------------- softmax without dim

@needs_torch
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_without_dim_warns_and_picks_torchs_dim(name, shape):
    x = randn(*shape)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been deprecated"):
        compare_with_torch(getattr(F, name), lambda t: getattr(TF, name)(t), [x])
    with pytest.warns(UserWarning) as record:
        getattr(F, name)(tinyres.tensor(x))
    assert record[0].filename == __file__                                       # points at the caller
    with pytest.warns(UserWarning) as record:
        (nn.Softmax if name == "softmax" else nn.LogSoftmax)()(tinyres.tensor(x))
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(getattr(F, name)(tinyres.tensor(x), -1 if x.ndim else 0, dtype=np.float32).numpy(),
                                   getattr(TF, name)(as_torch(x), -1 if x.ndim else 0, dtype=torch.float32).numpy(),
                                   rtol=1e-6)


# ---------------------------------------------------------------------- HuberLoss, distances

@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_loss_matches_torch(reduction, delta):
    x, t, w = randn(4, 5) * 2, randn(4, 5, seed=1), np.abs(randn(4, 5, seed=2))
    compare_with_torch(lambda x, t: F.huber_loss(x, t, reduction, delta),
                       lambda x, t: TF.huber_loss(x, t, reduction, delta), [x, t])
    compare_second_order_with_torch(lambda x, t: F.huber_loss(x, t, reduction, delta),
                                    lambda x, t: TF.huber_loss(x, t, reduction, delta), [x, t])
    compare_with_torch(lambda x, t, w: F.huber_loss(x, t, reduction, delta, w),
                       lambda x, t, w: TF.huber_loss(x, t, reduction, delta, w), [x, t, w])
    compare_with_torch(nn.HuberLoss(reduction, delta), torch.nn.HuberLoss(reduction, delta), [x, t])


@needs_torch
def test_huber_loss_layer_and_errors_as_torch():
    assert repr(nn.HuberLoss()) == repr(torch.nn.HuberLoss()) and nn.HuberLoss(delta=2.0).delta == 2.0
    with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values for delta"):
        F.huber_loss(tinyres.zeros(3), tinyres.zeros(3), delta=0.0)
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        F.huber_loss(tinyres.zeros(3), tinyres.zeros(3), weight=tinyres.ones(2))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        nn.HuberLoss(reduction="avg")(tinyres.zeros(3), tinyres.zeros(3))
    with pytest.warns(UserWarning, match=r"Using a target size \(\(1,\)\) that is different to the input size"):
        compare_with_torch(F.huber_loss, TF.huber_loss, [randn(3), randn(1)])


@needs_torch
@pytest.mark.parametrize("shapes, dim", [(((4, 5), (4, 5)), 1), (((2, 3, 4), (3, 4)), -1), (((2, 3), (2, 1)), 0),
                                         (((5,), (5,)), 0)])
def test_cosine_similarity_matches_torch_with_broadcasting(shapes, dim):
    arrays = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    compare_with_torch(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim),
                       arrays)
    compare_second_order_with_torch(lambda a, b: F.cosine_similarity(a, b, dim),
                                    lambda a, b: TF.cosine_similarity(a, b, dim), arrays)
    compare_with_torch(nn.CosineSimilarity(dim), torch.nn.CosineSimilarity(dim), arrays)


@needs_torch
def test_cosine_similarity_clamps_short_vectors_as_torch_including_the_gradient():
    a, b = randn(3, 4) * 1e-3, randn(3, 4, seed=1)          # ||a|| < eps: its norm clamped in value only
    compare_with_torch(lambda a, b: F.cosine_similarity(a, b, eps=1e-2),
                       lambda a, b: TF.cosine_similarity(a, b, eps=1e-2), [a, b])
    compare_with_torch(F.cosine_similarity, TF.cosine_similarity, [np.zeros((2, 3)), randn(2, 3)])
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2"):
        F.cosine_similarity(tinyres.zeros(2, 3), tinyres.zeros(2, 3), dim=2)
    with pytest.raises(RuntimeError, match="do not broadcast"):
        F.cosine_similarity(tinyres.zeros(2, 3), tinyres.zeros(2))


@needs_torch
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance_matches_torch(p, keepdim):
    arrays = [randn(4, 5), randn(5, seed=1)]
    compare_with_torch(lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
                       lambda a, b: TF.pairwise_distance(a, b, p, keepdim=keepdim), arrays)
    compare_second_order_with_torch(lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
                                    lambda a, b: TF.pairwise_distance(a, b, p, keepdim=keepdim), arrays)
    compare_with_torch(nn.PairwiseDistance(p, keepdim=keepdim), torch.nn.PairwiseDistance(p, keepdim=keepdim),
                       arrays)
    compare_with_torch(F.pairwise_distance, TF.pairwise_distance, [randn(3), randn(3, seed=1)])
    compare_with_torch(F.pairwise_distance, TF.pairwise_distance, [np.array(1.0), np.array(2.0)])


# ---------------------------------------------------------------------- ParameterList, ParameterDict

def holder(lib):
    """A module of ``lib`` (tinyres or torch) holding a ParameterList and a ParameterDict."""
    nn_, make = (nn, tinyres.zeros) if lib is tinyres else (torch.nn, torch.zeros)
    module = nn_.Module()
    module.scales = nn_.ParameterList([nn_.Parameter(make(2))])
    module.scales.append(nn_.Parameter(make(3)))
    module.table = nn_.ParameterDict({"b": nn_.Parameter(make(1)), "a": nn_.Parameter(make(2, 2))})   # sorted
    module.table["c"] = nn_.Parameter(make(4))
    return module


@needs_torch
def test_parameter_list_and_dict_register_their_parameters_under_torchs_keys():
    ours, theirs = holder(tinyres), holder(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["scales.0", "scales.1", "table.a", "table.b",
                                                                     "table.c"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: tinyres.tensor(v.numpy() + 1) for k, v in theirs.state_dict().items()})
    assert float(ours.table["a"].sum()) == 4.0 and list(ours.table) == ["a", "b", "c"]
    assert repr(ours.scales).splitlines()[1] == "    (0): Parameter containing: [tinyres.float32 of size 2]"
    assert repr(theirs.scales).splitlines()[1] == "    (0): Parameter containing: [torch.float32 of size 2]"


def test_parameter_list_and_dict_behave_as_a_list_and_a_dict():
    plist = nn.ParameterList([tinyres.ones(2), tinyres.zeros(3)])
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in plist)      # tensors become Parameters
    assert len(plist) == 2 and plist[-1].shape == (3,) and len(plist[:1]) == 1
    plist[0] = tinyres.zeros(5)
    plist += [tinyres.ones(1)]
    assert [p.shape for p in plist] == [(5,), (3,), (1,)] and len(list(plist.parameters())) == 3
    with pytest.raises(IndexError):
        plist[3]
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        plist(1)
    pdict = nn.ParameterDict([("z", tinyres.ones(1)), ("y", tinyres.ones(2))])          # pairs: in their order
    assert list(pdict.keys()) == ["z", "y"] and "y" in pdict and pdict.get("x") is None
    assert pdict.pop("z").shape == (1,) and len(pdict) == 1 and list(pdict.state_dict()) == ["y"]
    pdict.update({"b": tinyres.zeros(1), "a": tinyres.zeros(1)})                            # a dict: sorted
    assert list(pdict) == ["y", "a", "b"] and list((pdict | {"c": tinyres.ones(1)}).keys())[-1] == "c"
    assert pdict.setdefault("d", tinyres.ones(3)).shape == (3,) and pdict.popitem()[0] == "d"
    with pytest.raises(TypeError, match="keys must be strings"):
        pdict[1] = tinyres.ones(1)


# ---------------------------------------------------------------------- nn.init

def test_init_deprecated_names_warn_as_torch_and_do_the_same():
    for old in ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
                "kaiming_uniform", "kaiming_normal", "orthogonal"]:
        args = {"constant": (0.3,), "dirac": ()}.get(old, ())
        w = tinyres.zeros(4, 4, 3) if old == "dirac" else tinyres.zeros(4, 4) if old == "eye" else tinyres.zeros(6, 5)
        with pytest.warns(FutureWarning, match=f"`nn.init.{old}` is now deprecated in favor of `nn.init.{old}_`.") \
                as record:
            assert getattr(nn.init, old)(w, *args) is w
        assert record[0].filename == __file__ and getattr(nn.init, old).__name__ == old
    w = tinyres.zeros(2, 3)
    with pytest.warns(FutureWarning):
        nn.init.constant(w, 0.3)
    assert np.all(w.numpy() == np.float32(0.3))


def _truncated_normal_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)          # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2                    # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    v = std ** 2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    return m, math.sqrt(v)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),    # p > 0.3
                                             (1.0, 2.0, 1.5, 2.0), (0.0, 1.0, 2.0, 3.5)])         # p < 0.3
def test_trunc_normal_has_the_truncated_normals_statistics(mean, std, a, b):
    w = nn.init.trunc_normal_(tinyres.empty(200, 500, dtype=np.float64), mean, std, a, b,
                              generator=np.random.default_rng(0))
    values = w.numpy()
    m, s = _truncated_normal_moments(mean, std, a, b)
    assert values.min() >= a and values.max() <= b
    assert abs(values.mean() - m) < 5 * s / math.sqrt(values.size) and abs(values.std() - s) < 0.01 * s
    assert len(np.unique(values)) == values.size                              # every draw its own
    with pytest.warns(UserWarning, match="mean is more than 2 std from \\[a, b\\] in nn.init.trunc_normal_"):
        nn.init.trunc_normal_(tinyres.empty(3), mean=5.0, std=1.0, a=-1.0, b=1.0)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 2, 2), (5, 5)])
def test_orthogonal_gives_orthonormal_rows_or_columns_times_the_gain(shape):
    w = nn.init.orthogonal_(tinyres.empty(*shape, dtype=np.float64), gain=2.0, generator=np.random.default_rng(0))
    q = w.numpy().reshape(shape[0], -1) / 2.0
    small = min(q.shape)
    gram = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        nn.init.orthogonal_(tinyres.empty(3))
    assert nn.init.orthogonal_(tinyres.empty(0, 3)).shape == (0, 3)


@needs_torch
@pytest.mark.parametrize("shape, groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((2, 4, 3, 3, 3), 1), ((4, 2, 5, 4), 2)])
def test_dirac_and_eye_are_torchs(shape, groups):
    np.testing.assert_array_equal(nn.init.dirac_(tinyres.empty(*shape), groups).numpy(),
                                  torch.nn.init.dirac_(torch.empty(shape), groups).numpy())
    for s in [(3, 5), (4, 4), (5, 2)]:
        np.testing.assert_array_equal(nn.init.eye_(tinyres.empty(*s)).numpy(), torch.nn.init.eye_(torch.empty(s)))
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        nn.init.dirac_(tinyres.empty(3, 3))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        nn.init.eye_(tinyres.empty(3))


# ---------------------------------------------------------------------- Module.register_backward_hook

@needs_torch
def test_register_backward_hook_on_a_one_op_module_sees_what_torchs_sees():
    seen = {}

    def hook(name):
        def record(module, grad_input, grad_output):
            seen[name] = [g.numpy() if hasattr(g, "numpy") and not hasattr(g, "detach") else g.detach().numpy()
                          for g in (*grad_input, *grad_output)]
        return record
    x, g = randn(3, 4, low=0.1), randn(3, 4, seed=1)
    ours, theirs = nn.ReLU(), torch.nn.ReLU()
    with pytest.warns(FutureWarning, match="register_backward_hook is deprecated in favor of "
                                           "register_full_backward_hook"):
        handle = ours.register_backward_hook(hook("ours"))
    theirs.register_backward_hook(hook("theirs"))
    t = tinyres.tensor(x, requires_grad=True)
    ours(t).backward(tinyres.tensor(g))
    p = as_torch(x).requires_grad_()
    theirs(p).backward(as_torch(g))
    assert len(seen["ours"]) == len(seen["theirs"]) == 2
    for a, b in zip(seen["ours"], seen["theirs"]):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    handle.remove()
    seen.clear()
    ours(tinyres.tensor(x, requires_grad=True)).sum().backward()
    assert not seen
    layer = nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda *args: None)
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks"):
        layer.register_backward_hook(lambda *args: None)


# ---------------------------------------------------------------------- _LRScheduler

class _WarmUp:
    """A custom schedule as older scripts write it: linear warm-up, then constant."""

    def __init__(self, optimizer, warmup, last_epoch=-1):
        self.warmup = warmup
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * min(1.0, (self.last_epoch + 1) / self.warmup) for base in self.base_lrs]


@needs_torch
def test_lr_scheduler_old_base_class_runs_a_custom_warm_up_as_torch():
    ours_cls = type("WarmUp", (_WarmUp, optim.lr_scheduler._LRScheduler), {})
    theirs_cls = type("WarmUp", (_WarmUp, torch.optim.lr_scheduler._LRScheduler), {})
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    topt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    ours, theirs = ours_cls(opt, 4), theirs_cls(topt, 4)
    assert isinstance(ours, optim.lr_scheduler.LRScheduler)
    assert issubclass(optim.lr_scheduler._LRScheduler, optim.lr_scheduler.LRScheduler)
    for _ in range(6):
        assert ours.get_last_lr() == theirs.get_last_lr()
        opt.step(), topt.step()
        ours.step(), theirs.step()
    assert ours.last_epoch == theirs.last_epoch == 6


# ---------------------------------------------------------------------- the nn.modules import paths

@needs_torch
def test_nn_modules_paths_hold_torchs_names_and_tinyres_classes():
    import importlib
    import tinyres.nn.modules.batchnorm                      # noqa: F401  (as `import torch.nn.modules.batchnorm`)
    from tinyres.nn.modules.conv import _ConvNd
    from tinyres.nn.modules.utils import _pair, _single, _triple
    from tinyres.nn.parameter import Parameter
    assert isinstance(nn.Conv2d(1, 1, 1), _ConvNd) and isinstance(nn.ConvTranspose2d(1, 1, 1), _ConvNd)
    assert _pair(3) == (3, 3) and _pair((1, 2)) == (1, 2) and _single(2) == (2,) and _triple(1) == (1, 1, 1)
    assert Parameter is nn.Parameter and nn.modules.conv.Conv2d is nn.Conv2d and nn.modules.Module is nn.Module
    for kind in ["activation", "batchnorm", "container", "conv", "distance", "dropout", "flatten", "instancenorm",
                 "linear", "loss", "module", "normalization", "pooling", "sparse", "upsampling", "utils"]:
        ours, theirs = importlib.import_module(f"tinyres.nn.modules.{kind}"), getattr(torch.nn.modules, kind)
        names = [n for n, v in vars(ours).items() if isinstance(v, type) or n.startswith("_") and callable(v)]
        assert names and all(hasattr(theirs, n) for n in names), (kind, [n for n in names if not hasattr(theirs, n)])


# ---------------------------------------------------------------------- vision: ImageFolder, transforms.functional

def test_image_folder_is_torchvisions(tmp_path):
    from PIL import Image
    from tinyres.vision import datasets, transforms as T
    written = write_images(tmp_path, {"dog": 2, "cat": 1, "bird": 2})
    Image.fromarray(written[("cat", 0)][:, :, 0], "L").save(tmp_path / "cat" / "grey.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")                  # skipped, as torchvision skips it
    (tmp_path / "dog" / "more").mkdir()
    Image.fromarray(written[("dog", 0)]).save(tmp_path / "dog" / "more" / "deep.PNG")
    ds = datasets.ImageFolder(str(tmp_path), target_transform=lambda t: t * 10)
    assert ds.classes == ["bird", "cat", "dog"] and ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    assert [p[len(str(tmp_path)) + 1:] for p, _ in ds.samples] == [
        "bird/000.png", "bird/001.png", "cat/000.png", "cat/grey.png", "dog/000.png", "dog/001.png",
        "dog/more/deep.PNG"]
    assert ds.targets == [0, 0, 1, 1, 2, 2, 2] and ds.imgs is ds.samples and len(ds) == 7
    img, target = ds[3]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and target == 10                 # grey: made RGB
    np.testing.assert_array_equal(np.asarray(ds[0][0]), written[("bird", 0)])
    tensors = datasets.ImageFolder(tmp_path, transform=T.Compose([T.ToTensor()]))
    assert tensors[0][0].shape == (3, 6, 5) and "StandardTransform" in repr(tensors)
    only_png = datasets.ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith(".png"), loader=lambda p: p)
    assert len(only_png) == 6 and only_png[0][0].endswith("000.png")


def test_image_folder_refuses_what_torchvision_refuses(tmp_path):
    from tinyres.vision import datasets
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes empty. Supported extensions "
                                                "are: .jpg, .jpeg"):
        datasets.ImageFolder(tmp_path)
    assert len(datasets.ImageFolder(tmp_path, allow_empty=True)) == 0
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder in"):
        datasets.ImageFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="Both extensions and is_valid_file cannot be None or not None"):
        datasets.DatasetFolder(tmp_path, datasets.pil_loader, extensions=(".png",), is_valid_file=lambda p: True)


def test_transforms_functional_is_importable_and_is_what_the_transforms_do():
    import tinyres.vision.transforms.functional as TVF
    from PIL import Image
    from tinyres.vision import transforms as T
    array = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    tensor = TVF.to_tensor(image)
    np.testing.assert_array_equal(tensor.numpy(), T.ToTensor()(image).numpy())
    np.testing.assert_allclose(TVF.normalize(tensor, [0.5, 0.4, 0.3], [0.2, 0.3, 0.4]).numpy(),
                               (tensor.numpy() - np.array([0.5, 0.4, 0.3])[:, None, None])
                               / np.array([0.2, 0.3, 0.4])[:, None, None], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(TVF.hflip(image)), array[:, ::-1])
    np.testing.assert_array_equal(TVF.vflip(tensor).numpy(), tensor.numpy()[:, ::-1])
    np.testing.assert_array_equal(np.asarray(TVF.crop(image, 1, 2, 3, 2)), array[1:4, 2:4])
    np.testing.assert_array_equal(np.asarray(TVF.pad(image, 1)), np.pad(array, ((1, 1), (1, 1), (0, 0))))
    np.testing.assert_array_equal(TVF.center_crop(tensor, 4).numpy(), T.CenterCrop(4)(tensor).numpy())
    assert TVF.get_image_size(image) == [5, 6] and TVF.get_dimensions(tensor) == [3, 6, 5]
    np.testing.assert_array_equal(np.asarray(TVF.to_pil_image(tensor)), array)
    assert TVF.pil_to_tensor(image).dtype == np.uint8
