"""Activations and dropout: finite differences, PyTorch on the same inputs, what the
Functions keep for backward, inplace, stability, errors."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy

import tinyres
from helpers import gradcheck  # the suite's tight tolerances
from cases import ACTIVATIONS  # (tinyres op, torch op): the same call in both libraries
from tinyres.nn import functional as F

SHAPES = [(4, 5), (2, 3, 1), (1, 7), (3, 2, 2, 3)]


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float32, False)])
def test_activation_matches_torch(name, shape, dtype, contiguous):
    x = randn(*shape, dtype=dtype, seed=len(shape), low=0.1)   # away from the kink at 0
    compare_with_torch(*ACTIVATIONS[name], [x], contiguous=contiguous)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2)])
def test_activation_gradcheck(name, shape):
    gradcheck(ACTIVATIONS[name][0], [tinyres.tensor(randn(*shape, seed=5, low=0.1), requires_grad=True)])


@pytest.mark.parametrize("name", ["softmax_dim1", "log_softmax_dim-1", "sigmoid", "tanh"])
def test_large_logits_stay_finite_and_match_torch(name):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1, 3.0]])
    y = compare_with_torch(*ACTIVATIONS[name], [x])
    assert np.isfinite(y.numpy()).all()


@pytest.mark.parametrize("op", [F.relu, F.leaky_relu])
def test_relu_keeps_only_a_mask_not_x(op):
    """Chainer's retain-outputs idea: backward needs only which elements were positive."""
    x = tinyres.randn(3, 4, requires_grad=True)
    saved = [v for v in vars(op(x).grad_fn).values() if hasattr(v, "dtype") and getattr(v, "ndim", 0)]
    assert [v.dtype for v in saved] == [np.bool_]


@pytest.mark.parametrize("op", [F.relu, F.leaky_relu])
def test_inplace_writes_into_a_tensor_that_needs_no_grad(op):
    x = tinyres.tensor([-1.0, 2.0])
    assert op(x, inplace=True) is x
    np.testing.assert_allclose(x.numpy(), op(tinyres.tensor([-1.0, 2.0])).numpy())


@needs_torch
@pytest.mark.parametrize("op, torch_op", [(F.relu, lambda x: TF.relu(x)), (F.leaky_relu, lambda x: TF.leaky_relu(x))],
                         ids=["relu", "leaky"])
def test_inplace_in_blocks_on_threads_matches_torch(op, torch_op, monkeypatch):
    """Written piece by piece into a channel-major input, 0, -0 and NaN included."""
    monkeypatch.setattr(tinyres.kernels.threads, "BLOCK", 7)
    a = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    a[0, 0, 0, :3] = [0.0, -0.0, np.nan]
    x = tinyres.Tensor(np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3))
    with tinyres.no_grad():
        assert op(x, inplace=True) is x
    np.testing.assert_array_equal(x.numpy(), torch_op(torch.tensor(a)).numpy())


def test_inplace_on_a_leaf_that_requires_grad_is_refused_and_inside_a_graph_writes_in_place():
    x = tinyres.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="relu_: a leaf tensor that requires grad"):
        F.relu(x, inplace=True)                     # as torch refuses it
    h = x * 1
    y = F.relu(h, inplace=True)
    assert y is h and h.numpy().tolist() == [0.0, 2.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 1.0]


def test_softmax_dtype_casts_first():
    x = tinyres.randn(2, 3)
    assert F.softmax(x, 1, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.relu(tinyres.tensor([1, 2])), TypeError, "relu: expected a floating point tensor, got int64"),
    (lambda: F.sigmoid(np.ones(2)), TypeError, "sigmoid: expected a Tensor"),
    (lambda: F.softmax(tinyres.randn(2, 3), 2), IndexError, r"softmax: dim=2 is out of range.*\(2, 3\)"),
    (lambda: F.log_softmax(tinyres.randn(2, 3), -3), IndexError, "log_softmax: dim=-3"),
    (lambda: F.dropout(tinyres.randn(2), 1.5), ValueError, "between 0 and 1, but got 1.5"),
    (lambda: F.dropout(tinyres.randn(2), -0.1), ValueError, "between 0 and 1"),
])
def test_activation_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_dropout_zeroes_or_scales_and_backward_uses_the_same_mask(dtype, p):
    tinyres.manual_seed(0)
    x = tinyres.tensor(randn(40, 50, dtype=dtype, low=0.1), requires_grad=True)
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    scale = 0.0 if p == 1 else 1 / (1 - p)
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] * scale, rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.05
    g = randn(40, 50, dtype=dtype, seed=2)
    y.backward(tinyres.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g * scale, 0), rtol=1e-6)
    assert y.dtype == x.grad.dtype == dtype


def test_dropout_is_reproducible_with_manual_seed():
    x = tinyres.ones(100)
    tinyres.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    tinyres.manual_seed(3)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5).numpy())


def test_dropout_in_eval_returns_the_input():
    x = tinyres.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x


def test_dropout_gradcheck():
    """The mask is drawn once per call: reseed so every evaluation sees the same mask."""
    def f(x):
        tinyres.manual_seed(1)
        return F.dropout(x, 0.4)
    gradcheck(f, [tinyres.tensor(randn(3, 5), requires_grad=True)])


def test_dropout_mask_is_drawn_on_the_inputs_gpu_and_seeded_by_manual_seed(fake_cupy):
    """On a (test-double) second GPU the mask comes from the device's generator (no host
    array, no copy); ``manual_seed`` makes it reproducible there."""
    x = randn(4, 5, dtype=np.float32)
    masks = []
    for _ in range(2):
        tinyres.manual_seed(2)
        gpu = tinyres.tensor(x, device="cuda:1", requires_grad=True)
        y_gpu = F.dropout(gpu, 0.5)
        y_gpu.sum().backward()
        on(y_gpu, "cuda:1"), on(gpu.grad, "cuda:1")
        masks.append(gpu.grad.numpy())
    np.testing.assert_array_equal(masks[0], masks[1])
    assert set(np.unique(masks[0])) == {0.0, 2.0}


@pytest.mark.parametrize("op, torch_op", [(F.relu, lambda x: TF.relu(x)),     # lambdas: torch is looked up when run
                                          (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
                                          (F.sigmoid, lambda x: torch.sigmoid(x)), (F.tanh, lambda x: torch.tanh(x))],
                         ids=["relu", "leaky_relu", "sigmoid", "tanh"])
def test_boundary_values_forward_and_backward_as_torch(op, torch_op):
    """0, -0, +-inf and NaN, where a piecewise op's mask decides (ReLU passes the gradient at
    NaN, LeakyReLU scales it; both give 0 / the slope at 0)."""
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2.0], dtype=np.float32)
    compare_with_torch(op, torch_op, [x])


@pytest.mark.parametrize("name, args", [("ReLU6", ()), ("SiLU", ()), ("Hardtanh", (-0.4, 0.7))])
def test_relu6_silu_hardtanh_modules_as_torch(name, args):
    ours, theirs = getattr(tinyres.nn, name)(*args), getattr(torch.nn, name)(*args)
    x = np.random.default_rng(0).normal(size=(3, 8)) * 4
    tx, ox = torch.tensor(x, requires_grad=True), tinyres.tensor(x, requires_grad=True)
    theirs(tx).sum().backward()
    ours(ox).sum().backward()
    np.testing.assert_allclose(ours(tinyres.tensor(x)).array, theirs(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ox.grad.array, tx.grad.numpy(), rtol=1e-12)
    assert repr(ours) == repr(theirs)
    plain = tinyres.tensor(x)                       # in place where autograd allows it, as torch
    assert getattr(tinyres.nn, name)(*args, inplace=True)(plain) is plain
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        tinyres.nn.functional.hardtanh(plain, 1.0, 0.0)
