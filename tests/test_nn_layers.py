"""The layer modules against torch.nn: torch's weights (as NumPy) loaded into the same
tinyres layer give the same outputs, input gradients, parameter gradients and running
statistics; BatchNorm over several steps; state_dict round trips; bad inputs."""
import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.nn as nn
from helpers import TOL, noncontiguous, randn
from cases import LAYERS, small_cnn
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy

DTYPES = [np.float32, np.float64]


def torch_numpy_state(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def twins(build, dtype, train=True):
    """The same layer in torch and tinyres, tinyres loaded from torch's state_dict as NumPy."""
    torch.manual_seed(0)
    theirs = build(torch.nn).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = build(nn)
    ours.load_state_dict(torch_numpy_state(theirs))
    if dtype == np.float64:
        ours.double()
    return ours.train(train), theirs.train(train)


def assert_close(a, b, dtype, what):
    np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=what) if dtype == np.float64 else \
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=what)


def step_both(ours, theirs, x, dtype, seed=0, contiguous=True):
    """One forward and backward (random upstream gradient) through both; compare the
    outputs, the input gradient and every parameter gradient; keep dtypes."""
    tx = tinyres.Tensor(x if contiguous else noncontiguous(x), requires_grad=True)
    px = torch.tensor(x, requires_grad=True)
    y, py = ours(tx), theirs(px)
    assert y.shape == tuple(py.shape) and y.dtype == dtype
    assert_close(y.numpy(), py.detach().numpy(), dtype, "output")
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(tinyres.tensor(g))
    py.backward(torch.tensor(g))
    assert tx.grad.dtype == dtype
    assert_close(tx.grad.numpy(), px.grad.numpy(), dtype, "input gradient")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype, name
        assert_close(p.grad.numpy(), tparams[name].grad.numpy(), dtype, f"gradient of {name}")
    ours.zero_grad()
    theirs.zero_grad()


def assert_same_state(ours, theirs, dtype):
    tstate = theirs.state_dict()
    assert list(ours.state_dict()) == list(tstate)
    for key, value in ours.state_dict().items():
        expected = tstate[key].numpy()
        assert value.dtype == expected.dtype, key
        assert_close(value.numpy(), expected, dtype, key)


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")    # torch's, about its speed
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layer", LAYERS)
def test_layer_with_torch_weights_matches_torch(layer, train, dtype):
    build, shape = LAYERS[layer]
    ours, theirs = twins(build, dtype, train)
    for step in range(2):                  # two steps: BatchNorm's running stats move in between
        step_both(ours, theirs, randn(*shape, dtype=dtype, seed=step, low=0.01), dtype, seed=step,
                  contiguous=step == 0)
    assert_same_state(ours, theirs, dtype)


@needs_torch
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm2d_over_several_steps_then_eval(momentum):
    ours, theirs = twins(lambda n: n.BatchNorm2d(3, momentum=momentum), np.float64)
    with torch.no_grad():            # a non-trivial affine transform
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    ours.load_state_dict(torch_numpy_state(theirs))
    for step in range(4):
        x = randn(3, 3, 4, 2, seed=step) * (step + 1) + step      # the statistics change per step
        step_both(ours, theirs, x, np.float64, seed=step)
        assert int(ours.num_batches_tracked) == step + 1 == int(theirs.num_batches_tracked)
        assert ours.num_batches_tracked.dtype == np.int64 and ours.num_batches_tracked.shape == ()
        assert_same_state(ours, theirs, np.float64)
    ours.eval()
    theirs.eval()
    step_both(ours, theirs, randn(2, 3, 4, 2, seed=9), np.float64)
    assert_same_state(ours, theirs, np.float64)
    assert int(ours.num_batches_tracked) == 4


def test_state_dict_round_trip_gives_the_same_outputs():
    tinyres.manual_seed(0)
    trained = small_cnn(nn)
    for step in range(3):                                          # move the running statistics
        trained(tinyres.tensor(randn(4, 3, 9, 8, dtype=np.float32, seed=step)))
    saved = {k: v.numpy() for k, v in trained.state_dict().items()}
    tinyres.manual_seed(1)
    fresh = small_cnn(nn)
    fresh.load_state_dict(saved)
    x = tinyres.tensor(randn(2, 3, 9, 8, dtype=np.float32, seed=5))
    trained.eval()
    fresh.eval()
    np.testing.assert_array_equal(fresh(x).numpy(), trained(x).numpy())
    assert int(fresh[1].num_batches_tracked) == 3


def test_module_to_float64_runs_in_float64():
    model = small_cnn(nn).to(tinyres.float64)
    out = model(tinyres.tensor(randn(2, 3, 9, 8)))
    assert out.dtype == np.float64
    out.sum().backward()
    assert all(p.grad.dtype == np.float64 for p in model.parameters())


# ---------------------------------------------------------------------- dropout and in-place ReLU

def test_dropout_in_training_and_eval():
    drop = nn.Dropout(0.25)
    x = tinyres.ones(200, 100)
    tinyres.manual_seed(0)
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    tinyres.manual_seed(0)
    np.testing.assert_array_equal(drop(x).numpy(), y)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())


def test_relu_inplace_writes_into_a_tensor_without_grad():
    x = tinyres.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(x) is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 2.0])


# ---------------------------------------------------------------------- bad input

def _t(*shape):
    return tinyres.zeros(*shape)


@pytest.mark.parametrize("layer, input, error, match", [
    (nn.Conv2d(3, 16, 3, padding=1, bias=False), _t(2, 1, 28, 28), RuntimeError,
     r"Conv2d\(3, 16, kernel_size=\(3, 3\), stride=\(1, 1\), padding=\(1, 1\), bias=False\): "
     r"expected input with 3 channels, got input of shape \(2, 1, 28, 28\)"),
    (nn.Conv2d(3, 16, 3), _t(2, 3), RuntimeError,
     r"Conv2d\(3, 16, .*\): expected 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape \(2, 3\)"),
    (nn.Conv1d(2, 4, 3), _t(1, 3, 5), RuntimeError, r"Conv1d\(2, 4, .*expected input with 2 channels"),
    (nn.Conv1d(2, 4, 3), _t(1, 2, 5, 5), RuntimeError, r"Conv1d\(2, 4, .*expected 2-D \(unbatched\) or 3-D"),
    (nn.BatchNorm2d(3), _t(2, 3, 4), ValueError, r"BatchNorm2d\(3\): expected 4D input \(got 3D input\)"),
    (nn.BatchNorm1d(3), _t(2, 3, 4, 4), ValueError, r"BatchNorm1d\(3\): expected 2D or 3D input \(got 4D input\)"),
    (nn.BatchNorm2d(3), _t(2, 4, 2, 2), RuntimeError,
     r"BatchNorm2d\(3\): expected input with 3 channels, got input of shape \(2, 4, 2, 2\)"),
    (nn.Linear(4, 3), _t(2, 5), RuntimeError,
     r"Linear\(in_features=4, out_features=3, bias=True\): expected input with 4 features in the last "
     r"dimension, got input of shape \(2, 5\)"),
    (nn.Linear(4, 3), _t(), RuntimeError, r"Linear\(.*got input of shape \(\)"),
    (nn.MaxPool2d(2), _t(4, 4), RuntimeError, r"MaxPool2d\(kernel_size=2, .*got input of shape \(4, 4\)"),
    (nn.AvgPool2d(2), _t(1, 1, 1, 4, 4), RuntimeError, r"AvgPool2d\(kernel_size=2.*\(1, 1, 1, 4, 4\)"),
    (nn.AdaptiveAvgPool2d(1), _t(4), RuntimeError, r"AdaptiveAvgPool2d\(output_size=1\): expected 3-D"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 3, 4, 4)), TypeError, r"Conv2d\(3, 4, .*expected input to be a Tensor, got ndarray"),
    (nn.BatchNorm2d(3), [1.0], TypeError, r"BatchNorm2d\(3\): expected a Tensor as input, got list"),
    (nn.ReLU(), 1.0, TypeError, r"ReLU: expected a Tensor as input, got float"),
    (nn.BatchNorm2d(3), tinyres.zeros(2, 3, 2, 2, dtype=tinyres.int64), TypeError,   # batch_norm's checks, named
     r"BatchNorm2d\(3\): expected a floating point input, got int64"),
    (nn.BatchNorm1d(3), _t(1, 3), ValueError, r"BatchNorm1d\(3\): Expected more than 1 value per channel"),
    (nn.GroupNorm(2, 4), tinyres.zeros(2, 4, 3, dtype=tinyres.int64), TypeError,
     r"GroupNorm\(2, 4, eps=1e-05, affine=True, bias=True\): expected a floating point input, got int64"),
    (nn.GroupNorm(2, 4), [1.0], TypeError, r"GroupNorm\(2, 4, .*\): expected a Tensor as input, got list"),
])
def test_bad_input_names_the_layer(layer, input, error, match):
    with pytest.raises(error, match=match):
        layer(input)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_input_is_checked_before_it_counts_the_batch(momentum):
    layer = nn.BatchNorm2d(3, momentum=momentum)
    with pytest.raises(RuntimeError, match="expected input with 3 channels"):
        layer(_t(2, 4, 2, 2))
    assert int(layer.num_batches_tracked) == 0
    layer(tinyres.randn(2, 3, 2, 2))
    assert int(layer.num_batches_tracked) == 1


@pytest.mark.parametrize("build, error, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, r"Conv2d: in_channels \(3\) and out_channels \(4\) must be "
                                                         r"divisible by groups \(2\)"),
    (lambda: nn.Conv2d(3, 3, 3, groups=0), ValueError, "divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="wrap"), ValueError, "padding_mode must be one of .*'wrap'"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "padding string must be 'same' or 'valid'"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, r"Conv2d: kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv1d(3, 4, 3, stride=(1, 1)), TypeError, r"Conv1d: stride must be an int or a tuple of 1 ints"),
    (lambda: nn.Dropout(1.5), ValueError, "Dropout: dropout probability has to be between 0 and 1, but got 1.5"),
])
def test_bad_constructor_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_small_cnn_on_the_gpu_matches_the_cpu(fake_cupy):
    """Through the CuPy double: the model moves whole, and forward/backward stay on the device."""
    model = small_cnn(nn)
    x = randn(2, 3, 9, 8, dtype=np.float32)
    expected = model(tinyres.tensor(x)).numpy()
    model.to("cuda")
    y = model(tinyres.tensor(x, device="cuda"))
    on(y, "cuda:0").sum().backward()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert all(on(p.grad, "cuda:0").dtype == np.float32 for p in model.parameters())
    on(model[1].running_mean, "cuda:0")
