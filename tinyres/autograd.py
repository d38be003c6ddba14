"""The autograd engine: ``Function`` nodes, the backward pass, grad mode, gradcheck.

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

The import cycle autograd -> tensor -> ops -> autograd is load-bearing: ``tensor.py``
imports this module at its top and ``ops.py`` at its bottom (Tensor's methods call ops,
ops build Tensors), and this module imports ``Tensor`` only inside functions.  Importing
``tensor`` here at module level, or ``ops`` at the top of ``tensor.py``, breaks
``import tinyres``.
"""
import contextlib
import os

import numpy

from . import backend
from .errors import UserError

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Sets grad mode on entry and restores the previous mode on exit.  The previous modes
    are a stack, so one instance can be entered again while active (a decorated function
    that calls itself)."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.previous = []

    def __enter__(self):
        global _grad_enabled
        self.previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous.pop()


def no_grad():
    """Context manager and decorator: ops inside build no graph."""
    return _GradMode(False)


def enable_grad():
    """Context manager and decorator: ops inside build a graph, even within ``no_grad``."""
    return _GradMode(True)


class set_grad_enabled(_GradMode):
    """As ``torch.set_grad_enabled``: sets grad mode at once; used in ``with``, it restores
    the previous mode on exit."""

    def __init__(self, mode):
        global _grad_enabled
        super().__init__(bool(mode))
        self.previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __enter__(self):
        pass      # the mode was set in __init__; __exit__ restores what was before it


# ---------------------------------------------------------------------------- anomaly detection

_anomaly_mode = False
_PACKAGE = os.path.dirname(os.path.abspath(__file__))      # frames in here are tinyres's, not the user's


class AnomalyError(RuntimeError, UserError):
    """Raised inside ``detect_anomaly`` by the first op whose forward or backward made a NaN or Inf."""


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager and decorator, as ``torch.autograd.detect_anomaly``: inside it, every
    op remembers the line of your code that called it, and the first forward output or
    backward gradient with a NaN or Inf that its inputs did not already have raises an
    ``AnomalyError`` naming the op and that line.  It slows everything down: for debugging."""

    def __init__(self):
        self.previous = []

    def __enter__(self):
        global _anomaly_mode
        self.previous.append(_anomaly_mode)
        _anomaly_mode = True

    def __exit__(self, *exc):
        global _anomaly_mode
        _anomaly_mode = self.previous.pop()


def is_anomaly_enabled():
    """True inside ``detect_anomaly`` (tinyres's debug mode: checks that read values off a
    GPU, such as cross-entropy's target range, run only there)."""
    return _anomaly_mode


def _caller_line():
    """``file:line: code`` of the innermost frame outside the tinyres package."""
    import traceback
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_PACKAGE):
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return "(unknown)"


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
        from .tensor import Tensor
        fn = cls()
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        devices = [t.device for t in tensors]
        if len(set(devices)) > 1:
            raise RuntimeError(f"{fn.name}: expected all tensors on one device, got "
                               + ", ".join(map(str, devices))
                               + " (move them to one device with .to(device); ops never copy behind your back)")
        fn._device = devices[0] if devices else backend.Device("cpu")
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        fn.needs_grad = needs_grad = _grad_enabled and any(t.requires_grad for t in tensors)
        with backend.on_device(fn._device):
            y = fn.forward(*arrays, **options)
        if _anomaly_mode:
            fn._created_at = _caller_line()
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
    from .tensor import Tensor
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
    from .tensor import Tensor
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
                if _anomaly_mode and _finite([gy]) and not _finite(needed):
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


def Variable(tensor, requires_grad=False, volatile=False):
    """Legacy, as ``torch.autograd.Variable`` today: returns ``tensor`` itself (with
    ``requires_grad`` set when asked), so that old PyTorch code that wraps tensors in
    ``Variable(...)`` runs with its imports swapped.  Write plain tensors in new code;
    ``volatile`` is ignored (use ``no_grad``)."""
    from .tensor import Tensor
    if not isinstance(tensor, Tensor):
        raise TypeError(f"Variable: expected a Tensor, got {type(tensor).__name__}")
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


# ---------------------------------------------------------------------------- gradcheck

class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when the analytic and numeric gradients disagree."""


def _numeric_grad(f, x, indices, eps):
    """Central differences of the scalar ``f()`` with respect to x.data at ``indices``."""
    out = numpy.empty(len(indices))
    for k, i in enumerate(indices):
        at = numpy.unravel_index(i, x.shape)   # works for non-contiguous data too
        old = x.data[at].item()
        x.data[at] = old + eps
        fp = f()
        x.data[at] = old - eps
        fm = f()
        x.data[at] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def gradient_pairs(fn, inputs, eps=1e-6, nsamples=None, seed=0):
    """Numeric and analytic gradients of ``L = sum(g * fn(*inputs))`` for a random ``g``.

    Returns one ``(input index, checked flat indices, numeric, analytic)`` tuple per input
    that requires grad; ``gradcheck`` judges them, ``tinyres gradcheck`` tabulates them.
    """
    from .tensor import Tensor
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    rng = numpy.random.default_rng(seed)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")
        inputs[i].grad = None

    y = fn(*inputs)
    upstream = backend.to_device(rng.standard_normal(y.shape), y.device)
    y.backward(Tensor(upstream))

    def loss():
        with no_grad(), backend.on_device(y.device):
            return float((fn(*inputs).data * upstream).sum())

    pairs = []
    for i in checked:
        x = inputs[i]
        analytic = backend.to_numpy(x.grad.data).reshape(-1) if x.grad is not None else numpy.zeros(x.data.size)
        indices = numpy.arange(x.data.size)
        if nsamples is not None and nsamples < x.data.size:
            indices = rng.choice(x.data.size, nsamples, replace=False)
        with backend.on_device(x.device):
            numeric = _numeric_grad(loss, x, indices, eps)
        pairs.append((i, indices, numeric, analytic[indices]))
    return pairs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, nsamples=None, seed=0):
    """Compare ``fn``'s analytic gradients with central finite differences.

    ``fn`` maps the tensors ``inputs`` to one tensor ``y``.  A random upstream
    gradient ``g`` (the same shape as ``y``) turns it into the scalar ``L = sum(g * y)``;
    for every element ``x_i`` of every input that requires grad, the analytic
    ``dL/dx_i`` (from ``backward``) must match ``(L(x_i + eps) - L(x_i - eps)) / (2 eps)``
    within ``atol + rtol * |numeric|``.  Inputs must be float64.  With ``nsamples``,
    only that many random elements of each input are checked.

    Returns True, or raises ``GradcheckError`` naming the input, the worst element and
    both values.
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for i, indices, numeric, analytic in gradient_pairs(fn, inputs, eps, nsamples, seed):
        diff = numpy.abs(analytic - numeric)
        bad = ~(diff <= atol + rtol * numpy.abs(numeric))     # NaN counts as bad
        if bad.any():
            k = int(numpy.where(bad)[0][numpy.nan_to_num(diff[bad], nan=numpy.inf).argmax()])
            where = numpy.unravel_index(indices[k], inputs[i].shape)
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {inputs[i].shape}) is wrong at index "
                f"{tuple(int(j) for j in where)}: numeric {numeric[k]:.8g}, analytic "
                f"{analytic[k]:.8g} ({int(bad.sum())} of {len(indices)} elements off)")
    return True
