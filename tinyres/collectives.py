"""The collectives of data-parallel training over MPI (``tinyres.distributed``'s lower half).

The model wrapper, ``convert_sync_batchnorm`` and ``data_parallel`` are in ``tinyres.parallel``;
``tinyres.distributed`` offers both.

Launch any training script with ``mpiexec -n P python script.py`` (or ``mpiexec -n P
tinyres train ...``).  Each of the P processes (*ranks*) holds a full copy of the model,
trains on its own shard of every batch (``tinyres.data.DistributedSampler``), and after
each backward the gradients are averaged over the ranks (``DistributedDataParallel``),
so every rank takes the same optimizer step and the copies stay equal.  Averaging is
what makes P ranks with batch B/P each follow the same trajectory as one process with
batch B: the loss of the whole batch is the mean of the ranks' losses, and its gradient
the mean of their gradients.  BatchNorm is the one layer that looks across a batch;
``nn.SyncBatchNorm`` takes its statistics over the whole global batch (see its docs).

Without MPI -- mpi4py not installed, or the script not started by ``mpiexec`` -- the world
is one process (rank 0 of 1) and everything here is a no-op, so scripts run unchanged.

Every collective (``all_reduce``, ``broadcast``, ``all_gather``, ``barrier``) must be
called by every rank in the same order.  A rank that waits longer than ``timeout``
seconds for the others (one of them died, hung or skipped a call) aborts the whole run
with a message naming itself and the call; a rank that raises prints its traceback
under its rank number and aborts the others -- never a silent hang.

Device arrays (CuPy) are staged through host memory for MPI.
"""

import os
import sys
import time
import traceback

import numpy

from .core import backend
from .core.tensor import Tensor
from .kernels.threads import set_num_threads
from .errors import UserError

__all__ = ["init", "is_initialized", "launched_by_mpi", "rank", "world_size", "abort", "barrier", "all_reduce",
           "broadcast", "all_gather"]

DEFAULT_TIMEOUT = 300.0     # seconds a rank waits in one collective before it gives up
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
_OPS = ("sum", "avg", "max", "min")
_NCCL_OPS = {"sum": "NCCL_SUM", "avg": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}
_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "int64": "NCCL_INT64"}


class _World:
    comm = None          # an mpi4py communicator, or None for the world of one process
    nccl = {}            # GPU id -> NCCL communicator (device arrays, when CuPy has NCCL)
    rank, size = 0, 1
    timeout = float(os.environ.get("TINYRES_DIST_TIMEOUT", DEFAULT_TIMEOUT))


_world = _World()


def launched_by_mpi():
    """Whether this process was started by ``mpiexec``/``mpirun`` (their environment variables)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def init(timeout=None):
    """Join the MPI world this process was launched into; return ``(rank, world_size)``.

    Idempotent.  Outside ``mpiexec`` (or with a world of one) it does nothing and MPI is
    not even imported.  ``timeout`` (seconds, default 300 or ``$TINYRES_DIST_TIMEOUT``)
    bounds every wait in a collective.  With several ranks on one machine, each rank's
    CPU threads are set to its share of the cores (unless TINYRES_NUM_THREADS is set).
    """
    if timeout is not None:
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"distributed.init: timeout must be a positive number of seconds, got {timeout!r}")
        _world.timeout = float(timeout)
    if _world.comm is not None or not launched_by_mpi():
        return _world.rank, _world.size
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("distributed.init: this process was started by mpiexec but mpi4py is not "
                           "installed: pip install 'tinyres[mpi]'") from None
    _world.comm = MPI.COMM_WORLD.Dup()
    _world.rank, _world.size = _world.comm.Get_rank(), _world.comm.Get_size()
    if _world.size > 1:
        _abort_on_uncaught_exception()
        if "TINYRES_NUM_THREADS" not in os.environ:
            local = _world.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
            set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return _world.rank, _world.size


def is_initialized():
    return _world.comm is not None


def rank():
    """This process's rank, 0 .. world_size() - 1 (0 without MPI)."""
    return _world.rank


def world_size():
    """The number of processes (1 without MPI)."""
    return _world.size


def abort(message, status=1):
    """Print ``message`` under this rank's name and end every rank with exit ``status``
    (MPI_Abort): what a rank does when it cannot go on, so that the others do not wait for
    it.  In a world of one: print and ``sys.exit(status)``."""
    sys.stdout.flush()
    sys.stderr.write(f"tinyres.distributed: rank {_world.rank} of {_world.size}: {message}\n")
    sys.stderr.flush()
    if _world.comm is None:
        sys.exit(status)
    _world.comm.Abort(status)


def _abort_on_uncaught_exception():
    """An exception that escapes on one rank would leave the others waiting in their next
    collective: print it with the rank's number, then abort them all."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, tb)
        text = "".join(traceback.format_exception(kind, value, tb))
        abort(f"raised an exception; stopping all ranks.\n{text}")
    sys.excepthook = hook


def _wait(request, what):
    """Wait for a non-blocking MPI request, aborting the run after the timeout."""
    deadline, pause = time.monotonic() + _world.timeout, 0.0
    while not request.Test():
        if time.monotonic() > deadline:
            abort(f"waited {_world.timeout:g} s in {what} for the other ranks. One of them died, "
                   "hung, or is not making the same call (every rank must call the same collectives "
                   "in the same order).")
        time.sleep(pause)
        pause = min(1e-3, pause + 1e-5)      # spin first, then back off to a millisecond


# ---------------------------------------------------------------------------- collectives

def _array(x, name):
    """The array behind ``x`` (a Tensor or an array)."""
    array = x.array if isinstance(x, Tensor) else x
    if not backend.is_array(array):
        raise TypeError(f"distributed.{name}: expected a Tensor or an array, got {type(x).__name__}")
    return array


def _nccl(array):
    """The NCCL communicator of the GPU ``array`` lives on, made on first use (a collective
    call, as every rank makes its first device collective at the same point), or None for a
    host array or without NCCL (then device arrays are staged through host memory)."""
    nccl = backend.nccl_module()
    if nccl is None or not backend.is_device_array(array):
        return None
    device = array.device.id
    if device not in _world.nccl:
        uid = numpy.zeros(nccl.NCCL_UNIQUE_ID_BYTES, numpy.int64)
        if _world.rank == 0:
            uid[:] = nccl.get_unique_id()
        _wait(_world.comm.Ibcast(uid, root=0), "the NCCL set-up")
        with backend.on_device(backend.device_of(array)):
            _world.nccl[device] = nccl.NcclCommunicator(_world.size, tuple(uid.tolist()), _world.rank)
    return _world.nccl[device]


def _nccl_call(call, array):
    """``call(array, NCCL type, stream)`` on the contiguous device array ``array``, with its
    GPU current.  NCCL queues the collective on the current stream, after the kernels that
    made ``array`` and before those that use the result: no host synchronisation."""
    nccl = backend.nccl_module()
    name = _NCCL_TYPES.get(array.dtype.name)
    if name is None:
        raise TypeError(f"distributed: NCCL has no type for {array.dtype} arrays")
    stream = backend.cupy_module().cuda.get_current_stream().ptr
    with backend.on_device(backend.device_of(array)):
        return call(array, getattr(nccl, name), stream)


def all_reduce(x, op="sum"):
    """Reduce ``x`` (a Tensor or an array, the same shape and dtype on every rank) over the
    ranks **in place**, as ``torch.distributed.all_reduce``; ``op``: sum, avg, max, min.
    Returns ``x``.  Device arrays go through NCCL when CuPy has it."""
    if op not in _OPS:
        raise ValueError(f"distributed.all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    array = _array(x, "all_reduce")
    if op == "avg" and array.dtype.kind != "f":
        raise TypeError(f"distributed.all_reduce: op='avg' needs a floating point array, got {array.dtype}")
    if _world.size == 1:
        return x
    xp = backend.get_array_module(array)
    buffer = xp.ascontiguousarray(array)
    comm = _nccl(array)
    if comm is not None:
        nccl_op = getattr(backend.nccl_module(), _NCCL_OPS[op])
        _nccl_call(lambda a, kind, stream: comm.allReduce(a.data.ptr, a.data.ptr, a.size, kind, nccl_op, stream),
                   buffer)
    else:
        from mpi4py import MPI
        host = backend.to_host(buffer)
        result = numpy.empty_like(host)
        mpi_op = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        _wait(_world.comm.Iallreduce(host, result, mpi_op), f"all_reduce(shape {host.shape})")
        buffer = result if xp is numpy else backend.to_device(result, backend.device_of(array))
    if op == "avg":
        buffer /= _world.size
    if buffer is not array:
        array[...] = buffer
    return x


def broadcast(x, src=0):
    """Overwrite ``x`` on every rank with rank ``src``'s, in place; returns ``x``."""
    if not isinstance(src, int) or not 0 <= src < _world.size:
        raise ValueError(f"distributed.broadcast: src must be a rank in 0..{_world.size - 1}, got {src!r}")
    array = _array(x, "broadcast")
    if _world.size == 1:
        return x
    xp = backend.get_array_module(array)
    comm = _nccl(array)
    if comm is not None:
        buffer = xp.ascontiguousarray(array)
        _nccl_call(lambda a, kind, stream: comm.bcast(a.data.ptr, a.size, kind, src, stream), buffer)
    else:
        buffer = numpy.array(backend.to_host(array), order="C")      # a copy MPI may write into
        _wait(_world.comm.Ibcast(buffer, root=src), f"broadcast(shape {buffer.shape})")
        if xp is not numpy:
            buffer = backend.to_device(buffer, backend.device_of(array))
    if buffer is not array:
        array[...] = buffer
    return x


def all_gather(x):
    """Every rank's ``x`` (one shape and dtype everywhere), as a list indexed by rank, of
    Tensors if ``x`` is a Tensor, else of arrays (on ``x``'s device)."""
    array = _array(x, "all_gather")
    xp = backend.get_array_module(array)
    if _world.size == 1:
        gathered = array[None].copy()
    else:
        shapes = numpy.zeros((_world.size, 9), numpy.int64)
        mine = numpy.array([array.ndim] + list(array.shape) + [0] * (8 - array.ndim), numpy.int64)
        _wait(_world.comm.Iallgather(mine, shapes), "all_gather (shapes)")
        if (shapes != mine).any():
            raise ValueError(f"distributed.all_gather: every rank must give the same shape; rank "
                             f"{_world.rank} has {array.shape}, the others: "
                             f"{[tuple(s[1:1 + s[0]]) for s in shapes]}")
        comm = _nccl(array)
        if comm is not None:
            send = xp.ascontiguousarray(array)
            gathered = xp.empty((_world.size,) + array.shape, array.dtype)
            _nccl_call(lambda a, kind, stream: comm.allGather(a.data.ptr, gathered.data.ptr, a.size, kind, stream),
                       send)
        else:
            host = numpy.ascontiguousarray(backend.to_host(array))
            gathered = numpy.empty((_world.size,) + array.shape, array.dtype)
            _wait(_world.comm.Iallgather(host, gathered), f"all_gather(shape {array.shape})")
            if xp is not numpy:
                gathered = backend.to_device(gathered, backend.device_of(array))
    parts = [gathered[i] for i in range(len(gathered))]
    return [Tensor(g) for g in parts] if isinstance(x, Tensor) else parts


def barrier():
    """Wait until every rank has called ``barrier()``."""
    if _world.size > 1:
        _wait(_world.comm.Ibarrier(), "barrier()")
