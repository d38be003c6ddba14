"""tinyres.linalg (core/linalg.py) against torch.linalg, in float64 on small batched inputs.

Each case is written once as ``fn(lib, *tensors)`` and runs with ``lib = tinyres`` and
``lib = torch``: the values, then every input gradient under a random upstream gradient
(``compare_with_torch``), on contiguous and strided inputs; a few again to second order.
Eigenvectors and singular vectors are defined up to sign (LAPACK's choice may differ
between the two), so their cases compare what does not depend on it: their squares, or
products such as U diag(S) Vh.  Then the errors, as torch's (type and message), torch's
top-level names and Tensor methods, and the GPU path under the CuPy double.
"""
import warnings

import numpy as np
import pytest

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, torch
from tinyres import linalg


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def general(*shape, seed=0):
    """Random square matrices, well conditioned: normal entries plus 3 I."""
    return rand(*shape, seed=seed) + 3 * np.eye(shape[-1])


def spd(*shape, seed=0):
    """Symmetric positive-definite: X X^T / n + I."""
    x = rand(*shape, seed=seed)
    return x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1])


def symmetric(*shape, seed=0):
    x = rand(*shape, seed=seed)
    return (x + np.swapaxes(x, -1, -2)) / 2


def nonzero(*shape, seed=0):
    """|x| >= 0.2: away from the kinks of the norms at 0."""
    x = rand(*shape, seed=seed)
    return np.sign(x) * (np.abs(x) + 0.2)


INF = float("inf")

# (name, fn(lib, *tensors), inputs[, compare the gradients too])
CASES = [
    *[(f"vector_norm-ord={o}", lambda m, x, o=o: m.linalg.vector_norm(x, o), [nonzero(2, 3, 4)])
      for o in (2, 1, INF, -INF, 0.5, 3, -1.5)],
    ("vector_norm-dims-keepdim", lambda m, x: m.linalg.vector_norm(x, 3, dim=(0, 2), keepdim=True), [nonzero(2, 3, 4)]),
    ("vector_norm-dim", lambda m, x: m.linalg.vector_norm(x, dim=-1), [nonzero(2, 3, 4)]),
    *[(f"matrix_norm-ord={o}", lambda m, a, o=o: m.linalg.matrix_norm(a, o), [nonzero(2, 3, 4)])
      for o in ("fro", "nuc", INF, -INF, 1, -1, 2, -2)],
    *[(f"matrix_norm-dim-keepdim-ord={o}", lambda m, a, o=o: m.linalg.matrix_norm(a, o, dim=(2, 0), keepdim=True),
       [nonzero(3, 2, 4)]) for o in ("nuc", INF, 1)],
    ("norm-flattened", lambda m, a: m.linalg.norm(a), [nonzero(2, 3, 4)]),
    ("norm-matrix", lambda m, a: m.linalg.norm(a, "fro") + m.linalg.norm(a, 2), [nonzero(3, 4)]),
    ("norm-vector-dim", lambda m, a: m.linalg.norm(a, 1, dim=1), [nonzero(2, 3, 4)]),
    ("inv", lambda m, a: m.linalg.inv(a), [general(2, 3, 3)]),
    ("det", lambda m, a: m.linalg.det(a), [general(2, 2, 3, 3)]),
    ("det-negative", lambda m, a: m.linalg.det(a), [np.array([[0.0, 2.0], [1.5, 0.3]])]),
    ("slogdet", lambda m, a: m.linalg.slogdet(a).logabsdet * m.linalg.slogdet(a).sign,
     [np.stack([general(3, 3), -general(3, 3, seed=1)])]),
    ("solve", lambda m, a, b: m.linalg.solve(a, b), [general(2, 3, 3), rand(2, 3, 2, seed=1)]),
    ("solve-vectors", lambda m, a, b: m.linalg.solve(a, b), [general(2, 3, 3), rand(2, 3, seed=1)]),
    ("solve-vector", lambda m, a, b: m.linalg.solve(a, b), [general(2, 3, 3), rand(3, seed=1)]),
    ("solve-broadcast", lambda m, a, b: m.linalg.solve(a, b), [general(3, 3), rand(2, 3, 2, seed=1)]),
    ("solve-left=False", lambda m, a, b: m.linalg.solve(a, b, left=False), [general(2, 3, 3), rand(2, 4, 3, seed=1)]),
    *[(f"solve_triangular-upper={u}-left={le}-unit={t}",
       lambda m, a, b, u=u, le=le, t=t: m.linalg.solve_triangular(a, b, upper=u, left=le, unitriangular=t),
       [general(2, 3, 3), rand(2, 3, 3, seed=1)])
      for u in (True, False) for le in (True, False) for t in (False, True)],
    ("cholesky", lambda m, a: m.linalg.cholesky(a), [spd(2, 3, 3)]),
    ("cholesky-upper", lambda m, a: m.linalg.cholesky(a, upper=True), [spd(2, 3, 3)]),
    ("qr-tall-Q", lambda m, a: m.linalg.qr(a).Q, [rand(2, 4, 3)]),
    ("qr-tall-R", lambda m, a: m.linalg.qr(a).R, [rand(2, 4, 3)]),
    ("qr-wide", lambda m, a: m.linalg.qr(a).Q * 2 + m.linalg.qr(a).R.sum(-1, keepdim=True), [rand(3, 5)]),
    ("qr-complete-wide", lambda m, a: m.linalg.qr(a, "complete").R, [rand(2, 3, 4)]),
    ("qr-square", lambda m, a: m.linalg.qr(a).Q @ m.linalg.qr(a).R.exp(), [general(3, 3)]),
    ("eigh-eigenvalues", lambda m, a: m.linalg.eigh(a).eigenvalues, [symmetric(2, 4, 4)]),
    ("eigh-eigenvectors", lambda m, a: m.linalg.eigh(a).eigenvectors ** 2, [symmetric(2, 4, 4)]),
    ("eigh-both", lambda m, a: m.linalg.eigh(a).eigenvectors ** 2 * m.linalg.eigh(a).eigenvalues, [symmetric(4, 4)]),
    ("eigh-UPLO=U", lambda m, a: m.linalg.eigh(a, UPLO="U").eigenvectors ** 2, [rand(2, 3, 3)]),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a, "U"), [rand(2, 3, 3)]),
    *[(f"svd-{shape}-{part}", lambda m, a, part=part: getattr(m.linalg.svd(a, full_matrices=False), part) ** 2,
       [rand(*shape)]) for shape in ((2, 4, 3), (3, 5), (3, 3)) for part in ("U", "S", "Vh")],
    ("svd-full_matrices-tall", lambda m, a: m.linalg.svd(a).U[..., :3] ** 2, [rand(2, 5, 3)]),
    ("svd-full_matrices-wide", lambda m, a: m.linalg.svd(a).Vh[..., :2, :] ** 2, [rand(2, 4)]),
    ("svd-reconstruct", lambda m, a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*m.linalg.svd(a, False)),
     [rand(2, 4, 3)]),
    ("svdvals", lambda m, a: m.linalg.svdvals(a), [rand(2, 3, 5)]),
    ("pinv", lambda m, a: m.linalg.pinv(a), [rand(2, 4, 3)]),
    ("pinv-hermitian", lambda m, a: m.linalg.pinv(a, hermitian=True), [symmetric(2, 3, 3)]),
    ("lstsq", lambda m, a, b: m.linalg.lstsq(a, b).solution, [rand(2, 5, 3), rand(2, 5, 2, seed=1)]),
    ("lstsq-vector", lambda m, a, b: m.linalg.lstsq(a, b).solution, [rand(5, 3), rand(5, seed=1)]),
    ("lstsq-gelsd-residuals", lambda m, a, b: m.linalg.lstsq(a, b, driver="gelsd").residuals,
     [rand(5, 3), rand(5, 2, seed=1)]),
    ("lstsq-gelss-residuals-vectors", lambda m, a, b: m.linalg.lstsq(a, b, driver="gelss").residuals,
     [rand(2, 5, 3), rand(2, 5, seed=1)]),
    *[(f"matrix_power-{n}", lambda m, a, n=n: m.linalg.matrix_power(a, n), [general(2, 3, 3) / 3])
      for n in (0, 1, 3, 6, -2)],
    ("matrix_exp-small", lambda m, a: m.linalg.matrix_exp(a), [rand(2, 3, 3) / 4]),
    ("matrix_exp-large", lambda m, a: m.linalg.matrix_exp(a), [rand(2, 3, 3) * 2]),
    ("cross", lambda m, a, b: m.linalg.cross(a, b), [rand(4, 3), rand(1, 3, seed=1)]),
    ("cross-dim0", lambda m, a, b: m.linalg.cross(a, b, dim=0), [rand(3, 4), rand(3, 4, seed=1)]),
    ("diagonal", lambda m, a: m.linalg.diagonal(a, offset=1), [rand(2, 3, 4)]),
    ("vecdot", lambda m, a, b: m.linalg.vecdot(a, b, dim=1), [rand(2, 3), rand(4, 2, 3, seed=1)]),
    ("multi_dot", lambda m, a, b, c: m.linalg.multi_dot([a, b, c]),
     [rand(2, 6), rand(6, 3, seed=1), rand(3, 5, seed=2)]),
    ("multi_dot-vectors", lambda m, a, b, c, d: m.linalg.multi_dot([a, b, c, d]),
     [rand(3), rand(3, 4, seed=1), rand(4, 2, seed=2), rand(2, seed=3)]),
    ("matmul", lambda m, a, b: m.linalg.matmul(a, b), [rand(2, 3), rand(3, 4, seed=1)]),
    ("vander", lambda m, x: m.linalg.vander(x, N=4), [rand(2, 3)]),
    ("cond", lambda m, a: m.linalg.cond(a), [general(2, 3, 3)]),
    ("cond-fro", lambda m, a: m.linalg.cond(a, "fro"), [general(2, 3, 3)], False),   # torch's backward fails
    # torch's top-level names and Tensor methods
    ("torch.det-method", lambda m, a: m.det(a) + a.det(), [general(2, 3, 3)]),
    ("torch.inverse-method", lambda m, a: m.inverse(a) * a.inverse(), [general(3, 3)]),
    ("torch.logdet", lambda m, a: m.logdet(a) + a.logdet(), [spd(2, 3, 3)]),
    ("torch.slogdet", lambda m, a: m.slogdet(a).logabsdet + a.slogdet()[1], [general(3, 3)]),
    ("torch.matrix_power", lambda m, a: m.matrix_power(a, 2) + a.matrix_power(3), [general(3, 3) / 3]),
    ("torch.matrix_exp", lambda m, a: m.matrix_exp(a) + a.matrix_exp(), [rand(3, 3)]),
    ("torch.pinverse", lambda m, a: m.pinverse(a) + a.pinverse(), [rand(4, 3)]),
    ("torch.cholesky_solve", lambda m, b, l: m.cholesky_solve(b, m.linalg.cholesky(l)), [rand(2, 3, 2), spd(2, 3, 3)]),
    ("torch.cholesky_solve-upper", lambda m, b, l: b.cholesky_solve(m.linalg.cholesky(l, upper=True), upper=True),
     [rand(3, 2), spd(3, 3)]),
    ("torch.cholesky_solve-raw-L", lambda m, b, l: m.cholesky_solve(b, l), [rand(3, 2), np.tril(general(3, 3))]),
    ("torch.cholesky_inverse", lambda m, l: m.cholesky_inverse(l) + l.mT.cholesky_inverse(upper=True),
     [np.tril(general(3, 3))]),
    ("torch.cholesky", lambda m, a: m.cholesky(a) + a.cholesky(upper=True), [spd(3, 3)]),
    ("torch.qr", lambda m, a: m.qr(a).Q * 2 + a.qr(some=False).Q, [rand(3, 3)]),
    ("torch.svd", lambda m, a: (m.svd(a).V ** 2 * m.svd(a).S).sum(0) + (a.svd().U ** 2).sum(0), [rand(4, 3)]),
    ("torch.svd-compute_uv=False", lambda m, a: m.svd(a, compute_uv=False).S + m.svd(a, compute_uv=False).V.sum(),
     [rand(3, 4)]),
    ("torch.cross", lambda m, a, b: m.cross(a, b) + a.cross(b, dim=1), [rand(4, 3), rand(4, 3, seed=1)]),
    ("torch.inner", lambda m, a, b: m.inner(a, b) + a.inner(b), [rand(2, 3), rand(4, 3, seed=1)]),
    ("torch.mv", lambda m, a, v: m.mv(a, v) + a.mv(v), [rand(2, 3), rand(3, seed=1)]),
    ("torch.kron", lambda m, a, b: m.kron(a, b) + a.kron(b), [rand(2, 3), rand(3, 2, seed=1)]),
    ("torch.kron-ranks", lambda m, a, b: m.kron(a, b), [rand(2, 2, 3), rand(3, 2, seed=1)]),
    ("torch.tensordot", lambda m, a, b: m.tensordot(a, b, 2) + m.tensordot(a, b, ([1, 2], [0, 1])),
     [rand(2, 3, 4), rand(3, 4, 5, seed=1)]),
    ("torch.ger", lambda m, a, b: m.ger(a, b) * a.ger(b), [rand(3), rand(4, seed=1)]),
]
CASES = [(*c, True) if len(c) == 3 else c for c in CASES]
IDS = [c[0] for c in CASES]


def run(m, fn):
    def call(*xs):
        with warnings.catch_warnings():        # torch.cholesky, torch.qr, torch.cross without dim
            warnings.simplefilter("ignore")
            return fn(m, *xs)
    return call


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("name, fn, inputs, grad", CASES, ids=IDS)
def test_against_torch(name, fn, inputs, grad, contiguous):
    compare_with_torch(run(tinyres, fn), run(torch, fn), inputs, rtol=1e-9, atol=1e-11, grad=grad,
                       contiguous=contiguous)


SECOND_ORDER = ["inv", "det", "slogdet", "solve", "solve-left=False", "vector_norm-ord=2", "vector_norm-ord=3",
                "matrix_norm-ord=fro", "cholesky", "cholesky-upper", "qr-tall-R", "eigh-eigenvalues", "svdvals",
                "eigvalsh", "matrix_exp-large", "torch.logdet"]


@needs_torch
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_against_torch(name):
    _, fn, inputs, _ = CASES[IDS.index(name)]
    compare_second_order_with_torch(run(tinyres, fn), run(torch, fn), inputs, rtol=1e-8, atol=1e-10)


FLOAT32 = ["inv", "det", "slogdet", "solve", "cholesky", "qr-tall-R", "eigh-eigenvectors", "svd-(2, 4, 3)-S", "pinv",
           "matrix_norm-ord=nuc", "matrix_exp-small", "vector_norm-ord=3"]


@needs_torch
@pytest.mark.parametrize("name", FLOAT32)
def test_float32_stays_float32_and_agrees_with_torch(name):
    _, fn, inputs, _ = CASES[IDS.index(name)]
    compare_with_torch(run(tinyres, fn), run(torch, fn), [a.astype(np.float32) for a in inputs], rtol=2e-4, atol=2e-5)


def test_integer_outputs_against_torch():
    """matrix_rank, lstsq's rank and singular values (no gradient): torch's values and dtypes."""
    low_rank = rand(2, 4, 2) @ rand(2, 2, 3, seed=1)            # rank 2 of 3
    for kwargs in ({}, {"hermitian": True}, {"atol": 1.0}, {"rtol": 0.5}, {"tol": 1e-3}):
        a = spd(3, 3) if kwargs.get("hermitian") else low_rank
        ours = linalg.matrix_rank(tinyres.tensor(a), **kwargs)
        theirs = torch.linalg.matrix_rank(torch.tensor(a), **kwargs)
        assert ours.dtype == np.int64 and ours.numpy().tolist() == theirs.tolist(), kwargs
    a, b = rand(2, 5, 3), rand(2, 5, 2, seed=1)
    for driver in (None, "gels", "gelsy", "gelsd", "gelss"):
        ours = linalg.lstsq(tinyres.tensor(a), tinyres.tensor(b), driver=driver)
        theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        for field in ("residuals", "rank", "singular_values"):
            o, t = getattr(ours, field), getattr(theirs, field)
            assert o.shape == tuple(t.shape) and o.dtype == np.dtype(str(t.dtype)[6:]), (driver, field)
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{driver} {field}")


def test_the_results_are_torchs_named_tuples():
    a = tinyres.tensor(general(3, 3))
    assert type(linalg.slogdet(a)).__name__ == "linalg_slogdet" and linalg.slogdet(a)._fields == ("sign", "logabsdet")
    assert linalg.qr(a)._fields == ("Q", "R") and linalg.eigh(a)._fields == ("eigenvalues", "eigenvectors")
    assert linalg.svd(a)._fields == ("U", "S", "Vh") and tinyres.svd(a)._fields == ("U", "S", "V")
    assert type(tinyres.slogdet(a)).__name__ == "slogdet"
    assert linalg.lstsq(a, a)._fields == ("solution", "residuals", "rank", "singular_values")
    q, r = linalg.qr(a, mode="r")
    assert q.shape == (0,) and np.allclose(r.numpy(), linalg.qr(a).R.numpy())


@needs_torch
def test_the_module_is_torch_linalg():
    """tinyres.linalg has torch.linalg's names, and only those (its functions live in the core)."""
    import tinyres.linalg as imported
    assert imported is tinyres.linalg and tinyres.linalg.__name__ == "tinyres.linalg"
    public = {n for n in dir(linalg) if not n.startswith("_")}
    assert public == set(linalg.__all__) and set(linalg.__all__) <= set(dir(torch.linalg))
    assert issubclass(linalg.LinAlgError, RuntimeError) and linalg.LinAlgError.__name__ == "LinAlgError"
    assert linalg.matmul is tinyres.matmul


# ---------------------------------------------------------------------- errors, as torch's

def t(m, a):
    return m.tensor(np.asarray(a, dtype=np.float64))


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
ERRORS = [   # (name, call(lib), the same message as torch's too)
    ("inv-not-square", lambda m: m.linalg.inv(t(m, rand(2, 3))), True),
    ("inv-1d", lambda m: m.linalg.inv(t(m, rand(3))), True),
    ("inv-int", lambda m: m.linalg.inv(m.tensor(np.eye(2, dtype=np.int64))), True),
    ("inv-half", lambda m: m.linalg.inv(m.ones(2, 2, dtype=m.float16)), True),
    ("inv-singular", lambda m: m.linalg.inv(t(m, SINGULAR)), False),
    ("inv-singular-batch", lambda m: m.linalg.inv(t(m, np.stack([np.eye(2), SINGULAR]))), False),
    ("det-not-square", lambda m: m.linalg.det(t(m, rand(2, 3))), True),
    ("det-int", lambda m: m.linalg.det(m.tensor(np.eye(2, dtype=np.int64))), True),
    ("slogdet-not-square", lambda m: m.linalg.slogdet(t(m, rand(3, 2))), True),
    ("solve-singular", lambda m: m.linalg.solve(t(m, SINGULAR), t(m, [1.0, 1.0])), False),
    ("solve-shapes", lambda m: m.linalg.solve(t(m, np.eye(2)), t(m, rand(3))), True),
    ("solve-shapes-batched", lambda m: m.linalg.solve(t(m, rand(5, 3, 2, 2)), t(m, rand(3, 2))), True),
    ("solve-left=False-vector", lambda m: m.linalg.solve(t(m, np.eye(3)), t(m, rand(3)), left=False), True),
    ("solve-dtypes", lambda m: m.linalg.solve(m.eye(3, dtype=m.float32), t(m, rand(3))), True),
    ("cholesky-not-pd", lambda m: m.linalg.cholesky(t(m, -np.eye(2))), False),
    ("cholesky-not-pd-batch", lambda m: m.linalg.cholesky(t(m, np.stack([np.eye(2), -np.eye(2)]))), False),
    ("cholesky-not-square", lambda m: m.linalg.cholesky(t(m, rand(2, 3))), True),
    ("qr-1d", lambda m: m.linalg.qr(t(m, rand(3))), True),
    ("qr-mode", lambda m: m.linalg.qr(t(m, rand(3, 3)), mode="x"), True),
    ("qr-complete-tall-backward", lambda m: m.linalg.qr(t(m, rand(4, 3)).requires_grad_(), "complete").Q.sum()
     .backward(), True),
    ("qr-r-backward", lambda m: m.linalg.qr(t(m, rand(3, 3)).requires_grad_(), "r").R.sum().backward(), True),
    ("eigh-not-square", lambda m: m.linalg.eigh(t(m, rand(2, 3))), True),
    ("eigh-UPLO", lambda m: m.linalg.eigh(t(m, np.eye(2)), UPLO="X"), True),
    ("svd-1d", lambda m: m.linalg.svd(t(m, rand(3))), True),
    ("svd-driver", lambda m: m.linalg.svd(t(m, rand(3, 3)), driver="gesvd"), True),
    ("vector_norm-int", lambda m: m.linalg.vector_norm(m.tensor(np.ones(3, dtype=np.int64))), True),
    ("vector_norm-str", lambda m: m.linalg.vector_norm(t(m, rand(3)), ord="fro"), False),
    ("matrix_norm-1d", lambda m: m.linalg.matrix_norm(t(m, rand(3))), True),
    ("matrix_norm-ord", lambda m: m.linalg.matrix_norm(t(m, rand(3, 3)), ord=3), True),
    ("matrix_norm-dims", lambda m: m.linalg.matrix_norm(t(m, rand(3, 3)), dim=(0, 0)), True),
    ("norm-dim", lambda m: m.linalg.norm(t(m, rand(3, 3)), ord="fro", dim=0), True),
    ("norm-3d", lambda m: m.linalg.norm(t(m, rand(3, 3, 3)), ord=2), True),
    ("norm-dims", lambda m: m.linalg.norm(t(m, rand(3, 3, 3)), dim=(0, 1, 2)), True),
    ("matrix_power-float", lambda m: m.linalg.matrix_power(t(m, rand(3, 3)), 1.5), False),
    ("matrix_power-not-square", lambda m: m.linalg.matrix_power(t(m, rand(2, 3)), 2), True),
    ("matrix_power-singular", lambda m: m.linalg.matrix_power(t(m, SINGULAR), -1), False),
    ("matrix_exp-not-square", lambda m: m.linalg.matrix_exp(t(m, rand(2, 3))), True),
    ("cross-length", lambda m: m.linalg.cross(t(m, rand(2)), t(m, rand(2))), True),
    ("cross-ndim", lambda m: m.linalg.cross(t(m, rand(4, 3)), t(m, rand(2, 1, 3))), True),
    ("multi_dot-one", lambda m: m.linalg.multi_dot([t(m, rand(3))]), True),
    ("multi_dot-first", lambda m: m.linalg.multi_dot([t(m, rand(2, 2, 2)), t(m, rand(2, 2))]), True),
    ("multi_dot-middle", lambda m: m.linalg.multi_dot([t(m, rand(2, 2)), t(m, rand(2, 2, 2)), t(m, rand(2))]), True),
    ("multi_dot-shapes", lambda m: m.linalg.multi_dot([t(m, rand(2, 2)), t(m, rand(3, 2))]), True),
    ("lstsq-shapes", lambda m: m.linalg.lstsq(t(m, rand(3, 2)), t(m, rand(2))), True),
    ("lstsq-driver", lambda m: m.linalg.lstsq(t(m, rand(3, 2)), t(m, rand(3, 1)), driver="x"), True),
    ("pinv-1d", lambda m: m.linalg.pinv(t(m, rand(3))), False),
    ("solve_triangular-1d-B", lambda m: m.linalg.solve_triangular(t(m, np.eye(2)), t(m, rand(2)), upper=True), True),
]


def raised(call):
    with pytest.raises(Exception) as info:      # noqa: PT011 -- which one is what is compared
        run(None, lambda _: call())()
    return info.value


@needs_torch
@pytest.mark.parametrize("name, call, same_message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torchs(name, call, same_message):
    theirs, ours = raised(lambda: call(torch)), raised(lambda: call(tinyres))
    if isinstance(theirs, torch.linalg.LinAlgError):
        assert isinstance(ours, linalg.LinAlgError), repr(ours)
    else:
        assert type(ours) is type(theirs), (repr(ours), repr(theirs))
    if same_message:
        assert str(ours) == str(theirs)


def test_a_singular_matrix_names_the_op_the_batch_element_and_the_reason():
    with pytest.raises(linalg.LinAlgError, match=r"^linalg.inv: \(Batch element 2\): The inversion could not be "
                                                 r"completed because the input matrix is singular"):
        linalg.inv(tinyres.tensor(np.stack([np.eye(2), np.eye(2), SINGULAR])))
    with pytest.raises(RuntimeError, match=r"^linalg.cholesky: \(Batch element 2\): .* not positive-definite"):
        linalg.cholesky(tinyres.tensor(np.stack([np.eye(2), np.eye(2), -np.eye(2)])))
    with pytest.raises(linalg.LinAlgError, match="^linalg.solve: The solver failed because the input matrix is"):
        linalg.solve(tinyres.tensor(SINGULAR), tinyres.tensor(np.ones((2, 3))))


@needs_torch
def test_eigvalsh_and_svdvals_have_a_finite_gradient_at_repeated_values_as_torchs():
    """At A = I (every eigenvalue the same) and at a matrix with two zero singular values, the
    gradients of eigvalsh, svdvals and the nuclear norm need no eigenvectors' term: finite, torch's."""
    cases = [(lambda m, a: m.linalg.eigvalsh(a), np.eye(3)), (lambda m, a: m.linalg.svdvals(a), np.diag([2.0, 0, 0])),
             (lambda m, a: m.linalg.matrix_norm(a, "nuc"), np.diag([2.0, 1.0, 1.0]))]
    for fn, a in cases:
        ours = compare_with_torch(run(tinyres, fn), run(torch, fn), [a])
        assert ours.requires_grad


# ---------------------------------------------------------------------- the GPU path (the CuPy double)

ON_THE_DEVICE = ["inv", "det", "slogdet", "solve-broadcast", "cholesky-upper", "qr-tall-Q", "qr-wide", "eigh-both",
                 "svd-(2, 4, 3)-U", "svd-(3, 5)-Vh", "pinv", "lstsq", "matrix_norm-ord=nuc", "matrix_power-0",
                 "matrix_exp-large", "cross", "multi_dot-vectors", "solve_triangular-upper=False-left=False-unit=True",
                 "torch.cholesky_solve", "torch.kron"]


def forward_backward(fn, arrays, device):
    xs = [tinyres.tensor(a, device=device, requires_grad=True) for a in arrays]
    y = run(tinyres, fn)(*xs)
    y.backward(tinyres.tensor(rand(*y.shape, seed=7), device=device))
    return y, xs


@pytest.mark.parametrize("name", ON_THE_DEVICE)
def test_on_the_device(fake_cupy, name):
    """The same numbers on cuda:1 as on the CPU, the output and every gradient on the device."""
    _, fn, inputs, _ = CASES[IDS.index(name)]
    y_cpu, cpu = forward_backward(fn, inputs, "cpu")
    y_dev, dev = forward_backward(fn, inputs, "cuda:1")
    assert y_dev.device == "cuda:1" and all(x.grad.device == "cuda:1" for x in dev)
    np.testing.assert_allclose(y_dev.numpy(), y_cpu.numpy(), rtol=1e-10, atol=1e-12)
    for c, d in zip(cpu, dev):
        np.testing.assert_allclose(d.grad.numpy(), c.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cupy_reports_no_singular_matrix_so_the_gpu_path_checks_the_result(strict_double):
    """CuPy's inv, solve and cholesky return values that mean nothing for a singular (not
    positive-definite) input: the check on the result raises torch's LinAlgError, with one read
    to the host; det and the factorizations that cannot fail read nothing back."""
    singular = tinyres.tensor(np.stack([np.eye(2), SINGULAR]), device="cuda:1")
    with pytest.raises(linalg.LinAlgError, match=r"linalg.inv: \(Batch element 1\)"):
        linalg.inv(singular)
    with pytest.raises(linalg.LinAlgError, match="linalg.solve"):
        linalg.solve(singular, tinyres.ones(2, 2, device="cuda:1", dtype=tinyres.float64))
    with pytest.raises(linalg.LinAlgError, match="linalg.cholesky: .*not positive-definite"):
        linalg.cholesky(-tinyres.eye(2, device="cuda:1", dtype=tinyres.float64))
    a = tinyres.tensor(spd(2, 3, 3), device="cuda:1")
    del strict_double.transfers[:]
    linalg.det(a), linalg.eigh(a), linalg.svd(a), linalg.qr(a)
    assert strict_double.transfers == []
    linalg.inv(a)
    assert len(strict_double.transfers) == 1 and "core/linalg.py" in strict_double.transfers[0]
