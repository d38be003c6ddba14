"""``tinyres.nn.utils``, as ``torch.nn.utils``: gradient clipping (``clip_grad.py``), parameters
as one flat vector (``convert_parameters.py``), tensors of a module computed from others
(``parametrize.py``) and the parametrizations built on it (``parametrizations.py``:
``weight_norm``, ``spectral_norm``), and torch's older hook-based ``weight_norm`` and
``spectral_norm`` (``weight_norm.py``, ``spectral_norm.py``)."""
from . import parametrizations, parametrize  # noqa: F401
from .clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector", "vector_to_parameters",
           "parametrizations", "parametrize", "weight_norm", "remove_weight_norm", "spectral_norm",
           "remove_spectral_norm"]
