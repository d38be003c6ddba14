"""tinyres.linalg.householder_product (torch.orgqr, x.orgqr) and
nn.utils.parametrizations.orthogonal, against torch in float64.

householder_product: values, gradients under a random upstream gradient and second order,
batched, k < n and k = 0, and torch's errors.  orthogonal: each map, with and without the
trivialization, on tall, square and wide Linear weights and on Conv2d weights (batches of
kh x kw matrices): orthogonality, the same initial weight as torch's from the same weight,
torch's state_dict keys, a state_dict of torch's (original moved off -I) loaded into tinyres
and back gives the same weight, forward and gradient of ``original``, assignment, errors."""
import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, randn, torch

import tinyres
from tinyres import nn
from tinyres.nn.utils import parametrizations

if torch is None:
    pytest.skip("PyTorch is not installed (pip install -e '.[test]')", allow_module_level=True)

TOL = dict(rtol=1e-10, atol=1e-12)

# ---------------------------------------------------------------------- householder_product

HOUSEHOLDER = {             # (A's shape, k)
    "tall": ((5, 3), 3),
    "tall, k < n": ((5, 3), 2),
    "square": ((4, 4), 4),
    "batched": ((2, 5, 3), 3),
    "k = 0": ((2, 3, 2), 0),
}


def householder_inputs(shape, k, seed=0):
    A = randn(*shape, seed=seed)
    tau = np.random.default_rng(seed + 1).uniform(0.2, 1.8, shape[:-2] + (k,))
    return A, tau


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("case", HOUSEHOLDER)
def test_householder_product_matches_torch(case, contiguous):
    shape, k = HOUSEHOLDER[case]
    compare_with_torch(tinyres.linalg.householder_product, torch.linalg.householder_product,
                       householder_inputs(shape, k), contiguous=contiguous, grad=k > 0)   # k = 0: torch's are None


@pytest.mark.parametrize("case", ["tall, k < n", "square", "batched"])
def test_householder_product_second_order_matches_torch(case):
    shape, k = HOUSEHOLDER[case]
    compare_second_order_with_torch(tinyres.linalg.householder_product, torch.linalg.householder_product,
                                    householder_inputs(shape, k))


def test_householder_product_of_geqrf_is_qrs_q_and_orgqr_is_it():
    A = randn(6, 4, seed=3)
    X, tau = torch.geqrf(torch.tensor(A))
    Q = tinyres.linalg.householder_product(tinyres.tensor(X.numpy()), tinyres.tensor(tau.numpy()))
    np.testing.assert_allclose(Q.numpy(), torch.linalg.qr(torch.tensor(A)).Q.numpy(), **TOL)
    np.testing.assert_allclose(tinyres.tensor(X.numpy()).orgqr(tinyres.tensor(tau.numpy())).numpy(), Q.numpy())
    if hasattr(tinyres, "orgqr"):
        np.testing.assert_allclose(tinyres.orgqr(tinyres.tensor(X.numpy()), tinyres.tensor(tau.numpy())).numpy(),
                                   Q.numpy())


HOUSEHOLDER_ERRORS = {      # (A, tau) as (shape, dtype)
    "1-D input": (((3,), "float64"), ((3,), "float64")),
    "wide": (((3, 5), "float64"), ((3,), "float64")),
    "k > n": (((5, 3), "float64"), ((4,), "float64")),
    "tau's ndim": (((5, 3), "float64"), ((1, 3), "float64")),
    "tau's ndim, batched": (((2, 5, 3), "float64"), ((3,), "float64")),
    "tau's batch": (((2, 5, 3), "float64"), ((3, 3), "float64")),
    "dtypes": (((5, 3), "float64"), ((3,), "float32")),
    "integers": (((5, 3), "int32"), ((3,), "int32")),
    "half": (((5, 3), "float16"), ((3,), "float16")),
}


@pytest.mark.parametrize("case", HOUSEHOLDER_ERRORS)
def test_householder_product_errors_match_torch(case):
    (a_shape, a_dtype), (t_shape, t_dtype) = HOUSEHOLDER_ERRORS[case]
    A, tau = randn(*a_shape, seed=0).astype(a_dtype), randn(*t_shape, seed=1).astype(t_dtype)
    with pytest.raises(Exception) as theirs:
        torch.linalg.householder_product(torch.tensor(A), torch.tensor(tau))
    with pytest.raises(type(theirs.value)) as ours:
        tinyres.linalg.householder_product(tinyres.tensor(A), tinyres.tensor(tau))
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------------- orthogonal

WEIGHTS = {                 # build(nn), input shape
    "Linear tall": (lambda n: n.Linear(3, 5), (4, 3)),
    "Linear square": (lambda n: n.Linear(4, 4), (4, 4)),
    "Linear wide": (lambda n: n.Linear(5, 3), (4, 5)),
    "Conv2d tall": (lambda n: n.Conv2d(2, 3, (3, 2)), (1, 2, 5, 5)),
    "Conv2d square": (lambda n: n.Conv2d(2, 3, 3), (1, 2, 5, 5)),
    "Conv2d wide": (lambda n: n.Conv2d(2, 3, (2, 3)), (1, 2, 5, 5)),
}
MAPS = [(None, True), ("matrix_exp", True), ("cayley", True), ("householder", True),
        ("matrix_exp", False), ("cayley", False), ("householder", False)]
MAP_IDS = [f"{m}-{'trivialization' if t else 'plain'}" for m, t in MAPS]


def orthogonal_twins(layer, orthogonal_map, use_trivialization):
    """The layer in torch and tinyres from the same weights, then made orthogonal in each."""
    build, _ = WEIGHTS[layer]
    torch.manual_seed(0)
    theirs = build(torch.nn).double()
    ours = build(nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    kwargs = dict(orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
    return (parametrizations.orthogonal(ours, **kwargs),
            torch.nn.utils.parametrizations.orthogonal(theirs, **kwargs))


def assert_orthogonal(W):
    W = W.numpy()
    m, n = W.shape[-2:]
    gram = W @ np.swapaxes(W, -1, -2) if m < n else np.swapaxes(W, -1, -2) @ W
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(min(m, n)), gram.shape), atol=1e-12)


def moved(theirs, seed=5):
    """torch's module with its ``original`` moved off where registration left it (its diagonal kept:
    householder reads only the diagonal's signs)."""
    original = theirs.parametrizations.weight.original
    noise = torch.tensor(0.3 * randn(*original.shape, seed=seed))
    with torch.no_grad():
        original.add_(noise * (1 - torch.eye(*original.shape[-2:], dtype=torch.float64)))
    return theirs


@pytest.mark.parametrize("orthogonal_map, use_trivialization", MAPS, ids=MAP_IDS)
@pytest.mark.parametrize("layer", WEIGHTS)
def test_orthogonal_starts_as_torchs_and_is_orthogonal(layer, orthogonal_map, use_trivialization):
    ours, theirs = orthogonal_twins(layer, orthogonal_map, use_trivialization)
    assert type(ours).__name__ == type(theirs).__name__
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.parametrizations.weight[0].orthogonal_map == theirs.parametrizations.weight[0].orthogonal_map.name
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), atol=1e-12)
    assert_orthogonal(ours.weight)


@pytest.mark.parametrize("orthogonal_map, use_trivialization", MAPS, ids=MAP_IDS)
@pytest.mark.parametrize("layer", WEIGHTS)
def test_orthogonal_with_torchs_state_matches_torch(layer, orthogonal_map, use_trivialization):
    """torch's state_dict (``original`` moved) into tinyres: the weight, the forward and the
    gradient of ``original`` are torch's; tinyres's state_dict gives torch the same weight."""
    ours, theirs = orthogonal_twins(layer, orthogonal_map, use_trivialization)
    theirs = moved(theirs)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert_orthogonal(ours.weight)
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), **TOL)
    x = randn(*WEIGHTS[layer][1], seed=1)
    y, ty = ours(tinyres.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **TOL)
    g = randn(*y.shape, seed=2)
    y.backward(tinyres.tensor(g))
    ty.backward(torch.tensor(g))
    ours_original, theirs_original = ours.parametrizations.weight.original, theirs.parametrizations.weight.original
    np.testing.assert_allclose(ours_original.grad.numpy(), theirs_original.grad.numpy(), **TOL)

    back = orthogonal_twins(layer, orthogonal_map, use_trivialization)[1]
    back.load_state_dict({k: torch.tensor(v.numpy()) for k, v in moved_ours(ours).state_dict().items()})
    np.testing.assert_allclose(back.weight.detach().numpy(), ours.weight.numpy(), **TOL)


def moved_ours(ours, seed=7):
    original = ours.parametrizations.weight.original
    with tinyres.no_grad():
        noise = tinyres.tensor(0.3 * randn(*original.shape, seed=seed))
        original.add_(noise * (1 - tinyres.eye(*original.shape[-2:], dtype=tinyres.float64)))
    return ours


@pytest.mark.parametrize("orthogonal_map, use_trivialization", [m for m in MAPS if m[1] or m[0] == "householder"],
                         ids=[i for i, m in zip(MAP_IDS, MAPS) if m[1] or m[0] == "householder"])
@pytest.mark.parametrize("layer", ["Linear tall", "Linear square", "Linear wide"])
def test_orthogonal_assignment_matches_torch(layer, orthogonal_map, use_trivialization):
    """``module.weight = W``: an orthogonal W is kept (a non-orthogonal square one becomes its
    QR's Q, as torch's); the originals (and base, when square) are torch's."""
    ours, theirs = orthogonal_twins(layer, orthogonal_map, use_trivialization)
    shape = tuple(theirs.weight.shape)
    m, n = shape
    Q = torch.linalg.qr(torch.tensor(randn(max(m, n), min(m, n), seed=4))).Q
    Q = Q if m >= n else Q.mT
    for W in [Q, torch.tensor(randn(*shape, seed=6))]:
        with torch.no_grad():
            theirs.weight = W.clone()
        ours.weight = tinyres.tensor(W.numpy())
        np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), atol=1e-12)
        assert_orthogonal(ours.weight)
        if W is Q:
            np.testing.assert_allclose(ours.weight.numpy(), Q.numpy(), atol=1e-12)
        if not use_trivialization:
            np.testing.assert_allclose(ours.parametrizations.weight.original.numpy(),
                                       theirs.parametrizations.weight.original.detach().numpy(), atol=1e-12)
        elif m == n:
            np.testing.assert_allclose(ours.parametrizations.weight[0].base.numpy(),
                                       theirs.parametrizations.weight[0].base.numpy(), atol=1e-12)


def test_orthogonal_errors_match_torch():
    cases = [
        (lambda n: n.Linear(3, 4), dict(name="bias")),                          # a vector
        (lambda n: n.Linear(3, 4), dict(name="nothing")),
        (lambda n: n.Linear(3, 4), dict(orthogonal_map="exp")),
    ]
    for build, kwargs in cases:
        with pytest.raises(ValueError) as theirs:
            torch.nn.utils.parametrizations.orthogonal(build(torch.nn), **kwargs)
        with pytest.raises(ValueError) as ours:
            parametrizations.orthogonal(build(nn), **kwargs)
        message = str(theirs.value)
        assert str(ours.value) == message or message.startswith("Module '")    # the module's repr differs
    for orthogonal_map in ["matrix_exp", "cayley"]:
        layer = parametrizations.orthogonal(nn.Linear(3, 3), "weight", orthogonal_map, use_trivialization=False)
        with pytest.raises(NotImplementedError, match="It is not possible to assign to the matrix exponential"):
            layer.weight = tinyres.eye(3)
    layer = parametrizations.orthogonal(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices of shape"):
        layer.weight = tinyres.eye(4)
