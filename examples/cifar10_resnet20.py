"""ResNet-20 on the 50,000 CIFAR-10 training images as JPEG files, on a CPU.

    tar xzf ../shared/data/cifar10-jpg/train.tar.gz -C ~/data/cifar10-jpg     # train/<class>/*.jpg
    python examples/cifar10_resnet20.py --data-dir ~/data/cifar10-jpg/train --out runs/resnet20-cifar10-jpg
    python examples/cifar10_resnet20.py --quick      # a tiny fake image folder, a few seconds

The data: an ``ImageFolder`` (one folder per class), of which 5,000 images (500 per class,
drawn with the seed) are held out for validation -- the paper's 45k/5k split; the
remaining 45,000 are the training set.  The recipe, chosen for a CPU budget of a little
over two hours on 2 cores (40 epochs instead of the paper's 160): SGD with Nesterov
momentum 0.9, weight decay 5e-4, batch 128, the learning rate on a one-cycle schedule up to
0.2 and down to ~0, label smoothing 0.1; augmentation by a random 32x32 crop of the image
padded with 4 zeros and a random horizontal flip; per-channel normalisation with the
training images' mean and std.  The paper's ResNet-20 (160 epochs on the original PNG-quality
images) reaches 91.25% on the test set.  This script spells out what

    tinyres train --model resnet20 --dataset imagefolder --data-dir DIR --val-split 5000 --epochs 40 \\
        --schedule onecycle --lr 0.2 --nesterov --weight-decay 5e-4 --label-smoothing 0.1

does, step by step.  ``--quick`` writes a small fake image folder (coloured noise as JPEGs)
to a temporary folder and trains on it, so every step of the real path runs offline.
"""
import argparse
import tempfile
from pathlib import Path

import numpy

import tinyres
from tinyres import optim
from tinyres.recipes import add_training_flags, build_model, build_transform, make_config, split_off_validation
from tinyres.data import DataLoader, ImageFolder
from tinyres.train import Trainer

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_fake_image_folder(root, per_class=6, seed=0):
    """``root/<class>/<i>.jpg``: for each CIFAR-10 class, ``per_class`` 32x32 JPEGs of one
    colour plus noise, so there is something to learn."""
    from PIL import Image
    rng = numpy.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        colour = rng.uniform(40, 215, 3)
        for i in range(per_class):
            pixels = (colour + rng.normal(0, 30, (32, 32, 3))).clip(0, 255).astype(numpy.uint8)
            Image.fromarray(pixels).save(Path(root) / name / f"{i:04d}.jpg")
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the folder of class folders (train/ of the tarball)")
    ap.add_argument("--val-split", type=int, default=5000, help="training images held out for validation")
    ap.add_argument("--quick", action="store_true", help="a tiny fake image folder in a temporary folder, 1 epoch")
    add_training_flags(ap, epochs=40, batch_size=128, lr=0.2)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="tinyres-cifar10-")
    if args.quick:
        args.data_dir = write_fake_image_folder(tempfile.mkdtemp(prefix="tinyres-fake-cifar10-"))
        args.epochs, args.batch_size, args.val_split, args.no_progress = 1, 20, 10, True
        print(f"--quick: training on a FAKE image folder (60 JPEGs of coloured noise) written to "
              f"{args.data_dir}; the figures mean nothing")
    if args.data_dir is None:
        ap.error("--data-dir: the folder with one subfolder of images per class (or --quick)")
    tinyres.manual_seed(args.seed)

    images = ImageFolder(args.data_dir)              # decoded once, then read from its cache
    train_set, val_set = split_off_validation(images, args.val_split, args.seed)   # stratified, seeded
    config = make_config("resnet20", "imagefolder", train_set.classes, train_set=train_set)  # mean/std measured
    config["train"] = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "schedule": "onecycle",
                       "nesterov": True, "weight_decay": 5e-4, "label_smoothing": 0.1, "val_split": args.val_split,
                       "seed": args.seed}
    model = build_model(config).to(args.device)      # option A shortcuts, 0.27M parameters
    augment = numpy.random.default_rng(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device,
                              transform=build_transform(config, True, augment))   # RandomCrop(32, 4), flip
    val_loader = DataLoader(val_set, 500, device=args.device, transform=build_transform(config, False))

    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                              steps_per_epoch=len(train_loader))
    trainer = Trainer(model, optimizer, train_loader, val_loader, scheduler, epochs=args.epochs, out_dir=out,
                      config=config, scheduler_step="batch", augment_generator=augment, seed=args.seed,
                      progress=not args.no_progress, label_smoothing=0.1)
    print(f"resnet20 on {args.data_dir}: {len(train_set)} train / {len(val_set)} validation images, "
          f"{args.epochs} epoch(s) on {args.device}, one-cycle lr up to {args.lr}")
    if args.resume:   # exact: the same weights, bit for bit, as a run never stopped
        print(f"resumed {out} after epoch {trainer.resume()}")
    history = trainer.fit()
    print(f"validation accuracy: {history[-1]['test_accuracy']:.4f} (the paper's test accuracy: 0.9125)")
    print(f"run folder: {out}  (continue it with: --out {out} --resume)")


if __name__ == "__main__":
    main()
