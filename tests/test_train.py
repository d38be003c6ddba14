"""The trainer: exact resume, logs, divergence, evaluation."""
import json

import numpy as np
import pytest

import tinyres
from tinyres.data import DataLoader
from tinyres.train import Trainer, TrainingDiverged, evaluate, load_run
from helpers import make_trainer, small_data, small_model


def test_resume_gives_bit_identical_weights(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=3)
    straight.fit()

    first = make_trainer(tmp_path / "b", epochs=1)
    first.fit()
    tinyres.manual_seed(12345)       # anything that happens in between must not matter
    resumed = make_trainer(tmp_path / "b", epochs=3, seed=3)
    assert resumed.resume() == 1
    resumed.fit()

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


def test_fit_until_an_epoch_then_on_trains_as_one_call(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=3)
    straight.fit()
    turns = make_trainer(tmp_path / "b", epochs=3)
    assert [r["epoch"] for r in turns.fit(until=1)] == [1]
    tinyres.manual_seed(12345)       # another run taking its turn in between must not matter
    assert [r["epoch"] for r in turns.fit(until=7)] == [1, 2, 3]      # never past epochs
    assert turns.fit(until=2) == turns.history and turns.epoch == 3    # nothing left before 2
    a, b = straight.model.state_dict(), turns.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in turns.history]
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"Trainer\.fit: until must be a non-negative integer"):
            turns.fit(until=bad)


def test_runs_made_together_and_taking_turns_train_as_each_would_alone(tmp_path):
    """degradation.py's way: every trainer made first, then an epoch each in turn, then a
    stop and a resume in the middle; each run's own random stream (dropout) stays its own."""
    alone = [make_trainer(tmp_path / f"alone{seed}", epochs=3, seed=seed) for seed in (3, 4)]
    for trainer in alone:
        trainer.fit()
    turns = [make_trainer(tmp_path / f"turns{seed}", epochs=3, seed=seed) for seed in (3, 4)]
    for trainer in turns:
        trainer.fit(until=1)
    turns = [make_trainer(tmp_path / f"turns{seed}", epochs=3, seed=seed) for seed in (3, 4)]   # a new process
    for trainer in turns:
        trainer.resume()
    for epoch in (2, 3):
        for trainer in turns:
            trainer.fit(until=epoch)
    for a, b in zip(alone, turns):
        assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)


def test_run_folder_holds_checkpoint_log_and_plots(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "train_accuracy", "test_accuracy", "lr", "images_per_second"} <= set(lines[0])
    assert (tmp_path / "loss.png").stat().st_size > 1000 and (tmp_path / "accuracy.png").exists()
    state = load_run(tmp_path / "checkpoint.npz")
    assert state["epoch"] == 2 and state["config"]["model"] == "small"


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    before = (tmp_path / "checkpoint.npz").read_bytes()
    trainer = make_trainer(tmp_path, epochs=3)
    trainer.resume()
    trainer.optimizer.param_groups[0]["lr"] = 1e30     # resume restored the saved lr; now blow it up
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step \d+.*last good checkpoint \(epoch 1\)"):
        trainer.fit()
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert load_run(tmp_path / "checkpoint.npz")["epoch"] == 1          # and it loads


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    make_trainer(tmp_path, epochs=1).fit()
    other = make_trainer(tmp_path, epochs=2)
    other.config["model"] = "resnet20"
    with pytest.raises(ValueError, match="checkpoint of model 'small'.*'resnet20'"):
        other.resume()


def test_evaluate_reports_confusion_and_per_class():
    model = small_model().eval()
    result = evaluate(model, DataLoader(small_data(40), batch_size=16), 10)
    confusion = np.array(result["confusion"])
    assert confusion.sum() == 40 == result["count"]
    assert result["accuracy"] == pytest.approx(confusion.trace() / 40)
    assert len(result["per_class_accuracy"]) == 10


def test_trainer_validates_epochs():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        Trainer(small_model(), None, None, epochs=0)


def test_resume_rewrites_a_log_torn_by_a_crash_from_the_checkpoint(tmp_path):
    """A crash in the middle of appending to metrics.jsonl leaves half a line; resuming
    rewrites the log from the checkpoint, so every line parses and there is one per epoch."""
    make_trainer(tmp_path, epochs=2).fit()
    log = tmp_path / "metrics.jsonl"
    log.write_text(log.read_text() + '{"epoch": 3, "train_lo')          # epoch 3 died mid-line
    trainer = make_trainer(tmp_path, epochs=3)
    assert trainer.resume() == 2
    trainer.fit()
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("name", ["checkpoint.pth", "last.ckpt"])
def test_a_checkpoint_named_as_torch_s_resumes_bit_identically_and_torch_reads_it(tmp_path, name):
    """A path that does not end in .npz gets torch's zip format (tinyres.save's rule): a
    resume from it is as exact as from checkpoint.npz, and real torch.load reads it."""
    torch = pytest.importorskip("torch")
    straight = make_trainer(tmp_path / "a", epochs=2)
    straight.fit()
    first = make_trainer(tmp_path / "b", epochs=1)
    first.fit()
    path = first.save_checkpoint(tmp_path / name)
    resumed = make_trainer(tmp_path / "c", epochs=2)
    assert resumed.resume(path) == 1
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    state = torch.load(path, weights_only=True)
    assert state["format"] == "tinyres-run" and set(state["model"]) == set(a)
