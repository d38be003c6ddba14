"""``tinyres.autograd.function``, as ``torch.autograd.function``: custom Functions written
the way torch writes them, with a ``ctx``.

Two styles share the name ``Function``; ``forward`` tells them apart.

* tinyres's own (``def forward(self, *arrays)``, an instance method): the engine's
  ``Function`` (``tinyres.core.engine``), unchanged: forward on arrays, ``self`` is the node.
* torch's (``@staticmethod def forward(ctx, *args)``, what ported research code writes)::

      class MyFn(Function):
          @staticmethod
          def forward(ctx, x, scale):
              ctx.save_for_backward(x); ctx.scale = scale
              return x * scale
          @staticmethod
          def backward(ctx, grad_output):
              x, = ctx.saved_tensors
              return grad_output * ctx.scale, None
      y = MyFn.apply(x, 2.0)

  ``forward`` gets the Tensors (and any other arguments) under ``no_grad`` and returns a
  Tensor or a tuple; ``backward`` gets one gradient per output, as Tensors, and returns one
  per input (None for an input that is no Tensor or needs none; too few, too many, or a
  gradient for a non-Tensor raise as in torch; a gradient of a broadcast shape is summed
  down, one of another dtype cast).  Backward runs with grad mode on only under
  ``create_graph``, so a backward written with tinyres ops can be differentiated again;
  ``@once_differentiable`` refuses that at the second differentiation, with torch's error.
  The newer form -- ``forward(*args)`` without ctx, and ``setup_context(ctx, inputs,
  output)`` -- works too.

How it is built on the engine: ``MyFn`` gets a node class of its own (``MyFnBackward`` in a
repr), an engine Function whose ``forward`` calls ``MyFn.forward`` and whose ``backward``
calls ``MyFn.backward``; ``ctx`` (a ``FunctionCtx``) is a separate object, so a user's
attribute never meets the engine's fields.  ``ctx.save_for_backward`` goes through the
engine's saved tensors (their place in the graph, the in-place version check).  The engine
knows one output per node: with several differentiable outputs the node's output is an
empty placeholder, each real output is made by an ``_Output`` node from it, and their
gradients are collected on the node before the user's backward sees them all at once.
"""
import inspect
import weakref

import numpy

from ..core import backend, ops
from ..core.engine import _SELF, Function as _EngineFunction, _Saved, _share_base, once_differentiable
from ..core.grad_mode import is_grad_enabled, no_grad
from ..core.tensor import Tensor

__all__ = ["Function", "FunctionCtx", "once_differentiable"]

# (once_differentiable is the engine's: on a torch-style backward it means torch's
# once_differentiable -- Tensors in and out, computed under no_grad, and an error if that
# gradient is differentiated again; on a tinyres-style backward, gradients as arrays.)


class FunctionCtx:
    """What a torch-style ``forward`` gets as ``ctx``: ``save_for_backward`` /
    ``saved_tensors``, ``needs_input_grad``, ``mark_dirty``, ``mark_non_differentiable``,
    ``set_materialize_grads``; any other attribute is the user's."""

    materialize_grads = True
    to_save = ()
    dirty_tensors = ()
    non_differentiable = ()

    def save_for_backward(self, *tensors):
        """Tensors (inputs, outputs, or None) that ``backward`` reads back as ``saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                                f"{type(t).__name__}")
        self.to_save = tensors

    @property
    def saved_tensors(self):
        """What forward saved, as Tensors, checked against in-place changes since."""
        node = self.__node() if self.__node is not None else None
        if node is None:
            raise RuntimeError("saved_tensors: there are none: forward ran without a graph, or a backward freed "
                               "them (pass retain_graph=True to the first backward() to go through it twice)")
        saved = list(node.saved_tensors)        # the engine's: freed and version checks
        for i, out in node.saved_outputs.items():    # several outputs: each saved one in its place in the graph
            out = out()
            if out is not None and saved[i] is not None:
                t = Tensor(saved[i].array, requires_grad=True, _grad_fn=out)
                t._version_counter = node._saved[i].counter
                saved[i] = t
        return tuple(saved)

    def mark_dirty(self, *tensors):
        """The inputs that ``forward`` changed in place (and returns)."""
        self.dirty_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        """Outputs that get no gradient (``backward`` still gets zeros for them)."""
        self.non_differentiable = tensors

    def set_materialize_grads(self, value):
        """False: ``backward`` gets None, not zeros, for an output that got no gradient."""
        self.materialize_grads = bool(value)

    _FunctionCtx__node = None        # (the node: a weak reference, set by the node's forward)


def _is_torch_style(cls):
    return isinstance(inspect.getattr_static(cls, "forward", None), staticmethod)


class Function(_EngineFunction):
    """A custom op (``torch.autograd.Function``).  With ``@staticmethod def forward(ctx,
    ...)`` it is torch's (this module's docstring); with ``def forward(self, *arrays)`` it is
    the engine's ``Function`` as it always was (docs/autograd.md)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if _is_torch_style(cls):
            names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__ + "Backward"}
            cls._node_class = type(cls.__name__, (_Node,), {"function": cls, **names})
            cls._output_class = type(cls.__name__, (_Output,), names)    # (its name in a repr, an error)
            cls.apply = classmethod(_apply)


def _apply(cls, *args, **kwargs):
    """``MyFn.apply(*args, **kwargs)`` for a torch-style Function."""
    setup = getattr(cls, "setup_context", None)
    if setup is not None or kwargs:     # as torch: keyword arguments become positional inputs
        bound = inspect.signature(cls.forward).bind(*(() if setup else (None,)), *args, **kwargs)
        if setup is not None:
            bound.apply_defaults()
        args, kwargs = bound.args[0 if setup else 1:], bound.kwargs
    call = {"args": args, "kwargs": kwargs}
    out = cls._node_class.apply(*args, call=call)
    node, output = call["node"], call.pop("output")
    if not node.needs_grad:
        return output
    outs = list(output) if isinstance(output, tuple) else [output]
    if node.direct is not None:
        made = {node.direct: out}
    else:                                # several differentiable outputs, each from the placeholder
        made = {k: cls._output_class.apply(out, array=outs[k].array, k=k) for k in node.differentiable}
        node.output_nodes = {k: weakref.ref(t.grad_fn) for k, t in made.items()}
    tensors = [a for a in args if isinstance(a, Tensor)]
    saved, node._saved = node._saved, []       # (commit_inplace below must not copy them)
    for k, t in made.items():
        if any(outs[k] is d for d in node.ctx.dirty_tensors):
            made[k] = _commit_dirty(outs[k], t, node.name)
            continue
        for u in tensors:                   # an output that is (a view of) an input is a view of it
            _share_base(t, u)
        if t._base is not None:             # ... which may not be changed in place (torch)
            t.grad_fn.refuses_inplace = True
    node._saved = [_point_at_output(node, i, s, made) for i, s in enumerate(saved)]
    for k, t in enumerate(outs):
        if k in made:
            outs[k] = made[k]
        elif isinstance(t, Tensor) and t.requires_grad:
            outs[k] = t.detach()        # a non-differentiable output that is an input as it is
    return tuple(outs) if isinstance(output, tuple) else outs[0]


def _commit_dirty(x, out, name):
    """``x``, changed in place by forward, takes ``out``'s history (as after any in-place op)."""
    if x.requires_grad and x.grad_fn is None:
        raise RuntimeError(f"{name}: a leaf Variable that requires grad has been used in an in-place operation.")
    return ops.commit_inplace(x, out, f"{name} (mark_dirty)")


def _point_at_output(node, i, s, made):
    """Saved record ``i`` of ``node``: when it holds an output, that output as it is now
    (its version counter; its place in the graph)."""
    k = next((k for k, t in made.items() if isinstance(s, _Saved) and s.array is t.array), None)
    if k is None:
        return s
    if node.direct is not None:
        return _Saved(s.array, grad_fn=_SELF, counter=made[k]._version_counter)
    node.saved_outputs[i] = node.output_nodes[k]      # (a weak reference: no cycle through the records)
    return _Saved(s.array, counter=made[k]._version_counter)


class _Node(_EngineFunction):
    """The engine node of one call of a torch-style Function (``function``)."""

    function = None
    direct = None            # the index of the output that is this node's own, when there is one
    _connects_gradients = False  # its gradients are what its backward returns, graph or not (torch)

    def forward(self, *arrays, call):
        function, args = self.function, call["args"]
        ctx = self.ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)  # (no_grad too: torch)
        ctx._FunctionCtx__node = weakref.ref(self)
        call["node"] = self
        with no_grad():
            if getattr(function, "setup_context", None) is not None:
                output = function.forward(*args, **call["kwargs"])
                function.setup_context(ctx, args, output)
            else:
                output = function.forward(ctx, *args, **call["kwargs"])
        call["output"] = output
        outs = output if isinstance(output, tuple) else (output,)
        for d in ctx.dirty_tensors:
            if not any(d is o for o in outs):
                raise RuntimeError(f"{self.name}: Some elements marked as dirty during the forward method were not "
                                   "returned as output. The inputs that are modified inplace must all be outputs "
                                   "of the Function.")
        self.outputs_info = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outs]
        self.differentiable = [k for k, o in enumerate(outs) if isinstance(o, Tensor) and o.dtype.kind in "fc"
                               and not any(o is n for n in ctx.non_differentiable)]
        self.input_is_tensor = [isinstance(a, Tensor) for a in args]
        self.saved_outputs, self.pending = {}, {}
        self.save_for_backward(*(None if t is None else t.array for t in ctx.to_save))
        if len(self.differentiable) == 1:
            self.direct = self.differentiable[0]
            return outs[self.direct].array
        like = next((o.array for o in outs if isinstance(o, Tensor) and o.dtype.kind in "fc"), None)
        if like is None:
            like = next((a.array for a in args if isinstance(a, Tensor)), numpy.zeros(0))
        dtype = like.dtype if like.dtype.kind in "fc" else numpy.float64
        return backend.get_array_module(like).zeros((0,), dtype=dtype)     # the placeholder

    def backward(self, gy):
        ctx, function = self.ctx, self.function
        grads = {self.direct: gy} if self.direct is not None else self.pending
        self.pending = {}
        grads = [grads.get(k) for k in range(len(self.outputs_info))]
        if ctx.materialize_grads:
            xp = backend.get_array_module(gy.array)
            grads = [Tensor(xp.zeros(*info)) if g is None and info is not None else g
                     for g, info in zip(grads, self.outputs_info)]
        backward = _user_backward(function, self.name)
        if getattr(backward, "once_differentiable", False):
            with no_grad():
                gxs = backward(ctx, *grads)
            if is_grad_enabled() and any(isinstance(g, Tensor) and g.requires_grad for g in grads):
                gxs = tuple(_DelayedError.apply(g.detach().requires_grad_())
                            if isinstance(g, Tensor) and g.dtype.kind in "fc" else g
                            for g in (gxs if isinstance(gxs, tuple) else (gxs,)))
        else:
            gxs = backward(ctx, *grads)
        return self._checked(gxs if isinstance(gxs, tuple) else (gxs,))

    def _checked(self, gxs):
        """One gradient per input, checked and fitted as torch's engine does."""
        n, name = len(self.input_is_tensor), f"{self.name}Backward"
        if len(gxs) > n and all(g is None for g in gxs[n:]):
            gxs = gxs[:n]
        if len(gxs) != n:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients (expected {n}, "
                               f"got {len(gxs)})")
        out = []
        for i, (g, is_tensor, meta) in enumerate(zip(gxs, self.input_is_tensor, self._input_meta)):
            if not is_tensor and g is not None:
                raise RuntimeError(f"function {name} returned a gradient different than None at position {i + 1}, "
                                   "but the corresponding forward input was not a Variable")
            if g is not None and not isinstance(g, Tensor):
                raise RuntimeError(f"function {name}: expected Variable or None (got {type(g).__name__})")
            if g is None or meta is None:
                out.append(None)
                continue
            shape, dtype = meta
            if g.shape != shape:
                if not _expandable(shape, g.shape):
                    raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                                       f"{list(g.shape)} but expected shape compatible with {list(shape)}")
                g = ops.sum_to(g, shape)
            out.append(g if g.dtype == dtype else g.to(dtype))
        return tuple(out)


def _user_backward(function, name):
    for attr in ("backward", "vjp"):
        if isinstance(inspect.getattr_static(function, attr, None), staticmethod):
            return getattr(function, attr)
    raise NotImplementedError(f"{name}: You must implement either the backward or vjp method for your custom "
                              "autograd.Function to use it with backward mode AD.")


def _expandable(shape, target):
    """True when ``shape`` broadcasts to ``target`` (a gradient of ``target`` sums down to it)."""
    return len(shape) <= len(target) and all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


class _Output(_EngineFunction):
    """y = output ``k`` of a torch-style Function with several outputs, made from its node's
    empty placeholder output.  Its backward hands ``gy`` to that node (which calls the user's
    backward once, with every output's gradient) and returns an empty gradient."""

    def forward(self, placeholder, array, k):
        self.k = k
        return array

    def backward(self, gy):
        node = self.next[0]
        node.pending[self.k] = gy
        return Tensor(backend.get_array_module(gy.array).zeros((0,), dtype=self._input_meta[0][1]))


class _DelayedError(_EngineFunction):
    """y = x, where x is a gradient computed by a ``@once_differentiable`` backward under
    ``create_graph``: differentiating y raises, as torch's DelayedError."""

    def forward(self, x):
        return x

    def backward(self, gy):
        raise RuntimeError("trying to differentiate twice a function that was marked with @once_differentiable")
