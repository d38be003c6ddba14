"""Checkpoints without pickle: ``save(obj, path)`` and ``load(path)``.

A checkpoint holds a state_dict, or any nest of dicts, lists and tuples whose leaves are
arrays (NumPy, CuPy, Tensors) and plain values (int, float, bool, str, None).

The file is an ordinary ``.npz`` (``numpy.savez``, a zip of ``.npy`` files):

* every array, copied to the host, is stored under a flat key ``array0``, ``array1``, ...;
* one more entry, ``__tinyres__``, is a uint8 array holding a UTF-8 JSON header::

      {"format": "tinyres-checkpoint", "version": 1, "sha256": "...", "tree": ...}

  ``tree`` is the structure with the plain values in it: a JSON number, string, bool or
  null is itself; ``{"dict": [[key, node], ...]}`` (``"odict"`` for an OrderedDict)
  keeps key order; ``{"list": [...]}``, ``{"tuple": [...]}``; ``{"array": "array3"}``
  names a stored array, ``{"scalar": "array4"}`` a NumPy scalar; ``{"int": "0x..."}``
  is an int beyond 64 bits and ``{"float": "nan"}`` a non-finite float.

``sha256`` is taken over every array's key, dtype, shape and bytes, keys sorted.  Loading
never unpickles (``allow_pickle=False``), checks the header and the checksum, and builds
the result only once everything checked out; any problem is a ``CheckpointError`` that
names the file.  Saving to a path is atomic: a crash leaves the old file or the new one,
never half of one.
"""
import collections
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import socket
import time
import zipfile

import numpy

from .core import backend
from . import pth, safetensors_io
from .pth import as_host_array  # noqa: F401  (torch_weights uses it from here)
from .errors import CheckpointError, UserError  # noqa: F401
from .core.tensor import Parameter, Tensor

FORMAT = "tinyres-checkpoint"
VERSION = 1
HEADER_KEY = "__tinyres__"
_INT64 = (-2 ** 63, 2 ** 63)


# CheckpointError lives in errors.py, so that pth.py (below this module) raises it too


# ---------------------------------------------------------------------- writing

NPZ_SUFFIX = ".npz"          # tinyres's own format; other names get torch's (see save)


def save(obj, f):
    """Save ``obj`` (a state_dict or a nest of dicts/lists/tuples of arrays and plain values)
    to ``f``, a path or a binary file object.  Arrays are stored as host NumPy arrays.

    A path is written atomically (see ``atomic_write``); a file object is written as is.
    The format follows the name, as a PyTorch user expects: a path ending in ``.npz`` (and a
    file object) gets tinyres's own format, checksummed; one ending in ``.safetensors`` (a
    flat dict of arrays only) the safetensors format (``tinyres.safetensors_io``); any other
    path (``model.pth``, ``checkpoint.pth.tar``, ``last.ckpt``) PyTorch's zip format
    (``tinyres.pth``), which ``torch.load(path, weights_only=True)`` reads.
    """
    name = None if hasattr(f, "write") else os.fspath(f)
    if name is not None and name.endswith(safetensors_io.SUFFIX):
        atomic_write(f, lambda file: safetensors_io.write(obj, file))
        return
    if name is not None and not name.endswith(NPZ_SUFFIX):
        atomic_write(f, lambda file: pth.write(obj, file))
        return
    arrays = {}
    tree = _encode(obj, arrays, "obj")
    header = {"format": FORMAT, "version": VERSION, "sha256": _checksum(arrays), "tree": tree}
    arrays[HEADER_KEY] = numpy.frombuffer(json.dumps(header, allow_nan=False).encode(), numpy.uint8)
    if hasattr(f, "write"):
        numpy.savez(f, **arrays)
    else:
        atomic_write(f, lambda file: numpy.savez(file, **arrays))


def atomic_write(path, write):
    """Call ``write(file)`` on a new temporary file beside ``path``, then move it onto ``path``.

    The steps: create ``.NAME.HOST-PID.RANDOM.tmp`` in the same folder, write, flush,
    ``os.fsync``, ``os.replace`` onto ``path`` (atomic on POSIX and Windows), then fsync the
    folder so the rename itself survives a power cut (where the OS allows it).  If anything
    fails, the temporary file is removed and ``path`` is untouched.  A writer killed outright
    (SIGKILL, a power cut) leaves its temporary file behind; the next save or load of
    ``path`` removes it once it is certainly stale (``remove_stale_temp_files``), and never
    the temporary file of a writer that is still running.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, temp_name(os.path.basename(path)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)
    remove_stale_temp_files(path)


# The host in a temporary file's name, as 8 hex digits of a hash (a hostname may hold any
# character): a pid means something only on the host that wrote it (a shared folder, NFS).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# How old (since its last write) a temporary file of another host must be before it counts as stale;
# a live writer writes to its file all the time and renames it the moment it is done.
STALE_AFTER_S = 24 * 3600


def temp_name(name):
    """The temporary file's name for a write of ``name``: ``.NAME.HOST-PID.RANDOM.tmp``."""
    return f".{name}.{_HOST}-{os.getpid()}.{secrets.token_hex(6)}.tmp"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)          # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:      # it exists, run by another user
        return True
    return True


def _is_stale(entry, host, pid):
    """Whether the temporary file ``entry``, written by ``pid`` on ``host``, belongs to a dead writer.

    On this host (POSIX) the pid decides: a writer whose process is gone will never finish.
    Written on another host, by an old tinyres (no pid in the name) or on Windows (where
    ``os.kill`` would end the process, not ask about it), only age tells: no write for
    ``STALE_AFTER_S``."""
    if host == _HOST and pid is not None and os.name == "posix":
        return not _pid_alive(int(pid))
    try:
        return time.time() - entry.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:     # its writer just finished
        return False


def remove_stale_temp_files(path):
    """Delete the temporary files that killed writes of ``path`` left beside it; returns
    their names.  Only files named as ``atomic_write`` names this path's temporary files are
    looked at, and of those only the stale ones go (``_is_stale``): a live writer's file stays.
    Problems (a read-only folder) are ignored: tidying must never fail a save or a load."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    leftover = re.compile(rf"\.{re.escape(name)}\.(?:([0-9a-f]{{8}})-([0-9]{{1,10}})\.)?[0-9a-f]{{12}}\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = leftover.fullmatch(entry.name)
            if match and _is_stale(entry, *match.groups()):
                with contextlib.suppress(OSError):
                    os.remove(entry.path)
                    removed.append(entry.name)
    return removed


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable; folders cannot be opened on Windows (skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(obj, arrays, where):
    """The JSON node for ``obj``; arrays go into ``arrays`` (``where`` names obj in errors)."""
    if isinstance(obj, numpy.generic):
        return {"scalar": _store(numpy.asarray(obj), arrays, where)}
    array = as_host_array(obj)
    if array is not None:
        return {"array": _store(array, arrays, where)}
    if isinstance(obj, dict):
        tag = "odict" if isinstance(obj, collections.OrderedDict) else "dict"
        return {tag: [[_encode_plain(k, f"a key of {where}"), _encode(v, arrays, f"{where}[{k!r}]")]
                      for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        tag = "tuple" if isinstance(obj, tuple) else "list"
        return {tag: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    return _encode_plain(obj, where)


def _encode_plain(value, where):
    """The JSON node for an int, float, bool, str or None (exact: floats via repr)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        value = int(value)
        return value if _INT64[0] <= value < _INT64[1] else {"int": hex(value)}
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    hint = ("; convert torch tensors with tinyres.torch_weights.export_torch_state_dict or .numpy()"
            if type(value).__module__.startswith("torch") else "")
    raise TypeError(f"save: cannot store {where}, a {type(value).__name__}; a checkpoint holds dicts, "
                    f"lists and tuples of arrays, Tensors and int/float/bool/str/None{hint}")


def _store(array, arrays, where):
    if array.dtype.kind not in "biufc":
        raise TypeError(f"save: cannot store {where}, an array of dtype {array.dtype}; only bool and "
                        "numeric arrays can be saved (checkpoints never use pickle)")
    key = f"array{len(arrays)}"
    arrays[key] = array
    return key


def _checksum(arrays):
    """SHA-256 over each array's key, dtype, shape and bytes (C order), keys sorted."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = arrays[key]
        digest.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        digest.update(numpy.ascontiguousarray(a).reshape(-1).view(numpy.uint8))
    return digest.hexdigest()


# ---------------------------------------------------------------------- reading

def load(f, map_location=None, weights_only=None, **pickle_load_args):
    """Load what ``save`` wrote to ``f`` (a path or a binary file object).

    Arrays come back as NumPy arrays (``Module.load_state_dict`` and
    ``Optimizer.load_state_dict`` take them as they are); with ``map_location`` ("cpu",
    "cuda", "cuda:1" or a Device; torch's dict {"cuda:0": "cpu"}, whose target is taken, or
    its ``lambda storage, loc: storage``, which keeps them on the CPU) they come back as
    Tensors on that device.  ``weights_only`` is accepted as torch's: tinyres loads weights
    only whatever it says (nothing in a file is ever run).  NumPy scalars
    come back as NumPy scalars, dicts/OrderedDicts/lists/tuples and plain values as saved.
    Raises ``CheckpointError`` for a file that is truncated, altered, not a tinyres
    checkpoint or from a newer format, and never returns part of one.

    A file written by ``torch.save`` (its zip layout, or the legacy format) is read by
    ``tinyres.pth.read`` without torch and without running anything: tensors come back as
    Tensors, as from ``torch.load`` (on the CPU, or ``map_location``'s device); a file naming any global beyond tensors,
    storages and OrderedDict is refused with a ``CheckpointError`` that names it.  A path
    ending in ``.safetensors`` is read by ``tinyres.safetensors_io`` (an OrderedDict of arrays).
    """
    to_array = _as_is if map_location is None else _tensor_maker(map_location)
    if hasattr(f, "read"):
        return _load(f, getattr(f, "name", repr(f)), to_array)
    name = os.fspath(f)
    with open(name, "rb") as file:
        remove_stale_temp_files(name)       # what killed writes of this checkpoint left
        if name.endswith(safetensors_io.SUFFIX):
            return _map_arrays(safetensors_io.read(file, name), to_array)
        return _load(file, name, to_array)


def _as_is(array):
    return array


def _tensor_maker(map_location):
    if isinstance(map_location, dict):          # torch's {saved location: target}: one target here
        targets = set(map(str, map_location.values()))
        if len(targets) != 1:
            raise ValueError(f"load: a map_location dict must map to one device, got {map_location!r}")
        map_location = targets.pop()
    elif callable(map_location):                # torch's lambda storage, loc: storage -- the CPU
        map_location = "cpu"
    device = backend.Device(map_location)
    return lambda a: Tensor(backend.to_device(a, device))


def _load(file, name, to_array):
    if _is_torch_file(file):          # torch.load gives Tensors: so does this, for torch's files
        return _map_arrays(pth.read(file, name), Tensor if to_array is _as_is else to_array)
    arrays = _read_arrays(file, name)
    header = _read_header(arrays, name)
    stored = _checksum(arrays)
    if stored != header.get("sha256"):
        raise CheckpointError(f"checkpoint {name}: checksum mismatch (SHA-256 of the arrays is {stored}, "
                              f"the header says {header.get('sha256')}): the file was altered after it "
                              "was written")
    try:
        return _decode(header["tree"], arrays, to_array)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: bad structure in its "
                              f"header ({type(e).__name__}: {e})") from e


def _is_torch_file(file):
    """A legacy torch file (a pickle: byte 0x80) or a zip in torch's layout."""
    start = file.read(4)
    file.seek(-len(start), os.SEEK_CUR)
    if start[:1] == b"\x80":
        return True
    if start != b"PK\x03\x04":
        return False
    at = file.tell()
    try:
        with zipfile.ZipFile(file) as zf:
            return pth.is_torch_zip(zf)
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    finally:
        file.seek(at)


def _map_arrays(obj, to_array):
    """``obj`` with ``to_array`` applied to every NumPy array in it (a torch file's
    parameters made ``Parameter``s, its tensors that require grad made so again)."""
    if isinstance(obj, numpy.ndarray):
        return to_array(obj)
    if isinstance(obj, pth.Saved):
        tensor = to_array(obj.array)
        if obj.parameter:
            return Parameter(tensor, requires_grad=obj.requires_grad)
        return tensor.requires_grad_(obj.requires_grad)
    if isinstance(obj, dict):
        return type(obj)((k, _map_arrays(v, to_array)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_arrays(v, to_array) for v in obj)
    return obj


def _read_arrays(file, name):
    """Every entry of the npz ``file``, header included; anything wrong with the bytes is a
    CheckpointError.  Nothing is read before the header is known to be there."""
    magic = file.read(4)
    file.seek(-len(magic), os.SEEK_CUR)
    if len(magic) < 4:
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: it is {len(magic)} bytes long")
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"{name} is not a tinyres checkpoint: it is not an .npz (zip) file")
    with _reading(name):
        npz = numpy.load(file, allow_pickle=False)
    with npz:
        if HEADER_KEY not in npz.files:
            raise CheckpointError(f"{name} is not a tinyres checkpoint: it has no {HEADER_KEY!r} entry "
                                  f"(it holds {', '.join(npz.files[:5]) or 'nothing'}"
                                  f"{', ...' if len(npz.files) > 5 else ''}); read plain .npz files "
                                  "with numpy.load")
        return {key: _read_member(npz, key, name) for key in npz.files}


def _read_member(npz, key, name):
    _check_claimed_size(npz, key, name)
    with _reading(name, key):
        array = npz[key]
    if not isinstance(array, numpy.ndarray):     # NpzFile returns non-.npy entries as bytes
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: entry {key!r} is not an array")
    return array


def _check_claimed_size(npz, key, name):
    """Refuse an entry whose .npy header claims more bytes than the entry holds, before
    NumPy allocates them: a damaged or hostile header must not ask for terabytes."""
    info = npz.zip.getinfo(key + ".npy")
    with _reading(name, key), npz.zip.open(info) as member:
        version = numpy.lib.format.read_magic(member)
        read_header = numpy.lib.format.read_array_header_1_0 if version == (1, 0) else \
            numpy.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > info.file_size:
            raise ValueError(f"its header claims {shape} {dtype} ({claimed:,} bytes) but the entry holds "
                             f"{info.file_size:,} bytes")


@contextlib.contextmanager
def _reading(name, key=None):
    """Turn an error raised by the file's bytes into a CheckpointError (I/O errors pass)."""
    try:
        yield
    except (OSError, MemoryError):
        raise
    except Exception as e:
        if "CRC" in str(e):     # zipfile checks each entry's CRC-32 as it reads it
            raise CheckpointError(f"checkpoint {name}: checksum mismatch in entry {key!r} ({e}): "
                                  "the file was altered or damaged after it was written") from e
        entry = f"entry {key!r}: " if key else ""
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: {entry}{e}") from e


def _read_header(arrays, name):
    """Pop and check the JSON header: the format name and the version."""
    raw = arrays.pop(HEADER_KEY)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as e:
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: unreadable header ({e})") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a tinyres checkpoint: its {HEADER_KEY!r} entry does not "
                              f"say format {FORMAT!r}")
    version = header.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        raise CheckpointError(f"checkpoint {name} has format version {version!r}; this tinyres reads "
                              f"version {VERSION}" + (" (upgrade tinyres to read it)" if newer else ""))
    return header


def _decode(node, arrays, to_array):
    """The object for a JSON node (the inverse of ``_encode``)."""
    if not isinstance(node, dict):
        return node
    (tag, body), = node.items()
    if tag in ("dict", "odict"):
        kind = collections.OrderedDict if tag == "odict" else dict
        return kind((_decode(k, arrays, to_array), _decode(v, arrays, to_array)) for k, v in body)
    if tag in ("list", "tuple"):
        items = [_decode(v, arrays, to_array) for v in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "array":
        return to_array(arrays[body])
    if tag == "scalar":
        return arrays[body][()]
    if tag == "int":
        return int(body, 16)
    if tag == "float":
        return float(body)
    raise ValueError(f"unknown node {tag!r}")


RUN_FORMAT = "tinyres-run"     # the marker of a checkpoint written by tinyres.train.Trainer


def load_run(path):
    """A run checkpoint written by ``Trainer``, checked to be one."""
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != RUN_FORMAT:
        raise UserError(f"{path} is not a tinyres training checkpoint (no '{RUN_FORMAT}' format marker)")
    return state

