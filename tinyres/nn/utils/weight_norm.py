"""``tinyres.nn.utils.weight_norm``: torch's old, hook-based weight normalisation (Salimans and
Kingma, 2016), deprecated in torch for ``parametrizations.weight_norm``:

    w = g * v / ||v||,   ||v|| over every dim of v but ``dim`` (kept: g has v's size there, 1 elsewhere)

``weight_norm(module)`` replaces the parameter ``weight`` by two, ``weight_g`` (g) and
``weight_v`` (v, the old weight's values), and a forward pre-hook that sets the plain
attribute ``module.weight`` from them before each forward; ``remove_weight_norm`` makes
``weight`` a parameter again.  ``dim=None`` normalises v as a whole (a 0-d g).  The weight is
made of tinyres ops, so backward reaches g and v.
"""
import warnings

from ..module import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


def norm_except_dim(v, pow=2, dim=0):
    """``torch.norm_except_dim``: the ``pow``-norm of ``v`` over every dim but ``dim``, with
    v's shape where ``dim`` is and 1 elsewhere; ``dim=-1``: the norm of all of v (0-d)."""
    if dim == -1:
        return v.norm(pow)
    n = v.ndim
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return v.norm(pow, dim=tuple(d for d in range(n) if d != dim % n), keepdim=True)


def _weight_norm(v, g, dim=0):
    """``torch._weight_norm``: ``v * (g / norm_except_dim(v, 2, dim))``."""
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm:
    """The forward pre-hook of ``weight_norm``: ``module.<name> = _weight_norm(<name>_v, <name>_g, dim)``."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module, name, dim):
        warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                      "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).data))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """torch's deprecated ``nn.utils.weight_norm`` (a ``FutureWarning``, as torch's): the
    parameter ``name`` becomes ``name_g`` and ``name_v``, recombined before each forward.
    Returns ``module``."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo ``weight_norm``: ``name`` is a parameter again, holding g * v / ||v||."""
    return remove_hook(module, WeightNorm, name, "weight_norm")


def remove_hook(module, kind, name, label):
    """Take ``module``'s forward pre-hook of class ``kind`` on ``name`` off, and undo it."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"{label} of '{name}' not found in {module}")
