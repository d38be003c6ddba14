"""Datasets as ``torchvision.datasets`` has them: one sample at a time, ``(PIL image, int)``,
then ``transform`` and ``target_transform``.

    train = CIFAR10(root, train=True, download=True, transform=transforms.ToTensor())

They read the files with tinyres's own readers (``tinyres.data``: NumPy only, the
restricted unpickler, checked downloads), and keep torchvision's attributes: ``data``
(uint8: CIFAR ``(N, 32, 32, 3)`` arrays, MNIST an ``(N, 28, 28)`` Tensor), ``targets``
(CIFAR a list of ints, MNIST an int64 Tensor), ``classes``, ``class_to_idx``.  For whole
batches without a Python loop per sample, use ``tinyres.data``'s datasets and loader.
"""
from .. import data as _readers
from ..core.tensor import Tensor
from ..utils.data import Dataset


def _pil_image():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("tinyres.vision.datasets give PIL images, as torchvision's do, and need Pillow: "
                          "pip install pillow (or pip install 'tinyres[images]'); tinyres.data's datasets "
                          "give arrays without it") from None
    return Image


class VisionDataset(Dataset):
    """The shared part: a tinyres.data reader's ``data`` and ``targets``, served as torchvision serves them."""

    reader = None

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self._image = _pil_image()
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        source = self.reader(root=root, train=train, download=download)
        self.classes = list(source.classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self._pixels, self._labels = source.data, source.targets
        self.data, self.targets = self._torchvision_attributes(source.data, source.targets)

    def _torchvision_attributes(self, data, targets):
        return data, [int(t) for t in targets]

    def __len__(self):
        return len(self._pixels)

    def __getitem__(self, index):
        img = self._image.fromarray(self._pixels[index])      # uint8: mode L (grey) or RGB
        target = int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    StandardTransform\n    Transform: {self.transform!r}")
        return "\n".join(lines)


class CIFAR10(VisionDataset):
    """CIFAR-10, as ``torchvision.datasets.CIFAR10``: RGB 32x32 PIL images and labels 0-9."""
    reader = _readers.CIFAR10


class CIFAR100(VisionDataset):
    """CIFAR-100 with its 100 fine labels, as ``torchvision.datasets.CIFAR100``."""
    reader = _readers.CIFAR100


class MNIST(VisionDataset):
    """MNIST, as ``torchvision.datasets.MNIST``: grey 28x28 PIL images (mode "L") and labels 0-9."""
    reader = _readers.MNIST

    def _torchvision_attributes(self, data, targets):
        return Tensor(data), Tensor(targets.astype("int64"))


class FashionMNIST(MNIST):
    """Fashion-MNIST, as ``torchvision.datasets.FashionMNIST``."""
    reader = _readers.FashionMNIST
