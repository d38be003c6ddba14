"""The safetensors format without the safetensors package: ``read`` and ``write``, which
``tinyres.load``/``tinyres.save`` call for a path ending in ``.safetensors``.

A file is (https://github.com/huggingface/safetensors, "Format")::

    8 bytes      N, the header's length (unsigned, little-endian)
    N bytes      a UTF-8 JSON object: {name: {"dtype": "F32", "shape": [2, 3],
                 "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
                 (padded with spaces to a multiple of 8)
    the rest     the tensors' bytes, little-endian, C order; offsets count from here

It holds a flat dict of named arrays and nothing else, so there is nothing to execute.
Reading checks what the format's own readers check: every entry's byte count is its
shape's, the entries tile the data exactly (no overlap, no gap), and nothing is read
before the header has been checked.
"""
import collections
import json
import math
import struct

import numpy

from .core import backend
from .core.tensor import Tensor
from .errors import CheckpointError

SUFFIX = ".safetensors"
DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "I32": "int32",
          "U32": "uint32", "I64": "int64", "U64": "uint64", "F16": "float16", "F32": "float32",
          "F64": "float64", "BF16": "bfloat16"}
CODES = {numpy.dtype(v): k for k, v in DTYPES.items() if v != "bfloat16"}
MAX_HEADER = 100_000_000        # the reference reader's limit


def write(tensors, file, metadata=None):
    """Write ``tensors`` (a dict of str -> array or Tensor) to the binary file ``file``."""
    if not isinstance(tensors, dict):
        raise TypeError(f"save: a .safetensors file holds a dict of named arrays, not a {type(tensors).__name__}")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("save: safetensors metadata is a dict of str to str")
    header, arrays, offset = {}, [], 0
    for name, value in tensors.items():
        array = backend.to_host(value.array) if isinstance(value, Tensor) else value
        if not isinstance(name, str) or not isinstance(array, numpy.ndarray) and not backend.is_array(array):
            raise TypeError(f"save: a .safetensors file holds arrays under str names; {name!r} is a "
                            f"{type(value).__name__}")
        array = numpy.asarray(backend.to_host(array), order="C")     # 0-d stays 0-d
        code = CODES.get(array.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"save: {name!r} has dtype {array.dtype}, which safetensors cannot hold")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        arrays.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    file.write(struct.pack("<Q", len(text)))
    file.write(text)
    for data in arrays:
        file.write(data)


def read(file, name):
    """The OrderedDict of NumPy arrays in the safetensors ``file`` (bfloat16 as float32);
    ``__metadata__`` is left out (``read_metadata`` gives it)."""
    header, data = _read(file, name)
    return collections.OrderedDict((key, _array(entry, data, key, name))
                                   for key, entry in header.items() if key != "__metadata__")


def read_metadata(file, name):
    header, _ = _read(file, name)
    return header.get("__metadata__", {})


def _read(file, name):
    start = file.read(8)
    if len(start) < 8:
        raise CheckpointError(f"{name} is not a safetensors file: it is {len(start)} bytes long")
    (n,) = struct.unpack("<Q", start)
    if n > MAX_HEADER:
        raise CheckpointError(f"{name} is not a safetensors file: its header claims {n:,} bytes")
    raw = file.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise CheckpointError(f"{name} is not a safetensors file or is corrupt: unreadable header ({e})") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: a safetensors header is a JSON object")
    data = file.read()
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = numpy.dtype(DTYPES[entry["dtype"]] if entry["dtype"] != "BF16" else "uint16")
            shape = tuple(entry["shape"])
            begin, end = entry["data_offsets"]
            ok = all(isinstance(i, int) and i >= 0 for i in (*shape, begin, end))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok or end - begin != math.prod(shape) * dtype.itemsize:
            raise CheckpointError(f"{name}: the safetensors entry {key!r} is malformed or its byte count does "
                                  f"not match its shape: {entry!r}")
        spans.append((begin, end, key))
    at = 0
    for begin, end, key in sorted(spans):
        if begin != at:
            raise CheckpointError(f"{name}: the safetensors entry {key!r} starts at byte {begin}, expected {at} "
                                  "(entries overlap or leave a gap)")
        at = end
    if at != len(data):
        raise CheckpointError(f"{name}: the entries cover {at} bytes of data, the file holds {len(data)} "
                              "(truncated or padded)")
    return header, data


def _array(entry, data, key, name):
    begin, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if entry["dtype"] == "BF16":
        bits = numpy.frombuffer(data[begin:end], "<u2").astype(numpy.uint32) << 16
        return bits.view(numpy.float32).reshape(shape)
    dtype = numpy.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
    return numpy.frombuffer(data[begin:end], dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)
