"""PyTorch's ``.pth`` files without torch: ``read`` what ``torch.save`` writes, ``write`` what
``torch.load(path, weights_only=True)`` reads.  ``tinyres.save``/``tinyres.load`` call these
for a path ending in ``.pth`` or ``.pt`` (and ``load`` for any file in torch's layout).

The zip layout torch has written since 1.6 (``<archive>`` is any folder name)::

    <archive>/data.pkl          the object, a pickle (protocol 2) whose tensors refer to storages
    <archive>/data/0, 1, ...    each storage's raw bytes (byte order in <archive>/byteorder)
    <archive>/version           "3"; also .format_version, .storage_alignment, byteorder,
                                .data/serialization_id

In ``data.pkl`` a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, OrderedDict())``, where ``storage`` is a persistent id
``('storage', torch.FloatStorage, '0', 'cpu', numel)`` naming ``data/0``.  The legacy format
(``_use_new_zipfile_serialization=False``) is five pickles in a row -- a magic number, the
protocol version, system info, the object, the storage keys -- then each storage as an
int64 count and its bytes; it is read too.

Reading never runs the file: ``data.pkl`` goes through ``RestrictedUnpickler``, whose
``find_class`` admits only the globals in ``ALLOWED`` (tensor rebuilding, storage types,
``OrderedDict``, ``set``/``frozenset``/``complex``, ``torch.Size`` as a tuple, ``_codecs.encode``
for bytes) and maps
each to a function of its own, a new one each time (so that a ``BUILD`` opcode, which sets
attributes, alters nothing beyond the file's own objects); any other global (``os.system``,
a model class) raises ``CheckpointError`` naming it, before anything is called.  Every
tensor's offset, size and stride are checked against its storage before an array is made
(a tensor more than ``MAX_EXPANSION`` times its storage, by strides of 0, is refused rather
than allocated).  Tensors come back as NumPy arrays (bfloat16, which NumPy lacks, as
float32), as ``tinyres.load`` returns them for ``.npz``.

Writing emits the pickle opcodes by hand (``_Writer``): the same ``GLOBAL`` opcodes torch
writes, a persistent id per array, protocol 2, every storage 64-byte aligned as torch
aligns them.  An array met twice (the same object) is stored once.
"""
import collections
import io
import math
import pickle
import struct
import zipfile

import numpy

from .core import backend
from .core.tensor import Tensor
from .errors import CheckpointError

SUFFIXES = (".pth", ".pt")

# torch's typed storage names and the NumPy dtype of each (bfloat16 read as float32)
STORAGES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
            "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
            "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
            "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
STORAGE_OF = {numpy.dtype(v): k for k, v in STORAGES.items() if v != "bfloat16"}
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
ALIGNMENT = 64
MAX_EXPANSION = 1024        # a tensor may repeat its storage's elements (stride 0) up to this many times


# ---------------------------------------------------------------------- reading

class _StorageType:
    """What a ``torch.<X>Storage`` global becomes: only its dtype."""

    def __init__(self, name):
        self.name, self.dtype = name, STORAGES[name]


class _Storage:
    """A storage read from the file: a flat array of its dtype."""

    def __init__(self, array):
        self.array = array


class Saved:
    """A tensor the file marks as more than its values -- an ``nn.Parameter``, or a tensor
    that requires grad -- kept as its array and those marks; ``serialization.load`` makes
    it a ``Parameter`` or a Tensor that requires grad, as ``torch.load`` does."""

    def __init__(self, array, requires_grad, parameter):
        if not isinstance(requires_grad, bool):
            raise CheckpointError(f"a tensor's requires_grad is {requires_grad!r}, not True or False")
        self.array, self.requires_grad, self.parameter = array, requires_grad, parameter


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """``torch._utils._rebuild_tensor_v2``: the array ``storage[offset]`` with ``size`` and
    ``stride`` (in elements), checked to lie inside the storage, copied; a ``Saved`` when
    the tensor requires grad."""
    array = _strided_copy(storage, storage_offset, size, stride)
    return array if requires_grad is False else Saved(array, requires_grad, parameter=False)


def _strided_copy(storage, storage_offset, size, stride):
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor's storage is a {type(storage).__name__}, not a storage of the file")
    ints = [storage_offset, *size, *stride]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ints) or len(size) != len(stride):
        raise CheckpointError(f"a tensor has a bad offset {storage_offset!r}, size {size!r} or stride {stride!r}")
    flat = storage.array
    if math.prod(size) > MAX_EXPANSION * max(flat.size, 1):     # stride 0 can claim any size from 1 element
        raise CheckpointError(f"a tensor of size {tuple(size)} from a storage of {flat.size} elements: "
                              f"more than {MAX_EXPANSION} times its storage is refused")
    if math.prod(size) > 0:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise CheckpointError(f"a tensor of size {tuple(size)}, stride {tuple(stride)} at offset "
                                  f"{storage_offset} reaches past its storage of {flat.size} elements")
        view = numpy.lib.stride_tricks.as_strided(flat[storage_offset:], tuple(size),
                                                  tuple(s * flat.itemsize for s in stride), writeable=False)
        return numpy.array(view)
    return numpy.zeros(tuple(size), flat.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """``torch._utils._rebuild_parameter`` (a pickled ``nn.Parameter``): its data, marked."""
    if isinstance(data, Saved):
        data = data.array
    if not isinstance(data, (numpy.ndarray, _Pending)):
        raise CheckpointError(f"a parameter's data is a {type(data).__name__}, not a tensor of the file")
    return Saved(data, requires_grad, parameter=True)


def _codecs_encode(text, encoding="utf-8"):
    """``_codecs.encode``: how protocol 2 spells ``bytes`` (latin-1 text)."""
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError(f"_codecs.encode({type(text).__name__}, {encoding!r}): only latin1 text "
                              "(protocol 2's bytes) is admitted")
    return text.encode("latin1")


ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "complex"): complex,
    ("torch", "Size"): tuple,            # a shape saved beside the weights: a tuple of ints
    ("_codecs", "encode"): _codecs_encode,
    **{("torch", name): _StorageType for name in STORAGES},
}
IMMUTABLE = (collections.OrderedDict, set, frozenset, complex, tuple)    # built-in types: a pickle cannot alter them


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits the globals in ``ALLOWED`` only, each as tinyres's stand-in,
    and storages through ``load_storage(storage_type, key, numel)``."""

    def __init__(self, file, load_storage, name, deferred=False):
        super().__init__(file)
        self.load_storage, self.name, self.deferred = load_storage, name, deferred

    def find_class(self, module, name):
        # Each call gets a new object (but the immutable built-in types): a BUILD opcode in the
        # file that sets attributes on what it names changes that object only, never this module.
        if self.deferred and (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda *args: _Pending(args)      # the legacy format's storages come after the object
        if module == "__builtin__":           # Python 2's name, which torch.save still writes for set, complex
            module = "builtins"
        found = ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(
                f"{self.name} names the global {module}.{name}, which a weights file has no need of: refused "
                "(nothing in the file was run). tinyres reads tensors, OrderedDict and plain values only; "
                "if the file holds a whole model, save its state_dict instead "
                "(torch.save(model.state_dict(), path))")
        if found is _StorageType:
            return _StorageType(name)
        if any(found is t for t in IMMUTABLE):
            return found
        return lambda *args, **kwargs: found(*args, **kwargs)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)
                and (len(pid) == 5 or pid[5] is None)):
            raise CheckpointError(f"{self.name}: a persistent id that is not a storage: {pid!r}")
        return self.load_storage(pid[1], pid[2], pid[4])


def _dtype(storage_type, byteorder):
    if storage_type.dtype == "bfloat16":
        return numpy.dtype(byteorder + "u2")
    return numpy.dtype(storage_type.dtype).newbyteorder(byteorder)


def _as_native(array, storage_type):
    """A native-order array; bfloat16 (the high half of a float32) widened to float32."""
    if storage_type.dtype == "bfloat16":
        return (array.astype(numpy.uint32) << 16).view(numpy.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def read(file, name):
    """The object in the torch file ``file`` (a binary file object, seekable)."""
    start = file.read(4)
    file.seek(-len(start), io.SEEK_CUR)
    try:
        if start.startswith(b"PK"):
            return _read_zip(file, name)
        return _read_legacy(file, name)
    except CheckpointError as e:
        if name in str(e):
            raise
        raise CheckpointError(f"{name}: {e}") from e
    except (OSError, MemoryError):
        raise
    except Exception as e:
        raise CheckpointError(f"{name} is not a readable PyTorch file: {type(e).__name__}: {e}") from e


def is_torch_zip(zf):
    """Whether the open ``zipfile.ZipFile`` is in torch's layout (a ``<folder>/data.pkl``)."""
    return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in zf.namelist())


def _read_zip(file, name):
    with zipfile.ZipFile(file) as zf:
        pickles = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not pickles:
            raise CheckpointError(f"{name} is a zip file but not in PyTorch's layout (no <archive>/data.pkl)")
        prefix = pickles[0][:-len("data.pkl")]
        names = set(zf.namelist())
        byteorder = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{name}: unknown byte order {byteorder!r}")
        storages = {}

        def load_storage(storage_type, key, numel):
            if key not in storages:
                entry = prefix + "data/" + key
                if entry not in names:
                    raise CheckpointError(f"{name}: a tensor refers to the storage {key!r}, which the file lacks")
                dtype = _dtype(storage_type, "<" if byteorder == "little" else ">")
                raw = zf.read(entry)
                if len(raw) < numel * dtype.itemsize:
                    raise CheckpointError(f"{name}: storage {key!r} holds {len(raw)} bytes, fewer than its "
                                          f"{numel} {storage_type.dtype} elements need")
                storages[key] = _Storage(_as_native(numpy.frombuffer(raw, dtype, numel), storage_type))
            return storages[key]

        with zf.open(prefix + "data.pkl") as pkl:
            return RestrictedUnpickler(pkl, load_storage, name).load()


def _read_legacy(file, name):
    """torch's format before 1.6: five pickles in a row, then the storages' bytes."""
    def plain():
        return RestrictedUnpickler(file, _no_storage, name).load()

    if plain() != LEGACY_MAGIC:
        raise CheckpointError(f"{name} is not a PyTorch file: neither a zip nor torch's legacy format")
    if plain() != 1001:
        raise CheckpointError(f"{name}: an unknown version of torch's legacy format")
    info = plain()
    little = not isinstance(info, dict) or info.get("little_endian", True)
    wanted = {}

    def load_storage(storage_type, key, numel):
        wanted.setdefault(key, (storage_type, numel, _Storage(None)))
        return wanted[key][2]

    obj = RestrictedUnpickler(file, load_storage, name, deferred=True).load()
    keys = plain()
    if not isinstance(keys, list):
        raise CheckpointError(f"{name}: the list of storages is missing")
    for key in keys:
        count = struct.unpack("<q" if little else ">q", file.read(8))[0]
        if key not in wanted:
            raise CheckpointError(f"{name}: the storage {key!r} is not used by any tensor")
        storage_type, numel, storage = wanted[key]
        dtype = _dtype(storage_type, "<" if little else ">")
        raw = file.read(count * dtype.itemsize)
        if count < numel or len(raw) < count * dtype.itemsize:
            raise CheckpointError(f"{name} is truncated: storage {key!r} is cut short")
        storage.array = _as_native(numpy.frombuffer(raw, dtype, count), storage_type)
    missing = set(wanted) - set(keys)
    if missing:
        raise CheckpointError(f"{name}: the storages {sorted(missing)} are missing")
    return _replace_legacy_views(obj)


def _no_storage(*args):
    raise CheckpointError("a storage where none belongs")


class _Pending:
    """A tensor of the legacy format, rebuilt once its storage's bytes have been read."""

    def __init__(self, args):
        self.args = args


def _replace_legacy_views(obj):
    """Rebuild the legacy format's tensors (their storages were read after the object)."""
    if isinstance(obj, _Pending):
        return _rebuild_tensor_v2(*obj.args)
    if isinstance(obj, Saved):
        return Saved(_replace_legacy_views(obj.array), obj.requires_grad, obj.parameter)
    if isinstance(obj, dict):
        return type(obj)((k, _replace_legacy_views(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace_legacy_views(v) for v in obj)
    return obj


# ---------------------------------------------------------------------- writing

class _Writer:
    """Protocol-2 pickle opcodes for the few types a weights file holds (see ``write``)."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages = []          # (key, host array), in order
        self._keys = {}             # id(array) -> key
        self._alive = []            # keeps the arrays alive, so ids stay unique

    def op(self, *parts):
        for part in parts:
            self.out.write(part)

    def global_(self, module, name):
        self.op(b"c", module.encode() + b"\n", name.encode() + b"\n")

    def value(self, obj, where):
        if isinstance(obj, numpy.generic):
            obj = obj.item()                 # a NumPy scalar: a plain value (torch cannot read NumPy's)
        array = as_host_array(obj)
        if array is not None:
            return self.tensor(array, where)
        if obj is None:
            self.op(b"N")
        elif obj is True or obj is False:
            self.op(b"\x88" if obj else b"\x89")
        elif isinstance(obj, int):
            self.int_(obj)
        elif isinstance(obj, float):
            self.op(b"G", struct.pack(">d", obj))
        elif isinstance(obj, str):
            data = obj.encode("utf-8", "surrogatepass")
            self.op(b"X", struct.pack("<I", len(data)), data)
        elif isinstance(obj, (list, tuple)):
            self.op(b"]" if isinstance(obj, list) else b"(")
            if isinstance(obj, list) and obj:
                self.op(b"(")
            for i, item in enumerate(obj):
                self.value(item, f"{where}[{i}]")
            self.op((b"e" if obj else b"") if isinstance(obj, list) else b"t")
        elif isinstance(obj, dict):
            if isinstance(obj, collections.OrderedDict):
                self.global_("collections", "OrderedDict")
                self.op(b")R")
            else:
                self.op(b"}")
            if obj:
                self.op(b"(")
                for k, v in obj.items():
                    if not isinstance(k, (str, int)) or isinstance(k, bool):
                        raise TypeError(f"save: {where} has the key {k!r}; a .pth written by tinyres has str "
                                        "or int keys")
                    self.value(k, f"a key of {where}")
                    self.value(v, f"{where}[{k!r}]")
                self.op(b"u")
        else:
            raise TypeError(f"save: cannot store {where}, a {type(obj).__name__}, in a .pth; it holds dicts, "
                            "lists and tuples of arrays, Tensors and int/float/bool/str/None")

    def int_(self, n):
        if -2 ** 31 <= n < 2 ** 31:
            self.op(b"J", struct.pack("<i", n))
        else:
            data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            if len(data) > 255:
                raise TypeError(f"save: the int {n} is too large for a .pth")
            self.op(b"\x8a", bytes([len(data)]), data)

    def tensor(self, array, where):
        storage = STORAGE_OF.get(array.dtype.newbyteorder("="))
        if storage is None:
            raise TypeError(f"save: cannot store {where}, an array of dtype {array.dtype}, in a .pth")
        key = self._keys.get(id(array))
        if key is None:
            key = self._keys[id(array)] = str(len(self.storages))
            self.storages.append((key, numpy.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))))
            self._alive.append(array)
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.op(b"((")
        self.value("storage", where)
        self.global_("torch", storage)
        self.value(key, where)
        self.value("cpu", where)
        self.int_(array.size)
        self.op(b"tQ")                                   # the persistent id, then the storage
        self.int_(0)                                     # offset
        strides, step = [], 1
        for n in reversed(array.shape):                 # C-contiguous strides, in elements
            strides.append(step)
            step *= n
        self.value(tuple(array.shape), where)
        self.value(tuple(reversed(strides)), where)
        self.op(b"\x89")                                 # requires_grad=False
        self.global_("collections", "OrderedDict")
        self.op(b")R", b"tR")                            # backward_hooks=OrderedDict(); the call


def as_host_array(obj):
    """A NumPy array for a NumPy/CuPy array or a Tensor (copied off the GPU); None otherwise."""
    if isinstance(obj, Tensor):
        obj = obj.array
    if backend.is_device_array(obj):
        return backend.to_host(obj)
    return obj if isinstance(obj, numpy.ndarray) else None


def _aligned_entry(zf, name, data):
    """Write ``data`` as a stored entry whose bytes start at a multiple of ``ALIGNMENT``, as
    torch's writer does, padding the local header's extra field."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    offset = zf.fp.tell() + 30 + len(name.encode())
    pad = (-(offset + 4)) % ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def write(obj, file, archive="archive"):
    """Write ``obj`` to the binary file object ``file`` in torch's zip layout."""
    writer = _Writer()
    writer.op(b"\x80\x02")
    writer.value(obj, "obj")
    writer.op(b".")
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as zf:
        _aligned_entry(zf, f"{archive}/data.pkl", writer.out.getvalue())
        _aligned_entry(zf, f"{archive}/.format_version", b"1")
        _aligned_entry(zf, f"{archive}/.storage_alignment", str(ALIGNMENT).encode())
        _aligned_entry(zf, f"{archive}/byteorder", b"little")
        for key, array in writer.storages:
            _aligned_entry(zf, f"{archive}/data/{key}", array.tobytes())
        _aligned_entry(zf, f"{archive}/version", b"3\n")
        _aligned_entry(zf, f"{archive}/.data/serialization_id", b"0" * 40)
