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
* ``copyto`` from a Python scalar is refused (CuPy < 13.3 fails on it under NumPy 2);
* a ufunc's new output is C-contiguous, whatever its inputs' layout, as CuPy allocates it
  (NumPy's ``order='K'`` would follow the inputs: a layout CuPy never gives).
* ``cupy.linalg`` has only CuPy's functions, and its inv, solve and cholesky raise nothing for
  a singular (or not positive-definite) matrix: they give NaN, as cuSOLVER leaves ``info`` unread.

``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel`` compile their CUDA-C source for
the CPU (tests/cupy_double_kernels.py).  ``STATE.launches`` counts the kernels launched:
every function, operator, method and user kernel on device arrays (views excepted).

CUDA graphs (``cupy.cuda.Stream``, ``begin_capture``/``end_capture``, ``Graph.launch``) are
emulated as CuPy runs them: while a stream captures, an operation on it is recorded, not
run -- it runs here only to learn its outputs' shapes, and then what it wrote is put back
and what it made is poisoned (NaN, or 0 for integers), as a captured kernel's output holds
no value until the graph is launched.  What a capture refuses, the double refuses with a
``RuntimeError`` that names it: a device-to-host transfer or a synchronisation, a copy of
host data to the device, cuBLAS (``matmul``, ``dot``, ``einsum``: cupy#6290), legacy cuRAND,
and work on another stream (it would run at once, outside the graph).  ``Graph.launch``
replays the recorded closures in order and counts one launch.

``.get()`` and ``cupy.asnumpy`` are the ways to the host, and every device-to-host
transfer is recorded in ``cupy.transfers`` -- those two, and also ``float()``, ``int()``,
``bool()``, ``.item()``, ``.tolist()``, ``repr`` of a device array, and the calls
(``nonzero``, ``unique``, ...) whose output size CuPy must read back from the GPU.  Each
record names the kind and the first line of tinyres that asked for it.
"""
import contextlib
import os
import sys
import types
import warnings

import numpy as np

STATE = types.SimpleNamespace(current=0, transfers=[], launches=0, uploads=[], stream=None, capturing=None)
_HOST_IN = {"array", "asarray", "asanyarray"}       # the functions that take host data
_ALLOCATIONS = {"empty", "empty_like"}              # memory from the pool, no kernel
_SYNCS = {"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract"}   # output size read back
_GEMMS = {"matmul", "dot", "tensordot", "einsum", "inner", "vdot", "ndarray.dot"}   # cuBLAS (or cuTENSOR)
_PACKAGE = os.sep + "tinyres" + os.sep


def _where():
    """The first line of tinyres up the stack (the caller of an array operation)."""
    frame = sys._getframe(2)
    while frame is not None:
        if _PACKAGE in frame.f_code.co_filename and not frame.f_code.co_filename.endswith("backend.py"):
            return f"{frame.f_code.co_filename.rsplit(_PACKAGE, 1)[1]}:{frame.f_lineno}"
        frame = frame.f_back
    return "outside tinyres"


def _refuse_in_capture(what, why):
    if STATE.capturing is not None:
        raise RuntimeError(f"fake cupy: {what} at {_where()} inside a CUDA-graph capture: {why}")


def _transfer(kind):
    """Record one device-to-host transfer, with the line of tinyres that caused it."""
    _refuse_in_capture(f"{kind} (a device-to-host copy)", "a capture records kernels without running them, "
                       "so there is no value to read yet (cudaErrorStreamCaptureUnsupported)")
    STATE.transfers.append(f"{kind} at {_where()}")


def _upload(name):
    """Record a host-to-device copy (``cupy.array`` of host data), with tinyres's line."""
    _refuse_in_capture(f"{name} of host data (a host-to-device copy)", "a graph cannot hold a copy from "
                       "pageable host memory: make the array on the device before the capture")
    STATE.uploads.append(f"{name} at {_where()}")


def _capturing(name):
    """True while the current stream captures: the operation ``name`` is to be recorded.
    An operation on another stream meanwhile is refused: it would run at once, outside
    the graph, and the graph would replay without it."""
    if STATE.capturing is None:
        return False
    if STATE.stream is not STATE.capturing:
        raise RuntimeError(f"fake cupy: {name} at {_where()} on another stream while a stream is capturing: "
                           "it would run now, outside the graph (launch it on the capturing stream)")
    return True


def _poison(a):
    """What a captured kernel's output holds before the graph runs: nothing meaningful."""
    if a.flags.writeable and a.size:
        a[...] = np.nan if a.dtype.kind in "fc" else 0


@contextlib.contextmanager
def _quietly():
    """Capture runs an operation on poisoned values only for its shapes: no warnings."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _launch(launch, name, made=()):
    """Launch a kernel (``launch()`` runs it on its arrays) -- or, while capturing, record it
    without running it, its fresh outputs ``made`` poisoned (see ``cupy_double_kernels``)."""
    if _capturing(name):
        for a in made:
            _poison(a)
        STATE.capturing._recorded.append(launch)
        return
    launch()
    STATE.launches += 1


def _record_copy(result, source, again, name):
    """A view made without a kernel may be a copy after all (``reshape`` of a non-contiguous
    array, indexing with an index array): that copy is a kernel, recorded while capturing."""
    if isinstance(result, np.ndarray) and not np.may_share_memory(result, source) and _capturing(name):
        _poison(result)
        STATE.capturing._recorded.append(lambda: result.__setitem__(Ellipsis, again()))


def _arrays(result):
    return [r for r in (result if type(result) in (list, tuple) else (result,)) if isinstance(r, np.ndarray)]


def _as_arrays(result):
    """NumPy scalars (CuPy: 0-d arrays) as 0-d arrays, so that a replay can write into them."""
    if isinstance(result, np.generic):
        return np.asarray(result)
    if type(result) in (list, tuple):
        return type(result)(_as_arrays(r) for r in result)
    return result


def _captured(fn, name, args, kwargs, seen):
    """Record ``fn(*args, **kwargs)`` in the capturing stream's graph.  It runs once now, for
    its outputs' shapes; then every array it was given gets its contents back and every
    array it made is poisoned, since a captured kernel does not run until the graph does.
    The replay runs it again and writes what it makes into those same arrays."""
    inputs = list({id(w._a): w._a for w in seen}.values())
    saved = [(a, a.copy()) for a in inputs if a.flags.writeable]
    with _quietly():
        result = _as_arrays(fn(*args, **kwargs))
    for a, before in saved:
        a[...] = before
    outputs = _arrays(result)
    made = [not any(np.may_share_memory(r, a) for a in inputs) for r in outputs]   # else a view, or out=
    for r, fresh in zip(outputs, made):
        if fresh:
            _poison(r)

    def replay():
        for old, new, fresh in zip(outputs, _arrays(_as_arrays(fn(*args, **kwargs))), made):
            if fresh:
                old[...] = new
    STATE.capturing._recorded.append(replay)
    return result


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
    given = args
    args = _unwrap(args, name, seen, host_ok)
    kwargs = {k: _unwrap(v, name, seen, host_ok) for k, v in kwargs.items()}
    if _capturing(name):
        if name in _GEMMS:
            raise RuntimeError(f"fake cupy: {name} at {_where()} inside a CUDA-graph capture: stock CuPy cannot "
                               "capture cuBLAS (cupy#6290); end the piece of graph there (backend.matmul does)")
        if name.rsplit(".", 1)[-1] in _SYNCS:
            _transfer(f"{name} (output size)")
        if name in _HOST_IN and not (given and isinstance(given[0], ndarray)):
            _upload(name)
        return _wrap(_captured(fn, name, args, kwargs, seen), seen)
    if name in _HOST_IN:
        _upload(name)
    if name not in _ALLOCATIONS:
        STATE.launches += 1             # one kernel (a few, such as astype to the same dtype, launch none)
    if name.rsplit(".", 1)[-1] in _SYNCS:
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
        key = _unwrap(key, "__getitem__", [])
        result = self._a[key]
        if isinstance(result, np.generic):      # CuPy: a 0-d view, not a copy
            result = self._a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        _record_copy(result, self._a, lambda: self._a[key], "__getitem__")    # a gather (an index array)
        return _wrap_view(self, result)

    def __setitem__(self, key, value):
        if self._dev != STATE.current:          # a copy kernel, like any other
            raise ValueError(f"fake cupy: __setitem__: an array on GPU {self._dev} written while GPU "
                             f"{STATE.current} is current")
        seen = []
        key, value = _unwrap(key, "__setitem__", seen), _unwrap(value, "__setitem__", seen)
        _launch(lambda: self._a.__setitem__(key, value), "__setitem__")

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
                args = _unwrap(args, name, [])
                result = value(*args, **kwargs)
                _record_copy(result, self._a, lambda: value(*args, **kwargs), f"ndarray.{name}")   # reshape: a copy
                return _wrap_view(self, result, same=self)
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
        if len(args) <= self.nin and kwargs.get("out") is None:
            kwargs = {"order": "C", **kwargs}       # CuPy's new outputs are C-contiguous (NumPy's: 'K')
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
        _refuse_in_capture("Device.synchronize()", "a capture cannot wait for work it has not run")


class Stream:
    """``cupy.cuda.Stream``: the current stream inside ``with``; ``begin_capture`` records the
    operations launched on it until ``end_capture``, which returns the ``Graph``."""

    null = None                 # the legacy default stream, set below

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.non_blocking, self._null, self._recorded = non_blocking, null, None
        self.ptr = 0 if null else id(self)

    def __enter__(self):
        self._previous = STATE.stream
        STATE.stream = None if self._null else self
        return self

    def __exit__(self, *exc):
        STATE.stream = self._previous

    def use(self):
        STATE.stream = None if self._null else self
        return self

    def begin_capture(self, mode=None):
        if self._null:
            raise RuntimeError("fake cupy: the legacy default stream cannot be captured; "
                               "capture on a cupy.cuda.Stream(non_blocking=True)")
        if STATE.capturing is not None:
            raise RuntimeError("fake cupy: begin_capture while a stream is already capturing")
        STATE.capturing, self._recorded = self, []

    def end_capture(self):
        if STATE.capturing is not self:
            raise RuntimeError("fake cupy: end_capture on a stream that is not capturing")
        graph, STATE.capturing, self._recorded = Graph(self._recorded), None, None
        return graph

    def is_capturing(self):
        return STATE.capturing is self

    def synchronize(self):
        _refuse_in_capture("Stream.synchronize()", "a capture cannot wait for work it has not run")

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass                    # the double runs everything in order at once


Stream.null = Stream(null=True)


class Event:
    """``cupy.cuda.Event``: marks a point of a stream (the double runs in order: a no-op)."""

    def record(self, stream=None):
        pass

    def synchronize(self):
        _refuse_in_capture("Event.synchronize()", "a capture cannot wait for work it has not run")


class Graph:
    """``cupy.cuda.Graph``: ``launch`` replays what the capture recorded, one launch in all."""

    def __init__(self, recorded):
        self._recorded = recorded

    def launch(self, stream=None):
        _refuse_in_capture("Graph.launch()", "the double does not nest graphs")
        for replay in self._recorded:
            replay()
        STATE.launches += 1

    def upload(self, stream=None):
        pass

    def __len__(self):
        """How many operations the graph holds (the double's own figure)."""
        return len(self._recorded)


class MemoryPool:
    """``cupy.cuda.MemoryPool``: the double allocates with NumPy; ``malloc`` is never called."""

    def malloc(self, size):
        raise RuntimeError("fake cupy: the double allocates with NumPy")


@contextlib.contextmanager
def using_allocator(allocator=None):
    yield


def get_current_stream():
    return STATE.stream or Stream.null


class _Random:
    """``cupy.random``: a generator that lives "on the device", seeded by ``seed``."""

    def __init__(self):
        self.seeds, self._rng = [], np.random.default_rng()

    def seed(self, seed=None):
        self.seeds.append(seed)
        self._rng = np.random.default_rng(seed)

    def random_sample(self, size=None, dtype=float):
        _refuse_in_capture("cupy.random", "CuPy's legacy cuRAND generator cannot be captured")
        return ndarray(np.asarray(self._rng.random(size, dtype=np.dtype(dtype))))

    random = random_sample

    def standard_normal(self, size=None, dtype=float):
        _refuse_in_capture("cupy.random", "CuPy's legacy cuRAND generator cannot be captured")
        return ndarray(np.asarray(self._rng.standard_normal(size, dtype=np.dtype(dtype))))


# cupy.linalg: the functions CuPy has (no eig, eigvals, cond, multi_dot, cross, vector_norm, matrix_norm),
# NumPy's on device arrays, returning plain tuples as CuPy does (not NumPy's named results).
# cuSOLVER reports nothing unless cupyx.errstate asks: a singular matrix given to inv or solve,
# or one that is not positive-definite given to cholesky, gives values that mean nothing (NaN
# here), not an exception.  The NumPy arguments CuPy lacks are refused with CuPy's TypeError.
_LINALG = ("cholesky", "qr", "svd", "eigh", "eigvalsh", "norm", "det", "matrix_rank", "slogdet", "solve",
           "tensorsolve", "lstsq", "inv", "pinv", "tensorinv", "matrix_power")
_LINALG_UNCHECKED = {"inv", "solve", "cholesky"}
_LINALG_NOT_IN_CUPY = {"cholesky": {"upper"}, "svd": {"hermitian"}}


def _linalg_function(name):
    fn = getattr(np.linalg, name)

    def run(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except np.linalg.LinAlgError:
            if name not in _LINALG_UNCHECKED:
                raise
            a, b = args[0], args[-1]
            shape = a.shape if name != "solve" else (a.shape[:-1] if b.ndim == 1 else
                                                     np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:])
            result = np.full(shape, np.nan, dtype=a.dtype)
        return tuple(result) if isinstance(result, tuple) else result

    def linalg(*args, **kwargs):
        refused = set(kwargs) & _LINALG_NOT_IN_CUPY.get(name, set())
        if refused:
            raise TypeError(f"fake cupy: cupy.linalg.{name}() got an unexpected keyword argument '{refused.pop()}'")
        return _call(run, f"linalg.{name}", args, kwargs)
    return linalg


def asnumpy(a, stream=None, out=None):
    """A host copy of a device array (a NumPy array is returned as it is)."""
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def make_fake_cupy(device_count=2):
    """A fresh ``cupy`` module on ``device_count`` fake GPUs, GPU 0 current, no transfers yet."""
    STATE.current, STATE.launches, STATE.stream, STATE.capturing = 0, 0, None, None
    STATE.transfers.clear()
    STATE.uploads.clear()
    cp = types.ModuleType("cupy")
    cp.ndarray, cp.asnumpy, cp.transfers = ndarray, asnumpy, STATE.transfers
    cp.cuda = types.SimpleNamespace(Device=cuda_Device, Stream=Stream, Event=Event, Graph=Graph,
                                    MemoryPool=MemoryPool, using_allocator=using_allocator,
                                    get_current_stream=get_current_stream,
                                    runtime=types.SimpleNamespace(getDeviceCount=lambda: device_count))
    cp.random = _Random()
    cp.linalg = types.SimpleNamespace(**{name: _linalg_function(name) for name in _LINALG})
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
    assert backend.is_device_array(t.array) == (device != "cpu"), type(t.array)
    return t

