"""The engine itself: graph walking, accumulation, freeing, grad mode, gradcheck."""
import numpy as np
import pytest

import tinyres
from tinyres.autograd import Function, GradcheckError, gradcheck, once_differentiable


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
    with pytest.raises(RuntimeError, match=r"expected a gradient of shape \(2, 3\).*got shape \(3, 2\)"):
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
    assert np.shares_memory(d.array, y.array)


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (gx = gy * x instead of 2 x gy)."""

    def forward(self, x):
        self.x = x
        return x * x

    @once_differentiable
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


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_gradcheck_treats_nan_as_failure():
    x = tinyres.tensor([-1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: t.log(), [x])


# ---------------------------------------------------------------------- the engine checks backward

class WrongShape(Function):
    def forward(self, x):
        self.shape = x.shape
        return x * 2

    @once_differentiable
    def backward(self, gy):
        return gy.reshape(-1, 1)


class WrongDtype(Function):
    def forward(self, x):
        return x * 2

    @once_differentiable
    def backward(self, gy):
        return (gy * 2).astype(np.float64)


class TooFew(Function):
    def forward(self, a, b):
        return a * b

    @once_differentiable
    def backward(self, gy):
        return (gy,)


@pytest.mark.parametrize("op, inputs, message", [
    (WrongShape, 1, r"WrongShape.backward: expected a gradient of shape \(3,\) and dtype float32 for "
                    r"input 0, got shape \(3, 1\)"),
    (WrongDtype, 1, r"WrongDtype.backward: .*dtype float32 for input 0, got .*dtype float64"),
    (TooFew, 2, r"TooFew.backward: expected 2 to 2 gradients \(one per input\), got 1"),
])
def test_engine_rejects_a_backward_with_the_wrong_shape_dtype_or_count(op, inputs, message):
    xs = [tinyres.ones(3, requires_grad=True) for _ in range(inputs)]
    with pytest.raises(RuntimeError, match=message):
        op.apply(*xs).sum().backward()


def test_backward_may_leave_out_trailing_options():
    x = leaf(2, 3)
    tinyres.ops.Sum.apply(x, (1,), False).sum().backward()     # Sum.backward returns one array
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


def test_backward_through_a_freed_shared_subgraph_raises():
    x = leaf(3)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"second time \(node Exp\).*retain_graph=True"):
        (h * 2).sum().backward()


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="backward: the tensor does not require grad"):
        tinyres.ones(2).sum().backward()


def test_backward_accepts_array_and_list_gradients_and_leaves():
    x = leaf(2)
    (x * 3).backward([1.0, 2.0])
    (x * 1).backward(np.array([1.0, 1.0]))
    x.backward(tinyres.tensor([1.0, 1.0], dtype="float64"))       # a leaf: accumulates directly
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 8.0])
    assert x.grad.dtype == x.dtype and x.grad.is_leaf and not x.grad.requires_grad


def test_gradients_keep_the_leaf_dtype():
    x = tinyres.randn(3, requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == tinyres.float32


# ---------------------------------------------------------------------- grad mode

def test_no_grad_decorator_is_reentrant():
    @tinyres.no_grad()
    def countdown(n):
        assert not tinyres.is_grad_enabled()
        return 0 if n == 0 else countdown(n - 1)
    countdown(3)
    assert tinyres.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf(2)
    with tinyres.no_grad():
        with tinyres.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert tinyres.is_grad_enabled()


def test_set_grad_enabled_as_call_and_as_context():
    try:
        tinyres.set_grad_enabled(False)           # as torch: takes effect at once
        assert not tinyres.is_grad_enabled()
    finally:
        tinyres.set_grad_enabled(True)
    with tinyres.set_grad_enabled(False):
        assert not tinyres.is_grad_enabled()
    assert tinyres.is_grad_enabled()


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="gradcheck: no input requires grad"):
        gradcheck(lambda t: t * 2, [tinyres.ones(2, dtype="float64")])


def test_gradcheck_uses_a_random_upstream_gradient():
    """Centring makes sum(y) constant, so under an all-ones upstream gradient the true input
    gradient is exactly 0 -- and so is that of a backward with a wrong scale.  Only a random
    upstream gradient tells them apart."""
    class CenterWrongScale(Function):
        def forward(self, x):
            return x - x.mean()

        @once_differentiable
        def backward(self, gy):
            return 2 * (gy - gy.mean())       # right: gy - mean(gy)

    x = leaf(5)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: CenterWrongScale.apply(t), [x])
    x.grad = None
    CenterWrongScale.apply(x).backward(tinyres.ones(5, dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), np.zeros(5), atol=1e-15)   # all ones: no alarm


# ---------------------------------------------------------------------- detect_anomaly

def test_detect_anomaly_names_the_op_and_the_line_whose_forward_made_nan():
    from tinyres.autograd import AnomalyError, detect_anomaly
    x = tinyres.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(AnomalyError, match=r"Log: its forward produced NaN or Inf .*test_autograd.py:\d+: .*x.log\(\)"):
        with detect_anomaly():
            x.log()
    x.log()                                    # outside the context: nan, no error


def test_detect_anomaly_names_the_op_whose_backward_made_inf():
    from tinyres.autograd import AnomalyError, detect_anomaly
    x = tinyres.tensor([0.0, 4.0], requires_grad=True)

    @detect_anomaly()
    def run():
        root = x.sqrt()                        # finite forward, infinite gradient at 0
        root.sum().backward()
    with pytest.raises(AnomalyError, match=r"Sqrt.backward returned NaN or Inf .*called at .*root = x.sqrt\(\)"):
        run()


def test_detect_anomaly_lets_nan_that_was_already_there_through():
    from tinyres.autograd import detect_anomaly
    x = tinyres.tensor([np.nan, 1.0], requires_grad=True)
    with detect_anomaly():
        (x * 2).sum().backward()               # the input had the nan: no op made it
    assert np.isnan(x.grad.numpy()[0]) or x.grad.numpy()[0] == 2


# ---------------------------------------------------------------------- the engine's fields apart from the op's

class SavesNaturalNames(Function):
    """y = 2 x, saving what the engine also tracks under the op's own plain names."""

    def forward(self, x):
        self.device, self.input_meta, self.needs = "the op's own device note", "op data", x.shape
        return 2 * x

    @once_differentiable
    def backward(self, gy):
        assert self.device == "the op's own device note" and self.input_meta == "op data"
        return 2 * gy


def test_an_op_may_save_any_plain_name_without_touching_the_engine():
    x = tinyres.randn(3, requires_grad=True)
    y = SavesNaturalNames.apply(x)
    assert y.grad_fn.next == [x] and y.grad_fn.output_meta == ((3,), x.dtype)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.numpy(), rtol=1e-6)
    assert y.grad_fn.freed


def test_an_op_that_picks_a_public_engine_name_fails_at_once():
    class Clobbers(Function):
        def forward(self, x):
            self.next = "oops"
            return x

    with pytest.raises(AttributeError):
        Clobbers.apply(tinyres.randn(2, requires_grad=True))


def test_a_copy_across_dtypes_sends_the_gradient_back_as_it_came():
    x = tinyres.randn(2, 3, dtype=tinyres.float64, requires_grad=True)
    x.to(dtype=tinyres.float32).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.device == "cpu"


def test_queue_callback_runs_once_after_every_gradient_is_in():
    """An op's backward may queue work for the end of the pass (what DDP averages with):
    by then gradients of ops the engine reaches later are accumulated too; queued twice, run once."""
    from tinyres.autograd import Function, once_differentiable, queue_callback
    seen = []

    class Mark(Function):
        def forward(self, x, w):
            self.w = w
            return x.copy()

        @once_differentiable
        def backward(self, gy):
            queue_callback(report)
            queue_callback(report)
            return gy, None

    w = tinyres.tensor([2.0], requires_grad=True)

    def report():
        seen.append(w.grad.tolist())
    x = tinyres.tensor([3.0])
    (Mark.apply(x, w) * w.exp()).sum().backward()      # exp(w)'s node is reached after Mark's
    assert len(seen) == 1 and seen[0] == pytest.approx([3.0 * float(np.exp(2.0))], rel=1e-6)
    with pytest.raises(RuntimeError, match="only an op's backward, during a backward pass"):
        queue_callback(report)


# ---------------------------------------------------------------------- grad, create_graph (issue 21)

from helpers import torch as _torch, needs_torch as _needs_torch  # noqa: E402


def test_grad_returns_gradients_and_touches_no_dot_grad():
    x, w = leaf(3, 2), leaf(2)
    y = ((x @ w) ** 2).sum()
    gx, gw = tinyres.autograd.grad(y, [x, w])
    assert x.grad is None and w.grad is None
    y2 = ((x @ w) ** 2).sum()
    y2.backward()
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy())
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy())
    assert not gx.requires_grad


def test_grad_of_a_non_leaf_input():
    x = leaf(4)
    h = x * 3
    y = (h ** 2).sum()
    gh, = tinyres.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


@pytest.mark.parametrize("order", [2, 3])
def test_higher_order_derivatives_of_a_polynomial(order):
    x = leaf(5)
    g = (x ** 4).sum()
    for _ in range(order):
        g, = tinyres.autograd.grad(g.sum(), x, create_graph=True)
    want = {2: 12 * x.numpy() ** 2, 3: 24 * x.numpy()}[order]
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12)


def test_backward_create_graph_gives_a_grad_with_a_graph():
    x = leaf(3)
    (x.exp() * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    g = x.grad
    x.grad = None
    g.sum().backward()                      # d/dx of (e^x + x e^x) = 2e^x + x e^x
    np.testing.assert_allclose(x.grad.numpy(), (2 + x.numpy()) * np.exp(x.numpy()), rtol=1e-12)


def test_without_create_graph_the_backward_builds_nothing():
    x = leaf(3)
    (x * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


@pytest.mark.parametrize("call, message", [
    (lambda x, y: tinyres.autograd.grad(y, [x, leaf(2)]),
     r"grad: one of the differentiated Tensors \(input 1, shape \(2,\)\) appears to not have been used in the graph"),
    (lambda x, y: tinyres.autograd.grad(y * tinyres.ones(3, dtype="float64"), x), r"grad can be implicitly created only for scalar outputs"),
    (lambda x, y: tinyres.autograd.grad(y, tinyres.ones(3)), r"does not require grad"),
    (lambda x, y: tinyres.autograd.grad(y, x, grad_outputs=[None, None]), r"grad_outputs should have the length of outputs"),
    (lambda x, y: tinyres.autograd.grad(y.detach(), x), r"element 0 of tensors does not require grad"),
])
def test_grad_bad_input_gets_torchs_errors(call, message):
    x = leaf(3)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=message):
        call(x, y)


def test_grad_allow_unused_gives_none():
    x, z = leaf(3), leaf(2)
    gx, gz = tinyres.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx is not None


def test_grad_on_a_freed_graph_raises():
    x = leaf(3)
    y = (x.exp()).sum()
    tinyres.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        tinyres.autograd.grad(y, x)


def test_once_differentiable_refuses_create_graph():
    class Twice(Function):
        def forward(self, x):
            return 2 * x

        @once_differentiable
        def backward(self, gy):
            return 2 * gy
    x = leaf(3)
    y = Twice.apply(x).sum()
    assert tinyres.autograd.grad(y, x, retain_graph=True)[0].tolist() == [2.0] * 3
    with pytest.raises(RuntimeError, match="Twice.backward is once_differentiable"):
        tinyres.autograd.grad(y, x, create_graph=True)


@_needs_torch
def test_gradient_penalty_matches_torch():
    """|d f / d x|^2 as a loss (WGAN-GP's penalty), differentiated for the weights."""
    rng = np.random.default_rng(0)
    xs, ws = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    grads = []
    for lib in (tinyres, _torch):
        x, w = lib.tensor(xs, requires_grad=True), lib.tensor(ws, requires_grad=True)
        out = ((x @ w).exp() * (x @ w)).sum()
        gx, = lib.autograd.grad(out, x, create_graph=True)
        penalty = (gx * gx).sum()
        penalty.backward()
        grads.append((w.grad.numpy() if lib is tinyres else w.grad.detach().numpy()))
    np.testing.assert_allclose(*grads, rtol=1e-12)


# ---------------------------------------------------------------------- tensor hooks, retain_grad

def test_register_hook_sees_and_replaces_a_gradient():
    x = leaf(3)
    h = x * 2
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.numpy()) or g * 10)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], np.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), 20 * np.ones(3))
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0] * 3


def test_hooks_on_a_leaf_run_before_accumulation():
    x = leaf(2)
    x.register_hook(lambda g: g * 0.5)
    (x * 4).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_retain_grad():
    x = leaf(3)
    h = x.exp()
    assert not h.retains_grad
    h.retain_grad()
    assert h.retains_grad
    (h * 3).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 3 * np.ones(3))


def test_hook_errors():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        tinyres.ones(2).register_hook(lambda g: g)
    x = leaf(2)
    x.register_hook(lambda g: tinyres.ones(3))
    with pytest.raises(RuntimeError, match=r"hook: expected a Tensor of shape \(2,\)"):
        (x * 2).sum().backward()


@_needs_torch
def test_hooks_match_torch():
    rng = np.random.default_rng(1)
    data = rng.standard_normal(4)
    out = []
    for lib in (tinyres, _torch):
        x = lib.tensor(data, requires_grad=True)
        h = x.exp()
        h.register_hook(lambda g: g * 3)
        h.retain_grad()
        (h ** 2).sum().backward()
        out.append((x.grad.numpy(), h.grad.numpy()) if lib is tinyres else
                   (x.grad.numpy(), h.grad.detach().numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12)
