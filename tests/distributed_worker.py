"""Run by tests/test_distributed.py under ``mpiexec -n 2 python tests/distributed_worker.py CASE``.

Each case asserts on every rank; a failure raises, which tinyres.distributed turns into
an abort naming the rank (and the test sees a non-zero status).
"""
import os
import signal
import sys
import time

import numpy as np

import tinyres
from tinyres import distributed as dist, nn
from tinyres.nn import functional as F


def collectives():
    rank, size = dist.init()
    assert size == 2, size
    x = np.array([1.0, 2.0]) * (rank + 1)
    assert np.array_equal(dist.all_reduce(x.copy()), [3.0, 6.0])
    assert np.array_equal(dist.all_reduce(x.copy(), "avg"), [1.5, 3.0])
    assert np.array_equal(dist.all_reduce(x.copy(), "max"), [2.0, 4.0])
    assert np.array_equal(dist.all_reduce(x.copy(), "min"), [1.0, 2.0])
    t = tinyres.tensor([rank + 1.0])
    assert dist.all_reduce(t) is t and t.item() == 3.0
    b = np.full(3, rank, np.int64)
    assert np.array_equal(dist.broadcast(b, src=1), [1, 1, 1])
    gathered = dist.all_gather(tinyres.tensor([[rank]]))
    assert [g.item() for g in gathered] == [0, 1]
    try:
        dist.all_gather(np.zeros(rank + 1))
    except ValueError as e:
        assert "same shape" in str(e), e
    else:
        raise AssertionError("all_gather accepted different shapes")
    dist.barrier()
    print(f"rank {rank}: collectives ok")


def small_net(seed):
    tinyres.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).to(tinyres.float64)


def train(model, batches, shards=1):
    """SGD steps; each batch's loss is the mean of the losses of its ``shards`` parts
    (shards=2 is what two ranks with per-rank BatchNorm compute together)."""
    opt = tinyres.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for x, y in batches:
        opt.zero_grad()
        parts = zip(np.array_split(x, shards), np.array_split(y, shards))
        loss = sum(F.cross_entropy(model(tinyres.tensor(a)), tinyres.tensor(b)) for a, b in parts) / shards
        loss.backward()
        opt.step()
    return [p.array.copy() for p in model.parameters()]


def equivalence():
    """2 ranks x batch 4 == 1 process x batch 8 (SyncBatchNorm); with per-rank BatchNorm,
    == the mean of the two halves' losses."""
    rank, size = dist.init()
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 3, 6, 6)), rng.integers(0, 3, 8)) for _ in range(4)]
    mine = [(x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]) for x, y in batches]
    for sync, shards in ((True, 1), (False, 2)):
        expected = train(small_net(0), batches, shards)
        net = small_net(rank + 1)                 # different on each rank: DDP broadcasts rank 0's...
        if rank == 0:
            net = small_net(0)                    # ...which is the reference's initialisation
        if sync:
            net = dist.convert_sync_batchnorm(net)
        got = train(dist.DistributedDataParallel(net), mine)
        worst = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
        assert worst < 1e-10, (sync, worst)
        print(f"rank {rank}: sync_batchnorm={sync} max difference {worst:.1e}")


def second_order():
    """create_graph through SyncBatchNorm: an input-gradient penalty on 2 ranks x batch 4
    gives the parameter gradients of 1 process x batch 8 with BatchNorm (summed over ranks)."""
    rank, _ = dist.init()
    x = np.random.default_rng(1).standard_normal((8, 3, 4, 4)) * 1.5 + 0.5

    def penalty_gradients(bn, images):
        xt = tinyres.tensor(images, requires_grad=True)
        loss = (bn(xt) ** 3).sum()
        g, = tinyres.autograd.grad(loss, xt, create_graph=True)
        (g * g).sum().backward()
        return [bn.weight.grad.array.copy(), bn.bias.grad.array.copy()]

    def batch_norm():
        bn = nn.BatchNorm2d(3).to(tinyres.float64)
        with tinyres.no_grad():
            bn.weight.array[...] = [0.5, 1.5, -1.0]
            bn.bias.array[...] = [0.1, -0.2, 0.3]
        return bn
    expected = penalty_gradients(batch_norm(), x)
    got = [dist.all_reduce(g) for g in penalty_gradients(nn.SyncBatchNorm.convert_sync_batchnorm(batch_norm()),
                                                         x[rank * 4:(rank + 1) * 4])]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
    assert worst < 1e-10, worst
    print(f"rank {rank}: second order max difference {worst:.1e}")


class ScaledLinear(nn.Module):
    """A layer whose parameters go through ops of their own (w.T, scale.exp()) before
    meeting the input: their gradients arrive after the backward has passed the input."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(tinyres.randn(3, 4, dtype=tinyres.float64))
        self.scale = nn.Parameter(tinyres.zeros(1, dtype=tinyres.float64))

    def forward(self, x):
        return (x @ self.w.T) * self.scale.exp()


def custom():
    """Gradients averaged at the end of the whole backward, whatever the graph's shape."""
    rank, _ = dist.init()
    tinyres.manual_seed(0)
    net = dist.DistributedDataParallel(ScaledLinear())
    x = tinyres.randn(5, 4, dtype=tinyres.float64) * (rank + 1)
    F.cross_entropy(net(x), tinyres.tensor([0, 1, 2, 0, 1])).backward()
    for p in net.parameters():
        copies = dist.all_gather(p.grad)
        assert np.array_equal(copies[0].numpy(), copies[1].numpy()), p.shape
    print(f"rank {rank}: custom gradients averaged")


def crash():
    """Rank 1 raises in the middle of training; rank 0 is then waiting in an allreduce."""
    rank, _ = dist.init(timeout=60)
    net = dist.DistributedDataParallel(small_net(0))
    for step in range(3):
        if rank == 1 and step == 1:
            raise ZeroDivisionError("planted failure on rank 1")
        F.cross_entropy(net(tinyres.randn(2, 3, 6, 6, dtype=tinyres.float64)), tinyres.tensor([0, 1])).backward()
    print("unreachable")


def killed():
    """Rank 1 dies without a word (as under the OOM killer)."""
    rank, _ = dist.init(timeout=60)
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(np.ones(3))
    print("unreachable")


def hang():
    """Rank 1 never arrives: rank 0 gives up after its timeout."""
    rank, _ = dist.init(timeout=2)
    if rank == 1:
        time.sleep(120)
    dist.barrier()
    print("unreachable")


class FakeNccl:
    """``cupy.cuda.nccl`` for the CuPy double: the same calls, done by MPI on the arrays
    behind the device pointers (``.data.ptr`` of the double's arrays, registered here)."""
    NCCL_UNIQUE_ID_BYTES = 128
    NCCL_SUM, NCCL_MAX, NCCL_MIN = "sum", "max", "min"
    NCCL_FLOAT16 = NCCL_FLOAT32 = NCCL_FLOAT64 = NCCL_INT8 = NCCL_UINT8 = NCCL_INT32 = NCCL_INT64 = "type"
    calls = []
    arrays = {}

    @staticmethod
    def get_unique_id():
        return tuple(range(128))

    class NcclCommunicator:
        def __init__(self, size, uid, rank):
            from mpi4py import MPI
            assert (size, rank) == (MPI.COMM_WORLD.Get_size(), MPI.COMM_WORLD.Get_rank()) and uid == tuple(range(128))
            self.comm = MPI.COMM_WORLD

        def _host(self, ptr, count):
            a = FakeNccl.arrays[ptr]._a
            assert a.flags.c_contiguous and a.size == count
            return a

        def allReduce(self, send, recv, count, kind, op, stream):
            from mpi4py import MPI
            FakeNccl.calls.append("allReduce")
            result = np.empty_like(self._host(send, count))
            self.comm.Allreduce(self._host(send, count), result, {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op])
            self._host(recv, count)[...] = result

        def bcast(self, buffer, count, kind, root, stream):
            FakeNccl.calls.append("bcast")
            self.comm.Bcast(self._host(buffer, count), root=root)

        def allGather(self, send, recv, count, kind, stream):
            FakeNccl.calls.append("allGather")
            self.comm.Allgather(self._host(send, count), FakeNccl.arrays[recv]._a)


def gpu():
    """The device path on the CuPy double with NCCL faked over MPI: the equivalence of
    ``equivalence`` on 'cuda', every collective through NCCL, no device-to-host transfer
    made by the distributed code."""
    import types
    sys.path.insert(0, os.path.dirname(__file__))
    import cupy_double
    from tinyres import backend

    class Pointer:
        def __init__(self, array):
            self.ptr = id(array)
            FakeNccl.arrays[self.ptr] = array
    cp = cupy_double.make_fake_cupy()
    cp.cuda.get_current_stream = lambda: types.SimpleNamespace(ptr=0)
    cupy_double.ndarray.data = property(Pointer)
    backend._cupy, backend._nccl = cp, FakeNccl
    rank, size = dist.init()
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 3, 6, 6)), rng.integers(0, 3, 8)) for _ in range(3)]
    mine = [(x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]) for x, y in batches]
    expected = train(small_net(0), batches)
    net = dist.DistributedDataParallel(dist.convert_sync_batchnorm(small_net(rank)).to("cuda"))
    opt = tinyres.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    data = [(tinyres.tensor(x).to("cuda"), tinyres.tensor(y).to("cuda")) for x, y in mine]
    del cp.transfers[:]
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    ours = [t for t in cp.transfers if "distributed.py" in t or "sync_batchnorm.py" in t]
    assert not ours, ours
    got = [p.array.get() for p in net.parameters()]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
    assert worst < 1e-10, worst
    assert {"allReduce", "bcast"} <= set(FakeNccl.calls), FakeNccl.calls
    gathered = dist.all_gather(tinyres.tensor([float(rank)]).to("cuda"))
    assert [g.device.type for g in gathered] == ["cuda", "cuda"] and "allGather" in FakeNccl.calls
    print(f"rank {rank}: gpu max difference {worst:.1e}, {len(FakeNccl.calls)} NCCL calls")


if __name__ == "__main__":
    globals()[sys.argv[1]]()
