"""tinyres.linalg's inv_ex, solve_ex, cholesky_ex, tensorinv, tensorsolve and the LU family against torch (float64)."""
import numpy as np
import pytest

import tinyres
from helpers import compare_with_torch, gradcheck, needs_torch, torch


def general(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) + 3 * np.eye(shape[-1])


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CASES = [
    ("inv_ex", lambda m, a: m.linalg.inv_ex(a).inverse, [general(2, 3, 3)]),
    ("solve_ex", lambda m, a, b: m.linalg.solve_ex(a, b).result, [general(2, 3, 3), rand(2, 3, 2, seed=1)]),
    ("cholesky_ex", lambda m, a: m.linalg.cholesky_ex(a @ a.mT + m.eye(3, dtype=a.dtype)).L, [rand(2, 3, 3)]),
    ("tensorinv", lambda m, a: m.linalg.tensorinv(a, ind=1), [general(6, 6).reshape(6, 2, 3)]),
    ("tensorsolve", lambda m, a, b: m.linalg.tensorsolve(a, b), [general(6, 6).reshape(2, 3, 6), rand(2, 3, seed=1)]),
    ("lu_factor", lambda m, a: m.linalg.lu_factor(a).LU, [rand(2, 4, 4)]),
    ("lu-L", lambda m, a: m.linalg.lu(a).L, [rand(2, 4, 4)]),
    ("lu-U", lambda m, a: m.linalg.lu(a).U, [rand(2, 4, 4)]),
    ("lu-P", lambda m, a: m.linalg.lu(a).P @ a, [rand(2, 4, 4)]),
    ("lu-wide", lambda m, a: m.linalg.lu(a).L.sum() * m.linalg.lu(a).U, [rand(2, 3, 5)]),
    ("lu-tall", lambda m, a: m.linalg.lu(a).L * m.linalg.lu(a).U.sum(), [rand(2, 5, 3)]),
    ("lu_solve", lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b), [general(2, 3, 3), rand(2, 3, 2, seed=1)]),
    ("lu_solve-adjoint", lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, adjoint=True),
     [general(2, 3, 3), rand(2, 3, 2, seed=1)]),
    ("lu_solve-right", lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, left=False),
     [general(2, 3, 3), rand(2, 2, 3, seed=1)]),
]


@needs_torch
@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, inputs):
    compare_with_torch(lambda *x: fn(tinyres, *x), lambda *x: fn(torch, *x), inputs, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_lu_gradcheck(shape):
    a = tinyres.tensor(rand(*shape), requires_grad=True)
    assert gradcheck(lambda x: tinyres.linalg.lu(x).L.sum() * tinyres.linalg.lu(x).U, [a])


@needs_torch
def test_info_and_pivots_as_torchs():
    A = np.array([[[1., 2], [2, 4]], [[1., 0], [0, 1]], [[0., 0], [0, 1]]])
    for name in ("inv_ex", "lu_factor_ex"):
        ours, theirs = getattr(tinyres.linalg, name)(tinyres.tensor(A)), getattr(torch.linalg, name)(torch.tensor(A))
        assert ours.info.dtype == np.int32 and ours.info.numpy().tolist() == theirs.info.tolist()
    ours = tinyres.linalg.solve_ex(tinyres.tensor(A), tinyres.tensor(np.ones((3, 2, 1))))
    assert ours.info.numpy().tolist() == [2, 0, 1]
    S = np.diag([4., -1, 1])[None]
    assert tinyres.linalg.cholesky_ex(tinyres.tensor(S)).info.numpy().tolist() == [2]
    a = rand(2, 3, 4)
    assert tinyres.linalg.lu_factor(tinyres.tensor(a)).pivots.numpy().tolist() == \
        torch.linalg.lu_factor(torch.tensor(a)).pivots.tolist()


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m: m.linalg.inv_ex(m.ones(2, 3, dtype=m.float64)),
    lambda m: m.linalg.inv_ex(m.ones(2, 2, dtype=m.int64)),
    lambda m: m.linalg.inv_ex(m.tensor([[1., 2], [2, 4]]), check_errors=True),
    lambda m: m.linalg.cholesky_ex(-m.eye(2), check_errors=True),
    lambda m: m.linalg.lu_factor(m.eye(2), pivot=False),
    lambda m: m.linalg.lu_factor(m.ones(2, 2, dtype=m.int64)),
    lambda m: m.linalg.lu_factor(m.tensor([[1., 2], [2, 4]])),
    lambda m: m.linalg.tensorinv(m.ones(2, 3, 4)),
    lambda m: m.linalg.tensorinv(m.ones(2, 3, 6), ind=0),
])
def test_errors_as_torchs(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(Exception) as ours:
        call(tinyres)
    assert isinstance(ours.value, type(theirs.value).__mro__[1] if type(theirs.value).__name__ == "_LinAlgError"
                      else type(theirs.value))


def test_lu_and_lu_solve_second_order():
    from helpers import gradgradcheck
    a = tinyres.tensor(rand(3, 3), requires_grad=True)
    b = tinyres.tensor(rand(3, 2, seed=1), requires_grad=True)
    assert gradgradcheck(lambda x: tinyres.linalg.lu(x).U, [a])
    eye = 3 * tinyres.eye(3, dtype=a.dtype)
    assert gradgradcheck(lambda x, y: tinyres.linalg.lu_solve(*tinyres.linalg.lu_factor(x + eye), y), [a, b])


@pytest.mark.parametrize("fn", [
    lambda A, B: tinyres.linalg.lu(A)[1].sum() + tinyres.linalg.lu(A)[2].sum(),
    lambda A, B: tinyres.linalg.lu_solve(*tinyres.linalg.lu_factor(A), B).sum(),
    lambda A, B: tinyres.linalg.inv_ex(A).inverse.sum() + tinyres.linalg.solve_ex(A, B).result.sum(),
    lambda A, B: tinyres.linalg.tensorsolve(A, B.reshape(4)).sum(),
], ids=["lu", "lu_solve", "ex", "tensorsolve"])
def test_on_the_device(fake_cupy, fn):
    """The LU family runs on the CuPy double: the same numbers and gradients on cuda:1."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((4, 4)) + 4 * np.eye(4), rng.standard_normal((4, 1))]
    results = []
    for device in ("cpu", "cuda:1"):
        xs = [tinyres.tensor(a, device=device, requires_grad=True) for a in arrays]
        y = fn(*xs)
        y.backward()
        assert y.device == device and xs[0].grad.device == device
        results.append([y.numpy()] + [x.grad.numpy() for x in xs if x.grad is not None])
    for c, d in zip(*results):
        np.testing.assert_allclose(d, c, rtol=1e-10, atol=1e-12)
