"""Multi-label classification: which digits are in a picture of two?

    python examples/multilabel.py            # 10,000 training pairs, 4 epochs
    python examples/multilabel.py --quick    # 64 pairs, 1 epoch: a smoke test

Each image is two real digits from the bundled MNIST split side by side (28x56); its
label is the *set* of digits in it -- one or two of the ten -- written as a multi-hot
vector (``[0,0,0,1,0,0,0,1,0,0]`` for a 3 and a 7).  So the network has ten independent
yes/no outputs instead of one softmax over ten: ``binary_cross_entropy_with_logits``
applies a sigmoid to each logit and scores it against its 0/1 target.  A digit is
predicted present when its logit is > 0 (probability > 0.5).

Reported: the exact-match accuracy (the whole set right) and, per digit, the F1 score
``2 TP / (2 TP + FP + FN)``.
"""
import argparse

import numpy

import tinyres
from tinyres import optim
from tinyres.data import BundledMNIST, DataLoader, transforms
from tinyres.nn import functional as F


class TwoDigits:
    """``n`` random pairs of the digits in ``digits`` (a dataset with uint8 ``data`` and
    ``targets``), drawn once with ``seed``.  ``get_batch`` gives float32 images
    ``(N, 1, 28, 56)`` in [0, 1] and multi-hot labels ``(N, 10)``."""

    def __init__(self, digits, n, seed):
        left, right = numpy.random.default_rng(seed).integers(0, len(digits), (2, n))
        self.images = numpy.concatenate([digits.data[left], digits.data[right]], axis=2)[:, None]
        self.labels = numpy.zeros((n, 10), numpy.float32)
        self.labels[numpy.arange(n), digits.targets[left]] = 1
        self.labels[numpy.arange(n), digits.targets[right]] = 1   # the same digit twice: one label

    def __len__(self):
        return len(self.images)

    def get_batch(self, indices):
        return self.images[indices] / numpy.float32(255), self.labels[indices]


def digit_set(multi_hot):
    """``[0,0,0,1,0,0,0,1,0,0]`` -> ``'{3, 7}'``."""
    return "{" + ", ".join(str(d) for d in numpy.flatnonzero(multi_hot)) + "}"


@tinyres.no_grad()
def scores(model, loader):
    """Exact-match accuracy and the per-digit F1 over ``loader``."""
    model.eval()
    tp, fp, fn, exact, n = numpy.zeros(10), numpy.zeros(10), numpy.zeros(10), 0, 0
    for images, labels in loader:
        predicted, truth = model(images).numpy() > 0, labels.numpy() == 1
        tp += (predicted & truth).sum(axis=0)
        fp += (predicted & ~truth).sum(axis=0)
        fn += (~predicted & truth).sum(axis=0)
        exact += int((predicted == truth).all(axis=1).sum())
        n += len(truth)
    return exact / n, 2 * tp / numpy.maximum(2 * tp + fp + fn, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet8")
    ap.add_argument("--train-pairs", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--quick", action="store_true", help="64 training and 64 test pairs, 1 epoch")
    args = ap.parse_args()
    if args.quick:
        args.train_pairs, args.epochs, args.batch_size = 64, 1, 32
    tinyres.manual_seed(0)

    # Training pairs come from the training digits only, test pairs from the test digits.
    train_set = TwoDigits(BundledMNIST(train=True), args.train_pairs, seed=1)
    test_set = TwoDigits(BundledMNIST(train=False), 64 if args.quick else 2000, seed=2)
    normalize = transforms.Normalize(transforms.MNIST_MEAN, transforms.MNIST_STD)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=0, transform=normalize)
    test_loader = DataLoader(test_set, 500, transform=normalize)

    model = tinyres.models.get_model(args.model, num_classes=10, in_channels=1)   # 10 logits, no softmax
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    print(f"{args.model}, {len(train_set)} training pairs of 28x56, {args.epochs} epoch(s), AdamW")
    for epoch in range(args.epochs):
        model.train()
        for images, labels in train_loader:
            logits = model(images)                                   # (N, 10)
            loss = F.binary_cross_entropy_with_logits(logits, labels)   # labels: float32 multi-hot (N, 10)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        exact, f1 = scores(model, test_loader)
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, exact match {exact:.4f}, mean F1 {f1.mean():.4f}")

    print("per-digit F1: " + "  ".join(f"{d}: {v:.3f}" for d, v in enumerate(f1)))
    images, labels = next(iter(test_loader))
    with tinyres.no_grad():
        predicted = model(images[:5]).numpy() > 0
    for truth, guess in zip(labels.numpy()[:5], predicted):
        print(f"  digits {digit_set(truth)} -> predicted {digit_set(guess)}")
    print(f"exact-match accuracy: {exact:.4f}")


if __name__ == "__main__":
    main()
