"""Grad-CAM through hooks: where the bundled CIFAR-10 ResNet-20 looks when it names a class.

Grad-CAM (Selvaraju et al., 2017) weighs the feature maps A_k of the last convolutional
stage by how much the class score y_c grows with them:

    alpha_k = mean over (i, j) of d y_c / d A_k[i, j],     map = ReLU(sum_k alpha_k A_k),

upsampled to the image.  Both A and dy_c/dA come from hooks on ``layer3`` (its 8x8 output):
a forward hook keeps the activations, a full backward hook the gradient of the output --
no change to the model's code.

    python examples/grad_cam.py --data-dir ~/data/cifar10-jpg/train --out docs/figures/grad_cam.png

The images are CIFAR-10 *training* images from the 5,000 that the bundled weights held out
(the same stratified split, seed 0: the model never trained on them), one per class.
``--quick`` runs on random images (no data needed) and writes to a temporary folder.
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np

import tinyres
from tinyres import models


def grad_cam(model, images, classes, layer):
    """Grad-CAM maps (N, H, W) in [0, 1] for ``classes`` (N,), from hooks on ``layer``."""
    kept = {}
    forward = layer.register_forward_hook(lambda module, args, output: kept.update(activations=output))
    backward = layer.register_full_backward_hook(lambda module, grad_input, grad_output:
                                                 kept.update(gradients=grad_output[0]))
    try:
        x = tinyres.tensor(images, requires_grad=True)       # so the hooks' backward runs through layer
        scores = model(x)
        chosen = scores[np.arange(len(classes)), classes].sum()
        chosen.backward()
    finally:
        forward.remove()
        backward.remove()
    a, g = kept["activations"].detach().numpy(), kept["gradients"].numpy()     # (N, K, h, w)
    alpha = g.mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((alpha * a).sum(axis=1), 0)
    cam /= cam.max(axis=(1, 2), keepdims=True) + 1e-12
    factor = images.shape[-1] // cam.shape[-1]
    return np.kron(cam, np.ones((factor, factor))), scores.detach().numpy()


def held_out_examples(data_dir, classes_wanted=10):
    """One held-out image per class (uint8 HWC) and its label."""
    from tinyres.data import ImageFolder, stratified_split
    folder = ImageFolder(data_dir)
    _, held = stratified_split(folder.targets, 5000, seed=0)     # the bundled weights' split
    targets = np.asarray(folder.targets)[held]
    picks = [held[np.flatnonzero(targets == c)[0]] for c in range(classes_wanted)]
    return folder.data[picks], np.asarray(folder.targets)[picks], folder.classes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="~/data/cifar10-jpg/train")
    p.add_argument("--out", default=None, help="the figure (PNG); default: a temporary folder")
    p.add_argument("--quick", action="store_true", help="random images, no data needed")
    args = p.parse_args(argv)
    tinyres.set_default_dtype(tinyres.float32)
    model = models.resnet20(weights="cifar10")
    model.eval()
    meta = model.weights_meta
    if args.quick:
        pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        labels, names = np.array([0, 1, 2]), meta["classes"]
    else:
        pixels, labels, names = held_out_examples(Path(args.data_dir).expanduser())
    mean, std = np.array(meta["mean"]).reshape(1, 3, 1, 1), np.array(meta["std"]).reshape(1, 3, 1, 1)
    images = ((pixels.transpose(0, 3, 1, 2) / 255.0 - mean) / std).astype(np.float32)
    cams, scores = grad_cam(model, images, labels, model.layer3)
    predicted = scores.argmax(1)
    for name, label, guess in zip(np.array(names)[labels], labels, predicted):
        print(f"{name:>10}: predicted {names[guess]}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "grad_cam.png"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return 0
    n = len(labels)
    fig, axes = plt.subplots(2, n, figsize=(1.25 * n, 2.9))
    axes = np.asarray(axes).reshape(2, n)
    for k in range(n):
        axes[0, k].imshow(pixels[k], interpolation="nearest")
        axes[0, k].set_title(names[labels[k]], fontsize=8)
        axes[1, k].imshow(pixels[k], interpolation="nearest")
        axes[1, k].imshow(cams[k], cmap="jet", alpha=0.45, interpolation="bilinear")
        axes[1, k].set_title(("✓ " if predicted[k] == labels[k] else "✗ ") + names[predicted[k]], fontsize=7)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle("Grad-CAM of the bundled ResNet-20 (layer3, 8x8) on held-out CIFAR-10 training images",
                 fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
