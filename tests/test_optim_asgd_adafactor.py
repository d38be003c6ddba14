"""ASGD and Adafactor against torch.optim: parameters of 0, 1, 2 and 3 dimensions (Adafactor
factors the second moment of those of two or more) trained side by side in float64 with
``step(closure)`` for each option set, with a parameter that never gets a gradient; the
state_dict's layout; a ``.pth`` crossing over both ways; argument validation; torch's flags."""
import pickle

import numpy as np
import pytest
import torch

import tinyres
import tinyres.optim
from tinyres.cuda import CUDAGraph, graph

from helpers import assert_close_to_scale, check_pth_crosses_over, train_with_closure

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 4))
Y = RNG.standard_normal((8, 2))
START = [RNG.standard_normal(shape) for shape in ((4, 3), (3,), (3, 2), (2, 3, 2), ())]
STEPS = 8
RTOL = 1e-12

OPTION_SETS = [
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, maximize=True)),        # averaging from step 4 on
    ("ASGD", dict(lr=0.1, lambd=0.1, alpha=1.0, t0=0, weight_decay=0.05)),
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-6, 1e-2))),
    ("Adafactor", dict(lr=0.5, d=2.0, weight_decay=0.1, maximize=True)),       # rho = 1/sqrt(t) from step 5
    ("Adafactor", dict(lr=0.02, beta2_decay=-0.9, eps=(None, 1e-4), foreach=True)),
    ("Adafactor", dict(lr=0.1, eps=(0.5, 0.0), d=1.0)),                         # eps1 clamps
]
IDS = [f"{n}-{kw}" for n, kw in OPTION_SETS]


def params(lib):
    """The same float64 parameters (a 0-d one included) and one that no loss reaches."""
    made = [lib.tensor(a.copy(), requires_grad=True) for a in START]
    return made + [lib.ones(2, dtype=lib.float64, requires_grad=True)]


def loss_of(lib, ps):
    w1, b1, w2, t, s = ps[:5]
    x, y = lib.tensor(X), lib.tensor(Y)
    fit = ((lib.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()
    return fit + ((t - 0.3) ** 2 * t).mean() + 0.5 * (s - 2.0) ** 2


def train(lib, opt, steps):
    return train_with_closure(opt, lambda ps: loss_of(lib, ps), steps)


def assert_close(a, b, rtol=RTOL):
    assert_close_to_scale(a, b, rtol)


def both(name, kwargs):
    kwargs = dict(dict(foreach=False), **kwargs)
    return (getattr(tinyres.optim, name)(params(tinyres), **kwargs),
            getattr(torch.optim, name)(params(torch), **kwargs))


@pytest.mark.parametrize("name,kwargs", OPTION_SETS, ids=IDS)
def test_matches_torch_step_by_step(name, kwargs):
    opt, topt = both(name, kwargs)
    for _ in range(STEPS):
        assert train(tinyres, opt, 1) == pytest.approx(train(torch, topt, 1), rel=RTOL)
        for a, b in zip(opt.param_groups[0]["params"], topt.param_groups[0]["params"]):
            assert_close(a.numpy(), b.detach().numpy())
        for p, tp in zip(opt.param_groups[0]["params"][:5], topt.param_groups[0]["params"]):
            for key, value in opt.state[p].items():
                assert_close(value, topt.state[tp][key].detach().numpy())
    unused = opt.param_groups[0]["params"][-1]
    np.testing.assert_array_equal(unused.numpy(), [1.0, 1.0])
    assert unused not in opt.state


@pytest.mark.parametrize("name,kwargs", OPTION_SETS, ids=IDS)
def test_state_dict_has_torchs_layout(name, kwargs):
    opt, topt = both(name, kwargs)
    train(tinyres, opt, 3)
    train(torch, topt, 3)
    sd, ref = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == ref["param_groups"]
    assert {i: set(s) for i, s in sd["state"].items()} == {i: set(s) for i, s in ref["state"].items()}
    for i, state in sd["state"].items():
        for key, value in state.items():
            expected = ref["state"][i][key]
            if key == "step":
                assert value == expected.item()
            elif key in ("eta", "mu"):                    # torch's float32 scalars, rounded as torch's
                assert value.shape == () and value.dtype == np.float32 and value == expected.numpy()
            else:
                assert value.shape == tuple(expected.shape) and value.dtype == np.float64
                assert_close(value, expected.numpy())
    if name == "Adafactor":                              # factored for two dimensions and more
        assert set(sd["state"][0]) == {"step", "row_var", "col_var"} and sd["state"][0]["row_var"].shape == (4, 1)
        assert sd["state"][3]["col_var"].shape == (2, 1, 2) and set(sd["state"][1]) == {"step", "variance"}
        assert set(sd["state"][4]) == {"step", "variance"}


@pytest.mark.parametrize("name,kwargs", OPTION_SETS[1::2], ids=IDS[1::2])
def test_a_pth_crosses_over_both_ways(name, kwargs, tmp_path):
    """tinyres and torch resume from each other's .pth as from their own."""
    opt, topt = both(name, kwargs)
    check_pth_crosses_over(opt, topt, lambda lib, ps: getattr(lib.optim, name)(ps, **kwargs), train, tmp_path,
                           assert_close)


@pytest.mark.parametrize("name,kwargs", OPTION_SETS[2::3], ids=IDS[2::3])
def test_state_dict_round_trip_mid_training_is_bit_identical(name, kwargs):
    opt = getattr(tinyres.optim, name)(params(tinyres), **kwargs)
    train(tinyres, opt, 3)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    ps = [tinyres.tensor(p.numpy().copy(), requires_grad=True) for p in opt.param_groups[0]["params"]]
    resumed = getattr(tinyres.optim, name)(ps, lr=123.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0] == dict(opt.param_groups[0], params=ps)
    train(tinyres, opt, 3)
    train(tinyres, resumed, 3)
    for a, b in zip(opt.param_groups[0]["params"], ps):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


BAD = [
    ("ASGD", dict(lr=-0.1)), ("ASGD", dict(weight_decay=-1e-3)), ("ASGD", dict(lr=float("nan"))),
    ("Adafactor", dict(lr=-0.1)), ("Adafactor", dict(beta2_decay=0.5)), ("Adafactor", dict(eps=(-1e-3, 1e-3))),
    ("Adafactor", dict(eps=(None, -1.0))), ("Adafactor", dict(d=0.5)), ("Adafactor", dict(weight_decay=-0.1)),
    ("Adafactor", dict(differentiable=True)), ("Adafactor", dict(capturable=False)),
    ("Adafactor", dict(lr=float("nan"))),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{kw}" for n, kw in BAD])
def test_invalid_arguments_raise_as_torch(name, kwargs):
    with pytest.raises(Exception) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(tinyres.optim, name)([tinyres.zeros(2, requires_grad=True)], **kwargs)
    if not isinstance(theirs.value, TypeError):                 # (a TypeError names the function)
        assert str(ours.value) == str(theirs.value)


def test_defaults_are_torchs_and_asgd_refuses_differentiable():
    for name in ("ASGD", "Adafactor"):
        ours = getattr(tinyres.optim, name)([tinyres.zeros(2, requires_grad=True)]).defaults
        assert ours == getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).defaults
    flags = dict(foreach=True, maximize=True, capturable=False)
    w = tinyres.zeros(2, requires_grad=True)
    assert {k: tinyres.optim.ASGD([w], **flags).param_groups[0][k] for k in flags} == flags
    with pytest.raises(NotImplementedError, match="ASGD: differentiable=True is not supported"):
        tinyres.optim.ASGD([w], differentiable=True)


def test_their_steps_are_refused_inside_a_cuda_graph_capture(fake_cupy):
    for make in (tinyres.optim.ASGD, tinyres.optim.Adafactor):
        w = tinyres.ones(3, 2, device="cuda:0", requires_grad=True)
        opt = make([w])

        def closure():
            opt.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            return loss
        opt.step(closure)
        assert opt.state[w]["step"] == 1
        with pytest.raises(RuntimeError, match=f"{type(opt).__name__}: a CUDA graph cannot capture its step"):
            with graph(CUDAGraph()):
                opt.step(closure)
