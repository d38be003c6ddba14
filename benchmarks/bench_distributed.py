"""Data-parallel throughput: one process with every core against P MPI ranks.

    python benchmarks/bench_distributed.py               # 1 process vs mpiexec -n 2, ResNet-20, global batch 128
    python benchmarks/bench_distributed.py --ranks 2 4 --steps 20 --markdown

Each configuration runs in its own launch: ``python this.py --worker`` alone (tinyres's
threads = all cores), then ``mpiexec -n P python this.py --worker`` with the cores shared
out (``cores // P`` threads per rank, as ``tinyres.distributed.init`` sets them).  A step
is forward, backward (which ends with the gradient allreduce) and an SGD step on the
rank's ``batch / P`` images of CIFAR shape (random data: the speed does not depend on
the values).  Reported: images per second of the whole world (global batch / median step
time); the median time per step in the gradient averaging at the end of backward (one
bucket of ResNet-20's 0.27 M parameters), which includes waiting for the slower rank; and
an allreduce of that size alone, after a barrier.  Not a test: timings move 10-20%
between runs.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def worker(args):
    import numpy as np

    import tinyres
    from tinyres import distributed as dist
    from tinyres.nn import functional as F

    rank, size = dist.init()
    tinyres.manual_seed(0)
    model = dist.DistributedDataParallel(getattr(tinyres.models, args.model)())
    optimizer = tinyres.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    per_rank = args.batch // size
    rng = np.random.default_rng(rank)
    x = tinyres.tensor(rng.standard_normal((per_rank, 3, 32, 32)).astype(np.float32))
    y = tinyres.tensor(rng.integers(0, 10, per_rank))

    allreduce = []
    average = model.average_gradients

    def timed_average():
        start = time.perf_counter()
        average()
        allreduce.append(time.perf_counter() - start)
    model.average_gradients = timed_average

    steps = []
    for i in range(args.steps + 2):
        dist.barrier()
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        dist.barrier()
        steps.append(time.perf_counter() - start)
    steps, allreduce = steps[2:], allreduce[2:] or [0.0]
    flat = np.zeros(sum(p.numel() for p in model.parameters()), np.float32)   # the gradient's size
    alone = []
    for _ in range(20):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat, "avg")
        alone.append(time.perf_counter() - start)
    if rank == 0:
        print(json.dumps({"ranks": size, "threads": tinyres.get_num_threads(), "step": median(steps),
                          "allreduce": median(allreduce), "alone": median(alone) if size > 1 else 0.0,
                          "images_per_second": args.batch / median(steps)}))


def launch(args, ranks):
    command = [sys.executable, __file__, "--worker", "--model", args.model, "--batch", str(args.batch),
               "--steps", str(args.steps)]
    if ranks > 1:
        command = [shutil.which("mpiexec"), "-n", str(ranks)] + command
    env = {k: v for k, v in os.environ.items() if k not in ("TINYRES_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128, help="the global batch")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ranks", type=int, nargs="+", default=[2])
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if shutil.which("mpiexec") is None:
        sys.exit("bench_distributed: no mpiexec found (pip install 'tinyres[mpi]')")
    rows = [launch(args, 1)] + [launch(args, p) for p in args.ranks]
    base = rows[0]["images_per_second"]
    header = (f"{args.model} training step, global batch {args.batch}, {os.cpu_count()} cores, "
              f"median of {args.steps} steps")
    lines = ["| processes x threads | step | images/s | vs 1 process | gradient averaging per step | "
             "allreduce alone |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['ranks']} x {r['threads']} | {r['step'] * 1000:.0f} ms | {r['images_per_second']:.0f} | "
                     f"{r['images_per_second'] / base:.2f}x | {r['allreduce'] * 1000:.1f} ms | "
                     f"{r['alone'] * 1000:.2f} ms |")
    print(header + "\n" if args.markdown else header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
