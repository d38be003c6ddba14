"""tinyres.autograd.functional (jacobian, hessian, vjp, jvp, hvp, vhp) against torch's, float64."""
import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
from tinyres.autograd import functional as AF

pytestmark = needs_torch

RNG = np.random.default_rng(0)
A, B, V = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2)), RNG.standard_normal((2, 3))


def pair(fn):
    """fn(lib, *tensors) in both libraries."""
    return (lambda *t: fn(tinyres, *t)), (lambda *t: fn(torch, *t))


def both(*arrays):
    return tuple(tinyres.tensor(a) for a in arrays), tuple(torch.tensor(a) for a in arrays)


def close(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            close(a, b)
        return
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-11, atol=1e-13)


SCALAR = pair(lambda m, x: (m.exp(x * x) * x).sum() + (x[0] * x[1]).sum() ** 2)
VECTOR = pair(lambda m, x, y: m.exp(x @ y))


def test_jacobian_of_two_inputs():
    (a, b), (ta, tb) = both(A, B)
    close(AF.jacobian(VECTOR[0], (a, b)), torch.autograd.functional.jacobian(VECTOR[1], (ta, tb)))


def test_jacobian_of_one_input_and_two_outputs():
    ours, theirs = pair(lambda m, x: (x.sum(0), (x * x).sum()))
    (a,), (ta,) = both(A)
    close(AF.jacobian(ours, a), torch.autograd.functional.jacobian(theirs, ta))


def test_hessian():
    (a,), (ta,) = both(A)
    close(AF.hessian(SCALAR[0], a), torch.autograd.functional.hessian(SCALAR[1], ta))


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp"])
def test_vector_products(name):
    (a, b, v), (ta, tb, tv) = both(A, B, V)
    if name == "vjp":
        (a,), (ta,) = both(A)
        w = np.ones((2, 2))
        ours = AF.vjp(lambda x: VECTOR[0](x, b), a, tinyres.tensor(w))
        theirs = torch.autograd.functional.vjp(lambda x: VECTOR[1](x, tb), ta, torch.tensor(w))
    elif name == "jvp":
        ours = AF.jvp(lambda x: VECTOR[0](x, b), a, v)
        theirs = torch.autograd.functional.jvp(lambda x: VECTOR[1](x, tb), ta, tv)
    else:
        ours = getattr(AF, name)(SCALAR[0], a, v)
        theirs = getattr(torch.autograd.functional, name)(SCALAR[1], ta, tv)
    close(ours, tuple(theirs))


def test_inputs_are_left_alone_and_results_detached():
    a = tinyres.tensor(A, requires_grad=True)
    h = AF.hessian(SCALAR[0], a)
    assert a.grad is None and not h.requires_grad
    h2 = AF.hessian(SCALAR[0], a, create_graph=True)
    assert h2.requires_grad


def test_bad_input():
    with pytest.raises(TypeError, match="jacobian: expected inputs to be a Tensor or a tuple of Tensors"):
        AF.jacobian(lambda x: x, [1.0])
    with pytest.raises(RuntimeError, match="hvp: expected func to return a single-element Tensor"):
        AF.hvp(lambda x: x * 2, tinyres.tensor(A), tinyres.tensor(V))
    with pytest.raises(RuntimeError, match="strict=True"):
        AF.jacobian(lambda x, y: x * 2, (tinyres.tensor(A), tinyres.tensor(V)), strict=True)
