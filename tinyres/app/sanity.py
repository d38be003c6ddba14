"""``tinyres train --sanity``: four checks to run before a long training run.

They catch most broken setups in a minute (a recipe in the spirit of Karpathy's "A Recipe
for Training Neural Networks", 2019, and CS231n's "babysitting the learning process"):

1. **The initial loss is near ln(classes).**  A freshly initialised classifier should be
   unsure: softmax close to uniform, cross-entropy close to ln C (2.303 for 10 classes).
   Far above it, the logits start large (a wrong initialisation or input scale); far below,
   the labels leak into the input or the loss is not what you think.
2. **One batch can be overfit.**  With augmentation and weight decay off, the model must
   drive the loss on one small batch near 0 and its accuracy to 100%.  If it cannot, the
   gradient does not reach the weights (a detached tensor, a frozen layer, a wrong sign).
3. **An LR range test** (Smith 2017, "Cyclical Learning Rates for Training Neural
   Networks", section 3.3): the learning rate grows exponentially from ``lr_min`` to
   ``lr_max`` over ``steps`` steps while the training loss is recorded; the loss falls,
   flattens and then blows up.  A good base learning rate is below the blow-up, where the
   loss still falls steeply.  Plotted to ``lr_range.png``.
4. **The update/weight ratio per layer**: ``||W_after - W_before|| / ||W_before||`` after
   one SGD step at the run's learning rate.  Around 1e-3 is the usual rule of thumb
   (CS231n); far below, the layer barely learns; far above (1e-1), it is rewritten each step.

Each check starts from the same initial weights, so their order does not matter.  Writes
``sanity.json`` (and ``lr_range.png`` with matplotlib) into the run folder and returns 0
when every check passed, 1 otherwise.
"""
import json
import math
from pathlib import Path

import numpy

from .. import optim
from ..nn import functional as F

INITIAL_LOSS_RANGE = (0.75, 1.35)   # loss / ln(C) at initialisation considered fine
OVERFIT_LOSS = 0.05                 # the loss on the one batch must fall below this
RATIO_RANGE = (1e-4, 3e-2)          # update/weight ratio outside it: flagged


def _snapshot(model):
    return {name: t.numpy() for name, t in model.state_dict().items()}


def _restore(model, snapshot):
    from ..core.tensor import tensor
    model.load_state_dict({name: tensor(a) for name, a in snapshot.items()})


def initial_loss(model, batches, num_classes):
    """The mean cross-entropy over ``batches`` (a list of (images, labels)) in training mode
    (as the first step sees it), against ln(num_classes)."""
    from ..core.grad_mode import no_grad
    model.train()
    with no_grad():
        losses = [float(F.cross_entropy(model(x), y).item()) for x, y in batches]
    loss, expected = float(numpy.mean(losses)), math.log(num_classes)
    low, high = INITIAL_LOSS_RANGE
    return {"loss": loss, "ln_classes": expected, "ratio": loss / expected, "ok": bool(low <= loss / expected <= high)}


def overfit_one_batch(model, images, labels, steps=200, lr=0.01):
    """Train on one batch only (SGD momentum 0.9, no weight decay): its loss and accuracy
    at the end, and the loss every 10 steps."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    curve = []
    for step in range(steps):
        loss = F.cross_entropy(model(images), labels)
        if step % 10 == 0:
            curve.append(float(loss.item()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    logits = model(images)
    final = float(F.cross_entropy(logits, labels).item())
    accuracy = float((logits.numpy().argmax(axis=1) == labels.numpy()).mean())
    return {"steps": steps, "lr": lr, "batch": len(labels), "final_loss": final, "accuracy": accuracy,
            "curve": curve, "ok": bool(final < OVERFIT_LOSS and accuracy == 1.0)}


def lr_range_test(model, batches, lr_min=1e-5, lr_max=10.0, steps=100, momentum=0.9, weight_decay=0.0):
    """Smith's range test: lr_min * (lr_max / lr_min) ** (t / (steps - 1)) at step t; stops
    early when the smoothed loss exceeds 4x its minimum.  Returns the learning rates, the
    raw and smoothed losses, and a suggestion: the lr in the middle of the steepest fall of
    the smoothed loss (over a tenth of the steps), before its minimum."""
    optimizer = optim.SGD(model.parameters(), lr=lr_min, momentum=momentum, weight_decay=weight_decay)
    model.train()
    lrs, raw, smooth, average = [], [], [], 0.0
    for t in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (t / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = batches[t % len(batches)]
        loss = F.cross_entropy(model(images), labels)
        value = float(loss.item())
        if not math.isfinite(value):
            break
        average = 0.9 * average + 0.1 * value                  # fast.ai's smoothing, bias-corrected
        lrs.append(lr), raw.append(value), smooth.append(average / (1 - 0.9 ** (t + 1)))
        if smooth[-1] > 4 * min(smooth):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    best = int(numpy.argmin(smooth))
    # the steepest fall, measured over a window of a tenth of the steps (one step's change is noise),
    # among the windows that end at or before the minimum; the first window is left out (the
    # average is still settling there, on the first batches' losses alone)
    k = max(1, steps // 10)
    falls = [(smooth[t + k] - smooth[t], t) for t in range(k, best - k + 1)]
    steepest = min(falls)[1] + k // 2 if falls else best
    return {"lrs": lrs, "losses": raw, "smoothed": smooth, "min_loss_lr": lrs[best],
            "steepest_lr": lrs[steepest], "stopped_at_lr": lrs[-1], "ok": bool(best > 0)}


def update_ratios(model, images, labels, lr, momentum=0.9, weight_decay=0.0):
    """||dW|| / ||W|| of every parameter after one SGD step at ``lr`` (one step of momentum SGD
    from rest is a plain step: dW = -lr * (grad + weight_decay * W))."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    model.train()
    before = {name: p.numpy() for name, p in model.named_parameters()}
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    rows = []
    for name, p in model.named_parameters():       # a parameter that starts at 0 (a BN bias) has no ratio
        w = before[name]
        norm = numpy.linalg.norm(w)
        ratio = float(numpy.linalg.norm(p.numpy() - w) / norm) if norm > 0 else None
        rows.append({"parameter": name, "ratio": ratio,
                     "ok": bool(ratio is None or RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1])})
    return rows


def plot_lr_range(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(result["lrs"], result["losses"], alpha=0.3, label="loss")
    ax.semilogx(result["lrs"], result["smoothed"], label="smoothed loss")
    ax.axvline(result["steepest_lr"], ls="--", color="k", label=f"steepest fall: lr {result['steepest_lr']:.2g}")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run(model, loader, num_classes, lr, out_dir, momentum=0.9, weight_decay=0.0, say=print,
        overfit_batch=16, overfit_steps=200, range_steps=100):
    """The four checks on ``model`` with batches from ``loader``; prints them and writes
    ``sanity.json`` and ``lr_range.png`` into ``out_dir``.  Returns 0 if all passed, else 1."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = _snapshot(model)
    iterator = iter(loader)
    batches = [next(iterator) for _ in range(min(len(loader), 4))]
    report = {}

    report["initial_loss"] = r = initial_loss(model, batches, num_classes)
    say(f"1. initial loss {r['loss']:.3f}, ln({num_classes}) = {r['ln_classes']:.3f} (ratio {r['ratio']:.2f}): "
        + ("ok" if r["ok"] else f"SUSPICIOUS: expected a ratio in {INITIAL_LOSS_RANGE}; check the "
           "initialisation, the input normalisation and the labels"))

    images, labels = batches[0]
    images, labels = images[:overfit_batch], labels[:overfit_batch]
    _restore(model, start)
    report["overfit_one_batch"] = r = overfit_one_batch(model, images, labels, steps=overfit_steps)
    say(f"2. overfit one batch of {r['batch']}: loss {r['final_loss']:.4f}, accuracy {r['accuracy']:.3f} after "
        f"{r['steps']} steps at lr {r['lr']}: " + ("ok" if r["ok"] else
        f"FAILED: the loss should fall below {OVERFIT_LOSS} with accuracy 1.0; is the gradient reaching the weights?"))

    _restore(model, start)
    report["lr_range"] = r = lr_range_test(model, batches, steps=range_steps, momentum=momentum,
                                           weight_decay=weight_decay)
    drawn = plot_lr_range(r, out_dir / "lr_range.png")
    say(f"3. LR range test over {len(r['lrs'])} steps: the smoothed loss falls fastest at lr {r['steepest_lr']:.2g}, "
        f"is lowest at {r['min_loss_lr']:.2g}, stopped at {r['stopped_at_lr']:.2g}; your --lr is {lr:g}"
        + (f" (plot: {out_dir / 'lr_range.png'})" if drawn else ""))

    _restore(model, start)
    report["update_ratios"] = rows = update_ratios(model, images, labels, lr, momentum, weight_decay)
    ratios = numpy.array([row["ratio"] for row in rows if row["ratio"] is not None])
    flagged = [row for row in rows if not row["ok"]]
    say(f"4. update/weight ratio after one step at lr {lr:g}: median {numpy.median(ratios):.1e}, "
        f"range {ratios.min():.1e} .. {ratios.max():.1e} over the {len(ratios)} parameters that do not start at 0"
        + (": ok" if not flagged else f"; outside {RATIO_RANGE[0]:.0e} .. {RATIO_RANGE[1]:.0e}: "
           + ", ".join(f"{row['parameter']} {row['ratio']:.1e}" for row in flagged[:6])
           + (f" and {len(flagged) - 6} more" if len(flagged) > 6 else "")))
    _restore(model, start)

    passed = report["initial_loss"]["ok"] and report["overfit_one_batch"]["ok"] and report["lr_range"]["ok"]
    report["passed"] = bool(passed)
    (out_dir / "sanity.json").write_text(json.dumps(report, indent=1))
    say(f"sanity: {'passed' if passed else 'FAILED'} (update ratios are advice, not a pass/fail); "
        f"figures in {out_dir / 'sanity.json'}")
    return 0 if passed else 1
