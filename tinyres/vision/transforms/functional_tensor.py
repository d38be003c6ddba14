"""The pixel arithmetic behind ``functional`` for Tensors (and NumPy arrays), as torchvision's
``_functional_tensor``: functions of a channels-first array ``(..., C, H, W)`` (NumPy or CuPy)
that give back an array.  ``functional`` checks the arguments, routes PIL images to PIL and
everything else here.

The formulas are torchvision's, dtype rules included: an integer image (uint8) is computed in
float32 and cast back (truncated by ``_blend``, rounded after a resampling), a float image is
taken to lie in [0, 1].  Resizing, blurring and sharpening run on tinyres ops
(``nn.functional.interpolate``, ``pad``, ``conv2d``); rotations, affine and perspective maps
and elastic displacements build torchvision's sampling grid and read it with tinyres's
``nn.functional.grid_sample`` (zeros outside, ``align_corners=False``).
"""
import math

import numpy

from ...core import backend
from ...core.tensor import Tensor
from ...nn import functional as nnF


def max_value(dtype):
    """The value of white: the dtype's largest for integers, 1 for floats."""
    return int(numpy.iinfo(dtype).max) if dtype.kind in "iu" else 1


def _float_dtype(dtype):
    """The dtype the arithmetic runs in: the image's own if float, else float32 (torch's default)."""
    return dtype if dtype.kind == "f" else numpy.dtype(numpy.float32)


def _as_float(a):
    return a if a.dtype.kind == "f" else a.astype(numpy.float32)


def _cast_back(a, dtype):
    """A float result in ``dtype``: rounded first when that is an integer dtype (``_cast_squeeze_out``)."""
    if a.dtype == dtype:
        return a
    xp = backend.get_array_module(a)
    return (xp.round(a) if dtype.kind in "iu" else a).astype(dtype)


def convert_image_dtype(a, dtype):
    """``a`` in ``dtype``, its values rescaled: ints to [0, 1] floats (/ max), floats to ints
    (* (max + 1 - 1e-3), truncated), ints to ints by a power of two."""
    dtype = numpy.dtype(dtype)
    if a.dtype == dtype:
        return a
    if a.dtype.kind == "f":
        if dtype.kind == "f":
            return a.astype(dtype)
        if (a.dtype == numpy.float32 and dtype in (numpy.int32, numpy.int64)) or (a.dtype == numpy.float64 and
                                                                                  dtype == numpy.int64):
            raise RuntimeError(f"The cast from {a.dtype} to {dtype} cannot be performed safely.")
        return (a * a.dtype.type(max_value(dtype) + 1.0 - 1e-3)).astype(dtype)
    input_max = max_value(a.dtype)
    if dtype.kind == "f":
        return a.astype(dtype) / dtype.type(input_max)
    output_max = max_value(dtype)
    if input_max > output_max:
        return (a // ((input_max + 1) // (output_max + 1))).astype(dtype)
    return a.astype(dtype) * ((output_max + 1) // (input_max + 1))


def blend(a1, a2, ratio):
    """``ratio * a1 + (1 - ratio) * a2``, clipped to [0, max] and cast to ``a1``'s dtype (truncated)."""
    ratio = float(ratio)
    out = ratio * _as_float(a1) + (1.0 - ratio) * _as_float(a2)
    return out.clip(0, max_value(a1.dtype)).astype(a1.dtype)


def rgb_to_grayscale(a, num_output_channels=1):
    """L = 0.2989 R + 0.587 G + 0.114 B (a 1-channel image is copied), repeated to 3 channels if asked."""
    xp = backend.get_array_module(a)
    if a.shape[-3] == 3:
        r, g, b = (_as_float(a[..., c, :, :]) for c in range(3))
        gray = (0.2989 * r + 0.587 * g + 0.114 * b).astype(a.dtype)[..., None, :, :]
    else:
        gray = a.copy()
    if num_output_channels == 3:
        return xp.ascontiguousarray(xp.broadcast_to(gray, a.shape[:-3] + (3,) + a.shape[-2:]))
    return gray


def adjust_contrast(a, factor):
    """Blend with the mean of the grayscale image (one mean per image)."""
    dtype = _float_dtype(a.dtype)
    gray = rgb_to_grayscale(a) if a.shape[-3] == 3 else a
    return blend(a, gray.astype(dtype).mean(axis=(-3, -2, -1), keepdims=True), factor)


def _rgb2hsv(a):
    """RGB to HSV with PIL's rules (H and S are 0 where max = min), torchvision's ``_rgb2hsv``."""
    xp = backend.get_array_module(a)
    r, g, b = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    maxc, minc = a.max(axis=-3), a.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    ones = xp.ones_like(maxc)
    s = cr / xp.where(eqc, ones, maxc)
    cr_divisor = xp.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_divisor, (maxc - g) / cr_divisor, (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = xp.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return xp.stack((h, s, maxc), axis=-3)


def _hsv2rgb(a):
    """HSV to RGB: the sextant ``i = floor(6 h) mod 6`` picks which of v, p, q, t each channel is."""
    xp = backend.get_array_module(a)
    h, s, v = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    i = xp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(numpy.int32) % 6
    p = xp.clip(v * (1.0 - s), 0.0, 1.0)
    q = xp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = xp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    mask = (i[..., None, :, :] == xp.arange(6).reshape(-1, 1, 1)).astype(a.dtype)       # (..., 6, H, W)
    table = xp.stack([xp.stack(row, axis=-3) for row in ((v, q, p, p, t, v), (t, v, v, q, p, p),
                                                          (p, p, t, v, v, q))], axis=-4)   # (..., 3, 6, H, W)
    return (mask[..., None, :, :, :] * table).sum(axis=-3)


def adjust_hue(a, factor):
    """Shift H by ``factor`` (mod 1) in HSV, computed in float32 as torchvision does."""
    dtype = a.dtype
    h, s, v = (_rgb2hsv(convert_image_dtype(a, numpy.float32))[..., c, :, :] for c in range(3))
    xp = backend.get_array_module(a)
    return convert_image_dtype(_hsv2rgb(xp.stack(((h + factor) % 1.0, s, v), axis=-3)), dtype)


def adjust_gamma(a, gamma, gain=1.0):
    """``gain * a ** gamma`` on [0, 1] values, clipped."""
    out = convert_image_dtype(a, numpy.float32) if a.dtype.kind != "f" else a
    return convert_image_dtype((gain * out ** gamma).clip(0, 1), a.dtype)


def _depthwise(a, kernel, padding=None):
    """Every channel of ``a`` convolved with the 2-D ``kernel`` (tinyres's conv2d, groups = C),
    after a reflect ``padding`` (left, right, top, bottom) if given."""
    xp = backend.get_array_module(a)
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    x = Tensor(xp.ascontiguousarray(a.reshape((-1, c, h, w))))
    if padding is not None:
        x = nnF.pad(x, padding, mode="reflect")
    weight = Tensor(xp.ascontiguousarray(xp.broadcast_to(kernel, (c, 1) + kernel.shape)))
    y = nnF.conv2d(x, weight, groups=c).array
    return y.reshape(lead + y.shape[1:])


def gaussian_kernel1d(kernel_size, sigma, dtype):
    """exp(-x^2 / (2 sigma^2)) at x = -(k-1)/2 ... (k-1)/2, normalised."""
    half = (kernel_size - 1) * 0.5
    x = numpy.linspace(-half, half, kernel_size).astype(dtype)
    pdf = numpy.exp(-0.5 * (x / dtype.type(sigma)) ** 2)
    return pdf / pdf.sum()


def gaussian_blur(a, kernel_size, sigma):
    """The separable Gaussian (``kernel_size``, ``sigma`` as (x, y)) as one 2-D kernel, reflect-padded."""
    xp = backend.get_array_module(a)
    dtype = _float_dtype(a.dtype)
    kernel = numpy.outer(gaussian_kernel1d(kernel_size[1], sigma[1], dtype),
                         gaussian_kernel1d(kernel_size[0], sigma[0], dtype))
    kernel = backend.to_device(kernel, backend.device_of(a)) if xp is not numpy else kernel
    padding = [kernel_size[0] // 2, kernel_size[0] // 2, kernel_size[1] // 2, kernel_size[1] // 2]
    return _cast_back(_depthwise(_as_float(a), kernel, padding), a.dtype)


def adjust_sharpness(a, factor):
    """Blend with PIL's smoothed image (the 3 x 3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 inside,
    the border kept)."""
    if a.shape[-1] <= 2 or a.shape[-2] <= 2:
        return a
    xp = backend.get_array_module(a)
    kernel = numpy.ones((3, 3), _float_dtype(a.dtype))
    kernel[1, 1] = 5.0
    kernel /= kernel.sum()
    kernel = backend.to_device(kernel, backend.device_of(a)) if xp is not numpy else kernel
    degenerate = a.copy()
    degenerate[..., 1:-1, 1:-1] = _cast_back(_depthwise(_as_float(a), kernel), a.dtype)
    return blend(a, degenerate, factor)


def invert(a):
    return max_value(a.dtype) - a


def posterize(a, bits):
    """Keep the top ``bits`` bits of each uint8 value."""
    return a & numpy.uint8((256 - 2 ** (8 - bits)) % 256)


def solarize(a, threshold):
    xp = backend.get_array_module(a)
    return xp.where(a >= threshold, invert(a), a)


def autocontrast(a):
    """Stretch each channel to [0, max] (a constant channel is kept)."""
    xp = backend.get_array_module(a)
    bound, dtype = max_value(a.dtype), _float_dtype(a.dtype)
    low = a.min(axis=(-2, -1), keepdims=True).astype(dtype)
    span = a.max(axis=(-2, -1), keepdims=True).astype(dtype) - low
    flat = span == 0
    scale = bound / xp.where(flat, 1, span)
    flat = flat | ~xp.isfinite(scale)
    low, scale = xp.where(flat, 0, low), xp.where(flat, 1, scale)
    return ((a - low) * scale).clip(0, bound).astype(a.dtype)


def _equalize_channel(c):
    xp = backend.get_array_module(c)
    hist = xp.bincount(c.reshape(-1), minlength=256)
    step = int(hist[hist != 0][:-1].sum()) // 255
    if step == 0:
        return c
    lut = (xp.cumsum(hist) + step // 2) // step
    lut = xp.concatenate([xp.zeros(1, lut.dtype), lut[:-1]]).clip(0, 255)
    return lut[c.astype(numpy.int64)].astype(numpy.uint8)


def equalize(a):
    """Histogram equalisation of each uint8 channel (PIL's lookup table)."""
    xp = backend.get_array_module(a)
    flat = a.reshape((-1,) + a.shape[-2:])
    return xp.stack([_equalize_channel(c) for c in flat]).reshape(a.shape)


def erase(a, i, j, h, w, v):
    """``a`` with the window (i, j, h, w) set to ``v`` (in place)."""
    a[..., i:i + h, j:j + w] = v
    return a


def resize(a, size, interpolation="bilinear", antialias=True):
    """``a`` resized to ``size`` (h, w) by tinyres's ``interpolate`` (each channel on its own),
    antialiased for 'bilinear' and 'bicubic' when ``antialias``."""
    antialias = bool(antialias) and interpolation in ("bilinear", "bicubic")
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    x = Tensor(a.reshape((-1, 1, h, w)) if a.dtype in (numpy.float32, numpy.float64)
               else a.reshape((-1, 1, h, w)).astype(numpy.float32))
    align_corners = False if interpolation in ("bilinear", "bicubic") else None
    y = nnF.interpolate(x, size=list(size), mode=interpolation, align_corners=align_corners,
                        antialias=antialias).array
    if interpolation == "bicubic" and a.dtype == numpy.uint8:
        y = y.clip(0, 255)
    return _cast_back(y, a.dtype).reshape(lead + tuple(size))


def _on_device_of(array, like):
    return backend.to_device(array, backend.device_of(like)) if backend.get_array_module(like) is not numpy else array


def affine_grid(matrix, w, h, ow, oh, dtype):
    """Where each output pixel samples the input, as a (1, oh, ow, 2) grid in grid_sample's
    [-1, 1] coordinates: the pixel centres of the (oh, ow) output about its middle, mapped by
    the inverse ``matrix`` (2 x 3, pixels) and scaled by the input's half sizes (torchvision's
    ``_gen_affine_grid``)."""
    x = numpy.linspace(-ow * 0.5 + 0.5, ow * 0.5 - 0.5, ow, dtype=numpy.float32).astype(dtype)
    y = numpy.linspace(-oh * 0.5 + 0.5, oh * 0.5 - 0.5, oh, dtype=numpy.float32).astype(dtype)
    x, y = x[None, :], y[:, None]
    m = numpy.asarray(matrix, dtype=dtype).reshape(2, 3) / numpy.array([[0.5 * w], [0.5 * h]], dtype)
    return numpy.stack([x * m[0, 0] + y * m[0, 1] + m[0, 2], x * m[1, 0] + y * m[1, 1] + m[1, 2]], axis=-1)[None]


def perspective_grid(coeffs, ow, oh, dtype):
    """The (1, oh, ow, 2) grid of the perspective map ``coeffs`` (a .. h; PIL's: the output
    pixel centre (x, y) reads the input at ((a x + b y + c) / (g x + h y + 1), (d x + e y + f) /
    (g x + h y + 1))), in [-1, 1] coordinates (torchvision's ``_perspective_grid``)."""
    theta1 = numpy.array([coeffs[0:3], coeffs[3:6]], dtype).T / numpy.array([0.5 * ow, 0.5 * oh], dtype)
    theta2 = numpy.array([[coeffs[6], coeffs[7], 1.0]] * 2, dtype).T
    x = numpy.linspace(0.5, ow - 0.5, ow, dtype=numpy.float32).astype(dtype)
    y = numpy.linspace(0.5, oh - 0.5, oh, dtype=numpy.float32).astype(dtype)
    x, y = x[None, :, None], y[:, None, None]
    num = x * theta1[0] + y * theta1[1] + theta1[2]
    den = x * theta2[0] + y * theta2[1] + theta2[2]
    return (num / den - dtype.type(1.0))[None]


def _linspace32(start, end, steps):
    """torch's float32 ``linspace``: start + i step for the first half, end - (steps - 1 - i) step after."""
    f32 = numpy.float32
    start, end = f32(start), f32(end)
    step = (end - start) / f32(max(steps - 1, 1))
    i = numpy.arange(steps, dtype=f32)
    return numpy.where(i < steps // 2, start + i * step, end - (f32(steps - 1) - i) * step).astype(f32)


def identity_grid(h, w):
    """The (1, h, w, 2) float32 grid reading every pixel at its own centre (x, y in [-1, 1],
    torchvision's ``_create_identity_grid``)."""
    x = _linspace32((-w + 1) / w, (w - 1) / w, w)
    y = _linspace32((-h + 1) / h, (h - 1) / h, h)
    return numpy.stack(numpy.broadcast_arrays(x[None, :], y[:, None]), axis=-1)[None]


def apply_grid_transform(a, grid, mode, fill):
    """``a`` (..., C, H, W) read at the (1, oh, ow, 2) ``grid`` by tinyres's
    ``nn.functional.grid_sample`` (zeros outside, ``align_corners=False``), computed in the
    grid's dtype -- torchvision's ``_apply_grid_transform``: with a ``fill``, a channel of ones
    is sampled along and says where the output lies outside the input, which 'nearest' then
    sets to ``fill`` (mask < 0.5) and 'bilinear' blends towards it (``y mask + (1 - mask) fill``)."""
    xp = backend.get_array_module(a)
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    dtype = grid.dtype
    oh, ow = grid.shape[1:3]
    x = a.reshape((-1, c, h, w)).astype(dtype)
    n = x.shape[0]
    if fill is not None:
        x = xp.concatenate([x, xp.ones((n, 1, h, w), dtype)], axis=1)
    grid = _on_device_of(grid, a)
    grid = xp.ascontiguousarray(xp.broadcast_to(grid, (n,) + grid.shape[1:]))
    y = nnF.grid_sample(Tensor(xp.ascontiguousarray(x)), Tensor(grid), mode=mode, padding_mode="zeros",
                        align_corners=False).array
    if fill is not None:
        y, mask = y[:, :-1], y[:, -1:]
        fill = list(fill) if isinstance(fill, (tuple, list)) else [float(fill)]
        fill_img = _on_device_of(numpy.asarray(fill, dtype).reshape(1, -1, 1, 1), a)
        y = xp.where(mask < 0.5, fill_img, y) if mode == "nearest" else y * mask + (1.0 - mask) * fill_img
    return _cast_back(y, a.dtype).reshape(lead + (c, oh, ow))


def apply_grid(a, matrix, mode, fill, out_size=None):
    """``a`` (..., C, H, W) resampled through the inverse affine ``matrix`` onto ``out_size``
    (w, h; default the input's): torchvision's ``rotate`` / ``affine``."""
    h, w = a.shape[-2:]
    ow, oh = out_size or (w, h)
    return apply_grid_transform(a, affine_grid(matrix, w, h, ow, oh, _float_dtype(a.dtype)), mode, fill)


def perspective(a, coeffs, mode, fill):
    """``a`` seen through the perspective map ``coeffs`` (torchvision's ``perspective``)."""
    h, w = a.shape[-2:]
    return apply_grid_transform(a, perspective_grid(coeffs, w, h, _float_dtype(a.dtype)), mode, fill)


def elastic_transform(a, displacement, mode, fill):
    """``a`` read at the identity grid moved by ``displacement`` (1, H, W, 2), in the dtype the
    two add up to (torchvision's ``elastic_transform``)."""
    h, w = a.shape[-2:]
    grid = _on_device_of(identity_grid(h, w), displacement) + displacement
    return apply_grid_transform(a, grid, mode, fill)


def affine_output_size(matrix, w, h):
    """(w, h) of the box holding the whole transformed image (``rotate(expand=True)``), in
    float32 and with the corners' coordinates truncated to 1e-4, as torchvision computes it."""
    f32 = numpy.float32
    corners = numpy.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0], [0.5 * w, 0.5 * h, 1.0],
                           [0.5 * w, -0.5 * h, 1.0]], f32)
    moved = corners @ numpy.asarray(matrix, f32).reshape(2, 3).T
    centre = numpy.array([w * 0.5, h * 0.5], f32)
    low, high = moved.min(axis=0) + centre, moved.max(axis=0) + centre
    tol = f32(1e-4)
    size = numpy.ceil(numpy.trunc(high / tol) * tol) - numpy.floor(numpy.trunc(low / tol) * tol)
    return int(size[0]), int(size[1])


def inverse_affine_matrix(center, angle, translate, scale, shear, inverted=True):
    """The 2 x 3 matrix of T * C * R(angle) S(scale) SHy(shear_y) SHx(shear_x) * C^-1 (angles
    in degrees; C moves ``center`` to the origin, T translates), or of its inverse, which is
    what PIL's ``Image.transform`` and the sampling grid take (torchvision's
    ``_get_inverse_affine_matrix``)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    (cx, cy), (tx, ty) = center, translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    if inverted:       # det([[a, b], [c, d]]) = 1: RSS^-1 (C^-1 T^-1), then C
        m = [x / scale for x in (d, -b, 0.0, -c, a, 0.0)]
        m[2], m[5] = m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx, m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    else:
        m = [x * scale for x in (a, b, 0.0, c, d, 0.0)]
        m[2], m[5] = m[0] * (-cx) + m[1] * (-cy) + (cx + tx), m[3] * (-cx) + m[4] * (-cy) + (cy + ty)
    return m
