"""The whole library on a GPU, under the strict CuPy double (tests/cupy_double.py).

Each row runs once on the CPU and once on ``cuda:1`` (a second GPU, so that an op which
forgets to make its inputs' GPU current fails too) and must give the CPU's numbers, with
the output, every gradient and every state on the device.  The double raises TypeError
wherever a host array meets a device array or NumPy meets device data, so each row also
proves that its code keeps host and device apart.  The rows come from the tables the CPU
tests use (tests/cases.py, the gradcheck table of ``tinyres.checks``, every registered
model): a case added there runs here too.
"""
import copy
import inspect
import json
import os
import pathlib
import textwrap

import numpy as np
import pytest

import tinyres
from cases import (ACTIVATIONS, BASE_LRS, BOUNDARY, CONV1D_CASES, CONV2D_CASES, LAYERS, OPTIMIZERS, PADS, POOL_1D,
                   POOL_2D, POOL_EDGES, SCHEDULES, TIES, distinct)
from cupy_double import on
from helpers import gradcheck, make_trainer, randn, small_data
from tinyres import backend, checks, nn, optim
from tinyres.nn import functional as F
from tinyres.nn.functional import normalization, pooling

REAL = os.environ.get("TINYRES_TEST_CUPY") == "real"      # benchmarks/gpu_check.py on a GPU machine
DEVICE = os.environ.get("TINYRES_TEST_DEVICE", "cuda:0" if REAL else "cuda:1")
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
if REAL:        # other kernels (cuBLAS), other rounding
    TOL = {np.dtype(np.float32): dict(rtol=1e-3, atol=1e-4), np.dtype(np.float64): dict(rtol=1e-8, atol=1e-10)}


def assert_close(device_array, cpu_array, what=""):
    cpu_array = np.asarray(cpu_array)
    np.testing.assert_allclose(device_array, cpu_array, err_msg=what, **TOL.get(cpu_array.dtype, {}))


def run(fn, arrays, device, seed=0):
    """``fn`` on leaves made from ``arrays`` on ``device`` (floats require grad), then backward
    of a random upstream gradient when the output needs one; returns (output, leaves)."""
    leaves = [tinyres.tensor(a, device=device, requires_grad=np.asarray(a).dtype.kind == "f") for a in arrays]
    y = fn(*leaves)
    if y.requires_grad:
        upstream = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
        y.backward(tinyres.tensor(upstream, device=device))
    return y, leaves


def same_on_the_device(fn, arrays, device=DEVICE):
    """``fn``'s output and input gradients on ``device`` equal the CPU's, and stay there."""
    y_cpu, cpu = run(fn, arrays, "cpu")
    y_dev, dev = run(fn, arrays, device)
    assert_close(on(y_dev, device).numpy(), y_cpu.numpy(), "output")
    for i, (c, d) in enumerate(zip(cpu, dev)):
        assert (c.grad is None) == (d.grad is None), i
        if c.grad is not None:
            assert_close(on(d.grad, device).numpy(), c.grad.numpy(), f"gradient of input {i}")
    return y_dev



# ---------------------------------------------------------------------- nn.functional

def _conv2d(p):
    x_shape, w_shape, bias, kwargs = p.values
    arrays = [randn(*x_shape), randn(*w_shape, seed=1)] + ([randn(w_shape[0], seed=2)] if bias else [])
    return pytest.param(lambda x, w, *b: F.conv2d(x, w, *b, **kwargs), arrays, id=f"conv2d-{p.id}")


def _conv1d(p):
    x_shape, w_shape, kwargs = p.values
    arrays = [randn(*x_shape), randn(*w_shape, seed=1), randn(w_shape[0], seed=2)]
    return pytest.param(lambda *t: F.conv1d(*t, **kwargs), arrays, id=f"conv1d-{p.id}")


def _pool(op, shape, kwargs, id):
    return pytest.param(lambda x: getattr(F, op)(x, **kwargs), [distinct(*shape)], id=id)


def _loss(name, fn, shape=(4, 3, 2), target=None):
    return pytest.param(fn, [randn(*shape, seed=3)] + ([] if target is None else [target]), id=name)


_TARGET = np.array([[0, 2], [1, -100], [2, 2], [-100, 0]])     # (N, d1) class indices, two ignored
_SOFT = np.random.default_rng(5).dirichlet(np.ones(3), (4, 2)).transpose(0, 2, 1).copy()   # (N, C, d1)
_WEIGHT = np.array([0.5, 1.0, 2.0])


def _cross_entropy(weighted, reduction, opts):
    def fn(x, t):
        weight = tinyres.tensor(_WEIGHT, device=t.device) if weighted else None
        return F.cross_entropy(x, t, weight, reduction=reduction, **opts)
    return fn


FUNCTIONAL = (
    [_conv2d(p) for p in CONV2D_CASES]
    + [_conv1d(p) for p in CONV1D_CASES]
    + [_pool(*p.values, id=p.id) for p in POOL_2D]
    + [_pool(p.values[0], (2, 3, 9), p.values[1], id=p.id) for p in POOL_1D]
    + [pytest.param(ours, [randn(3, 4, 5, low=0.1)], id=name) for name, (ours, _) in ACTIVATIONS.items()]
    + [pytest.param(lambda x, pad=pad: F.pad(x, pad, value=-1.5), [randn(*shape)], id=f"pad-{pad}")
       for shape, pad in PADS]
    + [pytest.param(F.linear, [randn(4, 5), randn(3, 5, seed=1), randn(3, seed=2)], id="linear"),
       pytest.param(lambda x: F.flatten(x, 1), [randn(2, 3, 2)], id="flatten"),
       pytest.param(lambda x: F.dropout(x, 0.3, training=False), [randn(2, 3)], id="dropout-eval")]
    + [_loss(f"cross_entropy-{reduction}-{'weighted-' * weighted}{opts}", _cross_entropy(weighted, reduction, opts),
             target=_TARGET)
       for reduction in ("mean", "sum", "none") for weighted in (False, True)
       for opts in (dict(), dict(label_smoothing=0.2))]
    + [_loss(f"cross_entropy-ignore_index=2-{reduction}", _cross_entropy(True, reduction, dict(ignore_index=2)),
             target=np.where(_TARGET < 0, 1, _TARGET)) for reduction in ("mean", "sum")]
    + [_loss("cross_entropy-soft-targets", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), target=_SOFT),
       _loss("nll_loss", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t, reduction="sum"), target=_TARGET),
       _loss("bce_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(
           x, t, pos_weight=tinyres.tensor([1.0, 3.0], device=t.device)), target=_SOFT[:, :, :]),
       _loss("mse_loss", lambda x, t: F.mse_loss(x, t, reduction="none"), target=_SOFT)]
    + [pytest.param(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                    [randn(*shape), randn(shape[1], seed=1), randn(shape[1], seed=2)], id=f"batch_norm-{shape}")
       for shape in [(4, 3), (2, 3, 5), (2, 3, 3, 4)]]
    + [pytest.param(lambda x, w, b: F.group_norm(x, 2, w, b), [randn(2, 4, 3, 3), randn(4, seed=1), randn(4, seed=2)],
                    id="group_norm")]
)


@pytest.mark.parametrize("fn, arrays", FUNCTIONAL)
def test_every_functional_op_on_the_device(fake_cupy, fn, arrays):
    same_on_the_device(fn, arrays)


def test_im2col_reads_any_memory_layout_on_the_device(fake_cupy):
    """The GPU's im2col views its input through strides (``as_strided``): a flipped,
    strided, channels-last input must give the CPU's numbers, with stride, dilation and
    uneven padding."""
    base = randn(5, 3, 11, 13)

    def conv(x, w):
        x = x.permute(0, 3, 1, 2)[:, :, ::-1, ::2]        # (5, 3, 11, 7): channels-last memory, flipped, strided
        return F.conv2d(F.pad(x, (1, 2, 0, 1)), w, stride=(2, 3), dilation=(2, 3), padding=1)
    same_on_the_device(conv, [np.ascontiguousarray(base.transpose(0, 2, 3, 1)), randn(4, 3, 3, 2, seed=1)])


EDGE_VALUES = (   # 0, -0, ties, +-inf and NaN, where a piecewise op's rule decides
    [pytest.param(ours, arrays, id=f"boundary-{name}") for name, ours, _, arrays in BOUNDARY]
    + [pytest.param(lambda x, fn=fn: fn(tinyres, x), [np.array(data)], id=f"ties-{name}")
       for name, fn, data in TIES]
    + [pytest.param(lambda x, args=p.values[1]: F.max_pool2d(x, *args), [np.asarray(p.values[0], np.float32)],
                    id=f"max_pool2d-{p.id}") for p in POOL_EDGES]
)


@pytest.mark.parametrize("fn, arrays", EDGE_VALUES)
def test_edge_values_on_the_device(fake_cupy, fn, arrays):
    same_on_the_device(fn, arrays)


@pytest.mark.parametrize("x, args", POOL_EDGES)
def test_max_pool2d_indices_on_the_device_at_edge_values(fake_cupy, x, args):
    """On a GPU max-pool never asks whether there is a NaN (that would stop the step): its
    NaN pass always runs, and must leave the indices as the CPU's."""
    x = np.asarray(x, dtype=np.float32)
    cpu = F.max_pool2d(tinyres.tensor(x), *args, return_indices=True)[1]
    dev = F.max_pool2d(tinyres.tensor(x, device=DEVICE), *args, return_indices=True)[1]
    np.testing.assert_array_equal(on(dev, DEVICE).numpy(), cpu.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_with_running_statistics_on_the_device(fake_cupy, training, dtype):
    x, w, b = randn(4, 3, 2, 2, dtype=dtype), randn(3, dtype=dtype, seed=1), randn(3, dtype=dtype, seed=2)
    stats = {}

    def fn(device):
        def batch_norm(x, w, b):
            stats[device] = [tinyres.tensor(randn(3, dtype=dtype, seed=3), device=device),
                             tinyres.tensor(randn(3, dtype=dtype, seed=4) ** 2 + 0.5, device=device)]
            return F.batch_norm(x, *stats[device], w, b, training=training, momentum=0.2)
        return batch_norm
    y_cpu, _ = run(fn("cpu"), [x, w, b], "cpu")
    y_dev, _ = run(fn(DEVICE), [x, w, b], DEVICE)
    assert_close(on(y_dev, DEVICE).numpy(), y_cpu.numpy())
    for cpu, dev in zip(stats["cpu"], stats[DEVICE]):
        assert_close(on(dev, DEVICE).numpy(), cpu.numpy(), "running statistics")


@pytest.mark.parametrize("case", checks.cases(), ids=lambda c: c.name)
def test_gradcheck_table_on_the_device(fake_cupy, case):
    """The ``tinyres gradcheck`` table, in float64 on the device, at the suite's tolerances."""
    arrays = checks.case_inputs(case)
    inputs = [tinyres.tensor(a, device=DEVICE, requires_grad=a.dtype.kind == "f") for a in arrays]
    assert gradcheck(case.fn, inputs, nsamples=40)


def test_dropout_draws_its_mask_on_the_device(fake_cupy):
    """The mask comes from the device's generator: no host array is made or copied."""
    x = tinyres.tensor(randn(40, 50, dtype=np.float32), device=DEVICE, requires_grad=True)
    y = F.dropout(x, 0.25)
    y.backward(tinyres.ones(40, 50, device=DEVICE))
    kept = on(y, DEVICE).numpy() != 0
    assert 0.6 < kept.mean() < 0.9
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(on(x.grad, DEVICE).numpy(), kept / np.float32(0.75))


def test_a_seed_repeats_the_devices_dropout_masks(fake_cupy):
    """``tinyres.manual_seed`` (and ``tinyres.cuda.manual_seed``) restart the GPU's stream,
    also after draws were made."""
    x = tinyres.tensor(randn(30, 40), device=DEVICE)
    tinyres.manual_seed(3)
    first = [F.dropout(x).numpy() for _ in range(2)]
    assert not np.array_equal(*first)
    tinyres.cuda.manual_seed(3)
    assert np.array_equal(F.dropout(x).numpy(), first[0]) and tinyres.cuda.initial_seed() == 3
    tinyres.manual_seed(3)
    assert np.array_equal(F.dropout(x).numpy(), first[0])
    with pytest.raises(TypeError, match=r"cuda.manual_seed: expected an int seed, got str"):
        tinyres.cuda.manual_seed("3")


def test_each_gpu_has_its_own_dropout_stream(strict_double):
    """One seed for all (``manual_seed_all``), one stream per GPU: a draw on one GPU does not
    move another's, and each state is made and reset on its own GPU (the double checks)."""
    x0, x1 = (tinyres.tensor(randn(30, 40), device=d) for d in ("cuda:0", "cuda:1"))
    tinyres.cuda.manual_seed_all(8)
    on_0 = F.dropout(x0).numpy()
    assert np.array_equal(F.dropout(x1).numpy(), on_0)
    tinyres.manual_seed(8)
    assert np.array_equal(F.dropout(x1).numpy(), on_0) and np.array_equal(F.dropout(x0).numpy(), on_0)


def test_indexing_backward_is_a_deterministic_scatter_add(fake_cupy):
    """Repeated indices add up, on both backends, as ``numpy.add.at`` would."""
    index = np.array([[0, 2, 2], [3, 0, 2]])
    x = randn(4, 5)
    expected = np.zeros_like(x)
    upstream = randn(2, 3, 5, seed=1)
    np.add.at(expected, index, upstream)
    for device in ("cpu", DEVICE):
        t = tinyres.tensor(x, device=device, requires_grad=True)
        t[tinyres.tensor(index, device=device)].backward(tinyres.tensor(upstream, device=device))
        np.testing.assert_allclose(on(t.grad, device).numpy(), expected, rtol=1e-12 if REAL else 1e-15)


# ---------------------------------------------------------------------- layers and models

@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_on_the_device(fake_cupy, layer):
    build, shape = LAYERS[layer]
    tinyres.manual_seed(0)
    cpu = build(nn)
    dev = copy.deepcopy(cpu).to(DEVICE)
    x = randn(*shape, dtype=np.float32, low=0.01)
    for step in range(2):                         # BatchNorm's running statistics move in between
        y_cpu, (xc,) = run(cpu, [x * (step + 1)], "cpu", seed=step)
        y_dev, (xd,) = run(dev, [x * (step + 1)], DEVICE, seed=step)
        assert_close(on(y_dev, DEVICE).numpy(), y_cpu.numpy(), layer)
        assert_close(on(xd.grad, DEVICE).numpy(), xc.grad.numpy(), "input gradient")
    for (name, p), q in zip(cpu.named_parameters(), dev.parameters()):
        assert_close(on(q.grad, DEVICE).numpy(), p.grad.numpy(), f"gradient of {name}")
    for (name, a), b in zip(cpu.state_dict().items(), dev.state_dict().values()):
        assert_close(on(b, DEVICE).numpy(), a.numpy(), name)


@pytest.fixture
def one_thread():
    """CPU ops on the calling thread only: then the CPU and the double (NumPy, never split)
    add in the same order, and a deep model's numbers can be compared exactly."""
    previous = tinyres.get_num_threads()
    tinyres.set_num_threads(1)
    yield
    tinyres.set_num_threads(previous)


DEEP_IMAGENET = ("resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2")


@pytest.mark.parametrize("name", tinyres.models.list_models())
def test_every_model_forward_and_backward_on_the_device(fake_cupy, name):
    """In float64: the fused GPU kernels (batch norm's reductions) sum in another order
    than the CPU, and batch statistics of two values (1x1 maps in the last stage) amplify
    that rounding a millionfold -- float64's 1e-16 stays far below 1e-6, a wrong number
    does not.  The deep ImageNet models run on larger images (and on a real GPU, all of
    them): on 17x17 their last stages' statistics of two values amplify even float64's
    rounding past 1e-6 in 50+ layers (resnet152's logits: 1e-4 apart at 17x17, within
    1e-6 at 33x33, whose last stage is 2x2 as 64x64's)."""
    tinyres.manual_seed(0)
    cpu = tinyres.models.get_model(name, num_classes=5).to(dtype=tinyres.float64)
    dev = copy.deepcopy(cpu).to(DEVICE)
    x = randn(4, 3, 33, 33, dtype=np.float64) if REAL or name in DEEP_IMAGENET else randn(2, 3, 17, 17, dtype=np.float64)
    y_cpu, _ = run(cpu, [x], "cpu")
    y_dev, _ = run(dev, [x], DEVICE)
    tol = dict(rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(on(y_dev, DEVICE).numpy(), y_cpu.numpy(), **tol)
    grad_tol = dict(rtol=0, atol=1e-6)      # within 1e-6 of the tensor's largest
    for (key, p), q in zip(cpu.named_parameters(), dev.parameters()):
        scale = float(np.abs(p.grad.numpy()).max()) + 1e-30
        np.testing.assert_allclose(on(q.grad, DEVICE).numpy() / scale, p.grad.numpy() / scale, **grad_tol,
                                   err_msg=key)


# ---------------------------------------------------------------------- optimizers, schedulers

def _params(device, dtype=np.float32):
    return [tinyres.tensor(a.astype(dtype), device=device, requires_grad=True)
            for a in (randn(3, 4), randn(4, seed=1), randn(1, 1, 2, seed=2))]


def _steps(opt, params, device, n=3):
    for k in range(n):
        for i, p in enumerate(params):
            p.grad = tinyres.tensor(randn(*p.shape, seed=10 * k + i).astype(p.dtype), device=device)
        opt.step()


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_every_optimizer_steps_on_the_device_and_round_trips_its_state(fake_cupy, name, kwargs):
    results = {}
    for device in ("cpu", DEVICE):
        params = _params(device)
        opt = getattr(optim, name)(params, **kwargs)
        _steps(opt, params, device)
        results[device] = (params, opt)
    (cpu, _), (dev, opt) = results["cpu"], results[DEVICE]
    for p, q in zip(cpu, dev):
        assert_close(on(q, DEVICE).numpy(), p.numpy())
    for state in opt.state.values():               # the optimizer's buffers live on the device
        for value in state.values():
            if backend.is_array(value) and value.ndim:
                assert backend.is_device_array(value)
    saved = opt.state_dict()                       # host copies, loadable anywhere
    again = getattr(optim, name)(_params(DEVICE), **kwargs)
    again.load_state_dict(saved)
    with backend.on_device(DEVICE):
        for p, q in zip(dev, again.param_groups[0]["params"]):
            q.array[...] = p.array
    _steps(opt, dev, DEVICE, 1)
    _steps(again, again.param_groups[0]["params"], DEVICE, 1)
    for p, q in zip(dev, again.param_groups[0]["params"]):
        np.testing.assert_array_equal(on(q, DEVICE).numpy(), p.numpy())


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_scheduler_with_an_optimizer_on_the_device(fake_cupy, name):
    lrs = {}
    for device in ("cpu", DEVICE):
        params = _params(device)
        opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, BASE_LRS)],
                        momentum=0.9)
        scheduler = SCHEDULES[name](optim.lr_scheduler, opt)
        lrs[device] = []
        for k in range(6):
            _steps(opt, params, device, 1)
            scheduler.step()
            lrs[device].append(scheduler.get_last_lr())
        state = scheduler.state_dict()
        scheduler.load_state_dict(state)
    assert lrs["cpu"] == lrs[DEVICE]


# ---------------------------------------------------------------------- data, training, checkpoints

def test_data_loader_puts_batches_on_the_device(fake_cupy):
    from tinyres.data import DataLoader, transforms
    data = small_data(20)
    normalize = transforms.Normalize(transforms.MNIST_MEAN, transforms.MNIST_STD)
    cpu = list(DataLoader(data, 8, shuffle=True, seed=1, transform=normalize))
    dev = list(DataLoader(data, 8, shuffle=True, seed=1, transform=normalize, device=DEVICE))
    assert len(cpu) == len(dev) == 3
    for (xc, yc), (xd, yd) in zip(cpu, dev):
        np.testing.assert_array_equal(on(xd, DEVICE).numpy(), xc.numpy())
        np.testing.assert_array_equal(on(yd, DEVICE).numpy(), yc.numpy())


def _trainer(tmp_path, device, epochs):
    trainer = make_trainer(tmp_path, epochs)
    trainer.model.to(device)
    for loader in (trainer.train_loader, trainer.test_loader):
        loader.device = device
    return trainer


def test_trainer_epoch_checkpoint_and_resume_on_the_device(fake_cupy, tmp_path):
    """Two epochs straight, and one epoch + resume + one epoch, on the device: the same
    weights, bit for bit (dropout's device generator is reset per epoch too)."""
    straight = _trainer(tmp_path / "a", DEVICE, 2)
    straight.fit()
    first = _trainer(tmp_path / "b", DEVICE, 1)
    first.fit()
    resumed = _trainer(tmp_path / "b", DEVICE, 2)
    assert resumed.resume() == 1
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(on(resumed.model.state_dict()[key], DEVICE).numpy(), value.numpy(), key)
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


def test_trainer_on_the_device_follows_the_cpu(fake_cupy, tmp_path):
    """Without dropout (whose masks come from each device's own generator), an epoch on
    the device gives the CPU's weights and figures."""
    runs = {}
    for device in ("cpu", DEVICE):
        runs[device] = _trainer(tmp_path / device, device, 1)
        runs[device].model[3].p = 0.0
        runs[device].fit()
    for key, value in runs["cpu"].model.state_dict().items():
        np.testing.assert_allclose(on(runs[DEVICE].model.state_dict()[key], DEVICE).numpy(), value.numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=key)
    (cpu,), (dev,) = runs["cpu"].history, runs[DEVICE].history
    assert dev["test_accuracy"] == cpu["test_accuracy"]
    np.testing.assert_allclose(dev["train_loss"], cpu["train_loss"], rtol=1e-5)


def test_a_checkpoint_saved_from_the_device_loads_on_a_cpu_only_machine(fake_cupy, tmp_path, monkeypatch):
    tinyres.manual_seed(0)
    model = tinyres.models.resnet20(num_classes=3).to(DEVICE)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(model(tinyres.randn(2, 3, 8, 8, device=DEVICE)), tinyres.tensor([0, 2], device=DEVICE)).backward()
    opt.step()
    tinyres.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.npz")
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    monkeypatch.setattr(backend, "_cupy", None)                    # now no CuPy at all
    monkeypatch.setattr(backend, "_cupy_error", ImportError("No module named 'cupy'"))
    state = tinyres.load(tmp_path / "c.npz")
    cpu = tinyres.models.resnet20(num_classes=3)
    cpu.load_state_dict(state["model"])
    cpu_opt = optim.SGD(cpu.parameters(), lr=0.1, momentum=0.9)
    cpu_opt.load_state_dict(state["optimizer"])
    for key, value in cpu.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key], key)
    assert all(type(s["momentum_buffer"]) is np.ndarray for s in cpu_opt.state.values())


def test_tinyres_train_on_cuda_end_to_end(fake_cupy, tmp_path, capsys):
    from tinyres.cli import main
    code = main(["train", "--model", "resnet8", "--dataset", "bundled", "--epochs", "1", "--batch-size", "16",
                    "--subset", "48", "--device", "cuda", "--out", str(tmp_path), "--no-progress"])
    assert code == 0, capsys.readouterr()
    state = tinyres.load(tmp_path / "checkpoint.npz")
    assert state["epoch"] == 1 and np.isfinite(state["history"][0]["train_loss"])
    capsys.readouterr()
    for device in ("cuda", "cpu"):         # evaluation on the device: the CPU's figures
        assert main(["eval", str(tmp_path / "checkpoint.npz"), "--device", device, "--json", "--subset", "64"]) == 0
    gpu, cpu = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:])
    assert gpu["confusion"] == cpu["confusion"]


# ---------------------------------------------------------------------- no host round trips

@pytest.mark.parametrize("name, size", [("resnet20", 8), ("resnet18", 17)])   # resnet18: the max-pool too
def test_a_training_step_makes_no_device_to_host_transfer(strict_double, name, size):
    """Forward, loss (ignore_index, label smoothing), backward and the optimizer's step of a
    ResNet with dropout: everything stays on the device."""
    tinyres.manual_seed(0)
    model = nn.Sequential(tinyres.models.get_model(name, num_classes=4), nn.Dropout(0.2)).to(DEVICE)
    images = tinyres.randn(4, 3, size, size, device=DEVICE)
    labels = tinyres.tensor([0, 3, -100, 1], device=DEVICE)
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
                optim.AdamW(model.parameters(), lr=1e-3, amsgrad=True)):
        for step in range(2):                      # the first step makes the buffers, the second reuses them
            del strict_double.transfers[:]
            loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert strict_double.transfers == [], f"{type(opt).__name__} step {step}"


@pytest.mark.parametrize("name, size", [("resnet20", 8), ("resnet18", 17)])
def test_a_training_step_makes_no_host_to_device_copy(strict_double, name, size):
    """Nor the other way: the backward's seed and the scalars of ops (``x * 0.5``) are filled
    on the device, not copied from the host (a CUDA-graph capture refuses such copies)."""
    from cupy_double import STATE
    model = tinyres.models.get_model(name, num_classes=4).to(DEVICE)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images, labels = tinyres.randn(4, 3, size, size, device=DEVICE), tinyres.tensor([0, 3, 2, 1], device=DEVICE)
    for step in range(2):
        STATE.uploads.clear()
        loss = F.cross_entropy(model(images), labels) * 0.5 + 1
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert STATE.uploads == [], step


def test_the_trainer_transfers_only_the_logged_figures(strict_double, tmp_path):
    trainer = _trainer(None, DEVICE, 1)
    trainer.test_loader = None
    del strict_double.transfers[:]
    trainer.fit()
    steps = len(trainer.train_loader)
    assert steps == 3
    assert len(strict_double.transfers) <= 2, strict_double.transfers    # the epoch's loss and accuracy, together


def test_a_diverging_run_on_the_device_stops_at_the_first_look(fake_cupy, tmp_path):
    """The loss is read every ``log_every`` steps on a GPU: a NaN still stops the run."""
    from tinyres.train import TrainingDiverged
    trainer = _trainer(tmp_path, DEVICE, 1)
    trainer.log_every = 2
    trainer.optimizer.param_groups[0]["lr"] = 1e30
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step [23]"):
        trainer.fit()


def test_a_bad_target_on_the_device_makes_the_loss_nan_and_detect_anomaly_names_it(fake_cupy):
    """Checking target ranges would read the targets back at every step: on a GPU a target
    out of range makes its loss NaN (the Trainer stops on it); the debug mode checks."""
    x = tinyres.randn(3, 4, device=DEVICE, requires_grad=True)
    target = tinyres.tensor([0, 7, 2], device=DEVICE)
    loss = F.cross_entropy(x, target, reduction="none")
    values = loss.numpy()
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()
    with tinyres.autograd.detect_anomaly(), pytest.raises(IndexError, match="target 7 is out of bounds for 4"):
        F.cross_entropy(x, target)
    with pytest.raises(IndexError, match="target 7 is out of bounds"):          # the CPU always checks
        F.cross_entropy(x.cpu(), target.cpu())


def test_an_optimizer_over_two_devices_names_both_and_the_fix(fake_cupy):
    """One optimizer, one device (a model moved after its optimizer was made would leave
    the optimizer's state behind); one optimizer per device still updates each in place."""
    params = [tinyres.zeros(2, requires_grad=True), tinyres.zeros(2, device=DEVICE, requires_grad=True)]
    with pytest.raises(ValueError, match=rf"SGD: parameters on cpu and {DEVICE}.*model\.to\(device\)"):
        optim.SGD(params, lr=0.5)
    opt = optim.SGD(params[:1], lr=0.5)
    with pytest.raises(ValueError, match=f"parameters on cpu and {DEVICE}"):
        opt.add_param_group({"params": params[1:]})
    opts = [optim.SGD([p], lr=0.5, momentum=0.9) for p in params]
    for p, opt in zip(params, opts):
        p.grad = tinyres.ones(2, device=p.device)
        opt.step()
    on(params[0], "cpu"), on(params[1], DEVICE)
    on(tinyres.Tensor(opts[1].state[params[1]]["momentum_buffer"]), DEVICE)
    np.testing.assert_array_equal(params[1].numpy(), params[0].numpy())


def test_a_host_batch_for_a_model_on_the_device_names_both_devices_and_the_fix(fake_cupy):
    model = nn.Linear(3, 2).to(DEVICE)
    with pytest.raises(RuntimeError,
                       match=rf"LinearFunction: expected all tensors on one device, got cpu, {DEVICE}.*\.to\("):
        model(tinyres.zeros(1, 3))


def test_the_gpu_extra_asks_for_a_cupy_that_supports_numpy_2():
    """numpy>=1.23 admits NumPy 2, which CuPy supports from 13.3 (before it, copyto from a
    Python int fails, among others)."""
    import re
    text = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'"numpy>=1\.\d+"', text)          # no upper bound: NumPy 2 is allowed
    version = re.search(r'"cupy-cuda12x>=([\d.]+)"', text).group(1)
    assert tuple(map(int, version.split("."))) >= (13, 3)


# ---------------------------------------------------------------------- the double bites

def plant(monkeypatch, owner, name, old, new):
    """Replace ``owner.name`` (a function or method) by its source with ``old`` made ``new``."""
    function = getattr(owner, name)
    source = textwrap.dedent(inspect.getsource(function))
    assert old in source, (name, old)
    namespace = dict(function.__globals__, numpy=np)        # a planted bug may need NumPy
    exec(compile(source.replace(old, new), inspect.getsourcefile(function), "exec"), namespace)
    monkeypatch.setattr(owner, name, namespace[name])


PLANTS = {       # the three bugs of issue 9, each a host array in a device op
    "max_pool2d argmax buffer made with numpy.zeros": (
        pooling, "_window_max", "xp, xp.zeros)", "xp, numpy.zeros)", lambda x: F.max_pool2d(x, 3, 2, 1)),
    "batch_norm eps as a NumPy array": (
        normalization.BatchNormFunction, "forward", "dtype(eps)", "numpy.asarray(eps, dtype)",
        lambda x: F.batch_norm(x, tinyres.zeros(x.shape[1], device=x.device), tinyres.ones(x.shape[1], device=x.device))),
    "avg_pool2d divisor left on the host": (
        pooling, "_avg_pool", "to_device(numpy.outer(rows, cols).astype(x.dtype), x.device)",
        "numpy.outer(rows, cols).astype(x.dtype)", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
}


@pytest.mark.parametrize("plant_name", PLANTS)
def test_the_double_catches_a_host_array_planted_in_a_device_op(strict_double, monkeypatch, plant_name):
    owner, name, old, new, op = PLANTS[plant_name]
    arrays = [distinct(2, 3, 7, 6)]
    same_on_the_device(op, arrays)                   # as written: it passes
    plant(monkeypatch, owner, name, old, new)
    same_on_the_device(op, arrays, device="cpu")     # planted: the CPU cannot tell ...
    with pytest.raises(TypeError, match="host .NumPy. array"):
        same_on_the_device(op, arrays)               # ... the double can


def test_the_double_refuses_what_cupy_refuses(strict_double):
    d = strict_double.arange(6.0)
    h = np.arange(6.0)
    for mixed in (lambda: d + h, lambda: h + d, lambda: strict_double.where(h > 2, d, d), lambda: np.asarray(d),
                  lambda: np.exp(d), lambda: np.sum(d), lambda: d.__array__()):
        with pytest.raises(TypeError):
            mixed()
    with pytest.raises(AttributeError, match="atomics"):
        strict_double.add.at(d, [0], 1.0)
    float(d.sum()), d[1].item(), bool(d[2]), int(d[3]), d.get(), strict_double.asnumpy(d)
    assert [t.split(" at ")[0] for t in strict_double.transfers] == [
        "float()", "item()", "bool()", "int()", "get()", "get()"]
    with strict_double.cuda.Device(1), pytest.raises(ValueError, match="on GPU 0 used while GPU 1 is current"):
        d * 2


def test_the_gpu_check_script_runs_through_the_double():
    """benchmarks/gpu_check.py is run by hand on a GPU machine; its dry run keeps it working."""
    import subprocess
    import sys
    script = pathlib.Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--double"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "  device-to-host transfers in a ResNet-20 step (double): 0  ok" in result.stdout
    launches = result.stdout.split("kernel launches in a ResNet-20 step (double; 1,682 before the fused kernels): ")
    assert len(launches) == 2 and int(launches[1].split()[0]) < 700, result.stdout[-3000:]
    assert "  graphed ResNet-20 float64, 4 steps: replay == eager bit for bit: True  ok" in result.stdout
    graphed = result.stdout.split("host launches in a graphed ResNet-20 step (double: graph pieces + cuBLAS products): ")
    assert len(graphed) == 2 and int(graphed[1].split()[0]) < 150 and graphed[1].split()[1] == "ok", result.stdout[-3000:]
