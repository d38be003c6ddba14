"""Losses over a grid of reduction, weight, ignore_index, label smoothing and spatial
targets: PyTorch on the same inputs (values and gradients), finite differences,
stability for logits of +-1e4, errors."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy

import tinyres
from helpers import gradcheck  # the suite's tight tolerances
from tinyres.nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]
CLASS_SHAPES = [(5, 4), (3, 4, 2), (2, 3, 2, 2), (1, 3)]    # (N, C, d1, ...)
# float64 with contiguous inputs, float32 with strided ones; float32 at rtol 1e-4
DTYPES = [(np.float64, True, {}), (np.float32, False, dict(rtol=1e-4, atol=1e-5))]


def index_target(shape, ignore, seed=0):
    """Class indices for an input of ``shape``; with ``ignore``, about a third set to it."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    if ignore is not None:
        t[rng.random(t.shape) < 0.35] = ignore
    return t


def class_weight(c, weighted):
    return np.random.default_rng(4).random(c) + 0.2 if weighted else None


def frameworks(weight, dtype):
    """The class weight as a constant tensor of each library (None stays None)."""
    if weight is None:
        return None, None
    return tinyres.tensor(weight.astype(dtype)), torch and torch.tensor(weight.astype(dtype))   # None without torch


def leaves(*arrays):
    return [tinyres.tensor(a, requires_grad=True) for a in arrays]


# ---------------------------------------------------------------- cross_entropy

# (weighted, ignore_index, label_smoothing, precision); ignore_index None: no target is ignored
CE_CASES = [(False, None, 0.0, DTYPES[0]), (True, None, 0.0, DTYPES[0]), (False, -100, 0.25, DTYPES[0]),
            (True, -100, 0.0, DTYPES[0]), (True, 1, 0.25, DTYPES[0]),
            (False, -100, 0.0, DTYPES[1]), (True, -100, 0.25, DTYPES[1])]


@needs_torch
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("weighted, ignore_index, label_smoothing, precision", CE_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(shape, weighted, ignore_index, label_smoothing, precision, reduction):
    dtype, contiguous, tol = precision
    target = index_target(shape, ignore_index)
    tw, pw = frameworks(class_weight(shape[1], weighted), dtype)
    opts = dict(ignore_index=-100 if ignore_index is None else ignore_index, reduction=reduction,
                label_smoothing=label_smoothing)
    compare_with_torch(lambda x, t: F.cross_entropy(x, t, tw, **opts),
                       lambda x, t: TF.cross_entropy(x, t, pw, **opts),
                       [randn(*shape, dtype=dtype), target], contiguous=contiguous, **tol)


@pytest.mark.parametrize("shape", CLASS_SHAPES[:3])
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.0), (True, 0.3)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_gradcheck(shape, weighted, label_smoothing, reduction):
    target = tinyres.tensor(index_target(shape, -100, seed=1))
    weight, _ = frameworks(class_weight(shape[1], weighted), np.float64)
    gradcheck(lambda x: F.cross_entropy(x, target, weight, reduction=reduction, label_smoothing=label_smoothing),
              leaves(randn(*shape, seed=2)))


@needs_torch
@pytest.mark.parametrize("shape", CLASS_SHAPES[:3])
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype, contiguous, tol", DTYPES)
def test_cross_entropy_with_probability_targets_matches_torch(shape, weighted, label_smoothing, reduction,
                                                              dtype, contiguous, tol):
    """The target's gradient is compared too (compare_with_torch gives every float input grad)."""
    tw, pw = frameworks(class_weight(shape[1], weighted), dtype)
    probs = np.random.default_rng(3).dirichlet(np.ones(shape[1]), (shape[0],) + shape[2:])
    probs = np.moveaxis(probs, -1, 1).astype(dtype)
    opts = dict(reduction=reduction, label_smoothing=label_smoothing)
    compare_with_torch(lambda x, t: F.cross_entropy(x, t, tw, **opts),
                       lambda x, t: TF.cross_entropy(x, t, pw, **opts),
                       [randn(*shape, dtype=dtype), probs], contiguous=contiguous, **tol)


def test_cross_entropy_with_probability_targets_gradcheck():
    probs = np.random.default_rng(3).dirichlet(np.ones(4), 3)
    weight = tinyres.tensor(class_weight(4, True))
    gradcheck(lambda x, t: F.cross_entropy(x, t, weight, label_smoothing=0.1), leaves(randn(3, 4), probs))


@needs_torch
@pytest.mark.parametrize("dtype, contiguous, tol", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_is_stable_for_huge_logits(dtype, contiguous, tol, label_smoothing):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [3.0, 1e4, -1e4]], dtype=dtype)
    t = np.array([1, 2, 0])
    for reduction in REDUCTIONS:
        opts = dict(reduction=reduction, label_smoothing=label_smoothing)
        y = compare_with_torch(lambda x, t: F.cross_entropy(x, t, **opts),
                               lambda x, t: TF.cross_entropy(x, t, **opts), [x, t], contiguous=contiguous, **tol)
        assert np.isfinite(y.numpy()).all()


@needs_torch
@pytest.mark.parametrize("target", [np.array(2), np.array([0.2, 0.5, 0.3])])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_of_one_unbatched_sample(target, reduction):
    """A (C,) input: the values and the gradient match torch, and the gradient matches a batch of one."""
    x = randn(3)
    compare_with_torch(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                       lambda x, t: TF.cross_entropy(x, t, reduction=reduction), [x, target])
    one, batch = leaves(x, x[None])
    F.cross_entropy(one, tinyres.tensor(target), reduction="sum").backward()
    F.cross_entropy(batch, tinyres.tensor(target[None]), reduction="sum").backward()
    np.testing.assert_allclose(one.grad.numpy(), batch.grad.numpy()[0], rtol=1e-12)


def test_cross_entropy_with_every_target_ignored_is_nan_as_torch():
    x, t = tinyres.randn(2, 3), tinyres.tensor([-100, -100])
    assert np.isnan(F.cross_entropy(x, t).item())
    assert F.cross_entropy(x, t, reduction="sum").item() == 0


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = tinyres.tensor(randn(4, 5), requires_grad=True)
    t = np.array([0, 3, 4, 1])
    F.cross_entropy(x, tinyres.tensor(t), reduction="sum").backward()
    p = np.exp(x.numpy()) / np.exp(x.numpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), p - np.eye(5)[t], rtol=1e-12)


# ---------------------------------------------------------------- nll_loss

@needs_torch
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("weighted, ignore_index, precision", [(False, None, DTYPES[0]), (True, -100, DTYPES[0]),
                                                          (True, 0, DTYPES[0]), (True, -100, DTYPES[1])])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(shape, weighted, ignore_index, precision, reduction):
    dtype, contiguous, tol = precision
    target = index_target(shape, ignore_index, seed=5)
    tw, pw = frameworks(class_weight(shape[1], weighted), dtype)
    opts = dict(ignore_index=-100 if ignore_index is None else ignore_index, reduction=reduction)
    compare_with_torch(lambda x, t: F.nll_loss(x, t, tw, **opts), lambda x, t: TF.nll_loss(x, t, pw, **opts),
                       [randn(*shape, dtype=dtype, seed=6), target], contiguous=contiguous, **tol)


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_gradcheck(weighted):
    target = tinyres.tensor(index_target((3, 4, 2), -100, seed=1))
    weight, _ = frameworks(class_weight(4, weighted), np.float64)
    gradcheck(lambda x: F.nll_loss(x, target, weight), leaves(randn(3, 4, 2)))


def test_nll_loss_of_log_softmax_equals_cross_entropy():
    x, t = tinyres.randn(4, 3, 2), tinyres.tensor(index_target((4, 3, 2), -100))
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), t).item(), F.cross_entropy(x, t).item(), rtol=1e-6)


# ---------------------------------------------------------------- binary_cross_entropy_with_logits

def bce_weights(shape, weight, pos_weight):
    rng = np.random.default_rng(9)
    shapes = {"none": None, "class": shape[-1:], "full": shape}
    return [None if shapes[k] is None else rng.random(shapes[k]) + 0.3 for k in (weight, pos_weight)]


@needs_torch
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (1, 1)])
@pytest.mark.parametrize("weight, pos_weight, precision", [
    ("none", "none", DTYPES[0]), ("class", "class", DTYPES[0]), ("full", "none", DTYPES[0]),
    ("none", "class", DTYPES[1]), ("full", "class", DTYPES[1])])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(shape, weight, pos_weight, precision, reduction):
    dtype, contiguous, tol = precision
    """Both the logits' and the target's gradients are compared."""
    w, q = bce_weights(shape, weight, pos_weight)
    (tw, pw), (tq, pq) = frameworks(w, dtype), frameworks(q, dtype)
    target = np.random.default_rng(8).random(shape).astype(dtype)
    compare_with_torch(
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, tw, reduction=reduction, pos_weight=tq),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pw, reduction=reduction, pos_weight=pq),
        [randn(*shape, dtype=dtype), target], contiguous=contiguous, **tol)


@pytest.mark.parametrize("weight, pos_weight", [("none", "none"), ("full", "class")])
def test_bce_with_logits_gradcheck(weight, pos_weight):
    w, q = bce_weights((3, 4), weight, pos_weight)
    (tw, _), (tq, _) = frameworks(w, np.float64), frameworks(q, np.float64)
    target = np.random.default_rng(8).random((3, 4))
    gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, tw, pos_weight=tq),
              leaves(randn(3, 4), target))


@needs_torch
@pytest.mark.parametrize("dtype, contiguous, tol", DTYPES)
def test_bce_with_logits_is_stable_for_huge_logits(dtype, contiguous, tol):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 50.0]], dtype=dtype)
    t = np.array([[0.0, 1.0, 0.5], [0.0, 1.0, 1.0]], dtype=dtype)
    tq, pq = frameworks(np.array([2.0, 0.5, 3.0]), dtype)
    y = compare_with_torch(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=tq),
                           lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=pq),
                           [x, t], contiguous=contiguous, **tol)
    assert np.isfinite(y.numpy()).all()


# ---------------------------------------------------------------- mse_loss

@needs_torch
@pytest.mark.parametrize("shape", [(4, 3), (2, 1, 3), (5,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype, contiguous, tol", DTYPES)
def test_mse_loss_matches_torch(shape, reduction, dtype, contiguous, tol):
    compare_with_torch(lambda x, t: F.mse_loss(x, t, reduction=reduction),
                       lambda x, t: TF.mse_loss(x, t, reduction=reduction),
                       [randn(*shape, dtype=dtype), randn(*shape, dtype=dtype, seed=1)],
                       contiguous=contiguous, **tol)


def test_mse_loss_gradcheck():
    gradcheck(F.mse_loss, leaves(randn(3, 4), randn(3, 4, seed=1)))


@pytest.mark.parametrize("loss", [
    lambda x: F.cross_entropy(x, tinyres.tensor([0, 2, 1])),
    lambda x: F.cross_entropy(x, tinyres.tensor(np.full((3, 3), 1 / 3, dtype=np.float32))),
    lambda x: F.nll_loss(x, tinyres.tensor([0, 2, 1])),
    lambda x: F.binary_cross_entropy_with_logits(x, tinyres.rand(3, 3), pos_weight=tinyres.ones(3)),
    lambda x: F.mse_loss(x, tinyres.rand(3, 3)),
])
def test_float32_losses_give_float32_values_and_gradients(loss):
    x = tinyres.randn(3, 3, requires_grad=True)
    y = loss(x)
    y.backward()
    assert y.dtype == x.grad.dtype == np.float32


@pytest.mark.parametrize("loss", [
    lambda x, d: F.cross_entropy(x, tinyres.tensor([[0, -100], [2, 1]], device=d), tinyres.ones(3, device=d),
                                 label_smoothing=0.1),
    lambda x, d: F.cross_entropy(x, tinyres.full((2, 3, 2), 1 / 3, device=d)),
    lambda x, d: F.nll_loss(x, tinyres.tensor([[0, -100], [2, 1]], device=d), reduction="sum"),
    lambda x, d: F.binary_cross_entropy_with_logits(x, tinyres.full((2, 3, 2), 0.3, device=d),
                                                    tinyres.ones(2, device=d), pos_weight=tinyres.ones(2, device=d)),
    lambda x, d: F.mse_loss(x, tinyres.zeros(2, 3, 2, device=d), reduction="none"),
])
def test_losses_compute_on_the_inputs_gpu(fake_cupy, loss):
    """On a (test-double) second GPU: every array the loss makes outside a Function is made
    there too, and the value and gradient match the CPU's."""
    cpu = tinyres.tensor(randn(2, 3, 2, dtype=np.float32), requires_grad=True)
    gpu = tinyres.tensor(cpu.numpy(), device="cuda:1", requires_grad=True)
    y_cpu, y_gpu = loss(cpu, "cpu"), loss(gpu, "cuda:1")
    y_cpu.sum().backward()
    y_gpu.sum().backward()
    on(y_gpu, "cuda:1"), on(gpu.grad, "cuda:1")
    np.testing.assert_allclose(y_gpu.numpy(), y_cpu.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gpu.grad.numpy(), cpu.grad.numpy(), rtol=1e-6)


def test_loss_inputs_on_two_devices_raise(fake_cupy):
    with pytest.raises(RuntimeError, match="cross_entropy: expected all tensors on one device, got input on "
                                           "cuda:0, target on cpu"):
        F.cross_entropy(tinyres.randn(2, 3, device="cuda"), tinyres.tensor([0, 1]))


# ---------------------------------------------------------------- errors

def test_an_ignored_target_may_be_out_of_range():
    x = tinyres.tensor(randn(3, 4))
    loss = F.nll_loss(x, tinyres.tensor([0, 9, 2]), ignore_index=9, reduction="sum")
    np.testing.assert_allclose(loss.item(), -(x.numpy()[0, 0] + x.numpy()[2, 2]))


X = tinyres.randn(4, 3)
ERRORS = [
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 3, 2])), IndexError,
     r"cross_entropy: target 3 is out of bounds for 3 classes"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, -1, 1, 2])), IndexError, "target -1 is out of bounds"),
    (lambda: F.nll_loss(X, tinyres.tensor([0, 1, 7, 2])), IndexError, "nll_loss: target 7"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0.0, 1.0, 2.0, 1.0])), TypeError,
     r"class-index targets must be an integer tensor.*float32.*class probabilities"),
    (lambda: F.cross_entropy(X, tinyres.rand(4, 2)), TypeError, r"float32 of shape \(4, 2\)"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 2])), ValueError,
     r"expected target of shape \(4,\).*got \(3,\)"),
    (lambda: F.cross_entropy(tinyres.randn(2, 3, 4), tinyres.tensor([0, 1])), ValueError, r"\(2, 4\)"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 2, 0]), reduction="avg"), ValueError,
     "cross_entropy: reduction='avg' is not valid; expected 'mean', 'sum' or 'none'"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 2, 0]), tinyres.ones(4)), ValueError,
     r"weight must have one entry per class, shape \(3,\)"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 2, 0]), label_smoothing=1.5), RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: 1.5"),
    (lambda: F.cross_entropy(X, tinyres.tensor([0, 1, 2, 0]), tinyres.ones(3, requires_grad=True)), RuntimeError,
     "weight cannot require grad"),
    (lambda: F.cross_entropy(tinyres.tensor([[1, 2]]), tinyres.tensor([0])), TypeError, "floating point input"),
    (lambda: F.cross_entropy(X, [0, 1, 2, 0]), TypeError, "target must be a Tensor, got list"),
    (lambda: F.nll_loss(X, tinyres.rand(4, 3)), TypeError, "nll_loss: class-index targets must be an integer"),
    (lambda: F.nll_loss(X, tinyres.tensor([0, 1, 2, 0]), reduction="Mean"), ValueError,
     "nll_loss: reduction='Mean'"),
    (lambda: F.binary_cross_entropy_with_logits(X, tinyres.rand(4, 2)), ValueError,
     r"target size \(4, 2\) must be the same as input size \(4, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(X, tinyres.ones(4, 3, dtype="int64")), TypeError,
     "floating point target"),
    (lambda: F.binary_cross_entropy_with_logits(X, tinyres.rand(4, 3), pos_weight=tinyres.ones(4)), ValueError,
     r"pos_weight of shape \(4,\) does not broadcast to the input shape \(4, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(X, tinyres.rand(4, 3), reduction="max"), ValueError,
     "reduction='max'"),
    (lambda: F.mse_loss(X, tinyres.rand(3, 4)), ValueError, r"mse_loss: target size \(3, 4\)"),
]


@pytest.mark.parametrize("call, error, match", ERRORS)
def test_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------- masked classes (-inf logits)

MASKED = np.array([[1.0, -np.inf, 0.5, 2.0], [0.3, 0.2, -np.inf, -np.inf], [-np.inf, 0.0, 1.0, -1.0]])


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "class-weights"])
def test_cross_entropy_with_masked_classes_is_finite_as_torch(dtype, weighted):
    """A -inf logit (a class masked out) is not the target: torch gives a finite loss and
    finite gradients (0 for the masked class); 0 * -inf must not make them nan."""
    w = np.array([1.0, 2.0, 0.5, 1.5], dtype) if weighted else None
    ours, theirs = (None, None) if w is None else (tinyres.tensor(w), torch.tensor(w))
    y = compare_with_torch(lambda x, t: F.cross_entropy(x, t, ours), lambda x, t: TF.cross_entropy(x, t, theirs),
                           [MASKED.astype(dtype), np.array([3, 0, 2])], rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert np.isfinite(y.item())


@needs_torch
def test_nll_loss_of_log_softmax_with_masked_classes_is_finite_as_torch():
    compare_with_torch(lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
                       lambda x, t: TF.nll_loss(TF.log_softmax(x, 1), t), [MASKED, np.array([3, 0, 2])])


@needs_torch
@pytest.mark.parametrize("target, weight", [([-100, -100, -100], None), ([1, 1, 2], [1.0, 0.0, 0.0, 1.0])],
                         ids=["all-ignored", "zero-weight-targets"])
def test_a_zero_total_weight_gives_torchs_nan_mean_and_a_zero_gradient(target, weight):
    """The documented difference: torch's gradient is nan for targets of weight 0, tinyres's 0."""
    x = randn(3, 4, dtype=np.float32)
    w = None if weight is None else np.array(weight, np.float32)
    theirs = TF.cross_entropy(torch.tensor(x), torch.tensor(target), None if w is None else torch.tensor(w))
    t = tinyres.tensor(x, requires_grad=True)
    ours = F.cross_entropy(t, tinyres.tensor(np.array(target)), None if w is None else tinyres.tensor(w))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())
    ours.backward()
    assert (t.grad.numpy() == 0).all()
