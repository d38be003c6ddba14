"""PyTorch <-> tinyres weights (tinyres.torch_weights, once tinyres.utils): a torch
model's .pth, .npz export or in-memory state_dict loads into the same tinyres model and
gives the same outputs, and tinyres weights go back into torch."""
import collections
import sys

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.nn as nn
from tinyres import torch_weights
from tinyres.serialization import load

from helpers import randn

H = W = 5


def torch_model():
    """Conv, BatchNorm (running statistics moved by two training batches), ReLU, Linear."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * H * W, 3)).double()
    for seed in (1, 2):
        model(torch.from_numpy(randn(4, 3, H, W, seed=seed)))
    return model.eval()


def tiny_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * H * W, 3)).double().eval()


def assert_same_outputs(tiny, torch_net):
    x = randn(2, 3, H, W, seed=3)
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(tiny(tinyres.tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-12)


def assert_state_equal(numpy_sd, torch_sd):
    assert list(numpy_sd) == list(torch_sd)
    for key, value in torch_sd.items():
        assert numpy_sd[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(numpy_sd[key], value.numpy(), err_msg=key)


@pytest.fixture(scope="module")
def net():
    return torch_model()


# ---------------------------------------------------------------------- the conversion alone

@needs_torch
@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"epoch": 7, "state_dict": sd, "optimizer": {}},
    lambda sd: {"model": sd, "args": "--lr 0.1"},
    lambda sd: collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
    lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}},
], ids=["plain", "state_dict", "model", "DataParallel", "both"])
def test_numpy_state_dict_unwraps_and_strips(net, wrap):
    sd = torch_weights.numpy_state_dict(wrap(net.state_dict()))
    assert_state_equal(sd, net.state_dict())
    assert all(type(v) is np.ndarray for v in sd.values())
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"] == 2


@needs_torch
def test_numpy_state_dict_of_every_source(net, tmp_path):
    torch.save(net.state_dict(), tmp_path / "w.pth")
    torch_weights.export_torch_state_dict(net, tmp_path / "w.npz")
    mixed = {k: (v.numpy() if i % 2 else tinyres.tensor(v.numpy()))
             for i, (k, v) in enumerate(net.state_dict().items())}
    for source in (tmp_path / "w.pth", str(tmp_path / "w.npz"), mixed):
        assert_state_equal(torch_weights.numpy_state_dict(source), net.state_dict())


@needs_torch
def test_bfloat16_becomes_float32():
    sd = torch_weights.numpy_state_dict({"w": torch.ones(2, dtype=torch.bfloat16)})
    assert sd["w"].dtype == np.float32


@needs_torch
def test_export_writes_a_tinyres_checkpoint_with_torch_keys(net, tmp_path):
    torch_weights.export_torch_state_dict(net.state_dict(), tmp_path / "w.npz")
    assert_state_equal(load(tmp_path / "w.npz"), net.state_dict())


# ---------------------------------------------------------------------- into a tinyres model

@needs_torch
@pytest.mark.parametrize("source", ["pth", "npz", "dict"])
def test_torch_weights_give_the_same_outputs(net, tmp_path, source):
    path = {"pth": tmp_path / "w.pth", "npz": tmp_path / "w.npz", "dict": net.state_dict()}[source]
    if source == "pth":
        torch.save({"model": net.state_dict()}, path)
    elif source == "npz":
        torch_weights.export_torch_state_dict(net, path)
    tiny = tiny_model()
    result = torch_weights.load_torch_state_dict(tiny, path)
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    assert_same_outputs(tiny, net)


@needs_torch
def test_strict_is_passed_to_load_state_dict(net):
    sd = dict(net.state_dict(), extra=torch.zeros(1))
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        torch_weights.load_torch_state_dict(tiny_model(), sd)
    assert torch_weights.load_torch_state_dict(tiny_model(), sd, strict=False).unexpected_keys == ["extra"]


# ---------------------------------------------------------------------- refusing what is not a state_dict

@needs_torch
def test_a_whole_pickled_model_is_refused(net, tmp_path):
    torch.save(net, tmp_path / "whole.pth")
    with pytest.raises(ValueError, match="whole.pth is not a plain state_dict.*"
                                         "torch.save\\(model.state_dict\\(\\), path\\)"):
        torch_weights.load_torch_state_dict(tiny_model(), tmp_path / "whole.pth")


@needs_torch
@pytest.mark.parametrize("content, match", [
    ({"epoch": 3, "lr": 0.1}, "the value of 'epoch' is a int, not a tensor"),
    ([torch and torch.zeros(2)], "holds a list, not a state_dict"),         # torch and: None without torch
    ({0: torch and torch.zeros(2)}, "string keys, this one has 0"),
])
def test_a_pth_that_is_not_a_state_dict_is_refused(tmp_path, content, match):
    torch.save(content, tmp_path / "x.pth")
    with pytest.raises(ValueError, match=match + ".*torch.save\\(model.state_dict\\(\\), path\\)"):
        torch_weights.numpy_state_dict(tmp_path / "x.pth")


def test_without_torch_a_pth_is_read_and_written_by_tinyres_pth(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` now raises ImportError
    model = tiny_model()
    torch_weights.save_torch_state_dict(model, tmp_path / "w.pth")
    state = torch_weights.numpy_state_dict(tmp_path / "w.pth")
    assert list(state) == list(model.state_dict())
    torch_weights.load_torch_state_dict(tiny_model(), tmp_path / "w.pth")
    with pytest.raises(ImportError, match="to_torch_state_dict needs PyTorch.*pip install torch"):
        torch_weights.to_torch_state_dict(model)


# ---------------------------------------------------------------------- back to torch

@needs_torch
def test_tinyres_to_pth_to_torch_round_trip(net, tmp_path):
    tiny = tiny_model()
    torch_weights.load_torch_state_dict(tiny, net.state_dict())
    torch_weights.save_torch_state_dict(tiny, tmp_path / "back.pth")
    state = torch.load(tmp_path / "back.pth", weights_only=True)
    assert_state_equal({k: v.numpy() for k, v in tiny.state_dict().items()}, state)
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * H * W, 3)).double().eval()
    fresh.load_state_dict(state)
    assert_same_outputs(tiny, fresh)


@needs_torch
def test_to_torch_state_dict_copies(net):
    tiny = tiny_model()
    state = torch_weights.to_torch_state_dict(tiny)
    assert isinstance(state, collections.OrderedDict) and list(state) == list(net.state_dict())
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    state["0.weight"].zero_()
    assert tiny.state_dict()["0.weight"].numpy().any()


# ---------------------------------------------------------------------- other CIFAR ResNets' key names

def cifar_twin_saved_as(tmp_path, rename):
    """A PyTorch CIFAR ResNet-20 whose keys follow another naming (``rename``), saved as a .pth;
    and the tinyres model with the same weights under tinyres's names."""
    from torch_resnet import TORCH_TWINS
    twin = TORCH_TWINS["resnet20"](num_classes=10, in_channels=3)
    path = tmp_path / "other.pth"
    torch.save(collections.OrderedDict((rename(k), v) for k, v in twin.state_dict().items()), path)
    ours = tinyres.models.resnet20(num_classes=10)
    ours.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    return path, ours


@needs_torch
def test_a_prefix_key_map_loads_a_linear_classifier_strictly(tmp_path):
    path, want = cifar_twin_saved_as(tmp_path, lambda k: "linear." + k[3:] if k.startswith("fc.") else k)
    model = tinyres.models.resnet20(num_classes=10)
    torch_weights.load_torch_state_dict(model, path, strict=True, key_map={"linear.": "fc."})
    for (k, a), b in zip(model.state_dict().items(), want.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


@needs_torch
def test_a_function_key_map_renames_inner_parts(tmp_path):
    path, _ = cifar_twin_saved_as(tmp_path, lambda k: k.replace(".bn2.", ".norm2."))
    model = tinyres.models.resnet20(num_classes=10)
    assert torch_weights.load_torch_state_dict(model, path, key_map=lambda k: k.replace(".norm2.", ".bn2.")) == ([], [])


@needs_torch
@pytest.mark.parametrize("rename, hint", [
    (lambda k: "linear." + k[3:] if k.startswith("fc.") else k, 'pass key_map={"linear.": "fc."}'),
    (lambda k: k.replace(".bn2.", ".norm2."), "pass key_map=lambda k: k.replace(\".norm2.\", \".bn2.\")"),
])
def test_a_name_mismatch_suggests_the_key_map(tmp_path, rename, hint):
    path, _ = cifar_twin_saved_as(tmp_path, rename)
    with pytest.raises(RuntimeError, match="Missing key") as info:
        torch_weights.load_torch_state_dict(tinyres.models.resnet20(num_classes=10), path)
    assert hint in str(info.value)


def test_variable_is_the_tensor_itself_as_in_torch_today():
    from tinyres.autograd import Variable
    x = tinyres.ones(3)
    assert Variable(x) is x and not x.requires_grad
    assert Variable(x, requires_grad=True) is x and x.requires_grad
    with pytest.raises(TypeError, match="Variable: expected a Tensor, got list"):
        Variable([1.0])


def test_the_old_module_name_still_works_and_warns():
    # tinyres.utils is now torch.utils's counterpart; torch_weights' functions still answer there
    with pytest.warns(DeprecationWarning, match="tinyres.utils.load_torch_state_dict is now tinyres.torch_weights"):
        old = tinyres.utils.load_torch_state_dict
    assert old is torch_weights.load_torch_state_dict
    assert tinyres.models.load_torch_state_dict is torch_weights.load_torch_state_dict
