"""Custom Functions in torch's form (``@staticmethod forward(ctx, ...)``, ``ctx.save_for_backward``,
``MyFn.apply``), as ported research code writes them: each Function is written once, for a
library ``lib`` (tinyres or torch), and both runs are compared in float64 -- values, gradients,
second derivatives, and the errors (type and torch's message)."""
import re

import numpy as np
import pytest

import tinyres
from helpers import compare_second_order_with_torch, compare_with_torch, gradcheck, gradgradcheck, needs_torch, torch
from tinyres.core import engine

pytestmark = needs_torch


def leaf(lib, values):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


def values(t):
    return None if t is None else t.detach().numpy()


def raised(run):
    """The exception ``run()`` raises (the test fails if it raises none)."""
    with pytest.raises(Exception) as info:
        run()
    return info.value


def assert_raises_as_torch(case):
    """``case(lib)`` raises in both libraries: the same type, and torch's message inside tinyres's."""
    mine, theirs = raised(lambda: case(tinyres)), raised(lambda: case(torch))
    assert type(theirs) in type(mine).__mro__, (type(mine), type(theirs))
    assert re.search(re.escape(str(theirs).split(". Hint")[0]), str(mine), re.I), (str(mine), str(theirs))


X = np.array([[0.5, -1.25, 2.0], [1.5, 0.75, -0.3]])


def scale_function(lib):
    """The brief's example: a non-Tensor argument, a saved input, an attribute on ctx."""
    class Scale(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x * scale

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return grad_output * ctx.scale, None
    return Scale


def cube_function(lib):
    """y = x^3 * w, saving an input and its own output: gx = 3 y / x * g, gw = sum(x^3 g)."""
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            y = x ** 3 * w
            ctx.save_for_backward(x, w, y)
            return y

        @staticmethod
        def backward(ctx, g):
            x, w, y = ctx.saved_tensors
            return 3 * x ** 2 * w * g, (x ** 3 * g).sum()
    return Cube


def test_the_brief_example_matches_torch_and_the_modes_are_torchs():
    seen = {}

    def case(lib):
        Scale = scale_function(lib)

        class Spy(Scale):
            @staticmethod
            def forward(ctx, x, scale):
                seen.setdefault(lib, []).append(("forward", lib.is_grad_enabled(), ctx.needs_input_grad))
                return Scale.forward(ctx, x, scale)

            @staticmethod
            def backward(ctx, g):
                seen.setdefault(lib, []).append(("backward", lib.is_grad_enabled(), g.requires_grad))
                return Scale.backward(ctx, g)
        x = leaf(lib, X)
        y = Spy.apply(x, 2.5)
        y.backward(lib.ones_like(y))
        gx, = lib.autograd.grad(Spy.apply(x, 2.5).sum(), x, create_graph=True)
        with lib.no_grad():
            off = Spy.apply(x, 2.5)
        return values(y), values(x.grad), repr(y.grad_fn).split()[0].strip("<>"), off.requires_grad
    mine, theirs = case(tinyres), case(torch)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-12)
    assert mine[2] == "SpyBackward" and theirs[2].endswith(".SpyBackward")
    assert mine[3] is theirs[3] is False
    assert seen[tinyres] == seen[torch]      # forward without grad mode; backward with it under create_graph


def test_values_gradients_and_second_derivatives_match_torch():
    w = np.array(0.7)
    compare_with_torch(cube_function(tinyres).apply, cube_function(torch).apply, [X, w])
    compare_second_order_with_torch(cube_function(tinyres).apply, cube_function(torch).apply, [X, w])
    x, wt = tinyres.tensor(X, requires_grad=True), tinyres.tensor(w, requires_grad=True)
    assert gradcheck(cube_function(tinyres).apply, [x, wt]) and gradgradcheck(cube_function(tinyres).apply, [x, wt])


def test_keyword_arguments_become_inputs_as_in_torch():
    def case(lib):
        x, w = leaf(lib, X), leaf(lib, 0.5)
        y = cube_function(lib).apply(x, w=w)
        y.sum().backward()
        return values(y), values(w.grad), values(scale_function(lib).apply(x, scale=3.0))
    for a, b in zip(case(tinyres), case(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_in_a_module_forward_the_parameters_get_torchs_gradients():
    def case(lib):
        Cube = cube_function(lib)

        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = lib.nn.Parameter(lib.tensor(0.7, dtype=lib.float64))
                self.fc = lib.nn.Linear(3, 2).double()
                with lib.no_grad():
                    self.fc.weight.copy_(lib.tensor(np.arange(6.0).reshape(2, 3) / 7))
                    self.fc.bias.fill_(0.25)

            def forward(self, x):
                return Cube.apply(self.fc(x), self.w)
        net = Net()
        net(lib.tensor(X)).pow(2).sum().backward()
        return [values(p.grad) for p in net.parameters()]
    for a, b in zip(case(tinyres), case(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ---------------------------------------------------------------------- several outputs

def split_function(lib, materialize=True, received=None):
    """Four outputs: two differentiable ones (each saved), an integer one and one marked
    non-differentiable; what backward receives goes into ``received``."""
    class Split(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            a, b, m = x.exp(), x * x, x * 3
            ctx.mark_non_differentiable(m)
            ctx.save_for_backward(x, a, b)
            return a, b, lib.arange(3), m

        @staticmethod
        def backward(ctx, ga, gb, gi, gm):
            if received is not None:
                received.append([None if g is None else (tuple(g.shape), str(g.dtype).split(".")[-1],
                                                         values(g).tolist()) for g in (ga, gb, gi, gm)])
            x, a, b = ctx.saved_tensors
            gx = 0
            if ga is not None:
                gx = gx + ga * a
            if gb is not None:
                gx = gx + gb * 2 * b / x
            return gx
    return Split


@pytest.mark.parametrize("materialize", [True, False])
def test_several_outputs_and_what_backward_receives_match_torch(materialize):
    def case(lib):
        x, received = leaf(lib, X), []
        a, b, i, m = split_function(lib, materialize, received).apply(x)
        (a * 2).sum().backward()          # b, i and m get no gradient
        return values(x.grad), [t.requires_grad for t in (a, b, i, m)], received
    mine, theirs = case(tinyres), case(torch)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-12)
    assert mine[1] == theirs[1] == [True, True, False, False]
    assert mine[2] == theirs[2]


def test_several_outputs_to_second_order_through_saved_outputs():
    def both_used(lib):
        return lambda x: (lambda a, b, *_: a * b + b)(*split_function(lib).apply(x))
    compare_with_torch(both_used(tinyres), both_used(torch), [X])
    compare_second_order_with_torch(both_used(tinyres), both_used(torch), [X])


# ---------------------------------------------------------------------- what backward may return

@pytest.mark.parametrize("returns", ["too few", "for a non-Tensor", "too many", "a float", "a wrong shape"])
def test_a_wrong_backward_raises_as_torch(returns):
    def case(lib):
        class Bad(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, scale):
                return x * scale

            @staticmethod
            def backward(ctx, g):
                return {"too few": (g,), "for a non-Tensor": (g, g), "too many": (g, None, g),
                        "a float": (1.0, None), "a wrong shape": (g[0], None)}[returns]
        Bad.apply(leaf(lib, X), 2.0).sum().backward()
    assert_raises_as_torch(case)


def test_extra_nones_a_broadcast_shape_and_another_dtype_are_fitted_as_in_torch():
    def case(lib):
        class Loose(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, b):
                return x + b

            @staticmethod
            def backward(ctx, g):
                return g.float(), g * 2, None, None      # b's gradient has x's shape: summed down to b's
        x, b = leaf(lib, X), leaf(lib, X[0])
        Loose.apply(x, b).pow(2).sum().backward()
        return values(x.grad), values(b.grad), str(x.grad.dtype).split(".")[-1]
    mine, theirs = case(tinyres), case(torch)
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-6)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-12)
    assert mine[2] == theirs[2] == "float64"


def test_saving_a_non_tensor_and_a_missing_backward_raise_as_torch():
    def saves_an_int(lib):
        class SavesInt(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x, 3)
                return x * 2
        SavesInt.apply(leaf(lib, X))

    def no_backward(lib):
        class NoBackward(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2
        NoBackward.apply(leaf(lib, X)).sum().backward()
    assert_raises_as_torch(saves_an_int)
    assert_raises_as_torch(no_backward)


def test_saved_tensors_are_version_checked_and_freed_as_in_torch():
    def changed(lib):
        x = leaf(lib, X) * 1
        y = cube_function(lib).apply(x, leaf(lib, 0.5))
        x.add_(1)
        y.sum().backward()

    def twice(lib):
        y = cube_function(lib).apply(leaf(lib, X), leaf(lib, 0.5)).sum()
        y.backward()
        y.backward()
    for case, message in ((changed, "modified by an inplace operation"), (twice, "through the graph a second time")):
        for lib in (tinyres, torch):
            with pytest.raises(RuntimeError, match=re.compile(message, re.I)):
                case(lib)


# ---------------------------------------------------------------------- in place, views, once_differentiable

def double_in_place(lib):
    class DoubleInPlace(lib.autograd.Function):
        """x *= w in place: gx = g w, gw = sum(g x_old) = sum(g y / w)."""
        @staticmethod
        def forward(ctx, x, w):
            x.mul_(w)
            ctx.mark_dirty(x)
            ctx.save_for_backward(x, w)
            return x

        @staticmethod
        def backward(ctx, g):
            y, w = ctx.saved_tensors
            return g * w, (g * y / w).sum()
    return DoubleInPlace


@pytest.mark.parametrize("of_a_view", [False, True])
def test_mark_dirty_changes_the_input_in_place_as_torch(of_a_view):
    def case(lib):
        x, w = leaf(lib, X), leaf(lib, 1.5)
        base = x * 1
        h = base[:, 1:] if of_a_view else base       # a view: its base sees the write in its history
        y = double_in_place(lib).apply(h, w)
        assert y is h and (of_a_view or "DoubleInPlace" in repr(h.grad_fn))
        (base ** 2).sum().backward()
        return values(base), values(x.grad), values(w.grad)
    for a, b in zip(case(tinyres), case(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_mark_dirty_of_a_leaf_or_of_a_tensor_not_returned_raises_as_torch():
    def leaf_case(lib):
        double_in_place(lib).apply(leaf(lib, X), leaf(lib, 1.5))

    def not_returned(lib):
        class Forgets(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.mul_(2)
                ctx.mark_dirty(x)
                return x * 1

            @staticmethod
            def backward(ctx, g):
                return g * 2
        Forgets.apply(leaf(lib, X) * 1)
    assert_raises_as_torch(leaf_case)
    assert_raises_as_torch(not_returned)


def test_an_input_returned_as_it_is_is_a_view_that_refuses_in_place():
    def case(lib):
        class Identity(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, g):
                return g
        x = leaf(lib, X) * 1
        y = Identity.apply(x)
        assert y is not x and y._base is x
        y.mul_(2)
    for lib in (tinyres, torch):
        with pytest.raises(RuntimeError, match="is a view and is being modified inplace"):
            case(lib)


def square_once(lib):
    class SquareOnce(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        @lib.autograd.function.once_differentiable
        def backward(ctx, g):
            x, = ctx.saved_tensors
            assert isinstance(g, lib.Tensor) and not lib.is_grad_enabled()
            return 2 * x * g
    return SquareOnce


def test_once_differentiable_refuses_the_second_differentiation_as_torch():
    compare_with_torch(square_once(tinyres).apply, square_once(torch).apply, [X])

    def case(lib):
        x = leaf(lib, X)
        g, = lib.autograd.grad((square_once(lib).apply(x) ** 2).sum(), x, create_graph=True)
        assert g.requires_grad        # the first derivative is right and usable ...
        np.testing.assert_allclose(values(g), 4 * X ** 3)
        g.sum().backward()            # ... the second raises
    assert_raises_as_torch(case)


# ---------------------------------------------------------------------- setup_context, the engine's own form

def test_setup_context_form_matches_torch():
    def make(lib):
        class Affine(lib.autograd.Function):
            @staticmethod
            def forward(x, w, shift=0.5):
                return x * w + shift

            @staticmethod
            def setup_context(ctx, inputs, output):
                x, w, shift = inputs            # the default is among the inputs, as in torch
                ctx.save_for_backward(x, w)
                ctx.shift = shift

            @staticmethod
            def backward(ctx, g):
                x, w = ctx.saved_tensors
                return g * w, (g * x).sum(), None
        return lambda x, w: Affine.apply(x, w)
    compare_with_torch(make(tinyres), make(torch), [X, np.array(1.25)])
    compare_second_order_with_torch(make(tinyres), make(torch), [X, np.array(1.25)])


def test_the_engine_form_of_function_is_unchanged():
    class Twice(tinyres.autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2
    assert tinyres.autograd.Function.__mro__[1] is engine.Function
    assert Twice.apply.__func__ is engine.Function.apply.__func__      # dispatched to the engine as before
    x = tinyres.tensor(X, requires_grad=True)
    Twice.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full_like(X, 2.0))


def test_a_gradient_without_a_graph_stays_without_one_as_in_torch():
    """The engine ties its own ops' constant gradients to what they read (relu's mask), as torch's
    built-in ops are; a custom Function's gradient is what its backward returns: here a
    constant, so differentiating it again raises in both libraries."""
    def case(lib):
        x = leaf(lib, [1.0, 2.0])
        g, = lib.autograd.grad(scale_function(lib).apply(x, 2.0).sum(), x, create_graph=True)
        assert not g.requires_grad
        lib.autograd.grad(g.sum(), x)
    assert_raises_as_torch(case)
