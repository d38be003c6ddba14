"""torch's everyday tensor methods, built from the differentiable ops of ``ops.py``.

Each function here is a composition of ops that already have a hand-written backward
(``expand`` is ``broadcast_to``, ``gather`` is advanced indexing, ``logsumexp`` is max, exp,
sum and log), so its first derivative -- and, because every backward is itself built of
ops, its second -- comes from theirs; nothing here writes a backward except ``einsum``,
whose gradient is again an einsum, and ``remainder``, ``erf`` and ``SharedReduction`` (amax,
amin, the median: ties share the gradient, as torch), whose backwards are made of ops.  Indices (``argsort``, ``topk``'s positions, the comparisons) are integers or bools
and carry no gradient, as in torch.

Importing this module installs the methods on Tensor (``x.gather(1, idx)``), as ops.py does.
"""
import builtins
import collections
import math
import numbers
import operator
import warnings

import numpy

from . import backend
from .backend import get_array_module
from ..kernels import special
from .engine import Function, one_device
from .ops import (IndexBackward, IndexPut, _as_float, _as_tensor, _axes, _axis, _inplace, _operands, _promote,
                  _refuse_bool_sub, _setitem, _unreduce, abs, broadcast_to, cat, clamp, clone, compare, exp, getitem,
                  log, mean, permute, reshape, sqrt, std, sum, sum_to, tensor, transpose, var)
from .ops import add as _add, div as _div, pow as _pow, sub as _sub, where as _where
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
    xp = get_array_module(input.array)
    return Tensor(xp.isclose(input.array, other.array, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when ``isclose`` holds everywhere (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


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
    """``x`` itself when its array is C-contiguous, else a C-contiguous copy (``clone``), as
    torch's.  (Every op reads its array through its shape, so a non-contiguous tensor is
    never wrong, only laid out otherwise: ``is_contiguous``, ``stride``.)"""
    return x if x.array.flags.c_contiguous else clone(x)


def is_contiguous(x, memory_format=None):
    """True when ``x``'s array is C-contiguous (row-major, no gaps), as torch's."""
    return bool(x.array.flags.c_contiguous)


def stride(x, dim=None):
    """The steps of ``x``'s array in elements per dimension (torch's ``stride``; 0 along an
    expanded dimension, negative along a flipped one)."""
    steps = tuple(s // x.array.itemsize for s in x.array.strides)
    if dim is None:
        return steps
    if not isinstance(dim, numbers.Integral) or not -x.ndim <= dim < x.ndim:
        raise IndexError(f"stride: Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], "
                         f"but got {dim})")
    return steps[dim]


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
        value = Tensor(get_array_module(x.array).asarray(value, dtype=x.dtype))
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
    xp = get_array_module(x.array)
    idx = backend.to_device(index.array, x.device) if index.device != x.device else index.array
    if idx.size and (idx.min() < -x.shape[axis] or idx.max() >= x.shape[axis]):
        raise IndexError(f"{op}: index out of range for dimension {dim} of size {x.shape[axis]}")
    with backend.on_device(x.device):       # (xp.ogrid would make host arrays under CuPy)
        grids = [xp.arange(n).reshape([-1 if k == a else 1 for k in range(index.ndim)])
                 for a, n in enumerate(index.shape)]
    return tuple(idx if a == axis else g for a, g in enumerate(grids))


def gather(x, dim, index):
    """``y[i][j][k] = x[i][index[i][j][k]][k]`` for dim=1.  The gradient scatters back and
    adds where the index repeats (advanced indexing's backward)."""
    return getitem(x, _along(x, dim, index, "gather"))


def scatter(x, dim, index, src=None, value=None, *, reduce=None):
    """A copy of ``x`` with ``src`` (a tensor shaped like ``index``, or a scalar ``value``)
    written to the places ``index`` names along ``dim``.  The gradient flows to ``x`` where
    nothing was written and to ``src`` where it was read (``__setitem__``'s backward).
    Where the index repeats a place, one of the values wins (torch leaves which unspecified).
    ``reduce='add'`` adds the values in (``scatter_add``), ``'multiply'`` multiplies them in."""
    if src is None and value is None:
        raise TypeError("scatter: expected src or value")
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError(f"scatter: reduce argument must be either add or multiply, got {reduce!r}")
    if src is None or not isinstance(src, Tensor):
        src = value if src is None else src
    elif src.shape != index.shape:
        src = src[tuple(slice(0, n) for n in index.shape)]
    if reduce is not None:
        if not isinstance(src, Tensor):
            src = Tensor(get_array_module(x.array).full(_as_tensor(index, "scatter").shape, src, dtype=x.dtype))
        return (scatter_add if reduce == "add" else _scatter_multiply)(x, dim, index, src)
    places = _along(x, dim, index, "scatter")
    out = x.clone()
    out[places] = src
    return out


def _scatter_source(x, index, src, op):
    """``src`` cut to ``index``'s shape (torch reads only that corner of it), checked."""
    src = _as_tensor(src, op)
    if src.dtype != x.dtype:
        raise RuntimeError(f"{op}: Expected self.dtype to be equal to src.dtype, got {x.dtype} and {src.dtype}")
    index = _as_tensor(index, op)
    if src.ndim != index.ndim or builtins.any(i > n for i, n in zip(index.shape, src.shape)):
        raise RuntimeError(f"{op}: expected src with at least the index's size in every dimension, got src of "
                           f"shape {src.shape} for an index of shape {index.shape}")
    return src if src.shape == index.shape else src[tuple(slice(0, n) for n in index.shape)]


def scatter_add(input, dim, index, src):
    """``input`` with each ``src[i][j][k]`` added at ``[index[i][j][k]][j][k]`` (dim=0), repeated
    places summed: input + the index's adjoint of gathering (``IndexBackward``, deterministic).
    gx = gy, gsrc = gather(gy, dim, index)."""
    places = _along(input, dim, index, "scatter_add")
    src = _scatter_source(input, index, src, "scatter_add")
    return input + IndexBackward.apply(src, input.shape, places)


def _scatter_multiply(x, dim, index, src):
    """``x`` with the places ``index`` names multiplied by ``src``, a repeated place by each of
    its values in turn: the k-th occurrences of all places at once, for k = 0, 1, ...
    (each a differentiable read-multiply-write, ``IndexPut``)."""
    places = _along(x, dim, index, "scatter")
    src = _scatter_source(x, index, src, "scatter")
    flat_places = [backend.to_host(p) for p in get_array_module(x.array).broadcast_arrays(*places)]
    positions = numpy.ravel_multi_index([p.reshape(-1) for p in flat_places], x.shape)
    order = numpy.argsort(positions, kind="stable")
    ranked = positions[order]
    starts = numpy.concatenate(([True], ranked[1:] != ranked[:-1])) if ranked.size else ranked.astype(bool)
    run_start = numpy.maximum.accumulate(numpy.where(starts, numpy.arange(ranked.size), 0)) if ranked.size else ranked
    rank = numpy.empty_like(positions)
    rank[order] = numpy.arange(ranked.size) - run_start
    values, out = src.reshape(-1), x
    for k in range(int(rank.max()) + 1 if rank.size else 0):
        chosen = numpy.flatnonzero(rank == k)
        at = tuple(backend.to_device(p.reshape(-1)[chosen], x.device) for p in flat_places)
        out = IndexPut.apply(out, getitem(out, at) * getitem(values, chosen), at)
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
    xp = get_array_module(x.array)
    data = x.array.astype(numpy.int8) if x.array.dtype == backend.bool_ else x.array
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
    xp = get_array_module(x.array)
    p = p.array if isinstance(p, Tensor) else p
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

class SharedReduction(Function):
    """y = a value that x takes in each slice over ``axes`` (``value``: its largest, its
    smallest, its median), kept dims.  As torch, the elements equal to y share the
    gradient equally:

        gx = gy * [x == y] / count,   count = the number of elements equal to y in the slice;

    with ``nan_equal`` a NaN y is taken by the NaN elements (the median's rule); else a NaN y
    equals nothing and the slice's gradient is NaN (0 / 0: torch's amax).  The share is a
    constant, so the backward is linear in gy and differentiable again (its own second
    derivative in x is 0)."""

    def forward(self, x, value, axes, keepdim, nan_equal=False):
        xp = get_array_module(x)
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        if self.needs_grad:
            mask = x == value
            if nan_equal and x.dtype.kind == "f":
                mask |= xp.isnan(x) & xp.isnan(value)
            count = mask.sum(axis=axes, keepdims=True).astype(x.dtype)
            self.share = xp.where(count > 0, mask / xp.maximum(count, 1), xp.nan).astype(x.dtype)
        return value if keepdim else value.reshape([n for a, n in enumerate(x.shape) if a not in axes])

    def backward(self, gy):
        return _unreduce(gy, self.shape, self.axes, self.keepdim) * Tensor(self.share)


def _extreme(kind, x, dim, keepdim):
    """amax / amin: the largest (smallest) element over ``dim`` (all when None or ()), NaN
    when the slice has one (torch's and NumPy's rule)."""
    x = _as_tensor(x, kind)
    axes = _axes(None if dim == () else dim, x.ndim, kind)
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{kind}: Expected reduction dim {a} to have non-zero size, got shape {x.shape}")
    if x.numel() == 0 and not axes:
        raise IndexError(f"{kind}: Expected a non-empty tensor, got shape {x.shape}")
    with backend.on_device(x.device):
        value = getattr(x.array, "max" if kind == "amax" else "min")(axis=axes, keepdims=True)
    return SharedReduction.apply(x, value=value, axes=axes, keepdim=keepdim)


def amax(input, dim=(), keepdim=False):
    """The largest element over ``dim`` (all of them by default), as ``torch.amax``: ties
    share the gradient equally (``torch.max(x, dim)`` gives it all to one index)."""
    return _extreme("amax", input, dim, keepdim)


def amin(input, dim=(), keepdim=False):
    """The smallest element over ``dim`` (all by default), as ``torch.amin``; ties share the gradient."""
    return _extreme("amin", input, dim, keepdim)


def _amax(x, dims, keepdim):
    """The largest element over ``dims`` (all when None); ties share the gradient (as torch's inf-norm)."""
    return amax(x, () if dims is None else dims, keepdim)


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) along ``dim``, computed as m + log(sum(exp(x - m))) with m the
    (detached) maximum, so that large inputs do not overflow; an infinite m is taken as 0,
    as torch does.  Its gradient is softmax(x) along ``dim``."""
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    m = _amax(x.detach(), dims, keepdim=True)
    xp = get_array_module(m.array)
    m = Tensor(xp.where(xp.isinf(m.array), 0, m.array).astype(m.dtype))
    y = log(sum(exp(x - m), dim=dims, keepdim=True)) + m
    return y if keepdim else reshape(y, *_amax(m, dims, keepdim=False).shape)


def _zero_at_zero(s, f):
    """f(s), and 0 with gradient 0 where s is 0: torch's gradient of the norms' roots and powers,
    whose slope at 0 is infinite, is 0 there -- so f is taken of 1 instead, then times 0."""
    with backend.on_device(s.device):
        nonzero = Tensor(s.array != 0)
    return f(where(nonzero, s, 1.0)) * nonzero.to(s.dtype)


def norm(x, p="fro", dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all elements when None): ``(sum |x|^p)^(1/p)``;
    'fro' and 2 are the Euclidean norm, ``inf`` the largest |x|, 1 the sum of |x|."""
    dims = None if dim is None else (tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))
    if p in ("fro", 2):
        return _zero_at_zero(sum(x * x, dim=dims, keepdim=keepdim), sqrt)
    if p == 0:
        counted = (x.array != 0).astype(x.dtype)        # a step function: gradient 0, as torch
        return sum(_no_gradient(counted, x), dim=dims, keepdim=keepdim)
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
        index = Tensor(get_array_module(a.array).arange(a.shape[p]))
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
    """``values(xp, x.array)`` (an array like x's) as a result of x whose gradient is 0 everywhere (a step
    function: sign, floor, round ...), as torch's: ``where`` with an always-true condition."""
    x = _as_tensor(x, op)
    with backend.on_device(x.device):
        return _no_gradient(values(get_array_module(x.array), x.array), x)


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
            return Tensor(get_array_module(a.array).floor_divide(a.array, b.array))     # integers stay integers
    return floor(a / b)


class _Modulo(Function):
    """y = a - q(a / b) b, computed as NumPy's ``remainder`` (q = floor: Python's ``%``, the
    sign of b) or ``fmod`` (q = trunc: C's, the sign of a) -- exact, where the formula would
    round twice.  q is a step, so  ga = sum_to(gy),  gb = sum_to(-gy q(a / b))."""

    def forward(self, a, b):
        xp = get_array_module(a)
        quotient = xp.floor_divide(a, b) if self.numpy_name == "remainder" else xp.trunc(a / b)
        self.quotient, self.shapes = quotient, (a.shape, b.shape)
        return getattr(xp, self.numpy_name)(a, b)

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy * Tensor(self.quotient), self.shapes[1])


class Remainder(_Modulo):
    numpy_name = "remainder"


class Fmod(_Modulo):
    numpy_name = "fmod"


def _modulo(modulo, doc):
    name = modulo.numpy_name

    def op(input, other):
        a, b = _operands(input, other, name)
        if a.dtype.kind in "biu" and b.dtype.kind in "biu":
            with backend.on_device(a.device):
                if bool((b.array == 0).any()):
                    raise RuntimeError(f"{name}: ZeroDivisionError (an integer divided by 0)")
                return Tensor(getattr(get_array_module(a.array), name)(a.array, b.array))
        return modulo.apply(a, b)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


remainder = _modulo(Remainder, "input % other elementwise, with the sign of ``other`` (as torch's and Python's).")
fmod = _modulo(Fmod, "input % other with the sign of ``input`` (``torch.fmod``; ``remainder`` takes other's).")


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
            return Tensor(getattr(get_array_module(x.array), numpy_name)(x.array))
    boolean.__name__ = boolean.__qualname__ = name
    boolean.__doc__ = f"``{numpy_name}`` elementwise: a bool tensor, no gradient."
    return boolean


isnan, isinf, isfinite, logical_not = (_boolean(n, n) for n in ("isnan", "isinf", "isfinite", "logical_not"))


def _no_gradient_binary(name, numpy_name, a, b):
    """NumPy's ``numpy_name`` of two tensors on one device: a result with no gradient."""
    with backend.on_device(one_device(name, (a, b))):
        return Tensor(getattr(get_array_module(a.array), numpy_name)(a.array, b.array))


def _bitwise(name, numpy_name):
    def bitwise(a, b):
        a, b = (t if isinstance(t, Tensor) else Tensor(get_array_module((b if t is a else a).array).asarray(t))
                for t in (a, b))
        for t in (a, b):
            if t.dtype.kind not in "biu":
                raise TypeError(f"{name}: expected bool or integer tensors, got {t.dtype}")
        return _no_gradient_binary(name, numpy_name, a, b)
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
        return Tensor(get_array_module(x.array).invert(x.array))


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
    return _make(numpy.array(backend.to_host(data.array) if isinstance(data, Tensor) else data),
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


# ---------------------------------------------------------------------- sizes, types and limits

class Size(tuple):
    """``torch.Size``: a tuple of ints (a tensor's ``shape`` is a plain tuple, which compares
    equal to it); a slice of it is a Size again, and ``numel()`` is the product."""

    def __new__(cls, sizes=()):
        items = tuple(sizes)
        for i, n in enumerate(items):
            if not isinstance(n, numbers.Integral):
                raise TypeError(f"Size: expected an iterable of ints, got item {i} of type {type(n).__name__}")
        return super().__new__(cls, (operator.index(n) for n in items))

    def __getitem__(self, key):
        item = super().__getitem__(key)
        return Size(item) if isinstance(key, slice) else item

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(self) + other)

    def numel(self):
        """The number of elements a tensor of this size has."""
        return math.prod(self)

    def __repr__(self):
        return f"tinyres.Size({list(self)})"


def size(input, dim=None):
    """``x.size()``: the shape as a ``Size``; ``x.size(dim)``: one int (dim may be negative).
    (``x.shape`` stays a plain tuple, which compares equal.)"""
    if dim is None:
        return tuple.__new__(Size, input.shape)
    if input.ndim == 0:
        raise IndexError(f"size: Dimension specified as {dim} but tensor has no dimensions")
    return input.shape[_dim(input, dim, "size")]


def _dtype_arg(type_):
    """``type_`` (a dtype, a dtype name, or None for the default float dtype) as a NumPy dtype."""
    return backend.get_default_dtype() if type_ is None else backend.as_dtype(type_)


class finfo:
    """``torch.finfo``: the limits of a floating dtype (NumPy's ``finfo``) under torch's names --
    ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``), ``resolution``,
    ``dtype`` (its name) -- as Python numbers.  Without a dtype, the default float dtype's."""

    def __init__(self, type=None):
        dtype = _dtype_arg(type)
        if dtype.kind != "f":
            raise TypeError(f"finfo: expected a floating point dtype, got {dtype} (use tinyres.iinfo for integers)")
        info = numpy.finfo(dtype)
        self.bits, self.dtype = int(info.bits), str(dtype)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)       # as a Python float (NumPy's is in the dtype)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """``torch.iinfo``: the limits of an integer dtype -- ``bits``, ``max``, ``min``, ``dtype``."""

    def __init__(self, type):
        dtype = _dtype_arg(type)
        if dtype.kind not in "iu":
            raise TypeError(f"iinfo: expected an integer dtype, got {dtype} (use tinyres.finfo for floats)")
        info = numpy.iinfo(dtype)
        self.bits, self.max, self.min, self.dtype = int(info.bits), int(info.max), int(info.min), str(dtype)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor"}


def _type(x, dtype=None, non_blocking=False):
    """``x.type()``: torch's name of its type ('torch.FloatTensor', 'torch.cuda.LongTensor');
    ``x.type(dtype)``, ``x.type('torch.DoubleTensor')`` or ``x.type(tinyres.DoubleTensor)``: ``x``
    converted (itself when it already is)."""
    if isinstance(dtype, builtins.type) and isinstance(getattr(dtype, "dtype", None), numpy.dtype):
        dtype = f"torch.{dtype.__name__}"           # a legacy type (tinyres.LongTensor): a CPU tensor of its dtype
    if dtype is None:
        name = _TYPE_NAMES.get(str(x.dtype), f"{x.dtype}Tensor")
        return f"torch.{'cuda.' if x.is_cuda else ''}{name}"
    if isinstance(dtype, str) and dtype.startswith("torch."):
        on_gpu, name = dtype.startswith("torch.cuda."), dtype.rsplit(".", 1)[-1]
        found = [d for d, n in _TYPE_NAMES.items() if n == name]
        if not found:
            raise ValueError(f"type: invalid type: {dtype!r}")
        device = ("cuda" if not x.is_cuda else x.device) if on_gpu else "cpu"
        return x.to(device=device, dtype=found[0])
    return x.to(dtype=dtype)


def mT(x):
    """The last two dimensions swapped (``x.mT``: a batch of matrices transposed)."""
    if x.ndim < 2:
        raise RuntimeError(f"mT: tensor.mT is only supported on matrices or batches of matrices, got a {x.ndim}-D tensor")
    return transpose(x, -2, -1)


def t(input):
    """The transpose of a matrix (a 0-d or 1-D tensor is itself), as ``torch.t``."""
    if input.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


# ---------------------------------------------------------------------- torch's functional arithmetic

def _alpha(input, other, alpha, op):
    """``other * alpha`` for torch's ``add``/``sub``(alpha=): a float alpha refused for integer tensors."""
    if alpha == 1:
        return other
    kinds = [t.dtype.kind for t in (input, other) if isinstance(t, Tensor)]
    if builtins.all(k in "biu" for k in kinds) and not isinstance(alpha, numbers.Integral):
        raise RuntimeError(f"{op}: For integral input tensors, argument alpha must not be a floating point number, "
                           f"got alpha={alpha!r}")
    return other * alpha


def add(input, other, *, alpha=1):
    """input + alpha * other (``torch.add``)."""
    return _add(input, _alpha(input, other, alpha, "add"))


def sub(input, other, *, alpha=1):
    """input - alpha * other (``torch.sub``); a bool operand is refused, as in torch."""
    _refuse_bool_sub(input, other)
    return _sub(input, _alpha(input, other, alpha, "sub"))


def div(input, other, *, rounding_mode=None):
    """input / other: true division (integers give floats), or rounded with ``rounding_mode``
    'trunc' (towards zero) or 'floor' (Python's ``//``); rounded results of integers stay
    integers, and a rounded result's gradient is 0 (a step), as torch's."""
    if rounding_mode is None:
        return _div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode != "trunc":
        raise RuntimeError(f"div: expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"{rounding_mode!r}")
    a, b = _operands(input, other, "div")
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        with backend.on_device(a.device):
            xp = get_array_module(a.array)
            q, r = xp.floor_divide(a.array, b.array), xp.remainder(a.array, b.array)
            return Tensor(q + ((r != 0) & ((a.array < 0) != (b.array < 0))).astype(q.dtype))  # floor -> trunc
    return trunc(a / b)


def pow(input, exponent):
    """input ** exponent (``torch.pow``, its argument names; ``ops.pow`` raises a number
    ``input`` to a tensor exponent too)."""
    return _pow(input, exponent)


def clip(input, min=None, max=None):
    """``clamp``'s other name (``torch.clip``)."""
    return clamp(input, min, max)


def clamp_min(input, min):
    """max(input, min) elementwise (``clamp(input, min=min)``)."""
    return clamp(input, min=min)


def clamp_max(input, max):
    """min(input, max) elementwise (``clamp(input, max=max)``)."""
    return clamp(input, max=max)


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2 (the optimizers' update, torch's order of products)."""
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2; integer tensors are refused, as torch does."""
    if builtins.all(isinstance(t, Tensor) and t.dtype.kind in "biu" for t in (tensor1, tensor2)):
        raise RuntimeError("addcdiv: Integer division with addcdiv is no longer supported; for the historic "
                           "behavior write (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype)")
    return input + value * tensor1 / tensor2


def lerp(input, end, weight):
    """input + weight * (end - input), computed as torch does: as end - (end - input)(1 - weight)
    where weight >= 0.5, so that weight = 1 gives ``end`` exactly.  Both forms have the same
    gradient: g_input = gy (1 - w), g_end = gy w, g_weight = gy (end - input)."""
    input, end = _as_float(input, "lerp"), _as_tensor(end, "lerp")
    if end.dtype != input.dtype:
        raise RuntimeError(f"lerp: expected dtype {input.dtype} for `end` but got dtype {end.dtype}")
    if not isinstance(weight, Tensor):
        return input + weight * (end - input) if weight < 0.5 else end - (end - input) * (1 - weight)
    return where(weight < 0.5, input + weight * (end - input), end - (end - input) * (1 - weight))


# ---------------------------------------------------------------------- products

def _as_reduced(x, dtype, op):
    """``x`` cast to ``dtype``, or (when None) integers and bools to int64, as torch reduces them."""
    x = _as_tensor(x, op)
    if dtype is not None:
        return x.to(dtype)
    return x.to(backend.int64) if x.dtype.kind in "biu" else x


def _prod_along(x, axis):
    """The product along ``axis`` (kept, size 1) as a tree of elementwise products: the first
    half times the second, halving until one row is left (an odd row waits for the next
    round), so that each factor's gradient is the product of all the others -- exact where
    some are 0, where y / x would divide by it -- and its own gradient too."""
    n = x.shape[axis]
    if n == 0:
        return sum(x, dim=axis, keepdim=True) * 0 + 1            # the empty product, with x in the graph
    lead = (slice(None),) * axis
    while n > 1:
        half = n // 2
        pairs = getitem(x, lead + (slice(0, half),)) * getitem(x, lead + (slice(half, 2 * half),))
        x = cat([pairs, getitem(x, lead + (slice(2 * half, n),))], axis) if n % 2 else pairs
        n = x.shape[axis]
    return x


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """The product of the elements (over ``dim``), as ``torch.prod``: integers and bools in
    int64 unless ``dtype`` says otherwise.  See ``_prod_along`` for the gradient."""
    x = _as_reduced(input, dtype, "prod")
    if dim is None:
        y = _prod_along(reshape(x, -1), 0)
        return reshape(y, *([1] * x.ndim if keepdim else []))
    axis = _dim(x, dim, "prod")
    if x.ndim == 0:
        return x
    y = _prod_along(x, axis)
    return y if keepdim else reshape(y, *(n for a, n in enumerate(y.shape) if a != axis))


def cumprod(input, dim, *, dtype=None):
    """The running product along ``dim`` (``torch.cumprod``) as a scan: at step k each entry
    is multiplied by the one 2^k before it (Hillis and Steele), log2(n) elementwise products
    -- so the gradient is exact at zeros, and differentiable again."""
    x = _as_reduced(input, dtype, "cumprod")
    if x.ndim == 0:
        return x * 1
    axis = _dim(x, dim, "cumprod")
    n, lead, shift = x.shape[axis], (slice(None),) * axis, 1
    while shift < n:
        head, tail = getitem(x, lead + (slice(0, shift),)), getitem(x, lead + (slice(shift, n),))
        x = cat([head, tail * getitem(x, lead + (slice(0, n - shift),))], axis)
        shift *= 2
    return x


# ---------------------------------------------------------------------- where things are

def nonzero(input, *, as_tuple=False):
    """The indices of the non-zero elements: an (n, ndim) int64 tensor, one row per element in
    row-major order, or with ``as_tuple`` one 1-D tensor per dimension (a 0-d input counts
    as 1-D there, as torch).  Its size depends on the data: on a GPU a read-back."""
    input = _as_tensor(input, "nonzero")
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        found = xp.nonzero(input.array.reshape(-1) if input.ndim == 0 else input.array)
        if as_tuple:
            return tuple(Tensor(i.astype(backend.int64)) for i in found)
        if input.ndim == 0:
            return Tensor(xp.zeros((found[0].size, 0), dtype=backend.int64))
        return Tensor(xp.stack(found, axis=1).astype(backend.int64))


def argwhere(input):
    """``nonzero(input)``: the (n, ndim) indices of the non-zero elements."""
    return nonzero(input)


def count_nonzero(input, dim=None):
    """How many elements are non-zero (over ``dim``): int64, no gradient."""
    input = _as_tensor(input, "count_nonzero")
    axes = _axes(dim, input.ndim, "count_nonzero")
    with backend.on_device(input.device):
        counts = (input.array != 0).sum(axis=axes)
        return Tensor(get_array_module(input.array).asarray(counts, dtype=backend.int64))


def where(condition, input=None, other=None):
    """``input`` where ``condition`` holds, else ``other`` (``ops.where``: differentiable in both);
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``, as torch's."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: expected where(condition, input, other) or where(condition), got only one of "
                        "input and other")
    return _where(condition, input, other)


def equal(input, other):
    """True when both tensors have one shape and equal elements (a Python bool; NaN equals nothing)."""
    input, other = _as_tensor(input, "equal"), _as_tensor(other, "equal")
    if input.device != other.device:
        raise RuntimeError(f"equal: expected both tensors on one device, got {input.device} and {other.device}")
    if input.shape != other.shape:
        return False
    with backend.on_device(input.device):
        return bool((input.array == other.array).all())


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor without a copy where it can be: a Tensor is itself (or converted,
    ``to``), a NumPy or CuPy array is shared (as ``from_numpy``) when dtype and device match;
    anything else is copied (``tensor``)."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if backend.is_array(data):
        return Tensor(data).to(device=device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements, sorted (of the flattened input, or the distinct slices along
    ``dim``), with the ``inverse`` (where each element went: input's shape, or one per slice)
    and ``counts`` if asked, as ``torch.unique``; NaNs stay apart, as torch's.  No gradient.
    (torch may leave ``sorted=False`` unsorted; here the result is sorted either way.)"""
    input = _as_tensor(input, "unique")
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        if dim is None:
            options = {"equal_nan": False} if backend.is_cpu(xp) else {}
            values, inverse, counts = xp.unique(input.array.reshape(-1), return_inverse=True, return_counts=True,
                                                **options)
            inverse = inverse.reshape(input.shape)
        else:
            values, inverse, counts = xp.unique(input.array, return_inverse=True, return_counts=True,
                                                axis=_axis(dim, input.ndim, "unique"))
            inverse = inverse.reshape(-1)
        out = [Tensor(values)]
        out += [Tensor(inverse.astype(backend.int64))] if return_inverse else []
        out += [Tensor(counts.astype(backend.int64))] if return_counts else []
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    """How often each value 0, 1, .. occurs in the 1-D non-negative integer ``input`` (int64),
    or the sum of ``weights`` at each (the weights' float dtype; float64 for integer weights),
    at least ``minlength`` long.  No gradient (torch has none)."""
    input = _as_tensor(input, "bincount")
    if input.dtype.kind not in "iu":
        raise NotImplementedError(f"bincount: expected an integer input tensor, got {input.dtype}")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0, got {minlength}")
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        if input.ndim != 1 or (input.numel() and int(input.array.min()) < 0):
            raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs, got shape {input.shape}")
        if weights is None:
            return Tensor(xp.bincount(input.array.astype(backend.int64), minlength=minlength).astype(backend.int64))
        weights = _as_tensor(weights, "bincount")
        if weights.shape != input.shape:
            raise RuntimeError(f"bincount: weights should be 1-d and have the same length as input, got shapes "
                               f"{weights.shape} and {input.shape}")
        dtype = weights.dtype if weights.dtype.kind == "f" else backend.float64
        counts = xp.bincount(input.array.astype(backend.int64), weights=weights.array, minlength=minlength)
        return Tensor(counts.astype(dtype))


MedianResult = collections.namedtuple("median", ["values", "indices"])


def _median_index(a, axis):
    """Where the lower median of each slice along ``axis`` is (kept dims): the element at sorted
    position (n - 1) // 2 -- or, where the slice has a NaN, its first NaN (the median is NaN)."""
    xp = get_array_module(a)
    n = a.shape[axis]
    order = xp.argsort(a.astype(numpy.int8) if a.dtype == backend.bool_ else a, axis=axis, kind="stable")
    middle = xp.full(order.shape[:axis] + (1,) + order.shape[axis + 1:], (n - 1) // 2, dtype=order.dtype)
    if a.dtype.kind == "f":
        nans = xp.isnan(a).sum(axis=axis, keepdims=True)
        middle = xp.where(nans > 0, n - nans, middle).astype(order.dtype)
    return xp.take_along_axis(order, middle, axis=axis)


def median(input, dim=None, keepdim=False):
    """The lower median (the smaller of the two middle values for an even count), NaN if there
    is one, as ``torch.median``.  Of all elements: a 0-d tensor whose gradient is shared by
    the elements equal to it (``SharedReduction``); with ``dim``: (values, indices), the
    gradient going to each index (``gather``)."""
    input = _as_tensor(input, "median")
    if dim is None:
        if input.numel() == 0:
            return _make(numpy.full((), numpy.nan), input.dtype, input.device, False)
        with backend.on_device(input.device):
            flat = input.array.reshape(-1)
            value = flat[_median_index(flat, 0)].reshape((1,) * input.ndim)
        return SharedReduction.apply(input, value=value, axes=tuple(range(input.ndim)), keepdim=False,
                                     nan_equal=True)
    axis = _dim(input, dim, "median")
    x = input.reshape(1) if input.ndim == 0 else input
    if x.shape[axis] == 0:
        raise IndexError(f"median: Expected reduction dim {dim} to have non-zero size, got shape {input.shape}")
    with backend.on_device(x.device):
        index = Tensor(_median_index(x.array, axis))
    values = gather(x, axis, index)
    if not keepdim or input.ndim == 0:
        shape = input.shape if input.ndim == 0 else tuple(n for a, n in enumerate(x.shape) if a != axis)
        values, index = reshape(values, *shape), reshape(index, *shape)
    return MedianResult(values, index)


# ---------------------------------------------------------------------- shapes and diagonals

def roll(input, shifts, dims=None):
    """``input`` shifted by ``shifts`` along ``dims``, the elements pushed off one end coming
    back at the other (flattened and back when ``dims`` is None): two slices joined, per
    dimension, so the gradient is rolled back."""
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align, got shifts {shifts} and no dims")
        return reshape(roll(reshape(input, -1), shifts, 0), *input.shape)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
    y = input
    for s, d in zip(shifts, dims):
        axis = _dim(input, d, "roll")
        n = input.shape[axis] if input.ndim else 1
        if n == 0 or input.ndim == 0 or s % n == 0:
            continue
        lead, s = (slice(None),) * axis, s % n
        y = cat([getitem(y, lead + (slice(n - s, n),)), getitem(y, lead + (slice(0, n - s),))], axis)
    return y


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The ``offset``-th diagonal of the matrices in dimensions ``dim1`` and ``dim2``, as a new
    last dimension (``torch.diagonal``; a copy here, not a view).  The gradient goes back
    to the diagonal (advanced indexing's backward)."""
    a1, a2 = _axis(dim1, input.ndim, "diagonal"), _axis(dim2, input.ndim, "diagonal")
    if a1 == a2:
        raise RuntimeError(f"diagonal: diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [a for a in range(input.ndim) if a not in (a1, a2)]
    n1, n2 = input.shape[a1], input.shape[a2]
    length = builtins.max(builtins.min(n1, n2 - offset) if offset >= 0 else builtins.min(n1 + offset, n2), 0)
    steps = numpy.arange(length)
    rows, cols = (steps, steps + offset) if offset >= 0 else (steps - offset, steps)
    return getitem(permute(input, *rest, a1, a2), (Ellipsis, rows, cols))


_diagonal = diagonal     # diag's argument has the function's name (torch's)


def diag(input, diagonal=0):
    """Of a 1-D tensor: the square matrix with it on the ``diagonal``-th diagonal (zeros
    elsewhere; the gradient is read back off that diagonal).  Of a 2-D tensor: that diagonal."""
    input = _as_tensor(input, "diag")
    if input.ndim == 2:
        return _diagonal(input, diagonal)
    if input.ndim != 1:
        raise RuntimeError(f"diag: Supports 1D or 2D tensors. Got {input.ndim}D")
    n, k = input.shape[0], builtins.abs(diagonal)
    steps = numpy.arange(n)
    rows, cols = (steps, steps + k) if diagonal >= 0 else (steps + k, steps)
    with backend.on_device(input.device):
        zeros = Tensor(get_array_module(input.array).zeros((n + k, n + k), dtype=input.dtype))
    at = tuple(backend.to_device(i, input.device) for i in (rows, cols))
    return IndexPut.apply(zeros, input, at)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors: output i varies along dimension i ('ij', matrix
    indexing) -- or, with 'xy' (Cartesian), the first two swap places.  Each is its tensor
    reshaped and expanded, so its gradient sums over the grid.  As torch, leaving out
    ``indexing`` warns (it means 'ij')."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    for t in tensors:
        if _as_tensor(t, "meshgrid").ndim > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got shape {t.shape}")
    places = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        places[0], places[1] = 1, 0
    shape = [0] * len(tensors)
    for p, t in zip(places, tensors):
        shape[p] = t.numel()
    return tuple(broadcast_to(reshape(t, *(-1 if a == p else 1 for a in range(len(tensors)))), tuple(shape))
                 for p, t in zip(places, tensors))


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (each slice along ``dim``; of the flattened input when None) repeated
    ``repeats`` times in place -- an int, or one count per slice -- as an index: the
    gradient adds the copies back.  ``repeat_interleave(counts)`` alone repeats 0, 1, ..."""
    if repeats is None:
        counts = _as_tensor(input, "repeat_interleave")
        with backend.on_device(counts.device):
            positions = Tensor(get_array_module(counts.array).arange(counts.numel(), dtype=backend.int64))
        return repeat_interleave(positions, counts, 0, output_size=output_size)
    x = reshape(input, -1) if dim is None else input
    axis = 0 if dim is None else _dim(x, dim, "repeat_interleave")
    n = x.shape[axis] if x.ndim else 1
    counts = backend.to_host(repeats.array) if isinstance(repeats, Tensor) else numpy.asarray(repeats)
    counts = counts.reshape(-1) if counts.ndim else counts
    if counts.ndim == 1 and counts.size != 1 and counts.size != n:
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {counts.size} and input.size({axis}) = {n}")
    if counts.dtype.kind not in "iu" or (counts.size and counts.min() < 0):
        raise RuntimeError(f"repeat_interleave: repeats can not be negative and must be integers, got {counts}")
    index = numpy.repeat(numpy.arange(n), counts.reshape(-1) if counts.ndim else int(counts))
    if output_size is not None and output_size != index.size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the {index.size} repeats")
    return getitem(x.reshape(1) if x.ndim == 0 else x, (slice(None),) * axis + (index,))


def hstack(tensors):
    """The tensors joined along their first dimension if 1-D (0-d ones as 1-D), else the second."""
    tensors = [reshape(t, 1) if t.ndim == 0 else t for t in tensors]
    return cat(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """The tensors, each at least 2-D (a 1-D one as a row), joined along the first dimension."""
    return cat([reshape(t, 1, -1) if t.ndim < 2 else t for t in tensors], 0)


def column_stack(tensors):
    """The tensors as columns (a 0-d or 1-D one as a column), joined along the second dimension."""
    return cat([reshape(t, -1, 1) if t.ndim < 2 else t for t in tensors], 1)


# ---------------------------------------------------------------------- statistics

def _dim_or_unbiased(dim, unbiased):
    """torch's ``var_mean(x, False)``: a bool where the dim goes is ``unbiased``."""
    return (None, dim) if isinstance(dim, bool) else (dim, unbiased)


def var_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """(var, mean) over ``dim``, as ``torch.var_mean`` (``correction`` or ``unbiased`` as ``var``)."""
    dim, unbiased = _dim_or_unbiased(dim, unbiased)
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """(std, mean) over ``dim``, as ``torch.std_mean``."""
    dim, unbiased = _dim_or_unbiased(dim, unbiased)
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


# ---------------------------------------------------------------------- random draws

def _drawn(draw, like):
    """Host draws ``draw`` as an array on ``like``'s device, in its dtype."""
    return backend.to_device(numpy.asarray(draw, dtype=like.dtype), like.device)


def _no_gradient(values, *inputs):
    """``values`` (an array) as a result of ``inputs`` with gradient 0 (a draw: torch's rule
    for ``normal`` and ``bernoulli``; a step function: sign, floor ...), a constant when none
    of them requires grad: ``where`` with an always-true condition."""
    inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not inputs:
        return Tensor(values)
    with backend.on_device(inputs[0].device):
        always = Tensor(get_array_module(values).ones(values.shape, dtype=bool))
    return where(always, Tensor(values), builtins.sum(inputs[1:], inputs[0]))


def _float_input(x, op):
    x = _as_tensor(x, op)
    if x.dtype.kind != "f":
        raise NotImplementedError(f"{op}: expected a floating point tensor, got {x.dtype}")
    return x


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Draws from N(mean, std^2), as ``torch.normal``: ``mean`` and/or ``std`` tensors (their
    broadcast shape, one draw per element), or two numbers and a ``size``.  The default
    generator unless ``generator``; the draws' gradient is 0, as torch's."""
    g = generator or backend.default_generator()
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal: expected a tensor mean or std, or a size for numbers mean and std")
        if std < 0:
            raise RuntimeError(f"normal: expects std >= 0.0, but found std {std}")
        return _make(g.normal(mean, std, size_arg((size,), "normal")), dtype or backend.get_default_dtype(),
                     device, requires_grad)
    for t in (mean, std):
        if isinstance(t, Tensor):
            _float_input(t, "normal")
    mean_t, std_t = _operands(mean, std, "normal")
    if bool((std_t.array < 0).any()):
        raise RuntimeError("normal: expects all elements of std >= 0.0")
    xp = get_array_module(mean_t.array)
    shape = numpy.broadcast_shapes(mean_t.shape, std_t.shape)
    with backend.on_device(mean_t.device):
        values = mean_t.array + std_t.array * _drawn(g.standard_normal(shape), mean_t)
        values = xp.asarray(values, dtype=mean_t.dtype)
    return _no_gradient(values, *(t for t in (mean, std) if isinstance(t, Tensor)))


def bernoulli(input, p=None, *, generator=None):
    """1 with probability ``input`` (elementwise; or the number ``p`` for each element), else
    0, in input's dtype (``torch.bernoulli``); the draws' gradient is 0."""
    input = _float_input(input, "bernoulli")
    probs = input.array if p is None else p
    with backend.on_device(input.device):
        xp = get_array_module(input.array)
        if not bool(xp.all((probs >= 0) & (probs <= 1))):
            raise RuntimeError("bernoulli: expected probabilities p with 0 <= p <= 1")
        u = _drawn((generator or backend.default_generator()).random(input.shape), input)
        values = (u < probs).astype(input.dtype)
    return _no_gradient(values, input)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """``num_samples`` category indices per row of the weights ``input`` (1-D or 2-D, not
    necessarily summing to 1), int64, as ``torch.multinomial``.  With replacement: the inverse
    of each row's cumulative distribution at uniform draws.  Without: the categories ranked by
    E / p, E exponential draws -- the order of an exponential race, which is the order of
    drawing one at a time without replacement (categories of weight 0 come last)."""
    input = _as_tensor(input, "multinomial")
    if input.dtype.kind != "f":
        raise RuntimeError(f"multinomial: only supports floating-point dtypes for input, got: {input.dtype}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {input.shape}")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples, got {num_samples}")
    n = input.shape[-1]
    if not replacement and num_samples > n:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement, "
                           f"got {num_samples} > {n}")
    g = generator or backend.default_generator()
    xp = get_array_module(input.array)
    with backend.on_device(input.device):
        p = input.array.reshape(-1, n).astype(backend.float64)
        if not bool(xp.all(xp.isfinite(p) & (p >= 0))):
            raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
        if not bool(xp.all(p.sum(axis=-1) > 0)):
            raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
        rows = p.shape[0]
        if replacement:
            cdf = xp.cumsum(p, axis=-1)
            cdf = cdf / cdf[:, -1:]
            u = backend.to_device(numpy.asarray(g.random((rows, num_samples))), input.device)
            picked = xp.stack([xp.searchsorted(cdf[r], u[r], side="right") for r in range(rows)])
            picked = xp.minimum(picked, n - 1)
        else:
            e = backend.to_device(numpy.asarray(g.standard_exponential((rows, n))), input.device)
            keys = xp.where(p > 0, e / xp.where(p > 0, p, 1), xp.inf)
            picked = xp.argsort(keys, axis=-1, kind="stable")[:, :num_samples]
        picked = picked.astype(backend.int64)
        return Tensor(picked.reshape(-1) if input.ndim == 1 else picked)


def get_rng_state():
    """The default generator's state as a uint8 tensor (``torch.get_rng_state``): PCG64's
    128-bit state and increment, and its one buffered 32-bit half (37 bytes, little-endian)."""
    state = backend.default_generator().bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise RuntimeError(f"get_rng_state: expected the default PCG64 generator, got {state['bit_generator']}")
    raw = (state["state"]["state"].to_bytes(16, "little") + state["state"]["inc"].to_bytes(16, "little")
           + bytes([state["has_uint32"]]) + int(state["uinteger"]).to_bytes(4, "little"))
    return Tensor(numpy.frombuffer(raw, dtype=numpy.uint8).copy())


def set_rng_state(new_state):
    """Restore the default generator to a state from ``get_rng_state``: the draws that follow
    are those that followed then."""
    if not isinstance(new_state, Tensor) or new_state.dtype != backend.uint8:
        got = new_state.dtype if isinstance(new_state, Tensor) else type(new_state).__name__
        raise TypeError(f"set_rng_state: expected a uint8 tensor (what get_rng_state returns), got {got}")
    raw = backend.to_host(new_state.array).reshape(-1).tobytes()
    if len(raw) != 37:
        raise RuntimeError(f"set_rng_state: expected a state of 37 bytes (from get_rng_state), got {len(raw)}")
    backend.default_generator().bit_generator.state = {
        "bit_generator": "PCG64", "has_uint32": raw[32], "uinteger": int.from_bytes(raw[33:], "little"),
        "state": {"state": int.from_bytes(raw[:16], "little"), "inc": int.from_bytes(raw[16:32], "little")}}


# ---------------------------------------------------------------------- in place

def _inplace_op(name, fn):
    """Tensor.<name>: ``fn(x, ...)`` written back into x (``ops._inplace``: version counter,
    graph rebase, the leaf check; a result x's dtype cannot hold, a float into an integer
    tensor, is refused there as torch does)."""
    def method(x, *args, **kwargs):
        return _inplace(lambda a, _: fn(a, *args, **kwargs), x, None, name)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In place: ``x.{name[:-1]}(...)`` written into x."
    return method


_INPLACE = {f"{name}_": _inplace_op(f"{name}_", fn) for name, fn in {
    "exp": exp, "sqrt": sqrt, "abs": abs, "neg": lambda x: -x, "log": log, "pow": _pow,
    "sigmoid": lambda x: x.sigmoid(), "tanh": lambda x: x.tanh(),        # nn installs these two on Tensor
    "addcmul": addcmul, "addcdiv": addcdiv, "lerp": lerp, "clamp_min": clamp_min, "clamp_max": clamp_max,
    "clip": clip, "div": div, "scatter_add": scatter_add,
    "scatter": lambda x, dim, index, src=None, value=None, *, reduce=None: scatter(x, dim, index, src, value,
                                                                                 reduce=reduce),
}.items()}


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
    "add": add, "sub": sub,
    "add_": lambda x, other, *, alpha=1: _inplace(lambda a, b: add(a, b, alpha=alpha), x, other, "add_"),
    "sub_": lambda x, other, *, alpha=1: _inplace(lambda a, b: sub(a, b, alpha=alpha), x, other, "sub_"),
    "masked_fill_": lambda x, mask, value: _inplace(lambda a, _: masked_fill(a, mask, value), x, None, "masked_fill_"),
    "where": lambda x, condition, y: where(condition, x, y),
    "int": lambda x: x.to(backend.int32), "long": lambda x: x.to(backend.int64),
    "half": lambda x: x.to(backend.float16), "bool": lambda x: x.to(backend.bool_),
    "__floordiv__": floor_divide, "__rfloordiv__": lambda x, other: floor_divide(other, x),
    "__mod__": remainder, "__rmod__": lambda x, other: remainder(other, x),
    "__and__": bitwise_and, "__rand__": lambda x, other: bitwise_and(other, x),
    "__or__": bitwise_or, "__ror__": lambda x, other: bitwise_or(other, x),
    "__xor__": bitwise_xor, "__rxor__": lambda x, other: bitwise_xor(other, x),
    "__invert__": bitwise_not,
    "type": _type, "is_contiguous": is_contiguous, "stride": stride, "nelement": numel, "mT": property(mT),
    "t": t, "div": div, "clip": clip, "clamp_min": clamp_min, "clamp_max": clamp_max, "amax": amax, "amin": amin,
    "prod": prod, "cumprod": cumprod, "addcmul": addcmul, "addcdiv": addcdiv, "lerp": lerp,
    "nonzero": nonzero, "argwhere": argwhere, "count_nonzero": count_nonzero, "unique": unique,
    "bincount": bincount, "median": median, "roll": roll, "diag": diag, "diagonal": diagonal,
    "repeat_interleave": repeat_interleave, "scatter_add": scatter_add, "equal": equal,
    "bernoulli": bernoulli, "multinomial": multinomial, **_INPLACE,
}.items():
    setattr(Tensor, _name, _method)


# ---------------------------------------------------------------------- more of torch's names (round two)
# Appended with their own table so that the one above stays as it is.  Each is made of ops
# (its gradient is theirs), except ``Fmod`` and ``Atan2``, whose backwards are made of ops.

from .ops import _check_inplace, _rebase, neg, sin, cos, squeeze, unsqueeze  # noqa: E402
from .tensor import check_memory_format  # noqa: E402


def negative(input):
    """-input (``torch.negative``, ``neg``'s other name)."""
    return neg(input)


def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` holds, as a 1-D tensor (the two
    broadcast together); the gradient goes back to the selected places (indexing's backward)."""
    input, mask = _as_tensor(input, "masked_select"), _as_tensor(mask, "masked_select")
    if mask.dtype != backend.bool_:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype}")
    shape = tuple(numpy.broadcast_shapes(input.shape, mask.shape))
    with backend.on_device(input.device):
        where_true = get_array_module(mask.array).broadcast_to(mask.array, shape)
    return getitem(broadcast_to(input, shape) if input.shape != shape else input, where_true)


def tile(input, dims):
    """``input`` repeated ``dims[i]`` times along each dimension (``torch.tile``): ``repeat``, with
    ones put in front of ``dims`` when it is shorter than the tensor's dimensions."""
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


def unfold(input, dimension, size, step):
    """``Tensor.unfold``: the windows of ``size`` elements, ``step`` apart, along ``dimension``,
    as a new last dimension (window k is elements k*step .. k*step+size-1).  An index
    (``arange`` grid), so the gradient adds back where windows overlap."""
    x = reshape(input, 1) if input.ndim == 0 else input
    axis = _dim(input, dimension, "unfold")
    n = x.shape[axis]
    if size > n:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {axis} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    windows = (n - size) // step + 1
    index = numpy.arange(windows)[:, None] * step + numpy.arange(size)[None, :]
    y = getitem(x, (slice(None),) * axis + (backend.to_device(index, x.device),))     # (.., windows, size, ..)
    return movedim(y, axis + 1, -1) if input.ndim else reshape(y, size)


def movedim(input, source, destination):
    """``input`` with the dimensions ``source`` moved to the places ``destination`` (ints or
    sequences of one length), the others keeping their order: a ``permute``."""
    source = [source] if isinstance(source, numbers.Integral) else list(source)
    destination = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    if len(source) != len(destination):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({source} dims) should contain "
                           f"the same number of dims as destination ({destination} dims)")
    src = [_dim(input, d, "movedim") for d in source]
    dst = [_dim(input, d, "movedim") for d in destination]
    for name, given, dims in (("source", source, src), ("destination", destination, dst)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({given})")
    rest = iter(a for a in range(input.ndim) if a not in src)
    placed = dict(zip(dst, src))
    order = [placed[a] if a in placed else next(rest) for a in range(input.ndim)]
    return permute(input, *order) if input.ndim else input


moveaxis = movedim


def _tensor_operands(op, input, other):
    """torch's check of an op that takes only tensors (``atan2``, ``logical_and`` ...)."""
    for position, (name, t) in enumerate((("input", input), ("other", other)), 1):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' (position {position}) must be Tensor, not {type(t).__name__}")


def _logical(name, numpy_name):
    def logical(input, other):
        _tensor_operands(name, input, other)
        return _no_gradient_binary(name, numpy_name, input, other)
    logical.__name__ = logical.__qualname__ = name
    logical.__doc__ = f"``{numpy_name}`` elementwise (non-zero is True): a bool tensor, no gradient."
    return logical


logical_and, logical_or, logical_xor = (_logical(n, n) for n in ("logical_and", "logical_or", "logical_xor"))


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source[.., i, ..]`` added at ``[.., index[i], ..]`` along ``dim``,
    repeated places summed (``scatter_add`` with the index spread over source's shape):
    g_input = gy, g_source = alpha * gy[.., index, ..]."""
    index = _as_tensor(index, "index_add")
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"index_add_(): Expected dtype int32/int64 for index but got: {index.dtype}")
    if index.ndim > 1:
        raise RuntimeError(f"index_add_(): Index is supposed to be a vector, got shape {index.shape}")
    axis = _dim(input, dim, "index_add")
    source = reshape(source, 1) if source.ndim == 0 else source
    if source.ndim != builtins.max(input.ndim, 1) or index.numel() != source.shape[axis]:
        raise RuntimeError(f"index_add_(): Number of indices ({index.numel()}) should be equal to "
                           f"source.size(dim): ({source.shape[axis] if axis < source.ndim else 1}), for dim: {dim}")
    x = reshape(input, 1) if input.ndim == 0 else input
    spread = reshape(index, *(-1 if a == axis else 1 for a in range(source.ndim))).expand(*source.shape)
    out = scatter_add(x, axis, spread, source * alpha if alpha != 1 else source)
    return reshape(out, ()) if input.ndim == 0 else out


def index_fill(input, dim, index, value):
    """``input`` with the slices ``index`` along ``dim`` set to ``value`` (a number or a 0-d
    tensor): ``where``, so input's gradient is 0 there and a tensor value gets their sum."""
    index = _as_tensor(index, "index_fill")
    if index.dtype.kind not in "iu" or index.ndim > 1:
        raise IndexError(f"index_fill_(): Expected a 1-D int32/int64 index, got {index.dtype} of shape {index.shape}")
    axis = _dim(input, dim, "index_fill")
    n = input.shape[axis] if input.ndim else 1
    chosen = numpy.zeros(n, dtype=bool)
    chosen[backend.to_host(index.array).reshape(-1)] = True
    mask = chosen.reshape([-1 if a == axis else 1 for a in range(input.ndim)])
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"index_fill_(): only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s)")
        value = value.to(input.dtype)
    else:
        value = Tensor(get_array_module(input.array).asarray(value, dtype=input.dtype))
    return where(Tensor(backend.to_device(mask, input.device)), value, input)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (by default 0 and the
    dtype's largest and smallest finite values).  The gradient is 1 at the finite elements and
    0 at the replaced ones, as torch's (``where``)."""
    input = _as_tensor(input, "nan_to_num")
    if input.dtype.kind not in "fc":
        return clone(input)
    xp = get_array_module(input.array)
    info = numpy.finfo(input.dtype)
    with backend.on_device(input.device):
        values = xp.nan_to_num(input.array, nan=nan, posinf=info.max if posinf is None else posinf,
                               neginf=info.min if neginf is None else neginf)
        finite = Tensor(xp.isfinite(input.array))
    return where(finite, input, Tensor(values.astype(input.dtype, copy=False)))


def is_floating_point(input):
    """True for a tensor of a floating dtype (``torch.is_floating_point``)."""
    return input.dtype.kind == "f"


def tan(input):
    """tan x = sin x / cos x; its gradient, by the quotient rule, 1 / cos^2 x = 1 + tan^2 x."""
    x = _as_float(input, "tan")
    return sin(x) / cos(x)


class Atan2(Function):
    """y = atan2(a, b), the angle of the point (b, a) in (-pi, pi].  With d = a^2 + b^2:
    ga = sum_to(gy b / d),  gb = sum_to(-gy a / d)  (0 / 0 = NaN at the origin, as torch)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return get_array_module(a).arctan2(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        d = a * a + b * b
        return sum_to(gy * b / d, a.shape), sum_to(-gy * a / d, b.shape)


def atan2(input, other):
    """The elementwise angle of (other, input) (``torch.atan2``; integers give the default float dtype)."""
    _tensor_operands("atan2", input, other)
    return Atan2.apply(*_operands(input, other, "atan2", floats=True))


arctan2 = atan2


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2) (``torch.addmm``; ``input`` broadcasts to the
    product's shape; beta = 0 ignores it, NaN and inf too, as torch)."""
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if m.ndim != 2:
            raise RuntimeError(f"addmm: {name} must be a matrix, got {m.ndim}-D tensor")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"addmm: mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    product = mat1 @ mat2
    product = product if alpha == 1 else product * alpha
    if beta == 0:
        return product
    return (input if beta == 1 else input * beta) + product


def concat(tensors, dim=0):
    """``cat``'s other name (``torch.concat``)."""
    return cat(tensors, dim)


def concatenate(tensors, axis=0):
    """``cat``'s other name, NumPy's argument name (``torch.concatenate``)."""
    return cat(tensors, axis)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distances between the rows of ``x1`` (.., P, M) and of ``x2`` (.., R, M):
    (.., P, R), as ``torch.cdist`` -- ``norm`` of the broadcast differences (their gradient;
    0 at a zero distance, as torch).  ``compute_mode`` is accepted and changes nothing."""
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist: cdist only supports at least 2D tensors, {name} got: {x.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} "
                           f"X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError(f"cdist: cdist only supports non-negative p values, got {p}")
    return norm(unsqueeze(x1, -2) - unsqueeze(x2, -3), p, dim=-1)


def detach_(x):
    """``x`` cut from the graph in place: a leaf that does not require grad from now on (as
    torch's, refused for a view: use ``detach()``)."""
    if x._base is not None:
        raise RuntimeError("detach_: Can't detach views in-place. Use detach() instead.")
    x.grad_fn, x._requires_grad = None, False
    return x


def _inplace_view(name, op):
    """Tensor.<name>: ``op(x, ...)`` (a view: unsqueeze, squeeze, t, transpose) becoming x itself,
    as torch's in-place view ops -- x takes the view's array and, in a graph, its history (a
    leaf that requires grad is refused outside ``no_grad``, as torch).  The data is unchanged
    but x's version is bumped, as torch's, so a node that saved x's old shape sees the change."""
    def method(x, *args, **kwargs):
        _check_inplace(x, name)
        y = op(x, *args, **kwargs)
        node = y._grad_fn           # (read before the bump below, which makes the view y stale)
        x.array = y.array
        x._version_counter[0] += 1
        if node is not None:
            _rebase(x, node)
        elif x._base is not None and x._view_version is not None:
            x._view_version = x._version_counter[0]
        return x
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In place: x becomes ``x.{name[:-1]}(...)`` (its shape changes)."
    return method


def _deprecated_scalar_first(method, name, scalar, others):
    """torch's deprecated overloads ``x.add_(2.0, other)`` (= ``add_(other, alpha=2.0)``) and
    ``x.addcmul_(0.5, t1, t2)`` (= ``value=0.5``): a number first, with torch's UserWarning."""
    def deprecated(x, *args, **kwargs):
        if len(args) == len(others) + 1 and isinstance(args[0], numbers.Number) and isinstance(args[1], Tensor):
            new = f"{name}({', '.join('Tensor ' + o for o in others)}, *, Number {scalar} = 1)"
            warnings.warn(f"This overload of {name} is deprecated:\n\t{name}(Number {scalar}, "
                          f"{', '.join('Tensor ' + o for o in others)})\nConsider using one of the following "
                          f"signatures instead:\n\t{new}", UserWarning, stacklevel=2)
            return method(x, *args[1:], **{scalar: args[0]}, **kwargs)
        return method(x, *args, **kwargs)
    deprecated.__name__ = deprecated.__qualname__ = name
    deprecated.__doc__ = method.__doc__
    return deprecated


def _with_memory_format(method, name):
    def with_format(x, *args, memory_format=None, **kwargs):
        check_memory_format(x.ndim, memory_format, name)
        return method(x, *args, **kwargs)
    with_format.__name__ = with_format.__qualname__ = name
    with_format.__doc__ = (f"``x.{name}()``; ``memory_format`` is checked as torch does and keeps tinyres's one "
                           "layout (row-major).")
    return with_format


for _name, _method in {
    "negative": negative, "neg": neg,
    "byte": lambda x: x.to(backend.uint8), "char": lambda x: x.to(numpy.int8),
    "short": lambda x: x.to(numpy.int16), "half": lambda x: x.to(backend.float16),
    "detach_": detach_, "ndimension": lambda x: x.ndim, "element_size": lambda x: int(x.array.itemsize),
    "masked_select": masked_select, "tile": lambda x, *dims: tile(x, dims[0] if len(dims) == 1 and not
                                                                    isinstance(dims[0], numbers.Integral) else dims),
    "unfold": unfold, "remainder": remainder, "fmod": fmod, "movedim": movedim, "moveaxis": movedim,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "index_add": index_add, "index_fill": index_fill, "nan_to_num": nan_to_num, "tan": tan,
    "atan2": atan2, "arctan2": atan2, "addmm": addmm, "is_floating_point": is_floating_point, "size": size,
    "index_add_": lambda x, dim, index, source, *, alpha=1: _inplace(
        lambda a, _: index_add(a, dim, index, source, alpha=alpha), x, None, "index_add_"),
    "index_fill_": lambda x, dim, index, value: _inplace(
        lambda a, _: index_fill(a, dim, index, value), x, None, "index_fill_"),
    "nan_to_num_": lambda x, nan=0.0, posinf=None, neginf=None: _inplace(
        lambda a, _: nan_to_num(a, nan, posinf, neginf), x, None, "nan_to_num_"),
    "unsqueeze_": _inplace_view("unsqueeze_", unsqueeze), "squeeze_": _inplace_view("squeeze_", squeeze),
    "t_": _inplace_view("t_", t), "transpose_": _inplace_view("transpose_", transpose),
    "contiguous": _with_memory_format(Tensor.contiguous, "contiguous"),
    "clone": _with_memory_format(Tensor.clone, "clone"),
    **{n: _deprecated_scalar_first(getattr(Tensor, n), n, "alpha", ("other",)) for n in ("add", "add_", "sub", "sub_")},
    **{n: _deprecated_scalar_first(getattr(Tensor, n), n, "value", ("tensor1", "tensor2"))
       for n in ("addcmul", "addcmul_", "addcdiv", "addcdiv_")},
}.items():
    setattr(Tensor, _name, _method)
