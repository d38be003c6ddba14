"""The engine itself: graph walking, accumulation, freeing, grad mode, gradcheck."""
import numpy as np
import pytest

import tinyres
from tinyres.autograd import Function, GradcheckError, gradcheck


def leaf(*shape, seed=0):
    return tinyres.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_diamond_graph_adds_gradients_that_meet():
    x = leaf(3)
    y = x * 2
    z = (y * y + y).sum()        # dz/dx = (2y + 1) * 2
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), (2 * y.numpy() + 1) * 2)


def test_backward_accumulates_into_leaves_across_calls():
    x = leaf(4)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 6.0))


def test_deep_chain_has_no_recursion_limit():
    x = leaf(2)
    y = x
    for _ in range(5000):
        y = y + 1e-3 * y
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(2, 1.001 ** 5000), rtol=1e-9)


def test_second_backward_through_freed_graph_raises():
    x = leaf(3)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(3)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp(x.numpy()))


def test_non_scalar_backward_needs_a_gradient():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        (x * 2).backward()
    (x * 2).backward(tinyres.ones(2, 3, dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_gradient_of_wrong_shape_raises():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match="gradient has shape"):
        (x * 2).backward(tinyres.ones(3, 2))


def test_no_grad_as_context_and_decorator():
    x = leaf(3)
    with tinyres.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @tinyres.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert tinyres.is_grad_enabled()


def test_graph_keeps_no_intermediate_tensors_alive():
    import weakref
    x = leaf(3)
    h = x * 2
    ref = weakref.ref(h)
    y = (h + 1).sum()     # Add saves only shapes, so h's array is not needed for backward
    del h
    assert ref() is None
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_requires_grad_on_integer_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        tinyres.tensor([1, 2, 3], requires_grad=True)


def test_leaf_and_detach():
    x = leaf(3)
    y = x * 2
    assert x.is_leaf and not y.is_leaf
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    assert np.shares_memory(d.data, y.data)


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (gx = gy * x instead of 2 x gy)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x


def test_gradcheck_catches_a_wrong_backward():
    x = leaf(3, 2)
    with pytest.raises(GradcheckError, match=r"input 0 .*numeric .* analytic"):
        gradcheck(lambda t: WrongSquare.apply(t), [x])
    assert gradcheck(lambda t: t * t, [x])


def test_gradcheck_samples_and_rejects_float32():
    x = leaf(50, 40)
    assert gradcheck(lambda t: (t * t).sum(1), [x], nsamples=30)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * t, [x.float().detach().requires_grad_()])


def test_gradcheck_treats_nan_as_failure():
    x = tinyres.tensor([-1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: t.log(), [x])
