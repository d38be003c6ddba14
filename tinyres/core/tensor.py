"""``Tensor``: an array (NumPy or CuPy) plus what autograd needs, and the factories.

A Tensor made by an op that needs gradients remembers that op in ``grad_fn``;
``backward()`` walks those nodes (``engine.py``).  This module imports nothing above
the backend: the methods that compute (``+``, ``sum``, ``reshape``, ``to`` ...) are the
ops themselves, installed on ``Tensor`` by ``ops.py`` (as DeZero's ``setup_variable``),
and ``backward`` is installed by ``engine.py``.
"""
import numbers
import operator
import sys

import numpy

from . import backend, grad_mode


def _infer_dtype(data):
    """The dtype ``tensor(data)`` gets when none is given: torch's rules."""
    if hasattr(data, "dtype"):     # arrays and NumPy scalars (numpy.float64 is also a float)
        return data.dtype
    flat = numpy.asarray(data)
    if flat.dtype.kind == "f":
        return backend.get_default_dtype()
    if flat.dtype.kind in "iu":
        return backend.int64
    return flat.dtype


def _legacy_array(args, dtype, device, name):
    """The array of torch's legacy constructors (``torch.Tensor(...)``, ``torch.LongTensor(...)``):
    no argument, an empty tensor; ints (or a ``Size``), the sizes of a new tensor (zero-filled, as
    ``tinyres.empty``; torch leaves it uninitialised); one sequence (or array-like), its
    values converted to ``dtype``."""
    if len(args) == 1 and isinstance(args[0], tuple) and hasattr(args[0], "numel"):     # a Size: sizes, as torch
        args = tuple(args[0])
    if not args:
        array = numpy.zeros((0,), dtype=dtype)
    elif all(isinstance(n, numbers.Integral) and not isinstance(n, (bool, numpy.bool_)) for n in args):
        if any(n < 0 for n in args):
            raise RuntimeError(f"{name}: Trying to create tensor with negative dimension "
                               f"{min(args)}: {list(map(int, args))}")
        array = numpy.zeros(tuple(int(n) for n in args), dtype=dtype)
    elif len(args) == 1 and not isinstance(args[0], (numbers.Number, numpy.generic, str, bytes, dict, set)):
        array = numpy.asarray(args[0])
        array = array.astype(dtype, copy=array.dtype != dtype or array is args[0])    # a copy, as torch's
    elif len(args) == 1:
        raise TypeError(f"{name}: new(): data must be a sequence (got {type(args[0]).__name__})")
    else:
        raise TypeError(f"{name}: new() received an invalid combination of arguments: expected sizes (ints) or "
                        f"one sequence of data, got ({', '.join(type(a).__name__ for a in args)})")
    return array if device is None else backend.to_device(array, device)


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    ``Tensor(array)`` (a NumPy or CuPy array) wraps the array itself, shared, not copied:
    how tinyres's own code makes tensors (a NumPy scalar becomes a 0-d array of its dtype).
    ``Tensor(t)`` shares ``t``'s array.  torch's legacy forms are torch's:
    ``Tensor(2, 3)`` (sizes: zero-filled), ``Tensor([1, 2])`` (a list: a copy in the default
    float dtype), ``Tensor()`` (empty), with ``device=``.  ``tensor(data)`` copies and
    infers the dtype, as ``torch.tensor``."""

    __array_priority__ = 1000    # so `numpy_scalar * tensor` calls Tensor.__rmul__
    _is_inference = False        # made inside inference_mode (set per instance only then)

    def __init__(self, *args, requires_grad=False, _grad_fn=None, device=None):
        if grad_mode._inference_mode:
            self._is_inference = True
        data = args[0] if len(args) == 1 else None
        if isinstance(data, Tensor):
            if data._is_inference:     # Parameter(t) of an inference tensor stays one, as in torch
                self._is_inference = True
            data = data.array
        elif isinstance(data, numpy.generic):       # an op's NumPy scalar result: a 0-d array
            data = numpy.asarray(data)
        elif not (isinstance(data, numpy.ndarray) or backend.is_device_array(data)):
            data = _legacy_array(args, backend.get_default_dtype(), None, "Tensor")
        if device is not None:
            data = backend.to_device(data, device)
        self.array = data
        self.grad = None
        self.grad_fn = _grad_fn
        self._version_counter = [0]     # bumped by each in-place write; views share their base's
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    # ------------------------------------------------------------------ attributes
    # ``t.array`` is the array itself (NumPy or CuPy; Chainer's name): every op reads it.

    @property
    def data(self):
        """torch's ``t.data``: the same array as a new tensor outside the graph.  It does not
        require grad, and autograd does not see writes through it (``m.weight.data.normal_()``
        changes the weight; so does ``with no_grad(): m.weight.normal_()``, which torch
        recommends).  ``t.array`` is the NumPy or CuPy array itself."""
        out = Tensor(self.array)
        out._is_inference = self._is_inference
        return out

    @data.setter
    def data(self, value):
        """``p.data = t``: ``p`` takes ``t``'s array (its shape and dtype too), as in torch."""
        if isinstance(value, Tensor):
            value = value.array
        elif not isinstance(value, backend.get_array_module(value).ndarray):
            raise TypeError(f"data: expected a Tensor (or an array) to set, got {type(value).__name__}")
        self.array = value

    @property
    def requires_grad(self):
        if self._view_version is not None and self._view_version != self._version_counter[0]:
            self.grad_fn           # a view whose base was written in place since: its history made again
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if self.grad_fn is not None and not flag:
            raise RuntimeError("requires_grad: can only be changed on leaf tensors; use .detach()")
        if flag and self.array.dtype.kind not in "fc":
            raise RuntimeError(f"requires_grad: only floating point tensors can require gradients, "
                               f"this one is {self.array.dtype}")
        if flag and self._is_inference and not grad_mode._inference_mode:
            raise RuntimeError("requires_grad: setting requires_grad=True on an inference tensor outside "
                               "inference_mode is not allowed (make a normal tensor with .clone() first)")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    _hooks = {}        # hooks on a leaf's gradient (register_hook makes a tensor its own dict)
    _post_accumulate_hooks = {}     # hooks run on a leaf after its .grad is accumulated (own dict once set)
    _base = None       # the tensor this one is a view of (made by a view op: reshape, permute, x[i])
    _grad_slot = None  # (array, grad): a leaf's first gradient is written into grad while .array is array
                       # (an optimizer's flat buffer on a GPU: optim/flat.py)

    _view_version = None    # a view: its counter when its grad_fn was set (a write since makes it stale)
    _refresh_view = None    # installed by ops: a stale view's grad_fn made again from its base's history

    @property
    def grad_fn(self):
        """The node that made this tensor (None for a leaf).  A view whose base was written in
        place since (through the base or another view) reads the base's new history, as torch's
        views do: its grad_fn is made again, as reading its places of the base."""
        if self._view_version is not None and self._view_version != self._version_counter[0] \
                and self._base.requires_grad:
            Tensor._refresh_view(self)
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node):
        self._grad_fn = node
        if self._base is not None:
            self._view_version = self._version_counter[0]

    @property
    def _version(self):
        """How many in-place writes this tensor's memory has had (as ``torch.Tensor._version``)."""
        return self._version_counter[0]

    def is_inference(self):
        """True for a tensor made inside ``inference_mode`` (``torch.Tensor.is_inference``)."""
        return self._is_inference

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.array.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force=False):
        """A host (NumPy) copy of the data.  Unlike torch's, never the tensor's own memory,
        and allowed on a tensor that requires grad or lives on a GPU (``force`` is accepted
        and changes nothing)."""
        return backend.to_numpy(self.array).copy()

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def item(self):
        if self.array.size != 1:
            raise RuntimeError(f"item: a Tensor with {self.array.size} elements cannot be converted to Scalar "
                               f"(this one has shape {self.shape})")
        return self.array.item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        """An integer (or bool) tensor of one element as a Python int, so that it can index a
        list, give a size or a range (``classes[labels[j]]``, ``x[:k]``, ``range(k)``), as torch's."""
        if self.array.size != 1 or self.array.dtype.kind not in "biu":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.array.item())

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.array)
        return a if dtype is None else a.astype(dtype)

    def detach(self):
        """The same data (shared, not copied, with one version counter), cut from the graph."""
        out = Tensor(self.array)
        out._version_counter = self._version_counter
        out._is_inference = self._is_inference      # a view is what its base is (also in inference mode)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to("cuda" if device is None else
                       f"cuda:{device}" if isinstance(device, int) else device)

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def long(self):
        return self.to(backend.int64)

    def type_as(self, other):
        return self.to(other.dtype)

    # ------------------------------------------------------------------ printing
    def __repr__(self):
        body = numpy.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(", **_print_options)
        extra = []
        if self.device.type != "cpu":
            extra.append(f"device='{self.device}'")
        if self.dtype not in (backend.get_default_dtype(), backend.int64, backend.bool_):
            extra.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extra) + ")"

    def __format__(self, format_spec):
        """As torch's: a 0-d tensor formats as its value (``f"{loss:.3f}"``); any other, with a
        format spec, is a TypeError; ``f"{t}"`` is ``str(t)``."""
        if self.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    __hash__ = object.__hash__      # ops installs __eq__, which would otherwise unset it


class Parameter(Tensor):
    """A tensor that is a module's trainable state: a leaf that requires grad by default.

    ``Parameter(data)`` shares ``data``'s array (as ``torch.nn.Parameter`` does);
    assigning one as a module attribute registers it.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = numpy.empty((0,), dtype=backend.get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)      # a Tensor's array is shared, not copied

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _LegacyTensorType(type):
    """torch's typed constructors (``torch.LongTensor([1, 2])``, ``torch.FloatTensor(3, 4)``):
    calling one makes a Tensor of its dtype from sizes or data, as ``Tensor(...)`` does (a
    Tensor argument must have the dtype, and is shared); ``isinstance(t, LongTensor)``
    checks a CPU tensor's dtype, as torch's."""

    def __call__(cls, *args, device=None):
        if len(args) == 1 and isinstance(args[0], Tensor):
            if args[0].dtype != cls.dtype:
                raise TypeError(f"{cls.__name__}: expected a {cls.dtype} tensor, got {args[0].dtype}")
            return Tensor(args[0], device=device)
        return Tensor(_legacy_array(args, cls.dtype, device, cls.__name__))

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.device.type == "cpu"


def _legacy_type(name, dtype):
    dtype = numpy.dtype(dtype)
    return _LegacyTensorType(name, (), {"dtype": dtype, "__module__": "tinyres",
                                        "__doc__": f"``torch.{name}``: a {dtype} tensor from sizes or data."})


FloatTensor, DoubleTensor, HalfTensor = (_legacy_type(n, d) for n, d in (
    ("FloatTensor", "float32"), ("DoubleTensor", "float64"), ("HalfTensor", "float16")))
LongTensor, IntTensor, ShortTensor = (_legacy_type(n, d) for n, d in (
    ("LongTensor", "int64"), ("IntTensor", "int32"), ("ShortTensor", "int16")))
ByteTensor, CharTensor, BoolTensor = (_legacy_type(n, d) for n, d in (
    ("ByteTensor", "uint8"), ("CharTensor", "int8"), ("BoolTensor", "bool")))

_print_options = {}      # numpy.array2string's options for repr (set_printoptions); none: NumPy's defaults


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """How tensors print (``torch.set_printoptions``): ``precision`` digits, a summary
    (``edgeitems`` at each end) beyond ``threshold`` elements, lines of ``linewidth``, floats
    in scientific notation (``sci_mode`` True), never (False) or as NumPy picks (None).
    ``profile``: 'default' (tinyres's: NumPy's printing), 'short' or 'full', then the others."""
    profiles = {"default": {}, "short": {"precision": 2, "edgeitems": 2, "max_line_width": 80},
                "full": {"threshold": sys.maxsize}}
    if profile is not None:
        if profile not in profiles:
            raise ValueError(f"set_printoptions: expected profile 'default', 'short' or 'full', got {profile!r}")
        _print_options.clear()
        _print_options.update(profiles[profile])
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("max_line_width", linewidth)):
        if value is not None:
            _print_options[name] = value
    if sci_mode is not None or profile is not None:
        _print_options.pop("formatter", None)
        _print_options.pop("suppress_small", None)
    if sci_mode:
        digits = _print_options.get("precision", numpy.get_printoptions()["precision"])
        _print_options["formatter"] = {"float_kind": lambda v: numpy.format_float_scientific(
            v, precision=digits, unique=False)}
    elif sci_mode is not None:
        _print_options["suppress_small"] = True


# ---------------------------------------------------------------------- factories

def _make(array, dtype, device, requires_grad):
    """A Tensor from a host array, cast to ``dtype`` and moved to ``device``."""
    if dtype is not None:
        array = array.astype(backend.as_dtype(dtype), copy=False)
    if device is not None:
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor that copies ``data`` (a number, nested lists, a NumPy/CuPy array or a Tensor)."""
    if isinstance(data, Tensor):
        data = data.array
    dtype = backend.as_dtype(dtype) or _infer_dtype(data)
    with backend.on_device(backend.device_of(data)):      # a GPU array is copied where it is
        array = backend.get_array_module(data).array(data, dtype=dtype, copy=True)
    return _make(array, None, device, requires_grad)


def size_arg(size, op, minimum=0):
    """Sizes given as ``f(2, 3)`` or ``f((2, 3))`` as a tuple of ints, each >= ``minimum``
    (unless ``minimum`` is None)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        size = tuple(map(operator.index, size))     # ints, numpy ints, integer tensor(3)
    except TypeError:
        raise ValueError(f"{op}: expected integers, got {tuple(size)}") from None
    if minimum is not None and size and min(size) < minimum:
        raise ValueError(f"{op}: expected integers >= {minimum}, got {size}")
    return size


def _filled(fill, size, dtype, device, requires_grad):
    dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
    device = "cpu" if device is None else device
    xp = backend.xp_for(device)
    with backend.on_device(device):
        array = xp.full(size_arg(size, "shape"), fill, dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


def _sizes(sizes, size, op):
    """The sizes of ``f(2, 3)``, ``f((2, 3))`` or torch's keyword form ``f(size=(2, 3))``."""
    if size is None:
        return sizes
    if sizes:
        raise TypeError(f"{op}() got multiple values for argument 'size'")
    return (size,)


def zeros(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    return _filled(0, _sizes(sizes, size, "zeros"), dtype, device, requires_grad)


def ones(*sizes, size=None, dtype=None, device=None, requires_grad=False):
    return _filled(1, _sizes(sizes, size, "ones"), dtype, device, requires_grad)


def empty(*sizes, size=None, dtype=None, device=None, requires_grad=False, memory_format=None):
    """Zero-filled here (torch leaves it uninitialised).  ``memory_format`` is checked as
    torch's (``preserve_format`` has no tensor to preserve, so it is refused)."""
    sizes = size_arg(_sizes(sizes, size, "empty"), "empty")
    check_memory_format(len(sizes), memory_format, "empty")
    if memory_format is preserve_format:
        raise RuntimeError("empty: unsupported memory format preserve_format (there is no tensor to preserve)")
    return _filled(0, sizes, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    size = (size,) if isinstance(size, (numbers.Integral, Tensor)) else size
    if dtype is None and isinstance(fill_value, (bool, numbers.Integral)):
        dtype = backend.bool_ if isinstance(fill_value, bool) else backend.int64
    return _filled(fill_value, size, dtype, device, requires_grad)


def _random(draw, size, dtype, device, requires_grad, generator=None):
    """Host draws from ``generator`` (a ``tinyres.Generator``; the default generator when None)."""
    array = draw(generator or backend.default_generator(), size_arg(size, "shape"))
    return _make(array, dtype or backend.get_default_dtype(), device, requires_grad)


def rand(*sizes, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _random(lambda g, s: g.random(s), _sizes(sizes, size, "rand"), dtype, device, requires_grad, generator)


def randn(*sizes, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    return _random(lambda g, s: g.standard_normal(s), _sizes(sizes, size, "randn"), dtype, device, requires_grad,
                   generator)


def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None):
    """Integers uniform on [low, high): ``randint(low, high, size)`` or ``randint(high, size)``."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    return _random(lambda g, s: g.integers(low, high, s), (size,), dtype or backend.int64, device, False, generator)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))   # tensor(3)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.get_default_dtype()
    return _make(numpy.arange(start, end, step), dtype, device, requires_grad)


def _like(factory, other, dtype, device, requires_grad, memory_format=None):
    check_memory_format(other.ndim, memory_format, factory.__name__ + "_like")
    return factory(*other.shape, dtype=dtype or other.dtype, device=device or other.device,
                   requires_grad=requires_grad)


class memory_format:
    """``torch.memory_format``: how a 4-D (5-D) tensor's elements are laid out.  tinyres has
    one layout, row-major NCHW, whatever the format asked (``channels_last`` keeps it; the
    values are the same either way): the constants are accepted where torch takes them."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"torch.{self._name}"

    def __reduce__(self):
        return self._name


preserve_format, contiguous_format = memory_format("preserve_format"), memory_format("contiguous_format")
channels_last, channels_last_3d = memory_format("channels_last"), memory_format("channels_last_3d")


def check_memory_format(ndim, format, op):
    """A ``memory_format=`` argument checked as torch does: None or a memory_format, a
    channels_last one for a tensor of rank ``ndim`` 4 (channels_last_3d: rank 5)."""
    if format is None:
        return
    if not isinstance(format, memory_format):
        raise TypeError(f"{op}(): argument 'memory_format' must be torch.memory_format, not {type(format).__name__}")
    rank = {"channels_last": 4, "channels_last_3d": 5}.get(format._name)
    if rank is not None and ndim != rank:
        raise RuntimeError(f"{op}: required rank {rank} tensor to use {format._name} format, got a {ndim}-D tensor")


def zeros_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(zeros, input, dtype, device, requires_grad, memory_format)


def ones_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(ones, input, dtype, device, requires_grad, memory_format)


def empty_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(empty, input, dtype, device, requires_grad, memory_format)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False, memory_format=None):
    check_memory_format(input.ndim, memory_format, "full_like")
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(rand, input, dtype, device, requires_grad, memory_format)


def randn_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(randn, input, dtype, device, requires_grad, memory_format)


