"""Fused GPU kernels: the same math as the NumPy code beside them, one CuPy kernel each.

On a GPU every array operation is a kernel launch costing 10-20 us of host time, and a
ResNet step made of small operations waits on the host (docs/performance.md).  These
kernels do in one launch what the CPU path does in several passes.  They are CUDA C in
strings (``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel``), built on first use and
compiled by CuPy once per dtype, so importing tinyres never needs CuPy.  The CuPy test
double (tests/cupy_double_kernels.py) compiles the very same source for the CPU, so the
CI checks each kernel against the NumPy path it replaces.

Conventions: ``x`` is (N, C, *spatial); per-channel values broadcast as (1, C, 1, ...);
sums of floats are accumulated in float64 whatever the dtype.
"""
from ..core.backend import cupy_module

# d, the direction SGD follows: -g to maximize, plus the L2 decay
_DECAY = "T d = maximize ? -g : g; if (weight_decay != 0) d = d + (T)weight_decay * p;"

# ReLU's mask from its output y: 1 where y > 0 or y is NaN (y <= 0 false), else 0
_RELU_GRAD = "const T keep = y <= (T)0 ? (T)0 : (T)1;"
# gx of batch norm in training, from g (gy, or ReLU's masked gy):
#     gx = (w / sigma) * (g - (gb + x_hat * gw) / m)
_BN_GRAD_INPUT = ("T x_hat = (x - mean) * inv_std;"
                  "gx = (g - (x_hat * (T)(gw * inv_m) + (T)(gb * inv_m))) * (inv_std * w)")
_BN_GRAD_IN = "T x, T mean, T inv_std, T w, T gb, T gw, float64 inv_m"

_SOURCES = {
    # Batch norm, forward.  One reduction gives both sums of every channel, shifted by the
    # channel's first value s (no cancellation when the mean is large):
    #     S1 = sum(x - s),  S2 = sum((x - s)^2)          (k = 0 and k = 1 of a broadcast pair)
    "bn_sums": ("ReductionKernel", (
        "T x, T s, int8 k", "float64 y",
        "k == 0 ? (double)x - (double)s : ((double)x - (double)s) * ((double)x - (double)s)",
        "a + b", "y = a", "0")),
    #     mu = s + S1/m,  var = S2/m - (S1/m)^2,  1/sigma = 1/sqrt(var + eps)
    "bn_stats": ("ElementwiseKernel", (
        "float64 s1, float64 s2, T s, float64 inv_m, float64 eps", "T mean, T var, T inv_std",
        "double d = s1 * inv_m; double v = s2 * inv_m - d * d; v = v > 0 ? v : 0.0;"
        "mean = (T)((double)s + d); var = (T)v; inv_std = (T)(1.0 / sqrt(v + eps))")),
    #     running <- (1 - f) running + f batch      (the variance unbiased: var * m / (m - 1))
    "bn_running": ("ElementwiseKernel", (
        "T mean, T var, float64 f, float64 unbias", "R running_mean, R running_var",
        "running_mean = (R)((1 - f) * (double)running_mean + f * (double)mean);"
        "running_var = (R)((1 - f) * (double)running_var + f * (double)var * unbias)")),
    #     y = (x - mu) * (w / sigma) + b
    "bn_normalize": ("ElementwiseKernel", (
        "T x, T mean, T inv_std, T w, T b", "T y",
        "y = (x - mean) * (w * inv_std) + b")),
    # ... with what follows it in a residual block folded in (``add``: the shortcut r):
    #     y = relu((x - mu) * (w / sigma) + b [+ r])      (NaN passes, as xp.maximum)
    "bn_normalize_relu": ("ElementwiseKernel", (
        "T x, T mean, T inv_std, T w, T b, T r, bool add", "T y",
        "T v = (x - mean) * (w * inv_std) + b; if (add) v = v + r; y = v < (T)0 ? (T)0 : v")),
    # ReLU's backward read from its output: g = gy * (y > 0), NaN passing (as LeakyReLU's)
    "relu_grad": ("ElementwiseKernel", ("T gy, T y", "T g", _RELU_GRAD + "g = gy * keep")),
    # Batch norm, backward.  One reduction: gb = sum(gy) and gw = sum(gy * x_hat) (k = 0, 1).
    "bn_grad_sums": ("ReductionKernel", (
        "T gy, T x, T mean, T inv_std, int8 k", "T y",
        "k == 0 ? (double)gy : (double)gy * (double)((x - mean) * inv_std)",
        "a + b", "y = (T)a", "0")),
    #     gx = (w / sigma) * (gy - (gb + x_hat * gw) / m)    (training: the batch's statistics)
    "bn_grad_input": ("ElementwiseKernel", (
        "T g, " + _BN_GRAD_IN, "T gx", _BN_GRAD_INPUT)),
    # ... after a folded ReLU (its output y): the sums and gx of g = gy * (y > 0), and g itself
    # for the shortcut (gr) when one was added
    "bn_relu_grad_sums": ("ReductionKernel", (
        "T gy, T y, T x, T mean, T inv_std, int8 k", "T out",
        "k == 0 ? (double)(gy * (y <= (T)0 ? (T)0 : (T)1)) : "
        "(double)(gy * (y <= (T)0 ? (T)0 : (T)1)) * (double)((x - mean) * inv_std)",
        "a + b", "out = (T)a", "0")),
    "bn_relu_grad_input": ("ElementwiseKernel", (
        "T gy, T y, " + _BN_GRAD_IN, "T gx", _RELU_GRAD + "const T g = gy * keep;" + _BN_GRAD_INPUT)),
    "bn_relu_grad_input_shortcut": ("ElementwiseKernel", (
        "T gy, T y, " + _BN_GRAD_IN, "T gx, T gr", _RELU_GRAD + "const T g = gy * keep; gr = g;" + _BN_GRAD_INPUT)),
    # im2col with the padding in the kernel:
    #     cols[c, i, j, n, oh, ow] = x[n, c, oh*sh + i*dh - top, ow*sw + j*dw - left]  (fill outside x)
    "im2col": ("ElementwiseKernel", (
        "raw T x, int64 KH, int64 KW, int64 N, int64 OH, int64 OW, int64 H, int64 W, int64 sh, int64 sw, "
        "int64 top, int64 left, int64 dh, int64 dw, T fill", "T col",
        "ptrdiff_t r = i; const ptrdiff_t ow = r % OW; r /= OW; const ptrdiff_t oh = r % OH; r /= OH;"
        "const ptrdiff_t b = r % N; r /= N; const ptrdiff_t kj = r % KW; r /= KW;"
        "const ptrdiff_t ki = r % KH; const ptrdiff_t c = r / KH;"
        "const ptrdiff_t h = oh * sh + ki * dh - top, w = ow * sw + kj * dw - left;"
        "if (h >= 0 && h < H && w >= 0 && w < W) { const ptrdiff_t at[] = {b, c, h, w}; col = x[at]; }"
        "else { col = fill; }")),
    # col2im's loop as a gather (no atomics, a fixed order):  gxpad[n, c, h, w] += the sum, over
    # the kernel offsets (i, j) in order, of cols[c, i, j, n, oh, ow] with h = oh*sh + i*dh, w = ow*sw + j*dw
    "add_windows": ("ElementwiseKernel", (
        "raw T cols, int64 C, int64 KH, int64 KW, int64 N, int64 OH, int64 OW, int64 HP, int64 WP, "
        "int64 sh, int64 sw, int64 dh, int64 dw", "T gx",
        "ptrdiff_t r = i; const ptrdiff_t w = r % WP; r /= WP; const ptrdiff_t h = r % HP; r /= HP;"
        "const ptrdiff_t c = r % C; const ptrdiff_t b = r / C;"
        "T acc = 0; bool hit = false;"
        "for (ptrdiff_t ki = 0; ki < KH; ++ki) {"
        "  const ptrdiff_t hh = h - ki * dh; if (hh < 0 || hh % sh != 0 || hh / sh >= OH) continue;"
        "  for (ptrdiff_t kj = 0; kj < KW; ++kj) {"
        "    const ptrdiff_t ww = w - kj * dw; if (ww < 0 || ww % sw != 0 || ww / sw >= OW) continue;"
        "    const T v = cols[((((c * KH + ki) * KW + kj) * N + b) * OH + hh / sh) * OW + ww / sw];"
        "    acc = hit ? acc + v : v; hit = true;"
        "  }"
        "}"
        "if (hit) gx = gx + acc")),
    # SGD, one parameter (_DECAY):  d = g (-g to maximize) + weight_decay * p;  with momentum,
    #     buf = d (first step) or momentum * buf + (1 - dampening) * d,  d = d + momentum * buf
    #     (Nesterov) or buf;   p = p - lr * d
    "sgd": ("ElementwiseKernel", (
        "T g, float64 lr, float64 momentum, float64 dampening, float64 weight_decay, "
        "bool nesterov, bool maximize, bool first", "T p, T buf",
        _DECAY +
        "if (momentum != 0) {"
        "  buf = first ? d : (T)momentum * buf + (dampening != 0 ? (T)(1 - dampening) * d : d);"
        "  d = nesterov ? d + (T)momentum * buf : buf;"
        "}"
        "p = p - (T)lr * d")),
    "sgd_plain": ("ElementwiseKernel", (             # the same without momentum (no buffer)
        "T g, float64 lr, float64 weight_decay, bool maximize", "T p",
        _DECAY + "p = p - (T)lr * d")),
}
# Adam, one parameter, in torch's order (as ``optim.Adam``): the decay, the first moment by
# torch's lerp, the second moment, (AMSGrad's running maximum), then
#     p = p - step_size * m / (sqrt(v) / bias2_sqrt + eps),
# step_size = lr / (1 - beta1^t) and bias2_sqrt = sqrt(1 - beta2^t) computed in double
# precision from the step t, which (as lr) is a 0-d device array: a CUDA graph replays them.
_ADAM = ("const double step_size = lr / (1 - pow(beta1, t)), bias2_sqrt = sqrt(1 - pow(beta2, t));"
         "T d = maximize ? -g : g;"
         "if (weight_decay != 0 && decoupled) p = p * (T)(1 - lr * weight_decay);"
         "if (weight_decay != 0 && !decoupled) d = d + (T)weight_decay * p;"
         "const T w1 = (T)(1 - beta1);"
         "m = (w1 < (T)0.5 && w1 > (T)-0.5) ? m + w1 * (d - m) : d - (d - m) * ((T)1 - w1);"
         "v = v * (T)beta2 + (T)(1 - beta2) * d * d;"
         "%s"
         "p = p + (T)(-step_size) * m / (sqrt(%s) / (T)bias2_sqrt + (T)eps)")
_ADAM_IN = ("T g, float64 lr, float64 beta1, float64 beta2, float64 eps, float64 weight_decay, "
            "bool decoupled, bool maximize, float64 t")
_SOURCES["adam"] = ("ElementwiseKernel", (_ADAM_IN, "T p, T m, T v", _ADAM % ("", "v")))
_SOURCES["adam_amsgrad"] = ("ElementwiseKernel", (_ADAM_IN, "T p, T m, T v, T v_max",
                                                  _ADAM % ("v_max = v_max > v ? v_max : v;", "v_max")))

# Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"), the
# counter-based generator of cuRAND and PyTorch: ten rounds over a 128-bit counter c under a
# 64-bit key k, each round two 32x32 -> 64-bit products,
#     c <- (hi(M1 c2) ^ c1 ^ k0,  lo(M1 c2),  hi(M0 c0) ^ c3 ^ k1,  lo(M0 c0)),
# the key bumped by the Weyl constants (W0, W1) between rounds.  Number n of the stream of
# seed s is a pure function of (s, n) -- the counter (n, 0), the key s -- so thread i draws
# number offset + i with no state to share, and a replayed graph (the offset advanced on
# the device) draws new ones.  Two of the four words give a double in [0, 1) with 53 bits.
_PHILOX = r"""
__device__ inline double tinyres_uniform(unsigned long long seed, unsigned long long n) {
    unsigned int c0 = (unsigned int)n, c1 = (unsigned int)(n >> 32), c2 = 0u, c3 = 0u;
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const unsigned long long p0 = 0xD2511F53ull * c0, p1 = 0xCD9E8D57ull * c2;
        c0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0; c1 = (unsigned int)p1;
        c2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1; c3 = (unsigned int)p0;
    }
    return ((c0 >> 5) * 67108864.0 + (c1 >> 6)) * (1.0 / 9007199254740992.0);
}
"""
# Dropout's mask: number offset + i of the stream (state = [seed, offset]) against p,
#     mask = u >= p ? 1 / (1 - p) : 0,
# then the offset moves past the numbers drawn (on the device: a graph repeats it).
_SOURCES["dropout_mask"] = ("ElementwiseKernel", (
    "raw uint64 state, float64 p, T scale", "T mask",
    "mask = tinyres_uniform(state[0], state[1] + (unsigned long long)i) >= p ? scale : (T)0"),
    {"preamble": _PHILOX})
_SOURCES["philox_advance"] = ("ElementwiseKernel", ("uint64 n", "uint64 offset", "offset = offset + n"))
# the error function, CUDA's own (correctly rounded to within 2 ulp in both precisions)
_SOURCES["erf"] = ("ElementwiseKernel", ("T x", "T y", "y = erf(x)"))
_KERNELS = {}
_PAIRS = {}


def kernel(name):
    """The CuPy kernel ``name`` (a key of ``_SOURCES``), built once."""
    k = _KERNELS.get(name)
    if k is None:
        kind, args, *options = _SOURCES[name]
        k = _KERNELS[name] = getattr(cupy_module(), kind)(*args, name=f"tinyres_{name}", **dict(*options))
    return k


def _pair(x):
    """The int8 array [0, 1] shaped (2, 1, ..., 1) on x's GPU: it splits a reduction in two."""
    key = (x.device.id, x.ndim)
    if key not in _PAIRS:
        _PAIRS[key] = cupy_module().arange(2, dtype="int8").reshape((2,) + (1,) * x.ndim)
    return _PAIRS[key]


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _over_channels(x):
    """The axes of x[None] a per-channel reduction sums over (n and the spatial ones)."""
    return (1,) + tuple(range(3, x.ndim + 1))


def batch_norm_statistics(x, eps, running_mean, running_var, factor):
    """(mu, var, 1/sigma) of each channel of ``x``: one reduction and one per-channel
    kernel; the running statistics updated by one more (see ``BatchNormFunction``)."""
    c = x.shape[1]
    m = x.size // c
    shift = x[(slice(0, 1), slice(None)) + (slice(0, 1),) * (x.ndim - 2)]
    sums = kernel("bn_sums")(x[None], shift[None], _pair(x), axis=_over_channels(x))
    mean, var, inv_std = kernel("bn_stats")(sums[0], sums[1], shift.reshape(c), 1.0 / m, float(eps))
    if running_mean is not None:
        kernel("bn_running")(mean, var, float(factor), m / (m - 1), running_mean, running_var)
    return mean, var, inv_std


def batch_norm_normalize(x, mean, inv_std, w, b, y, relu=False, residual=None):
    """y = (x - mu) * (w / sigma) + b, written into ``y``; with ``relu``,
    y = relu(that [+ residual]) in the same kernel."""
    k = x.ndim
    stats = (x, _per_channel(mean, k), _per_channel(inv_std, k), _per_channel(w, k), _per_channel(b, k))
    if relu:
        kernel("bn_normalize_relu")(*stats, 0 if residual is None else residual, residual is not None, y)
    else:
        kernel("bn_normalize")(*stats, y)
    return y


def batch_norm_backward(gy, x, mean, inv_std, weight, training, y=None, shortcut=False):
    """(gx, gw, gb) of batch norm: one reduction for gw and gb, one elementwise kernel for gx.
    With ``y``, the output of a folded ReLU, of g = gy * (y > 0) instead of gy, and with
    ``shortcut`` g too, last (the gradient of the residual added before the ReLU)."""
    k, m = x.ndim, x.size // x.shape[1]
    mean, inv_std = _per_channel(mean, k), _per_channel(inv_std, k)
    w = 1 if weight is None else _per_channel(weight, k)
    if y is not None and not training:            # eval: mask first, then the plain backward
        g = kernel("relu_grad")(gy, y)
        return batch_norm_backward(g, x, mean, inv_std, weight, False) + ((g,) if shortcut else ())
    stats = (x[None], mean[None], inv_std[None], _pair(x))
    if y is None:
        sums = kernel("bn_grad_sums")(gy[None], *stats, axis=_over_channels(x))
    else:
        sums = kernel("bn_relu_grad_sums")(gy[None], y[None], *stats, axis=_over_channels(x))
    gb, gw = sums[0], sums[1]
    if not training:
        return gy * (inv_std * w), gw, gb
    rest = (x, mean, inv_std, w, _per_channel(gb, k), _per_channel(gw, k), 1.0 / m)
    if y is None:
        return kernel("bn_grad_input")(gy, *rest), gw, gb
    if not shortcut:
        return kernel("bn_relu_grad_input")(gy, y, *rest), gw, gb
    gx, gr = kernel("bn_relu_grad_input_shortcut")(gy, y, *rest)
    return gx, gw, gb, gr


def im2col(x, cols, stride, padding, dilation, fill):
    """cols (C, KH, KW, N, OH, OW) = the patches of ``x``, padding included: one kernel."""
    _, kh, kw, n, oh, ow = cols.shape
    (top, _), (left, _) = padding
    kernel("im2col")(x, kh, kw, n, oh, ow, x.shape[2], x.shape[3], stride[0], stride[1], top, left,
                     dilation[0], dilation[1], fill, cols)
    return cols


def add_windows(gxpad, cols, stride, dilation):
    """gxpad += every column of ``cols`` on the window it came from: one kernel."""
    c, kh, kw, n, oh, ow = cols.shape
    kernel("add_windows")(cols, c, kh, kw, n, oh, ow, gxpad.shape[2], gxpad.shape[3],
                          stride[0], stride[1], dilation[0], dilation[1], gxpad)


def sgd(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One SGD step of one parameter, its momentum buffer ``buf`` included (None without
    momentum): one kernel."""
    if momentum == 0:
        kernel("sgd_plain")(grad, lr, weight_decay, maximize, p)
    else:
        kernel("sgd")(grad, lr, momentum, dampening, weight_decay, nesterov, maximize, first, p, buf)


def adam(p, grad, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, t):
    """One Adam step of one parameter and its moments (``v_max``: AMSGrad's, or None): one
    kernel.  ``lr`` and the step ``t`` may be 0-d float64 device arrays (as the optimizer gives)."""
    args = (grad, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, t, p, m, v)
    if v_max is None:
        kernel("adam")(*args)
    else:
        kernel("adam_amsgrad")(*args, v_max)


def dropout_mask(shape, dtype, p, scale, state):
    """Dropout's mask of ``shape``: 0 with probability ``p``, else ``scale``, from the
    Philox stream ``state`` ([seed, offset], uint64, on the device), which moves past the
    numbers drawn: two kernels, both capturable."""
    cp = cupy_module()
    mask = cp.empty(shape, dtype)
    kernel("dropout_mask")(state, float(p), mask.dtype.type(scale), mask)
    kernel("philox_advance")(mask.size, state[1:])
    return mask


def erf(x):
    """erf of every element of ``x``, in x's dtype: one kernel."""
    return kernel("erf")(x)
