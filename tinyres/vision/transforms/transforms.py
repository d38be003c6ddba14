"""Per-sample image transforms, as ``torchvision.transforms.transforms``: classes that hold their
settings and call ``functional``'s per-image functions (the package's docstring says more).

A random transform draws its parameters in a static ``get_params`` (torchvision's), from
tinyres's default generator: ``tinyres.manual_seed(s)`` repeats them (the numbers are NumPy's,
not torch's, so not torchvision's draws), and ``F.<op>(img, *params)`` is what the transform
applied.  ``RandomChoice`` and ``RandomOrder`` draw there too (torchvision uses Python's
``random``).
"""
import bisect
import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from ...core import backend
from ...core.tensor import Tensor
from ...data.transforms import Compose  # noqa: F401  (in __all__: one Compose for batch and per-sample transforms)
from . import functional as F
from .functional import _PAD_MODES, InterpolationMode, _hw, _padding, _size, _unpack, crop, pad

__all__ = ["Compose", "Lambda", "ToTensor", "PILToTensor", "ConvertImageDtype", "ToPILImage", "Normalize", "Resize",
           "Pad", "CenterCrop", "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomResizedCrop",
           "FiveCrop", "TenCrop", "RandomApply", "RandomChoice", "RandomOrder", "ColorJitter", "Grayscale",
           "RandomGrayscale", "RandomRotation", "RandomAffine", "RandomPerspective", "ElasticTransform", "GaussianBlur", "RandomErasing", "RandomInvert",
           "RandomPosterize", "RandomSolarize", "RandomAdjustSharpness", "RandomAutocontrast", "RandomEqualize",
           "InterpolationMode"]


def _uniform():
    return float(backend.default_generator().random())


def _uniform_between(low, high):
    """torch's ``empty(1).uniform_(low, high)``: low + (high - low) * U[0, 1)."""
    return float(low + (high - low) * _uniform())


def _randint(low, high):
    return int(backend.default_generator().integers(low, high))


class Lambda:
    """A function of your own as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class ToTensor:
    """A PIL image or ``(H, W[, C])`` array as a ``(C, H, W)`` Tensor: uint8 (and PIL's
    1-bit mode) scaled to float32 in [0, 1], other dtypes kept as they are (torchvision's rule)."""

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self):
        return "ToTensor()"


class PILToTensor:
    """A PIL image as a ``(C, H, W)`` Tensor of its own dtype, not scaled."""

    def __call__(self, pic):
        return F.pil_to_tensor(pic)


class ToPILImage:
    """A ``(C, H, W)`` Tensor (floats in [0, 1] scaled by 255) or ``(H, W[, C])`` array as a PIL image."""

    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, pic):
        return F.to_pil_image(pic, self.mode)


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel ``c`` of a float ``(..., C, H, W)`` Tensor."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Pad:
    """Pad every image by ``padding`` (see ``pad``)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        _padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        return pad(img, self.padding, self.fill, self.padding_mode)


class CenterCrop:
    """The central ``size`` window (padded with zeros first where the image is smaller)."""

    def __init__(self, size):
        self.size = _size("CenterCrop", size)

    def __call__(self, img):
        return F.center_crop(img, self.size)


class RandomCrop:
    """A random ``size`` window, after ``padding`` (torchvision's arguments): the CIFAR
    recipe's ``RandomCrop(32, padding=4)`` shifts each image by up to 4 pixels."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _size("RandomCrop", size)
        if padding is not None:
            _padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img, output_size):
        """``(top, left, height, width)`` of a random window of ``output_size``."""
        array, last, _ = _unpack("RandomCrop", img)
        (h, w), (th, tw) = _hw(array, last), output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        return _randint(0, h - th + 1), _randint(0, w - tw + 1), th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        array, last, _ = _unpack("RandomCrop", img)
        (h, w), (th, tw) = _hw(array, last), self.size
        if self.pad_if_needed and (w < tw or h < th):
            img = pad(img, [max(tw - w, 0), max(th - h, 0)], self.fill, self.padding_mode)
        return crop(img, *self.get_params(img, self.size))

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class _RandomOp:
    """One of ``functional``'s ops with probability ``p`` (torchvision's Random* wrappers)."""
    op, args = None, ()

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return type(self).op(img, *(getattr(self, a) for a in self.args)) if _uniform() < self.p else img

    def __repr__(self):
        return f"{type(self).__name__}(" + "".join(f"{a}={getattr(self, a)}, " for a in self.args) + f"p={self.p})"


class RandomHorizontalFlip(_RandomOp):
    """Mirror the image left to right with probability ``p``."""
    op = F.hflip


class RandomVerticalFlip(_RandomOp):
    """Mirror the image top to bottom with probability ``p``."""
    op = F.vflip


def _setup_size(size, error_msg):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return size[0], size[0]
    if not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(error_msg)
    return tuple(size)


def _check_sequence_input(x, name, req_sizes):
    msg = req_sizes[0] if len(req_sizes) < 2 else " or ".join(str(s) for s in req_sizes)
    if not isinstance(x, Sequence):
        raise TypeError(f"{name} should be a sequence of length {msg}.")
    if len(x) not in req_sizes:
        raise ValueError(f"{name} should be a sequence of length {msg}.")


def _setup_angle(x, name, req_sizes=(2,)):
    """(-x, x) for a number, else the sequence, as floats."""
    if isinstance(x, numbers.Number):
        if x < 0:
            raise ValueError(f"If {name} is a single number, it must be positive.")
        x = [-x, x]
    else:
        _check_sequence_input(x, name, req_sizes)
    return [float(d) for d in x]


def _check_fill(fill):
    if fill is None:
        return 0
    if not isinstance(fill, (Sequence, numbers.Number)):
        raise TypeError("Fill should be either a sequence or a number.")
    return fill


def _tensor_fill(fill, img):
    """A Tensor's (or an array's) fill: one float per channel; a PIL image's (and None) stays as given."""
    if F._is_pil(img) or fill is None:
        return fill
    if isinstance(fill, (int, float)):
        return [float(fill)] * F.get_dimensions(img)[0]
    return [float(f) for f in fill]


def _interpolation_arg(interpolation):
    return F._interpolation_modes_from_int(interpolation) if isinstance(interpolation, int) else interpolation


class ConvertImageDtype:
    """A Tensor image in ``dtype``, its values rescaled (``convert_image_dtype``)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, image):
        return F.convert_image_dtype(image, self.dtype)


class Resize:
    """Resize to ``size``: (h, w), or an int for the shorter edge (the aspect ratio kept),
    ``max_size`` capping the longer one (see ``functional.resize``)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        if not isinstance(size, (int, Sequence)):
            raise TypeError(f"Size should be int or sequence. Got {type(size)}")
        if isinstance(size, Sequence) and len(size) not in (1, 2):
            raise ValueError("If size is a sequence, it should have 1 or 2 values")
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = _interpolation_arg(interpolation)

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self):
        return (f"Resize(size={self.size}, interpolation={self.interpolation.value}, max_size={self.max_size}, "
                f"antialias={self.antialias})")


class RandomResizedCrop:
    """A window of random area (``scale`` of the image's) and aspect ratio (``ratio``, drawn
    log-uniformly), resized to ``size``: the ImageNet training crop."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=InterpolationMode.BILINEAR,
                 antialias=True):
        self.size = _setup_size(size, error_msg="Please provide only two dimensions (h, w) for size.")
        if not isinstance(scale, Sequence):
            raise TypeError("Scale should be a sequence")
        if not isinstance(ratio, Sequence):
            raise TypeError("Ratio should be a sequence")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("Scale and ratio should be of kind (min, max)")
        self.interpolation, self.antialias = _interpolation_arg(interpolation), antialias
        self.scale, self.ratio = scale, ratio

    @staticmethod
    def get_params(img, scale, ratio):
        """``(top, left, height, width)``: up to 10 tries at a window of area ``scale`` x the
        image's and aspect ratio (w / h) in ``ratio`` that fits, else the central crop of the
        ratio clamped into ``ratio``."""
        _, height, width = F.get_dimensions(img)
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * _uniform_between(scale[0], scale[1])
            aspect_ratio = math.exp(_uniform_between(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                return _randint(0, height - h + 1), _randint(0, width - w + 1), h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        i, j, h, w = self.get_params(img, self.scale, self.ratio)
        return F.resized_crop(img, i, j, h, w, self.size, self.interpolation, antialias=self.antialias)

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={tuple(round(s, 4) for s in self.scale)}, "
                f"ratio={tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation.value}, "
                f"antialias={self.antialias})")


class FiveCrop:
    """The four corners and the centre, as a tuple of five images."""

    def __init__(self, size):
        self.size = _setup_size(size, error_msg="Please provide only two dimensions (h, w) for size.")

    def __call__(self, img):
        return F.five_crop(img, self.size)


class TenCrop:
    """``FiveCrop`` of the image and of its mirror (``vertical_flip``: top-bottom), ten images."""

    def __init__(self, size, vertical_flip=False):
        self.size = _setup_size(size, error_msg="Please provide only two dimensions (h, w) for size.")
        self.vertical_flip = vertical_flip

    def __call__(self, img):
        return F.ten_crop(img, self.size, self.vertical_flip)


class RandomTransforms:
    """A list of transforms, applied by a random rule of the subclass."""

    def __init__(self, transforms):
        if not isinstance(transforms, Sequence):
            raise TypeError("Argument transforms should be a sequence")
        self.transforms = transforms

    def __call__(self, *args, **kwargs):
        raise NotImplementedError()

    def __repr__(self):
        return type(self).__name__ + "(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


class RandomApply(RandomTransforms):
    """All of ``transforms``, in order, with probability ``p``; else none."""

    def __init__(self, transforms, p=0.5):
        super().__init__(transforms)
        self.p = p

    def __call__(self, img):
        if self.p < _uniform():
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomChoice(RandomTransforms):
    """One of ``transforms``, picked with the weights ``p`` (default: equally likely)."""

    def __init__(self, transforms, p=None):
        super().__init__(transforms)
        if p is not None and not isinstance(p, Sequence):
            raise TypeError("Argument p should be a sequence")
        self.p = p

    def __call__(self, *args):
        if self.p is None:
            return self.transforms[_randint(0, len(self.transforms))](*args)
        cumulative = np.cumsum(self.p).tolist()
        return self.transforms[bisect.bisect(cumulative, _uniform() * cumulative[-1])](*args)


class RandomOrder(RandomTransforms):
    """All of ``transforms``, in a random order."""

    def __call__(self, img):
        for i in backend.default_generator().permutation(len(self.transforms)):
            img = self.transforms[int(i)](img)
        return img


class ColorJitter:
    """Brightness, contrast, saturation and hue changed by random factors, in a random order.
    Each argument is a number x (factor drawn from [max(0, 1 - x), 1 + x]; hue: [-x, x]) or a
    range (min, max); 0 leaves that property alone."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = self._check_input(brightness, "brightness")
        self.contrast = self._check_input(contrast, "contrast")
        self.saturation = self._check_input(saturation, "saturation")
        self.hue = self._check_input(hue, "hue", center=0, bound=(-0.5, 0.5), clip_first_on_zero=False)

    @staticmethod
    def _check_input(value, name, center=1, bound=(0, float("inf")), clip_first_on_zero=True):
        if isinstance(value, numbers.Number):
            if value < 0:
                raise ValueError(f"If {name} is a single number, it must be non negative.")
            value = [center - float(value), center + float(value)]
            if clip_first_on_zero:
                value[0] = max(value[0], 0.0)
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            value = [float(value[0]), float(value[1])]
        else:
            raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
        if not bound[0] <= value[0] <= value[1] <= bound[1]:
            raise ValueError(f"{name} values should be between {bound}, but got {value}.")
        return None if value[0] == value[1] == center else tuple(value)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue):
        """``(order, b, c, s, h)``: a permutation of the four adjustments (0 brightness, 1
        contrast, 2 saturation, 3 hue) and each factor (None for a range that is None)."""
        order = [int(i) for i in backend.default_generator().permutation(4)]
        b = None if brightness is None else _uniform_between(*brightness)
        c = None if contrast is None else _uniform_between(*contrast)
        s = None if saturation is None else _uniform_between(*saturation)
        h = None if hue is None else _uniform_between(*hue)
        return order, b, c, s, h

    def __call__(self, img):
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        for i in order:
            if factors[i] is not None:
                img = adjust[i](img, factors[i])
        return img

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, "
                f"hue={self.hue})")


class Grayscale:
    """The luminance, as 1 channel or repeated to 3 (``rgb_to_grayscale``)."""

    def __init__(self, num_output_channels=1):
        self.num_output_channels = num_output_channels

    def __call__(self, img):
        return F.rgb_to_grayscale(img, num_output_channels=self.num_output_channels)


class RandomGrayscale:
    """With probability ``p``, the luminance in as many channels as the image had."""

    def __init__(self, p=0.1):
        self.p = p

    def __call__(self, img):
        channels = F.get_dimensions(img)[0]
        return F.rgb_to_grayscale(img, num_output_channels=channels) if _uniform() < self.p else img


class RandomRotation:
    """A rotation by an angle drawn from ``degrees`` (x: [-x, x]; or (min, max)), see ``rotate``."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0):
        self.interpolation = _interpolation_arg(interpolation)
        self.degrees = _setup_angle(degrees, name="degrees", req_sizes=(2,))
        if center is not None:
            _check_sequence_input(center, "center", req_sizes=(2,))
        self.center, self.expand, self.fill = center, expand, _check_fill(fill)

    @staticmethod
    def get_params(degrees):
        """The angle, uniform in ``degrees`` (min, max)."""
        return _uniform_between(float(degrees[0]), float(degrees[1]))

    def __call__(self, img):
        fill = _tensor_fill(self.fill, img)
        return F.rotate(img, self.get_params(self.degrees), self.interpolation, self.expand, self.center, fill)

    def __repr__(self):
        return (f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation.value}, "
                f"expand={self.expand}" + (f", center={self.center}" if self.center is not None else "")
                + f", fill={self.fill})")


class RandomAffine:
    """A random ``affine``: angle from ``degrees``, shifts up to ``translate`` (fractions of
    the width and height), a scale from ``scale`` (min, max) and shears from ``shear`` (x: an
    x-shear in [-x, x]; 2 values: an x-shear range; 4: x- and y-shear ranges)."""

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation=InterpolationMode.NEAREST, fill=0,
                 center=None):
        self.interpolation = _interpolation_arg(interpolation)
        self.degrees = _setup_angle(degrees, name="degrees", req_sizes=(2,))
        if translate is not None:
            _check_sequence_input(translate, "translate", req_sizes=(2,))
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError("translation values should be between 0 and 1")
        if scale is not None:
            _check_sequence_input(scale, "scale", req_sizes=(2,))
            if any(s <= 0 for s in scale):
                raise ValueError("scale values should be positive")
        self.translate, self.scale = translate, scale
        self.shear = _setup_angle(shear, name="shear", req_sizes=(2, 4)) if shear is not None else None
        self.fill = _check_fill(fill)
        if center is not None:
            _check_sequence_input(center, "center", req_sizes=(2,))
        self.center = center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size):
        """``(angle, (tx, ty), scale, (shear_x, shear_y))`` for an image of ``img_size`` (w, h);
        the shifts rounded to whole pixels."""
        angle = _uniform_between(float(degrees[0]), float(degrees[1]))
        if translate is not None:
            max_dx, max_dy = float(translate[0] * img_size[0]), float(translate[1] * img_size[1])
            translations = (int(round(_uniform_between(-max_dx, max_dx))),
                            int(round(_uniform_between(-max_dy, max_dy))))
        else:
            translations = (0, 0)
        scale = _uniform_between(scale_ranges[0], scale_ranges[1]) if scale_ranges is not None else 1.0
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = _uniform_between(shears[0], shears[1])
            if len(shears) == 4:
                shear_y = _uniform_between(shears[2], shears[3])
        return angle, translations, scale, (shear_x, shear_y)

    def __call__(self, img):
        fill = _tensor_fill(self.fill, img)
        _, height, width = F.get_dimensions(img)
        params = self.get_params(self.degrees, self.translate, self.scale, self.shear, [width, height])
        return F.affine(img, *params, interpolation=self.interpolation, fill=fill, center=self.center)


class RandomPerspective:
    """``perspective`` with probability ``p``: each corner moved inwards by up to
    ``distortion_scale`` of half the width / height (torchvision's ``get_params``)."""

    def __init__(self, distortion_scale=0.5, p=0.5, interpolation=InterpolationMode.BILINEAR, fill=0):
        self.p = p
        self.interpolation = _interpolation_arg(interpolation)
        self.distortion_scale = distortion_scale
        self.fill = _check_fill(fill)

    @staticmethod
    def get_params(width, height, distortion_scale):
        """(startpoints, endpoints): the image's corners and where they go."""
        dw, dh = int(distortion_scale * (width // 2)), int(distortion_scale * (height // 2))
        topleft = [_randint(0, dw + 1), _randint(0, dh + 1)]
        topright = [_randint(width - dw - 1, width), _randint(0, dh + 1)]
        botright = [_randint(width - dw - 1, width), _randint(height - dh - 1, height)]
        botleft = [_randint(0, dw + 1), _randint(height - dh - 1, height)]
        startpoints = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]
        return startpoints, [topleft, topright, botright, botleft]

    def __call__(self, img):
        fill = _tensor_fill(self.fill, img)
        _, height, width = F.get_dimensions(img)
        if _uniform() < self.p:
            startpoints, endpoints = self.get_params(width, height, self.distortion_scale)
            return F.perspective(img, startpoints, endpoints, self.interpolation, fill)
        return img

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


def _pair_of_floats(x, name):
    if not isinstance(x, (float, Sequence)):
        raise TypeError(f"{name} should be float or a sequence of floats. Got {type(x)}")
    if isinstance(x, Sequence) and len(x) != 2:
        raise ValueError(f"If {name} is a sequence its length should be 2. Got {len(x)}")
    if isinstance(x, Sequence):
        for element in x:
            if not isinstance(element, float):
                raise TypeError(f"{name} should be a sequence of floats. Got {type(element)}")
    return [float(x), float(x)] if isinstance(x, float) else list(x)


class ElasticTransform:
    """``elastic_transform`` by a random displacement: uniform in [-1, 1) per pixel, blurred by
    a Gaussian of ``sigma`` (kernel int(8 sigma + 1), made odd) and scaled by ``alpha`` / size."""

    def __init__(self, alpha=50.0, sigma=5.0, interpolation=InterpolationMode.BILINEAR, fill=0):
        self.alpha = _pair_of_floats(alpha, "alpha")
        self.sigma = _pair_of_floats(sigma, "sigma")
        self.interpolation = _interpolation_arg(interpolation)
        if isinstance(fill, (int, float)):
            fill = [float(fill)]
        elif isinstance(fill, (list, tuple)):
            fill = [float(f) for f in fill]
        else:
            raise TypeError(f"fill should be int or float or a list or tuple of them. Got {type(fill)}")
        self.fill = fill

    @staticmethod
    def get_params(alpha, sigma, size):
        """The (1, H, W, 2) displacement for an image of ``size`` (h, w)."""
        gen = backend.default_generator()
        out = []
        for axis in (0, 1):
            d = Tensor((gen.random((1, 1) + tuple(size)) * 2 - 1).astype(np.float32))
            if sigma[axis] > 0.0:
                k = int(8 * sigma[axis] + 1)
                k += 1 - k % 2
                d = F.gaussian_blur(d, [k, k], sigma)
            out.append(d.array * np.float32(alpha[axis] / size[axis]))
        return Tensor(np.ascontiguousarray(np.concatenate(out, 1).transpose(0, 2, 3, 1)))

    def __call__(self, img):
        _, height, width = F.get_dimensions(img)
        displacement = self.get_params(self.alpha, self.sigma, [height, width])
        return F.elastic_transform(img, displacement, self.interpolation, self.fill)

    def __repr__(self):
        return (f"{type(self).__name__}(alpha={self.alpha}, sigma={self.sigma}, interpolation={self.interpolation}, "
                f"fill={self.fill})")


class GaussianBlur:
    """A Gaussian blur of ``kernel_size`` with sigma drawn from ``sigma`` (min, max), or fixed."""

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        self.kernel_size = _setup_size(kernel_size, "Kernel size should be a tuple/list of two integers")
        if any(ks <= 0 or ks % 2 == 0 for ks in self.kernel_size):
            raise ValueError("Kernel size value should be an odd and positive number.")
        if isinstance(sigma, numbers.Number):
            if sigma <= 0:
                raise ValueError("If sigma is a single number, it must be positive.")
            sigma = (sigma, sigma)
        elif isinstance(sigma, Sequence) and len(sigma) == 2:
            if not 0.0 < sigma[0] <= sigma[1]:
                raise ValueError("sigma values should be positive and of the form (min, max).")
        else:
            raise ValueError("sigma should be a single number or a list/tuple with length 2.")
        self.sigma = sigma

    @staticmethod
    def get_params(sigma_min, sigma_max):
        """sigma, uniform in [sigma_min, sigma_max)."""
        return _uniform_between(sigma_min, sigma_max)

    def __call__(self, img):
        sigma = self.get_params(self.sigma[0], self.sigma[1])
        return F.gaussian_blur(img, self.kernel_size, [sigma, sigma])

    def __repr__(self):
        return f"GaussianBlur(kernel_size={self.kernel_size}, sigma={self.sigma})"


class RandomErasing:
    """With probability ``p``, a random rectangle of a Tensor image (area ``scale`` of the
    image's, aspect ratio in ``ratio``) set to ``value``: a number, one per channel, or
    'random' (standard normal noise) -- Zhong et al., 2017."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if not isinstance(value, (numbers.Number, str, tuple, list)):
            raise TypeError("Argument value should be either a number or str or a sequence")
        if isinstance(value, str) and value != "random":
            raise ValueError("If value is str, it should be 'random'")
        if not isinstance(scale, Sequence):
            raise TypeError("Scale should be a sequence")
        if not isinstance(ratio, Sequence):
            raise TypeError("Ratio should be a sequence")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("Scale and ratio should be of kind (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError("Scale should be between 0 and 1")
        if p < 0 or p > 1:
            raise ValueError("Random erasing probability should be between 0 and 1")
        self.p, self.scale, self.ratio, self.value, self.inplace = p, scale, ratio, value, inplace

    @staticmethod
    def get_params(img, scale, ratio, value=None):
        """``(i, j, h, w, v)``: up to 10 tries at a rectangle that fits strictly inside, filled
        with ``value`` (a list, one per channel or one) or, for None, normal noise (float32);
        after 10 misses the whole image and the image itself (nothing erased)."""
        img_c, img_h, img_w = img.shape[-3], img.shape[-2], img.shape[-1]
        area = img_h * img_w
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            erase_area = area * _uniform_between(scale[0], scale[1])
            aspect_ratio = math.exp(_uniform_between(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(erase_area * aspect_ratio)))
            w = int(round(math.sqrt(erase_area / aspect_ratio)))
            if not (h < img_h and w < img_w):
                continue
            if value is None:
                v = backend.default_generator().standard_normal((img_c, h, w), dtype=np.float32)
            else:
                v = np.asarray(value, np.float32)[:, None, None]
            v = Tensor(backend.to_device(v, img.device))
            return _randint(0, img_h - h + 1), _randint(0, img_w - w + 1), h, w, v
        return 0, 0, img_h, img_w, img

    def __call__(self, img):
        if _uniform() >= self.p:
            return img
        if isinstance(self.value, (int, float)):
            value = [float(self.value)]
        elif isinstance(self.value, str):
            value = None
        else:
            value = [float(v) for v in self.value]
        if value is not None and len(value) not in (1, img.shape[-3]):
            raise ValueError("If value is a sequence, it should have either a single value or "
                             f"{img.shape[-3]} (number of input channels)")
        x, y, h, w, v = self.get_params(img, scale=self.scale, ratio=self.ratio, value=value)
        return F.erase(img, x, y, h, w, v, self.inplace)


class RandomInvert(_RandomOp):
    op = F.invert


class RandomPosterize(_RandomOp):
    op, args = F.posterize, ("bits",)

    def __init__(self, bits, p=0.5):
        super().__init__(p)
        self.bits = bits


class RandomSolarize(_RandomOp):
    op, args = F.solarize, ("threshold",)

    def __init__(self, threshold, p=0.5):
        super().__init__(p)
        self.threshold = threshold


class RandomAdjustSharpness(_RandomOp):
    op, args = F.adjust_sharpness, ("sharpness_factor",)

    def __init__(self, sharpness_factor, p=0.5):
        super().__init__(p)
        self.sharpness_factor = sharpness_factor


class RandomAutocontrast(_RandomOp):
    op = F.autocontrast


class RandomEqualize(_RandomOp):
    op = F.equalize
