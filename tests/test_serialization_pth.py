"""tinyres.save / tinyres.load with PyTorch's .pth format (tinyres/pth.py), without torch on
tinyres's side: files torch.save wrote (zip and legacy) read back bit for bit; files tinyres
wrote read by real torch.load(weights_only=True) (and mmap=True); a file naming any other
global (os.system, a model class) is refused with nothing run; a tensor reaching past its
storage is refused."""
import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import needs_torch, torch

import tinyres
from tinyres import pth
from tinyres.serialization import CheckpointError

rng = np.random.default_rng(0)
DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool",
          "complex64", "complex128"]


def sample(dtype, shape=(3, 4)):
    return (rng.standard_normal(shape) * 50).astype(dtype)


def torch_state():
    """What a training script saves: every dtype, views, 0-d, empty, a shared storage."""
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    return collections.OrderedDict(
        [(f"w_{d}", torch.tensor(sample(d))) for d in DTYPES]
        + [("transposed", base.t()), ("strided", base[1:, ::2]), ("row", base[2]), ("base", base),
           ("scalar", torch.tensor(3.5)), ("empty", torch.zeros(0, 3)), ("expanded", torch.arange(3.0).expand(4, 3)),
           ("bf16", torch.tensor([1.5, -2.0, 3.25]).bfloat16()),
           ("meta", {"epoch": 7, "lr": 0.1, "name": "run-é", "flags": (True, None), "big": 2 ** 40, "neg": -5,
                     "list": [1, 2.5], "bytes": b"\x00\xffab"})])


def assert_same(ours, theirs, where="obj"):
    """``ours`` (from tinyres.load) holds what ``theirs`` (torch objects) holds: a torch
    tensor comes back a tinyres Tensor, as torch.load gives it."""
    if isinstance(theirs, torch.Tensor):
        want = theirs.float().numpy() if theirs.dtype == torch.bfloat16 else theirs.detach().numpy()
        assert isinstance(ours, tinyres.Tensor) and not ours.requires_grad, where
        ours = ours.numpy()
        assert ours.dtype == want.dtype and ours.shape == want.shape, (where, ours.dtype, want.dtype)
        np.testing.assert_array_equal(ours, want, err_msg=where)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), where
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


@needs_torch
@pytest.mark.parametrize("legacy", [False, True])
def test_load_reads_what_torch_save_wrote(tmp_path, legacy):
    state = torch_state()
    path = tmp_path / "torch.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    assert_same(tinyres.load(path), state)
    with open(path, "rb") as f:                                    # a file object too
        assert_same(tinyres.load(io.BytesIO(f.read())), state)


@needs_torch
def test_load_reads_parameters_and_a_torch_models_state_dict(tmp_path):
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).double()
    torch.save({"params": list(layer.parameters()), "model": layer.state_dict()}, tmp_path / "m.pt")
    back = tinyres.load(tmp_path / "m.pt")
    for ours, theirs in zip(back["params"], layer.parameters()):
        np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    assert_same(back["model"], layer.state_dict())
    ours = tinyres.nn.Sequential(tinyres.nn.Conv2d(3, 4, 3), tinyres.nn.BatchNorm2d(4)).double()
    ours.load_state_dict(back["model"])
    x = rng.standard_normal((2, 3, 5, 5))
    layer.eval(), ours.eval()
    np.testing.assert_allclose(ours(tinyres.tensor(x)).numpy(), layer(torch.tensor(x)).detach().numpy(), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("legacy", [False, True])
def test_parameters_load_as_parameters_and_requires_grad_is_kept(tmp_path, legacy):
    """torch.load gives an ``nn.Parameter`` back as one (with its requires_grad), and a
    leaf saved with requires_grad=True requires grad again: so does tinyres.load, on any
    map_location."""
    saved = {"p": torch.nn.Parameter(torch.arange(6.0).reshape(2, 3)),
             "frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False),
             "leaf": torch.zeros(3, requires_grad=True), "plain": torch.ones(2)}
    torch.save(saved, tmp_path / "p.pt", _use_new_zipfile_serialization=not legacy)
    theirs = torch.load(tmp_path / "p.pt")
    for back in (tinyres.load(tmp_path / "p.pt"), tinyres.load(tmp_path / "p.pt", map_location="cpu")):
        for key, t in theirs.items():
            ours = back[key]
            assert isinstance(ours, tinyres.nn.Parameter) == isinstance(t, torch.nn.Parameter), key
            assert ours.requires_grad == t.requires_grad and ours.is_leaf, key
            np.testing.assert_array_equal(ours.detach().numpy(), t.detach().numpy())
    layer = tinyres.nn.Linear(3, 2)
    layer.weight = back["p"]                  # registers as a parameter, in its place (as torch's)
    assert list(dict(layer.named_parameters())) == ["weight", "bias"] and layer.weight is back["p"]


@needs_torch
def test_map_location_gives_tensors(tmp_path):
    torch.save({"w": torch.ones(2, 3, dtype=torch.float64)}, tmp_path / "w.pth")
    w = tinyres.load(tmp_path / "w.pth", map_location="cpu")["w"]
    assert isinstance(w, tinyres.Tensor) and w.shape == (2, 3) and w.dtype == np.float64


@needs_torch
def test_torchs_load_arguments_are_accepted(tmp_path):
    """weights_only (tinyres runs nothing either way) and map_location as a dict or the
    ``lambda storage, loc: storage`` idiom, both meaning the CPU here."""
    torch.save({"w": torch.ones(2, dtype=torch.float64)}, tmp_path / "w.pth")
    for kwargs in ({"weights_only": True}, {"weights_only": False}, {"map_location": {"cuda:0": "cpu"}},
                   {"map_location": lambda storage, loc: storage}):
        w = tinyres.load(tmp_path / "w.pth", **kwargs)["w"]
        assert np.asarray(w.numpy() if isinstance(w, tinyres.Tensor) else w).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="one device"):
        tinyres.load(tmp_path / "w.pth", map_location={"cuda:0": "cpu", "cuda:1": "cuda:0"})


@needs_torch
def test_sets_and_complex_numbers_in_a_torch_file_are_read(tmp_path):
    """torch.save writes them under Python 2's module name, __builtin__."""
    torch.save({"v": {1, 2}, "c": 1 + 2j}, tmp_path / "s.pth")
    assert torch.load(tmp_path / "s.pth", weights_only=True) == tinyres.load(tmp_path / "s.pth")


@needs_torch
@pytest.mark.parametrize("name", ["checkpoint.pth.tar", "last.ckpt", "model.bin", "weights"])
def test_any_name_but_npz_and_safetensors_is_written_in_torchs_format(tmp_path, name):
    """torch.save writes its zip whatever the name: a script's ``checkpoint.pth.tar`` must be
    one real torch reads, as tinyres does."""
    tinyres.save({"w": tinyres.ones(2), "epoch": 3}, tmp_path / name)
    theirs = torch.load(tmp_path / name, weights_only=True)
    assert theirs["epoch"] == 3 and theirs["w"].tolist() == [1.0, 1.0]
    ours = tinyres.load(tmp_path / name)
    assert ours["epoch"] == 3 and isinstance(ours["w"], tinyres.Tensor)
    tinyres.save({"w": np.ones(2)}, tmp_path / "own.npz")
    assert zipfile.ZipFile(tmp_path / "own.npz").namelist()[0].endswith(".npy")    # tinyres's own format


@needs_torch
def test_a_torch_size_in_a_torch_file_is_read_as_a_tuple(tmp_path):
    """A shape saved beside the weights (``{'shape': x.shape}``) is a torch.Size: read as the
    tuple it is."""
    torch.save({"shape": torch.Size([2, 3]), "sizes": [torch.Size([])]}, tmp_path / "s.pth")
    loaded = tinyres.load(tmp_path / "s.pth")
    assert loaded == {"shape": (2, 3), "sizes": [()]} and type(loaded["shape"]) is tuple


def tiny_state():
    base = sample("float64", (4, 6))
    shared = sample("float32", (5,))
    return collections.OrderedDict(
        [(f"w_{d}", sample(d)) for d in DTYPES]
        + [("tensor", tinyres.tensor(sample("float32"))), ("noncontiguous", base[1:, ::2]), ("transposed", base.T),
           ("scalar", np.array(2.5)), ("empty", np.zeros((0, 3), np.int64)), ("big_endian", sample(">f8")),
           ("shared", shared), ("shared_again", shared), ("np_scalar", np.float32(1.25)),
           ("meta", {"epoch": 7, "lr": 0.1, "name": "run-é", "flags": (True, None, False), "big": 2 ** 40,
                     "huge": -(2 ** 70), "list": [1, [2.5, ()]], 3: "int key", "empty": {}, "none": []})])


@needs_torch
@pytest.mark.parametrize("mmap", [False, True])
def test_torch_load_reads_what_tinyres_save_wrote(tmp_path, mmap):
    state = tiny_state()
    tinyres.save(state, tmp_path / "tiny.pth")
    back = torch.load(tmp_path / "tiny.pth", weights_only=True, mmap=mmap)
    assert type(back) is collections.OrderedDict and list(back) == list(state)
    for key, value in state.items():
        if key == "meta":
            assert back[key] == value
        elif key == "np_scalar":
            assert back[key] == 1.25 and type(back[key]) is float         # a plain value
        else:
            want = np.asarray(value)
            assert back[key].numpy().dtype == want.dtype.newbyteorder("=") and back[key].shape == want.shape, key
            np.testing.assert_array_equal(back[key].numpy(), want, err_msg=key)
    assert back["shared"].data_ptr() == back["shared_again"].data_ptr()  # one storage, as torch shares them


@needs_torch
def test_round_trips_both_ways(tmp_path):
    """tinyres -> torch -> tinyres, and a tinyres model's weights through torch into a torch model."""
    model = tinyres.models.resnet8()
    tinyres.save(model.state_dict(), tmp_path / "a.pth")
    torch.save(torch.load(tmp_path / "a.pth", weights_only=True), tmp_path / "b.pth")
    again = tinyres.load(tmp_path / "b.pth")
    state = model.state_dict()
    assert list(again) == list(state)
    for key in state:
        np.testing.assert_array_equal(again[key], np.asarray(state[key]), err_msg=key)
    model.load_state_dict(again)


def test_tinyres_reads_its_own_pth_and_a_pth_is_a_zip_in_torchs_layout(tmp_path):
    state = tiny_state()
    tinyres.save(state, tmp_path / "x.pt")
    back = tinyres.load(tmp_path / "x.pt")
    assert list(back) == list(state)
    np.testing.assert_array_equal(back["noncontiguous"], state["noncontiguous"])
    np.testing.assert_array_equal(back["big_endian"], state["big_endian"])
    assert back["meta"] == state["meta"] and back["np_scalar"] == 1.25
    with zipfile.ZipFile(tmp_path / "x.pt") as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl" and "archive/version" in names and "archive/byteorder" in names
        assert sum(n.startswith("archive/data/") for n in names) == len(state) - 3      # shared once; two plain
        for info in zf.infolist():
            if info.filename.startswith("archive/data/"):
                assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0


def test_reading_needs_no_torch(tmp_path):
    """In a process where ``import torch`` fails, a .pth saves and loads."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np, tinyres\n"
            f"p = {str(tmp_path / 'n.pth')!r}\n"
            "tinyres.save({'w': np.arange(4.0)}, p)\n"
            "print(tinyres.load(p)['w'].sum().item(), 'torch' in sys.modules and sys.modules['torch'] is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(tinyres_root())})
    assert out.stdout.split() == ["6.0", "False"]


def tinyres_root():
    return os.path.dirname(os.path.dirname(tinyres.__file__))


# ---------------------------------------------------------------------- refusing files

class RunsACommand:
    """What a malicious pickle holds: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def zip_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/byteorder", "little")


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_pth_naming_os_system_is_refused_and_nothing_runs(tmp_path, layout):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"w": RunsACommand(marker)}, protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        zip_with_pickle(path, payload)
    else:
        with open(path, "wb") as f:
            for value in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
                pickle.dump(value, f, protocol=2)
            f.write(payload)
    refused = r"names the global (posix|os)\.system.*refused \(nothing in the file was run\)"
    with pytest.raises(CheckpointError, match=refused):
        tinyres.load(path)
    assert not marker.exists()


@needs_torch
def test_a_pickled_torch_model_is_refused_naming_its_class(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear.*state_dict"):
        tinyres.load(tmp_path / "model.pth")


def rebuild_pickle(offset, size, stride, numel=4, dtype="FloatStorage"):
    """data.pkl of one tensor, written as torch writes it (by tinyres's writer), then altered."""
    writer = pth._Writer()
    writer.op(b"\x80\x02")
    writer.global_("torch._utils", "_rebuild_tensor_v2")
    writer.op(b"((")
    writer.value("storage", "")
    writer.global_("torch", dtype)
    writer.value("0", ""), writer.value("cpu", ""), writer.int_(numel)
    writer.op(b"tQ")
    writer.int_(offset), writer.value(tuple(size), ""), writer.value(tuple(stride), "")
    writer.op(b"\x89")
    writer.global_("collections", "OrderedDict")
    writer.op(b")R", b"tR", b".")
    return writer.out.getvalue()


@pytest.mark.parametrize("offset, size, stride", [(0, (5,), (1,)), (2, (2, 2), (1, 1)), (0, (2, 2), (3, 1)),
                                                  (-1, (2,), (1,)), (0, (10 ** 12,), (0,))])
def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path, offset, size, stride):
    path = tmp_path / "bad.pth"
    zip_with_pickle(path, rebuild_pickle(offset, size, stride))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data/0", np.arange(4, dtype=np.float32).tobytes())
    with pytest.raises(CheckpointError, match="bad.pth: .*(storage|offset)"):
        tinyres.load(path)


def test_a_tensor_inside_its_storage_loads(tmp_path):
    path = tmp_path / "ok.pth"
    zip_with_pickle(path, rebuild_pickle(1, (2, 2), (1, 1)))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data/0", np.arange(4, dtype=np.float32).tobytes())
    np.testing.assert_array_equal(tinyres.load(path), [[1, 2], [2, 3]])


def test_a_missing_or_short_storage_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    zip_with_pickle(path, rebuild_pickle(0, (4,), (1,)))
    with pytest.raises(CheckpointError, match="lacks"):
        tinyres.load(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data/0", b"\x00" * 8)
    with pytest.raises(CheckpointError, match="fewer than"):
        tinyres.load(path)


def test_saving_what_a_pth_cannot_hold_says_where(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['a'\]\[1\], a set"):
        tinyres.save({"a": [1, {2}]}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match="dtype object"):
        tinyres.save({"a": np.array([None])}, tmp_path / "x.pth")
    assert not os.path.exists(tmp_path / "x.pth")


def test_a_build_opcode_alters_nothing_outside_the_file(tmp_path):
    """BUILD sets attributes on the object a global names; each name is a new object, so a
    file cannot change how the next file is read."""
    payload = (b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x06\x00\x00\x00objectsb0"
               b"ctorch._utils\n_rebuild_tensor_v2\n}X\x04\x00\x00\x00evilK\x01sb0"
               b"N.")
    zip_with_pickle(tmp_path / "build.pth", payload)
    assert tinyres.load(tmp_path / "build.pth") is None
    assert not hasattr(pth._rebuild_tensor_v2, "evil")
    torch_like = {"w": np.arange(3, dtype=np.float32)}
    tinyres.save(torch_like, tmp_path / "next.pth")
    np.testing.assert_array_equal(tinyres.load(tmp_path / "next.pth")["w"], torch_like["w"])
