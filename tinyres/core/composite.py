"""torch's everyday tensor methods, built from the differentiable ops of ``ops.py``.

Each function here is a composition of ops that already have a hand-written backward
(``expand`` is ``broadcast_to``, ``gather`` is advanced indexing, ``logsumexp`` is max, exp,
sum and log), so its first derivative -- and, because every backward is itself built of
ops, its second -- comes from theirs; nothing here writes a backward except ``einsum``,
whose gradient is again an einsum, and ``remainder`` and ``erf``, whose backwards are made
of ops.  Indices (``argsort``, ``topk``'s positions, the comparisons) are integers or bools
and carry no gradient, as in torch.

Importing this module installs the methods on Tensor (``x.gather(1, idx)``), as ops.py does.
"""
import builtins
import collections
import math
import numbers

import numpy

from . import backend
from .backend import get_array_module
from ..kernels import special
from .engine import Function
from .ops import (_as_float, _as_tensor, _axes, _axis, _inplace, _operands, _setitem, abs, broadcast_to, compare, exp, getitem,
                  log, max, reshape, sqrt, sum, sum_to, where)
from .tensor import Tensor, _make, size_arg

# ---------------------------------------------------------------------- comparisons

def _comparison(name, numpy_name, symbol):
    def comparison(input, other):
        return compare(numpy_name, input, other)
    comparison.__name__ = comparison.__qualname__ = name
    comparison.__doc__ = f"``input {symbol} other`` elementwise: a bool tensor, no gradient."
    return comparison


eq = _comparison("eq", "equal", "==")
ne = _comparison("ne", "not_equal", "!=")
lt = _comparison("lt", "less", "<")
le = _comparison("le", "less_equal", "<=")
gt = _comparison("gt", "greater", ">")
ge = _comparison("ge", "greater_equal", ">=")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (torch's and NumPy's rule)."""
    input, other = _as_tensor(input, "isclose"), _as_tensor(other, "isclose")
    xp = get_array_module(input.data)
    return Tensor(xp.isclose(input.data, other.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when ``isclose`` holds everywhere (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


# ---------------------------------------------------------------------- shapes

def expand(x, *sizes):
    """``x`` broadcast to ``sizes`` (-1 keeps a dimension; new dimensions go in front).
    Its gradient sums over the expanded axes (``broadcast_to``'s backward)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                           f"tensor's number of dimensions ({x.ndim}), got sizes {sizes} for shape {x.shape}")
    lead = len(sizes) - x.ndim
    shape = []
    for i, n in enumerate(sizes):
        old = x.shape[i - lead] if i >= lead else None
        if n == -1:
            if old is None:
                raise RuntimeError(f"expand: -1 is not allowed for a new leading dimension, got sizes {sizes}")
            n = old
        if old is not None and old != 1 and old != n:
            raise RuntimeError(f"expand: the expanded size ({n}) must match the existing size ({old}) "
                               f"at non-singleton dimension {i}; got sizes {sizes} for shape {x.shape}")
        shape.append(n)
    return broadcast_to(x, tuple(shape))


def expand_as(x, other):
    return expand(x, *other.shape)


def repeat(x, *sizes):
    """``x`` tiled ``sizes[i]`` times along each dimension (torch's repeat, NumPy's tile):
    reshape to (1, d0, 1, d1, ...), broadcast to (r0, d0, r1, d1, ...), flatten pairs."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise RuntimeError(f"repeat: the number of repeat dimensions ({len(sizes)}) can not be smaller "
                           f"than the tensor's number of dimensions ({x.ndim})")
    dims = (1,) * (len(sizes) - x.ndim) + x.shape
    paired = [n for d in dims for n in (1, d)]
    wide = [n for r, d in zip(sizes, dims) for n in (r, d)]
    return reshape(broadcast_to(reshape(x, *paired), wide), *(r * d for r, d in zip(sizes, dims)))


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``x`` along ``dim``: each of ``split_size`` (the last may be smaller), or of the
    listed sizes, which must add up to the dimension.  Each piece is a slice (a view)."""
    axis = _axis(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, numbers.Integral):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: expected a positive split_size, got {step}")
        sizes = [min(step, n - start) for start in range(0, n, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if numpy.sum(sizes) != n:
            raise RuntimeError(f"split: expected split sizes that sum to the size of dimension {dim} "
                               f"({n}), got {sizes}")
    starts = numpy.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (slice(int(s), int(s) + k),)) for s, k in zip(starts, sizes))


def chunk(x, chunks, dim=0):
    """``chunks`` pieces (or fewer) of equal size ``ceil(n / chunks)``, the last possibly smaller."""
    if chunks <= 0:
        raise ValueError(f"chunk: expected a positive number of chunks, got {chunks}")
    n = x.shape[_axis(dim, x.ndim, "chunk")]
    return split(x, builtins.max(-(-n // chunks), 1), dim)


def contiguous(x, memory_format=None):
    """``x`` itself: every tinyres tensor is laid out as its shape says."""
    return x


# ---------------------------------------------------------------------- filling and indexing

def masked_fill(x, mask, value):
    """``value`` where ``mask`` is True, ``x`` elsewhere (the mask broadcasts).
    The gradient reaches ``x`` where the mask is False (``where``'s backward)."""
    mask = _as_tensor(mask, "masked_fill")
    if mask.dtype != backend.bool_:
        raise RuntimeError(f"masked_fill: masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill: expected a 0-dimensional value tensor, got shape {value.shape}")
        value = value.to(x.dtype)
    else:
        value = Tensor(get_array_module(x.data).asarray(value, dtype=x.dtype))
    return where(mask, value, x)


def _along(x, dim, index, op):
    """The advanced index that reads ``x[i0, .., index[i0, .., ik, ..], ..]`` along ``dim``."""
    index = _as_tensor(index, op)
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected an integer index, got {index.dtype}")
    if index.ndim != x.ndim:
        raise RuntimeError(f"{op}: expected an index with as many dimensions as the tensor ({x.ndim}), "
                           f"got shape {index.shape}")
    axis = _axis(dim, x.ndim, op)
    for a, (i, n) in enumerate(zip(index.shape, x.shape)):
        if a != axis and i > n:
            raise RuntimeError(f"{op}: index size {i} exceeds the tensor's size {n} at dimension {a}")
    xp = get_array_module(x.data)
    idx = backend.to_device(index.data, x.device) if index.device != x.device else index.data
    if idx.size and (idx.min() < -x.shape[axis] or idx.max() >= x.shape[axis]):
        raise IndexError(f"{op}: index out of range for dimension {dim} of size {x.shape[axis]}")
    grids = xp.ogrid[tuple(slice(0, n) for n in index.shape)]
    return tuple(idx if a == axis else g for a, g in enumerate(grids))


def gather(x, dim, index):
    """``y[i][j][k] = x[i][index[i][j][k]][k]`` for dim=1.  The gradient scatters back and
    adds where the index repeats (advanced indexing's backward)."""
    return getitem(x, _along(x, dim, index, "gather"))


def scatter(x, dim, index, src=None, value=None):
    """A copy of ``x`` with ``src`` (a tensor shaped like ``index``, or a scalar ``value``)
    written to the places ``index`` names along ``dim``.  The gradient flows to ``x`` where
    nothing was written and to ``src`` where it was read (``__setitem__``'s backward).
    Where the index repeats a place, one of the values wins (torch leaves which unspecified)."""
    if src is None and value is None:
        raise TypeError("scatter: expected src or value")
    places = _along(x, dim, index, "scatter")
    out = x.clone()
    if src is None or not isinstance(src, Tensor):
        src = value if src is None else src
    elif src.shape != index.shape:
        src = src[tuple(slice(0, n) for n in index.shape)]
    out[places] = src
    return out


SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])


def argsort(x, dim=-1, descending=False, stable=False):
    """The positions that sort ``x`` along ``dim`` (a stable sort, so ties keep their order;
    NaN counts as the largest value, as torch).  Descending: the ascending sort of ``x``
    reversed, read backwards (no negation, so bools, unsigned ints and NaN sort right)."""
    if x.ndim == 0:                  # a 0-d tensor sorts as one element (torch)
        return argsort(x.reshape(1), dim, descending).reshape(())
    axis = _axis(dim, x.ndim, "argsort")
    xp = get_array_module(x.data)
    data = x.data.astype(numpy.int8) if x.data.dtype == backend.bool_ else x.data
    if not descending:
        return Tensor(xp.argsort(data, axis=axis, kind="stable").astype(backend.int64))
    backwards = xp.flip(xp.argsort(xp.flip(data, axis), axis=axis, kind="stable"), axis)
    return Tensor((data.shape[axis] - 1 - backwards).astype(backend.int64))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices): ``x`` sorted along ``dim``; the values are ``gather(x, dim, indices)``,
    so the gradient goes back to each value's original place."""
    indices = argsort(x, dim, descending)
    return SortResult(gather(x, dim, indices) if x.ndim else x, indices)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, largest first."""
    if x.ndim == 0:
        values, indices = topk(x.reshape(1), k, dim, largest, sorted)
        return TopkResult(values.reshape(()), indices.reshape(()))
    axis = _axis(dim, x.ndim, "topk")
    if not 0 <= k <= (x.shape[axis] if x.ndim else 1):
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {dim} of size {x.shape[axis]}")
    indices = argsort(x, axis, descending=largest)
    indices = getitem(indices, (slice(None),) * axis + (slice(0, k),))
    return TopkResult(gather(x, axis, indices), indices)


def bernoulli_(x, p=0.5, generator=None):
    """Fill ``x`` in place with 1 (probability ``p``) or 0, drawn from the default generator."""
    xp = get_array_module(x.data)
    p = p.data if isinstance(p, Tensor) else p
    draw = (generator or backend.default_generator()).random(x.shape)
    x.copy_(Tensor(xp.asarray(backend.to_device(numpy.asarray(draw), x.device) < p, dtype=x.dtype)))
    return x


def _fill_drawn(x, draw, name):
    """Write the host draws ``draw`` into ``x`` in place, as ``x.copy_`` (its checks, named ``name``)."""
    return _setitem(x, Ellipsis, Tensor(backend.to_device(numpy.asarray(draw, dtype=x.dtype), x.device)), name)


def normal_(x, mean=0.0, std=1.0, *, generator=None):
    """Fill ``x`` in place with draws from N(mean, std^2), from the default generator (or
    ``generator``); an in-place write as any other (refused on a leaf that requires grad
    outside ``no_grad``)."""
    return _fill_drawn(x, (generator or backend.default_generator()).normal(mean, std, x.shape), "normal_")


def uniform_(x, *bounds, generator=None, **named):
    """Fill ``x`` in place with draws from U(from, to), default U(0, 1): torch's
    ``uniform_(from=0, to=1)`` (``from`` is a Python keyword: positional, or ``**{"from": a}``)."""
    if len(bounds) > 2 or set(named) - {"from", "to"}:
        raise TypeError(f"uniform_: expected (from=0, to=1, *, generator=None), got {bounds} and {sorted(named)}")
    a = bounds[0] if len(bounds) > 0 else named.get("from", 0.0)
    b = bounds[1] if len(bounds) > 1 else named.get("to", 1.0)
    return _fill_drawn(x, (generator or backend.default_generator()).uniform(a, b, x.shape), "uniform_")


# ---------------------------------------------------------------------- reductions

def _amax(x, dims, keepdim):
    """The largest element over ``dims`` (all when None), one axis at a time."""
    axes = _axes(dims, x.ndim, "amax")
    y = x
    for a in axes:
        y = max(y, a, keepdim=True).values
    return y if keepdim else reshape(y, *(n for a, n in enumerate(y.shape) if a not in axes))


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) along ``dim``, computed as m + log(sum(exp(x - m))) with m the
    (detached) maximum, so that large inputs do not overflow; an infinite m is taken as 0,
    as torch does.  Its gradient is softmax(x) along ``dim``."""
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    m = _amax(x.detach(), dims, keepdim=True)
    xp = get_array_module(m.data)
    m = Tensor(xp.where(xp.isinf(m.data), 0, m.data).astype(m.dtype))
    y = log(sum(exp(x - m), dim=dims, keepdim=True)) + m
    return y if keepdim else reshape(y, *_amax(m, dims, keepdim=False).shape)


def _zero_at_zero(s, f):
    """f(s), and 0 with gradient 0 where s is 0: torch's gradient of the norms' roots and powers,
    whose slope at 0 is infinite, is 0 there -- so f is taken of 1 instead, then times 0."""
    with backend.on_device(s.device):
        nonzero = Tensor(s.data != 0)
    return f(where(nonzero, s, 1.0)) * nonzero.to(s.dtype)


def norm(x, p="fro", dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all elements when None): ``(sum |x|^p)^(1/p)``;
    'fro' and 2 are the Euclidean norm, ``inf`` the largest |x|, 1 the sum of |x|."""
    dims = None if dim is None else (tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))
    if p in ("fro", 2):
        return _zero_at_zero(sum(x * x, dim=dims, keepdim=keepdim), sqrt)
    if p == 0:
        with backend.on_device(x.device):
            return sum(Tensor(x.data != 0).to(x.dtype), dim=dims, keepdim=keepdim)    # no gradient, as torch
    if p == float("inf"):
        return _amax(abs(x), dims, keepdim)
    if p == 1:
        return sum(abs(x), dim=dims, keepdim=keepdim)
    if not isinstance(p, numbers.Real) or p <= 0:
        raise ValueError(f"norm: expected p to be 'fro', 0, inf or a positive number, got {p!r}")
    powered = _zero_at_zero(abs(x), lambda a: a ** p)            # for p < 1 the slope of |x|^p at 0 is infinite
    return _zero_at_zero(sum(powered, dim=dims, keepdim=keepdim), lambda s: s ** (1.0 / p))


# ---------------------------------------------------------------------- einsum

class Einsum(Function):
    """y = einsum(equation, *operands).  The gradient of operand i is the einsum of gy with
    the other operands, written to operand i's subscripts: an index summed in y (missing
    from the output) comes back by broadcasting, since y does not depend on where it was."""

    def forward(self, *operands, inputs, output):
        self.inputs, self.output = inputs, output
        self.shapes = [a.shape for a in operands]
        self.save_for_backward(*operands)
        xp = get_array_module(operands[0])
        return xp.einsum(",".join(inputs) + "->" + output, *operands)

    def backward(self, gy):
        operands = self.saved_tensors
        grads = []
        for i, subs in enumerate(self.inputs):
            others = [s for j, s in enumerate(self.inputs) if j != i]
            seen = set(self.output).union(*others)
            kept = "".join(c for c in subs if c in seen)
            g = einsum_parts([self.output] + others, kept, [gy] + [o for j, o in enumerate(operands) if j != i])
            if kept != subs:       # indices only this operand has: y is constant along them
                g = broadcast_to(reshape(g, *(self.shapes[i][k] if c in seen else 1
                                              for k, c in enumerate(subs))), self.shapes[i])
            grads.append(g)
        return tuple(grads)


def einsum_parts(inputs, output, operands):
    return Einsum.apply(*operands, inputs=tuple(inputs), output=output)


def einsum(equation, *operands):
    """Einstein summation as ``torch.einsum('ij,jk->ik', a, b)``: explicit '->' or implicit
    output, '...' for the dimensions not named (broadcast between operands, as torch), and a
    subscript repeated within one operand for its diagonal (``'ii->i'``)."""
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    operands = [_as_tensor(a, "einsum") for a in operands]
    lhs, arrow, output = equation.replace(" ", "").partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: the equation names {len(inputs)} operands, got {len(operands)} tensors")
    inputs, output, operands = _expand_ellipsis(inputs, output if arrow else None, operands)
    for subs, a in zip(inputs, operands):
        if not subs.isalpha() and subs:
            raise ValueError(f"einsum: expected letters as subscripts, got {subs!r}")
        if len(subs) != a.ndim:
            raise ValueError(f"einsum: subscripts {subs!r} name {len(subs)} dimensions for an operand "
                             f"of shape {a.shape}")
    inputs, operands = zip(*(_diagonals(subs, a) for subs, a in zip(inputs, operands)))
    sizes = {}
    for subs, a in zip(inputs, operands):
        for c, n in zip(subs, a.shape):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: subscript {c!r} has size {sizes[c]} in one operand and {n} in another")
    if set(output) - set(sizes) or len(set(output)) != len(output):
        raise ValueError(f"einsum: output subscripts {output!r} must be distinct and name input subscripts")
    dtype = operands[0].dtype
    operands = [a if a.dtype == dtype else a.to(dtype) for a in operands]
    return einsum_parts(inputs, output, operands)


def _expand_ellipsis(inputs, output, operands):
    """'...' replaced by fresh letters, one per unnamed dimension, right-aligned across the
    operands (a size-1 dimension expanded to the others' size, as broadcasting does); the
    implicit output (``output`` None): the '...' letters, then each letter used once, sorted."""
    used = set("".join(inputs) + (output or ""))
    fresh = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    counts = [a.ndim - len(subs.replace("...", "")) if "..." in subs else 0 for subs, a in zip(inputs, operands)]
    width = builtins.max(counts, default=0)
    if builtins.min(counts, default=0) < 0 or width > len(fresh):
        raise ValueError(f"einsum: '...' in {inputs} does not fit the operands' shapes "
                         f"{[a.shape for a in operands]}")
    letters = "".join(fresh[:width])
    inputs = [subs.replace("...", letters[width - k:]) for subs, k in zip(inputs, counts)]
    if output is None:
        named = "".join(inputs)
        output = letters + "".join(sorted(c for c in set(named) if named.count(c) == 1 and c not in letters))
    else:
        output = output.replace("...", letters)
    if not letters:
        return inputs, output, operands
    sizes = {}
    for subs, a in zip(inputs, operands):
        for c, n in zip(subs, a.shape):
            if c in letters and n != 1:
                sizes[c] = n
    expanded = []
    for subs, a in zip(inputs, operands):
        shape = [sizes.get(c, n) if c in letters else n for c, n in zip(subs, a.shape)]
        expanded.append(a.expand(*shape) if len(shape) == a.ndim and tuple(shape) != a.shape else a)
    return inputs, output, expanded


def _diagonals(subs, a):
    """(subscripts, operand) with each letter repeated within ``subs`` taken once: the
    diagonal of those dimensions (a gather, so its gradient goes back to the diagonal)."""
    while len(set(subs)) != len(subs):
        c = next(c for c in subs if subs.count(c) > 1)
        p, q = subs.index(c), subs.index(c, subs.index(c) + 1)
        if a.shape[p] != a.shape[q]:
            raise ValueError(f"einsum: subscript {c!r} is repeated for dimensions of sizes {a.shape[p]} and "
                             f"{a.shape[q]}; a diagonal needs equal sizes")
        rest = [i for i in range(a.ndim) if i not in (p, q)]
        index = Tensor(get_array_module(a.data).arange(a.shape[p]))
        a = a.permute(*rest, p, q)[(Ellipsis, index, index)]
        subs = "".join(subs[i] for i in rest) + c
    return subs, a


# ---------------------------------------------------------------------- elementwise math made of ops

def square(x):
    """x * x."""
    return x * x


def reciprocal(x):
    """1 / x."""
    return 1 / _as_float(x, "reciprocal")


def rsqrt(x):
    """1 / sqrt(x)."""
    return 1 / sqrt(x)


def log2(x):
    """ln x / ln 2."""
    return log(x) / numpy.log(2.0)


def log10(x):
    """ln x / ln 10."""
    return log(x) / numpy.log(10.0)


def sinh(x):
    """(e^x - e^-x) / 2."""
    return (exp(x) - exp(-x)) / 2


def cosh(x):
    """(e^x + e^-x) / 2."""
    return (exp(x) + exp(-x)) / 2


def _flat_gradient(x, values, op):
    """``values(xp, x.data)`` (an array like x's) as a result of x whose gradient is 0 everywhere (a step
    function: sign, floor, round ...), as torch's: ``where`` with an always-true condition."""
    x = _as_tensor(x, op)
    xp = get_array_module(x.data)
    with backend.on_device(x.device):
        values = values(xp, x.data)
        if not x.requires_grad:
            return Tensor(values)
        return where(Tensor(xp.ones(x.shape, dtype=bool)), Tensor(values), x)


def sign(x):
    """-1, 0 or 1 (NaN stays NaN); its gradient is 0."""
    return _flat_gradient(x, lambda xp, a: xp.sign(a), "sign")


def _rounding(name):
    def rounding(x):
        fn = "rint" if name == "round" else name          # round: half to even, as torch
        return _flat_gradient(x, lambda xp, a: getattr(xp, fn)(a), name)
    rounding.__name__ = rounding.__qualname__ = name
    rounding.__doc__ = f"``{name}`` elementwise; its gradient is 0 (a step function), as torch's."
    return rounding


floor, ceil, round, trunc = (_rounding(n) for n in ("floor", "ceil", "round", "trunc"))


def frac(x):
    """x - trunc(x): its gradient is 1."""
    return x - trunc(x)


def floor_divide(a, b):
    """floor(a / b) (Python's ``//``); its gradient is 0."""
    a, b = _operands(a, b, "floor_divide")
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        with backend.on_device(a.device):
            return Tensor(get_array_module(a.data).floor_divide(a.data, b.data))     # integers stay integers
    return floor(a / b)


class Remainder(Function):
    """y = a - floor(a / b) b (Python's ``%``: the sign of b), computed as NumPy's remainder
    (exact, where the formula would round twice).  floor is a step, so
    ga = sum_to(gy),  gb = sum_to(-gy floor(a / b))."""

    def forward(self, a, b):
        xp = get_array_module(a)
        self.quotient, self.shapes = xp.floor_divide(a, b), (a.shape, b.shape)
        return xp.remainder(a, b)

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy * Tensor(self.quotient), self.shapes[1])


def remainder(a, b):
    """a % b elementwise, with the sign of b (as torch's and Python's)."""
    a, b = _operands(a, b, "remainder")
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        with backend.on_device(a.device):
            return Tensor(get_array_module(a.data).remainder(a.data, b.data))
    return Remainder.apply(a, b)


class Erf(Function):
    """y = erf(x) = 2 / sqrt(pi) * integral from 0 to x of e^(-t^2) dt (``kernels.special``).
    gx = gy * 2 / sqrt(pi) * e^(-x^2), in ops: its own gradient is known too."""

    def forward(self, x):
        self.save_for_backward(x)
        return special.erf(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * (exp(-(x * x)) * (2 / math.sqrt(math.pi)))


def erf(x):
    """The error function elementwise (an integer tensor becomes the default float dtype, as in torch)."""
    return Erf.apply(_as_float(x, "erf"))


def _boolean(name, numpy_name):
    def boolean(x):
        x = _as_tensor(x, name)
        with backend.on_device(x.device):
            return Tensor(getattr(get_array_module(x.data), numpy_name)(x.data))
    boolean.__name__ = boolean.__qualname__ = name
    boolean.__doc__ = f"``{numpy_name}`` elementwise: a bool tensor, no gradient."
    return boolean


isnan, isinf, isfinite, logical_not = (_boolean(n, n) for n in ("isnan", "isinf", "isfinite", "logical_not"))


def _bitwise(name, numpy_name):
    def bitwise(a, b):
        a, b = (t if isinstance(t, Tensor) else Tensor(get_array_module((b if t is a else a).data).asarray(t))
                for t in (a, b))
        for t in (a, b):
            if t.dtype.kind not in "biu":
                raise TypeError(f"{name}: expected bool or integer tensors, got {t.dtype}")
        with backend.on_device(a.device):
            return Tensor(getattr(get_array_module(a.data), numpy_name)(a.data, b.data))
    bitwise.__name__ = bitwise.__qualname__ = name
    bitwise.__doc__ = f"``{numpy_name}`` elementwise of bool or integer tensors (``&``, ``|``, ``^``): no gradient."
    return bitwise


bitwise_and, bitwise_or, bitwise_xor = (_bitwise(n, n) for n in ("bitwise_and", "bitwise_or", "bitwise_xor"))


def bitwise_not(x):
    """``~x`` of a bool or integer tensor (logical not for bools): no gradient."""
    x = _as_tensor(x, "bitwise_not")
    if x.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: expected a bool or integer tensor, got {x.dtype}")
    with backend.on_device(x.device):
        return Tensor(get_array_module(x.data).invert(x.data))


# ---------------------------------------------------------------------- shapes made of indexing

def _dim(x, dim, op):
    return _axis(dim, builtins.max(x.ndim, 1), op)


def flip(x, dims):
    """``x`` reversed along each of ``dims`` (a copy, as torch's); the gradient is flipped back."""
    dims = [dims] if isinstance(dims, numbers.Integral) else list(dims)
    index = [slice(None)] * x.ndim
    for d in dims:
        index[_dim(x, d, "flip")] = slice(None, None, -1)
    return getitem(x, tuple(index))


def select(x, dim, index):
    """``x[..., index, ...]`` at position ``dim`` (that dimension removed)."""
    return getitem(x, (slice(None),) * _dim(x, dim, "select") + (index,))


def narrow(x, dim, start, length):
    """The ``length`` elements of ``x`` from ``start`` along ``dim``."""
    return getitem(x, (slice(None),) * _dim(x, dim, "narrow") + (slice(start, start + length),))


def unbind(x, dim=0):
    """The slices of ``x`` along ``dim``, as a tuple (``select`` of each)."""
    d = _dim(x, dim, "unbind")
    return tuple(select(x, d, i) for i in range(x.shape[d]))


def index_select(x, dim, index):
    """The entries ``index`` (a 1-D integer tensor) of ``x`` along ``dim``; the gradient adds
    back where an index repeats (advanced indexing's backward)."""
    index = _as_tensor(index, "index_select")
    if index.ndim > 1 or index.dtype.kind not in "iu":
        raise RuntimeError(f"index_select: expected a 1-D integer index, got {index.dtype} of shape {index.shape}")
    return getitem(x, (slice(None),) * _dim(x, dim, "index_select") + (index.reshape(-1),))


def tril(x, diagonal=0):
    """``x`` with the entries above the ``diagonal``-th diagonal set to 0 (the last two dims)."""
    keep = numpy.tril(numpy.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(Tensor(backend.to_device(keep, x.device)), x, 0.0 if x.dtype.kind == "f" else 0)


def triu(x, diagonal=0):
    """``x`` with the entries below the ``diagonal``-th diagonal set to 0 (the last two dims)."""
    keep = numpy.triu(numpy.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(Tensor(backend.to_device(keep, x.device)), x, 0.0 if x.dtype.kind == "f" else 0)


def dot(a, b):
    """The inner product of two 1-D tensors."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return sum(a * b)


def outer(a, b):
    """a_i b_j: the outer product of two 1-D tensors."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"outer: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def trace(x):
    """The sum of the main diagonal of a 2-D tensor."""
    if x.ndim != 2:
        raise RuntimeError(f"trace: expected a 2D tensor, got {x.ndim}D")
    n = builtins.min(x.shape)
    i = Tensor(backend.to_device(numpy.arange(n), x.device))
    return sum(getitem(x, (i, i)))


def _new(fill):
    def new(x, *size, dtype=None, device=None, requires_grad=False):
        array = fill(size_arg(size, new.__name__))
        return _make(array, dtype or x.dtype, device or x.device, requires_grad)
    new.__name__ = f"new_{fill.__name__}"
    new.__doc__ = f"A new tensor of ``size`` ({fill.__name__}), with x's dtype and device unless given."
    return new


def new_full(x, size, fill_value, dtype=None, device=None, requires_grad=False):
    """A new tensor of ``size`` filled with ``fill_value``, with x's dtype and device unless given."""
    size = (size,) if isinstance(size, numbers.Integral) else size
    return _make(numpy.full(size_arg((size,), "new_full"), fill_value), dtype or x.dtype, device or x.device,
                 requires_grad)


def new_tensor(x, data, dtype=None, device=None, requires_grad=False):
    """A new tensor of ``data`` (copied), with x's dtype and device unless given."""
    return _make(numpy.array(backend.to_host(data.data) if isinstance(data, Tensor) else data),
                 dtype or x.dtype, device or x.device, requires_grad)


def is_tensor(obj):
    """True for a tinyres Tensor."""
    return isinstance(obj, Tensor)


def numel(x):
    """The number of elements of ``x``."""
    return x.numel()


# ---------------------------------------------------------------------- factories

def from_numpy(array):
    """A tensor that shares ``array``'s memory (as torch's): writing one changes the other."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The n x m identity (m defaults to n)."""
    return _make(numpy.eye(n, n if m is None else m), dtype or backend.get_default_dtype(), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` points evenly spaced from ``start`` to ``end``, both included."""
    if steps < 0:
        raise RuntimeError(f"linspace: expected a non-negative number of steps, got {steps}")
    return _make(numpy.linspace(start, end, steps), dtype or backend.get_default_dtype(), device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0..n-1, from the default generator."""
    if n < 0:
        raise RuntimeError(f"randperm: expected a non-negative n, got {n}")
    perm = backend.to_host((generator or backend.default_generator()).permutation(n))
    return _make(numpy.asarray(perm), dtype or backend.int64, device, requires_grad)


for _name, _method in {
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge, "isclose": isclose, "allclose": allclose,
    "expand": expand, "expand_as": expand_as, "repeat": repeat, "split": split, "chunk": chunk,
    "contiguous": contiguous, "masked_fill": masked_fill, "gather": gather, "scatter": scatter,
    "argsort": argsort, "sort": sort, "topk": topk, "bernoulli_": bernoulli_, "normal_": normal_, "uniform_": uniform_, "logsumexp": logsumexp,
    "norm": norm,
    "square": square, "reciprocal": reciprocal, "rsqrt": rsqrt, "log2": log2, "log10": log10, "sinh": sinh,
    "cosh": cosh, "erf": erf, "sign": sign, "floor": floor, "ceil": ceil, "round": round, "trunc": trunc, "frac": frac,
    "isnan": isnan, "isinf": isinf, "isfinite": isfinite, "logical_not": logical_not,
    "flip": flip, "select": select, "narrow": narrow, "unbind": unbind, "index_select": index_select,
    "tril": tril, "triu": triu, "dot": dot, "outer": outer, "trace": trace,
    "new_zeros": _new(numpy.zeros), "new_ones": _new(numpy.ones), "new_empty": _new(numpy.empty), "new_full": new_full,
    "new_tensor": new_tensor,
    "masked_fill_": lambda x, mask, value: _inplace(lambda a, _: masked_fill(a, mask, value), x, None, "masked_fill_"),
    "scatter_": lambda x, dim, index, src=None, value=None: _inplace(
        lambda a, _: scatter(a, dim, index, src, value), x, None, "scatter_"),
    "where": lambda x, condition, y: where(condition, x, y),
    "is_floating_point": lambda x: x.dtype.kind == "f",
    "int": lambda x: x.to(backend.int32), "long": lambda x: x.to(backend.int64),
    "half": lambda x: x.to(backend.float16), "bool": lambda x: x.to(backend.bool_),
    "__floordiv__": floor_divide, "__rfloordiv__": lambda x, other: floor_divide(other, x),
    "__mod__": remainder, "__rmod__": lambda x, other: remainder(other, x),
    "__and__": bitwise_and, "__rand__": lambda x, other: bitwise_and(other, x),
    "__or__": bitwise_or, "__ror__": lambda x, other: bitwise_or(other, x),
    "__xor__": bitwise_xor, "__rxor__": lambda x, other: bitwise_xor(other, x),
    "__invert__": bitwise_not,
}.items():
    setattr(Tensor, _name, _method)
