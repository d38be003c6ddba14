"""ResNet-20 on MNIST with tinyres's Trainer.

    python examples/mnist_resnet.py --data-dir ~/data --download   # the full MNIST
    python examples/mnist_resnet.py --bundled                      # offline: the bundled 10k digits
    python examples/mnist_resnet.py --quick                        # a few seconds, a smoke test

What it shows: the pieces a training run is made of -- a dataset, a preprocessing that
is recorded in the run's ``config`` (so ``tinyres eval`` can rebuild it from the
checkpoint), a DataLoader, a model, SGD with a OneCycle schedule -- handed to ``Trainer``,
which trains, evaluates, and writes ``checkpoint.npz``, ``metrics.jsonl`` and plots.
"""
import argparse
import sys
import tempfile

import numpy

import tinyres
from tinyres import optim
from tinyres.recipes import add_training_flags, build_model, build_transform, make_config, open_dataset
from tinyres.data import DataLoader
from tinyres.train import Trainer


def open_mnist(args):
    """``(name, train set, test set)``: MNIST if it is found (or downloaded), else the
    bundled split when --bundled is given."""
    if not args.quick:
        try:
            return ("mnist", open_dataset("mnist", True, args.data_dir, args.download, args.subset),
                    open_dataset("mnist", False, args.data_dir, args.download, args.subset))
        except tinyres.UserError as e:
            if not args.bundled:
                sys.exit(f"{e}\nOr pass --bundled to train on the 10,000 digits that ship with tinyres.")
            print("MNIST not found: using the bundled split (8,500 train / 1,500 test digits)")
    return ("bundled", open_dataset("bundled", True, subset=args.subset),
            open_dataset("bundled", False, subset=args.subset))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="folder holding MNIST (default: $TINYRES_DATA)")
    ap.add_argument("--download", action="store_true", help="fetch MNIST if it is missing")
    ap.add_argument("--bundled", action="store_true", help="fall back to the bundled digits if MNIST is absent")
    ap.add_argument("--quick", action="store_true", help="bundled digits, 32 images, 1 epoch")
    add_training_flags(ap, epochs=4, batch_size=128, lr=0.1)    # --lr: the peak of the OneCycle schedule
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.batch_size, args.no_progress = 1, 16, True
    out = args.out or tempfile.mkdtemp(prefix="tinyres-mnist-")
    tinyres.manual_seed(args.seed)

    name, train_set, test_set = open_mnist(args)
    if args.quick:   # 32 images spread evenly through each split (the bundled file is grouped by class)
        for data in (train_set, test_set):
            data.data, data.targets = data.data[::len(data) // 32][:32], data.targets[::len(data) // 32][:32]

    # The config records the model and the preprocessing (normalisation, no augmentation
    # for digits); build_model and build_transform turn it into objects.
    config = make_config("resnet20", name, train_set.classes)
    model = build_model(config).to(args.device)      # resnet20(num_classes=10, in_channels=1)
    augment = numpy.random.default_rng(args.seed)    # random transforms draw from this
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device,
                              transform=build_transform(config, True, augment))
    test_loader = DataLoader(test_set, 500, device=args.device, transform=build_transform(config, False))

    # SGD with momentum; OneCycle warms the lr up to --lr, then anneals it, once per batch.
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                              steps_per_epoch=len(train_loader))
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler, epochs=args.epochs,
                      out_dir=out, config=config, scheduler_step="batch", augment_generator=augment,
                      seed=args.seed, progress=not args.no_progress)
    if args.resume:
        print(f"resumed {out} after epoch {trainer.resume()}")
    print(f"training resnet20 on {name}: {len(train_set)} train / {len(test_set)} test images, "
          f"{args.epochs} epoch(s) on {args.device}")
    history = trainer.fit()
    print(f"test accuracy: {history[-1]['test_accuracy']:.4f}")
    print(f"run folder: {out}  (evaluate it with: tinyres eval {out}/checkpoint.npz)")


if __name__ == "__main__":
    main()
