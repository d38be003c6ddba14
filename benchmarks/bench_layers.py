"""tinyres vs PyTorch (CPU) on the same shapes, in one run: forward + backward time per layer
and for a whole ResNet training step.  Not a test: timings depend on the machine.

    python benchmarks/bench_layers.py                 # all cases, the machine's default threads
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_layers.py --threads 1

Prints one row per case: tinyres ms, torch ms, and their ratio (tinyres / torch).
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as TF

import tinyres
from tinyres import models
from tinyres.nn import functional as F


def best_of(fn, repeat):
    fn()                                   # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def layer_cases():
    """(name, tinyres fn, torch fn, input shapes)."""
    conv = [(64, 16, 28, 16, 1), (64, 16, 28, 32, 2), (64, 32, 14, 32, 1), (64, 64, 7, 64, 1), (8, 64, 56, 64, 1)]
    for n, c, h, o, s in conv:
        yield (f"conv2d 3x3 {n}x{c}x{h}x{h} -> {o}, stride {s}",
               lambda x, w, s=s: F.conv2d(x, w, stride=s, padding=1),
               lambda x, w, s=s: TF.conv2d(x, w, stride=s, padding=1), [(n, c, h, h), (o, c, 3, 3)])
    yield ("batch_norm (train) 64x32x28x28", lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
           lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True), [(64, 32, 28, 28), (32,), (32,)])
    yield ("relu 64x32x28x28", F.relu, TF.relu, [(64, 32, 28, 28)])
    yield ("max_pool2d 3/2/1 16x64x56x56", lambda x: F.max_pool2d(x, 3, 2, 1),
           lambda x: TF.max_pool2d(x, 3, 2, 1), [(16, 64, 56, 56)])
    yield ("cross_entropy 512x1000", lambda x: F.cross_entropy(x, LABELS[0]),
           lambda x: TF.cross_entropy(x, LABELS[1]), [(512, 1000)])


LABELS = (tinyres.tensor(np.arange(512) % 1000), torch.tensor(np.arange(512) % 1000))


def time_layer(fn, tfn, shapes, repeat):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [tinyres.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]

    def run_ours():
        y = fn(*ours)
        y.backward(tinyres.ones(*y.shape))

    def run_theirs():
        y = tfn(*theirs)
        y.backward(torch.ones_like(y))
    return best_of(run_ours, repeat), best_of(run_theirs, repeat)


def time_model(name, shape, repeat):
    """One training step (forward, cross-entropy, backward) of a model in both frameworks."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_models import TORCH_TWINS
    ours, theirs = models.get_model(name, num_classes=10), TORCH_TWINS[name](num_classes=10, in_channels=3)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = np.arange(shape[0]) % 10
    tx, ty, px, py = tinyres.tensor(x), tinyres.tensor(y), torch.tensor(x), torch.tensor(y)
    return (best_of(lambda: F.cross_entropy(ours(tx), ty).backward(), repeat),
            best_of(lambda: TF.cross_entropy(theirs(px), py).backward(), repeat))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (set OPENBLAS_NUM_THREADS to match)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [(name, *time_layer(fn, tfn, shapes, args.repeat)) for name, fn, tfn, shapes in layer_cases()]
    rows.append(("resnet20 training step, 64x3x32x32", *time_model("resnet20", (64, 3, 32, 32), args.repeat)))
    rows.append(("resnet18 training step, 8x3x64x64", *time_model("resnet18", (8, 3, 64, 64), args.repeat)))
    width = max(len(r[0]) for r in rows)
    print(f"{'case (forward + backward)':<{width}}  {'tinyres ms':>10}  {'torch ms':>9}  {'ratio':>6}")
    for name, ours, theirs in rows:
        print(f"{name:<{width}}  {ours * 1e3:>10.1f}  {theirs * 1e3:>9.1f}  {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
