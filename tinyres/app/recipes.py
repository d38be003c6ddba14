"""Recipes: the datasets tinyres knows by name and how a run is built from its ``config``.

The ``tinyres`` command, the examples and your own scripts share them, so a checkpoint's
``config`` (model name and arguments, dataset, image size, normalisation, augmentation,
training settings) rebuilds the same model, transforms and optimizer wherever it is read.

* ``DATASETS`` -- each dataset's ``DatasetRecipe``: class, channels, image size, mean, std
  and augmentation (named fields).  A new dataset is one entry here.
* ``open_dataset`` -- a dataset by name (optionally a spread-out subset).
* ``make_config`` -- the config of a run; ``build_model``, ``build_transform`` and
  ``build_optimizer`` turn a config back into objects; ``load_trained_model`` reads a
  checkpoint or bundled weights into its model, ``check_fits`` says whether a dataset
  fits it, ``read_image`` reads an image file as it expects.
* ``add_training_flags`` -- the training flags of ``tinyres train`` (``--epochs``, ``--lr``,
  ``--out``, ...) on a script's own ``argparse`` parser.

Problems with what was asked for raise ``tinyres.UserError``; their messages name the
command-line flags (``--data-dir``, ``--subset``), which the examples share.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy

from .. import models, optim
from ..data import CIFAR10, CIFAR100, MNIST, BundledMNIST, FashionMNIST, ImageFolder, stratified_split, transforms
from ..errors import UserError
from ..serialization import load


@dataclass(frozen=True)
class DatasetRecipe:
    """What a dataset is made of, for building a run on it.

    ``image_size``, ``mean`` and ``std`` are None for an image folder: they are measured on
    its training images.  ``augment`` is ``"none"``, ``"crop"`` or ``"crop+flip"``."""
    cls: type
    channels: int
    image_size: int = None
    mean: tuple = None
    std: tuple = None
    augment: str = "none"


DATASETS = {
    "bundled": DatasetRecipe(BundledMNIST, 1, 28, transforms.MNIST_MEAN, transforms.MNIST_STD, "none"),
    "mnist": DatasetRecipe(MNIST, 1, 28, transforms.MNIST_MEAN, transforms.MNIST_STD, "none"),
    "fashion-mnist": DatasetRecipe(FashionMNIST, 1, 28, transforms.FASHION_MNIST_MEAN, transforms.FASHION_MNIST_STD,
                                   "crop"),
    "cifar10": DatasetRecipe(CIFAR10, 3, 32, transforms.CIFAR10_MEAN, transforms.CIFAR10_STD, "crop+flip"),
    "cifar100": DatasetRecipe(CIFAR100, 3, 32, transforms.CIFAR100_MEAN, transforms.CIFAR100_STD, "crop+flip"),
    # any folder of class folders: size, mean and std are read off the training images
    "imagefolder": DatasetRecipe(ImageFolder, 3, augment="crop+flip"),
}


def dataset_recipe(name):
    """The ``DatasetRecipe`` of dataset ``name``."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def check_positive(name, value):
    if value <= 0:
        raise UserError(f"{name} must be positive, got {value}")


# ---------------------------------------------------------------------- datasets

def open_dataset(name, train, data_dir=None, download=False, subset=None, image_size=None):
    """A dataset by name; with ``subset``, ``subset`` images spread evenly over it (not the
    first ones: the bundled digits are grouped by class).  ``image_size`` resizes the images
    of an image folder to that square size."""
    cls = dataset_recipe(name).cls
    if cls is ImageFolder:
        return open_image_folder(data_dir, subset, image_size)
    try:
        data = cls(train=train) if cls is BundledMNIST else cls(root=data_dir, train=train, download=download)
    except FileNotFoundError as e:
        where = " ".join(line.strip() for line in str(e).splitlines()[:-1])   # all but the API hint
        raise UserError(f"{where}. Add --download to fetch it, or --data-dir DIR pointing at a folder "
                        "that holds the files.") from None
    return spread_subset(data, subset)


def spread_subset(data, subset):
    """``subset`` images of ``data`` at evenly spaced indices (all of it for None)."""
    if subset is not None:
        check_positive("--subset", subset)
        data = data.subset(numpy.linspace(0, len(data) - 1, min(subset, len(data))).astype(numpy.int64))
    return data


def open_image_folder(data_dir, subset=None, image_size=None):
    """``imagefolder``: the folder of class folders ``data_dir``, all of it."""
    if data_dir is None:
        raise UserError("--dataset imagefolder needs --data-dir DIR, a folder with one subfolder of images per class")
    if image_size is not None:
        check_positive("--image-size", image_size)
    try:
        return spread_subset(ImageFolder(data_dir, size=None if image_size is None else (image_size,) * 2), subset)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise UserError(str(e)) from None


def split_off_validation(train_set, count, seed):
    """(training part, validation part) of ``train_set``: ``count`` images held out,
    stratified by class, chosen by ``seed``."""
    check_positive("--val-split", count)
    if count >= len(train_set):
        raise UserError(f"--val-split {count} leaves no training images (the training set has {len(train_set)})")
    kept, held = stratified_split(train_set.targets, count, seed)
    return train_set.subset(kept), train_set.subset(held)


def image_statistics(data):
    """(size, per-channel mean, per-channel std) of a dataset's uint8 (N, H, W, C) images in [0, 1]."""
    pixels = data.data.reshape(-1, data.data.shape[-1])
    mean = pixels.mean(axis=0, dtype=numpy.float64) / 255
    std = numpy.sqrt((pixels.astype(numpy.float32) / 255 - mean).var(axis=0, dtype=numpy.float64))
    return data.data.shape[1], tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


# ---------------------------------------------------------------------- a run's config and what it builds

def make_config(model, dataset, classes, width=None, train_set=None):
    """The config of a run of ``model`` on ``dataset`` (``train_set`` for an image folder,
    whose size and statistics are measured); what a checkpoint keeps to rebuild it."""
    recipe = dataset_recipe(dataset)
    size, mean, std = recipe.image_size, recipe.mean, recipe.std
    if size is None:                 # an image folder: measured on its training images
        size, mean, std = image_statistics(train_set)
    model_args = {"num_classes": len(classes), "in_channels": recipe.channels}
    if width is not None:
        model_args["width"] = width
    return {"model": model, "model_args": model_args,
            "dataset": dataset, "classes": list(classes), "num_classes": len(classes),
            "image_size": size, "mean": list(mean), "std": list(std), "augment": recipe.augment}


def build_model(config):
    """The (freshly initialised) model that ``config`` names."""
    return models.get_model(config["model"], **config["model_args"])


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


def build_optimizer(settings, parameters, steps_per_epoch):
    """(optimizer, scheduler, when the scheduler steps: ``"batch"`` or ``"epoch"``) from a
    config's ``train`` settings: SGD with ``lr``, ``momentum``, ``weight_decay``,
    ``nesterov``, and the ``schedule`` -- ``"onecycle"`` (OneCycleLR to ``lr``) or ``"step"``,
    the paper's: the lr divided by 10 at 50% and 75% of ``epochs``."""
    optimizer = optim.SGD(parameters, lr=settings["lr"], momentum=settings["momentum"],
                          weight_decay=settings["weight_decay"], nesterov=settings["nesterov"])
    epochs = settings["epochs"]
    if settings["schedule"] == "onecycle":
        return optimizer, optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings["lr"], epochs=epochs,
                                                        steps_per_epoch=steps_per_epoch), "batch"
    milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
    return optimizer, optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1), "epoch"


def check_fits(config, dataset, data, checkpoint, data_dir=None):
    """A ``UserError`` unless ``data`` (dataset ``dataset``) has the classes and channels the
    run of ``config`` (from ``checkpoint``) was trained on; an image folder, the same classes."""
    recipe = dataset_recipe(dataset)
    if recipe.cls is ImageFolder and list(data.classes) != list(config["classes"]):
        raise UserError(f"the class folders of {data_dir} ({', '.join(data.classes)}) are not the classes "
                        f"{checkpoint} was trained on ({', '.join(config['classes'])})")
    if len(data.classes) != config["num_classes"] or recipe.channels != config["model_args"]["in_channels"]:
        raise UserError(f"{checkpoint} was trained on {config['dataset']} ({config['num_classes']} classes, "
                        f"{config['model_args']['in_channels']} channels); it cannot be evaluated on {dataset}")


def read_image(path, channels, size):
    """An image file as a float32 (channels, size, size) array in [0, 1]."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"image {path} does not exist")
    if path.suffix == ".npy":
        array = numpy.load(path, allow_pickle=False).astype(numpy.float32)
        array = array / 255.0 if array.max() > 1 else array
        return array.reshape(channels, size, size)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UserError("reading PNG/JPEG images needs Pillow: pip install pillow (or pass a .npy array)") from None
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB").resize((size, size))
            array = numpy.asarray(im, dtype=numpy.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot decode image {path}: {e}") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_trained_model(path):
    """(the saved state with its run's config, the model in eval mode) from a run
    checkpoint, a weights file, or the name of bundled weights such as ``resnet20_cifar10``."""
    from . import train
    from ..models import pretrained
    arch, _, name = str(path).partition("_")
    if not Path(path).exists() and name and arch in pretrained.WEIGHTS:
        try:
            path = pretrained.weights_file(arch, name)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(str(e)) from None
    if not Path(path).exists():
        known = [f"{a}_{n}" for a, names in pretrained.available_weights().items() for n in names]
        raise UserError(f"checkpoint {path} does not exist (bundled weights: {', '.join(known)})")
    state = load(path)
    if not isinstance(state, dict) or state.get("format") not in (train.FORMAT, pretrained.FORMAT):
        raise UserError(f"{path} is neither a training checkpoint nor a weights file of tinyres")
    model = build_model(state["config"])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{path} does not fit {state['config']['model']}: {e}") from None
    return state, model.eval()


# ---------------------------------------------------------------------- command-line flags

def add_training_flags(p, epochs, batch_size, lr):
    """The flags of a training run, as ``tinyres train`` and ``tinyres demo`` take them, on the
    ``argparse`` parser ``p`` with this script's defaults for ``--epochs``, ``--batch-size`` and
    ``--lr``: also ``--device``, ``--seed``, ``--out``, ``--resume``, ``--no-progress``,
    ``--sync-bn`` and ``--subset`` (the examples take the same flags this way)."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (checkpoint, metrics.jsonl, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--sync-bn", action="store_true",
                   help="under mpiexec: BatchNorm statistics over the global batch (SyncBatchNorm)")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="use only N images of each split, spread evenly over it (quick tries)")
