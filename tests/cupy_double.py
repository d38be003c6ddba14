"""A strict CuPy test double: the GPU path checked without a GPU.

Device arrays are their own type (``ndarray`` here, installed as ``cupy.ndarray``) that
wraps a NumPy array; they are not a NumPy subclass, so NumPy cannot compute with them by
accident.  Every operation goes through the fake ``cupy`` module, whose functions are
NumPy's behind a wrapper that unwraps device arrays, refuses host arrays and wraps the
results on the current fake GPU.  It fails where CuPy fails:

* ``numpy.asarray(d)`` / ``d.__array__()`` raise ``TypeError`` (CuPy: "Implicit conversion
  to a NumPy array is not allowed");
* an operation that mixes a device array with a NumPy array raises ``TypeError``, in either
  order (``d + h``, ``h + d``, ``cupy.where(h, d, d)``, ``d[...] = h``);
* a NumPy function or ufunc given a device array raises ``TypeError`` (stricter than CuPy,
  which would dispatch ``numpy.sum(d)`` to itself: tinyres's rule is that tensor data
  goes through ``xp``, never ``numpy``);
* computing with an array that is not on the current GPU raises ``ValueError``;
* ``ufunc.at`` is refused: it scatters with atomics (order-dependent float sums) and needs a
  recent CuPy; ``reduce``/``accumulate``/``reduceat`` only for the ufuncs CuPy has them for;
* ``copyto`` from a Python scalar is refused (CuPy < 13.3 fails on it under NumPy 2).

``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel`` compile their CUDA-C source for
the CPU (tests/cupy_double_kernels.py).  ``STATE.launches`` counts the kernels launched:
every function, operator, method and user kernel on device arrays (views excepted).

``.get()`` and ``cupy.asnumpy`` are the ways to the host, and every device-to-host
transfer is recorded in ``cupy.transfers`` -- those two, and also ``float()``, ``int()``,
``bool()``, ``.item()``, ``.tolist()``, ``repr`` of a device array, and the calls
(``nonzero``, ``unique``, ...) whose output size CuPy must read back from the GPU.  Each
record names the kind and the first line of tinyres that asked for it.
"""
import os
import sys
import types

import numpy as np

STATE = types.SimpleNamespace(current=0, transfers=[], launches=0, uploads=[])
_HOST_IN = {"array", "asarray", "asanyarray"}       # the functions that take host data
_ALLOCATIONS = {"empty", "empty_like"}              # memory from the pool, no kernel
_SYNCS = {"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract"}   # output size read back
_PACKAGE = os.sep + "tinyres" + os.sep


def _where():
    """The first line of tinyres up the stack (the caller of an array operation)."""
    frame = sys._getframe(2)
    while frame is not None:
        if _PACKAGE in frame.f_code.co_filename and not frame.f_code.co_filename.endswith("backend.py"):
            return f"{frame.f_code.co_filename.rsplit(_PACKAGE, 1)[1]}:{frame.f_lineno}"
        frame = frame.f_back
    return "outside tinyres"


def _transfer(kind):
    """Record one device-to-host transfer, with the line of tinyres that caused it."""
    STATE.transfers.append(f"{kind} at {_where()}")


def _upload(name):
    """Record a host-to-device copy (``cupy.array`` of host data), with tinyres's line."""
    STATE.uploads.append(f"{name} at {_where()}")


def _record(launch, name):
    """A kernel was launched (the user kernels report here; see ``cupy_double_kernels``)."""
    STATE.launches += 1


def _unwrap(x, name, seen, host_ok=False):
    if isinstance(x, ndarray):
        if not host_ok and x._dev != STATE.current:
            raise ValueError(f"fake cupy: {name}: an array on GPU {x._dev} used while GPU "
                             f"{STATE.current} is current")
        seen.append(x)
        return x._a
    if isinstance(x, np.ndarray):
        if host_ok:
            return x
        raise TypeError(f"fake cupy: {name} was given a host (NumPy) array of shape {x.shape}; "
                        "CuPy accepts only device arrays and scalars here")
    if isinstance(x, (list, tuple)) and type(x) in (list, tuple):
        return type(x)(_unwrap(i, name, seen, host_ok) for i in x)
    return x


def _wrap(result, seen=()):
    if isinstance(result, np.ndarray):
        for w in seen:                     # an out= array, or astype(copy=False): the same object
            if w._a is result:
                return w
        return ndarray(result)
    if isinstance(result, np.generic):     # CuPy's reductions and scalar indexing give 0-d arrays
        return ndarray(np.asarray(result))
    if type(result) in (list, tuple):
        return type(result)(_wrap(r, seen) for r in result)
    return result


def _call(fn, name, args, kwargs, host_ok=False, seen=None):
    seen = [] if seen is None else seen
    if name == "copyto" and isinstance(args[1] if len(args) > 1 else kwargs.get("src"), (bool, int, float)):
        raise TypeError("fake cupy: copyto from a Python scalar fails on CuPy < 13.3 under NumPy 2; "
                        "pass an array or a NumPy scalar of the destination's dtype")
    args = _unwrap(args, name, seen, host_ok)
    kwargs = {k: _unwrap(v, name, seen, host_ok) for k, v in kwargs.items()}
    if name in _HOST_IN:
        _upload(name)
    if name not in _ALLOCATIONS:
        STATE.launches += 1             # one kernel (a few, such as astype to the same dtype, launch none)
    if name in _SYNCS:
        _transfer(f"{name} (output size)")
    return _wrap(fn(*args, **kwargs), seen)


class ndarray:
    """A device array: a NumPy array NumPy cannot see, and the GPU it lives on."""

    __slots__ = ("_a", "_dev")
    __array_ufunc__ = None            # NumPy's operators defer to ours; numpy ufuncs refuse
    __hash__ = None

    def __init__(self, a, dev=None):
        self._a, self._dev = a, STATE.current if dev is None else dev

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"fake cupy: numpy.{func.__name__} was given a device array; "
                        "take the function from the array module (backend.get_array_module)")

    # ------------------------------------------------------------ to the host (counted)
    def get(self, stream=None, out=None):
        _transfer("get()")
        return self._a.copy()

    def item(self, *args):
        _transfer("item()")
        return self._a.item(*args)

    def tolist(self):
        _transfer("tolist()")
        return self._a.tolist()

    def _scalar(self, kind, convert):
        _transfer(kind)
        return convert(self._a)

    def __float__(self): return self._scalar("float()", float)
    def __int__(self): return self._scalar("int()", int)
    def __index__(self): return self._scalar("index", lambda a: a.__index__())
    def __complex__(self): return self._scalar("complex()", complex)
    def __bool__(self): return self._scalar("bool()", bool)
    def __format__(self, spec): return self._scalar("format", lambda a: format(a.item() if a.ndim == 0 else a, spec))
    def __repr__(self): return self._scalar("repr", lambda a: repr(a).replace("array", "fake_cupy.array", 1))
    __str__ = __repr__

    def __reduce__(self):
        return (_rebuild, (self.get(), self._dev))

    # ------------------------------------------------------------ on the device
    @property
    def device(self):
        return cuda_Device(self._dev)

    @property
    def data(self):
        """As in CuPy, ``.data`` is a device pointer, not an array (nor a Tensor)."""
        return object()

    def __copy__(self):
        return ndarray(self._a.copy(), self._dev)

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key):
        return _wrap_view(self, self._a[_unwrap(key, "__getitem__", [])])

    def __setitem__(self, key, value):
        STATE.launches += 1
        if self._dev != STATE.current:          # a copy kernel, like any other
            raise ValueError(f"fake cupy: __setitem__: an array on GPU {self._dev} written while GPU "
                             f"{STATE.current} is current")
        seen = []
        self._a[_unwrap(key, "__setitem__", seen)] = _unwrap(value, "__setitem__", seen)

    def __getattr__(self, name):
        if name.startswith("__"):               # never NumPy's __array_interface__ and kin
            raise AttributeError(name)
        value = getattr(self._a, name)          # shape, dtype, strides, flags, reshape, sum, ...
        if isinstance(value, np.ndarray):       # .T, .real, .base
            return _wrap_view(self, value)
        if not callable(value):
            return value

        def method(*args, **kwargs):
            if name in _VIEWS:              # no kernel: works from any current GPU
                return _wrap_view(self, value(*_unwrap(args, name, []), **kwargs), same=self)
            if name == "astype" and not kwargs.get("copy", True) and np.dtype(args[0]) == self.dtype:
                return self                 # nothing to do, so no kernel and no device check
            if self._dev != STATE.current:
                raise ValueError(f"fake cupy: ndarray.{name}: an array on GPU {self._dev} used "
                                 f"while GPU {STATE.current} is current")
            return _call(value, f"ndarray.{name}", args, kwargs, seen=[self])
        return method


_VIEWS = {"reshape", "view", "transpose", "swapaxes", "squeeze", "ravel"}


def _wrap_view(source, result, same=None):
    """A view (or a copy) made from ``source`` without a kernel: it stays on source's GPU."""
    if same is not None and result is same._a:
        return same
    if isinstance(result, np.ndarray):
        return ndarray(result, source._dev)
    if isinstance(result, np.generic):
        return ndarray(np.asarray(result), source._dev)
    return result


def _rebuild(host, dev):
    return ndarray(host, dev)


def _operator(fn_name, reflected=False, inplace=False):
    def op(self, other):
        if isinstance(other, (ndarray, np.ndarray, np.generic, int, float, bool, complex)):   # host: refused below
            fn = getattr(_MODULE_FUNCS, fn_name)
            if inplace:
                return fn(self, other, out=self)
            return fn(other, self) if reflected else fn(self, other)
        return NotImplemented
    return op


_METHODS = {"reduce": {"add", "multiply"}, "accumulate": {"add"}, "reduceat": {"add"}}   # CuPy 12+


class _Ufunc:
    """A NumPy ufunc on device arrays (``cupy.add``, ``cupy.maximum``, ...)."""

    def __init__(self, ufunc):
        self._ufunc, self.__name__ = ufunc, ufunc.__name__
        self.nin, self.nout = ufunc.nin, ufunc.nout

    def __call__(self, *args, **kwargs):
        return _call(self._ufunc, self.__name__, args, kwargs)

    def __getattr__(self, method):
        if method == "at":
            raise AttributeError(f"fake cupy: {self.__name__}.at is refused: it scatters with atomics "
                                 "(float sums in no fixed order) and needs a recent CuPy")
        if method in _METHODS and self.__name__ not in _METHODS[method]:
            raise AttributeError(f"fake cupy: {self.__name__}.{method} is not in CuPy (it has only "
                                 f"{', '.join(sorted(_METHODS[method]))}.{method})")
        fn = getattr(self._ufunc, method)
        return lambda *args, **kwargs: _call(fn, f"{self.__name__}.{method}", args, kwargs)


def _function(name):
    """``cupy.<name>``: NumPy's function on device arrays, results on the current GPU."""
    fn = getattr(np, name)
    if isinstance(fn, np.ufunc):
        return _Ufunc(fn)
    if not callable(fn) or isinstance(fn, type):
        return fn                       # dtypes (cupy.float32 is numpy.float32), constants
    return lambda *args, **kwargs: _call(fn, name, args, kwargs, host_ok=name in _HOST_IN)


_MODULE_FUNCS = types.SimpleNamespace(**{
    name: _function(name) for name in ("add", "subtract", "multiply", "true_divide", "floor_divide",
                                       "remainder", "power", "matmul", "less", "less_equal",
                                       "greater", "greater_equal", "equal", "not_equal",
                                       "bitwise_and", "bitwise_or", "bitwise_xor")})

for _name, _fn in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                   ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"),
                   ("matmul", "matmul"), ("and", "bitwise_and"), ("or", "bitwise_or"),
                   ("xor", "bitwise_xor")]:
    setattr(ndarray, f"__{_name}__", _operator(_fn))
    setattr(ndarray, f"__r{_name}__", _operator(_fn, reflected=True))
    setattr(ndarray, f"__i{_name}__", _operator(_fn, inplace=True))
for _name, _fn in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                   ("eq", "equal"), ("ne", "not_equal")]:
    setattr(ndarray, f"__{_name}__", _operator(_fn))
ndarray.__neg__ = lambda self: _function("negative")(self)
ndarray.__pos__ = lambda self: _function("positive")(self)
ndarray.__abs__ = lambda self: _function("absolute")(self)
ndarray.__invert__ = lambda self: _function("invert")(self)


class cuda_Device:
    """``cupy.cuda.Device(n)``: makes GPU n current inside ``with``."""

    def __init__(self, index=0):
        self.id = index

    def __enter__(self):
        self.previous, STATE.current = STATE.current, self.id
        return self

    def __exit__(self, *exc):
        STATE.current = self.previous

    def use(self):
        STATE.current = self.id

    def synchronize(self):
        pass


class _Random:
    """``cupy.random``: a generator that lives "on the device", seeded by ``seed``."""

    def __init__(self):
        self.seeds, self._rng = [], np.random.default_rng()

    def seed(self, seed=None):
        self.seeds.append(seed)
        self._rng = np.random.default_rng(seed)

    def random_sample(self, size=None, dtype=float):
        return ndarray(np.asarray(self._rng.random(size, dtype=np.dtype(dtype))))

    random = random_sample

    def standard_normal(self, size=None, dtype=float):
        return ndarray(np.asarray(self._rng.standard_normal(size, dtype=np.dtype(dtype))))


def asnumpy(a, stream=None, out=None):
    """A host copy of a device array (a NumPy array is returned as it is)."""
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def make_fake_cupy(device_count=2):
    """A fresh ``cupy`` module on ``device_count`` fake GPUs, GPU 0 current, no transfers yet."""
    STATE.current, STATE.launches = 0, 0
    STATE.transfers.clear()
    STATE.uploads.clear()
    cp = types.ModuleType("cupy")
    cp.ndarray, cp.asnumpy, cp.transfers = ndarray, asnumpy, STATE.transfers
    cp.cuda = types.SimpleNamespace(Device=cuda_Device,
                                    runtime=types.SimpleNamespace(getDeviceCount=lambda: device_count))
    cp.random = _Random()
    from cupy_double_kernels import ElementwiseKernel, ReductionKernel
    cp.ElementwiseKernel, cp.ReductionKernel = ElementwiseKernel, ReductionKernel
    as_strided = lambda a, shape=None, strides=None: _wrap_view(a, np.lib.stride_tricks.as_strided(   # noqa: E731
        _unwrap(a, "as_strided", []), shape, strides))
    cp.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=as_strided))

    def module_getattr(name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _function(name)
        setattr(cp, name, value)
        return value
    cp.__getattr__ = module_getattr
    return cp


def on(t, device):
    """Assert that the tensor ``t`` lives on ``device``, with an array of the right kind
    (the double's, or a real CuPy's)."""
    from tinyres import backend
    assert t.device == device, (t.device, device)
    assert backend.is_device_array(t.data) == (device != "cpu"), type(t.data)
    return t

