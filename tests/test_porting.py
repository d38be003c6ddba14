"""Bring your PyTorch code: a CIFAR project written for torch (tests/ported/: ten model
families and a training script) runs on tinyres with only its import lines changed, and
gives torch's numbers: the same logits, gradients and training run in float64."""
import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import tinyres

PORTED = Path(__file__).parent / "ported"


def swap_imports(source):
    """What a user does to port a script: point its torch / torchvision imports at tinyres."""
    def swap(match):
        line = match.group(0)
        whole = {"import torchvision": "import tinyres.vision as torchvision", "import torch": "import tinyres as torch"}
        if line in whole:
            return whole[line]
        line = re.sub(r"\btorchvision\b", "tinyres.vision", line)
        return re.sub(r"\btorch\b(?=[. ])", "tinyres", line)
    return re.sub(r"^(?:import|from) torch\S*(?: .*)?$", swap, source, flags=re.M)


def load(name, library):
    source = (PORTED / f"{name}.py").read_text()
    if library == "tinyres":
        source = swap_imports(source)
    module = types.ModuleType(f"ported_{name}_{library}")
    module.__file__ = str(PORTED / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def test_only_import_lines_change():
    source = (PORTED / "train.py").read_text()
    swapped = swap_imports(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), swapped.splitlines()) if a != b]
    assert changed == [("import torch", "import tinyres as torch"),
                       ("import torch.backends.cudnn as cudnn", "import tinyres.backends.cudnn as cudnn"),
                       ("import torch.nn as nn", "import tinyres.nn as nn"),
                       ("import torch.optim as optim", "import tinyres.optim as optim"),
                       ("from torch.utils.data import DataLoader, Dataset",
                        "from tinyres.utils.data import DataLoader, Dataset")]


MODELS_TORCH, MODELS_TINYRES = load("models", "torch"), load("models", "tinyres")


def twins(name):
    """The same model in both libraries, float64, tinyres's weights copied from torch's."""
    torch.manual_seed(0)
    theirs = MODELS_TORCH.MODELS[name]().double()
    ours = MODELS_TINYRES.MODELS[name]().to(tinyres.float64)
    state = {k: tinyres.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)
    for model in (theirs, ours):        # EfficientNet's random drops off, so the two runs can agree
        for m in model.modules():
            if hasattr(m, "drop_rate"):
                m.drop_rate = 0.0
            if hasattr(m, "cfg") and isinstance(m.cfg, dict):
                m.cfg = dict(m.cfg, dropout_rate=0.0)
    return theirs, ours


@pytest.mark.parametrize("name", list(MODELS_TORCH.MODELS))
def test_each_model_family_gives_torchs_logits_and_gradients(name):
    theirs, ours = twins(name)
    x = np.random.default_rng(0).normal(size=(4, 3, 32, 32))
    y = np.array([1, 0, 3, 9])
    tx, ox = torch.tensor(x, requires_grad=True), tinyres.tensor(x, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(theirs(tx), torch.tensor(y))
    loss_o = tinyres.nn.functional.cross_entropy(ours(ox), tinyres.tensor(y))
    loss_t.backward()
    loss_o.backward()
    assert abs(loss_t.item() - loss_o.item()) < 1e-10
    np.testing.assert_allclose(ox.grad.array, tx.grad.numpy(), rtol=1e-7, atol=1e-11)
    grads = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        if grads[k].grad is None:                  # a layer the forward does not use (EfficientNet's first block)
            assert p.grad is None, k
            continue
        np.testing.assert_allclose(p.grad.array, grads[k].grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=k)
    for k, v in theirs.state_dict().items():         # running statistics after the training-mode step
        np.testing.assert_allclose(ours.state_dict()[k].array, v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    theirs.eval(), ours.eval()
    with torch.no_grad(), tinyres.no_grad():
        np.testing.assert_allclose(ours(ox).array, theirs(tx).numpy(), rtol=1e-8, atol=1e-10)


def test_efficientnets_drop_connect_trains_in_place_inside_the_graph():
    tinyres.manual_seed(0)
    net = MODELS_TINYRES.MODELS["EfficientNet"]()
    net.train()
    out = net(tinyres.randn(4, 3, 32, 32))
    out.sum().backward()                 # mask.bernoulli_, x.div_, x.mul_ on a tensor in the graph
    unused = {k for k in dict(net.named_parameters()) if k.startswith("layers.0.conv1") or k.startswith("layers.0.bn1")}
    assert all((p.grad is None) == (k in unused) for k, p in net.named_parameters())


def test_the_training_script_gives_torchs_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_t, train_o = load("train", "torch"), load("train", "tinyres")
    images, labels = train_t.synthetic_cifar(96, seed=0, dtype="float64")
    test_images, test_labels = train_t.synthetic_cifar(100, seed=1, dtype="float64")
    runs = {}
    for library, script, models in (("torch", train_t, MODELS_TORCH), ("tinyres", train_o, MODELS_TINYRES)):
        theirs, ours = twins("ResNet18")
        net = theirs if library == "torch" else ours
        runs[library] = script.run(net, script.ArrayDataset(images, labels), script.ArrayDataset(test_images, test_labels),
                                   epochs=3, checkpoint=f"{library}/ckpt.pth")
    (history_t, acc_t, epoch_t), (history_o, acc_o, epoch_o) = runs["torch"], runs["tinyres"]
    for a, b in zip(history_t, history_o):
        assert a["train_acc"] == b["train_acc"] and a["test_acc"] == b["test_acc"]
        for key in ("train_loss", "test_loss", "lr"):
            assert abs(a[key] - b[key]) < 1e-8 * max(1, abs(a[key])), (key, a, b)
    assert (acc_t, epoch_t) == (acc_o, epoch_o) and history_o[-1]["train_acc"] > history_o[0]["train_acc"]
    # the checkpoint tinyres wrote is a real .pth: torch reads it
    saved = torch.load(tmp_path / "tinyres" / "ckpt.pth", weights_only=True)
    assert saved["acc"] == acc_o and "linear.weight" in saved["net"]


def test_the_training_script_with_worker_processes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = load("train", "tinyres")
    images, labels = script.synthetic_cifar(48)
    tinyres.manual_seed(0)
    net = MODELS_TINYRES.MODELS["SENet"]()
    history, acc, _ = script.run(net, script.ArrayDataset(images, labels), script.ArrayDataset(images, labels),
                                 epochs=1, workers=2)
    assert history and 0 <= acc <= 100


def test_data_parallel_on_one_device_as_torch_and_refused_on_several():
    theirs, ours = torch.nn.DataParallel(torch.nn.Linear(2, 3)), tinyres.nn.DataParallel(tinyres.nn.Linear(2, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["module.weight", "module.bias"]
    assert ours(tinyres.randn(4, 2)).shape == (4, 3)
    with pytest.raises(NotImplementedError, match="DistributedDataParallel"):
        tinyres.nn.DataParallel(tinyres.nn.Linear(2, 3), device_ids=[0, 1])


def test_cudnn_flags_are_accepted_and_change_nothing():
    import tinyres.backends.cudnn as cudnn
    cudnn.benchmark, cudnn.deterministic = True, True
    assert not cudnn.is_available() and tinyres.backends.cudnn.benchmark


@pytest.mark.parametrize("name, why", [("compile", "no compiler"), ("jit", "tinyres.onnx.export"),
                                       ("amp", "mixed precision"), ("use_deterministic_algorithms", "deterministic")])
def test_what_tinyres_leaves_out_says_so(name, why):
    with pytest.raises(AttributeError, match=why):
        getattr(tinyres, name)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        tinyres.nonsense


# ---------------------------------------------------------------------- everyday names, as torch's

EVERYDAY = {
    "dtype aliases": lambda m, x: [str(d).replace("torch.", "") for d in (m.long, m.float, m.double, m.half, m.bool,
                                                                          m.int)],
    "conversions": lambda m, x: [str(t.dtype).replace("torch.", "") for t in (x.int(), x.long(), x.half(), x.bool(),
                                                                            x.float(), x.double())],
    "is_*": lambda m, x: [m.is_tensor(x), m.is_tensor(1.0), x.is_floating_point(), x.long().is_floating_point(),
                          m.numel(x)],
    "bool operators": lambda m, x: [((x > 0) & (x < 2)).tolist(), ((x > 1) | (x < -1)).tolist(),
                                    ((x > 0) ^ (x > 1)).tolist(), (~(x > 0)).tolist()],
    "integer // and %": lambda m, x: [(x.long() // 2).tolist(), (x.long() % 3).tolist(), (7 // (x.long() + 5)).tolist()],
    "float // and %": lambda m, x: [(x // 0.7).tolist(), (x % 0.7).tolist(), (-x % 2).tolist()],
    "nan and inf": lambda m, x: [t.tolist() for t in ((x / 0).isinf(), m.isnan(x * float("nan")), (x / 0).isfinite())],
    "two-tensor max and min": lambda m, x: [m.max(x, -x).tolist(), m.min(x, x * 2).tolist()],
    "new_*": lambda m, x: [x.new_zeros(2, 3).tolist(), x.new_ones((2,)).tolist(), x.new_full((2,), 7.0).tolist(),
                           x.new_tensor([1, 2]).tolist(), str(x.new_zeros(1).dtype).replace("torch.", "")],
    "norm at zero, p=0": lambda m, x: [float(x.norm(p=0)), float((x * 0).norm())],
    "var correction": lambda m, x: [float(x.var(correction=0)), float(x.std(correction=0))],
}


@pytest.mark.parametrize("name", list(EVERYDAY))
def test_everyday_names_give_torchs_results(name):
    data = np.array([1.5, -2.0, 0.0, 3.25])
    ours = EVERYDAY[name](tinyres, tinyres.tensor(data))
    theirs = EVERYDAY[name](torch, torch.tensor(data))
    assert ours == theirs


def test_the_norms_gradient_at_zero_is_zero_as_torchs():
    for lib in (tinyres, torch):
        x = lib.zeros(2, 3, dtype=lib.float64, requires_grad=True)
        (x.norm() + x.norm(dim=1).sum()).backward()
        assert x.grad.tolist() == [[0.0] * 3] * 2


@pytest.mark.filterwarnings("ignore:size_average and reduce args")
def test_functional_losses_take_torchs_positional_and_legacy_arguments():
    x0, y0 = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]]), np.array([0, 2])
    out = []
    for lib, F in ((tinyres, tinyres.nn.functional), (torch, torch.nn.functional)):
        x, y = lib.tensor(x0), lib.tensor(y0)
        out.append([F.nll_loss(F.log_softmax(x, 1), y, size_average=False).tolist(),
                    F.cross_entropy(x, y, reduce=False).tolist(), F.cross_entropy(x, y, None, None, 1).tolist(),
                    F.mse_loss(x, x * 0, None, None, "sum").tolist(), F.l1_loss(x, x * 0, reduce=False).tolist(),
                    F.binary_cross_entropy_with_logits(x, x * 0 + 1, None, None, None, "sum").tolist()])
    np.testing.assert_allclose(np.concatenate([np.ravel(v) for v in out[0]]),
                               np.concatenate([np.ravel(v) for v in out[1]]), rtol=1e-12)


def test_non_blocking_and_copy_are_accepted():
    x = tinyres.ones(2)
    assert x.to("cpu", non_blocking=True) is not None and x.to(tinyres.float64, copy=True).dtype == np.float64
    y = x.to(x.dtype, copy=True)
    y.add_(1)
    assert x.tolist() == [1.0, 1.0]
    model = tinyres.nn.Linear(2, 2)
    assert model.to("cpu", non_blocking=True) is model


def test_a_main_py_with_torchvisions_cifar10_transforms_and_a_shuffled_loader_runs(tmp_path):
    """kuangliu-style main.py (tests/ported/main.py): torchvision.datasets.CIFAR10 with
    download=True over files already there (nothing is fetched), RandomCrop + flip +
    ToTensor + Normalize, DataLoader(shuffle=True, num_workers=2), SGD and cosine schedule --
    with its imports swapped, it trains; the seed repeats the shuffled order."""
    source = (PORTED / "main.py").read_text()
    changed = [b for a, b in zip(source.splitlines(), swap_imports(source).splitlines()) if a != b]
    assert changed == ["import tinyres as torch", "import tinyres.nn as nn", "import tinyres.optim as optim",
                       "import tinyres.backends.cudnn as cudnn", "import tinyres.vision as torchvision",
                       "import tinyres.vision.transforms as transforms"]
    from test_data_datasets import cifar_files
    files, content = cifar_files(tinyres.data.CIFAR10, n=12)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    script = load("main", "tinyres")
    runs = []
    for _ in range(2):
        tinyres.manual_seed(0)
        net = MODELS_TINYRES.MODELS["ResNet18"]()
        runs.append(script.main(net, ["--root", str(tmp_path), "--epochs", "2", "--batch-size", "16", "--lr", "0.01"]))
    (history, best), (again, _) = runs
    labels = [y for batch in history[0]["labels"] for y in batch]
    in_order = [y for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
                for y in content[name][1]]
    assert sorted(labels) == sorted(in_order) and labels != in_order          # every image, shuffled
    assert history[0]["labels"] != history[1]["labels"]                       # a new order each epoch
    assert [h["labels"] for h in history] == [h["labels"] for h in again]      # the seed repeats it
    assert all(np.isfinite(h["loss"]) for h in history) and 0 <= best <= 100
