"""Module hooks: the handle that removes one, and what full backward hooks need from the engine.

A forward hook is easy: ``Module.__call__`` calls it.  A full backward hook must see, for one
call of the module, the gradients with respect to *all* its tensor outputs (``grad_output``)
and then all its tensor inputs (``grad_input``), and may replace them.  torch puts one
identity node with many outputs in front of the inputs and another behind the outputs.  The
tinyres engine's nodes have one output each, so each group of tensors (the inputs, or the
outputs) gets two kinds of node instead::

    x1 ─┐                       ┌─ BackwardHookFunction(hub) ─ x1'   (what forward sees)
        ├─ BackwardHookGather ──┤
    x2 ─┘   (hub: a 0-d dummy)  └─ BackwardHookFunction(hub) ─ x2'

``x1'`` is ``x1``'s array under a new node that depends on the hub only.  In backward each
``BackwardHookFunction`` files the gradient it receives with the gather node and sends the
hub a zero.  The engine runs a node only after every node that consumes its output, so the
gather runs once all gradients of the group have arrived (those that never do, of a tensor
the loss does not depend on, are None); it calls the hooks with all of them together, and
returns the gradients (the hooks' replacements, if any) to ``x1`` and ``x2``.

The nodes work whether the engine hands ``backward`` arrays or Tensors: each returns the
kind it received; hooks always see Tensors.
"""
import collections
import warnings

from ..core import backend, grad_mode
from ..core.engine import Function, _share_base
from ..core.hooks import RemovableHandle
from ..core.tensor import Tensor

__all__ = ["RemovableHandle"]


def add_hook(hooks_dict, hook, prepend, method, *flags):
    """Put ``hook`` into ``hooks_dict`` (last, or first with ``prepend``) and its id into each
    dict of ``flags`` (``with_kwargs``, ``always_call``); its handle, the engine's
    ``RemovableHandle`` (``Tensor.register_hook`` returns the same kind), removes all."""
    if not callable(hook):
        raise TypeError(f"{method}: expected a callable hook, got {type(hook).__name__}")
    handle = RemovableHandle(hooks_dict, *flags)
    hooks_dict[handle.id] = hook
    for table in flags:
        table[handle.id] = True
    if prepend:
        hooks_dict.move_to_end(handle.id, last=False)
    return handle


def hook_tables():
    """A module's hook tables (forward, backward, state_dict and load_state_dict) and the
    flags of its forward hooks, in torch's names."""
    return {name: collections.OrderedDict()
            for name in ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
                         "_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
                         "_forward_hooks_always_called", "_state_dict_pre_hooks", "_state_dict_hooks",
                         "_state_dict_hooks_public", "_load_state_dict_pre_hooks",
                         "_load_state_dict_pre_hooks_with_module", "_load_state_dict_post_hooks")}


# ---------------------------------------------------------------------- the two nodes

def _like(value, kind):
    """``value`` (a Tensor, an array or None) as the kind of ``kind``: a Tensor or an array."""
    if value is None:
        return None
    if isinstance(kind, Tensor):
        return value if isinstance(value, Tensor) else Tensor(value)
    return value.array if isinstance(value, Tensor) else value


class BackwardHookGather(Function):
    """The hub of one group of a module's tensors: all of them in, a 0-d zero out.

    Backward (after every ``BackwardHookFunction`` of the hub has filed its gradient): the
    filed gradients, None where none came, go to ``on_grads``, whose result (one gradient
    per tensor) is returned to the tensors."""

    def forward(self, *arrays, on_grads):
        self.on_grads = on_grads
        self.filed = [None] * len(arrays)
        xp = backend.get_array_module(arrays[0])
        return xp.zeros((), dtype=arrays[0].dtype)

    def backward(self, gy):
        filed, self.filed = self.filed, [None] * len(self.filed)      # fresh for a retain_graph re-run
        return tuple(_like(g, gy) for g in self.on_grads(filed))


class BackwardHookFunction(Function):
    """``y = array``: one tensor of the group, now depending on the hub alone.

    Backward: file ``gy`` with the hub's gather node (slot ``slot``), send the hub 0.
    Its output shares the tensor's memory, so in place on it is refused (as torch)."""

    refuses_inplace = True

    def forward(self, hub, *, array, gather, slot):
        self.gather, self.slot = gather, slot
        return array.view()

    def backward(self, gy):
        self.gather.filed[self.slot] = gy
        zero = backend.get_array_module(gy.array if isinstance(gy, Tensor) else gy).zeros((), dtype=gy.dtype)
        return _like(zero, gy)


def _zeros_like(t):
    """Zeros of ``t``'s shape and dtype, on its device (torch gives a tensor input without a
    gradient zeros in ``grad_input``, whether it requires grad or not)."""
    return Tensor(backend.get_array_module(t.array).zeros(t.shape, dtype=t.dtype))


def _checked(grads, tensors, what, method):
    """The hook's replacement gradients as Tensors of the tensors' shapes and dtypes."""
    out = []
    for i, (g, t) in enumerate(zip(grads, tensors)):
        if g is None or t is None:
            out.append(None if t is None else g)
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"{method}: the hook returned a {type(g).__name__} as {what}[{i}]; "
                            "expected a Tensor or None")
        if g.shape != t.shape:
            raise RuntimeError(f"{method}: the hook returned {what}[{i}] of shape {g.shape}; "
                               f"expected {t.shape}, the shape of that tensor")
        out.append(g if g.dtype == t.dtype else Tensor(g.array.astype(t.dtype)))
    return tuple(out)


class BackwardHook:
    """One call's full backward hooks (torch's ``torch.utils.hooks.BackwardHook``): wraps the
    call's inputs and outputs, collects ``grad_output`` and calls the hooks."""

    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs = None
        self.n_inputs, self.input_index, self.inputs = 0, None, ()
        self.n_outputs, self.output_index, self.outputs = 0, None, ()

    @staticmethod
    def _wrap(values, on_grads):
        """``values`` with each tensor that requires grad behind a hub; the wrapped positions
        (None when there are none, or grad mode is off)."""
        index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
        if not index or not grad_mode._grad_enabled:
            return values, None
        hub = BackwardHookGather.apply(*(values[i] for i in index), on_grads=on_grads)
        wrapped = list(values)
        for slot, i in enumerate(index):
            wrapped[i] = BackwardHookFunction.apply(hub, array=values[i].array, gather=hub.grad_fn, slot=slot)
            _share_base(wrapped[i], values[i])     # one memory, one version counter: in place on one shows on both
        return tuple(wrapped), index

    @staticmethod
    def _pack(index, grads, n):
        """One entry per position: the grads at ``index`` (as Tensors), None elsewhere."""
        packed = [None] * n
        for i, g in zip(index, grads):
            packed[i] = g if g is None or isinstance(g, Tensor) else Tensor(g)
        return tuple(packed)

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        args, self.input_index = self._wrap(args, self._input_grads_known)
        self.inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
        return args

    def setup_output_hook(self, result):
        single = not isinstance(result, tuple)
        if single and not isinstance(result, Tensor):
            warnings.warn(f"{type(self.module).__name__}: for backward hooks to be called, the module's output "
                          f"should be a Tensor or a tuple of Tensors, got {type(result).__name__}", stacklevel=3)
        outputs = (result,) if single else result
        self.n_outputs = len(outputs)
        outputs, self.output_index = self._wrap(outputs, self._output_grads_known)
        self.outputs = tuple(o if isinstance(o, Tensor) else None for o in outputs)
        return outputs[0] if single else outputs

    def _output_grads_known(self, grads):
        """The outputs' gradients are in: the pre-hooks may replace them; with no input that
        requires grad, the full hooks fire now (with grad_input all None)."""
        self.grad_outputs = self._pack(self.output_index, grads, self.n_outputs)
        for hook in self.pre_hooks:
            replaced = hook(self.module, self.grad_outputs)
            if replaced is None:
                continue
            replaced = (replaced,) if isinstance(replaced, Tensor) else tuple(replaced)
            if len(replaced) != self.n_outputs:
                raise RuntimeError(f"register_full_backward_pre_hook: the hook returned {len(replaced)} "
                                   f"gradients as grad_output, expected {self.n_outputs} (one per output)")
            self.grad_outputs = _checked(replaced, self.outputs, "grad_output", "register_full_backward_pre_hook")
        grad_outputs = self.grad_outputs
        if self.input_index is None:
            grad_inputs = (None,) * self.n_inputs
            for hook in self.hooks:
                replaced = hook(self.module, grad_inputs, grad_outputs)
                if replaced is not None and not all(g is None for g in replaced):
                    raise RuntimeError("register_full_backward_hook: no input of this module requires grad, so "
                                       "the hook must return None (or None for every gradient)")
            self.grad_outputs = None
        return [grad_outputs[i] for i in self.output_index]

    def _input_grads_known(self, grads):
        """The inputs' gradients are in: the full hooks see them with grad_output, and may replace them."""
        if self.grad_outputs is None:      # the gradient reached the inputs without passing the outputs
            return grads
        grad_inputs = tuple(_zeros_like(t) if g is None and t is not None else g      # torch's: a tensor input
                            for g, t in zip(self._pack(self.input_index, grads, self.n_inputs), self.inputs))
        for hook in self.hooks:
            replaced = hook(self.module, grad_inputs, self.grad_outputs)
            if replaced is None:
                continue
            replaced = (replaced,) if isinstance(replaced, Tensor) else tuple(replaced)
            if len(replaced) != self.n_inputs:
                raise RuntimeError(f"register_full_backward_hook: the hook returned {len(replaced)} gradients "
                                   f"as grad_input, expected {self.n_inputs} (one per positional input)")
            grad_inputs = _checked(replaced, self.inputs, "grad_input", "register_full_backward_hook")
        self.grad_outputs = None
        return [grad_inputs[i] for i in self.input_index]
