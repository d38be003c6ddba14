"""tinyres.nn.utils.parametrize and .parametrizations (weight_norm, spectral_norm), and the old
hook-based nn.utils.weight_norm / spectral_norm, against torch in float64.

The modules start from torch's state_dict (spectral norm's u and v included: tinyres draws
its own), then train a few SGD steps side by side: outputs, the gradients of the originals
(g and v, weight_orig), the moving u and v, and the state_dict keys must stay torch's.  The
parametrized layers are also rows of tests/cases.py's LAYERS (test_nn_layers.py against
torch in float32 and float64, train and eval; test_gpu.py under the CuPy double)."""
import copy
import pickle
import re
import warnings

import numpy as np
import pytest
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy
from helpers import compare_second_order_with_torch, gradgradcheck, randn, torch
from test_nn_layers import assert_same_state, twins

import tinyres
from tinyres import nn
from tinyres.nn.utils import parametrizations, parametrize

TOL = dict(rtol=1e-10, atol=1e-12)
OLD_WEIGHT_NORM = "`torch.nn.utils.weight_norm` is deprecated in favor of `torch.nn.utils.parametrizations.weight_norm`."


def close(ours, theirs, what=""):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOL, err_msg=what)


def train_both(ours, theirs, shape, steps=3, lr=0.5):
    """SGD steps on both: the outputs and the gradient of every parameter (torch's names)
    agree at each step, and the whole state after them."""
    opt, topt = tinyres.optim.SGD(ours.parameters(), lr=lr), torch.optim.SGD(theirs.parameters(), lr=lr)
    for step in range(steps):
        x = randn(*shape, seed=step)
        y, ty = ours(tinyres.tensor(x)), theirs(torch.tensor(x))
        close(y, ty, f"output, step {step}")
        g = randn(*y.shape, seed=10 + step)
        y.backward(tinyres.tensor(g))
        ty.backward(torch.tensor(g))
        tparams = dict(theirs.named_parameters())
        assert [name for name, _ in ours.named_parameters()] == list(tparams)
        for name, p in ours.named_parameters():
            close(p.grad, tparams[name].grad, f"gradient of {name}, step {step}")
        opt.step()
        topt.step()
        opt.zero_grad()
        topt.zero_grad()
    assert_same_state(ours, theirs, np.float64)


def old_weight_norm(n, module, **kwargs):
    """``n.utils.weight_norm``, which warns as torch's."""
    with pytest.warns(FutureWarning, match=re.escape(OLD_WEIGHT_NORM)):
        return n.utils.weight_norm(module, **kwargs)


WEIGHT_NORMS = {
    "linear": (lambda n: n.utils.parametrizations.weight_norm(n.Linear(4, 3)), (5, 4)),
    "conv2d_dim1": (lambda n: n.utils.parametrizations.weight_norm(n.Conv2d(2, 3, 2), dim=1), (2, 2, 4, 3)),
    "conv2d_dim_none": (lambda n: n.utils.parametrizations.weight_norm(n.Conv2d(2, 3, 2), dim=None), (2, 2, 4, 3)),
    "conv2d_dim_minus2": (lambda n: n.utils.parametrizations.weight_norm(n.Conv2d(2, 3, 2), dim=-2), (2, 2, 4, 3)),
    "old_linear": (lambda n: old_weight_norm(n, n.Linear(4, 3)), (5, 4)),
    "old_conv2d_dim_none": (lambda n: old_weight_norm(n, n.Conv2d(2, 3, 2), dim=None), (2, 2, 4, 3)),
}
SPECTRAL_NORMS = {
    "linear": (lambda n: n.utils.parametrizations.spectral_norm(n.Linear(4, 3)), (5, 4)),
    "conv2d_3_steps": (lambda n: n.utils.parametrizations.spectral_norm(n.Conv2d(2, 3, 2), n_power_iterations=3),
                       (2, 2, 4, 3)),
    "conv2d_dim2": (lambda n: n.utils.parametrizations.spectral_norm(n.Conv2d(2, 3, 2), dim=2), (2, 2, 4, 3)),
    "conv_transpose2d": (lambda n: n.utils.parametrizations.spectral_norm(n.ConvTranspose2d(2, 3, 2)), (2, 2, 3, 3)),
    "old_linear": (lambda n: n.utils.spectral_norm(n.Linear(4, 3)), (5, 4)),
    "old_conv2d_3_steps": (lambda n: n.utils.spectral_norm(n.Conv2d(2, 3, 2), n_power_iterations=3), (2, 2, 4, 3)),
    "old_conv_transpose2d": (lambda n: n.utils.spectral_norm(n.ConvTranspose2d(2, 3, 2)), (2, 2, 3, 3)),
}


@pytest.mark.parametrize("case", WEIGHT_NORMS)
def test_weight_norm_trains_as_torchs(case):
    build, shape = WEIGHT_NORMS[case]
    ours, theirs = twins(build, np.float64)
    train_both(ours, theirs, shape)


@pytest.mark.parametrize("case", SPECTRAL_NORMS)
def test_spectral_norm_trains_as_torchs_then_stops_its_power_iteration_in_eval(case):
    build, shape = SPECTRAL_NORMS[case]
    ours, theirs = twins(build, np.float64)
    train_both(ours, theirs, shape)
    before = {k: v.numpy().copy() for k, v in ours.state_dict().items()}
    ours.eval()
    theirs.eval()
    x = randn(*shape, seed=7)
    close(ours(tinyres.tensor(x)), theirs(torch.tensor(x)), "eval output")
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)


def test_the_keys_and_the_originals_are_torchs():
    ours, theirs = twins(lambda n: n.utils.parametrizations.spectral_norm(n.Linear(4, 3)), np.float64)
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
                                       "parametrizations.weight.0._v"] == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert repr(ours) == repr(theirs)
    m = nn.Linear(4, 3)
    weight = m.weight
    parametrizations.weight_norm(m)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    g, v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    assert isinstance(g, nn.Parameter) and g.shape == (3, 1) and v.array is weight.array   # v: the old weight's memory
    np.testing.assert_allclose(m.weight.numpy(), weight.numpy(), rtol=1e-6)
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    assert parametrize.type_before_parametrizations(m) is nn.Linear


def test_a_state_dict_goes_back_to_torch():
    """tinyres trains; torch's twin, loaded with tinyres's state_dict, computes the same."""
    build, shape = SPECTRAL_NORMS["conv2d_3_steps"]
    ours, theirs = twins(build, np.float64)
    opt = tinyres.optim.SGD(ours.parameters(), lr=0.5)
    for step in range(2):
        ours(tinyres.tensor(randn(*shape, seed=step))).sum().backward()
        opt.step()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ours.eval()
    theirs.eval()
    x = randn(*shape, seed=5)
    close(ours(tinyres.tensor(x)), theirs(torch.tensor(x)))


def test_weight_norm_second_order():
    """Against torch's formula, v * (g / norm_except_dim(v)): torch's fused ``_weight_norm`` has
    a wrong second derivative in v (its own gradgradcheck fails, torch 2.13); finite
    differences agree with the formula's."""
    arrays = [randn(4, 2), randn(3, 1, seed=1).__abs__(), randn(3, 4, seed=2)]
    compare_second_order_with_torch(lambda x, g, v: parametrizations._WeightNorm(0)(g, v) @ x,
                                    lambda x, g, v: v * (g / torch.norm_except_dim(v, 2, 0)) @ x, arrays)
    assert gradgradcheck(parametrizations._WeightNorm(1), [tinyres.tensor(randn(1, 4, seed=3), requires_grad=True),
                                                           tinyres.tensor(arrays[2], requires_grad=True)])


def test_spectral_norm_of_a_vector_normalizes_it():
    ours, theirs = twins(lambda n: n.utils.parametrizations.spectral_norm(n.Linear(4, 3), "bias"), np.float64)
    assert list(ours.state_dict()) == ["weight", "parametrizations.bias.original"] == list(theirs.state_dict())
    close(ours.bias, theirs.bias)
    train_both(ours, theirs, (5, 4), steps=2)


# ---------------------------------------------------------------------- parametrize itself

def symmetric(n):
    """torch's tutorial parametrization, in library ``n``: X -> triu(X) + triu(X, 1)^T, right inverse triu."""
    class Symmetric(n.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)

        def right_inverse(self, A):
            return A.triu()
    return Symmetric()


def scaled(n, factor):
    class Scale(n.Module):
        def forward(self, X):
            return X * factor

        def right_inverse(self, X):
            return X / factor
    return Scale()


def both(build):
    """``build(n, lib)`` in torch and tinyres, torch's state loaded into tinyres."""
    torch.manual_seed(0)
    theirs = build(torch.nn, torch.nn.utils.parametrize).double()
    ours = build(nn, parametrize).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def chained(n, p):
    m = n.Linear(3, 3)
    p.register_parametrization(m, "weight", symmetric(n))
    return p.register_parametrization(m, "weight", scaled(n, 2.0))


def test_a_parametrization_is_a_property_of_the_module_computed_from_its_original():
    m = nn.Linear(3, 3)
    weight, calls = m.weight, []
    parametrize.register_parametrization(m, "weight", symmetric(nn))
    original = m.parametrizations.weight.original
    assert original is weight                                              # the same Parameter: optimizers keep it
    np.testing.assert_array_equal(original.numpy(), np.triu(weight.numpy()))   # right_inverse ran
    np.testing.assert_array_equal(m.weight.numpy(), m.weight.numpy().T)
    assert "weight" not in m._parameters and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias") and not parametrize.is_parametrized(nn.Linear(2, 2))
    m.parametrizations.weight[0].register_forward_hook(lambda *args: calls.append(1))
    m.weight
    m.weight
    assert len(calls) == 2                                                 # computed at each read
    with parametrize.cached():
        with parametrize.cached():
            assert m.weight is m.weight
        assert m.weight is m.weight and len(calls) == 3
    assert m.weight is not m.weight


def test_chained_parametrizations_train_as_torchs():
    ours, theirs = both(chained)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert repr(ours) == repr(theirs)
    close(ours.weight, theirs.weight)
    train_both(ours, theirs, (4, 3))


def test_assigning_runs_the_right_inverses():
    ours, theirs = both(chained)
    a = randn(3, 3, seed=4)
    ours.weight = tinyres.tensor(a)
    with torch.no_grad():
        theirs.weight = torch.tensor(a)
    close(ours.parametrizations.weight.original, theirs.parametrizations.weight.original)
    close(ours.weight, theirs.weight)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        ours.weight = nn.Parameter(tinyres.tensor(a))       # as torch's


@pytest.mark.parametrize("leave_parametrized", [True, False])
def test_remove_parametrizations(leave_parametrized):
    ours, theirs = both(chained)
    original = ours.parametrizations.weight.original
    parametrize.remove_parametrizations(ours, "weight", leave_parametrized=leave_parametrized)
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight", leave_parametrized=leave_parametrized)
    assert ours.weight is original and isinstance(ours.weight, nn.Parameter)
    close(ours.weight, theirs.weight)
    assert type(ours) is nn.Linear and not hasattr(ours, "parametrizations")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]


def test_remove_a_tuple_parametrization_and_keep_its_value():
    ours, theirs = twins(WEIGHT_NORMS["linear"][0], np.float64)
    parametrize.remove_parametrizations(ours, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight")
    assert isinstance(ours.weight, nn.Parameter) and ours.weight.is_leaf
    close(ours.weight, theirs.weight)
    with pytest.raises(ValueError, match=re.escape("Cannot leave unparametrized (`leave_parametrized=False`)")):
        parametrize.remove_parametrizations(parametrizations.weight_norm(nn.Linear(2, 2)), "weight", False)


def test_a_buffer_can_be_parametrized():
    def build(n, p):
        m = n.Linear(2, 2)
        m.register_buffer("scale", (torch if n is torch.nn else tinyres).ones(2))
        return p.register_parametrization(m, "scale", scaled(n, 3.0))
    ours, theirs = both(build)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == \
        ["parametrizations.scale.original"]
    close(ours.scale, theirs.scale)


def test_transfer_parametrizations_and_params():
    source = chained(nn, parametrize)
    target = parametrize.transfer_parametrizations_and_params(source, nn.Linear(3, 3))
    assert target.parametrizations.weight.original is source.parametrizations.weight.original
    np.testing.assert_array_equal(target.weight.numpy(), source.weight.numpy())


def test_a_parametrized_module_deep_copies_but_does_not_pickle():
    m = chained(nn, parametrize)
    twin = copy.deepcopy(m)
    assert twin.parametrizations.weight.original is not m.parametrizations.weight.original
    np.testing.assert_array_equal(twin.weight.numpy(), m.weight.numpy())
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules is only supported through"):
        pickle.dumps(m)


def summed(n):
    """A parametrization that changes the shape, without a right inverse."""
    class Sum(n.Module):
        def forward(self, X):
            return X.sum(0)
    return Sum()


ERRORS = {     # the same call in torch and tinyres: the same exception and message
    "not_a_tensor_name": lambda n, p: p.register_parametrization(n.Linear(3, 2), "nope", scaled(n, 2.0)),
    "no_right_inverse": lambda n, p: setattr(p.register_parametrization(n.Linear(3, 2), "weight", summed(n),
                                                                        unsafe=True), "weight", n.Linear(3, 2).weight),
    "not_parametrized": lambda n, p: p.remove_parametrizations(n.Linear(3, 2), "weight"),
    "empty_list": lambda n, p: p.ParametrizationList([], n.Linear(3, 2).weight),
    "power_iterations": lambda n, p: n.utils.parametrizations.spectral_norm(n.Linear(3, 2), n_power_iterations=0),
    "spectral_dim": lambda n, p: n.utils.parametrizations.spectral_norm(n.Linear(3, 2), dim=2),
    "spectral_name": lambda n, p: n.utils.parametrizations.spectral_norm(n.Linear(3, 2), "nope"),
    "old_weight_norm_twice": lambda n, p: n.utils.weight_norm(n.utils.weight_norm(n.Linear(3, 2))),
    "old_weight_norm_not_there": lambda n, p: n.utils.remove_weight_norm(n.Linear(3, 2)),
    "old_spectral_norm_twice": lambda n, p: n.utils.spectral_norm(n.utils.spectral_norm(n.Linear(3, 2))),
    "old_spectral_norm_no_such_parameter": lambda n, p: n.utils.spectral_norm(n.Linear(3, 2), "nope"),
    "old_spectral_norm_of_none": lambda n, p: n.utils.spectral_norm(n.Linear(3, 2, bias=False), "bias"),
    "old_spectral_norm_not_there": lambda n, p: n.utils.remove_spectral_norm(n.Linear(3, 2)),
    "old_spectral_norm_power_iterations": lambda n, p: n.utils.spectral_norm(n.Linear(3, 2), n_power_iterations=0),
}


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_torchs(case):
    with pytest.raises(Exception) as theirs:
        ERRORS[case](torch.nn, torch.nn.utils.parametrize)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        ERRORS[case](nn, parametrize)


def test_a_parametrization_may_not_change_the_shape_unless_unsafe():
    for tensor_is_parametrized in (False, True):
        m = nn.Linear(3, 2)
        if tensor_is_parametrized:
            parametrize.register_parametrization(m, "weight", scaled(nn, 2.0))
        with pytest.raises(ValueError, match="may not change the shape of the tensor, unless"):
            parametrize.register_parametrization(m, "weight", summed(nn))
        assert parametrize.register_parametrization(m, "weight", summed(nn), unsafe=True).weight.shape == (3,)


# ---------------------------------------------------------------------- the old hook-based forms

def test_old_weight_norm_warns_keeps_torchs_names_and_removes():
    ours, theirs = twins(WEIGHT_NORMS["old_conv2d_dim_none"][0], np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert ours.weight_g.shape == ()                                   # dim=None: one g for all of v
    ours(tinyres.tensor(randn(1, 2, 3, 3)))
    theirs(torch.tensor(randn(1, 2, 3, 3)))
    nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert isinstance(ours.weight, nn.Parameter) and list(ours.state_dict()) == list(theirs.state_dict())
    close(ours.weight, theirs.weight)


def test_an_old_weight_norm_checkpoint_loads_into_the_new_one():
    """weight_g / weight_v (the hook-based weight_norm's keys) load into
    parametrizations.weight_norm by its load pre-hook, as torch's: same weight after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = torch.nn.utils.weight_norm(torch.nn.Linear(3, 2).double())
    state = {k: tinyres.tensor(v.detach().numpy()) for k, v in old.state_dict().items()}
    ours = parametrizations.weight_norm(nn.Linear(3, 2).double())
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 2).double())
    ours.load_state_dict(state)
    theirs.load_state_dict(old.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    close(ours.weight, theirs.weight)


def test_old_spectral_norm_removes_as_torchs():
    ours, theirs = twins(SPECTRAL_NORMS["old_linear"][0], np.float64)
    train_both(ours, theirs, (5, 4), steps=2)
    nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert isinstance(ours.weight, nn.Parameter) and list(ours.state_dict()) == ["bias", "weight"]
    close(ours.weight, theirs.weight)


# ---------------------------------------------------------------------- on a GPU (the CuPy double)

@pytest.mark.parametrize("make", [lambda m: parametrizations.spectral_norm(m, n_power_iterations=2),
                                  parametrizations.weight_norm, nn.utils.spectral_norm],
                         ids=["spectral_norm", "weight_norm", "old_spectral_norm"])
def test_made_on_the_device_trains_as_on_the_cpu(fake_cupy, make):
    tinyres.manual_seed(0)
    cpu = make(nn.Linear(4, 3).double())
    dev = make(nn.Linear(4, 3).double().to("cuda:1"))                  # u, v drawn and moved on the device
    dev.load_state_dict(cpu.state_dict())
    for module in (cpu, dev):
        opt = tinyres.optim.SGD(module.parameters(), lr=0.5)
        for step in range(2):
            module(tinyres.tensor(randn(5, 4, seed=step), device=module.bias.device)).sum().backward()
            opt.step()
    for (key, a), b in zip(cpu.state_dict().items(), dev.state_dict().values()):
        np.testing.assert_allclose(on(b, "cuda:1").numpy(), a.numpy(), **TOL, err_msg=key)
    on(dev.weight, "cuda:1")


def test_old_weight_norm_on_the_device(fake_cupy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        m = nn.utils.weight_norm(nn.Linear(4, 3).to("cuda:1"))
    m(tinyres.tensor(randn(2, 4, dtype=np.float32), device="cuda:1")).sum().backward()
    on(m.weight_g.grad, "cuda:1")
    on(nn.utils.remove_weight_norm(m).weight, "cuda:1")
