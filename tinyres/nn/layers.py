"""The layers: modules that own parameters (or settings) and call ``tinyres.nn.functional``.

Each has ``torch.nn``'s constructor arguments and defaults, parameter and buffer names
and shapes, default initialisation and ``extra_repr``.  A layer checks its input before
calling the op, so a wrong shape is reported with the layer's name and settings.
"""
import math
import numbers
import warnings

from ..core import backend
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor, ones, zeros, tensor
from . import functional as F
from . import init
from .functional.activation import checked_gelu, checked_softmax, implicit_softmax_dim
from .functional.conv import check_input, convolution, ntuple, transposed_convolution
from .functional.linear import checked_bilinear, checked_linear
from .functional.normalization import (checked_batch_norm, checked_group_norm, checked_instance_norm,
                                       checked_layer_norm, checked_local_response_norm, checked_rms_norm)
from .functional.pixelshuffle import checked_channel_shuffle
from .functional.pooling import checked_lp_pool, checked_max_unpool
from .functional.sparse import checked_embedding, padding_index
from .functional.upsampling import checked_interpolate
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d",
           "GroupNorm", "LayerNorm", "ReLU", "ReLU6", "Hardtanh", "SiLU", "GELU", "LeakyReLU", "PReLU", "ELU",
           "Hardswish", "Hardsigmoid", "Mish", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Linear", "Dropout", "Dropout2d", "Embedding",
           "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "Flatten", "Identity", "CosineSimilarity",
           "PairwiseDistance"]
__all__ += ["SELU", "CELU", "GLU", "LogSigmoid", "Softsign", "Tanhshrink", "Softshrink", "Hardshrink", "Threshold",
            "RReLU", "Softmin", "Softmax2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


def _check_tensor(layer, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{layer}: expected a Tensor as input, got {type(input).__name__}")


def _parameter(*shape, device=None, dtype=None):
    """An uninitialised Parameter of ``shape`` (the layer's reset_parameters fills it)."""
    return Parameter(zeros(*shape, device=device, dtype=dtype))


def _register_weight_and_bias(layer, weight_shape, bias, device, dtype, bias_shape=None):
    """``layer.weight`` of ``weight_shape`` and ``layer.bias`` of ``bias_shape`` -- by default
    the weight's first dim -- (or None)."""
    layer.weight = _parameter(*weight_shape, device=device, dtype=dtype)
    if bias:
        layer.bias = _parameter(*(bias_shape or weight_shape[:1]), device=device, dtype=dtype)
    else:
        layer.register_parameter("bias", None)


def _register_affine(layer, affine, shape, bias, device, dtype):
    """A normalization's ``weight`` and ``bias``, each of ``shape`` (the bias left out with
    ``bias=False``), when ``affine``; else both None."""
    if affine:
        _register_weight_and_bias(layer, shape, bias, device, dtype, bias_shape=shape)
    else:
        layer.register_parameter("weight", None)
        layer.register_parameter("bias", None)


def _reset_affine(layer):
    """A normalization layer's weight 1 and bias 0 (where it has them): each channel starts as
    the normalized input.  Its default, and its initialisation in a ResNet."""
    if layer.weight is not None:
        init.ones_(layer.weight)
    if layer.bias is not None:
        init.zeros_(layer.bias)


def _reset_fan_in_uniform(weight, bias):
    """torch's default for conv and linear layers: weight ~ kaiming_uniform_(a=sqrt(5)) and
    bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    With a = sqrt(5) the Kaiming gain is sqrt(2 / (1 + 5)) = 1/sqrt(3), so the weight bound
    sqrt(3) * gain / sqrt(fan_in) is also 1/sqrt(fan_in): both are U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        if fan_in != 0:
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(bias, -bound, bound)


class Identity(Module):
    """``y = x``; takes (and ignores) any constructor arguments, as torch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


# ---------------------------------------------------------------------- convolution

class _ConvNd(Module):
    """Shared by Conv1d, Conv2d and ConvTranspose2d: ``weight`` (out_channels, in_channels / groups,
    *kernel_size) -- (in_channels, out_channels / groups, *kernel_size) when ``transposed`` --
    and ``bias`` (out_channels,).

    Default initialisation (torch's): weight ~ kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * prod(kernel_size),
    and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    _dims = None         # 1 or 2 spatial dimensions
    transposed = False
    padding_modes = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self._dims
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups}), a positive integer")
        if padding_mode not in self.padding_modes:
            raise ValueError(f"{name}: padding_mode must be one of {set(self.padding_modes)}, but got "
                             f"padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding string must be 'same' or 'valid', got {padding!r}")
        else:
            padding = ntuple(padding, n, "padding", name)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        self.padding = padding
        self.dilation = ntuple(dilation, n, "dilation", name)
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = self._pad_pairs()
        self.output_padding = (0,) * n
        channels = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        _register_weight_and_bias(self, channels + self.kernel_size, bias, device, dtype, bias_shape=(out_channels,))
        self.reset_parameters()

    def _pad_pairs(self):
        """``F.pad``'s (left, right, top, bottom) of ``padding``, as torch keeps it: what a
        ``padding_mode`` other than 'zeros' pads the input by before a convolution without
        padding ('same': the odd pixel after, as the convolution's own)."""
        if self.padding == "valid":
            return (0, 0) * self._dims
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            return tuple(p for t in reversed(totals) for p in (t // 2, t - t // 2))
        return tuple(p for p in reversed(self.padding) for _ in range(2))

    def reset_parameters(self):
        _reset_fan_in_uniform(self.weight, self.bias)

    def he_init_(self):
        """He et al.: weight ~ N(0, 2 / fan_out), fan_out = out_channels / groups * prod(kernel_size)."""
        init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def count_macs(self, output_shape):
        """in_channels / groups * prod(kernel_size) for each output element."""
        return math.prod(output_shape) * math.prod(self.weight.shape[1:])

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def forward(self, input):
        """conv1d/conv2d's code, which checks the input once, naming this layer and its settings.
        A ``padding_mode`` other than 'zeros' pads the input first (``F.pad`` in that mode), then
        convolves without padding, as torch's."""
        label = f"{type(self).__name__}({self.extra_repr()})"
        padding = self.padding
        if self.padding_mode != "zeros":
            check_input(label, input, self._dims)
            input, padding = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0
        return convolution(label, self._dims, input, self.weight, self.bias, self.stride, padding, self.dilation,
                           self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L): y = conv1d(x, weight) + bias."""
    _dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W): y = conv2d(x, weight) + bias."""
    _dims = 2


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution over (N, C_in, H, W): y = conv_transpose2d(x, weight) + bias, the
    input gradient of a Conv2d(out_channels, in_channels, ...) with the same settings; weight
    (in_channels, out_channels / groups, kH, kW), initialised as Conv2d's (its fan_in is
    out_channels / groups * kH * kW).  ``forward(input, output_size)`` picks output_padding so
    that the output has that size, as torch's."""
    _dims, transposed = 2, True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a tuple of 2 ints ('same' and 'valid' "
                             f"are Conv2d's), got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.output_padding = ntuple(output_padding, 2, "output_padding", "ConvTranspose2d")

    def he_init_(self):
        """None: torchvision's ResNet initialisation sets Conv2d layers only; the default stays."""

    def count_macs(self, output_shape):
        """out_channels / groups * prod(kernel_size) for each input element (each is spread onto
        one window of the output); the input size is read back from the output's."""
        sizes = [(o + 2 * p - d * (k - 1) - 1 - q) // s + 1 for o, p, d, k, q, s in
                 zip(output_shape[-2:], self.padding, self.dilation, self.kernel_size, self.output_padding,
                     self.stride)]
        return math.prod(output_shape[:-3]) * self.in_channels * math.prod(sizes) * math.prod(self.weight.shape[1:])

    def _output_padding(self, label, input, output_size):
        """``output_padding``, or the one that makes the output ``output_size`` ((H, W), or with
        the leading dims of the input too), which must be in reach of the stride."""
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)
        size = size[len(size) - 2:] if len(size) == input.ndim else size
        if len(size) != 2:
            raise ValueError(f"{label}: for {input.ndim}D input, output_size must have 2 or {input.ndim} elements "
                             f"(got {len(tuple(output_size))})")
        smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                    zip(input.shape[-2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride)]
        if not all(a <= n <= b for a, n, b in zip(smallest, size, largest)):
            raise ValueError(f"{label}: requested an output size of {size}, but valid sizes range from {smallest} "
                             f"to {largest} (for an input of {input.shape[-2:]})")
        return tuple(n - m for n, m in zip(size, smallest))

    def forward(self, input, output_size=None):
        """conv_transpose2d's code, which checks the input once, naming this layer and its settings."""
        label = f"ConvTranspose2d({self.extra_repr()})"
        check_input(label, input, 2)
        return transposed_convolution(label, input, self.weight, self.bias, self.stride, self.padding,
                                      self._output_padding(label, input, output_size), self.groups, self.dilation)


# ---------------------------------------------------------------------- normalization

class _NormBase(Module):
    """What batch and instance normalization share, as torch's ``_NormBase``: the settings,
    the buffers running_mean (zeros), running_var (ones) and num_batches_tracked (int64 0)
    when ``track_running_stats``, the parameters weight (ones) and bias (zeros; left out
    with ``bias=False``) when ``affine``, and ``extra_repr``."""

    _optional_buffers = ("num_batches_tracked",)    # absent from old PyTorch checkpoints
    _version = 2                                     # torch's: in a state_dict's _metadata

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_affine(self, affine, (num_features,), bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=backend.int64, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def he_init_(self):
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _label(self):
        """How errors name this layer: ``BatchNorm2d(3)``."""
        return f"{type(self).__name__}({self.num_features})"


class _BatchNorm(_NormBase):
    """Per-channel batch normalization: y = weight * (x - mean) / sqrt(var + eps) + bias.

    Training: mean and var are the batch's (var biased), and the running estimates are
    updated as ``running = (1 - f) * running + f * batch`` (with the unbiased batch variance),
    where f is ``momentum``, or ``1 / num_batches_tracked`` (a cumulative average) when
    ``momentum`` is None.  Evaluation: the running estimates are used.
    Buffers and parameters: ``_NormBase``'s.  ``isinstance(m, nn.modules.batchnorm._BatchNorm)``
    finds BatchNorm1d, BatchNorm2d and SyncBatchNorm, as in torch (not the instance norms).
    """

    def forward(self, input):
        """torch's _BatchNorm.forward: pick the averaging factor, normalize, count the batch.
        batch_norm's code checks the input once, naming this layer, before anything changes."""
        return self._normalize(input)

    def _normalize(self, input, relu=False, residual=None):
        """``forward``; with ``relu`` (a GPU), relu(forward(input) + residual) as one op
        (``nn.fusion``)."""
        factor = 0.0 if self.momentum is None else self.momentum
        counting = self.training and self.track_running_stats
        if counting and self.momentum is None:
            factor = 1.0 / (float(self.num_batches_tracked) + 1)     # this batch included
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_running = not self.training or self.track_running_stats
        y = checked_batch_norm(self._label(), input,
                               self.running_mean if keep_running else None,
                               self.running_var if keep_running else None,
                               self.weight, self.bias, use_batch_stats, factor, self.eps,
                               ranks=self._ranks, channels=self.num_features, relu=relu, residual=residual)
        if counting:
            self.num_batches_tracked.array += 1
        return y


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L), per channel C."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W), per channel C (statistics over N, H, W)."""
    _ranks = (4,)


class _InstanceNorm(_NormBase):
    """Instance normalization (Ulyanov et al., 2016): each channel of each sample normalized
    by its own mean and (biased) variance over the spatial dims, then y = weight * x_hat + bias
    per channel.  torch's defaults: ``affine=False`` and ``track_running_stats=False`` (no
    parameters, no buffers, the same in training and evaluation).  With
    ``track_running_stats``, training moves the running estimates towards the batch's mean
    of the per-sample statistics (``F.instance_norm``; num_batches_tracked stays 0, as torch's)
    and evaluation normalizes with them.  An unbatched input (without N) is taken as one sample.
    """

    _no_batch_dim = None      # the rank of an unbatched input

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        label = self._label()
        _check_tensor(label, input)
        ranks = (self._no_batch_dim, self._no_batch_dim + 1)
        if input.ndim not in ranks:
            raise ValueError(f"{label}: expected {ranks[0]}D or {ranks[1]}D input (got {input.ndim}D input)")
        feature_dim = input.ndim - self._no_batch_dim
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{label}: expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {input.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=3)
        batched = input.ndim == ranks[1]
        y = checked_instance_norm(label, input if batched else input.unsqueeze(0), self.running_mean,
                                  self.running_var, self.weight, self.bias,
                                  self.training or not self.track_running_stats,
                                  0.0 if self.momentum is None else self.momentum, self.eps)
        return y if batched else y.squeeze(0)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or unbatched (C, L), per sample and channel."""
    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or unbatched (C, H, W), per sample and channel
    (statistics over H, W)."""
    _no_batch_dim = 3


class GroupNorm(Module):
    """Group normalization (Wu and He, 2018): the channels of each sample in ``num_groups``
    groups, each normalized by its own mean and variance, then y = weight * x_hat + bias
    per channel.  No running statistics: training and evaluation compute the same.
    Parameters (``affine``): weight (ones) and bias (zeros; left out with ``bias=False``),
    each (num_channels,)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups}), a positive integer")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _register_affine(self, affine, (num_channels,), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def he_init_(self):
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def forward(self, input):
        """group_norm's code, which checks the input once, naming this layer and its settings."""
        return checked_group_norm(f"GroupNorm({self.extra_repr()})", input, self.num_groups, self.weight,
                                  self.bias, self.eps, channels=self.num_channels)


class LayerNorm(Module):
    """Layer normalization (Ba et al., 2016): each sample normalized over its last dims, which
    must be ``normalized_shape``, by their own mean and variance, then y = weight * x_hat + bias
    elementwise.  No running statistics.  Parameters (``elementwise_affine``): weight (ones)
    and bias (zeros; left out with ``bias=False``), each of ``normalized_shape``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _register_affine(self, elementwise_affine, self.normalized_shape, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    def forward(self, input):
        """layer_norm's code, which checks the input once, naming this layer and its settings."""
        return checked_layer_norm(f"LayerNorm({self.extra_repr()})", input, self.normalized_shape, self.weight,
                                  self.bias, self.eps)


# ---------------------------------------------------------------------- linear

class Linear(Module):
    """y = x @ weight.T + bias, over the last dimension of x.

    weight (out_features, in_features) and bias (out_features,) are both initialised
    from U(-1/sqrt(in_features), 1/sqrt(in_features)) (torch's kaiming_uniform_(a=sqrt(5))).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        _register_weight_and_bias(self, (out_features, in_features), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_fan_in_uniform(self.weight, self.bias)

    def count_macs(self, output_shape):
        """in_features for each output element."""
        return math.prod(output_shape) * self.in_features

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, input):
        """linear's code, which checks the input once, naming this layer and its settings."""
        return checked_linear(f"Linear({self.extra_repr()})", input, self.weight, self.bias)


# ---------------------------------------------------------------------- activations, dropout, pooling, resizing, shape

class _Elementwise(Module):
    """An elementwise function without settings; ``function`` computes it."""
    function = None

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return type(self).function(input)


class _Activation(Module):
    """An elementwise activation with torch's ``inplace`` flag; ``function`` computes it."""
    function = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return type(self).function(input, inplace=self.inplace)


class ReLU(_Activation):
    """y = max(x, 0)."""
    function = F.relu


class Hardtanh(Module):
    """y = x clamped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)


class ReLU6(Hardtanh):
    """y = min(max(x, 0), 6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class SiLU(_Activation):
    """y = x * sigmoid(x)."""
    function = F.silu


class GELU(Module):
    """y = x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` its tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

    def forward(self, input):
        return checked_gelu(f"GELU({self.extra_repr()})", input, self.approximate)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor("LeakyReLU", input)
        return F.leaky_relu(input, self.negative_slope, inplace=self.inplace)


class PReLU(Module):
    """y = x if x > 0 else a * x, with the slope a learned: one ``weight`` shared by all channels
    (``num_parameters=1``) or one per channel (``num_parameters=C``), initialised to ``init``."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = _parameter(num_parameters, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"

    def forward(self, input):
        _check_tensor("PReLU", input)
        return F.prelu(input, self.weight)


class ELU(Module):
    """y = x if x > 0 else alpha * (e^x - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor("ELU", input)
        return F.elu(input, self.alpha, self.inplace)


class Hardswish(_Activation):
    """y = x * relu6(x + 3) / 6 (MobileNetV3)."""
    function = F.hardswish

    def extra_repr(self):
        return ""               # torch's shows no inplace flag


class Hardsigmoid(_Activation):
    """y = relu6(x + 3) / 6."""
    function = F.hardsigmoid

    def extra_repr(self):
        return ""


class Mish(_Activation):
    """y = x * tanh(softplus(x))."""
    function = F.mish


class SELU(_Activation):
    """y = scale * (x if x > 0 else alpha * (e^x - 1)), SELU's constants (``F.selu``)."""
    function = F.selu


class CELU(Module):
    """y = x if x > 0 else alpha * (e^(x / alpha) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor("CELU", input)
        return F.celu(input, self.alpha, self.inplace)


class GLU(Module):
    """y = a * sigmoid(b), a and b the two halves of the input along ``dim``."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, input):
        _check_tensor("GLU", input)
        return F.glu(input, self.dim)


class LogSigmoid(_Elementwise):
    """y = log(sigmoid(x))."""
    function = F.logsigmoid


class Softsign(_Elementwise):
    """y = x / (1 + |x|)."""
    function = F.softsign


class Tanhshrink(_Elementwise):
    """y = x - tanh(x)."""
    function = F.tanhshrink


class Softshrink(Module):
    """y = x - lambd if x > lambd, x + lambd if x < -lambd, else 0."""
    function = F.softshrink

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def extra_repr(self):
        return str(self.lambd)

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return type(self).function(input, self.lambd)


class Hardshrink(Softshrink):
    """y = x if |x| > lambd else 0."""
    function = F.hardshrink


class Threshold(Module):
    """y = x if x > threshold else value."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor("Threshold", input)
        return F.threshold(input, self.threshold, self.value, self.inplace)


class RReLU(Module):
    """y = x if x > 0 else a * x: a drawn from [lower, upper) per element in training,
    (lower + upper) / 2 in evaluation (``F.rrelu``)."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")

    def forward(self, input):
        _check_tensor("RReLU", input)
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)


class Tanh(_Elementwise):
    """y = tanh(x)."""
    function = F.tanh


class Sigmoid(_Elementwise):
    """y = 1 / (1 + e^-x)."""
    function = F.sigmoid


class Softplus(Module):
    """y = log(1 + e^(beta x)) / beta, and y = x where beta x > threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"

    def forward(self, input):
        _check_tensor("Softplus", input)
        return F.softplus(input, self.beta, self.threshold)


class Softmax(Module):
    """y = e^x / sum(e^x) along ``dim``.  ``dim=None`` is torch's deprecated implicit choice
    (0 for a 0-, 1- or 3-D input, else 1), with its warning."""
    log = False

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        dim = self.dim
        if dim is None:      # the warning points at the line that called the layer
            dim = implicit_softmax_dim("log_softmax" if self.log else "softmax", input, stacklevel=5)
        return checked_softmax(f"{type(self).__name__}({self.extra_repr()})", input, dim, log=self.log)


class LogSoftmax(Softmax):
    """y = log(softmax(x)) along ``dim``, computed stably (``dim=None``: as Softmax)."""
    log = True


class Softmin(Module):
    """y = softmax(-x) along ``dim`` (``dim=None``: as Softmax)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, input):
        _check_tensor("Softmin", input)
        dim = implicit_softmax_dim("softmin", input, stacklevel=5) if self.dim is None else self.dim
        return checked_softmax(f"Softmin({self.extra_repr()})", -input, dim)


class Softmax2d(Module):
    """softmax over the channels at each location of (N, C, H, W) or unbatched (C, H, W)."""

    def forward(self, input):
        _check_tensor("Softmax2d", input)
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead")
        return checked_softmax("Softmax2d", input, -3)


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1 / (1 - p);
    in evaluation, y = x."""
    function = F.dropout

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return type(self).function(input, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """In training, zero each channel of (N, C, H, W) -- a whole H x W plane -- with probability
    p and scale the rest by 1 / (1 - p); in evaluation, y = x (``F.dropout2d``)."""
    function = F.dropout2d


class Dropout3d(Dropout):
    """In training, zero each channel of (N, C, D, H, W) -- a whole D x H x W volume -- with
    probability p and scale the rest by 1 / (1 - p); in evaluation, y = x (``F.dropout3d``)."""
    function = F.dropout3d


class AlphaDropout(Dropout):
    """Dropout for SELU networks: in training, set each element to SELU's saturation with
    probability p, then scale and shift so mean and variance are kept; in evaluation, y = x
    (``F.alpha_dropout``; as torch's layer, it never writes in place)."""
    function = F.alpha_dropout

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return type(self).function(input, self.p, self.training)


class FeatureAlphaDropout(AlphaDropout):
    """``AlphaDropout`` of whole channels of (N, C, ...) (``F.feature_alpha_dropout``)."""
    function = F.feature_alpha_dropout


def _check_image(layer, input):
    """Pooling layers take (N, C, H, W) or unbatched (C, H, W)."""
    _check_tensor(layer, input)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{layer}: expected 3-D (unbatched) or 4-D (batched) input, "
                           f"got input of shape {input.shape}")


class MaxPool2d(Module):
    """The maximum over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        _check_image(f"MaxPool2d({self.extra_repr()})", input)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool2d(Module):
    """The mean over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        _check_image(f"AvgPool2d({self.extra_repr()})", input)
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Module):
    """The mean over windows chosen so the output is ``output_size`` (ResNet's global pool: 1)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, input):
        _check_image(f"AdaptiveAvgPool2d({self.extra_repr()})", input)
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(Module):
    """The maximum over windows chosen so the output is ``output_size``; with ``return_indices``,
    also each maximum's flat h * W + w index in its input plane."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, input):
        _check_image(f"AdaptiveMaxPool2d({self.extra_repr()})", input)
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class Upsample(Module):
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) to ``size`` or by ``scale_factor``,
    in any mode of ``F.interpolate`` ('nearest', 'bilinear', 'bicubic', ...).  No parameters."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        if isinstance(scale_factor, (tuple, list)):
            scale_factor = tuple(float(f) for f in scale_factor)
        elif scale_factor is not None:
            scale_factor = float(scale_factor)
        self.scale_factor, self.recompute_scale_factor = scale_factor, recompute_scale_factor

    def extra_repr(self):
        shape = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{shape}, mode={self.mode!r}"

    def forward(self, input):
        return checked_interpolate(f"Upsample({self.extra_repr()})", input, self.size, self.scale_factor, self.mode,
                                   self.align_corners, self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')``, torch's older name."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)``, torch's older
    name (note: align_corners=True, unlike ``Upsample``'s default)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------- lookup

class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``: y = weight[input] for
    integer indices.  weight (num_embeddings, embedding_dim) ~ N(0, 1), with the row
    ``padding_idx`` (when given) zero and never given a gradient.  ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` are not implemented (refused at the first forward)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_index("Embedding", padding_idx, num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = _parameter(num_embeddings, embedding_dim, device=device, dtype=dtype)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: the shape of weight {tuple(_weight.shape)} does not match "
                                 f"(num_embeddings, embedding_dim) = ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight.array if isinstance(_weight, Tensor) else _weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose weight is the 2-D ``embeddings`` (shared, not copied), frozen by default."""
        if len(embeddings.shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings are expected to be 2-dimensional, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                init.zeros_(self.weight[self.padding_idx])

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s

    def forward(self, input):
        """embedding's code, which checks the input once, naming this layer and its settings."""
        return checked_embedding(f"Embedding({self.extra_repr()})", input, self.weight, self.padding_idx,
                                 self.max_norm, self.scale_grad_by_freq, self.sparse)


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, input):
        _check_tensor("Flatten", input)
        return input.flatten(self.start_dim, self.end_dim)


# ---------------------------------------------------------------------- distances

class CosineSimilarity(Module):
    """The cosine of the angle between x1 and x2 along ``dim`` (``F.cosine_similarity``)."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """||x1 - x2 + eps||_p over the last dim (``F.pairwise_distance``)."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


# ---------------------------------------------------------------------- padding, pixel shuffle, 1-d pooling, ...
# (torch.nn's padding layers, PixelShuffle, Unflatten, Dropout1d and the 1-d pooling layers)

def _tuple(value, n):
    """torch's ``_ntuple(n)``: a sequence as a tuple, anything else repeated n times."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


class _ConstantPadNd(Module):
    """``F.pad(input, padding, 'constant', value)``; ``padding`` (left, right[, top, bottom[,
    front, back]]) as ``F.pad`` reads it, from the last dim."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim by ``padding`` (an int: both sides) with ``value``."""

    def __init__(self, padding, value):
        super().__init__(value)
        self.padding = _tuple(padding, 2)


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims by ``padding`` (an int, or (left, right, top, bottom)) with ``value``."""

    def __init__(self, padding, value):
        super().__init__(value)
        self.padding = _tuple(padding, 4)


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims by ``padding`` (an int, or 6 ints) with ``value``."""

    def __init__(self, padding, value):
        super().__init__(value)
        self.padding = _tuple(padding, 6)


class ZeroPad1d(ConstantPad1d):
    """``ConstantPad1d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """``ConstantPad2d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """``ConstantPad3d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class _ModePad(Module):
    """``F.pad(input, padding, mode)`` for the modes that read the input ('reflect',
    'replicate', 'circular'); subclasses set ``mode`` and the pad's length (2, 4 or 6)."""
    mode, size = None, None

    def __init__(self, padding):
        super().__init__()
        self.padding = _tuple(padding, self.size)

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_ModePad):
    """Pad the last dim of (N, C, W) or (C, W) by mirroring about the edge samples."""
    mode, size = "reflect", 2


class ReflectionPad2d(_ModePad):
    """Pad the last two dims of (N, C, H, W) or (C, H, W) by mirroring about the edge samples."""
    mode, size = "reflect", 4


class ReflectionPad3d(_ModePad):
    """Pad the last three dims of (N, C, D, H, W) or (C, D, H, W) by mirroring about the edges."""
    mode, size = "reflect", 6


class ReplicationPad1d(_ModePad):
    """Pad the last dim of (N, C, W) or (C, W) by repeating the edge samples."""
    mode, size = "replicate", 2


class ReplicationPad2d(_ModePad):
    """Pad the last two dims of (N, C, H, W) or (C, H, W) by repeating the edge samples."""
    mode, size = "replicate", 4


class ReplicationPad3d(_ModePad):
    """Pad the last three dims of (N, C, D, H, W) or (C, D, H, W) by repeating the edge samples."""
    mode, size = "replicate", 6


class _CircularPadNd(_ModePad):
    """Pad by wrapping around; as torch's, an input of the wrong rank is a ValueError."""
    mode = "circular"

    def forward(self, input):
        _check_tensor(type(self).__name__, input)
        spatial = self.size // 2
        if input.ndim not in (spatial + 1, spatial + 2):
            raise ValueError(f"{type(self).__name__}: expected {spatial + 1}D or {spatial + 2}D input "
                             f"(got {input.ndim}D input)")
        return F.pad(input, self.padding, self.mode)


class CircularPad1d(_CircularPadNd):
    """Pad the last dim of (N, C, W) or (C, W) circularly (the other end's samples)."""
    size = 2


class CircularPad2d(_CircularPadNd):
    """Pad the last two dims of (N, C, H, W) or (C, H, W) circularly."""
    size = 4


class CircularPad3d(_CircularPadNd):
    """Pad the last three dims of (N, C, D, H, W) or (C, D, H, W) circularly."""
    size = 6


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r), r = ``upscale_factor`` (``F.pixel_shuffle``)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W), r = ``downscale_factor`` (``F.pixel_unshuffle``)."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """The sliding blocks of (N, C, H, W) as the columns of (N, C KH KW, L): the im2col matrix
    (``F.unfold``)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """Columns (N, C KH KW, L) added back into (N, C, *output_size): Unfold's adjoint (``F.fold``)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


__all__ += ["Fold", "Unfold"]


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1, inferred): Flatten's
    inverse, (N, C*H*W) -> (N, C, H, W) with ``Unflatten(1, (C, H, W))``.  Named dims (a str
    ``dim``) are not supported: tinyres has no named tensors."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, str):
            raise NotImplementedError("Unflatten: a named dim (str) needs named tensors, which tinyres does not have; "
                                      "pass the dim's index")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        for i, size in enumerate(unflattened_size):
            if not isinstance(size, numbers.Integral):
                raise TypeError(f"unflattened_size must be tuple of ints, but found element of type "
                                f"{type(size).__name__} at pos {i}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, input):
        _check_tensor("Unflatten", input)
        ndim = max(input.ndim, 1)
        if not -ndim <= self.dim < ndim:
            raise IndexError(f"Unflatten: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                             f"but got {self.dim})")
        dim, sizes = self.dim % ndim, [int(s) for s in self.unflattened_size]
        n = input.shape[dim]
        if sizes.count(-1) > 1:
            raise RuntimeError(f"unflatten: only one dimension can be inferred, got sizes {sizes}")
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes and known and n % known == 0:
            sizes[sizes.index(-1)] = n // known
        if math.prod(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"unflatten: Provided sizes {[int(s) for s in self.unflattened_size]} don't multiply "
                               f"up to the size of dim {dim} ({n}) in the input tensor")
        return input.reshape(*input.shape[:dim], *sizes, *input.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout1d(Dropout):
    """In training, zero each channel of (N, C, L) or (C, L) -- a whole length-L row -- with
    probability p and scale the rest by 1 / (1 - p); in evaluation, y = x (``F.dropout1d``)."""
    function = F.dropout1d


def _check_sequence(layer, input):
    """1-d pooling layers take (N, C, L) or unbatched (C, L)."""
    _check_tensor(layer, input)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{layer}: expected 2-D (unbatched) or 3-D (batched) input, "
                           f"got input of shape {input.shape}")


class MaxPool1d(Module):
    """The maximum over each kernel_size window of (N, C, L) (stride defaults to kernel_size).
    (Not a MaxPool2d subclass, as torch's: ``isinstance(m, nn.MaxPool2d)`` stays 2-d only.)"""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    extra_repr = MaxPool2d.extra_repr

    def forward(self, input):
        _check_sequence(f"MaxPool1d({self.extra_repr()})", input)
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool1d(Module):
    """The mean over each kernel_size window of (N, C, L) (stride defaults to kernel_size);
    as torch's, the sizes are kept as 1-tuples."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = _tuple(kernel_size, 1)
        self.stride = _tuple(kernel_size if stride is None else stride, 1)
        self.padding, self.ceil_mode, self.count_include_pad = _tuple(padding, 1), ceil_mode, count_include_pad

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        _check_sequence(f"AvgPool1d({self.extra_repr()})", input)
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AdaptiveAvgPool1d(Module):
    """The mean over windows of (N, C, L) chosen so the output length is ``output_size``."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    extra_repr = AdaptiveAvgPool2d.extra_repr

    def forward(self, input):
        _check_sequence(f"AdaptiveAvgPool1d({self.extra_repr()})", input)
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool1d(Module):
    """The maximum over windows of (N, C, L) chosen so the output length is ``output_size``;
    with ``return_indices``, also each maximum's index along L."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    extra_repr = AdaptiveMaxPool2d.extra_repr

    def forward(self, input):
        _check_sequence(f"AdaptiveMaxPool1d({self.extra_repr()})", input)
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


__all__ += ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
            "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
            "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d", "PixelShuffle", "PixelUnshuffle",
            "Unflatten", "Dropout1d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d"]


# ---------------------------------------------------------------------- channel shuffle, LRN, RMSNorm, Bilinear, unpool, LP pool

class ChannelShuffle(Module):
    """(N, C, *) with the channels of ``groups`` groups interleaved (ShuffleNet; ``F.channel_shuffle``)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def extra_repr(self):
        return f"groups={self.groups}"

    def forward(self, input):
        return checked_channel_shuffle(f"ChannelShuffle({self.extra_repr()})", input, self.groups)


class LocalResponseNorm(Module):
    """Each value divided by (k + alpha * the mean square over ``size`` neighbouring channels) ^ beta
    (AlexNet; ``F.local_response_norm``).  No parameters."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

    def forward(self, input):
        return checked_local_response_norm(f"LocalResponseNorm({self.extra_repr()})", input, self.size, self.alpha,
                                           self.beta, self.k)


class RMSNorm(Module):
    """Root mean square normalization over the last dims, which must be ``normalized_shape``:
    y = x / sqrt(mean(x^2) + eps) * weight (``F.rms_norm``; eps=None is finfo(dtype).eps).
    Parameter (``elementwise_affine``): weight (ones), of ``normalized_shape``; no bias."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = _parameter(*self.normalized_shape, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def forward(self, input):
        return checked_rms_norm(f"RMSNorm({self.extra_repr()})", input, self.normalized_shape, self.weight, self.eps)


class Bilinear(Module):
    """y = x1^T W x2 + b for each output feature (``F.bilinear``): weight (out_features,
    in1_features, in2_features) and bias (out_features,), both initialised from
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)), as torch's."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        _register_weight_and_bias(self, (out_features, in1_features, in2_features), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

    def forward(self, input1, input2):
        return checked_bilinear(f"Bilinear({self.extra_repr()})", input1, input2, self.weight, self.bias)


class _MaxUnpoolNd(Module):
    """A max pool's partial inverse: each value put back at its index, zeros elsewhere
    (``F.max_unpool2d``); as torch's, the sizes are kept as tuples."""

    spatial_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self.spatial_dims
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(kernel_size if stride is None else stride, n)
        self.padding = _tuple(padding, n)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input, indices, output_size=None):
        return checked_max_unpool(f"{type(self).__name__}({self.extra_repr()})", self.spatial_dims, input, indices,
                                  self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool1d(_MaxUnpoolNd):
    """MaxPool1d's partial inverse over (N, C, L) or (C, L) (``F.max_unpool1d``)."""
    spatial_dims = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """MaxPool2d's partial inverse over (N, C, H, W) or (C, H, W) (``F.max_unpool2d``)."""
    spatial_dims = 2


class _LPPoolNd(Module):
    """Power-average pooling: (sum of x^p over each window) ^ (1 / p), p = ``norm_type``
    (``F.lp_pool2d``)."""

    spatial_dims = 2

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")

    def forward(self, input):
        return checked_lp_pool(f"{type(self).__name__}({self.extra_repr()})", self.spatial_dims, input,
                               self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class LPPool1d(_LPPoolNd):
    """Power-average pooling over (N, C, L) or (C, L) (``F.lp_pool1d``)."""
    spatial_dims = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling over (N, C, H, W) or (C, H, W) (``F.lp_pool2d``)."""
    spatial_dims = 2


__all__ += ["ChannelShuffle", "LocalResponseNorm", "RMSNorm", "Bilinear", "MaxUnpool1d", "MaxUnpool2d", "LPPool1d",
            "LPPool2d"]
