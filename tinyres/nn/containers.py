"""Containers: ``Sequential`` (a chain), ``ModuleList`` (a list) and ``ModuleDict`` (a dict) of
modules; ``ParameterList`` and ``ParameterDict`` of parameters.

Their children are registered under their index (``"0"``, ``"1"``, ...) or key, so a
``Sequential`` of a conv and a BatchNorm has state_dict keys ``0.weight``, ``1.running_mean``
exactly as in PyTorch, and a ``ParameterList`` held as ``self.scales`` has ``scales.0``, ....
"""
import collections
import collections.abc
import operator

from .. import cuda
from ..core.tensor import Tensor
from .module import Module, Parameter, _addindent

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "DataParallel"]


def _index(i, n, kind):
    """A list index in ``range(n)`` from a possibly negative one."""
    i = operator.index(i)
    if not -n <= i < n:
        raise IndexError(f"{kind}: index {i} is out of range for length {n}")
    return i % n


class _IndexedModules(Module):
    """What ``Sequential`` and ``ModuleList`` share: children named "0", "1", ... kept in order."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._slice(idx)
        return list(self._modules.values())[_index(idx, len(self), self._get_name())]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(idx, len(self), self._get_name())]
        self.add_module(key, module)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(idx, len(self), self._get_name())]
        self._renumber(modules)

    def _renumber(self, modules):
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]


class Sequential(_IndexedModules):
    """Modules applied one after another: ``Sequential(conv, bn, relu)(x) == relu(bn(conv(x)))``.

    Built from positional modules (named "0", "1", ...) or one OrderedDict of named ones.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def _slice(self, idx):
        return Sequential(collections.OrderedDict(list(self._modules.items())[idx]))

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules whose parameters belong to the owner (a plain list hides them)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _slice(self, idx):
        return ModuleList(list(self._modules.values())[idx])

    def __repr__(self):
        """As PyTorch: runs of equal children are shown once, as ``(2-4): 3 x Block(...)``."""
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []   # [first_index, last_index, repr]
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = [_addindent(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}", 2)
                 for a, b, r in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules, kept in insertion order, whose parameters belong to the owner."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        """Add the modules of a mapping or of an iterable of ``(key, module)`` pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module


# ---------------------------------------------------------------------- containers of parameters

def _as_parameter(value):
    """A Tensor that is not a Parameter becomes one (sharing its array), as torch's containers do."""
    return Parameter(value.array) if isinstance(value, Tensor) and not isinstance(value, Parameter) else value


def _describe_parameters(items):
    """torch's lines for the values of a ParameterList or ParameterDict."""
    lines = []
    for key, p in items:
        if isinstance(p, Tensor):
            kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
            device = "" if p.device.type == "cpu" else f" ({p.device})"
            size = "x".join(str(n) for n in p.shape)
            lines.append(f"  ({key}): {kind} containing: [tinyres.{p.dtype} of size {size}{device}]")
        else:
            lines.append(f"  ({key}): Object of type: {type(p).__name__}")
    return "\n".join(lines)


class ParameterList(Module):
    """A list of parameters registered on the owner under their index (``"0"``, ``"1"``, ...):
    a plain list of Parameters would hide them from ``parameters()`` and ``state_dict()``.
    A Tensor put in becomes a Parameter; ``list[i] = p`` replaces one."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _index(self, idx):
        return _index(idx, len(self), "ParameterList")

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList([self[i] for i in range(len(self))[idx]])
        return getattr(self, str(self._index(idx)))

    def __setitem__(self, idx, param):
        setattr(self, str(self._index(idx)), _as_parameter(param))

    def __len__(self):
        return self._size

    def __iter__(self):
        return iter(self[i] for i in range(len(self)))

    def __iadd__(self, parameters):
        return self.extend(parameters)

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, value):
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values):
        if isinstance(values, (str, Tensor)) or not hasattr(values, "__iter__"):
            raise TypeError(f"ParameterList.extend should be called with an iterable, but got {type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return _describe_parameters((i, p) for i, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """A dict of parameters registered on the owner under their keys, kept in insertion order.
    As torch's, ``ParameterDict(d)`` and ``update(d)`` add a plain dict's items in sorted key
    order (an OrderedDict or ParameterDict keeps its own); a Tensor put in becomes a Parameter."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings (parameter names), got {type(key).__name__}")
        self._keys[key] = None
        setattr(self, key, _as_parameter(value))

    def __delitem__(self, key):
        del self._keys[key]
        delattr(self, key)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(list(self._keys))

    def __contains__(self, key):
        return key in self._keys

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key):
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self):
        for key in list(self._keys):
            del self[key]

    def copy(self):
        return ParameterDict(collections.OrderedDict(self.items()))

    def update(self, parameters):
        """Add the items of a mapping (a plain one sorted by key, as torch) or of an iterable of
        ``(key, value)`` pairs."""
        if isinstance(parameters, (collections.OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, collections.abc.Mapping):
            pairs = sorted(parameters.items())
        elif hasattr(parameters, "__iter__") and not isinstance(parameters, (str, Tensor)):
            pairs = []
            for j, pair in enumerate(parameters):
                if not hasattr(pair, "__iter__") or isinstance(pair, (str, Tensor)) or len(pair) != 2:
                    raise ValueError(f"ParameterDict update sequence element #{j} should be a (key, parameter) "
                                     f"pair, got {pair!r}")
                pairs.append(tuple(pair))
        else:
            raise TypeError("ParameterDict.update should be called with an iterable of key/value pairs, but got "
                            f"{type(parameters).__name__}")
        for key, value in pairs:
            self[key] = value

    def __or__(self, other):
        merged = self.copy()
        merged.update(other)
        return merged

    def __ior__(self, other):
        self.update(other)
        return self

    def extra_repr(self):
        return _describe_parameters(self.items())

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called.")


class DataParallel(Module):
    """``torch.nn.DataParallel`` on one device: ``module`` wrapped as ``self.module`` (so the
    state_dict keys gain torch's ``module.`` prefix), its forward called as it is.

    tinyres runs a model on one device; splitting each batch over several GPUs in threads
    is not done.  Asking for more than one device raises, naming what does it instead:
    ``tinyres.parallel.DistributedDataParallel`` (one process per device, over MPI).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        devices = list(device_ids) if device_ids is not None else list(range(cuda.device_count()))
        if len(devices) > 1:
            raise NotImplementedError(
                f"nn.DataParallel: tinyres runs a model on one device, got device_ids={devices}; for several "
                "GPUs run one process per GPU with tinyres.parallel.DistributedDataParallel (mpiexec -n N)")
        self.module, self.device_ids, self.output_device, self.dim = module, devices, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
