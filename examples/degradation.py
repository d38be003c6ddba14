"""The degradation problem (He et al. 2015, section 4.2 and Figure 6): a deeper *plain*
network trains to a higher error than a shallower one, while the residual versions of the
same two depths do not degrade.

    python examples/degradation.py --data-dir ~/data/cifar10-jpg/train --epochs 8 --out runs/degradation
    python examples/degradation.py --data-dir ~/data/cifar10-jpg/train --epochs 8 --out runs/degradation \
        --resume                                 # continue a stopped run (the same flags)
    python examples/degradation.py --quick       # a tiny fake image folder, seconds

Trains plain-20, plain-56, ResNet-20 and ResNet-56 on the same images, with the same
recipe, seed and number of epochs (the budget): SGD with momentum 0.9, weight decay 1e-4,
batch 128, lr 0.1 divided by 10 at 50% and 75% of training (the paper's 32k and 48k of 64k),
random crop and flip.  The models take turns, one epoch each, so that the four curves grow
together; after every round the script writes ``degradation.png`` (training error dashed,
validation error solid, plain networks left and residual right, as the paper's Figure 6)
and ``histories.json``, and at the end prints the final errors as a Markdown table.  Each
model's run folder (``--out``/<model>/) keeps its checkpoint and metrics.jsonl: a long run
stopped at any point continues with ``--resume`` (the same flags; others are refused),
losing at most the epoch in progress.

Whether degradation shows depends on the budget.  The paper trains each model for 64,000
iterations of batch 128 (lr 0.1, divided by 10 at 32k and 48k) on all 50,000 training
images -- about 164 epochs -- and plots *test* error in Figure 6; it chose that schedule on
a 45k/5k train/validation split.  Here the default is 45,000 training images (5,000 held
out for validation, whose error is plotted), so an epoch is 352 iterations: ``--epochs 10``
(the default) is 3,520 iterations per model, 5.5% of the paper's, and the committed run in
docs/resnet.md (``--epochs 8``) is 2,816.  Matching the paper's iteration count on 45k
images takes ``--epochs 182``; on a CPU a short budget may stop before the curves separate.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy

import tinyres
from tinyres import optim
from tinyres.recipes import add_training_flags, build_model, build_transform, make_config, split_off_validation
from tinyres.data import DataLoader, ImageFolder
from tinyres.serialization import atomic_write
from tinyres.train import CHECKPOINT, Trainer, load_run

from cifar10_resnet20 import write_fake_image_folder

MODELS = ["plain20", "plain56", "resnet20", "resnet56"]


def make_trainer(name, train_set, val_set, args, out):
    """A Trainer for ``name`` with the shared recipe, continued from its checkpoint on --resume."""
    tinyres.manual_seed(args.seed)
    config = make_config(name, "imagefolder", train_set.classes, train_set=train_set)
    config["budget"] = budget = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                 "seed": args.seed, "training_images": len(train_set), "val_split": args.val_split}
    model = build_model(config)
    augment = numpy.random.default_rng(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                              transform=build_transform(config, True, augment))
    val_loader = DataLoader(val_set, 500, transform=build_transform(config, False))
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    trainer = Trainer(model, optimizer, train_loader, val_loader, scheduler, epochs=args.epochs, out_dir=out / name,
                      config=config, augment_generator=augment, seed=args.seed, progress=not args.no_progress)
    if args.resume and (out / name / CHECKPOINT).exists():
        theirs = load_run(out / name / CHECKPOINT)["config"].get("budget")
        if theirs != budget:     # another schedule (its milestones come back with it) or other images
            raise SystemExit(f"degradation.py --resume: {out / name} was trained with {theirs}, this call asks "
                             f"for {budget}; give the same flags, or another --out")
        print(f"{name}: resumed after epoch {trainer.resume()}")
    return trainer


def plot(histories, path):
    """Figure 6's layout: plain networks left, residual right; training error dashed."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, family in zip(axes, ("plain", "resnet")):
        for name, history in histories.items():
            if not name.startswith(family):
                continue
            epochs = [row["epoch"] for row in history]
            line, = ax.plot(epochs, [100 * (1 - row["train_accuracy"]) for row in history], "--", label=f"{name} train")
            ax.plot(epochs, [100 * (1 - row["test_accuracy"]) for row in history], "-", color=line.get_color(),
                    label=f"{name} validation")
        ax.set_title("plain networks" if family == "plain" else "residual networks")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="a folder of class folders (CIFAR-10's train/ as JPEG files)")
    ap.add_argument("--val-split", type=int, default=5000, help="training images held out for validation")
    ap.add_argument("--models", nargs="+", default=MODELS, help="which models, in order (default: all four)")
    ap.add_argument("--quick", action="store_true", help="a tiny fake image folder, 1 epoch, plain20 and resnet20")
    add_training_flags(ap, epochs=10, batch_size=128, lr=0.1)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tinyres-degradation-"))
    if args.quick:
        args.data_dir = write_fake_image_folder(tempfile.mkdtemp(prefix="tinyres-fake-cifar10-"))
        args.epochs, args.batch_size, args.val_split, args.no_progress = 1, 20, 10, True
        args.models = ["plain20", "resnet20"]
        print("--quick: a FAKE image folder of coloured noise; the figures mean nothing")
    if args.data_dir is None:
        ap.error("--data-dir: the folder with one subfolder of images per class (or --quick)")
    images = ImageFolder(args.data_dir)
    train_set, val_set = split_off_validation(images, args.val_split, args.seed)
    if args.subset is not None:                      # a smaller budget: part of the training images
        keep = numpy.linspace(0, len(train_set) - 1, min(args.subset, len(train_set))).astype(numpy.int64)
        train_set = train_set.subset(keep)
    print(f"{len(train_set)} training / {len(val_set)} validation images, {args.epochs} epochs each")
    trainers = {name: make_trainer(name, train_set, val_set, args, out) for name in args.models}
    for epoch in range(1, args.epochs + 1):          # one epoch each in turn
        for trainer in trainers.values():
            trainer.fit(until=epoch)
        histories = {name: trainer.history for name, trainer in trainers.items()}
        atomic_write(out / "histories.json", lambda f: f.write(json.dumps(histories, indent=1).encode()))
        drawn = plot(histories, out / "degradation.png")
    print(f"figure: {out / 'degradation.png'}" if drawn else "(matplotlib is not installed: no degradation.png)")
    print("| model | final training error (%) | final validation error (%) | training minutes |")
    print("|---|---:|---:|---:|")
    for name, history in histories.items():
        last, minutes = history[-1], sum(row["seconds"] for row in history) / 60
        print(f"| {name} | {100 * (1 - last['train_accuracy']):.2f} | {100 * (1 - last['test_accuracy']):.2f} "
              f"| {minutes:.1f} |")


if __name__ == "__main__":
    main()
