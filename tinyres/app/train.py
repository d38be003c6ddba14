"""Training a classifier: epochs, evaluation, checkpoints, exact resume, logs and plots.

A run lives in one folder (``out_dir``):

* ``checkpoint.npz`` -- written atomically after every epoch: model, optimizer, scheduler,
  random-number states, epoch, metrics, and the run's ``config`` (model name and
  arguments, dataset, preprocessing) so that ``tinyres eval``/``predict`` rebuild
  everything from the file alone;
* ``metrics.jsonl`` -- one JSON object per epoch;
* ``loss.png``, ``accuracy.png`` -- the curves (when matplotlib is installed).

Exact resume: the shuffling order of epoch k is a function of (seed, k) (see
``DataLoader``), the augmentation generator is reset to a function of (seed, k) at the
start of every epoch, and tinyres's default generator (dropout) is saved in the
checkpoint.  A run stopped after epoch k and resumed ends with the same weights, bit for
bit, as a run that was never stopped.

Data-parallel (``mpiexec -n P``, see ``tinyres.distributed``): every rank trains, only
rank 0 writes the checkpoint, the logs and the plots and shows the progress bar; the
epoch's figures and the evaluation are summed over the ranks.  The checkpoint holds the
unwrapped model, so a run resumes on any number of processes.
"""
import json
import math
import time
from pathlib import Path

import numpy

from ..core import backend
from .. import distributed
from ..core.grad_mode import no_grad
from ..data.sampler import DistributedSampler
from ..errors import UserError
from ..nn import functional as F
from ..serialization import RUN_FORMAT as FORMAT, atomic_write, load, load_run, save  # noqa: F401

CHECKPOINT = "checkpoint.npz"


class TrainingDiverged(RuntimeError, UserError):
    """The loss became NaN or infinite (a setting to change, such as the learning rate)."""


def progress_bar(iterable, enabled, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


@no_grad()
def evaluate(model, loader, num_classes):
    """Loss, accuracy, per-class accuracy and the confusion matrix (rows: true class);
    with a ``DistributedSampler`` loader, of the union of every rank's shard."""
    was_training = model.training
    model.eval()
    sums = None     # [loss, confusion counts...] summed where the model lives: one transfer at the end
    for images, labels in loader:
        logits = model(images)
        loss = F.cross_entropy(logits, labels, reduction="sum").array
        with backend.on_device(logits.device):
            xp = backend.get_array_module(loss)
            pairs = labels.array.ravel() * num_classes + logits.array.argmax(axis=1).ravel()
            counts = xp.bincount(pairs, minlength=num_classes * num_classes)     # integers: exact in any order
            batch = xp.concatenate([loss.astype(xp.float64).reshape(1), counts.astype(xp.float64)])
            sums = batch if sums is None else sums + batch
    model.train(was_training)
    sums = numpy.zeros(1 + num_classes * num_classes) if sums is None else backend.to_host(sums)
    total_loss = sums[:1].copy()
    confusion = sums[1:].astype(numpy.int64).reshape(num_classes, num_classes)
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):    # each rank saw its shard
        distributed.all_reduce(confusion)
        distributed.all_reduce(total_loss)
    n, total_loss = int(confusion.sum()), float(total_loss[0])
    per_class = confusion.diagonal() / numpy.maximum(confusion.sum(axis=1), 1)
    return {"loss": total_loss / max(n, 1), "accuracy": float(confusion.trace() / max(n, 1)),
            "per_class_accuracy": per_class.tolist(), "confusion": confusion.tolist(), "count": n}


class Trainer:
    """Train ``model`` with ``optimizer`` on ``train_loader``; evaluate on ``test_loader``.

    ``scheduler`` steps once per epoch, or once per batch with ``scheduler_step="batch"``
    (OneCycleLR).  The training loss is cross-entropy, with ``label_smoothing`` (the
    evaluation loss is plain cross-entropy).  ``augment_generator`` is the NumPy Generator the random transforms
    draw from; the trainer resets it at each epoch so that resuming is exact.  The default
    generator's stream (dropout's draws) belongs to the run from the moment it is made (or
    resumed): seed before making the trainer; ``fit`` takes the stream up and puts it away
    again, so runs that take turns (``fit(until=...)``) do not draw from each other's.

    The step's loss and accuracy are summed where the model lives and read (one transfer)
    every ``log_every`` steps and at the end of the epoch -- default: every step on the CPU,
    where reading is free, every 50 on a GPU, so that a step never waits for the host.  A
    NaN or infinite loss stops the run at the first look that sees it.
    """

    def __init__(self, model, optimizer, train_loader, test_loader=None, scheduler=None, epochs=1,
                 out_dir=None, config=None, num_classes=None, scheduler_step="epoch",
                 augment_generator=None, seed=0, progress=True, log=print, label_smoothing=0.0,
                 log_every=None):
        if not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"Trainer: epochs must be a positive integer, got {epochs!r}")
        if scheduler_step not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.test_loader = train_loader, test_loader
        self.epochs, self.scheduler_step = epochs, scheduler_step
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.config = dict(config or {})
        self.num_classes = num_classes or self.config.get("num_classes")
        self.augment_generator, self.seed = augment_generator, seed
        self.main = distributed.rank() == 0       # the rank that writes and prints
        self.progress, self.label_smoothing = progress and self.main, label_smoothing
        self.log_every = log_every
        self.log = log if self.main else (lambda *args, **kwargs: None)
        self.net = model.module if isinstance(model, distributed.DistributedDataParallel) else model
        self.epoch = 0            # epochs completed
        self.history = []
        self._plot_warned = False
        # The run's own stream of the default generator (dropout draws from it), taken here and
        # given back to the generator while fit runs: runs that take turns, or anything drawing
        # between two calls of fit, leave each other's draws alone.  None while fit runs.
        self._rng = backend.default_generator().bit_generator.state

    # ------------------------------------------------------------------ the loop
    def fit(self, until=None):
        """Train the remaining epochs, or only up to epoch ``until`` (several runs taking turns,
        as examples/degradation.py does); returns the history (one dict per epoch).  Stopping
        at ``until`` and calling ``fit`` again trains exactly as one call would."""
        if until is not None and (not isinstance(until, int) or isinstance(until, bool) or until < 0):
            raise ValueError(f"Trainer.fit: until must be a non-negative integer epoch, got {until!r}")
        backend.default_generator().bit_generator.state, self._rng = self._rng, None
        try:
            for epoch in range(self.epoch, self.epochs if until is None else min(until, self.epochs)):
                row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
                if self.test_loader is not None:
                    result = evaluate(self.model, self.test_loader, self.num_classes)
                    row.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
                self.epoch = epoch + 1
                self.history.append(row)
                self.log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
                if self.out_dir is not None and self.main:
                    self.save_checkpoint()
                    self._write_logs(row)
        finally:
            self._rng = backend.default_generator().bit_generator.state
        return self.history

    def train_epoch(self, epoch):
        self.model.train()
        if self.augment_generator is not None:
            ranks = [distributed.rank()] if distributed.world_size() > 1 else []   # each its own draws
            fresh = numpy.random.default_rng([self.seed, epoch] + ranks)
            self.augment_generator.bit_generator.state = fresh.bit_generator.state
        self.train_loader.epoch = epoch
        device = next(iter(self.net.parameters())).device
        xp = backend.xp_for(device)
        if not backend.is_cpu(xp):           # dropout's generator on the GPU: reset per epoch, as above
            backend.cuda_manual_seed(int(numpy.random.default_rng([self.seed, epoch]).integers(2**63)))
        every = self.log_every or (1 if backend.is_cpu(xp) else 50)   # steps between looks at the figures
        total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        running = None        # [loss * n, correct] summed on the device since the last look
        bar = progress_bar(self.train_loader, self.progress, desc=f"epoch {epoch + 1}/{self.epochs}",
                           leave=False, unit="batch")
        for step, (images, labels) in enumerate(bar):
            logits = self.model(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_step == "batch":
                self.scheduler.step()
            n = len(labels)
            with backend.on_device(device):
                figures = xp.stack([loss.array.astype(xp.float64) * n,
                                    (logits.array.argmax(axis=1) == labels.array).sum().astype(xp.float64)])
                running = figures if running is None else running + figures
            seen += n
            if (step + 1) % every and step + 1 < len(self.train_loader):
                continue
            part_loss, part_correct = backend.to_host(running).tolist()    # one transfer per look
            running = None
            if not math.isfinite(part_loss):
                raise TrainingDiverged(
                    f"the loss became {part_loss} at epoch {epoch + 1}, step {step + 1}; "
                    + (f"the last good checkpoint (epoch {self.epoch}) is kept in {self.out_dir / CHECKPOINT}"
                       if self.out_dir is not None and self.epoch else "no checkpoint was written")
                    + ". Try a lower learning rate.")
            total_loss, correct = total_loss + part_loss, correct + int(part_correct)
            if self.progress:
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / (time.perf_counter() - start):.0f}")
        if self.scheduler is not None and self.scheduler_step == "epoch":
            self.scheduler.step()
        elapsed = time.perf_counter() - start
        if distributed.world_size() > 1:        # the figures of the global batch
            total_loss, correct, seen = distributed.all_reduce(numpy.array([total_loss, correct, seen]))
            correct, seen = int(correct), int(seen)
        return {"train_loss": total_loss / seen, "train_accuracy": correct / seen,
                "lr": self.optimizer.param_groups[0]["lr"], "seconds": elapsed,
                "images_per_second": seen / elapsed}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        return {"format": FORMAT, "epoch": self.epoch, "config": self.config,
                "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "rng": {"default": self._rng or backend.default_generator().bit_generator.state},
                "history": self.history}

    def save_checkpoint(self, path=None):
        """Write the run's state (model, optimizer, scheduler, RNG, history) to ``path``
        (default ``out_dir/checkpoint.npz``) atomically, for ``resume``.  The format follows
        the name as ``tinyres.save``'s: ``.npz`` is tinyres's checksummed one; another name
        (``checkpoint.pth``) is torch's zip, which ``torch.load(path, weights_only=True)``
        reads and ``resume`` continues from as exactly."""
        path = Path(path) if path is not None else self.out_dir / CHECKPOINT
        path.parent.mkdir(parents=True, exist_ok=True)
        save(self.state_dict(), path)
        return path

    def resume(self, path=None):
        """Continue from a checkpoint written by this trainer (for the same model and setup)."""
        path = Path(path) if path is not None else self.out_dir / CHECKPOINT
        state = load_run(path)
        for key in ("model", "dataset"):
            ours, theirs = self.config.get(key), state["config"].get(key)
            if ours is not None and theirs is not None and ours != theirs:
                raise UserError(f"resume: {path} is a checkpoint of {key} {theirs!r}, "
                                 f"but this run uses {ours!r}")
        try:
            self.net.load_state_dict(state["model"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError(f"resume: {path} does not fit this model: {e}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self._rng = state["rng"]["default"]
        self.epoch, self.history = int(state["epoch"]), list(state["history"])
        if self.out_dir is not None and self.main:     # the log as the checkpoint knows it: a line torn by a crash,
            lines = "".join(json.dumps(row) + "\n" for row in self.history)   # or one past it, goes
            self.out_dir.mkdir(parents=True, exist_ok=True)          # (a new folder, resumed from another's)
            atomic_write(self.out_dir / "metrics.jsonl", lambda f: f.write(lines.encode()))
        return self.epoch

    # ------------------------------------------------------------------ logs and plots
    def _write_logs(self, row):
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            if not self._plot_warned:
                self.log("matplotlib is not installed: plots are skipped (pip install 'tinyres[plot]')")
                self._plot_warned = True
            return
        epochs = [r["epoch"] for r in self.history]
        for metric in ("loss", "accuracy"):
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.plot(epochs, [r[f"train_{metric}"] for r in self.history], "o-", label="train")
            if "test_" + metric in self.history[-1]:
                ax.plot(epochs, [r[f"test_{metric}"] for r in self.history], "s-", label="test")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.legend()
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(self.out_dir / f"{metric}.png", dpi=100)
            plt.close(fig)
