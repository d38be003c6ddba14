"""Where a training step's time goes, op by op, on the CPU or a GPU.

    python benchmarks/op_profile.py                                # resnet20, batch 128, CPU
    python benchmarks/op_profile.py --device cuda --primitives     # on a GPU, and its primitives

Every autograd Function's ``forward`` and ``backward``, the optimizer's ``step`` and
``zero_grad`` and the engine's gradient accumulation are wrapped in a timer that waits for
the device before and after, so an op's time holds its kernels *and* its Python.  The table
gives each one's milliseconds per step and share of the timed step; "engine and the rest"
is what no timer covered (graph building and walking, Module calls, the loss's Python).
The first line is the step without timers (synchronised once per step), and on a GPU the
host's share: the step's time with no synchronisation at all, i.e. how long Python takes to
queue the kernels -- when it is close to the step, launching is what limits the step.

``--primitives`` (a GPU) times the building blocks alone: a reduction over each channel's
row, the strided copies of one im2col, one convolution's product, a small elementwise
kernel (launch cost), and the products of a weight gradient (a long inner dimension).
"""
import argparse
import collections
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyres  # noqa: E402
from tinyres import autograd, backend, optim  # noqa: E402
from tinyres.nn import functional as F  # noqa: E402

TIMES = collections.defaultdict(float)     # "Name.forward" -> seconds
_depth = [0]


def synchronize(device):
    if device != "cpu":
        backend.cupy_module().cuda.Device(backend.Device(device).index or 0).synchronize()


def timed(name, fn, device):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        if _depth[0]:                        # a super() call inside a timed method: counted there
            return fn(self, *args, **kwargs)
        label = name.format(type(self).__name__)
        synchronize(device)
        _depth[0] += 1
        start = time.perf_counter()
        try:
            return fn(self, *args, **kwargs)
        finally:
            synchronize(device)
            TIMES[label] += time.perf_counter() - start
            _depth[0] -= 1
    return wrapper


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def install_timers(device):
    for cls in [autograd.Function, *subclasses(autograd.Function)]:
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                setattr(cls, method, timed("{}." + method, cls.__dict__[method], device))
    for cls in [optim.Optimizer, *subclasses(optim.Optimizer)]:
        for method in ("step", "zero_grad"):
            if method in cls.__dict__:
                setattr(cls, method, timed("optimizer {}." + method, cls.__dict__[method], device))
    accumulate = autograd._accumulate
    autograd._accumulate = lambda leaf, grad: timed("gradient accumulation", lambda _, *a: accumulate(*a),
                                                    device)(None, leaf, grad)


def make_step(model_name, batch, size, device):
    rng = np.random.default_rng(0)
    model = tinyres.models.get_model(model_name, num_classes=10).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images = tinyres.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32), device=device)
    labels = tinyres.tensor(rng.integers(0, 10, batch), device=device)

    def step():
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def median_time(step, device, steps, sync=True):
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if sync:
            synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def primitives(device):
    """The building blocks alone, each the median of 20 synchronised calls, in microseconds."""
    xp = backend.cupy_module() if device != "cpu" else np
    rows = []

    def bench(label, fn):
        fn()
        synchronize(device)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
        rows.append((label, 1e6 * float(np.median(times))))

    small = xp.ones(16, xp.float32)
    bench("elementwise kernel, 16 values (launch cost)", lambda: small * 2)
    for c, m in ((16, 128 * 32 * 32), (64, 128 * 8 * 8)):
        a = xp.ones((c, m), xp.float32)
        bench(f"mean of each of {c} rows of {m} values", lambda a=a: a.mean(axis=1))
        bench(f"einsum ij,ij->i on ({c}, {m})", lambda a=a: xp.einsum("ij,ij->i", a, a))
        bench(f"elementwise multiply of ({c}, {m})", lambda a=a: a * a)
    from tinyres.nn.functional.conv import im2col
    x = xp.ones((16, 128, 34, 34), xp.float32).transpose(1, 0, 2, 3)   # channel-major, as a conv's output
    bench("im2col 3x3 of (128, 16, 32, 32), padding 1", lambda: im2col(x[:, :, 1:-1, 1:-1], (3, 3), (1, 1), ((1, 1), (1, 1))))
    w, cols = xp.ones((1, 16, 144), xp.float32), xp.ones((1, 144, 128 * 32 * 32), xp.float32)
    bench("matmul (1, 16, 144) @ (1, 144, 131072)", lambda: xp.matmul(w, cols))
    bench("matmul (16, 144) @ (144, 131072)", lambda: xp.matmul(w[0], cols[0]))
    g = xp.ones((1, 16, 128 * 32 * 32), xp.float32)      # a weight gradient: a long inner dimension
    bench("matmul (1, 144, 131072) @ (1, 131072, 16)", lambda: xp.matmul(cols, g.transpose(0, 2, 1)))
    bench("matmul (144, 131072) @ (131072, 16)", lambda: xp.matmul(cols[0], g[0].T))
    bench("matmul (1, 16, 131072) @ (1, 131072, 144)", lambda: xp.matmul(g, cols.transpose(0, 2, 1)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--primitives", action="store_true", help="also time the building blocks alone")
    args = ap.parse_args(argv)
    step = make_step(args.model, args.batch, args.size, args.device)
    for _ in range(3):
        step()
    synchronize(args.device)
    plain = median_time(step, args.device, args.steps)
    print(f"{args.model}, batch {args.batch}, {args.size}x{args.size}, {args.device}: "
          f"{plain * 1e3:.1f} ms a step", end="")
    if args.device != "cpu":
        host = median_time(step, args.device, args.steps, sync=False)
        synchronize(args.device)
        print(f"; the host queues it in {host * 1e3:.1f} ms", end="")
    print()
    install_timers(args.device)
    step()
    TIMES.clear()
    timed_total = median_time(step, args.device, args.steps) * args.steps
    rows = sorted(TIMES.items(), key=lambda kv: -kv[1])
    rows.append(("engine and the rest", timed_total - sum(TIMES.values())))
    print(f"\n| op | ms per step | share |\n|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds / args.steps * 1e3:.2f} | {100 * seconds / timed_total:.1f}% |")
    if args.primitives:
        print("\n| primitive | microseconds |\n|---|---:|")
        for label, us in primitives(args.device):
            print(f"| {label} | {us:.0f} |")


if __name__ == "__main__":
    main()
