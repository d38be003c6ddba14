"""tinyres.sanity and ``tinyres train --sanity``: each check passes on a healthy setup and
fails on a planted broken one."""
import json

import numpy as np

import tinyres
from tinyres import sanity
from tinyres.cli import run as cli_run
from tinyres.data import BundledMNIST, DataLoader


def setup(n=64, batch=16):
    tinyres.manual_seed(0)
    model = tinyres.models.resnet8(num_classes=10, in_channels=1)
    data = BundledMNIST(train=True).subset(np.arange(0, 8500, 8500 // n)[:n])
    return model, DataLoader(data, batch, shuffle=True, seed=0,
                             transform=lambda x: (x - 0.1307) / 0.3081)


def test_the_initial_loss_of_a_fresh_classifier_is_near_ln_classes_and_a_scaled_head_is_flagged():
    model, loader = setup()
    batches = [next(iter(loader))]
    fresh = sanity.initial_loss(model, batches, 10)
    assert fresh["ok"] and abs(fresh["ln_classes"] - np.log(10)) < 1e-12 and 0.9 < fresh["ratio"] < 1.2
    model.fc.weight.array *= 100                      # logits 100x too large: confidently wrong
    assert not sanity.initial_loss(model, batches, 10)["ok"]


def test_one_batch_is_overfit_but_not_in_one_step():
    model, loader = setup()
    images, labels = next(iter(loader))
    assert sanity.overfit_one_batch(model, images, labels, steps=200)["ok"]
    model, _ = setup()
    assert not sanity.overfit_one_batch(model, images, labels, steps=1)["ok"]


def test_the_lr_range_test_grows_the_lr_geometrically_from_start_to_end():
    """Without a blow-up it runs every step: lr_min, then a constant factor a step, to lr_max."""
    model, loader = setup()
    result = sanity.lr_range_test(model, [b for b in loader], lr_min=1e-4, lr_max=1e-2, steps=10)
    np.testing.assert_allclose(result["lrs"], np.geomspace(1e-4, 1e-2, 10), rtol=1e-12)
    assert len(result["losses"]) == len(result["smoothed"]) == 10


def test_the_lr_range_test_stops_at_the_blow_up():
    """At the first step whose smoothed loss exceeds 4x its minimum so far, and not before."""
    model, loader = setup()
    result = sanity.lr_range_test(model, [b for b in loader], lr_min=1e-4, lr_max=100.0, steps=40)
    lrs, smoothed = result["lrs"], result["smoothed"]
    assert 2 < len(lrs) < 40
    np.testing.assert_allclose(lrs, np.geomspace(1e-4, 100.0, 40)[:len(lrs)], rtol=1e-12)
    assert smoothed[-1] > 4 * min(smoothed)
    assert all(smoothed[t] <= 4 * min(smoothed[:t + 1]) for t in range(len(smoothed) - 1))
    assert result["stopped_at_lr"] == lrs[-1]
    assert result["min_loss_lr"] <= result["stopped_at_lr"] and 1e-4 <= result["steepest_lr"] <= result["min_loss_lr"]


def test_the_update_ratio_is_the_step_over_the_weight():
    model, loader = setup()
    images, labels = next(iter(loader))
    rows = {r["parameter"]: r for r in sanity.update_ratios(model, images, labels, lr=0.1, momentum=0.0)}
    assert rows["bn1.bias"]["ratio"] is None                 # starts at 0: no ratio
    w = model.fc.weight.numpy()
    model2, _ = setup()
    loss = tinyres.nn.functional.cross_entropy(model2(images), labels)
    loss.backward()
    step = 0.1 * np.linalg.norm(model2.fc.weight.grad.numpy())
    assert np.isclose(rows["fc.weight"]["ratio"], step / np.linalg.norm(model2.fc.weight.numpy()), rtol=1e-5)
    assert not np.array_equal(w, model2.fc.weight.numpy())


def test_train_sanity_runs_the_four_checks_and_writes_its_figures(tmp_path, capsys):
    status = cli_run(["train", "--sanity", "--dataset", "bundled", "--model", "resnet8", "--subset", "200",
                      "--batch-size", "16", "--out", str(tmp_path / "run"), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0, out
    for start in ("1. initial loss ", "2. overfit one batch of 16: ", "3. LR range test over ",
                  "4. update/weight ratio after one step at lr 0.1: ", "sanity: passed"):
        assert any(line.startswith(start) for line in out.splitlines()), out
    report = json.loads((tmp_path / "run" / "sanity.json").read_text())
    assert report["passed"] and set(report) >= {"initial_loss", "overfit_one_batch", "lr_range", "update_ratios"}
    assert (tmp_path / "run" / "lr_range.png").exists()
    assert not (tmp_path / "run" / "checkpoint.npz").exists()      # nothing was trained
