"""Weight initialisation, as ``torch.nn.init``.

Every function fills its tensor in place (outside autograd) and returns it.  Random
values are drawn on the host from ``tinyres.backend.default_generator()`` (or the
NumPy ``generator`` given) in float64, then cast to the tensor's dtype and copied to its
device, so one seed gives the same weights on CPU and GPU.

Why the scales: a layer ``y = W x`` with ``fan_in`` inputs of unit variance and weights of
variance ``s^2`` gives outputs of variance ``fan_in * s^2``.  Keeping the variance of the
signal constant through depth needs ``s = gain / sqrt(fan_in)`` (Kaiming; ``gain = sqrt(2)``
for ReLU, which zeroes half the signal); Xavier balances forward and backward with
``s = gain * sqrt(2 / (fan_in + fan_out))``.  A uniform on ``[-b, b]`` has standard deviation
``b / sqrt(3)``, hence the ``sqrt(3)`` in the uniform versions.
"""
import math
import numbers
import warnings

import numpy

from ..core import backend

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "uniform_", "normal_", "trunc_normal_", "constant_",
           "zeros_", "ones_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform",
           "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The gain torch recommends for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh,
    sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope ``param``, default 0.01),
    3/4 for selu."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``:
    ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``."""
    if tensor.ndim < 2:
        raise ValueError(f"calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a "
                         f"tensor with fewer than 2 dimensions (got shape {tensor.shape})")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode {mode!r} is not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write the host array (or number) ``values`` into ``tensor``'s array in place (no graph
    is recorded: the array is written directly); return ``tensor``."""
    values = backend.to_device(numpy.asarray(values, dtype=tensor.dtype), tensor.device)   # cast, then copy once
    with backend.on_device(tensor.device):         # the copy into the tensor runs on its GPU
        tensor.array[...] = values
    tensor._version_counter[0] += 1                # an in-place write, as torch counts it
    return tensor


def _generator(generator):
    return backend.default_generator() if generator is None else generator


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with values drawn from U(a, b)."""
    return _fill(tensor, _generator(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with values drawn from N(mean, std^2)."""
    return _fill(tensor, _generator(generator).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """std = gain / sqrt(fan), with gain from ``calculate_gain(nonlinearity, a)``; None for an empty tensor."""
    if 0 in tensor.shape:
        warnings.warn("init: initializing a zero-element tensor is a no-op")
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He et al., 2015).

    ``a`` is the negative slope of leaky_relu.  PyTorch's default for conv and linear
    weights is ``a=sqrt(5)``, which gives b = 1 / sqrt(fan_in).
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan) (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with values drawn from N(mean, std^2) truncated to [a, b], as torch's (2.13),
    by rejection: where [a, b] holds more than 30% of the normal's mass, normal draws outside
    [a, b] are drawn again; else uniform draws on [a, b] are kept with probability
    pdf(x) / pdf(mode), the mode being the point of [a, b] nearest the mean.  Both give the
    truncated normal exactly (the same distribution as torch's, not the same bits)."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values "
                      "may be incorrect.", stacklevel=2)
    rng, size = _generator(generator), tensor.shape
    lo, hi = (float(numpy.asarray(v, dtype=tensor.dtype)) for v in (a, b))      # the bounds the dtype can hold

    def cdf(x):
        return (1.0 + math.erf((x - mean) / std / math.sqrt(2.0))) / 2.0
    if cdf(b) - cdf(a) > 0.3:
        values = rng.normal(mean, std, size)
        pending = (values < lo) | (values > hi)
        while pending.any():
            values[pending] = rng.normal(mean, std, int(pending.sum()))
            pending = (values < lo) | (values > hi)
    else:
        mode = max(a, min(mean, b))
        values, pending = numpy.empty(size), numpy.ones(size, dtype=bool)
        while pending.any():
            candidates = rng.uniform(a, b, int(pending.sum()))
            accepted = numpy.log(rng.random(candidates.shape)) <= (-0.5 * ((candidates - mean) / std) ** 2
                                                                   + 0.5 * ((mode - mean) / std) ** 2)
            where = numpy.flatnonzero(pending)[accepted]
            values.flat[where] = candidates[accepted]
            pending.flat[where] = False
    return _fill(tensor, values)


def orthogonal_(tensor, gain=1, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2013), as torch's: the
    Q of the QR factorization of a (rows, cols) matrix of N(0, 1) draws -- rows = the first
    dim, cols = the others flattened; transposed first when rows < cols -- with each column's
    sign fixed by R's diagonal (so Q is uniform over the orthogonal matrices)."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: Only tensors with 2 or more dimensions are supported, got shape {tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flattened = _generator(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flattened = flattened.T
    q, r = numpy.linalg.qr(flattened)
    q = q * numpy.sign(numpy.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(tensor.shape))


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, also when not square)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: Only tensors with 2 dimensions are supported, got shape {tensor.shape}")
    return _fill(tensor, numpy.eye(*tensor.shape))


def dirac_(tensor, groups=1):
    """Fill a 3-, 4- or 5-D convolution weight with the Dirac delta, as torch's: the convolution
    then passes its input through -- channel i of each of the ``groups`` to output channel i,
    from the kernel's centre."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: Only tensors with 3, 4, or 5 dimensions are supported, got shape {tensor.shape}")
    out_per_group = tensor.shape[0] // groups
    if tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups ({groups})")
    values = numpy.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values)


# ---------------------------------------------------------------------- torch's old names, with its warning

def _deprecated(new):
    """``new`` under its old name (without the trailing underscore), warning as torch does."""
    old = new.__name__[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new.__name__}`.", FutureWarning,
                      stacklevel=2)
        return new(*args, **kwargs)
    deprecated_init.__name__ = deprecated_init.__qualname__ = old
    deprecated_init.__doc__ = f"{old}(...): deprecated, as in torch; use ``{new.__name__}``."
    return deprecated_init


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
