"""Gaps a review of the porting work found, each checked against torch: manual_seed reseeds
the generator in place, ``empty(memory_format=)`` is checked, ``cdist``/``norm`` with p=0
keep a (zero) gradient, sizes given as integer tensors, integer remainder by 0, and the
Tensor methods that are the same function as the module's."""
import warnings

import numpy as np
import pytest
import torch

import tinyres


def test_manual_seed_reseeds_a_generator_held_from_before():
    held = tinyres.manual_seed(1)
    assert tinyres.manual_seed(7) is held
    first = held.random(3)
    np.testing.assert_array_equal(first, np.random.default_rng(7).random(3))      # the documented stream
    tinyres.manual_seed(7)
    np.testing.assert_array_equal(tinyres.rand(3, dtype=tinyres.float64).numpy(), first)
    assert tinyres.initial_seed() == 7 == held.initial_seed()


FORMATS = ["preserve_format", "contiguous_format", "channels_last", "channels_last_3d"]


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("name", FORMATS)
def test_empty_checks_its_memory_format_as_torch(name, shape):
    try:
        expected = torch.empty(*shape, memory_format=getattr(torch, name)).shape
    except RuntimeError:
        with pytest.raises(RuntimeError, match=r"empty: .*" + name.replace("_format", "")):
            tinyres.empty(*shape, memory_format=getattr(tinyres, name))
    else:
        assert tinyres.empty(*shape, memory_format=getattr(tinyres, name)).shape == tuple(expected)


def test_empty_refuses_a_memory_format_that_is_not_one():
    with pytest.raises(TypeError, match="empty\\(\\): argument 'memory_format' must be torch.memory_format, not int"):
        tinyres.empty(2, memory_format=3)


@pytest.mark.parametrize("op", ["cdist", "norm"])
def test_p_zero_counts_and_has_a_zero_gradient_as_torch(op):
    a, b = np.random.default_rng(0).standard_normal((2, 3, 2))
    a[0, 0] = b[1, 0]                                 # one zero difference
    results = []
    for lib in (tinyres, torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.cdist(x, lib.tensor(b), p=0) if op == "cdist" else lib.norm(x, 0)
        assert y.grad_fn is not None
        (y * 3).sum().backward()
        grad = np.zeros_like(a) if x.grad is None else x.grad.numpy()   # torch's norm leaves None: zero
        results.append((y.detach().numpy(), grad))
    (ours, our_grad), (theirs, their_grad) = results
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_grad, their_grad)
    assert not our_grad.any()


def test_sizes_may_be_integer_tensors_but_not_float_ones():
    x = tinyres.zeros(6)
    assert x.reshape(tinyres.tensor(2), 3).shape == (2, 3) == tinyres.zeros(tinyres.tensor(2), np.int64(3)).shape
    with pytest.raises(ValueError, match=r"shape: expected integers, got \(tensor\(2\.\), 3\)"):
        tinyres.zeros(tinyres.tensor(2.0), 3)
    with pytest.raises(ValueError, match=r"shape: expected integers >= 0, got \(2, -1\)"):
        tinyres.ones(2, -1)


@pytest.mark.parametrize("op", ["remainder", "fmod"])
@pytest.mark.parametrize("divisor", [0, "tensor"])
def test_integer_modulo_by_zero_raises_as_torch(op, divisor):
    for lib in (torch, tinyres):
        b = lib.tensor([2, 0]) if divisor == "tensor" else divisor
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            getattr(lib, op)(lib.tensor([5, -3]), b)


@pytest.mark.parametrize("op", ["remainder", "fmod"])
def test_float_modulo_and_its_gradients_match_torch(op):
    a = np.array([5.5, -3.25, 7.0, -0.5])
    b = np.array([2.0, 2.0, -3.0, 0.75])
    results = []
    for lib in (tinyres, torch):
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        out = getattr(lib, op)(x, y)
        out.backward(lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64))
        results.append([out.detach().numpy(), x.grad.numpy(), y.grad.numpy()])
        assert type(out.grad_fn).__name__.startswith(op.capitalize())
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


def test_tensor_methods_are_the_module_functions():
    for name in ("is_floating_point", "remainder", "fmod", "logical_and"):
        assert getattr(tinyres.Tensor, name) is getattr(tinyres, name), name
    assert tinyres.ones(2).is_floating_point() and not tinyres.ones(2, dtype=tinyres.int64).is_floating_point()


def test_size_is_a_size_and_size_dim_an_int_as_torch():
    x, theirs = tinyres.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert isinstance(x.size(), tinyres.Size) and x.size() == theirs.size() and x.size()[1:].numel() == 12
    assert [x.size(d) for d in (0, -1, 1)] == [theirs.size(d) for d in (0, -1, 1)] and x.size(dim=2) == 4
    for bad, t in ((3, x), (-4, x), (0, tinyres.tensor(1.0))):
        with pytest.raises(IndexError):
            torch.zeros(t.shape).size(bad)
        with pytest.raises(IndexError, match="size: "):
            t.size(bad)


@pytest.mark.parametrize("call", [
    lambda lib, a, b: lib.add(a, 2.0, b),
    lambda lib, a, b: lib.sub(a, 0.5, b),
    lambda lib, a, b: lib.addcmul(a, 0.5, b, b),
    lambda lib, a, b: lib.addcdiv(a, 3.0, a, b),
])
def test_module_functions_take_torch_s_deprecated_number_first_overloads(call):
    a, b = np.array([1.0, -2.0]), np.array([3.0, 4.0])
    with pytest.warns(UserWarning, match="This overload of .* is deprecated"):
        ours = call(tinyres, tinyres.tensor(a), tinyres.tensor(b))
    with warnings.catch_warnings():      # torch warns once per process
        warnings.simplefilter("ignore")
        theirs = call(torch, torch.tensor(a), torch.tensor(b))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_module_clone_takes_and_checks_memory_format():
    x = tinyres.ones(2, 3, 4, 5)
    assert tinyres.clone(x, memory_format=tinyres.channels_last).shape == x.shape
    assert tinyres.clone(x[0], memory_format=tinyres.contiguous_format).shape == (3, 4, 5)
    with pytest.raises(RuntimeError):
        torch.clone(torch.ones(3), memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="clone: required rank 4 tensor to use channels_last format"):
        tinyres.clone(tinyres.ones(3), memory_format=tinyres.channels_last)
