"""conv2d / conv1d: the im2col fast path against a loop reference, finite differences and PyTorch."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, randn, TF, torch  # TF, torch: None without PyTorch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyres
from helpers import compare_grad_chain_with_torch, compare_second_order_with_torch, gradcheck, gradgradcheck  # noqa: E501  (the suite's tight tolerances)
from cases import CONV1D_CASES, CONV2D_CASES
from tinyres.nn import functional as F
from tinyres.nn.functional import conv
from tinyres.kernels import reference
from tinyres.nn.functional.conv import Conv2dFunction, Conv2dGradInput, Conv2dGradWeight, col2im, im2col

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")   # torch's, for even kernels


# ---------------------------------------------------------------------- cases

def arrays(x_shape, w_shape, bias, dtype, seed=0):
    x = randn(*x_shape, dtype=dtype, seed=seed)
    w = randn(*w_shape, dtype=dtype, seed=seed + 1)
    return [x, w, randn(w_shape[0], dtype=dtype, seed=seed + 2)] if bias else [x, w]


# ---------------------------------------------------------------------- conv2d

@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_matches_loop_reference(x_shape, w_shape, bias, kwargs):
    data = arrays(x_shape, w_shape, bias, np.float64)
    x, w = (tinyres.tensor(a, requires_grad=True) for a in data[:2])
    b = tinyres.tensor(data[2], requires_grad=True) if bias else None
    y = F.conv2d(x, w, b, **kwargs)
    gy = randn(*y.shape, seed=7)
    y.backward(tinyres.tensor(gy))
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    want = reference.conv2d_loop(*data[:2], data[2] if bias else None, gy, pair(kwargs["stride"]),
                                 pair(kwargs["padding"]), pair(kwargs["dilation"]), kwargs["groups"])
    for got, ref in zip((y, x.grad, w.grad, b.grad if bias else None), want):
        if ref is not None:
            np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_second_derivatives_match_torch(x_shape, w_shape, bias, kwargs):
    compare_second_order_with_torch(lambda *t: F.conv2d(*t, **kwargs), lambda *t: TF.conv2d(*t, **kwargs),
                                    arrays(x_shape, w_shape, bias, np.float64))


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES[:6])
def test_conv2d_gradgradcheck(x_shape, w_shape, bias, kwargs):
    inputs = [tinyres.tensor(a, requires_grad=True) for a in arrays(x_shape, w_shape, bias, np.float64)]
    assert gradgradcheck(lambda *t: F.conv2d(*t, **kwargs), inputs, nsamples=20)


@needs_torch
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_third_order_through_the_upstream_gradients_matches_torch(x_shape, w_shape, bias, kwargs):
    """grad of grad of grad, each w.r.t. the upstream gradient before: every backward of
    Conv2dFunction, Conv2dGradInput and Conv2dGradWeight, against torch in float64."""
    compare_grad_chain_with_torch(lambda *t: F.conv2d(*t, **kwargs), lambda *t: TF.conv2d(*t, **kwargs),
                                  arrays(x_shape, w_shape, bias, np.float64))


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES[6:])
def test_conv2d_gradgradcheck_other_cases(x_shape, w_shape, bias, kwargs):
    """The remaining grid cases, fewer random directions (they are bigger)."""
    inputs = [tinyres.tensor(a, requires_grad=True) for a in arrays(x_shape, w_shape, bias, np.float64)]
    assert gradgradcheck(lambda *t: F.conv2d(*t, **kwargs), inputs, nsamples=6)


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_gradient_ops_alone_equal_the_fused_kernel(x_shape, w_shape, bias, kwargs):
    """Conv2dGradInput / Conv2dGradWeight computing their own result (as they do inside a
    second derivative) equal what the fused gx/gw kernel of the first-order backward gives."""
    x, w = (tinyres.tensor(a, requires_grad=True) for a in arrays(x_shape, w_shape, False, np.float64))
    y = F.conv2d(x, w, **kwargs)
    gy = tinyres.tensor(randn(*y.shape, seed=5))
    y.backward(gy, retain_graph=True)
    geometry = {k: y.grad_fn.geometry[k] for k in ("stride", "padding", "dilation", "groups")}
    gx = Conv2dGradInput.apply(gy, w.detach(), x_shape=x.shape, **geometry)
    gw = Conv2dGradWeight.apply(x.detach(), gy, weight_shape=w.shape, **geometry)
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_conv2d_first_order_backward_builds_no_graph():
    x, w = tinyres.randn(2, 3, 6, 6, requires_grad=True), tinyres.randn(4, 3, 3, 3, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad.grad_fn is None and w.grad.grad_fn is None and not x.grad.requires_grad


@needs_torch
@pytest.mark.parametrize("threads, chunk_bytes", [(1, conv.CHUNK_BYTES), (2, 1)], ids=["1-thread", "2-threads-chunks"])
def test_scratch_buffers_never_hold_a_gradient_that_is_still_needed(threads, chunk_bytes, monkeypatch):
    """The conv backward reuses one scratch buffer per thread (x's columns, then gy's for
    gx); under create_graph, backward kernels run inside other backward kernels and
    forward convolutions run between them.  If any array handed out (y, gx, gw) were a
    view of a scratch buffer, the convolutions run afterwards -- of other shapes, here
    -- would overwrite it: the gradients are copied first and compared afterwards, and
    the second derivatives of a two-conv net are compared with torch's."""
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(tinyres.kernels.threads, "_num_threads", threads)
    monkeypatch.setattr(tinyres.kernels.threads, "_pool", None)
    data = [randn(2, 3, 7, 7, seed=1), randn(4, 3, 3, 3, seed=2), randn(5, 4, 3, 3, seed=3)]
    x, w1, w2 = (tinyres.tensor(a, requires_grad=True) for a in data)
    a = F.conv2d(x, w1, padding=1)
    y = F.conv2d(a * a, w2, stride=2)
    gx, gw1, gw2 = tinyres.autograd.grad((y * y).sum(), [x, w1, w2], create_graph=True)
    kept = [g.numpy().copy() for g in (gx, gw1, gw2)]
    penalty = ((gx * gx).sum() + (gw1 * gw1).sum() + (gw2 * gw2).sum())
    F.conv2d(tinyres.tensor(randn(3, 3, 11, 9, seed=4)), w1.detach(), padding=2, dilation=2)   # scribbles on the buffers
    h = tinyres.autograd.grad(penalty, [x, w1, w2])
    for g, k in zip((gx, gw1, gw2), kept):
        np.testing.assert_array_equal(g.numpy(), k)
    px, pw1, pw2 = (torch.tensor(a, requires_grad=True) for a in data)
    pa = TF.conv2d(px, pw1, padding=1)
    py = TF.conv2d(pa * pa, pw2, stride=2)
    pg = torch.autograd.grad((py * py).sum(), [px, pw1, pw2], create_graph=True)
    ph = torch.autograd.grad(sum((g * g).sum() for g in pg), [px, pw1, pw2])
    for a, b in zip(h, ph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_gradcheck(x_shape, w_shape, bias, kwargs):
    inputs = [tinyres.tensor(a, requires_grad=True) for a in arrays(x_shape, w_shape, bias, np.float64)]
    assert gradcheck(lambda *t: F.conv2d(*t, **kwargs), inputs, nsamples=40)


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_conv2d_matches_torch_float32(x_shape, w_shape, bias, kwargs, contiguous):
    y = compare_with_torch(lambda *t: F.conv2d(*t, **kwargs), lambda *t: TF.conv2d(*t, **kwargs),
                           arrays(x_shape, w_shape, bias, np.float32), rtol=1e-4, atol=1e-5,
                           contiguous=contiguous)
    assert y.dtype == np.float32


@pytest.mark.parametrize("threads, chunk_bytes", [(1, conv.CHUNK_BYTES), (2, conv.CHUNK_BYTES), (2, 1), (3, 1)],
                         ids=["1-thread", "2-threads", "2-threads-image-chunks", "3-threads-image-chunks"])
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D_CASES)
def test_fast_conv2d_equals_the_plain_reference(x_shape, w_shape, bias, kwargs, layout, threads, chunk_bytes,
                                                monkeypatch):
    """Conv2dFunction (chunks of images on threads, transposed-convolution gx, scratch buffers) against
    the plain loops of kernels/reference.py (nothing shared with the fast path), float64, in
    both memory layouts of the input."""
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(tinyres.kernels.threads, "_num_threads", threads)
    monkeypatch.setattr(tinyres.kernels.threads, "_pool", None)
    data = arrays(x_shape, w_shape, bias, np.float64)
    if layout == "channel-major":
        data[0] = np.ascontiguousarray(data[0].transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    stride, dilation = (conv.ntuple(kwargs[k], 2, k, "conv2d") for k in ("stride", "dilation"))
    padding = conv._conv_padding("conv2d", kwargs["padding"], w_shape[2:], stride, dilation, 2)
    tensors = [tinyres.Tensor(a, requires_grad=True) for a in data] + ([] if bias else [None])
    y = Conv2dFunction.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=kwargs["groups"])
    gy = randn(*y.shape, seed=3)
    y.backward(tinyres.tensor(gy))
    fast = [y.numpy()] + [t.grad.numpy() for t in tensors if t is not None]
    plain = reference.conv2d_loop(*data[:2], data[2] if bias else None, gy, stride, padding, dilation,
                                  kwargs["groups"])
    for got, want in zip(fast, plain):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv2d_output_is_channel_major_and_the_next_conv_reads_it_without_a_copy():
    x = tinyres.randn(4, 3, 8, 8)
    y = F.conv2d(x, tinyres.randn(5, 3, 3, 3), padding=1)
    assert y.array.transpose(1, 0, 2, 3).flags.c_contiguous        # (C, N, H, W) memory
    z = F.relu(F.batch_norm(y, None, None, training=True))        # both keep the layout
    assert z.array.transpose(1, 0, 2, 3).flags.c_contiguous
    assert np.shares_memory(conv._columns(z.array, (1, 1), (1, 1), conv.NO_PADDING, (1, 1)), z.array)


@needs_torch
def test_conv2d_unbatched_input():
    x, w, b = randn(3, 6, 5, dtype=np.float32), randn(4, 3, 3, 3, dtype=np.float32), randn(4, dtype=np.float32)
    y = compare_with_torch(lambda *t: F.conv2d(*t, padding=1), lambda *t: TF.conv2d(*t, padding=1),
                           [x, w, b], rtol=1e-4, atol=1e-5)
    assert y.shape == (4, 6, 5)


@needs_torch
def test_depthwise_separable_matches_torch():
    """A depthwise 3x3 (groups = C) followed by a pointwise 1x1: MobileNet's block."""
    x, dw, pw = (randn(*shape, dtype=np.float32, seed=i)
                 for i, shape in enumerate([(2, 4, 7, 6), (4, 1, 3, 3), (5, 4, 1, 1)]))
    compare_with_torch(lambda a, d, p: F.conv2d(F.conv2d(a, d, padding=1, groups=4), p),
                       lambda a, d, p: TF.conv2d(TF.conv2d(a, d, padding=1, groups=4), p),
                       [x, dw, pw], rtol=1e-4, atol=1e-5)


def test_float64_stays_float64():
    x, w = (tinyres.tensor(a, requires_grad=True) for a in arrays((1, 2, 5, 5), (3, 2, 3, 3), False, np.float64))
    y = F.conv2d(x, w, stride=2)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float64


# ---------------------------------------------------------------------- im2col / col2im

@pytest.mark.parametrize("stride, padding, dilation", [((1, 1), ((0, 0), (0, 0)), (1, 1)),
                                                       ((2, 3), ((1, 2), (0, 1)), (2, 1))])
def test_col2im_is_the_adjoint_of_im2col(stride, padding, dilation):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: col2im is im2col transposed."""
    x = randn(2, 3, 7, 8, seed=1)
    cols = im2col(x, (3, 2), stride, padding, dilation)
    c = randn(*cols.shape, seed=2)
    np.testing.assert_allclose((cols * c).sum(), (x * col2im(c, x.shape, stride, padding, dilation)).sum(),
                               rtol=1e-12)


def test_im2col_layout_is_one_patch_per_column():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    cols = im2col(x, (2, 2))
    assert cols.shape == (1, 2, 2, 2, 2, 2) and cols.dtype == np.float32
    matrix = cols.reshape(4, 8)                     # (C*KH*KW, N*OH*OW)
    np.testing.assert_array_equal(matrix[:, 0], x[0, 0, :2, :2].ravel())
    np.testing.assert_array_equal(matrix[:, 7], x[1, 0, 1:, 1:].ravel())


# ---------------------------------------------------------------------- conv1d

@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_matches_torch_float32(x_shape, w_shape, kwargs, contiguous):
    data = [randn(*x_shape, dtype=np.float32), randn(*w_shape, dtype=np.float32, seed=1),
            randn(w_shape[0], dtype=np.float32, seed=2)]
    compare_with_torch(lambda *t: F.conv1d(*t, **kwargs), lambda *t: TF.conv1d(*t, **kwargs), data,
                       rtol=1e-4, atol=1e-5, contiguous=contiguous)


@needs_torch
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_second_and_third_derivatives_match_torch(x_shape, w_shape, kwargs):
    data = [randn(*x_shape, seed=0), randn(*w_shape, seed=1), randn(w_shape[0], seed=2)]
    compare_second_order_with_torch(lambda *t: F.conv1d(*t, **kwargs), lambda *t: TF.conv1d(*t, **kwargs), data)
    compare_grad_chain_with_torch(lambda *t: F.conv1d(*t, **kwargs), lambda *t: TF.conv1d(*t, **kwargs), data)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_gradgradcheck(x_shape, w_shape, kwargs):
    inputs = [tinyres.tensor(randn(*s, seed=i), requires_grad=True) for i, s in enumerate((x_shape, w_shape, w_shape[:1]))]
    assert gradgradcheck(lambda *t: F.conv1d(*t, **kwargs), inputs, nsamples=10)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_gradcheck(x_shape, w_shape, kwargs):
    inputs = [tinyres.tensor(randn(*s, seed=i), requires_grad=True)
              for i, s in enumerate((x_shape, w_shape, w_shape[:1]))]
    assert gradcheck(lambda *t: F.conv1d(*t, **kwargs), inputs)


# ---------------------------------------------------------------------- random arguments

@needs_torch
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_conv2d_random_arguments_match_torch(data):
    draw = lambda s: data.draw(s)  # noqa: E731
    groups, n = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, d = [draw(st.integers(1, 4)) for _ in range(2)], [draw(st.integers(1, 2)) for _ in range(2)]
    stride = [draw(st.integers(1, 3)) for _ in range(2)]
    padding = draw(st.sampled_from(["same", "valid", "ints"])) if stride == [1, 1] else "ints"
    if padding == "ints":
        padding = [draw(st.integers(0, 2)) for _ in range(2)]
    pads = [2 * p for p in padding] if isinstance(padding, list) else [0, 0]
    h, w = (draw(st.integers(max(1, di * (ki - 1) + 1 - pi), di * (ki - 1) + 6)) for ki, di, pi in zip(k, d, pads))
    bias = draw(st.booleans())
    kwargs = dict(stride=stride, padding=padding, dilation=d, groups=groups)
    seed = draw(st.integers(0, 2 ** 16))
    compare_with_torch(lambda *t: F.conv2d(*t, **kwargs), lambda *t: TF.conv2d(*t, **kwargs),
                       arrays((n, c, h, w), (o, c // groups, *k), bias, np.float32, seed=seed),
                       rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- bad input

def t32(*shape):
    return tinyres.zeros(*shape, dtype="float32")


BAD = [
    ("rank", lambda: F.conv2d(t32(5, 5), t32(4, 3, 3, 3)), RuntimeError,
     r"conv2d: expected 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape \(5, 5\)"),
    ("rank-1d", lambda: F.conv1d(t32(1, 2, 3, 5), t32(4, 2, 3)), RuntimeError, r"conv1d: expected 2-D .* 3-D"),
    ("weight-rank", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3)), RuntimeError,
     r"conv2d: expected 4-D weight .* got weight of shape \(4, 3, 3\)"),
    ("channels", lambda: F.conv2d(t32(1, 4, 5, 5), t32(4, 3, 3, 3), groups=2), RuntimeError,
     r"conv2d: expected input with 6 channels, got input of shape \(1, 4, 5, 5\) "
     r"\(weight \(4, 3, 3, 3\) with groups=2\)"),
    ("kernel-too-big", lambda: F.conv2d(t32(1, 3, 2, 2), t32(4, 3, 3, 3)), RuntimeError,
     r"conv2d: kernel size \(3, 3\) .* greater than the padded input size \(2, 2\)"),
    ("dilated-too-big", lambda: F.conv2d(t32(1, 3, 4, 4), t32(4, 3, 3, 3), dilation=2), RuntimeError,
     r"dilated: \(5, 5\)"),
    ("stride", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), stride=(1, 0)), RuntimeError,
     r"conv2d: non-positive stride is not supported, got stride=\(1, 0\)"),
    ("dilation", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), dilation=0), RuntimeError,
     r"non-positive dilation"),
    ("padding", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), padding=-1), RuntimeError,
     r"conv2d: negative padding is not supported, got padding=\(-1, -1\)"),
    ("padding-string", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), padding="full"), RuntimeError,
     r"conv2d: padding must be 'same', 'valid', an int or a tuple of 2 ints, got 'full'"),
    ("padding-type", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), padding=1.5), TypeError,
     r"conv2d: padding must be an int or a tuple of 2 ints, got 1.5"),
    ("same-strided", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), stride=2, padding="same"), RuntimeError,
     r"conv2d: padding='same' is not supported for strided convolutions, got stride=\(2, 2\)"),
    ("groups-out", lambda: F.conv2d(t32(1, 6, 5, 5), t32(5, 2, 3, 3), groups=3), RuntimeError,
     r"conv2d: groups=3 must divide out_channels, got weight of shape \(5, 2, 3, 3\)"),
    ("groups-in", lambda: F.conv2d(t32(1, 5, 5, 5), t32(4, 2, 3, 3), groups=2), RuntimeError,
     r"expected input with 4 channels"),
    ("groups-zero", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), groups=0), RuntimeError,
     r"conv2d: expected groups to be a positive int, got 0"),
    ("bias-shape", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), t32(5)), RuntimeError,
     r"conv2d: expected bias of shape \(4,\) .* got bias of shape \(5,\)"),
    ("weight-dtype", lambda: F.conv2d(t32(1, 3, 5, 5), tinyres.zeros(4, 3, 3, 3, dtype="float64")), RuntimeError,
     r"conv2d: expected input and weight of one dtype, got input float32 and weight float64"),
    ("bias-dtype", lambda: F.conv2d(t32(1, 3, 5, 5), t32(4, 3, 3, 3), tinyres.zeros(4, dtype="float64")),
     RuntimeError, r"got input float32 and bias float64"),
    ("int-input", lambda: F.conv2d(tinyres.zeros(1, 3, 5, 5, dtype="int64"), t32(4, 3, 3, 3)), TypeError,
     r"conv2d: expected a floating point input, got int64"),
    ("not-a-tensor", lambda: F.conv2d(np.zeros((1, 3, 5, 5)), t32(4, 3, 3, 3)), TypeError,
     r"conv2d: expected input to be a Tensor, got ndarray"),
    ("stride-1d", lambda: F.conv1d(t32(1, 3, 5), t32(4, 3, 3), stride=(1, 1)), TypeError,
     r"conv1d: stride must be an int or a tuple of 1 ints, got \(1, 1\)"),
]


@pytest.mark.parametrize("call, exc, match", [pytest.param(*b[1:], id=b[0]) for b in BAD])
def test_bad_input_raises_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
