"""The array backend: the one module that knows about CuPy.

Every op asks this module for ``xp`` -- the array module (``numpy`` or ``cupy``) that
owns its input arrays -- and never imports either itself.  CuPy is optional: it is
imported lazily, and ``import tinyres`` works without it.

Devices are written as in PyTorch: ``"cpu"``, ``"cuda"`` (the current GPU) and
``"cuda:N"``.  Dtypes are NumPy's.

The interface the rest of tinyres uses, and nothing else: ``get_array_module`` (``xp``),
``is_device_array`` / ``is_array`` (instead of isinstance checks on CuPy's types),
``to_host`` / ``to_device`` / ``device_of`` / ``on_device``, ``xp_for``, ``is_cpu``, the
dtypes, the default generator, and the thread helpers for CPU ops.

The array contract: what a third backend's module ``xp`` and its arrays must offer, since
the ops rely on exactly this.

* NumPy's array API for the functions the ops call: creation (``empty``, ``zeros``,
  ``ones``, ``full``, ``arange``, ``*_like``, ``asarray``, ``ascontiguousarray``),
  elementwise math with ``out=`` (``multiply``, ``subtract``, ``maximum``, ``exp``,
  ``log``, ``sqrt``, ``where``, ...), ``matmul``, ``einsum``, ``broadcast_to``,
  ``take_along_axis``, ``bincount`` (of integers), ``concatenate``, ``pad``, ``copyto``
  (from arrays or NumPy scalars), ``argsort``, ``flatnonzero`` and ``add.reduceat``
  (``ops.scatter_add``), ``random.random_sample(shape, dtype=)`` and ``random.seed``
  (dropout on a device).
* Views: basic slicing with steps gives a *strided view*, and in-place operators on such a
  view (``cols[..., i, j] += ...``, ``out=view``) write into the array it views (col2im
  and the pooling backwards accumulate that way; no ``add.at`` scatter is used: on a GPU
  it adds with atomics, in no fixed order).
* ``.shape``, ``.ndim``, ``.dtype`` (a NumPy dtype), ``.astype(dtype, copy=False)``,
  ``.reshape``, ``.sum(axis=, keepdims=)``, ``.item()``.
* For a device array: ``.get()`` copies it to a NumPy array on the host, ``.device.id``
  names its device, and a context (``cupy.cuda.Device(i)``) makes new arrays land there.
"""
import contextlib
import importlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

from .errors import UserError

float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
float16 = numpy.dtype("float16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")

_default_dtype = float32
_cupy = None          # the cupy module once imported; tests may install a stand-in here
_cupy_error = None    # why importing it failed
_nccl = None          # cupy.cuda.nccl once looked for (False: not there); tests may install a stand-in


def cupy_module():
    """The ``cupy`` module, or ``None`` when it cannot be imported."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            _cupy = importlib.import_module("cupy")
        except Exception as e:  # ImportError, or a broken CUDA install
            _cupy_error = e
    return _cupy


def nccl_module():
    """CuPy's NCCL binding (``cupy.cuda.nccl``), or ``None`` without CuPy or without NCCL;
    ``tinyres.distributed`` moves device arrays with it."""
    global _nccl
    if _nccl is None:
        _nccl = False
        if cupy_module() is not None:
            try:
                module = importlib.import_module("cupy.cuda.nccl")
                _nccl = module if getattr(module, "available", True) else False
            except Exception:   # CuPy built without NCCL
                pass
    return _nccl or None


def is_cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    cp = cupy_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _require_cupy():
    cp = cupy_module()
    if cp is None:
        raise DeviceUnavailable(
            "tinyres: a 'cuda' device needs CuPy, which could not be imported "
            f"({_cupy_error}). Install the GPU extra: pip install 'tinyres[gpu]' "
            "(cupy-cuda12x; use cupy-cuda11x or cupy-cuda13x for other CUDA versions).")
    if not is_cuda_available():
        raise DeviceUnavailable("tinyres: CuPy is installed but no CUDA GPU is visible.")
    return cp


class DeviceUnavailable(RuntimeError, UserError):
    """A 'cuda' device was asked for where there is none (no CuPy, or no GPU visible)."""


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")`` or ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {spec!r}")
        kind, colon, idx = spec.strip().partition(":")
        if kind not in ("cpu", "cuda") or (colon and (kind == "cpu" or not idx.isdigit())):
            raise UserError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {spec!r}")
        self.type = kind
        self.index = None if kind == "cpu" else int(idx or 0)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device('{self}')"


def device(spec="cpu"):
    return Device(spec)


def get_array_module(x):
    """``numpy`` or ``cupy``, whichever owns the array ``x`` (a Tensor is looked through)."""
    cp = _cupy
    if cp is None:
        return numpy
    if not isinstance(x, (numpy.ndarray, cp.ndarray)):
        x = getattr(x, "data", x)    # a Tensor; arrays have a .data too (a buffer), so not theirs
    return cp if isinstance(x, cp.ndarray) else numpy


def is_device_array(x):
    """True for an array that lives on a device (a CuPy array); False for anything else,
    NumPy arrays and Tensors included (ask ``tensor.device`` there)."""
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def is_array(x):
    """True for a NumPy array or a device array."""
    return isinstance(x, numpy.ndarray) or is_device_array(x)


def is_cpu(xp):
    """True when the array module ``xp`` is NumPy (the host), False for CuPy."""
    return xp is numpy


def device_of(array):
    """The Device an array lives on."""
    if get_array_module(array) is numpy:
        return Device("cpu")
    return Device(f"cuda:{array.device.id}")


def to_device(array, dev):
    """A copy of ``array`` on ``dev`` (the same array when it is already there)."""
    dev = Device(dev)
    if dev.type == "cpu":
        if get_array_module(array) is numpy:
            return array
        return array.get()
    cp = _require_cupy()
    if get_array_module(array) is cp and array.device.id == dev.index:
        return array
    with cp.cuda.Device(dev.index):
        return cp.array(array)     # a copy on dev, from the host or from another GPU


def to_host(array):
    """A host (NumPy) view or copy of ``array``."""
    return array.get() if is_device_array(array) else array


to_numpy = to_host      # the older name


def xp_for(dev):
    """The array module for a device."""
    return numpy if Device(dev).type == "cpu" else _require_cupy()


@contextlib.contextmanager
def on_device(dev):
    """Run array creation on ``dev`` (selects the GPU for CuPy; nothing to do for CPU)."""
    dev = Device(dev)
    if dev.type == "cpu":
        yield
    else:
        with _require_cupy().cuda.Device(dev.index):
            yield


def as_dtype(dtype):
    """A NumPy dtype from a dtype, a dtype name, or a Python type."""
    if dtype is None:
        return None
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a dtype such as tinyres.float32 or 'float64', "
                        f"got {dtype!r}") from None


def is_dtype_name(name):
    """True when the string ``name`` names a NumPy dtype (``'float32'``, ``'int64'``)."""
    try:
        numpy.dtype(name)
        return True
    except TypeError:
        return False


def get_default_dtype():
    return _default_dtype


def set_default_dtype(dtype):
    """Set the float dtype of new tensors made from Python floats (float32 or float64)."""
    global _default_dtype
    dtype = as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


_generator = numpy.random.default_rng()


def default_generator():
    """The NumPy Generator behind every random op (rand, dropout, init, shuffling).

    Random numbers are drawn on the host and copied to the device, so a seed gives the
    same numbers on CPU and GPU.
    """
    return _generator


def manual_seed(seed):
    """Seed tinyres's generator and, when CuPy is in use, CuPy's."""
    global _generator
    _generator = numpy.random.default_rng(seed)
    if _cupy is not None:
        _cupy.random.seed(seed)


# ------------------------------------------------------------ CPU threads and scratch memory
#
# NumPy runs one ufunc or copy on one core, but it releases the GIL while it does: splitting
# a large memory-bound op (batch norm, ReLU, im2col's copies) into slices on a few threads
# uses every core, as PyTorch's kernels do.  A convolution's products run in those threads
# too, each with single-threaded BLAS (see docs/performance.md for why).

def _threads_from_environment():
    for name in ("TINYRES_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_num_threads = _threads_from_environment()
_pool = None
_blas = None          # threadpoolctl's view of the BLAS library NumPy uses
_local = threading.local()


def get_num_threads():
    """How many threads tinyres splits large CPU ops over (as ``torch.get_num_threads``)."""
    return _num_threads


def set_num_threads(n):
    """Split large CPU ops over ``n`` threads (1: no threads of tinyres's own), and let BLAS
    use at most ``n`` threads for the products tinyres does not split (so that several
    processes on one machine, each with its share of the cores, do not oversubscribe them).
    The default comes from ``TINYRES_NUM_THREADS`` or ``OMP_NUM_THREADS``, else the usable
    CPU count."""
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if _pool is not None:
        _pool.shutdown()
        _pool = None
    _num_threads = n
    _blas_controller().limit(limits=n, user_api="blas")    # stays in force (nothing restores it)


def _blas_controller():
    """threadpoolctl's view of the BLAS library NumPy uses (made once: it scans the libraries)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    return _blas


def _single_threaded_blas():
    """A context in which BLAS runs each product on the calling thread only: when tinyres's
    threads each multiply their own share, BLAS's threads would only fight them for cores."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _in_parallel_region(fn, s):
    """fn(s), with any parallel_for inside it run inline: the pool is busy with this one."""
    _local.in_worker = True
    try:
        return fn(s)
    finally:
        _local.in_worker = False


def parallel_for(fn, n, xp=numpy):
    """``[fn(s) for s in slices]`` for slices ``s`` that cover ``range(n)``, one per thread.

    ``fn`` must write only to its own slice of its outputs; it may return a partial result
    (e.g. a partial sum) for the caller to combine.  While the threads run, BLAS is single
    threaded (each thread multiplies its own share).  For CuPy arrays (``xp`` is not NumPy)
    and inside a thread of the pool, it is one call on the whole range.
    """
    global _pool
    parts = min(_num_threads, n) if xp is numpy and not getattr(_local, "in_worker", False) else 1
    if parts <= 1:
        return [fn(slice(0, n))]
    if _pool is None:
        _pool = ThreadPoolExecutor(_num_threads, thread_name_prefix="tinyres")
    bounds = [n * k // parts for k in range(parts + 1)]
    with _single_threaded_blas():
        futures = [_pool.submit(_in_parallel_region, fn, slice(a, b)) for a, b in zip(bounds[1:-1], bounds[2:])]
        try:
            first = _in_parallel_region(fn, slice(bounds[0], bounds[1]))   # the calling thread takes the first
        finally:
            wait(futures)                     # never return while a worker still writes
        return [first] + [f.result() for f in futures]   # .result() re-raises a worker's exception


def parallel_matmul(a, b):
    """``a @ b`` (stacks of matrices, as ``numpy.matmul``) with the rows of ``a`` split
    between the threads, each multiplying its rows with single-threaded BLAS.  For the
    products of deep layers, few pixels against large weights, where splitting the batch
    would not pay; letting BLAS thread them instead would leave its threads spinning
    against tinyres's own for a while after each call."""
    xp = get_array_module(a)
    out = xp.empty(a.shape[:-1] + b.shape[-1:], dtype=xp.result_type(a, b))
    parallel_for(lambda s: xp.matmul(a[..., s, :], b, out=out[..., s, :]), a.shape[-2], xp)
    return out


BLOCK = 2 ** 18      # elements per piece of parallel_map's work (1 MB of float32: temporaries stay in cache)


def _memory_order(a):
    """The axes of ``a`` from outermost to innermost in memory (size-1 axes first: they don't
    move the address), and whether its elements fill one contiguous block in that order."""
    order = sorted(range(a.ndim), key=lambda k: (a.shape[k] != 1, -abs(a.strides[k])))
    return tuple(k for k in order if a.shape[k] != 1), a.transpose(order).flags.c_contiguous


def parallel_map(fn, *arrays):
    """``fn(*pieces)`` on matching pieces of the same-shaped ``arrays``, the pieces shared
    between the threads: for elementwise work written with ``out=``.

    When the arrays are contiguous in one memory order (the usual case), the pieces are
    flat blocks of ``BLOCK`` elements, so a piece's temporaries are small and stay in
    cache; otherwise they are slices along the first array's outermost axis in memory.
    On a GPU, one piece: each piece costs a launch per kernel, and there is no cache to fit.
    """
    first = arrays[0]
    if first.ndim == 0 or first.size == 0 or get_array_module(first) is not numpy:
        fn(*arrays)
        return
    layouts = {_memory_order(a) for a in arrays}
    if len(layouts) == 1 and layouts.pop()[1]:
        flat = [a.ravel(order="K") for a in arrays]
        starts = range(0, first.size, BLOCK)

        def blocks(s):
            for start in starts[s]:
                fn(*(f[start:start + BLOCK] for f in flat))
        parallel_for(blocks, len(starts), get_array_module(first))
    else:
        axis = _memory_order(first)[0][0]
        lead = (slice(None),) * axis
        parallel_for(lambda s: fn(*(a[lead + (s,)] for a in arrays)), first.shape[axis], get_array_module(first))


def workspace(name, shape, dtype, xp=numpy):
    """A scratch array for a temporary that never outlives the call that asks for it (the
    im2col columns of a convolution, its padded input).

    One buffer per ``name`` and thread, kept between calls and grown when needed: a training
    step would otherwise map and zero fresh memory for its largest temporaries at every
    call.  Two live temporaries need two names.  On a GPU CuPy's memory pool does this
    already, so this is just ``cupy.empty``.
    """
    if xp is not numpy:
        return xp.empty(shape, dtype=dtype)
    dtype = numpy.dtype(dtype)
    size = int(numpy.prod(shape)) * dtype.itemsize
    buffers = _local.__dict__.setdefault("workspace", {})
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = buffers[name] = numpy.empty(size, dtype=numpy.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def empty_workspace():
    """Free the scratch buffers (they are made again when next needed): this thread's, and
    the thread pool's, which goes with them and is started again when next needed."""
    global _pool
    _local.__dict__.pop("workspace", None)
    if _pool is not None:
        _pool.shutdown()
        _pool = None
