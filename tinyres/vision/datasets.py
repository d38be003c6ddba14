"""Datasets as ``torchvision.datasets`` has them: one sample at a time, ``(PIL image, int)``,
then ``transform`` and ``target_transform``.

    train = CIFAR10(root, train=True, download=True, transform=transforms.ToTensor())

They read the files with tinyres's own readers (``tinyres.data``: NumPy only, the
restricted unpickler, checked downloads), and keep torchvision's attributes: ``data``
(uint8: CIFAR ``(N, 32, 32, 3)`` arrays, MNIST an ``(N, 28, 28)`` Tensor), ``targets``
(CIFAR a list of ints, MNIST an int64 Tensor), ``classes``, ``class_to_idx``.  ``data`` and
``targets`` are the storage that ``len`` and indexing read, as in torchvision: a subset
(``ds.data, ds.targets = ds.data[:100], ds.targets[:100]``) or noisy labels set there
are what the dataset serves.  For whole batches without a Python loop per sample, use
``tinyres.data``'s datasets and loader.

``ImageFolder`` (and its base ``DatasetFolder``) is torchvision's: ``root/<class>/<file>``,
each file read by ``loader`` when its sample is asked for (``tinyres.data.ImageFolder``
decodes the whole folder once into one array instead, for batch transforms).
"""
import os

from .. import data as _readers
from ..data.folder import IMG_EXTENSIONS
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
        self.data, self.targets = self._torchvision_attributes(source.data, source.targets)

    def _torchvision_attributes(self, data, targets):
        return data, [int(t) for t in targets]

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        pixels = self.data[index]
        if isinstance(pixels, Tensor):                        # MNIST's data is a Tensor, as torchvision's
            pixels = pixels.numpy()
        img = self._image.fromarray(pixels)                   # uint8: mode L (grey) or RGB
        target = int(self.targets[index])
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


# ---------------------------------------------------------------------- folders of files, as torchvision's

def has_file_allowed_extension(filename, extensions):
    """Whether ``filename`` ends (case-insensitively) with one of ``extensions`` (a str or a tuple)."""
    return filename.lower().endswith(extensions if isinstance(extensions, str) else tuple(extensions))


def is_image_file(filename):
    return has_file_allowed_extension(filename, IMG_EXTENSIONS)


def find_classes(directory):
    """``(classes, class_to_idx)``: the sorted names of the folders in ``directory``, and their indices."""
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(directory, class_to_idx=None, extensions=None, is_valid_file=None, allow_empty=False):
    """``[(path, class_index), ...]``: the files under each class folder (walked in sorted
    order, links followed) that have one of ``extensions`` or pass ``is_valid_file`` (give
    exactly one of the two); a class with no such file is an error unless ``allow_empty``."""
    directory = os.path.expanduser(directory)
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    elif not class_to_idx:
        raise ValueError("'class_to_index' must have at least one entry to collect any samples.")
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at the same time")
    if extensions is not None:
        def is_valid_file(path):
            return has_file_allowed_extension(path, extensions)
    instances, found = [], set()
    for target_class in sorted(class_to_idx):
        target_dir = os.path.join(directory, target_class)
        if not os.path.isdir(target_dir):
            continue
        for root, _, fnames in sorted(os.walk(target_dir, followlinks=True)):
            for fname in sorted(fnames):
                path = os.path.join(root, fname)
                if is_valid_file(path):
                    instances.append((path, class_to_idx[target_class]))
                    found.add(target_class)
    empty = set(class_to_idx) - found
    if empty and not allow_empty:
        msg = f"Found no valid file for the classes {', '.join(sorted(empty))}. "
        if extensions is not None:
            msg += f"Supported extensions are: {extensions if isinstance(extensions, str) else ', '.join(extensions)}"
        raise FileNotFoundError(msg)
    return instances


def pil_loader(path):
    """The image at ``path`` as an RGB PIL image (read through an open file, as torchvision's)."""
    Image = _pil_image()
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


default_loader = pil_loader


class DatasetFolder(Dataset):
    """Samples in class folders, ``root/<class>/**/<file>``, as ``torchvision.datasets.DatasetFolder``:
    ``classes`` (the sorted folder names), ``class_to_idx``, ``samples`` ([(path, class_index)]),
    ``targets``; ``dataset[i]`` is ``(transform(loader(path)), target_transform(class_index))``.
    Override ``find_classes`` or ``make_dataset`` for another layout, as in torchvision."""

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None, is_valid_file=None,
                 allow_empty=False):
        self.root = os.path.expanduser(root) if isinstance(root, str) else root
        self.transform, self.target_transform = transform, target_transform
        classes, class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file, allow_empty)
        self.loader, self.extensions = loader, extensions
        self.classes, self.class_to_idx = classes, class_to_idx
        self.samples = samples
        self.targets = [s[1] for s in samples]

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        if class_to_idx is None:
            raise ValueError("The class_to_idx parameter cannot be None.")
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory):
        return find_classes(directory)

    def __getitem__(self, index):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self):
        return len(self.samples)

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}"]
        if self.transform is not None or self.target_transform is not None:
            lines.append("    StandardTransform")
        for head, t in (("Transform: ", self.transform), ("Target transform: ", self.target_transform)):
            if t is not None:
                first, *rest = repr(t).splitlines()
                lines += [f"    {head}{first}"] + [" " * (4 + len(head)) + line for line in rest]
        return "\n".join(lines)


class ImageFolder(DatasetFolder):
    """Images in class folders, as ``torchvision.datasets.ImageFolder``: the files with an image
    extension (``IMG_EXTENSIONS``; or those ``is_valid_file`` accepts), each read as an RGB PIL
    image by ``loader`` when asked for.  ``imgs`` is ``samples``, torchvision's old name."""

    def __init__(self, root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None,
                 allow_empty=False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform=transform,
                         target_transform=target_transform, is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples
