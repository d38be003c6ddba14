"""tinyres against PyTorch on the CPU: whole ResNet steps and single ops, one table.

    python benchmarks/bench.py                      # every case, 3 alternated rounds
    python benchmarks/bench.py --rounds 1 --cases resnet20   # the cases whose name has 'resnet20'
    python benchmarks/bench.py --markdown           # the table as Markdown (docs/performance.md)
    python benchmarks/bench.py --against a0a1065 --cases "resnet20 train"   # tinyres now vs at a commit

Every measurement runs in a fresh process that imports one framework only: with torch and
NumPy in one process, torch's OpenMP threads keep spinning after each torch op and take
cores from OpenBLAS and from tinyres's threads, which makes in-process ratios swing by up
to 1.5x.  Each round runs every case in both frameworks (the order alternating between
rounds); a case's time is the median over rounds of the median of ``--steps`` timed steps
after 2 warm-up steps.  Both frameworks use their default threads (``OMP_NUM_THREADS``
sets both).  Without PyTorch installed, tinyres's column alone.

Columns: time per step, the ratio tinyres / torch, effective GFLOP/s (the multiply-adds of
the layers x 2 / time; a training step counted as 3 forward passes), and each process's
peak resident memory (for the op rows that is mostly the framework itself).
Not a test: timings depend on the machine and move 10-20% between runs.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------- the cases

MODELS = {   # name: (architecture, batch, image size, train?)
    "resnet20 train, batch 128": ("resnet20", 128, 32, True),
    "resnet20 train, batch 32": ("resnet20", 32, 32, True),
    "resnet20 inference, batch 128": ("resnet20", 128, 32, False),
    "resnet50 inference, batch 8, 224x224": ("resnet50", 8, 224, False),
    "resnet18 train, batch 32, 64x64": ("resnet18", 32, 64, True),
}
STAGES = [(128, 16, 32), (128, 32, 16), (128, 64, 8)]   # ResNet-20's three stages at batch 128: N, C, H=W
OPS = {f"conv2d 3x3 {n}x{c}x{h}x{h} {part}": ("conv2d", (n, c, h, h), part)
       for n, c, h in STAGES for part in ("forward", "backward")}
OPS.update({
    "batch_norm train 128x16x32x32 fwd+bwd": ("batch_norm", (128, 16, 32, 32), "both"),
    "relu 128x16x32x32 fwd+bwd": ("relu", (128, 16, 32, 32), "both"),
    "max_pool2d 3/2/1 32x64x32x32 fwd+bwd": ("max_pool2d", (32, 64, 32, 32), "both"),
    "cross_entropy 256x1000 fwd+bwd": ("cross_entropy", (256, 1000), "both"),
})
CASES = list(MODELS) + list(OPS)


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def time_steps(step, steps, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return median(times)


# ---------------------------------------------------------------------- one framework, one case

def build_tinyres(case):
    """(step function, multiply-adds per step) for tinyres."""
    import numpy as np
    import tinyres
    from tinyres import models, nn, optim
    from tinyres.nn import functional as F
    rng = np.random.default_rng(0)
    if case in MODELS:
        arch, batch, size, train = MODELS[case]
        options = {"shortcut": "B"} if arch == "resnet20" else {}      # projection shortcuts, as the torch twin
        model = models.get_model(arch, num_classes=10 if size == 32 else 1000, **options)
        macs = tinyres.summary(model, (3, size, size)).total_macs * batch * (3 if train else 1)
        x = tinyres.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
        if not train:
            model.eval()
            return (lambda: _no_grad(tinyres.no_grad, model, x)), macs
        y = tinyres.tensor(np.arange(batch) % 10)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step, macs
    op, shape, part = OPS[case]
    x = tinyres.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    if op == "conv2d":
        w = nn.Parameter(tinyres.tensor(rng.standard_normal((shape[1], shape[1], 3, 3)).astype(np.float32)))
        return _forward_or_backward(lambda: F.conv2d(x, w, padding=1), part, lambda y: tinyres.ones(*y.shape)), \
            math.prod(shape) * shape[1] * 9 * (2 if part == "backward" else 1)
    fn = {"batch_norm": lambda: F.batch_norm(x, None, None, training=True),
          "relu": lambda: F.relu(x),
          "max_pool2d": lambda: F.max_pool2d(x, 3, 2, 1),
          "cross_entropy": lambda: F.cross_entropy(x, tinyres.tensor(np.arange(shape[0]) % shape[1]))}[op]
    return _forward_or_backward(fn, part, lambda y: tinyres.ones(*y.shape)), 0


def build_torch(case):
    """(step function, multiply-adds per step) for PyTorch, on the same shapes."""
    import numpy as np
    import torch
    import torch.nn.functional as TF
    sys.path.insert(0, str(HERE.parent / "tests"))
    from torch_resnet import TorchResNet
    rng = np.random.default_rng(0)
    if case in MODELS:
        arch, batch, size, train = MODELS[case]
        classes = 10 if size == 32 else 1000
        model = {"resnet20": lambda: TorchResNet([3, 3, 3], False, classes, 3, cifar=True, shortcut="B"),
                 "resnet18": lambda: TorchResNet([2, 2, 2, 2], False, classes, 3),
                 "resnet50": lambda: TorchResNet([3, 4, 6, 3], True, classes, 3)}[arch]()
        x = torch.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
        if not train:
            model.eval()
            return (lambda: _no_grad(torch.no_grad, model, x)), 0
        y = torch.tensor(np.arange(batch) % 10)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def step():
            loss = TF.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step, 0
    op, shape, part = OPS[case]
    x = torch.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    if op == "conv2d":
        w = torch.tensor(rng.standard_normal((shape[1], shape[1], 3, 3)).astype(np.float32), requires_grad=True)
        return _forward_or_backward(lambda: TF.conv2d(x, w, padding=1), part, torch.ones_like), 0
    fn = {"batch_norm": lambda: TF.batch_norm(x, None, None, training=True),
          "relu": lambda: TF.relu(x),
          "max_pool2d": lambda: TF.max_pool2d(x, 3, 2, 1),
          "cross_entropy": lambda: TF.cross_entropy(x, torch.tensor(np.arange(shape[0]) % shape[1]))}[op]
    return _forward_or_backward(fn, part, torch.ones_like), 0


def _no_grad(no_grad, model, x):
    with no_grad():
        return model(x)


def _forward_or_backward(fn, part, ones):
    """A step that runs ``fn`` forward, forward and backward, or (timed) backward only: for
    "backward" the forward runs untimed, in a setup the timer excludes."""
    if part == "forward":
        return fn
    if part == "both":
        return lambda: _backward(fn(), ones)
    pending = []

    class BackwardOnly:
        def __call__(self):
            _backward(pending.pop(), ones)
    step = BackwardOnly()
    step.setup = lambda: pending.append(fn())
    return step


def _backward(y, ones):
    y.backward(ones(y))


def worker(framework, case, steps):
    """Measure one case in this process; print one JSON line."""
    import resource
    step, macs = (build_tinyres if framework == "tinyres" else build_torch)(case)
    setup = getattr(step, "setup", None)
    if setup is None:
        seconds = time_steps(step, steps)
    else:
        times = []
        for k in range(steps + 2):
            setup()
            start = time.perf_counter()
            step()
            if k >= 2:
                times.append(time.perf_counter() - start)
        seconds = median(times)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "macs": macs, "rss_mb": rss_mb}))


# ---------------------------------------------------------------------- the driver

def run_worker(framework, case, steps, trees=None):
    """One case in a fresh process.  ``tinyres@REV`` runs tinyres as it was at git revision
    REV, from its worktree in ``trees`` (the same worker code, the old package)."""
    env = dict(os.environ)
    if "@" in framework:
        env["PYTHONPATH"] = str(trees[framework])
    out = subprocess.run([sys.executable, __file__, "--worker", framework.split("@")[0], case, "--steps", str(steps)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{framework} / {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_available():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per process (after 2 warm-ups)")
    ap.add_argument("--cases", default="", help="only the cases whose name contains this text")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--against", metavar="REV", help="compare with tinyres at git revision REV instead of "
                    "PyTorch, alternating in one run (a temporary git worktree holds REV)")
    ap.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "CASE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, args.steps)
        return
    cases = [c for c in CASES if args.cases in c]
    frameworks = ["tinyres", "torch"] if torch_available() else ["tinyres"]
    trees = {}
    if args.against:
        import tempfile
        tree = Path(tempfile.mkdtemp()) / "tree"
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(tree), args.against],
                       check=True, capture_output=True)
        frameworks = ["tinyres", f"tinyres@{args.against}"]
        trees[frameworks[1]] = tree
    results = {(f, c): [] for f in frameworks for c in cases}
    try:
        for r in range(args.rounds):
            for case in cases:
                for framework in (frameworks if r % 2 == 0 else frameworks[::-1]):
                    results[framework, case].append(run_worker(framework, case, args.steps, trees))
                    print(f"round {r + 1}/{args.rounds}: {framework:<7} {case}: "
                          f"{results[framework, case][-1]['seconds'] * 1e3:.1f} ms", file=sys.stderr)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    if args.json:
        Path(args.json).write_text(json.dumps({f"{f} | {c}": v for (f, c), v in results.items()}, indent=1))
    print_table(cases, frameworks, results, args)


def print_table(cases, frameworks, results, args):
    both = len(frameworks) == 2
    other = frameworks[-1]
    head = ["case", "tinyres ms"] + ([f"{other} ms", "ratio"] if both else []) + ["tinyres GFLOP/s"] + \
        ([f"{other} GFLOP/s"] if both else []) + ["tinyres MB"] + ([f"{other} MB", "MB ratio"] if both else [])
    rows = []
    for case in cases:
        ours = median([m["seconds"] for m in results["tinyres", case]])
        macs = results["tinyres", case][0]["macs"]
        rss = max(m["rss_mb"] for m in results["tinyres", case])
        flops = lambda s: f"{2 * macs / s / 1e9:.0f}" if macs else ""  # noqa: E731
        row = [case, f"{ours * 1e3:.1f}"]
        if both:
            theirs = median([m["seconds"] for m in results[other, case]])
            their_rss = max(m["rss_mb"] for m in results[other, case])
            row += [f"{theirs * 1e3:.1f}", f"{ours / theirs:.2f}x", flops(ours), flops(theirs), f"{rss:.0f}",
                    f"{their_rss:.0f}", f"{rss / their_rss:.2f}x"]
        else:
            row += [flops(ours), f"{rss:.0f}"]
        rows.append(row)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.rounds} rounds x "
          f"{args.steps} steps, Python {platform.python_version()}")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    for row in [head] + rows:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
