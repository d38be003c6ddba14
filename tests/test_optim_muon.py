"""Muon against torch.optim.Muon: 2-D parameters (wide, tall, a row) trained side by side in
float64 with ``step(closure)`` for each option set and for parameter groups, with a parameter
that never gets a gradient; the state_dict's layout; a ``.pth`` crossing over both ways;
argument and step-time errors; the CUDA-graph refusal.

torch runs the Newton-Schulz iteration in bfloat16, tinyres in the parameter's dtype (it has
no bfloat16).  The float64 comparisons therefore run torch's own Muon with its iteration in
the input's dtype (``exact_torch_ns``: torch's source with the one cast taken out), to the
last bits; ``test_float32_update_is_within_bfloat16_noise_of_stock_torch`` compares with
stock torch, with a tolerance that bfloat16 rounding stays under and a 1.5% error in one
coefficient (or one iteration more or less) does not."""
import inspect
import pickle

import numpy as np
import pytest
import torch
import torch.optim._muon as torch_muon

import tinyres
import tinyres.optim
from tinyres.cuda import CUDAGraph, graph

from helpers import assert_close_to_scale, check_pth_crosses_over, train_with_closure

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 4))
Y = RNG.standard_normal((8, 2))
START = [RNG.standard_normal(shape) for shape in ((4, 6), (1, 6), (6, 2))]
STEPS = 8
RTOL = 1e-11

OPTION_SETS = [
    dict(),
    dict(lr=0.02, nesterov=False),
    dict(lr=0.05, weight_decay=0.0, momentum=0.9, adjust_lr_fn="original"),
    dict(lr=0.05, weight_decay=0.2, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.1, momentum=0.3, ns_coefficients=(2.0, -1.5, 0.5), ns_steps=3, eps=1e-3),   # lerp's other branch
    dict(lr=0.03, momentum=0.0, nesterov=False, ns_steps=0),
]
IDS = [str(kw) for kw in OPTION_SETS]


@pytest.fixture
def exact_torch_ns(monkeypatch):
    """torch's Muon with its Newton-Schulz iteration in the input's dtype, not bfloat16."""
    source = inspect.getsource(torch_muon._zeropower_via_newtonschulz)
    assert source.count("grad.bfloat16()") == 1
    namespace = dict(vars(torch_muon))
    exec(source.replace("grad.bfloat16()", "grad.clone()"), namespace)
    monkeypatch.setattr(torch_muon, "_zeropower_via_newtonschulz", namespace["_zeropower_via_newtonschulz"])


def params(lib):
    """The same float64 parameters and one that no loss reaches."""
    made = [lib.tensor(a.copy(), requires_grad=True) for a in START]
    return made + [lib.ones(2, 2, dtype=lib.float64, requires_grad=True)]


def loss_of(lib, ps):
    w1, b1, w2 = ps[:3]
    x, y = lib.tensor(X), lib.tensor(Y)
    return ((lib.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def train(lib, opt, steps):
    return train_with_closure(opt, lambda ps: loss_of(lib, ps), steps)


def assert_close(a, b, rtol=RTOL):
    assert_close_to_scale(a, b, rtol)


def both(kwargs, groups=None):
    """The two optimizers over the same parameters; ``groups`` splits them into groups."""
    made = []
    for lib in (tinyres, torch):
        ps = params(lib)
        arg = ps if groups is None else [dict(g, params=[ps[i] for i in idx]) for idx, g in groups]
        made.append(getattr(lib.optim, "Muon")(arg, **kwargs))
    return made


def assert_same_run(opt, topt):
    for _ in range(STEPS):
        assert train(tinyres, opt, 1) == pytest.approx(train(torch, topt, 1), rel=RTOL)
        for group, tgroup in zip(opt.param_groups, topt.param_groups):
            for p, tp in zip(group["params"], tgroup["params"]):
                assert_close(p.numpy(), tp.detach().numpy())
                state = opt.state.get(p, {})
                assert set(state) == set(topt.state.get(tp, {}))
                for key, value in state.items():
                    assert_close(value, topt.state[tp][key].numpy())


@pytest.mark.parametrize("kwargs", OPTION_SETS, ids=IDS)
def test_matches_torch_step_by_step(kwargs, exact_torch_ns):
    opt, topt = both(kwargs)
    assert_same_run(opt, topt)
    unused = opt.param_groups[0]["params"][-1]
    np.testing.assert_array_equal(unused.numpy(), np.ones((2, 2)))
    assert unused not in opt.state


GROUPS = [([0], dict(lr=0.05, adjust_lr_fn="match_rms_adamw")),
          ([1], dict(nesterov=False, weight_decay=0.0)),
          ([2, 3], dict(momentum=0.5, ns_steps=4))]


def test_parameter_groups_match_torch(exact_torch_ns):
    opt, topt = both(dict(lr=0.02), GROUPS)
    assert opt.param_groups[1]["lr"] == 0.02 and opt.param_groups[2]["adjust_lr_fn"] is None
    assert_same_run(opt, topt)


@pytest.mark.parametrize("scale", [1e-9, 0.0], ids=["norm-below-eps", "zero-gradient"])
def test_eps_bounds_the_norm_divided_by_as_torch(scale, exact_torch_ns):
    g = scale * np.random.default_rng(1).standard_normal((3, 5))
    result = []
    for lib in (tinyres, torch):
        p = lib.tensor(START[0][:3, :5].copy(), requires_grad=True)
        opt = lib.optim.Muon([p], lr=0.1, eps=1e-6)
        for _ in range(2):
            p.grad = lib.tensor(g.copy())
            opt.step()
        result.append(p.detach().numpy())
    assert np.isfinite(result[0]).all()
    assert_close(*result)


def test_float32_update_is_within_bfloat16_noise_of_stock_torch():
    """One step from the same gradient, weight decay off and lr 1: the update is ``-s * NS(g)``
    (``momentum`` 0).  bfloat16 moves it by up to ~2.5% (relative Frobenius norm, on these
    shapes); a coefficient 1.5% off, or 4 or 6 iterations instead of 5, by 4% or more."""
    tolerance = 0.03
    default = (3.4445, -4.775, 2.0315)
    wrong = [(dict(ns_coefficients=c), c) for c in ((3.4, -4.775, 2.0315), (3.4445, -4.7, 2.0315),
                                                    (3.4445, -4.775, 2.0))]
    wrong += [(dict(ns_steps=k), k) for k in (4, 6)]
    for seed, shape in enumerate([(16, 12), (12, 16), (16, 12)]):
        g = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        tp = torch.zeros(shape, requires_grad=True)
        tp.grad = torch.tensor(g)
        torch.optim.Muon([tp], lr=1.0, weight_decay=0.0, momentum=0.0).step()
        expected = tp.detach().numpy()

        def error(**kwargs):
            p = tinyres.zeros(*shape, requires_grad=True)
            p.grad = tinyres.tensor(g)
            tinyres.optim.Muon([p], **dict(dict(lr=1.0, weight_decay=0.0, momentum=0.0), **kwargs)).step()
            assert p.dtype == tinyres.float32
            return np.linalg.norm(p.numpy() - expected) / np.linalg.norm(expected)
        assert error(ns_coefficients=default) < tolerance
        for kwargs, what in wrong:
            assert error(**kwargs) > tolerance, what


@pytest.mark.parametrize("kwargs", OPTION_SETS[::2], ids=IDS[::2])
def test_state_dict_has_torchs_layout(kwargs, exact_torch_ns):
    opt, topt = both(kwargs)
    train(tinyres, opt, 3)
    train(torch, topt, 3)
    sd, ref = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == ref["param_groups"]
    assert list(sd["param_groups"][0]) == list(ref["param_groups"][0])
    assert set(sd["state"]) == set(ref["state"]) == {0, 1, 2}
    for i, state in sd["state"].items():
        assert set(state) == {"momentum_buffer"}
        expected = ref["state"][i]["momentum_buffer"]
        value = state["momentum_buffer"]
        assert isinstance(value, np.ndarray) and value.shape == tuple(expected.shape) and value.dtype == np.float64
        assert_close(value, expected.numpy())


@pytest.mark.parametrize("kwargs", OPTION_SETS[1::2], ids=IDS[1::2])
def test_a_pth_crosses_over_both_ways(kwargs, tmp_path, exact_torch_ns):
    """tinyres and torch resume from each other's .pth as from their own."""
    opt, topt = both(kwargs)
    check_pth_crosses_over(opt, topt, lambda lib, ps: lib.optim.Muon(ps, lr=123.0), train, tmp_path, assert_close)


def test_state_dict_round_trip_mid_training_is_bit_identical():
    opt = tinyres.optim.Muon(params(tinyres), **OPTION_SETS[3])
    train(tinyres, opt, 3)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    ps = [tinyres.tensor(p.numpy().copy(), requires_grad=True) for p in opt.param_groups[0]["params"]]
    resumed = tinyres.optim.Muon(ps, lr=123.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0] == dict(opt.param_groups[0], params=ps)
    train(tinyres, opt, 3)
    train(tinyres, resumed, 3)
    for a, b in zip(opt.param_groups[0]["params"], ps):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


BAD = [dict(lr=-0.1), dict(lr=float("nan")), dict(lr="0.1"), dict(momentum=-0.5), dict(weight_decay=-1e-3),
       dict(adjust_lr_fn="rms"), dict(adjust_lr_fn=""), dict(foreach=True), dict(lr="tensor")]


@pytest.mark.parametrize("kwargs", BAD, ids=[str(kw) for kw in BAD])
def test_invalid_arguments_raise_as_torch(kwargs):
    def make(lib):
        if kwargs.get("lr") == "tensor":
            return lib.optim.Muon([lib.zeros(2, 2, requires_grad=True)], lr=lib.tensor([0.1, 0.2]))
        return lib.optim.Muon([lib.zeros(2, 2, requires_grad=True)], **kwargs)
    with pytest.raises(Exception) as theirs:
        make(torch)
    with pytest.raises(type(theirs.value)) as ours:
        make(tinyres)
    if not isinstance(theirs.value, TypeError):                 # (a TypeError names the function)
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()])
def test_only_2d_parameters_as_torch(shape):
    with pytest.raises(ValueError) as theirs:
        torch.optim.Muon([torch.zeros(2, 2, requires_grad=True), torch.zeros(shape, requires_grad=True)])
    with pytest.raises(ValueError) as ours:
        tinyres.optim.Muon([tinyres.zeros(2, 2, requires_grad=True), tinyres.zeros(*shape, requires_grad=True)])
    assert str(ours.value) == str(theirs.value).replace("torch.Size", "tinyres.Size")


STEP_ERRORS = [(dict(ns_steps=100), None), (dict(ns_coefficients=(3.0, -4.0)), None),
               (dict(), "a 1-D parameter added later")]


@pytest.mark.parametrize("kwargs,late", STEP_ERRORS, ids=[str(kw) for kw, _ in STEP_ERRORS])
def test_step_time_errors_as_torch(kwargs, late):
    messages = []
    for lib in (torch, tinyres):
        w = lib.ones(3, 2, requires_grad=True)
        opt = lib.optim.Muon([w], **kwargs)
        loss = (w * w).sum()
        if late:                                    # torch checks the dimensions in the constructor only
            b = lib.ones(2, requires_grad=True)
            opt.add_param_group({"params": [b]})
            loss = loss + (b * b).sum()
        loss.backward()
        with pytest.raises(ValueError) as error:
            opt.step()
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_defaults_and_repr_are_torchs():
    ours = tinyres.optim.Muon([tinyres.zeros(2, 2, requires_grad=True)])
    theirs = torch.optim.Muon([torch.zeros(2, 2, requires_grad=True)])
    assert ours.defaults == theirs.defaults
    assert list(ours.defaults) == list(theirs.defaults)
    assert repr(ours) == repr(theirs)


def test_step_is_refused_inside_a_cuda_graph_capture(fake_cupy):
    w = tinyres.ones(3, 2, device="cuda:0", requires_grad=True)
    opt = tinyres.optim.Muon([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)                                # a step on the device runs
    assert set(opt.state[w]) == {"momentum_buffer"} and str(w.device) == "cuda:0"
    with pytest.raises(RuntimeError, match="Muon: a CUDA graph cannot capture its step"):
        with graph(CUDAGraph()):
            opt.step(closure)
