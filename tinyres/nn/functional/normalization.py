"""Batch normalization (``batch_norm``) and group normalization (``group_norm``), each one
``Function`` with its fused backward; layer normalization (``layer_norm``), ``rms_norm``,
``local_response_norm`` and ``normalize``, made of differentiable ops.

Notation (as in docs/batchnorm.md): the input ``x`` has shape (N, C, *spatial); every
statistic is per channel c, taken over the m = N * prod(spatial) values of that channel.

    mu = mean(x),   var = mean((x - mu)^2)   (biased),   sigma = sqrt(var + eps)
    x_hat = (x - mu) / sigma,                 y = w * x_hat + b
"""
import numbers

import numpy

from ...core import backend
from ...core.composite import norm
from ...core.engine import Function, once_differentiable
from ...core.backend import get_array_module, is_cpu
from ...kernels import fused
from ...kernels.threads import BLOCK, parallel_for
from ...core.tensor import Tensor
from .linear import pad
from .pooling import avg_pool2d

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "normalize", "rms_norm", "local_response_norm"]


def per_channel(v, ndim):
    """A (C,) array shaped (1, C, 1, ...) to broadcast against an (N, C, ...) input."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def channel_rows(a):
    """The (C, M) matrix of an (N, C, *spatial) array's values, one row per channel:
    a view when its memory is channel-major (a convolution's output), else a copy."""
    return a.swapaxes(0, 1).reshape(a.shape[1], -1)


def from_channel_rows(rows, shape):
    """The inverse of ``channel_rows``: (C, M) back to the (N, C, *spatial) ``shape``."""
    return rows.reshape((shape[1], shape[0]) + shape[2:]).swapaxes(0, 1)


def _row_blocks(rows, m, xp):
    """The slice ``rows`` of the channels cut into blocks of about ``kernels.threads.BLOCK`` values
    (at least one row), so that one block's passes find it in cache.  On a GPU, one block:
    each costs a launch per kernel, and there is no cache to fit."""
    if not is_cpu(xp):
        return [rows]
    step = max(1, BLOCK // max(m, 1))
    return [slice(i, min(i + step, rows.stop)) for i in range(rows.start, rows.stop, step)]


class BatchNormFunction(Function):
    """y = w * x_hat + b, x_hat = (x - mu) / sigma, per channel.

    Training (``training=True``): mu and var are the batch statistics, and they depend
    on x, which gives the fused backward (means over the m values of a channel)

        gx = (w / sigma) * (gy - mean(gy) - x_hat * mean(gy * x_hat))

    Eval (``training=False``): mu and var are the running statistics, constants, so
    gx = gy * w / sigma.  In both modes gw = sum(gy * x_hat) and gb = sum(gy).

    In training with running statistics, forward also updates them in place, as
    PyTorch's kernel does:  running_mean <- (1 - f) running_mean + f mu  and
    running_var <- (1 - f) running_var + f var * m / (m - 1)  (the unbiased variance),
    with f the momentum factor.  Backward keeps x, mu, 1/sigma and w, and recomputes
    x_hat from x a block at a time (x is what a second derivative needs anyway).

    The work is done on the (C, M) rows of ``channel_rows``, the channels split between
    the CPU threads; the variance is the mean of (x - mu)^2, computed after mu (two
    passes: no cancellation when the mean is large; mu is summed in float64), and forward
    writes y = (x - mu) * (w / sigma) + b without keeping x_hat.
    """

    folded = ()          # what the GPU kernel folds in after the normalisation (BatchNormReLUFunction)

    def composite(self, x, weight, bias, running_mean, running_var, training, factor, eps):
        """The same normalisation in differentiable ops (for second derivatives; the running
        statistics are left alone): (x - mu) / sqrt(var + eps) * w + b."""
        axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
        if training:
            mu, var = x.mean(axes, keepdim=True), x.var(axes, unbiased=False, keepdim=True)
        else:
            mu, var = (Tensor(v.array if isinstance(v, Tensor) else v).to(x.dtype).reshape(shape)
                       for v in (running_mean, running_var))
        y = (x - mu) / (var + eps).sqrt()
        y = y if weight is None else y * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    def forward(self, x, weight, bias, running_mean, running_var, training, factor, eps):
        xp = get_array_module(x)
        channels = x.shape[1]
        dtype = x.dtype.type
        w = xp.ones(channels, x.dtype) if weight is None else weight
        b = xp.zeros(channels, x.dtype) if bias is None else bias
        if not training:
            mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
        if self.needs_grad:         # backward recomputes x_hat from x: x is kept anyway, for create_graph
            self.x, self.weight = x, weight
            self.has_bias, self.training = bias is not None, training
        if not is_cpu(xp) and x.size:            # a GPU: the same math in three or four fused kernels
            if training:
                mean, var, inv_std = fused.batch_norm_statistics(x, eps, running_mean, running_var, factor)
            else:
                inv_std = 1 / xp.sqrt(var + dtype(eps))
            if self.needs_grad:
                self.mean, self.inv_std = mean, inv_std
            if self.folded and self.folded[1] is not None:      # y + r made a new, C-ordered array:
                y = xp.empty(x.shape, x.dtype)                    # the fold's output is laid out as it
            else:
                y = from_channel_rows(xp.empty((channels, x.size // channels), x.dtype), x.shape)
            return fused.batch_norm_normalize(x, mean, inv_std, w, b, y, *self.folded)
        rows = channel_rows(x)
        m = rows.shape[1]
        if training:
            mean, var = xp.empty(channels, x.dtype), xp.empty(channels, x.dtype)
        y = xp.empty_like(rows)
        inv_std = xp.empty(channels, x.dtype)
        if self.needs_grad:
            self.mean, self.inv_std = mean, inv_std
        if m == 0:                               # an empty batch: nothing to normalise or to learn from,
            return from_channel_rows(y, x.shape)     # the running statistics stay as they are (torch)

        def normalize(channels):                 # this thread's channels, a few rows at a time
            for c in _row_blocks(channels, m, xp):
                if training:                     # mu summed in float64, then the mean of (x - mu)^2
                    mean[c] = rows[c].mean(axis=1, dtype=xp.float64)
                centered = xp.subtract(rows[c], mean[c, None], out=y[c])
                if training:
                    # one BLAS dot per row: blocked sums, about 10x more accurate in float32 than einsum's
                    var[c] = xp.matmul(centered[:, None, :], centered[:, :, None]).reshape(-1) / dtype(m)
                inv_std[c] = 1 / xp.sqrt(var[c] + dtype(eps))
                centered *= (w[c] * inv_std[c])[:, None]     # y = (x - mu) * (w / sigma) + b: no
                centered += b[c, None]                       # cancellation when mu is large
        parallel_for(normalize, channels, xp)

        if training and running_mean is not None:
            running_mean[...] = (1 - factor) * running_mean + factor * mean
            running_var[...] = (1 - factor) * running_var + factor * var * (m / (m - 1))
        return from_channel_rows(y, x.shape)

    @once_differentiable
    def backward(self, gy):
        xp = get_array_module(gy)
        inv_std, weight, training, mean = self.inv_std, self.weight, self.training, self.mean
        if not is_cpu(xp) and gy.size:
            gx, gw, gb = fused.batch_norm_backward(gy, self.x, mean, inv_std, weight, training)
            return gx, None if weight is None else gw, gb if self.has_bias else None, None, None
        rows, g_rows = channel_rows(self.x), channel_rows(gy)
        channels, m = g_rows.shape
        gx, gb, gw = xp.empty_like(g_rows), xp.zeros(channels, gy.dtype), xp.zeros(channels, gy.dtype)
        dtype = gy.dtype.type

        def grad(channels):
            for c in _row_blocks(channels, m, xp):
                x_hat = xp.subtract(rows[c], mean[c, None], out=gx[c])     # x_hat, in gx's memory
                x_hat *= inv_std[c, None]
                gb[c] = g_rows[c].sum(axis=1)
                gw[c] = xp.einsum("ij,ij->i", g_rows[c], x_hat)
                scale = inv_std[c] if weight is None else inv_std[c] * weight[c]
                if training:                     # gx = scale * (gy - (gb + x_hat * gw) / m)
                    x_hat *= (gw[c] / dtype(m))[:, None]
                    x_hat += (gb[c] / dtype(m))[:, None]
                    xp.subtract(g_rows[c], x_hat, out=gx[c])
                    gx[c] *= scale[:, None]
                else:
                    xp.multiply(g_rows[c], scale[:, None], out=gx[c])
        if m:
            parallel_for(grad, channels, xp)
        return (from_channel_rows(gx, gy.shape), None if weight is None else gw,
                gb if self.has_bias else None, None, None)


class BatchNormReLUFunction(BatchNormFunction):
    """y = relu(batch_norm(x) + r) -- a residual block's last three steps, r its shortcut --
    or relu(batch_norm(x)) without r: one op, for a GPU, where it saves the launches and the
    memory passes of the add and the ReLU, both ways (``kernels/fused.py``).

    Backward reads ReLU's mask from the output y (NaN passing, as ``LeakyReLU``):
    g = gy * (y > 0); then batch norm's backward of g, and gr = g for the shortcut.  The
    same numbers, bit for bit, as the three ops one after the other.
    """

    def composite(self, x, weight, bias, running_mean, running_var, training, factor, eps, residual=None):
        y = super().composite(x, weight, bias, running_mean, running_var, training, factor, eps)
        return (y if residual is None else y + residual).relu()

    def forward(self, x, weight, bias, running_mean, running_var, training, factor, eps, residual=None):
        if is_cpu(get_array_module(x)) or not x.size:
            raise RuntimeError("BatchNormReLUFunction: a GPU kernel; on the CPU call the three ops")
        self.folded = (True, residual)
        y = super().forward(x, weight, bias, running_mean, running_var, training, factor, eps)
        if self.needs_grad:
            self.save_for_backward(y)
        self.shortcut = residual is not None
        return y

    @once_differentiable
    def backward(self, gy):
        y, = self.saved_tensors          # checked: an in-place change to the output since is an error
        grads = fused.batch_norm_backward(gy, self.x, self.mean, self.inv_std, self.weight, self.training,
                                          y.array, self.shortcut)
        gx, gw, gb = grads[:3]
        return (gx, None if self.weight is None else gw, gb if self.has_bias else None, None, None,
                None, None, None, grads[3] if self.shortcut else None)


def _check_channels(input, name, v, op):
    """``v`` (a per-channel tensor or None) must hold exactly C values; weight and bias
    must also have the input's dtype (the running statistics keep their own)."""
    if v is None:
        return
    if not isinstance(v, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(v).__name__}")
    if v.shape != (input.shape[1],):
        raise ValueError(f"{op}: {name} should contain C={input.shape[1]} elements (the channel "
                         f"dim of the input of shape {input.shape}), got shape {v.shape}")
    if name in ("weight", "bias") and v.dtype != input.dtype:
        raise TypeError(f"{op}: {name} is {v.dtype} but the input is {input.dtype}; convert one with .to()")


def check_norm_input(op, input, ranks=None, channels=None):
    """A normalization's input must be a Tensor; a layer also gives the ranks and the number
    of channels it takes (``op``, the layer with its settings, names it in the errors)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    if ranks is not None and input.ndim not in ranks:
        raise ValueError(f"{op}: expected {' or '.join(f'{r}D' for r in ranks)} input (got {input.ndim}D input)")
    if channels is not None and (input.ndim < 2 or input.shape[1] != channels):
        raise RuntimeError(f"{op}: expected input with {channels} channels, got input of shape {input.shape}")


def _momentum_factor(op, momentum, num_batches_tracked):
    """The weight f of this batch in the running statistics."""
    if momentum is not None:
        if not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1:
            raise ValueError(f"{op}: momentum must be a number in [0, 1] or None, got {momentum!r}")
        return float(momentum)
    if num_batches_tracked is None or float(num_batches_tracked) < 1:
        raise ValueError(f"{op}: momentum=None (a cumulative moving average) needs "
                         "num_batches_tracked >= 1 (batches seen, this one included), "
                         f"got {num_batches_tracked!r}")
    return 1.0 / float(num_batches_tracked)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, num_batches_tracked=None):
    """Batch normalization of an (N, C), (N, C, L) or (N, C, H, W) input, as
    ``torch.nn.functional.batch_norm``.

    ``training=True`` normalizes with the batch statistics (biased variance) and, when
    ``running_mean``/``running_var`` are given, updates them **in place**:
    ``running = (1 - f) * running + f * batch_stat`` with the unbiased batch variance for
    ``running_var``.  The factor f is ``momentum``, or, with ``momentum=None`` (a
    cumulative moving average, as ``torch.nn.BatchNorm2d(momentum=None)``),
    ``1 / num_batches_tracked``, where ``num_batches_tracked`` counts the batches seen
    including this one (torch's module increments its counter first, then calls this).
    (PyTorch's functional takes only a float; its module computes the same factor.)

    ``training=False`` normalizes with the running statistics, which must be given.
    """
    return checked_batch_norm("batch_norm", input, running_mean, running_var, weight, bias, training, momentum,
                              eps, num_batches_tracked)


def checked_batch_norm(op, input, running_mean, running_var, weight, bias, training, momentum, eps,
                       num_batches_tracked=None, ranks=None, channels=None, relu=False, residual=None):
    """``batch_norm`` after checking its arguments, with ``op`` naming the caller in the errors:
    ``batch_norm``, or a layer with the ranks and channels it takes (``nn.BatchNorm2d`` calls
    this, so its input is checked once, under its own name).  ``relu`` (on a GPU): the ReLU
    and the ``residual`` added before it folded in (``BatchNormReLUFunction``)."""
    check_norm_input(op, input, ranks, channels)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C), (N, C, L) or (N, C, H, W), "
                         f"got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channels(input, name, v, op)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise RuntimeError(f"{op}: running_mean must be defined in evaluation mode "
                           "(training=False); pass training=True to normalize with batch statistics")
    factor = None
    if training:
        per_channel = input.numel() // input.shape[1]
        if per_channel == 1:
            raise ValueError(f"{op}: Expected more than 1 value per channel when training, "
                             f"got input size {input.shape}")
        factor = _momentum_factor(op, momentum, num_batches_tracked) if running_mean is not None else None
    if relu:
        return BatchNormReLUFunction.apply(input, weight, bias, running_mean, running_var, bool(training), factor,
                                           eps, residual)
    return BatchNormFunction.apply(input, weight, bias, running_mean, running_var, bool(training), factor, eps)


# ---------------------------------------------------------------------- group normalization

class GroupNormFunction(Function):
    """y = w * x_hat + b with x_hat = (x - mu) / sigma, the statistics per sample and group.

    The C channels of each sample are cut into G groups of C / G consecutive channels; mu
    and var (biased) are taken over the m = C / G * prod(spatial) values of one group of
    one sample, sigma = sqrt(var + eps); w and b are per channel.  The statistics never
    mix samples, so training and evaluation compute the same thing (no running averages).

    Backward, with gx_hat = gy * w (per channel) and means over the m values of a group:

        gx = (1 / sigma) * (gx_hat - mean(gx_hat) - x_hat * mean(gx_hat * x_hat))
        gw = sum over N and spatial of gy * x_hat,     gb = sum over N and spatial of gy

    (batch norm's fused backward, with the group of one sample in place of the channel
    of the batch).  Backward keeps x_hat, 1/sigma and w; not x.
    """

    def composite(self, x, weight, bias, num_groups, eps):
        """The same normalisation in differentiable ops (for second derivatives)."""
        groups = x.reshape(x.shape[0], num_groups, -1)
        x_hat = ((groups - groups.mean(2, keepdim=True)) /
                 (groups.var(2, unbiased=False, keepdim=True) + eps).sqrt()).reshape(x.shape)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = x_hat if weight is None else x_hat * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    def forward(self, x, weight, bias, num_groups, eps):
        xp = get_array_module(x)
        groups = x.reshape(x.shape[0], num_groups, -1)          # (N, G, m)
        mu = groups.mean(axis=2, keepdims=True)
        centered = groups - mu
        inv_sigma = 1 / xp.sqrt((centered * centered).mean(axis=2, keepdims=True) + x.dtype.type(eps))
        x_hat = (centered * inv_sigma).reshape(x.shape)
        y = x_hat if weight is None else x_hat * per_channel(weight, x.ndim)
        if bias is not None:
            y = y + per_channel(bias, x.ndim)
        if self.needs_grad:
            self.x_hat, self.inv_sigma, self.weight, self.has_bias = x_hat, inv_sigma, weight, bias is not None
        return y

    @once_differentiable
    def backward(self, gy):
        x_hat, inv_sigma, weight = self.x_hat, self.inv_sigma, self.weight
        axes = (0,) + tuple(range(2, gy.ndim))                   # all but the channel axis
        gx_hat = gy if weight is None else gy * per_channel(weight, gy.ndim)
        g, h = gx_hat.reshape(inv_sigma.shape[:2] + (-1,)), x_hat.reshape(inv_sigma.shape[:2] + (-1,))
        gx = inv_sigma * (g - g.mean(axis=2, keepdims=True) - h * (g * h).mean(axis=2, keepdims=True))
        return (gx.reshape(gy.shape), None if weight is None else (gy * x_hat).sum(axis=axes),
                gy.sum(axis=axes) if self.has_bias else None)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization of an (N, C, *) input, as ``torch.nn.functional.group_norm``
    (Wu and He, 2018): each sample's C channels in ``num_groups`` groups, each group
    normalized by its own mean and (biased) variance, then the per-channel affine
    ``weight`` and ``bias`` (each (C,) or None)."""
    return checked_group_norm("group_norm", input, num_groups, weight, bias, eps)


def checked_group_norm(op, input, num_groups, weight, bias, eps, channels=None):
    """``group_norm`` after checking its arguments, with ``op`` naming the caller in the errors:
    ``group_norm``, or a layer with the channels it takes (``nn.GroupNorm`` calls this, so its
    input is checked once, under its own name)."""
    check_norm_input(op, input, channels=channels)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if not isinstance(num_groups, numbers.Integral) or num_groups <= 0 or input.shape[1] % num_groups:
        raise ValueError(f"{op}: expected the number of channels ({input.shape[1]}) to be divisible by "
                         f"num_groups, a positive integer, got {num_groups!r}")
    for name, v in (("weight", weight), ("bias", bias)):
        _check_channels(input, name, v, op)
    return GroupNormFunction.apply(input, weight, bias, int(num_groups), eps)


# ---------------------------------------------------------------------- layer normalization, normalize

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization (Ba, Kiros and Hinton, 2016), as ``torch.nn.functional.layer_norm``:
    each sample normalized over its last ``len(normalized_shape)`` dimensions, which must be
    ``normalized_shape``, by their mean and (biased) variance, then the elementwise affine
    ``weight`` and ``bias`` (each of ``normalized_shape``, or None).

        x_hat = (x - mu) / sqrt(var + eps),   y = weight * x_hat + bias

    Made of differentiable ops (mean, subtract, square, sqrt, divide), so twice differentiable;
    there are no running statistics: training and evaluation compute the same."""
    return checked_layer_norm("layer_norm", input, normalized_shape, weight, bias, eps)


def checked_layer_norm(op, input, normalized_shape, weight, bias, eps):
    """``layer_norm`` after checking its arguments, with ``op`` naming the caller in the errors
    (``nn.LayerNorm`` names itself and its settings)."""
    dims = _normalized_dims(op, input, normalized_shape, weight=weight, bias=bias)
    centered = input - input.mean(dims, keepdim=True)
    x_hat = centered / ((centered * centered).mean(dims, keepdim=True) + eps).sqrt()
    y = x_hat if weight is None else x_hat * weight
    return y if bias is None else y + bias


def _normalized_dims(op, input, normalized_shape, **affine):
    """The last ``len(normalized_shape)`` dims of ``input`` (a floating Tensor), which must be
    ``normalized_shape``, after checking that each tensor of ``affine`` (weight, bias or None)
    has that shape and the input's dtype."""
    check_norm_input(op, input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if not shape:
        raise RuntimeError(f"{op}: expected normalized_shape to be at least 1-dimensional, i.e., containing at "
                           f"least one element, but got normalized_shape = {shape}")
    k = len(shape)
    if input.shape[input.ndim - k:] != shape or input.ndim < k:
        raise RuntimeError(f"{op}: given normalized_shape={shape}, expected input with shape (*, "
                           f"{', '.join(map(str, shape))}), got input of shape {input.shape}")
    for name, v in affine.items():
        if v is not None and (not isinstance(v, Tensor) or v.shape != shape or v.dtype != input.dtype):
            raise RuntimeError(f"{op}: expected {name} of shape {shape} (normalized_shape) and dtype {input.dtype}, "
                               f"got {_describe(v)}")
    return tuple(range(input.ndim - k, input.ndim))


def _describe(v):
    return f"{v.dtype} of shape {v.shape}" if isinstance(v, Tensor) else type(v).__name__


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim`` (an int or a tuple of them), as ``torch.nn.functional.normalize``
    (unit rows for dim=1); ``eps`` keeps a zero vector zero.  Made of ``norm``, ``clamp`` and
    a division, so twice differentiable (a zero vector's norm has gradient 0, as in torch)."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported; use the returned tensor")
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"normalize: expected a floating point Tensor, got {_describe(input)}")
    n = max(input.ndim, 1)
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims or not all(isinstance(d, numbers.Integral) and -n <= d < n for d in dims):
        raise IndexError(f"normalize: dim={dim!r} is out of range for a tensor of shape {input.shape} "
                         f"(expected dims in [{-n}, {n - 1}])")
    return input / norm(input, p, dims if len(dims) > 1 else dims[0], keepdim=True).clamp(min=eps)


# ---------------------------------------------------------------------- instance normalization

def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalization (Ulyanov et al., 2016) of an (N, C, *spatial) input, as
    ``torch.nn.functional.instance_norm``: each channel of each sample normalized by its own
    mean and (biased) variance over the spatial dims, then the per-channel ``weight`` and
    ``bias``.

    With ``use_input_stats`` it is ``group_norm`` with one channel per group (the same
    statistics; its Function and backward), and the running statistics, when given, move
    **in place** towards the batch's mean of the per-sample statistics, as torch's:
    ``running = (1 - momentum) * running + momentum * mean_n(stat)`` (the unbiased variance
    for ``running_var``).  Without, it normalizes with the running statistics: ``batch_norm``
    in evaluation."""
    return checked_instance_norm("instance_norm", input, running_mean, running_var, weight, bias, use_input_stats,
                                 momentum, eps)


def checked_instance_norm(op, input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps,
                          channels=None):
    """``instance_norm`` after checking its arguments, ``op`` naming the caller in the errors
    (``nn.InstanceNorm2d`` names itself)."""
    check_norm_input(op, input, channels=channels)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        _check_channels(input, name, v, op)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not use_input_stats:
        if running_mean is None:
            raise RuntimeError(f"{op}: Expected running_mean and running_var to be defined when use_input_stats "
                               "is false")
        return checked_batch_norm(op, input, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = input.numel() // max(input.shape[0] * input.shape[1], 1)
    if spatial == 1:
        raise ValueError(f"{op}: Expected more than 1 spatial element when training, got input size {input.shape}")
    y = checked_group_norm(op, input, input.shape[1], weight, bias, eps)
    if running_mean is not None and input.numel():
        x = input.array.reshape(input.shape[0], input.shape[1], -1)
        xp = get_array_module(x)
        f = float(momentum)
        with backend.on_device(input.device):
            mean = x.mean(axis=2, dtype=xp.float64)
            var = x.var(axis=2, ddof=1, dtype=xp.float64)
            for running, stat in ((running_mean, mean), (running_var, var)):
                running.array[...] = ((1 - f) * running.array + f * stat.mean(axis=0)).astype(running.dtype)
    return y


# ---------------------------------------------------------------------- RMS normalization, local response normalization

def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root mean square layer normalization (Zhang and Sennrich, 2019), as
    ``torch.nn.functional.rms_norm``: each sample divided by the root mean square of its last
    ``len(normalized_shape)`` dims, which must be ``normalized_shape``, then the elementwise
    ``weight`` (of ``normalized_shape``, or None):

        y = x / sqrt(mean(x^2) + eps) * weight,    eps = finfo(x.dtype).eps when None (torch's)

    No centring, no bias.  Made of differentiable ops, so twice differentiable."""
    return checked_rms_norm("rms_norm", input, normalized_shape, weight, eps)


def checked_rms_norm(op, input, normalized_shape, weight, eps):
    """``rms_norm`` after checking its arguments, with ``op`` naming the caller in the errors
    (``nn.RMSNorm`` names itself and its settings)."""
    dims = _normalized_dims(op, input, normalized_shape, weight=weight)
    if eps is None:
        eps = float(numpy.finfo(input.dtype).eps)
    y = input * (1 / ((input * input).mean(dims, keepdim=True) + eps).sqrt())
    return y if weight is None else y * weight


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels (Krizhevsky et al., 2012, AlexNet), as
    ``torch.nn.functional.local_response_norm``, for an (N, C, *) input with at least one
    spatial dim: each value divided by a power of the mean square of its channel window,

        y[:, c] = x[:, c] / (k + alpha * m[:, c]) ^ beta,
        m[:, c] = (1 / size) * sum of x[:, c']^2 for c' in [c - size // 2, c + (size - 1) // 2]

    the channels zero-padded at both ends (the divisor stays ``size``).  As torch's: the
    squares as (N, 1, C, *) zero-padded along C, then an average pool of (size, 1) with
    stride 1 -- here ``avg_pool2d`` on the spatial dims flattened.  Made of differentiable
    ops (pad, pool, power, division), so twice differentiable."""
    return checked_local_response_norm("local_response_norm", input, size, alpha, beta, k)


def checked_local_response_norm(op, input, size, alpha, beta, k):
    """``local_response_norm`` after checking its arguments, with ``op`` naming the caller in the
    errors (``nn.LocalResponseNorm`` names itself and its settings)."""
    check_norm_input(op, input)
    if input.ndim < 3:
        raise ValueError(f"{op}: Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    n, c = input.shape[:2]
    squares = (input * input).reshape(n, 1, c, -1)
    squares = pad(squares, (0, 0, size // 2, (size - 1) // 2))
    mean = avg_pool2d(squares, (size, 1), stride=1).reshape(*input.shape)
    return input / (mean * alpha + k) ** beta
