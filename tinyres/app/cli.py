"""The ``tinyres`` command: demo, train, eval, summary, predict, gradcheck, exercise.

Argument parsing and printing only: what a run is built from (datasets by name, model,
transforms, optimizer, checkpoints, image files) is in ``tinyres.recipes``, shared with the
examples.

Errors that tinyres raises on purpose about the user's input (``tinyres.UserError``: a
missing dataset, a bad flag, a checkpoint of another model) and the operating system's
refusals (``OSError``: a full disk, a folder without permission) are printed as one line
and exit with status 2; ``--debug`` shows the traceback instead.  Anything else is a bug:
its traceback is printed with a request to report it, and the exit status is 1.
"""
import argparse
import json
import sys
import traceback

import numpy

from .. import distributed, models
from ..version import __version__
from ..core import backend
from ..data import DataLoader, ImageFolder
from ..errors import UserError
from .recipes import DATASETS, add_training_flags, build_model, build_optimizer, build_transform, check_fits, check_positive, dataset_recipe, load_trained_model, make_config, open_dataset, read_image, split_off_validation

# what the user asked for was wrong: one line, exit status 2 (the old name of tinyres.UserError)
UsageError = UserError


# ---------------------------------------------------------------------- commands

def cmd_train(args):
    from .train import Trainer
    check_positive("--epochs", args.epochs)
    check_positive("--batch-size", args.batch_size)
    check_positive("--lr", args.lr)
    takes_width = models.accepts(args.model, "width")      # and an unknown model is reported here, first
    backend.manual_seed(args.seed)
    if args.width is not None and not takes_width:
        raise UserError(f"--width is for the CIFAR ResNets (resnet8 ... resnet110), not {args.model}")
    if args.download and distributed.world_size() > 1:
        raise UserError("--download under mpiexec would have every rank fetch into the same folder: fetch the "
                        "dataset once without mpiexec (tinyres train --download --epochs 1 ...), then launch")
    train_set = open_dataset(args.dataset, True, args.data_dir, args.download, args.subset, args.image_size)
    if args.val_split is not None:
        train_set, test_set = split_off_validation(train_set, args.val_split, args.seed)
    elif dataset_recipe(args.dataset).cls is ImageFolder:
        raise UserError("--dataset imagefolder has no test split: add --val-split N to hold out N images "
                        "for validation")
    else:
        test_set = open_dataset(args.dataset, False, args.data_dir, args.download, args.subset)
    config = make_config(args.model, args.dataset, train_set.classes, args.width, train_set)
    config["train"] = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "momentum", "weight_decay",
                                                      "schedule", "seed", "val_split", "label_smoothing",
                                                      "nesterov")}
    model = build_model(config).to(args.device)
    generator = numpy.random.default_rng(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device,
                              transform=build_transform(config, True, generator))
    if getattr(args, "sanity", False):   # the checks of tinyres.sanity instead of a training run
        from . import sanity
        return sanity.run(model, train_loader, config["num_classes"], args.lr, args.out, args.momentum,
                          args.weight_decay)
    test_loader = DataLoader(test_set, 500, device=args.device, transform=build_transform(config, False))
    model, train_loader, test_loader = distributed.data_parallel(model, train_loader, test_loader,
                                                                 sync_batchnorm=args.sync_bn)
    say = print if distributed.rank() == 0 else (lambda *args: None)     # under mpiexec: rank 0 speaks
    optimizer, scheduler, per = build_optimizer(config["train"], model.parameters(), len(train_loader))
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler, epochs=args.epochs,
                      out_dir=args.out, config=config, scheduler_step=per, augment_generator=generator,
                      seed=args.seed, progress=not args.no_progress, label_smoothing=args.label_smoothing)
    if args.resume:
        done = trainer.resume()
        say(f"resumed {args.out} after epoch {done}")
    if args.detect_anomaly:
        from ..core.grad_mode import detect_anomaly
        with detect_anomaly():
            history = trainer.fit()
    else:
        history = trainer.fit()
    final = history[-1] if history else {}
    say(f"test accuracy: {final.get('test_accuracy', float('nan')):.4f}  (run folder: {args.out})")
    return 0


def cmd_demo(args):
    args.model, args.width, args.dataset, args.data_dir, args.download = "resnet8", None, "bundled", None, False
    args.momentum, args.weight_decay, args.schedule = 0.9, 5e-4, "onecycle"
    args.val_split, args.label_smoothing, args.nesterov, args.detect_anomaly = None, 0.0, False, False
    args.image_size = None
    args.out = args.out or "runs/demo"
    print(f"tinyres demo: {args.model} on the bundled MNIST split (8,500 train / 1,500 test), "
          f"{args.epochs} epochs on {args.device}")
    return cmd_train(args)


def cmd_eval(args):
    from .train import evaluate
    state, model = load_trained_model(args.checkpoint)
    config = state["config"]
    dataset = args.dataset or config["dataset"]
    data = open_dataset(dataset, args.split == "train", args.data_dir, False, args.subset, config["image_size"])
    check_fits(config, dataset, data, args.checkpoint, args.data_dir)
    model = model.to(args.device)
    loader = DataLoader(data, args.batch_size, device=args.device, transform=build_transform(config, False))
    result = evaluate(model, loader, config["num_classes"])
    result.update(checkpoint=str(args.checkpoint), dataset=dataset, split=args.split)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{dataset} {args.split}: accuracy {result['accuracy']:.4f} over {result['count']} images, "
          f"loss {result['loss']:.4f}")
    for name, acc in zip(config["classes"], result["per_class_accuracy"]):
        print(f"  {name:>12}: {acc:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    for row in result["confusion"]:
        print("  " + " ".join(f"{v:5d}" for v in row))
    return 0


def cmd_summary(args):
    size = tuple(args.input_size)
    model = models.get_model(args.model, in_channels=size[0], num_classes=args.num_classes)
    print(models.summary(model, size))
    return 0


def cmd_predict(args):
    from ..core.grad_mode import no_grad
    from ..nn import functional as F
    from ..core.tensor import tensor
    state, model = load_trained_model(args.checkpoint)
    config = state["config"]
    channels, size = config["model_args"]["in_channels"], config["image_size"]
    batch = numpy.stack([read_image(p, channels, size) for p in args.images])
    batch = build_transform(config, False)(batch)
    with no_grad():
        probs = F.softmax(model(tensor(batch)), dim=1).numpy()
    k = min(args.topk, config["num_classes"])
    for path, p in zip(args.images, probs):
        top = numpy.argsort(-p)[:k]
        print(f"{path}: " + ", ".join(f"{config['classes'][i]} ({p[i]:.3f})" for i in top))
    return 0


def cmd_gradcheck(args):
    from .checks import run_layer_checks
    rows = run_layer_checks()
    width = max(len(r["name"]) for r in rows)
    print(f"{'op':<{width}}  {'max |numeric - analytic|':>24}  {'vs torch':>10}  result")
    for r in rows:
        torch_col = "-" if r["torch"] is None else f"{r['torch']:.1e}"
        print(f"{r['name']:<{width}}  {r['error']:>24.2e}  {torch_col:>10}  {'ok' if r['ok'] else 'FAILED'}")
    failed = [r["name"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


# ---------------------------------------------------------------------- parser

def parser():
    ap = argparse.ArgumentParser(prog="tinyres", description="ResNets in NumPy: train, evaluate, inspect.")
    ap.add_argument("--version", action="version", version=f"tinyres {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train a small ResNet on the bundled MNIST digits (offline, CPU)")
    add_training_flags(p, epochs=7, batch_size=64, lr=0.2)   # measured: 98.7% in 75 s on 2 cores
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("train", help="train a model on a dataset")
    p.add_argument("--model", default="resnet20", help=", ".join(models.list_models()))
    p.add_argument("--dataset", default="cifar10", help=", ".join(DATASETS))
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $TINYRES_DATA or ~/.cache/tinyres)")
    p.add_argument("--download", action="store_true", help="fetch the dataset if it is missing")
    p.add_argument("--width", type=int, default=None,
                   help="channels of the first stage of a CIFAR ResNet (default 16, as in the paper)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", choices=["step", "onecycle"], default="step",
                   help="step: lr / 10 at 50%% and 75%% of training (He et al.); onecycle: OneCycleLR")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="stop at the first op that makes a NaN or Inf, naming it and its line (slow)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="of the training loss (0: none)")
    p.add_argument("--image-size", type=int, default=None, metavar="S",
                   help="resize the images of --dataset imagefolder to SxS (needed when their sizes differ)")
    p.add_argument("--val-split", type=int, default=None, metavar="N",
                   help="hold N training images out (stratified, seeded) and evaluate on them instead of "
                        "the test split; needed for --dataset imagefolder")
    p.add_argument("--sanity", action="store_true",
                   help="instead of training: initial loss, overfit one batch, LR range test, update/weight ratios")
    add_training_flags(p, epochs=30, batch_size=128, lr=0.1)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--dataset", default=None, help="default: the one it was trained on; imagefolder: "
                                                    "every image in the class folders of --data-dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="only N images, spread evenly over the split")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("summary", help="layers, output shapes, parameters and mult-adds of a model")
    p.add_argument("model")
    p.add_argument("--input-size", type=int, nargs=3, default=(3, 224, 224), metavar=("C", "H", "W"))
    p.add_argument("--num-classes", type=int, default=1000)
    p.set_defaults(run=cmd_summary)

    p = sub.add_parser("predict", help="top-k labels for image files")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--topk", type=int, default=3)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("gradcheck", help="check every layer's backward against finite differences")
    p.set_defaults(run=cmd_gradcheck)

    from .exercises.cli import add_parser as add_exercise_parser     # tinyres exercise list|show|check
    add_exercise_parser(sub)
    return ap


def main(argv=None):
    if distributed.launched_by_mpi():    # first, so that an error on one rank can end the others
        distributed.init()
    status = run(argv)
    if status and distributed.world_size() > 1:     # under mpiexec: end the other ranks now
        distributed.abort(f"stopping all ranks (exit status {status})", status)
    return status


def run(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "out", "") is None and args.command == "train":
        args.out = f"runs/{args.model}-{args.dataset}"
    try:
        return args.run(args)
    except (UserError, OSError) as e:
        if args.debug:
            raise
        print(f"tinyres: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyres: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("tinyres: internal error: this is a bug in tinyres, not in what you asked for; please report it "
              "with the command line and the traceback above", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
