"""tinyres.data.transforms: exact results on small arrays against simple per-sample
references, reproducibility, and the CuPy path through a stand-in device array module."""

import numpy as np
import pytest

import tinyres
from tinyres.data import transforms as T

from helpers import noncontiguous


def batch(n=5, c=3, h=6, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def inputs(x):
    """The same batch as a contiguous and a strided array."""
    return [x, noncontiguous(x)]


# ---------------------------------------------------------------------- references

def crop_reference(x, size, padding, seed):
    """One sample at a time: pad, then slice at the offsets RandomCrop draws."""
    top, left = T.RandomCrop(size, padding, generator=seed).offsets(len(x), *x.shape[2:])
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return np.stack([p[:, t:t + size, l:l + size] for p, t, l in zip(padded, top, left)])


def cutout_reference(x, size, seed):
    rng = np.random.default_rng(seed)
    n, _, h, w = x.shape
    cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
    out = x.copy()
    for i in range(n):
        y0, x0 = cy[i] - size // 2, cx[i] - size // 2
        out[i, :, max(y0, 0):max(y0 + size, 0), max(x0, 0):max(x0 + size, 0)] = 0
    return out


# ---------------------------------------------------------------------- Normalize

@pytest.mark.parametrize("contiguous", [True, False])
def test_normalize_per_channel(contiguous):
    x = inputs(batch())[0 if contiguous else 1]
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    y = T.Normalize(mean, std)(x)
    expected = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    np.testing.assert_allclose(T.Normalize(mean, std)(x[0]), expected[0], rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ValueError, match="1 channel mean.*3 channels"):
        T.Normalize(T.MNIST_MEAN, T.MNIST_STD)(batch())
    with pytest.raises(TypeError, match="float"):
        T.Normalize((0.5,), (0.5,))(np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="std"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        T.Normalize((0.5,), (0.5,))(np.zeros((2, 2), np.float32))


def test_constants():
    assert len(T.MNIST_MEAN) == len(T.MNIST_STD) == 1
    assert len(T.CIFAR10_MEAN) == len(T.CIFAR10_STD) == 3


# ---------------------------------------------------------------------- RandomCrop

@pytest.mark.parametrize("size,padding", [(6, 0), (4, 0), (6, 2), (5, 1), (8, 3)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_random_crop_matches_reference(size, padding, contiguous):
    x = inputs(batch(h=6, w=7))[0 if contiguous else 1]
    y = T.RandomCrop(size, padding, generator=3)(x)
    assert y.shape == (5, 3, size, size) and y.dtype == np.float32
    np.testing.assert_array_equal(y, crop_reference(np.asarray(x), size, padding, seed=3))


def test_random_crop_offsets_cover_every_position():
    top, left = T.RandomCrop(4, 2, generator=0).offsets(2000, 4, 4)
    assert set(top) == set(left) == set(range(5))


def test_random_crop_without_padding_at_full_size_is_identity():
    x = batch(h=6, w=6)
    np.testing.assert_array_equal(T.RandomCrop(6)(x), x)


def test_random_crop_single_image_and_errors():
    x = batch(n=1)
    np.testing.assert_array_equal(T.RandomCrop(4, 1, generator=5)(x[0]),
                                  T.RandomCrop(4, 1, generator=5)(x)[0])
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(9, 1)(x)
    with pytest.raises(ValueError, match="padding"):
        T.RandomCrop(4, -1)


# ---------------------------------------------------------------------- flip, cutout

@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_horizontal_flip(p):
    x = batch(n=40)
    flags = np.random.default_rng(7).random(40) < p
    y = T.RandomHorizontalFlip(p, generator=7)(x)
    np.testing.assert_array_equal(y[flags], x[flags][..., ::-1])
    np.testing.assert_array_equal(y[~flags], x[~flags])


@pytest.mark.parametrize("size", [1, 3, 4, 10])
@pytest.mark.parametrize("contiguous", [True, False])
def test_cutout_matches_reference(size, contiguous):
    x = inputs(batch(n=30) + 0.5)[0 if contiguous else 1]
    y = T.Cutout(size, generator=11)(x)
    np.testing.assert_array_equal(y, cutout_reference(np.asarray(x), size, seed=11))


# ---------------------------------------------------------------------- all random ones

RANDOM = [lambda g: T.RandomCrop(4, 2, generator=g), lambda g: T.RandomHorizontalFlip(generator=g),
          lambda g: T.Cutout(3, generator=g)]


@pytest.mark.parametrize("make", RANDOM)
def test_reproducible_and_input_untouched(make):
    x = batch(n=20)
    before = x.copy()
    a, b = make(4)(x), make(np.random.default_rng(4))(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
    tinyres.manual_seed(9)
    c = make(None)(x)
    tinyres.manual_seed(9)
    np.testing.assert_array_equal(make(None)(x), c)


def test_compose_applies_in_order():
    x = batch()
    composed = T.Compose([T.RandomHorizontalFlip(1.0), T.Normalize((0.5,) * 3, (2.0,) * 3)])
    np.testing.assert_allclose(composed(x), (x[..., ::-1] - 0.5) / 2.0, rtol=1e-6)
    assert "Normalize" in repr(composed)


# ---------------------------------------------------------------------- the CuPy path

@pytest.mark.parametrize("make", RANDOM + [lambda g: T.Normalize((0.2, 0.3, 0.4), (0.5, 0.6, 0.7))])
def test_device_arrays_stay_on_device(make, fake_cupy):
    """Through the strict CuPy double: a host array mixed in would raise TypeError."""
    x = batch(n=8)
    y = make(2)(fake_cupy.asarray(x))
    assert isinstance(y, fake_cupy.ndarray)
    np.testing.assert_array_equal(y.get(), make(2)(x))
