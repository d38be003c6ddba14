"""ResNet-20 on CIFAR-10 with the recipe of He et al. 2015 (section 4.2).

    python examples/cifar10_resnet20.py --data-dir ~/data --download --epochs 160
    python examples/cifar10_resnet20.py --quick      # a tiny fake CIFAR-10, a few seconds

The recipe: SGD with lr 0.1, momentum 0.9, weight decay 1e-4, batch 128; the lr divided
by 10 at 50% and 75% of training (the paper: 32k and 48k of 64k iterations, about 160
epochs); augmentation by a random 32x32 crop of the image padded with 4 zeros, and a
random horizontal flip.  The paper reports 8.75% test error for ResNet-20.  This script
spells out what ``tinyres train --model resnet20 --dataset cifar10 --epochs 160`` does.

``--quick`` does not touch the network: it writes a small *fake* CIFAR-10 in the official
format (pickled dicts in ``cifar-10-batches-py/``) to a temporary folder and trains on it,
so every step of the real path -- reading the pickles, the recipe, the Trainer -- runs.
"""
import argparse
import pickle
import tempfile
from pathlib import Path

import numpy

import tinyres
from tinyres import optim
from tinyres.cli import add_training_flags, build_model, build_transform, make_config, open_dataset
from tinyres.data import DataLoader
from tinyres.train import Trainer

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_fake_cifar10(root, per_batch=8, seed=0):
    """Write ``root/cifar-10-batches-py/`` as the official archive unpacks: five training
    batches, ``test_batch`` and ``batches.meta``, each a pickled dict.  ``data`` is uint8
    ``(n, 3072)``: the 1024 red values of an image, then green, then blue (row-major).
    Each fake class is a colour plus noise, so there is something to learn."""
    rng = numpy.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.uniform(40, 215, (10, 3, 1, 1))

    def batch(label):
        labels = rng.integers(0, 10, per_batch)
        images = colours[labels] + rng.normal(0, 30, (per_batch, 3, 32, 32))
        data = images.clip(0, 255).astype(numpy.uint8).reshape(per_batch, 3072)
        return {"batch_label": label, "labels": labels.tolist(), "data": data,
                "filenames": [f"fake_{label.replace(' ', '_')}_{i}.png" for i in range(per_batch)]}

    files = {f"data_batch_{i}": batch(f"training batch {i} of 5") for i in range(1, 6)}
    files["test_batch"] = batch("testing batch 1 of 1")
    files["batches.meta"] = {"label_names": CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    for name, entry in files.items():
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/ (default: $TINYRES_DATA)")
    ap.add_argument("--download", action="store_true", help="fetch CIFAR-10 (163 MB) if it is missing")
    ap.add_argument("--quick", action="store_true", help="a tiny fake CIFAR-10 in a temporary folder, 1 epoch")
    add_training_flags(ap, epochs=160, batch_size=128, lr=0.1)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="tinyres-cifar10-")
    if args.quick:
        args.data_dir = write_fake_cifar10(tempfile.mkdtemp(prefix="tinyres-fake-cifar10-"))
        args.epochs, args.batch_size, args.no_progress = 1, 20, True
        print(f"--quick: training on a FAKE CIFAR-10 (40 train / 8 test images of coloured noise) "
              f"written to {args.data_dir}; the figures mean nothing")
    tinyres.manual_seed(args.seed)

    train_set = open_dataset("cifar10", True, args.data_dir, args.download, args.subset)
    test_set = open_dataset("cifar10", False, args.data_dir, args.download, args.subset)
    config = make_config("resnet20", "cifar10", train_set.classes)   # augment: crop+flip
    model = build_model(config).to(args.device)                      # option A shortcuts, 0.27M parameters
    augment = numpy.random.default_rng(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device,
                              transform=build_transform(config, True, augment))   # RandomCrop(32, 4), flip
    test_loader = DataLoader(test_set, 500, device=args.device, transform=build_transform(config, False))

    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler, epochs=args.epochs,
                      out_dir=out, config=config, augment_generator=augment, seed=args.seed,
                      progress=not args.no_progress)
    print(f"resnet20 on CIFAR-10: {len(train_set)} train / {len(test_set)} test images, "
          f"{args.epochs} epoch(s) on {args.device}, lr {args.lr} divided by 10 after epochs {milestones}")
    if args.resume:   # exact: the same weights, bit for bit, as a run never stopped
        print(f"resumed {out} after epoch {trainer.resume()}")
    history = trainer.fit()
    print(f"test accuracy: {history[-1]['test_accuracy']:.4f} (paper: 0.9125)")
    print(f"run folder: {out}  (continue it with: --out {out} --resume)")


if __name__ == "__main__":
    main()
