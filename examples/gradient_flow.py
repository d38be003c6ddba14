"""Gradient flow, measured: the norm of every layer's weight gradient, at initialisation and
after one epoch of training, for plain and residual networks with and without batch norm.

    python examples/gradient_flow.py --data-dir ~/data/cifar10-jpg/train --out docs/results/gradient-flow
    python examples/gradient_flow.py --data-dir ~/data/cifar10-jpg/train --images 12800   # 100 steps
    python examples/gradient_flow.py --quick        # a tiny fake image folder, seconds

For each model (default: plain20, plain56, resnet20, resnet56, and the same four with
every BatchNorm2d replaced by an identity, "-nobn"):

1. Build it from the seed (Kaiming-normal fan_out convolutions, BN weight 1, bias 0).
2. Measure: one forward and backward of the mean cross-entropy on a fixed *measurement
   batch* (``--measure`` training images, not augmented, in training mode so BN uses the
   batch's statistics) and record ``||dL/dW||`` and ``||W||`` of every convolution and of
   the linear head, input to output.
3. Train one epoch: one pass over the training images not in the measurement batch (49,744
   of the 50,000, shuffled; ``--images N`` takes a seeded N of them instead), batch
   ``--batch-size`` 128, SGD lr 0.1, momentum 0.9, weight decay 1e-4, random crop and flip --
   the start of the paper's recipe (the models without BN at ``--nobn-lr`` 0.01: at 0.1 they
   diverge within a few steps).  That is 389 steps; the figure and the printout give the
   count (the JSON calls it ``after_epoch``).  The committed run took 2 h 35 min of CPU
   time (with and without BN side by side, one core each: 1 h 32 min for the longer).
4. Measure again on the same batch.

Writes ``gradient_flow.json`` (every norm, the training losses) and ``gradient_flow.png``
(gradient norm against layer, log scale, at initialisation and after the steps, and the
training loss of every step; with BN on top, without below) into ``--out``.  A model whose
loss becomes NaN or infinite stops training; its curve after the steps is then left out and
the JSON says so.  The figure is drawn from the JSON alone (``plot``), so it can be drawn
again without training.
"""
import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy

import tinyres
from tinyres import nn, optim
from tinyres.nn import functional as F
from tinyres.data import DataLoader, ImageFolder, transforms

from cifar10_resnet20 import write_fake_image_folder

MODELS = ["plain20", "plain56", "resnet20", "resnet56", "plain20-nobn", "plain56-nobn", "resnet20-nobn", "resnet56-nobn"]


def without_batch_norm(model):
    """``model`` with every BatchNorm2d replaced by an identity (in place; returned)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, nn.Identity())
    return model


def build(name, seed):
    tinyres.manual_seed(seed)
    model = tinyres.models.get_model(name.removesuffix("-nobn"), num_classes=10)
    return without_batch_norm(model) if name.endswith("-nobn") else model


def weighted_layers(model):
    """(name, weight) of every convolution and linear layer, in the order they run."""
    return [(name, p) for name, p in model.named_parameters() if name.endswith("weight") and p.ndim in (2, 4)]


def measure(model, images, labels):
    """Per layer: the norms of the weight gradient and of the weight on one batch, and the loss."""
    model.train()
    for p in model.parameters():
        p.grad = None
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    rows = [{"layer": name, "grad_norm": float(numpy.linalg.norm(p.grad.numpy())),
             "weight_norm": float(numpy.linalg.norm(p.numpy()))} for name, p in weighted_layers(model)]
    for p in model.parameters():
        p.grad = None
    return {"loss": float(loss.item()), "layers": rows}


def train_one_epoch(model, loader, lr):
    """SGD over ``loader`` once; the loss of every step (stops at the first non-finite one)."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    model.train()
    losses = []
    for images, labels in loader:
        loss = F.cross_entropy(model(images), labels)
        losses.append(float(loss.item()))
        if not math.isfinite(losses[-1]):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def steps_run(results):
    """How many training steps the models ran (those that did not diverge ran them all)."""
    return max(len(r["train_losses"]) for r in results.values())


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [("with batch norm", [n for n in results if not n.endswith("-nobn")]),
            ("without batch norm", [n for n in results if n.endswith("-nobn")])]
    rows = [r for r in rows if r[1]]
    steps = steps_run(results)
    fig, axes = plt.subplots(len(rows), 3, figsize=(16, 4 * len(rows)), squeeze=False)
    for (title, names), ax_row in zip(rows, axes):
        for name in names:                         # the training loss: which model learned at all
            losses = results[name]["train_losses"]
            ax_row[2].plot(range(1, len(losses) + 1), losses, "--" if name.startswith("plain") else "-", label=name)
        ax_row[2].set_ylim(1.0, 4.0)
        ax_row[2].set_title(f"{title}: training loss over the {steps} steps")
        ax_row[2].set_xlabel("step (batch of 128)")
        ax_row[2].grid(alpha=0.3)
        ax_row[2].legend(fontsize=8)
        for ax, when in zip(ax_row, ("init", "after_epoch")):
            for name in names:
                measured = results[name].get(when)
                if measured is None:
                    continue
                norms = [row["grad_norm"] for row in measured["layers"]]
                style = "--" if name.startswith("plain") else "-"
                ax.semilogy(range(1, len(norms) + 1), norms, style, marker=".", label=name)
            ax.set_title(f"{title}, {'at initialisation' if when == 'init' else f'after {steps} steps'}")
            ax.set_xlabel("layer (input to output; the last is the linear head)")
            ax.set_ylabel("||dL/dW|| on the measurement batch")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="CIFAR-10's train/ as a folder of class folders")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--images", type=int, default=None,
                    help="training images, each seen once (default: all but the measurement batch, one epoch)")
    ap.add_argument("--measure", type=int, default=256, help="images in the fixed measurement batch")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--nobn-lr", type=float, default=0.01,
                    help="the learning rate of the models without batch norm (default 0.01)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="a tiny fake image folder, plain20 and resnet20")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tinyres-gradient-flow-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.data_dir = write_fake_image_folder(tempfile.mkdtemp(prefix="tinyres-fake-cifar10-"))
        args.models, args.images, args.measure, args.batch_size = ["plain20", "resnet20-nobn"], 40, 20, 20
        print("--quick: a FAKE image folder of coloured noise; the figures mean nothing")
    if args.data_dir is None:
        ap.error("--data-dir: the folder with one subfolder of images per class (or --quick)")
    data = ImageFolder(args.data_dir)
    order = numpy.random.default_rng(args.seed).permutation(len(data))
    measure_set, train_set = data.subset(order[:args.measure]), data.subset(order[args.measure:][:args.images])
    normalize = transforms.Normalize(transforms.CIFAR10_MEAN, transforms.CIFAR10_STD)
    m_images, m_labels = next(iter(DataLoader(measure_set, len(measure_set), transform=normalize)))
    print(f"{len(train_set)} training images, each seen once (batch {args.batch_size}), "
          f"{len(measure_set)} in the measurement batch")
    results = {}
    for name in args.models:
        start = time.perf_counter()
        model = build(name, args.seed)
        result = {"init": measure(model, m_images, m_labels)}
        augment = numpy.random.default_rng(args.seed)
        loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                            transform=transforms.Compose([transforms.RandomCrop(32, padding=4, generator=augment),
                                                          transforms.RandomHorizontalFlip(generator=augment),
                                                          normalize]))
        lr = args.nobn_lr if name.endswith("-nobn") else args.lr
        result["lr"] = lr
        result["train_losses"] = losses = train_one_epoch(model, loader, lr)
        after = measure(model, m_images, m_labels)
        if all(math.isfinite(v) for v in losses) and math.isfinite(after["loss"]):
            result["after_epoch"] = after
        else:                   # the weights are NaN or inf: nothing to draw after the steps
            result["diverged_at_step"] = len(losses)
        result["seconds"] = time.perf_counter() - start
        results[name] = result
        init = [row["grad_norm"] for row in result["init"]["layers"]]
        after = result.get("after_epoch")
        print(f"{name}: init loss {result['init']['loss']:.3f}, first/last layer grad norm {init[0]:.3g}/{init[-1]:.3g}"
              + (f"; after {len(losses)} steps loss {after['loss']:.3f}, first/last "
                 f"{after['layers'][0]['grad_norm']:.3g}/{after['layers'][-1]['grad_norm']:.3g}" if after else
                 f"; DIVERGED at step {len(losses)}") + f" ({result['seconds']:.0f} s)")
        settings = {k: getattr(args, k) for k in ("images", "measure", "batch_size", "lr", "nobn_lr", "seed")}
        (out / "gradient_flow.json").write_text(json.dumps({"settings": settings, "models": results}, indent=1))
    drawn = plot(results, out / "gradient_flow.png")
    print(f"figure: {out / 'gradient_flow.png'}" if drawn else "(matplotlib is not installed: no figure)")


if __name__ == "__main__":
    main()
