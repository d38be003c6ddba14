"""tinyres.save / tinyres.load of .safetensors files (tinyres/safetensors_io.py), without the
safetensors package: a file built byte by byte from the format's description reads back;
round trips keep every dtype and shape; malformed files are refused before any array is
made; the safetensors package, where installed, reads what tinyres wrote."""
import collections
import json
import struct

import numpy as np
import pytest

import tinyres
from tinyres import safetensors_io
from tinyres.serialization import CheckpointError

rng = np.random.default_rng(0)


def handmade(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_a_file_built_from_the_format_description_loads(tmp_path):
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([1, -2], dtype="<i8")
    header = {"__metadata__": {"format": "pt"},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    path = tmp_path / "hand.safetensors"
    path.write_bytes(handmade(header, a.tobytes() + b.tobytes()))
    back = tinyres.load(path)
    assert list(back) == ["b", "a"]
    np.testing.assert_array_equal(back["a"], a)
    np.testing.assert_array_equal(back["b"], b)
    with open(path, "rb") as f:
        assert safetensors_io.read_metadata(f, str(path)) == {"format": "pt"}


def test_round_trip_every_dtype(tmp_path):
    state = collections.OrderedDict(
        [(d, (rng.standard_normal((3, 2)) * 40).astype(d))
         for d in ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "uint16",
                   "uint32", "uint64", "bool"]]
        + [("scalar", np.array(1.5)), ("empty", np.zeros((0, 4), np.float32)), ("view", np.arange(12.0)[::3]),
           ("tensor", tinyres.tensor([[1.0, 2.0]])), ("big_endian", np.arange(3, dtype=">i4"))])
    path = tmp_path / "x.safetensors"
    tinyres.save(state, path)
    assert path.read_bytes()[8:8 + struct.unpack("<Q", path.read_bytes()[:8])[0]].endswith((b"}", b" "))
    assert (struct.unpack("<Q", path.read_bytes()[:8])[0]) % 8 == 0
    back = tinyres.load(path)
    assert list(back) == list(state)
    for key, value in state.items():
        want = np.asarray(value)
        assert back[key].dtype == want.dtype.newbyteorder("=") and back[key].shape == want.shape, key
        np.testing.assert_array_equal(back[key], want, err_msg=key)
    tensors = tinyres.load(path, map_location="cpu")
    assert isinstance(tensors["float32"], tinyres.Tensor)


def test_bfloat16_reads_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 3.25], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf.safetensors"
    path.write_bytes(handmade({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bits.tobytes()))
    np.testing.assert_array_equal(tinyres.load(path)["w"], values)


@pytest.mark.parametrize("header, data, match", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "byte count"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, b"\0" * 6, "overlap or leave a gap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9, "truncated or padded"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 2, "truncated or padded"),
    ({"a": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "malformed"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "malformed"),
])
def test_malformed_files_are_refused(tmp_path, header, data, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(handmade(header, data))
    with pytest.raises(CheckpointError, match=match):
        tinyres.load(path)


def test_a_header_claiming_too_much_or_not_json_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 2 ** 40) + b"{}")
    with pytest.raises(CheckpointError, match="claims"):
        tinyres.load(path)
    path.write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(CheckpointError, match="unreadable header"):
        tinyres.load(path)


def test_only_a_flat_dict_of_arrays_can_be_saved(tmp_path):
    with pytest.raises(TypeError, match="'epoch' is a int"):
        tinyres.save({"w": np.ones(2), "epoch": 3}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="not a list"):
        tinyres.save([np.ones(2)], tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="complex128"):
        tinyres.save({"w": np.ones(2, complex)}, tmp_path / "x.safetensors")


def test_the_safetensors_package_reads_it_where_installed(tmp_path):
    numpy_loader = pytest.importorskip("safetensors.numpy")
    state = {"w": rng.standard_normal((2, 3)), "i": np.arange(4, dtype=np.int32)}
    tinyres.save(state, tmp_path / "x.safetensors")
    back = numpy_loader.load_file(str(tmp_path / "x.safetensors"))
    for key in state:
        np.testing.assert_array_equal(back[key], state[key])
