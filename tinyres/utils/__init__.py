"""``tinyres.utils``, as ``torch.utils``: ``tinyres.utils.data`` holds the torch-style
Dataset, samplers and DataLoader.

This name was once that of ``tinyres.torch_weights``; its functions still answer here, for
one release, with a deprecation warning.
"""
import warnings

from . import data  # noqa: F401

_MOVED = {"export_torch_state_dict", "load_torch_state_dict", "numpy_state_dict", "save_torch_state_dict",
          "to_torch_state_dict"}


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(f"tinyres.utils.{name} is now tinyres.torch_weights.{name}; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        from .. import torch_weights
        return getattr(torch_weights, name)
    raise AttributeError(f"module 'tinyres.utils' has no attribute {name!r}")
