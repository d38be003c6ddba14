"""MNIST, Fashion-MNIST, CIFAR-10/100 and the bundled MNIST subset, read with NumPy.

Every dataset keeps its images as ``data`` (uint8, the layout torchvision uses:
``(N, 28, 28)`` for the MNIST family, ``(N, 32, 32, 3)`` for CIFAR) and its labels as
``targets`` (int64).  ``ds[i]`` is ``(image, label)`` with the image float32 ``(C, H, W)``
in [0, 1]; ``ds.get_batch(indices)`` is the same for many samples at once, with no Python
loop over them -- it is what the DataLoader calls.

File formats:

* **IDX** (MNIST family): a 4-byte magic number ``00 00 08 nd`` (``08`` = unsigned bytes,
  ``nd`` = number of dimensions: 3 for images, 1 for labels), ``nd`` big-endian uint32
  sizes, then the bytes.  Gzipped or not; gzip is recognised by its first two bytes.
* **CIFAR python version**: pickled dicts (``data``: uint8 ``(n, 3072)``, channel-major;
  ``labels`` or ``fine_labels``: a list), read with :class:`RestrictedUnpickler`.
"""
import codecs
import copy
import gzip
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import download as _download

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy < 2
    from numpy.core.multiarray import _reconstruct

BUNDLED_FILE = Path(__file__).parent / "bundled" / "mnist10k.npz"


def default_root():
    """``$TINYRES_DATA`` if set, else ``~/.cache/tinyres``."""
    return Path(os.environ.get("TINYRES_DATA") or "~/.cache/tinyres").expanduser()


# ---------------------------------------------------------------------- file formats

def _read_maybe_gzip(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: corrupt or truncated gzip file ({e})") from None


def read_idx(path, ndim):
    """The uint8 array in the IDX file ``path``, which must have ``ndim`` dimensions."""
    raw = _read_maybe_gzip(path)
    magic = 0x800 + ndim
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() if len(raw) >= 4 else f"only {len(raw)} bytes"
        raise UserError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s): "
                         f"expected magic number {magic:08x}, found {found}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise UserError(f"{path}: truncated or corrupt, the header promises dimensions {dims} "
                         f"({expected} bytes) but the file holds {len(raw)} bytes")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


class UnsafePickleError(pickle.UnpicklingError, UserError):
    """A pickle asked for a global (a class or function) that is not allowed."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data: dicts, lists, tuples, strings, bytes,
    numbers, and NumPy arrays through the few globals NumPy's array pickles need.

    A plain ``pickle.load`` runs any callable the file names (``os.system`` included),
    so a downloaded pickle must never get one.
    """
    ALLOWED = {("_codecs", "encode"): codecs.encode,   # how Python 3 pickles NumPy's bytes at protocol 2
               ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray,
               ("numpy", "dtype"): np.dtype}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[module, name]
        raise UnsafePickleError(
            f"refused to load global {module}.{name}: only plain data and NumPy arrays are "
            f"allowed in dataset files")


def load_pickle(path):
    """The object in the pickle file ``path``, loaded with :class:`RestrictedUnpickler`."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, struct.error) as e:
        raise UserError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------- the datasets

class ImageDataset:
    """What every dataset here shares: ``data``, ``targets``, ``classes`` and indexing."""

    classes = []

    def __init__(self, data, targets, transform=None):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self):
        return len(self.data)

    def _images(self, idx):
        """float32 ``(N, C, H, W)`` in [0, 1] from the uint8 ``data`` rows ``idx``."""
        images = self.data[idx]
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        return np.divide(np.ascontiguousarray(images), 255, dtype=np.float32)

    def _check_indices(self, indices):
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{type(self).__name__}: indices must be integers, got {idx.dtype}")
        n = len(self)
        bad = idx[(idx < -n) | (idx >= n)]
        if bad.size:
            raise IndexError(f"{type(self).__name__}: index {bad.flat[0]} is out of range "
                             f"for a dataset of {n} samples")
        return idx.reshape(-1)

    def get_batch(self, indices):
        """``(images, labels)`` for many samples: float32 ``(N, C, H, W)`` in [0, 1] (with
        ``transform`` applied to the whole batch) and int64 ``(N,)``."""
        idx = self._check_indices(indices)
        images = self._images(idx)
        if self.transform is not None:
            images = self.transform(images)
        return images, self.targets[idx].astype(np.int64)

    def __getitem__(self, index):
        """``(image, label)``: float32 ``(C, H, W)`` in [0, 1], ``transform`` applied; int."""
        idx = self._check_indices([index])
        image = self._images(idx)[0]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[idx[0]])

    def subset(self, indices):
        """The samples ``indices`` as a dataset of the same kind (classes, transform kept;
        the images copied)."""
        part = copy.copy(self)
        idx = self._check_indices(indices)
        part.data, part.targets = self.data[idx], self.targets[idx]
        return part

    def _check_labels(self, source):
        if self.targets.size and not 0 <= self.targets.min() <= self.targets.max() < len(self.classes):
            raise UserError(f"{source}: labels must lie in 0..{len(self.classes) - 1}, found "
                             f"{self.targets.min()}..{self.targets.max()}")

    def __repr__(self):
        split = "train" if getattr(self, "train", True) else "test"
        return f"{type(self).__name__}(split={split}, samples={len(self)})"


def _missing(name, wanted, searched, root):
    places = "\n  ".join(str(p) for p in searched)
    return FileNotFoundError(
        f"{name}: dataset not found. Looked for {', '.join(wanted)} in:\n  {places}\n"
        f"Fetch it with {name}(root={str(root)!r}, download=True), or point root "
        f"(or $TINYRES_DATA) at a folder that holds the files.")


class MNIST(ImageDataset):
    """MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey.

    Files are looked for in ``root/MNIST/raw/`` (torchvision's layout) and in ``root``
    itself, each as ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz`` (and
    ``train-labels-idx1-ubyte``, ``t10k-...`` for the test set).
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root=None, train=True, download=False, transform=None):
        self.root, self.train = Path(root).expanduser() if root else default_root(), train
        name = type(self).__name__
        prefix = "train" if train else "t10k"
        wanted = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        searched = [self.root / name / "raw", self.root]
        files = self._find(searched, wanted)
        if files is None and download:
            _download.fetch(name, searched[0])
            files = self._find(searched, wanted)
        if files is None:
            raise _missing(name, [w + "[.gz]" for w in wanted], searched, self.root)
        images, labels = read_idx(files[0], 3), read_idx(files[1], 1)
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise UserError(f"{name}: expected images (N, 28, 28) and N labels, found images "
                             f"{images.shape} in {files[0]} and {len(labels)} labels in {files[1]}")
        super().__init__(images, labels.astype(np.int64), transform)
        self._check_labels(files[1])

    @staticmethod
    def _find(folders, wanted):
        """The paths of all ``wanted`` files in the first folder that has them all."""
        for folder in folders:
            paths = []
            for w in wanted:
                candidates = [folder / w, folder / (w + ".gz")]
                paths.append(next((p for p in candidates if p.is_file()), None))
            if all(paths):
                return paths
        return None


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing.
    Looked for in ``root/FashionMNIST/raw/`` and ``root`` (so
    ``root="/usr/share/datasets/fashion-mnist"`` reads Debian's package as it is)."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class CIFAR10(ImageDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, ten classes.

    The python version's files are looked for in ``root/cifar-10-batches-py/`` (where its
    archive unpacks) and in ``root`` itself.  ``classes`` come from its ``batches.meta``.
    """

    folder = "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test_batch"]
    meta = ("batches.meta", "label_names")
    label_key = "labels"

    def __init__(self, root=None, train=True, download=False, transform=None):
        self.root, self.train = Path(root).expanduser() if root else default_root(), train
        name = type(self).__name__
        wanted = (self.train_files if train else self.test_files) + [self.meta[0]]
        searched = [self.root / self.folder, self.root]
        found = self._find(searched, wanted)
        if found is None and download:
            _download.fetch(name, self.root)
            found = self._find(searched, wanted)
        if found is None:
            raise _missing(name, wanted, searched, self.root)
        meta = self._entry(found / self.meta[0], [self.meta[1]])
        self.classes = [str(c) for c in meta[self.meta[1]]]
        batches, labels = [], []
        for f in wanted[:-1]:
            entry = self._entry(found / f, ["data", self.label_key])
            data, lab = entry["data"], np.asarray(entry[self.label_key])
            if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and lab.ndim == 1
                    and lab.dtype.kind in "iu" and data.shape == (len(lab), 3072)):
                raise UserError(f"{found / f}: expected uint8 'data' of shape (n, 3072) and n "
                                 f"integer labels, found {type(data).__name__} "
                                 f"{getattr(data, 'dtype', '')} {getattr(data, 'shape', '')} "
                                 f"and {lab.shape[0] if lab.ndim else 0} labels of {lab.dtype}")
            batches.append(data)
            labels.append(lab)
        data = np.concatenate(batches).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        super().__init__(np.ascontiguousarray(data), np.concatenate(labels).astype(np.int64), transform)
        self._check_labels(found)

    @staticmethod
    def _find(folders, wanted):
        return next((f for f in folders if all((f / w).is_file() for w in wanted)), None)

    @staticmethod
    def _entry(path, keys):
        """The dict pickled in ``path``, which must hold ``keys``."""
        entry = load_pickle(path)
        if not isinstance(entry, dict) or not all(k in entry for k in keys):
            found = f"keys {sorted(map(str, entry))}" if isinstance(entry, dict) else type(entry).__name__
            raise UserError(f"{path}: expected a dict with keys {keys}, found {found}")
        return entry


class CIFAR100(CIFAR10):
    """CIFAR-100: CIFAR-10's images and sizes, 100 fine classes (``fine_labels``).
    Looked for in ``root/cifar-100-python/`` and in ``root``."""

    folder = "cifar-100-python"
    train_files = ["train"]
    test_files = ["test"]
    meta = ("meta", "fine_label_names")
    label_key = "fine_labels"


class BundledMNIST(ImageDataset):
    """10,000 real MNIST digits shipped inside tinyres (no download): the first 10,000
    images of the official training set, split once, stratified by class, into 8,500
    training and 1,500 test images.  The split is stored in the file, so it never changes.
    See ``tinyres/data/bundled/README.md`` for source and licence."""

    classes = MNIST.classes

    def __init__(self, train=True, transform=None):
        self.train = train
        with np.load(BUNDLED_FILE) as f:
            keep = ~f["test_mask"] if train else f["test_mask"]
            super().__init__(f["images"][keep], f["labels"][keep].astype(np.int64), transform)
