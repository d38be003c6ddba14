"""Loss modules, as ``torch.nn``'s: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``,
``L1Loss``, ``SmoothL1Loss``, ``HuberLoss``, ``BCELoss``, ``BCEWithLogitsLoss``, ``KLDivLoss``.

Each module holds its options (and, as torch's, its ``weight``/``pos_weight`` as buffers,
so they follow ``.to()`` and appear in ``state_dict``) and calls its function.  Four of the
functions are in ``nn.functional.loss`` (one Function each, hand-written backward); the
other five are here, composed of tensor ops (``abs``, ``where``, ``clamp``, ``log``, ...),
so their backward is the ops' and they are twice differentiable with no extra code:

    l1_loss         |x - t|
    smooth_l1_loss  0.5 (x - t)^2 / beta  where |x - t| < beta,  else |x - t| - 0.5 beta
    huber_loss      0.5 (x - t)^2  where |x - t| < delta,  else delta (|x - t| - 0.5 delta)
    binary_cross_entropy   -w (t max(log x, -100) + (1 - t) max(log(1 - x), -100))  (one Function,
                           in nn.functional.loss: torch's eps in its gradient)
    kl_div          t (log t - x)   (0 where t = 0);   with log_target: e^t (t - x)

``tinyres/nn/__init__.py`` also installs these five as ``tinyres.nn.functional.<name>``,
as torch spells them (they are not in ``nn.functional.__all__``, which lists the
Functions of the layer ops).

Shapes as torch: BCE losses need the target's shape; ``mse_loss``, ``l1_loss``,
``smooth_l1_loss`` and ``kl_div`` broadcast a target of another shape (the first three
warn, as torch does) and raise ``RuntimeError`` when the shapes do not broadcast.  An
unknown ``reduction`` is torch's ``ValueError("<r> is not a valid value for reduction")``,
raised when the loss is computed, with the loss's name in front.
"""
import warnings

import numpy

from ..core import ops
from ..core.tensor import Tensor
from . import functional as F
from .functional.loss import _legacy_reduction, binary_cross_entropy_elementwise
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss"]

FUNCTIONS = ("l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "kl_div")    # installed on F


# ---------------------------------------------------------------------- helpers

def _check_reduction(op, reduction, allowed=("mean", "sum", "none")):
    if reduction not in allowed:
        raise ValueError(f"{op}: {reduction} is not a valid value for reduction "
                         f"(expected {', '.join(repr(r) for r in allowed)})")


def _check_pair(op, input, target):
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")


def _broadcast_pair(op, input, target, warn=True):
    """``input`` and ``target`` broadcast to one shape, as torch's elementwise losses do
    (with its warning); RuntimeError when they do not broadcast."""
    if input.shape == target.shape:
        return input, target
    try:
        shape = numpy.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise RuntimeError(f"{op}: the target size {target.shape} does not broadcast with the input size "
                           f"{input.shape}") from None
    if warn:
        warnings.warn(f"{op}: Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=3)
    return ops.broadcast_to(input, shape), ops.broadcast_to(target, shape)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return ops.sum(loss) if reduction == "sum" else ops.mean(loss)


# ---------------------------------------------------------------------- the functions composed of ops

def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error |x - t|, as ``torch.nn.functional.l1_loss``.
    gx = gy sign(x - t) (0 where x = t, as torch), gt = -gx."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "l1_loss"
    _check_pair(op, input, target)
    _check_reduction(op, reduction)
    input, target = _broadcast_pair(op, input, target)
    return _reduce(ops.abs(input - target), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Huber-like loss, as ``torch.nn.functional.smooth_l1_loss``: with d = |x - t|,
    0.5 d^2 / beta where d < beta, else d - 0.5 beta (beta = 0: ``l1_loss``).
    gx = gy (x - t) / beta inside, gy sign(x - t) outside."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "smooth_l1_loss"
    _check_pair(op, input, target)
    _check_reduction(op, reduction)
    if beta < 0:
        raise RuntimeError(f"{op} does not support negative values for beta (got beta={beta})")
    input, target = _broadcast_pair(op, input, target)
    diff = ops.abs(input - target)
    if beta == 0:
        return _reduce(diff, reduction)
    loss = ops.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """As ``torch.nn.functional.huber_loss``: with d = x - t, 0.5 d^2 where |d| < delta, else
    delta (|d| - 0.5 delta) -- ``smooth_l1_loss`` times delta (beta = delta).  ``weight`` (the
    input's shape) multiplies each element's loss before the reduction.
    gx = gy d inside, gy delta sign(d) outside."""
    op = "huber_loss"
    _check_pair(op, input, target)
    _check_reduction(op, reduction)
    if delta <= 0:
        raise RuntimeError(f"{op} does not support non-positive values for delta (got delta={delta})")
    if weight is not None and (not isinstance(weight, Tensor) or weight.shape != input.shape):
        raise ValueError(f"{op}: Weights and input must have the same size, got weight "
                         f"{getattr(weight, 'shape', type(weight).__name__)} for input {input.shape}")
    input, target = _broadcast_pair(op, input, target)
    loss = delta * smooth_l1_loss(input, target, reduction="none", beta=delta)     # torch's own identity
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Binary cross-entropy of probabilities x in [0, 1], as
    ``torch.nn.functional.binary_cross_entropy``:
    -w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as torch does, so x = 0 or
    1 gives a finite loss.  gx = gy w (x - t) / max(x (1 - x), 1e-12), torch's, finite at 0 and 1 too.
    Prefer ``binary_cross_entropy_with_logits`` (stable) when you have logits."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy"
    _check_pair(op, input, target)
    _check_reduction(op, reduction)
    if target.shape != input.shape:
        raise ValueError(f"{op}: Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    loss = binary_cross_entropy_elementwise(op, input, target.to(input.dtype))    # torch's kernel, its eps
    if weight is not None:
        try:
            numpy.broadcast_shapes(weight.shape, input.shape)
        except ValueError:
            raise RuntimeError(f"{op}: weight of shape {weight.shape} does not broadcast to the input "
                               f"shape {input.shape}") from None
        loss = loss * weight.to(input.dtype)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of log-probabilities ``input`` from ``target``, as
    ``torch.nn.functional.kl_div``: pointwise t (log t - x) (0 where t = 0), or with
    ``log_target`` e^t (t - x).  'batchmean' divides the sum by the batch size
    (the KL divergence per sample); 'mean', torch's default, by the number of elements
    (torch warns about it, and so does this).  gx = -gy t (or -gy e^t)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "kl_div"
    _check_pair(op, input, target)
    _check_reduction(op, reduction, ("none", "batchmean", "sum", "mean"))
    input, target = _broadcast_pair(op, input, target, warn=False)
    target = target.to(input.dtype)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        positive = target > 0
        safe = ops.where(positive, target, 1.0)               # log is taken only where t > 0
        loss = ops.where(positive, target * (ops.log(safe) - input), 0.0)
    if reduction == "batchmean":
        total = ops.sum(loss)
        return total / input.shape[0] if input.ndim else total
    if reduction == "mean":
        warnings.warn("kl_div: reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size. 'batchmean' divides only by the batch size, and aligns with the KL div "
                      "math definition. 'mean' will be changed to behave the same as 'batchmean' in the "
                      "next major release.", UserWarning, stacklevel=2)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- the modules

class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """``F.cross_entropy`` of logits (N, C, d1, ...) and class indices (N, d1, ...) or
    class probabilities (the input's shape), as ``torch.nn.CrossEntropyLoss``."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        _check_reduction("CrossEntropyLoss", self.reduction)
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """``F.nll_loss`` of log-probabilities, as ``torch.nn.NLLLoss``."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        _check_reduction("NLLLoss", self.reduction)
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """``F.mse_loss``, as ``torch.nn.MSELoss``; a target of another shape is broadcast with
    torch's warning."""

    def forward(self, input, target):
        op = "MSELoss"
        _check_pair(op, input, target)
        _check_reduction(op, self.reduction)
        input, target = _broadcast_pair(op, input, target)
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """``l1_loss``, as ``torch.nn.L1Loss``."""

    def forward(self, input, target):
        return l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """``smooth_l1_loss``, as ``torch.nn.SmoothL1Loss`` (``beta`` defaults to 1)."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """``huber_loss``, as ``torch.nn.HuberLoss`` (``delta`` defaults to 1)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """``binary_cross_entropy`` of probabilities, as ``torch.nn.BCELoss``."""

    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``F.binary_cross_entropy_with_logits``, as ``torch.nn.BCEWithLogitsLoss``;
    ``weight`` and ``pos_weight`` are buffers."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        _check_reduction("BCEWithLogitsLoss", self.reduction)
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """``kl_div``, as ``torch.nn.KLDivLoss`` (use ``reduction='batchmean'``)."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
