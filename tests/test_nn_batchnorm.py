"""batch_norm: the fused backward against finite differences and PyTorch, running statistics
over several training steps (momentum and cumulative average), eval mode, errors; and
residual blocks built from conv2d, batch_norm, relu and a plain ``+``."""
import functools

import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch

import tinyres
from helpers import gradcheck  # the suite's tight tolerances
from tinyres.nn import functional as F

SHAPES = [(5, 3), (4, 3, 5), (2, 3, 3, 4), (1, 2, 1, 3), (3, 1, 2, 2)]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: {}}


def leaves(*arrays):
    return [tinyres.tensor(a, requires_grad=True) for a in arrays]


def params(c, dtype, seed=1):
    """weight, bias, running_mean, running_var for c channels."""
    rng = np.random.default_rng(seed)
    return [(rng.random(c) + 0.5).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]


@needs_torch
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, contiguous", [(np.float64, True), (np.float32, False)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(shape, dtype, training, contiguous):
    x = randn(*shape, dtype=dtype, seed=sum(shape))
    w, b, rm, rv = params(shape[1], dtype)
    stats = {"tiny": [tinyres.tensor(rm), tinyres.tensor(rv)], "torch": [torch.tensor(rm), torch.tensor(rv)]}
    compare_with_torch(lambda x, w, b: F.batch_norm(x, *stats["tiny"], w, b, training=training),
                       lambda x, w, b: TF.batch_norm(x, *stats["torch"], w, b, training=training),
                       [x, w, b], contiguous=contiguous, **TOL[dtype])
    for ours, theirs in zip(stats["tiny"], stats["torch"]):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOL[dtype])


@needs_torch
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_without_affine_or_running_stats_matches_torch(affine):
    x = randn(4, 3, 2, 2)
    w, b, _, _ = params(3, np.float64)
    arrays = [x, w, b] if affine else [x]
    compare_with_torch(lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True),
                       lambda x, *wb: TF.batch_norm(x, None, None, *wb, training=True), arrays)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training):
    """A random upstream gradient: with all ones the true input gradient in training is 0."""
    w, b, rm, rv = params(shape[1], np.float64)
    running = [tinyres.tensor(rm), tinyres.tensor(rv)] if not training else [None, None]
    gradcheck(lambda x, w, b: F.batch_norm(x, *running, w, b, training=training),
              leaves(randn(*shape, seed=3), w, b))


def test_batch_norm_gradcheck_without_affine():
    gradcheck(lambda x: F.batch_norm(x, None, None, training=True), leaves(randn(3, 2, 4, seed=4)))


def torch_module(ndim, c, momentum):
    return (torch.nn.BatchNorm2d if ndim == 4 else torch.nn.BatchNorm1d)(c, momentum=momentum).double()


@needs_torch
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_over_training_steps_then_eval(shape, momentum):
    """tinyres' functional (with num_batches_tracked for momentum=None) and torch's module
    agree on outputs and running statistics step by step, and then in eval mode."""
    c = shape[1]
    module = torch_module(len(shape), c, momentum)
    running_mean, running_var = tinyres.zeros(c, dtype="float64"), tinyres.ones(c, dtype="float64")
    for step in range(1, 5):
        x = randn(*shape, seed=10 + step) * step + step     # a different mean and scale each step
        y = F.batch_norm(tinyres.tensor(x), running_mean, running_var, training=True, momentum=momentum,
                         num_batches_tracked=step)
        np.testing.assert_allclose(y.numpy(), module(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(running_mean.numpy(), module.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(running_var.numpy(), module.running_var.numpy(), rtol=1e-12)
    module.eval()
    x = randn(*shape, seed=99)
    y = F.batch_norm(tinyres.tensor(x), running_mean, running_var, training=False)
    np.testing.assert_allclose(y.numpy(), module(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
def test_inference_path_without_x_hat_matches_torch(training, layout, monkeypatch):
    """Under no_grad forward skips x_hat (y = x * w/sigma + (b - mu w/sigma)); the running
    statistics update the same.  Small blocks so the channels are cut into several."""
    monkeypatch.setattr(tinyres.nn.functional.normalization, "BLOCK", 40)
    x = randn(6, 5, 4, 3, dtype=np.float32)
    w, b = randn(5, dtype=np.float32, seed=1), randn(5, dtype=np.float32, seed=2)
    mean, var = randn(5, dtype=np.float32, seed=3), np.abs(randn(5, dtype=np.float32, seed=4)) + 0.5
    data = x if layout == "nchw" else np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    ours = [tinyres.tensor(mean), tinyres.tensor(var)]
    with tinyres.no_grad():
        y = F.batch_norm(tinyres.Tensor(data), *ours, tinyres.tensor(w), tinyres.tensor(b), training=training)
    theirs = [torch.tensor(mean), torch.tensor(var)]
    want = TF.batch_norm(torch.tensor(x), *theirs, torch.tensor(w), torch.tensor(b), training=training)
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-6)


def test_float32_running_statistics_stay_float32():
    rm, rv = tinyres.zeros(3), tinyres.ones(3)
    x = tinyres.randn(4, 3, 2, 2, requires_grad=True)
    y = F.batch_norm(x, rm, rv, training=True)
    y.sum().backward()
    assert (y.dtype, x.grad.dtype, rm.dtype, rv.dtype) == (np.float32,) * 4


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.batch_norm(tinyres.randn(3), None, None, training=True), ValueError,
     r"shape \(N, C\).*got shape \(3,\)"),
    (lambda: F.batch_norm(tinyres.randn(2, 4), tinyres.zeros(3), tinyres.ones(3)), ValueError,
     r"running_mean should contain C=4 elements.*got shape \(3,\)"),
    (lambda: F.batch_norm(tinyres.randn(2, 3), None, None, tinyres.ones(2), training=True), ValueError, "weight"),
    (lambda: F.batch_norm(tinyres.randn(1, 3), None, None, training=True), ValueError,
     r"Expected more than 1 value per channel when training, got input size \(1, 3\)"),
    (lambda: F.batch_norm(tinyres.randn(2, 3), None, None), RuntimeError, "running_mean must be defined"),
    (lambda: F.batch_norm(tinyres.randn(2, 3), tinyres.zeros(3), None), ValueError, "both"),
    (lambda: F.batch_norm(tinyres.randn(2, 3), tinyres.zeros(3), tinyres.ones(3), training=True, momentum=None),
     ValueError, "num_batches_tracked"),
    (lambda: F.batch_norm(tinyres.ones(2, 3, dtype="int64"), None, None, training=True), TypeError, "floating"),
    (lambda: F.batch_norm(tinyres.randn(2, 3), None, None, tinyres.ones(3, dtype="float64"), training=True),
     TypeError, "weight is float64 but the input is float32"),
])
def test_batch_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- residual blocks

def block(lib, x, w1, g1, b1, wp=None, gp=None, bp=None):
    """relu(bn(conv3x3(x)) + shortcut), the shortcut x itself or bn(conv1x1(x)); ``lib`` is
    tinyres' or torch's functional module: the same expression in both."""
    y = lib.batch_norm(lib.conv2d(x, w1, padding=1), None, None, g1, b1, training=True)
    shortcut = x if wp is None else lib.batch_norm(lib.conv2d(x, wp), None, None, gp, bp, training=True)
    return lib.relu(y + shortcut)


tiny_block, torch_block = functools.partial(block, F), functools.partial(block, TF)


def block_arrays(cin, cout, projection):
    rng = np.random.default_rng(7)
    arrays = [randn(2, cin, 4, 4, seed=8), rng.standard_normal((cout, cin, 3, 3)) * 0.3,
              rng.random(cout) + 0.5, rng.standard_normal(cout)]
    if projection:
        arrays += [rng.standard_normal((cout, cin, 1, 1)), rng.random(cout) + 0.5, rng.standard_normal(cout)]
    return arrays


@pytest.mark.parametrize("cin, cout, projection", [(3, 3, False), (2, 4, True)])
def test_residual_block_gradients(cin, cout, projection):
    """The ``+`` of the shortcut sends the gradient down both branches: checked against
    finite differences and against the same block in PyTorch."""
    arrays = block_arrays(cin, cout, projection)
    gradcheck(tiny_block, leaves(*arrays))
    compare_with_torch(tiny_block, torch_block, arrays)
    compare_with_torch(tiny_block, torch_block, [a.astype(np.float32) for a in arrays], rtol=1e-4, atol=1e-5)


def test_an_empty_batch_leaves_the_running_statistics_as_torch():
    x = tinyres.zeros(0, 3, 4, 4, requires_grad=True)
    w = tinyres.ones(3, requires_grad=True)
    mean, var = tinyres.zeros(3), tinyres.ones(3)
    y = F.batch_norm(x, mean, var, w, None, training=True)
    assert y.shape == (0, 3, 4, 4)
    assert mean.numpy().tolist() == [0, 0, 0] and var.numpy().tolist() == [1, 1, 1]
    y.sum().backward()
    assert x.grad.shape == (0, 3, 4, 4) and w.grad.numpy().tolist() == [0, 0, 0]


@needs_torch
def test_float32_statistics_at_a_large_mean_are_as_accurate_as_torchs():
    """Two passes (the mean, then the mean of (x - mean)^2): no cancellation at mean 1e4, std 1.
    Both frameworks against the float64 result; what remains is the float32 rounding of the mean."""
    x = (np.random.default_rng(0).standard_normal((64, 3, 8, 8)) + 1e4).astype(np.float32)
    exact = F.batch_norm(tinyres.tensor(x.astype(np.float64)), None, None, training=True).numpy()
    ours = np.abs(F.batch_norm(tinyres.tensor(x), None, None, training=True).numpy() - exact).max()
    theirs = np.abs(TF.batch_norm(torch.tensor(x), None, None, training=True).numpy() - exact).max()
    assert ours < 3 * theirs and ours < 3e-3, (ours, theirs)


@needs_torch
@pytest.mark.parametrize("shape", [(8, 4, 16, 16), (64, 3, 32, 32)])
def test_float32_with_a_large_mean_is_as_accurate_as_torch(shape):
    """Inputs with mean 100 and std 1 (issue 24): the output and the input gradient in
    float32 are no further from the float64 truth than torch's float32 ones."""
    rng = np.random.default_rng(0)
    x = (100 + rng.standard_normal(shape)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    errors = {}
    for lib in ("tinyres", "torch32", "torch64"):
        if lib == "tinyres":
            t = tinyres.tensor(x, requires_grad=True)
            y = F.batch_norm(t, None, None, training=True)
            y.backward(tinyres.tensor(g))
            errors[lib] = (y.numpy().astype(np.float64), t.grad.numpy().astype(np.float64))
        else:
            dtype = torch.float32 if lib == "torch32" else torch.float64
            t = torch.tensor(x, dtype=dtype, requires_grad=True)
            y = torch.nn.functional.batch_norm(t, None, None, training=True)
            y.backward(torch.tensor(g, dtype=dtype))
            errors[lib] = (y.detach().double().numpy(), t.grad.double().numpy())
    truth = errors.pop("torch64")
    ours, theirs = ([np.abs(a - b).max() for a, b in zip(errors[k], truth)] for k in ("tinyres", "torch32"))
    assert ours[0] <= 1.5 * theirs[0] + 1e-7 and ours[1] <= 1.5 * theirs[1] + 1e-7, (ours, theirs)
