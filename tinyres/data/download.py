"""Fetching datasets from their official homes, safely.

Three rules, each so that a bad byte can never look like a good dataset:

1. **Checksum before use.**  Every file is checked against the MD5 its publisher (and
   torchvision) lists.  A download streams into a temporary file beside its target and is
   renamed onto the final name only after the checksum matched; a download that fails,
   is cut short or does not match is deleted.
2. **Retry what may pass.**  Network errors and cut streams are retried a few times; a
   wrong checksum is not (the server sent a whole file, just not the right one).
3. **Extract inside the folder.**  A tar member that would land outside the target folder
   (``../x``, ``/etc/x``), a symbolic or hard link, or a device file refuses the whole
   archive before anything is written.

Tests replace :data:`urlopen` (the one place that touches the network) with a stand-in.
"""
import hashlib
import http.client
import os
import sys
import tarfile
import tempfile
import time
import urllib.error
from urllib.request import Request, urlopen  # noqa: F401  (tests replace download.urlopen)

from tqdm import tqdm

from ..errors import UserError

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR_SITE = "https://www.cs.toronto.edu/~kriz/"

# (url, published MD5) of every file a dataset needs, as in torchvision.
RESOURCES = {
    "MNIST": [
        (MNIST_MIRROR + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        (MNIST_MIRROR + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        (MNIST_MIRROR + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        (MNIST_MIRROR + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ],
    "FashionMNIST": [
        (FASHION_MIRROR + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        (FASHION_MIRROR + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        (FASHION_MIRROR + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        (FASHION_MIRROR + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ],
    "CIFAR10": [(CIFAR_SITE + "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")],
    "CIFAR100": [(CIFAR_SITE + "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")],
}

RETRIES = 3          # attempts per file
RETRY_WAIT_S = 2.0   # wait before attempt k+1: k * RETRY_WAIT_S
TIMEOUT_S = 60
CHUNK = 1 << 20


class DownloadError(RuntimeError, UserError):
    """A download failed, did not match its checksum, or an archive was unsafe."""


def md5sum(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name, folder):
    """Download every file of dataset ``name`` (a key of RESOURCES) into ``folder`` and
    unpack the archives there.  A file already present with the right MD5 is kept."""
    os.makedirs(folder, exist_ok=True)
    for url, md5 in RESOURCES[name]:
        path = os.path.join(folder, url.rsplit("/", 1)[1])
        if not (os.path.isfile(path) and md5sum(path) == md5):
            download_url(url, path, md5)
        if path.endswith((".tar.gz", ".tgz")):
            extract_tar(path, folder)


def download_url(url, path, md5, retries=None):
    """Stream ``url`` into ``path``; the file appears only once its MD5 equals ``md5``."""
    retries = RETRIES if retries is None else retries
    for attempt in range(1, retries + 1):
        try:
            return _download_once(url, path, md5)
        except (OSError, http.client.HTTPException) as e:
            final = isinstance(e, urllib.error.HTTPError) and e.code < 500  # 404 etc.
            if final or attempt == retries:
                raise DownloadError(f"could not download {url} to {path} after {attempt} "
                                    f"attempt(s): {e}") from e
            print(f"tinyres: download of {url} failed ({e}); retrying", file=sys.stderr)
            time.sleep(attempt * RETRY_WAIT_S)


def _download_once(url, path, md5):
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        print(f"tinyres: downloading {url}", file=sys.stderr)
        with os.fdopen(fd, "wb") as out, urlopen(Request(url), timeout=TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected else None
            received = 0
            with tqdm(total=expected, unit="B", unit_scale=True, desc=name, disable=None) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
        if expected is not None and received != expected:
            raise http.client.IncompleteRead(b"", expected - received)
        if digest.hexdigest() != md5:
            raise DownloadError(
                f"{url}: checksum mismatch, expected MD5 {md5}, got {digest.hexdigest()}; "
                f"nothing was written to {path} (the download was deleted)")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_member(archive, member, dest):
    where = f"{archive}: member {member.name!r}"
    if member.issym() or member.islnk():
        raise DownloadError(f"{where} is a link; archives with links are refused")
    if not (member.isfile() or member.isdir()):
        raise DownloadError(f"{where} is not a plain file or folder; refused")
    target = os.path.realpath(os.path.join(dest, member.name))
    if os.path.commonpath([dest, target]) != dest:
        raise DownloadError(f"{where} would land outside {dest}; refused")
    return target


def extract_tar(archive, dest):
    """Unpack ``archive`` into ``dest``, refusing it whole if any member is unsafe."""
    dest = os.path.realpath(dest)
    with tarfile.open(archive) as tar:
        members = [(m, _check_member(archive, m, dest)) for m in tar.getmembers()]
        for member, target in members:
            if member.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with tar.extractfile(member) as src, open(target + ".part", "wb") as out:
                while block := src.read(CHUNK):
                    out.write(block)
            os.replace(target + ".part", target)
