"""Losses: ``cross_entropy`` (one fused log-softmax + NLL Function), ``nll_loss``,
``binary_cross_entropy_with_logits``, ``mse_loss``.

Each loss first computes one value per sample (per position for spatial inputs), then
reduces: ``'none'`` keeps them, ``'sum'`` adds them, ``'mean'`` divides the sum by the
number of values -- or, for class-index targets, by the total weight of the targets
that are not ignored (PyTorch's weighted mean).  The math is derived in docs/losses.md.

The arguments sit at PyTorch's positions, its deprecated ``size_average``/``reduce``
included (``_legacy_reduction``), so a positional call means the same in both libraries.
"""
import warnings

import numpy

from ...core import backend, ops
from ...core.engine import Function, once_differentiable
from ...core.grad_mode import is_anomaly_enabled, is_grad_enabled
from ...core.backend import get_array_module
from ...core.tensor import Tensor
from .activation import LogSoftmax, Softplus, log_softmax_array
from .normalization import per_channel

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------- checks

def _legacy_reduction(size_average, reduce, reduction):
    """torch's deprecated ``size_average``/``reduce``: when either is given it decides."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else "mean" if size_average else "sum"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                  "instead.", UserWarning, stacklevel=3)
    return reduction


def _check_tensors(op, **tensors):
    """Each named argument is a Tensor (or None), and all are on one device."""
    given = {name: t for name, t in tensors.items() if t is not None}
    for name, t in given.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if len({t.device for t in given.values()}) > 1:
        raise RuntimeError(f"{op}: expected all tensors on one device, got "
                           + ", ".join(f"{name} on {t.device}" for name, t in given.items()))


def _check_options(op, input, reduction, **constants):
    """A floating input, a known reduction, and weights that need no gradient."""
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction={reduction!r} is not valid; expected 'mean', 'sum' or 'none'")
    for name, t in constants.items():
        if t is not None and t.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{op}: {name} cannot require grad (it gets no gradient, as in PyTorch)")


def _check_class_weight(op, input, weight):
    if weight is not None and weight.shape != (input.shape[1],):
        raise ValueError(f"{op}: weight must have one entry per class, shape ({input.shape[1]},) for input "
                         f"of shape {input.shape}, got {weight.shape}")


def _check_index_target(op, input, target):
    """Class indices: an integer tensor of shape (N, d1, ...) for an (N, C, d1, ...) input."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be an integer tensor (int64), got {target.dtype} "
                        f"of shape {target.shape} for input of shape {input.shape}"
                        + (" (float targets must be class probabilities of the input's shape)"
                           if op == "cross_entropy" else ""))
    expected = input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} (N, d1, ...) for input of shape "
                         f"{input.shape}, got {target.shape}")


class ScaledSum(Function):
    """y = sum(loss) / d for a constant d (a number or a 0-d array): d = 1 for 'sum', the
    count for 'mean', the total target weight for PyTorch's weighted mean.
    gloss = gy / d everywhere.

    d = 0 happens when every target is ignored, or when the class weights of all the
    targets not ignored are 0: then every loss is 0, y = 0/0 = nan as in PyTorch, and
    gloss = 0.  PyTorch's gradient is 0 too when every target is ignored, but nan (0/0)
    for the samples whose target has weight 0; tinyres keeps it 0 (a difference).
    """

    def forward(self, loss, d):
        self.shape, self.d = loss.shape, d
        with numpy.errstate(invalid="ignore", divide="ignore"):
            return (loss.sum(keepdims=True) / d).reshape(())   # an array, not a NumPy scalar

    def backward(self, gy):
        d = self.d      # 1 / d where d != 0, else 0, without asking the GPU whether d == 0
        scale = (d != 0) / (d + (d == 0))
        return ops.broadcast_to(gy * Tensor(backend.to_device(numpy.asarray(scale, gy.dtype), gy.device)
                                            if not hasattr(scale, "device") else scale.astype(gy.dtype)),
                                self.shape), None


def _reduce(loss, reduction, denominator=None):
    """'none': ``loss``; 'sum': its sum; 'mean': its sum / ``denominator`` (default: its size)."""
    if reduction == "none":
        return loss
    d = 1 if reduction == "sum" else loss.numel() if denominator is None else denominator
    return ScaledSum.apply(loss, d)


# ---------------------------------------------------------------------- class-index targets

def _index_coefficients(op, input, target, weight, ignore_index, label_smoothing):
    """The coefficients a of ``loss = -sum_c a_c * logp_c`` for class-index targets t:

        a_c = (1 - eps) * w_t * [c == t] + (eps / C) * w_c,   and a = 0 where t == ignore_index

    and the weighted-mean denominator sum(w_t) over the targets not ignored.
    """
    x, t = input.array, target.array
    xp, C = get_array_module(x), x.shape[1]
    with backend.on_device(input.device):      # CuPy computes and allocates on the current GPU
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= C))
        if backend.is_cpu(xp) or is_anomaly_enabled():     # on a GPU, looking would stop every step
            if bad.any():
                raise IndexError(f"{op}: target {int(t[bad][0])} is out of bounds for {C} classes "
                                 f"(expected 0 <= target < {C}, or ignore_index={ignore_index})")
        safe = xp.where(valid & ~bad, t, 0)
        w = xp.ones(C, dtype=x.dtype) if weight is None else weight.array.astype(x.dtype, copy=False)
        w_t = w[safe] * valid
        onehot = per_channel(xp.arange(C), x.ndim) == safe[:, None]
        coef = (1 - label_smoothing) * onehot * w_t[:, None]
        if label_smoothing:
            coef = coef + (label_smoothing / C) * per_channel(w, x.ndim) * valid[:, None]
        if not backend.is_cpu(xp):       # a target out of range makes its loss NaN (the CPU raises)
            coef = xp.where(bad[:, None], x.dtype.type(numpy.nan), coef)
        return coef.astype(x.dtype, copy=False), w_t.sum()


class SoftmaxCrossEntropy(Function):
    """loss = -sum_c a_c * logp_c per sample, logp = log_softmax(x) along the class axis 1,
    for coefficients a >= 0 (one-hot targets, smoothed, weighted, or probabilities).

    With p = softmax(x) and A = sum_c a_c:   gx = gy * (p * A - a)
    (for a one-hot target, A = 1 and gx = gy * (softmax - onehot)), and ga = -gy * logp.
    Keeps logp and a.
    """

    def composite(self, x, coef, coef_grad):
        """-sum_c a_c logp_c in differentiable ops (for second derivatives)."""
        logp = LogSoftmax.apply(x, 1)        # masked only where a masked class makes it -inf: a
        a = coef.array if isinstance(coef, Tensor) else coef     # an array when no gradient flows to it
        keep = (a != 0) | get_array_module(logp.array).isfinite(logp.array)   # target's gradient is -logp
        return -(coef * ops.where(Tensor(keep), logp, 0.0)).sum(1)

    def forward(self, x, coef, coef_grad):
        xp = get_array_module(x)
        self.logp, self.coef, self.coef_grad = log_softmax_array(x, 1), coef, coef_grad
        # a class with a_c = 0 adds nothing, even when its logit is -inf (a masked class):
        # 0 * logp would be 0 * -inf = nan there
        return -(coef * xp.where(coef != 0, self.logp, 0)).sum(axis=1)

    @once_differentiable
    def backward(self, gy):
        xp = get_array_module(gy)
        gy = gy[:, None]
        total = self.coef.sum(axis=1, keepdims=True)
        gx = gy * (xp.exp(self.logp) * total - self.coef)
        return gx, -gy * self.logp if self.coef_grad else None, None


def _unbatched(loss_fn, input, target, weight, reduction, **options):
    """A (C,) input with a scalar (or (C,)) target, run as a batch of one."""
    loss = loss_fn(input.unsqueeze(0), target.unsqueeze(0), weight, reduction=reduction, **options)
    return loss.reshape(()) if reduction == "none" else loss


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C, d1, ...) or (C,), as
    ``torch.nn.functional.cross_entropy``, as one fused Function.

    ``target``: class indices, an integer tensor (N, d1, ...); entries equal to
    ``ignore_index`` add nothing; or class probabilities, a float tensor of the
    input's shape.  ``weight`` (C,) rescales each class.  ``label_smoothing`` eps mixes
    the target with the uniform distribution: (1 - eps) * target + eps / C.
    'mean' divides by the summed weight of the non-ignored targets (index targets) or by
    the number of samples (probability targets).  When that weight is 0 the mean is nan,
    as in PyTorch, and the gradient 0 (PyTorch's is nan where a target of weight 0 is not
    ignored).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "cross_entropy"
    _check_tensors(op, input=input, target=target, weight=weight)
    _check_options(op, input, reduction, weight=weight)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"{op}: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 1:
        return _unbatched(cross_entropy, input, target, weight, reduction,
                          ignore_index=ignore_index, label_smoothing=label_smoothing)
    _check_class_weight(op, input, weight)
    if target.dtype.kind == "f" and target.shape == input.shape:
        coef = target.to(input.dtype) * (1 - label_smoothing) + label_smoothing / input.shape[1]
        if weight is not None:
            coef = coef * Tensor(per_channel(weight.array, input.ndim))
        loss = SoftmaxCrossEntropy.apply(input, coef, coef.requires_grad)
        return _reduce(loss, reduction)
    _check_index_target(op, input, target)
    coef, total_weight = _index_coefficients(op, input, target, weight, ignore_index, label_smoothing)
    return _reduce(SoftmaxCrossEntropy.apply(input, coef, False), reduction, total_weight)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, d1, ...) or (C,) at the
    class indices ``target`` (N, d1, ...): loss = -w_t * input[t], as
    ``torch.nn.functional.nll_loss``.  gx = -gy * w_t at the target class, 0 elsewhere."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "nll_loss"
    _check_tensors(op, input=input, target=target, weight=weight)
    _check_options(op, input, reduction, weight=weight)
    if input.ndim == 1:
        return _unbatched(nll_loss, input, target, weight, reduction, ignore_index=ignore_index)
    _check_class_weight(op, input, weight)
    _check_index_target(op, input, target)
    coef, total_weight = _index_coefficients(op, input, target, weight, ignore_index, 0.0)
    return _reduce(PickedNLL.apply(input, coef), reduction, total_weight)


class PickedNLL(Function):
    """loss = -sum_c a_c x_c along the class axis 1, for constant coefficients a (w_t at the
    target class, 0 elsewhere).  A class with a_c = 0 adds nothing, even where x_c = -inf (a
    masked log-probability: 0 * -inf would be nan).   gx = -gy a (gy broadcast over the classes).

    Linear in x; as torch's ``nll_loss_backward`` reads x, gx under create_graph is in the
    graph (``_backward_reads_input``), and its derivative in x is 0."""

    _backward_reads_input = True

    def forward(self, x, coef):
        self.coef = coef
        return -(coef * get_array_module(x).where(coef != 0, x, 0)).sum(axis=1)

    def backward(self, gy):
        return -ops.unsqueeze(gy, 1) * Tensor(self.coef), None


# ---------------------------------------------------------------------- elementwise losses

class BCEWithLogits(Function):
    """Binary cross-entropy of logits x against targets t in [0, 1], with pos_weight q:

        loss = -(q t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))
             = (1 - t) x + l * softplus(-x),   l = 1 + (q - 1) t

    with softplus(-x) = max(-x, 0) + log1p(e^-|x|), which never overflows (log-sum-exp).
    Since sigmoid(x) = e^-softplus(-x):
        gx = gy * ((1 - t) - l * (1 - sigmoid(x))) = gy * ((1 - t) + l * expm1(-softplus(-x)))
        gt = gy * (-x + (q - 1) * softplus(-x))
    """

    def composite(self, x, t, pos_weight):
        """(1 - t) x + l softplus(-x) in differentiable ops (for second derivatives)."""
        softplus = Softplus.apply(-x, 1.0, None)     # its gradient is -sigmoid(-x), -1/2 at 0 too
        q = None if pos_weight is None else Tensor(pos_weight.array if isinstance(pos_weight, Tensor) else pos_weight)
        return (1 - t) * x + (softplus if q is None else (1 + (q - 1) * t) * softplus)

    def forward(self, x, t, pos_weight):
        xp = get_array_module(x)
        self.softplus = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        self.x, self.t, self.pos_weight = x, t, pos_weight
        return (1 - t) * x + self._l() * self.softplus

    def _l(self):
        return 1 if self.pos_weight is None else 1 + (self.pos_weight - 1) * self.t

    @once_differentiable
    def backward(self, gy):
        xp = get_array_module(gy)
        gx = gy * ((1 - self.t) + self._l() * xp.expm1(-self.softplus))
        gt = -self.x if self.pos_weight is None else -self.x + (self.pos_weight - 1) * self.softplus
        return gx, gy * gt, None


def _check_same_shape(op, input, target):
    if target.shape != input.shape:
        raise ValueError(f"{op}: target size {target.shape} must be the same as input size {input.shape}")


def _check_broadcasts(op, name, t, shape):
    try:
        ok = t is None or numpy.broadcast_shapes(t.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: {name} of shape {t.shape} does not broadcast to the input shape {shape}")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable Function, as
    ``torch.nn.functional.binary_cross_entropy_with_logits`` (multi-label heads).

    ``target``: floats in [0, 1] of the input's shape.  ``weight`` rescales each element
    (broadcast to the input).  ``pos_weight`` weighs the positive term, broadcast over
    the last dim (one value per class for (N, C) logits): > 1 raises recall.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy_with_logits"
    _check_tensors(op, input=input, target=target, weight=weight, pos_weight=pos_weight)
    _check_options(op, input, reduction, weight=weight, pos_weight=pos_weight)
    if target.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point target (probabilities in [0, 1]), got {target.dtype}")
    _check_same_shape(op, input, target)
    _check_broadcasts(op, "weight", weight, input.shape)
    _check_broadcasts(op, "pos_weight", pos_weight, input.shape)
    q = None if pos_weight is None else pos_weight.to(input.dtype).array
    loss = BCEWithLogits.apply(input, target.to(input.dtype), q)
    if weight is not None:
        loss = loss * weight.to(input.dtype)
    return _reduce(loss, reduction)


BCE_EPS = float(numpy.float32(1e-12))     # torch's EPSILON of the BCE kernels (a float: 9.99999996e-13)


class BinaryCrossEntropy(Function):
    """loss = -(t max(log x, -100) + (1 - t) max(log1p(-x), -100)) for probabilities x and
    targets t in [0, 1], as torch's kernel (the clamp keeps x = 0 or 1 finite):

        gx = gy (x - t) / max(x (1 - x), eps)     (``BinaryCrossEntropyBackward``)
        gt = -gy logit(x) = -gy log(x / (1 - x))

    with torch's eps = 1e-12 in gx's denominator, so x = 0 or 1 (sigmoid(20) is 1 in float32)
    gives a large finite gradient instead of 0/0; gt is torch's too, +-inf at x = 0 or 1.
    """

    def forward(self, x, t):
        xp = get_array_module(x)
        self.save_for_backward(x, t)
        with numpy.errstate(divide="ignore"):            # log 0 = -inf, clamped at -100
            log_x, log_1mx = xp.maximum(xp.log(x), -100), xp.maximum(xp.log1p(-x), -100)
        return ((t - 1) * log_1mx - t * log_x).astype(x.dtype, copy=False)

    def backward(self, gy):
        x, t = self.saved_tensors
        gx = BinaryCrossEntropyBackward.apply(gy, x, t) if self.needs_input_grad[0] else None
        if not self.needs_input_grad[1]:
            return gx, None
        return gx, -gy * Logit.apply(x)


class Logit(Function):
    """y = log(x / (1 - x)) (+-inf at x = 1 and 0).   gx = gy / (x (1 - x)), as torch's
    ``logit_backward`` (inf at 0 and 1, where the composite log of a quotient gives nan)."""

    def forward(self, x):
        self.save_for_backward(x)
        with numpy.errstate(divide="ignore"):
            return get_array_module(x).log(x / (1 - x))

    def backward(self, gy):
        x, = self.saved_tensors
        with numpy.errstate(divide="ignore"):
            return gy / (x * (1 - x))


class BinaryCrossEntropyBackward(Function):
    """gx = g (x - t) / max(x (1 - x), eps), the gradient of ``BinaryCrossEntropy``, as an op
    of its own so that its derivatives are torch's (``binary_cross_entropy_double_backward``),
    finite at x = 0 and 1:

        d/dg = (x - t) / ((x + eps) (1 - x + eps))
        d/dx = g (x^2 - 2 x t + t) / ((x + eps)^2 (1 - x + eps)^2)
        d/dt = -g / max(x (1 - x), eps)

    (torch's eps is the double 1e-12 here, and the float 1e-12 in the first derivative.)
    """

    def forward(self, g, x, t):
        self.save_for_backward(g, x, t)
        return g * (x - t) / get_array_module(x).maximum((1 - x) * x, x.dtype.type(BCE_EPS))

    def backward(self, ggx):
        g, x, t = self.saved_tensors
        need_g, need_x, need_t = self.needs_input_grad
        eps = 1e-12
        inner = (x + eps) * (1 - x + eps)
        return (ggx * (x - t) / inner if need_g else None,
                ggx * g * (x * x - 2 * x * t + t) / (inner * inner) if need_x else None,
                -ggx * g / ops.clamp((1 - x) * x, min=eps) if need_t else None)


def binary_cross_entropy_elementwise(op, input, target):
    """Each element's ``BinaryCrossEntropy`` (the caller reduces), the inputs checked as torch does."""
    for name, t in (("input", input), ("target", target)):
        a = t.array
        with backend.on_device(t.device):
            if backend.is_cpu(get_array_module(a)) or is_anomaly_enabled():    # on a GPU, looking stops the step
                if bool((~((a >= 0) & (a <= 1))).any()):        # NaN too
                    raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1")
    return BinaryCrossEntropy.apply(input, target)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error (x - t)^2, as ``torch.nn.functional.mse_loss`` (shapes must match).
    Composed from ops: gx = 2 gy (x - t), gt = -gx."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "mse_loss"
    _check_tensors(op, input=input, target=target)
    _check_options(op, input, reduction)
    _check_same_shape(op, input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)
