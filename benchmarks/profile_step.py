"""Where a tinyres training step spends its time, op by op, on the CPU or a GPU.

    python benchmarks/profile_step.py                          # resnet20, batch 128, the CPU
    python benchmarks/profile_step.py --model resnet18 --batch 32 --size 64
    python benchmarks/profile_step.py --model resnet50 --batch 8 --size 224 --inference
    python benchmarks/profile_step.py --device cuda --primitives   # a GPU, and its building blocks

Every autograd Function's ``forward`` and ``backward``, the optimizer's ``step`` and
``zero_grad`` and the engine's gradient accumulation are wrapped in a timer (wall clock; an
op waits for its threads, and on a GPU the timer waits for the device before and after, so
an op's time holds its kernels *and* its Python).  "other" is what no timer covered: the
engine's bookkeeping, Module calls, Python.  On a GPU the first line also gives the host's
time: from an idle GPU, how long Python takes to return from a step, queueing its kernels
(it can also wait, once CUDA's launch queue is full).  ``--primitives`` times building
blocks alone, on either device: a reduction over each channel's row, one im2col, one
convolution's products, a kernel on 16 values (on a GPU: the cost of a launch).
docs/performance.md shows these tables before and after the speed work.
"""
import argparse
import functools
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyres  # noqa: E402
from tinyres import backend, models, optim  # noqa: E402
from tinyres.core import engine  # noqa: E402
from tinyres.nn import functional as F  # noqa: E402


def synchronize(device):
    if device != "cpu":
        backend.cupy_module().cuda.Device(backend.Device(device).index or 0).synchronize()


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def install_timers(totals, device):
    """Wrap the ops, the optimizers and the gradient accumulation so that each adds its
    time to ``totals[(name, pass)]``; a call inside a timed one (``super()``) counts there."""
    depth = [0]

    def timed(fn, key):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)
            name = key[0] or type(args[0]).__name__
            synchronize(device)
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize(device)
                totals[(name, key[1])] += time.perf_counter() - start
                depth[0] -= 1
        return wrapper

    for base, methods in ((engine.Function, ("forward", "backward")), (optim.Optimizer, ("step", "zero_grad"))):
        for cls in {base, *subclasses(base)}:
            for method in methods:
                if method in vars(cls):
                    setattr(cls, method, timed(vars(cls)[method], (None, method)))
    engine._accumulate = timed(engine._accumulate, ("gradient accumulation", ""))


def median_time(step, device, steps, sync=True):
    """The median time of ``step``, from an idle device: until the device is done with it
    (``sync``), or until the host returns from it."""
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        if sync:
            synchronize(device)
        times.append(time.perf_counter() - start)
    synchronize(device)
    return float(np.median(times))


def primitives(device):
    """The building blocks alone, each the median of 20 synchronised calls, in microseconds."""
    from tinyres.nn.functional.conv import im2col
    xp = backend.cupy_module() if device != "cpu" else np
    rows = []

    def bench(label, fn):
        fn()
        synchronize(device)
        rows.append((label, 1e6 * median_time(fn, device, 20)))

    small = xp.ones(16, xp.float32)
    bench("elementwise kernel, 16 values (launch cost)", lambda: small * 2)
    for c, m in ((16, 128 * 32 * 32), (64, 128 * 8 * 8)):
        a = xp.ones((c, m), xp.float32)
        bench(f"mean of each of {c} rows of {m} values", lambda a=a: a.mean(axis=1))
        bench(f"einsum ij,ij->i on ({c}, {m})", lambda a=a: xp.einsum("ij,ij->i", a, a))
        bench(f"elementwise multiply of ({c}, {m})", lambda a=a: a * a)
    x = xp.ones((16, 128, 32, 32), xp.float32).transpose(1, 0, 2, 3)      # channel-major, as a conv's output
    bench("im2col 3x3 of (128, 16, 32, 32), padding 1", lambda: im2col(x, (3, 3), (1, 1), ((1, 1), (1, 1))))
    w, cols = xp.ones((1, 16, 144), xp.float32), xp.ones((1, 144, 128 * 32 * 32), xp.float32)
    g = xp.ones((1, 16, 128 * 32 * 32), xp.float32)
    bench("matmul (1, 16, 144) @ (1, 144, 131072): forward", lambda: xp.matmul(w, cols))
    bench("matmul (1, 144, 131072) @ (1, 131072, 16): weight gradient", lambda: xp.matmul(cols, g.transpose(0, 2, 1)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--shortcut", default=None, choices=["A", "B"],
                    help="a CIFAR ResNet's shortcuts (default: B for resnet20, as bench.py compares with torch)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--inference", action="store_true", help="time model(x) in eval mode under no_grad")
    ap.add_argument("--primitives", action="store_true", help="also time the building blocks alone")
    args = ap.parse_args(argv)
    shortcut = args.shortcut or ("B" if args.model == "resnet20" else None)
    options = {"shortcut": shortcut} if shortcut else {}
    model = models.get_model(args.model, num_classes=10, **options).to(args.device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    x = tinyres.tensor(rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32),
                       device=args.device)
    y = tinyres.tensor(np.arange(args.batch) % 10, device=args.device)

    def step():
        if args.inference:
            with tinyres.no_grad():
                return model(x)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if args.inference:
        model.eval()
    for _ in range(3):
        step()
    synchronize(args.device)
    plain = median_time(step, args.device, args.steps)
    host = ""
    if args.device != "cpu":
        host = f"; the host returns from it in {median_time(step, args.device, args.steps, sync=False) * 1e3:.1f} ms"
    totals = defaultdict(float)
    install_timers(totals, args.device)
    step()
    totals.clear()
    start = time.perf_counter()               # the same steps the timers see, their synchronisations included
    for _ in range(args.steps):
        step()
    synchronize(args.device)
    total = (time.perf_counter() - start) / args.steps
    rows = sorted(((v / args.steps, k) for k, v in totals.items()), reverse=True)
    print(f"{args.model} {'inference' if args.inference else 'training'}, batch {args.batch}, "
          f"{args.size}x{args.size}, {args.device}: {plain * 1e3:.1f} ms per step{host} "
          f"({tinyres.get_num_threads()} CPU threads)")
    print("| op | pass | ms per step | share |\n|---|---|---:|---:|")
    for seconds, (name, method) in rows:
        if seconds >= 0.00005:
            print(f"| {name} | {method} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")
    other = total - sum(s for s, _ in rows)
    print(f"| other (engine, Python) | | {other * 1e3:.1f} | {other / total:.0%} |")
    if args.primitives:
        print("\n| primitive | microseconds |\n|---|---:|")
        for label, us in primitives(args.device):
            print(f"| {label} | {us:.0f} |")


if __name__ == "__main__":
    main()
