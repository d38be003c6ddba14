"""Data-parallel training: ``DistributedDataParallel``, ``convert_sync_batchnorm``, ``data_parallel``.

The model wrapper on top of ``tinyres.collectives`` (how the ranks talk, and why averaging
the gradients makes P ranks follow the same trajectory as one process: see its docstring).
``tinyres.distributed`` offers both.
"""
import numpy

from .collectives import _world, all_reduce, broadcast, init
from .core import backend
from .core.engine import Function, queue_callback
from .core.grad_mode import is_grad_enabled, no_grad
from .errors import UserError
from .core.tensor import Tensor
from .nn.module import Module
from .nn.sync_batchnorm import SyncBatchNorm

__all__ = ["DistributedDataParallel", "convert_sync_batchnorm", "data_parallel"]


# ---------------------------------------------------------------------------- the model wrapper

def _flat_buckets(tensors, cap_bytes):
    """``tensors`` cut into consecutive groups of one dtype and device, each up to
    ``cap_bytes`` (a tensor larger than that gets a group of its own)."""
    buckets, size = [], 0
    for t in tensors:
        nbytes = t.array.nbytes
        same = buckets and (buckets[-1][0].dtype, buckets[-1][0].device) == (t.dtype, t.device)
        if not same or size + nbytes > cap_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append(t)
        size += nbytes
    return buckets


def _broadcast_tensors(tensors, src=0):
    """Broadcast a list of tensors from ``src``, one flat buffer per bucket."""
    for bucket in _flat_buckets(tensors, 2**26):
        xp = backend.get_array_module(bucket[0].array)
        flat = broadcast(xp.concatenate([t.array.ravel() for t in bucket]), src)
        for t, part in zip(bucket, _split(flat, bucket)):
            t.array[...] = part


def _split(flat, tensors):
    """Views of the flat array ``flat`` shaped as each of ``tensors``, in order."""
    offset = 0
    for t in tensors:
        yield flat[offset:offset + t.array.size].reshape(t.shape)
        offset += t.array.size


class _GradientsReady(Function):
    """Identity on the model's input, with the parameters as extra inputs: when the backward
    pass reaches it, it asks the engine to average the gradients once the pass has ended
    (``autograd.queue_callback``), after every parameter's gradient of the pass is in --
    including those of ops that hang off a parameter alone (``w.T``, ``scale.exp()``).
    (Averaging is linear and leaves already-averaged gradients unchanged, so accumulation
    over several backwards, or several forwards before one backward, still ends with the
    mean.)"""

    def forward(self, x, *params, ddp):
        self.ddp = ddp
        return x

    def backward(self, gy):
        queue_callback(self.ddp.average_gradients)
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

    The averaging is hooked to the first input: a backward that reaches ``inputs[0]``
    averages every gradient when it ends.

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
            has_grad = numpy.array([p.grad is not None for p in bucket], numpy.int64)
            all_reduce(has_grad)                  # a parameter with a gradient on any rank gets one
            xp = backend.get_array_module(bucket[0].array)
            flat = xp.zeros(sum(p.array.size for p in bucket), bucket[0].dtype)
            for p, part in zip(bucket, _split(flat, bucket)):
                if p.grad is not None:
                    part[...] = p.grad.array
            all_reduce(flat, "avg")
            for p, part, used in zip(bucket, _split(flat, bucket), has_grad):
                if used:
                    p.grad = Tensor(part)

    def extra_repr(self):
        return f"world_size={_world.size}, buckets={len(self._buckets)}"


def convert_sync_batchnorm(module):
    """Replace every BatchNorm in ``module`` by an ``nn.SyncBatchNorm`` with the same
    parameters and running statistics: ``nn.SyncBatchNorm.convert_sync_batchnorm``, as torch."""
    return SyncBatchNorm.convert_sync_batchnorm(module)


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
    if any(loader is not None and loader.sampler is not None for loader in (train_loader, test_loader)):
        raise UserError("data_parallel: the loaders already have a sampler; give loaders without one "
                        "(it adds a DistributedSampler) or shard them yourself")
    if train_loader.batch_size % _world.size:
        raise UserError(f"data_parallel: the batch size {train_loader.batch_size} (the global batch) "
                         f"must be divisible by the {_world.size} ranks")

    def shard(loader, batch_size, **options):
        seed = int(broadcast(numpy.array([loader.seed], numpy.int64))[0])     # rank 0's: one order for all
        sampler = DistributedSampler(loader.dataset, seed=seed, drop_last=loader.drop_last, **options)
        return DataLoader(loader.dataset, batch_size, drop_last=loader.drop_last, seed=seed,
                          transform=loader.transform, device=loader.device, sampler=sampler)
    train_loader = shard(train_loader, train_loader.batch_size // _world.size, shuffle=train_loader.shuffle)
    if test_loader is not None:
        test_loader = shard(test_loader, test_loader.batch_size, shuffle=False, even=False)
    model = DistributedDataParallel(convert_sync_batchnorm(model) if sync_batchnorm else model)
    return model, train_loader, test_loader
