"""The layers a ported PyTorch script reaches for beyond a ResNet (issue 22): erf and GELU,
LayerNorm, Softmax / LogSoftmax / Softplus as modules, Dropout2d, Upsample and interpolate,
Embedding, ConvTranspose2d, AdaptiveMaxPool2d, one_hot and normalize.

Each against torch in float64 (values and gradients; second order where it is a composite),
with torch's arguments, defaults and errors.  The modules also run, step by step against
torch.nn with torch's weights, as rows of tests/cases.py's LAYERS table (test_nn_layers.py,
test_gpu.py), and the functional ops as rows of ``tinyres gradcheck``'s table
(tinyres/app/checks.py: finite differences, torch in float32 and float64, strided inputs,
second derivatives; test_checks.py)."""
import warnings

import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, randn, TF, torch
from helpers import gradcheck, gradgradcheck  # the suite's tight tolerances
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy

import tinyres
from tinyres import nn
from tinyres.nn import functional as F

EDGES = np.array([0.0, -0.0, 1e-300, -1e-310, 0.5, -0.5, 3.0, -3.0, 6.0, -6.0, 10.0, -10.0, 30.0, -30.0,
                  np.inf, -np.inf, np.nan])


def as_torch(array):
    return torch.tensor(np.array(array))


# ---------------------------------------------------------------------- erf, GELU

@needs_torch
def test_erf_matches_torch_to_the_last_bits():
    x = np.concatenate([np.linspace(-7, 7, 4001), EDGES])
    ours, theirs = tinyres.erf(tinyres.tensor(x)).numpy(), torch.erf(as_torch(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=3e-16)
    assert np.array_equal(np.signbit(ours), np.signbit(theirs))              # erf(-0) = -0
    compare_with_torch(tinyres.erf, torch.erf, [np.linspace(-4, 4, 81)])
    compare_with_torch(lambda x: x.erf(), torch.erf, [randn(3, 4, dtype=np.float32)], contiguous=False)
    assert tinyres.erf(tinyres.tensor([1, 2])).dtype == np.float32               # integers: the default float


@needs_torch
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float64, False), (np.float32, False)])
def test_gelu_matches_torch(approximate, dtype, contiguous):
    x = np.concatenate([np.linspace(-12, 12, 600), EDGES[:-3]]).astype(dtype).reshape(-1, 2)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)   # (1 + tanh) cancels
    compare_with_torch(lambda t: F.gelu(t, approximate=approximate), lambda t: TF.gelu(t, approximate=approximate),
                       [x], contiguous=contiguous, **tol)
    compare_with_torch(nn.GELU(approximate), torch.nn.GELU(approximate), [x], **tol)


@needs_torch
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_at_inf_and_nan_and_to_second_order_as_torch(approximate):
    x = np.array([np.inf, -np.inf, np.nan, 0.0])
    ours = F.gelu(tinyres.tensor(x), approximate=approximate).numpy()
    np.testing.assert_array_equal(ours, TF.gelu(as_torch(x), approximate=approximate).numpy())
    compare_second_order_with_torch(lambda t: F.gelu(t, approximate=approximate),
                                    lambda t: TF.gelu(t, approximate=approximate), [randn(3, 4) * 2])
    x = tinyres.tensor(randn(2, 3), requires_grad=True)
    assert gradgradcheck(lambda t: F.gelu(t, approximate=approximate), [x])


def test_gelu_refuses_an_unknown_approximation_naming_the_caller():
    with pytest.raises(RuntimeError, match=r"gelu: approximate argument must be either 'none' or 'tanh', got 'erf'"):
        F.gelu(tinyres.zeros(2), approximate="erf")
    with pytest.raises(RuntimeError, match=r"GELU\(approximate='exact'\): approximate argument"):
        nn.GELU("exact")(tinyres.zeros(2))
    with pytest.raises(TypeError, match=r"GELU\(approximate='none'\): expected a Tensor, got list"):
        nn.GELU()([1.0])


# ---------------------------------------------------------------------- LayerNorm, normalize

@needs_torch
@pytest.mark.parametrize("shape, normalized", [((2, 3, 5), 5), ((2, 3, 5), (3, 5)), ((4,), [4]),
                                               ((2, 1, 3, 2), (3, 2))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(shape, normalized, affine):
    x = randn(*shape, seed=len(shape)) * 3 + 2
    w_shape = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    params = [randn(*w_shape, seed=1) + 1.5, randn(*w_shape, seed=2)] if affine else []
    compare_with_torch(lambda x, *p: F.layer_norm(x, normalized, *p, eps=1e-4),       # an int too, as nn.LayerNorm
                       lambda x, *p: TF.layer_norm(x, w_shape, *p, eps=1e-4), [x] + params, contiguous=affine)


def test_layer_norm_is_twice_differentiable():
    x, w, b = (tinyres.tensor(a, requires_grad=True)
               for a in (randn(2, 3, 4), randn(3, 4, seed=1), randn(3, 4, seed=2)))
    assert gradgradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b], nsamples=30)


def test_layer_norm_layer_parameters_and_errors():
    layer = nn.LayerNorm((3, 2))
    assert list(layer.state_dict()) == ["weight", "bias"] and layer.weight.shape == layer.bias.shape == (3, 2)
    assert np.all(layer.weight.numpy() == 1) and np.all(layer.bias.numpy() == 0)
    assert list(nn.LayerNorm(3, bias=False).state_dict()) == ["weight"]
    assert nn.LayerNorm(3, elementwise_affine=False).weight is None
    with pytest.raises(RuntimeError, match=r"LayerNorm\(\(3, 2\), eps=1e-05, elementwise_affine=True, bias=True\): "
                                           r"given normalized_shape=\(3, 2\), expected input with shape \(\*, 3, 2\), "
                                           r"got input of shape \(4, 2, 3\)"):
        layer(tinyres.zeros(4, 2, 3))
    with pytest.raises(RuntimeError, match=r"layer_norm: expected weight of shape \(3,\) \(normalized_shape\) and "
                                           r"dtype float32, got float32 of shape \(4,\)"):
        F.layer_norm(tinyres.zeros(2, 3), (3,), tinyres.ones(4))
    with pytest.raises(TypeError, match=r"LayerNorm\(.*\): expected a floating point input, got int64"):
        layer(tinyres.zeros(2, 3, 2, dtype=tinyres.int64))


@needs_torch
@pytest.mark.parametrize("p, dim", [(2.0, 1), (1, -1), (3.0, 0), (3.0, 1), (float("inf"), 1), (0.5, 2), (1.5, 1),
                                    (2.0, (0, 2)), (3.0, [1, 2])])
def test_normalize_matches_torch(p, dim):
    x = randn(3, 4, 2, low=0.1)
    x[1, :, 1] = 0.0            # zeros, a zero vector along dim 1: eps keeps it zero; torch's gradients at 0
    compare_with_torch(lambda t: F.normalize(t, p, dim), lambda t: TF.normalize(t, p, dim), [x])
    unit = F.normalize(tinyres.tensor(randn(5, 3)), dim=1).norm(dim=1).numpy()
    np.testing.assert_allclose(unit, 1.0, rtol=1e-15)
    with pytest.raises(IndexError, match=r"normalize: dim=3 is out of range for a tensor of shape \(3, 4, 2\)"):
        F.normalize(tinyres.tensor(x), dim=3)


# ---------------------------------------------------------------------- Softmax, LogSoftmax, Softplus

@needs_torch
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_layers_choose_the_implicit_dim_as_torch_and_warn(name, shape):
    x = randn(*shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice for (log_)?softmax has been deprecated"):
        y = compare_with_torch(getattr(nn, name)(), getattr(torch.nn, name)(), [x])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_with_torch(getattr(nn, name)(dim=-1), getattr(torch.nn, name)(dim=-1), [x])
    assert y.shape == shape


def test_softmax_layers_name_themselves_in_errors():
    with pytest.raises(IndexError, match=r"Softmax\(dim=2\): dim=2 is out of range for a tensor of shape \(3, 4\)"):
        nn.Softmax(dim=2)(tinyres.zeros(3, 4))
    with pytest.raises(TypeError, match=r"LogSoftmax: expected a Tensor as input, got float"):
        nn.LogSoftmax(1)(1.0)


@needs_torch
@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 1.0), (0.5, 3.0)])
def test_softplus_layer_matches_torch(beta, threshold):
    x = randn(4, 6, low=0.05) * 5
    compare_with_torch(nn.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold), [x])
    assert repr(nn.Softplus(beta, threshold)) == repr(torch.nn.Softplus(beta, threshold))


# ---------------------------------------------------------------------- Dropout2d

def test_dropout2d_zeros_whole_channels_and_scales_the_rest():
    x = tinyres.tensor(randn(40, 50, 3, 2) + 5.0, requires_grad=True)       # no zeros in x itself
    tinyres.manual_seed(0)
    y = nn.Dropout2d(0.3)(x)
    kept = (y.numpy() != 0).reshape(40, 50, -1)
    assert np.all(kept == kept[:, :, :1])                                   # whole channels
    mask = np.where(kept[:, :, :1, None], 1 / (1 - 0.3), 0.0)              # one value per (n, c)
    np.testing.assert_array_equal(y.numpy(), x.numpy() * mask)
    assert abs(1 - kept[:, :, 0].mean() - 0.3) < 0.03
    g = randn(*y.shape, seed=3)
    y.backward(tinyres.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), g * mask)
    tinyres.manual_seed(0)
    np.testing.assert_array_equal(F.dropout2d(x, 0.3).numpy(), y.numpy())  # the generator repeats


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_dropout2d_in_evaluation_is_the_identity_and_p_is_its_bounds(p):
    x = tinyres.tensor(randn(2, 3, 4, 4))
    layer = nn.Dropout2d(p).eval()
    assert layer(x) is x and F.dropout2d(x, p, training=False) is x
    y = nn.Dropout2d(p)(x).numpy()
    if p == 0.0:
        np.testing.assert_array_equal(y, x.numpy())
    if p == 1.0:
        assert np.all(y == 0)


def test_dropout2d_inplace_and_its_arguments_as_torch():
    x = tinyres.ones(4, 5, 2, 2)
    assert nn.Dropout2d(0.5, inplace=True)(x) is x and set(np.unique(x.numpy())) <= {0.0, 2.0}
    assert repr(nn.Dropout2d(0.2, True)) == "Dropout2d(p=0.2, inplace=True)"
    with pytest.raises(ValueError, match="Dropout2d: dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout2d(1.5)
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = F.dropout2d(tinyres.ones(6, 7, 5)).numpy()
    assert np.all(y == y[:, :, :1])                                 # (N, C, L): per (n, c), as torch
    with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d, which is deprecated"):
        F.dropout2d(tinyres.ones(2, 3, 2, 2, 2))
    with pytest.raises(RuntimeError, match=r"dropout2d: feature dropout requires at least 2 dimensions .* \(4,\)"):
        F.dropout2d(tinyres.ones(4))


def test_dropout2d_draws_its_channel_mask_on_the_device(fake_cupy):
    x = tinyres.tensor(randn(30, 20, 2, 3, dtype=np.float32) + 4, device="cuda:1", requires_grad=True)
    kept = (on(F.dropout2d(x, 0.25), "cuda:1").numpy() != 0).reshape(30, 20, -1)
    assert np.all(kept == kept[:, :, :1]) and 0.6 < kept.mean() < 0.9


# ---------------------------------------------------------------------- Upsample, interpolate

RESIZES = [
    dict(scale_factor=2), dict(scale_factor=3), dict(size=(7, 5)), dict(size=3), dict(scale_factor=(2.6, 0.6)),
    dict(size=(13, 11)), dict(scale_factor=1.1), dict(scale_factor=(1.7, 2.3), recompute_scale_factor=True),
    dict(scale_factor=0.5), dict(size=(2, 1)),
]
BILINEAR = [dict(r, mode="bilinear") for r in RESIZES] + [
    dict(size=(7, 9), mode="bilinear", align_corners=True), dict(size=(1, 1), mode="bilinear", align_corners=True),
    dict(scale_factor=(2.6, 0.6), mode="bilinear", align_corners=True), dict(size=(1, 3), mode="bilinear"),
]


@needs_torch
@pytest.mark.parametrize("kwargs", RESIZES + BILINEAR, ids=repr)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float64, False), (np.float32, False)])
def test_interpolate_matches_torch(kwargs, dtype, contiguous):
    """Nearest: the same pixels (torch's float32 index rule, bit for bit); bilinear: the same
    weights; the gradient adds back onto the pixels read."""
    x = randn(2, 3, 5, 4, dtype=dtype)
    compare_with_torch(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [x],
                       contiguous=contiguous)


OTHER_MODES = [     # (input shape, arguments): every mode on the inputs it takes
    ((2, 3, 5, 4), dict(scale_factor=2, mode="bicubic")), ((2, 3, 5, 4), dict(size=(7, 3), mode="bicubic")),
    ((2, 3, 5, 4), dict(size=(7, 3), mode="bicubic", align_corners=True)),
    ((2, 3, 6, 4), dict(scale_factor=(0.6, 1.7), mode="bicubic")), ((1, 2, 2, 2), dict(size=1, mode="bicubic")),
    ((2, 3, 7), dict(scale_factor=2.3, mode="linear")), ((2, 3, 7), dict(size=3, mode="linear", align_corners=True)),
    ((2, 3, 7), dict(size=5)), ((2, 3, 7), dict(scale_factor=0.7, mode="nearest-exact")),
    ((1, 2, 3, 4, 5), dict(scale_factor=1.5, mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(size=(2, 5, 3), mode="trilinear", align_corners=True)),
    ((1, 2, 3, 4, 5), dict(size=(2, 5, 3))), ((1, 2, 3, 4, 5), dict(size=(4, 2, 3), mode="area")),
    ((2, 3, 10), dict(scale_factor=0.7, mode="area")), ((2, 3, 9, 7), dict(size=(4, 3), mode="area")),
    ((2, 3, 5, 4), dict(size=(11, 9), mode="area")), ((2, 3, 9, 7), dict(scale_factor=0.7, mode="nearest-exact")),
    ((2, 3, 9, 7), dict(scale_factor=2.7, mode="nearest-exact")),
]


@needs_torch
@pytest.mark.parametrize("shape, kwargs", OTHER_MODES, ids=repr)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_in_every_mode_and_rank_matches_torch(shape, kwargs, dtype):
    """Signals (N, C, L) and volumes (N, C, D, H, W) too; 'bicubic' (Keys' A = -0.75, taps
    clamped at the border), 'area' (adaptive average pooling) and 'nearest-exact'."""
    x = randn(*shape, dtype=dtype)
    compare_with_torch(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [x])
    if dtype == np.float64:
        compare_second_order_with_torch(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs),
                                        [x])


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(size=(4, 7), mode="bilinear"),
                                    dict(scale_factor=1.5, mode="bilinear", align_corners=True)], ids=repr)
def test_upsample_layer_matches_torch_to_second_order(kwargs):
    x = randn(1, 2, 3, 4)
    compare_with_torch(nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs), [x])
    assert repr(nn.Upsample(**kwargs)) == repr(torch.nn.Upsample(**kwargs))
    compare_second_order_with_torch(nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs), [x])
    assert gradgradcheck(nn.Upsample(**kwargs), [tinyres.tensor(x, requires_grad=True)], nsamples=20)


@needs_torch
@pytest.mark.parametrize("name, kwargs", [("UpsamplingNearest2d", dict(scale_factor=2)),
                                          ("UpsamplingBilinear2d", dict(size=(5, 7))),
                                          ("UpsamplingBilinear2d", dict(scale_factor=2))], ids=repr)
def test_the_older_upsampling_names_match_torch(name, kwargs):
    """UpsamplingBilinear2d is bilinear with align_corners=True, unlike Upsample's default."""
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    compare_with_torch(ours, theirs, [randn(1, 2, 3, 4)])
    assert ours.align_corners == theirs.align_corners and ours.mode == theirs.mode


def test_interpolate_at_the_same_size_returns_a_new_tensor():
    x = tinyres.tensor(randn(1, 1, 3, 3))
    y = F.interpolate(x, size=3, mode="bilinear")
    assert y is not x and np.array_equal(y.numpy(), x.numpy())


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m, x: m.interpolate(x),
    lambda m, x: m.interpolate(x, size=3, scale_factor=2),
    lambda m, x: m.interpolate(x, size=3, align_corners=True),
    lambda m, x: m.interpolate(x, size=(3,), mode="bilinear"),
    lambda m, x: m.interpolate(x, scale_factor=(2, 2, 2)),
    lambda m, x: m.interpolate(x, size=(3.0, 2)),
    lambda m, x: m.interpolate(x, size=3, recompute_scale_factor=True),
    lambda m, x: m.interpolate(x, scale_factor=0.2),
    lambda m, x: m.interpolate(x, size=3, mode="bicubic-ish"),
    lambda m, x: m.interpolate(x[0], size=3, mode="bilinear"),
    lambda m, x: m.interpolate(x, size=3, mode="linear"),
    lambda m, x: m.interpolate(x, size=3, mode="trilinear"),
    lambda m, x: m.interpolate(x[0, 0], size=3),
    lambda m, x: m.interpolate(x, size=3, mode="area", align_corners=False),
    lambda m, x: m.interpolate(x, size=3, mode="nearest-exact", align_corners=True),
    lambda m, x: m.interpolate(x[None, None], size=3),
], ids=["neither", "both", "align_corners-nearest", "size-length", "scale-length", "float-size", "recompute-size",
        "empty-output", "unknown-mode", "3-d-bilinear", "4-d-linear", "4-d-trilinear", "2-d", "align_corners-area",
        "align_corners-nearest-exact", "6-d"])
def test_interpolate_refuses_what_torch_refuses(call):
    def error(module, x):
        with pytest.raises(Exception) as info:
            call(module, x)
        return info.value
    ours, theirs = error(F, tinyres.zeros(1, 1, 2, 2)), error(TF, torch.zeros(1, 1, 2, 2))
    assert type(ours) is type(theirs), (ours, theirs)
    assert str(ours).startswith("interpolate: ")


def test_upsample_names_itself_and_what_tinyres_does_not_resize():
    with pytest.raises(NotImplementedError, match=r"Upsample\(scale_factor=2.0, mode='lanczos'\): mode='lanczos' "
                                                  r"\(torch's antialiased resampling\) is not implemented; tinyres has "
                                                  r"'nearest', 'nearest-exact', 'area', 'linear'"):
        nn.Upsample(scale_factor=2, mode="lanczos")(tinyres.zeros(1, 1, 2, 2))
    with pytest.raises(NotImplementedError, match=r"Upsample\(size=4, mode='bilinear'\): got 3D input, but "
                                                  r"bilinear mode needs 4D input"):
        nn.Upsample(size=4, mode="bilinear")(tinyres.zeros(1, 2, 3))
    with pytest.raises(TypeError, match=r"mode='bilinear' expects a floating point input, got int64"):
        F.interpolate(tinyres.zeros(1, 1, 2, 2, dtype=tinyres.int64), size=3, mode="bilinear")
    labels = tinyres.tensor(np.arange(4).reshape(1, 1, 2, 2))              # nearest copies, any dtype
    np.testing.assert_array_equal(F.interpolate(labels, scale_factor=2).numpy()[0, 0, ::2, ::2], [[0, 1], [2, 3]])


# ---------------------------------------------------------------------- Embedding, one_hot

TOKENS = np.array([[1, 0, 3, 1], [2, 1, 1, 4]])


@needs_torch
@pytest.mark.parametrize("padding_idx", [None, 1, -1, 0])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_embedding_matches_torch_and_padding_rows_get_no_gradient(padding_idx, index_dtype):
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx).double()
    ours = nn.Embedding(5, 3, padding_idx=padding_idx)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.double()
    tokens = TOKENS.astype(index_dtype)
    y, ty = ours(tinyres.tensor(tokens)), theirs(torch.tensor(tokens))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    g = randn(*y.shape, seed=1)
    y.backward(tinyres.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-15, atol=0)
    if padding_idx is not None:
        assert np.all(ours.weight.grad.numpy()[padding_idx] == 0) and ours.padding_idx == padding_idx % 5
    compare_with_torch(lambda i, w: F.embedding(i, w, padding_idx), lambda i, w: TF.embedding(i, w, padding_idx),
                       [tokens, randn(5, 3)], contiguous=False)


def test_embedding_layer_initialisation_state_and_pretrained():
    tinyres.manual_seed(0)
    layer = nn.Embedding(1000, 8, padding_idx=2)
    w = layer.weight.numpy()
    assert w.shape == (1000, 8) and np.all(w[2] == 0) and abs(w.std() - 1) < 0.05
    assert list(layer.state_dict()) == ["weight"]
    assert repr(layer) == "Embedding(1000, 8, padding_idx=2)"
    table = tinyres.tensor(randn(4, 2))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and np.array_equal(frozen(tinyres.tensor([3])).numpy(), table.numpy()[[3]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_embedding_is_twice_differentiable():
    w = tinyres.tensor(randn(5, 3), requires_grad=True)
    assert gradgradcheck(lambda w: F.embedding(tinyres.tensor(TOKENS), w, padding_idx=1), [w])


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m: m.nn.functional.embedding(m.tensor([1.0]), m.zeros(3, 2)),
    lambda m: m.nn.functional.embedding(m.tensor([3]), m.zeros(3, 2)),
    lambda m: m.nn.functional.embedding(m.tensor([-1]), m.zeros(3, 2)),
    lambda m: m.nn.functional.embedding(m.tensor([1]), m.zeros(3)),
    lambda m: m.nn.Embedding(3, 2, padding_idx=3),
    lambda m: m.nn.Embedding(3, 2, padding_idx=-4),
    lambda m: m.nn.functional.embedding(m.tensor([1]), m.zeros(3, 2), padding_idx=5),
], ids=["float-indices", "index-too-large", "negative-index", "1-d-weight", "padding_idx", "negative-padding_idx",
        "functional-padding_idx"])
def test_embedding_refuses_what_torch_refuses(call):
    def error(module):
        with pytest.raises(Exception) as info:
            call(module)
        return info.value
    ours, theirs = error(tinyres), error(torch)
    assert type(ours) is type(theirs), (ours, theirs)


def test_embedding_errors_name_the_layer():
    with pytest.raises(RuntimeError, match=r"Embedding\(3, 2\): expected int64 \(Long\) or int32 \(Int\) indices, "
                                           r"got float32"):
        nn.Embedding(3, 2)(tinyres.tensor([1.0]))
    with pytest.raises(IndexError, match=r"Embedding\(3, 2\): index out of range in self: expected indices in "
                                         r"\[0, 3\) .* got values from 0 to 7"):
        nn.Embedding(3, 2)(tinyres.tensor([0, 7]))
    with pytest.raises(NotImplementedError, match=r"Embedding\(3, 2, max_norm=1.0\): max_norm=1.0 is not implemented"):
        nn.Embedding(3, 2, max_norm=1.0)(tinyres.tensor([0]))


@needs_torch
@pytest.mark.parametrize("values, num_classes", [([3, 0, 1], -1), ([[1, 2], [0, 2]], 4), ([], 3), (2, -1)])
def test_one_hot_matches_torch(values, num_classes):
    ours = F.one_hot(tinyres.tensor(np.array(values, dtype=np.int64)), num_classes)
    theirs = TF.one_hot(torch.tensor(np.array(values, dtype=np.int64)), num_classes)
    assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
@pytest.mark.parametrize("values, num_classes, dtype", [([1.0], -1, np.float64), ([1, -1], -1, np.int64),
                                                         ([1, 5], 3, np.int64), ([], -1, np.int64),
                                                         ([1, 2], -1, np.int32), ([1], 0, np.int64)])
def test_one_hot_refuses_what_torch_refuses(values, num_classes, dtype):
    with pytest.raises(RuntimeError) as ours:
        F.one_hot(tinyres.tensor(np.array(values, dtype=dtype)), num_classes)
    with pytest.raises(RuntimeError):
        TF.one_hot(torch.tensor(np.array(values, dtype=dtype)), num_classes)
    assert str(ours.value).startswith("one_hot: ")


def test_one_hot_on_the_device(fake_cupy):
    y = F.one_hot(tinyres.tensor([2, 0], device="cuda:1"), 3)
    np.testing.assert_array_equal(on(y, "cuda:1").numpy(), [[0, 0, 1], [1, 0, 0]])


# ---------------------------------------------------------------------- ConvTranspose2d

def transposed_case(n, c_in, h, w, c_out, k, **settings):
    groups = settings.get("groups", 1)
    kh, kw = (k, k) if isinstance(k, int) else k
    return pytest.param((n, c_in, h, w), (c_in, c_out // groups, kh, kw), settings,
                        id="-".join([f"x{n}x{c_in}x{h}x{w}", f"w{c_out}x{kh}x{kw}"] +
                                    [f"{k}{v}" for k, v in settings.items()]))


TRANSPOSED = [
    transposed_case(2, 3, 4, 5, 4, 3),
    transposed_case(2, 4, 3, 4, 6, (3, 2), stride=2),
    transposed_case(1, 4, 3, 3, 2, 3, stride=2, padding=1, output_padding=1),
    transposed_case(2, 2, 4, 3, 3, (2, 3), stride=(2, 3), padding=(0, 1), output_padding=(1, 2)),
    transposed_case(1, 2, 4, 4, 2, 3, dilation=2, output_padding=1),                  # rows no pixel reaches
    transposed_case(1, 4, 3, 4, 4, 3, stride=3, output_padding=2, groups=2),
    transposed_case(1, 6, 4, 3, 3, 3, padding=2, groups=3),                           # depthwise-like
    transposed_case(2, 2, 3, 3, 2, 3, stride=2, padding=3, dilation=2, output_padding=1),
    transposed_case(1, 2, 1, 1, 3, 4, stride=2),                                      # DCGAN's 1x1 start
]


@needs_torch
@pytest.mark.parametrize("x_shape, w_shape, settings", TRANSPOSED)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float64, False), (np.float32, False)])
def test_conv_transpose2d_matches_torch(x_shape, w_shape, settings, dtype, contiguous):
    arrays = [randn(*x_shape, dtype=dtype), randn(*w_shape, dtype=dtype, seed=1),
              randn(w_shape[1] * settings.get("groups", 1), dtype=dtype, seed=2)]
    tol = {} if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    compare_with_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **settings),
                       lambda x, w, b: TF.conv_transpose2d(x, w, b, **settings), arrays, contiguous=contiguous, **tol)


@needs_torch
@pytest.mark.parametrize("x_shape, w_shape, settings", [TRANSPOSED[2], TRANSPOSED[4], TRANSPOSED[5]])
def test_conv_transpose2d_second_derivatives_match_torch(x_shape, w_shape, settings):
    compare_second_order_with_torch(lambda x, w: F.conv_transpose2d(x, w, **settings),
                                    lambda x, w: TF.conv_transpose2d(x, w, **settings),
                                    [randn(*x_shape), randn(*w_shape, seed=1)])


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    """conv_transpose2d(y, w) = d<conv2d(x, w), y>/dx: the definition, checked directly."""
    x = tinyres.tensor(randn(2, 3, 7, 6), requires_grad=True)
    w, y = tinyres.tensor(randn(4, 3, 3, 3, seed=1)), randn(2, 4, 4, 3, seed=2)
    F.conv2d(x, w, stride=2, padding=1).backward(tinyres.tensor(y))
    gx = F.conv_transpose2d(tinyres.tensor(y), w, stride=2, padding=1, output_padding=(0, 1))
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy(), rtol=1e-13, atol=1e-13)
    assert gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1),
                     [tinyres.tensor(randn(1, 2, 3, 2), requires_grad=True),
                      tinyres.tensor(randn(2, 2, 2, 3, seed=1), requires_grad=True)])


@needs_torch
def test_conv_transpose2d_layer_output_size_and_unbatched_input_as_torch():
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.double()
    x = randn(1, 2, 4, 5)
    for size in [(8, 9), (7, 10), (1, 3, 8, 10)]:
        compare_with_torch(lambda t: ours(t, output_size=size), lambda t: theirs(t, output_size=size), [x])
    compare_with_torch(ours, theirs, [x[0]])
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3, .*\): requested an output size of \(9, 9\), but "
                                         r"valid sizes range from \[7, 9\] to \[8, 10\]"):
        ours(tinyres.tensor(x), output_size=(9, 9))
    assert repr(ours) == repr(theirs)
    assert tinyres.summary(nn.Sequential(ours), (2, 4, 5)).total_macs == 2 * 4 * 5 * 3 * 3 * 3


@pytest.mark.parametrize("build, input, error, match", [
    (lambda: nn.ConvTranspose2d(3, 4, 3), tinyres.zeros(1, 2, 5, 5), RuntimeError,
     r"ConvTranspose2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\)\): expected input with 3 channels, got input of "
     r"shape \(1, 2, 5, 5\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3), tinyres.zeros(2, 5), RuntimeError, r"expected 3-D \(unbatched\) or 4-D"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), tinyres.zeros(1, 2, 3, 3), RuntimeError,
     r"output padding must be smaller than either stride or dilation, but got output_padding=\(2, 2\), "
     r"stride=\(2, 2\), dilation=\(1, 1\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), None, ValueError, r"padding must be an int or a tuple"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), None, ValueError, r"must be divisible by groups \(2\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), None, ValueError,
     'Only "zeros" padding mode is supported for ConvTranspose2d'),
])
def test_conv_transpose2d_errors_name_the_layer(build, input, error, match):
    with pytest.raises(error, match=match):
        build()(input)
    with pytest.raises(RuntimeError, match=r"conv_transpose2d: expected 4-D weight \(in_channels, "
                                           r"out_channels/groups, kH, kW\)"):
        F.conv_transpose2d(tinyres.zeros(1, 2, 3, 3), tinyres.zeros(2, 3, 3))


# ---------------------------------------------------------------------- AdaptiveMaxPool2d

@needs_torch
@pytest.mark.parametrize("output_size", [2, (3, 2), (None, 1)])
def test_adaptive_max_pool_layer_matches_torch_with_indices(output_size):
    x = randn(2, 3, 5, 7)
    compare_with_torch(nn.AdaptiveMaxPool2d(output_size), torch.nn.AdaptiveMaxPool2d(output_size), [x])
    values, indices = nn.AdaptiveMaxPool2d(output_size, return_indices=True)(tinyres.tensor(x))
    theirs = torch.nn.AdaptiveMaxPool2d(output_size, return_indices=True)(as_torch(x))
    np.testing.assert_array_equal(values.numpy(), theirs[0].numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs[1].numpy())
    assert repr(nn.AdaptiveMaxPool2d(output_size)) == repr(torch.nn.AdaptiveMaxPool2d(output_size))
    with pytest.raises(RuntimeError, match=r"AdaptiveMaxPool2d\(output_size=.*\): expected 3-D"):
        nn.AdaptiveMaxPool2d(output_size)(tinyres.zeros(3))


# ---------------------------------------------------------------------- the names, where torch has them

def test_the_ported_names_are_where_torch_has_them():
    for name in ["LayerNorm", "GELU", "Softmax", "LogSoftmax", "Softplus", "Dropout2d", "Upsample", "Embedding",
                 "ConvTranspose2d", "AdaptiveMaxPool2d"]:
        assert hasattr(nn, name) and hasattr(torch.nn if torch else nn, name), name
    for name in ["layer_norm", "gelu", "dropout2d", "interpolate", "embedding", "conv_transpose2d",
                 "adaptive_max_pool2d", "one_hot", "normalize"]:
        assert name in F.__all__ and callable(getattr(F, name)), name
    assert callable(tinyres.erf) and tinyres.Tensor.erf
