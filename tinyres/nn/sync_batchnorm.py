"""SyncBatchNorm: batch normalization with its statistics over the global batch of all ranks.

With data-parallel training (``tinyres.distributed``) each of P ranks sees m_r values of
a channel, M = sum_r m_r in all.  BatchNorm would normalise each rank's shard with its own
mean and variance; SyncBatchNorm uses those of the whole batch, so P ranks with B/P images
each compute exactly what one process with B images computes.  Forward (per channel):

    mu = allreduce(sum x) / M,   var = allreduce(sum (x - mu)^2) / M     (two passes)
    x_hat = (x - mu) / sigma,    y = w * x_hat + b

Backward: every x_r feeds mu and var, which every rank's loss depends on, so the fused
BatchNorm gradient (docs/batchnorm.md) holds with its means taken over the global batch:

    gx = (w / sigma) * (gy - (allreduce(sum gy) + x_hat * allreduce(sum gy * x_hat)) / M)

Here gy on rank r is the gradient of that rank's loss; gx is then the gradient of the sum
of all ranks' losses with respect to x_r -- the sum whose parameter gradients
DistributedDataParallel averages.  The gradients of w and b stay local (sum gy * x_hat
and sum gy on this rank), as torch's, and DistributedDataParallel averages them too.
Running statistics use the global mean and the unbiased global variance (M / (M - 1)).
Second derivatives (``create_graph=True``) come from the same math in differentiable ops,
its two global sums by ``AllReduceSum`` (whose gradient is the global sum of the gradient).

In eval mode, and on one process, it is ``F.batch_norm`` exactly.
"""
import numpy

from .. import collectives
from ..core.engine import Function, once_differentiable
from ..core.backend import get_array_module
from .functional.normalization import channel_rows, check_norm_input, from_channel_rows
from .layers import _BatchNorm

__all__ = ["SyncBatchNorm"]


class AllReduceSum(Function):
    """y = the sum of x over all ranks.   gx = the sum of gy over all ranks: every rank's
    loss reads y, and gx is the gradient of the sum of their losses (as for the batch
    statistics).  Its backward is itself, so it is closed under differentiation."""

    def forward(self, x):
        return collectives.all_reduce(x.copy())

    def backward(self, gy):
        return AllReduceSum.apply(gy)


class GlobalBatchNorm(Function):
    """Training-mode batch norm over the batch of every rank (see the module docstring)."""

    def composite(self, x, weight, bias, running_mean, running_var, factor, eps):
        """The same normalisation in differentiable ops, the sums over the global batch by
        ``AllReduceSum`` (for second derivatives; the running statistics are left alone)."""
        axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
        count = int(collectives.all_reduce(numpy.array([x.numel() // x.shape[1]]))[0])
        mu = AllReduceSum.apply(x.sum(axes, keepdim=True)) / count
        centered = x - mu
        var = AllReduceSum.apply((centered * centered).sum(axes, keepdim=True)) / count
        y = centered / (var + eps).sqrt()
        y = y if weight is None else y * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    def forward(self, x, weight, bias, running_mean, running_var, factor, eps):
        xp = get_array_module(x)
        rows = channel_rows(x)
        channels, m = rows.shape
        count = int(collectives.all_reduce(numpy.array([m]))[0])    # on the host: no device sync
        if count <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks "
                             f"when training, got {count} (input size {x.shape} on rank {collectives.rank()})")
        mean = collectives.all_reduce(rows.sum(axis=1)) / count
        centered = rows - mean[:, None]
        var = collectives.all_reduce(xp.einsum("ij,ij->i", centered, centered)) / count
        inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
        x_hat = centered * inv_std[:, None]
        y = x_hat if weight is None else x_hat * weight[:, None]
        if bias is not None:
            y = y + bias[:, None]
        if running_mean is not None:
            running_mean[...] = (1 - factor) * running_mean + factor * mean
            running_var[...] = (1 - factor) * running_var + factor * var * (count / (count - 1))
        self.x_hat, self.inv_std, self.weight, self.count = x_hat, inv_std, weight, count
        self.has_bias, self.shape = bias is not None, x.shape
        return from_channel_rows(xp.ascontiguousarray(y), x.shape)

    @once_differentiable
    def backward(self, gy):
        xp = get_array_module(gy)
        g_rows, x_hat = channel_rows(gy), self.x_hat
        gb, gw = g_rows.sum(axis=1), xp.einsum("ij,ij->i", g_rows, x_hat)
        total = collectives.all_reduce(xp.concatenate([gb, gw]))
        total_gb, total_gw = total[:len(gb)], total[len(gb):]
        scale = self.inv_std if self.weight is None else self.inv_std * self.weight
        gx = scale[:, None] * (g_rows - (total_gb[:, None] + x_hat * total_gw[:, None]) / self.count)
        return (from_channel_rows(xp.ascontiguousarray(gx), self.shape),
                None if self.weight is None else gw, gb if self.has_bias else None, None, None)


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, ...) with batch statistics over every rank's batch,
    as ``torch.nn.SyncBatchNorm``; ``SyncBatchNorm.convert_sync_batchnorm(model)`` (also
    ``tinyres.distributed.convert_sync_batchnorm``) swaps it in for every BatchNorm of a
    model.  See the module docstring for the math."""
    _ranks = (2, 3, 4, 5)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every BatchNorm1d/2d in ``module`` by a ``SyncBatchNorm`` holding the
        same parameters and running statistics (the same objects) and training mode, as
        ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``; returns the (possibly new) module.
        ``process_group`` must be None: tinyres has one group, the whole world."""
        if process_group is not None:
            raise ValueError("convert_sync_batchnorm: tinyres has no process groups (the world is the "
                             "only one); pass process_group=None")
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats)
            for table in ("_parameters", "_buffers"):
                getattr(sync, table).update(getattr(module, table))
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module

    def forward(self, input):
        if not self.training or collectives.world_size() == 1:
            return super().forward(input)
        check_norm_input(self._label(), input, self._ranks, self.num_features)
        if self.track_running_stats:
            self.num_batches_tracked.array += 1
        keep = self.track_running_stats
        factor = None if not keep else \
            self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        return GlobalBatchNorm.apply(input, self.weight, self.bias, self.running_mean if keep else None,
                                     self.running_var if keep else None, factor, self.eps)
