"""Round two of torch's everyday names (tinyres/core/composite.py, core/tensor.py): Tensor.__index__
and sizes given as tensors, masked_select, tile, unfold, fmod, movedim, the logical ops,
index_add/index_fill, nan_to_num, tan, atan2, addmm, cdist, the in-place view ops, the
memory formats and torch's deprecated scalar-first overloads -- values, gradients and second
derivatives against torch in float64, and the errors bad input gets."""
import operator
import pickle
import warnings

import numpy as np
import pytest
import torch

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5))
M = rng.standard_normal((3, 4))
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
IDX = np.array([0, 2, 0, 1])
SPECIAL = np.array([1.5, np.nan, np.inf, -np.inf, -2.0, 0.0])


def both(fn):
    """The same expression for tinyres (lib=tinyres) and torch (lib=torch)."""
    return (lambda *a: fn(tinyres, *a)), (lambda *a: fn(torch, *a))


# name, fn(lib, *tensors), arrays; each differentiable in its float inputs
CASES = [
    ("masked_select", lambda lib, x: lib.masked_select(x, lib.tensor(MASK)) * 2, [M]),
    ("masked_select broadcast", lambda lib, x: x.masked_select(lib.tensor(MASK[:, :1])), [M]),
    ("tile", lambda lib, x: lib.tile(x, (2,)) + x.tile(2, 1, 1).sum(), [M]),
    ("unfold", lambda lib, x: x.unfold(1, 2, 1) * 3, [X]),
    ("unfold step", lambda lib, x: x.unfold(-1, 2, 2) + x.unfold(0, 3, 1).sum(), [X]),
    ("fmod", lambda lib, a, b: lib.fmod(a * 3, b) + a.fmod(0.7), [X, X[0] + 2.5]),
    ("remainder method", lambda lib, a, b: a.remainder(b) + lib.remainder(a, -0.7), [X, X[0] + 2.5]),
    ("movedim", lambda lib, x: lib.movedim(x, 0, -1) * 2 + x.moveaxis((0, 1), (2, 0)).sum(), [X]),
    ("index_add", lambda lib, x, s: x.index_add(0, lib.tensor(IDX[:2]), s, alpha=2), [M, M[:2] * 3]),
    ("index_add dim 1", lambda lib, x, s: lib.index_add(x, 1, lib.tensor(IDX), s), [M, M * 3]),
    ("index_fill", lambda lib, x: x.index_fill(1, lib.tensor([1, 3]), -1.0) * x, [M]),
    ("index_fill tensor value", lambda lib, x, v: lib.index_fill(x, 0, lib.tensor([2]), v), [M, np.array(0.5)]),
    ("nan_to_num", lambda lib, x: lib.nan_to_num(x * 2, posinf=5.0, neginf=-4.0), [SPECIAL]),
    ("nan_to_num method", lambda lib, x: x.nan_to_num(nan=1.0, posinf=3.0, neginf=-3.0), [SPECIAL]),
    ("tan", lambda lib, x: lib.tan(x) + x.tan() * 2, [X]),
    ("atan2", lambda lib, a, b: lib.atan2(a, b) + a.arctan2(b[0]), [X, X[::-1] * 2]),
    ("addmm", lambda lib, c, a, b: lib.addmm(c, a, b) + c.addmm(a, b, beta=0.5, alpha=-2), [M[:, :2], M, M.T[:, :2]]),
    ("addmm broadcast", lambda lib, c, a, b: lib.addmm(c, a, b, beta=2), [M[0, :2], M, M.T[:, :2]]),
    ("concat concatenate", lambda lib, a, b: lib.concat([a, b], dim=1) + lib.concatenate((a, b), axis=1), [M, M * 2]),
    ("cdist", lambda lib, a, b: lib.cdist(a, b), [X[:, :3], X[:, 2:]]),
    ("cdist p=1", lambda lib, a, b: lib.cdist(a, b, p=1), [M, M[:2] + 1]),
    ("cdist zero distance", lambda lib, a, b: lib.cdist(a, b) + lib.cdist(a, b, p=1), [M, M[1:]]),
    ("negative", lambda lib, x: lib.negative(x) * x.negative() + x.neg(), [X]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=IDS)
def test_against_torch(name, fn, arrays):
    compare_with_torch(*both(fn), arrays)
    compare_with_torch(*both(fn), arrays, contiguous=False)


SECOND = [c for c in CASES if c[0] in ("unfold", "fmod", "index_add", "nan_to_num", "tan", "atan2", "addmm", "movedim")]


@pytest.mark.parametrize("name,fn,arrays", SECOND, ids=[c[0] for c in SECOND])   # (torch has no cdist's)
def test_second_derivative_against_torch(name, fn, arrays):
    tiny, ref = both(fn)
    compare_second_order_with_torch(lambda *a: tiny(*a) ** 2, lambda *a: ref(*a) ** 2, arrays, rtol=1e-9, atol=1e-11)


def test_index_of_a_one_element_integer_tensor_as_torch():
    names = ["a", "b", "c", "d"]
    for lib in (tinyres, torch):
        k, labels = lib.tensor(3), lib.tensor([2, 0])
        assert names[labels[0]] == "c" and names[k] == "d" and list(range(k)) == [0, 1, 2]
        assert operator.index(lib.tensor([2])) == 2 and operator.index(lib.tensor(True)) == 1
        assert tuple(lib.arange(10)[:k].shape) == (3,)
        for bad in (lib.tensor(2.0), lib.tensor([1, 2])):
            with pytest.raises(TypeError, match="only integer tensors of a single element can be converted to an index"):
                operator.index(bad)
    k = tinyres.tensor(3)
    for made in (tinyres.zeros(k), tinyres.ones(k, 2), tinyres.empty((k, 2)), tinyres.randn(k), tinyres.rand(2, k),
                 tinyres.full((k,), 1.0), tinyres.ones(6).view(k, -1), tinyres.ones(6).reshape(k, 2)):
        assert 3 in made.shape
    assert tinyres.arange(k).dtype == np.int64 and tinyres.arange(k).tolist() == [0, 1, 2]
    assert tinyres.arange(tinyres.tensor(1.5)).tolist() == torch.arange(torch.tensor(1.5)).tolist()
    with pytest.raises(ValueError, match="zeros|shape"):
        tinyres.zeros(tinyres.tensor(2.0))


def test_size_keyword_as_torch():
    for name in ("zeros", "ones", "empty", "rand", "randn"):
        assert getattr(tinyres, name)(size=(2, 3)).shape == tuple(getattr(torch, name)(size=(2, 3)).shape)
        assert getattr(tinyres, name)(size=[4]).shape == (4,)
        with pytest.raises(TypeError, match=f"{name}\\(\\) got multiple values for argument 'size'"):
            getattr(tinyres, name)(2, size=(2,))


def test_small_methods_as_torch():
    x = np.array([[1.7, -2.2, 300.0]])
    for name in ("byte", "short", "char", "half"):
        ours, theirs = getattr(tinyres.tensor(x[:, :2]), name)(), getattr(torch.tensor(x[:, :2]), name)()
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for lib in (tinyres, torch):
        t = lib.tensor(x)
        assert t.ndimension() == 2 and t.element_size() == 8 and t.float().element_size() == 4
        assert lib.ones(2, dtype=lib.bool).element_size() == 1
        assert lib.is_floating_point(t) and not lib.is_floating_point(t.long())
    a, b = np.array([1.0, 0.0, 2.0, 0.0]), np.array([3, 0, 0, 1])
    for name in ("logical_and", "logical_or", "logical_xor"):
        ours = getattr(tinyres, name)(tinyres.tensor(a), tinyres.tensor(b))
        theirs = getattr(torch.tensor(a), name)(torch.tensor(b))
        assert ours.dtype == np.bool_ and ours.tolist() == theirs.tolist()
        assert getattr(tinyres.tensor(a), name)(tinyres.tensor(b)).tolist() == theirs.tolist()
    ints = np.array([-7, 7, -3, 3])
    for divisor in (2, -2):
        assert tinyres.fmod(tinyres.tensor(ints), divisor).tolist() == torch.fmod(torch.tensor(ints), divisor).tolist()
        assert tinyres.tensor(ints).fmod(divisor).dtype == np.int64
    assert tinyres.nan_to_num(tinyres.tensor([1, 2])).tolist() == [1, 2]
    f32 = tinyres.nan_to_num(tinyres.tensor([np.inf, -np.inf], dtype=tinyres.float32))
    assert f32.tolist() == torch.nan_to_num(torch.tensor([np.inf, -np.inf])).tolist()
    assert tinyres.tan(tinyres.tensor([1])).dtype == tinyres.atan2(tinyres.tensor([1]), tinyres.tensor([2])).dtype \
        == np.float32
    edges = (np.array([0.0, 0.0, -0.0, 1.0]), np.array([0.0, -1.0, -1.0, 0.0]))
    np.testing.assert_array_equal(tinyres.atan2(*map(tinyres.tensor, edges)).numpy(),
                                  torch.atan2(*map(torch.tensor, edges)).numpy())
    assert tinyres.tensor(5.0).unfold(0, 1, 1).tolist() == torch.tensor(5.0).unfold(0, 1, 1).tolist()
    assert tinyres.addmm(tinyres.tensor(M[:, :2]), tinyres.tensor(M), tinyres.tensor(M.T[:, :2]), beta=0).shape == (3, 2)


@pytest.mark.parametrize("call,error,message", [
    (lambda lib: lib.masked_select(lib.ones(3), lib.tensor([1, 0, 1])), RuntimeError, "expected BoolTensor for mask"),
    (lambda lib: lib.atan2(lib.ones(3), 2.0), TypeError, r"argument 'other' \(position 2\) must be Tensor, not float"),
    (lambda lib: lib.ones(3).logical_xor(1), TypeError, r"argument 'other' \(position \d\) must be Tensor, not int"),
    (lambda lib: lib.arange(7.0).unfold(0, 8, 1), RuntimeError, "maximum size for tensor at dimension 0 is 7 but size is 8"),
    (lambda lib: lib.arange(7.0).unfold(0, 2, 0), RuntimeError, "step is 0 but must be > 0"),
    (lambda lib: lib.fmod(lib.tensor([3]), 0), RuntimeError, "ZeroDivisionError"),
    (lambda lib: lib.movedim(lib.ones(2, 3), (0, 1), (0,)), RuntimeError, "should contain the same number of dims"),
    (lambda lib: lib.movedim(lib.ones(2, 3), (0, 0), (0, 1)), RuntimeError, r"repeated dim in `source` \(\[0, 0\]\)"),
    (lambda lib: lib.zeros(3, 2).index_add(0, lib.tensor([0.0]), lib.ones(1, 2)), RuntimeError,
     "Expected dtype int32/int64 for index"),
    (lambda lib: lib.zeros(3, 2).index_add(0, lib.tensor([0, 2, 0, 1]), lib.ones(3, 2)), RuntimeError,
     r"Number of indices \(4\) should be equal to source.size\(dim\): \(3\), for dim: 0"),
    (lambda lib: lib.addmm(lib.ones(2, 2), lib.ones(2, 3), lib.ones(2, 2)), RuntimeError,
     r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x2\)"),
    (lambda lib: lib.addmm(lib.ones(2, 2), lib.ones(3), lib.ones(3, 2)), RuntimeError, "mat1 must be a matrix, got 1-D"),
    (lambda lib: lib.cdist(lib.ones(4, 3), lib.ones(5, 2)), RuntimeError,
     "X1 and X2 must have the same number of columns. X1: 3 X2: 2"),
    (lambda lib: lib.cdist(lib.ones(3), lib.ones(5, 3)), RuntimeError, "cdist only supports at least 2D tensors, X1 got: 1D"),
    (lambda lib: lib.ones(2, 3).contiguous(memory_format=lib.channels_last), RuntimeError,
     "required rank 4 tensor to use channels_last format"),
    (lambda lib: lib.zeros_like(lib.ones(2, 3), memory_format=lib.channels_last), RuntimeError,
     "required rank 4 tensor to use channels_last format"),
    (lambda lib: lib.ones(2, 3).contiguous(memory_format=1), TypeError, "must be torch.memory_format, not int"),
    (lambda lib: (lib.ones(2, 3, requires_grad=True) * 2)[0].detach_(), RuntimeError, "Can't detach views in-place"),
    (lambda lib: lib.ones(2, 1, requires_grad=True).unsqueeze_(0), RuntimeError, "leaf"),
], ids=["masked_select mask", "atan2 number", "logical_xor number", "unfold size", "unfold step", "fmod by 0", "movedim lengths", "movedim repeated",
        "index_add index dtype", "index_add count", "addmm shapes", "addmm matrix", "cdist columns", "cdist 1-D",
        "contiguous rank", "zeros_like rank", "memory_format type", "detach_ view", "unsqueeze_ leaf"])
def test_errors_as_torch(call, error, message):
    for lib in (tinyres, torch):
        with pytest.raises(error, match=message):
            call(lib)


def _views(lib, y):
    return [(lambda t: t.unsqueeze_(0)), (lambda t: t.squeeze_()), (lambda t: t.squeeze_(1)),
            (lambda t: t.t_()), (lambda t: t.transpose_(0, 1))]


@pytest.mark.parametrize("which", range(5), ids=["unsqueeze_", "squeeze_", "squeeze_ dim", "t_", "transpose_"])
def test_inplace_view_ops_as_torch(which):
    g = rng.standard_normal((2, 1)) * 0 + np.arange(2.0)[:, None]
    results = []
    for lib in (tinyres, torch):
        op = _views(lib, None)[which]
        leaf = lib.tensor(g, requires_grad=True)
        y = leaf * 2
        assert op(y) is y
        weights = lib.tensor(np.arange(1.0, 1 + y.numel()).reshape(tuple(y.shape)))
        (y * weights).sum().backward()
        with lib.no_grad():
            plain = lib.tensor(g, requires_grad=True)
            op(plain)
        results.append((tuple(y.shape), leaf.grad.numpy(), tuple(plain.shape), plain.is_leaf, y._version))
    assert results[0][0] == results[1][0] and results[0][2:4] == results[1][2:4]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][4] >= 1


def test_inplace_view_of_a_view_reaches_the_base_as_torch():
    grads = []
    for lib in (tinyres, torch):
        leaf = lib.tensor(M[:2, :3].copy(), requires_grad=True)
        v = (leaf * 1)[0]
        v.unsqueeze_(0)
        assert tuple(v.shape) == (1, 3)
        (v * lib.tensor([[1.0, 2.0, 3.0]], dtype=lib.float64)).sum().backward()
        grads.append(leaf.grad.numpy())
    np.testing.assert_array_equal(*grads)


def test_index_add_and_fill_in_place_and_detach_as_torch():
    out = []
    for lib in (tinyres, torch):
        x = lib.zeros(3, 2, dtype=lib.float64)
        x.index_add_(0, lib.tensor(IDX), lib.tensor(np.arange(8.0).reshape(4, 2)), alpha=0.5)
        x.index_fill_(1, lib.tensor([1]), -1.0)
        y = lib.tensor(SPECIAL.copy())
        y.nan_to_num_()
        out.append((x.numpy(), y.numpy()))
        z = lib.ones(2, requires_grad=True) * 3
        assert z.detach_() is z and not z.requires_grad and z.is_leaf and z.grad_fn is None
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12)
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_memory_formats_as_torch():
    assert [repr(f) for f in (tinyres.preserve_format, tinyres.contiguous_format, tinyres.channels_last)] == \
        [repr(f) for f in (torch.preserve_format, torch.contiguous_format, torch.channels_last)]
    assert pickle.loads(pickle.dumps(tinyres.channels_last)) is tinyres.channels_last
    x4 = rng.standard_normal((2, 3, 2, 2))
    t = tinyres.tensor(x4, requires_grad=True)
    for fmt in (tinyres.channels_last, tinyres.contiguous_format, tinyres.preserve_format):
        for made in (t.contiguous(memory_format=fmt), t.clone(memory_format=fmt), t.to(memory_format=fmt)):
            np.testing.assert_array_equal(made.detach().numpy(), x4)
        for like in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
            assert getattr(tinyres, like)(t, memory_format=fmt).shape == x4.shape
        assert tinyres.full_like(t, 2.0, memory_format=fmt).shape == x4.shape
    t.clone(memory_format=tinyres.channels_last).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.ones_like(x4))


@pytest.mark.parametrize("name,args", [("add", (2.0,)), ("add_", (2.0,)), ("sub", (0.5,)), ("sub_", (0.5,)),
                                       ("addcmul", (0.5, "t")), ("addcmul_", (0.5, "t")),
                                       ("addcdiv", (0.5, "t")), ("addcdiv_", (0.5, "t"))])
def test_deprecated_scalar_first_overloads_as_torch(name, args):
    a, b, c = np.ones(3), np.arange(3.0), np.arange(3.0) + 1
    out = []
    for lib in (tinyres, torch):
        operands = [lib.tensor(b)] + ([lib.tensor(c)] if len(args) == 2 else [])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = getattr(lib.tensor(a), name)(args[0], *operands)
        out.append(y.numpy())
        if lib is tinyres:     # (torch warns once per process)
            assert [w.category for w in caught] == [UserWarning]
            assert f"This overload of {name} is deprecated" in str(caught[0].message)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12)
