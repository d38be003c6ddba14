"""Batch transforms: each works on a whole float batch ``(N, C, H, W)`` at once (or on one
image ``(C, H, W)``, treated as a batch of one), with NumPy or CuPy arrays, and never loops
over samples in Python.

Random transforms draw their numbers on the host from a NumPy Generator -- the one given
as ``generator`` (a Generator or an int seed), else tinyres's default generator (see
``tinyres.manual_seed``) -- so a seed gives the same result on CPU and GPU.  Inputs are
never modified in place.
"""
import numpy as np

from ..core import backend
from ..core.backend import get_array_module

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
# Per-channel mean and standard deviation over all pixels of the training set.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def _as_batch(name, x):
    """``x`` as ``(N, C, H, W)``, and a function that gives an output ``x``'s rank back."""
    if x.ndim == 4:
        return x, lambda y: y
    if x.ndim == 3:
        return x[None], lambda y: y[0]
    raise ValueError(f"{name}: expected an image (C, H, W) or a batch (N, C, H, W), "
                     f"got shape {tuple(x.shape)}")


def _pair(name, size):
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size!r}")
    return pair


class _Random:
    """Holds the generator of a random transform."""

    def __init__(self, generator):
        if isinstance(generator, (int, np.integer)):
            generator = np.random.default_rng(generator)
        self.generator = generator

    def rng(self):
        return self.generator if self.generator is not None else backend.default_generator()


class Compose:
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel ``c``."""

    def __init__(self, mean, std):
        self.mean, self.std = tuple(mean), tuple(std)
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"Normalize: need as many means as stds, all stds > 0; got "
                             f"mean={self.mean}, std={self.std}")

    def __call__(self, x):
        xp = get_array_module(x)
        batch, unbatch = _as_batch("Normalize", x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a float image or batch (values in [0, 1]), "
                            f"got {x.dtype}")
        if batch.shape[1] != len(self.mean):
            raise ValueError(f"Normalize: {len(self.mean)} channel mean(s) given, but the input "
                             f"has {batch.shape[1]} channels (shape {tuple(x.shape)})")
        mean = xp.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1)
        return unbatch((batch - mean) / std)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop(_Random):
    """Pad each image with ``padding`` zeros on every side, then cut a ``size`` window at a
    random offset (independently per image): the standard CIFAR augmentation with
    ``RandomCrop(32, padding=4)``."""

    def __init__(self, size, padding=0, generator=None):
        super().__init__(generator)
        self.size, self.padding = _pair("RandomCrop", size), int(padding)
        if self.padding < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")

    def offsets(self, n, height, width):
        """The top-left corners ``(top, left)`` of ``n`` windows in a padded image."""
        h, w = self.size
        p = self.padding
        if height + 2 * p < h or width + 2 * p < w:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"{(height + 2 * p, width + 2 * p)}")
        rng = self.rng()
        return rng.integers(0, height + 2 * p - h + 1, n), rng.integers(0, width + 2 * p - w + 1, n)

    def __call__(self, x):
        xp = get_array_module(x)
        batch, unbatch = _as_batch("RandomCrop", x)
        n, c, height, width = batch.shape
        top, left = self.offsets(n, height, width)
        p = self.padding
        padded = xp.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)))
        rows = xp.asarray(top[:, None] + np.arange(self.size[0]))     # (N, h)
        cols = xp.asarray(left[:, None] + np.arange(self.size[1]))    # (N, w)
        out = padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                     rows[:, None, :, None], cols[:, None, None, :]]
        return unbatch(out)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(_Random):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p=0.5, generator=None):
        super().__init__(generator)
        self.p = p

    def __call__(self, x):
        xp = get_array_module(x)
        batch, unbatch = _as_batch("RandomHorizontalFlip", x)
        flip = xp.asarray(self.rng().random(len(batch)) < self.p)
        return unbatch(xp.where(flip[:, None, None, None], batch[..., ::-1], batch))

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Cutout(_Random):
    """Zero a ``size`` x ``size`` square centred at a random pixel of each image (the part
    of the square that falls outside the image is ignored) -- DeVries & Taylor, 2017."""

    def __init__(self, size, generator=None):
        super().__init__(generator)
        self.size = int(size)

    def __call__(self, x):
        xp = get_array_module(x)
        batch, unbatch = _as_batch("Cutout", x)
        n, _, height, width = batch.shape
        rng = self.rng()
        top = rng.integers(0, height, n) - self.size // 2
        left = rng.integers(0, width, n) - self.size // 2
        ys, xs = np.arange(height), np.arange(width)
        in_rows = (ys >= top[:, None]) & (ys < top[:, None] + self.size)     # (N, H)
        in_cols = (xs >= left[:, None]) & (xs < left[:, None] + self.size)   # (N, W)
        hole = xp.asarray(in_rows[:, :, None] & in_cols[:, None, :])          # (N, H, W)
        return unbatch(xp.where(hole[:, None], batch.dtype.type(0), batch))

    def __repr__(self):
        return f"Cutout(size={self.size})"
