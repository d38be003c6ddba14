"""The optimizers beyond SGD and Adam (RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam,
Rprop, LBFGS) against torch.optim: a tiny model trained side by side in float64 with
``step(closure)`` for each option set, with a parameter that never gets a gradient; the
state_dict's layout; a ``.pth`` crossing over both ways; argument validation.  One row per
optimizer also runs in the shared table ``OPTIMIZERS`` of tests/cases.py (test_optim.py in
float32 and float64, test_porting_fixes.py's resume, test_gpu.py on the CuPy double)."""
import pickle

import numpy as np
import pytest
import torch

import tinyres
import tinyres.optim
from tinyres import backend, nn
from tinyres.cuda import CUDAGraph, graph

X = np.random.default_rng(0).standard_normal((8, 4))
Y = np.random.default_rng(1).standard_normal((8, 2))
STEPS = 8          # RAdam's rectified step starts at step 6 (rho_t > 5)
RTOL = 1e-13

OPTION_SETS = [
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.02, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.05, momentum_decay=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.02), maximize=True)),
]
IDS = [f"{n}-{kw}" for n, kw in OPTION_SETS]


def models(layers=lambda n: [n.Linear(4, 3), n.Tanh(), n.Linear(3, 2)]):
    """The same float64 model in tinyres and in torch."""
    tinyres.manual_seed(0)
    ours = nn.Sequential(*layers(nn)).to(tinyres.float64)
    theirs = torch.nn.Sequential(*layers(torch.nn)).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def params_of(lib, model):
    """The model's parameters and one that no loss reaches (its .grad stays None)."""
    return list(model.parameters()) + [lib.ones(2, dtype=lib.float64, requires_grad=True)]


def train(lib, model, opt, steps):
    """``steps`` calls of ``opt.step(closure)``; the losses they return."""
    x, y = lib.tensor(X), lib.tensor(Y)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss
    return [float(opt.step(closure).detach()) for _ in range(steps)]


def assert_same_values(ours, theirs, rtol=RTOL):
    for a, b in zip(ours, theirs):
        b = b.detach().numpy()
        np.testing.assert_allclose(a.numpy(), b, rtol=rtol, atol=rtol * np.abs(b).max())


def both(name, kwargs):
    """A tinyres and a torch optimizer of ``name`` over the same model (and an unused parameter)."""
    ours, theirs = models()
    opt = getattr(tinyres.optim, name)(params_of(tinyres, ours), foreach=False, **kwargs)
    topt = getattr(torch.optim, name)(params_of(torch, theirs), foreach=False, **kwargs)
    return ours, opt, theirs, topt


@pytest.mark.parametrize("name,kwargs", OPTION_SETS, ids=IDS)
def test_matches_torch_step_by_step(name, kwargs):
    ours, opt, theirs, topt = both(name, kwargs)
    for _ in range(STEPS):
        assert train(tinyres, ours, opt, 1) == pytest.approx(train(torch, theirs, topt, 1), rel=RTOL)
        assert_same_values(opt.param_groups[0]["params"], topt.param_groups[0]["params"])
    unused = opt.param_groups[0]["params"][-1]
    np.testing.assert_array_equal(unused.numpy(), [1.0, 1.0])         # skipped, as torch skips it
    assert (unused in opt.state) == (name == "Adagrad")                  # (Adagrad's state is made up front)


@pytest.mark.parametrize("name,kwargs", OPTION_SETS, ids=IDS)
def test_state_dict_has_torchs_layout(name, kwargs):
    ours, opt, theirs, topt = both(name, kwargs)
    train(tinyres, ours, opt, 3)
    train(torch, theirs, topt, 3)
    sd, ref = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == ref["param_groups"]
    assert {i: set(s) for i, s in sd["state"].items()} == {i: set(s) for i, s in ref["state"].items()}
    for i, state in sd["state"].items():
        for key, value in state.items():
            expected = ref["state"][i][key]
            if key == "step":
                assert value == expected.item()
            elif key == "mu_product":                   # torch's float32 scalar, rounded as torch rounds it
                assert value.dtype == np.float32 and value == expected.numpy()
            else:
                np.testing.assert_allclose(value, expected.numpy(), rtol=RTOL, atol=RTOL * np.abs(value).max())


@pytest.mark.parametrize("name,kwargs", OPTION_SETS, ids=IDS)
def test_a_pth_crosses_over_both_ways(name, kwargs, tmp_path):
    """After 3 steps each side saves a .pth: tinyres loading torch's continues as torch goes
    on, and torch loading tinyres's continues as torch loading its own (torch's load casts
    NAdam's float32 mu_product to the parameters' float64, so that is the reference)."""
    ours, opt, theirs, topt = both(name, kwargs)
    train(tinyres, ours, opt, 3)
    train(torch, theirs, topt, 3)
    tinyres.save({"model": ours.state_dict(), "opt": opt.state_dict()}, tmp_path / "ours.pth")
    torch.save({"model": theirs.state_dict(), "opt": topt.state_dict()}, tmp_path / "theirs.pth")
    resumed = {}
    for lib, path in ((tinyres, "theirs.pth"), (torch, "ours.pth"), (torch, "theirs.pth")):
        model = models()[lib is torch]
        checkpoint = lib.load(tmp_path / path)
        model.load_state_dict(checkpoint["model"])
        resumed_opt = getattr(lib.optim, name)(params_of(lib, model), **kwargs)
        resumed_opt.load_state_dict(checkpoint["opt"])
        train(lib, model, resumed_opt, 3)
        resumed[lib.__name__, path] = resumed_opt.param_groups[0]["params"]
    train(torch, theirs, topt, 3)
    assert_same_values(resumed["tinyres", "theirs.pth"], topt.param_groups[0]["params"])
    assert_same_values([tinyres.tensor(p.detach().numpy()) for p in resumed["torch", "ours.pth"]],
                       resumed["torch", "theirs.pth"])


@pytest.mark.parametrize("name,kwargs", OPTION_SETS[3::3], ids=IDS[3::3])
def test_state_dict_round_trip_mid_training_is_bit_identical(name, kwargs):
    model, _ = models()
    opt = getattr(tinyres.optim, name)(params_of(tinyres, model), **kwargs)
    train(tinyres, model, opt, 3)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    again, _ = models()
    again.load_state_dict(model.state_dict())
    resumed = getattr(tinyres.optim, name)(params_of(tinyres, again), lr=123.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0] == dict(opt.param_groups[0], params=resumed.param_groups[0]["params"])
    train(tinyres, model, opt, 3)
    train(tinyres, again, resumed, 3)
    for a, b in zip(opt.param_groups[0]["params"], resumed.param_groups[0]["params"]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_their_steps_are_refused_inside_a_cuda_graph_capture(fake_cupy):
    for make in (lambda p: tinyres.optim.RMSprop(p, momentum=0.9), tinyres.optim.LBFGS):
        w = tinyres.ones(3, device="cuda:0", requires_grad=True)
        opt = make([w])

        def closure():
            opt.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            return loss
        opt.step(closure)
        with pytest.raises(RuntimeError, match=f"{type(opt).__name__}: a CUDA graph cannot capture its step"):
            with graph(CUDAGraph()):
                opt.step(closure)


# ---------------------------------------------------------------------- LBFGS

def linear(n):
    return [n.Linear(4, 2)]


def tanh_net(n):
    return [n.Linear(4, 3), n.Tanh(), n.Linear(3, 2)]


LBFGS_OPTIONS = [           # least squares (convex: the rounding stays small over many iterations), and a net
    (linear, dict()),
    (linear, dict(lr=0.5, max_iter=6, history_size=2, tolerance_change=1e-6)),
    (linear, dict(line_search_fn="strong_wolfe")),
    (tanh_net, dict(line_search_fn="strong_wolfe", max_iter=8, max_eval=9, history_size=3)),
]
LBFGS_IDS = [f"{layers.__name__}-{kw}" for layers, kw in LBFGS_OPTIONS]


@pytest.mark.parametrize("layers,kwargs", LBFGS_OPTIONS, ids=LBFGS_IDS)
def test_lbfgs_matches_torch_step_by_step(layers, kwargs):
    ours, theirs = models(layers)
    opt = tinyres.optim.LBFGS(params_of(tinyres, ours), **kwargs)
    topt = torch.optim.LBFGS(params_of(torch, theirs), **kwargs)
    for _ in range(3):
        assert train(tinyres, ours, opt, 1) == pytest.approx(train(torch, theirs, topt, 1), rel=RTOL)
        assert_same_values(opt.param_groups[0]["params"], topt.param_groups[0]["params"], rtol=1e-12)
        state, ref = opt.state[opt.param_groups[0]["params"][0]], topt.state[topt.param_groups[0]["params"][0]]
        assert (state["func_evals"], state["n_iter"]) == (ref["func_evals"], ref["n_iter"])
        assert len(state["old_dirs"]) == len(ref["old_dirs"])


ROSENBROCK = [     # each reaches other branches of the strong-Wolfe search (extrapolation, zoom, its limits)
    ([0.0, 0.0], dict(lr=3.0, max_iter=8)),
    ([-1.5, 2.0], dict(lr=3.0, max_iter=4)),
    ([-1.0, 1.0], dict(lr=0.3, max_iter=4)),
]


@pytest.mark.parametrize("start,kwargs", ROSENBROCK, ids=[f"{s}-{kw}" for s, kw in ROSENBROCK])
def test_lbfgs_line_search_on_rosenbrock_matches_torch(start, kwargs):
    """Rosenbrock's valley, (1 - x)^2 + 100 (y - x^2)^2, from a start that makes the
    line search extrapolate, zoom in and stop at its limit of evaluations."""
    runs = []
    for lib in (tinyres, torch):
        w = lib.tensor(np.array(start), requires_grad=True)
        opt = lib.optim.LBFGS([w], line_search_fn="strong_wolfe", history_size=3, **kwargs)

        def closure():
            opt.zero_grad()
            loss = (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
            loss.backward()
            return loss
        runs.append([(float(opt.step(closure).detach()), w.detach().numpy().copy(), opt.state[w]["func_evals"])
                     for _ in range(2)])
    for (loss, w, evals), (ref_loss, ref_w, ref_evals) in zip(*runs):
        assert loss == pytest.approx(ref_loss, rel=1e-12) and evals == ref_evals
        np.testing.assert_allclose(w, ref_w, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kwargs", [kw for _, kw in LBFGS_OPTIONS[1:3]], ids=LBFGS_IDS[1:3])
def test_lbfgs_state_dict_round_trips_and_crosses_over(kwargs, tmp_path):
    ours, theirs = models(linear)
    opt = tinyres.optim.LBFGS(params_of(tinyres, ours), **dict(kwargs, max_iter=3))
    topt = torch.optim.LBFGS(params_of(torch, theirs), **dict(kwargs, max_iter=3))
    train(tinyres, ours, opt, 2)
    train(torch, theirs, topt, 2)
    saved = opt.state_dict()
    assert set(saved["state"][0]) == set(topt.state_dict()["state"][0])
    tinyres.save({"model": ours.state_dict(), "opt": saved}, tmp_path / "ours.pth")
    torch.save({"model": theirs.state_dict(), "opt": topt.state_dict()}, tmp_path / "theirs.pth")
    for lib, path in ((tinyres, "ours.pth"), (tinyres, "theirs.pth"), (torch, "ours.pth")):
        model = models(linear)[lib is torch]
        checkpoint = lib.load(tmp_path / path)
        model.load_state_dict(checkpoint["model"])
        resumed = lib.optim.LBFGS(params_of(lib, model), **dict(kwargs, max_iter=3))
        resumed.load_state_dict(checkpoint["opt"])
        train(lib, model, resumed, 2)
        reference = (opt if path == "ours.pth" else topt).param_groups[0]["params"]
        if (lib, path) == (tinyres, "ours.pth"):
            train(tinyres, ours, opt, 2)
            for a, b in zip(resumed.param_groups[0]["params"], reference):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
        elif lib is tinyres:
            train(torch, theirs, topt, 2)
            assert_same_values(resumed.param_groups[0]["params"], reference, rtol=1e-12)
        else:
            assert_same_values([tinyres.tensor(p.detach().numpy()) for p in resumed.param_groups[0]["params"]],
                               [p for p in opt.param_groups[0]["params"]], rtol=1e-12)


def test_lbfgs_returns_at_once_at_a_stationary_point_and_refuses_what_torch_refuses():
    w = tinyres.zeros(2, requires_grad=True)
    opt = tinyres.optim.LBFGS([w])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    assert float(opt.step(closure)) == 0.0 and opt.state[w] == {"func_evals": 1, "n_iter": 0}
    with pytest.raises(ValueError, match=r"LBFGS doesn't support per-parameter options \(parameter groups\)"):
        tinyres.optim.LBFGS([{"params": [w]}, {"params": [tinyres.ones(1, requires_grad=True)]}])
    w.array[...] = 1.0
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        tinyres.optim.LBFGS([w], line_search_fn="wolfe").step(closure)


def test_lbfgs_on_the_device_steps_as_on_the_cpu(fake_cupy):
    """On the second fake GPU (so that an array made on the current GPU instead fails)."""
    results = []
    for device in ("cpu", "cuda:1"):
        x, y = tinyres.tensor(X, device=device), tinyres.tensor(Y, device=device)
        w = tinyres.zeros(4, 2, dtype=tinyres.float64, device=device, requires_grad=True)
        opt = tinyres.optim.LBFGS([w], line_search_fn="strong_wolfe", max_iter=5, history_size=2)

        def closure():
            opt.zero_grad()
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            return loss
        for _ in range(2):
            opt.step(closure)
        assert all(backend.is_device_array(a) == (device != "cpu") for a in opt.state[w]["old_dirs"])
        results.append(w.to("cpu").numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-14)


# ---------------------------------------------------------------------- validation

BAD = [
    ("RMSprop", dict(lr=-0.1)), ("RMSprop", dict(alpha=-0.5)), ("RMSprop", dict(eps=-1e-8)),
    ("RMSprop", dict(momentum=-0.9)), ("RMSprop", dict(weight_decay=-1)),
    ("Adagrad", dict(lr_decay=-0.1)), ("Adagrad", dict(weight_decay=-1)), ("Adagrad", dict(eps=-1.0)),
    ("Adagrad", dict(initial_accumulator_value=-0.1)), ("Adagrad", dict(fused=True, foreach=True)),
    ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(rho=-0.1)), ("Adadelta", dict(eps=-1.0)),
    ("Adadelta", dict(weight_decay=-0.1)),
    ("Adamax", dict(betas=(1.0, 0.999))), ("Adamax", dict(betas=(0.9, -0.1))), ("Adamax", dict(eps=-1.0)),
    ("NAdam", dict(momentum_decay=-1e-3)), ("NAdam", dict(betas=(0.9, 1.0))), ("NAdam", dict(weight_decay=-1)),
    ("RAdam", dict(betas=(-0.1, 0.9))), ("RAdam", dict(lr=float("nan"))),
    ("Rprop", dict(etas=(1.5, 1.2))), ("Rprop", dict(etas=(0.5, 0.9))), ("Rprop", dict(etas=(0.0, 1.2))),
    ("LBFGS", dict(lr=-1.0)),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{kw}" for n, kw in BAD])
def test_invalid_arguments_raise_as_torch(name, kwargs):
    with pytest.raises(Exception) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(tinyres.optim, name)([tinyres.zeros(2, requires_grad=True)], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", sorted({n for n, _ in OPTION_SETS}))
def test_torchs_flags_are_accepted_and_differentiable_is_refused(name):
    flags = dict(foreach=True, maximize=False) | ({"fused": None} if name == "Adagrad" else {"capturable": False})
    w = tinyres.zeros(2, requires_grad=True)
    opt = getattr(tinyres.optim, name)([w], **flags)
    assert {k: opt.param_groups[0][k] for k in flags} == flags
    with pytest.raises(NotImplementedError, match=f"{name}: differentiable=True is not supported"):
        getattr(tinyres.optim, name)([w], differentiable=True)
