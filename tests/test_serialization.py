"""tinyres.serialization: exact round trips, atomic writes, and a clear CheckpointError for
every way a file can be broken (truncated, a flipped byte, foreign, too new, altered)."""
import collections
import io
import json
import os
import struct

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.nn as nn
import tinyres.optim  # noqa: F401
from tinyres import serialization
from tinyres.serialization import CheckpointError, load, save

from helpers import noncontiguous

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex64]
SHAPES = [(), (1,), (3, 0), (2, 1, 3), (3, 5)]
PLAIN = [0, -7, 2 ** 63, -(2 ** 63) - 1, 3 ** 5000, 0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308,
         float("inf"), float("-inf"), True, False, None, "", "ünïcødé \u2603", "a.b/c"]


def array(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 50).astype(dtype)


def assert_same(a, b):
    """Equal values *and* types, recursively; arrays equal in dtype, shape and bits."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b)
    else:
        assert a == b


def checkpoint():
    """A training checkpoint: nested dicts, lists, tuples, dotted keys, int keys, all dtypes."""
    model = collections.OrderedDict((f"layer{i}.{np.dtype(d).name}/w", array(s, d, seed=i))
                                    for i, (d, s) in enumerate(zip(DTYPES, SHAPES * 2)))
    return {"model": model,
            "optimizer": {"state": {0: {"momentum_buffer": array((3, 5), np.float32)}},
                          "param_groups": [{"lr": 0.1, "params": [0], "nesterov": False}]},
            "epoch": 3, "plain": PLAIN, "pair": (np.float32(1.5), np.int64(-2)), "empty": {}, "none": []}


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "last.npz"
    save(checkpoint(), path)
    return path


# ---------------------------------------------------------------------- round trips

def test_round_trip_is_exact(ckpt):
    assert_same(load(ckpt), checkpoint())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make", [np.asarray, noncontiguous, np.asfortranarray])
def test_arrays_keep_dtype_shape_and_bits(tmp_path, dtype, shape, make):
    a = make(array(shape, dtype))
    save({"a": a}, tmp_path / "a.npz")
    b = load(tmp_path / "a.npz")["a"]
    assert type(b) is np.ndarray
    assert_same(np.asarray(a), b)


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_are_exact(tmp_path, value):
    save(value, tmp_path / "v.npz")
    assert_same(load(tmp_path / "v.npz"), value)


def test_nan_and_numpy_scalars(tmp_path):
    save([float("nan"), np.float64(2.5), np.bool_(True)], tmp_path / "v.npz")
    nan, scalar, flag = load(tmp_path / "v.npz")
    assert np.isnan(nan) and type(scalar) is np.float64 and scalar == 2.5 and type(flag) is np.bool_


def test_tensors_are_saved_as_arrays_and_loaded_as_tensors_with_map_location(tmp_path):
    t = tinyres.randn(2, 3, requires_grad=True)
    save({"w": t, "n": tinyres.tensor(5)}, tmp_path / "t.npz")
    plain = load(tmp_path / "t.npz")
    assert type(plain["w"]) is np.ndarray and plain["n"].dtype == np.int64
    tensors = load(tmp_path / "t.npz", map_location="cpu")
    assert isinstance(tensors["w"], tinyres.Tensor) and tensors["w"].device == "cpu"
    np.testing.assert_array_equal(tensors["w"].numpy(), t.numpy())
    assert not tensors["w"].requires_grad


def test_device_arrays_are_saved_from_the_host(tmp_path, fake_cupy):
    a = array((2, 3), np.float32)
    save({"raw": fake_cupy.asarray(a), "tensor": tinyres.Tensor(fake_cupy.asarray(a))}, tmp_path / "d.npz")
    assert len(fake_cupy.transfers) == 2          # one copy to the host per array
    for value in load(tmp_path / "d.npz").values():
        assert type(value) is np.ndarray
        assert_same(value, a)


def test_module_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    model(tinyres.randn(2, 2, 5, 5))            # moves the running statistics
    save(model.state_dict(), tmp_path / "m.npz")
    other = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    other.load_state_dict(load(tmp_path / "m.npz"))
    assert_same({k: v.numpy() for k, v in other.state_dict().items()},
                {k: v.numpy() for k, v in model.state_dict().items()})


def test_training_resumes_exactly_from_a_checkpoint(tmp_path):
    """model + Adam state (int keys, tuple betas) -> save -> load -> the next step is identical."""
    def setup():
        tinyres.manual_seed(0)
        model = nn.Linear(3, 2)
        return model, tinyres.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))

    def step(model, optimizer):
        optimizer.zero_grad()
        (model(tinyres.ones(4, 3)) ** 2).sum().backward()
        optimizer.step()

    model, optimizer = setup()
    step(model, optimizer)
    save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1}, tmp_path / "c.npz")
    step(model, optimizer)
    resumed, resumed_optimizer = setup()
    checkpoint = load(tmp_path / "c.npz")
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    step(resumed, resumed_optimizer)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_file_objects(ckpt):
    buffer = io.BytesIO()
    save(checkpoint(), buffer)
    buffer.seek(0)
    assert_same(load(buffer), checkpoint())
    assert buffer.getvalue() == ckpt.read_bytes()        # deterministic bytes


def test_the_file_is_a_plain_npz_without_pickle(ckpt):
    with np.load(ckpt, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    header = json.loads(entries.pop(serialization.HEADER_KEY).tobytes())
    assert (header["format"], header["version"]) == ("tinyres-checkpoint", 1)
    assert len(header["sha256"]) == 64 and all(k.startswith("array") for k in entries)


@pytest.mark.parametrize("value, match", [
    (np.array([object()]), "obj\\['x'\\], an array of dtype object"),
    (lambda: 0, "obj\\['x'\\], a function"),
    ({1, 2}, "a set"),
    pytest.param(torch and torch.zeros(2), "export_torch_state_dict", marks=needs_torch),
    ({(1, 2): 3}, "a key of obj\\['x'\\], a tuple"),
])
def test_unsupported_values_are_refused(tmp_path, value, match):
    with pytest.raises(TypeError, match=match):
        save({"x": value}, tmp_path / "bad.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- atomic writes

def fail_half_way(file, **arrays):
    file.write(b"PK\x03\x04 half a checkpoint")
    raise OSError("disk full")


@pytest.mark.parametrize("step", ["savez", "replace"])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(ckpt, monkeypatch, step):
    before = ckpt.read_bytes()
    if step == "savez":
        monkeypatch.setattr(serialization.numpy, "savez", fail_half_way)
    else:
        monkeypatch.setattr(serialization.os, "replace", lambda *a: fail_half_way(io.BytesIO()))
    with pytest.raises(OSError, match="disk full"):
        save({"new": np.zeros(3)}, ckpt)
    assert ckpt.read_bytes() == before
    assert os.listdir(ckpt.parent) == [ckpt.name]


def test_save_fsyncs_the_file_and_the_folder_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(serialization.os, "fsync", lambda fd: events.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(serialization.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b)))
    save({"a": np.ones(2)}, tmp_path / "x.npz")
    assert events == ["fsync", "replace", "fsync"]
    assert os.listdir(tmp_path) == ["x.npz"]


# ---------------------------------------------------------------------- broken files

def rewrite(path, **entries):
    """Write ``path`` again as a valid npz with some entries replaced (an altered file)."""
    with np.load(path) as npz:
        old = {k: npz[k] for k in npz.files}
    np.savez(open(path, "wb"), **{**old, **entries})


def header_of(path):
    with np.load(path) as npz:
        return json.loads(npz[serialization.HEADER_KEY].tobytes())


def encode(header):
    return np.frombuffer(json.dumps(header).encode(), np.uint8)


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def assert_refused(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("keep", [0, 3, 100, 0.5, -1])
def test_truncated_file(ckpt, keep):
    data = ckpt.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    ckpt.write_bytes(data[:keep])
    assert_refused(ckpt, "is truncated or corrupt")


def test_flipped_byte_in_array_data_is_a_checksum_mismatch(tmp_path):
    path = tmp_path / "a.npz"
    save({"w": np.arange(1000, dtype=np.int64)}, path)
    flip_byte(path, path.read_bytes().index(np.array([500, 501]).tobytes()))
    assert_refused(path, "checksum mismatch .*altered")


@pytest.mark.parametrize("signature", [b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06"])
def test_flipped_byte_in_the_zip_structure_is_corrupt(ckpt, signature):
    flip_byte(ckpt, ckpt.read_bytes().index(signature, 1) + 1)
    assert_refused(ckpt, "truncated or corrupt")


def test_altered_array_with_a_valid_zip_is_a_checksum_mismatch(ckpt):
    rewrite(ckpt, array0=np.zeros((), np.float32))
    assert_refused(ckpt, "checksum mismatch .*the file was altered")


def test_unknown_version(ckpt):
    rewrite(ckpt, __tinyres__=encode({**header_of(ckpt), "version": 2}))
    assert_refused(ckpt, "format version 2; this tinyres reads version 1 \\(upgrade tinyres")


@pytest.mark.parametrize("header", [b"{not json", json.dumps({"format": "other"}).encode()])
def test_bad_header(ckpt, header):
    rewrite(ckpt, __tinyres__=np.frombuffer(header, np.uint8))
    assert_refused(ckpt, "truncated or corrupt: unreadable header|not a tinyres checkpoint")


def test_bad_tree(ckpt):
    rewrite(ckpt, __tinyres__=encode({**header_of(ckpt), "tree": {"array": "array99"}}))
    assert_refused(ckpt, "truncated or corrupt: bad structure")


@pytest.mark.parametrize("write", [
    lambda f: np.savez(f, weight=np.ones(3)),
    lambda f: np.save(f, np.ones(3)),
    lambda f: f.write(b"hello, world"),
], ids=["npz", "npy", "text"])
def test_foreign_files_are_not_tinyres_checkpoints(tmp_path, write):
    path = tmp_path / "foreign.npz"
    with open(path, "wb") as f:
        write(f)
    assert_refused(path, "is not a tinyres checkpoint")


@needs_torch
def test_a_file_torch_wrote_loads_whatever_its_name(tmp_path):
    """A .pth is read by tinyres.pth (tests/test_serialization_pth.py), found by its content."""
    path = tmp_path / "from_torch.npz"
    torch.save({"w": torch.ones(2)}, path)
    np.testing.assert_array_equal(load(path)["w"], np.ones(2, np.float32))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


# ---------------------------------------------------------------------- killed writers

WRITER = """
import sys
import numpy as np
import tinyres
path = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]))
print("ready", flush=True)
while True:
    n = int(rng.integers(1, 400_000))
    tinyres.save({"weights": np.full(n, n, dtype=np.float32), "n": n}, path)
"""


def test_a_checkpoint_survives_writers_killed_at_random_moments(tmp_path):
    """SIGKILL a process that rewrites one checkpoint in a loop, 20 times at random moments:
    the file always loads whole (old or new, never torn), and no temporary file piles up."""
    import signal
    import subprocess
    import sys
    import time
    path = tmp_path / "checkpoint.npz"
    tinyres.save({"weights": np.full(3, 3, dtype=np.float32), "n": 3}, path)
    rng = np.random.default_rng(0)
    for kill in range(20):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(kill)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.01, 0.15)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        state = tinyres.load(path)
        weights = np.asarray(state["weights"])
        assert weights.shape == (state["n"],) and (weights == state["n"]).all()
    tinyres.save({"weights": np.zeros(1, dtype=np.float32), "n": 1}, path)     # the next write tidies up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


# A writer stopped in the middle of a write: half the checkpoint is in its temporary file when
# it says "writing"; a line on stdin lets it write the rest and finish.
HALF_WRITER = """
import io, sys
import numpy as np
from tinyres.serialization import atomic_write
def write(file):
    whole = io.BytesIO()
    np.savez(whole, w=np.full(1000, 7.0))
    data = whole.getvalue()
    file.write(data[:len(data) // 2])
    file.flush()
    print("writing", flush=True)
    sys.stdin.readline()
    file.write(data[len(data) // 2:])
atomic_write(sys.argv[1], write)
print("done", flush=True)
"""


def start_half_writer(path):
    import pathlib
    import subprocess
    import sys
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root] + os.environ.get("PYTHONPATH", "").split(os.pathsep))}
    child = subprocess.Popen([sys.executable, "-c", HALF_WRITER, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "writing"
    return child


def temp_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("then", ["save", "load"])
def test_the_temp_file_of_a_writer_killed_mid_write_goes_at_the_next_save_or_load(tmp_path, then):
    import signal
    path = tmp_path / "last.npz"
    save({"n": 1}, path)
    child = start_half_writer(path)
    (leftover,) = temp_files(tmp_path)
    assert leftover == f".last.npz.{serialization._HOST}-{child.pid}.{leftover.split('.')[-2]}.tmp"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert temp_files(tmp_path) == [leftover]          # SIGKILL leaves it
    if then == "save":
        save({"n": 2}, path)
    else:
        assert load(path) == {"n": 1}                 # the old checkpoint, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    path = tmp_path / "last.npz"
    save({"n": 1}, path)
    child = start_half_writer(path)
    try:
        (writing,) = temp_files(tmp_path)
        save({"n": 2}, path)                          # another save and a load meanwhile ...
        assert load(path) == {"n": 2}
        assert serialization.remove_stale_temp_files(path) == []
        assert temp_files(tmp_path) == [writing]      # ... keep the live writer's file
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
    finally:
        child.kill()
        child.wait()
    assert np.asarray(np.load(path)["w"]).tolist() == [7.0] * 1000     # its write went through whole
    assert temp_files(tmp_path) == []


def test_only_this_checkpoints_stale_temp_files_go(tmp_path):
    """Files of other checkpoints and other files stay; a file written on another host (or
    by an old tinyres, without a pid) goes only once nothing has written to it for a day."""
    path = tmp_path / "last.npz"
    save({"n": 1}, path)
    here, dead = serialization._HOST, 2 ** 22 + 12345         # above Linux's pid_max: never alive
    names = {"dead": f".last.npz.{here}-{dead}.0123456789ab.tmp",
             "other checkpoint": f".best.npz.{here}-{dead}.0123456789ab.tmp",
             "prefix of another": f".last.npz.old.{here}-{dead}.0123456789ab.tmp",
             "not ours": "last.npz.0123456789ab.tmp",
             "other host, fresh": f".last.npz.00000000-{dead}.0123456789ab.tmp",
             "other host, old": f".last.npz.00000001-{dead}.0123456789ab.tmp",
             "old tinyres, fresh": ".last.npz.0123456789ab.tmp",
             "old tinyres, old": ".last.npz.ba9876543210.tmp"}
    day = serialization.STALE_AFTER_S
    for what, name in names.items():
        (tmp_path / name).write_bytes(b"PK")
        if what.endswith(", old"):
            os.utime(tmp_path / name, (os.path.getmtime(path) - day - 60,) * 2)
    removed = serialization.remove_stale_temp_files(path)
    gone = {"dead", "other host, old", "old tinyres, old"}
    assert sorted(removed) == sorted(names[w] for w in gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.npz"] + [n for w, n in names.items()
                                                                                 if w not in gone])


def test_tidying_never_fails_a_load(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    save({"n": 1}, path)
    (tmp_path / f".last.npz.{serialization._HOST}-{2 ** 22 + 1}.0123456789ab.tmp").write_bytes(b"")

    def refuse(p):
        raise PermissionError(13, "read-only folder", p)
    monkeypatch.setattr(os, "remove", refuse)
    assert load(path) == {"n": 1}
    assert serialization.remove_stale_temp_files(path) == []


def _with_member(path, out, key, raw):
    """A copy of the checkpoint ``path`` whose zip entry ``key`` holds ``raw`` instead."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[key] = raw
    with zipfile.ZipFile(out, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return out


def test_a_header_that_claims_a_huge_array_is_refused_before_allocating(tmp_path):
    save({"w": np.ones(3, np.float32)}, tmp_path / "good.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12,)})
    bad = _with_member(tmp_path / "good.npz", tmp_path / "huge.npz", "array0.npy", header.getvalue() + b"\0" * 12)
    with pytest.raises(CheckpointError, match=r"huge.npz is truncated or corrupt: entry 'array0': its header claims "
                                              r"\(1000000000000,\) float32 \(4,000,000,000,000 bytes\)"):
        load(bad)


def test_an_object_array_inside_a_checkpoint_is_refused_without_unpickling(tmp_path):
    save({"w": np.ones(3, np.float32)}, tmp_path / "good.npz")
    payload = io.BytesIO()
    np.lib.format.write_array(payload, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    bad = _with_member(tmp_path / "good.npz", tmp_path / "object.npz", "array0.npy", payload.getvalue())
    with pytest.raises(CheckpointError, match=r"object.npz is truncated or corrupt: entry 'array0'"):
        load(bad)
