"""Data-parallel training over MPI: the same script on 1 process, 2 processes or a cluster.

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

from . import backend
from .autograd import Function, is_grad_enabled, no_grad
from .errors import UserError
from .nn.module import Module
from .tensor import Tensor

__all__ = ["init", "is_initialized", "rank", "world_size", "abort", "barrier", "all_reduce", "broadcast",
           "all_gather", "DistributedDataParallel", "convert_sync_batchnorm", "data_parallel"]

DEFAULT_TIMEOUT = 300.0     # seconds a rank waits in one collective before it gives up
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
_OPS = ("sum", "avg", "max", "min")


class _World:
    comm = None          # an mpi4py communicator, or None for the world of one process
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
            backend.set_num_threads(max(1, (os.cpu_count() or 1) // local))
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

def _host(x, name):
    """The host array behind ``x`` (a Tensor or an array) and a function putting a result back."""
    array = x.data if isinstance(x, Tensor) else x
    if not hasattr(array, "dtype"):
        raise TypeError(f"distributed.{name}: expected a Tensor or an array, got {type(x).__name__}")
    host = backend.to_numpy(array)
    if not host.flags.c_contiguous:
        host = numpy.ascontiguousarray(host)

    def store(result):
        array[...] = result if backend.is_cpu(backend.get_array_module(array)) else \
            backend.to_device(result, backend.device_of(array))
        return x
    return host, store


def all_reduce(x, op="sum"):
    """Reduce ``x`` (a Tensor or an array, the same shape and dtype on every rank) over the
    ranks **in place**, as ``torch.distributed.all_reduce``; ``op``: sum, avg, max, min.
    Returns ``x``."""
    if op not in _OPS:
        raise ValueError(f"distributed.all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    host, store = _host(x, "all_reduce")
    if _world.size == 1:
        return x
    from mpi4py import MPI
    result = numpy.empty_like(host)
    mpi_op = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    _wait(_world.comm.Iallreduce(host, result, mpi_op), f"all_reduce(shape {host.shape})")
    if op == "avg":
        result /= _world.size
    return store(result)


def broadcast(x, src=0):
    """Overwrite ``x`` on every rank with rank ``src``'s, in place; returns ``x``."""
    if not isinstance(src, int) or not 0 <= src < _world.size:
        raise ValueError(f"distributed.broadcast: src must be a rank in 0..{_world.size - 1}, got {src!r}")
    host, store = _host(x, "broadcast")
    if _world.size == 1:
        return x
    host = host.copy()
    _wait(_world.comm.Ibcast(host, root=src), f"broadcast(shape {host.shape})")
    return store(host)


def all_gather(x):
    """Every rank's ``x`` (one shape and dtype everywhere), as a list indexed by rank, of
    Tensors if ``x`` is a Tensor, else of arrays."""
    host, _ = _host(x, "all_gather")
    if _world.size > 1:
        shapes = numpy.zeros((_world.size, 9), numpy.int64)
        mine = numpy.array([host.ndim] + list(host.shape) + [0] * (8 - host.ndim), numpy.int64)
        _wait(_world.comm.Iallgather(mine, shapes), "all_gather (shapes)")
        if (shapes != mine).any():
            raise ValueError(f"distributed.all_gather: every rank must give the same shape; rank "
                             f"{_world.rank} has {host.shape}, the others: "
                             f"{[tuple(s[1:1 + s[0]]) for s in shapes]}")
        gathered = numpy.empty((_world.size,) + host.shape, host.dtype)
        _wait(_world.comm.Iallgather(host, gathered), f"all_gather(shape {host.shape})")
    else:
        gathered = host[None].copy()
    if isinstance(x, Tensor):
        return [Tensor(g).to(x.device) for g in gathered]
    xp = backend.get_array_module(x)
    return [g if backend.is_cpu(xp) else backend.to_device(g, backend.device_of(x)) for g in gathered]


def barrier():
    """Wait until every rank has called ``barrier()``."""
    if _world.size > 1:
        _wait(_world.comm.Ibarrier(), "barrier()")


# ---------------------------------------------------------------------------- the model wrapper

def _flat_buckets(tensors, cap_bytes):
    """``tensors`` cut into consecutive groups of one dtype and device, each up to
    ``cap_bytes`` (a tensor larger than that gets a group of its own)."""
    buckets, size = [], 0
    for t in tensors:
        nbytes = t.data.nbytes
        same = buckets and (buckets[-1][0].dtype, buckets[-1][0].device) == (t.dtype, t.device)
        if not same or size + nbytes > cap_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append(t)
        size += nbytes
    return buckets


def _broadcast_tensors(tensors, src=0):
    """Broadcast a list of tensors from ``src`` in one buffer per bucket."""
    for bucket in _flat_buckets(tensors, 2**26):
        flat = numpy.concatenate([backend.to_numpy(t.data).ravel() for t in bucket])
        broadcast(flat, src)
        offset = 0
        for t in bucket:
            part = flat[offset:offset + t.data.size].reshape(t.shape)
            t.data[...] = part if t.device.type == "cpu" else backend.to_device(part, t.device)
            offset += t.data.size


class _GradientsReady(Function):
    """Identity on the model's input, with the parameters as extra inputs.

    Every op that uses a parameter consumes this node's output, so the engine runs this
    backward after all of theirs: when it runs, each parameter's gradient of this backward
    pass is complete, and it averages them over the ranks.  (Averaging is linear and leaves
    already-averaged gradients unchanged, so accumulation over several backwards, or
    several forwards before one backward, still ends with the mean.)"""

    def forward(self, x, *params, ddp):
        self.ddp = ddp
        return x

    def backward(self, gy):
        self.ddp.average_gradients()
        return (gy,) + (None,) * len(self.ddp._params)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training, as ``torch.nn.parallel.DistributedDataParallel``.

    At construction every parameter and buffer is broadcast from rank 0, so all ranks
    start equal.  After each backward through the wrapper's output the gradients are
    averaged over the ranks, a few large buffers at a time (``bucket_cap_mb`` each, the
    parameters in reverse order, as torch's buckets), before ``backward()`` returns; a
    parameter that got no gradient on any rank keeps ``grad`` None.  With
    ``broadcast_buffers=True`` (torch's default) rank 0's buffers (BatchNorm's running
    statistics) are sent to all ranks at every training forward.

    ``state_dict()`` keys carry the ``module.`` prefix as in torch; ``.module`` is the
    wrapped model (what checkpoints should hold).  On one process it is a transparent
    wrapper.
    """

    def __init__(self, module, bucket_cap_mb=25, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb!r}")
        init()
        self.module, self.broadcast_buffers = module, broadcast_buffers
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _flat_buckets(self._params[::-1], int(bucket_cap_mb * 2**20))
        _broadcast_tensors(list(module.parameters()) + list(module.buffers()))

    def forward(self, *inputs, **kwargs):
        if _world.size > 1 and self.training and self.broadcast_buffers:
            _broadcast_tensors(list(self.module.buffers()))
        if _world.size > 1 and self._params and is_grad_enabled():
            if not inputs or not isinstance(inputs[0], Tensor):
                raise TypeError("DistributedDataParallel: the first input must be a Tensor (the gradients "
                                f"are averaged when the backward reaches it), got "
                                f"{type(inputs[0]).__name__ if inputs else 'no input'}")
            inputs = (_GradientsReady.apply(inputs[0], *self._params, ddp=self),) + inputs[1:]
        return self.module(*inputs, **kwargs)

    @no_grad()
    def average_gradients(self):
        """Replace every parameter's gradient with its mean over the ranks (one allreduce per
        bucket).  Called by the backward pass; call it yourself only after changing
        gradients outside of one."""
        if _world.size == 1:
            return
        for bucket in self._buckets:
            xp = backend.get_array_module(bucket[0].data)
            flat = xp.zeros(sum(p.data.size for p in bucket) + len(bucket), bucket[0].dtype)
            offset = 0
            for i, p in enumerate(bucket):
                if p.grad is not None:
                    flat[offset:offset + p.data.size] = p.grad.data.ravel()
                    flat[flat.size - len(bucket) + i] = 1      # this rank has a gradient for p
                offset += p.data.size
            all_reduce(flat, "avg")
            offset = 0
            for i, p in enumerate(bucket):
                if flat[flat.size - len(bucket) + i] > 0:
                    p.grad = Tensor(flat[offset:offset + p.data.size].reshape(p.shape).copy())
                offset += p.data.size

    def extra_repr(self):
        return f"world_size={_world.size}, buckets={len(self._buckets)}"


def convert_sync_batchnorm(module):
    """Replace every BatchNorm1d/2d in ``module`` by an ``nn.SyncBatchNorm`` holding the
    same parameters and running statistics, as ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``;
    returns the (possibly new) module."""
    from .nn.layers import _BatchNorm
    from .nn.sync_batchnorm import SyncBatchNorm
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        for table in ("_parameters", "_buffers"):
            getattr(sync, table).update(getattr(module, table))
        sync.train(module.training)
        return sync
    for name, child in list(module._modules.items()):
        if child is not None:
            module._modules[name] = convert_sync_batchnorm(child)
    return module


def data_parallel(model, train_loader, test_loader=None, sync_batchnorm=False):
    """Set a training up for the current world; returns ``(model, train_loader, test_loader)``.

    On one process they come back unchanged.  On P ranks: the model is wrapped in
    ``DistributedDataParallel`` (its BatchNorms made ``SyncBatchNorm`` first with
    ``sync_batchnorm=True``); the training loader's ``batch_size`` is read as the global
    batch, so each rank loads ``batch_size / P`` images of its ``DistributedSampler``
    shard (shuffled as the loader was, seeded by the loader's seed); the test loader is
    split into P disjoint shards (``even=False``) whose results ``Trainer``/``evaluate``
    add up.  So a recipe means the same on any number of ranks."""
    from .data import DataLoader, DistributedSampler
    init()
    if _world.size == 1:
        return model, train_loader, test_loader
    if train_loader.batch_size % _world.size:
        raise UserError(f"data_parallel: the batch size {train_loader.batch_size} (the global batch) "
                         f"must be divisible by the {_world.size} ranks")

    def shard(loader, batch_size, **options):
        sampler = DistributedSampler(loader.dataset, seed=loader.seed, **options)
        return DataLoader(loader.dataset, batch_size, drop_last=loader.drop_last, seed=loader.seed,
                          transform=loader.transform, device=loader.device, sampler=sampler)
    train_loader = shard(train_loader, train_loader.batch_size // _world.size, shuffle=train_loader.shuffle)
    if test_loader is not None:
        test_loader = shard(test_loader, test_loader.batch_size, shuffle=False, even=False)
    model = DistributedDataParallel(convert_sync_batchnorm(model) if sync_batchnorm else model)
    return model, train_loader, test_loader
