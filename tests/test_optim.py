"""tinyres.optim optimizers against torch.optim: the same parameters driven by the same
gradient function step after step, state_dict round trips, and argument validation."""
import math
import pickle

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.optim
from cases import OPTIMIZERS

SHAPES = [(3, 4), (4,), (1, 1, 2)]
STEPS = 20
# float32: torch fuses some multiply-adds (FMA) where NumPy rounds twice, so the two agree
# to a few ulps per step, not bit for bit
TOL = {np.float32: 2e-6, np.float64: 1e-12}


class Problem:
    """A separable quadratic with noise: grad_t(p_i) = sign * (c_i * (p_i - target_i) + noise_ti),
    computed in NumPy from each framework's own current parameter values."""

    def __init__(self, dtype, sign=1.0, seed=0):
        rng = np.random.default_rng(seed)
        self.start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        self.target = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        self.curv = [dtype(c) for c in rng.uniform(0.5, 2.0, len(SHAPES))]
        self.noise = [[(0.1 * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
                      for _ in range(STEPS)]
        self.sign = dtype(sign)

    def grad(self, i, t, value):
        return self.sign * (self.curv[i] * (value - self.target[i]) + self.noise[t][i])


def tiny_params(arrays):
    return [tinyres.Tensor(a.copy(), requires_grad=True) for a in arrays]


def torch_params(arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def set_grads(params, problem, t, skip=()):
    """Give each parameter its gradient at step ``t`` (None for the indices in ``skip``)."""
    for i, p in enumerate(params):
        value = p.detach().numpy()
        if i in skip:
            p.grad = None
        elif torch is not None and isinstance(p, torch.Tensor):     # tinyres alone runs without torch
            p.grad = torch.from_numpy(problem.grad(i, t, value))
        else:
            p.grad = tinyres.Tensor(problem.grad(i, t, value))


def groups_of(params, group_options):
    """All parameters in one list, or one group per options dict (params split in order)."""
    if group_options is None:
        return params
    return [dict(options, params=[p]) for p, options in zip(params, group_options)]


def assert_close(tiny, ref, dtype):
    tol = TOL[dtype]
    np.testing.assert_allclose(tiny, ref, rtol=tol, atol=tol * np.max(np.abs(ref)))


def run_both(name, kwargs, dtype, group_options=None, sign=1.0, skip=(), steps=STEPS):
    """Step a tinyres and a torch optimizer side by side; return both parameter lists."""
    problem = Problem(dtype, sign)
    tp, pp = tiny_params(problem.start), torch_params(problem.start)
    t_opt = getattr(tinyres.optim, name)(groups_of(tp, group_options), **kwargs)
    p_opt = getattr(torch.optim, name)(groups_of(pp, group_options), foreach=False, **kwargs)
    arrays = [p.array for p in tp]
    for t in range(steps):
        set_grads(tp, problem, t, skip)
        set_grads(pp, problem, t, skip)
        t_opt.step()
        p_opt.step()
        for a, b in zip(tp, pp):
            assert_close(a.array, b.detach().numpy(), dtype)
    assert all(p.array is a for p, a in zip(tp, arrays)), "parameters must be updated in place"
    assert all(p.dtype == dtype for p in tp)
    for state in t_opt.state.values():
        assert all(v.dtype == dtype for v in state.values() if isinstance(v, np.ndarray))
    return t_opt, tp, pp


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_matches_torch_step_by_step(name, kwargs, dtype):
    run_both(name, kwargs, dtype, sign=-1.0 if kwargs.get("maximize") else 1.0)


GROUPS = {
    "SGD": [dict(), dict(lr=0.01, weight_decay=0), dict(momentum=0.5, nesterov=True)],
    "Adam": [dict(), dict(lr=0.01, weight_decay=0), dict(betas=(0.5, 0.9), amsgrad=True)],
    "AdamW": [dict(), dict(weight_decay=0), dict(lr=0.2, eps=1e-3)],
}
DEFAULTS = {"SGD": dict(lr=0.1, momentum=0.9, weight_decay=1e-2),
            "Adam": dict(lr=0.05, weight_decay=0.1),
            "AdamW": dict(lr=0.05, weight_decay=0.1)}


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_param_groups_with_their_own_options(name, dtype):
    opt, _, _ = run_both(name, DEFAULTS[name], dtype, group_options=GROUPS[name])
    assert opt.param_groups[1]["weight_decay"] == 0
    assert opt.param_groups[0]["lr"] == DEFAULTS[name]["lr"]


@needs_torch
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_parameter_without_grad_is_skipped(name):
    opt, tp, _ = run_both(name, dict(DEFAULTS[name]), np.float32, skip=(1,))
    np.testing.assert_array_equal(tp[1].numpy(), Problem(np.float32).start[1])
    assert tp[1] not in opt.state
    assert set(opt.state_dict()["state"]) == {0, 2}


@needs_torch
def test_gradients_from_tinyres_autograd():
    """A least-squares fit whose gradients come from backward() in each framework."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    w0, b0 = rng.standard_normal((3, 1)), np.zeros(1)
    results = []
    for fw in (tinyres, torch):
        w, b = fw.tensor(w0, requires_grad=True), fw.tensor(b0, requires_grad=True)
        opt = fw.optim.SGD([w, b], lr=0.1, momentum=0.9)
        xt, yt = fw.tensor(x), fw.tensor(y)
        for _ in range(STEPS):
            opt.zero_grad()
            loss = ((xt @ w + b - yt) ** 2).mean()
            loss.backward()
            opt.step()
        results.append((w.detach().numpy(), b.detach().numpy(), float(loss.detach())))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_step_with_closure_returns_its_loss():
    w = tinyres.tensor([1.0, -2.0], requires_grad=True)
    opt = tinyres.optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0
    np.testing.assert_array_equal(w.numpy(), [0.5, -1.0])    # w - 0.25 * 2w


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    w = tinyres.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    grad_array = w.grad.array
    tinyres.optim.SGD([w]).zero_grad(set_to_none=set_to_none)
    if set_to_none:
        assert w.grad is None
    else:
        assert w.grad.array is grad_array and not grad_array.any()


# ---------------------------------------------------------------------- state_dict

def _plain(value):
    """True when ``value`` holds only NumPy arrays and plain Python values."""
    if isinstance(value, dict):
        return all(isinstance(k, (int, str)) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (np.ndarray, bool, int, float, str, type(None)))


ROUND_TRIP = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
              ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
              ("AdamW", dict(lr=0.05))]


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_state_dict_round_trip_mid_training_is_bit_identical(name, kwargs):
    problem = Problem(np.float32)
    pa = tiny_params(problem.start)
    a = getattr(tinyres.optim, name)(groups_of(pa, GROUPS[name]), **kwargs)
    for t in range(5):
        set_grads(pa, problem, t)
        a.step()
    saved = pickle.loads(pickle.dumps(a.state_dict()))
    assert _plain(saved)
    pb = tiny_params([p.numpy() for p in pa])
    b = getattr(tinyres.optim, name)(groups_of(pb, GROUPS[name]), lr=123.0)
    b.load_state_dict(saved)
    assert [g["lr"] for g in b.param_groups] == [g["lr"] for g in a.param_groups]
    for t in range(5, 12):
        for params in (pa, pb):
            set_grads(params, problem, t)
        a.step()
        b.step()
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@needs_torch
@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_state_dict_has_torchs_layout(name, kwargs):
    problem = Problem(np.float64)
    tp, pp = tiny_params(problem.start), torch_params(problem.start)
    ours = getattr(tinyres.optim, name)(groups_of(tp, GROUPS[name]), **kwargs)
    theirs = getattr(torch.optim, name)(groups_of(pp, GROUPS[name]), **kwargs)
    for t in range(3):
        for opt, params in ((ours, tp), (theirs, pp)):
            set_grads(params, problem, t, skip=(1,))
            opt.step()
    sd, ref = ours.state_dict(), theirs.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in ref["param_groups"]]
    assert {i: set(s) for i, s in sd["state"].items()} == {i: set(s) for i, s in ref["state"].items()}
    for i, s in sd["state"].items():
        for key, value in s.items():
            expected = ref["state"][i][key].numpy()
            np.testing.assert_allclose(value, expected, rtol=1e-12)
    for group, ref_group in zip(sd["param_groups"], ref["param_groups"]):
        common = set(group) & set(ref_group)
        assert common >= set(DEFAULTS[name])
        assert {k: group[k] for k in common} == {k: ref_group[k] for k in common}


def test_state_dict_is_a_copy_and_load_casts_to_the_parameter_dtype():
    problem = Problem(np.float64)
    p64 = tiny_params(problem.start)
    opt = tinyres.optim.Adam(p64, lr=0.1)
    set_grads(p64, problem, 0)
    opt.step()
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"][...] = 0
    assert np.any(opt.state[p64[0]]["exp_avg"] != 0)
    p32 = tiny_params([a.astype(np.float32) for a in problem.start])
    opt32 = tinyres.optim.Adam(p32)
    opt32.load_state_dict(opt.state_dict())
    state = opt32.state[p32[1]]
    assert state["exp_avg"].dtype == np.float32 and state["step"] == 1
    assert state["exp_avg"] is not opt.state[p64[1]]["exp_avg"]


def test_adamw_stays_decoupled_after_loading_an_adam_state():
    params = tiny_params(Problem(np.float32).start)
    adam_state = tinyres.optim.Adam(params).state_dict()
    adamw = tinyres.optim.AdamW(params)
    adamw.load_state_dict(adam_state)
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "number of parameter groups"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), "doesn't match the size"),
    (lambda sd: sd["state"].update({7: {}}), r"parameter indices \[7\]"),
])
def test_load_state_dict_rejects_a_mismatched_state(change, match):
    opt = tinyres.optim.SGD(tiny_params(Problem(np.float32).start), lr=0.1)
    saved = opt.state_dict()
    change(saved)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(saved)


# ---------------------------------------------------------------------- validation

def one_param():
    return [tinyres.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("make,error,match", [
    (lambda: tinyres.optim.SGD(one_param(), lr=-0.1), ValueError, r"Invalid learning rate: -0\.1"),
    (lambda: tinyres.optim.SGD(one_param(), lr=math.nan), ValueError, "Invalid learning rate: nan"),
    (lambda: tinyres.optim.Adam(one_param(), lr="fast"), TypeError, "learning rate.*real number"),
    (lambda: tinyres.optim.SGD(one_param(), momentum=-0.5), ValueError, "Invalid momentum value"),
    (lambda: tinyres.optim.SGD(one_param(), weight_decay=-1), ValueError, "Invalid weight_decay"),
    (lambda: tinyres.optim.SGD(one_param(), nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda: tinyres.optim.SGD(one_param(), momentum=0.9, dampening=0.1, nesterov=True),
     ValueError, "zero dampening"),
    (lambda: tinyres.optim.Adam(one_param(), betas=(1.0, 0.999)), ValueError,
     r"Invalid beta parameter at index 0: 1\.0"),
    (lambda: tinyres.optim.Adam(one_param(), betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda: tinyres.optim.Adam(one_param(), betas=(0.9,)), ValueError, "two values"),
    (lambda: tinyres.optim.AdamW(one_param(), eps=-1e-8), ValueError, "Invalid epsilon value"),
    (lambda: tinyres.optim.AdamW(one_param(), weight_decay=-0.1), ValueError, "Invalid weight_decay"),
    (lambda: tinyres.optim.SGD([]), ValueError, "optimizer got an empty parameter list"),
    (lambda: tinyres.optim.SGD(one_param()[0]), TypeError, "iterable of Tensors or dicts"),
    (lambda: tinyres.optim.SGD([{"params": set(one_param())}]), TypeError, "ordered collections"),
    (lambda: tinyres.optim.SGD([np.zeros(2)]), TypeError, "can only optimize Tensors.*ndarray"),
    (lambda: tinyres.optim.SGD([one_param()[0] * 2]), ValueError, "non-leaf"),
    (lambda: tinyres.optim.SGD([{"params": one_param(), "lr": -1.0}]), ValueError, "Invalid learning rate"),
])
def test_invalid_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_parameter_in_two_groups_is_rejected():
    w = one_param()
    with pytest.raises(ValueError, match="more than one parameter group"):
        tinyres.optim.SGD([{"params": w}, {"params": w, "lr": 0.1}])
    opt = tinyres.optim.SGD(w)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": w})


def test_zero_learning_rate_is_allowed_and_add_param_group_fills_defaults():
    opt = tinyres.optim.SGD(one_param(), lr=0.0, momentum=0.9)
    opt.add_param_group({"params": one_param(), "lr": 0.5})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    assert "Parameter Group 1" in repr(opt)
