"""The flat-buffer optimizer step on a GPU (``tinyres.optim.flat``, ``foreach``), under the
CuPy double: one kernel per parameter group, the same numbers bit for bit as one kernel per
parameter (``foreach=False``), and a layout that follows whatever is done to the tensors."""
import copy

import numpy as np
import pytest

import tinyres
from tinyres import nn, optim
from tinyres.nn import functional as F

DEVICE = "cuda:0"

OPTIMIZERS = {
    "sgd-nesterov": lambda p, **k: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, **k),
    "sgd-dampening": lambda p, **k: optim.SGD(p, lr=0.1, momentum=0.5, dampening=0.3, maximize=True, **k),
    "sgd-plain": lambda p, **k: optim.SGD(p, lr=0.05, **k),
    "adam": lambda p, **k: optim.Adam(p, lr=1e-2, weight_decay=1e-3, **k),
    "adamw-amsgrad": lambda p, **k: optim.AdamW(p, lr=1e-2, amsgrad=True, **k),
}


def model_on(device):
    tinyres.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3)).to(dtype=tinyres.float64).to(device)


def data(device, steps=5):
    rng = np.random.default_rng(1)
    return [(tinyres.tensor(rng.standard_normal((2, 3, 6, 6)), device=device),
             tinyres.tensor(rng.integers(0, 3, 2), device=device)) for _ in range(steps)]


def train(model, opt, batches, between=None):
    for k, (x, y) in enumerate(batches):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if between is not None:
            between(k, model, opt)
        opt.step()


def assert_same(model_a, opt_a, model_b, opt_b, exact=True):
    check = (np.testing.assert_array_equal if exact else
             lambda a, b, err_msg: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=err_msg))
    for (key, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        check(np.asarray(a), np.asarray(b), err_msg=key)
    a, b = opt_a.state_dict(), opt_b.state_dict()
    assert a["param_groups"] == [dict(g, foreach=h["foreach"]) for g, h in zip(b["param_groups"], a["param_groups"])]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for key in a["state"][i]:
            check(np.asarray(a["state"][i][key]), np.asarray(b["state"][i][key]), err_msg=f"{i} {key}")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_one_kernel_per_group_gives_the_numbers_of_one_per_parameter(fake_cupy, name):
    flat_model, model, cpu_model = model_on(DEVICE), model_on(DEVICE), model_on("cpu")
    flat_opt = OPTIMIZERS[name](flat_model.parameters())
    opt = OPTIMIZERS[name](model.parameters(), foreach=False)
    cpu_opt = OPTIMIZERS[name](cpu_model.parameters())
    train(flat_model, flat_opt, data(DEVICE))
    train(model, opt, data(DEVICE))
    train(cpu_model, cpu_opt, data("cpu"))
    (layout,) = flat_opt._flat.values()                     # the flat path was taken
    assert all(p.array is view for p, view in zip(flat_model.parameters(), layout.data_views))
    assert not opt._flat and not cpu_opt._flat              # foreach=False, and the CPU: per parameter
    assert_same(flat_model, flat_opt, model, opt)           # bit for bit
    assert_same(flat_model, flat_opt, cpu_model, cpu_opt, exact=False)


def test_a_group_step_is_one_launch_and_gradients_land_in_the_flat_buffer(strict_double):
    from cupy_double import STATE
    model = model_on(DEVICE)
    flat_opt, opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9), None
    counts = {}
    for foreach in (None, False):
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=foreach) if foreach is False else flat_opt
        for _ in range(2):                                   # the second step: buffers made, lr on the device
            opt.zero_grad()
            F.cross_entropy(model(data(DEVICE)[0][0]), data(DEVICE)[0][1]).backward()
            STATE.launches = 0
            opt.step()
        counts[foreach] = STATE.launches
    n = len(list(model.parameters()))
    assert counts == {None: 1, False: n}, counts
    opt = flat_opt
    opt.zero_grad()
    F.cross_entropy(model(data(DEVICE)[0][0]), data(DEVICE)[0][1]).backward()
    opt.step()                                               # the layout made again (foreach=False moved nothing)
    opt.zero_grad()
    F.cross_entropy(model(data(DEVICE)[0][0]), data(DEVICE)[0][1]).backward()
    (layout,) = opt._flat.values()
    assert all(p.grad.array is view for p, view in zip(model.parameters(), layout.grad_views))


def changes(k, model, opt):
    """What users do to tensors between steps; the layout must follow each."""
    params = list(model.parameters())
    if k == 1:
        params[0].array = params[0].array.copy()               # p.array replaced
    if k == 2:
        params[1].grad = None                                # a parameter skipped (SGD: so is its state)
    if k == 3:
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))   # new state arrays
        loss = F.cross_entropy(model(data(DEVICE)[0][0]), data(DEVICE)[0][1])
        loss.backward()                                      # accumulated: a .grad that is not in its slot


@pytest.mark.parametrize("name", ["sgd-nesterov", "adamw-amsgrad"])
def test_the_layout_follows_what_is_done_to_the_tensors(fake_cupy, name):
    flat_model, model = model_on(DEVICE), model_on(DEVICE)
    flat_opt = OPTIMIZERS[name](flat_model.parameters())
    opt = OPTIMIZERS[name](model.parameters(), foreach=False)
    train(flat_model, flat_opt, data(DEVICE), changes)
    train(model, opt, data(DEVICE), changes)
    assert_same(flat_model, flat_opt, model, opt)


def test_foreach_is_checked_and_kept_in_the_groups():
    with pytest.raises(ValueError, match="foreach must be None, True or False, got 'yes'"):
        optim.SGD([tinyres.zeros(2, requires_grad=True)], lr=0.1, foreach="yes")
    opt = optim.Adam([tinyres.zeros(2, requires_grad=True)], foreach=False)
    assert opt.param_groups[0]["foreach"] is False and opt.state_dict()["param_groups"][0]["foreach"] is False
