"""Bundled pretrained weights: the weights= argument, the file format, its checksum, and the
command line taking a weights name wherever it takes a checkpoint.  A small run made here
stands in for the bundled file; the shipped one is checked at the end."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tinyres
from tinyres.cli import main
from tinyres.models import pretrained


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "resnet8", "--dataset", "bundled", "--out", str(out), "--epochs", "1",
                 "--batch-size", "32", "--subset", "64", "--no-progress"]) == 0
    return out / "checkpoint.npz"


@pytest.fixture
def digits_weights(run_checkpoint, tmp_path, monkeypatch):
    """The run exported as bundled weights 'digits' of resnet8."""
    sha = pretrained.export_weights(run_checkpoint, tmp_path / "resnet8_digits.npz",
                                    {"data": "bundled MNIST", "val_accuracy": 0.5})
    monkeypatch.setattr(pretrained, "BUNDLED", tmp_path)
    monkeypatch.setattr(pretrained, "WEIGHTS", {"resnet8": {"digits": ("resnet8_digits.npz", sha)}})
    return tmp_path / "resnet8_digits.npz"


def test_weights_argument_loads_the_run_and_its_preprocessing(digits_weights, run_checkpoint):
    model = tinyres.models.resnet8(weights="digits", in_channels=1)
    state = tinyres.load(run_checkpoint)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), np.asarray(state["model"][key]), err_msg=key)
    meta = model.weights_meta
    assert meta["classes"] == list(tinyres.data.BundledMNIST.classes)
    assert meta["image_size"] == 28 and len(meta["mean"]) == 1 and meta["data"] == "bundled MNIST"


def test_weights_file_keeps_no_optimizer_state(digits_weights):
    state = pretrained.read_weights(digits_weights)
    assert set(state) == {"format", "config", "model", "provenance"}


def test_other_arguments_must_fit_the_weights(digits_weights):
    with pytest.raises(ValueError, match=r"resnet8\(weights='digits'\) has num_classes=10, got num_classes=5; "
                                         r"to fine-tune"):
        tinyres.models.resnet8(weights="digits", in_channels=1, num_classes=5)


def test_an_unknown_name_lists_the_known_ones(digits_weights):
    with pytest.raises(ValueError, match=r"resnet8: no bundled weights named 'imagenet'; the bundled weights "
                                         r"are: resnet8\(weights='digits'\)"):
        tinyres.models.resnet8(weights="imagenet")


def test_a_damaged_file_fails_its_checksum(digits_weights, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS", {"resnet8": {"digits": ("resnet8_digits.npz", "0" * 64)}})
    with pytest.raises(ValueError, match="is damaged: its SHA-256"):
        tinyres.models.resnet8(weights="digits", in_channels=1)


def test_eval_and_predict_take_a_weights_name(digits_weights, tmp_path, capsys):
    assert main(["eval", "resnet8_digits", "--dataset", "bundled", "--subset", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 50
    from tinyres.data import BundledMNIST
    np.save(tmp_path / "digit.npy", BundledMNIST(train=False).data[0])
    assert main(["predict", "resnet8_digits", str(tmp_path / "digit.npy")]) == 0
    assert "digit.npy: " in capsys.readouterr().out
    assert main(["eval", "resnet8_nothing", "--dataset", "bundled"]) == 2
    assert "no bundled weights named 'nothing'" in capsys.readouterr().err


def test_the_shipped_weights_match_their_recorded_checksums():
    for arch, names in pretrained.WEIGHTS.items():
        for name, (filename, sha) in names.items():
            data = (pretrained.BUNDLED / filename).read_bytes()
            assert sha is not None and hashlib.sha256(data).hexdigest() == sha, filename
            assert pretrained.read_weights(pretrained.BUNDLED / filename)["config"]["model"] == arch


SAMPLE = Path(__file__).parent / "data" / "cifar10-sample"


def test_the_bundled_resnet20_recognises_held_out_cifar10_images(tmp_path, capsys):
    """30 CIFAR-10 JPEGs the weights never trained on (tests/data/cifar10-sample/README.md),
    through the command line: eval applies the preprocessing stored with the weights."""
    folder = shutil.copytree(SAMPLE, tmp_path / "sample")        # the cache is written beside the images
    assert main(["eval", "resnet20_cifar10", "--dataset", "imagefolder", "--data-dir", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 30 and result["accuracy"] >= 0.6, result["accuracy"]   # chance: 0.1
    assert main(["predict", "resnet20_cifar10", str(folder / "ship" / "0015.jpg"), "--topk", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(folder / "ship" / "0015.jpg") + ": ") and line.count("(") == 3


def test_the_bundled_resnet20_in_python():
    model = tinyres.models.resnet20(weights="cifar10").eval()
    meta = model.weights_meta
    assert meta["classes"][:2] == ["airplane", "automobile"] and meta["image_size"] == 32
    assert meta["val_accuracy"] == 0.8716 and meta["epochs"] == 40


def test_export_weights_refuses_a_name_that_would_get_torch_s_format(run_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"export_weights: expected a path ending in \.npz.*resnet8\.pth"):
        pretrained.export_weights(run_checkpoint, tmp_path / "resnet8.pth", {"data": "x"})
    assert not (tmp_path / "resnet8.pth").exists()
