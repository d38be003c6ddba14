"""A small ResNet on Fashion-MNIST, to 90%+ test accuracy on a CPU.

    sudo apt-get install -y dataset-fashion-mnist        # puts it in /usr/share/datasets/fashion-mnist/
    python examples/fashion_mnist.py                     # resnet8, 5 epochs of OneCycle
    python examples/fashion_mnist.py --model resnet20 --epochs 8
    python examples/fashion_mnist.py --quick             # 64 images, 1 epoch: a smoke test

What it shows: a short schedule that still generalises -- OneCycle (the lr warms up to
``--lr`` over the first 30% of the steps, then anneals to almost 0) with SGD + Nesterov
momentum, a +-2 pixel random-crop augmentation -- and what the per-class figures of
``tinyres.train.evaluate`` tell that one accuracy number hides (shirts vs T-shirts).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy

import tinyres
from tinyres import optim
from tinyres.recipes import build_model, build_transform, make_config, open_dataset
from tinyres.data import DataLoader
from tinyres.nn import functional as F
from tinyres.train import evaluate, progress_bar

TARGET = 0.90


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist/",
                    help="folder holding the four *-ubyte(.gz) files")
    ap.add_argument("--download", action="store_true", help="fetch Fashion-MNIST if it is missing")
    ap.add_argument("--model", default="resnet8", help="resnet8 (75,002 parameters with 1 input channel), resnet20, ...")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.2, help="the peak of the OneCycle schedule")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="where the weights go (default: a new temporary folder)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--quick", action="store_true", help="the first 64 training and 64 test images, 1 epoch")
    args = ap.parse_args()
    subset = 64 if args.quick else None
    if args.quick:
        args.epochs, args.batch_size, args.no_progress = 1, 32, True
    out = Path(args.out or tempfile.mkdtemp(prefix="tinyres-fashion-"))
    out.mkdir(parents=True, exist_ok=True)
    tinyres.manual_seed(args.seed)

    try:
        train_set = open_dataset("fashion-mnist", True, args.data_dir, args.download, subset)
        test_set = open_dataset("fashion-mnist", False, args.data_dir, args.download, subset)
    except tinyres.UserError as e:
        sys.exit(f"{e}\nOn Debian/Ubuntu: sudo apt-get install -y dataset-fashion-mnist")

    config = make_config(args.model, "fashion-mnist", train_set.classes)   # augment: random crop, padding 2
    model = build_model(config).to(args.device)
    augment = numpy.random.default_rng(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device,
                              transform=build_transform(config, True, augment))
    test_loader = DataLoader(test_set, 500, device=args.device, transform=build_transform(config, False))
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                              steps_per_epoch=len(train_loader))
    print(f"{args.model} on Fashion-MNIST: {len(train_set)} train / {len(test_set)} test images, "
          f"{args.epochs} epoch(s) on {args.device}, OneCycle to lr {args.lr}")

    # The training loop, written out (examples/mnist_resnet.py hands it to Trainer instead).
    for epoch in range(args.epochs):
        model.train()                                # BatchNorm: batch statistics, running averages updated
        for images, labels in progress_bar(train_loader, not args.no_progress, desc=f"epoch {epoch + 1}"):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()                    # gradients add up across backward() calls
            loss.backward()
            optimizer.step()
            scheduler.step()                         # OneCycle moves the lr (and momentum) every batch
        result = evaluate(model, test_loader, config["num_classes"])   # eval mode, no graph
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, test accuracy {result['accuracy']:.4f}")
    tinyres.save({"config": config, "model": model.state_dict()}, out / "fashion_mnist.npz")

    # One number hides where the errors are: the per-class accuracy shows them.
    for name, accuracy in sorted(zip(config["classes"], result["per_class_accuracy"]), key=lambda p: p[1]):
        print(f"  {name:>12}: {accuracy:.3f}")
    reached = "reached" if result["accuracy"] >= TARGET else "NOT reached"
    print(f"test accuracy: {result['accuracy']:.4f} (target {TARGET:.2f}: {reached})")
    print(f"weights: {out / 'fashion_mnist.npz'}")

if __name__ == "__main__":
    main()
