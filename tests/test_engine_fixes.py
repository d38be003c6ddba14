"""Engine and op behaviour found wrong by an audit against torch (float64): each case runs in
tinyres and in torch and compares -- softplus and the BCE losses at their edges, clamp with
tensor bounds, gradients of piecewise-linear ops under create_graph, retained gradients of
views written in place, a second backward through a graph that saved nothing, and the
errors torch raises."""
import warnings

import numpy as np
import pytest
from helpers import TF, compare_second_order_with_torch, compare_with_torch, needs_torch, torch

import tinyres
from tinyres import nn
from tinyres.autograd import GradcheckError
from tinyres.nn import functional as F

pytestmark = needs_torch

EDGES = np.array([0.0, -0.0, 1e-300, -2.5, 0.7, 1.5, 3.0, 30.0])      # 0, the threshold, far above it


def libs():
    return ((tinyres, F), (torch, TF))


# ---------------------------------------------------------------------- softplus and BCE with logits at 0

@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 1.5), (0.5, 3.0)])
def test_softplus_first_and_second_derivative_at_zero_and_the_threshold(beta, threshold):
    compare_with_torch(lambda x: F.softplus(x, beta, threshold), lambda x: TF.softplus(x, beta, threshold), [EDGES])
    compare_second_order_with_torch(lambda x: F.softplus(x, beta, threshold),
                                    lambda x: TF.softplus(x, beta, threshold), [EDGES])
    compare_with_torch(nn.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold), [EDGES])


def test_softplus_at_zero_is_sigmoid():
    x = tinyres.zeros(1, dtype=tinyres.float64, requires_grad=True)
    g, = tinyres.autograd.grad(F.softplus(x).sum(), x, create_graph=True)
    h, = tinyres.autograd.grad(g.sum(), x)
    assert g.item() == 0.5 and h.item() == 0.25


@pytest.mark.parametrize("pos_weight", [None, np.array([2.0, 3.0])])
def test_bce_with_logits_second_derivative_at_zero(pos_weight):
    target = np.array([[1.0, 0.0], [0.3, 1.0]])
    x = np.array([[0.0, 0.0], [-0.0, 1.2]])

    def make(lib, f):
        q = None if pos_weight is None else lib.tensor(pos_weight)
        return lambda a: f.binary_cross_entropy_with_logits(a, lib.tensor(target), pos_weight=q)
    compare_second_order_with_torch(make(tinyres, F), make(torch, TF), [x])


# ---------------------------------------------------------------------- clamp with tensor bounds

CLAMP_X = np.array([[0.0, 1.0, 2.0, 3.0, -1.0], [0.5, 1.0, 2.0, 5.0, 2.5]])
CLAMP_LO = np.array([1.0, 1.0, 1.0, 4.0, -2.0])        # ties at x == lo, and lo > hi in column 3
CLAMP_HI = np.array([[2.0, 2.0, 2.0, 2.0, 0.0], [2.0, 0.5, 2.0, 2.0, 2.5]])


@pytest.mark.parametrize("bounds", ["min", "max", "both"])
def test_clamp_with_tensor_bounds_gives_them_gradients_as_torch(bounds):
    def run(lib):
        x, lo, hi = (lib.tensor(a, requires_grad=True) for a in (CLAMP_X, CLAMP_LO, CLAMP_HI))
        y = {"min": lambda: x.clamp(min=lo), "max": lambda: x.clamp(max=hi),
             "both": lambda: lib.clamp(x, lo, hi)}[bounds]()
        y.backward(lib.tensor(np.arange(1.0, 11.0).reshape(2, 5)))
        return [np.asarray(t.detach().numpy() if hasattr(t, "detach") else t.numpy()) if t is not None else None
                for t in (y, x.grad, lo.grad, hi.grad)]
    for a, b in zip(run(tinyres), run(torch)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_clamp_with_tensor_bounds_twice_differentiable_and_mixed_bounds_refused():
    compare_second_order_with_torch(lambda x, lo, hi: (tinyres.clamp(x, lo, hi) ** 2),
                                    lambda x, lo, hi: (torch.clamp(x, lo, hi) ** 2), [CLAMP_X, CLAMP_LO, CLAMP_HI])
    with pytest.raises(TypeError, match="clamp: expected min and max both Tensors or both numbers"):
        tinyres.clamp(tinyres.zeros(3), tinyres.zeros(3), 1.0)


# ---------------------------------------------------------------------- binary_cross_entropy at 0 and 1

def test_binary_cross_entropy_at_zero_and_one_is_torchs():
    x = np.array([1e-300, 0.0, 1.0, 1e-17, 0.5, 1 - 1e-12, 0.3])
    t = np.array([1.0, 0.2, 0.7, 0.0, 0.3, 1.0, 0.3])
    for reduction in ("none", "mean"):
        outs = []
        for lib, f in libs():
            a, b = lib.tensor(x, requires_grad=True), lib.tensor(t, requires_grad=True)
            loss = f.binary_cross_entropy(a, b, reduction=reduction)
            loss.backward(lib.ones_like(loss))
            outs.append([loss.detach().numpy(), a.grad.numpy(), b.grad.numpy()])
        for ours, theirs in zip(*outs):     # -3.3e11 at 1e-300 (eps 1e-12), +-inf for the target at 0 and 1
            np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    compare_second_order_with_torch(lambda a, b: F.binary_cross_entropy(a, b), lambda a, b: TF.binary_cross_entropy(a, b),
                                    [np.array([0.3, 0.0, 1.0, 0.9]), np.array([0.2, 1.0, 0.0, 0.5])], rtol=1e-9)


def test_binary_cross_entropy_of_a_saturated_float32_sigmoid_has_a_finite_gradient():
    grads = []
    for lib, f in libs():
        x = lib.tensor([20.0, -120.0], requires_grad=True)          # sigmoid: exactly 1 and 0 in float32
        f.binary_cross_entropy(f.sigmoid(x), lib.tensor([0.0, 1.0])).backward()
        grads.append(x.grad.numpy())
    assert np.isfinite(grads[0]).all()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_binary_cross_entropy_checks_its_target_as_torch():
    with pytest.raises(RuntimeError, match="binary_cross_entropy: all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(tinyres.tensor([0.5]), tinyres.tensor([1.5]))


# ---------------------------------------------------------------------- gradients of gradients through kinks

X4 = np.array([[[[0.0, 1.5, -0.5, 2.0], [0.3, 0.3, -1.0, 0.0], [1.0, -2.0, 0.5, 0.5], [0.0, 4.0, -3.0, 7.0]]]])

CREATE_GRAPH_CASES = {     # (op in tinyres, op in torch): torch's gradient of each is in the graph, or not
    "relu": (F.relu, TF.relu), "leaky_relu": (F.leaky_relu, TF.leaky_relu), "abs": (tinyres.abs, torch.abs),
    "hardtanh": (F.hardtanh, TF.hardtanh), "relu6": (F.relu6, TF.relu6),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2)),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, 1), lambda x: TF.adaptive_max_pool2d(x, 1)),
    "l1_loss": (lambda x: F.l1_loss(x, x.detach() * 0), lambda x: TF.l1_loss(x, x.detach() * 0)),
    "nll_loss": (lambda x: F.nll_loss(x.reshape(4, 4), tinyres.tensor([0, 1, 2, 3])),
                 lambda x: TF.nll_loss(x.reshape(4, 4), torch.tensor([0, 1, 2, 3]))),
    # torch's gradients of these do not require grad: neither do tinyres's
    "clamp": (lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0)), "add": (lambda x: x + 2, lambda x: x + 2),
    "max": (lambda x: x.max(), lambda x: x.max()), "where": (lambda x: tinyres.where(x > 0, x, 0.0),
                                                             lambda x: torch.where(x > 0, x, 0.0)),
    "mul by a constant": (lambda x: x * 2, lambda x: x * 2),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1)),
}


@pytest.mark.parametrize("name", list(CREATE_GRAPH_CASES))
def test_a_gradient_under_create_graph_is_in_the_graph_as_torchs(name):
    results = []
    for lib, op in zip((tinyres, torch), CREATE_GRAPH_CASES[name]):
        x = lib.tensor(X4, requires_grad=True)
        g, = lib.autograd.grad(op(x).sum(), x, create_graph=True)
        h = lib.autograd.grad(g.sum(), x)[0] if g.requires_grad else None
        results.append((g.requires_grad, None if h is None else np.asarray(h.numpy(force=True) if lib is torch
                                                                              else h.numpy())))
    (ours, h_ours), (theirs, h_theirs) = results
    assert ours == theirs
    if h_ours is not None:
        np.testing.assert_array_equal(h_ours, h_theirs)      # zeros


def test_hessian_of_a_relu_net_with_strict_is_zeros_as_torch():
    x = tinyres.tensor(X4[0, 0], requires_grad=True)
    h = tinyres.autograd.functional.hessian(lambda a: F.relu(a).sum(), x, strict=True)
    expected = torch.autograd.functional.hessian(lambda a: TF.relu(a).sum(), torch.tensor(X4[0, 0]), strict=True)
    np.testing.assert_array_equal(h.numpy(), expected.numpy())


def test_first_order_gradients_stay_out_of_any_graph():
    x = tinyres.tensor(X4, requires_grad=True)
    g, = tinyres.autograd.grad(F.max_pool2d(F.relu(x), 2).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


# ---------------------------------------------------------------------- a second backward, retained grads of views

@pytest.mark.parametrize("make", [lambda x: (x + 2).sum(), lambda x: x.reshape(3, 1).t()[0].sum(),
                                  lambda x: (1 - x).mean(), lambda x: x.exp().sum(), lambda x: (x * 2).sum()],
                         ids=["add", "views", "sub-mean", "exp", "mul"])
def test_a_second_backward_is_allowed_where_nothing_was_saved_as_torch(make):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = make(x)
        y.backward()
        try:
            y.backward()
        except RuntimeError as e:
            assert "second time" in str(e)
            return "raises"
        return x.grad.tolist()
    assert run(tinyres) == run(torch)


@pytest.mark.parametrize("written", ["view", "base"])
def test_retain_grad_on_a_view_follows_an_in_place_write(written):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        v = y[:2]
        v.retain_grad()
        (v if written == "view" else y).mul_(2)
        (v * 3).sum().backward()
        return v.grad.tolist(), x.grad.tolist()
    assert run(tinyres) == run(torch)


# ---------------------------------------------------------------------- errors as torch's

def test_errors_are_torchs():
    x = tinyres.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: `inputs` argument to `grad\(\)` cannot be empty"):
        tinyres.autograd.grad(x.sum(), [])
    with pytest.raises(TypeError, match="hook returned 'int'"):
        y = x * 2
        y.register_hook(lambda g: 1)
        y.sum().backward()
    a, n = tinyres.zeros(3), tinyres.tensor([1, 2])
    for write, match in [(lambda: a.copy_(tinyres.zeros(4)), r"copy_: .*\(3,\)"),
                         (lambda: a.__iadd__(tinyres.zeros(4)), r"add_: .*\(3,\).*got \(4,\)"),
                         (lambda: a.add_(tinyres.zeros(2, 3)), r"add_: .*\(3,\).*\(2, 3\)"),
                         (lambda: n.__iadd__(1.5), r"add_: .*can't be cast to the desired output type int64")]:
        with pytest.raises(RuntimeError, match=match):
            write()


def test_grad_accepts_only_inputs_as_torch():
    x = tinyres.ones(2, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tinyres.autograd.grad(x.sum(), x, only_inputs=True)[0].tolist() == [1.0, 1.0]
    with pytest.warns(FutureWarning, match="only_inputs argument is deprecated"):
        tinyres.autograd.grad(x.sum(), x, only_inputs=False)


# ---------------------------------------------------------------------- gradcheck and gradgradcheck

class ThreeTimes(tinyres.autograd.Function):
    """y = 2 x with a wrong backward (3 gy)."""

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return gy * 3


def test_gradcheck_of_tuple_outputs_names_the_output_and_input():
    a, b = (tinyres.tensor(np.array([0.3, -1.2, 0.8]), requires_grad=True) for _ in range(2))
    assert tinyres.autograd.gradcheck(lambda x, y: (x * y, (x * x).sum()), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: (x * y, (x * x).sum()), (torch.tensor(a.numpy(), requires_grad=True),
                                                                        torch.tensor(b.numpy(), requires_grad=True)))
    with pytest.raises(GradcheckError, match=r"Jacobian mismatch for output 1 with respect to input 1.*numeric .*"
                                             r"analytic ") as info:
        tinyres.autograd.gradcheck(lambda x, y: (x * y, ThreeTimes.apply(y)), (a, b))
    assert isinstance(info.value, RuntimeError)     # as torch.autograd.gradcheck.GradcheckError
    assert tinyres.autograd.gradcheck(lambda x, y: (x * y, ThreeTimes.apply(y)), (a, b), raise_exception=False) is False
    assert tinyres.autograd.gradcheck(lambda x: x * x, (a,), fast_mode=True)


def test_gradgradcheck_of_tuple_outputs_and_grad_outputs():
    a, b = (tinyres.tensor(np.array([0.3, -1.2, 0.8]), requires_grad=True) for _ in range(2))
    f = lambda x, y: (x * y * x, (x * x * y).sum())     # noqa: E731
    assert tinyres.autograd.gradgradcheck(f, (a, b))
    v = (tinyres.tensor(np.array([0.5, 1.0, -2.0])), tinyres.tensor(np.array(1.5)))
    assert tinyres.autograd.gradgradcheck(f, (a, b), grad_outputs=v)
    assert tinyres.autograd.gradgradcheck(lambda x: (SquareWrongTwice.apply(x), x), (a,), raise_exception=False) is False
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        tinyres.autograd.gradgradcheck(SquareWrongTwice.apply, (a,))


class SquareWrongTwice(tinyres.autograd.Function):
    """y = x^2, its backward 2 x gy with x taken as a constant: right once, wrong twice."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * 2 * tinyres.Tensor(x.array)


# ---------------------------------------------------------------------- autograd.functional

AF, TAF = tinyres.autograd.functional, torch.autograd.functional
A = np.random.default_rng(0).standard_normal((2, 3))


def close(ours, theirs):
    if isinstance(theirs, (tuple, list)):      # (torch's vectorized jacobian nests lists; tinyres tuples always)
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            close(a, b)
        return
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_jacobian_and_hessian_vectorized_and_with_a_strategy_match_torch():
    def f(lib):
        return lambda x, y: ((x.exp() * y.sum()), (x * x).sum())
    ta, tb = tinyres.tensor(A), tinyres.tensor(A[0])
    pa, pb = torch.tensor(A), torch.tensor(A[0])
    for options in (dict(vectorize=True), dict(vectorize=True, strategy="forward-mode"), {}):
        close(AF.jacobian(f(tinyres), (ta, tb), **options), TAF.jacobian(f(torch), (pa, pb), **options))
    scalar = lambda x: (x.exp() * x).sum()       # noqa: E731
    for options in (dict(vectorize=True), dict(vectorize=True, outer_jacobian_strategy="forward-mode")):
        close(AF.hessian(scalar, ta, **options), TAF.hessian(scalar, pa, **options))
    assert AF.jacobian(lambda x: x.exp(), tinyres.tensor(A, requires_grad=True), create_graph=True,
                       vectorize=True).requires_grad


@pytest.mark.parametrize("call, error, match", [
    (lambda m, x: m.jacobian(lambda a: a, x, strategy="forward-mode"), NotImplementedError, "only implemented for"),
    (lambda m, x: m.jacobian(lambda a: a, x, strategy="sideways"), AssertionError, "forward-mode"),
    (lambda m, x: m.hessian(lambda a: a.sum(), x, outer_jacobian_strategy="forward-mode"), NotImplementedError,
     "vectorize=True"),
    (lambda m, x: m.jacobian(lambda a: a, x, strict=True, vectorize=True), RuntimeError,
     "`strict=True` and `vectorized=True` are not supported together"),
    (lambda m, x: m.hvp(lambda a: (a ** 3).sum(), x), RuntimeError, "v can only be None"),
    (lambda m, x: m.jacobian(lambda a, b: a * b, [x, x]), TypeError, "a Tensor or a tuple of Tensors"),
    (lambda m, x: m.jacobian(lambda a: [a, a], x), TypeError, "a Tensor or a tuple of Tensors"),
    (lambda m, x: m.vjp(lambda a: a, x, [x]), TypeError, "a Tensor or a tuple of Tensors"),
], ids=["forward-mode", "bad strategy", "hessian forward-mode", "strict vectorized", "hvp v=None", "list inputs",
        "list outputs", "list v"])
def test_functional_refuses_what_torch_refuses(call, error, match):
    for m, lib in ((AF, tinyres), (TAF, torch)):
        with pytest.raises(error, match=match):
            call(m, lib.tensor(A))


def test_hvp_and_vhp_without_v_for_a_one_element_input():
    for name in ("hvp", "vhp"):
        close(getattr(AF, name)(lambda a: (a ** 3).sum(), tinyres.tensor([1.5], dtype=tinyres.float64)),
              getattr(TAF, name)(lambda a: (a ** 3).sum(), torch.tensor([1.5], dtype=torch.float64)))
