"""``nn.fusion.bn_relu``: a residual block's ``relu(bn(x) + shortcut)`` as one op on a GPU
(``BatchNormReLUFunction``), under the CuPy double, which compiles the fused kernels' own
CUDA-C source.  The check is always the same: the three ops one by one, bit for bit --
outputs, every gradient, the running statistics -- and fewer launches.
"""
import copy

import numpy as np
import pytest

import tinyres
from helpers import randn
from tinyres import autograd, nn
from tinyres.nn import fusion
from tinyres.nn.functional.normalization import BatchNormReLUFunction

DEVICE = "cuda:0"


def same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def unfused(monkeypatch):
    monkeypatch.setattr(fusion, "_foldable", lambda *args: False)


def run(bn, x, shortcut, upstream, fold, monkeypatch):
    """relu(bn(x) + shortcut), forward and backward: the output (and its strides), the gradients,
    the running stats."""
    with monkeypatch.context() as m:
        if not fold:
            unfused(m)
        x = tinyres.tensor(x, device=DEVICE, requires_grad=True)
        r = None if shortcut is None else tinyres.tensor(shortcut, device=DEVICE, requires_grad=True)
        y = fusion.bn_relu(bn, x, nn.ReLU(inplace=True), r)
        assert (type(y.grad_fn) is BatchNormReLUFunction) == fold
        y.backward(tinyres.tensor(upstream, device=DEVICE))
    grads = [x.grad] + ([] if r is None else [r.grad]) + [p.grad for p in bn.parameters()]
    layout = np.array(y.array.strides)                  # laid out as the ops lay it: a GEMM after it rounds alike
    return [y.numpy(), layout] + [g.numpy() for g in grads] + [b.numpy() for b in bn.buffers()]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shortcut", [True, False])
@pytest.mark.parametrize("affine, momentum", [(True, 0.1), (False, None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_folded_equals_the_ops_one_by_one_bit_for_bit(fake_cupy, monkeypatch, training, shortcut, affine,
                                                      momentum, dtype):
    x = randn(4, 3, 5, 6, dtype=dtype) * 2 + 0.5
    x[0, 0, 0, :3] = [0.0, -0.0, np.nan]                      # ReLU's edge values pass through as ReLU's
    r = randn(4, 3, 5, 6, dtype=dtype, seed=1) if shortcut else None
    upstream = randn(4, 3, 5, 6, dtype=dtype, seed=2)
    bn = nn.BatchNorm2d(3, affine=affine, momentum=momentum).to(dtype=tinyres.float64 if dtype == np.float64
                                                                else tinyres.float32).to(DEVICE)
    if affine:
        bn.weight.array[...] = bn.weight.array * 0 + tinyres.tensor([1.5, -0.5, 0.8], device=DEVICE).array.astype(dtype)
    bn.train(training)
    if not training:
        x[0, 0, 0, 2] = 0.25                                   # (a NaN in eval would reach every gradient)
    results = [run(copy.deepcopy(bn), x, r, upstream, fold, monkeypatch) for fold in (True, False)]
    for k, (a, b) in enumerate(zip(*results)):
        assert a.dtype == b.dtype and same(a, b), k


def steps(name, size, monkeypatch):
    """One forward and backward of model ``name`` in float64, folded and not: what came out
    (the loss, every gradient, every buffer) and how many kernels each launched."""
    from cupy_double import STATE
    tinyres.manual_seed(0)
    model = tinyres.models.get_model(name, num_classes=5).to(dtype=tinyres.float64).to(DEVICE)
    x = tinyres.tensor(randn(2, 3, size, size), device=DEVICE)
    y = tinyres.tensor([1, 3], device=DEVICE)
    results, launches = [], []
    for fold in (True, False):
        net = copy.deepcopy(model)
        with monkeypatch.context() as m:
            if not fold:
                unfused(m)
            STATE.launches = 0
            loss = tinyres.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            launches.append(STATE.launches)
        results.append([loss.numpy()] + [p.grad.numpy() for p in net.parameters()]
                       + [b.numpy() for b in net.buffers()])
    assert all(same(a, b) for a, b in zip(*results))
    return model, launches


@pytest.mark.parametrize("name, size", [("resnet20", 8), ("resnet18", 32)])
def test_a_resnet_step_folded_equals_unfolded_and_launches_fewer_kernels(strict_double, monkeypatch, name, size):
    """ResNet-20 and ResNet-18 (the Bottleneck's three folds: below): forward and backward,
    folded and not, bit for bit in float64; the folded step launches fewer kernels."""
    model, launches = steps(name, size, monkeypatch)
    blocks = sum(isinstance(mod, tinyres.models.resnet.BasicBlock) for mod in model.modules())
    folds = 1 + 2 * blocks                         # the stem's and each block's
    # each fold saves ReLU's forward (3 launches: its mask, its output) and backward (1), and
    # each block the shortcut's add (ResNet-20: 576 -> 473)
    assert launches[1] - launches[0] >= 4 * folds + blocks, launches


@pytest.mark.parametrize("name, size", [("preact_resnet20", 8), ("preact_resnet18", 32)])
def test_a_preact_step_folds_every_batch_norm(strict_double, monkeypatch, name, size):
    """Pre-activation blocks: every batch norm is followed by a ReLU (nothing follows the add),
    so each is one op -- bit for bit the ops one by one, 4 launches fewer each."""
    model, launches = steps(name, size, monkeypatch)
    folds = sum(isinstance(mod, nn.BatchNorm2d) for mod in model.modules())
    assert launches[1] - launches[0] >= 4 * folds, launches


def test_bottleneck_folds_three_times(fake_cupy, monkeypatch):
    block = tinyres.models.resnet.Bottleneck(16, 4).to(dtype=tinyres.float64).to(DEVICE)
    x = randn(2, 16, 4, 4)
    out = []
    for fold in (True, False):
        with monkeypatch.context() as m:
            if not fold:
                unfused(m)
            net, t = copy.deepcopy(block), tinyres.tensor(x, device=DEVICE, requires_grad=True)
            y = net(t)
            y.sum().backward()
            out.append([y.numpy(), t.grad.numpy()] + [p.grad.numpy() for p in net.parameters()])
    assert all(same(a, b) for a, b in zip(*out))


def test_it_folds_only_where_nothing_could_tell(fake_cupy):
    bn, relu = nn.BatchNorm2d(2).to(DEVICE), nn.ReLU()
    x = tinyres.tensor(randn(2, 2, 3, 3, dtype=np.float32), device=DEVICE, requires_grad=True)
    folded = lambda *args: type(fusion.bn_relu(*args).grad_fn) is BatchNormReLUFunction   # noqa: E731
    assert folded(bn, x, relu) and folded(bn, x, relu, x * 2)
    assert not folded(nn.BatchNorm2d(2), tinyres.tensor(randn(2, 2, 3, 3, dtype=np.float32), requires_grad=True),
                      relu)                                                  # the CPU: the ops one by one
    assert not folded(bn, x, nn.LeakyReLU(0.0)) and not folded(bn, x, relu, x[:, :1])   # another layer; a broadcast
    assert not folded(nn.SyncBatchNorm(2).to(DEVICE), x, relu)
    seen = []
    handle = bn.register_forward_hook(lambda m, args, out: seen.append(out.numpy()))
    y = fusion.bn_relu(bn, x, relu)
    assert type(y.grad_fn) is not BatchNormReLUFunction and (seen[0] < 0).any()   # the hook saw bn's own output
    handle.remove()
    relu.register_full_backward_hook(lambda m, gi, go: None)
    assert not folded(bn, x, relu)
    plain = nn.Sequential(nn.Identity(), nn.ReLU())
    assert not folded(plain[0], x, plain[1])                                    # a network without batch norm


def test_an_output_changed_in_place_is_an_error_at_backward(fake_cupy):
    bn = nn.BatchNorm2d(2).to(dtype=tinyres.float64).to(DEVICE)
    x = tinyres.tensor(randn(2, 2, 3, 3), device=DEVICE, requires_grad=True)
    y = fusion.bn_relu(bn, x, nn.ReLU())
    z = y * 1
    y.sub_(1)                                     # flips signs: ReLU's mask, read from y, would be wrong
    with pytest.raises(RuntimeError, match=r"BatchNormReLUFunction.*modified by an inplace operation"):
        (z + y).sum().backward()


def test_second_derivatives_through_the_fold_equal_the_ops_one_by_one(fake_cupy, monkeypatch):
    """create_graph differentiates the fold's composite, relu(bn(x) + r)."""
    bn = nn.BatchNorm2d(3).to(dtype=tinyres.float64).to(DEVICE)
    x0, r0 = randn(4, 3, 2, 2) + 0.3, randn(4, 3, 2, 2, seed=1)
    out = []
    for fold in (True, False):
        with monkeypatch.context() as m:
            if not fold:
                unfused(m)
            x = tinyres.tensor(x0, device=DEVICE, requires_grad=True)
            r = tinyres.tensor(r0, device=DEVICE, requires_grad=True)
            y = fusion.bn_relu(copy.deepcopy(bn), x, nn.ReLU(), r)
            gx, = autograd.grad((y * y).sum(), [x], create_graph=True)
            out.append(autograd.grad((gx * gx).sum(), [x, r]))
    for a, b in zip(*out):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_the_fold_passes_gradcheck_and_gradgradcheck(fake_cupy, training):
    """Against finite differences too, not only against the unfolded ops."""
    bn = nn.BatchNorm2d(3).to(dtype=tinyres.float64).to(DEVICE).train(training)
    bn.running_mean.array[...] = bn.running_mean.array + 0.2
    x = tinyres.tensor(randn(3, 3, 2, 2, low=0.1), device=DEVICE, requires_grad=True)
    r = tinyres.tensor(randn(3, 3, 2, 2, seed=1), device=DEVICE, requires_grad=True)

    def fn(x, r):
        y = fusion.bn_relu(bn, x, nn.ReLU(), r)
        assert y.grad_fn is None or type(y.grad_fn) is BatchNormReLUFunction   # (no graph: the numeric part)
        return y
    assert autograd.gradcheck(fn, (x, r))
    assert autograd.gradgradcheck(fn, (x, r))
