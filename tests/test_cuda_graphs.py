"""CUDA graphs (``tinyres.cuda.graphs``) under the CuPy double, which captures as CuPy does:
a captured operation is recorded, not run, and what a capture cannot hold (a value read
back, a synchronisation, a host copy, cuBLAS, legacy cuRAND) raises, naming it; dropout's
Philox kernel is captured and draws new masks at every replay.

The central check: a ResNet training step replayed from a graph equals the eager step
bit for bit in float64, for several steps with the learning rate changed by a schedule
in between -- parameters, batch-norm buffers and optimizer state.  On a real GPU
(``TINYRES_TEST_CUPY=real``, benchmarks/gpu_check.py) the rows that need no double run too.
"""
import copy
import os

import numpy as np
import pytest

import tinyres
from helpers import randn
from tinyres import backend, optim
from tinyres.cuda import CUDAGraph, graph, make_graphed_step
from tinyres.nn import functional as F

REAL = os.environ.get("TINYRES_TEST_CUPY") == "real"
DEVICE = "cuda:0"


@pytest.fixture
def one_thread():
    previous = tinyres.get_num_threads()
    tinyres.set_num_threads(1)
    yield
    tinyres.set_num_threads(previous)


def batches(n, size=8, classes=4, batch=4):
    rng = np.random.default_rng(0)
    return [(tinyres.tensor(rng.standard_normal((batch, 3, size, size)), device=DEVICE),
             tinyres.tensor(rng.integers(0, classes, batch), device=DEVICE)) for _ in range(n)]


def training(model, make_optimizer, milestones=(3,)):
    """A step function (forward, loss, backward, optimizer), its optimizer and a schedule."""
    opt = make_optimizer(model.parameters())
    schedule = optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)

    def step(x, y):
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step, opt, schedule


OPTIMIZERS = {
    "sgd-nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "sgd-plain": lambda p: optim.SGD(p, lr=0.05),
    "adam-amsgrad": lambda p: optim.Adam(p, lr=1e-3, amsgrad=True, weight_decay=1e-4),
    "adamw": lambda p: optim.AdamW(p, lr=1e-3),
}


def same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_replayed_training_step_equals_the_eager_step_bit_for_bit(fake_cupy, one_thread, name):
    tinyres.manual_seed(0)
    model = tinyres.models.resnet20(num_classes=4).to(dtype=tinyres.float64).to(DEVICE)
    eager_model, graphed_model = copy.deepcopy(model), copy.deepcopy(model)
    eager, eager_opt, eager_schedule = training(eager_model, OPTIMIZERS[name])
    step, graphed_opt, graphed_schedule = training(graphed_model, OPTIMIZERS[name])
    static = (tinyres.zeros(4, 3, 8, 8, dtype=tinyres.float64, device=DEVICE),
              tinyres.zeros(4, dtype=tinyres.int64, device=DEVICE))
    graphed = make_graphed_step(step, *static, warmup=1)
    for k, (x, y) in enumerate(batches(6)):
        expected = eager(x, y).item()
        got = graphed(x, y)
        assert got.item() == expected, k                 # the loss, read from the static output
        if k >= 1:
            assert got is graphed.outputs                # the capture's tensor, overwritten by each replay
        eager_schedule.step()
        graphed_schedule.step()                          # lr 0.1x from the 4th step: read by the replays
    assert graphed.graph is not None and graphed.calls == 6
    for (key, a), b in zip(eager_model.state_dict().items(), graphed_model.state_dict().values()):
        assert same(a, b), key                           # weights, running statistics, num_batches_tracked
    a, b = eager_opt.state_dict(), graphed_opt.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for key in a["state"][i]:
            assert same(a["state"][i][key], b["state"][i][key]), (i, key)   # Adam's step counts too


def test_a_captured_dropout_draws_new_masks_at_every_replay(fake_cupy):
    """The mask's Philox counter advances on the device: each replay draws the next numbers,
    the very masks eager calls from the same seed draw."""
    x = tinyres.tensor(randn(6, 5) + 3, device=DEVICE)
    tinyres.cuda.manual_seed(11)
    eager = [F.dropout(x, 0.4).numpy() for _ in range(3)]
    tinyres.cuda.manual_seed(11)
    g = CUDAGraph()
    with graph(g):
        y = F.dropout(x, 0.4)
    replayed = []
    for _ in range(3):
        g.replay()
        replayed.append(y.numpy())
    assert all(same(a, b) for a, b in zip(eager, replayed))
    assert not same(replayed[0], replayed[1]) and 0 < (replayed[0] == 0).mean() < 1


@pytest.mark.parametrize("name", ["sgd-nesterov", "adamw"])
def test_a_replayed_step_with_dropout_equals_the_eager_steps(fake_cupy, one_thread, name):
    """A network with dropout, graphed: from the same seed, bit for bit the eager run."""
    tinyres.manual_seed(0)
    model = tinyres.nn.Sequential(tinyres.models.resnet20(num_classes=8), tinyres.nn.ReLU(),
                                  tinyres.nn.Dropout(0.3), tinyres.nn.Linear(8, 4))
    model = model.to(dtype=tinyres.float64).to(DEVICE)
    eager_model, graphed_model = copy.deepcopy(model), copy.deepcopy(model)
    data = batches(4)
    tinyres.cuda.manual_seed(5)
    eager, _, _ = training(eager_model, OPTIMIZERS[name])
    expected = [eager(x, y).item() for x, y in data]
    tinyres.cuda.manual_seed(5)
    step, _, _ = training(graphed_model, OPTIMIZERS[name])
    graphed = make_graphed_step(step, *(t * 0 for t in data[0]), warmup=1)
    assert [graphed(x, y).item() for x, y in data] == expected
    for (key, a), b in zip(eager_model.state_dict().items(), graphed_model.state_dict().values()):
        assert same(a, b), key


def test_replaying_takes_a_few_launches_instead_of_one_per_kernel(strict_double):
    from cupy_double import STATE
    model = tinyres.models.resnet20(num_classes=4).to(DEVICE)
    step, _, _ = training(model, OPTIMIZERS["sgd-nesterov"])
    x, y = batches(1)[0]
    x = x.float()
    graphed = make_graphed_step(step, x, y, warmup=1)
    counts = []
    for _ in range(3):
        STATE.launches = 0
        graphed(x, y)
        counts.append(STATE.launches)
    eager, capture_and_replay, replay = counts
    assert replay == graphed.graph.launches          # the pieces and the matrix products between them
    n_products = 3 * 19 + 2                           # 19 convolutions: y, gx, gw (the first: no gx); the linear: 3
    assert replay <= 2 * n_products + 2 < eager / 4, counts


def test_a_capture_records_without_running(fake_cupy):
    x = tinyres.tensor(np.arange(4.0), device=DEVICE)
    g = CUDAGraph()
    with graph(g):
        y = x * 2
        x.array[...] = x.array + 1                # not run either: x keeps its values until the replay
        z = x.matmul(x)                         # a product: the graph is cut there
    if not REAL:
        assert np.isnan(y.numpy()).all()        # a captured kernel's output holds nothing yet
        assert same(x.numpy(), np.arange(4.0))
    g.replay()
    assert same(y.numpy(), 2 * np.arange(4.0)) and same(x.numpy(), np.arange(4.0) + 1)
    assert z.item() == float((np.arange(4.0) + 1) @ (np.arange(4.0) + 1))
    assert g.launches == 3                      # piece, product, piece
    g.replay()
    assert same(x.numpy(), np.arange(4.0) + 2) and same(y.numpy(), 2 * (np.arange(4.0) + 1))


@pytest.mark.parametrize("what, fn, message", [
    ("a value read back", lambda x: x.sum().item(), r"item\(\) \(a device-to-host copy\).*inside a CUDA-graph"),
    ("float of a tensor", lambda x: float(x.sum()), r"\(a device-to-host copy\) at core/tensor.py"),
    ("a host copy", lambda x: tinyres.tensor(np.ones(3), device=DEVICE), r"host-to-device copy"),
    ("cuBLAS directly", lambda x: backend.xp_for(DEVICE).matmul(x.array, x.array), r"cupy#6290"),
    ("legacy cuRAND", lambda x: backend.xp_for(DEVICE).random.random_sample((3,)), r"legacy cuRAND"),
    ("a synchronisation", lambda x: backend.xp_for(DEVICE).cuda.Device(0).synchronize(), r"synchronize"),
    ("nonzero", lambda x: x.array.nonzero(), r"output size"),
])
def test_what_a_capture_cannot_hold_fails_and_names_itself(strict_double, what, fn, message):
    x = tinyres.tensor(randn(3, 3), device=DEVICE)
    g = CUDAGraph()
    with pytest.raises(RuntimeError, match=message):
        with graph(g):
            fn(x)
    assert not backend.is_capturing() and g.launches == 0       # the capture was abandoned, nothing kept
    with pytest.raises(RuntimeError, match="nothing was captured"):
        g.replay()
    assert same((x * 1).numpy(), x.numpy())                       # and eager work goes on as before


def test_work_on_another_stream_during_a_capture_is_refused(strict_double):
    x = tinyres.tensor(randn(3), device=DEVICE)
    g = CUDAGraph()
    with pytest.raises(RuntimeError, match="on another stream while a stream is capturing"):
        with graph(g):
            with strict_double.cuda.Stream.null:
                x * 2


def test_the_default_stream_cannot_be_captured(fake_cupy):
    with pytest.raises(RuntimeError, match="legacy default stream.*tinyres.cuda.graph"):
        CUDAGraph().capture_begin()
    assert not backend.is_capturing()


def test_a_first_optimizer_step_cannot_be_captured(fake_cupy):
    model = tinyres.models.resnet20(num_classes=4).to(DEVICE)
    for name in ("sgd-nesterov", "adamw"):
        step, _, _ = training(copy.deepcopy(model), OPTIMIZERS[name])
        x, y = batches(1)[0]
        graphed = make_graphed_step(step, x.float(), y, warmup=0)
        with pytest.raises(RuntimeError, match="first step.*warm-up steps before the capture"):
            graphed(x.float(), y)
        assert not backend.is_capturing()


def test_an_option_changed_after_the_capture_is_refused_at_the_replay(fake_cupy):
    model = tinyres.models.resnet20(num_classes=4).to(DEVICE)
    step, opt, _ = training(model, OPTIMIZERS["sgd-nesterov"])
    x, y = batches(1)[0]
    graphed = make_graphed_step(step, x.float(), y, warmup=1)
    graphed(x.float(), y)
    graphed(x.float(), y)
    opt.param_groups[0]["lr"] = 0.01                           # the learning rate may change
    graphed(x.float(), y)
    opt.param_groups[0]["momentum"] = 0.5                      # the rest is baked into the graph
    with pytest.raises(RuntimeError, match=r"SGD: momentum from 0.9 to 0.5 since the CUDA graph was captured"):
        graphed(x.float(), y)


def small_model():
    tinyres.manual_seed(0)
    nn = tinyres.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 4)).to(dtype=tinyres.float64).to(DEVICE)


def assert_same_training(model_a, opt_a, model_b, opt_b):
    for (key, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert same(a, b), key
    a, b = opt_a.state_dict(), opt_b.state_dict()
    for i in a["state"]:
        for key in a["state"][i]:
            assert same(a["state"][i][key], b["state"][i][key]), (i, key)


def test_a_failed_capture_takes_back_the_steps_it_counted(fake_cupy, one_thread):
    eager_model, model = small_model(), small_model()
    eager, eager_opt, _ = training(eager_model, OPTIMIZERS["adam-amsgrad"])
    plain, opt, _ = training(model, OPTIMIZERS["adam-amsgrad"])
    planted = [True]

    def step(x, y):
        loss = plain(x, y)                              # Adam's step counted on the host, recorded on the device
        if planted[0] and backend.is_capturing():
            raise ValueError("planted")
        return loss
    data = batches(4)
    graphed = make_graphed_step(step, *data[0], warmup=1)
    eager(*data[0]), graphed(*data[0])
    with pytest.raises(ValueError, match="planted"):
        graphed(*data[1])                               # the capture fails: nothing ran
    assert graphed.graph is None and not backend.is_capturing()
    assert {s["step"] for s in opt.state.values()} == {1}
    planted[0] = False
    for x, y in data[1:]:                               # the next call captures again, and replays
        assert graphed(x, y).item() == eager(x, y).item()
    assert {s["step"] for s in opt.state.values()} == {4}
    assert_same_training(eager_model, eager_opt, model, opt)


def test_a_capture_may_hold_several_optimizer_steps(fake_cupy, one_thread):
    eager_model, model = small_model(), small_model()
    eager, eager_opt, _ = training(eager_model, OPTIMIZERS["adamw"])
    plain, opt, _ = training(model, OPTIMIZERS["adamw"])
    graphed = make_graphed_step(lambda x, y: (plain(x, y), plain(x, y)), *batches(1)[0], warmup=1)
    for x, y in batches(3):
        first, second = eager(x, y).item(), eager(x, y).item()
        got = graphed(x, y)
        assert (got[0].item(), got[1].item()) == (first, second)
    assert {s["step"] for s in opt.state.values()} == {6}            # two per call, the replays' too
    assert_same_training(eager_model, eager_opt, model, opt)


def test_a_capture_that_cannot_end_is_abandoned(fake_cupy):
    x = tinyres.tensor(randn(3), device=DEVICE)
    g = CUDAGraph()
    with pytest.raises(RuntimeError, match="planted end"):
        with graph(g):
            x * 2
            end = g._stream.end_capture

            def failing_end():
                end()
                raise RuntimeError("planted end")
            g._stream.end_capture = failing_end
    assert not backend.is_capturing() and g.launches == 0 and g._allocation is None


def test_state_loaded_or_groups_added_after_the_capture_are_refused_at_the_replay(fake_cupy):
    model = small_model()
    step, opt, _ = training(model, OPTIMIZERS["adamw"])
    x, y = batches(1)[0]
    graphed = make_graphed_step(step, x, y, warmup=1)
    graphed(x, y), graphed(x, y)
    opt.load_state_dict(opt.state_dict())               # new state arrays: the graph holds the old ones
    with pytest.raises(RuntimeError, match=r"AdamW: load_state_dict\(\) since the CUDA graph was captured.*"
                                           "capture the step again"):
        graphed(x, y)
    graphed = make_graphed_step(step, x, y, warmup=1)
    graphed(x, y), graphed(x, y)
    opt.add_param_group({"params": [tinyres.zeros(2, device=DEVICE, requires_grad=True)]})
    with pytest.raises(RuntimeError, match="AdamW: 1 parameter groups when the CUDA graph was captured, 2 now"):
        graphed(x, y)


def test_a_graphed_step_checks_its_inputs(fake_cupy):
    x, y = batches(1)[0]
    graphed = make_graphed_step(lambda a, b: a * 2, x, y)
    with pytest.raises(ValueError, match=r"input 0 must be like its static input \(\(4, 3, 8, 8\), float64, "
                                         r"cuda:0\), got \(2, 3, 8, 8\).*drop_last=True"):
        graphed(x[:2], y)
    with pytest.raises(ValueError, match="input 1 must be like its static input.*cpu"):
        graphed(x, y.cpu())
    with pytest.raises(TypeError, match="expected 2 inputs"):
        graphed(x)
    with pytest.raises(TypeError, match="static input 0 must be a Tensor on a cuda device, got cpu"):
        make_graphed_step(lambda a: a, x.cpu())
    with pytest.raises(ValueError, match="warmup must be an int >= 0"):
        make_graphed_step(lambda a: a, x, warmup=-1)


def test_graphs_need_a_gpu():
    if backend.is_cuda_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(backend.DeviceUnavailable, match="needs CuPy"):
        CUDAGraph().capture_begin()


def test_a_graphed_run_follows_pytorch_in_float64(fake_cupy, one_thread):
    """Five graphed SGD steps of ResNet-20 against PyTorch's (on the CPU here; CUDA in
    benchmarks/gpu_check.py), same weights and batches, in float64."""
    torch = pytest.importorskip("torch")
    from torch_resnet import TORCH_TWINS
    torch.manual_seed(0)
    twin = TORCH_TWINS["resnet20"](num_classes=4, in_channels=3).double()
    model = tinyres.models.resnet20(num_classes=4)
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in twin.state_dict().items()})
    model = model.to(dtype=tinyres.float64).to(DEVICE)
    step, _, schedule = training(model, lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4))
    t_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    t_schedule = torch.optim.lr_scheduler.MultiStepLR(t_opt, milestones=[3], gamma=0.1)
    data = batches(5)
    graphed = make_graphed_step(step, *data[0], warmup=1)
    for x, y in data:
        loss = graphed(x, y).item()
        t_loss = torch.nn.functional.cross_entropy(twin(torch.tensor(x.numpy())), torch.tensor(y.numpy()),
                                                   label_smoothing=0.1)
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        t_schedule.step()
        schedule.step()
        assert abs(loss - t_loss.item()) <= 1e-12 * max(1.0, abs(loss))
    for key, value in twin.state_dict().items():
        ours = model.state_dict()[key]
        ours = ours.numpy() if hasattr(ours, "numpy") else np.asarray(ours)
        np.testing.assert_allclose(ours, value.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


def test_the_example_in_the_docs_runs_on_the_device(fake_cupy, capsys):
    """docs/backend.md's CUDA-graph example (on the CPU, the docs test runs only its definitions)."""
    import pathlib
    import re
    page = (pathlib.Path(__file__).parents[1] / "docs" / "backend.md").read_text()
    section = page.split("## CUDA graphs")[1]
    code = re.search(r"```python\n(.*?)^```", section, re.S | re.M).group(1)
    exec(compile(code, "docs/backend.md", "exec"), {"__name__": "__docs__"})
    losses = capsys.readouterr().out.split()
    assert losses[0::2] == ["loss"] * 3 and all(np.isfinite(float(v)) for v in losses[1::2])
