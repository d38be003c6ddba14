"""torch's everyday tensor methods, built from the differentiable ops of ``ops.py``.

Each function here is a composition of ops that already have a hand-written backward
(``expand`` is ``broadcast_to``, ``gather`` is advanced indexing, ``logsumexp`` is max, exp,
sum and log), so its first derivative -- and, because every backward is itself built of
ops, its second -- comes from theirs; nothing here writes a backward except ``einsum``,
whose gradient is again an einsum.  Indices (``argsort``, ``topk``'s positions, the
comparisons) are integers or bools and carry no gradient, as in torch.

Importing this module installs the methods on Tensor (``x.gather(1, idx)``), as ops.py does.
"""
import builtins
import collections
import numbers

import numpy

from . import backend
from .backend import get_array_module
from .engine import Function
from .ops import (_as_tensor, _axes, _axis, abs, broadcast_to, compare, exp, getitem, log, max, reshape, sqrt, sum,
                  where)
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
        raise TypeError(f"masked_fill: expected a bool mask, got {mask.dtype}")
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
    """The positions that sort ``x`` along ``dim`` (a stable sort, so ties keep their order)."""
    axis = _axis(dim, x.ndim, "argsort")
    xp = get_array_module(x.data)
    data = -x.data if descending else x.data
    if data.dtype == backend.bool_:
        data = data.astype(numpy.int8)
    return Tensor(xp.argsort(data, axis=axis, kind="stable").astype(backend.int64))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices): ``x`` sorted along ``dim``; the values are ``gather(x, dim, indices)``,
    so the gradient goes back to each value's original place."""
    indices = argsort(x, dim, descending)
    return SortResult(gather(x, dim, indices) if x.ndim else x, indices)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, largest first."""
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


def norm(x, p="fro", dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all elements when None): ``(sum |x|^p)^(1/p)``;
    'fro' and 2 are the Euclidean norm, ``inf`` the largest |x|, 1 the sum of |x|."""
    dims = None if dim is None else (tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))
    if p in ("fro", 2):
        return sqrt(sum(x * x, dim=dims, keepdim=keepdim))
    if p == float("inf"):
        return _amax(abs(x), dims, keepdim)
    if p == 1:
        return sum(abs(x), dim=dims, keepdim=keepdim)
    if not isinstance(p, numbers.Real) or p <= 0:
        raise ValueError(f"norm: expected p to be 'fro', inf or a positive number, got {p!r}")
    return sum(abs(x) ** p, dim=dims, keepdim=keepdim) ** (1.0 / p)


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
    """Einstein summation as ``torch.einsum('ij,jk->ik', a, b)`` (explicit '->' or implicit
    output, no '...'); each subscript may appear once per operand."""
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    operands = [_as_tensor(a, "einsum") for a in operands]
    equation = equation.replace(" ", "")
    if "..." in equation:
        raise NotImplementedError("einsum: ellipsis ('...') subscripts are not supported; name every dimension")
    lhs, arrow, output = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: the equation names {len(inputs)} operands, got {len(operands)} tensors")
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for subs, a in zip(inputs, operands):
        if not subs.isalpha() and subs:
            raise ValueError(f"einsum: expected letters as subscripts, got {subs!r}")
        if len(subs) != a.ndim:
            raise ValueError(f"einsum: subscripts {subs!r} name {len(subs)} dimensions for an operand "
                             f"of shape {a.shape}")
        if len(set(subs)) != len(subs):
            raise NotImplementedError(f"einsum: a subscript repeated within one operand ({subs!r}, a "
                                      f"diagonal) is not supported; take the diagonal first")
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
    "argsort": argsort, "sort": sort, "topk": topk, "bernoulli_": bernoulli_, "logsumexp": logsumexp,
    "norm": norm,
}.items():
    setattr(Tensor, _name, _method)
