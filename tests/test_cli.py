"""The tinyres command: each subcommand on tiny runs, and one-line errors with exit code 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import write_images
from tinyres.cli import main

QUICK = ["--epochs", "1", "--batch-size", "32", "--subset", "96", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "resnet8", "--dataset", "bundled", "--out", str(out), "--lr", "0.05"] + QUICK) == 0
    return out


def test_train_leaves_checkpoint_log_and_curves(run_dir):
    assert (run_dir / "checkpoint.npz").exists() and (run_dir / "metrics.jsonl").exists()
    assert (run_dir / "loss.png").exists()


def test_eval_json(run_dir, capsys):
    assert main(["eval", str(run_dir / "checkpoint.npz"), "--json", "--subset", "64"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 64 and 0 <= result["accuracy"] <= 1
    assert np.array(result["confusion"]).shape == (10, 10)


def test_eval_table(run_dir, capsys):
    assert main(["eval", str(run_dir / "checkpoint.npz"), "--subset", "32"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "confusion matrix" in out


def test_resume_continues_the_run(run_dir, capsys):
    assert main(["train", "--model", "resnet8", "--dataset", "bundled", "--out", str(run_dir), "--resume",
                 "--epochs", "2", "--batch-size", "32", "--subset", "96", "--no-progress"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_predict_reads_npy_and_png(run_dir, tmp_path, capsys):
    from tinyres.data import BundledMNIST
    image = BundledMNIST(train=False).data[0]
    np.save(tmp_path / "digit.npy", image)
    paths = [str(tmp_path / "digit.npy")]
    try:
        from PIL import Image
        Image.fromarray(image).save(tmp_path / "digit.png")
        paths.append(str(tmp_path / "digit.png"))
    except ImportError:
        pass
    assert main(["predict", str(run_dir / "checkpoint.npz"), *paths, "--topk", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(paths) and all(line.count("(") == 2 for line in lines)


def test_summary(capsys):
    assert main(["summary", "resnet20", "--input-size", "3", "32", "32", "--num-classes", "10"]) == 0
    assert "Total params: 269,722" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["train", "--model", "resnet19", "--dataset", "bundled"], "unknown model 'resnet19'; valid names: resnet18"),
    (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'; valid names: bundled"),
    (["train", "--dataset", "bundled", "--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["train", "--dataset", "bundled", "--lr", "0"], "--lr must be positive, got 0.0"),
    (["train", "--dataset", "bundled", "--subset", "0"], "--subset must be positive, got 0"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}"], "Add --download to fetch it"),
    (["eval", "{tmp}/nothing.npz"], "does not exist"),
    (["summary", "resnet7"], "unknown model 'resnet7'"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinyres: error: ") and message in err and "\n" not in err and "Traceback" not in err


def test_resume_with_another_models_checkpoint(run_dir, capsys):
    assert main(["train", "--model", "resnet20", "--dataset", "bundled", "--out", str(run_dir), "--resume"]
                + QUICK) == 2
    assert "resnet8" in capsys.readouterr().err


def test_predict_on_an_undecodable_image(run_dir, tmp_path, capsys):
    pytest.importorskip("PIL")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    assert main(["predict", str(run_dir / "checkpoint.npz"), str(bad)]) == 2
    assert "cannot decode image" in capsys.readouterr().err


def test_a_corrupt_checkpoint_is_reported(run_dir, tmp_path, capsys):
    data = bytearray((run_dir / "checkpoint.npz").read_bytes())
    (tmp_path / "cut.npz").write_bytes(bytes(data[: len(data) // 2]))
    assert main(["eval", str(tmp_path / "cut.npz")]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception):
        main(["--debug", "eval", str(tmp_path / "nothing.npz")])


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "tinyres", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("tinyres ")


def test_gradcheck_prints_a_table_of_every_layer(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "conv2d (stride 2, padding 1)" in out and "batch_norm (training)" in out
    assert "FAILED" not in out and out.strip().endswith("0 failed")


def test_width_only_for_cifar_models(capsys):
    assert main(["train", "--model", "resnet18", "--dataset", "bundled", "--width", "8"] + QUICK) == 2
    assert "--width is for the CIFAR ResNets" in capsys.readouterr().err


# ---------------------------------------------------------------------- --dataset imagefolder

@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    write_images(root, {"cat": 12, "dog": 12, "emu": 12}, size=(8, 8), ext=".jpg")
    return root


def test_train_on_an_image_folder_with_a_validation_split(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "resnet8", "--dataset", "imagefolder", "--data-dir", str(image_folder),
                 "--val-split", "6", "--epochs", "1", "--batch-size", "10", "--no-progress", "--label-smoothing",
                 "0.1", "--nesterov", "--out", str(out)]) == 0
    from tinyres.train import load_run
    config = load_run(out / "checkpoint.npz")["config"]
    assert config["classes"] == ["cat", "dog", "emu"] and config["image_size"] == 8
    assert len(config["mean"]) == 3 and all(0 < s < 1 for s in config["std"])       # measured on the images
    assert config["train"]["val_split"] == 6 and config["train"]["label_smoothing"] == 0.1
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz"), "--dataset", "imagefolder", "--data-dir", str(image_folder),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 36 and np.array(result["confusion"]).shape == (3, 3)
    assert main(["predict", str(out / "checkpoint.npz"), str(image_folder / "dog" / "000.jpg")]) == 0
    assert "dog/000.jpg: " in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--data-dir", "{folder}"], "has no test split: add --val-split N"),
    ([], "--dataset imagefolder needs --data-dir DIR"),
    (["--data-dir", "{folder}", "--val-split", "36"], "--val-split 36 leaves no training images"),
    (["--data-dir", "{tmp}"], "has no class folders"),
])
def test_image_folder_mistakes_are_one_line(image_folder, tmp_path, capsys, argv, message):
    argv = [a.format(folder=image_folder, tmp=tmp_path) for a in argv]
    assert main(["train", "--model", "resnet8", "--dataset", "imagefolder", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "run")] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_eval_on_a_folder_of_other_classes_says_so(run_dir, image_folder, capsys):
    assert main(["eval", str(run_dir / "checkpoint.npz"), "--dataset", "imagefolder",
                 "--data-dir", str(image_folder)]) == 2
    assert "are not the classes" in capsys.readouterr().err


def test_detect_anomaly_stops_a_diverging_run_naming_the_op(tmp_path, capsys):
    assert main(["train", "--model", "resnet8", "--dataset", "bundled", "--subset", "64", "--epochs", "1",
                 "--batch-size", "32", "--no-progress", "--lr", "1e30", "--detect-anomaly",
                 "--out", str(tmp_path / "run")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]      # after NumPy's overflow warnings
    assert last.startswith("tinyres: error: ") and "NaN or Inf" in last


def test_image_folders_of_mixed_sizes_need_image_size(tmp_path, capsys):
    write_images(tmp_path / "data", {"a": 4}, size=(8, 8), ext=".png")
    write_images(tmp_path / "data", {"b": 4}, size=(10, 12), ext=".png", seed=1)
    argv = ["train", "--model", "resnet8", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"),
            "--val-split", "2", "--epochs", "1", "--batch-size", "4", "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "images of different sizes" in capsys.readouterr().err
    assert main(argv + ["--image-size", "8"]) == 0



@pytest.fixture
def registered():
    """Register test models by name; they are taken out of the registry afterwards."""
    from tinyres import models
    names = []

    def register(factory):
        names.append(factory.__name__)
        return models.register_model(factory)
    yield register
    for name in names:
        models.registry._MODELS.pop(name, None)


def test_a_bug_is_not_passed_off_as_bad_input(registered, capsys):
    """Only tinyres.UserError (and the system's OSError) are one-line errors; any other
    exception is a bug: its traceback is shown with a request to report it, exit status 1."""
    @registered
    def broken_model_for_cli_test(**kwargs):
        raise TypeError("unsupported operand deep inside tinyres")
    assert main(["summary", "broken_model_for_cli_test"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "deep inside tinyres" in err and "report" in err


def test_user_error_is_a_value_error():
    import tinyres
    from tinyres.serialization import CheckpointError
    from tinyres.train import TrainingDiverged
    assert issubclass(tinyres.UserError, ValueError)
    assert issubclass(CheckpointError, tinyres.UserError) and issubclass(TrainingDiverged, tinyres.UserError)


def test_a_model_registered_where_it_is_defined_is_known_by_name(registered, capsys):
    from tinyres import models, nn

    @registered
    def tiny_mlp_for_cli_test(num_classes=10, in_channels=1):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, num_classes))
    assert models.list_models()[-1] == "tiny_mlp_for_cli_test" and not models.accepts("tiny_mlp_for_cli_test", "width")
    assert main(["summary", "tiny_mlp_for_cli_test", "--input-size", "1", "28", "28", "--num-classes", "10"]) == 0
    assert "Total mult-adds: 0.00 G (7,840)" in capsys.readouterr().out

    def resnet20():
        pass
    with pytest.raises(ValueError, match="'resnet20' is already registered"):
        models.register_model(resnet20)
