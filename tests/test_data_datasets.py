"""tinyres.data datasets and downloads, on small files written here in the real formats
(IDX raw and gzipped; CIFAR python pickles as Python 2 wrote them, inside a real tar.gz),
the bundled MNIST subset, and the real Fashion-MNIST where Debian's package is installed.
No test touches the network: downloads are served from memory."""
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tinyres.data import (CIFAR10, CIFAR100, MNIST, BundledMNIST, DownloadError, FashionMNIST,
                          RestrictedUnpickler, UnsafePickleError, download)

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "mnist_train_first10k.npz"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------- writing real formats

def idx_bytes(array):
    """An IDX file of unsigned bytes holding ``array``."""
    return struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.astype(np.uint8).tobytes()


def mnist_split(n):
    return RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n)


def write_mnist(folder, gz, splits):
    """Write ``{"train": (images, labels), "t10k": ...}`` as the four IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in splits.items():
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(raw) if gz else raw)


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the official CIFAR files: ``bytes`` become py2
    ``str`` (BINSTRING), NumPy arrays go through ``numpy.core.multiarray._reconstruct``."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        self.write(b"T" + struct.pack("<I", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


CIFAR_KINDS = {  # folder, train files, test files, meta file, meta key, label key, classes
    CIFAR10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
              "batches.meta", b"label_names", b"labels", 10),
    CIFAR100: ("cifar-100-python", ["train"], ["test"], "meta", b"fine_label_names", b"fine_labels", 100),
}


def cifar_files(cls, n=4):
    """``{name: bytes}`` of a small CIFAR dataset, and ``{name: (data, labels)}``."""
    _, train, test, meta, meta_key, label_key, k = CIFAR_KINDS[cls]
    files, content = {meta: py2_pickle({meta_key: [f"class{i}".encode() for i in range(k)]})}, {}
    for name in train + test:
        data = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in RNG.integers(0, k, n)]
        files[name] = py2_pickle({b"data": data, label_key: labels, b"batch_label": name.encode()})
        content[name] = (data, labels)
    return files, content


def tar_gz(members):
    """A tar.gz (bytes) of ``{name: bytes}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------------- MNIST family

@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family_reads_idx(tmp_path, cls, layout, gz):
    splits = {"train": mnist_split(7), "t10k": mnist_split(3)}
    write_mnist(tmp_path / cls.__name__ / "raw" if layout == "torchvision" else tmp_path, gz, splits)
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = splits[prefix]
        ds = cls(root=tmp_path, train=train)
        assert ds.data.dtype == np.uint8 and ds.data.shape == images.shape
        assert ds.targets.dtype == np.int64 and len(ds) == len(labels) and len(ds.classes) == 10
        np.testing.assert_array_equal(ds.data, images)
        np.testing.assert_array_equal(ds.targets, labels)
        image, label = ds[1]
        assert image.dtype == np.float32 and image.shape == (1, 28, 28) and label == labels[1]
        np.testing.assert_array_equal(image[0], images[1] / np.float32(255))
        batch, batch_labels = ds.get_batch([2, 0, 2])
        assert batch.shape == (3, 1, 28, 28) and batch.dtype == np.float32 and batch_labels.dtype == np.int64
        np.testing.assert_array_equal(batch[:, 0], images[[2, 0, 2]] / np.float32(255))


def test_transform_applies_to_item_and_batch(tmp_path):
    write_mnist(tmp_path, True, {"train": mnist_split(4)})
    ds = MNIST(tmp_path, transform=lambda x: 1 - x)
    plain = MNIST(tmp_path)
    np.testing.assert_array_equal(ds[3][0], 1 - plain[3][0])
    np.testing.assert_array_equal(ds.get_batch([3])[0], 1 - plain.get_batch([3])[0])


def test_default_root_from_environment(tmp_path, monkeypatch):
    write_mnist(tmp_path / "MNIST" / "raw", True, {"t10k": mnist_split(2)})
    monkeypatch.setenv("TINYRES_DATA", str(tmp_path))
    assert len(MNIST(train=False)) == 2


def test_missing_dataset_says_how_to_fetch_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        FashionMNIST(root=tmp_path)
    message = str(err.value)
    assert "download=True" in message and "train-images-idx3-ubyte" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message and f"\n  {tmp_path}\n" in message


@pytest.mark.parametrize("corrupt,match", [
    (lambda raw: raw[:-5], "truncated or corrupt"),
    (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "expected magic number 00000803, found 00000801"),
    (lambda raw: raw[:3], "only 3 bytes"),
    (lambda raw: gzip.compress(raw)[:-20], "corrupt or truncated gzip"),
])
def test_corrupt_idx_names_the_file(tmp_path, corrupt, match):
    write_mnist(tmp_path, False, {"train": mnist_split(3)})
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=match) as err:
        MNIST(tmp_path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("images,labels,match", [
    (np.zeros((3, 27, 28)), np.zeros(3), r"expected images \(N, 28, 28\)"),
    (np.zeros((3, 28, 28)), np.zeros(2), "2 labels"),
    (np.zeros((3, 28, 28)), np.array([0, 10, 1]), r"labels must lie in 0..9, found 0..10"),
])
def test_inconsistent_idx_files(tmp_path, images, labels, match):
    write_mnist(tmp_path, False, {"train": (images, labels)})
    with pytest.raises(ValueError, match=match):
        MNIST(tmp_path)


def test_bad_indices(tmp_path):
    write_mnist(tmp_path, False, {"train": mnist_split(3)})
    ds = MNIST(tmp_path)
    with pytest.raises(IndexError, match="index 3 is out of range for a dataset of 3"):
        ds[3]
    with pytest.raises(TypeError, match="integers"):
        ds.get_batch([0.5])
    assert ds[-1][1] == ds.targets[-1]


# ---------------------------------------------------------------------- CIFAR

@pytest.mark.parametrize("cls", [CIFAR10, CIFAR100])
@pytest.mark.parametrize("layout", ["archive", "flat"])
def test_cifar_reads_python_pickles(tmp_path, cls, layout):
    folder, train_files, test_files, *_, k = CIFAR_KINDS[cls]
    files, content = cifar_files(cls)
    if layout == "archive":   # a real tar.gz, unpacked the way download=True does it
        archive = tmp_path / "data.tar.gz"
        archive.write_bytes(tar_gz({f"{folder}/{name}": raw for name, raw in files.items()}))
        download.extract_tar(archive, tmp_path)
    else:
        for name, raw in files.items():
            (tmp_path / name).write_bytes(raw)
    for train, names in ((True, train_files), (False, test_files)):
        ds = cls(root=tmp_path, train=train)
        data = np.concatenate([content[n][0] for n in names])
        labels = np.concatenate([content[n][1] for n in names])
        assert ds.classes == [f"class{i}" for i in range(k)]
        assert ds.data.shape == (len(data), 32, 32, 3) and ds.data.dtype == np.uint8
        np.testing.assert_array_equal(ds.targets, labels)
        # data rows are channel-major: red 32x32, green 32x32, blue 32x32
        np.testing.assert_array_equal(ds.data[1, 4, 5], data[1].reshape(3, 32, 32)[:, 4, 5])
        image, label = ds[1]
        assert image.shape == (3, 32, 32) and image.dtype == np.float32 and label == labels[1]
        np.testing.assert_array_equal(image, data[1].reshape(3, 32, 32) / np.float32(255))
        batch, _ = ds.get_batch(np.arange(len(ds)))
        assert batch.flags.c_contiguous
        np.testing.assert_array_equal(batch, data.reshape(-1, 3, 32, 32) / np.float32(255))


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    files, _ = cifar_files(CIFAR10)
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    marker = tmp_path / "pwned"
    (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": Exploit(marker)}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"test_batch: refused to load global \w+\.system"):
        CIFAR10(tmp_path, train=False)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("numpy", "frombuffer"),
                                         ("numpy.core.multiarray", "scalar"), ("os", "system")])
def test_restricted_unpickler_allows_only_array_globals(module, name):
    unpickler = RestrictedUnpickler(io.BytesIO(b""))
    with pytest.raises(UnsafePickleError, match=f"refused to load global {module}.{name}"):
        unpickler.find_class(module, name)
    for allowed in [("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy", "ndarray"), ("numpy", "dtype")]:
        assert callable(unpickler.find_class(*allowed))


@pytest.mark.parametrize("content,error,match", [
    (lambda raw: raw[:len(raw) // 2], ValueError, "corrupt or truncated pickle"),
    (lambda raw: py2_pickle([1, 2]), ValueError, r"expected a dict with keys \['data', 'labels'\], found list"),
    (lambda raw: py2_pickle({b"data": np.zeros((2, 3072), np.int32), b"labels": [0, 1]}), ValueError,
     r"expected uint8 'data' of shape \(n, 3072\)"),
    (lambda raw: py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}), ValueError,
     r"labels must lie in 0..9"),
])
def test_corrupt_cifar_names_the_file(tmp_path, content, error, match):
    files, _ = cifar_files(CIFAR10)
    for name, raw in files.items():
        (tmp_path / name).write_bytes(content(raw) if name == "test_batch" else raw)
    with pytest.raises(error, match=match) as err:
        CIFAR10(tmp_path, train=False)
    assert str(tmp_path) in str(err.value)


def test_cifar_missing_lists_files_and_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True") as err:
        CIFAR100(tmp_path, train=False)
    assert "meta" in str(err.value) and str(tmp_path / "cifar-100-python") in str(err.value)


# ---------------------------------------------------------------------- downloads, from memory

class Response(io.BytesIO):
    """What urlopen returns: read(n), headers, a context manager.  ``cut`` bytes in, the
    stream breaks; ``length`` is the Content-Length it promises."""

    def __init__(self, data, cut=None, length=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self.cut = cut

    def read(self, n=-1):
        if self.cut is not None and self.tell() >= self.cut:
            raise ConnectionResetError("connection reset by peer")
        return super().read(n if self.cut is None else min(n, self.cut - self.tell()))


@pytest.fixture
def server(monkeypatch):
    """Serve ``server.files[url]`` (bytes, or a list of Responses/exceptions one per call)."""
    state = type("Server", (), {"files": {}, "calls": []})()

    def urlopen(request, timeout=None):
        url = request.full_url
        state.calls.append(url)
        answer = state.files[url]
        answer = answer.pop(0) if isinstance(answer, list) else Response(answer)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(download, "urlopen", urlopen)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0)
    return state


def md5(data):
    return hashlib.md5(data).hexdigest()


URL = "https://example.invalid/data.bin"


def test_download_good_checksum(tmp_path, server):
    server.files[URL] = payload = os.urandom(3 * download.CHUNK + 17)
    download.download_url(URL, tmp_path / "data.bin", md5(payload))
    assert (tmp_path / "data.bin").read_bytes() == payload
    assert os.listdir(tmp_path) == ["data.bin"]


def test_download_bad_checksum_deletes_and_does_not_retry(tmp_path, server):
    server.files[URL] = b"not the file"
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        download.download_url(URL, tmp_path / "data.bin", md5(b"the file"))
    assert URL in str(err.value) and str(tmp_path / "data.bin") in str(err.value)
    assert os.listdir(tmp_path) == [] and len(server.calls) == 1


@pytest.mark.parametrize("failure", [
    lambda data: Response(data, cut=10),                        # connection reset mid-stream
    lambda data: Response(data[:10], length=len(data)),         # fewer bytes than promised
    lambda data: urllib.error.URLError("name resolution failed"),
])
def test_download_interrupted_retries_then_fails_cleanly(tmp_path, server, failure):
    payload = os.urandom(100)
    server.files[URL] = [failure(payload) for _ in range(download.RETRIES)]
    with pytest.raises(DownloadError, match=f"after {download.RETRIES} attempt"):
        download.download_url(URL, tmp_path / "data.bin", md5(payload))
    assert os.listdir(tmp_path) == [] and len(server.calls) == download.RETRIES
    server.files[URL] = [failure(payload), Response(payload)]   # a retry that succeeds
    download.download_url(URL, tmp_path / "data.bin", md5(payload))
    assert (tmp_path / "data.bin").read_bytes() == payload


def test_download_not_found_is_not_retried(tmp_path, server):
    server.files[URL] = [urllib.error.HTTPError(URL, 404, "Not Found", {}, None)]
    with pytest.raises(DownloadError, match="after 1 attempt.*404"):
        download.download_url(URL, tmp_path / "data.bin", "0" * 32)
    assert len(server.calls) == 1


def test_mnist_download_end_to_end(tmp_path, server, monkeypatch):
    source = tmp_path / "source"
    write_mnist(source, True, {"train": mnist_split(5), "t10k": mnist_split(2)})
    resources = []
    for path in sorted(source.iterdir()):
        url = download.MNIST_MIRROR + path.name
        server.files[url] = path.read_bytes()
        resources.append((url, md5(path.read_bytes())))
    monkeypatch.setitem(download.RESOURCES, "MNIST", resources)
    ds = MNIST(tmp_path / "root", train=False, download=True)
    assert len(ds) == 2 and len(server.calls) == 4
    assert sorted(os.listdir(tmp_path / "root" / "MNIST" / "raw")) == sorted(os.listdir(source))
    MNIST(tmp_path / "root", download=True)                     # found: nothing fetched again
    assert len(server.calls) == 4


def test_cifar_download_end_to_end(tmp_path, server, monkeypatch):
    files, content = cifar_files(CIFAR100)
    archive = tar_gz({f"cifar-100-python/{name}": raw for name, raw in files.items()})
    url = download.CIFAR_SITE + "cifar-100-python.tar.gz"
    server.files[url] = archive
    monkeypatch.setitem(download.RESOURCES, "CIFAR100", [(url, md5(archive))])
    ds = CIFAR100(tmp_path, download=True)
    np.testing.assert_array_equal(ds.targets, content["train"][1])
    assert (tmp_path / "cifar-100-python.tar.gz").read_bytes() == archive


def tar_with(member_setup):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        good = tarfile.TarInfo("folder/good")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo("x")
        member_setup(info)
        tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return buf.getvalue()


def _named(name):
    def setup(info):
        info.name, info.size = name, 4
    return setup


def _link(kind):
    def setup(info):
        info.name, info.type, info.linkname = "folder/link", kind, "/etc/passwd"
    return setup


@pytest.mark.parametrize("setup,match", [
    (_named("../evil"), "would land outside"),
    (_named("folder/../../evil"), "would land outside"),
    (_named("/tmp/tinyres-evil"), "would land outside"),
    (_link(tarfile.SYMTYPE), "is a link"),
    (_link(tarfile.LNKTYPE), "is a link"),
    (lambda info: setattr(info, "type", tarfile.FIFOTYPE), "not a plain file"),
])
def test_unsafe_archive_is_refused_whole(tmp_path, setup, match):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_with(setup))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DownloadError, match=match) as err:
        download.extract_tar(archive, dest)
    assert str(archive) in str(err.value)
    assert os.listdir(dest) == [] and sorted(os.listdir(tmp_path)) == ["a.tar.gz", "dest"]
    assert not Path("/tmp/tinyres-evil").exists()


# ---------------------------------------------------------------------- bundled MNIST

def bundled_split(labels, n_test=1500, seed=0):
    """The recipe in tinyres/data/bundled/README.md."""
    counts = np.bincount(labels, minlength=10)
    quota = counts * n_test / len(labels)
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota, kind="stable")[: n_test - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        test_mask[rng.permutation(np.flatnonzero(labels == c))[: take[c]]] = True
    return test_mask


def test_bundled_split_sizes_and_stratification():
    train, test = BundledMNIST(), BundledMNIST(train=False)
    assert (len(train), len(test)) == (8500, 1500)
    assert train.data.shape == (8500, 28, 28) and train.targets.dtype == np.int64
    counts = np.bincount(train.targets, minlength=10) + np.bincount(test.targets, minlength=10)
    assert np.all(np.abs(np.bincount(test.targets, minlength=10) - counts * 0.15) < 1)
    again = BundledMNIST(train=False)
    np.testing.assert_array_equal(again.data, test.data)
    np.testing.assert_array_equal(again.targets, test.targets)
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32 and 0 <= label <= 9


@pytest.mark.skipif(not SHARED_MNIST.is_file(), reason=f"{SHARED_MNIST} not present")
def test_bundled_matches_shared_npz_and_recipe():
    with np.load(SHARED_MNIST) as f:
        images, labels = f["X"].reshape(-1, 28, 28), f["y"]
    mask = bundled_split(labels)
    for train, keep in ((True, ~mask), (False, mask)):
        ds = BundledMNIST(train=train)
        np.testing.assert_array_equal(ds.data, images[keep])
        np.testing.assert_array_equal(ds.targets, labels[keep])


# ---------------------------------------------------------------------- real Fashion-MNIST

@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist_from_debian():
    for train, n in ((True, 60000), (False, 10000)):
        ds = FashionMNIST(root=DEBIAN_FASHION, train=train)
        assert ds.data.shape == (n, 28, 28)
        np.testing.assert_array_equal(np.bincount(ds.targets), [n // 10] * 10)
