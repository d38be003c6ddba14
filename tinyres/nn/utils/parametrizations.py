"""``tinyres.nn.utils.parametrizations``: weight normalisation and spectral normalisation as
parametrizations (``parametrize.register_parametrization``), as ``torch.nn.utils.parametrizations``.
A checkpoint of the old hook-based ``weight_norm`` (keys ``weight_g``, ``weight_v``) loads
into the new one, by a load_state_dict pre-hook, as torch's.

``weight_norm(module, name="weight", dim=0)``::

    weight = g * v / ||v||     original0 = g = ||weight|| (over every dim but ``dim``), original1 = v = weight

``spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)``::

    W_mat = weight as a matrix (``dim`` first, the rest flattened)
    in training mode, n times, without gradient:  u <- normalize(W_mat v),  v <- normalize(W_mat^T u)
    weight = original / sigma,   sigma = u . (W_mat v)

u and v are the buffers ``_u``, ``_v`` of the parametrization (state_dict keys
``parametrizations.weight.0._u`` and ``._v``), drawn from N(0, 1) from the default generator
and moved by 15 power steps when it is made: other draws than torch's; load torch's to
follow it.  Backward treats u and v as constants (the gradient of ``original / sigma`` at
fixed u and v, as torch's).  A 1-D weight is just ``normalize(weight)``.  Assigning
``module.weight = W`` sets the originals from ``W``.

``orthogonal`` is not built: its maps need ``matrix_exp``, ``linalg.solve`` and
``householder_product``, which tinyres lacks.
"""
from ...core.tensor import Tensor
from .. import functional as F
from ..module import Module
from . import parametrize
from .spectral_norm import _default_dim, power_step
from .weight_norm import _weight_norm, norm_except_dim

__all__ = ["spectral_norm", "weight_norm"]


class _WeightNorm(Module):
    """weight = g * v / ||v|| from (g, v) = (original0, original1)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """``module.<name>`` as ``g * v / ||v||``, from the parameters
    ``parametrizations.<name>.original0`` (g) and ``.original1`` (v), ||v|| over every dim
    but ``dim`` (``None``: over all of v).  Returns ``module``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                 error_msgs):
        """A checkpoint of the old hook-based ``weight_norm`` (``<name>_g``, ``<name>_v``)
        loads into this one, as torch's."""
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)
    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value of the weight as a matrix, estimated
    by power iteration on the buffers ``_u`` and ``_v``."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            self.register_buffer("_u", F.normalize(weight_mat.new_empty(h).normal_(0, 1), dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(weight_mat.new_empty(w).normal_(0, 1), dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat, n_power_iterations):
        for _ in range(n_power_iterations):
            power_step(self._u, weight_mat, self._v, self.eps)
            power_step(self._v, weight_mat.t(), self._u, self.eps)

    def forward(self, weight):
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()     # the buffers move on; backward keeps these
        sigma = u.dot(weight_mat @ v)
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """``module.<name>`` as ``original / sigma`` (see the module's docstring), ``original``
    the parameter ``parametrizations.<name>.original``.  ``dim=None``: 1 for a transposed
    convolution, else 0.  Returns ``module``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    dim = _default_dim(module) if dim is None else dim
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
