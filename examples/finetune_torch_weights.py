"""Fine-tune PyTorch ResNet-18 weights in tinyres: a new head on a frozen backbone.

    # where torchvision is installed, once:
    #   python -c "import torch, torchvision; torch.save(torchvision.models.resnet18(
    #              weights='IMAGENET1K_V1').state_dict(), 'resnet18.pth')"
    python examples/finetune_torch_weights.py --weights resnet18.pth     # or an .npz export
    python examples/finetune_torch_weights.py --quick    # makes its own weights file, a few seconds

The path: a ``state_dict`` file -> ``tinyres.models.load_torch_state_dict`` (the parameter
names are torchvision's, so it loads with strict=True) -> replace ``model.fc`` with a
10-way ``nn.Linear`` -> freeze the backbone (``requires_grad_(False)``, BatchNorm kept in
eval mode so its running statistics stay the pretrained ones) -> an optimizer over the
trainable parameters only.  The digits are the bundled MNIST split, made to look like
the network's usual input: 3 channels, 32x32, ImageNet normalisation.
"""
import argparse
import tempfile
from pathlib import Path

import numpy

import tinyres
from tinyres import nn, optim
from tinyres.data import BundledMNIST, DataLoader, transforms
from tinyres.nn import functional as F
from tinyres.train import evaluate

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def save_weights(model, path):
    """``model``'s state_dict as a PyTorch ``path.pth`` (``torch.load`` reads it), or as
    a tinyres ``path.npz`` where torch is not installed.  Returns the file written."""
    try:
        tinyres.models.save_torch_state_dict(model, path.with_suffix(".pth"))
        return path.with_suffix(".pth")
    except ImportError:
        tinyres.save(model.state_dict(), path.with_suffix(".npz"))
        return path.with_suffix(".npz")


def digits_as_rgb32(batch):
    """(N, 1, 28, 28) digits -> (N, 3, 32, 32): grey copied to R, G and B, 2 pixels of padding."""
    return numpy.pad(numpy.repeat(batch, 3, axis=1), ((0, 0), (0, 0), (2, 2), (2, 2)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="a ResNet-18 state_dict: .pth/.pt (needs torch) or .npz")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--out", default=None, help="folder for the weights written (default: a temporary one)")
    ap.add_argument("--quick", action="store_true", help="64 images, 1 epoch; makes a weights file if none is given")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tinyres-finetune-"))
    out.mkdir(parents=True, exist_ok=True)
    tinyres.manual_seed(0)
    if args.weights is None:
        if not args.quick:
            ap.error("--weights is required (see the top of this file for how to get torchvision's)")
        # Stand-in for torchvision's file: a fresh (untrained) tinyres resnet18, saved.
        args.weights = save_weights(tinyres.models.resnet18(), out / "resnet18-fresh")
        print(f"--quick: no --weights given, so an untrained resnet18 was saved to {args.weights}")

    # 1. Load the weights: all 122 tensors (and the 1000-way fc) must fit, or it raises.
    model = tinyres.models.resnet18()
    tinyres.models.load_torch_state_dict(model, args.weights)
    print(f"loaded {args.weights} into resnet18 ({len(model.state_dict())} tensors)")

    # 2. Freeze everything, then put a fresh head on: only the head will learn.
    model.requires_grad_(False)
    model.fc = nn.Linear(512, 10)                     # a new layer requires grad
    model.eval()                                      # BN: pretrained running statistics, not updated
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.SGD(trainable, lr=args.lr, momentum=0.9)
    print(f"trainable: {sum(p.numel() for p in trainable)} of {sum(p.numel() for p in model.parameters())} "
          "parameters (fc.weight, fc.bias)")

    preprocess = transforms.Compose([digits_as_rgb32, transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    train_set, test_set = BundledMNIST(train=True), BundledMNIST(train=False)
    if args.quick:   # evenly spaced images: the bundled file is grouped by class
        args.epochs = 1
        for data, n in ((train_set, 64), (test_set, 32)):
            step = len(data) // n
            data.data, data.targets = data.data[::step][:n], data.targets[::step][:n]
    train_loader = DataLoader(train_set, 32 if args.quick else args.batch_size, shuffle=True, seed=0,
                              transform=preprocess)
    test_loader = DataLoader(test_set, 500, transform=preprocess)

    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    for epoch in range(args.epochs):
        for images, labels in train_loader:          # model stays in eval mode: no model.train()
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()                          # gradients reach fc only
            optimizer.step()
        result = evaluate(model, test_loader, 10)
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, test accuracy {result['accuracy']:.4f}")

    # 3. Check the claim: the backbone (weights and BN statistics) is exactly as loaded.
    after = model.state_dict()
    changed = [k for k in before if not numpy.array_equal(before[k], after[k].numpy())]
    assert changed == ["fc.weight", "fc.bias"], f"expected only the head to change, changed: {changed}"
    print(f"backbone unchanged ({len(before) - 2} tensors); head changed: {', '.join(changed)}")
    print(f"test accuracy: {result['accuracy']:.4f}; fine-tuned weights: "
          f"{save_weights(model, out / 'resnet18-digits')}")


if __name__ == "__main__":
    main()
