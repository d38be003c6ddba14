"""CPU threads and scratch memory for the array kernels.

NumPy runs one ufunc or copy on one core, but it releases the GIL while it does: splitting
a large memory-bound op (batch norm, ReLU, im2col's copies) into slices on a few threads
uses every core, as PyTorch's kernels do.  A convolution's products run in those threads
too, each with single-threaded BLAS (see docs/performance.md for why).  On a GPU every
helper here is one call on the whole array.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

from ..core.backend import get_array_module, is_cpu, matmul


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
    if not is_cpu(xp):
        return matmul(a, b)
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
