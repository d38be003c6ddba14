"""``Tensor`` and the factories: dtypes like torch, attributes, conversions, copies,
in-place forms, printing, seeding."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, torch  # torch: None without PyTorch

import tinyres


def torch_dtype_name(t):
    return str(t.dtype).replace("torch.", "")


# ---------------------------------------------------------------------- factories

FACTORIES = {
    # each written once, run with lib = tinyres and lib = torch
    "zeros": lambda m: m.zeros(2, 3),
    "zeros_tuple": lambda m: m.zeros((2, 1)),
    "ones": lambda m: m.ones(3),
    "empty": lambda m: m.empty(2, 0),
    "full_float": lambda m: m.full((2, 2), 1.5),
    "full_int": lambda m: m.full((2,), 7),
    "full_bool": lambda m: m.full((2,), True),
    "arange_int": lambda m: m.arange(5),
    "arange_float": lambda m: m.arange(0, 1, 0.25),
    "arange_start_step": lambda m: m.arange(1, 10, 3),
    "tensor_floats": lambda m: m.tensor([[1.0, 2.0]]),
    "tensor_ints": lambda m: m.tensor([1, 2, 3]),
    "tensor_bools": lambda m: m.tensor([True, False]),
    "tensor_scalar": lambda m: m.tensor(2.5),
    "tensor_numpy_float64": lambda m: m.tensor(np.array([1.0, 2.0])),
    "tensor_numpy_int32": lambda m: m.tensor(np.array([1, 2], dtype=np.int32)),
    "tensor_numpy_scalar": lambda m: m.tensor(np.float64(1.5)),
    "zeros_float64": lambda m: m.zeros(2, dtype=m.float64),
    "ones_int64": lambda m: m.ones(2, dtype=m.int64),
    "zeros_like": lambda m: m.zeros_like(m.tensor([1, 2])),
    "ones_like": lambda m: m.ones_like(m.ones(2, 1, dtype=m.float64)),
    "full_like": lambda m: m.full_like(m.zeros(3), 2),
    "tensor_dtype": lambda m: m.tensor([1, 2], dtype=m.float32),
}


@needs_torch
@pytest.mark.parametrize("make", FACTORIES.values(), ids=FACTORIES.keys())
def test_factories_match_torch(make):
    t, p = make(tinyres), make(torch)
    assert t.shape == tuple(p.shape)
    assert t.dtype == np.dtype(torch_dtype_name(p))
    np.testing.assert_array_equal(t.numpy(), p.numpy())
    assert t.device == "cpu" and not t.requires_grad


RANDOM = {
    "rand": (lambda m: m.rand(2, 3), "float32"),
    "randn": (lambda m: m.randn((4,), dtype=m.float64), "float64"),
    "randint": (lambda m: m.randint(0, 10, (3, 2)), "int64"),
    "randint_high_only": (lambda m: m.randint(5, (6,)), "int64"),
    "randn_like": (lambda m: m.randn_like(m.zeros(2, dtype=m.float64)), "float64"),
    "rand_like": (lambda m: m.rand_like(m.zeros(3)), "float32"),
}


@needs_torch
@pytest.mark.parametrize("make, dtype", RANDOM.values(), ids=RANDOM.keys())
def test_random_factories_match_torch_shapes_and_dtypes(make, dtype):
    t, p = make(tinyres), make(torch)
    assert t.shape == tuple(p.shape) and t.dtype == dtype == torch_dtype_name(p)


def test_random_values_are_in_range():
    assert ((tinyres.rand(200).numpy() >= 0) & (tinyres.rand(200).numpy() < 1)).all()
    ints = tinyres.randint(3, 6, (200,)).numpy()
    assert ints.min() == 3 and ints.max() == 5


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64"), tinyres.float64, float])
def test_every_dtype_spelling_is_accepted(dtype):
    for t in (tinyres.zeros(2, dtype=dtype), tinyres.tensor([1, 2], dtype=dtype),
              tinyres.randn(2, dtype=dtype), tinyres.ones(2).to(dtype), tinyres.arange(3, dtype=dtype)):
        assert t.dtype == tinyres.float64


def test_dtype_aliases_are_numpy_dtypes():
    assert tinyres.float32 == np.float32 and tinyres.int64 == np.dtype("int64")
    assert tinyres.get_default_dtype() == tinyres.float32


def test_set_default_dtype_float64():
    try:
        tinyres.set_default_dtype("float64")
        assert tinyres.tensor([1.0]).dtype == tinyres.float64
        assert tinyres.randn(2).dtype == tinyres.float64
    finally:
        tinyres.set_default_dtype(tinyres.float32)
    with pytest.raises(TypeError, match="set_default_dtype: expected a floating dtype, got int64"):
        tinyres.set_default_dtype("int64")


@pytest.mark.parametrize("call, error, message", [
    (lambda: tinyres.zeros(2, dtype="float99"), TypeError, r"dtype: expected a dtype .*got 'float99'"),
    (lambda: tinyres.zeros(2, -1), ValueError, r"shape: expected integers >= 0, got \(2, -1\)"),
    (lambda: tinyres.ones(2.5), ValueError, r"shape: .*got \(2.5,\)"),
    (lambda: tinyres.randint(5, 5, (2,)), ValueError, r"randint: expected low < high, got low=5, high=5"),
    (lambda: tinyres.arange(0, 3, 0), ValueError, r"arange: step must be non-zero"),
    (lambda: tinyres.tensor([1, 2], requires_grad=True), RuntimeError, r"floating point.*int64"),
    (lambda: tinyres.zeros(2, dtype="int64").requires_grad_(), RuntimeError, r"requires_grad: .*int64"),
    (lambda: tinyres.tensor([1.0, 2.0]).item(), RuntimeError, r"item: a Tensor with 2 elements .*shape \(2,\)"),
    (lambda: bool(tinyres.tensor([1.0, 2.0])), RuntimeError, r"bool: .*shape \(2,\)"),
    (lambda: len(tinyres.tensor(1.0)), TypeError, r"0-d"),
])
def test_bad_arguments_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------- attributes

def test_attributes():
    x = tinyres.randn(2, 3, 1, requires_grad=True)
    assert isinstance(x.array, np.ndarray) and x.grad is None
    assert x.shape == (2, 3, 1) == x.size() and x.size(1) == 3 and x.size(-1) == 1
    assert x.ndim == 3 == x.dim() and x.numel() == 6 and len(x) == 2
    assert x.dtype == tinyres.float32 and x.device == "cpu" and str(x.device) == "cpu"
    assert x.requires_grad and x.is_leaf
    y = x * 2
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None


def test_requires_grad_and_detach():
    x = tinyres.zeros(2)
    assert x.requires_grad_() is x and x.requires_grad
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad = False


def test_item_and_python_conversions():
    x = tinyres.tensor([[2.5]])
    assert x.item() == 2.5 and type(x.item()) is float
    assert float(x) == 2.5 and int(tinyres.tensor(3)) == 3 and bool(tinyres.tensor([1.0]))
    assert type(tinyres.tensor(3).item()) is int
    assert tinyres.tensor([[1, 2]]).tolist() == [[1, 2]]


def test_numpy_returns_a_host_copy():
    x = tinyres.tensor([1.0, 2.0])
    a = x.numpy()
    assert type(a) is np.ndarray and a.dtype == np.float32
    a[0] = 99.0
    assert x.numpy()[0] == 1.0


def test_tensor_copies_its_data_and_Tensor_wraps_it():
    a = np.array([1.0, 2.0])
    copied, wrapped = tinyres.tensor(a), tinyres.Tensor(a)
    a[0] = 5.0
    assert copied.numpy()[0] == 1.0 and wrapped.numpy()[0] == 5.0


# ---------------------------------------------------------------------- to / cpu

def test_to_dtype_in_every_form():
    x = tinyres.tensor([1.5, -2.0])
    assert x.to("float64").dtype == tinyres.float64
    assert x.to(dtype=np.float64).dtype == tinyres.float64
    assert x.to("cpu", tinyres.float64).dtype == tinyres.float64
    assert x.to(tinyres.zeros(1, dtype="int64")).dtype == tinyres.int64
    assert x.double().dtype == tinyres.float64 and x.long().dtype == tinyres.int64
    np.testing.assert_array_equal(x.long().numpy(), [1, -2])        # truncation, as torch


def test_to_the_same_device_and_dtype_returns_self():
    x = tinyres.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(tinyres.float32) is x


def test_to_integer_cuts_the_graph():
    x = tinyres.ones(2, requires_grad=True)
    assert not x.to("int64").requires_grad


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0", "cuda:"])
def test_to_an_unknown_device_names_it(spec):
    with pytest.raises(ValueError, match=f"device: expected 'cpu', 'cuda' or 'cuda:N', got '{spec}'"):
        tinyres.ones(2).to(spec)


# ---------------------------------------------------------------------- in-place forms

def test_inplace_operators_write_into_the_same_array():
    x = tinyres.tensor([1.0, 2.0, 4.0])
    data = x.array
    x += 1
    x -= tinyres.tensor([1.0, 1.0, 1.0])
    x *= 3
    x /= 2
    assert x.array is data
    np.testing.assert_allclose(x.numpy(), [1.5, 3.0, 6.0])
    x.add_(tinyres.ones(3), alpha=2).sub_(1).mul_(2).div_(4)
    np.testing.assert_allclose(x.numpy(), [1.25, 2.0, 3.5])


def test_inplace_on_a_leaf_that_requires_grad_raises_unless_no_grad():
    w = tinyres.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad is being used in an in-place operation"):
        w += 1
    with pytest.raises(RuntimeError, match=r"copy_: a leaf tensor that requires grad is being used in an in-place operation"):
        w.copy_(tinyres.zeros(3))
    with pytest.raises(RuntimeError, match=r"__setitem__: a leaf tensor that requires grad is being used in an in-place operation"):
        w[0] = 2.0
    with tinyres.no_grad():       # the optimizer's update
        w -= 0.5
        w[0] = 2.0
    np.testing.assert_allclose(w.numpy(), [2.0, 0.5, 0.5])
    assert w.requires_grad and w.is_leaf


def test_inplace_shape_and_dtype_errors():
    with pytest.raises(RuntimeError, match=r"add_: expected a result of shape \(3,\).*got \(2, 3\)"):    # torch's type
        x = tinyres.zeros(3)
        x += tinyres.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"add_: .*int64 tensor, got float32"):
        n = tinyres.tensor([1, 2])
        n += 1.5
    n = tinyres.tensor([1, 2])
    n *= 3
    assert n.dtype == tinyres.int64 and n.tolist() == [3, 6]


def test_copy_fill_zero_and_setitem():
    x = tinyres.tensor([[np.inf, 1.0], [2.0, np.nan]])
    x.copy_(tinyres.tensor([5.0, 6.0]))              # broadcast, and inf/nan do not leak
    np.testing.assert_array_equal(x.numpy(), [[5.0, 6.0], [5.0, 6.0]])
    x.fill_(2.5)
    np.testing.assert_array_equal(x.numpy(), np.full((2, 2), 2.5))
    x[0, 1] = 1.0
    x[tinyres.tensor([1])] = tinyres.tensor([7.0, 8.0])
    np.testing.assert_array_equal(x.numpy(), [[2.5, 1.0], [7.0, 8.0]])
    assert x.zero_() is x and not x.numpy().any()
    with pytest.raises(RuntimeError, match=r"copy_: .*\(2, 2\)"):
        x.copy_(tinyres.zeros(3))


# ---------------------------------------------------------------------- printing, seeding

def test_repr():
    assert repr(tinyres.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tinyres.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tinyres.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=float64)"
    assert repr(tinyres.ones(1, requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(tinyres.ones(1, requires_grad=True) * 2) == "tensor([2.], grad_fn=<MulBackward>)"


def test_manual_seed_makes_every_random_factory_deterministic():
    def draw():
        return [tinyres.rand(3).numpy(), tinyres.randn(2, 2).numpy(), tinyres.randint(0, 100, (4,)).numpy(),
                tinyres.randn_like(tinyres.zeros(2)).numpy()]
    tinyres.manual_seed(123)
    first = draw()
    tinyres.manual_seed(123)
    again = draw()
    tinyres.manual_seed(124)
    other = draw()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# ---------------------------------------------------------------------- in place inside a graph (issue 21)

INPLACE = [
    ("residual +=", lambda m, x, s: _add_in_place((x * 2) * s, s * 3)),
    ("mul_ by a tensor", lambda m, x, s: (x * 1).mul_(s.sum()) * x),
    ("x -= then *= scalar", lambda m, x, s: _chain((x ** 2).sum(1), s)),
    ("clamp_", lambda m, x, s: (x * s.sum()).clamp_(-0.5, 0.5) * x),
    ("setitem with a tensor", lambda m, x, s: _setitem(x * 2, s)),
    ("copy_ fill_ zero_", lambda m, x, s: _copies(x * 1, s)),
    ("div_", lambda m, x, s: (x + 3).div_(s.sum() + 5) ** 2),
]


def _add_in_place(out, shortcut):
    out += shortcut              # the idiom of most PyTorch CIFAR codebases
    return out.sum(0)


def _chain(h, s):
    h -= s.sum()
    h *= 3
    return h


def _setitem(h, s):
    h[0, 1:] = s[:2] ** 2
    h[1] = 0.5
    return h * h


def _copies(h, s):
    g = h + 1                    # (h * h would save h, which copy_ then changes: torch refuses too)
    h.copy_(s[:3])               # broadcast over rows
    k = (h * 2)
    k.fill_(1.5)
    return g + h * 4 + k


@needs_torch
@pytest.mark.parametrize("name, fn", INPLACE, ids=[c[0] for c in INPLACE])
def test_in_place_inside_a_graph_matches_torch(name, fn):
    x, s = randn(2, 3, seed=0), randn(3, seed=1)
    compare_with_torch(lambda a, b: fn(tinyres, a, b), lambda a, b: fn(torch, a, b), [x, s])


def test_in_place_bumps_the_version_and_views_share_it():
    x = tinyres.ones(4)
    v = x.reshape(2, 2)
    v += 1
    x[0] = 5.0
    assert x._version == v._version == 2
    assert x.tolist() == [5.0, 2.0, 2.0, 2.0]
    assert x.detach()._version == 2


def test_a_saved_tensor_changed_in_place_raises_at_backward_naming_the_op_and_versions():
    x = tinyres.randn(3, requires_grad=True)
    y = x.exp()                  # saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"Exp: one of the tensors needed for gradient computation has been "
                                           r"modified by an inplace operation: .* is at version 1; expected version 0"):
        y.sum().backward()
    h = x * 1
    z = h * h                    # Mul saves h twice
    h.mul_(2)
    with pytest.raises(RuntimeError, match=r"Mul: .*modified by an inplace operation"):
        z.sum().backward()


@needs_torch
def test_torch_raises_too_where_a_saved_tensor_was_changed():
    x = torch.randn(3, requires_grad=True)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def _view_cases(T):
    """In-place ops on views of tensors in a graph (torch's CopySlices), in either library."""
    x = T(np.arange(6.0).reshape(2, 3))
    y = x * 2
    v = y[0]
    v.mul_(3)
    yield (y * y).sum(), x
    x = T(np.arange(6.0).reshape(2, 3))
    y = x * 2
    y[0] += x[1]                         # the idiom of many ported models
    yield (y * y).sum(), x
    x = T(np.arange(12.0).reshape(3, 4))
    y = x * 2
    v = y[:, 1::2]                       # a strided view, then a view of the view
    v[1] = 0.5
    w = v.T
    w.add_(1.0)
    w.mul_(x[:2, :3])
    yield (y * x).sum() + (w ** 2).sum(), x
    x = T(np.arange(6.0).reshape(2, 3))
    y = x * 3 - 1
    r = y.reshape(3, 2)                  # a reshape view
    r[1].mul_(2)
    r[2].clamp_(-0.5, 0.5)
    yield (y ** 3).sum(), x


@needs_torch
def test_in_place_on_views_of_tensors_in_a_graph_as_torch():
    ours = _view_cases(lambda a: tinyres.tensor(a, requires_grad=True))
    theirs = _view_cases(lambda a: torch.tensor(a, requires_grad=True))
    for (loss_o, x_o), (loss_t, x_t) in zip(ours, theirs):
        loss_o.backward()
        loss_t.backward()
        assert abs(loss_o.item() - loss_t.item()) < 1e-12
        np.testing.assert_allclose(x_o.grad.array, x_t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_in_place_on_views_keeps_torchs_refusals():
    x = tinyres.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 1
    r = y.reshape(3, 2)
    r[1].mul_(r[0])                      # r[0] was saved, and its base changed: torch refuses too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (y ** 2).sum().backward()
    with pytest.raises(RuntimeError, match="a view of a leaf tensor that requires grad"):
        x[0].add_(1)
    e = (x * 1)[:1].expand(4, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.add_(1)


def test_in_place_under_no_grad_leaves_the_history_alone():
    x = tinyres.randn(3, requires_grad=True)
    h = x * 2
    with tinyres.no_grad():
        h += 1
    assert h.grad_fn.name == "Mul"


def test_assigning_a_tensor_to_data_takes_its_array_as_torch():
    """``p.data = t`` (old PyTorch code's way to set weights): p takes t's array, so the
    optimizer keeps working on a plain array, never a Tensor inside a Tensor."""
    p = tinyres.nn.Parameter(tinyres.zeros(3, dtype=tinyres.float64))
    new = tinyres.ones(3, dtype=tinyres.float64)
    p.data = new
    assert type(p.array) is np.ndarray and p.array is new.array and p.requires_grad
    (p * p).sum().backward()
    tinyres.optim.SGD([p], lr=0.25).step()
    np.testing.assert_array_equal(p.numpy(), [0.5, 0.5, 0.5])
    with pytest.raises(TypeError, match="data: expected a Tensor"):
        p.data = [1.0, 2.0, 3.0]


@needs_torch
def test_data_is_torchs_a_tensor_on_the_same_memory_outside_the_graph():
    """Old PyTorch code's idioms: ``m.weight.data.normal_()``, ``p.grad.data.zero_()``,
    ``torch.max(outputs.data, 1)``; writes through ``.data`` change the tensor but are not
    seen by autograd (no version bump), as in torch."""
    def case(lib):
        lin = lib.nn.Linear(3, 2).double()
        lin.weight.data.fill_(0.5)
        lin.bias.data.zero_()
        x = lib.tensor([[1.0, 2.0, 3.0]], dtype=lib.float64)
        out = lin(x)
        d = out.data
        facts = [d.requires_grad, d.grad_fn is None, d.is_leaf, type(lin.weight.data).__name__]
        _, predicted = lib.max(out.data, 1)
        out.sum().backward()
        lin.weight.grad.data.mul_(2)
        version = lin.weight._version
        lin.weight.data.add_(1)                  # not seen by autograd: the version stays
        facts += [version == lin.weight._version, predicted.tolist(), lin.weight.grad.tolist(),
                  lin.weight.tolist(), out.tolist()]
        return facts
    ours, theirs = case(tinyres), case(torch)
    assert ours == theirs, (ours, theirs)


# ---------------------------------------------------------------------- generator=, set_printoptions

@needs_torch
def test_random_factories_take_a_generator_as_torch():
    for lib in (tinyres, torch):
        for make in (lambda g: lib.rand(3, generator=g), lambda g: lib.randn(2, 2, generator=g),
                     lambda g: lib.randint(0, 100, (4,), generator=g), lambda g: lib.randint(9, (4,), generator=g),
                     lambda g: lib.randperm(6, generator=g)):
            first, again = (make(lib.Generator().manual_seed(5)) for _ in range(2))
            np.testing.assert_array_equal(first.numpy(), again.numpy())
    tinyres.manual_seed(1)
    before = tinyres.rand(3).numpy()
    tinyres.manual_seed(1)
    tinyres.randn(4, generator=tinyres.Generator().manual_seed(2))      # leaves the default generator alone
    np.testing.assert_array_equal(tinyres.rand(3).numpy(), before)


def test_set_printoptions_changes_repr():
    x = tinyres.tensor([[1.1234567, 2e-05], [3.0, 4.0]], dtype=tinyres.float64)
    try:
        tinyres.set_printoptions(precision=2)
        assert "1.12e+00" in repr(x) and "1.1234" not in repr(x)
        tinyres.set_printoptions(sci_mode=False)
        assert "1.12" in repr(x) and "e+" not in repr(x)
        tinyres.set_printoptions(sci_mode=True)
        assert "3.00e+00" in repr(x)
        tinyres.set_printoptions(profile="default", threshold=5, edgeitems=1)
        assert repr(tinyres.arange(10)) == "tensor([0, ..., 9])"
        tinyres.set_printoptions(profile="default", linewidth=20)
        assert len(repr(tinyres.arange(10)).splitlines()) > 1
        with pytest.raises(ValueError, match="set_printoptions: expected profile"):
            tinyres.set_printoptions(profile="long")
    finally:
        tinyres.set_printoptions(profile="default")
    assert repr(tinyres.tensor([1.0, 2.0])) == "tensor([1., 2.])"
