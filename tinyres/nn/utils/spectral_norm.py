"""``tinyres.nn.utils.spectral_norm``: torch's old, hook-based spectral normalisation (Miyato
et al., 2018); ``parametrizations.spectral_norm`` is the newer form of the same:

    W_mat = the weight as a matrix: ``dim`` first (0; 1 for a transposed convolution), the rest flattened
    power iteration, n times, without gradient:  v <- normalize(W_mat^T u),  u <- normalize(W_mat v)
    sigma = u . (W_mat v),   weight = weight_orig / sigma

``normalize(x) = x / max(||x||, eps)``.  u and v are buffers (``weight_u``, ``weight_v``),
drawn from N(0, 1) and normalised when the hook is made, and moved only in training mode;
backward treats them as constants, so the gradient of ``weight_orig`` is that of
``weight_orig / sigma(weight_orig)`` at fixed u and v, as torch's.  ``module.weight`` is a
plain attribute, set by a forward pre-hook before each forward.  torch's state_dict hooks,
which only convert checkpoints from before torch 1.1, are not built: the keys
``weight_orig``, ``weight_u``, ``weight_v`` load both ways.
"""
from ...core.grad_mode import no_grad
from .. import functional as F
from .. import layers
from ..module import Parameter
from .weight_norm import remove_hook

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


def _default_dim(module):
    """The dim of the output channels: 1 for a transposed convolution (weight (in, out, ...)), else 0."""
    transposed = tuple(getattr(layers, f"ConvTranspose{n}d") for n in (1, 2, 3)
                       if hasattr(layers, f"ConvTranspose{n}d"))
    return 1 if isinstance(module, transposed) else 0


def reshape_weight_to_matrix(weight, dim):
    """``weight`` as a matrix: its ``dim`` first, the other dims flattened into the columns."""
    if dim != 0:
        weight = weight.permute(dim, *[d for d in range(weight.ndim) if d != dim])
    return weight.reshape(weight.shape[0], -1)


def power_step(buffer, matrix, vector, eps):
    """``buffer <- normalize(matrix @ vector)`` in place (the buffer stays the same tensor), without gradient."""
    with no_grad():
        buffer.copy_(F.normalize(matrix @ vector, dim=0, eps=eps))
    return buffer


class SpectralNorm:
    """The forward pre-hook of ``spectral_norm``: ``module.<name> = <name>_orig / sigma``."""
    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        return reshape_weight_to_matrix(weight, self.dim)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            for _ in range(self.n_power_iterations):
                power_step(v, weight_mat.t(), u, self.eps)
                power_step(u, weight_mat, v, self.eps)
            u, v = u.clone(), v.clone()     # the buffers move on; backward keeps these
        sigma = u.dot(weight_mat @ v)
        return weight / sigma

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.data)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """torch's ``nn.utils.spectral_norm``: the parameter ``name`` becomes ``name_orig`` and
    the buffers ``name_u``, ``name_v``; before each forward ``module.<name>`` is set to
    ``name_orig / sigma``.  ``dim=None``: 1 for a transposed convolution, else 0.  Returns ``module``."""
    SpectralNorm.apply(module, name, n_power_iterations, _default_dim(module) if dim is None else dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``name`` is a parameter again, holding ``name_orig / sigma``
    (u and v as they are)."""
    return remove_hook(module, SpectralNorm, name, "spectral_norm")
