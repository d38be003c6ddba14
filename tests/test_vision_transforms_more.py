"""torchvision's other transforms on tinyres.vision: Resize and RandomResizedCrop, ColorJitter and
the colour ops, Grayscale, rotations and affine maps, GaussianBlur, RandomErasing, the containers,
Five/TenCrop and the augmentation policies -- and interpolate's antialias, which tensor Resize needs.

torchvision does not load here, so the oracles are: PIL's own calls made the way torchvision
makes them (a PIL image must come out pixel for pixel), torch ops (interpolate, conv2d,
grid_sample) with torchvision's tensor formulas written out in torch, and invariants (a 90 degree
turn is rot90, the tensor ops equal PIL's where torchvision's tests say they do).  Random
transforms: their draws are checked for range and repeatability, and the transform must equal
the functional call with the drawn parameters.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from PIL import Image, ImageEnhance, ImageOps

import tinyres
import tinyres.nn.functional as F
import tinyres.vision.transforms.functional as VF
from tinyres.core import backend
from helpers import compare_second_order_with_torch, compare_with_torch, randn
from tinyres.vision import transforms as T
from tinyres.vision.transforms import autoaugment

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)          # PIL's layout (H, W, C)
PIL_RGB = Image.fromarray(RGB)
CHW = np.ascontiguousarray(RGB.transpose(2, 0, 1))


def hwc(t):
    return t.numpy().transpose(1, 2, 0)


def same(pil_out, want):
    assert isinstance(pil_out, Image.Image)
    np.testing.assert_array_equal(np.asarray(pil_out), np.asarray(want))


def pixels(img):
    return np.asarray(img) if isinstance(img, Image.Image) else img.numpy()


def drawn(transform, img, get_params, seed=5):
    """The transform's output and the parameters it drew (get_params run on the same seed)."""
    tinyres.manual_seed(seed)
    params = get_params()
    tinyres.manual_seed(seed)
    return transform(img), params


# ---------------------------------------------------------------------- interpolate(antialias=True)

AA = [((2, 3, 9, 7), dict(size=(4, 3))), ((1, 2, 5, 4), dict(size=(11, 9))), ((1, 2, 6, 8), dict(size=(6, 3))),
      ((1, 2, 7, 7), dict(size=(3, 10))), ((1, 2, 9, 7), dict(size=(4, 3), align_corners=True)),
      ((1, 2, 9, 7), dict(scale_factor=0.4)), ((1, 2, 9, 7), dict(scale_factor=(0.3, 1.7))),
      ((1, 1, 23, 17), dict(size=(5, 4)))]
# Left out, torch's own slips: an output 1 pixel wide (torch's CPU kernel gives every row the first
# row's weights), and scale_factor=1.1 on a size it leaves unchanged (torch copies forward, but
# its gradient uses the 1 / 1.1 weights); tinyres copies and passes the gradient through.


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape, kwargs", AA, ids=repr)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float64, False), (np.float32, True)])
def test_antialiased_interpolate_matches_torch(mode, shape, kwargs, dtype, contiguous):
    """Down (the filter widened by the scale, normalised) and up (the plain filter, normalised at
    the border), values and gradients; bicubic with Keys' A = -0.5 as torch's _aa kernels."""
    def fn(m):
        return lambda t: m.interpolate(t, mode=mode, antialias=True, **kwargs)
    compare_with_torch(fn(F), fn(TF), [randn(*shape, dtype=dtype)], contiguous=contiguous)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialiased_interpolate_second_order_matches_torch(mode):
    def fn(m):
        return lambda t: m.interpolate(t, size=(3, 5), mode=mode, antialias=True)
    compare_second_order_with_torch(fn(F), fn(TF), [randn(1, 2, 7, 4)])


@pytest.mark.parametrize("shape, mode", [((1, 1, 4, 4), "nearest"), ((1, 1, 4), "linear"), ((1, 1, 4, 4), "area"),
                                         ((1, 1, 4, 4, 4), "trilinear"), ((1, 1, 4), "bilinear")])
def test_antialias_outside_bilinear_and_bicubic_on_4d_is_refused_as_torch(shape, mode):
    with pytest.raises(ValueError, match="Anti-alias option is restricted to bilinear, bicubic"):
        TF.interpolate(torch.zeros(shape), size=2, mode=mode, antialias=True)
    with pytest.raises(ValueError, match=r"interpolate: Anti-alias option is restricted to bilinear, bicubic.*"
                                         rf"mode='{mode}' and {len(shape)}-D input"):
        F.interpolate(tinyres.zeros(*shape), size=2, mode=mode, antialias=True)


# ---------------------------------------------------------------------- Resize, RandomResizedCrop

@pytest.mark.parametrize("size, max_size, want", [(6, None, (6, 7)), ((5, 7), None, (5, 7)), ([4], None, (4, 4)),
                                                  (10, 11, (9, 11)), (30, None, (30, 36))])
def test_resize_of_a_pil_image_is_pils_resize_with_torchvisions_sizes(size, max_size, want):
    """An int resizes the shorter edge (the other scaled and truncated: 6 * 12 / 10 = 7.2 -> 7);
    max_size caps the longer edge (10 -> 12 > 11: 11 and int(11 * 10 / 12) = 9)."""
    img = PIL_RGB if size != [4] else PIL_RGB.crop((0, 0, 10, 10))
    out = T.Resize(size, max_size=max_size)(img)
    assert out.size == want[::-1]
    same(out, img.resize(want[::-1], Image.BILINEAR))
    for mode, pil in [(T.InterpolationMode.NEAREST, 0), (T.InterpolationMode.BICUBIC, 3), (T.InterpolationMode.BOX, 4),
                      (T.InterpolationMode.LANCZOS, 1), (Image.BICUBIC, 3)]:
        same(VF.resize(img, size, mode, max_size), img.resize(want[::-1], pil))
    assert T.Resize((10, 12))(PIL_RGB) is PIL_RGB                       # already that size: the image itself


@pytest.mark.parametrize("size", [(4, 5), (17, 9), 7])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest", "nearest-exact"])
def test_resize_of_a_tensor_is_interpolate_antialiased(size, mode):
    """float: interpolate(antialias=True) on (N * C, 1, H, W); uint8: the same in float32, rounded
    (bicubic clamped to [0, 255] first); antialias=False as plain interpolate."""
    x = RNG.random((2, 3, 10, 12))
    want_size = (7, 8) if size == 7 else size
    interp = T.InterpolationMode(mode)
    antialias = mode in ("bilinear", "bicubic")
    ref = TF.interpolate(torch.from_numpy(x), size=want_size, mode=mode, antialias=antialias,
                         align_corners=False if antialias else None)
    np.testing.assert_allclose(T.Resize(size, interp)(tinyres.tensor(x)).numpy(), ref.numpy(), rtol=1e-12, atol=1e-13)
    u8 = torch.from_numpy(CHW).float()[None]
    ref = TF.interpolate(u8, size=want_size, mode=mode, antialias=antialias, align_corners=False if antialias else None)
    ref = ref.clamp(0, 255) if mode == "bicubic" else ref
    out = VF.resize(tinyres.tensor(CHW), size, interp)
    assert out.dtype == np.uint8
    assert np.abs(out.numpy().astype(int) - ref.round()[0].to(torch.uint8).numpy().astype(int)).max() <= 1
    plain = TF.interpolate(torch.from_numpy(x), size=want_size, mode=mode,
                           align_corners=False if antialias else None)
    np.testing.assert_allclose(VF.resize(tinyres.tensor(x), size, interp, antialias=False).numpy(), plain.numpy(),
                               rtol=1e-12, atol=1e-13)


def test_resize_keeps_the_kind_and_is_close_to_pil_on_tensors_and_arrays():
    """The antialiased tensor resize is within 1 grey level of PIL's (torchvision's promise), and
    an (H, W, C) array is resized as its channels-first tensor."""
    out = VF.resize(tinyres.tensor(CHW), (5, 7))
    assert np.abs(hwc(out).astype(int) - np.asarray(PIL_RGB.resize((7, 5), Image.BILINEAR)).astype(int)).max() <= 1
    array = VF.resize(RGB, (5, 7))
    assert isinstance(array, np.ndarray) and array.shape == (5, 7, 3)
    np.testing.assert_array_equal(array, hwc(out))
    assert VF.resize(tinyres.tensor(CHW[0]), [5]).shape == (5, 6)


@pytest.mark.parametrize("call, error, match", [
    (lambda: T.Resize(None), TypeError, "Size should be int or sequence"),
    (lambda: T.Resize(2.5), TypeError, "Size should be int or sequence"),
    (lambda: T.Resize((1, 2, 3)), ValueError, "If size is a sequence, it should have 1 or 2 values"),
    (lambda: VF.resize(PIL_RGB, (1, 2, 3)), ValueError, "Size must be an int or a 1 or 2 element tuple/list"),
    (lambda: VF.resize(PIL_RGB, (4, 5), max_size=9), ValueError, "max_size should only be passed if size specifies"),
    (lambda: VF.resize(PIL_RGB, 6, max_size=6), ValueError, "max_size = 6 must be strictly greater than the requested"),
    (lambda: VF.resize(PIL_RGB, 4, "bilinear"), TypeError, "Argument interpolation should be a InterpolationMode"),
    (lambda: VF.resize(tinyres.tensor(CHW), 4, T.InterpolationMode.BOX), ValueError, "'box' is unsupported with Tensor"),
    (lambda: VF.resize(PIL_RGB, -2), ValueError, "height and width must be > 0"),
    (lambda: VF.resize(tinyres.tensor(RNG.random((1, 4, 4))), -2), RuntimeError, "should be greater than 0"),
])
def test_resize_refuses_what_torchvision_refuses(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_random_resized_crop_draws_in_range_repeats_and_is_resized_crop_of_its_draw():
    img = tinyres.tensor(RNG.random((3, 20, 30)))
    tinyres.manual_seed(0)
    for _ in range(200):
        i, j, h, w = T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 < h <= 20 and 0 < w <= 30 and 0 <= i <= 20 - h and 0 <= j <= 30 - w
    t = T.RandomResizedCrop((6, 5), scale=(0.3, 0.6))
    out, (i, j, h, w) = drawn(t, img, lambda: t.get_params(img, t.scale, t.ratio))
    np.testing.assert_array_equal(out.numpy(), VF.resized_crop(img, i, j, h, w, (6, 5)).numpy())
    assert out.shape == (3, 6, 5) and 0.3 * 600 * 0.8 < h * w < 0.6 * 600 * 1.2
    again, _ = drawn(t, img, lambda: None)
    np.testing.assert_array_equal(again.numpy(), out.numpy())
    pil, (i, j, h, w) = drawn(T.RandomResizedCrop(8), PIL_RGB, lambda: t.get_params(PIL_RGB, (0.08, 1.0), (3 / 4, 4 / 3)))
    same(pil, PIL_RGB.crop((j, i, j + w, i + h)).resize((8, 8), Image.BILINEAR))
    # no window fits in 10 tries: the central crop with the ratio clamped into range
    assert T.RandomResizedCrop.get_params(img, (5.0, 6.0), (3 / 4, 4 / 3)) == (0, 1, 20, 27)
    assert T.RandomResizedCrop.get_params(img, (5.0, 6.0), (1.0, 1.2)) == (0, 3, 20, 24)
    with pytest.raises(TypeError, match="Scale should be a sequence"):
        T.RandomResizedCrop(8, scale=0.5)
    with pytest.warns(UserWarning, match="Scale and ratio should be of kind"):
        T.RandomResizedCrop(8, ratio=(2.0, 1.0))
    with pytest.raises(ValueError, match="Please provide only two dimensions"):
        T.RandomResizedCrop((1, 2, 3))


def test_crop_outside_the_image_reads_zeros_and_five_and_ten_crop():
    t = tinyres.tensor(CHW)
    want = np.zeros((3, 4, 5), np.uint8)
    want[:, 2:, 1:] = CHW[:, :2, :4]
    np.testing.assert_array_equal(VF.crop(t, -2, -1, 4, 5).numpy(), want)
    same(VF.crop(PIL_RGB, -2, -1, 4, 5), PIL_RGB.crop((-1, -2, 4, 2)))
    tl, tr, bl, br, center = T.FiveCrop((4, 5))(PIL_RGB)
    for got, window in zip((tl, tr, bl, br, center), ((0, 0), (0, 7), (6, 0), (6, 7), (3, 4))):
        same(got, Image.fromarray(RGB[window[0]:window[0] + 4, window[1]:window[1] + 5]))
    ten = T.TenCrop(4, vertical_flip=True)(t)
    assert len(ten) == 10
    np.testing.assert_array_equal(ten[5].numpy(), CHW[:, ::-1][:, :4, :4])
    np.testing.assert_array_equal(T.TenCrop(4)(t)[6].numpy(), CHW[..., ::-1][:, :4, -4:])
    with pytest.raises(ValueError, match=r"Requested crop size \(11, 4\) is bigger than input size \(10, 12\)"):
        T.FiveCrop((11, 4))(t)


# ---------------------------------------------------------------------- colour

def torch_grayscale(x):
    return (0.2989 * x[..., 0, :, :] + 0.587 * x[..., 1, :, :] + 0.114 * x[..., 2, :, :]).to(x.dtype).unsqueeze(-3)


def torch_blend(a, b, ratio):
    bound = 255 if a.dtype == torch.uint8 else 1.0
    return (ratio * a + (1.0 - ratio) * b).clamp(0, bound).to(a.dtype)


def torch_rgb2hsv(img):       # torchvision's _rgb2hsv, in torch
    r, g, b = img.unbind(dim=-3)
    maxc, minc = torch.max(img, dim=-3).values, torch.min(img, dim=-3).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_divisor, (maxc - g) / cr_divisor, (maxc - b) / cr_divisor
    h = (maxc == r) * (bc - gc) + ((maxc == g) & (maxc != r)) * (2.0 + rc - bc) + \
        ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    return torch.stack((torch.fmod((h / 6.0 + 1.0), 1.0), s, maxc), dim=-3)


def torch_hsv2rgb(img):       # torchvision's _hsv2rgb, in torch
    h, s, v = img.unbind(dim=-3)
    i = torch.floor(h * 6.0)
    f = (h * 6.0) - i
    i = i.to(dtype=torch.int32) % 6
    p, q = torch.clamp((v * (1.0 - s)), 0.0, 1.0), torch.clamp((v * (1.0 - s * f)), 0.0, 1.0)
    t = torch.clamp((v * (1.0 - s * (1.0 - f))), 0.0, 1.0)
    mask = i.unsqueeze(dim=-3) == torch.arange(6).view(-1, 1, 1)
    a4 = torch.stack((torch.stack((v, q, p, p, t, v), dim=-3), torch.stack((t, v, v, q, p, p), dim=-3),
                      torch.stack((p, p, t, v, v, q), dim=-3)), dim=-4)
    return torch.einsum("...ijk, ...xijk -> ...xjk", mask.to(dtype=img.dtype), a4)


def torch_hue(x, factor):
    h, s, v = torch_rgb2hsv(x.float() / 255 if x.dtype == torch.uint8 else x.float()).unbind(dim=-3)
    out = torch_hsv2rgb(torch.stack(((h + factor) % 1.0, s, v), dim=-3))
    return out.mul(255.999).to(torch.uint8) if x.dtype == torch.uint8 else out.to(x.dtype)


def pil_hue(img, factor):     # torchvision's PIL path, written out
    h, s, v = img.convert("HSV").split()
    shifted = (np.array(h, dtype=np.uint8) + np.int32(factor * 255).astype(np.uint8)).astype(np.uint8)
    return Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert(img.mode)


COLOUR = [("adjust_brightness", 1.6, lambda x, f: torch_blend(x, torch.zeros_like(x), f), ImageEnhance.Brightness),
          ("adjust_contrast", 0.4, lambda x, f: torch_blend(
              x, torch_grayscale(x).to(x.dtype if x.is_floating_point() else torch.float32).mean(
                  dim=(-3, -2, -1), keepdim=True), f), ImageEnhance.Contrast),
          ("adjust_saturation", 1.7, lambda x, f: torch_blend(x, torch_grayscale(x), f), ImageEnhance.Color),
          ("adjust_hue", -0.3, torch_hue, None)]


@pytest.mark.parametrize("name, factor, torch_fn, enhancer", COLOUR, ids=[c[0] for c in COLOUR])
def test_colour_adjustments_are_pils_on_pil_images_and_torchvisions_formulas_on_tensors(name, factor, torch_fn,
                                                                                       enhancer):
    fn = getattr(VF, name)
    same(fn(PIL_RGB, factor), enhancer(PIL_RGB).enhance(factor) if enhancer else pil_hue(PIL_RGB, factor))
    x = RNG.random((2, 3, 4, 5))
    np.testing.assert_allclose(fn(tinyres.tensor(x), factor).numpy(), torch_fn(torch.from_numpy(x), factor).numpy(),
                               rtol=1e-6 if name == "adjust_hue" else 1e-13, atol=1e-7 if name == "adjust_hue" else 1e-14)
    out = fn(tinyres.tensor(CHW), factor)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.numpy(), torch_fn(torch.from_numpy(CHW), factor).numpy())
    np.testing.assert_array_equal(fn(RGB, factor), hwc(out))                   # an array: as its tensor
    grey = Image.fromarray(RGB[..., 0])
    if name in ("adjust_saturation", "adjust_hue"):                          # one channel: as it is
        assert fn(tinyres.tensor(CHW[:1]), factor).numpy().tolist() == CHW[:1].tolist()
    if name == "adjust_hue":
        assert fn(grey, factor) is grey


def test_colour_ops_of_tensors_equal_pils_where_torchvision_says_so():
    """invert, posterize, solarize, autocontrast, equalize, sharpness and brightness: the tensor
    formula gives PIL's pixels exactly (contrast and saturation differ by PIL's rounding)."""
    t = tinyres.tensor(CHW)
    for fn, args, pil in [(VF.invert, (), ImageOps.invert), (VF.posterize, (3,), ImageOps.posterize),
                          (VF.solarize, (100,), ImageOps.solarize), (VF.autocontrast, (), ImageOps.autocontrast),
                          (VF.equalize, (), ImageOps.equalize),
                          (VF.adjust_brightness, (0.6,), lambda i, f: ImageEnhance.Brightness(i).enhance(f))]:
        same(fn(PIL_RGB, *args), pil(PIL_RGB, *args))
        np.testing.assert_array_equal(hwc(fn(t, *args)), np.asarray(pil(PIL_RGB, *args)))
    for f in (0.6, 1.8):      # sharpness: PIL's and the float32 kernel round apart by 1 on some pixels
        same(VF.adjust_sharpness(PIL_RGB, f), ImageEnhance.Sharpness(PIL_RGB).enhance(f))
        assert np.abs(hwc(VF.adjust_sharpness(t, f)).astype(int) - np.asarray(VF.adjust_sharpness(PIL_RGB, f))).max() <= 1
    same(VF.adjust_sharpness(PIL_RGB, 2.5), ImageEnhance.Sharpness(PIL_RGB).enhance(2.5))
    np.testing.assert_array_equal(hwc(VF.adjust_sharpness(t, 2.5)), np.asarray(VF.adjust_sharpness(PIL_RGB, 2.5)))
    x = torch.from_numpy(RNG.random((3, 4, 5)))
    low, high = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
    np.testing.assert_allclose(VF.autocontrast(tinyres.tensor(x.numpy())).numpy(),
                               ((x - low) / (high - low)).clamp(0, 1).numpy(), rtol=1e-13)
    np.testing.assert_array_equal(VF.solarize(tinyres.tensor(x.numpy()), 0.5).numpy(),
                                  torch.where(x >= 0.5, 1 - x, x).numpy())
    # gamma: PIL's lookup table and the tensor power agree within one level
    assert np.abs(hwc(VF.adjust_gamma(t, 0.7)).astype(int) - np.asarray(VF.adjust_gamma(PIL_RGB, 0.7))).max() <= 1


@pytest.mark.parametrize("call, error, match", [
    (lambda: VF.adjust_brightness(tinyres.tensor(CHW), -0.1), ValueError, r"brightness_factor \(-0.1\) is not non-neg"),
    (lambda: VF.adjust_hue(PIL_RGB, 0.6), ValueError, r"hue_factor \(0.6\) is not in \[-0.5, 0.5\]"),
    (lambda: VF.adjust_contrast(tinyres.zeros(4, 3, 3), 0.5), TypeError, r"permitted channel values are \[1, 3\], but "
                                                                          "found 4"),
    (lambda: VF.posterize(tinyres.zeros(3, 2, 2), 2), TypeError, "Only torch.uint8 image tensors are supported"),
    (lambda: VF.posterize(PIL_RGB, 9), ValueError, "The number if bits should be between 0 and 8"),
    (lambda: VF.solarize(tinyres.zeros(3, 2, 2), 2.0), TypeError, "Threshold should be less than bound of img"),
    (lambda: VF.rgb_to_grayscale(tinyres.zeros(2, 2)), TypeError, "should have at least 3 dimensions, but found 2"),
    (lambda: VF.rgb_to_grayscale(PIL_RGB, 2), ValueError, "num_output_channels should be either 1 or 3"),
    (lambda: VF.adjust_gamma(PIL_RGB, -1), ValueError, "Gamma should be a non-negative real number"),
    (lambda: VF.to_grayscale(RGB), TypeError, "Input should be PIL Image"),
    (lambda: VF.adjust_brightness([1, 2], 0.5), TypeError, "img should be PIL Image or Tensor"),
    (lambda: T.ColorJitter(brightness=-1), ValueError, "If brightness is a single number, it must be non negative"),
    (lambda: T.ColorJitter(hue=0.7), ValueError, r"hue values should be between \(-0.5, 0.5\)"),
    (lambda: T.ColorJitter(contrast=(2, 1)), ValueError, r"contrast values should be between \(0, inf\)"),
    (lambda: T.ColorJitter(saturation="x"), TypeError, "saturation should be a single number or a list/tuple"),
])
def test_colour_errors_are_torchvisions(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_color_jitter_draws_in_range_in_a_random_order_and_applies_its_draw():
    t = T.ColorJitter(brightness=0.5, contrast=(0.2, 0.4), saturation=0, hue=0.1)
    assert (t.brightness, t.contrast, t.saturation, t.hue) == ((0.5, 1.5), (0.2, 0.4), None, (-0.1, 0.1))
    tinyres.manual_seed(1)
    orders = set()
    for _ in range(100):
        order, b, c, s, h = t.get_params(t.brightness, t.contrast, t.saturation, t.hue)
        assert sorted(order) == [0, 1, 2, 3] and 0.5 <= b < 1.5 and 0.2 <= c < 0.4 and s is None and -0.1 <= h < 0.1
        orders.add(tuple(order))
    assert len(orders) > 10
    for img in (PIL_RGB, tinyres.tensor(CHW)):
        out, (order, *factors) = drawn(t, img, lambda: t.get_params(t.brightness, t.contrast, t.saturation, t.hue))
        want = img
        for i in order:
            if factors[i] is not None:
                want = (VF.adjust_brightness, VF.adjust_contrast, VF.adjust_saturation, VF.adjust_hue)[i](want, factors[i])
        np.testing.assert_array_equal(pixels(out), pixels(want))


def test_grayscale_is_pils_convert_and_the_luma_formula_on_tensors():
    same(T.Grayscale()(PIL_RGB), PIL_RGB.convert("L"))
    three = T.Grayscale(3)(PIL_RGB)
    assert three.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(three), np.dstack([np.asarray(PIL_RGB.convert("L"))] * 3))
    x = RNG.random((2, 3, 4, 5))
    np.testing.assert_allclose(T.Grayscale()(tinyres.tensor(x)).numpy(), torch_grayscale(torch.from_numpy(x)).numpy(),
                               rtol=1e-14)
    out = T.Grayscale(3)(tinyres.tensor(CHW))
    assert out.shape == (3, 10, 12) and out.dtype == np.uint8       # uint8: the float luma truncated
    np.testing.assert_array_equal(out.numpy(), torch_grayscale(torch.from_numpy(CHW)).expand(3, 10, 12).numpy())
    assert T.RandomGrayscale(p=1.0)(PIL_RGB).mode == "RGB" and T.RandomGrayscale(p=0.0)(PIL_RGB) is PIL_RGB
    assert T.RandomGrayscale(p=1.0)(PIL_RGB.convert("L")).mode == "L"


# ---------------------------------------------------------------------- rotations, affine maps

def forward_affine(center, angle, translate, scale, shear):
    """T C R(angle) S(scale) SHy SHx C^-1 as a 3 x 3 matrix, from torchvision's documented
    definition (angles in degrees)."""
    a, sx, sy = (math.radians(v) for v in (angle, *shear))
    R = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    SHx = np.array([[1, -math.tan(sx), 0], [0, 1, 0], [0, 0, 1]])
    SHy = np.array([[1, 0, 0], [-math.tan(sy), 1, 0], [0, 0, 1]])
    C = np.array([[1, 0, center[0]], [0, 1, center[1]], [0, 0, 1]])
    Tm = np.array([[1, 0, translate[0]], [0, 1, translate[1]], [0, 0, 1]])
    return Tm @ C @ R @ np.diag([scale, scale, 1]) @ SHy @ SHx @ np.linalg.inv(C)


def torch_sample(x, inverse, out_hw=None, mode="bilinear", fill=None):
    """torchvision's _gen_affine_grid + _apply_grid_transform, in torch: the output pixel centres
    about the middle, mapped by the inverse matrix, normalised by the input's half sizes."""
    h, w = x.shape[-2:]
    oh, ow = out_hw or (h, w)
    xs = torch.arange(ow, dtype=x.dtype) - (ow * 0.5 - 0.5)
    ys = torch.arange(oh, dtype=x.dtype) - (oh * 0.5 - 0.5)
    m = torch.tensor(inverse, dtype=x.dtype).view(2, 3)
    gx = (m[0, 0] * xs[None, :] + m[0, 1] * ys[:, None] + m[0, 2]) / (0.5 * w)
    gy = (m[1, 0] * xs[None, :] + m[1, 1] * ys[:, None] + m[1, 2]) / (0.5 * h)
    grid = torch.stack((gx, gy), -1)[None].expand(x.shape[0], oh, ow, 2)
    if fill is None:
        return TF.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    out = TF.grid_sample(torch.cat((x, torch.ones_like(x[:, :1])), 1), grid, mode=mode, align_corners=False)
    img, mask = out[:, :-1], out[:, -1:].expand_as(out[:, :-1])
    fill_img = torch.tensor(fill, dtype=x.dtype).view(1, -1, 1, 1).expand_as(img)
    return torch.where(mask < 0.5, fill_img, img) if mode == "nearest" else img * mask + (1 - mask) * fill_img


@pytest.mark.parametrize("center, angle, translate, scale, shear", [
    ((3.0, 4.5), 37.0, (2, -1), 1.3, (10.0, -5.0)), ((0, 0), -120.0, (0, 0), 0.7, (0.0, 20.0)),
    ((6.0, 5.0), 90.0, (1, 1), 1.0, (0.0, 0.0))])
def test_the_inverse_affine_matrix_inverts_torchvisions_definition(center, angle, translate, scale, shear):
    forward = forward_affine(center, angle, translate, scale, shear)
    inverse = VF.F_t.inverse_affine_matrix(center, angle, translate, scale, shear)
    np.testing.assert_allclose(inverse, np.linalg.inv(forward)[:2].ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(VF.F_t.inverse_affine_matrix(center, angle, translate, scale, shear, inverted=False),
                               forward[:2].ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("angle, expand, center, fill", [(37.0, False, None, None), (-61.0, True, None, [0.2, 0.5, 1.0]),
                                                         (25.0, False, [2, 3], [0.3, 0.3, 0.3])])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_rotate_is_pils_rotate_and_grid_sample_of_the_inverse_rotation(angle, expand, center, fill, mode):
    interp = T.InterpolationMode(mode)
    pil_fill = None if fill is None else [int(255 * f) for f in fill]
    same(VF.rotate(PIL_RGB, angle, interp, expand, center, pil_fill),
         PIL_RGB.rotate(angle, {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}[mode], expand, center,
                        fillcolor=(0, 0, 0) if fill is None else tuple(pil_fill)))
    x = RNG.random((2, 3, 7, 8))
    c = [0.0, 0.0] if center is None else [center[0] - 4.0, center[1] - 3.5]
    inverse = np.linalg.inv(forward_affine(c, -angle, (0, 0), 1.0, (0, 0)))[:2].ravel()
    out = VF.rotate(tinyres.tensor(x), angle, interp, expand, center, fill)
    if expand:   # the box of the turned corners: ceil/floor of their extent
        corners = np.array([[-4, -3.5], [-4, 3.5], [4, 3.5], [4, -3.5]]) @ np.linalg.inv(inverse.reshape(2, 3)[:, :2]).T
        corners += [4, 3.5]                                    # measured from the top-left corner, as PIL does
        span = np.ceil(corners.max(0) - 1e-9) - np.floor(corners.min(0) + 1e-9)
        assert out.shape[-2:] == (int(span[1]), int(span[0]))
    want = torch_sample(torch.from_numpy(x), inverse, out.shape[-2:], mode, fill)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_rotating_by_90_degrees_is_rot90():
    """The centre without torchvision's 0.5 offset: a quarter turn of an even square (or of a PIL
    image) moves every pixel exactly."""
    x = RNG.random((2, 3, 6, 6))
    np.testing.assert_array_equal(VF.rotate(tinyres.tensor(x), 90).numpy(), np.rot90(x, 1, axes=(-2, -1)))
    square = Image.fromarray(RGB[:10, :10])
    np.testing.assert_array_equal(np.asarray(VF.rotate(square, 90)), np.rot90(RGB[:10, :10]))
    np.testing.assert_array_equal(hwc(VF.rotate(tinyres.tensor(CHW[:, :10, :10]), 37)),
                                  np.asarray(VF.rotate(square, 37)))       # nearest: the same pixels as PIL's


@pytest.mark.parametrize("angle, translate, scale, shear, center", [(20.0, [1, -2], 1.2, [15.0, -8.0], None),
                                                                   (-45.0, [0, 0], 0.8, 10.0, [1, 2])])
def test_affine_is_pils_transform_and_grid_sample_of_the_inverse_map(angle, translate, scale, shear, center):
    shear2 = [shear, 0.0] if isinstance(shear, float) else shear
    pil_center = [6.0, 5.0] if center is None else center
    inverse = np.linalg.inv(forward_affine(pil_center, angle, translate, scale, shear2))[:2].ravel()
    same(VF.affine(PIL_RGB, angle, translate, scale, shear, T.InterpolationMode.BILINEAR, fill=7, center=center),
         PIL_RGB.transform((12, 10), Image.AFFINE, list(inverse), Image.BILINEAR, fillcolor=(7, 7, 7)))
    x = RNG.random((1, 3, 10, 12))
    c = [0.0, 0.0] if center is None else [center[0] - 6.0, center[1] - 5.0]
    inverse = np.linalg.inv(forward_affine(c, angle, translate, scale, shear2))[:2].ravel()
    for mode in ("nearest", "bilinear"):
        out = VF.affine(tinyres.tensor(x), angle, translate, scale, shear, T.InterpolationMode(mode), fill=[0.5],
                        center=center)
        np.testing.assert_allclose(out.numpy(), torch_sample(torch.from_numpy(x), inverse, None, mode, [0.5] * 3).numpy(),
                                   rtol=1e-12, atol=1e-12)
    shifted = VF.affine(tinyres.tensor(CHW), 0.0, [2, 1], 1.0, 0.0)          # a whole-pixel shift moves pixels
    np.testing.assert_array_equal(shifted.numpy()[:, 1:, 2:], CHW[:, :-1, :-2])


def test_random_rotation_and_random_affine_draw_in_range_and_apply_their_draw():
    t = T.RandomRotation((10, 30), fill=0.5)
    tinyres.manual_seed(0)
    assert all(10 <= t.get_params(t.degrees) < 30 for _ in range(50))
    x = tinyres.tensor(RNG.random((3, 6, 7)))
    out, angle = drawn(t, x, lambda: t.get_params(t.degrees))
    np.testing.assert_array_equal(out.numpy(), VF.rotate(x, angle, fill=[0.5] * 3).numpy())
    out, angle = drawn(T.RandomRotation(20), PIL_RGB, lambda: T.RandomRotation.get_params([-20.0, 20.0]))
    same(out, PIL_RGB.rotate(angle, Image.NEAREST, False, None, fillcolor=(0, 0, 0)))
    a = T.RandomAffine(15, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=(-5, 5, -3, 3))
    tinyres.manual_seed(0)
    for _ in range(50):
        angle, (tx, ty), scale, (sx, sy) = a.get_params(a.degrees, a.translate, a.scale, a.shear, [7, 6])
        assert -15 <= angle < 15 and abs(tx) <= 1.4 and abs(ty) <= 0.6 + 0.5 and 0.8 <= scale < 1.2
        assert -5 <= sx < 5 and -3 <= sy < 3 and isinstance(tx, int)
    out, params = drawn(a, x, lambda: a.get_params(a.degrees, a.translate, a.scale, a.shear, [7, 6]))
    np.testing.assert_array_equal(out.numpy(), VF.affine(x, *params, fill=[0.0] * 3).numpy())
    for call, error, match in [
            (lambda: T.RandomRotation(-5), ValueError, "If degrees is a single number, it must be positive"),
            (lambda: T.RandomRotation((1, 2, 3)), ValueError, "degrees should be a sequence of length 2"),
            (lambda: T.RandomRotation(5, fill={}), TypeError, "Fill should be either a sequence or a number"),
            (lambda: T.RandomAffine(5, translate=(0.2, 1.5)), ValueError, "translation values should be between 0 and 1"),
            (lambda: T.RandomAffine(5, scale=(0, 1)), ValueError, "scale values should be positive"),
            (lambda: T.RandomAffine(5, shear=(1, 2, 3)), ValueError, "shear should be a sequence of length 2 or 4"),
            (lambda: VF.rotate(x, "9"), TypeError, "Argument angle should be int or float"),
            (lambda: VF.affine(x, 0, [1], 1.0, 0), ValueError, "Argument translate should be a sequence of length 2"),
            (lambda: VF.affine(x, 0, [1, 1], 0.0, 0), ValueError, "Argument scale should be positive"),
            (lambda: VF.rotate(x, 5, T.InterpolationMode.BICUBIC), ValueError, "'bicubic' is unsupported with Tensor"),
            (lambda: VF.rotate(x, 5, fill=[1, 2]), ValueError, r"cannot broadcast to match the number of channels .*2 != 3"),
            (lambda: VF.rotate(PIL_RGB, 5, fill=[1, 2]), ValueError, r"does not match the number of channels .*2 != 3")]:
        with pytest.raises(error, match=match):
            call()


# ---------------------------------------------------------------------- blur, erasing

def torch_blur(x, kernel_size, sigma):
    def k1(ks, s):
        t = torch.linspace(-(ks - 1) * 0.5, (ks - 1) * 0.5, ks, dtype=x.dtype)
        pdf = torch.exp(-0.5 * (t / s) ** 2)
        return pdf / pdf.sum()
    kernel = torch.mm(k1(kernel_size[1], sigma[1])[:, None], k1(kernel_size[0], sigma[0])[None, :])
    padded = TF.pad(x, [kernel_size[0] // 2] * 2 + [kernel_size[1] // 2] * 2, mode="reflect")
    return TF.conv2d(padded, kernel.expand(x.shape[1], 1, *kernel.shape), groups=x.shape[1])


def test_gaussian_blur_is_the_reflect_padded_gaussian_conv_on_tensors_and_on_pil_images():
    x = RNG.random((2, 3, 7, 8))
    np.testing.assert_allclose(VF.gaussian_blur(tinyres.tensor(x), [3, 5], [0.8, 1.3]).numpy(),
                               torch_blur(torch.from_numpy(x), [3, 5], [0.8, 1.3]).numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(VF.gaussian_blur(tinyres.tensor(x), 3).numpy(),                 # sigma 0.15 k + 0.35
                               torch_blur(torch.from_numpy(x), [3, 3], [0.8, 0.8]).numpy(), rtol=1e-12)
    want = torch_blur(torch.from_numpy(CHW).float()[None], [5, 3], [1.1, 1.1]).round()[0].to(torch.uint8)
    blurred = VF.gaussian_blur(PIL_RGB, [5, 3], 1.1)
    assert blurred.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(blurred), want.permute(1, 2, 0).numpy())
    t = T.GaussianBlur(3, sigma=(0.5, 1.5))
    tinyres.manual_seed(0)
    assert all(0.5 <= t.get_params(0.5, 1.5) < 1.5 for _ in range(50))
    out, sigma = drawn(t, tinyres.tensor(x), lambda: t.get_params(0.5, 1.5))
    np.testing.assert_array_equal(out.numpy(), VF.gaussian_blur(tinyres.tensor(x), [3, 3], [sigma, sigma]).numpy())
    for call, error, match in [(lambda: T.GaussianBlur(4), ValueError, "Kernel size value should be an odd and positive"),
                               (lambda: T.GaussianBlur(3, -1.0), ValueError, "If sigma is a single number, it must be pos"),
                               (lambda: T.GaussianBlur(3, (2.0, 1.0)), ValueError, "sigma values should be positive and"),
                               (lambda: VF.gaussian_blur(PIL_RGB, [3, 2]), ValueError, "kernel_size should have odd and"),
                               (lambda: VF.gaussian_blur(PIL_RGB, 3, 0.0), ValueError, "sigma should have positive")]:
        with pytest.raises(error, match=match):
            call()


def test_random_erasing_draws_a_window_inside_and_erases_exactly_it():
    x = tinyres.tensor(RNG.random((3, 20, 30)))
    tinyres.manual_seed(0)
    for _ in range(100):
        i, j, h, w, v = T.RandomErasing.get_params(x, (0.02, 0.33), (0.3, 3.3), value=[0.0])
        assert h < 20 and w < 30 and 0 <= i <= 20 - h and 0 <= j <= 30 - w and v.shape == (1, 1, 1)
    t = T.RandomErasing(p=1.0, value="random")
    out, (i, j, h, w, v) = drawn(t, x, lambda: (backend.default_generator().random(),           # the draw of p
                                                t.get_params(x, t.scale, t.ratio))[1])
    assert v.shape == (3, h, w) and v.dtype == np.float32
    want = x.numpy().copy()
    want[:, i:i + h, j:j + w] = v.numpy()
    np.testing.assert_array_equal(out.numpy(), want)
    assert out is not x and T.RandomErasing(p=1.0, value=(1, 2, 3), inplace=True)(x) is x
    assert T.RandomErasing(p=0.0)(x) is x
    assert T.RandomErasing.get_params(x, (2.0, 3.0), (1.0, 1.0))[:4] == (0, 0, 20, 30)       # never fits: untouched
    for call, error, match in [(lambda: T.RandomErasing(value="noise"), ValueError, "If value is str, it should be 'random'"),
                               (lambda: T.RandomErasing(value={}), TypeError, "Argument value should be either a number"),
                               (lambda: T.RandomErasing(scale=(0.1, 1.5)), ValueError, "Scale should be between 0 and 1"),
                               (lambda: T.RandomErasing(p=1.5), ValueError, "Random erasing probability should be"),
                               (lambda: T.RandomErasing(p=1.0, value=(1, 2))(x), ValueError, "either a single value or 3"),
                               (lambda: VF.erase(PIL_RGB, 0, 0, 1, 1, 0), TypeError, "img should be Tensor Image")]:
        with pytest.raises(error, match=match):
            call()


# ---------------------------------------------------------------------- containers

def test_random_apply_choice_and_order():
    flip = T.RandomHorizontalFlip(1.0)
    x = tinyres.tensor(CHW)
    assert T.RandomApply([flip], p=0.0)(x) is x
    np.testing.assert_array_equal(T.RandomApply([flip, flip], p=1.0)(x).numpy(), CHW)
    tinyres.manual_seed(0)
    applied = sum(T.RandomApply([flip], p=0.3)(x) is not x for _ in range(1000))
    assert 240 < applied < 360
    tags = [T.Lambda(lambda img, k=k: k) for k in range(3)]
    tinyres.manual_seed(0)
    picks = [T.RandomChoice(tags)(x) for _ in range(600)]
    assert all(150 < picks.count(k) < 250 for k in range(3))
    assert {T.RandomChoice(tags, p=[0, 3, 1])(x) for _ in range(200)} == {1, 2}
    order = T.RandomOrder([T.Lambda(lambda s, k=k: s + str(k)) for k in range(4)])
    tinyres.manual_seed(0)
    runs = {order("") for _ in range(200)}
    assert all(sorted(r) == list("0123") for r in runs) and len(runs) > 10
    tinyres.manual_seed(7)
    first = [order("") for _ in range(5)]
    tinyres.manual_seed(7)
    assert [order("") for _ in range(5)] == first
    with pytest.raises(TypeError, match="Argument transforms should be a sequence"):
        T.RandomOrder(flip)
    with pytest.raises(TypeError, match="Argument p should be a sequence"):
        T.RandomChoice(tags, p=0.5)


# ---------------------------------------------------------------------- AutoAugment, RandAugment, TrivialAugmentWide

def test_autoaugment_policies_and_its_draw():
    for policy in T.AutoAugmentPolicy:
        subs = T.AutoAugment(policy).policies
        assert len(subs) == 25 and all(len(s) == 2 for s in subs)
    with pytest.raises(ValueError, match="The provided policy imagenet is not recognized"):
        T.AutoAugment("imagenet")
    space = T.AutoAugment._augmentation_space(10, (32, 20))
    assert float(space["TranslateX"][0][-1]) == pytest.approx(150 / 331 * 20, rel=1e-6)
    assert space["Posterize"][0].tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4] and float(space["Solarize"][0][0]) == 255
    t = T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)
    for seed in range(6):
        img = tinyres.tensor(CHW)
        out, (policy_id, probs, signs) = drawn(t, img, lambda: t.get_params(25), seed)
        want = img
        for (name, p, bin_), prob, sign in zip(t.policies[policy_id], probs, signs):
            if prob <= p:
                magnitudes, signed = t._augmentation_space(10, (10, 12))[name]
                magnitude = float(magnitudes[bin_]) if bin_ is not None else 0.0
                want = autoaugment._apply_op(want, name, -magnitude if signed and sign == 0 else magnitude,
                                             T.InterpolationMode.NEAREST, None)
        np.testing.assert_array_equal(out.numpy(), want.numpy())


@pytest.mark.parametrize("make", [lambda: T.RandAugment(num_ops=3, magnitude=5), lambda: T.TrivialAugmentWide()])
def test_randaugment_and_trivialaugment_apply_the_ops_their_draws_name(make):
    """The draws replayed with NumPy's generator on the same seed (tinyres's stream)."""
    t = make()
    rand = isinstance(t, T.RandAugment)
    space = t._augmentation_space(31, (10, 12)) if rand else t._augmentation_space(31)
    for seed in range(8):
        tinyres.manual_seed(seed)
        out = t(PIL_RGB)
        rng, want = np.random.default_rng(seed), PIL_RGB
        for _ in range(t.num_ops if rand else 1):
            name = list(space)[int(rng.integers(0, len(space)))]
            magnitudes, signed = space[name]
            index = 5 if rand else (int(rng.integers(0, len(magnitudes))) if magnitudes.ndim else None)
            magnitude = float(magnitudes[index]) if magnitudes.ndim else 0.0
            if signed and int(rng.integers(0, 2)):
                magnitude = -magnitude
            want = autoaugment._apply_op(want, name, magnitude, T.InterpolationMode.NEAREST, None)
        same(out, want)
    assert list(T.TrivialAugmentWide._augmentation_space(31))[:3] == ["Identity", "ShearX", "ShearY"]
    with pytest.raises(ValueError, match="The provided operator Blur is not recognized"):
        autoaugment._apply_op(PIL_RGB, "Blur", 1.0, T.InterpolationMode.NEAREST, None)


def test_the_policy_ops_on_pil_images_are_torchvisions_pil_calls():
    inverse = np.linalg.inv(forward_affine([0, 0], 0.0, (0, 0), 1.0, (math.degrees(math.atan(0.2)), 0.0)))
    same(autoaugment._apply_op(PIL_RGB, "ShearX", 0.2, T.InterpolationMode.NEAREST, None),
         PIL_RGB.transform((12, 10), Image.AFFINE, list(inverse[:2].ravel()), Image.NEAREST, fillcolor=(0, 0, 0)))
    same(autoaugment._apply_op(PIL_RGB, "Color", 0.5, T.InterpolationMode.NEAREST, None),
         ImageEnhance.Color(PIL_RGB).enhance(1.5))
    same(autoaugment._apply_op(PIL_RGB, "Posterize", 4.0, T.InterpolationMode.NEAREST, None),
         ImageOps.posterize(PIL_RGB, 4))


# ---------------------------------------------------------------------- the GPU path

def test_the_tensor_transforms_run_on_the_gpu_as_on_the_cpu(fake_cupy):
    x = RNG.random((3, 10, 12)).astype(np.float32)
    u8 = CHW
    cases = [(lambda t: VF.resize(t, (5, 7)), x), (lambda t: VF.adjust_hue(t, 0.2), x),
             (lambda t: VF.adjust_contrast(t, 0.5), u8), (lambda t: VF.rotate(t, 30, fill=[0.1] * 3), x),
             (lambda t: VF.affine(t, 10, [1, 0], 1.1, 5, T.InterpolationMode.BILINEAR), x),
             (lambda t: VF.gaussian_blur(t, 3), x), (lambda t: VF.adjust_sharpness(t, 2.0), u8),
             (VF.equalize, u8), (VF.autocontrast, u8), (lambda t: VF.crop(t, -1, -1, 4, 4), x)]
    for fn, a in cases:
        cpu, gpu = fn(tinyres.tensor(a)), fn(tinyres.tensor(a, device="cuda"))
        assert gpu.device.type == "cuda"
        np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-6, atol=1e-6)


def test_convert_image_dtype_scales_as_torchvision():
    t = tinyres.tensor(CHW)
    np.testing.assert_allclose(T.ConvertImageDtype(tinyres.float64)(t).numpy(), CHW / 255.0, rtol=1e-15)
    back = VF.convert_image_dtype(tinyres.tensor(CHW / 255.0), tinyres.uint8)
    np.testing.assert_array_equal(back.numpy(), (torch.from_numpy(CHW / 255.0) * 255.999).to(torch.uint8).numpy())
    assert VF.convert_image_dtype(t, "int16").numpy().max() == CHW.max().astype(np.int16) * 128
    with pytest.raises(RuntimeError, match="The cast from float32 to int32 cannot be performed safely"):
        VF.convert_image_dtype(tinyres.zeros(1, 2, 2), "int32")
    with pytest.raises(TypeError, match="Input img should be Tensor Image"):
        VF.convert_image_dtype(RGB)
