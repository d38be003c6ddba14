"""The ``tinyres`` command: demo, train, eval, summary, predict, gradcheck.

Errors that come from the user's input (a missing dataset, a bad flag, a checkpoint of
another model) are printed as one line and exit with status 2; ``--debug`` shows the
traceback instead.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy

from . import __version__, backend, models, optim
from .data import (CIFAR10, CIFAR100, MNIST, BundledMNIST, DataLoader, FashionMNIST, ImageFolder, stratified_split,
                   transforms)
from .serialization import CheckpointError, load

# name: (class, channels, size, mean, std, augmentation)
DATASETS = {
    "bundled": (BundledMNIST, 1, 28, transforms.MNIST_MEAN, transforms.MNIST_STD, "none"),
    "mnist": (MNIST, 1, 28, transforms.MNIST_MEAN, transforms.MNIST_STD, "none"),
    "fashion-mnist": (FashionMNIST, 1, 28, transforms.FASHION_MNIST_MEAN, transforms.FASHION_MNIST_STD, "crop"),
    "cifar10": (CIFAR10, 3, 32, transforms.CIFAR10_MEAN, transforms.CIFAR10_STD, "crop+flip"),
    "cifar100": (CIFAR100, 3, 32, transforms.CIFAR100_MEAN, transforms.CIFAR100_STD, "crop+flip"),
    # any folder of class folders: size, mean and std are read off the training images
    "imagefolder": (ImageFolder, 3, None, None, None, "crop+flip"),
}


class UsageError(Exception):
    """A problem with what the user asked for: one line, exit status 2."""


def dataset_info(name):
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def open_dataset(name, train, data_dir=None, download=False, subset=None, image_size=None):
    """A dataset by its CLI name; with ``subset``, ``subset`` images spread evenly over it
    (not the first ones: the bundled digits are grouped by class).  ``image_size`` resizes
    the images of an image folder to that square size."""
    cls = dataset_info(name)[0]
    if cls is ImageFolder:
        return open_image_folder(data_dir, subset, image_size)
    try:
        data = cls(train=train) if cls is BundledMNIST else cls(root=data_dir, train=train, download=download)
    except FileNotFoundError as e:
        where = " ".join(line.strip() for line in str(e).splitlines()[:-1])   # all but the API hint
        raise UsageError(f"{where}. Add --download to fetch it, or --data-dir DIR pointing at a folder "
                         "that holds the files.") from None
    return spread_subset(data, subset)


def spread_subset(data, subset):
    if subset is not None:
        check_positive("--subset", subset)
        data = data.subset(numpy.linspace(0, len(data) - 1, min(subset, len(data))).astype(numpy.int64))
    return data


def open_image_folder(data_dir, subset=None, image_size=None):
    """``--dataset imagefolder``: the folder of class folders ``--data-dir``, all of it."""
    if data_dir is None:
        raise UsageError("--dataset imagefolder needs --data-dir DIR, a folder with one subfolder of images per class")
    if image_size is not None:
        check_positive("--image-size", image_size)
    try:
        return spread_subset(ImageFolder(data_dir, size=None if image_size is None else (image_size,) * 2), subset)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise UsageError(str(e)) from None


def split_off_validation(train_set, count, seed):
    """(training part, validation part) of ``train_set``: ``count`` images held out,
    stratified by class, chosen by ``seed``."""
    check_positive("--val-split", count)
    if count >= len(train_set):
        raise UsageError(f"--val-split {count} leaves no training images (the training set has {len(train_set)})")
    kept, held = stratified_split(train_set.targets, count, seed)
    return train_set.subset(kept), train_set.subset(held)


def build_transform(config, train, generator=None):
    """The preprocessing recorded in ``config``: augmentation (training only), then normalisation."""
    steps = []
    if train and config["augment"] != "none":
        padding = 4 if config["image_size"] >= 32 else 2
        steps.append(transforms.RandomCrop(config["image_size"], padding=padding, generator=generator))
        if "flip" in config["augment"]:
            steps.append(transforms.RandomHorizontalFlip(generator=generator))
    steps.append(transforms.Normalize(config["mean"], config["std"]))
    return transforms.Compose(steps)


def build_model(config):
    return models.get_model(config["model"], **config["model_args"])


def image_statistics(data):
    """(size, per-channel mean, per-channel std) of a dataset's uint8 (N, H, W, C) images in [0, 1]."""
    pixels = data.data.reshape(-1, data.data.shape[-1])
    mean = pixels.mean(axis=0, dtype=numpy.float64) / 255
    std = numpy.sqrt((pixels.astype(numpy.float32) / 255 - mean).var(axis=0, dtype=numpy.float64))
    return data.data.shape[1], tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def make_config(model, dataset, classes, width=None, train_set=None):
    _, channels, size, mean, std, augment = dataset_info(dataset)
    if size is None:                 # an image folder: measured on its training images
        size, mean, std = image_statistics(train_set)
    model_args = {"num_classes": len(classes), "in_channels": channels}
    if width is not None:
        model_args["width"] = width
    return {"model": model, "model_args": model_args,
            "dataset": dataset, "classes": list(classes), "num_classes": len(classes),
            "image_size": size, "mean": list(mean), "std": list(std), "augment": augment}


def check_positive(name, value):
    if value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")


# ---------------------------------------------------------------------- commands

def cmd_train(args):
    from .train import Trainer
    check_positive("--epochs", args.epochs)
    check_positive("--batch-size", args.batch_size)
    check_positive("--lr", args.lr)
    if args.model not in models.list_models():
        raise UsageError(f"unknown model {args.model!r}; valid names: {', '.join(models.list_models())}")
    backend.manual_seed(args.seed)
    if args.width is not None and not hasattr(models.cifar, args.model):
        raise UsageError(f"--width is for the CIFAR ResNets (resnet8 ... resnet110), not {args.model}")
    train_set = open_dataset(args.dataset, True, args.data_dir, args.download, args.subset, args.image_size)
    if args.val_split is not None:
        train_set, test_set = split_off_validation(train_set, args.val_split, args.seed)
    elif dataset_info(args.dataset)[0] is ImageFolder:
        raise UsageError("--dataset imagefolder has no test split: add --val-split N to hold out N images "
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
    test_loader = DataLoader(test_set, 500, device=args.device, transform=build_transform(config, False))
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay, nesterov=args.nesterov)
    if args.schedule == "onecycle":
        scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                  steps_per_epoch=len(train_loader))
        per = "batch"
    else:   # the paper's recipe: divide by 10 at 50% and 75% of training
        milestones = sorted({max(1, args.epochs // 2), max(1, (3 * args.epochs) // 4)})
        scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
        per = "epoch"
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler, epochs=args.epochs,
                      out_dir=args.out, config=config, scheduler_step=per, augment_generator=generator,
                      seed=args.seed, progress=not args.no_progress, label_smoothing=args.label_smoothing)
    if args.resume:
        done = trainer.resume()
        print(f"resumed {args.out} after epoch {done}")
    if args.detect_anomaly:
        from .autograd import detect_anomaly
        with detect_anomaly():
            history = trainer.fit()
    else:
        history = trainer.fit()
    final = history[-1] if history else {}
    print(f"test accuracy: {final.get('test_accuracy', float('nan')):.4f}  (run folder: {args.out})")
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


def load_checkpoint_config(path):
    """(state with the run's config, model in eval mode) from a run checkpoint, a weights
    file, or the name of bundled weights such as ``resnet20_cifar10``."""
    from . import train
    from .models import pretrained
    arch, _, name = str(path).partition("_")
    if not Path(path).exists() and name and arch in pretrained.WEIGHTS:
        try:
            path = pretrained.weights_file(arch, name)
        except (ValueError, FileNotFoundError) as e:
            raise UsageError(str(e)) from None
    if not Path(path).exists():
        known = [f"{a}_{n}" for a, names in pretrained.available_weights().items() for n in names]
        raise UsageError(f"checkpoint {path} does not exist (bundled weights: {', '.join(known)})")
    state = load(path)
    if not isinstance(state, dict) or state.get("format") not in (train.FORMAT, pretrained.FORMAT):
        raise UsageError(f"{path} is neither a training checkpoint nor a weights file of tinyres")
    model = build_model(state["config"])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UsageError(f"{path} does not fit {state['config']['model']}: {e}") from None
    return state, model.eval()


def cmd_eval(args):
    from .train import evaluate
    state, model = load_checkpoint_config(args.checkpoint)
    config = state["config"]
    dataset = args.dataset or config["dataset"]
    data = open_dataset(dataset, args.split == "train", args.data_dir, False, args.subset, config["image_size"])
    if dataset_info(dataset)[0] is ImageFolder and list(data.classes) != list(config["classes"]):
        raise UsageError(f"the class folders of {args.data_dir} ({', '.join(data.classes)}) are not the classes "
                         f"{args.checkpoint} was trained on ({', '.join(config['classes'])})")
    if len(data.classes) != config["num_classes"] or dataset_info(dataset)[1] != config["model_args"]["in_channels"]:
        raise UsageError(f"{args.checkpoint} was trained on {config['dataset']} ({config['num_classes']} classes, "
                         f"{config['model_args']['in_channels']} channels); it cannot be evaluated on {dataset}")
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
    if args.model not in models.list_models():
        raise UsageError(f"unknown model {args.model!r}; valid names: {', '.join(models.list_models())}")
    size = tuple(args.input_size)
    model = models.get_model(args.model, in_channels=size[0], num_classes=args.num_classes)
    print(models.summary(model, size))
    return 0


def read_image(path, channels, size):
    """An image file as a float32 (channels, size, size) array in [0, 1]."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"image {path} does not exist")
    if path.suffix == ".npy":
        array = numpy.load(path, allow_pickle=False).astype(numpy.float32)
        array = array / 255.0 if array.max() > 1 else array
        return array.reshape(channels, size, size)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UsageError("reading PNG/JPEG images needs Pillow: pip install pillow (or pass a .npy array)") from None
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB").resize((size, size))
            array = numpy.asarray(im, dtype=numpy.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"cannot decode image {path}: {e}") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def cmd_predict(args):
    from .autograd import no_grad
    from .nn import functional as F
    from .tensor import tensor
    state, model = load_checkpoint_config(args.checkpoint)
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

def add_training_flags(p, epochs, batch_size, lr):
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (checkpoint, metrics.jsonl, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="use only the first N images of each split (quick tries)")


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
    p.add_argument("--subset", type=int, default=None, metavar="N", help="only the first N images")
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
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "out", "") is None and args.command == "train":
        args.out = f"runs/{args.model}-{args.dataset}"
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, CheckpointError, RuntimeError, OSError) as e:
        if args.debug:
            raise
        print(f"tinyres: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
