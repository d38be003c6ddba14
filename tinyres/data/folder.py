"""``ImageFolder``: a dataset of image files, one folder per class, as torchvision's.

    root/airplane/0000.jpg
    root/airplane/0001.jpg
    ...
    root/truck/4999.jpg

The class names are the folder names, sorted; a class's index is its position.  Every
image is decoded once (Pillow, converted to RGB as torchvision does) into one uint8
(N, H, W, 3) array, so batches are sliced from memory like CIFAR's.  The decoded array is
cached in ``.tinyres-cache.npz`` inside ``root`` (or under ``default_root()`` when
``root`` is read-only), stamped with every file's name, size and modification time: the
next run reads no JPEG, and any change to the folder rebuilds it.
"""
import hashlib
from pathlib import Path

import numpy as np

from .. import serialization
from .datasets import ImageDataset, default_root

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_NAME = ".tinyres-cache.npz"


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("ImageFolder: decoding images needs Pillow: pip install pillow "
                          "(or pip install 'tinyres[images]')") from None
    return Image


def _find_images(root):
    """(classes, files, targets) of the folder ``root``."""
    if not root.is_dir():
        raise FileNotFoundError(f"ImageFolder: {root} is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"ImageFolder: {root} has no class folders; expected {root}/<class name>/<image files>")
    files, targets = [], []
    for index, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        for p in found:
            if p.suffix.lower() not in IMG_EXTENSIONS:
                raise ValueError(f"ImageFolder: {p} is not an image file (expected one of "
                                 f"{', '.join(IMG_EXTENSIONS)}); move it out of the class folder")
        if not found:
            raise ValueError(f"ImageFolder: the class folder {root / name} holds no image")
        files += found
        targets += [index] * len(found)
    return classes, files, np.array(targets, dtype=np.int64)


def _fingerprint(root, files, size):
    """A hash of every file's path, size and modification time, and of ``size``."""
    digest = hashlib.sha256(repr(size).encode())
    for p in files:
        stat = p.stat()
        digest.update(f"{p.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _decode(files, size):
    """The images as one uint8 (N, H, W, 3) array; all must have one size unless ``size``
    (H, W) resizes them."""
    Image = _pillow()
    images, first = None, None
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                array = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:   # Pillow's errors for bad or truncated files
            raise ValueError(f"ImageFolder: cannot decode {p}: {e}") from None
        if images is None:
            images, first = np.empty((len(files),) + array.shape, dtype=np.uint8), p
        elif array.shape != images.shape[1:]:
            raise ValueError(f"ImageFolder: images of different sizes: {first} is "
                             f"{images.shape[2]}x{images.shape[1]}, {p} is {array.shape[1]}x{array.shape[0]}; "
                             "pass size=(H, W) (--image-size S in the CLI) to resize them")
        images[i] = array
    return images


def _cache_paths(root):
    """Where the cache may go: inside the folder, else under ``default_root()``."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / CACHE_NAME, default_root() / "imagefolder" / f"{key}.npz"]


class ImageFolder(ImageDataset):
    """Images in class folders: ``root/<class>/<image>``, as ``torchvision.datasets.ImageFolder``.

    ``classes`` are the sorted folder names and ``class_to_idx`` maps them to labels;
    ``samples`` lists ``(path, label)``.  Images are RGB; all must have one size, or
    ``size=(H, W)`` resizes them while decoding.  ``transform`` is a batch transform as
    for the other datasets.  ``cache=False`` decodes every time and writes nothing.
    """

    def __init__(self, root, transform=None, size=None, cache=True):
        root = Path(root).expanduser()
        self.root = root
        self.size = None if size is None else (size, size) if isinstance(size, int) else tuple(size)
        self.classes, files, targets = _find_images(root)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = [(str(p), int(t)) for p, t in zip(files, targets)]
        fingerprint = _fingerprint(root, files, self.size)
        images = self._read_cache(fingerprint) if cache else None
        if images is None:
            images = _decode(files, self.size)
            if cache:
                self._write_cache(images, fingerprint)
        super().__init__(images, targets, transform)

    def _read_cache(self, fingerprint):
        for path in _cache_paths(self.root):
            try:
                with np.load(path, allow_pickle=False) as f:
                    if str(f["fingerprint"]) == fingerprint:
                        return f["images"]
            except (OSError, KeyError, ValueError):
                continue
        return None

    def _write_cache(self, images, fingerprint):
        for path in _cache_paths(self.root):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                serialization.atomic_write(path, lambda f: np.savez(f, images=images,
                                                                     fingerprint=np.array(fingerprint)))
                return
            except OSError:
                continue          # read-only: try the next place; no cache is not an error

    def __repr__(self):
        return f"ImageFolder(root={str(self.root)!r}, classes={len(self.classes)}, samples={len(self)})"


def stratified_split(targets, count, seed=0):
    """Indices ``(kept, held_out)`` that hold ``count`` samples out of ``targets``, the same
    share of every class (up to rounding), chosen at random from ``seed``."""
    targets = np.asarray(targets)
    if not 0 < count < len(targets):
        raise ValueError(f"stratified_split: the held-out count must be between 1 and {len(targets) - 1}, "
                         f"got {count}")
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(targets, return_counts=True)
    quota = np.floor(sizes * count / len(targets)).astype(np.int64)
    remainder = sizes * count / len(targets) - quota
    quota[np.argsort(-remainder, kind="stable")[:count - quota.sum()]] += 1    # largest remainders first
    held = np.concatenate([rng.permutation(np.flatnonzero(targets == c))[:q] for c, q in zip(classes, quota)])
    held = np.sort(held)
    return np.setdiff1d(np.arange(len(targets)), held), held
