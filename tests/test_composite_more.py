"""More of torch's everyday functions and methods (tinyres/core/composite.py): products,
amax/amin, median, roll, diagonals, meshgrid, scatter_add, in-place math, the random
draws, type/stride/Size/finfo -- values, gradients and second derivatives against torch
in float64, and the errors bad input gets."""
import warnings

import numpy as np
import pytest
import torch

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5))
TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0]])
ZEROS = np.array([[2.0, 0.0, 3.0, 1.5, -1.0], [0.0, 1.0, 0.0, 2.0, 3.0], [1.0, 2.0, -3.0, 0.5, 4.0]])
IDX = rng.integers(0, 3, (2, 4, 5))


def both(fn):
    """The same expression for tinyres (lib=tinyres) and torch (lib=torch)."""
    return (lambda *a: fn(tinyres, *a)), (lambda *a: fn(torch, *a))


# name, fn(lib, *tensors), arrays; each differentiable in its float inputs
CASES = [
    ("amax dim ties", lambda lib, x: lib.amax(x, 1), [TIES]),
    ("amax all ties", lambda lib, x: x.amax(), [TIES]),
    ("amin dims keepdim", lambda lib, x: x.amin((0, 2), keepdim=True), [X]),
    ("norm inf ties", lambda lib, x: x.norm(float("inf"), dim=1), [TIES]),
    ("clip", lambda lib, x: lib.clip(x, -0.5, 0.7) + x.clip(max=0.1), [X]),
    ("clamp_min max", lambda lib, x: x.clamp_min(0.1) * x.clamp_max(0.2), [X]),
    ("prod", lambda lib, x: lib.prod(x), [X[0]]),
    ("prod one zero", lambda lib, x: x.prod(1), [ZEROS]),
    ("prod two zeros keepdim", lambda lib, x: x.prod(0, keepdim=True), [ZEROS.T]),
    ("prod empty", lambda lib, x: x[:, :0].prod(1) * x[:, 0], [ZEROS]),
    ("cumprod zeros", lambda lib, x: lib.cumprod(x, 1), [ZEROS]),
    ("cumprod dim 0", lambda lib, x: x.cumprod(-3), [X]),
    ("median all ties", lambda lib, x: lib.median(x), [TIES]),
    ("median dim", lambda lib, x: x.median(1).values, [X]),
    ("median dim keepdim", lambda lib, x: lib.median(x, 0, keepdim=True)[0], [X]),
    ("roll flat", lambda lib, x: lib.roll(x, 7), [X]),
    ("roll dims", lambda lib, x: x.roll((1, -2), (0, 2)), [X]),
    ("diag of a vector", lambda lib, x: lib.diag(x[0, 0], 1) + lib.diag(x[0, 1], -1), [X]),
    ("diag of a matrix", lambda lib, x: lib.diag(x[0], -1), [X]),
    ("diagonal", lambda lib, x: lib.diagonal(x, 1, 1, 2) * 2 + x.diagonal(-1, 0, -1).sum(), [X]),
    ("meshgrid ij", lambda lib, a, b: sum(g * (i + 1) for i, g in enumerate(lib.meshgrid(a, b, indexing="ij"))),
     [X[0, 0], X[1, 1, :3]]),
    ("meshgrid xy", lambda lib, a, b, c: sum(g * (i + 1) for i, g in enumerate(lib.meshgrid([a, b, c], indexing="xy"))),
     [X[0, 0, :2], X[1, 1, :3], X[2, 2, :4]]),
    ("repeat_interleave", lambda lib, x: x.repeat_interleave(2), [X[0]]),
    ("repeat_interleave counts", lambda lib, x: lib.repeat_interleave(x, lib.tensor([2, 0, 1]), dim=0), [X[:, 0]]),
    ("scatter_add", lambda lib, x, s: x.scatter_add(0, lib.tensor(IDX), s), [X, X[:2] * 3]),
    ("scatter_add function", lambda lib, x, s: lib.scatter_add(x, 1, lib.tensor(IDX[:, :2, :3]), s), [X[:2], X[:2, :2, :3]]),
    ("addcmul addcdiv", lambda lib, a, b, c: lib.addcmul(a, b, c, value=0.5) + a.addcdiv(b, c + 3, value=2), [X, X * 2, X + 1]),
    ("lerp number", lambda lib, a, b: lib.lerp(a, b, 0.25) + a.lerp(b, 0.75), [X, X * 2 + 1]),
    ("lerp tensor", lambda lib, a, b, w: lib.lerp(a, b, w), [X, X * 2 + 1, rng.uniform(0, 1, (3, 4, 5))]),
    ("var_mean", lambda lib, x: lib.var_mean(x, 1)[0] * lib.var_mean(x, (0, 2), keepdim=True, correction=0)[1].sum(),
     [X]),
    ("std_mean", lambda lib, x: lib.std_mean(x, dim=2, unbiased=False)[0] + lib.std_mean(x)[1], [X]),
    ("hstack vstack column_stack", lambda lib, a, b: lib.hstack([a, b]) * 2 + lib.hstack([a[0], b[0], a[1, 0]]).sum()
     + lib.vstack([a[0], b]).sum() + lib.column_stack([a[0], b.t()]).sum(), [X[0], X[1]]),
    ("t mT", lambda lib, x: lib.t(x[0]) * x[1].t() + x[:2].mT[0], [X]),
    ("add sub alpha", lambda lib, a, b: lib.add(a, b, alpha=2) * lib.sub(a, b, alpha=0.5) + lib.sub(a, 1), [X, X * 3]),
    ("pow of a number", lambda lib, x: lib.pow(2.5, x) + lib.pow(x, 2), [X]),
    ("where", lambda lib, c, a: lib.where(c > 0, a, c), [X, X * 2]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=IDS)
def test_against_torch(name, fn, arrays):
    compare_with_torch(*both(fn), arrays)
    compare_with_torch(*both(fn), arrays, contiguous=False)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=IDS)
def test_second_derivative_against_torch(name, fn, arrays):
    tiny, ref = both(fn)
    compare_second_order_with_torch(lambda *a: tiny(*a) ** 2, lambda *a: ref(*a) ** 2, arrays, rtol=1e-9, atol=1e-11)


def test_ties_and_nans_share_the_gradient_as_torch():
    nan = np.nan
    for array, call in [(np.array([[1.0, nan, 2.0], [nan, nan, 1.0]]), lambda lib, x: lib.amax(x, 1)),
                        (np.array([1.0, nan, 2.0, nan]), lambda lib, x: lib.median(x)),
                        (np.array([[1.0, nan, 2.0, 0.0]]), lambda lib, x: x.median(1).values),
                        (np.array([[4.0, 1.0, 1.0, 4.0]]), lambda lib, x: x.amin(1))]:
        grads = []
        for lib in (tinyres, torch):
            x = lib.tensor(array, requires_grad=True)
            y = call(lib, x)
            y.sum().backward()
            grads.append((np.asarray(y.detach().numpy()), np.asarray(x.grad.numpy())))
        np.testing.assert_array_equal(grads[0][0], grads[1][0])
        np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_median_indices_and_integers_as_torch():
    x = np.array([[2, 1, 2, 2, 3], [5, 4, 1, 3, 2]])
    for dim in (0, 1, -1):
        ours, theirs = tinyres.tensor(x).median(dim), torch.tensor(x).median(dim)
        assert np.array_equal(ours.values.numpy(), theirs.values.numpy())
        assert ours.indices.dtype == np.int64 and ours.indices.shape == tuple(theirs.indices.shape)
        picked = np.take_along_axis(x, np.expand_dims(ours.indices.numpy(), dim), dim).squeeze(dim)
        assert np.array_equal(picked, theirs.values.numpy())
    assert tinyres.median(tinyres.tensor(x)).item() == torch.median(torch.tensor(x)).item() == 2
    assert tinyres.tensor(3.0).median(0).values.shape == ()


def test_products_keep_torch_dtypes():
    ints, bools = np.array([[1, 2, 3], [4, 5, 6]]), np.array([True, True])
    for lib in (tinyres, torch):
        assert lib.tensor(ints).prod().item() == 720 and lib.tensor(bools).prod().item() == 1
    assert tinyres.tensor(ints).prod(1).dtype == tinyres.tensor(bools).prod().dtype == np.int64
    assert tinyres.prod(tinyres.tensor(ints), 0, dtype=tinyres.float64).dtype == np.float64
    assert np.array_equal(tinyres.cumprod(tinyres.tensor(ints), 1).numpy(), torch.cumprod(torch.tensor(ints), 1).numpy())
    assert tinyres.tensor(ints).cumprod(0).dtype == np.int64


def test_where_with_one_argument_and_nonzero_as_torch():
    x = np.array([[0.0, 1.5, 0.0], [np.nan, 0.0, -2.0]])
    for array in (x, x > 0, np.array(3.0), np.array(0), np.zeros((2, 0))):
        t, p = tinyres.tensor(array), torch.tensor(array)
        ours, theirs = tinyres.nonzero(t), torch.nonzero(p)
        assert ours.dtype == np.int64 and np.array_equal(ours.numpy(), theirs.numpy()) and ours.shape == theirs.shape
        for a, b in zip(t.nonzero(as_tuple=True), p.nonzero(as_tuple=True)):
            assert np.array_equal(a.numpy(), b.numpy())
        assert len(tinyres.where(t)) == len(torch.where(p))
        assert np.array_equal(tinyres.argwhere(t).numpy(), torch.argwhere(p).numpy())
    assert np.array_equal(tinyres.count_nonzero(tinyres.tensor(x), dim=0).numpy(),
                          torch.count_nonzero(torch.tensor(x), dim=0).numpy())
    assert tinyres.tensor(x).count_nonzero().item() == 3


def test_equal_and_as_tensor():
    a = tinyres.tensor([1.0, 2.0])
    assert tinyres.equal(a, tinyres.tensor([1, 2])) is True and a.equal(tinyres.tensor([1.0, 2.0]))
    assert not tinyres.equal(a, tinyres.tensor([[1.0, 2.0]])) and not tinyres.equal(a, tinyres.tensor([1.0, 3.0]))
    assert not tinyres.equal(tinyres.tensor([np.nan]), tinyres.tensor([np.nan]))
    assert tinyres.as_tensor(a) is a and tinyres.as_tensor(a, dtype=tinyres.float64).dtype == np.float64
    array = np.arange(3.0)
    shared = tinyres.as_tensor(array)
    array[0] = 9.0
    assert shared.numpy()[0] == 9.0 and shared.dtype == np.float64
    assert tinyres.as_tensor([1.0, 2.0]).dtype == np.float32 and tinyres.as_tensor([1, 2]).dtype == np.int64


def test_unique_as_torch():
    x = np.array([[3, 1, 3], [2, 1, 1]])
    for kwargs in ({}, {"return_inverse": True}, {"return_counts": True},
                   {"return_inverse": True, "return_counts": True, "sorted": False}, {"dim": 0}, {"dim": 1},
                   {"dim": 1, "return_inverse": True, "return_counts": True}):
        ours, theirs = tinyres.unique(tinyres.tensor(x), **kwargs), torch.unique(torch.tensor(x), **kwargs)
        ours, theirs = (ours, theirs) if isinstance(theirs, tuple) else ((ours,), (theirs,))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.dtype == np.int64 and np.array_equal(a.numpy(), b.numpy()), kwargs
    nans = np.array([2.0, np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(tinyres.tensor(nans).unique().numpy(), torch.tensor(nans).unique().numpy())
    assert tinyres.unique(tinyres.tensor(3)).shape == (1,)


def test_bincount_as_torch():
    x = np.array([1, 1, 3, 0])
    for kwargs in ({}, {"minlength": 7}, {"weights": np.array([0.5, 0.5, 1.0, 2.0], dtype=np.float32)},
                   {"weights": np.array([0.5, 0.5, 1.0, 2.0])}, {"weights": np.array([1, 2, 3, 4])}):
        ours = tinyres.bincount(tinyres.tensor(x), **{k: tinyres.tensor(v) if k == "weights" else v
                                                      for k, v in kwargs.items()})
        theirs = torch.bincount(torch.tensor(x), **{k: torch.tensor(v) if k == "weights" else v
                                                   for k, v in kwargs.items()})
        assert ours.dtype == np.dtype(str(theirs.dtype)[6:]) and np.array_equal(ours.numpy(), theirs.numpy())
    assert tinyres.tensor(np.zeros(0, dtype=np.int64)).bincount().shape == (0,)


def test_div_rounding_modes_as_torch():
    a, b = np.array([7, -7, 6, -6, 0]), np.array([2, 2, -4, 4, 3])
    for mode in (None, "trunc", "floor"):
        for x, y in ((a, b), (a * 1.5, b), (a, 2)):
            tx, px = tinyres.tensor(x), torch.tensor(x)
            ty, py = (tinyres.tensor(y), torch.tensor(y)) if isinstance(y, np.ndarray) else (y, y)
            ours, theirs = tinyres.div(tx, ty, rounding_mode=mode), torch.div(px, py, rounding_mode=mode)
            assert ours.dtype == np.dtype(str(theirs.dtype)[6:]), (mode, ours.dtype, theirs.dtype)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            np.testing.assert_array_equal(tx.div(ty, rounding_mode=mode).numpy(), theirs.numpy())
    x = tinyres.tensor(a * 1.5, requires_grad=True)
    x.div(2, rounding_mode="floor").sum().backward()
    assert np.array_equal(x.grad.numpy(), np.zeros(5))


def test_scatter_reduce_as_torch():
    idx = np.array([[0, 1, 0], [1, 0, 0]])
    src = np.arange(1.0, 7.0).reshape(2, 3)
    for reduce in ("add", "multiply"):
        for value in (src, 2.5):
            ours = tinyres.ones(2, 3, dtype=tinyres.float64)
            theirs = torch.ones(2, 3, dtype=torch.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # torch: reduce= with a tensor src is deprecated
                ours.scatter_(0, tinyres.tensor(idx), tinyres.tensor(value) if reduce and value is src else value,
                              reduce=reduce)
                theirs.scatter_(0, torch.tensor(idx), torch.tensor(value) if value is src else value, reduce=reduce)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    out = tinyres.zeros(2, 3, dtype=tinyres.float64)
    assert out.scatter_add_(0, tinyres.tensor(idx), tinyres.tensor(src)) is out and out._version == 1
    np.testing.assert_array_equal(out.numpy(), torch.zeros(2, 3, dtype=torch.float64).scatter_add_(
        0, torch.tensor(idx), torch.tensor(src)).numpy())


# name, args: the in-place method and its arguments, the same for both libraries
INPLACE = [("exp_", ()), ("sqrt_", ()), ("abs_", ()), ("neg_", ()), ("pow_", (3,)), ("sigmoid_", ()),
           ("tanh_", ()), ("log_", ()), ("clamp_min_", (0.6,)), ("clamp_max_", (0.9,)), ("clip_", (0.5, 1.0)),
           ("addcmul_", ("t", "t")), ("addcdiv_", ("t", "t")), ("lerp_", ("t", 0.3)), ("div_", (2.0,))]


@pytest.mark.parametrize("name,args", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_as_torch(name, args):
    """In place on a tensor inside the graph: the value, the version and the gradient through
    the write as torch's; on a leaf that requires grad the write is refused."""
    a = rng.uniform(0.2, 1.5, (3, 4))
    other = rng.uniform(0.5, 2.0, (3, 4))
    results = []
    for lib in (tinyres, torch):
        x = lib.tensor(a, requires_grad=True)
        o = lib.tensor(other, requires_grad=True)
        y = x * 1
        out = getattr(y, name)(*(o if v == "t" else v for v in args))
        assert out is y and y._version == 1
        (y * lib.tensor(other)).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), None if o.grad is None else o.grad.numpy()))
        with pytest.raises(RuntimeError, match="leaf"):
            getattr(x, name)(*(o if v == "t" else v for v in args))
    for ours, theirs in zip(*results):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_inplace_into_an_integer_tensor_is_refused_as_torch():
    for lib in (tinyres, torch):
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            lib.zeros(3, dtype=lib.int64).exp_()
        x = lib.tensor([-2, 3])
        assert x.abs_().tolist() == [2, 3] and x.neg_().tolist() == [-2, -3] and x.pow_(2).tolist() == [4, 9]


def test_a_saved_tensor_written_in_place_is_caught():
    x = tinyres.tensor([0.5, 1.0], requires_grad=True)
    y = x * 1
    z = y.exp()           # Exp keeps its output
    z.sqrt_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (z * y).sum().backward()


def test_type_stride_and_contiguity_as_torch():
    a = np.zeros((2, 3), dtype=np.float32)
    for dtype in ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"):
        assert tinyres.tensor(a.astype(dtype)).type() == torch.tensor(a.astype(dtype)).type()
    x, p = tinyres.tensor(a), torch.tensor(a)
    assert x.type(tinyres.float64).dtype == np.float64 and x.type("torch.LongTensor").dtype == np.int64
    assert x.type("torch.FloatTensor") is x and x.type(tinyres.float32) is x
    for f in (lambda t: t, lambda t: t.t(), lambda t: t[:, ::2], lambda t: t[:1].expand(4, 3),
              lambda t: t.unsqueeze(1)[:, :, 1:]):
        ours, theirs = f(x), f(p)
        assert ours.is_contiguous() == theirs.is_contiguous()
        if ours.numel() > 1:
            assert ours.stride() == theirs.stride() and ours.stride(-1) == theirs.stride(-1)
        assert ours.contiguous().is_contiguous() and np.array_equal(ours.contiguous().numpy(), theirs.contiguous().numpy())
    assert x.contiguous() is x and x.nelement() == p.nelement() == 6


def test_size_finfo_iinfo_as_torch():
    s, p = tinyres.Size((2, 3)), torch.Size((2, 3))
    assert s == p == (2, 3) == tinyres.zeros(2, 3).shape and isinstance(s, tuple)
    assert s.numel() == 6 and isinstance(s[1:], tinyres.Size) and s[1:] == (3,) and s + (4,) == (2, 3, 4)
    assert tinyres.Size([np.int64(2)]) == (2,) and repr(s) == "tinyres.Size([2, 3])"
    for dtype in ("float16", "float32", "float64"):
        ours, theirs = tinyres.finfo(getattr(tinyres, dtype)), torch.finfo(getattr(torch, dtype))
        for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(ours, name) == getattr(theirs, name), (dtype, name)
        assert ours.dtype == dtype and repr(ours) == repr(theirs)
    assert tinyres.finfo().eps == torch.finfo().eps
    for dtype in ("uint8", "int8", "int16", "int32", "int64"):
        ours, theirs = tinyres.iinfo(dtype), torch.iinfo(getattr(torch, dtype))
        assert (ours.bits, ours.max, ours.min, ours.dtype) == (theirs.bits, theirs.max, theirs.min, dtype)


def test_rng_state_round_trip_reproduces_the_draws():
    tinyres.manual_seed(3)
    tinyres.rand(5)
    state = tinyres.get_rng_state()
    assert state.dtype == np.uint8
    first = (tinyres.randn(4), tinyres.randperm(6), tinyres.zeros(3).normal_())
    tinyres.set_rng_state(state)
    again = (tinyres.randn(4), tinyres.randperm(6), tinyres.zeros(3).normal_())
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    tinyres.set_rng_state(state.clone())
    np.testing.assert_array_equal(tinyres.randn(4).numpy(), first[0].numpy())


def test_normal_forms_as_torch():
    mean, std = tinyres.zeros(2, 1, dtype=tinyres.float64), tinyres.ones(3, dtype=tinyres.float64)
    assert tinyres.normal(mean, std).shape == tuple(torch.normal(torch.zeros(2, 1), torch.ones(3)).shape) == (2, 3)
    assert tinyres.normal(0.0, std).dtype == np.float64 and tinyres.normal(mean, 2.0).shape == (2, 1)
    assert tinyres.normal(0.0, 1.0, (2, 3)).dtype == np.float32
    assert tinyres.normal(0.0, 1.0, size=(2,), dtype=tinyres.float64).dtype == np.float64
    draws = tinyres.normal(tinyres.full((20000,), 3.0), tinyres.full((20000,), 0.5)).numpy()
    assert abs(draws.mean() - 3.0) < 0.02 and abs(draws.std() - 0.5) < 0.02
    g1, g2 = tinyres.Generator().manual_seed(5), tinyres.Generator().manual_seed(5)
    np.testing.assert_array_equal(tinyres.normal(mean, std, generator=g1).numpy(),
                                  tinyres.normal(mean, std, generator=g2).numpy())
    for lib in (tinyres, torch):               # a draw's gradient is 0, as torch's
        m, s = lib.zeros(3, requires_grad=True), lib.ones(3, requires_grad=True)
        lib.normal(m, s).sum().backward()
        assert m.grad.tolist() == s.grad.tolist() == [0.0, 0.0, 0.0]


def test_bernoulli_and_multinomial():
    tinyres.manual_seed(0)
    p = tinyres.tensor([0.0, 0.25, 1.0], dtype=tinyres.float64).expand(4000, 3)
    draws = tinyres.bernoulli(p).numpy()
    assert draws.dtype == np.float64 and set(np.unique(draws)) <= {0.0, 1.0}
    assert draws[:, 0].sum() == 0 and draws[:, 2].all() and abs(draws[:, 1].mean() - 0.25) < 0.03
    assert abs(tinyres.zeros(4000).bernoulli(0.7).numpy().mean() - 0.7) < 0.03
    w = tinyres.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 2.0]])
    picked = tinyres.multinomial(w, 4000, replacement=True).numpy()
    assert picked.dtype == np.int64 and picked.shape == (2, 4000)
    assert abs((picked[0] == 2).mean() - 0.75) < 0.03 and not (picked[0] == 1).any() and not (picked[1] == 0).any()
    firsts = np.array([tinyres.multinomial(w[0], 2).numpy() for _ in range(1000)])
    assert all(sorted(row) == [0, 2] for row in firsts) and abs((firsts[:, 0] == 2).mean() - 0.75) < 0.05
    assert sorted(tinyres.multinomial(tinyres.tensor([0.2, 0.8, 0.0]), 3).tolist()) == [0, 1, 2]
    g1, g2 = tinyres.Generator().manual_seed(1), tinyres.Generator().manual_seed(1)
    assert tinyres.multinomial(w, 5, True, generator=g1).tolist() == tinyres.multinomial(w, 5, True, generator=g2).tolist()


def test_meshgrid_warns_without_indexing_as_torch():
    for lib in (tinyres, torch):
        with pytest.warns(UserWarning, match="it will be required to pass the indexing argument"):
            grids = lib.meshgrid(lib.arange(2), lib.arange(3))
        assert [tuple(g.shape) for g in grids] == [(2, 3), (2, 3)]
    a, b = tinyres.meshgrid(tinyres.arange(2), tinyres.arange(3), indexing="xy")
    pa, pb = torch.meshgrid(torch.arange(2), torch.arange(3), indexing="xy")
    assert np.array_equal(a.numpy(), pa.numpy()) and np.array_equal(b.numpy(), pb.numpy())


def test_empty_cache_and_mps():
    tinyres.cuda.empty_cache()          # no CuPy or no GPU: nothing to do
    assert tinyres.backends.mps.is_available() is False and tinyres.backends.mps.is_built() is False


def test_empty_cache_frees_cupys_pools(fake_cupy):
    freed = []

    class Pool:
        def __init__(self, name):
            self.name = name

        def free_all_blocks(self):
            freed.append(self.name)
    fake_cupy.get_default_memory_pool = lambda: Pool("device")
    fake_cupy.get_default_pinned_memory_pool = lambda: Pool("pinned")
    tinyres.cuda.empty_cache()
    assert freed == ["device", "pinned"]


def test_on_the_gpu_double(fake_cupy):
    """The ops that compute on arrays go through xp: they run on the CuPy double, results on the device."""
    from cupy_double import on
    x = tinyres.tensor(TIES, device="cuda", requires_grad=True)
    y = x.amax(1).sum() + x.median() + x.roll(1, 0)[0].sum() + x.prod(1).sum() + x.diagonal().sum()
    y.backward()
    on(x.grad, x.device)
    ref = torch.tensor(TIES, requires_grad=True)
    (ref.amax(1).sum() + ref.median() + ref.roll(1, 0)[0].sum() + ref.prod(1).sum() + ref.diagonal().sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-12)
    idx = tinyres.tensor(np.array([1, 1, 3]), device="cuda")
    assert on(tinyres.bincount(idx), x.device).tolist() == [0, 2, 0, 1]
    assert on(tinyres.unique(idx), x.device).tolist() == [1, 3]
    assert on(tinyres.nonzero(x > 2), x.device).tolist() == [[0, 1], [0, 2]]
    assert on(tinyres.multinomial(x.abs() + 0.1, 2), x.device).shape == (3, 2)
    assert on(tinyres.normal(x, 1.0), x.device).shape == (3, 4)
    assert on(x.median(1).indices, x.device).shape == (3,)
    z = tinyres.zeros(2, 3, device="cuda")
    on(z.scatter_add_(0, tinyres.tensor(np.array([[0, 1, 0]]), device="cuda"), tinyres.ones(1, 3, device="cuda")),
       x.device)
    assert z.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


@pytest.mark.parametrize("call,error,match", [
    (lambda x: x.amax(3), IndexError, "amax: expected a dim"),
    (lambda x: x[:, :0].amax(1), IndexError, "amax: Expected reduction dim 1 to have non-zero size"),
    (lambda x: x[0, 0].mT, RuntimeError, "mT: tensor.mT is only supported on matrices"),
    (lambda x: x.t(), RuntimeError, "t: expects a tensor with <= 2 dimensions"),
    (lambda x: x.stride(3), IndexError, "stride: Dimension out of range"),
    (lambda x: x.type("torch.FancyTensor"), ValueError, "type: invalid type"),
    (lambda x: tinyres.Size([2, 3.0]), TypeError, "Size: expected an iterable of ints, got item 1 of type float"),
    (lambda x: tinyres.finfo(tinyres.int64), TypeError, "finfo: expected a floating point dtype"),
    (lambda x: tinyres.iinfo(tinyres.bool_), TypeError, "iinfo: expected an integer dtype"),
    (lambda x: tinyres.add(tinyres.tensor([1]), 1, alpha=0.5), RuntimeError, "add: For integral input tensors"),
    (lambda x: tinyres.sub(x > 0, x > 1), RuntimeError, "sub: Subtraction, the `-` operator, with two bool"),
    (lambda x: tinyres.div(x, 2, rounding_mode="round"), RuntimeError, "div: expected rounding_mode to be one of"),
    (lambda x: tinyres.addcdiv(x, tinyres.tensor([1]), tinyres.tensor([2])), RuntimeError, "addcdiv: Integer division"),
    (lambda x: tinyres.lerp(x, x.float(), 0.5), RuntimeError, "lerp: expected dtype float64 for `end`"),
    (lambda x: tinyres.where(x > 0, x), TypeError, "where: expected where"),
    (lambda x: tinyres.equal(x, 1), TypeError, "equal: expected a Tensor"),
    (lambda x: tinyres.bincount(tinyres.tensor([-1, 2])), RuntimeError, "bincount: only supports 1-d non-negative"),
    (lambda x: tinyres.bincount(tinyres.tensor([[1]])), RuntimeError, "bincount: only supports 1-d non-negative"),
    (lambda x: tinyres.bincount(x[0, 0]), NotImplementedError, "bincount: expected an integer input"),
    (lambda x: tinyres.bincount(tinyres.tensor([1]), minlength=-1), RuntimeError, "bincount: minlength should be"),
    (lambda x: tinyres.bincount(tinyres.tensor([1]), tinyres.ones(2)), RuntimeError, "bincount: weights should be"),
    (lambda x: x[:, :0].median(1), IndexError, "median: Expected reduction dim 1 to have non-zero size"),
    (lambda x: x.roll((1, 2), 0), RuntimeError, "roll: shifts and dimensions must align"),
    (lambda x: x.roll(1, 3), IndexError, "roll: expected a dim"),
    (lambda x: tinyres.diag(x), RuntimeError, "diag: Supports 1D or 2D tensors. Got 3D"),
    (lambda x: x.diagonal(0, 1, -2), RuntimeError, "diagonal: diagonal dimensions cannot be identical"),
    (lambda x: tinyres.meshgrid(x, indexing="ij"), RuntimeError, "meshgrid: Expected 0D or 1D tensor"),
    (lambda x: tinyres.meshgrid(x[0, 0], indexing="yx"), RuntimeError, "meshgrid: indexing must be one of"),
    (lambda x: x.repeat_interleave(-1), RuntimeError, "repeat_interleave: repeats can not be negative"),
    (lambda x: x.repeat_interleave(tinyres.tensor([1, 2]), 0), RuntimeError, "repeat_interleave: repeats must have"),
    (lambda x: x.scatter_add(0, tinyres.tensor(IDX), x.float()), RuntimeError, "scatter_add: Expected self.dtype"),
    (lambda x: x.scatter_add(0, tinyres.tensor(IDX * 1.0), x), RuntimeError, "scatter_add: expected an integer index"),
    (lambda x: x.scatter(0, tinyres.tensor(IDX), x, reduce="mean"), RuntimeError, "scatter: reduce argument must be"),
    (lambda x: tinyres.normal(x, -x.abs() - 1), RuntimeError, "normal: expects all elements of std >= 0.0"),
    (lambda x: tinyres.normal(0.0, -1.0, (2,)), RuntimeError, "normal: expects std >= 0.0"),
    (lambda x: tinyres.normal(0.0, 1.0), TypeError, "normal: expected a tensor mean or std"),
    (lambda x: tinyres.normal(tinyres.tensor([1]), 1.0), NotImplementedError, "normal: expected a floating point"),
    (lambda x: tinyres.bernoulli(x), RuntimeError, "bernoulli: expected probabilities"),
    (lambda x: tinyres.bernoulli(tinyres.tensor([1])), NotImplementedError, "bernoulli: expected a floating point"),
    (lambda x: tinyres.multinomial(tinyres.tensor([1, 2]), 1), RuntimeError, "multinomial: only supports floating"),
    (lambda x: tinyres.multinomial(x.abs(), 1), RuntimeError, "multinomial: prob_dist must be 1 or 2 dim"),
    (lambda x: tinyres.multinomial(x[0].abs(), 0), RuntimeError, "multinomial: cannot sample n_sample <= 0"),
    (lambda x: tinyres.multinomial(x[0].abs(), 6), RuntimeError, "multinomial: cannot sample n_sample > prob_dist"),
    (lambda x: tinyres.multinomial(x[0], 2, True), RuntimeError, "multinomial: probability tensor contains"),
    (lambda x: tinyres.multinomial(x[0] * 0, 2, True), RuntimeError, "multinomial: invalid multinomial distribution"),
    (lambda x: tinyres.set_rng_state(x), TypeError, "set_rng_state: expected a uint8 tensor"),
    (lambda x: tinyres.set_rng_state(tinyres.zeros(3, dtype=tinyres.uint8)), RuntimeError, "set_rng_state: expected a state of 37"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(tinyres.tensor(X))


def test_the_methods_add_sub_and_their_in_place_forms_take_alpha_as_the_functions():
    for lib in (tinyres, torch):
        a, b = lib.tensor([1, 2]), lib.tensor([3, 4])
        for call in (lambda: a.sub(b, alpha=0.5), lambda: a.add(b, alpha=0.5), lambda: a.clone().sub_(b, alpha=0.5),
                     lambda: a.clone().add_(b, alpha=0.5)):
            with pytest.raises(RuntimeError, match="For integral input tensors, argument alpha must not be"):
                call()
        with pytest.raises(RuntimeError, match="with two bool tensors"):
            (a > 1).sub(b > 1, alpha=2)
        x = lib.tensor([1.0, 2.0])
        assert a.sub(b, alpha=2).tolist() == [-5, -6] and x.add_(b, alpha=0.5).tolist() == [2.5, 4.0]
        assert x.sub_(1, alpha=2).tolist() == [0.5, 2.0]


def test_a_list_operand_that_does_not_broadcast_names_the_op():
    with pytest.raises(ValueError, match=r"add: expected shapes that broadcast together, got \(3,\) and \(2,\)"):
        tinyres.ones(3) + [1.0, 2.0]
    with pytest.raises(ValueError, match=r"mul: expected shapes that broadcast together"):
        np.ones((2, 2)) * tinyres.ones(3)
