"""Activations and dropout: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``gelu``, ``softmax``,
``log_softmax``, ``dropout``, ``dropout2d``.

Each Function keeps only what its backward needs (Chainer's retain-outputs idea):
ReLU keeps the mask x > 0, sigmoid/tanh/softmax keep their output y, dropout its mask;
none keeps x.

``inplace=True`` (relu, leaky_relu, hardtanh, relu6, silu, dropout) is PyTorch's: the
result is written into the input and the input is returned.  When the input takes no part
in autograd, ReLU computes straight into its memory (inference allocates nothing); inside
a graph the write is an in-place op (``commit_inplace``: a new version, the input's history
rebased); on a leaf that requires grad it is refused, as torch refuses it.
"""
import math
import numbers
import warnings

from ...core import backend
from ...core.engine import Function, once_differentiable
from ...core.grad_mode import is_grad_enabled
from ...core.backend import get_array_module
from ...kernels import fused
from ...kernels.threads import parallel_map
from ...core.composite import erf
from ...core.ops import Clamp, check_inference_write, commit_inplace, where
from ...core.tensor import Tensor

__all__ = ["relu", "relu_", "leaky_relu", "hardtanh", "relu6", "silu", "sigmoid", "tanh", "softplus", "gelu",
           "softmax", "log_softmax", "dropout", "dropout2d"]


def _float_tensor(x, op):
    """``x``, checked to be a floating point Tensor (``ops._as_tensor`` takes any dtype)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point tensor, got {x.dtype}")
    return x


def _maybe_inplace(input, output, inplace, op):
    """PyTorch's ``inplace=True`` (see the module docstring)."""
    if inplace:               # written back (in a graph: its history rebased; a leaf: refused)
        return commit_inplace(input, output, f"{op}_")
    return output


class LeakyReLU(Function):
    """y = x if x > 0 else s * x  (s = 0 is ReLU).   gx = gy * (1 if x > 0 else s).

    Keeps only the mask x > 0, not x.  At x = 0 the gradient is s (0 for ReLU), as PyTorch;
    at x = NaN, as PyTorch too, ReLU passes gy and LeakyReLU gives gy * s.
    Both passes run in slices on the CPU threads, and keep x's memory order.
    """

    def backward_graph(self, gy):
        """The backward in tensor ops, for create_graph: gy times the constant slope of each
        element (1 or s) -- linear in gy, and 0 as a second derivative in x."""
        xp = get_array_module(gy.array)
        slope = xp.where(self.positive, gy.dtype.type(1), self.slope) if self.slope else self.positive
        return gy * Tensor(slope.astype(gy.dtype, copy=False))

    def forward(self, x, negative_slope, out=None):
        xp = get_array_module(x)
        self.slope = slope = x.dtype.type(negative_slope)
        y = xp.empty_like(x) if out is None else out
        self.positive = positive = xp.empty_like(x, dtype=bool) if (self.needs_grad or slope) else None

        def relu(x, y, positive=None):      # pieces of the arrays; y may be x itself (out=x)
            if positive is not None and slope:
                xp.greater(x, 0, out=positive)
            elif positive is not None:       # as torch: ReLU passes the gradient at NaN, LeakyReLU scales it
                xp.logical_not(xp.less_equal(x, 0, out=positive), out=positive)
            if slope:
                xp.multiply(x, xp.where(positive, x.dtype.type(1), slope), out=y)
            else:                            # ReLU: maximum is several times faster than where
                xp.maximum(x, slope, out=y)
        parallel_map(relu, x, y, *([] if positive is None else [positive]))
        return y

    @once_differentiable
    def backward(self, gy):
        xp = get_array_module(gy)
        gx, slope = xp.empty_like(self.positive, dtype=gy.dtype), self.slope

        def grad(gx, gy, positive):        # gx first: the slices follow its (x's) memory order
            if slope:
                xp.multiply(gy, slope, out=gx)
                xp.copyto(gx, gy, where=positive)
            else:
                xp.multiply(gy, positive, out=gx)
        parallel_map(grad, gx, gy, self.positive)
        return gx


class Sigmoid(Function):
    """y = 1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0 so no exp overflows.
    gx = gy * y * (1 - y)."""

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(-xp.abs(x))                 # in (0, 1]: never overflows
        y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy * y * (1 - y)


class Tanh(Function):
    """y = tanh x.   gx = gy * (1 - y^2)."""

    def forward(self, x):
        y = get_array_module(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy * (1 - y * y)


def log_softmax_array(x, axis):
    """log softmax of an array along ``axis``, stable: x - max - log(sum(exp(x - max)))."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """y_i = e^(x_i - max) / sum_j e^(x_j - max) along ``axis``.
    gx = y * (gy - sum(gy * y))   (the sum along ``axis``)."""

    def forward(self, x, axis):
        self.axis = axis
        y = get_array_module(x).exp(log_softmax_array(x, axis))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return y * (gy - (gy * y).sum(self.axis, keepdim=True))


class LogSoftmax(Function):
    """y = x - max - log(sum(exp(x - max))) along ``axis``.
    gx = gy - softmax(x) * sum(gy) = gy - e^y * sum(gy)."""

    def forward(self, x, axis):
        self.axis = axis
        y = log_softmax_array(x, axis)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy - y.exp() * gy.sum(self.axis, keepdim=True)


class DropoutFunction(Function):
    """y = x * mask, where mask is 0 (dropped) or 1 / (1 - p) (kept); it may broadcast (one
    value per channel for dropout2d).   gx = gy * mask."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, gy):
        return gy * Tensor(self.mask), None


def _leaky_relu(op, input, negative_slope, inplace):
    """With ``inplace`` and no autograd involved, the result is written straight into the input."""
    x = _float_tensor(input, op)
    if inplace and not (is_grad_enabled() and x.requires_grad):
        check_inference_write(x, f"{op}_")
        LeakyReLU.apply(x, negative_slope, out=x.array)
        x._version_counter[0] += 1
        return input
    if inplace:                # in a graph: written back, its history rebased (a leaf: refused)
        return commit_inplace(x, LeakyReLU.apply(x, negative_slope), f"{op}_")
    return LeakyReLU.apply(x, negative_slope)


def relu(input, inplace=False):
    """max(x, 0) elementwise.  ``inplace``: see the module docstring."""
    return _leaky_relu("relu", input, 0.0, inplace)


def relu_(input):
    """``relu(input, inplace=True)``, as ``torch.relu_``."""
    return relu(input, inplace=True)


class Softplus(Function):
    """y = log(1 + e^t) / beta with t = beta x, computed as (max(t, 0) + log1p(e^-|t|)) / beta
    (no exp overflows); y = x where t > threshold (None: nowhere), as torch.

        gx = gy * sigmoid(t)    (gy where t > threshold)

    sigmoid(0) = 1/2 at 0 too (a max(t, 0) + |t| split of the formula would give 1 there).
    Backward is tensor ops, so the second derivative is beta sigmoid(t) (1 - sigmoid(t))
    (0 above the threshold), as torch's.
    """

    def forward(self, x, beta, threshold):
        xp = get_array_module(x)
        self.beta, self.threshold = beta, threshold
        self.save_for_backward(x)
        t = x * x.dtype.type(beta)
        y = (xp.maximum(t, 0) + xp.log1p(xp.exp(-xp.abs(t)))) / x.dtype.type(beta)
        return y if threshold is None else xp.where(t > threshold, x, y)

    def backward(self, gy):
        x, = self.saved_tensors
        t = x * self.beta
        slope = Sigmoid.apply(t)
        return gy * slope if self.threshold is None else where(Tensor(t.array > self.threshold), gy, gy * slope)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, as ``torch.nn.functional.softplus``: x itself where
    beta x > threshold.  One Function (``Softplus``): its gradient is sigmoid(beta x)."""
    return Softplus.apply(_float_tensor(input, "softplus"), beta, threshold)


class HardtanhFunction(Clamp):
    """``Clamp`` (its math and gradients), but as torch's hardtanh (not its clamp) reads x in its
    backward: under create_graph gx stays in the graph (``engine._connected``)."""

    _backward_reads_input = True


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val] (made of clamp: its gradient is 1 inside, 0 outside)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val, got {min_val} > {max_val}")
    x = _float_tensor(input, "hardtanh")
    return _maybe_inplace(input, HardtanhFunction.apply(x, min_val, max_val), inplace, "hardtanh")


def relu6(input, inplace=False):
    """min(max(x, 0), 6), MobileNet's activation: ``hardtanh(x, 0, 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def silu(input, inplace=False):
    """x * sigmoid(x) ("swish"), made of the two differentiable ops."""
    x = _float_tensor(input, "silu")
    return _maybe_inplace(input, x * Sigmoid.apply(x), inplace, "silu")


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF (Hendrycks and Gimpel, 2016), as
    ``torch.nn.functional.gelu``: Phi(x) = (1 + erf(x / sqrt 2)) / 2, or with
    ``approximate='tanh'`` (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2.  Made of
    differentiable ops (erf's gradient is 2 / sqrt(pi) * e^(-x^2)), so twice differentiable."""
    return checked_gelu("gelu", input, approximate)


def checked_gelu(op, input, approximate):
    """``gelu``, with ``op`` naming the caller in the errors (``nn.GELU`` names itself)."""
    x = _float_tensor(input, op)
    if approximate == "none":
        return x * 0.5 * (1 + erf(x * math.sqrt(0.5)))
    if approximate == "tanh":
        return x * 0.5 * (1 + Tanh.apply(math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))))
    raise RuntimeError(f"{op}: approximate argument must be either 'none' or 'tanh', got {approximate!r}")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x.  ``inplace``: see the module docstring."""
    return _leaky_relu("leaky_relu", input, negative_slope, inplace)


def sigmoid(input):
    return Sigmoid.apply(_float_tensor(input, "sigmoid"))


def tanh(input):
    return Tanh.apply(_float_tensor(input, "tanh"))


def _softmax_axis(input, dim, dtype, op):
    """The input cast to ``dtype`` (when given) and ``dim`` as a non-negative axis."""
    if dtype is not None:
        input = input.to(dtype)
    input = _float_tensor(input, op)
    if not isinstance(dim, numbers.Integral) or not -max(input.ndim, 1) <= dim < max(input.ndim, 1):
        raise IndexError(f"{op}: dim={dim!r} is out of range for a tensor of shape {input.shape}")
    return input, int(dim) % max(input.ndim, 1)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (pass it: without it, torch's deprecated implicit
    choice, with its warning -- ``implicit_softmax_dim``).  ``dtype``: cast the input to it first."""
    dim = implicit_softmax_dim("softmax", input, _stacklevel) if dim is None else dim
    return checked_softmax("softmax", input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(x)) along ``dim``, computed stably as x - max - log(sum(exp(x - max)))."""
    dim = implicit_softmax_dim("log_softmax", input, _stacklevel) if dim is None else dim
    return checked_softmax("log_softmax", input, dim, dtype, log=True)


def checked_softmax(op, input, dim, dtype=None, log=False):
    """``softmax`` (``log_softmax`` with ``log``), ``op`` naming the caller in the errors
    (``nn.Softmax`` names itself)."""
    input, axis = _softmax_axis(input, dim, dtype, op)
    return (LogSoftmax if log else Softmax).apply(input, axis)


def _dropout_mask(input, shape, p):
    """The mask of inverted dropout, of ``shape`` (the input's, or one that broadcasts to it):
    0 with probability ``p``, else 1 / (1 - p), in the input's dtype and on its device."""
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    if input.device.type == "cpu":
        return ((backend.default_generator().random(shape) >= p) * scale).astype(input.dtype)
    with backend.on_device(input.device):
        return fused.dropout_mask(shape, input.dtype, p, scale, backend.cuda_generator_state(input.device.index))


def _check_probability(op, p):
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    1 / (1 - p), so the expected value is unchanged; ``training=False`` returns ``input``.

    On the CPU the mask is drawn from ``tinyres.backend.default_generator()``; on a GPU on
    the device (a mask drawn on the host would be a copy at every call), by a counter-based
    Philox kernel whose state stays on the device, so a CUDA graph can hold it and draws new
    masks at every replay (``kernels/fused.py``).  ``tinyres.manual_seed`` seeds both, so a
    run is reproducible on each device; the masks of the two differ.
    """
    _check_probability("dropout", p)
    input = _float_tensor(input, "dropout")
    if not training:
        return input
    mask = _dropout_mask(input, input.shape, p)
    return _maybe_inplace(input, DropoutFunction.apply(input, mask), inplace, "dropout")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout, as ``torch.nn.functional.dropout2d``: each channel of each sample
    of (N, C, H, W) -- the whole H x W plane -- is zeroed with probability ``p``, the others
    scaled by 1 / (1 - p) (one mask value per (n, c), broadcast over the plane).

    As torch's: a 3-D input is taken as (N, C, L) (not as an unbatched (C, H, W)), with
    torch's warning; other ranks from 2 up are dropped per (n, c) too, with a warning."""
    _check_probability("dropout2d", p)
    input = _float_tensor(input, "dropout2d")
    if input.ndim < 2:
        raise RuntimeError(f"dropout2d: feature dropout requires at least 2 dimensions (N, C, ...) in the input, "
                           f"got input of shape {input.shape}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                      "inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                      "dim. This behavior will change in a future release to interpret the input as one "
                      "without a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
                      "dropout behavior, please switch to using dropout1d instead.", stacklevel=2)
    if not training:
        return input
    mask = _dropout_mask(input, input.shape[:2] + (1,) * (input.ndim - 2), p)
    return _maybe_inplace(input, DropoutFunction.apply(input, mask), inplace, "dropout2d")


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of (N, C, L) or unbatched (C, L), as ``torch.nn.functional.dropout1d``:
    each channel -- a whole length-L row -- is zeroed with probability ``p``, the others scaled
    by 1 / (1 - p) (one mask value per (n, c), or per c unbatched, broadcast along L)."""
    _check_probability("dropout1d", p)
    input = _float_tensor(input, "dropout1d")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    if not training:
        return input
    mask = _dropout_mask(input, input.shape[:-1] + (1,), p)
    return _maybe_inplace(input, DropoutFunction.apply(input, mask), inplace, "dropout1d")


__all__ += ["dropout1d"]


# ---------------------------------------------------------------------- Tensor's methods
# nn sits above the core, so the activations become Tensor methods here (as core/ops.py does
# for the math): x.relu(), x.relu_(), x.sigmoid(), x.tanh(), as torch.
for _name, _method in {"relu": relu, "relu_": relu_, "sigmoid": sigmoid, "tanh": tanh, "softplus": softplus,
                      "softmax": lambda x, dim, dtype=None: softmax(x, dim, dtype=dtype),
                      "log_softmax": lambda x, dim, dtype=None: log_softmax(x, dim, dtype=dtype)}.items():
    setattr(Tensor, _name, _method)


# ---------------------------------------------------------------------- more activations, made of differentiable ops
# (each twice differentiable through its ops; the masks at the kinks follow torch's backward)

__all__ += ["elu", "hardswish", "hardsigmoid", "mish", "prelu"]


def implicit_softmax_dim(op, input, stacklevel):
    """torch's deprecated choice of a softmax's ``dim`` when none is given, with its warning:
    0 for a 0-, 1- or 3-D input (one unbatched sample), else 1."""
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=stacklevel)
    return 0 if _float_tensor(input, op).ndim in (0, 1, 3) else 1


def _mask(x, fn):
    """``fn(x.array)`` (a mask, or constants) as a Tensor on x's device, outside the graph."""
    with backend.on_device(x.device):
        return Tensor(fn(x.array))


class ELU(Function):
    """y = x where x > 0, else alpha * (e^x - 1) (e^x - 1 by expm1: exact near 0, and -0 stays -0).
    gx = gy where x > 0 (and at NaN), else gy * alpha * e^x -- e^x itself, as torch's kernel, not
    y + 1, which loses the digits of a small e^x.  Backward is in tensor ops of the saved x, so
    it differentiates again (the e^x taken of min(x, 0): a large x never meets 0 * inf)."""

    def forward(self, x, alpha):
        xp = get_array_module(x)
        self.alpha, self.positive = alpha, ~(x <= 0)
        if self.needs_grad:
            self.save_for_backward(x)
        return xp.where(self.positive, x, x.dtype.type(alpha) * xp.expm1(xp.where(self.positive, 0, x)))

    def backward(self, gy):
        x, = self.saved_tensors
        positive = Tensor(self.positive)
        return gy * where(positive, 1.0, self.alpha * where(positive, 0.0, x).exp())


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (e^x - 1), as ``torch.nn.functional.elu`` (``ELU``)."""
    return _maybe_inplace(input, ELU.apply(_float_tensor(input, "elu"), alpha=alpha), inplace, "elu")


class Hardsigmoid(Function):
    """y = min(max(x + 3, 0), 6) / 6 (NaN stays NaN; torch's forward, to the bit).
    gx = gy / 6 where -3 < x < 3 (strictly, as torch), else 0.  (torch's kernel multiplies by
    1/6 rounded to float32 in every dtype, so in float64 its gradient differs from this exact
    one by 3e-8, relatively; and it has no second derivative, where this one's is 0.)
    Keeps only the slope of each element."""

    def backward_graph(self, gy):
        """gy times a constant (1/6 or 0): linear in gy, 0 as a second derivative in x."""
        return gy * Tensor(self.slope.astype(gy.dtype, copy=False))

    def forward(self, x):
        xp = get_array_module(x)
        if self.needs_grad:
            self.slope = xp.where((x > -3) & (x < 3), x.dtype.type(1 / 6), x.dtype.type(0))
        return xp.minimum(xp.maximum(x + 3, 0), 6) / x.dtype.type(6)

    @once_differentiable
    def backward(self, gy):
        return gy * self.slope


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6, as ``torch.nn.functional.hardsigmoid``: 0 for x <= -3, 1 for x >= 3,
    (x + 3) / 6 between (``Hardsigmoid``)."""
    return _maybe_inplace(input, Hardsigmoid.apply(_float_tensor(input, "hardsigmoid")), inplace, "hardsigmoid")


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6 (MobileNetV3), as ``torch.nn.functional.hardswish``: x * 0 for
    x <= -3 (-0, and NaN at -inf, as torch), x for x >= 3 (and NaN), x (x + 3) / 6 between.
    gx = gy * (2x + 3) / 6 for -3 < x < 3, 0 below, gy above (torch's strict ends).  The middle
    is taken of x where inside, else 0, so an infinite x never meets 0 * inf in backward."""
    x = _float_tensor(input, "hardswish")
    below, middle = _mask(x, lambda a: a <= -3), _mask(x, lambda a: (a > -3) & (a < 3))
    inside = where(middle, x, 0.0)
    y = where(middle, inside * (inside + 3) / 6, where(below, x * 0.0, x))
    return _maybe_inplace(input, y, inplace, "hardswish")


def mish(input, inplace=False):
    """x * tanh(softplus(x)) (Misra, 2019), as ``torch.nn.functional.mish``.
    gx = gy * (tanh(s) + x * sigmoid(x) * (1 - tanh(s)^2)), s = softplus(x): the ops' chain rule."""
    x = _float_tensor(input, "mish")
    return _maybe_inplace(input, x * Tanh.apply(Softplus.apply(x, 1.0, 20.0)), inplace, "mish")


def prelu(input, weight):
    """x where x > 0, else a * x, with a learned slope ``weight``: one value, or one per channel
    (dim 1 of the input; a 0- or 1-D input has one channel), as ``torch.nn.functional.prelu``.
    gx = gy where x > 0, else gy * a (a at x = 0);  ga = sum of gy * x where x <= 0."""
    x = _float_tensor(input, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: expected weight to be a Tensor, got {type(weight).__name__}")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(f"prelu: Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{weight.numel()} and channel size = {channels}.")
    a = weight.reshape((-1,) + (1,) * (x.ndim - 2)) if weight.numel() > 1 else weight.reshape(())
    return where(_mask(x, lambda v: v > 0), x, a * x)
