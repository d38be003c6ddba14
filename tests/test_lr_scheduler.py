"""tinyres.optim.lr_scheduler against torch.optim.lr_scheduler: the learning rates (and
momenta) of every parameter group, step by step; state_dict round trips; validation."""
import pickle
import warnings

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.optim
from cases import BASE_LRS, SCHEDULER_STEPS, SCHEDULES

STEPS = SCHEDULER_STEPS


def make_optimizer(fw, optimizer="SGD"):
    """An optimizer of ``fw`` (tinyres or torch) with three groups of different base lrs."""
    groups = [{"params": [fw.zeros(2, requires_grad=True)], "lr": lr} for lr in BASE_LRS]
    kwargs = {"momentum": 0.9} if optimizer == "SGD" else {}
    return getattr(fw.optim, optimizer)(groups, **kwargs)


def momenta(opt):
    return [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]


def trace(fw, make, optimizer="SGD", steps=STEPS, tweak=None):
    """Rows of (lrs..., momenta...) before each of ``steps`` optimizer steps."""
    opt = make_optimizer(fw, optimizer)
    scheduler = make(fw.optim.lr_scheduler, opt)
    rows = []
    for t in range(steps):
        assert scheduler.get_last_lr() == [g["lr"] for g in opt.param_groups]
        rows.append([g["lr"] for g in opt.param_groups] + momenta(opt))
        opt.step()
        if tweak is not None:
            tweak(t, opt)
        scheduler.step()
    return np.array(rows)


@needs_torch
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_matches_torch_step_by_step(name, optimizer):
    ours = trace(tinyres, SCHEDULES[name], optimizer)
    theirs = trace(torch, SCHEDULES[name], optimizer)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@needs_torch
@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LinearLR", "ConstantLR-factor", "PolynomialLR-power"])
def test_chainable_forms_follow_a_hand_made_change_like_torch(name):
    def halve_at_step_3(t, opt):
        if t == 3:
            for g in opt.param_groups:
                g["lr"] *= 0.5

    ours = trace(tinyres, SCHEDULES[name], tweak=halve_at_step_3)
    theirs = trace(torch, SCHEDULES[name], tweak=halve_at_step_3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_creating_a_scheduler_sets_initial_lr_and_base_lrs():
    opt = make_optimizer(tinyres)
    scheduler = tinyres.optim.lr_scheduler.LinearLR(opt, start_factor=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS
    assert scheduler.base_lrs == BASE_LRS and scheduler.last_epoch == 0
    assert scheduler.get_last_lr() == [lr * 0.5 for lr in BASE_LRS]


class Decay:
    """A callable object with state: LambdaLR saves its __dict__."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


ROUND_TRIP = dict(SCHEDULES, **{"LambdaLR-callable-object": lambda s, o: s.LambdaLR(o, Decay(0.8)),
                                "CyclicLR-callable-object": lambda s, o: s.CyclicLR(o, 0.01, 0.1, 3,
                                                                                    scale_fn=Decay(0.9))})


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_state_dict_round_trip_mid_schedule(name):
    """Scheduler A runs k steps; B is made fresh, gets A's optimizer and scheduler state;
    both continue with the same learning rates."""
    make = ROUND_TRIP[name]
    opt_a = make_optimizer(tinyres)
    a = make(tinyres.optim.lr_scheduler, opt_a)
    for _ in range(17):
        opt_a.step()
        a.step()
    saved = pickle.loads(pickle.dumps((opt_a.state_dict(), a.state_dict())))
    opt_b = make_optimizer(tinyres)
    b = make(tinyres.optim.lr_scheduler, opt_b)
    opt_b.load_state_dict(saved[0])
    b.load_state_dict(saved[1])
    assert b.get_last_lr() == a.get_last_lr()
    for _ in range(STEPS - 18):
        for opt, scheduler in ((opt_a, a), (opt_b, b)):
            opt.step()
            scheduler.step()
        assert b.get_last_lr() == a.get_last_lr()
        assert momenta(opt_b) == momenta(opt_a)


def test_lambda_lr_saves_only_callable_objects():
    opt = make_optimizer(tinyres)
    lambdas = [Decay(0.5), lambda e: 1.0, Decay(0.7)]
    state = tinyres.optim.lr_scheduler.LambdaLR(opt, lambdas).state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.5}, None, {"rate": 0.7}]


def test_stepping_the_scheduler_first_warns():
    opt = make_optimizer(tinyres)
    scheduler = tinyres.optim.lr_scheduler.StepLR(opt, 3)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        scheduler.step()
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tinyres.optim.lr_scheduler.StepLR(opt, 3).step()


@needs_torch
@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "ExponentialLR",
                                  "LambdaLR", "ConstantLR-factor", "PolynomialLR-power"])
def test_step_with_an_epoch_jumps_by_the_closed_form_and_warns_as_torch(name):
    def lrs(fw):
        opt = make_optimizer(fw)
        scheduler = SCHEDULES[name](fw.optim.lr_scheduler, opt)
        rows = []
        for epoch in (3, 4, 10, 2, 17):
            opt.step()
            with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
                scheduler.step(epoch)
            rows.append(scheduler.get_last_lr())
        return rows
    np.testing.assert_allclose(lrs(tinyres), lrs(torch), rtol=1e-15, atol=0)


def test_one_cycle_past_total_steps_raises():
    opt = make_optimizer(tinyres)
    scheduler = tinyres.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 4 times.*total steps is 3"):
        scheduler.step()


class Plain(tinyres.optim.Optimizer):
    """An optimizer with neither momentum nor betas."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))


S = tinyres.optim.lr_scheduler


@pytest.mark.parametrize("make,error,match", [
    (lambda o: S.StepLR(object(), 3), TypeError, "object is not an Optimizer"),
    (lambda o: S.CosineAnnealingLR(o, 10, last_epoch=4), KeyError, "initial_lr"),
    (lambda o: S.LinearLR(o, start_factor=0), ValueError, "start_factor expected"),
    (lambda o: S.LinearLR(o, end_factor=1.5), ValueError, "end_factor expected"),
    (lambda o: S.LambdaLR(o, [abs, abs]), ValueError, "Expected 3 lr_lambdas, but got 2"),
    (lambda o: S.SequentialLR(o, [], []), ValueError, "at least one scheduler"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], []), ValueError,
     "one more than the number of milestone"),
    (lambda o: S.SequentialLR(o, [S.StepLR(make_optimizer(tinyres), 2)], []), ValueError,
     "same optimizer"),
    (lambda o: S.SequentialLR(o, ["StepLR"], []), TypeError, "not an LRScheduler"),
    (lambda o: S.ChainedScheduler([]), ValueError, "at least one scheduler"),
    (lambda o: S.ChainedScheduler([S.StepLR(o, 2), S.StepLR(make_optimizer(tinyres), 2)]), ValueError,
     "same optimizer"),
    (lambda o: S.ChainedScheduler([S.ReduceLROnPlateau(o)]), ValueError, "does not support `ReduceLROnPlateau`"),
    (lambda o: S.ChainedScheduler(["StepLR"]), AttributeError, "optimizer"),
    (lambda o: S.OneCycleLR(o, 1.0), ValueError, "total_steps OR"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=0), ValueError, "positive integer total_steps"),
    (lambda o: S.OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=1.5), ValueError,
     "positive integer steps_per_epoch"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, anneal_strategy="exp"), ValueError, "'cos' or 'linear'"),
    (lambda o: S.OneCycleLR(o, [1.0, 2.0], 10), ValueError, "max_lr must have the same length"),
    (lambda o: S.OneCycleLR(Plain(o.param_groups[0]["params"]), 1.0, 10), ValueError,
     "must support momentum or beta1"),
])
def test_invalid_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make(make_optimizer(tinyres))


# ---------------------------------------------------------------------- MultiplicativeLR,
# CosineAnnealingWarmRestarts, ReduceLROnPlateau (issue 22)

MORE_SCHEDULES = {
    "MultiplicativeLR": lambda s, o: s.MultiplicativeLR(o, lambda e: 0.95),
    "MultiplicativeLR-per-group": lambda s, o: s.MultiplicativeLR(
        o, [lambda e: 0.9, lambda e: 1.0 - 0.01 * e, Decay(0.99)]),
    "CosineAnnealingWarmRestarts": lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=1e-3),
    "CosineAnnealingWarmRestarts-T_mult": lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
}


@needs_torch
@pytest.mark.parametrize("name", list(MORE_SCHEDULES))
def test_more_schedules_match_torch_step_by_step(name):
    ours = trace(tinyres, MORE_SCHEDULES[name])
    theirs = trace(torch, MORE_SCHEDULES[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(MORE_SCHEDULES))
def test_more_schedules_state_dict_round_trip(name):
    make = MORE_SCHEDULES[name]
    opt_a = make_optimizer(tinyres)
    a = make(tinyres.optim.lr_scheduler, opt_a)
    for _ in range(11):
        opt_a.step()
        a.step()
    saved = pickle.loads(pickle.dumps((opt_a.state_dict(), a.state_dict())))
    opt_b = make_optimizer(tinyres)
    b = make(tinyres.optim.lr_scheduler, opt_b)
    opt_b.load_state_dict(saved[0])
    b.load_state_dict(saved[1])
    for _ in range(15):
        for opt, scheduler in ((opt_a, a), (opt_b, b)):
            opt.step()
            scheduler.step()
        assert b.get_last_lr() == a.get_last_lr()


@needs_torch
@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_fractional_epochs_match_torch(T_mult):
    """``step(epoch + i / iters)`` once per batch, as torch's docs show."""
    def run(fw):
        opt = make_optimizer(fw)
        scheduler = fw.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=T_mult, eta_min=0.01)
        rows = []
        for epoch in range(9):
            for i in range(4):
                opt.step()
                scheduler.step(epoch + i / 4)
                rows.append(scheduler.get_last_lr() + [scheduler.T_cur, scheduler.T_i, scheduler.last_epoch])
        return np.array(rows, dtype=float)
    np.testing.assert_allclose(run(tinyres), run(torch), rtol=1e-12, atol=0)


# a metric with a fall, plateaus, noise at the threshold's scale and a rise
METRIC = [1.0, 0.9, 0.9, 0.89995, 0.91, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79999, 0.7, 0.85, 0.9,
          0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]

PLATEAU = {
    "defaults": {},
    "patience-0": dict(patience=0),
    "max-abs-cooldown": dict(mode="max", threshold_mode="abs", threshold=0.01, patience=1, cooldown=2),
    "min-abs-factor": dict(threshold_mode="abs", threshold=1e-3, patience=2, factor=0.5),
    "min-lr-per-group": dict(patience=1, factor=0.2, min_lr=[0.05, 0.001, 0.2]),
    "min-lr-eps": dict(patience=0, factor=0.5, min_lr=0.01, eps=0.02),
    "max-rel": dict(mode="max", patience=2, threshold=0.05),
}


@needs_torch
@pytest.mark.parametrize("name", list(PLATEAU))
def test_reduce_lr_on_plateau_matches_torch(name):
    def run(fw):
        opt = make_optimizer(fw)
        scheduler = fw.optim.lr_scheduler.ReduceLROnPlateau(opt, **PLATEAU[name])
        rows = []
        for value in METRIC:
            opt.step()
            scheduler.step(fw.tensor(value) if value == 0.5 else value)     # a 0-d tensor too
            rows.append([g["lr"] for g in opt.param_groups] + scheduler.get_last_lr()
                        + [scheduler.num_bad_epochs, scheduler.cooldown_counter, scheduler.best])
        return np.array(rows, dtype=float)
    np.testing.assert_allclose(run(tinyres), run(torch), rtol=1e-12, atol=0)


def test_reduce_lr_on_plateau_state_dict_round_trip():
    s = tinyres.optim.lr_scheduler
    opt_a = make_optimizer(tinyres)
    a = s.ReduceLROnPlateau(opt_a, mode="max", patience=1, cooldown=1)
    for value in METRIC[:12]:
        a.step(value)
    saved = pickle.loads(pickle.dumps((opt_a.state_dict(), a.state_dict())))
    assert "optimizer" not in saved[1] and saved[1]["mode"] == "max"
    opt_b = make_optimizer(tinyres)
    b = s.ReduceLROnPlateau(opt_b)
    opt_b.load_state_dict(saved[0])
    b.load_state_dict(saved[1])
    for value in METRIC[12:]:
        a.step(value)
        b.step(value)
        assert b.get_last_lr() == a.get_last_lr() and b.best == a.best


@needs_torch
@pytest.mark.parametrize("make", [
    lambda s, o: s.ReduceLROnPlateau(o, factor=1.0),
    lambda s, o: s.ReduceLROnPlateau(o, mode="low"),
    lambda s, o: s.ReduceLROnPlateau(o, threshold_mode="pct"),
    lambda s, o: s.ReduceLROnPlateau(o, min_lr=[0.1]),
    lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=0),
    lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5),
    lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
    lambda s, o: s.MultiplicativeLR(o, 0.9),
    lambda s, o: s.MultiplicativeLR(o, [lambda e: 1.0]),
    lambda s, o: s.ConstantLR(o, factor=1.5),
    lambda s, o: s.ConstantLR(o, factor=-0.1),
    lambda s, o: s.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
    lambda s, o: s.CyclicLR(o, [0.01, 0.02], 0.1),
    lambda s, o: s.CyclicLR(o, 0.01, [0.1]),
    lambda s, o: s.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8, 0.9]),
    lambda s, o: s.CyclicLR(object(), 0.01, 0.1),
])
def test_more_schedules_refuse_bad_arguments_as_torch(make):
    def error(fw):
        with pytest.raises(Exception) as info:
            make(fw.optim.lr_scheduler, make_optimizer(fw))
        return info.value
    ours, theirs = error(tinyres), error(torch)
    assert type(ours) is type(theirs) and str(ours) == str(theirs)


# ---------------------------------------------------------------------- ConstantLR, PolynomialLR, CyclicLR
# (issue 22; their schedules against torch and their round trips are rows of SCHEDULES above)

def test_cyclic_lr_saves_a_callable_objects_state_not_a_function():
    s = tinyres.optim.lr_scheduler
    state = s.CyclicLR(make_optimizer(tinyres), 0.01, 0.1, scale_fn=Decay(0.5)).state_dict()
    assert state["_scale_fn_custom"] == {"rate": 0.5}
    with_lambda = s.CyclicLR(make_optimizer(tinyres), 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert with_lambda.state_dict()["_scale_fn_custom"] is None
    scheduler = s.CyclicLR(make_optimizer(tinyres), 0.01, 0.1, scale_fn=Decay(0.9))
    scheduler.load_state_dict(state)
    assert scheduler._scale_fn_custom.rate == 0.5


def test_cyclic_lr_needs_momentum_or_betas_to_cycle():
    opt = Plain(make_optimizer(tinyres).param_groups[0]["params"])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1 with `cycle_momentum` option"):
        tinyres.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1)
    tinyres.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, cycle_momentum=False)
