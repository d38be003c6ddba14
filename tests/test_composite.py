"""torch's everyday methods (tinyres/core/composite.py): values, gradients and second
derivatives against torch in float64, and the errors bad input gets."""
import numpy as np
import pytest
import torch

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch, gradgradcheck

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5))
IDX = rng.integers(0, 4, (3, 2, 5))

# name, tinyres function, torch function, arrays; each differentiable in its float inputs
DIFFERENTIABLE = [
    ("expand", lambda x: x[:, :1].expand(2, 3, -1, 5), lambda x: x[:, :1].expand(2, 3, -1, 5), [X]),
    ("expand_as", lambda x, y: x[:1].expand_as(y) * y, lambda x, y: x[:1].expand_as(y) * y, [X, X * 2]),
    ("repeat", lambda x: x.repeat(2, 1, 3, 1), lambda x: x.repeat(2, 1, 3, 1), [X]),
    ("split sizes", lambda x: x.split([1, 3], 1)[1] * 2, lambda x: x.split([1, 3], 1)[1] * 2, [X]),
    ("split size", lambda x: x.split(2, -1)[2], lambda x: x.split(2, -1)[2], [X]),
    ("chunk", lambda x: x.chunk(3, 2)[1], lambda x: x.chunk(3, 2)[1], [X]),
    ("contiguous", lambda x: x.transpose(0, 2).contiguous(), lambda x: x.transpose(0, 2).contiguous(), [X]),
    ("masked_fill", lambda x: x.masked_fill(x > 0.3, -1.5), lambda x: x.masked_fill(x > 0.3, -1.5), [X]),
    ("gather", lambda x: x.gather(1, tinyres.tensor(IDX)), lambda x: x.gather(1, torch.tensor(IDX)), [X]),
    ("scatter src", lambda x, s: x.scatter(2, tinyres.tensor(np.argsort(X[:, :2], 2)), s),
     lambda x, s: x.scatter(2, torch.tensor(np.argsort(X[:, :2], 2)), s), [X, X[:, :2] + 1]),
    ("scatter value", lambda x: x.scatter(0, tinyres.tensor(IDX[:1] % 3), value=2.0),
     lambda x: x.scatter(0, torch.tensor(IDX[:1] % 3), value=2.0), [X]),
    ("sort values", lambda x: x.sort(1).values, lambda x: x.sort(1).values, [X]),
    ("sort descending", lambda x: x.sort(-1, descending=True)[0], lambda x: x.sort(-1, descending=True)[0], [X]),
    ("topk", lambda x: x.topk(2, dim=1).values, lambda x: x.topk(2, dim=1).values, [X]),
    ("topk smallest", lambda x: x.topk(3, largest=False)[0], lambda x: x.topk(3, largest=False)[0], [X]),
    ("norm", lambda x: x.norm(), lambda x: x.norm(), [X]),
    ("norm dim", lambda x: x.norm(dim=1, keepdim=True), lambda x: x.norm(dim=1, keepdim=True), [X]),
    ("norm p=1", lambda x: x.norm(1, dim=(0, 2)), lambda x: x.norm(1, dim=(0, 2)), [X]),
    ("norm p=3", lambda x: x.norm(3, dim=-1), lambda x: x.norm(3, dim=-1), [X]),
    ("norm inf", lambda x: x.norm(float("inf"), dim=0), lambda x: x.norm(float("inf"), dim=0), [X]),
    ("logsumexp", lambda x: tinyres.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1), [X]),
    ("logsumexp large", lambda x: (x * 1000).logsumexp((0, 2), keepdim=True),
     lambda x: (x * 1000).logsumexp((0, 2), keepdim=True), [X]),
    ("softmax", lambda x: tinyres.softmax(x, 1), lambda x: torch.softmax(x, 1), [X]),
    ("log_softmax", lambda x: tinyres.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1), [X]),
    ("einsum matmul", lambda a, b: tinyres.einsum("ijk,ilk->ijl", a, b),
     lambda a, b: torch.einsum("ijk,ilk->ijl", a, b), [X, X[:, :2] * 3]),
    ("einsum summed index", lambda a, b: tinyres.einsum("ij,kl->ik", a, b),
     lambda a, b: torch.einsum("ij,kl->ik", a, b), [X[0], X[1, :3]]),
    ("einsum implicit", lambda a, b, c: tinyres.einsum("ij,jk,k", a, b, c),
     lambda a, b, c: torch.einsum("ij,jk,k", a, b, c), [X[0], X[1].T, X[2, 0, :4]]),
    ("einsum list", lambda a: tinyres.einsum("bij->jb", [a]), lambda a: torch.einsum("bij->jb", [a]), [X]),
    ("einsum ellipsis batched", lambda a, b: tinyres.einsum("...ij,...jk->...ik", a, b),
     lambda a, b: torch.einsum("...ij,...jk->...ik", a, b), [X, X.transpose(0, 2, 1)]),
    ("einsum ellipsis broadcast", lambda a, b: tinyres.einsum("i...,i...->...", a, b),
     lambda a, b: torch.einsum("i...,i...->...", a, b), [X[:, :, :1], X[:, :1]]),
    ("einsum ellipsis implicit", lambda a, b: tinyres.einsum("...ij,jk", a, b),
     lambda a, b: torch.einsum("...ij,jk", a, b), [X, X[0].T]),
    ("einsum diagonal", lambda a: tinyres.einsum("iji->j", a), lambda a: torch.einsum("iji->j", a), [X[:, :, :3]]),
    ("einsum trace", lambda a: tinyres.einsum("bii", a), lambda a: torch.einsum("bii", a), [X[:, :4, :4]]),
]


@pytest.mark.parametrize("name,tiny,ref,arrays", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_against_torch(name, tiny, ref, arrays):
    compare_with_torch(tiny, ref, arrays)


@pytest.mark.parametrize("name,tiny,ref,arrays", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_second_derivative_against_torch(name, tiny, ref, arrays):
    compare_second_order_with_torch(lambda *a: tiny(*a) ** 2, lambda *a: ref(*a) ** 2, arrays, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,tiny,ref,arrays", DIFFERENTIABLE[:6] + DIFFERENTIABLE[15:], ids=[
    c[0] for c in DIFFERENTIABLE[:6] + DIFFERENTIABLE[15:]])
def test_gradgradcheck(name, tiny, ref, arrays):
    assert gradgradcheck(lambda *a: tiny(*a) ** 2,
                         [tinyres.tensor(a[:2] if a.ndim == 3 and name.startswith("norm") else a, requires_grad=True)
                          for a in arrays] if not name.startswith("norm") else
                         [tinyres.tensor(a, requires_grad=True) for a in arrays], nsamples=12)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(op):
    a, b = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0], [3.0]])
    for other in (tinyres.tensor(b), 2.0):
        t = getattr(tinyres.tensor(a), op)(other)
        p = getattr(torch.tensor(a), op)(torch.tensor(b) if isinstance(other, tinyres.Tensor) else other)
        assert t.dtype == np.bool_ and np.array_equal(t.numpy(), p.numpy())
    assert np.array_equal(getattr(tinyres, op)(tinyres.tensor(a), tinyres.tensor(b)).numpy(),
                          getattr(torch, op)(torch.tensor(a), torch.tensor(b)).numpy())


@pytest.mark.parametrize("x", [np.array([[3.0, 1.0, 2.0, 1.0], [0.5, 0.5, -1.0, 4.0]]),
                               np.array([[1.0, np.nan, 0.0, np.nan], [np.inf, -np.inf, np.nan, 2.0]]),
                               np.array([[True, False, True, False], [False, False, True, True]]),
                               np.array([[0, 255, 3, 255], [7, 0, 0, 1]], dtype=np.uint8)],
                         ids=["ties", "nan", "bool", "uint8"])
def test_indices_match_torch(x):
    """Stable, ties in their order, NaN as the largest value, in both directions and any dtype."""
    for kwargs in ({}, {"descending": True}, {"dim": 0}, {"dim": 0, "descending": True}):
        ours, theirs = tinyres.tensor(x).sort(**kwargs), torch.tensor(x).sort(stable=True, **kwargs)
        assert np.array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        assert np.array_equal(tinyres.argsort(tinyres.tensor(x), **kwargs).numpy(),
                              torch.argsort(torch.tensor(x), stable=True, **kwargs).numpy())


def test_normal_and_uniform_fill_in_place_as_torch():
    x = tinyres.zeros(200, 100, dtype=tinyres.float64)
    assert x.normal_(1.0, 0.5) is x and x._version == 1
    assert abs(x.mean().item() - 1.0) < 0.01 and abs(x.std().item() - 0.5) < 0.01
    x.uniform_(-2, 3)
    assert -2 <= x.min().item() and x.max().item() <= 3 and abs(x.mean().item() - 0.5) < 0.05
    x.uniform_(**{"from": 5.0, "to": 6.0})
    assert 5 <= x.min().item() and x.max().item() <= 6
    draws = []
    for _ in range(2):
        g = tinyres.Generator().manual_seed(7)
        tinyres.manual_seed(7)
        draws.append(tinyres.zeros(5).uniform_(generator=g).numpy())
    np.testing.assert_array_equal(*draws)
    y = tinyres.zeros(3, requires_grad=True)
    for lib, t in ((tinyres, y), (torch, torch.zeros(3, requires_grad=True))):
        for fill in (lambda: t.normal_(), lambda: t.uniform_()):
            with pytest.raises(RuntimeError, match="leaf"):
                fill()
        with lib.no_grad():
            t.normal_()                              # the way to initialise a parameter by hand
    with pytest.raises(RuntimeError, match="normal_: a leaf tensor that requires grad"):
        y.normal_()
    with pytest.raises(TypeError, match="uniform_: expected"):
        x.uniform_(0, 1, 2)


def test_a_0d_tensor_sorts_as_one_element_as_torch():
    for lib in (tinyres, torch):
        x = lib.tensor(3.0, dtype=lib.float64, requires_grad=True)
        values, indices = x.sort(descending=True)
        top = x.topk(1)
        assert values.shape == indices.shape == top.values.shape == ()
        assert indices.item() == top.indices.item() == x.argsort().item() == 0 and values.item() == 3.0
        values.backward()
        assert x.grad.item() == 1.0


def test_topk_indices_match_torch():
    t, p = tinyres.tensor(X).topk(2, 1), torch.tensor(X).topk(2, 1)
    assert np.array_equal(t.indices.numpy(), p.indices.numpy()) and t.indices.dtype == np.int64
    values, indices = tinyres.topk(tinyres.tensor(X), 1)
    assert values.shape == (3, 4, 1)


def test_pieces_match_torch():
    x = np.arange(14.0).reshape(2, 7)
    for args in ((3, 1), (4, 1), (1, 0), (7, 1)):
        t, p = tinyres.tensor(x).chunk(*args), torch.tensor(x).chunk(*args)
        assert [a.shape for a in t] == [tuple(b.shape) for b in p]
    t, p = tinyres.split(tinyres.tensor(x), 3, dim=1), torch.split(torch.tensor(x), 3, dim=1)
    assert [a.numpy().tolist() for a in t] == [b.numpy().tolist() for b in p]


def test_factories_match_torch():
    assert np.array_equal(tinyres.eye(3, 4).numpy(), torch.eye(3, 4).numpy())
    assert tinyres.eye(2).dtype == np.float32 and tinyres.eye(2, dtype=tinyres.float64).dtype == np.float64
    np.testing.assert_allclose(tinyres.linspace(-1, 2, 7).numpy(), torch.linspace(-1, 2, 7).numpy(), rtol=1e-7)
    tinyres.manual_seed(0)
    perm = tinyres.randperm(10)
    assert perm.dtype == np.int64 and sorted(perm.numpy().tolist()) == list(range(10))
    tinyres.manual_seed(0)
    assert np.array_equal(tinyres.randperm(10).numpy(), perm.numpy())
    a = np.arange(3.0)
    t = tinyres.from_numpy(a)
    a[0] = 7.0
    assert t.numpy()[0] == 7.0 and t.dtype == np.float64


def test_isclose_and_allclose():
    a, b = np.array([1.0, 1.0 + 1e-9, 2.0, np.nan]), np.array([1.0, 1.0, 2.1, np.nan])
    assert np.array_equal(tinyres.isclose(tinyres.tensor(a), tinyres.tensor(b)).numpy(),
                          torch.isclose(torch.tensor(a), torch.tensor(b)).numpy())
    assert np.array_equal(tinyres.tensor(a).isclose(tinyres.tensor(b), equal_nan=True).numpy(),
                          torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=True).numpy())
    assert tinyres.allclose(tinyres.tensor(a[:2]), tinyres.tensor(b[:2])) is True
    assert tinyres.tensor(a[:3]).allclose(tinyres.tensor(b[:3]), atol=0.2) is True
    assert not tinyres.allclose(tinyres.tensor(a), tinyres.tensor(b))


def test_bernoulli_():
    tinyres.manual_seed(1)
    x = tinyres.zeros(2000, dtype=tinyres.float64)
    assert x.bernoulli_(0.3) is x
    values = x.numpy()
    assert set(np.unique(values)) <= {0.0, 1.0} and abs(values.mean() - 0.3) < 0.05
    leaf = tinyres.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf.bernoulli_()


def test_logsumexp_of_minus_infinity_is_minus_infinity():
    x = tinyres.tensor([[-np.inf, -np.inf], [0.0, -np.inf]])
    assert np.array_equal(tinyres.logsumexp(x, 1).numpy(), torch.logsumexp(torch.tensor(x.numpy()), 1).numpy())


def test_contiguous_is_itself():
    x = tinyres.randn(2, 3)
    assert x.contiguous() is x


@pytest.mark.parametrize("call,error,match", [
    (lambda x: x.expand(3), RuntimeError, "expand: the number of sizes"),
    (lambda x: x.expand(3, 5, 5), RuntimeError, "expand: the expanded size"),
    (lambda x: x.expand(-1, 3, 4, 5), RuntimeError, "expand: -1 is not allowed"),
    (lambda x: x.repeat(2), RuntimeError, "repeat: the number of repeat dimensions"),
    (lambda x: x.split([1, 1], 0), RuntimeError, "split: expected split sizes that sum"),
    (lambda x: x.split(0), ValueError, "split: expected a positive split_size"),
    (lambda x: x.chunk(0), ValueError, "chunk: expected a positive number"),
    (lambda x: x.gather(1, tinyres.tensor([[0]])), RuntimeError, "gather: expected an index with as many"),
    (lambda x: x.gather(1, tinyres.zeros(3, 4, 5)), RuntimeError, "gather: expected an integer index"),
    (lambda x: x.gather(1, tinyres.tensor(IDX + 4)), IndexError, "gather: index out of range"),
    (lambda x: x.gather(1, tinyres.zeros(4, 4, 5, dtype=tinyres.int64)), RuntimeError, "gather: index size 4"),
    (lambda x: x.scatter(1, tinyres.tensor(IDX)), TypeError, "scatter: expected src or value"),
    (lambda x: x.masked_fill(x, 0.0), RuntimeError, "masked_fill: masked_fill_ only supports boolean masks"),
    (lambda x: x.topk(9, dim=1), RuntimeError, r"topk: k \(9\) is out of range"),
    (lambda x: x.norm(p=-1), ValueError, "norm: expected p"),
    (lambda x: tinyres.einsum("ij,jk->ik", x), ValueError, "einsum: the equation names 2 operands"),
    (lambda x: tinyres.einsum("ij->i", x), ValueError, "einsum: subscripts 'ij' name 2 dimensions"),
    (lambda x: tinyres.einsum("iij->i", x), ValueError, "einsum: subscript 'i' is repeated for dimensions of sizes 3 and 4"),
    (lambda x: tinyres.einsum("ijkl...->", x), ValueError, r"einsum: '\.\.\.' in \['ijkl\.\.\.'\] does not fit"),
    (lambda x: tinyres.einsum("ijk,ijk->z", x, x), ValueError, "einsum: output subscripts"),
    (lambda x: tinyres.einsum("ijk,kji->", x, x), ValueError, "einsum: subscript 'k' has size 5"),
    (lambda x: tinyres.from_numpy([1, 2]), TypeError, "from_numpy: expected a numpy.ndarray"),
    (lambda x: tinyres.linspace(0, 1, -1), RuntimeError, "linspace: expected a non-negative"),
    (lambda x: tinyres.randperm(-1), RuntimeError, "randperm: expected a non-negative"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(tinyres.tensor(X))
