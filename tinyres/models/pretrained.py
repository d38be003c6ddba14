"""Pretrained weights that ship inside tinyres, trained by tinyres itself, usable offline.

    model = tinyres.models.resnet20(weights="cifar10")      # torchvision's weights= style
    model.weights_meta["classes"], model.weights_meta["mean"]

A weights file (``tinyres/models/bundled/<arch>_<name>.npz``, tinyres's checkpoint format:
no pickle, checksummed) holds the model's ``state_dict``, the run's ``config`` -- model
arguments, class names, image size and the normalisation the images need -- and its
provenance (data, command, validation accuracy).  ``tinyres eval`` and ``tinyres predict``
take ``<arch>_<name>`` (e.g. ``resnet20_cifar10``) wherever they take a checkpoint, and
apply the preprocessing themselves.  Each file's SHA-256 is recorded here and checked on
loading.
"""
import hashlib
from pathlib import Path

from ..serialization import NPZ_SUFFIX, CheckpointError, load, load_run, save

BUNDLED = Path(__file__).parent / "bundled"
FORMAT = "tinyres-weights"

# arch -> weights name -> (file in BUNDLED, its SHA-256)
WEIGHTS = {
    "resnet20": {"cifar10": ("resnet20_cifar10.npz",
                             "175b58efbea566bb982894f0d75ee78106d356aabec7d900c5d85463fdcb2179")},
}


def available_weights():
    """``{arch: [names]}`` of the bundled weights."""
    return {arch: sorted(names) for arch, names in WEIGHTS.items()}


def weights_file(arch, name):
    """The path of bundled weights ``name`` for ``arch``, its checksum verified."""
    known = WEIGHTS.get(arch, {})
    if name not in known:
        listing = ", ".join(f"{a}(weights={n!r})" for a, names in WEIGHTS.items() for n in names) or "none"
        hint = ("" if known else f"; tinyres downloads nothing: to use torchvision's {arch} weights, load their "
                f".pth file with model.load_state_dict(tinyres.load(path))")
        raise ValueError(f"{arch}: no bundled weights named {name!r}; the bundled weights are: {listing}{hint}")
    filename, sha256 = known[name]
    path = BUNDLED / filename
    if not path.exists():
        raise FileNotFoundError(f"{arch}(weights={name!r}): {path} is missing from this installation")
    if sha256 is not None and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ValueError(f"{path} is damaged: its SHA-256 is not the one recorded in tinyres.models.pretrained")
    return path


def read_weights(path):
    """``{"config", "model", "provenance"}`` from a weights file, checked to be one."""
    try:
        state = load(path)
    except CheckpointError as e:
        raise ValueError(f"{path} is not a readable tinyres weights file: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tinyres weights file (no '{FORMAT}' format marker)")
    return state


def load_model(arch, name, build):
    """A model with bundled weights ``name``: ``build(**model_args)`` with the arguments
    the weights were trained with (num_classes, ...), the weights loaded, and
    ``model.weights_meta`` attached (class names, image size, mean, std, provenance).
    The file is read once."""
    state = read_weights(weights_file(arch, name))
    config = state["config"]
    model = build(**config["model_args"])
    model.load_state_dict(state["model"])
    model.weights_meta = {"name": name, "classes": list(config["classes"]), "image_size": config["image_size"],
                          "mean": list(config["mean"]), "std": list(config["std"]), **state["provenance"]}
    return model


def export_weights(run_checkpoint, path, provenance):
    """Write the weights of a ``Trainer`` run (``checkpoint.npz``) as a weights file: the
    model and the run's config, without the optimizer's state, plus ``provenance`` (a dict
    of plain values: data, command, accuracy).  ``path`` must end in ``.npz``: bundled
    weights are in tinyres's checksummed format (``tinyres.save`` would give another name
    torch's zip format)."""
    if not str(path).endswith(NPZ_SUFFIX):
        raise ValueError(f"export_weights: expected a path ending in {NPZ_SUFFIX} (tinyres's checksummed "
                         f"format), got {str(path)!r}")
    state = load_run(run_checkpoint)
    save({"format": FORMAT, "config": state["config"], "model": state["model"], "provenance": dict(provenance)},
         path)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
