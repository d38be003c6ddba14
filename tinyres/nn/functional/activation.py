"""Activations and dropout: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``gelu``, ``softmax``,
``log_softmax``, ``dropout``, ``dropout2d``; at the end the rest of torch.nn's (``selu``, ``celu``,
``glu``, ``logsigmoid``, ``softsign``, the shrinks, ``threshold``, ``softmin``, ``rrelu``, alpha
dropout, ``dropout3d``) and the in-place ``_`` forms torch has.

Each Function keeps only what its backward needs (Chainer's retain-outputs idea):
ReLU keeps the mask x > 0, sigmoid/tanh/softmax keep their output y, dropout its mask;
none keeps x.

``inplace=True`` (relu, leaky_relu, hardtanh, relu6, silu, elu, selu, celu, threshold, rrelu, the
dropouts) is PyTorch's: the result is written into the input and the input is returned.  When
the input takes no part in autograd, ReLU computes straight into its memory (inference
allocates nothing); inside
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
from ...core.tensor import Tensor, rand

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


def _warn_feature_rank(op, ndim, spatial):
    """torch's warning for a channel-wise dropout given an input of another rank."""
    warnings.warn(f"{op}: Received a {ndim}-D input to {op}, which is deprecated and will result in an error in "
                  "a future release. To retain the behavior and silence this warning, please use dropout instead. "
                  f"Note that {op} exists to provide channel-wise dropout on inputs with {spatial} spatial "
                  "dimensions, a channel dimension, and an optional batch dimension "
                  f"(i.e. {spatial + 1}D or {spatial + 2}D inputs).", stacklevel=3)


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
        _warn_feature_rank("dropout2d", input.ndim, 2)
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
    it differentiates again (the e^x taken of min(x, 0): a large x never meets 0 * inf).

    torch's kernel has two more constants, for SELU and CELU: with ``scale`` s and ``input_scale`` c,
    y = s x where x > 0, else alpha s (e^(c x) - 1);  gx = gy s, else gy alpha s c e^(c x).
    (Both 1 for ELU, which then computes exactly as without them.)"""

    def forward(self, x, alpha, scale=1.0, input_scale=1.0):
        xp = get_array_module(x)
        self.alpha, self.scale, self.input_scale, self.positive = alpha, scale, input_scale, ~(x <= 0)
        if self.needs_grad:
            self.save_for_backward(x)
        t = x.dtype.type
        negative = t(alpha * scale) * xp.expm1(t(input_scale) * xp.where(self.positive, 0, x))
        return xp.where(self.positive, x if scale == 1 else t(scale) * x, negative)

    def backward(self, gy):
        x, = self.saved_tensors
        positive = Tensor(self.positive)
        c = self.input_scale
        negative = (where(positive, 0.0, x) if c == 1 else c * where(positive, 0.0, x)).exp()
        return gy * where(positive, self.scale, self.alpha * self.scale * c * negative)


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


# ---------------------------------------------------------------------- the rest of torch.nn's activations
# SELU and CELU are the ELU Function with torch's scale constants; the shrinks and threshold are
# where() with constant masks (torch's masks: their gradient passes at NaN, is 0 at the ends);
# the others are made of differentiable ops, so all are twice differentiable.

__all__ += ["selu", "celu", "glu", "logsigmoid", "softsign", "softshrink", "hardshrink", "tanhshrink", "threshold",
            "softmin", "rrelu", "alpha_dropout", "feature_alpha_dropout", "dropout3d",
            "selu_", "celu_", "elu_", "hardtanh_", "leaky_relu_", "threshold_", "rrelu_"]

SELU_ALPHA = 1.6732632423543772848170429916717     # Klambauer et al., 2017: the fixed point of
SELU_SCALE = 1.0507009873554804934193349852946     # mean 0, variance 1


def selu(input, inplace=False):
    """scale * elu(x, alpha) with SELU's constants (scale 1.0507..., alpha 1.6732...), as
    ``torch.nn.functional.selu``: scale x where x > 0, else scale alpha (e^x - 1)."""
    x = _float_tensor(input, "selu")
    return _maybe_inplace(input, ELU.apply(x, SELU_ALPHA, SELU_SCALE), inplace, "selu")


def celu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha (e^(x / alpha) - 1), as ``torch.nn.functional.celu`` (ELU with
    input_scale 1 / alpha: continuously differentiable at 0 for every alpha)."""
    x = _float_tensor(input, "celu")
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: alpha cannot be 0 for CELU")
    return _maybe_inplace(input, ELU.apply(x, alpha, 1.0, 1.0 / alpha), inplace, "celu")


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of the input along ``dim`` (Dauphin et al., 2017),
    as ``torch.nn.functional.glu``.  ga = gy sigmoid(b), gb = gy a sigmoid(b) (1 - sigmoid(b))."""
    x = _float_tensor(input, "glu")
    if x.ndim == 0:
        raise RuntimeError("glu: glu does not support scalars because halving size must be even")
    if not isinstance(dim, numbers.Integral) or not -x.ndim <= dim < x.ndim:
        raise IndexError(f"glu: Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], "
                         f"but got {dim})")
    dim = int(dim) % x.ndim
    if x.shape[dim] % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {dim} is size {x.shape[dim]}")
    a, b = x.chunk(2, dim)
    return a * Sigmoid.apply(b)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), as ``torch.nn.functional.logsigmoid``: computed as
    min(x, 0) - log1p(e^-|x|), which never overflows.  gx = gy sigmoid(-x)."""
    return -Softplus.apply(-_float_tensor(input, "logsigmoid"), 1.0, None)


def softsign(input):
    """x / (1 + |x|), as ``torch.nn.functional.softsign`` (NaN at ±inf, as torch's).
    gx = gy / (1 + |x|)^2, by the ops' chain rule."""
    x = _float_tensor(input, "softsign")
    return x / (x.abs() + 1)


def _inside(x, lambd):
    """The constant mask -lambd <= x <= lambd, where the shrinks are 0 and pass no gradient."""
    return _mask(x, lambda a: (a >= -lambd) & (a <= lambd))


def softshrink(input, lambd=0.5):
    """x - lambd where x > lambd, x + lambd where x < -lambd, else 0, as
    ``torch.nn.functional.softshrink``.  gx = 0 where -lambd <= x <= lambd, else gy (NaN too)."""
    x = _float_tensor(input, "softshrink")
    if not lambd >= 0:
        raise RuntimeError(f"softshrink: lambda must be in range [0, inf) for input dtype {x.dtype}, "
                           f"but found {lambd}")
    return where(_inside(x, lambd), 0.0, where(_mask(x, lambda a: a > 0), x - lambd, x + lambd))


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0, as ``torch.nn.functional.hardshrink`` (NaN stays NaN).
    gx = 0 where -lambd <= x <= lambd, else gy."""
    x = _float_tensor(input, "hardshrink")
    return where(_inside(x, lambd), 0.0, x)


def tanhshrink(input):
    """x - tanh(x), as ``torch.nn.functional.tanhshrink``.  gx = gy tanh(x)^2."""
    x = _float_tensor(input, "tanhshrink")
    return x - Tanh.apply(x)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else ``value``, as ``torch.nn.functional.threshold`` (NaN stays NaN).
    gx = gy where x > threshold (and at NaN), else 0."""
    x = _float_tensor(input, "threshold")
    return _maybe_inplace(input, where(_mask(x, lambda a: a <= threshold), value, x), inplace, "threshold")


_threshold = threshold       # for threshold_, whose argument hides the name


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along ``dim``, as ``torch.nn.functional.softmin`` (``dim=None``: torch's
    deprecated implicit choice, with its warning; ``dtype``: cast first)."""
    dim = implicit_softmax_dim("softmin", input, _stacklevel) if dim is None else dim
    x = _float_tensor(input if dtype is None else input.to(dtype), "softmin")
    return checked_softmax("softmin", -x, dim)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU (Xu et al., 2015), as ``torch.nn.functional.rrelu``: x where x > 0,
    else a x.  Training: a drawn uniformly from [lower, upper) for each element, from
    ``tinyres.backend.default_generator()``; gx = gy a (1 where x > 0).  Evaluation:
    ``leaky_relu`` with the fixed slope (lower + upper) / 2."""
    if lower > upper:
        raise RuntimeError(f"rrelu: Lower bound should be less than or equal to the upper bound, got "
                           f"lower={lower}, upper={upper}")
    if not training:
        return _leaky_relu("rrelu", input, (lower + upper) / 2, inplace)
    x = _float_tensor(input, "rrelu")
    u = rand(*x.shape, dtype=x.dtype, device=x.device).array
    slope = _mask(x, lambda a: get_array_module(a).where(a <= 0, lower + (upper - lower) * u, 1).astype(a.dtype))
    return _maybe_inplace(input, x * slope, inplace, "rrelu")


SELU_ALPHA_PRIME = -SELU_SCALE * SELU_ALPHA      # alpha dropout's dropped value, SELU's limit at -inf


def _alpha_dropout(op, input, p, training, inplace, feature):
    """Alpha dropout with one draw per element (per (n, c) with ``feature``), as
    torch's: with keep mask m (1 with probability 1 - p), alpha' = -1.7580993408473766 and
    a = 1 / sqrt((alpha'^2 p + 1)(1 - p)), b = -a alpha' p,

        y = a (m x + (1 - m) alpha') + b      gx = gy a m

    so a SELU-normal input keeps mean 0 and variance 1.  p = 1 gives x * 0, as torch."""
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, input * 0.0, inplace, op)
    shape = input.shape
    if feature and input.ndim < 2:
        raise RuntimeError(f"{op}: Feature dropout requires at least 2 dimensions in the input")
    if feature:
        shape = shape[:2] + (1,) * (input.ndim - 2)
    keep = _dropout_mask(input, shape, p) != 0
    alpha, t = -SELU_ALPHA_PRIME, input.dtype.type
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    with backend.on_device(input.device):
        scale = Tensor(keep * t(a))
        shift = Tensor((keep - t(1)) * t(alpha * a) + t(alpha * a * p))
    return _maybe_inplace(input, input * scale + shift, inplace, op)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks (Klambauer et al., 2017), as ``torch.nn.functional.alpha_dropout``:
    each element is set to SELU's negative saturation alpha' with probability ``p``, then all are
    scaled and shifted so that mean and variance are kept (``_alpha_dropout``)."""
    _check_probability("alpha_dropout", p)
    x = _float_tensor(input, "alpha_dropout")
    return _alpha_dropout("alpha_dropout", x, p, training, inplace, feature=False)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """``alpha_dropout`` of whole channels, as ``torch.nn.functional.feature_alpha_dropout``: one
    draw per (n, c) of (N, C, ...), broadcast over the rest (at least 2 dimensions)."""
    _check_probability("feature_alpha_dropout", p)
    x = _float_tensor(input, "feature_alpha_dropout")
    return _alpha_dropout("feature_alpha_dropout", x, p, training, inplace, feature=True)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of (N, C, D, H, W) or unbatched (C, D, H, W), as
    ``torch.nn.functional.dropout3d``: each channel -- a whole D x H x W volume -- is zeroed with
    probability ``p``, the others scaled by 1 / (1 - p).  As torch's, any input that is not 5-D
    is taken as unbatched (one draw per index of its first dimension), with torch's warning
    unless it is 4-D."""
    _check_probability("dropout3d", p)
    input = _float_tensor(input, "dropout3d")
    if input.ndim not in (4, 5):
        _warn_feature_rank("dropout3d", input.ndim, 3)
    if not training or p == 0:
        return input
    if input.ndim == 0:
        raise RuntimeError("dropout3d: Feature dropout requires at least 2 dimensions in the input")
    drawn = input.shape[:2] if input.ndim == 5 else input.shape[:1]     # (n, c), or c unbatched
    mask = _dropout_mask(input, drawn + (1,) * (input.ndim - len(drawn)), p)
    return _maybe_inplace(input, DropoutFunction.apply(input, mask), inplace, "dropout3d")


# the in-place forms torch.nn.functional has, each its op with inplace=True

def selu_(input):
    """``selu(input, inplace=True)``."""
    return selu(input, inplace=True)


def celu_(input, alpha=1.0):
    """``celu(input, alpha, inplace=True)``."""
    return celu(input, alpha, inplace=True)


def elu_(input, alpha=1.0):
    """``elu(input, alpha, inplace=True)``."""
    return elu(input, alpha, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """``hardtanh(input, min_val, max_val, inplace=True)``."""
    return hardtanh(input, min_val, max_val, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    """``leaky_relu(input, negative_slope, inplace=True)``."""
    return leaky_relu(input, negative_slope, inplace=True)


def threshold_(input, threshold, value):
    """``threshold(input, threshold, value, inplace=True)``."""
    return _threshold(input, threshold, value, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """``rrelu(input, lower, upper, training, inplace=True)``."""
    return rrelu(input, lower, upper, training, inplace=True)
