"""Moving weights between PyTorch and tinyres (``tinyres.torch_weights``; ``tinyres.utils``
is its old name).

Both use the same state_dict keys (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...)
and the same layouts (NCHW, conv weights ``(out, in, kh, kw)``, linear ``(out, in)``),
so a state_dict moves across as a dict of arrays:

* ``export_torch_state_dict(torch_model, "w.npz")`` (where torch is installed) writes a
  tinyres checkpoint that loads anywhere, without torch;
* ``load_torch_state_dict(model, "w.pth" | "w.npz" | dict)`` loads PyTorch weights into a
  tinyres model; ``numpy_state_dict`` is the conversion it does first;
* ``to_torch_state_dict(model)`` / ``save_torch_state_dict(model, "w.pth")`` go back.

torch is imported only by the functions that need it, and ``.pth`` files are read with
``torch.load(..., weights_only=True)``: plain state_dicts only, never arbitrary pickles.
Without torch installed, ``tinyres.pth`` reads and writes them (as restrictive: tensors,
OrderedDict and plain values only); only ``to_torch_state_dict`` needs torch itself.
"""
import collections
import os
import pickle
import sys
from collections.abc import Mapping

import numpy

from . import pth, serialization

_WRAPPERS = ("state_dict", "model")      # {'state_dict': sd, 'epoch': ...}, torchvision's {'model': sd, ...}
_PREFIX = "module."                      # what DataParallel / DistributedDataParallel add
_HOW_TO = "save one with torch.save(model.state_dict(), path)"


def _state_of(module_or_state_dict):
    """``module.state_dict()`` for a module (torch's or tinyres's), the dict itself otherwise."""
    state_dict = getattr(module_or_state_dict, "state_dict", None)
    return state_dict() if callable(state_dict) else module_or_state_dict


def _import_torch(task):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{task} needs PyTorch, which is not installed: pip install torch. To use PyTorch "
                          "weights without it, convert them where torch is installed with "
                          "tinyres.torch_weights.export_torch_state_dict(torch.load(path), 'weights.npz') and "
                          "load the .npz") from None
    return torch


def _torch_to_numpy(tensor):
    """A NumPy copy of a torch tensor (bfloat16, which NumPy lacks, becomes float32)."""
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":
        tensor = tensor.float()
    return tensor.numpy()


def _is_torch_tensor(value):
    torch = sys.modules.get("torch")        # a torch tensor exists only once torch is imported
    return torch is not None and isinstance(value, torch.Tensor)


def export_torch_state_dict(module_or_state_dict, path):
    """Write a PyTorch module's (or state_dict's) tensors to ``path`` as a tinyres checkpoint.

    Each tensor becomes ``tensor.detach().cpu().numpy()`` under PyTorch's key name, so
    ``tinyres.load(path)`` gives the NumPy state_dict and ``load_torch_state_dict`` loads
    it into a tinyres model.  Example::

        weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        export_torch_state_dict(torchvision.models.resnet18(weights=weights), "resnet18.npz")
    """
    state = _state_of(module_or_state_dict)
    arrays = collections.OrderedDict(
        (key, _torch_to_numpy(value) if _is_torch_tensor(value) else value) for key, value in state.items())
    serialization.save(arrays, path)


def numpy_state_dict(path_or_dict):
    """The state_dict in a ``.pth``/``.pt`` file, a tinyres ``.npz`` or a dict, as NumPy arrays.

    A path ending in ``.npz`` is read with ``tinyres.load``; any other path with
    ``torch.load(path, map_location="cpu", weights_only=True)``.  Then a
    ``{'state_dict': ...}`` or ``{'model': ...}`` wrapper is unwrapped, a ``module.`` prefix
    (DataParallel) is stripped from the keys, and every value (a torch tensor, a tinyres
    Tensor, a NumPy/CuPy array) becomes a host NumPy array.  Key order is kept.
    """
    if isinstance(path_or_dict, Mapping):
        state, source = path_or_dict, "the state_dict"
    else:
        source = os.fspath(path_or_dict)
        state = serialization.load(source) if source.endswith(".npz") else _torch_load(source)
    if not isinstance(state, Mapping):
        raise ValueError(f"{source} holds a {type(state).__name__}, not a state_dict; {_HOW_TO}")
    for wrapper in _WRAPPERS:
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    return collections.OrderedDict(
        (_strip_prefix(key), _to_numpy(value, key, source)) for key, value in state.items())


def _torch_load(path):
    try:
        import torch
    except ImportError:        # without torch, tinyres.pth reads the file (tensors and plain values only)
        return serialization.load(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} is not a plain state_dict: torch.load(weights_only=True) refused it (is it "
                         f"a whole pickled model?); {_HOW_TO}. torch said: {str(e).splitlines()[0]}") from e


def _strip_prefix(key):
    if not isinstance(key, str):
        raise ValueError(f"a state_dict has string keys, this one has {key!r}; {_HOW_TO}")
    return key[len(_PREFIX):] if key.startswith(_PREFIX) else key


def _to_numpy(value, key, source):
    if _is_torch_tensor(value):
        return _torch_to_numpy(value)
    array = serialization.as_host_array(value)
    if array is None:
        raise ValueError(f"{source}: the value of {key!r} is a {type(value).__name__}, not a tensor, so this "
                         f"is not a state_dict (parameter names -> tensors); {_HOW_TO}")
    return array


def load_torch_state_dict(model, path_or_dict, strict=True, key_map=None):
    """Load PyTorch weights into a tinyres ``model``: ``model.load_state_dict(numpy_state_dict(
    path_or_dict), strict=strict)``.  Returns its ``(missing_keys, unexpected_keys)``.

    ``key_map`` renames the file's keys first, for weights of a PyTorch model that names its
    layers differently: a dict of prefix renames (``{"linear.": "fc."}``: a key starting
    with ``linear.`` gets ``fc.`` instead), or a function from key to key.  When strict
    loading fails on names that differ in one part only, the error suggests the key_map.
    """
    state = numpy_state_dict(path_or_dict)
    if key_map is not None:
        rename = key_map if callable(key_map) else lambda key: _rename_prefix(key, key_map)
        state = collections.OrderedDict((rename(key), value) for key, value in state.items())
    try:
        return model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        hint = _suggest_key_map(set(model.state_dict()) - set(state), set(state) - set(model.state_dict()))
        raise RuntimeError(f"{e}{hint}") from None


def _rename_prefix(key, prefixes):
    for old, new in prefixes.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _suggest_key_map(missing, unexpected):
    """A key_map for names that differ in one dotted part only (``linear.weight`` in the
    file, ``fc.weight`` in the model), or ''."""
    votes = collections.Counter()
    for u in unexpected:
        for m in missing:
            a, b = u.split("."), m.split(".")
            diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
            if len(a) == len(b) and len(diff) == 1:
                votes[diff[0] == 0, a[diff[0]], b[diff[0]]] += 1
    if not votes:
        return ""
    (first, old, new), count = votes.most_common(1)[0]
    fix = f'key_map={{"{old}.": "{new}."}}' if first else f'key_map=lambda k: k.replace(".{old}.", ".{new}.")'
    return (f"\n\tThe file calls '{old}' what this model calls '{new}' ({count} key(s)): "
            f"pass {fix} to load_torch_state_dict.")


def to_torch_state_dict(module_or_state_dict):
    """An OrderedDict of torch CPU tensors (copies) with the same keys as the tinyres state_dict."""
    torch = _import_torch("to_torch_state_dict")
    state = _state_of(module_or_state_dict)
    return collections.OrderedDict((key, torch.from_numpy(numpy.array(_to_numpy(value, key, "the state_dict"))))
                                   for key, value in state.items())


def save_torch_state_dict(module_or_state_dict, path):
    """Write a tinyres model's weights as a ``.pth`` that ``torch.load(path, weights_only=True)``
    reads and a PyTorch model of the same architecture loads with ``load_state_dict``.
    Written atomically, like ``tinyres.save``; without torch installed, ``tinyres.pth`` writes
    the same layout."""
    try:
        torch = _import_torch("save_torch_state_dict")
    except ImportError:
        state = _state_of(module_or_state_dict)
        arrays = collections.OrderedDict((key, _to_numpy(value, key, "the state_dict")) for key, value in state.items())
        serialization.atomic_write(path, lambda file: pth.write(arrays, file))
        return
    state = to_torch_state_dict(module_or_state_dict)
    serialization.atomic_write(path, lambda file: torch.save(state, file))
