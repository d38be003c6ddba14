"""Where a tinyres training step spends its time, by op type: wall-clock seconds of every
Function's forward and backward (the threads included: each op waits for its own).

    python benchmarks/profile_step.py                          # resnet20, batch 128
    python benchmarks/profile_step.py --model resnet18 --batch 32 --size 64
    python benchmarks/profile_step.py --model resnet50 --batch 8 --size 224 --inference

The rest of the step ("other": the optimizer, the engine's bookkeeping, Python) is the
step's time minus the ops'.  docs/performance.md shows this table before and after the
speed work.
"""
import argparse
import time
from collections import defaultdict

import numpy as np

import tinyres
from tinyres import autograd, models, optim
from tinyres.nn import functional as F


def timed_functions(totals):
    """Wrap every Function subclass's forward and backward to add their wall time to ``totals``."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    for cls in set(subclasses(autograd.Function)):
        for method in ("forward", "backward"):
            if method not in vars(cls):
                continue

            def timed(self, *args, _inner=vars(cls)[method], _key=(cls.__name__, method), **kwargs):
                start = time.perf_counter()
                try:
                    return _inner(self, *args, **kwargs)
                finally:
                    totals[_key] += time.perf_counter() - start
            setattr(cls, method, timed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--inference", action="store_true", help="time model(x) in eval mode under no_grad")
    args = ap.parse_args()
    options = {"shortcut": "B"} if args.model == "resnet20" else {}
    model = models.get_model(args.model, num_classes=10, **options)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    x = tinyres.tensor(rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32))
    y = tinyres.tensor(np.arange(args.batch) % 10)

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
    for _ in range(2):
        step()
    totals = defaultdict(float)
    timed_functions(totals)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    total = (time.perf_counter() - start) / args.steps
    rows = sorted(((v / args.steps, k) for k, v in totals.items()), reverse=True)
    print(f"{args.model} {'inference' if args.inference else 'training'}, batch {args.batch}, "
          f"{args.size}x{args.size}: {total * 1e3:.0f} ms per step, "
          f"{tinyres.get_num_threads()} threads")
    print("| op | pass | ms per step | share |\n|---|---|---:|---:|")
    for seconds, (name, method) in rows:
        if seconds >= 0.0005:
            print(f"| {name} | {method} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")
    other = total - sum(s for s, _ in rows)
    print(f"| other (optimizer, engine, Python) | | {other * 1e3:.1f} | {other / total:.0%} |")


if __name__ == "__main__":
    main()
