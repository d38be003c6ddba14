"""Loss modules, as ``torch.nn``'s: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``,
``L1Loss``, ``SmoothL1Loss``, ``HuberLoss``, ``BCELoss``, ``BCEWithLogitsLoss``, ``KLDivLoss``,
``MarginRankingLoss``, ``HingeEmbeddingLoss``, ``CosineEmbeddingLoss``, ``SoftMarginLoss``,
``MultiLabelSoftMarginLoss``, ``MultiMarginLoss``, ``MultiLabelMarginLoss``, ``TripletMarginLoss``,
``TripletMarginWithDistanceLoss``, ``GaussianNLLLoss``, ``PoissonNLLLoss``.

Each module holds its options (and, as torch's, its ``weight``/``pos_weight`` as buffers,
so they follow ``.to()`` and appear in ``state_dict``) and calls its function.  Four of the
functions are in ``nn.functional.loss`` (one Function each, hand-written backward); the
others are here, composed of tensor ops (``abs``, ``where``, ``clamp``, ``log``, ...),
so their backward is the ops' and they are twice differentiable with no extra code
(x input, t target, y = +-1 a label, d a distance, [.]+ = max(., 0)):

    l1_loss         |x - t|
    smooth_l1_loss  0.5 (x - t)^2 / beta  where |x - t| < beta,  else |x - t| - 0.5 beta
    huber_loss      0.5 (x - t)^2  where |x - t| < delta,  else delta (|x - t| - 0.5 delta)
    binary_cross_entropy   -w (t max(log x, -100) + (1 - t) max(log(1 - x), -100))  (one Function,
                           in nn.functional.loss: torch's eps in its gradient)
    kl_div          t (log t - x)   (0 where t = 0);   with log_target: e^t (t - x)
    margin_ranking_loss    [-y (x1 - x2) + margin]+
    hinge_embedding_loss   x where y = 1,  [margin - x]+ where y = -1
    cosine_embedding_loss  1 - cos(x1, x2) where y = 1,  [cos(x1, x2) - margin]+ where y = -1
    soft_margin_loss       log(1 + e^(-y x))
    multilabel_soft_margin_loss  -mean_c w_c (t_c log sigmoid(x_c) + (1 - t_c) log sigmoid(-x_c))
    multi_margin_loss      sum_{c != y} w_y [margin - x_y + x_c]+^p / C          (p = 1 or 2)
    multilabel_margin_loss sum_{j listed, c not listed} [1 - x_j + x_c]+ / C     (targets end at -1)
    triplet_margin_loss    [margin + d(a, p) - d(a, n)]+,  d = pairwise_distance (or a function given)
    gaussian_nll_loss      0.5 (log max(var, eps) + (x - t)^2 / max(var, eps))  (+ 0.5 log 2 pi)
    poisson_nll_loss       e^x - t x   (log_input=False: x - t log(x + eps));  full: + Stirling's
                           t log t - t + 0.5 log(2 pi t) where t > 1

``tinyres/nn/__init__.py`` also installs these (the names in ``FUNCTIONS``) as
``tinyres.nn.functional.<name>``, as torch spells them (they are not in
``nn.functional.__all__``, which lists the Functions of the layer ops).

Shapes as torch: BCE losses need the target's shape; ``mse_loss``, ``l1_loss``,
``smooth_l1_loss`` and ``kl_div`` broadcast a target of another shape (the first three
warn, as torch does) and raise ``RuntimeError`` when the shapes do not broadcast; so do the
margin, embedding and NLL losses (without the warning).  An unknown ``reduction`` is torch's
``ValueError("<r> is not a valid value for reduction")``, raised when the loss is computed,
with the loss's name in front.  Class-index targets out of range raise on the CPU (on a GPU
only under ``detect_anomaly``: looking would stop every step; there they make the loss NaN).
"""
import math
import numbers
import warnings

import numpy

from ..core import backend, ops
from ..core.backend import get_array_module
from ..core.grad_mode import is_anomaly_enabled
from ..core.tensor import Tensor
from . import functional as F
from .functional.loss import _legacy_reduction, binary_cross_entropy_elementwise
from .layers import PairwiseDistance
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
           "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
           "TripletMarginLoss", "TripletMarginWithDistanceLoss", "GaussianNLLLoss", "PoissonNLLLoss"]

FUNCTIONS = ("l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "kl_div",    # installed on F
             "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss", "soft_margin_loss",
             "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss", "triplet_margin_loss",
             "triplet_margin_with_distance_loss", "gaussian_nll_loss", "poisson_nll_loss")


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


# ---------------------------------------------------------------------- margin, embedding and NLL losses
# (torch.nn's other losses; each composed of ops as the ones above)

def _check_args(op, floats, **tensors):
    """Each argument a Tensor; those named in ``floats`` floating point."""
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if name in floats and t.dtype.kind != "f":
            raise TypeError(f"{op}: expected a floating point {name}, got {t.dtype}")


def _broadcast_shape(op, **shapes):
    """The shape the named shapes broadcast to; torch's RuntimeError when they do not."""
    try:
        return numpy.broadcast_shapes(*shapes.values())
    except ValueError:
        given = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise RuntimeError(f"{op}: the sizes of {given} do not broadcast together") from None


def _check_on_host(xp):
    """Whether to look at values (an index in range, a variance >= 0): always on the CPU; on a
    GPU only under ``detect_anomaly``, since looking would make every step wait for the device."""
    return backend.is_cpu(xp) or is_anomaly_enabled()


def _log_sigmoid(x):
    """log sigmoid(x) = min(x, 0) - log(1 + e^-|x|), torch's stable form (e^-|x| <= 1 never
    overflows).  -|x| is written where(x < 0, x, -x), so the slope at x = 0 is sigmoid(0) = 1/2,
    torch's, where abs's 0 there would give 0."""
    negative = x < 0
    return ops.where(negative, x, 0.0) - ops.log1p(ops.exp(ops.where(negative, x, -x)))


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """[-y (x1 - x2) + margin]+, as ``torch.nn.functional.margin_ranking_loss``: y = 1 asks
    for x1 above x2 by ``margin``, y = -1 for x2 above x1.  gx1 = -gy y where
    -y (x1 - x2) + margin >= 0 (torch's clamp passes a tie), else 0; gx2 = -gx1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "margin_ranking_loss"
    _check_args(op, ("input1", "input2"), input1=input1, input2=input2, target=target)
    _check_reduction(op, reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(f"{op} : All input tensors should have same dimension but got sizes: input1: "
                           f"{input1.shape}, input2: {input2.shape}, target: {target.shape}")
    _broadcast_shape(op, input1=input1.shape, input2=input2.shape, target=target.shape)
    return _reduce(ops.clamp(-target * (input1 - input2) + margin, min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """As ``torch.nn.functional.hinge_embedding_loss``: x where y = 1, [margin - x]+ where
    y = -1 (torch's two terms: the first where y != -1, the second where y != 1, so a label
    other than +-1 gets both).  ``input`` is typically a distance.  The target gets no gradient."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "hinge_embedding_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    _broadcast_shape(op, input=input.shape, target=target.shape)
    loss = (ops.where(target != 1, ops.clamp(margin - input, min=0), 0.0)
            + ops.where(target != -1, input, 0.0))
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """As ``torch.nn.functional.cosine_embedding_loss``: with
    cos = sum(x1 x2) / sqrt((sum(x1^2) + 1e-12)(sum(x2^2) + 1e-12)) over the last dim (torch's
    1e-12), 1 - cos where y = 1 and [cos - margin]+ where y = -1 (0 for any other label).
    Inputs (N, D) with a target (N,), or (D,) with a 0-d target."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "cosine_embedding_loss"
    _check_args(op, ("input1", "input2"), input1=input1, input2=input2, target=target)
    _check_reduction(op, reduction)
    if target.ndim > 1:
        raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not supported "
                           f"(got a target of shape {target.shape})")
    if not input1.ndim == input2.ndim == target.ndim + 1:
        raise RuntimeError(f"{op}: {target.ndim}D target tensor expects {target.ndim + 1}D input tensors, but found "
                           f"inputs with sizes {input1.shape} and {input2.shape}.")
    shape = _broadcast_shape(op, input1=input1.shape, input2=input2.shape)
    _broadcast_shape(op, **{"the inputs' batch": shape[:-1], "target": target.shape})
    dim, eps = target.ndim, 1e-12
    dot = (input1 * input2).sum(dim)
    cos = dot / ops.sqrt(((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps))
    loss = ops.where(target == 1, 1 - cos, 0.0) + ops.where(target == -1, ops.clamp(cos - margin, min=0), 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + e^(-y x)), the logistic loss of labels y = +-1, as
    ``torch.nn.functional.soft_margin_loss`` (torch's log1p(exp(.))).  gx = -gy y sigmoid(-y x)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "soft_margin_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    _broadcast_shape(op, input=input.shape, target=target.shape)
    return _reduce(ops.log1p(ops.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """As ``torch.nn.functional.multilabel_soft_margin_loss``: per sample,
    -(1/C) sum_c w_c (t_c log sigmoid(x_c) + (1 - t_c) log sigmoid(-x_c)) over the last (class)
    dim of (N, C) or (C,) -- binary cross-entropy with logits, averaged over the classes.
    gx = gy w (sigmoid(x) - t) / C."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "multilabel_soft_margin_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    if input.ndim == 0:
        raise IndexError(f"{op}: expected an input with a class dim (its last), got a 0-d input")
    shapes = dict(input=input.shape, target=target.shape)
    if weight is not None:
        _check_args(op, (), weight=weight)
        shapes["weight"] = weight.shape
    _broadcast_shape(op, **shapes)
    loss = -(target * _log_sigmoid(input) + (1 - target) * _log_sigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    return _reduce(loss.sum(class_dim) / input.shape[class_dim], reduction)


def _class_rows(op, input, target):
    """(N, C) and N for the class-index losses' inputs (N, C), (C,) or () (torch's shapes)."""
    n = input.ndim
    if not ((n == 2 and input.shape[1] != 0) or (n == 1 and input.shape[0] != 0) or n == 0):
        raise RuntimeError(f"{op}: Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {input.shape}")
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected an integer (class index) target, got {target.dtype}")
    rows, classes = (1 if n <= 1 else input.shape[0]), (1 if n == 0 else input.shape[-1])
    return input.reshape(rows, classes), rows, classes


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """The multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``: for each
    sample of class y (input (N, C) with target (N,), or (C,) with one class index),
    sum_{c != y} w_y [margin - x_y + x_c]+^p / C, with p 1 or 2 and class weights w
    (default 1).  A term at exactly 0 gets no gradient (torch's strict z > 0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "multi_margin_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported (got p={p})")
    if weight is not None:
        _check_args(op, (), weight=weight)
        if weight.ndim != 1:
            raise ValueError(f"{op}: weight must be one-dimensional, got shape {weight.shape}")
    x, rows, classes = _class_rows(op, input, target)
    if target.ndim > 1 or target.numel() != rows:
        raise RuntimeError(f"{op}: target tensor should be 1-D with size equal to the number of input samples "
                           f"(batch size). Expected target size ({rows},), but got {target.shape}. "
                           f"Input has shape {input.shape}.")
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"{op}: inconsistent weight size, expected {classes} but got {weight.shape}")
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        t = target.array.reshape(rows)
        bad = (t < 0) | (t >= classes)
        if _check_on_host(xp) and bool(bad.any()):
            raise RuntimeError(f"{op}: target out of range: expected 0 <= target < {classes}, got {int(t[bad][0])}")
        safe = xp.where(bad, 0, t)
        others = Tensor(xp.arange(classes) != safe[:, None])        # (N, C): every class but the target
        nan_where_bad = Tensor(xp.where(bad, xp.nan, 0).astype(x.dtype))
    x_y = ops.getitem(x, (xp.arange(rows), safe)).reshape(rows, 1)
    z = margin - x_y + x
    h = z if p == 1 else z * z
    h = ops.where((z > 0).logical_and(others), h, 0.0)
    if weight is not None:
        h = h * ops.getitem(weight.to(x.dtype), safe).reshape(rows, 1)
    loss = h.sum(1) / classes + nan_where_bad
    return _reduce(loss.reshape(target.shape), reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """The multi-label hinge loss, as ``torch.nn.functional.multilabel_margin_loss``.  Each
    row of ``target`` (the input's shape, (N, C) or (C,)) lists class indices and ends at the
    first -1 (what follows is ignored); the loss of a sample is
    sum over listed j and unlisted c of [1 - x_j + x_c]+, over C.  A class listed twice counts
    twice (as torch's loop).  Here: z = 1 - x_j + x_c for every pair (an (N, C, C) tensor),
    times how often j is listed and whether c is not."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "multilabel_margin_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    x, rows, classes = _class_rows(op, input, target)
    fits = (target.ndim == 2 and target.shape == (rows, classes)) if input.ndim == 2 else \
        (target.ndim <= 1 and target.numel() == classes)
    if not fits:
        raise RuntimeError(f"{op}: inconsistent target size: {target.shape} for input of size: {input.shape}")
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        t = target.array.reshape(rows, classes)
        bad = (t < -1) | (t >= classes)
        if _check_on_host(xp) and bool(bad.any()):
            raise RuntimeError(f"{op}: argument #2 'target' is out of range: expected -1 <= target < {classes}, "
                               f"got {int(t[bad][0])}")
        listed = xp.cumprod(t >= 0, axis=1).astype(bool)                # the entries before the first -1
        count = (listed[:, :, None] & (t[:, :, None] == xp.arange(classes))).sum(1)     # (N, C): times listed
        pairs = count[:, :, None] * (count == 0)[:, None, :]            # (N, j, c): j listed, c not
        pairs = Tensor(pairs.astype(x.dtype))
        nan_where_bad = Tensor(xp.where(bad.any(1), xp.nan, 0).astype(x.dtype))
    z = 1 - x.reshape(rows, classes, 1) + x.reshape(rows, 1, classes)
    loss = ops.where((z > 0).logical_and(pairs > 0), z * pairs, 0.0).sum((1, 2)) / classes + nan_where_bad
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def _triplet(op, anchor, positive, negative, distance, margin, swap, reduction):
    """[margin + d(a, p) - d(a, n)]+, with d(a, n) replaced by min(d(a, n), d(p, n)) under
    ``swap`` (a tie in min shares the gradient, as torch's)."""
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"{op}: The anchor, positive, and negative tensors are expected to have the same number "
                           f"of dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    d_pos, d_neg = distance(anchor, positive), distance(anchor, negative)
    if swap:
        d_neg = ops.minimum(d_neg, distance(positive, negative))
    return _reduce(ops.clamp(margin + d_pos - d_neg, min=0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """As ``torch.nn.functional.triplet_margin_loss``: [margin + d(a, p) - d(a, n)]+ with
    d = ``pairwise_distance(., ., p, eps)`` = ||x1 - x2 + eps||_p over the last dim; ``swap``
    uses min(d(a, n), d(p, n)) for the negative's distance."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "triplet_margin_loss"
    _check_args(op, ("anchor", "positive", "negative"), anchor=anchor, positive=positive, negative=negative)
    _check_reduction(op, reduction)
    if anchor.ndim == positive.ndim == negative.ndim:
        _broadcast_shape(op, anchor=anchor.shape, positive=positive.shape, negative=negative.shape)
    return _triplet(op, anchor, positive, negative, lambda x1, x2: F.pairwise_distance(x1, x2, p, eps),
                    margin, swap, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """``triplet_margin_loss`` with any distance: ``distance_function(x1, x2)`` (default
    ``pairwise_distance``, p = 2) gives one distance per sample, as
    ``torch.nn.functional.triplet_margin_with_distance_loss``."""
    op = "triplet_margin_with_distance_loss"
    _check_args(op, (), anchor=anchor, positive=positive, negative=negative)
    _check_reduction(op, reduction)
    return _triplet(op, anchor, positive, negative, distance_function or F.pairwise_distance, margin, swap,
                    reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """The negative log-likelihood of ``target`` under N(input, var), as
    ``torch.nn.functional.gaussian_nll_loss``: 0.5 (log v + (x - t)^2 / v) with v = max(var, eps)
    (+ 0.5 log(2 pi) with ``full``).  ``var`` has the input's shape, or it with the last dim
    dropped or of size 1 (one variance per sample), or one dim of size 1; or it is a number.
    As torch's, the clamp changes the value only: var gets the gradient at v, not 0 where
    var < eps (``var + (max(var, eps) - var).detach()``)."""
    op = "gaussian_nll_loss"
    _check_args(op, ("input",), input=input, target=target)
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries (got var={var})")
        var = input.detach().new_full(input.shape, float(var))
    else:
        _check_args(op, ("var",), var=var)
        with backend.on_device(var.device):
            if _check_on_host(get_array_module(var.array)) and bool((var.array < 0).any()):
                raise ValueError(f"{op}: var has negative entry/entries")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:                       # one variance per sample: (N, D) and (N,)
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ValueError(f"{op}: var is of incorrect size: expected the input's {input.shape}, it without its "
                             f"last dim, or it with one dim of size 1; got {var.shape}")
    _check_reduction(op, reduction)
    _broadcast_shape(op, input=input.shape, target=target.shape)
    var = var + (ops.clamp(var, min=eps) - var).detach()
    loss = 0.5 * (ops.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """The negative log-likelihood of counts ``target`` under Poisson(rate), as
    ``torch.nn.functional.poisson_nll_loss``, without the constant log(t!):
    e^x - t x for a log-rate x (``log_input``, the default), else x - t log(x + eps) for a rate x.
    ``full`` adds Stirling's approximation of log(t!), t log t - t + 0.5 log(2 pi t), where
    t > 1 (0 elsewhere, with no gradient there)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "poisson_nll_loss"
    _check_args(op, ("input",), input=input, target=target)
    _check_reduction(op, reduction)
    _broadcast_shape(op, input=input.shape, target=target.shape)
    loss = ops.exp(input) - target * input if log_input else input - target * ops.log(input + eps)
    if full:
        above_one = target > 1
        t = ops.where(above_one, target, 1.0)                   # log is taken only where t > 1
        loss = loss + ops.where(above_one, t * ops.log(t) - t + 0.5 * ops.log(2 * math.pi * t), 0.0)
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


class MarginRankingLoss(_Loss):
    """``margin_ranking_loss``, as ``torch.nn.MarginRankingLoss`` (``margin`` defaults to 0)."""

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``hinge_embedding_loss``, as ``torch.nn.HingeEmbeddingLoss`` (``margin`` defaults to 1)."""

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``cosine_embedding_loss``, as ``torch.nn.CosineEmbeddingLoss`` (``margin`` defaults to 0)."""

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``soft_margin_loss``, as ``torch.nn.SoftMarginLoss``."""

    def forward(self, input, target):
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """``multilabel_soft_margin_loss``, as ``torch.nn.MultiLabelSoftMarginLoss``; ``weight``
    (one per class) is a buffer."""

    def forward(self, input, target):
        return multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """``multi_margin_loss``, as ``torch.nn.MultiMarginLoss`` (p = 1 or 2, ``margin`` 1);
    ``weight`` (one per class) is a buffer."""

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 supported (got p={p})")
        if weight is not None and weight.ndim != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {weight.ndim}D instead")
        self.p = p
        self.margin = margin

    def forward(self, input, target):
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """``multilabel_margin_loss``, as ``torch.nn.MultiLabelMarginLoss`` (targets end at -1)."""

    def forward(self, input, target):
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``triplet_margin_loss``, as ``torch.nn.TripletMarginLoss``."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                   swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``triplet_margin_with_distance_loss``, as ``torch.nn.TripletMarginWithDistanceLoss``:
    without a ``distance_function`` it holds a ``PairwiseDistance()`` (a child module, as torch's)."""

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(reduction=reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             "instead")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_with_distance_loss(anchor, positive, negative, distance_function=self.distance_function,
                                                 margin=self.margin, swap=self.swap, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """``gaussian_nll_loss``, as ``torch.nn.GaussianNLLLoss`` (keyword-only options);
    ``forward(input, target, var)``."""

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full = full
        self.eps = eps

    def forward(self, input, target, var):
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """``poisson_nll_loss``, as ``torch.nn.PoissonNLLLoss`` (``log_input`` True: the input is
    the log of the rate)."""

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)
