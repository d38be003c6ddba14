"""The tensor ops: each a ``Function`` with its forward and hand-written backward.

Notation in the docstrings: ``y`` is the op's output, ``gy = dL/dy`` the gradient that
arrives from above, ``gx = dL/dx`` what backward returns.  Broadcasting in forward is
undone in backward by ``sum_to`` (the adjoint of broadcasting is summation over the
broadcast axes).  ``forward`` works on arrays, and every op gets its array module from the
backend (``xp``) so the same code runs on NumPy and CuPy.  ``backward`` works on Tensors,
with these same ops, so that its own graph can be recorded (second derivatives): each
backward below is itself differentiable.  Each public function sits right under its
``Function`` (``add`` under ``Add``), so an op reads top to bottom in one place.
"""
import builtins
import collections
import numbers

import numpy

from . import backend
from .backend import get_array_module
from . import engine, grad_mode
from .engine import Function
from .grad_mode import is_grad_enabled, no_grad
from .tensor import Tensor, size_arg, tensor

# ---------------------------------------------------------------------- helpers

def _promote(da, db):
    """torch's ``promote_types`` for two dtypes: a float beats an integer (keeping the
    float's width); else NumPy's rule (bool < uint8 < int8 < ... ; float16 < float32 < float64)."""
    if (da.kind == "f") != (db.kind == "f"):
        return da if da.kind == "f" else db
    return numpy.result_type(da, db)


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}     # torch's bool < integer < floating < complex


def _combine(higher, lower):
    """torch's ``combine_categories``: the dtype of a higher-priority group of operands
    (dimensioned tensors over 0-d tensors over Python numbers), moved to a lower group's
    category only when that is higher (a bool tensor with an int, an int tensor with a float)."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if _CATEGORY[lower.kind] > _CATEGORY[higher.kind]:
        if lower.kind == "c" and higher.kind == "f":        # keeps the float's width
            return numpy.result_type(higher, numpy.complex64)
        return _promote(higher, lower)
    return higher


def _number_dtype(x):
    """The dtype torch gives a Python number in an op: bool, int64, the default float dtype
    (complex: its complex form)."""
    if isinstance(x, (bool, numpy.bool_)):
        return backend.bool_
    if isinstance(x, numbers.Integral):
        return backend.int64
    if isinstance(x, numbers.Real):
        return backend.get_default_dtype()
    return numpy.result_type(backend.get_default_dtype(), numpy.complex64)


def result_type(*operands):
    """torch's ``result_type``: the dtype of an op on ``operands`` (Tensors and Python
    numbers).  Each kind of operand -- dimensioned tensors, 0-d tensors, Python numbers --
    is promoted within its kind (``promote_types``); a lower kind then changes the result
    only by being of a higher category (bool < int < float < complex): ``float32 tensor +
    float64 0-d tensor`` is float32, ``int32 tensor + 2.5`` the default float dtype,
    ``bool tensor + 1`` int64, ``int32 tensor + int64 0-d tensor`` int32."""
    groups = [None, None, None]             # dimensioned, 0-d, numbers
    for x in operands:
        if isinstance(x, Tensor):
            kind, dtype = (0 if x.ndim else 1), x.dtype
        else:
            kind, dtype = 2, _number_dtype(x)
        groups[kind] = dtype if groups[kind] is None else _promote(groups[kind], dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def _scalar_tensor(x, like, dtype=None):
    """A Python/NumPy number as a 0-d tensor on ``like``'s device with ``dtype`` (default:
    ``like``'s, unless the number is a float and ``like`` is not -- then the default float
    dtype).  An integer out of the dtype's range wraps around, as torch casts it."""
    if dtype is None:
        dtype = like.dtype
        if isinstance(x, (float, numpy.floating)) and dtype.kind != "f":
            dtype = backend.get_default_dtype()
        elif isinstance(x, (bool, numpy.bool_)) and dtype.kind == "b":
            dtype = backend.bool_
    with backend.on_device(like.device):       # filled on the device: no host-to-device copy
        xp = get_array_module(like)
        try:
            return Tensor(xp.full((), x, dtype=dtype))
        except OverflowError:                  # NumPy refuses uint8(-1); torch casts it to 255
            return Tensor(xp.full((), numpy.array(x).astype(dtype), dtype=dtype))


def _operands(a, b, op, floats=False):
    """Both operands of a binary op as Tensors of one dtype, torch's ``result_type(a, b)``
    (numbers, lists and arrays become tensors); shapes checked to broadcast.  ``floats``:
    an integer or bool result type becomes the default float dtype (true division)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        _check_broadcast(op, a.shape, b.shape)
        if a.dtype == b.dtype and (not floats or a.dtype.kind in "fc"):    # the common case: nothing to convert
            return a, b
        dtype = result_type(a, b)
    else:
        t, number = (a, b) if isinstance(a, Tensor) else (b, a)
        kind = t.dtype.kind
        if (type(number) in (float, int, bool) and kind in "fc"
                or type(number) in (int, bool) and kind in "iu" and not floats):   # common: the tensor's dtype kept
            number = _scalar_tensor(number, t, t.dtype)
            return (t, number) if t is a else (number, t)
        device = t.device
        a, b = [x if isinstance(x, (Tensor, numbers.Number)) else tensor(x, device=device) for x in (a, b)]
        _check_broadcast(op, *(x.shape if isinstance(x, Tensor) else () for x in (a, b)))   # a list's shape too
        dtype = result_type(a, b)
    if floats and dtype.kind not in "fc":
        dtype = backend.get_default_dtype()
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):     # a number becomes a 0-d tensor of the dtype
        ref = a if isinstance(a, Tensor) else b
        a, b = [_scalar_tensor(x, ref, dtype) if isinstance(x, numbers.Number) else x for x in (a, b)]
    return a.to(dtype=dtype), b.to(dtype=dtype)


def _check_broadcast(op, *shapes):
    try:
        numpy.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: expected shapes that broadcast together, got "
                         + " and ".join(map(str, shapes))) from None


def _as_tensor(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x


def _as_float(x, op):
    """``x`` as a Tensor, integers converted to the default float dtype (as torch's exp, log...)."""
    x = _as_tensor(x, op)
    return x if x.dtype.kind in "fc" else x.to(backend.get_default_dtype())


def _axes(dim, ndim, op):
    """``dim`` (None, an int or a tuple) as a sorted tuple of non-negative axes.  As in torch,
    a 0-d tensor takes dim 0 or -1 and has no axis to reduce."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    n = builtins.max(ndim, 1)
    for d in dims:
        if not isinstance(d, numbers.Integral) or not -n <= d < n:
            raise IndexError(f"{op}: expected a dim in [{-n}, {n - 1}] for a tensor with {ndim} "
                             f"dimensions, got {d}")
    return tuple(sorted({int(d) % n for d in dims})) if ndim else ()


def _axis(dim, ndim, op):
    """A single ``dim`` as a non-negative axis; the tensor must have at least one dimension."""
    if ndim == 0:
        raise ValueError(f"{op}: expected a tensor with at least 1 dimension, got a 0-d tensor")
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: expected dim to be an int, got {dim!r}")
    return _axes(dim, ndim, op)[0]


def _unreduce(gy, x_shape, axes, keepdim):
    """Broadcast a reduced gradient (a Tensor) back to the input shape."""
    if not keepdim and gy.ndim != len(x_shape):
        gy = gy.reshape(tuple(1 if a in axes else n for a, n in enumerate(x_shape)))
    return broadcast_to(gy, x_shape)


# ---------------------------------------------------------------------- broadcasting and its adjoint

class BroadcastTo(Function):
    """y = x broadcast to ``shape``.   gx = sum_to(gy, x.shape).
    A view of x (``expand``): the two share a version counter."""

    is_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, gy):
        return sum_to(gy, self.shape)


def broadcast_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else BroadcastTo.apply(x, shape)


class SumTo(Function):
    """y = x summed down to ``shape`` (the adjoint of broadcasting).   gx = gy broadcast to x.shape."""

    def forward(self, x, shape):
        self.shape = x.shape
        return engine.sum_to(x, shape)

    def backward(self, gy):
        return broadcast_to(gy, self.shape)


def sum_to(x, shape):
    """``x`` summed over the axes that broadcasting to ``x.shape`` would add or stretch from ``shape``."""
    shape = tuple(shape)
    return x if x.shape == shape else SumTo.apply(x, shape)


# ---------------------------------------------------------------------- elementwise

class Add(Function):
    """y = a + b.   ga = sum_to(gy), gb = sum_to(gy)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


def add(a, b):
    return Add.apply(*_operands(a, b, "add"))


class Sub(Function):
    """y = a - b.   ga = sum_to(gy), gb = -sum_to(gy)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), -sum_to(gy, self.shapes[1])


def _refuse_bool_sub(a, b):
    """torch refuses a - b with a bool operand (before it looks at ``alpha``)."""
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("sub: Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` "
                           "or `logical_xor()` operator instead." if _is_bool(a) and _is_bool(b) else
                           "sub: Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                           "trying to invert a mask, use the `~` or `logical_not()` operator instead.")


def sub(a, b):
    _refuse_bool_sub(a, b)
    return Sub.apply(*_operands(a, b, "sub"))


def _is_bool(x):
    return x.dtype.kind == "b" if isinstance(x, Tensor) else isinstance(x, (bool, numpy.bool_))


class Mul(Function):
    """y = a * b.   ga = sum_to(gy * b), gb = sum_to(gy * a).   (b is kept only for ga, a only for gb.)"""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        self.save_for_backward(*[x for x, keep in zip((b, a), self.needs_input_grad) if keep])
        return a * b

    def backward(self, gy):
        saved = iter(self.saved_tensors)
        return tuple(sum_to(gy * next(saved), shape) if keep else None
                     for shape, keep in zip(self.shapes, self.needs_input_grad))


def mul(a, b):
    return Mul.apply(*_operands(a, b, "mul"))


class Div(Function):
    """y = a / b.   ga = sum_to(gy / b), gb = sum_to(-gy * a / b^2) = sum_to(-gy * y / b)."""

    def forward(self, a, b):
        self.a_shape = a.shape
        y = a / b
        self.save_for_backward(*((b, y) if self.needs_input_grad[1] else (b,)))   # y only for gb
        return y

    def backward(self, gy):
        b, *y = self.saved_tensors
        ga = gy / b
        return sum_to(ga, self.a_shape), sum_to(-ga * y[0], b.shape) if y else None


def div(a, b):
    return Div.apply(*_operands(a, b, "div", floats=True))    # true division: integers give floats, as in torch


class Neg(Function):
    """y = -x.   gx = -gy."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    return Neg.apply(_as_tensor(x, "neg"))


class Pow(Function):
    """y = x^p for a constant p.   gx = gy * p * x^(p-1)   (0 when p = 0, also at x = 0)."""

    def forward(self, x, p):
        self.p = p
        self.save_for_backward(x)
        y = x ** p
        return y if y.dtype == x.dtype else y.astype(x.dtype)     # NumPy: bool ** True is int64, torch's bool

    def backward(self, gy):
        x, = self.saved_tensors
        if self.p == 0:
            return gy * 0
        return gy * self.p * x ** (self.p - 1)


class PowTensor(Function):
    """y = a^b elementwise, for a tensor exponent (or base).  torch's conventions at the edges:

        ga = sum_to(gy * b * a^(b-1))   (0 where b = 0)
        gb = sum_to(gy * y * ln a)      (0 where a = 0 and b >= 0)

    Integers to a negative power give 0, as in torch (1 for a = 1, +-1 for a = -1)."""

    def forward(self, a, b):
        xp = get_array_module(a)
        self.shapes = a.shape, b.shape
        if a.dtype.kind in "iu" and (b < 0).any():
            y = xp.power(a, xp.maximum(b, 0))
            odd = (b % 2 != 0)
            y = xp.where(b >= 0, y, xp.where(a == 1, 1, xp.where(a == -1, 1 - 2 * odd, 0))).astype(a.dtype)
        else:
            y = xp.power(a, b)
        if builtins.any(self.needs_input_grad):
            self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(where(Tensor(b.array == 0), 0.0, gy * b * pow(a, b - 1)), self.shapes[0])
        if self.needs_input_grad[1]:
            at_zero = Tensor((a.array == 0) & (b.array >= 0))
            gb = sum_to(where(at_zero, 0.0, gy * y * log(a)), self.shapes[1])
        return ga, gb


def pow(x, exponent):
    """``x ** exponent`` in torch's result dtype (``result_type``): a tensor to a number is
    ``Pow``; a tensor exponent (or a number to a tensor, ``2 ** t``) is ``PowTensor``."""
    if isinstance(exponent, numpy.generic):
        exponent = exponent.item()
    if isinstance(x, Tensor) and isinstance(exponent, numbers.Number):
        dtype = result_type(x, exponent)
        if dtype.kind in "iu" and exponent < 0:
            raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
        return Pow.apply(x.to(dtype), exponent)
    for name, v in (("exponent", exponent), ("base", x)):
        if not isinstance(v, (Tensor, numbers.Number)):
            raise TypeError(f"pow: expected a number or a Tensor as {name}, got {type(v).__name__}")
    a, b = _operands(x, exponent, "pow")
    if a.dtype.kind == "b":
        raise NotImplementedError("pow: \"pow\" not implemented for 'Bool' (a bool tensor exponent)")
    return PowTensor.apply(a, b)


class Exp(Function):
    """y = e^x.   gx = gy * y."""

    def forward(self, x):
        y = get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy * y


def exp(x):
    return Exp.apply(_as_float(x, "exp"))


class Log(Function):
    """y = ln x.   gx = gy / x."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy / x


def log(x):
    return Log.apply(_as_float(x, "log"))


class Sqrt(Function):
    """y = sqrt(x).   gx = gy / (2 y)."""

    def forward(self, x):
        y = get_array_module(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy / (2 * y)


def sqrt(x):
    return Sqrt.apply(_as_float(x, "sqrt"))


class Abs(Function):
    """y = |x|.   gx = gy * sign(x)  (0 at x = 0 and at NaN, as PyTorch)."""

    _backward_reads_input = True    # the sign is x's: under create_graph gx is in the graph, as torch's

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward((x > 0).astype(x.dtype) - (x < 0).astype(x.dtype))   # NumPy's sign(nan) is nan
        return xp.abs(x)

    def backward(self, gy):
        sign, = self.saved_tensors       # a constant: the second derivative of |x| is 0 (away from 0)
        return gy * sign


def abs(x):
    return Abs.apply(_as_tensor(x, "abs"))


class Sin(Function):
    """y = sin x.   gx = gy cos x."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * cos(x)


def sin(x):
    return Sin.apply(_as_float(x, "sin"))


class Cos(Function):
    """y = cos x.   gx = -gy sin x."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return -gy * sin(x)


def cos(x):
    return Cos.apply(_as_float(x, "cos"))


class Log1p(Function):
    """y = ln(1 + x), accurate for small x.   gx = gy / (1 + x)."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log1p(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy / (1 + x)


def log1p(x):
    return Log1p.apply(_as_float(x, "log1p"))


class Expm1(Function):
    """y = e^x - 1, accurate for small x.   gx = gy (y + 1)."""

    def forward(self, x):
        y = get_array_module(x).expm1(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy * (y + 1)


def expm1(x):
    return Expm1.apply(_as_float(x, "expm1"))


class Cumsum(Function):
    """y_i = x_0 + ... + x_i along ``dim``.   Each x_j reaches every y_i with i >= j, so
    gx_j = gy_j + ... + gy_last: the cumulative sum of gy taken from the end,
    gx = flip(cumsum(flip(gy)))."""

    def forward(self, x, dim):
        self.dim = dim
        return get_array_module(x).cumsum(x, axis=dim)

    def backward(self, gy):
        end = (slice(None),) * self.dim + (slice(None, None, -1),)
        return getitem(Cumsum.apply(getitem(gy, end), self.dim), end), None


def cumsum(x, dim, dtype=None):
    """The running sum along ``dim`` (as ``torch.cumsum``; ``dtype`` casts first)."""
    x = _as_tensor(x, "cumsum")
    if dtype is not None:
        x = x.to(dtype)
    elif x.dtype.kind in "biu":
        x = x.to(backend.int64)             # torch sums integers (and bools) as int64
    return Cumsum.apply(x, _axis(dim, builtins.max(x.ndim, 1), "cumsum")) if x.ndim else x * 1


class Clamp(Function):
    """y = min(max(x, lo), hi), the bounds numbers or tensors (broadcast with x; lo > hi gives hi).

        gx  = sum_to(gy where lo <= x <= hi, else 0)     (a tie passes to x, as PyTorch)
        glo = sum_to(gy where x < lo and lo < hi)        (x < lo with lo alone)
        ghi = sum_to(gy where x > hi or hi < lo)         (x > hi with hi alone)

    each bound gets the gradient where it is the value chosen, exactly as torch's
    ``clamp_backward_min_max``.  The masks are constants: the second derivative is 0.
    """

    def forward(self, x, lo, hi):
        xp = get_array_module(x)
        self.shapes = tuple(None if a is None else getattr(a, "shape", ()) for a in (x, lo, hi))
        need_x, need_lo, need_hi = self.needs_input_grad
        if need_x:
            mask = True
            if lo is not None:
                mask = mask & (x >= lo)
            if hi is not None:
                mask = mask & (x <= hi)
            self.mask = mask
        if need_lo:
            self.lo_mask = (x < lo) & (lo < hi) if hi is not None else x < lo
        if need_hi:
            self.hi_mask = (x > hi) | (hi < lo) if lo is not None else x > hi
        y = xp.clip(x, lo, hi)
        return y.astype(x.dtype, copy=False) if y.dtype != x.dtype else y

    def backward(self, gy):
        need = self.needs_input_grad
        masks = (getattr(self, "mask", None), getattr(self, "lo_mask", None), getattr(self, "hi_mask", None))
        return tuple(sum_to(where(Tensor(mask), gy, 0.0), shape) if keep else None
                     for keep, mask, shape in zip(need, masks, self.shapes))


def clamp(x, min=None, max=None):
    """min(max(x, min), max), as ``torch.clamp``: the bounds both numbers (or None) or both
    tensors (or None); tensor bounds broadcast with x and get gradients too."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = _as_tensor(x, "clamp")
    bounds = [b for b in (min, max) if b is not None]
    if builtins.any(isinstance(b, Tensor) for b in bounds):
        if not builtins.all(isinstance(b, Tensor) for b in bounds):
            raise TypeError("clamp: expected min and max both Tensors or both numbers, got "
                            + " and ".join(type(b).__name__ for b in (min, max)))
        _check_broadcast("clamp", x.shape, *(b.shape for b in bounds))
        dtype = x.dtype
        for b in bounds:
            dtype = _promote(dtype, b.dtype)
        x, min, max = (None if b is None else b.to(dtype=dtype) for b in (x, min, max))
    return Clamp.apply(x, min, max)


class Maximum(Function):
    """y = max(a, b) elementwise.   The gradient goes to the larger input; on a tie each
    gets half; where either is NaN (y is NaN) both get all of it -- PyTorch's convention:

        ga = sum_to(gy * (1/2 if a == b else 0 if a < b else 1)),  gb likewise with a > b.
    """

    def forward(self, a, b):
        tie = 0.5 * (a == b)
        self.shares = ((1 - (a < b) - tie).astype(a.dtype, copy=False),
                       (1 - (a > b) - tie).astype(a.dtype, copy=False))
        self.shapes = a.shape, b.shape
        return get_array_module(a).maximum(a, b)

    def backward(self, gy):
        (share_a, share_b), (shape_a, shape_b) = self.shares, self.shapes
        return sum_to(gy * Tensor(share_a), shape_a), sum_to(gy * Tensor(share_b), shape_b)


def maximum(a, b):
    return Maximum.apply(*_operands(a, b, "maximum"))


def minimum(a, b):
    """min(a, b) elementwise, as -max(-a, -b) (exact: negation rounds nothing), so ties and
    NaNs share the gradient as ``maximum`` does."""
    a, b = _operands(a, b, "minimum")
    return -Maximum.apply(-a, -b)


class Where(Function):
    """y = x where cond else z.   gx = sum_to(gy * cond), gz = sum_to(gy * !cond)."""

    def forward(self, cond, x, z):
        self.cond, self.shapes = cond, (x.shape, z.shape)
        return get_array_module(x).where(cond, x, z)

    def backward(self, gy):
        cond = Tensor(self.cond)
        return None, sum_to(where(cond, gy, 0.0), self.shapes[0]), sum_to(where(cond, 0.0, gy), self.shapes[1])


def where(condition, x, y):
    """``x`` where ``condition`` holds, else ``y``; the three shapes broadcast together."""
    if not isinstance(condition, Tensor):
        condition = tensor(condition)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = tensor(x, device=condition.device)
    x, y = _operands(x, y, "where")
    if condition.dtype != backend.bool_:
        raise TypeError(f"where: expected a bool condition, got {condition.dtype}")
    _check_broadcast("where", condition.shape, x.shape, y.shape)
    return Where.apply(condition, x, y)     # apply checks that all three share a device


def compare(name, a, b):
    """Elementwise comparison (``less``, ``equal``, ...): a bool tensor, not differentiable."""
    a, b = _operands(a, b, name)
    if a.device != b.device:
        raise RuntimeError(f"{name}: expected both tensors on one device, got {a.device}, {b.device}")
    with backend.on_device(a.device):
        return Tensor(getattr(get_array_module(a.array), name)(a.array, b.array))


# ---------------------------------------------------------------------- matmul

class MatMul(Function):
    """y = a @ b over the last two axes (leading axes broadcast).
    ga = sum_to(gy @ b^T), gb = sum_to(a^T @ gy).  Keeps b for ga and a for gb, each only
    when that gradient is wanted (as torch)."""

    def forward(self, a, b):
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b if need_a else None)
        self.shapes = a.shape, b.shape
        return backend.matmul(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = None if b is None else sum_to(MatMul.apply(gy, transpose(b, -1, -2)), self.shapes[0])
        gb = None if a is None else sum_to(MatMul.apply(transpose(a, -1, -2), gy), self.shapes[1])
        return ga, gb


def matmul(a, b):
    """Matrix product as ``torch.matmul``: 1-D operands are promoted to a row/column and the
    added axis removed again; higher-rank operands are batches of matrices."""
    a, b = _as_tensor(a, "matmul"), _as_tensor(b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    dtype = _promote(a.dtype, b.dtype)
    a2 = a.to(dtype).unsqueeze(0) if a.ndim == 1 else a.to(dtype)
    b2 = b.to(dtype).unsqueeze(-1) if b.ndim == 1 else b.to(dtype)
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: expected the last dim of the first operand to equal the "
                         f"contracted dim of the second ({a2.shape[-1]} vs {b2.shape[-2]}), "
                         f"got shapes {a.shape} and {b.shape}")
    _check_broadcast(f"matmul (batch dims of {a.shape} and {b.shape})", a2.shape[:-2], b2.shape[:-2])
    y = MatMul.apply(a2, b2)
    if b.ndim == 1:
        y = y.squeeze(-1)
    if a.ndim == 1:
        y = y.squeeze(-2 if b.ndim > 1 else -1)
    return y


# ---------------------------------------------------------------------- reductions

class Sum(Function):
    """y = sum of x over ``axes``.   gx = gy broadcast back to x's shape."""

    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    def backward(self, gy):
        return _unreduce(gy, self.shape, self.axes, self.keepdim)


def _reduction_args(x, dim, keepdim, dtype, axis, keepdims, op):
    """torch's spellings of a reduction's arguments: NumPy's ``axis`` and ``keepdims`` for
    ``dim`` and ``keepdim``, and ``dtype`` (``x`` cast to it first)."""
    x = _as_tensor(x, op)
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: expected dim or its alias axis, got both (dim={dim}, axis={axis})")
        dim = axis
    return (x if dtype is None else x.to(dtype)), dim, keepdim if keepdims is None else keepdims


def sum(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """The sum over ``dim`` (all elements when None), in ``dtype`` if given."""
    x, dim, keepdim = _reduction_args(x, dim, keepdim, dtype, axis, keepdims, "sum")
    return Sum.apply(x, _axes(dim, x.ndim, "sum"), keepdim)


class Mean(Function):
    """y = sum(x) / n over ``axes`` (n elements each).   gx = gy / n broadcast back."""

    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.n = int(numpy.prod([x.shape[a] for a in axes]))
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, gy):
        return _unreduce(gy / self.n, self.shape, self.axes, self.keepdim)


def mean(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """The mean over ``dim`` (all elements when None), computed in ``dtype`` if given."""
    x, dim, keepdim = _reduction_args(x, dim, keepdim, dtype, axis, keepdims, "mean")
    if x.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating point tensor, got {x.dtype}")
    return Mean.apply(x, _axes(dim, x.ndim, "mean"), keepdim)


class Var(Function):
    """y = sum((x - m)^2) / (n - c) over ``axes``, m the mean, c = 1 if unbiased else 0.
    gx = gy * 2 (x - m) / (n - c)   (the mean's own dependence on x cancels: sum(x - m) = 0)."""

    def forward(self, x, axes, correction, keepdim):
        self.axes, self.keepdim = axes, keepdim
        n = int(numpy.prod([x.shape[a] for a in axes]))
        centered = x - x.mean(axis=axes, keepdims=True)
        self.denom = builtins.max(n - correction, 0)
        self.save_for_backward(x)
        return (centered ** 2).sum(axis=axes, keepdims=keepdim) / centered.dtype.type(self.denom)

    def backward(self, gy):
        x, = self.saved_tensors
        centered = x - x.mean(self.axes, keepdim=True)
        gy = _unreduce(gy, x.shape, self.axes, self.keepdim)
        return gy * centered * (2 / x.dtype.type(self.denom))


def var(x, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """The variance over ``dim``, divided by n - c: c = 1 (``unbiased``) or 0, or torch's
    ``correction=c``."""
    x = _as_tensor(x, "var")
    if x.dtype.kind != "f":
        raise TypeError(f"var: expected a floating point tensor, got {x.dtype}")
    c = int(bool(unbiased)) if correction is None else int(correction)
    return Var.apply(x, _axes(dim, x.ndim, "var"), c, keepdim)


def std(x, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """sqrt(var): the chain rule through Sqrt and Var gives gx = gy (x - m) / ((n - c) y)."""
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


class MaxMin(Function):
    """y = max (or min) of x over all elements.   The gradient is shared equally by all
    elements equal to y (PyTorch's rule for a full reduction): gx = gy * [x == y] / count."""

    def forward(self, x, kind):
        y = x.max() if kind == "max" else x.min()
        mask = (x == y)
        self.share = mask / mask.sum().astype(x.dtype)     # the count in x's dtype
        return y

    def backward(self, gy):
        return gy * Tensor(self.share)


class MaxMinDim(Function):
    """y = max (or min) of x along one axis, i = its index.   gx = gy at the index i of each
    row (one winner per row, the first, as the index PyTorch returns), 0 elsewhere."""

    def forward(self, x, kind, axis, keepdim):
        xp = get_array_module(x)
        self.indices = (x.argmax if kind == "max" else x.argmin)(axis=axis)
        picked = xp.expand_dims(self.indices, axis)
        self.shape, self.axis, self.keepdim = x.shape, axis, keepdim
        y = xp.take_along_axis(x, picked, axis=axis)
        return y if keepdim else y.squeeze(axis)

    def backward(self, gy):
        xp = get_array_module(gy.array)
        if not self.keepdim:
            gy = unsqueeze(gy, self.axis)
        positions = xp.arange(self.shape[self.axis]).reshape(
            [-1 if a == self.axis else 1 for a in range(len(self.shape))])
        winner = positions == xp.expand_dims(self.indices, self.axis)
        return where(Tensor(winner), gy, 0.0)


MaxMinResult = collections.namedtuple("MaxMinResult", ["values", "indices"])


def _maxmin(kind, x, dim, keepdim):
    x = _as_tensor(x, kind)
    if x.numel() == 0:
        raise ValueError(f"{kind}: cannot reduce an empty tensor of shape {x.shape}")
    if dim is None:
        return MaxMin.apply(x, kind)
    axis = _axis(dim, x.ndim, kind)
    values = MaxMinDim.apply(x, kind, axis, keepdim)
    return MaxMinResult(values, _arg("arg" + kind, x, axis, keepdim))


def max(x, dim=None, keepdim=False):
    """The largest element; with ``dim``, a ``(values, indices)`` pair as ``torch.max``;
    ``max(a, b)`` of two tensors is ``maximum(a, b)``, as torch's."""
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    return _maxmin("max", x, dim, keepdim)


def min(x, dim=None, keepdim=False):
    """The smallest element; with ``dim``, a ``(values, indices)`` pair as ``torch.min``;
    ``min(a, b)`` of two tensors is ``minimum(a, b)``."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    return _maxmin("min", x, dim, keepdim)


def _arg(kind, x, dim, keepdim):
    x = _as_tensor(x, kind)
    data = x.array
    with backend.on_device(x.device):
        if dim is None:
            return Tensor(getattr(data.reshape(-1), kind)().astype(backend.int64))
        axis = _axis(dim, x.ndim, kind)
        out = getattr(data, kind)(axis=axis).astype(backend.int64)
        return Tensor(get_array_module(data).expand_dims(out, axis) if keepdim else out)


def _logical(kind, x, dim, keepdim):
    x = _as_tensor(x, kind)
    with backend.on_device(x.device):
        data = x.array if x.dtype == backend.bool_ else x.array != 0
        return Tensor(getattr(data, kind)(axis=_axes(dim, x.ndim, kind), keepdims=keepdim))


def all(x, dim=None, keepdim=False):
    """True where every element (over ``dim``) is non-zero: a bool tensor, not differentiable."""
    return _logical("all", x, dim, keepdim)


def any(x, dim=None, keepdim=False):
    """True where some element (over ``dim``) is non-zero: a bool tensor, not differentiable."""
    return _logical("any", x, dim, keepdim)


def argmax(x, dim=None, keepdim=False):
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", x, dim, keepdim)


# ---------------------------------------------------------------------- shapes

class Reshape(Function):
    """y = x viewed with another shape.   gx = gy reshaped back."""
    is_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, gy):
        return gy.reshape(self.shape)


def reshape(x, *shape):
    """``x`` with a new shape of the same number of elements; one size may be -1 (inferred)."""
    x = _as_tensor(x, "reshape")
    shape = size_arg(shape, "reshape", minimum=-1)
    known = int(numpy.prod([n for n in shape if n != -1]))
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or x.numel() % known)) or \
            (-1 not in shape and known != x.numel()):
        raise ValueError(f"reshape: expected a shape with {x.numel()} elements (the input has shape "
                         f"{x.shape}), got {shape}")
    return Reshape.apply(x, shape)


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    x = _as_tensor(x, "flatten")
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = (d % x.ndim if -x.ndim <= d < x.ndim else None for d in (start_dim, end_dim))
    if start is None or end is None or start > end:
        raise IndexError(f"flatten: start_dim={start_dim}, end_dim={end_dim} are not valid for a "
                         f"tensor with {x.ndim} dimensions")
    merged = int(numpy.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    x = _as_tensor(x, "squeeze")
    axes = _axes(dim, x.ndim, "squeeze")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1)))


def unsqueeze(x, dim):
    x = _as_tensor(x, "unsqueeze")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: expected a dim in [{-x.ndim - 1}, {x.ndim}] for a tensor with "
                         f"{x.ndim} dimensions, got {dim}")
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Permute(Function):
    """y = x with its axes reordered by ``dims``.   gx = gy with the inverse order."""
    is_view = True

    def forward(self, x, dims):
        self.inverse = tuple(int(d) for d in numpy.argsort(dims))
        return x.transpose(dims)

    def backward(self, gy):
        return Permute.apply(gy, self.inverse)


def permute(x, *dims):
    x = _as_tensor(x, "permute")
    dims = size_arg(dims, "permute", minimum=None)
    if not builtins.all(-x.ndim <= d < x.ndim for d in dims) or \
            sorted(d % x.ndim for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: expected a permutation of the {x.ndim} dims of a tensor of shape "
                         f"{x.shape}, got {dims}")
    return Permute.apply(x, tuple(d % x.ndim for d in dims))


def transpose(x, dim0, dim1):
    x = _as_tensor(x, "transpose")
    if x.ndim == 0:
        return x
    a, b = (_axis(d, x.ndim, "transpose") for d in (dim0, dim1))
    dims = list(range(x.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, tuple(dims))


# ---------------------------------------------------------------------- indexing, joining

def to_index(index, array):
    """An index with Tensors, lists and host arrays replaced by arrays on ``array``'s device.
    As in torch, a CPU index may index a GPU tensor, but not the other way round."""
    device = backend.device_of(array)

    def convert(i):
        if isinstance(i, Tensor):
            if i.device.type != "cpu" and i.device != device:
                raise RuntimeError(f"index: expected indices on cpu or on {device} like the "
                                   f"indexed tensor, got indices on {i.device}")
            i = i.array
        if isinstance(i, list) or hasattr(i, "dtype"):
            i = backend.to_device(numpy.asarray(i) if isinstance(i, list) else i, device)
            if i.dtype.kind not in "iub":
                raise IndexError(f"index: expected integer or bool indices, got {i.dtype}")
        return i
    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


def scatter_add(shape, index, values):
    """``zeros(shape)`` with ``values`` added at the places ``zeros(shape)[index]`` reads,
    repeated places summed -- ``add.at`` without its atomics, deterministic on both backends.

    Each value's flat position is read off ``arange(size).reshape(shape)[index]``; sorting
    the positions (ties kept in their original order, so the sums always run in one order)
    makes each repeated place one run, and ``add.reduceat`` sums every run.  On a GPU,
    finding the runs reads their count back (one wait per call); a ResNet's training step
    never indexes with arrays.
    """
    xp = get_array_module(values)
    size = int(numpy.prod(shape))
    places = xp.arange(size).reshape(shape)[index].reshape(-1)
    values = values.reshape(-1)
    out = xp.zeros(size, dtype=values.dtype)
    if places.size:
        order = xp.argsort(places * places.size + xp.arange(places.size))   # unique keys: a stable order
        places, values = places[order], values[order]
        starts = xp.flatnonzero(xp.concatenate((xp.ones(1, dtype=bool), places[1:] != places[:-1])))
        out[places[starts]] = xp.add.reduceat(values, starts)
    return out.reshape(shape)


class GetItem(Function):
    """y = x[index].   gx = zeros like x with gy scattered back to the indexed places
    (``IndexBackward``)."""
    is_view = True

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        return x[index]

    def backward(self, gy):
        return IndexBackward.apply(gy, self.shape, self.index)


class IndexBackward(Function):
    """y = zeros of ``shape`` with g added at the places ``zeros(shape)[index]`` reads --
    GetItem's gradient; integer-array indices may repeat an element, so their values add up
    (``scatter_add``).  It is linear in g, and its adjoint is the indexing itself:
    gg = gy[index]."""

    def forward(self, g, shape, index):
        self.index = index
        parts = index if isinstance(index, tuple) else (index,)
        if builtins.any(hasattr(p, "dtype") and p.ndim > 0 for p in parts):
            return scatter_add(shape, index, g)    # advanced indexing: elements may repeat
        gx = get_array_module(g).zeros(shape, dtype=g.dtype)
        gx[index] = g             # basic indexing: a view, each element once
        return gx

    def backward(self, gy):
        return GetItem.apply(gy, self.index)


def getitem(x, index):
    """``x[index]`` with ints, slices, None, ``...``, integer arrays and bool masks (NumPy rules)."""
    index = to_index(index, x.array)
    try:
        return GetItem.apply(x, index)
    except IndexError as e:
        raise IndexError(f"index: expected an index valid for a tensor of shape {x.shape}, "
                         f"got {e}") from None


class Cat(Function):
    """y = the inputs joined along ``axis``.   Each gx is its slice of gy."""

    def forward(self, *xs, axis):
        self.axis = axis
        self.bounds = numpy.cumsum([x.shape[axis] for x in xs])[:-1].tolist()   # ints, not a host array
        return get_array_module(xs[0]).concatenate(xs, axis=axis)

    def backward(self, gy):
        edges = [0] + self.bounds + [gy.shape[self.axis]]
        lead = (slice(None),) * self.axis
        return tuple(GetItem.apply(gy, lead + (slice(a, b),)) for a, b in zip(edges, edges[1:]))


def cat(tensors, dim=0):
    tensors = [_as_tensor(t, "cat") for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    axis = _axis(dim, tensors[0].ndim, "cat")
    outside = [t.shape[:axis] + t.shape[axis + 1:] if t.ndim == tensors[0].ndim else t.shape
               for t in tensors]
    if len(set(outside)) > 1:
        raise ValueError(f"cat: expected shapes that match except in dim {dim}, got "
                         f"{[t.shape for t in tensors]}")
    dtype = first_dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = _promote(dtype, t.dtype)
    if dtype != first_dtype or builtins.any(t.dtype != dtype for t in tensors):
        tensors = [t.to(dtype) for t in tensors]
    return Cat.apply(*tensors, axis=axis)


def stack(tensors, dim=0):
    """Join along a new axis: ``cat`` of the inputs each unsqueezed at ``dim``."""
    tensors = [_as_tensor(t, "stack") for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: expected tensors of one shape, got {[t.shape for t in tensors]}")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


engine._stack = stack      # for grad(is_grads_batched=True)


# ---------------------------------------------------------------------- copies

class ToCopy(Function):
    """y = x on another device and/or with another dtype.   gx = gy moved and cast back."""

    def forward(self, x, device, dtype):
        self.source_device, self.source_dtype = backend.device_of(x), x.dtype
        y = x if device is None else backend.to_device(x, device)
        return y if dtype is None else y.astype(dtype, copy=False)

    def backward(self, gy):
        return to(gy, self.source_device, self.source_dtype)


def to(x, device=None, dtype=None):
    """``x`` on ``device`` with ``dtype`` (``x`` itself when nothing changes)."""
    dtype = backend.as_dtype(dtype)
    device = None if device is None else backend.Device(device)
    if (device is None or device == x.device) and (dtype is None or dtype == x.dtype):
        return x
    if dtype is not None and dtype.kind not in "fc":
        with no_grad():         # integer and bool results are not differentiable
            return ToCopy.apply(x, device, dtype)
    return ToCopy.apply(x, device, dtype)


class Clone(Function):
    """y = a copy of x.   gx = gy."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def clone(x):
    return Clone.apply(_as_tensor(x, "clone"))


# ---------------------------------------------------------------------- in place
#
# An in-place op is its out-of-place op, written back into the tensor's memory: ``x += y``
# computes ``x + y`` (recording it in the graph), copies the result into ``x.array`` (so
# views of x see it), bumps x's version (which every saved copy of x checks at backward)
# and makes the new node x's ``grad_fn`` -- torch's "rebase" of x's history.  A leaf that
# requires grad is refused outside ``no_grad``: its value is what the gradient is for.

class IndexPut(Function):
    """y = x with y[index] = v (v broadcast to the indexed shape).
    gx = gy with zeros at the indexed places,  gv = sum_to(gy[index], v.shape)."""

    def forward(self, x, v, index):
        self.index, self.v_shape = index, v.shape
        y = x.copy()
        y[index] = v
        return y

    def backward(self, gy):
        gx = IndexPut.apply(gy, Tensor(get_array_module(gy.array).zeros((), dtype=gy.dtype)), self.index)
        gv = GetItem.apply(gy, self.index)
        return gx, sum_to(gv, self.v_shape) if gv.ndim >= len(self.v_shape) else gv.sum()


def check_inference_write(x, name):
    """Raise torch's error for an in-place write to an inference tensor outside inference mode
    (also for the in-place activations' no-graph shortcut)."""
    if x._is_inference and not grad_mode._inference_mode:
        raise RuntimeError(f"{name}: Inplace update to inference tensor outside InferenceMode is not allowed. "
                           "You can make a clone to get a normal tensor before doing inplace update.")


def _check_inplace(x, name):
    check_inference_write(x, name)
    node = x.grad_fn if is_grad_enabled() else None
    if node is not None and getattr(node, "refuses_inplace", False):
        raise RuntimeError(f"{name}: the output of {node.name} is a view and is being modified inplace; "
                           "its node's custom backward would be overridden, leading to incorrect gradients "
                           "(as torch, this is forbidden). Clone the output first.")
    if is_grad_enabled() and x.requires_grad and x.grad_fn is None:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad is being used in an in-place operation; "
                           "update it inside `with tinyres.no_grad():` (as an optimizer does)")
    if not getattr(x.array.flags, "writeable", True):       # an expanded (broadcast) tensor, as torch says
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor "
                           "refers to a single memory location. Please clone() the tensor before performing the "
                           "operation.")
    base = x._base
    if is_grad_enabled() and base is not None and base.requires_grad and base.grad_fn is None:
        raise RuntimeError(f"{name}: a view of a leaf tensor that requires grad is being used in an in-place "
                           "operation; clone() the view first, or change the leaf inside `with tinyres.no_grad():`")


def _commit_to_base(x, result, name):
    """In place on ``x``, a view of ``base`` in a graph (as torch's CopySlices): the base
    becomes ``base`` with ``result`` put at the view's places -- one differentiable IndexPut
    on its flat form, so its history and the gradients of everything before see the write --
    and ``x``'s history becomes that of reading those places back."""
    base = x._base
    positions = backend.element_positions(x.array, base.array)
    if positions is None or numpy.unique(positions).size != positions.size:
        raise RuntimeError(f"{name}: in place on this view of a tensor in the graph is not supported (it is not "
                           "a window of its base's memory, or it repeats elements, as an expanded tensor does); "
                           "clone() the view first")
    positions = backend.to_device(positions, base.device)
    flat = base.reshape(-1)
    commit_inplace(base, IndexPut.apply(flat, result.to(base.dtype), positions).reshape(base.shape), name)
    _rebase(x, GetItem.apply(base.reshape(-1), positions).grad_fn)
    return x


def _refresh_view(x):
    """A view made before an in-place write to its base: its history becomes reading its
    places of the base as the base is now (``Tensor.grad_fn``)."""
    base = x._base
    x._view_version = x._version_counter[0]
    positions = backend.element_positions(x.array, base.array)
    if positions is None:
        raise RuntimeError(f"a view of shape {x.shape} was made before an in-place write to its base (shape "
                           f"{base.shape}) and is not a window of the base's memory, so its gradient cannot "
                           "follow the write; make the view again after the write, or clone() it before")
    with engine.enable_grad():
        node = GetItem.apply(base.reshape(-1), backend.to_device(positions, base.device)).grad_fn
    _move_retained(x, x._grad_fn, node)
    x._grad_fn, x._requires_grad = node, True


Tensor._refresh_view = _refresh_view


def _rebase(x, node):
    """``node`` is x's history from now on; a retained gradient goes with it (torch's retain_grad)."""
    _move_retained(x, x._grad_fn, node)      # (the node that has it: not a view's history made again)
    x.grad_fn, x._requires_grad = node, True


def _move_retained(x, old, node):
    """x's retained gradient (``retain_grad``) moves from its history ``old`` to ``node``."""
    if old is not None and old._retained is not None and old._retained() is x:
        old._retained, node._retained = None, old._retained


def commit_inplace(x, result, name):
    """Write ``result`` (the out-of-place result, a Tensor of x's shape) into ``x`` and make
    its history x's.  For in-place ops outside ``core`` too (``relu_``, ``ReLU(inplace=True)``)."""
    _check_inplace(x, name)
    if result.shape != x.shape:              # RuntimeError, as torch ("output with shape ... doesn't match")
        raise RuntimeError(f"{name}: expected a result of shape {x.shape} to write in place, got {result.shape} "
                           f"(output with shape {list(x.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)})")
    if not numpy.can_cast(result.dtype, x.dtype, "same_kind"):
        raise RuntimeError(f"{name}: expected a result that can be stored in a {x.dtype} tensor, got "
                           f"{result.dtype} (result type {result.dtype} can't be cast to the desired output "
                           f"type {x.dtype})")
    node = result.grad_fn if is_grad_enabled() else None
    if node is not None:
        for s in node._saved:            # the node keeps x's old value: a copy of its own
            if s.array is x.array:
                s.array, s.counter = s.array.copy(), None
        if x._base is not None:         # the base sees the write in its history (a plain base gets one)
            return _commit_to_base(x, result, name)
    with backend.on_device(x.device):
        x.array[...] = result.array
    x._version_counter[0] += 1
    if engine._tracer is not None:       # an export's trace (tinyres.onnx): x holds result's value from now on
        engine._tracer(commit_inplace, (x, result), {}, x)
    if node is not None:
        for s in node._saved:            # the node's saved output is x from now on
            if s.array is result.array:
                s.array, s.counter, s.version = x.array, x._version_counter, x._version
        _rebase(x, node)
    return x


def _as_value(x, value):
    """``value`` (a number, list, array or Tensor) as a Tensor on x's device."""
    if isinstance(value, Tensor):
        return value if value.device == x.device else value.to(x.device)
    if isinstance(value, numbers.Number):
        return _scalar_tensor(value, x)
    return tensor(value, device=x.device)


def _inplace(op, x, other, name=None):
    name = name or f"{op.__name__}_"
    _check_inplace(x, name)
    shape = getattr(other, "shape", None)
    if isinstance(other, Tensor) and builtins.len(shape) <= x.ndim and not builtins.all(
            n in (1, m) for n, m in zip(reversed(shape), reversed(x.shape))):     # as torch: a RuntimeError
        raise RuntimeError(f"{name}: expected an operand that broadcasts to the shape {x.shape} of the tensor "
                           f"written in place, got {shape}")
    return commit_inplace(x, op(x, other), name)


def _setitem(x, index, value, name="__setitem__"):
    """``x[index] = value`` (in place; differentiable for x and value)."""
    _check_inplace(x, name)
    value = _as_value(x, value)
    if value.dtype != x.dtype:
        value = value.to(x.dtype)
    index = to_index(index, x.array)
    try:
        result = IndexPut.apply(x, value, index)
    except (ValueError, IndexError) as e:      # RuntimeError, as torch
        raise RuntimeError(f"{name}: expected a value that broadcasts to the indexed shape of a "
                           f"tensor of shape {x.shape}, got {e}") from None
    return commit_inplace(x, result, name)


# ---------------------------------------------------------------------- Tensor's methods
# tensor.py imports nothing above the backend; the ops become Tensor's methods here, as
# DeZero's setup_variable does.  Most are the op itself (``exp(x)`` is ``x.exp()``); composite's
# table, installed after this one, adds torch's fuller forms (add/sub with alpha, div with
# rounding_mode, t, div_ ...).

def _to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``.

    A string is a dtype when NumPy reads it as one (``'float64'``), else a device.
    ``non_blocking`` and ``memory_format`` are torch's and change nothing here (a copy to a
    GPU is ordered on its stream either way); ``copy=True`` always copies.
    """
    if copy:
        return _to(self, *args, dtype=dtype, device=device).clone()
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, backend.Device) or (isinstance(a, str) and not backend.is_dtype_name(a)):
            device = a
        else:
            dtype = a
    return to(self, device=device, dtype=dtype)


for _name, _method in {
    "__add__": add, "__radd__": lambda x, other: add(other, x),
    "__sub__": sub, "__rsub__": lambda x, other: sub(other, x),
    "__mul__": mul, "__rmul__": lambda x, other: mul(other, x),
    "__truediv__": div, "__rtruediv__": lambda x, other: div(other, x),
    "__pow__": pow, "__rpow__": lambda x, base: pow(base, x),
    "__matmul__": matmul, "__rmatmul__": lambda x, other: matmul(other, x),
    "__neg__": neg, "__pos__": lambda x: x, "__abs__": abs, "__getitem__": getitem,
    "__lt__": lambda a, b: compare("less", a, b), "__le__": lambda a, b: compare("less_equal", a, b),
    "__gt__": lambda a, b: compare("greater", a, b), "__ge__": lambda a, b: compare("greater_equal", a, b),
    "__eq__": lambda a, b: compare("equal", a, b), "__ne__": lambda a, b: compare("not_equal", a, b),
    "__iadd__": lambda x, other: _inplace(add, x, other),
    "__isub__": lambda x, other: _inplace(sub, x, other),
    "__imul__": lambda x, other: _inplace(mul, x, other),
    "__itruediv__": lambda x, other: _inplace(div, x, other),
    "mul_": lambda x, other: _inplace(mul, x, other),
    "clamp_": lambda x, min=None, max=None: _inplace(lambda a, _: clamp(a, min, max), x, None, "clamp_"),
    "copy_": lambda x, src: _setitem(x, Ellipsis, src, "copy_"),
    "fill_": lambda x, value: _setitem(x, Ellipsis, value, "fill_"),
    "zero_": lambda x: _setitem(x, Ellipsis, 0, "zero_"),
    "__setitem__": lambda x, index, value: (_setitem(x, index, value), None)[1],
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "pow": pow, "matmul": matmul, "clamp": clamp,
    "sin": sin, "cos": cos, "log1p": log1p, "expm1": expm1, "cumsum": cumsum, "minimum": minimum,
    "mul": mul, "mm": matmul, "bmm": matmul,
    "view_as": lambda x, other: reshape(x, other.shape), "type_as": lambda x, other: x.to(other.dtype),
    "maximum": maximum, "sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std,
    "argmax": argmax, "argmin": argmin, "all": all, "any": any, "reshape": reshape, "view": reshape, "flatten": flatten,
    "transpose": transpose, "permute": permute, "squeeze": squeeze, "unsqueeze": unsqueeze,
    "T": property(lambda x: permute(x, *reversed(range(x.ndim)))),
    "clone": clone, "to": _to,
}.items():
    setattr(Tensor, _name, _method)
