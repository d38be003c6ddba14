"""The autograd engine: ``Function`` nodes, the backward pass, ``grad``.

A ``Function`` is one op.  ``forward`` gets NumPy/CuPy arrays and returns one array, and
calls ``self.save_for_backward(...)`` with the arrays its backward needs: its inputs, its
output, or arrays it computed.  ``backward`` gets the gradient of the loss with respect
to the output as a Tensor ``gy`` and returns one gradient per input, each a Tensor (or
``None`` for an input that needs none), computed with tinyres's own differentiable ops
from ``gy`` and ``self.saved_tensors``.  So the backward pass can itself be recorded:
``backward(create_graph=True)`` and ``grad(..., create_graph=True)`` build the graph of the
gradient, which can be differentiated again, to any order.  Without ``create_graph`` the
backward runs under ``no_grad`` and builds nothing.

The heavy array kernels (im2col, a fused batch-norm backward) stay array code: they are
Functions of their own whose backward is known (col2im's backward is im2col).  A Function
whose backward is written on arrays takes the ``@once_differentiable`` decorator: it gets
``gy`` as an array and returns arrays, and differentiating through it twice raises --
unless it also says how its gradient is built as a graph: ``backward_graph(gy)`` (the same
backward in tensor ops, used only under ``create_graph``; ReLU), or ``composite(*inputs)``
(the op itself in tensor ops, differentiated under ``create_graph``; batch norm, group
norm, the cross-entropy and BCE kernels).  The fast array path stays the first-order one.

``self.saved_tensors`` are what torch calls saved variables: an input keeps its place in
the graph; the output is the op's own output; each remembers the version of its tensor
when it was saved.  An in-place op (``x += 1``, ``relu_``) bumps a tensor's version (views
share their base's counter), so a backward that would read a value changed since its
forward raises, naming the op and both versions, instead of giving a wrong gradient.

``backward()`` sorts the graph topologically with an explicit stack (no recursion, so a
chain of thousands of ops is fine), walks it in reverse, adds gradients that meet at a
node, accumulates into the ``.grad`` of leaves, and frees every node it passed unless
``retain_graph=True`` (a node that kept no arrays, only shapes, stays usable, as in torch).
Under ``create_graph`` a gradient made of constants (relu's mask) is still tied to what its
op's backward read, with a zero derivative (``_connected``), as torch's gradients are.

Two namespaces share a Function instance, kept apart by a rule: the engine's bookkeeping
lives in attributes that start with an underscore (``_next``, ``_input_meta``, ``_device``,
``_saved``, ``_freed``, ...); what an op keeps for its backward uses plain names
(``self.shape``, ``self.mask``).  The engine's fields a reader may look at are read-only
properties (``next``, ``freed``, ``output_meta``, ``saved_tensors``), so an op that picks one
of those names fails at once instead of corrupting the graph.

Imports run one way: ``tensor`` knows nothing of this module; this module makes Tensors
and installs ``Tensor.backward`` (at the bottom), as ``ops`` installs the math methods.
"""
import contextlib
import warnings
import weakref

import numpy

from . import backend, grad_mode
from .grad_mode import AnomalyError, enable_grad, no_grad
from .hooks import add_hook
from .tensor import Tensor


def _finite(arrays):
    """False when a floating array among ``arrays`` holds a NaN or an Inf."""
    for a in arrays:
        if hasattr(a, "dtype") and a.dtype.kind == "f" and not bool(backend.get_array_module(a).isfinite(a).all()):
            return False
    return True


def _owner(array):
    """The array that owns ``array``'s memory (itself when it owns it)."""
    return array if getattr(array, "base", None) is None else array.base


def _share_base(view, x):
    """When ``view``'s data is a view of ``x``'s memory: one version counter, and ``view._base``."""
    if _owner(view.array) is _owner(x.array):
        view._version_counter = x._version_counter
        view._base = x if x._base is None else x._base
        view._view_version = x._version_counter[0]       # its grad_fn is of this version of the base
        if view._is_inference != x._is_inference:      # a view is what its base is (torch), also when
            view._is_inference = x._is_inference       # made inside inference_mode


class _Saved:
    """One saved tensor: its data and where it sits in the graph, and the version of its
    tensor when it was saved (``tensor`` for a leaf, which must stay itself)."""
    __slots__ = ("array", "leaf", "grad_fn", "counter", "version")

    def __init__(self, data, leaf=None, grad_fn=None, counter=None):
        self.array, self.leaf, self.grad_fn, self.counter = data, leaf, grad_fn, counter
        self.version = counter[0] if counter is not None else None


def once_differentiable(backward):
    """Mark a ``backward`` written on arrays: it gets ``gy`` as an array and returns arrays
    (first-order gradients only; a graph of its gradient cannot be built)."""
    backward.once_differentiable = True
    return backward


def one_device(op, tensors):
    """The one device all ``tensors`` are on (cpu when there are none); a RuntimeError naming
    ``op`` when they are on several."""
    devices = [t.device for t in tensors]
    if len(set(devices)) > 1:
        raise RuntimeError(f"{op}: expected all tensors on one device, got "
                           + ", ".join(map(str, devices))
                           + " (move them to one device with .to(device); ops never copy behind your back)")
    return devices[0] if devices else backend.Device("cpu")


class Function:
    """One differentiable op.  Subclasses define ``forward`` and ``backward``.

    Call it with ``MyOp.apply(*tensors, **options)``: tensors become arrays for
    ``forward``; options are passed through unchanged.  ``self.needs_grad`` tells
    ``forward`` whether a backward can follow (inference need not save anything).  All
    tensors must be on one device; ``forward`` and ``backward`` run with that device current
    (CuPy allocates there).  An op whose output may be a view of its first input (reshape,
    permute, basic indexing) sets ``is_view = True``: the two then share a version counter.

    ``self.needs_input_grad`` says, per input, whether its gradient will be asked for (as
    torch's ``ctx.needs_input_grad``): an op saves only what those gradients need, so an
    in-place change to a tensor no gradient reads is no error (``x.mul_(mask)``).

    Keep what backward needs with ``self.save_for_backward(*arrays)`` (as Tensors in the
    graph) or under plain names (constants: shapes, masks); names with a leading underscore
    are the engine's (see the module docstring).
    """

    _freed = False
    _released = False    # its arrays were freed by a backward (a node that kept none can run again)
    is_view = False
    composite = None     # an op with an array backward may define composite(*inputs, **options): itself in ops
    # ... or backward_graph(gy): its backward in tensor ops, when that needs no more than it saves
    _backward_reads_input = False   # see _connected: its gradient is built from constants it kept of its input
    _connects_gradients = True      # see _connected; False: the gradients are what backward returns (torch's
                                    # custom Functions)

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

    def save_for_backward(self, *arrays):
        """In ``forward``: the arrays (inputs, the output, or computed ones) that
        ``backward`` reads back as ``self.saved_tensors``."""
        self._to_save = arrays

    @property
    def saved_tensors(self):
        """In ``backward``: what forward saved, as Tensors -- inputs with their place in the
        graph, the output as this op's output, computed arrays as constants.  Raises if a
        saved tensor was changed in place since."""
        if self._released:
            raise RuntimeError(f"{self.name}: its saved tensors were freed after a backward; pass "
                               "retain_graph=True to the first backward() to go through the graph twice")
        return self._restore(self._saved)

    def _check_versions(self, records):
        for k, s in enumerate(records):
            if isinstance(s, _Saved) and s.counter is not None and s.counter[0] != s.version:
                self._restore([s])        # raises, naming the op and both versions

    def _restore(self, records):
        """Tensors (and plain values, kept as they are) from ``_Saved`` records, version-checked."""
        out = []
        for k, s in enumerate(records):
            if not isinstance(s, _Saved):
                out.append(s)
                continue
            if s.counter is not None and s.counter[0] != s.version:
                raise RuntimeError(
                    f"{self.name}: one of the tensors needed for gradient computation has been modified "
                    f"by an inplace operation: saved tensor {k} (shape {tuple(s.array.shape)}) is at version "
                    f"{s.counter[0]}; expected version {s.version} instead. Use clone() before the inplace "
                    "operation, or an out-of-place one.")
            if s.leaf is not None:
                out.append(s.leaf)
            elif s.grad_fn is not None:
                t = Tensor(s.array, requires_grad=True, _grad_fn=self if s.grad_fn is _SELF else s.grad_fn)
                t._version_counter = s.counter
                out.append(t)
            else:
                out.append(Tensor(s.array))
        return tuple(out)

    @classmethod
    def apply(cls, *inputs, **options):
        fn = cls()
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        fn._device = one_device(fn.name, tensors)
        arrays = [x.array if isinstance(x, Tensor) else x for x in inputs]
        fn.needs_grad = needs_grad = grad_mode._grad_enabled and any(t.requires_grad for t in tensors)
        fn.needs_input_grad = tuple(needs_grad and isinstance(x, Tensor) and x.requires_grad for x in inputs)
        with backend.on_device(fn._device):
            y = fn.forward(*arrays, **options)
        if grad_mode._anomaly_mode:
            fn._created_at = grad_mode.caller_line()
            if _callbacks is None and not _finite([y]) and _finite(arrays):   # (in a backward: the node's check)
                raise AnomalyError(f"{fn.name}: its forward produced NaN or Inf from finite inputs; "
                                   f"called at {fn._created_at}")
        if not needs_grad:
            fn.__dict__.pop("_to_save", None)
            out = Tensor(y)
            if cls.is_view and isinstance(inputs[0], Tensor):
                _share_base(out, inputs[0])
            if _tracer is not None:
                _tracer(cls, inputs, options, out)
            return out
        grad_mode.check_not_inference(tensors, fn.name)
        fn._next = [(x.grad_fn or x) if isinstance(x, Tensor) and x.requires_grad else None
                    for x in inputs]
        fn._input_meta = [(x.shape, x.dtype) if nxt is not None else None
                          for x, nxt in zip(inputs, fn._next)]
        fn._output_meta = (y.shape, y.dtype)      # for tinyres.viz
        out = Tensor(y, requires_grad=True, _grad_fn=fn)
        if cls.is_view and isinstance(inputs[0], Tensor):
            _share_base(out, inputs[0])
        fn._saved = [fn._record(a, tensors, y, out) for a in fn.__dict__.pop("_to_save", ())]
        if fn.composite is not None:      # kept for the gradient's graph (see _composite_backward)
            fn._composite_inputs = [fn._record(x.array, tensors, None, None) if isinstance(x, Tensor) else x
                                    for x in inputs]
            fn._options = options
        if _tracer is not None:
            _tracer(cls, inputs, options, out)
        return out

    def _record(self, array, tensors, y, out):
        """A ``_Saved`` for ``array``: one of the input tensors, the output, or a constant
        (None stays None: what no gradient asked for is not kept)."""
        if array is None:
            return None
        if array is y:
            return _Saved(y, grad_fn=_SELF, counter=out._version_counter)
        for t in tensors:
            if t.array is array:
                if not t.requires_grad:
                    return _Saved(array, counter=t._version_counter)
                if t.grad_fn is None:
                    return _Saved(array, leaf=t, counter=t._version_counter)
                return _Saved(array, grad_fn=t.grad_fn, counter=t._version_counter)
        return _Saved(array)

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.name}Backward>"


_SELF = object()     # a saved output's grad_fn: the node itself (kept as a marker: no cycle)


def sum_to(x, shape):
    """Sum the array ``x`` down to ``shape`` -- the adjoint of broadcasting ``shape`` to ``x.shape``."""
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1)
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


def _topological_order(roots, stop=()):
    """Function nodes reachable from ``roots``, each after every node that consumes its output
    (not going past the nodes in ``stop``)."""
    order, visited, stack = [], set(), [(root, False) for root in reversed(roots)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)     # post-order: after every node that feeds it
            continue
        if node in visited:
            continue
        if node._released:
            raise RuntimeError(
                f"backward: trying to backward through the graph a second time (node {node.name}); "
                "its saved tensors were freed after the first backward. Pass retain_graph=True "
                "to the first backward() if you need to go through it twice.")
        visited.add(node)
        stack.append((node, True))
        if node not in stop:
            stack.extend((nxt, False) for nxt in node._next if isinstance(nxt, Function) and nxt not in visited)
    order.reverse()   # consumers first
    return order


def _run_hooks(hooks, grad):
    for hook in list(hooks.values()):
        result = hook(grad)
        if result is not None:
            if not isinstance(result, Tensor):          # torch: TypeError, "expected Variable, but hook returned 'int'"
                raise TypeError(f"hook: expected a Tensor of shape {grad.shape} (or None), but hook returned "
                                f"'{type(result).__name__}'")
            if result.shape != grad.shape:
                raise RuntimeError(f"hook: expected a Tensor of shape {grad.shape} (or None), got {result.shape}")
            grad = result
    return grad


def _accumulate(leaf, grad, create_graph, hooks=True):
    """leaf.grad += grad (a copy of it when it is the first: never alias another array; the
    copy goes into the leaf's ``_grad_slot`` when an optimizer gave it one), after the
    leaf's hooks (unless ``hooks`` is False: they ran already)."""
    if hooks and leaf._hooks:
        grad = _run_hooks(leaf._hooks, grad)
    if not create_graph:
        grad = grad.detach()
        slot = leaf._grad_slot
        if leaf.grad is None and slot is not None and slot[0] is leaf.array:
            slot[1][...] = grad.array                 # the copy, into the optimizer's flat buffer
            leaf.grad = Tensor(slot[1])
        elif leaf.grad is None:
            leaf.grad = Tensor(grad.array.astype(leaf.dtype, copy=True))
        else:
            leaf.grad.array = leaf.grad.array + grad.array.astype(leaf.dtype, copy=False)
    else:
        leaf.grad = grad if leaf.grad is None else leaf.grad + grad
    if leaf._post_accumulate_hooks:
        for hook in list(leaf._post_accumulate_hooks.values()):
            result = hook(leaf)
            if result is not None:
                raise TypeError(f"post accumulate grad hook: expected None, but hook returned "
                                f"'{type(result).__name__}'")


def _checked_backward(node, gy, create_graph):
    """``node.backward(gy)`` as a tuple of Tensors, checked: a gradient for each input that
    needs one (trailing non-Tensor inputs such as options may be left out), each with its
    input's shape and dtype (so a float32 graph stays float32 all the way back)."""
    once = getattr(type(node).backward, "once_differentiable", False)
    if once and create_graph and hasattr(node, "backward_graph"):
        gxs = node.backward_graph(gy)         # the same gradient in tensor ops, for create_graph only
    elif once and create_graph and "_composite_inputs" in node.__dict__:
        return _composite_backward(node, gy)
    elif once and create_graph:
        raise RuntimeError(f"{node.name}.backward is once_differentiable (written on arrays): the graph of "
                           "its gradient cannot be built, so create_graph=True cannot go through it")
    else:
        if once and "_composite_inputs" in node.__dict__:
            node._check_versions(node._composite_inputs)     # the array backward reads them as they are now
        gxs = node.backward(gy.array if once else gy)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    needed = 1 + max(i for i, meta in enumerate(node._input_meta) if meta is not None)
    if not needed <= len(gxs) <= len(node._next):
        raise RuntimeError(f"{node.name}.backward: expected {needed} to {len(node._next)} gradients "
                           f"(one per input), got {len(gxs)}")
    out = []
    for i, (gx, meta) in enumerate(zip(gxs, node._input_meta)):
        if gx is not None and not isinstance(gx, Tensor):
            if create_graph:
                raise RuntimeError(f"{node.name}.backward returned an array for input {i}: with "
                                   "create_graph=True every gradient must be a Tensor made by tinyres ops "
                                   "(or mark the backward @once_differentiable)")
            gx = Tensor(gx)
        if gx is not None and meta is not None and (gx.shape, gx.dtype) != meta:
            raise RuntimeError(f"{node.name}.backward: expected a gradient of shape {meta[0]} and "
                               f"dtype {meta[1]} for input {i}, got shape {gx.shape}, dtype {gx.dtype}")
        out.append(gx)
    return out


def _composite_backward(node, gy):
    """The gradient of an op whose fast backward is array code, as a graph: the op written
    with differentiable ops (its ``composite``), on its saved inputs, differentiated with
    ``create_graph``.  The first derivative is the same; the second comes from the composite."""
    inputs, seen = list(node._restore(node._composite_inputs)), set()
    for i, x in enumerate(inputs):         # one tensor at two places (bce(x, x)): each place its own
        if isinstance(x, Tensor):          # target, or each would get the sum of both gradients
            if id(x) in seen:
                with enable_grad():
                    inputs[i] = _Alias.apply(x)
            seen.add(id(x))
    with enable_grad():
        out = node.composite(*inputs, **node._options)
        wanted = [x for x, nxt in zip(inputs, node._next) if isinstance(x, Tensor) and nxt is not None]
        gs = iter(_grad_of(out, wanted, gy))
    return [next(gs) if isinstance(x, Tensor) and nxt is not None else None for x, nxt in zip(inputs, node._next)]


class _Alias(Function):
    """y = x, another tensor (a view): a second place for one tensor in a composite.  gx = gy."""

    is_view = True

    def forward(self, x):
        return x.view()

    def backward(self, gy):
        return gy


def _grad_of(out, inputs, gy):
    """grad(out, inputs, gy, create_graph=True), walking no further than the inputs: zeros for unused."""
    targets = {(x.grad_fn or x): None for x in inputs}
    if out.grad_fn is None or not out.requires_grad:
        return [x * 0 for x in inputs]
    _walk([out.grad_fn], {out.grad_fn: gy}, True, True, targets, stop_at_targets=True)
    return [x * 0 if targets[x.grad_fn or x] is None else targets[x.grad_fn or x] for x in inputs]


def _as_gradient(gradient, tensor, op):
    """``gradient`` (None for a scalar, a Tensor, an array or a number) as a Tensor like ``tensor``."""
    if gradient is None:
        if tensor.array.size != 1:
            raise RuntimeError(
                f"{op}: grad can be implicitly created only for scalar outputs; the output "
                f"has shape {tensor.shape}. Pass a gradient of that shape.")
        with backend.on_device(tensor.device):     # made where it is used: a fill, no host copy
            return Tensor(backend.get_array_module(tensor).ones(tensor.shape, dtype=tensor.dtype))
    elif isinstance(gradient, Tensor):
        if gradient.device != tensor.device:
            raise RuntimeError(f"{op}: expected the gradient on {tensor.device} like the "
                               f"output, got it on {gradient.device}")
        if gradient.shape != tensor.shape:
            raise RuntimeError(f"{op}: expected a gradient of shape {tensor.shape} like the "
                               f"output, got shape {gradient.shape}")
        return gradient if gradient.dtype == tensor.dtype else gradient.to(tensor.dtype)
    elif not hasattr(gradient, "shape"):
        gradient = numpy.asarray(gradient)
    grad = backend.to_device(gradient, tensor.device)
    if grad.shape != tensor.shape:
        raise RuntimeError(f"{op}: expected a gradient of shape {tensor.shape} like the "
                           f"output, got shape {grad.shape}")
    with backend.on_device(tensor.device):     # a cast is a kernel: on the output's GPU
        return Tensor(grad.astype(tensor.dtype, copy=False))


def _walk(roots, grads, retain_graph, create_graph, targets=None, stop_at_targets=False):
    """The backward pass from ``roots`` (nodes) with their gradients ``grads`` (node -> Tensor).

    Without ``targets``: gradients reach the leaves' ``.grad``.  With ``targets`` (a dict
    from a leaf tensor or a node to None): nothing is accumulated; the gradient that
    reaches each target is put in the dict, and only nodes that lead to a target run
    (``stop_at_targets``: none beyond a target node either -- when no target lies above another)."""
    order = _topological_order(roots, targets if stop_at_targets else ())
    needed = None
    if targets is not None:
        needed = set()
        for node in reversed(order):        # inputs' side first
            if node in targets or any(n in needed or (n in targets and not isinstance(n, Function))
                                      for n in node._next if n is not None):
                needed.add(node)
    leaves = {}      # leaf -> the sum of its incoming gradients: its hooks see the sum, once (torch)
    for node in order:
        gy = grads.pop(node, None)
        if stop_at_targets and node in targets:       # an input of a composite: its gradient, nothing more
            targets[node] = gy
            continue
        if needed is not None and node not in needed:    # leads to no input of grad(): not run, kept
            continue
        if gy is not None and node._tensor_hooks:
            gy = _run_hooks(node._tensor_hooks, gy)
        if gy is not None and node._retained is not None:
            tensor = node._retained()
            if tensor is not None:           # accumulates over backward calls, as a leaf's
                g = gy if create_graph else gy.detach()
                tensor.grad = g if tensor.grad is None else tensor.grad + g
        if targets is not None and node in targets:
            targets[node] = gy
        if gy is not None:
            with backend.on_device(node._device):    # where the node's inputs live
                gxs = _checked_backward(node, gy, create_graph)
                if create_graph:
                    gxs = _connected(node, gxs)
                if grad_mode._anomaly_mode and _finite([gy.array]) and not _finite(
                        [gx.array for gx, nxt in zip(gxs, node._next) if nxt is not None and gx is not None]):
                    raise AnomalyError(f"{node.name}.backward returned NaN or Inf from a finite gradient; "
                                       f"the op was called at {getattr(node, '_created_at', '(outside detect_anomaly)')}")
                for nxt, gx in zip(node._next, gxs):
                    if nxt is None or gx is None:
                        continue
                    if isinstance(nxt, Function):
                        grads[nxt] = grads[nxt] + gx if nxt in grads else gx
                    elif targets is None:
                        leaves[nxt] = leaves[nxt] + gx if nxt in leaves else gx
                    elif nxt in targets:
                        targets[nxt] = gx if targets[nxt] is None else targets[nxt] + gx
        if not retain_graph:
            if _holds_arrays(node):
                node.__dict__.clear()      # the op's saved arrays and the engine's fields alike
                node._released = True
                node._next = ()
            node._freed = True         # (one that kept only shapes can run again, as in torch)
    for leaf, g in leaves.items():     # every edge into each leaf is in: its hooks, then .grad
        with backend.on_device(leaf.device):
            _accumulate(leaf, g, create_graph)
    if targets is not None and not stop_at_targets:
        for leaf, g in targets.items():
            if not isinstance(leaf, Function) and g is not None and leaf._hooks:
                targets[leaf] = _run_hooks(leaf._hooks, g)


def _holds_arrays(node):
    """Whether ``node`` keeps arrays for its backward (saved tensors, a mask, indices): what a
    backward without ``retain_graph`` frees.  A node that keeps only shapes and options (add,
    reshape, sum) is left as it is and can run again, as torch's nodes without saved tensors."""
    state = node.__dict__
    if "_composite_inputs" in state or any(s is not None for s in state.get("_saved", ())):
        return True
    return any(name[0] != "_" and _is_array(value) for name, value in state.items())


def _is_array(value):
    if isinstance(value, _PLAIN):
        return False
    if isinstance(value, (tuple, list)):
        return any(_is_array(v) for v in value)
    return isinstance(value, Tensor) or hasattr(value, "__array__")     # NumPy/CuPy arrays and NumPy scalars


_PLAIN = (bool, int, float, str, type(None), slice, type(Ellipsis))


def _connected(node, gxs):
    """Under ``create_graph``: the gradients of ``node``, each one made of constants alone (the
    upstream gradient needs none, and the op read only a mask, indices or a sign: relu, max
    pool, |x|) connected, with a zero derivative, to what the op's backward read of the graph
    -- as torch's, whose backward reads the input or output itself.  So differentiating such
    a gradient again gives zeros (torch's answer), not "does not require grad".

    What the backward read: its saved tensors that are in the graph (``save_for_backward``),
    and its inputs when the backward is array code (``once_differentiable``: what it kept came
    from them) or the op says ``_backward_reads_input``."""
    if not node._connects_gradients or all(gx is None or gx.requires_grad for gx in gxs):
        return gxs
    sources = {}
    if node._backward_reads_input or getattr(type(node).backward, "once_differentiable", False):
        for nxt, meta in zip(node._next, node._input_meta):
            if nxt is not None:
                sources[id(nxt)] = (nxt, meta)
    for s in node._saved:
        place = s and (s.leaf if s.leaf is not None else node if s.grad_fn is _SELF else s.grad_fn)
        if place is not None:
            sources[id(place)] = (place, (tuple(s.array.shape), s.array.dtype))
    if not sources:
        return gxs
    return [gx if gx is None or gx.requires_grad else _ZeroDerivative.attach(gx, list(sources.values()), node._device)
            for gx in gxs]


class _ZeroDerivative(Function):
    """g' = g, where g is a gradient made of constants and the sources are what its op's backward
    read (``_connected``): dg'/dsource = 0, so the gradient wrt each source is zeros (a constant,
    as torch's ``zeros_like``).  Made by the engine, not applied to tensors."""

    @classmethod
    def attach(cls, g, sources, device):
        fn = cls()
        fn._device, fn._saved = device, []
        fn._next = [place for place, _ in sources]
        fn._input_meta = [meta for _, meta in sources]
        fn._output_meta = (g.shape, g.dtype)
        return Tensor(g.array, requires_grad=True, _grad_fn=fn)

    def backward(self, gy):
        xp = backend.get_array_module(gy.array)
        return tuple(Tensor(xp.zeros(shape, dtype=dtype)) for shape, dtype in self._input_meta)


Function._tensor_hooks = {}      # hooks of the tensor this node made (register_hook); per node once set
Function._retained = None        # a weak reference to that tensor, when it retains its grad


def run_backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """The engine behind ``Tensor.backward`` and ``tinyres.autograd.backward``.  With
    ``inputs`` only those tensors' ``.grad`` get the gradient (a non-leaf's too, as torch)."""
    if isinstance(tensors, Tensor):
        tensors, grad_tensors = [tensors], [grad_tensors]
    tensors = list(tensors)
    if isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    grad_tensors = [None] * len(tensors) if grad_tensors is None else list(grad_tensors)
    retain_graph = create_graph if retain_graph is None else retain_graph
    if inputs is not None:
        _backward_to(tensors, grad_tensors, retain_graph, create_graph, inputs)
        return
    roots, grads = [], {}
    for tensor, gradient in zip(tensors, grad_tensors):
        if not tensor.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and does not have a grad_fn")
        grad = _as_gradient(gradient, tensor, "backward")
        if tensor.grad_fn is None:      # a leaf
            with backend.on_device(tensor.device):
                _accumulate(tensor, grad, create_graph)
            continue
        roots.append(tensor.grad_fn)
        grads[tensor.grad_fn] = grads[tensor.grad_fn] + grad if tensor.grad_fn in grads else grad
    if roots:
        _with_callbacks(lambda: _walk(roots, grads, retain_graph, create_graph), create_graph)


def _backward_to(tensors, grad_tensors, retain_graph, create_graph, inputs):
    """``backward(inputs=...)``: the gradients of ``inputs`` alone, added to their ``.grad``."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty.")
    for tensor in tensors:
        if not tensor.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and does not have a grad_fn")
    for x, g in zip(inputs, grad(tensors, inputs, grad_tensors, retain_graph, create_graph, allow_unused=True)):
        if g is None:
            continue
        if x.grad_fn is None:
            _accumulate(x, g, create_graph, hooks=False)      # (its hooks ran in grad())
        else:
            x.grad = g if x.grad is None else x.grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as ``torch.autograd.grad``:
    a tuple with one Tensor per input (None for an unused one, with ``allow_unused``; zeros
    with ``materialize_grads``).  Nothing is accumulated into any ``.grad``.  With
    ``create_graph`` the gradients have a graph of their own and can be differentiated again.
    With ``is_grads_batched`` the first dimension of every grad_output is a batch: the result
    is one vector-Jacobian product per batch entry, stacked (torch computes them with vmap,
    tinyres one backward pass each).  ``only_inputs`` is torch's deprecated argument, ignored
    (with torch's FutureWarning when it is False)."""
    if not only_inputs:
        warnings.warn("grad: only_inputs argument is deprecated and is ignored now (defaults to True). To "
                      "accumulate gradient for other parts of the graph, please use tinyres.autograd.backward.",
                      FutureWarning, stacklevel=2)
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    allow_unused = bool(allow_unused) or materialize_grads
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if not inputs:
        raise RuntimeError("grad: `inputs` argument to `grad()` cannot be empty.")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad: grad_outputs should have the length of outputs: got {len(grad_outputs)} "
                           f"and {len(outputs)}")
    retain_graph = create_graph if retain_graph is None else retain_graph
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: expected inputs to be Tensors, input {i} is a {type(x).__name__}")
        if not x.requires_grad:
            raise RuntimeError(f"grad: one of the differentiated Tensors (input {i}) does not require grad")
    if is_grads_batched:
        result = _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph)
    else:
        result = _grad(outputs, inputs, grad_outputs, retain_graph, create_graph)
    for i, (x, g) in enumerate(zip(inputs, result)):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: one of the differentiated Tensors (input {i}, shape {x.shape}) appears to "
                               "not have been used in the graph. Set allow_unused=True if this is the desired behavior.")
    if materialize_grads:           # zeros of the input's shape (batched too, as torch)
        result = [_zeros_like(x) if g is None else g for x, g in zip(inputs, result)]
    return tuple(result)


def _zeros_like(x):
    with backend.on_device(x.device):
        return Tensor(backend.get_array_module(x.array).zeros(x.shape, dtype=x.dtype))


def _grad(outputs, inputs, grad_outputs, retain_graph, create_graph):
    """One backward pass from ``outputs`` to ``inputs``: each input's gradient, None if unused."""
    targets = {(x.grad_fn or x): None for x in inputs}
    roots, grads = [], {}
    for k, (y, gradient) in enumerate(zip(outputs, grad_outputs)):
        if not y.requires_grad:
            raise RuntimeError(f"grad: element {k} of tensors does not require grad and does not have a grad_fn")
        g = _as_gradient(gradient, y, "grad")
        if y.grad_fn is None:                 # an output that is itself an input
            if y in targets:
                targets[y] = g if targets[y] is None else targets[y] + g
            continue
        roots.append(y.grad_fn)
        grads[y.grad_fn] = grads[y.grad_fn] + g if y.grad_fn in grads else g
    if roots:
        _with_callbacks(lambda: _walk(roots, grads, retain_graph, create_graph, targets), create_graph)
    return [g if g is None or create_graph else g.detach()
            for g in (targets[x.grad_fn or x] for x in inputs)]


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph):
    """``_grad`` once per entry of the grad_outputs' first dimension, the results stacked."""
    for k, g in enumerate(grad_outputs):
        if not isinstance(g, Tensor) or g.ndim != outputs[k].ndim + 1 or g.shape[1:] != outputs[k].shape:
            shape = g.shape if isinstance(g, Tensor) else type(g).__name__
            raise RuntimeError(f"grad: with is_grads_batched=True, expected grad_outputs[{k}] of shape "
                               f"(B, *{outputs[k].shape}), got {shape}")
    sizes = {g.shape[0] for g in grad_outputs}
    if len(sizes) != 1:
        raise RuntimeError(f"grad: with is_grads_batched=True, expected one batch size, got {sorted(sizes)}")
    n = sizes.pop()
    rows = [_grad(outputs, inputs, [g[b] for g in grad_outputs], retain_graph or b < n - 1, create_graph)
            for b in range(n)]
    return [None if any(r[i] is None for r in rows) else _stack([r[i] for r in rows])
            for i in range(len(inputs))]


_stack = None       # ops.stack, differentiable: installed by ops (the engine imports nothing above it)


_callbacks = None      # during a backward pass: what to run when it ends
_tracer = None         # while tracing (tinyres.onnx): called as _tracer(cls, inputs, options, out) per op


@contextlib.contextmanager
def tracing(record):
    """Call ``record(function_class, inputs, options, output)`` for every op applied in the
    block (how ``tinyres.onnx.export`` sees a model's forward as a list of ops)."""
    global _tracer
    if _tracer is not None:
        raise RuntimeError("tracing: a trace is already running (traces do not nest)")
    _tracer = record
    try:
        yield
    finally:
        _tracer = None


def _with_callbacks(walk, create_graph):
    global _callbacks
    outer, _callbacks = _callbacks, []
    try:
        with enable_grad() if create_graph else no_grad():
            walk()
            for callback in _callbacks:     # queued by ops during the walk: now every gradient is in
                callback()
    finally:
        _callbacks = outer


def queue_callback(callback):
    """Run ``callback()`` once when the backward pass under way ends, after every gradient of
    it has been accumulated (torch's ``queue_callback``).  For ops whose backward needs the
    whole pass done: DistributedDataParallel averages the gradients this way."""
    if _callbacks is None:
        raise RuntimeError("queue_callback: only an op's backward, during a backward pass, can queue a callback")
    if callback not in _callbacks:
        _callbacks.append(callback)


# ---------------------------------------------------------------------- Tensor's autograd methods

def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

    Gradients add up over calls: zero them (``optimizer.zero_grad()``) between steps.  With
    ``create_graph`` the gradients get a graph of their own (for second derivatives);
    ``retain_graph`` then defaults to True.
    """
    run_backward(self, gradient, retain_graph, create_graph, inputs)


def _register_hook(self, hook):
    """``hook(grad)`` runs when the gradient with respect to this tensor is computed; a
    Tensor it returns replaces the gradient.  Returns a handle: ``handle.remove()``."""
    if not self.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is None:
        if "_hooks" not in self.__dict__:
            self._hooks = {}
        return add_hook(self._hooks, hook)
    node = self.grad_fn
    if "_tensor_hooks" not in node.__dict__:
        node._tensor_hooks = {}
    return add_hook(node._tensor_hooks, hook)


def _register_post_accumulate_grad_hook(self, hook):
    """``hook(tensor)`` runs on a leaf after its ``.grad`` has been accumulated by a backward
    (not by ``autograd.grad``, which accumulates nothing); it returns None.  Returns a handle."""
    if not self.requires_grad:
        raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a tensor that "
                           "doesn't require gradient")
    if self.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if "_post_accumulate_hooks" not in self.__dict__:
        self._post_accumulate_hooks = {}
    return add_hook(self._post_accumulate_hooks, hook)


def _retain_grad(self):
    """Keep the gradient of this non-leaf tensor in ``.grad`` at the next backward."""
    if not self.requires_grad:
        raise RuntimeError("retain_grad: can't retain_grad on Tensor that has requires_grad=False")
    if self.grad_fn is not None:
        self.grad_fn._retained = weakref.ref(self)
        self._retains_grad = True           # for good: a backward frees the node, not this


Tensor.backward = _tensor_backward
Tensor.register_hook = _register_hook
Tensor.retain_grad = _retain_grad
Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook
Tensor.retains_grad = property(lambda self: self.__dict__.get("_retains_grad", False))
