"""torch.nn's padding layers, PixelShuffle/PixelUnshuffle, Unflatten, Dropout1d and the 1-d
pooling layers; torchvision's make_grid / save_image and its legacy ``pretrained=``.

Checked against torch in float64 (values, gradients, second order where cheap), repr and
errors.  torchvision does not load here: make_grid is checked against a NumPy reference
written from torchvision's documented layout, and known shapes.
"""
import warnings

import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, randn, TF, torch

import tinyres
from tinyres import nn
from tinyres.nn import functional as F
from tinyres.vision import models, utils as vutils


# ---------------------------------------------------------------------- padding layers

PADS = [("ReflectionPad1d", (2,), (2, 3, 5)), ("ReflectionPad1d", ((3, 1),), (3, 5)),
        ("ReflectionPad2d", ((1, 2, 3, 0),), (2, 3, 4, 5)), ("ReflectionPad2d", (1,), (3, 4, 5)),
        ("ReplicationPad1d", ((3, 0),), (2, 3, 4)), ("ReplicationPad2d", (2,), (2, 2, 3, 4)),
        ("ZeroPad1d", ((1, 2),), (2, 3)), ("ZeroPad2d", ((2, 1, 0, 3),), (2, 3, 4, 5)), ("ZeroPad2d", (1,), (4, 5)),
        ("ConstantPad1d", (2, 3.5), (2, 3, 4)), ("ConstantPad2d", ((1, 2, -1, 3), -1.0), (2, 3, 4, 5)),
        ("CircularPad1d", (2,), (2, 3, 4)), ("CircularPad2d", ((1, 2, 2, 1),), (2, 3, 4, 3)),
        ("ReflectionPad3d", (1,), (1, 2, 3, 3, 4)), ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), (2, 3, 2, 3)),
        ("ConstantPad3d", (1, 0.5), (1, 2, 2, 2, 2)), ("ZeroPad3d", ((0, 1, 1, 0, 2, 0),), (2, 2, 2, 2)),
        ("CircularPad3d", (1,), (1, 2, 2, 3, 2))]


@needs_torch
@pytest.mark.parametrize("name, args, shape", PADS)
def test_padding_layers_match_torch_values_gradients_and_repr(name, args, shape):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs) and ours.padding == tuple(theirs.padding)
    assert list(ours.state_dict()) == [] and isinstance(ours, nn.Module)
    x = randn(*shape)
    compare_with_torch(ours, theirs, [x], contiguous=False)
    if name.startswith(("Reflection", "Circular")):
        compare_second_order_with_torch(ours, theirs, [x])


@needs_torch
def test_padding_layers_refuse_what_torch_refuses():
    with pytest.raises(ValueError, match=r"CircularPad2d: expected 3D or 4D input \(got 2D input\)"):
        nn.CircularPad2d(1)(tinyres.zeros(3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 1D input\)"):
        nn.CircularPad1d(1)(tinyres.zeros(3))
    with pytest.raises(NotImplementedError, match="Padding size 4 is not supported for 2D input tensor"):
        nn.ReflectionPad2d(1)(tinyres.zeros(3, 4))
    with pytest.raises(RuntimeError, match="Padding size should be less than the corresponding input dimension"):
        nn.ReflectionPad1d(3)(tinyres.zeros(1, 2, 3))
    with pytest.raises(TypeError, match="ConstantPad1d: expected a Tensor"):
        nn.ConstantPad1d(1, 0.0)(np.zeros((2, 3)))
    with pytest.raises(TypeError):                                   # value has no default, as torch's
        nn.ConstantPad2d(1)


# ---------------------------------------------------------------------- pixel shuffle

@needs_torch
@pytest.mark.parametrize("shape, r", [((2, 8, 3, 2), 2), ((9, 2, 3), 3), ((2, 1, 4, 1, 2), 2), ((1, 3, 2, 2), 1)])
def test_pixel_shuffle_and_unshuffle_match_torch_and_invert_each_other(shape, r):
    x = randn(*shape)
    layer, theirs = nn.PixelShuffle(r), torch.nn.PixelShuffle(r)
    assert repr(layer) == repr(theirs) == f"PixelShuffle(upscale_factor={r})"
    if shape[-3] % (r * r) == 0:
        compare_with_torch(layer, theirs, [x], contiguous=False)
        compare_second_order_with_torch(lambda t: F.pixel_shuffle(t, r), lambda t: TF.pixel_shuffle(t, r), [x])
        y = F.pixel_shuffle(tinyres.tensor(x), r)
        np.testing.assert_array_equal(F.pixel_unshuffle(y, r).numpy(), x)
    z = randn(*shape[:-2], shape[-2] * r, shape[-1] * r)
    unshuffle = nn.PixelUnshuffle(r)
    assert repr(unshuffle) == repr(torch.nn.PixelUnshuffle(r))
    compare_with_torch(unshuffle, torch.nn.PixelUnshuffle(r), [z], contiguous=False)


def test_pixel_shuffle_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match=r"pixel_shuffle expects input to have at least 3 dimensions, but got "
                                           r"input with 2 dimension\(s\)"):
        F.pixel_shuffle(tinyres.zeros(3, 4), 2)
    with pytest.raises(RuntimeError, match=r"divisible by the square of upscale_factor, but input.size\(-3\)=5 is "
                                           r"not divisible by 4"):
        nn.PixelShuffle(2)(tinyres.zeros(1, 5, 2, 2))
    with pytest.raises(RuntimeError, match="pixel_shuffle expects a positive upscale_factor, but got 0"):
        F.pixel_shuffle(tinyres.zeros(1, 4, 2, 2), 0)
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle expects height to be divisible by downscale_factor, "
                                           r"but input.size\(-2\)=5 is not divisible by 2"):
        F.pixel_unshuffle(tinyres.zeros(1, 4, 5, 4), 2)
    with pytest.raises(RuntimeError, match=r"expects width to be divisible .* input.size\(-1\)=5"):
        nn.PixelUnshuffle(2)(tinyres.zeros(1, 4, 4, 5))
    with pytest.raises(RuntimeError, match="pixel_unshuffle expects a positive downscale_factor, but got -1"):
        F.pixel_unshuffle(tinyres.zeros(1, 4, 4, 4), -1)


# ---------------------------------------------------------------------- Unflatten

@needs_torch
@pytest.mark.parametrize("dim, sizes, shape", [(1, (2, 3), (4, 6)), (1, [2, -1], (4, 6, 2)), (-1, (2, 2, 1), (3, 4)),
                                               (0, (1, 3), (3,)), (-2, (-1, 1), (2, 5, 2))])
def test_unflatten_matches_torch(dim, sizes, shape):
    ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    assert repr(ours) == repr(theirs)
    compare_with_torch(ours, theirs, [randn(*shape)], contiguous=False)


def test_unflatten_is_flattens_inverse_and_refuses_what_torch_refuses():
    x = tinyres.tensor(randn(2, 3, 4, 5))
    np.testing.assert_array_equal(nn.Unflatten(1, (3, 4, 5))(nn.Flatten()(x)).numpy(), x.numpy())
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints, but found element of type str "
                                        "at pos 1"):
        nn.Unflatten(1, (2, "a"))
    with pytest.raises(TypeError, match="unflattened_size must be a tuple of ints, but found type int"):
        nn.Unflatten(1, 5)
    with pytest.raises(RuntimeError, match=r"unflatten: Provided sizes \[2, 3\] don't multiply up to the size of "
                                           r"dim 1 \(7\) in the input tensor"):
        nn.Unflatten(1, (2, 3))(tinyres.zeros(2, 7))
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        nn.Unflatten(1, (-1, -1))(tinyres.zeros(2, 6))
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2"):
        nn.Unflatten(2, (1, 1))(tinyres.zeros(2, 6))
    with pytest.raises(NotImplementedError, match="named tensors"):
        nn.Unflatten("features", (("C", 2), ("L", 3)))


# ---------------------------------------------------------------------- Dropout1d

@pytest.mark.parametrize("shape", [(40, 50, 3), (200, 4)])
def test_dropout1d_zeros_whole_channels_and_scales_the_rest(shape):
    x = tinyres.tensor(randn(*shape) + 5.0, requires_grad=True)             # no zeros in x itself
    tinyres.manual_seed(0)
    y = nn.Dropout1d(0.3)(x)
    kept = y.numpy() != 0
    assert np.all(kept == kept[..., :1])                                    # whole rows of length L
    mask = np.where(kept[..., :1], 1 / (1 - 0.3), 0.0)
    np.testing.assert_array_equal(y.numpy(), x.numpy() * mask)
    assert abs(1 - kept[..., 0].mean() - 0.3) < 0.05
    g = randn(*y.shape, seed=3)
    y.backward(tinyres.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), g * mask)
    tinyres.manual_seed(0)
    np.testing.assert_array_equal(F.dropout1d(x, 0.3).numpy(), y.numpy())  # the generator repeats


@needs_torch
def test_dropout1d_evaluation_inplace_repr_and_errors_as_torch():
    x = tinyres.tensor(randn(2, 3, 4))
    assert nn.Dropout1d(0.4).eval()(x) is x and F.dropout1d(x, 0.4, training=False) is x
    ones = tinyres.ones(4, 5, 3)
    assert nn.Dropout1d(0.5, inplace=True)(ones) is ones and set(np.unique(ones.numpy())) <= {0.0, 2.0}
    assert repr(nn.Dropout1d(0.2, True)) == repr(torch.nn.Dropout1d(0.2, True)) == "Dropout1d(p=0.2, inplace=True)"
    assert np.all(nn.Dropout1d(1.0)(x).numpy() == 0)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout1d(1.5)
    with pytest.raises(ValueError, match="dropout1d: dropout probability has to be between 0 and 1, but got -0.1"):
        F.dropout1d(x, -0.1)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D input"):
        F.dropout1d(tinyres.zeros(2, 3, 4, 5))


# ---------------------------------------------------------------------- 1-d pooling layers

POOLS = [("MaxPool1d", (3,), {}), ("MaxPool1d", (3, 2, 1), dict(ceil_mode=True)), ("MaxPool1d", (2,), dict(dilation=2)),
         ("AvgPool1d", (3,), {}), ("AvgPool1d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False)),
         ("AdaptiveAvgPool1d", (3,), {}), ("AdaptiveMaxPool1d", (4,), {})]


@needs_torch
@pytest.mark.parametrize("name, args, kwargs", POOLS)
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 7)])
def test_pooling_1d_layers_match_torch(name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    for attribute in ("kernel_size", "stride", "padding", "output_size"):
        assert getattr(ours, attribute, None) == getattr(theirs, attribute, None), attribute
    x = randn(*shape) + np.linspace(0, 1, shape[-1])                        # no ties for the maxima
    compare_with_torch(ours, theirs, [x], contiguous=False)
    assert not isinstance(ours, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))


@needs_torch
@pytest.mark.parametrize("name, args", [("MaxPool1d", (3, 2, 1)), ("AdaptiveMaxPool1d", (3,))])
def test_pooling_1d_return_indices_as_torch(name, args):
    x = randn(2, 3, 8)
    ours = getattr(nn, name)(*args, return_indices=True)(tinyres.tensor(x))
    theirs = getattr(torch.nn, name)(*args, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())


def test_pooling_1d_layers_refuse_images_naming_themselves():
    for layer in (nn.MaxPool1d(2), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(2), nn.AdaptiveMaxPool1d(2)):
        with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}\(.*\): expected 2-D \(unbatched\) or 3-D"):
            layer(tinyres.zeros(2, 3, 4, 5))


@needs_torch
def test_the_new_layers_sit_on_torchs_import_paths():
    import importlib
    for kind, names in [("padding", ["ReflectionPad2d", "ZeroPad2d", "CircularPad1d", "ConstantPad3d"]),
                        ("pixelshuffle", ["PixelShuffle", "PixelUnshuffle"]), ("flatten", ["Unflatten"]),
                        ("dropout", ["Dropout1d"]), ("pooling", ["MaxPool1d", "AvgPool1d", "AdaptiveMaxPool1d"])]:
        ours = importlib.import_module(f"tinyres.nn.modules.{kind}")
        for name in names:
            assert getattr(ours, name) is getattr(nn, name) and hasattr(getattr(torch.nn.modules, kind), name)
    x = tinyres.zeros(2, 3)
    assert nn.Identity(54, unused_argument1=0.1)(x) is x and repr(nn.Identity(3, a=1)) == "Identity()"


# ---------------------------------------------------------------------- torchvision.utils.make_grid, save_image

def reference_grid(images, nrow=8, padding=2, pad_value=0.0):
    """torchvision's documented layout, written independently: image k at row k // nrow,
    column k % nrow, its top-left corner at (padding + row (H + padding), padding + col (W + padding))."""
    b, c, h, w = images.shape
    cols, rows = min(nrow, b), -(-b // min(nrow, b))
    grid = np.full((c, padding + rows * (h + padding), padding + cols * (w + padding)), pad_value)
    for k in range(b):
        top, left = padding + (k // cols) * (h + padding), padding + (k % cols) * (w + padding)
        grid[:, top:top + h, left:left + w] = images[k]
    return grid


@pytest.mark.parametrize("b, nrow, padding, want", [(10, 4, 2, (3, 32, 42)), (10, 8, 2, (3, 22, 82)),
                                                    (3, 8, 0, (3, 8, 24)), (5, 2, 1, (3, 28, 19)), (2, 1, 3, (3, 25, 14))])
def test_make_grid_layout_is_torchvisions(b, nrow, padding, want):
    images = randn(b, 3, 8, 8)
    grid = vutils.make_grid(tinyres.tensor(images), nrow=nrow, padding=padding, pad_value=0.25)
    assert isinstance(grid, tinyres.Tensor) and grid.shape == want and grid.dtype == np.float64
    np.testing.assert_array_equal(grid.numpy(), reference_grid(images, nrow, padding, 0.25))
    as_list = vutils.make_grid([tinyres.tensor(a) for a in images], nrow=nrow, padding=padding, pad_value=0.25)
    np.testing.assert_array_equal(as_list.numpy(), grid.numpy())


def test_make_grid_single_channel_single_image_and_normalize():
    grey = randn(4, 1, 5, 6)
    grid = vutils.make_grid(tinyres.tensor(grey), nrow=2)
    assert grid.shape == (3, 16, 18)
    np.testing.assert_array_equal(grid.numpy(), reference_grid(np.repeat(grey, 3, axis=1), 2))
    one = randn(1, 5, 6)
    assert vutils.make_grid(tinyres.tensor(one)).shape == (3, 5, 6)         # one image: 3 channels, no padding
    assert vutils.make_grid(tinyres.tensor(one[0])).shape == (3, 5, 6)      # (H, W) too
    np.testing.assert_array_equal(vutils.make_grid(tinyres.tensor(randn(1, 2, 3, 4))).numpy(), randn(2, 3, 4))
    images = randn(3, 3, 4, 4) * 3
    batch = (images - images.min()) / (images.max() - images.min())
    np.testing.assert_allclose(vutils.make_grid(tinyres.tensor(images), normalize=True, padding=0).numpy(),
                               reference_grid(batch, padding=0), rtol=1e-12)
    each = np.stack([(a - a.min()) / (a.max() - a.min()) for a in images])
    np.testing.assert_allclose(vutils.make_grid(tinyres.tensor(images), normalize=True, scale_each=True,
                                                padding=0).numpy(), reference_grid(each, padding=0), rtol=1e-12)
    ranged = (np.clip(images, -1, 2) + 1) / 3
    np.testing.assert_allclose(vutils.make_grid(tinyres.tensor(images), normalize=True, value_range=(-1, 2),
                                                padding=1).numpy(), reference_grid(ranged, padding=1), rtol=1e-12)
    flat = tinyres.ones(2, 3, 2, 2)                                        # max - min = 0: divided by 1e-5
    assert np.all(vutils.make_grid(flat, normalize=True, padding=0).numpy() == 0)
    assert np.all(flat.numpy() == 1)                                       # the input is not changed


def test_make_grid_refuses_what_torchvision_refuses():
    with pytest.raises(TypeError, match="tensor or list of tensors expected, got <class 'numpy.ndarray'>"):
        vutils.make_grid(np.zeros((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="tensor or list of tensors expected, got a list containing <class 'int'>"):
        vutils.make_grid([tinyres.zeros(3, 4, 4), 1])
    with pytest.raises(TypeError, match=r"value_range has to be a tuple \(min, max\) if specified"):
        vutils.make_grid(tinyres.zeros(2, 3, 4, 4), normalize=True, value_range=[0, 1])


def test_save_image_writes_torchvisions_png_and_reads_back(tmp_path):
    from PIL import Image
    images = np.random.default_rng(0).uniform(-0.1, 1.1, (5, 3, 4, 6)).astype(np.float32)
    path = tmp_path / "grid.png"
    vutils.save_image(tinyres.tensor(images), path, nrow=3, padding=1, pad_value=0.5)
    grid = reference_grid(images, 3, 1, 0.5).astype(np.float32)
    want = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)   # torchvision's rounding
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (3 * 7 + 1, 2 * 5 + 1)
        np.testing.assert_array_equal(np.asarray(im), want)
    buffer = tmp_path / "grey.bin"
    with open(buffer, "wb") as f:
        vutils.save_image(tinyres.tensor(images[:1, :1]), f, format="PNG")   # one grey image, to a file object
    with Image.open(buffer) as im:
        assert im.mode == "RGB" and np.asarray(im).shape == (4, 6, 3)
        expected = np.clip(images[0, 0] * 255 + 0.5, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(im)[..., 1], expected)


# ---------------------------------------------------------------------- torchvision.models' pretrained=

@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_vision_models_take_the_legacy_pretrained_false_with_torchvisions_warnings(name):
    with pytest.warns(UserWarning) as record:
        model = getattr(models, name)(pretrained=False, num_classes=3)
    assert isinstance(model, models.ResNet) and model.fc.out_features == 3
    assert [str(w.message) for w in record] == [
        "The parameter 'pretrained' is deprecated since 0.13 and may be removed in the future, please use 'weights' "
        "instead.",
        "Arguments other than a weight enum or `None` for 'weights' are deprecated since 0.13 and may be removed in "
        "the future. The current behavior is equivalent to passing `weights=None`."]
    assert record[0].filename == __file__


@pytest.mark.parametrize("name, enum", [("resnet18", "ResNet18_Weights"), ("resnet152", "ResNet152_Weights"),
                                        ("wide_resnet50_2", "Wide_ResNet50_2_Weights")])
def test_vision_models_pretrained_true_is_imagenet1k_v1_which_tinyres_does_not_download(name, enum):
    with pytest.raises(ValueError) as legacy, pytest.warns(UserWarning, match=f"`weights={enum}.IMAGENET1K_V1`. "
                                                           f"You can also use `weights={enum}.DEFAULT`"):
        getattr(models, name)(pretrained=True)
    with pytest.raises(ValueError) as named:
        getattr(models, name)(weights="IMAGENET1K_V1")
    assert str(legacy.value) == str(named.value)
    assert "tinyres downloads nothing" in str(legacy.value) and "model.load_state_dict(tinyres.load(path))" in \
        str(legacy.value)


def test_vision_models_weights_keyword_positional_and_tinyres_models_unchanged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(models.resnet34(weights=None, num_classes=2), models.ResNet)     # no warning
    with pytest.warns(UserWarning, match="Using 'weights' as positional parameter"):
        assert isinstance(models.resnet18(False, num_classes=2), models.ResNet)
    with pytest.raises(TypeError, match="pretrained"):
        tinyres.models.resnet18(pretrained=True)                  # tinyres's own factories: weights= only
    assert models.resnet18.__name__ == "resnet18" and "resnet18" in models.list_models()
