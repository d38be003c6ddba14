"""tinyres.distributed, DistributedSampler and SyncBatchNorm.

The one-process tests run everywhere.  The MPI tests launch ``mpiexec -n 2`` in a
subprocess with a time limit (tests/distributed_worker.py holds the code each rank runs);
they skip only when MPI is not installed -- CI installs it (the ``mpi`` extra).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinyres
from tinyres import distributed as dist, nn, parallel
from tinyres.data import DataLoader, DistributedSampler


def assert_close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a.tolist()), np.asarray(b.tolist()), rtol=0, atol=atol)


WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return shutil.which("mpiexec") is not None


needs_mpi = pytest.mark.skipif(not mpi_available(), reason="MPI is not installed (pip install 'tinyres[mpi]')")


def mpiexec(*args, n=2, timeout=120, env=None):
    """Run ``mpiexec -n n`` with ``args``; returns (status, stdout + stderr, seconds)."""
    start = time.monotonic()
    environment = {**os.environ, "TINYRES_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    result = subprocess.run([shutil.which("mpiexec"), "-n", str(n), *args], capture_output=True, text=True,
                            timeout=timeout, env=environment, cwd=ROOT)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


def worker(case, **kwargs):
    return mpiexec(sys.executable, str(WORKER), case, **kwargs)


# ---------------------------------------------------------------------------- one process

def test_world_of_one_without_mpiexec():
    assert not dist.launched_by_mpi()
    assert dist.init() == (0, 1) and dist.rank() == 0 and dist.world_size() == 1
    x = np.arange(3.0)
    assert dist.all_reduce(x) is x and np.array_equal(x, [0, 1, 2])
    assert dist.broadcast(x) is x
    [g] = dist.all_gather(tinyres.tensor([1.0, 2.0]))
    assert isinstance(g, tinyres.Tensor) and g.tolist() == [1.0, 2.0]
    dist.barrier()


@pytest.mark.parametrize("call, match", [
    (lambda: dist.all_reduce(np.ones(2), op="prod"), "op must be one of sum, avg, max, min"),
    (lambda: dist.all_reduce(np.ones(2, np.int64), op="avg"), "op='avg' needs a floating point array, got int64"),
    (lambda: dist.all_reduce([1.0, 2.0]), "expected a Tensor or an array, got list"),
    (lambda: dist.broadcast(np.ones(2), src=1), r"src must be a rank in 0\.\.0, got 1"),
    (lambda: dist.init(timeout=0), "timeout must be a positive number"),
    (lambda: dist.DistributedDataParallel("model"), "expected a Module, got str"),
    (lambda: DistributedSampler(range(4), num_replicas=2, rank=2), r"invalid rank 2.*\[0, 1\]"),
    (lambda: DistributedSampler(range(4), num_replicas=0, rank=0), "num_replicas must be a positive integer"),
    (lambda: DistributedSampler(range(1), num_replicas=2, rank=0, drop_last=True), "without data"),
    (lambda: DataLoader(range(4), 2, shuffle=True, sampler=range(4)), "mutually exclusive with shuffle"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("n", [1, 7, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_cover_the_dataset_once(n, replicas, drop_last):
    if drop_last and n < replicas:
        return
    samplers = [DistributedSampler(range(n), replicas, r, seed=3, drop_last=drop_last) for r in range(replicas)]
    for epoch in (0, 1):
        shards = []
        for s in samplers:
            s.set_epoch(epoch)
            shards.append(list(s))
        assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(samplers[0])
        everything = sorted(i for shard in shards for i in shard)
        if drop_last:       # disjoint, the same count each, at most replicas - 1 left out
            assert len(set(everything)) == len(everything) and n - len(everything) < replicas
        else:               # every index, and only the padding twice
            assert set(everything) == set(range(n)) and len(everything) == -(-n // replicas) * replicas
    if n > 2:
        assert samplers[0].indices(0).tolist() != samplers[0].indices(1).tolist()   # reshuffled per epoch


def test_sampler_as_torch():
    """Same padding and striding rule as torch's (with tinyres's (seed, epoch) permutation)."""
    s = DistributedSampler(range(10), num_replicas=4, rank=1, shuffle=False)
    assert list(s) == [1, 5, 9] and len(s) == 3          # torch: indices + [0, 1] padding, rank::4
    s = DistributedSampler(range(10), num_replicas=4, rank=3, shuffle=False)
    assert list(s) == [3, 7, 1]
    s = DistributedSampler(range(10), num_replicas=4, rank=3, shuffle=False, drop_last=True)
    assert list(s) == [3, 7]
    order = np.random.default_rng([5, 2]).permutation(10)
    s = DistributedSampler(range(10), num_replicas=2, rank=1, seed=5)
    s.set_epoch(2)
    assert list(s) == order[1::2].tolist()


def test_uneven_sampler_for_evaluation():
    shards = [list(DistributedSampler(range(7), 3, r, shuffle=False, even=False)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]


def test_dataloader_with_a_sampler_follows_its_epochs():
    data = [(np.full((1, 2, 2), i, np.float32), i) for i in range(10)]
    sampler = DistributedSampler(data, num_replicas=2, rank=0, seed=1)
    loader = DataLoader(data, 2, sampler=sampler)
    assert len(loader) == 3
    for epoch in range(2):
        labels = [int(v) for _, y in loader for v in y.tolist()]
        assert labels == sampler.indices(epoch).tolist()


def test_sync_batchnorm_is_batchnorm_on_one_process():
    tinyres.manual_seed(0)
    bn = nn.BatchNorm2d(3).to(tinyres.float64)
    sync = dist.convert_sync_batchnorm(nn.Sequential(bn))[0]
    assert type(sync) is nn.SyncBatchNorm and sync.weight is bn.weight and sync.running_mean is bn.running_mean
    x = tinyres.randn(4, 3, 2, 2, dtype=tinyres.float64)
    reference = nn.BatchNorm2d(3).to(tinyres.float64)
    assert_close(sync(x), reference(x), atol=1e-15)
    assert_close(sync.running_var, reference.running_var, atol=1e-15)


def test_global_batch_norm_backward_by_finite_differences():
    """The Function SyncBatchNorm runs on several ranks, checked here on a world of one."""
    from tinyres.nn.sync_batchnorm import GlobalBatchNorm
    x = tinyres.randn(3, 2, 2, 2, dtype=tinyres.float64, requires_grad=True)
    w = tinyres.randn(2, dtype=tinyres.float64, requires_grad=True)
    b = tinyres.randn(2, dtype=tinyres.float64, requires_grad=True)
    assert tinyres.autograd.gradcheck(lambda x, w, b: GlobalBatchNorm.apply(x, w, b, None, None, None, 1e-5),
                                      (x, w, b))


def test_global_batch_norm_second_derivatives():
    """create_graph through SyncBatchNorm's Function: gradgradcheck, and against torch's
    training-mode batch norm (a world of one; tests/distributed_worker.py checks 2 ranks)."""
    from helpers import compare_second_order_with_torch
    from tinyres.nn.sync_batchnorm import GlobalBatchNorm
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((3, 2, 2, 2)) * 2 + 1, rng.standard_normal(2), rng.standard_normal(2)
    tensors = [tinyres.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tinyres.autograd.gradgradcheck(lambda x, w, b: GlobalBatchNorm.apply(x, w, b, None, None, None, 1e-5),
                                          tensors)

    def reference(x, w, b):
        import torch.nn.functional as TF
        return TF.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
    compare_second_order_with_torch(lambda x, w, b: GlobalBatchNorm.apply(x, w, b, None, None, None, 1e-5),
                                    reference, [x, w, b])


@pytest.mark.parametrize("affine", [True, False])
def test_global_batch_norm_against_torch(affine):
    """The Function SyncBatchNorm runs on several ranks, against torch's training-mode
    batch_norm (what torch.nn.SyncBatchNorm computes over the global batch): output, input
    and parameter gradients under a random upstream gradient, float64, non-contiguous input."""
    from helpers import compare_with_torch
    from tinyres.nn.sync_batchnorm import GlobalBatchNorm
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 2)) * 2 + 1
    params = [rng.standard_normal(3), rng.standard_normal(3)] if affine else []

    def tiny(x, *wb):
        return GlobalBatchNorm.apply(x, *(wb or (None, None)), None, None, None, 1e-5)

    def reference(x, *wb):
        import torch.nn.functional as TF
        return TF.batch_norm(x, None, None, *(wb or (None, None)), training=True, eps=1e-5)
    compare_with_torch(tiny, reference, [x] + params, contiguous=False)


def test_ddp_on_one_process_is_the_model():
    tinyres.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2))
    ddp = dist.DistributedDataParallel(net)
    assert list(ddp.state_dict()) == ["module.0.weight", "module.0.bias"]
    assert [p is q for p, q in zip(ddp.parameters(), net.parameters())] == [True, True]
    x = tinyres.randn(4, 3)
    assert_close(ddp(x), net(x), atol=0)


# ---------------------------------------------------------------------------- under mpiexec

@needs_mpi
def test_second_derivatives_through_sync_batchnorm_on_two_ranks():
    status, output, _ = worker("second_order")
    assert status == 0, output
    assert "rank 0: second order max difference" in output and "rank 1: second order max difference" in output


@needs_mpi
def test_collectives_on_two_ranks():
    status, output, _ = worker("collectives")
    assert status == 0, output
    assert "rank 0: collectives ok" in output and "rank 1: collectives ok" in output


@needs_mpi
def test_two_ranks_equal_one_process_with_the_whole_batch():
    """SyncBatchNorm: 2 x batch 4 == 1 x batch 8 within 1e-10 after 4 SGD steps (float64);
    per-rank BatchNorm: == the mean of the two half-batch losses (its documented difference)."""
    status, output, _ = worker("equivalence")
    assert status == 0, output
    assert output.count("max difference") == 4, output


@needs_mpi
def test_gradients_of_ops_on_parameters_alone_are_averaged_too():
    """w.T and scale.exp() hang off the parameters, not off the input: the averaging waits
    for the end of the backward, so their gradients are in it."""
    status, output, _ = worker("custom")
    assert status == 0, output
    assert output.count("custom gradients averaged") == 2, output


@needs_mpi
def test_train_cli_refuses_download_under_mpiexec(tmp_path):
    status, output, _ = mpiexec(sys.executable, "-m", "tinyres", "train", "--dataset", "mnist", "--download",
                                "--data-dir", str(tmp_path), "--no-progress", "--out", str(tmp_path / "run"))
    assert status == 2 and "fetch the dataset once without mpiexec" in output, output


def test_data_parallel_keeps_drop_last_and_one_seed(monkeypatch):
    """Simulated 2 ranks: the sampler drops as the loader does (the steps per epoch do not
    depend on the number of ranks), and both ranks shard with rank 0's seed."""
    monkeypatch.setattr(dist._world, "size", 2)
    monkeypatch.setattr(parallel, "broadcast", lambda x, src=0: x)     # rank 0 here
    monkeypatch.setattr(parallel, "DistributedDataParallel", lambda model: model)
    loader = DataLoader(list(range(11)), 4, shuffle=True, drop_last=True, seed=7)
    _, train, _ = dist.data_parallel(nn.Linear(1, 1), loader)
    assert len(train) == 11 // 4 == 2 and train.sampler.drop_last and train.sampler.seed == 7
    with pytest.raises(ValueError, match="already have a sampler"):
        dist.data_parallel(nn.Linear(1, 1), train)


@needs_mpi
def test_gpu_path_with_nccl_on_two_ranks():
    """On the CuPy double, NCCL stood in by MPI: 2 ranks on 'cuda' == 1 CPU process, every
    collective through NCCL, no device-to-host transfer from the distributed code."""
    status, output, _ = worker("gpu")
    assert status == 0, output
    assert output.count("gpu max difference") == 2, output


@needs_mpi
@pytest.mark.parametrize("case, message", [
    ("crash", "rank 1 of 2: raised an exception; stopping all ranks"),
    ("hang", "rank 0 of 2: waited 2 s in barrier()"),
    ("killed", "EXIT CODE: 9"),
])
def test_a_failing_rank_ends_the_run(case, message):
    status, output, seconds = worker(case, timeout=60)
    assert status != 0 and message in output, output
    assert "unreachable" not in output and seconds < 30


@needs_mpi
def test_train_cli_on_two_ranks_resumes_on_one(tmp_path):
    """``mpiexec -n 2 tinyres train``: one checkpoint and one log, written by rank 0; the run
    continues on one process from it."""
    out = tmp_path / "run"
    flags = ["--model", "resnet8", "--dataset", "bundled", "--subset", "96", "--batch-size", "32",
             "--lr", "0.05", "--no-progress", "--sync-bn", "--out", str(out)]
    status, output, _ = mpiexec(sys.executable, "-m", "tinyres", "train", "--epochs", "1", *flags, timeout=300)
    assert status == 0, output
    assert output.count("epoch=1 ") == 1 and output.count("test accuracy") == 1, output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    state = tinyres.load(out / "checkpoint.npz")
    assert not any(k.startswith("module.") for k in state["model"])
    from tinyres import cli
    assert cli.main(["train", "--epochs", "2", "--resume", *flags]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


@needs_mpi
def test_train_cli_user_error_on_two_ranks_ends_both(tmp_path):
    status, output, seconds = mpiexec(sys.executable, "-m", "tinyres", "train", "--model", "resnet8", "--dataset",
                                      "bundled", "--subset", "64", "--batch-size", "33", "--epochs", "1",
                                      "--no-progress", "--out", str(tmp_path / "run"), timeout=120)
    # rank 1 aborts with 2; mpiexec then kills rank 0, and under load it may report that
    # kill (9) instead of the abort's 2 -- either way both ranks ended, and the message says why
    assert status in (2, 9), output
    assert "must be divisible by the 2 ranks" in output and "stopping all ranks (exit status 2)" in output
    assert seconds < 60


@needs_mpi
def test_data_parallel_example_on_two_ranks():
    status, output, _ = mpiexec(sys.executable, str(ROOT / "examples" / "data_parallel.py"), "--quick")
    assert status == 0, output
    assert "2 process(es), 32 images each per step, 8 steps per epoch" in output
    assert output.count("test accuracy:") == 1 and "on 512 digits" in output, output


def test_sharded_evaluation_counts_every_image_once(monkeypatch):
    """Two ranks simulated in one process: evaluate() on each shard, summed, is the whole."""
    from tinyres.train import evaluate
    tinyres.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    data = [(np.random.default_rng(i).standard_normal((1, 2, 2)).astype(np.float32), i % 3) for i in range(7)]
    whole = evaluate(net, DataLoader(data, 3), 3)
    shards = [evaluate(net, DataLoader(data, 3, sampler=DistributedSampler(data, 2, r, shuffle=False, even=False)), 3)
              for r in range(2)]
    assert sum(s["count"] for s in shards) == whole["count"] == 7
    assert (np.add(*[np.array(s["confusion"]) for s in shards]) == np.array(whole["confusion"])).all()
