"""Pooling: max, average and adaptive pools against loop references, finite differences and PyTorch."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyres
from helpers import compare_grad_chain_with_torch, compare_second_order_with_torch, gradcheck, gradgradcheck  # noqa: E501  (the suite's tight tolerances)
from cases import POOL_1D, POOL_2D, POOL_EDGES, distinct
from tinyres.nn import functional as F
from tinyres.nn.functional import reference


# ---------------------------------------------------------------------- 2-D pools

@pytest.mark.parametrize("op, shape, kwargs", POOL_2D)
def test_pool2d_gradcheck(op, shape, kwargs):
    x = tinyres.tensor(distinct(*shape), requires_grad=True)
    assert gradcheck(lambda t: getattr(F, op)(t, **kwargs), [x], nsamples=60)


@needs_torch
@pytest.mark.parametrize("op, shape, kwargs", POOL_2D)
def test_pool2d_second_derivatives_match_torch(op, shape, kwargs):
    """Through create_graph: the gradient's own gradient, against torch in float64 (0 w.r.t.
    x for these piecewise-linear ops; what is checked is the gradient's graph w.r.t. v)."""
    compare_second_order_with_torch(lambda t: getattr(F, op)(t, **kwargs), lambda t: getattr(TF, op)(t, **kwargs),
                                    [distinct(*shape)])


@needs_torch
@pytest.mark.parametrize("op, shape, kwargs", POOL_2D)
def test_pool2d_third_order_through_the_upstream_gradients_matches_torch(op, shape, kwargs):
    """grad w.r.t. v of grad w.r.t. x, and once more: each pool, its adjoint (unpool,
    col2im, put) and the adjoint's adjoint, against torch in float64."""
    compare_grad_chain_with_torch(lambda t: getattr(F, op)(t, **kwargs), lambda t: getattr(TF, op)(t, **kwargs),
                                  [distinct(*shape)])


@pytest.mark.parametrize("op, shape, kwargs", POOL_2D)
def test_pool2d_gradgradcheck(op, shape, kwargs):
    x = tinyres.tensor(distinct(*shape), requires_grad=True)
    assert gradgradcheck(lambda t: getattr(F, op)(t, **kwargs), [x], nsamples=20)


@needs_torch
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 8)], ids=["batched", "unbatched"])
@pytest.mark.parametrize("op, kwargs", POOL_1D)
def test_pool1d_higher_derivatives_match_torch_and_gradgradcheck(op, kwargs, shape):
    tiny, ref = (lambda t: getattr(F, op)(t, **kwargs)), (lambda t: getattr(TF, op)(t, **kwargs))
    compare_second_order_with_torch(tiny, ref, [distinct(*shape)])
    compare_grad_chain_with_torch(tiny, ref, [distinct(*shape)])
    assert gradgradcheck(tiny, [tinyres.tensor(distinct(*shape), requires_grad=True)])


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("op, shape, kwargs", POOL_2D)
def test_pool2d_matches_torch_float32(op, shape, kwargs, contiguous):
    y = compare_with_torch(lambda t: getattr(F, op)(t, **kwargs), lambda t: getattr(TF, op)(t, **kwargs),
                           [randn(*shape, dtype=np.float32)], rtol=1e-4, atol=1e-5, contiguous=contiguous)
    assert y.dtype == np.float32


@needs_torch
@pytest.mark.parametrize("op, shape, kwargs", [p for p in POOL_2D if "max" in p.values[0]])
def test_max_pool_indices_match_torch(op, shape, kwargs):
    x = randn(*shape, dtype=np.float32)
    _, indices = getattr(F, op)(tinyres.tensor(x), **kwargs, return_indices=True)
    _, want = getattr(TF, op)(torch.tensor(x), **kwargs, return_indices=True)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), want.numpy())


@pytest.mark.parametrize("op, shape, kwargs", [   # the reference takes batched input and square windows
    p for p in POOL_2D if p.values[0] in ("max_pool2d", "avg_pool2d") and len(p.values[1]) == 4
    and all(isinstance(v, int) for v in p.values[2].values())])
def test_pool2d_matches_loop_reference(op, shape, kwargs):
    x = distinct(*shape)
    t = tinyres.tensor(x, requires_grad=True)
    y = getattr(F, op)(t, **kwargs)
    gy = randn(*y.shape, seed=3)
    y.backward(tinyres.tensor(gy))
    want_y, want_gx = reference.pool2d_loop(op[:3], x, gy, **kwargs)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t.grad.numpy(), want_gx, rtol=1e-12, atol=1e-14)


@needs_torch
def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    """One winner per window (the first in window order), as PyTorch; not a shared gradient."""
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    y = compare_with_torch(lambda t: F.max_pool2d(t, 3, stride=1), lambda t: TF.max_pool2d(t, 3, stride=1), [x])
    assert y.shape == (1, 1, 2, 2)



def test_adaptive_avg_pool2d_of_one_is_the_mean():
    x = randn(2, 3, 5, 4, dtype=np.float32)
    y = F.adaptive_avg_pool2d(tinyres.tensor(x), 1)
    assert y.shape == (2, 3, 1, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)


# ---------------------------------------------------------------------- 1-D pools

@needs_torch
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 8)], ids=["batched", "unbatched"])
@pytest.mark.parametrize("op, kwargs", POOL_1D)
def test_pool1d_matches_torch_and_finite_differences(op, kwargs, shape):
    compare_with_torch(lambda t: getattr(F, op)(t, **kwargs), lambda t: getattr(TF, op)(t, **kwargs),
                       [randn(*shape, dtype=np.float32)], rtol=1e-4, atol=1e-5, contiguous=False)
    assert gradcheck(lambda t: getattr(F, op)(t, **kwargs), [tinyres.tensor(distinct(*shape), requires_grad=True)])


# ---------------------------------------------------------------------- random arguments

def window_strategy(draw, dilation):
    """kernel, stride, padding, dilation and an input length that leaves every window
    touching the input (torch is undefined for windows made of padding only)."""
    k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    p, d = draw(st.integers(0, k // 2)), draw(st.integers(1, 2)) if dilation else 1
    n = draw(st.integers(max(1, d, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 6))
    return k, s, p, d, n


@needs_torch
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_pools_with_random_arguments_match_torch(data):
    draw = data.draw
    op = draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
    (kh, sh, ph, dh, h), (kw, sw, pw, dw, w) = (window_strategy(draw, op == "max_pool2d") for _ in range(2))
    kwargs = dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), ceil_mode=draw(st.booleans()))
    if op == "max_pool2d":
        kwargs["dilation"] = (dh, dw)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.sampled_from([None, None, 3]))
    x = randn(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w, dtype=np.float32,
              seed=draw(st.integers(0, 2 ** 16)))
    compare_with_torch(lambda t: getattr(F, op)(t, **kwargs), lambda t: getattr(TF, op)(t, **kwargs), [x],
                       rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- bad input

def t32(*shape):
    return tinyres.zeros(*shape, dtype="float32")


BAD = [
    ("rank", lambda: F.max_pool2d(t32(5, 5), 2), RuntimeError,
     r"max_pool2d: expected 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape \(5, 5\)"),
    ("rank-1d", lambda: F.avg_pool1d(t32(1, 2, 5, 5), 2), RuntimeError, r"avg_pool1d: expected 2-D .* 3-D"),
    ("padding-over-half", lambda: F.max_pool2d(t32(1, 1, 5, 5), 3, padding=2), RuntimeError,
     r"max_pool2d: padding should be non-negative and at most half of the kernel size, "
     r"got padding=\(2, 2\) for kernel_size=\(3, 3\)"),
    ("padding-over-half-avg", lambda: F.avg_pool2d(t32(1, 1, 5, 5), (3, 2), padding=(1, 2)), RuntimeError,
     r"avg_pool2d: padding should be .* at most half"),
    ("negative-padding", lambda: F.max_pool2d(t32(1, 1, 5, 5), 3, padding=-1), RuntimeError, r"non-negative"),
    ("stride", lambda: F.max_pool2d(t32(1, 1, 5, 5), 3, stride=0), RuntimeError,
     r"max_pool2d: stride must be positive, got stride=\(0, 0\)"),
    ("kernel", lambda: F.avg_pool2d(t32(1, 1, 5, 5), (0, 2)), RuntimeError, r"kernel_size must be positive"),
    ("dilation", lambda: F.max_pool2d(t32(1, 1, 5, 5), 2, dilation=0), RuntimeError, r"dilation must be positive"),
    ("too-small", lambda: F.max_pool2d(t32(1, 1, 5, 5), 7), RuntimeError,
     r"max_pool2d: output size would be \(0, 0\) for input of shape \(1, 1, 5, 5\) .* too small"),
    ("kernel-type", lambda: F.max_pool2d(t32(1, 1, 5, 5), 2.0), TypeError,
     r"max_pool2d: kernel_size must be an int or a tuple of 2 ints, got 2.0"),
    ("divisor", lambda: F.avg_pool2d(t32(1, 1, 5, 5), 2, divisor_override=0), RuntimeError,
     r"avg_pool2d: divisor_override must be a non-zero int, got 0"),
    ("int-input", lambda: F.max_pool2d(tinyres.zeros(1, 1, 4, 4, dtype="int64"), 2), TypeError,
     r"max_pool2d: expected a floating point input, got int64"),
    ("adaptive-size", lambda: F.adaptive_avg_pool2d(t32(1, 1, 5, 5), (2, 0)), RuntimeError,
     r"adaptive_avg_pool2d: output_size must be positive, got \(2, 0\)"),
    ("adaptive-type", lambda: F.adaptive_max_pool2d(t32(1, 1, 5, 5), (1, 2, 3)), TypeError,
     r"adaptive_max_pool2d: output_size must be an int or a tuple of 2 ints, got \(1, 2, 3\)"),
    ("adaptive-empty", lambda: F.adaptive_avg_pool2d(t32(1, 1, 0, 5), 2), RuntimeError,
     r"adaptive_avg_pool2d: expected non-empty spatial dimensions, got input of shape \(1, 1, 0, 5\)"),
    ("not-a-tensor", lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError,
     r"avg_pool2d: expected input to be a Tensor, got ndarray"),
]


@pytest.mark.parametrize("call, exc, match", [pytest.param(*b[1:], id=b[0]) for b in BAD])
def test_bad_input_raises_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@needs_torch
@pytest.mark.parametrize("x, args", POOL_EDGES)
def test_max_pool2d_edge_values_as_torch(x, args):
    """Where torch sends the gradient and what index it reports: the padding never wins, the
    first maximum wins a tie, a NaN propagates with the window's last NaN as its argmax."""
    x = np.asarray(x, dtype=np.float32)
    compare_with_torch(lambda t: F.max_pool2d(t, *args), lambda t: TF.max_pool2d(t, *args), [x])
    ours = F.max_pool2d(tinyres.tensor(x), *args, return_indices=True)[1].numpy()
    np.testing.assert_array_equal(ours, TF.max_pool2d(torch.tensor(x), *args, return_indices=True)[1].numpy())
