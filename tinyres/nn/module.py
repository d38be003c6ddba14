"""``Module`` (and ``Parameter``, which lives in ``core/tensor.py`` so that loading a file can
make one): the containers of state that layers and models are made of.

A ``Module`` keeps three ordered tables, filled by plain attribute assignment:

* ``_parameters`` -- ``Parameter`` objects (leaf tensors that require grad), what an
  optimizer updates;
* ``_buffers`` -- tensors that are state but not trained (BatchNorm's ``running_mean``),
  registered with ``register_buffer``;
* ``_modules`` -- sub-modules.

``self.conv1 = Conv2d(...)`` lands in ``_modules["conv1"]``; ``self.weight = Parameter(...)``
in ``_parameters["weight"]``.  Walking these tables in registration order gives
``parameters()``, ``state_dict()`` keys such as ``layer1.0.bn1.running_mean`` (PyTorch's,
so PyTorch checkpoints load by name), ``train()``/``eval()`` and ``to()``.
"""
import collections
import collections.abc
import numbers
import threading
import warnings

import numpy

from ..core import backend
from ..core.grad_mode import no_grad
from ..core.tensor import Parameter, Tensor
from . import hooks as _hooks

__all__ = ["Module", "Parameter"]


class _IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(strict=False)`` returns."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _addindent(text, spaces):
    """Indent every line of ``text`` but the first (for nested reprs)."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * spaces + line for line in rest])


def _check_name(owner, kind, name, table):
    """The checks torch makes on the name of a new parameter/buffer/module (kept in ``table``)."""
    if "_parameters" not in owner.__dict__:
        raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name must not contain ".", got "{name}"')
    if name == "":
        raise KeyError(f'{kind} name must not be the empty string')
    if hasattr(owner, name) and name not in owner.__dict__[table]:
        raise KeyError(f"attribute '{name}' already exists")


def _quoted(keys):
    return ", ".join(f'"{k}"' for k in keys)


def _source_array(value, key):
    """The array inside a state_dict value: a Tensor, a NumPy/CuPy array or a number."""
    if isinstance(value, Tensor):
        return value.array
    if backend.is_device_array(value):
        return value
    if isinstance(value, (numbers.Number, numpy.ndarray, numpy.generic)):
        return numpy.asarray(value)
    raise TypeError(f"load_state_dict: the value for {key!r} is a {type(value).__name__}; "
                    "expected a Tensor, a NumPy/CuPy array or a number")


_loading = threading.local()     # .copies: what the load_state_dict in progress on this thread will copy


def _file_copy(entry):
    """Keep ``(module, name, target, value, source)`` for the load in progress, or copy now
    when ``_load_from_state_dict`` is called on its own."""
    copies = getattr(_loading, "copies", None)
    if copies is not None:
        copies.append(entry)
    else:
        _copy_into(entry[2], entry[4])


def _copy_into(target, source):
    source = backend.to_device(source, target.device)
    with backend.on_device(target.device):         # the cast and the copy run on the target's GPU
        target.array[...] = source.astype(target.dtype, copy=False)
        target._version_counter[0] += 1


def _assign(module, name, target, value):
    """``load_state_dict(assign=True)``: ``module.<name>`` becomes ``value`` itself (a Tensor,
    else a new one), in ``target``'s place; a parameter stays a Parameter with its
    ``requires_grad``, as torch's."""
    value = value if isinstance(value, Tensor) else Tensor(value)
    if name in module._parameters:
        if isinstance(value, Parameter):
            value.requires_grad_(target.requires_grad)
        else:
            value = Parameter(value, requires_grad=target.requires_grad)
        module._parameters[name] = value
    else:
        module._buffers[name] = value


class Module:
    """Base class of every layer and model (``torch.nn.Module``).

    Subclasses call ``super().__init__()`` first, assign parameters, buffers and
    sub-modules as attributes, and define ``forward``; calling the module calls ``forward``.
    """

    # Buffers a checkpoint may lack (older PyTorch files): left as they are when loading.
    _optional_buffers = ()

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        for name, table in _hooks.hook_tables().items():    # hooks: never state, never in a state_dict
            object.__setattr__(self, name, table)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if self._has_hooks():
            return self._call_with_hooks(args, kwargs)
        return self._forward_on_device(args, kwargs)

    def _has_hooks(self):
        return bool(self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks)

    def _forward_on_device(self, args, kwargs):
        device = next((a.device for a in args if isinstance(a, Tensor)), None)
        if device is None or device.type == "cpu":
            return self.forward(*args, **kwargs)
        with backend.on_device(device):     # a module's own array work (BatchNorm's counter) on the input's GPU
            return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        """torch's order: forward pre-hooks (may replace the inputs), the inputs wrapped for
        full backward hooks, forward, forward hooks (may replace the output), the output
        wrapped for backward (pre-)hooks.  The hooks are read once, at the start of the call.
        When forward (or a hook) raises, the forward hooks registered with ``always_call``
        that have not run yet run with the output made so far (None if forward raised), and
        the error goes on."""
        forward_hooks = list(self._forward_hooks.items())
        called, result = set(), None
        try:
            for key, hook in list(self._forward_pre_hooks.items()):
                if key in self._forward_pre_hooks_with_kwargs:
                    replaced = hook(self, args, kwargs)
                    if replaced is not None:
                        if not (isinstance(replaced, tuple) and len(replaced) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, "
                                               f"new_kwargs), but got {replaced}.")
                        args, kwargs = replaced
                else:
                    replaced = hook(self, args)
                    if replaced is not None:
                        args = replaced if isinstance(replaced, tuple) else (replaced,)
            backward = None
            if self._backward_hooks or self._backward_pre_hooks:
                backward = _hooks.BackwardHook(self, list(self._backward_hooks.values()),
                                               list(self._backward_pre_hooks.values()))
                if backward.hooks:
                    args = backward.setup_input_hook(args)
            result = self._forward_on_device(args, kwargs)
            for key, hook in forward_hooks:
                called.add(key)
                replaced = self._run_forward_hook(key, hook, args, kwargs, result)
                if replaced is not None:
                    result = replaced
        except Exception:              # result: what forward and the hooks made so far (torch)
            for key, hook in forward_hooks:
                if key in self._forward_hooks_always_called and key not in called:
                    try:
                        replaced = self._run_forward_hook(key, hook, args, kwargs, result)
                        result = result if replaced is None else replaced
                    except Exception as e:
                        warnings.warn("forward hook with ``always_call=True`` raised an exception that was "
                                      f"silenced as another error was raised in forward: {e}")
            raise
        if backward is not None:
            result = backward.setup_output_hook(result)
        return result

    def _run_forward_hook(self, key, hook, args, kwargs, result):
        if key in self._forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` runs before each ``forward``; ``args`` is the tuple of positional
        inputs.  A returned value replaces them (a tuple, or one value for a single input).
        With ``with_kwargs``: ``hook(module, args, kwargs)``, which may return a pair
        ``(new_args, new_kwargs)``.  Returns a handle: ``handle.remove()`` unregisters the
        hook.  ``prepend=True`` runs it first."""
        flags = [self._forward_pre_hooks_with_kwargs] if with_kwargs else []
        return _hooks.add_hook(self._forward_pre_hooks, hook, prepend, "register_forward_pre_hook", *flags)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, args, output)`` runs after each ``forward``; a returned value replaces
        the output.  With ``with_kwargs``: ``hook(module, args, kwargs, output)``.  With
        ``always_call`` it runs (output None) even when forward raises.  Returns a handle
        with ``.remove()``."""
        flags = [table for table, on in ((self._forward_hooks_with_kwargs, with_kwargs),
                                         (self._forward_hooks_always_called, always_call)) if on]
        return _hooks.add_hook(self._forward_hooks, hook, prepend, "register_forward_hook", *flags)

    def register_full_backward_pre_hook(self, hook, *, prepend=False):
        """``hook(module, grad_output)`` runs in backward once the gradients with respect to the
        outputs of a call are known (a tuple, one Tensor or None per output); it may return a
        tuple that replaces them.  Returns a handle with ``.remove()``."""
        return _hooks.add_hook(self._backward_pre_hooks, hook, prepend, "register_full_backward_pre_hook")

    def register_full_backward_hook(self, hook, *, prepend=False):
        """``hook(module, grad_input, grad_output)`` runs in backward once the gradients with
        respect to the call's positional tensor inputs that require grad are known
        (``grad_input``: one entry per positional input -- zeros for a tensor whose gradient
        did not come, None for what is not a tensor, as in torch); it may return a
        tuple that replaces ``grad_input``.  When no input requires grad it runs with the
        output gradients, ``grad_input`` all None, and must return None.  Returns a handle
        with ``.remove()``."""
        return _hooks.add_hook(self._backward_hooks, hook, prepend, "register_full_backward_hook")

    def register_backward_hook(self, hook):
        """torch's deprecated backward hook, ``hook(module, grad_input, grad_output)``, run as a
        full backward hook (``register_full_backward_hook``), with a FutureWarning.
        ``grad_output`` is torch's; ``grad_input`` holds the gradients with respect to the
        module's inputs, where torch's old hook gives those of the inputs of the module's last
        op -- the same for a module that is one op of one input (an activation, a pooling),
        not for Linear or Conv2d (torch's then holds the bias and weight gradients too).  As in
        torch, a module takes old or full backward hooks, not both."""
        old = self.__dict__.setdefault("_old_backward_hook_ids", set())
        if any(key not in old for key in self._backward_hooks):
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks on a single Module. "
                               "Please use only one of them.")
        warnings.warn("register_backward_hook is deprecated in favor of register_full_backward_hook, and tinyres "
                      "runs it as one: grad_input holds the gradients with respect to the module's inputs (torch's "
                      "old hook: those of the inputs of the module's last op, the same for a one-op, one-input "
                      "module such as an activation).", FutureWarning, stacklevel=2)
        handle = _hooks.add_hook(self._backward_hooks, hook, False, "register_backward_hook")
        old.add(handle.id)
        return handle

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name, param):
        """Add ``param`` (a ``Parameter`` or None) as ``self.<name>``."""
        _check_name(self, "parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(tinyres.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add ``tensor`` (or None) as ``self.<name>``: state that is not trained.

        Persistent buffers go into ``state_dict``; non-persistent ones do not.
        """
        _check_name(self, "buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Add ``module`` (or None) as the child ``self.<name>``."""
        _check_name(self, "module", name, "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def _forget(self, name, keep=None):
        """Drop ``name`` from every table but ``keep`` (torch keeps the one a new value goes
        into, so a replaced parameter or child keeps its place in the order)."""
        for table in (self.__dict__, self._parameters, self._buffers, self._modules):
            if table is not keep:
                table.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name, value):
        tables = self.__dict__
        if isinstance(value, (Parameter, Module)):
            if "_parameters" not in tables:
                raise AttributeError("cannot assign parameters or modules before Module.__init__() call")
            is_parameter = isinstance(value, Parameter)
            self._forget(name, keep=self._parameters if is_parameter else self._modules)
            (self.register_parameter if is_parameter else self.add_module)(name, value)
        elif "_parameters" in tables and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(tinyres.nn.Parameter or None expected)")
            self._parameters[name] = None
        elif "_modules" in tables and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(tinyres.nn.Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in tables and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails; reads __dict__ directly so that an object
        # without its tables (during unpickling) does not recurse.
        tables = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in tables and name in tables[table]:
                return tables[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted_name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """``(name, module)`` for the direct children (each module once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        """``(dotted_name, tensor)`` from ``table`` of each module, each tensor once."""
        seen = set()
        owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for owner_prefix, module in owners:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{owner_prefix}.{name}" if owner_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted_name, Parameter)`` in registration order; a shared parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target):
        """The module at the dotted path ``target`` (``"layer1.0.conv1"``); ``""`` is self."""
        module = self
        for name in target.split(".") if target else []:
            if name not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule '{name}' (looking up '{target}')")
            module = module._modules[name]
        return module

    def apply(self, fn):
        """Call ``fn`` on every child (recursively), then on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode on self and every descendant.

        Layers that behave differently (BatchNorm, Dropout) read ``self.training``.
        """
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """``train(False)``: BatchNorm uses its running statistics, Dropout does nothing."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's ``.grad`` (to None, or to zeros in place)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    # ------------------------------------------------------------------ device and dtype
    def _convert(self, device=None, dtype=None):
        """Move every parameter, gradient and buffer to ``device`` and cast the floating ones
        to ``dtype``, in place: the Parameter objects stay the same (optimizers keep working)."""
        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array

        with no_grad():
            for module in self.modules():
                for param in module._parameters.values():
                    if param is None:
                        continue
                    param.array = convert(param.array)
                    if param.grad is not None:
                        param.grad.array = convert(param.grad.array)
                for buf in module._buffers.values():
                    if buf is not None:
                        buf.array = convert(buf.array)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``; in place, returns self.

        A dtype casts only floating parameters and buffers (``num_batches_tracked`` stays int64).
        """
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, backend.Device) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda")):
                device = a
            else:
                dtype = a
        dtype = backend.as_dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to: only floating point dtypes are accepted, got {dtype}")
        return self._convert(device=None if device is None else backend.Device(device), dtype=dtype)

    def cpu(self):
        return self._convert(device=backend.Device("cpu"))

    def cuda(self, device=None, non_blocking=False):
        if isinstance(device, int):
            device = f"cuda:{device}"
        return self._convert(device=backend.Device(device or "cuda"))

    def float(self):
        return self._convert(dtype=backend.float32)

    def double(self):
        return self._convert(dtype=backend.float64)

    def half(self):
        return self._convert(dtype=backend.float16)

    # ------------------------------------------------------------------ state_dict
    def _own_state(self):
        """``(name, tensor)`` for this module's own parameters, then its persistent buffers."""
        for name, param in self._parameters.items():
            if param is not None:
                yield name, param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers:
                yield name, buf

    def _has_extra_state(self):
        return type(self).get_extra_state is not Module.get_extra_state

    def get_extra_state(self):
        """What a module keeps beyond tensors, saved under ``<prefix>_extra_state`` when a
        subclass overrides this (and ``set_extra_state``), as torch's."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be called.")

    def set_extra_state(self, state):
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be called.")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Put this module's own state (not its children's) into ``destination``; override
        it (calling super) to change what one module saves, as in torch."""
        for name, value in self._own_state():
            destination[prefix + name] = value if keep_vars else value.detach()
        if self._has_extra_state():
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An OrderedDict ``dotted_name -> tensor`` of parameters and persistent buffers.

        Keys and order are PyTorch's for the same architecture.  Values are detached
        tensors that share memory with the module (copy them to keep a snapshot), or the
        Parameter objects themselves with ``keep_vars=True``.  Each module's
        ``_save_to_state_dict`` fills it, between its state_dict pre-hooks
        (``hook(module, prefix, keep_vars)``) and post-hooks (``hook(module, state_dict,
        prefix, local_metadata)``).
        """
        if destination is None:
            destination = collections.OrderedDict()
            destination._metadata = collections.OrderedDict()
        local_metadata = {"version": getattr(self, "_version", 1)}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for key, hook in self._state_dict_hooks.items():
            result = hook(self, destination, prefix, local_metadata)
            if key in self._state_dict_hooks_public:
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                destination = result
        return destination

    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars)`` runs before ``state_dict`` saves this module."""
        return _hooks.add_hook(self._state_dict_pre_hooks, hook, False, "register_state_dict_pre_hook")

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata)`` runs after this module and its
        children are saved; it may change ``state_dict`` in place and must return None."""
        return _hooks.add_hook(self._state_dict_hooks, hook, False, "register_state_dict_post_hook",
                               self._state_dict_hooks_public)

    def _register_state_dict_hook(self, hook):
        """torch's private form of the post-hook: a returned dict replaces the state_dict."""
        return _hooks.add_hook(self._state_dict_hooks, hook, False, "_register_state_dict_hook")

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before this module loads: it may rename or
        convert keys of ``state_dict`` in place (an old checkpoint's layout, say)."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        """torch's private form: without ``with_module`` the hook gets no module argument."""
        flags = [self._load_state_dict_pre_hooks_with_module] if with_module else []
        return _hooks.add_hook(self._load_state_dict_pre_hooks, hook, False, "register_load_state_dict_pre_hook",
                               *flags)

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys)`` runs after this module and its children are
        loaded; it may edit ``incompatible_keys.missing_keys`` / ``.unexpected_keys`` in
        place (what ``strict`` then reports) and must return None."""
        return _hooks.add_hook(self._load_state_dict_post_hooks, hook, False, "register_load_state_dict_post_hook")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Load this module's own state (not its children's) from ``state_dict``: run the
        load pre-hooks, check each value, and file the copy (``load_state_dict`` makes the
        copies once every module has checked, so nothing is copied when one fails); note
        missing keys, unexpected ones under this prefix and size mismatches.  Override it
        (calling super) to convert an old layout, as in torch."""
        for key, hook in self._load_state_dict_pre_hooks.items():
            args = (state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
            hook(self, *args) if key in self._load_state_dict_pre_hooks_with_module else hook(*args)
        local = dict(self._own_state())
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict and name not in self._optional_buffers:
                    missing_keys.append(key)
                continue
            source = _source_array(state_dict[key], key)
            if tuple(source.shape) != target.shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(source.shape)} "
                                  f"from checkpoint, the shape in current model is {target.shape}.")
                continue
            _file_copy((self, name, target, state_dict[key], source))
        if self._has_extra_state():
            if prefix + "_extra_state" in state_dict:
                self.set_extra_state(state_dict[prefix + "_extra_state"])
            elif strict:
                missing_keys.append(prefix + "_extra_state")
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != prefix + "_extra_state":
                    first = key[len(prefix):].split(".", 1)[0]
                    if first not in self._modules and first not in local:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy the values of ``state_dict`` into this module's parameters and buffers.

        Values may be Tensors, NumPy or CuPy arrays, or numbers; each is cast to the dtype
        and moved to the device of the tensor it is copied into, which stays the same
        object (with ``assign=True`` the module takes the given Tensors themselves, as
        torch's, a parameter staying a Parameter with its ``requires_grad``).  Each module's
        ``_load_from_state_dict`` (and its hooks) checks its part, children after parents,
        and its post-hooks run after its children; nothing is copied unless every value
        fits.  Raises one RuntimeError that lists every size mismatch and, with ``strict``,
        every missing and unexpected key; returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = collections.OrderedDict(state_dict)   # the hooks may edit it: the caller's stays
        missing, unexpected, errors = [], [], []
        outer, _loading.copies = getattr(_loading, "copies", None), []
        try:
            self._load_tree(state_dict, "", metadata, missing, unexpected, errors)
            copies = _loading.copies
        finally:
            _loading.copies = outer
        if strict:
            if unexpected:
                errors.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
            if missing:
                errors.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}. ")
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        for module, name, target, value, source in copies:
            if assign:
                _assign(module, name, target, value)
            else:
                _copy_into(target, source)
        return _IncompatibleKeys(missing, unexpected)

    def _load_tree(self, state_dict, prefix, metadata, missing, unexpected, errors):
        """torch's ``load``: this module, then each child on the keys under its prefix, then
        this module's post-hooks."""
        local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
        self._load_from_state_dict(state_dict, prefix, local_metadata, True, missing, unexpected, errors)
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                child_state = collections.OrderedDict((k, v) for k, v in state_dict.items()
                                                      if k.startswith(child_prefix))
                child._load_tree(child_state, child_prefix, metadata, missing, unexpected, errors)
        incompatible = _IncompatibleKeys(missing, unexpected)
        for hook in self._load_state_dict_post_hooks.values():
            if hook(self, incompatible) is not None:
                raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                     "expected to return new values, if incompatible_keys need to be modified, "
                                     "it should be done inplace.")

    # ------------------------------------------------------------------ what a layer says about itself
    def count_macs(self, output_shape):
        """The multiply-accumulates of one forward that produced ``output_shape`` (batch
        included), for ``tinyres.summary``.  None here: a layer that multiplies overrides
        this beside its forward, so no central list has to know it."""
        return 0

    def he_init_(self):
        """Re-initialise this layer's own parameters as He et al.'s ResNets do (torchvision's
        ``ResNet.__init__``; used by ``models.resnet.init_weights``).  Nothing here: a layer
        without a ResNet rule (Linear, or any container) keeps its default initialisation."""

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        """PyTorch's layout: ``Name(extra)`` or one ``(child): repr`` line per child."""
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"
