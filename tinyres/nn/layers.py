"""The layers: modules that own parameters (or settings) and call ``tinyres.nn.functional``.

Each has ``torch.nn``'s constructor arguments and defaults, parameter and buffer names
and shapes, default initialisation and ``extra_repr``.  A layer checks its input before
calling the op, so a wrong shape is reported with the layer's name and settings.
"""
import math

from ..core import backend
from ..core.tensor import Tensor, ones, zeros, tensor
from . import functional as F
from . import init
from .functional.conv import convolution, ntuple
from .functional.linear import checked_linear
from .functional.normalization import checked_batch_norm, checked_group_norm
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d", "GroupNorm", "ReLU", "ReLU6", "Hardtanh", "SiLU", "LeakyReLU", "Tanh", "Sigmoid", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Linear", "Dropout", "Flatten", "Identity"]


def _check_tensor(layer, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{layer}: expected a Tensor as input, got {type(input).__name__}")


def _parameter(*shape, device=None, dtype=None):
    """An uninitialised Parameter of ``shape`` (the layer's reset_parameters fills it)."""
    return Parameter(zeros(*shape, device=device, dtype=dtype))


def _register_weight_and_bias(layer, weight_shape, bias, device, dtype):
    """``layer.weight`` of ``weight_shape`` and ``layer.bias`` of its first dim (or None)."""
    layer.weight = _parameter(*weight_shape, device=device, dtype=dtype)
    if bias:
        layer.bias = _parameter(weight_shape[0], device=device, dtype=dtype)
    else:
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
    """Shared by Conv1d and Conv2d: ``weight`` (out_channels, in_channels / groups, *kernel_size)
    and ``bias`` (out_channels,).

    Default initialisation (torch's): weight ~ kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * prod(kernel_size),
    and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    _dims = None         # 1 or 2 spatial dimensions

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self._dims
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups}), a positive integer")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported (only 'zeros')")
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
        _register_weight_and_bias(self, (out_channels, in_channels // groups) + self.kernel_size, bias, device, dtype)
        self.reset_parameters()

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
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def forward(self, input):
        """conv1d/conv2d's code, which checks the input once, naming this layer and its settings."""
        return convolution(f"{type(self).__name__}({self.extra_repr()})", self._dims, input, self.weight,
                           self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L): y = conv1d(x, weight) + bias."""
    _dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W): y = conv2d(x, weight) + bias."""
    _dims = 2


# ---------------------------------------------------------------------- normalization

class _BatchNorm(Module):
    """Per-channel batch normalization: y = weight * (x - mean) / sqrt(var + eps) + bias.

    Training: mean and var are the batch's (var biased), and the running estimates are
    updated as ``running = (1 - f) * running + f * batch`` (with the unbiased batch variance),
    where f is ``momentum``, or ``1 / num_batches_tracked`` (a cumulative average) when
    ``momentum`` is None.  Evaluation: the running estimates are used.
    Buffers: running_mean (zeros), running_var (ones), num_batches_tracked (int64 0).
    Parameters (``affine``): weight (ones), bias (zeros; left out with ``bias=False``).
    """

    _optional_buffers = ("num_batches_tracked",)    # absent from old PyTorch checkpoints

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            _register_weight_and_bias(self, (num_features,), bias, device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
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
            self.num_batches_tracked.data += 1
        return y


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L), per channel C."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W), per channel C (statistics over N, H, W)."""
    _ranks = (4,)


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
        if affine:
            _register_weight_and_bias(self, (num_channels,), bias, device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
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


# ---------------------------------------------------------------------- activations, pooling, shape

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


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, input):
        _check_tensor("Tanh", input)
        return F.tanh(input)


class Sigmoid(Module):
    """y = 1 / (1 + e^-x)."""

    def forward(self, input):
        _check_tensor("Sigmoid", input)
        return F.sigmoid(input)


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1 / (1 - p);
    in evaluation, y = x."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input):
        _check_tensor("Dropout", input)
        return F.dropout(input, self.p, self.training, self.inplace)


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
