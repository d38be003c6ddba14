"""The autograd engine: ``Function`` nodes and the backward pass.

A ``Function`` is one op.  ``forward`` gets NumPy/CuPy arrays and returns one array;
``backward`` gets the gradient of the loss with respect to that output (an array of
the same shape) and returns one gradient per input (an array, or ``None`` for an
input that needs none).  Whatever ``backward`` needs, ``forward`` stores on ``self``;
the graph keeps nothing else alive: a node points to the nodes that made its inputs
(or to the leaf tensors themselves), never to intermediate tensors.

``backward()`` sorts the graph topologically with an explicit stack (no recursion, so a
chain of thousands of ops is fine), walks it in reverse, adds gradients that meet at a
node, accumulates into the ``.grad`` of leaves, and frees every node it passed unless
``retain_graph=True``.

Two namespaces share a Function instance, kept apart by a rule: the engine's bookkeeping
(where the inputs came from, their shapes, the device, whether the node was freed) lives
in attributes that start with an underscore (``_next``, ``_input_meta``, ``_device``,
``_freed``, ...); what an op saves for its backward uses plain names (``self.x``,
``self.device``).  The engine's fields a reader may look at are read-only properties
(``next``, ``freed``, ``output_meta``), so an op that picks one of those names fails at
once instead of corrupting the graph.

Imports run one way: ``tensor`` knows nothing of this module; this module makes Tensors
and installs ``Tensor.backward`` (at the bottom), as ``ops`` installs the math methods.
"""
import numpy

from . import backend, grad_mode
from .grad_mode import AnomalyError, no_grad
from .tensor import Tensor


def _finite(arrays):
    """False when a floating array among ``arrays`` holds a NaN or an Inf."""
    for a in arrays:
        if hasattr(a, "dtype") and a.dtype.kind == "f" and not bool(backend.get_array_module(a).isfinite(a).all()):
            return False
    return True


class Function:
    """One differentiable op.  Subclasses define ``forward`` and ``backward``.

    Call it with ``MyOp.apply(*tensors, **options)``: tensors become arrays for
    ``forward``; options are passed through unchanged.  ``self.needs_grad`` tells
    ``forward`` whether a backward can follow (inference need not save anything).  All tensors must be on one device;
    ``forward`` and ``backward`` run with that device current (CuPy allocates there).

    Save what backward needs under plain names; names with a leading underscore are the
    engine's (see the module docstring).
    """

    _freed = False

    @property
    def name(self):
        return type(self).__name__

    @property
    def next(self):
        """Where each input came from: the node that made it, the leaf tensor itself, or
        None for an input that needs no gradient (``torch``'s ``next_functions``)."""
        return self._next

    @property
    def freed(self):
        """True once a backward without ``retain_graph`` went through this node."""
        return self._freed

    @property
    def output_meta(self):
        """(shape, dtype) of the output, for ``tinyres.viz``."""
        return self._output_meta

    @classmethod
    def apply(cls, *inputs, **options):
        fn = cls()
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        devices = [t.device for t in tensors]
        if len(set(devices)) > 1:
            raise RuntimeError(f"{fn.name}: expected all tensors on one device, got "
                               + ", ".join(map(str, devices))
                               + " (move them to one device with .to(device); ops never copy behind your back)")
        fn._device = devices[0] if devices else backend.Device("cpu")
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        fn.needs_grad = needs_grad = grad_mode._grad_enabled and any(t.requires_grad for t in tensors)
        with backend.on_device(fn._device):
            y = fn.forward(*arrays, **options)
        if grad_mode._anomaly_mode:
            fn._created_at = grad_mode.caller_line()
            if not _finite([y]) and _finite(arrays):
                raise AnomalyError(f"{fn.name}: its forward produced NaN or Inf from finite inputs; "
                                   f"called at {fn._created_at}")
        if not needs_grad:
            return Tensor(y)
        fn._next = [(x.grad_fn or x) if isinstance(x, Tensor) and x.requires_grad else None
                    for x in inputs]
        fn._input_meta = [(x.shape, x.dtype) if nxt is not None else None
                          for x, nxt in zip(inputs, fn._next)]
        fn._output_meta = (y.shape, y.dtype)      # for tinyres.viz
        return Tensor(y, requires_grad=True, _grad_fn=fn)

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.name}Backward>"


def sum_to(x, shape):
    """Sum the array ``x`` down to ``shape`` -- the adjoint of broadcasting ``shape`` to ``x.shape``."""
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1)
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


def _topological_order(root):
    """Function nodes reachable from ``root``, each after every node that consumes its output."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)     # post-order: after every node that feeds it
            continue
        if node in visited:
            continue
        if node._freed:
            raise RuntimeError(
                f"backward: trying to backward through the graph a second time (node {node.name}); "
                "its saved arrays were freed after the first backward. Pass retain_graph=True "
                "to the first backward() if you need to go through it twice.")
        visited.add(node)
        stack.append((node, True))
        stack.extend((nxt, False) for nxt in node._next if isinstance(nxt, Function) and nxt not in visited)
    order.reverse()   # consumers first
    return order


def _accumulate(leaf, grad):
    if leaf.grad is None:
        leaf.grad = Tensor(grad.astype(leaf.dtype, copy=True))   # never alias another array
    else:
        leaf.grad.data = leaf.grad.data + grad.astype(leaf.dtype, copy=False)


def _checked_backward(node, gy):
    """``node.backward(gy)`` as a tuple, checked: a gradient for each input that needs one
    (trailing non-Tensor inputs such as options may be left out), each with its input's
    shape and dtype (so a float32 graph stays float32 all the way back)."""
    gxs = node.backward(gy)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    needed = 1 + max(i for i, meta in enumerate(node._input_meta) if meta is not None)
    if not needed <= len(gxs) <= len(node._next):
        raise RuntimeError(f"{node.name}.backward: expected {needed} to {len(node._next)} gradients "
                           f"(one per input), got {len(gxs)}")
    for i, (gx, meta) in enumerate(zip(gxs, node._input_meta)):
        if gx is not None and meta is not None and (gx.shape, gx.dtype) != meta:
            raise RuntimeError(f"{node.name}.backward: expected a gradient of shape {meta[0]} and "
                               f"dtype {meta[1]} for input {i}, got shape {gx.shape}, dtype {gx.dtype}")
    return gxs


def run_backward(tensor, gradient=None, retain_graph=False):
    """The engine behind ``Tensor.backward``."""
    if not tensor.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no grad_fn")
    if gradient is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; the output "
                f"has shape {tensor.shape}. Pass gradient= of that shape.")
        gradient = numpy.ones(tensor.shape)
    elif isinstance(gradient, Tensor):
        if gradient.device != tensor.device:
            raise RuntimeError(f"backward: expected the gradient on {tensor.device} like the "
                               f"output, got it on {gradient.device}")
        gradient = gradient.data
    elif not hasattr(gradient, "shape"):
        gradient = numpy.asarray(gradient)
    grad = backend.to_device(gradient, tensor.device)
    if grad.shape != tensor.shape:
        raise RuntimeError(f"backward: expected a gradient of shape {tensor.shape} like the "
                           f"output, got shape {grad.shape}")
    with backend.on_device(tensor.device):     # a cast is a kernel: on the output's GPU
        grad = grad.astype(tensor.dtype, copy=False)
        if tensor.grad_fn is None:      # a leaf
            _accumulate(tensor, grad)
            return
    grads = {tensor.grad_fn: grad}
    global _callbacks
    outer, _callbacks = _callbacks, []
    try:
        with no_grad():
            _walk_backward(tensor, grads, retain_graph)
            for callback in _callbacks:     # queued by ops during the walk: now every gradient is in
                callback()
    finally:
        _callbacks = outer


_callbacks = None      # during a backward pass: what to run when it ends


def queue_callback(callback):
    """Run ``callback()`` once when the backward pass under way ends, after every gradient of
    it has been accumulated (torch's ``queue_callback``).  For ops whose backward needs the
    whole pass done: DistributedDataParallel averages the gradients this way."""
    if _callbacks is None:
        raise RuntimeError("queue_callback: only an op's backward, during a backward pass, can queue a callback")
    if callback not in _callbacks:
        _callbacks.append(callback)


def _walk_backward(tensor, grads, retain_graph):
    """The loop of ``run_backward``: every node from the output back, in topological order."""
    for node in _topological_order(tensor.grad_fn):
        gy = grads.pop(node, None)
        if gy is not None:
            with backend.on_device(node._device):    # where the node's inputs live
                gxs = _checked_backward(node, gy)
                needed = [gx for gx, nxt in zip(gxs, node._next) if nxt is not None]
                if grad_mode._anomaly_mode and _finite([gy]) and not _finite(needed):
                    raise AnomalyError(f"{node.name}.backward returned NaN or Inf from a finite gradient; "
                                       f"the op was called at {getattr(node, '_created_at', '(outside detect_anomaly)')}")
                for nxt, gx in zip(node._next, gxs):
                    if nxt is None or gx is None:
                        continue
                    if isinstance(nxt, Function):
                        grads[nxt] = grads[nxt] + gx if nxt in grads else gx
                    else:
                        _accumulate(nxt, gx)
        if not retain_graph:
            node.__dict__.clear()      # the op's saved arrays and the engine's fields alike
            node._freed = True
            node._next = ()


def _tensor_backward(self, gradient=None, retain_graph=False):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

    Gradients add up over calls: zero them (``optimizer.zero_grad()``) between steps.
    """
    run_backward(self, gradient, retain_graph)


Tensor.backward = _tensor_backward
