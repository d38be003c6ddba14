"""The fused GPU kernels (tinyres/kernels/fused.py) against the NumPy code they replace.

Under the CuPy double their CUDA-C source is compiled for the CPU (tests/cupy_double_kernels.py),
so these run in CI; with ``TINYRES_TEST_CUPY=real`` (benchmarks/gpu_check.py) on a GPU.
im2col and col2im gather in the CPU's order: equal bit for bit.  Batch norm sums in
float64 in another order: within rounding, and no worse than the CPU in float32 far from 0.
"""
import numpy as np
import pytest

import tinyres
from helpers import randn
from tinyres import backend
from tinyres.kernels import fused, im2col
from tinyres.nn import functional as F
from tinyres.nn.functional.normalization import BatchNormFunction

GEOMETRIES = [  # kernel, stride, padding ((top, bottom), (left, right)), dilation
    ((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((3, 2), (2, 1), ((0, 2), (1, 0)), (1, 2)),
    ((1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ((2, 3), (3, 2), ((2, 1), (0, 3)), (2, 1)),
]


def device(a):
    return backend.to_device(np.asarray(a), "cuda:0")


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_on_the_device_equal_the_cpu_bit_for_bit(fake_cupy, geometry, dtype):
    kernel, stride, padding, dilation = geometry
    x = randn(3, 2, 7, 6, dtype=dtype)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3))     # a convolution's output layout
    for fill in (0.0, -np.inf):
        cols = im2col.im2col(x, kernel, stride, padding, dilation, fill)
        for source in (device(x), device(channel_major).transpose(1, 0, 2, 3)):
            got = im2col.im2col(source, kernel, stride, padding, dilation, fill)
            assert np.array_equal(backend.to_host(got), cols)
    g = randn(*cols.shape, dtype=dtype, seed=1)
    gx = im2col.col2im(g, x.shape, stride, padding, dilation)
    got = im2col.col2im(device(g), x.shape, stride, padding, dilation)
    assert got.shape == x.shape and np.array_equal(backend.to_host(got), gx)


def test_im2col_is_one_kernel_and_col2im_two(strict_double):
    x = device(randn(2, 3, 8, 8))
    from cupy_double import STATE
    before = STATE.launches
    cols = im2col.im2col(x, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1))
    assert STATE.launches - before == 1
    before = STATE.launches
    im2col.col2im(cols, (2, 3, 8, 8), (2, 2), ((1, 1), (1, 1)), (1, 1))
    assert STATE.launches - before == 2                    # the zeros, then the gather


def _bn(x, training, weight, device_name, running):
    x = tinyres.tensor(x, device=device_name, requires_grad=True)
    w = None if weight is None else tinyres.tensor(weight, device=device_name, requires_grad=True)
    b = None if weight is None else tinyres.tensor(weight[::-1].copy(), device=device_name, requires_grad=True)
    rm, rv = (tinyres.tensor(r, device=device_name) for r in running)
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3)
    y.backward(tinyres.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(y.dtype), device=device_name))
    grads = [x.grad.numpy()] + ([] if w is None else [w.grad.numpy(), b.grad.numpy()])
    return [y.numpy(), rm.numpy(), rv.numpy()] + grads


@pytest.mark.parametrize("training, with_weight, shape", [
    (True, True, (4, 3, 5, 6)), (True, False, (5, 2)), (False, True, (3, 4, 2, 2)), (True, True, (2, 3, 4))])
def test_batch_norm_on_the_device_equals_the_cpu(fake_cupy, training, with_weight, shape):
    x = randn(*shape) * 3 + 1
    c = shape[1]
    weight = np.linspace(0.5, 2, c) if with_weight else None
    running = (np.linspace(-1, 1, c), np.linspace(0.5, 1.5, c))
    cpu = _bn(x, training, weight, "cpu", running)
    dev = _bn(x, training, weight, "cuda:0", running)
    for what, a, b in zip(["y", "running_mean", "running_var", "gx", "gw", "gb"], dev, cpu):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12, err_msg=what)


def test_batch_norm_on_the_device_in_float32_with_a_large_mean(fake_cupy):
    """Mean 100, variance 1: the sums are shifted by each channel's first value and kept in
    float64, so float32 statistics are as good as the CPU's two passes."""
    x = (randn(8, 3, 9, 9, seed=3) + 100).astype(np.float32)
    truth = (x.astype(np.float64) - x.astype(np.float64).mean((0, 2, 3), keepdims=True)) / np.sqrt(
        x.astype(np.float64).var((0, 2, 3), keepdims=True) + 1e-5)
    errors = {}
    for name in ("cpu", "cuda:0"):
        y = F.batch_norm(tinyres.tensor(x, device=name), None, None, training=True)
        errors[name] = np.abs(y.numpy() - truth).max()
    assert errors["cuda:0"] <= max(2 * errors["cpu"], 1e-6), errors


def test_batch_norm_forward_and_backward_launch_a_handful_of_kernels(strict_double):
    """Forward in training: the sums, the statistics, the running statistics, the
    normalisation; backward: the two sums, then gx -- whatever the number of channels."""
    from cupy_double import STATE
    fn = BatchNormFunction()
    x = device(randn(4, 16, 6, 6))
    w, b, rm, rv = (device(np.ones(16)) for _ in range(4))
    fn.needs_grad = True
    fn.forward(x, w, b, rm, rv, True, 0.1, 1e-5)        # the first call also makes a constant
    before = STATE.launches
    y = fn.forward(x, w, b, rm, rv, True, 0.1, 1e-5)
    forward = STATE.launches - before
    gy = device(randn(4, 16, 6, 6, seed=2))
    before = STATE.launches
    fn.backward(gy)
    backward = STATE.launches - before
    assert forward <= 4 and backward <= 2 and y.shape == x.shape, (forward, backward)


def test_a_planted_mistake_in_a_fused_kernel_fails_its_check(fake_cupy, monkeypatch):
    """The checks above can fail: im2col without the dilation of the rows."""
    if not hasattr(fake_cupy, "transfers"):
        pytest.skip("plants a bug in the double's kernels")
    kind, args = fused._SOURCES["im2col"]
    planted = args[:2] + (args[2].replace("ki * dh", "ki"),) + args[3:]
    monkeypatch.setitem(fused._SOURCES, "im2col", (kind, planted))
    monkeypatch.setattr(fused, "_KERNELS", {})
    kernel, stride, padding, dilation = GEOMETRIES[3]
    x = randn(3, 2, 7, 6)
    got = backend.to_host(im2col.im2col(device(x), kernel, stride, padding, dilation))
    assert not np.array_equal(got, im2col.im2col(x, kernel, stride, padding, dilation))


def test_the_doubles_kernels_broadcast_reduce_and_index_as_cupy(strict_double):
    cp = strict_double
    square = cp.ElementwiseKernel("T x, T y", "T z", "z = (x - y) * (x - y)", "squared_diff")
    a, b = device(np.arange(12.0).reshape(3, 4)), device(np.array([[1.0], [2.0], [3.0]]))
    assert np.array_equal(square(a, b).get(), (np.arange(12.0).reshape(3, 4) - [[1], [2], [3]]) ** 2)
    assert np.array_equal(square(a, 5.0).get(), (np.arange(12.0).reshape(3, 4) - 5) ** 2)
    total = cp.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "total")
    assert np.array_equal(total(a, axis=1).get(), np.arange(12.0).reshape(3, 4).sum(1))
    assert total(a, axis=0, keepdims=True).get().shape == (1, 4)
    pick = cp.ElementwiseKernel("raw T m", "T y", "const ptrdiff_t at[] = {i % 3, i / 3}; y = m[at]", "transpose")
    out = device(np.empty(12))
    pick(a, out)
    assert np.array_equal(out.get(), np.arange(12.0).reshape(3, 4).T.ravel())
    flat = cp.ElementwiseKernel("raw T m", "T y", "y = m[i]", "flat")        # the logical order of a view
    assert np.array_equal(flat(a.T, device(np.empty(12))).get(), np.arange(12.0).reshape(3, 4).T.ravel())
    with pytest.raises(RuntimeError, match="does not compile"):
        cp.ElementwiseKernel("T x", "T y", "y = x +", "broken")(a)


# ---------------------------------------------------------------------- Philox dropout
def philox4x32_10(counter, key):
    """Philox4x32-10 in NumPy, written from Salmon et al. 2011: ``counter`` (4, n) and ``key``
    (2, n) of uint32 -> (4, n).  Independent of the kernel: checked on Random123's answers."""
    c = [np.asarray(w, np.uint64) for w in counter]
    k0, k1 = (np.asarray(w, np.uint64) for w in key)
    low = np.uint64(0xFFFFFFFF)
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & low, (k1 + 0xBB67AE85) & low
        p0, p1 = np.uint64(0xD2511F53) * c[0], np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & low, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & low]
    return np.array(c, np.uint64)


def test_the_philox_reference_gives_random123s_known_answers():
    """Random123's tests/kat_vectors, the three philox4x32 10 lines: counter, key -> output."""
    for counter, key, expected in [
            ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([0xffffffff] * 4, [0xffffffff] * 2, [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
             [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1])]:
        assert philox4x32_10(counter, key).tolist() == expected


def reference_uniforms(seed, offset, n):
    """Numbers offset .. offset + n - 1 of the stream ``seed``, as the kernel makes them."""
    count = np.arange(offset, offset + n, dtype=np.uint64)
    low = np.uint64(0xFFFFFFFF)
    zero = np.zeros(n, np.uint64)
    words = philox4x32_10([count & low, count >> np.uint64(32), zero, zero],
                          [np.uint64(seed) & low, np.uint64(seed) >> np.uint64(32)])
    return ((words[0] >> np.uint64(5)).astype(np.float64) * 67108864.0
            + (words[1] >> np.uint64(6)).astype(np.float64)) / 9007199254740992.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_masks_on_the_device_are_the_philox_stream(fake_cupy, dtype):
    """Each mask is the next stretch of the stream: the reference's numbers against p, bit for bit,
    the offset carried across 2**32 (the counter's second word)."""
    seed, p, shape = 0x123456789ABCDEF, 0.3, (5, 7, 3)
    state = backend.cuda_generator_state(0)
    backend.cuda_manual_seed(seed)
    state[1:2].fill(np.uint64(2**32 - 50))
    offset = 2**32 - 50
    for _ in range(2):
        mask = fused.dropout_mask(shape, np.dtype(dtype), p, 1 / (1 - p), state)
        expected = np.where(reference_uniforms(seed, offset, mask.size) >= p, dtype(1 / (1 - p)), dtype(0))
        assert backend.to_host(mask).dtype == dtype
        assert np.array_equal(backend.to_host(mask).ravel(), expected)
        offset += mask.size
        assert backend.to_host(state).tolist() == [seed, offset]
    u = reference_uniforms(seed, 0, 200_000)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.003 and abs((u < 0.3).mean() - 0.3) < 0.003


def test_a_dropout_mask_is_two_kernels_and_no_copy(strict_double):
    from cupy_double import STATE
    x = tinyres.tensor(randn(4, 6), device="cuda:0")
    F.dropout(x)                                     # the generator's state made on the device
    before, transfers = STATE.launches, len(STATE.transfers)
    F.dropout(x, 0.2)
    assert STATE.launches - before == 3 and len(STATE.transfers) == transfers   # mask, advance, x * mask
