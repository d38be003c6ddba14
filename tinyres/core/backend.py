"""The array backend: the one module that knows about CuPy.

Every op asks this module for ``xp`` -- the array module (``numpy`` or ``cupy``) that
owns its input arrays -- and never imports either itself.  CuPy is optional: it is
imported lazily, and ``import tinyres`` works without it.

Devices are written as in PyTorch: ``"cpu"``, ``"cuda"`` (the current GPU) and
``"cuda:N"``.  Dtypes are NumPy's.

The interface the rest of tinyres uses, and nothing else: ``get_array_module`` (``xp``),
``is_device_array`` / ``is_array`` (instead of isinstance checks on CuPy's types),
``to_host`` / ``to_device`` / ``device_of`` / ``on_device``, ``xp_for``, ``is_cpu``, the
dtypes and the default generator, ``matmul`` and the CUDA-graph capture state
(``is_capturing``, ``outside_capture``, ``capture_watch``).  (The CPU thread helpers are
``tinyres.kernels.threads``.)

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

import numpy

from ..errors import UserError

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
_capture = None       # the tinyres.cuda.CUDAGraph now capturing, or None


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
        x = getattr(x, "array", x)   # a Tensor: its array
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


def element_positions(view, base):
    """The flat (C-order) position in ``base`` of each element of ``view``, a host int64 array
    of ``view``'s shape -- or None when ``view`` is not a strided window of the C-contiguous
    ``base``'s memory.  (How an in-place op on a view writes its result back into the base.)"""
    if not base.flags.c_contiguous or view.size == 0:
        return None
    pointer = (lambda a: a.data.ptr) if is_device_array(base) else (lambda a: a.__array_interface__["data"][0])
    offset, itemsize = pointer(view) - pointer(base), base.itemsize
    if offset % itemsize or any(s % itemsize for s in view.strides):
        return None
    start = offset // itemsize
    positions = start + sum(numpy.arange(n).reshape([-1 if i == k else 1 for i in range(view.ndim)]) * (s // itemsize)
                            for k, (n, s) in enumerate(zip(view.shape, view.strides))) if view.ndim else \
        numpy.asarray(start)
    positions = numpy.broadcast_to(positions, view.shape).astype(numpy.int64)
    if positions.min() < 0 or positions.max() >= base.size:
        return None
    return numpy.ascontiguousarray(positions)      # on the host: the caller moves it to base's device


def matmul(a, b, out=None):
    """``a @ b`` of two arrays (NumPy's ``matmul`` rules), into ``out`` when given.

    Every matrix product of the ops goes through here, because stock CuPy cannot capture
    cuBLAS in a CUDA graph (cupy#6290): while a graph captures, the product is handed to it
    (``CUDAGraph.gemm``), which ends the piece of graph there, runs the product outside it
    and starts the next piece."""
    if _capture is not None and is_device_array(a):
        return _capture.gemm(a, b, out)
    xp = get_array_module(a)
    return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)


def set_capture(graph):
    """``tinyres.cuda.CUDAGraph`` says here that it captures (``graph``) or has ended (None)."""
    global _capture
    _capture = graph


def is_capturing():
    """True while a CUDA graph captures (``tinyres.cuda.graph``): no value can be read back
    then, and array operations are recorded rather than run."""
    return _capture is not None


def outside_capture(fn):
    """``fn()`` run once now, outside any CUDA graph being captured (the graph will not
    repeat it): how an optimizer sets a device scalar, say a new learning rate, without
    baking the setting into every replay."""
    return fn() if _capture is None else _capture.outside(fn)


def capture_watch(obj):
    """Tell the graph being captured (if any) that ``obj`` keeps host bookkeeping of the work
    it recorded: the graph calls ``obj._graph_captured()`` when the capture ends and
    ``obj._graph_before_replay()`` / ``obj._graph_after_replay()`` around each replay (an
    optimizer refreshes its device learning rate and counts its steps there), and
    ``obj._graph_abandoned()`` when the capture fails.  Returns the graph (None if none)."""
    if _capture is not None:
        _capture.watch(obj)
    return _capture


def pin_memory(array):
    """A copy of the host array ``array`` in page-locked memory, from which copies to the GPU
    are faster and can overlap compute (what ``DataLoader(pin_memory=True)`` does to a batch)."""
    cp = _require_cupy()
    pinned = numpy.frombuffer(cp.cuda.alloc_pinned_memory(array.nbytes), array.dtype, array.size)
    pinned = pinned.reshape(array.shape)
    pinned[...] = array
    return pinned


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


class Generator(numpy.random.Generator):
    """``torch.Generator``: a NumPy Generator (so it draws as one) with torch's seeding methods.

    ``tinyres.Generator().manual_seed(42)`` is what ``generator=`` arguments take (a plain
    ``numpy.random.Generator`` works too).  ``device`` is accepted for torch's signature;
    numbers are always drawn on the host.
    """

    def __init__(self, device="cpu"):
        self._initial_seed = int(numpy.random.SeedSequence().entropy % 2**63)
        super().__init__(numpy.random.PCG64(self._initial_seed))
        self.device = Device(device)

    def manual_seed(self, seed):
        """Restart the stream from ``seed``; returns the generator (as torch's)."""
        if not isinstance(seed, (int, numpy.integer)) or isinstance(seed, bool):
            raise TypeError(f"Generator.manual_seed: expected an int seed, got {type(seed).__name__}")
        self._initial_seed = int(seed) % 2**64
        self.bit_generator.state = numpy.random.PCG64(self._initial_seed).state
        return self

    def seed(self):
        """Reseed from fresh entropy and return the new seed."""
        self.manual_seed(int(numpy.random.SeedSequence().entropy % 2**63))
        return self._initial_seed

    def initial_seed(self):
        return self._initial_seed

    def get_state(self):
        return dict(self.bit_generator.state)

    def set_state(self, state):
        self.bit_generator.state = state
        return self

    def __repr__(self):
        return f"Generator(initial_seed={self._initial_seed})"


_seed = int(numpy.random.SeedSequence().entropy % 2**63)     # until manual_seed: from fresh entropy
_generator = Generator().manual_seed(_seed)


def default_generator():
    """The NumPy Generator behind every random op (rand, dropout, init, shuffling).

    Random numbers are drawn on the host and copied to the device, so a seed gives the
    same numbers on CPU and GPU.
    """
    return _generator


def manual_seed(seed):
    """Seed tinyres's generator and, as ``torch.manual_seed`` does, every GPU's
    (``cuda_manual_seed``; CuPy's own generator too, when CuPy is in use).  Returns the
    default generator, as torch's does (the same stream as ``numpy.random.default_rng(seed)``).
    The generator is reseeded in place, so one held from an earlier call follows too."""
    global _seed
    _generator.manual_seed(seed)
    _seed = seed
    cuda_manual_seed(seed)
    if _cupy is not None:
        _cupy.random.seed(seed)
    return _generator


def initial_seed():
    """The seed of the default generator (``torch.initial_seed``): the last ``manual_seed``,
    or the one drawn from entropy at import."""
    return _seed


# The GPUs' generator, for dropout: counter-based (Philox4x32-10, kernels/fused.py), so its
# whole state is two numbers on each device -- the seed and how many numbers were drawn.
# A draw reads them and advances the count on the device, so a CUDA graph that holds a draw
# draws fresh numbers at every replay, with nothing done on the host.
_cuda_seed = None       # None: a seed from fresh entropy, chosen at the first draw
_cuda_states = {}       # GPU index -> uint64 array [seed, offset] on that GPU


def cuda_manual_seed(seed):
    """``torch.cuda.manual_seed_all``: every GPU's generator restarts from ``seed``.  Works
    without CuPy (the seed is kept for the first draw)."""
    global _cuda_seed
    if not isinstance(seed, (int, numpy.integer)) or isinstance(seed, bool):
        raise TypeError(f"cuda.manual_seed: expected an int seed, got {type(seed).__name__}")
    _cuda_seed = int(seed) % 2**64
    for index, state in _cuda_states.items():
        outside_capture(lambda index=index, state=state: _restart(index, state, _cuda_seed))


def cuda_initial_seed():
    """The seed the GPUs' generator started from (``torch.cuda.initial_seed``)."""
    global _cuda_seed
    if _cuda_seed is None:
        _cuda_seed = int(numpy.random.SeedSequence().entropy % 2**64)
    return _cuda_seed


def _restart(index, state, seed):
    with _cupy.cuda.Device(index):
        state[0:1].fill(numpy.uint64(seed))
        state[1:2].fill(numpy.uint64(0))
    return state


def cuda_generator_state(index):
    """The uint64 array ``[seed, offset]`` of GPU ``index``'s generator, made there (outside
    any capture) at the first call; a draw of n numbers uses offset .. offset + n - 1."""
    state = _cuda_states.get(index)
    if state is None:
        cp = _require_cupy()

        def make():
            with cp.cuda.Device(index):
                return _restart(index, cp.empty(2, dtype=numpy.uint64), cuda_initial_seed())
        state = _cuda_states[index] = outside_capture(make)
    return state
