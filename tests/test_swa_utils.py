"""tinyres.optim.swa_utils against torch.optim.swa_utils, float64: the averaged weights of
AveragedModel (SWA, EMA, a custom avg_fn, use_buffers) after each update of a model
trained identically in both, update_bn's running statistics, and SWALR's lrs step by step."""
import numpy as np
import pytest
from helpers import needs_torch, torch

import tinyres
from tinyres import nn

rng = np.random.default_rng(0)


def models():
    """One small conv net with BatchNorm, in both libraries, with the same weights."""
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(12, 2)).double()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3),
                                 torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(12, 2)).double()
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    return ours, theirs


def train_and_average(make_averaged, steps=6):
    """SGD on random batches in both; the averaged model is updated after each step."""
    ours, theirs = models()
    avg_ours = make_averaged(tinyres.optim.swa_utils, ours)
    avg_theirs = make_averaged(torch.optim.swa_utils, theirs)
    opt_ours = tinyres.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    data = np.random.default_rng(1)
    for _ in range(steps):
        x, g = data.standard_normal((5, 2, 4, 4)), data.standard_normal((5, 2))
        for fw, model, opt, avg in ((tinyres, ours, opt_ours, avg_ours), (torch, theirs, opt_theirs, avg_theirs)):
            opt.zero_grad()
            (model(fw.tensor(x)) * fw.tensor(g)).sum().backward()
            opt.step()
            avg.update_parameters(model)
        compare_states(avg_ours, avg_theirs)
    return avg_ours, avg_theirs


def compare_states(ours, theirs, rtol=1e-13):
    mine, want = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(want)
    for key in want:
        np.testing.assert_allclose(np.asarray(mine[key]), want[key].numpy(), rtol=rtol, atol=1e-15, err_msg=key)


AVERAGES = {
    "SWA": lambda s, m: s.AveragedModel(m),
    "SWA-use_buffers": lambda s, m: s.AveragedModel(m, use_buffers=True),
    "EMA": lambda s, m: s.AveragedModel(m, multi_avg_fn=s.get_ema_multi_avg_fn(0.9)),
    "EMA-use_buffers": lambda s, m: s.AveragedModel(m, multi_avg_fn=s.get_ema_multi_avg_fn(0.7), use_buffers=True),
    "EMA-avg_fn": lambda s, m: s.AveragedModel(m, avg_fn=s.get_ema_avg_fn(0.8)),
    "SWA-multi_avg_fn": lambda s, m: s.AveragedModel(m, multi_avg_fn=s.get_swa_multi_avg_fn()),
    "SWA-avg_fn": lambda s, m: s.AveragedModel(m, avg_fn=s.get_swa_avg_fn()),
    "custom-avg_fn": lambda s, m: s.AveragedModel(m, avg_fn=lambda a, w, n: 0.25 * a + 0.75 * w),
}


@needs_torch
@pytest.mark.parametrize("name", list(AVERAGES))
def test_averaged_model_matches_torch(name):
    ours, theirs = train_and_average(AVERAGES[name])
    assert int(ours.n_averaged.item()) == int(theirs.n_averaged) == 6
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 4))
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(tinyres.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)


@needs_torch
def test_update_bn_matches_torch():
    ours, theirs = train_and_average(AVERAGES["SWA"])
    batches = [np.random.default_rng(3 + i).standard_normal((4, 2, 4, 4)) for i in range(3)]
    ours.eval(), theirs.eval()
    tinyres.optim.swa_utils.update_bn([(tinyres.tensor(b), 0) for b in batches], ours)
    torch.optim.swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], theirs)
    compare_states(ours, theirs, rtol=1e-12)
    assert not ours.training and ours.module[1].momentum == 0.1


def test_averaged_model_is_a_copy_and_refuses_two_functions():
    model = nn.Linear(3, 2)
    averaged = tinyres.optim.swa_utils.AveragedModel(model)
    assert averaged.module is not model and averaged.module.weight is not model.weight
    assert list(averaged.state_dict()) == ["n_averaged", "module.weight", "module.bias"]
    s = tinyres.optim.swa_utils
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        s.AveragedModel(model, avg_fn=s.get_swa_avg_fn(), multi_avg_fn=s.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="Invalid decay value 1.5"):
        s.get_ema_multi_avg_fn(1.5)


SWALRS = {
    "cos": lambda s, o: s.SWALR(o, swa_lr=0.05, anneal_epochs=5),
    "linear-per-group": lambda s, o: s.SWALR(o, swa_lr=[0.01, 0.02, 0.5], anneal_epochs=3, anneal_strategy="linear"),
    "no-annealing": lambda s, o: s.SWALR(o, swa_lr=0.07, anneal_epochs=0),
}


def make_optimizer(fw):
    groups = [{"params": [fw.zeros(2, requires_grad=True)], "lr": lr} for lr in (0.1, 0.05, 0.3)]
    return fw.optim.SGD(groups, momentum=0.9)


@needs_torch
@pytest.mark.parametrize("name", list(SWALRS))
def test_swalr_matches_torch(name):
    def run(fw):
        opt = make_optimizer(fw)
        scheduler = SWALRS[name](fw.optim.swa_utils, opt)
        rows = []
        for _ in range(12):
            rows.append(scheduler.get_last_lr())
            opt.step()
            scheduler.step()
        return np.array(rows)
    np.testing.assert_allclose(run(tinyres), run(torch), rtol=1e-13, atol=0)


def test_swalr_state_dict_round_trip():
    s = tinyres.optim.swa_utils
    opt_a, opt_b = make_optimizer(tinyres), make_optimizer(tinyres)
    a, b = s.SWALR(opt_a, 0.05, anneal_epochs=6), s.SWALR(opt_b, 0.01, anneal_strategy="linear")
    for _ in range(3):
        opt_a.step()
        a.step()
    state = a.state_dict()
    assert "anneal_func" not in state and "optimizer" not in state
    opt_b.load_state_dict(opt_a.state_dict())
    b.load_state_dict(state)
    for _ in range(5):
        for opt, scheduler in ((opt_a, a), (opt_b, b)):
            opt.step()
            scheduler.step()
        assert a.get_last_lr() == b.get_last_lr()


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(anneal_strategy="step"), dict(anneal_epochs=-1), dict(swa_lr=[0.1])])
def test_swalr_refuses_what_torch_refuses(kwargs):
    def error(fw):
        with pytest.raises(ValueError) as info:
            fw.optim.swa_utils.SWALR(make_optimizer(fw), **{"swa_lr": 0.1, **kwargs})
        return str(info.value)
    assert error(tinyres) == error(torch)
