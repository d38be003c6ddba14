"""The old name of ``tinyres.torch_weights`` (moving weights between PyTorch and tinyres),
kept for one release: importing it warns."""
import warnings

from .torch_weights import export_torch_state_dict, load_torch_state_dict, numpy_state_dict, save_torch_state_dict, to_torch_state_dict

warnings.warn("tinyres.utils is now tinyres.torch_weights; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
