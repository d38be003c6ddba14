"""The exercises, each defined in one place: its name, what the learner's file must define,
and the function that checks it.  The stub the learner starts from is ``stubs/<name>.py``.

Every check draws its inputs from ``numpy.random.default_rng(seed)``, in float64, small
enough for full finite differences.  See ``checker.py`` for the two oracles.
"""
from dataclasses import dataclass

import numpy as np

from ...core.tensor import tensor
from ...nn import functional as F

from . import reference
from .checker import (FD_TOLERANCE, REF_TOLERANCE, ExerciseError, as_array, call, compare, numeric_gradients,
                      strided)


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    functions: tuple     # what the learner's file must define
    docs: str            # where the math is derived
    check: callable      # check(module, report, rng)


EXERCISES = {}


def exercise(name, title, functions, docs):
    def register(check):
        EXERCISES[name] = Exercise(name, title, tuple(functions), docs, check)
        return check
    return register


# ---------------------------------------------------------------------- the shared check of a layer

def check_layer(report, label, forward, backward, inputs, grad_names, expected, rng, input_names=None):
    """One case of a layer written as ``forward(*inputs) -> (y, cache)`` and
    ``backward(gy, cache) -> one gradient per input``.

    ``expected(*tensors)`` is tinyres's op.  Checks the forward against it, the backward
    against it under a random ``gy``, and the backward against finite differences of the
    learner's own forward; and that forward leaves its inputs alone."""
    input_names = input_names or [g[1:] for g in grad_names]
    originals = [a.copy() for a in inputs]
    out = call(forward, *inputs)
    for name, a, original in zip(input_names, inputs, originals):
        if not np.array_equal(a, original):
            raise ExerciseError(f"{forward.__name__} changed its input {name} in place; compute into new arrays")
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(f"{forward.__name__} must return (output, cache), got {type(out).__name__}")
    y, cache = out
    want_y = reference.value(expected, inputs)
    y = as_array(y, f"{forward.__name__}'s output", want_y.shape)
    gy = rng.standard_normal(want_y.shape)
    _, want_grads = reference.run(expected, inputs, gy)
    compare(report, f"forward{label} vs tinyres", "y", y, want_y, REF_TOLERANCE, "tinyres")
    grads = call(backward, gy, cache)
    if len(grad_names) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if not isinstance(grads, (tuple, list)) or len(grads) != len(grad_names):
        raise ExerciseError(f"{backward.__name__} must return {len(grad_names)} gradients "
                            f"({', '.join(grad_names)}), got {type(grads).__name__}"
                            + (f" of {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
    for name, g, want in zip(grad_names, grads, want_grads):
        compare(report, f"backward{label} vs tinyres", name, g, want, REF_TOLERANCE, "tinyres")

    def objective(*arrays):
        return float(np.sum(gy * np.asarray(forward(*arrays)[0], dtype=np.float64)))
    numeric = numeric_gradients(objective, [a.copy() for a in inputs])
    for name, g, want in zip(grad_names, grads, numeric):
        compare(report, f"backward{label} vs finite differences of your forward", name, g, want, FD_TOLERANCE,
                "finite differences")


def _named(fn, name):
    fn.__name__ = name
    return fn


def _layer_functions(module, prefix, **options):
    """The learner's ``<prefix>_forward`` / ``_backward`` with ``options`` bound."""
    fwd, bwd = getattr(module, f"{prefix}_forward"), getattr(module, f"{prefix}_backward")
    return _named(lambda *a: fwd(*a, **options), fwd.__name__), bwd


def _label(**options):
    return " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""


# ---------------------------------------------------------------------- the exercises

@exercise("relu", "ReLU: forward and backward", ["relu_forward", "relu_backward"], "docs/autograd.md")
def check_relu(module, report, rng):
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5            # finite differences stay away from the kink at 0
    check_layer(report, "", module.relu_forward, module.relu_backward, [x], ["gx"], lambda x: F.relu(x), rng)
    check_layer(report, " (strided input)", module.relu_forward, module.relu_backward, [strided(x)], ["gx"],
                lambda x: F.relu(x), rng)


@exercise("linear", "Linear layer y = x W^T + b: forward and backward", ["linear_forward", "linear_backward"],
          "docs/modules.md")
def check_linear(module, report, rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    for label, arrays in (("", [x, w, b]), (" (strided x)", [strided(x), w, b])):
        check_layer(report, label, module.linear_forward, module.linear_backward, arrays, ["gx", "gw", "gb"],
                    lambda x, w, b: F.linear(x, w, b), rng)


@exercise("softmax_cross_entropy", "Softmax cross-entropy: the loss and its gradient in one, stably",
          ["softmax_cross_entropy"], "docs/losses.md")
def check_softmax_cross_entropy(module, report, rng):
    fn = module.softmax_cross_entropy
    logits, target = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    out = call(fn, logits.copy(), target)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError("softmax_cross_entropy must return (loss, glogits)")
    loss, glogits = out
    want_loss, (want_g,) = reference.run(lambda z: F.cross_entropy(z, tensor(target)), [logits])
    compare(report, "loss vs tinyres's F.cross_entropy (mean over the batch)", "loss",
            np.asarray(loss, dtype=float).reshape(()), want_loss.reshape(()), REF_TOLERANCE, "tinyres")
    compare(report, "glogits vs tinyres", "glogits", glogits, want_g, REF_TOLERANCE, "tinyres")
    numeric, = numeric_gradients(lambda z: float(fn(z, target)[0]), [logits.copy()])
    compare(report, "glogits vs finite differences of your loss", "glogits", glogits, numeric, FD_TOLERANCE,
            "finite differences")
    big = logits * 30 + 1000              # exp(1000) overflows: a stable version subtracts the row max first
    with np.errstate(all="ignore"):
        big_loss, big_g = call(fn, big, target)
    want_big, (want_big_g,) = reference.run(lambda z: F.cross_entropy(z, tensor(target)), [big])
    compare(report, "large logits (30 z + 1000): loss", "loss", np.asarray(big_loss, dtype=float).reshape(()),
            want_big.reshape(()), REF_TOLERANCE, "tinyres")
    compare(report, "large logits (30 z + 1000): glogits", "glogits", big_g, want_big_g, REF_TOLERANCE, "tinyres")


def _cols_locator(shape, kh, kw, stride, padding):
    """'row (c, i, j), column (n, oh, ow)' of an entry of cols: the words of docs/conv.md."""
    n, c, h, w = shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1

    def locate(index):
        row, col = index
        (ci, rest), (ni, pix) = divmod(row, kh * kw), divmod(col, oh * ow)
        return f"row (c={ci}, i={rest // kw}, j={rest % kw}), column (n={ni}, oh={pix // ow}, ow={pix % ow})"
    return locate


IM2COL_CASES = [((2, 3, 5, 5), 3, 3, 1, 1), ((2, 2, 6, 5), 3, 3, 2, 1), ((1, 3, 4, 6), 2, 2, 2, 0),
                ((2, 2, 5, 4), 1, 1, 2, 0)]


@exercise("im2col", "im2col: image patches as the columns of a matrix", ["im2col"], "docs/conv.md")
def check_im2col(module, report, rng):
    for shape, kh, kw, s, p in IM2COL_CASES:
        x = rng.standard_normal(shape)
        want = reference.im2col(x, kh, kw, s, p)
        for label, arr in (("", x), (", strided x", strided(x))):
            cols = call(module.im2col, arr, kh, kw, stride=s, padding=p)
            compare(report, f"x {shape}, {kh}x{kw} kernel, stride {s}, padding {p}{label} vs tinyres", "cols",
                    cols, want, REF_TOLERANCE, "expected", locate=_cols_locator(shape, kh, kw, s, p))


@exercise("col2im", "col2im: the adjoint of im2col (overlapping patches add up)", ["col2im"], "docs/conv.md")
def check_col2im(module, report, rng):
    for shape, kh, kw, s, p in IM2COL_CASES[:3]:
        x = rng.standard_normal(shape)
        cols = rng.standard_normal(reference.im2col(x, kh, kw, s, p).shape)
        gx = call(module.col2im, cols.copy(), shape, kh, kw, stride=s, padding=p)
        case = f"x {shape}, {kh}x{kw} kernel, stride {s}, padding {p}"
        compare(report, f"{case} vs tinyres", "x", gx, reference.col2im(cols, shape, kh, kw, s, p),
                REF_TOLERANCE, "tinyres")
        # col2im(c) is the gradient of sum(c * im2col(x)) with respect to x
        numeric, = numeric_gradients(lambda a: float(np.sum(cols * reference.im2col(a, kh, kw, s, p))), [x])
        compare(report, f"{case} vs finite differences of sum(cols * im2col(x))", "x", gx, numeric, FD_TOLERANCE,
                "finite differences")


@exercise("conv2d", "conv2d by im2col and a matrix multiply: forward and backward",
          ["conv2d_forward", "conv2d_backward"], "docs/conv.md")
def check_conv2d(module, report, rng):
    for shape, o, k, s, p in [((2, 3, 5, 5), 4, 3, 1, 1), ((2, 2, 6, 5), 3, 3, 2, 1), ((2, 3, 4, 4), 2, 1, 2, 0)]:
        x, w, b = rng.standard_normal(shape), rng.standard_normal((o, shape[1], k, k)), rng.standard_normal(o)
        fwd, bwd = _layer_functions(module, "conv2d", stride=s, padding=p)
        check_layer(report, f" (x {shape}, w {w.shape}, stride {s}, padding {p})", fwd, bwd, [x, w, b],
                    ["gx", "gw", "gb"], lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p), rng)


def _distinct(shape, rng):
    """Values at least 0.01 apart, so that no window has a tie and eps = 1e-6 moves no maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + 0.001 * rng.random(shape) - 1.0)


@exercise("max_pool", "Max pooling backward: the gradient goes to each window's maximum",
          ["max_pool_forward", "max_pool_backward"], "docs/pooling.md")
def check_max_pool(module, report, rng):
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:         # (3, 2, 1): overlapping windows, as ResNet's stem
        fwd, bwd = _layer_functions(module, "max_pool", kernel_size=k, stride=s, padding=p)
        check_layer(report, _label(kernel_size=k, stride=s, padding=p), fwd, bwd, [_distinct((2, 2, 6, 6), rng)],
                    ["gx"], lambda x: F.max_pool2d(x, k, s, p), rng)
    # ties: finite differences mean nothing there; tinyres (as torch) sends the gradient to the
    # first maximum of the window in row-major order
    x = rng.integers(0, 3, (2, 2, 6, 6)).astype(np.float64)
    fwd, bwd = _layer_functions(module, "max_pool", kernel_size=3, stride=2, padding=1)
    y, cache = call(fwd, x)
    gy = rng.standard_normal(np.shape(y))
    _, (want,) = reference.run(lambda t: F.max_pool2d(t, 3, 2, 1), [x], gy)
    compare(report, "backward with ties (the first maximum of a window gets it, as torch)", "gx",
            call(bwd, gy, cache), want, REF_TOLERANCE, "tinyres")


@exercise("batch_norm", "Batch norm backward, in training mode (batch statistics)",
          ["batch_norm_forward", "batch_norm_backward"], "docs/batchnorm.md")
def check_batch_norm(module, report, rng):
    eps = 1e-5
    for shape in [(4, 3, 2, 2), (2, 2, 3, 3)]:
        x = rng.standard_normal(shape) * 2 + 1
        w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
        fwd, bwd = _layer_functions(module, "batch_norm", eps=eps)
        check_layer(report, f" (x {shape})", fwd, bwd, [x, w, b], ["gx", "gw", "gb"],
                    lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=eps), rng,
                    input_names=["x", "weight", "bias"])


BLOCK_PARAMETERS = ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"]


@exercise("basic_block", "A ResNet basic block, relu(bn2(conv2(relu(bn1(conv1(x))))) + x): forward and backward",
          ["basic_block_forward", "basic_block_backward"], "docs/resnet.md")
def check_basic_block(module, report, rng):
    c = 3
    x = rng.standard_normal((2, c, 4, 4))
    params = [rng.standard_normal((c, c, 3, 3)) * 0.3, 1 + 0.1 * rng.standard_normal(c), 0.1 * rng.standard_normal(c),
              rng.standard_normal((c, c, 3, 3)) * 0.3, 1 + 0.1 * rng.standard_normal(c), 0.1 * rng.standard_normal(c)]

    def forward(x, *ps):
        return module.basic_block_forward(x, dict(zip(BLOCK_PARAMETERS, ps)))

    def backward(gy, cache):
        grads = module.basic_block_backward(gy, cache)
        if not isinstance(grads, dict):
            raise ExerciseError(f"basic_block_backward must return a dict of gradients, got {type(grads).__name__}")
        missing = [k for k in ["x"] + BLOCK_PARAMETERS if k not in grads]
        if missing:
            raise ExerciseError(f"basic_block_backward's dict has no {', '.join(repr(k) for k in missing)}")
        return [grads["x"]] + [grads[k] for k in BLOCK_PARAMETERS]

    names = ["x"] + BLOCK_PARAMETERS
    check_layer(report, "", _named(forward, "basic_block_forward"), _named(backward, "basic_block_backward"),
                [x] + params, [f"g[{n!r}]" for n in names], reference.basic_block, rng, input_names=names)
