"""ONNX export, as ``torch.onnx.export``: a model's forward pass written out as an ONNX graph.

    tinyres.onnx.export(model, torch_like_example, "resnet20.onnx")   # then onnxruntime, TensorRT, a browser

How: the model runs once in evaluation mode on ``args`` while the engine reports every op
it applies (``tinyres.core.engine.tracing``).  Each op becomes ONNX nodes (a conv becomes
``Conv``, an eval-mode batch norm ``BatchNormalization``, ...); a tensor that no traced op
made is a constant: the model's parameters and buffers become initializers under their
``state_dict`` names.  As with torch's tracer, Python control flow is frozen at the
example's path.  To catch a model whose graph would silently differ for other inputs (a
value computed outside tinyres's ops, a shape that hard-codes the batch), the forward is
traced a second time on a different random input and the two graphs must agree.

Shapes are those of the example, except the batch axis with ``dynamic_axes`` (torch's
argument: ``{"input": {0: "batch"}, "output": {0: "batch"}}``; only axis 0 of the inputs
and outputs can be dynamic).  Needs the ``onnx`` package (``pip install 'tinyres[onnx]'``);
``onnxruntime`` runs the file.  Operator set 17 (or 13 to 20, ``opset_version``; from 18 on
``ReduceMean`` takes its axes as an input, as ``ReduceSum`` does since 13).
"""
import numpy as np

from .core import backend
from .core.engine import tracing
from .core.ops import commit_inplace
from .core.grad_mode import no_grad
from .core.tensor import Tensor
from .serialization import atomic_write

OPSET = 17                  # written by default
OPSETS = range(13, 21)      # each means the same for every op written (Squeeze's axes an input since 13)


class ExportError(RuntimeError):
    """A model (or an op in it) that cannot be written as ONNX; the message says which and why."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("tinyres.onnx needs the onnx package: pip install onnx (or pip install "
                          "'tinyres[onnx]'; add onnxruntime to run the exported file)") from None
    return onnx


class _Graph:
    """The nodes, initializers and value names of one trace."""

    def __init__(self, constant_names, dynamic_batch, opset=OPSET):
        self.opset = opset
        self.nodes, self.initializers = [], {}
        self.names = {}                    # id(Tensor) -> the ONNX value holding it
        self.versions = {}                 # id(Tensor) -> its version when it got that name
        self.keep = []                     # every traced Tensor, alive, so no id is reused
        self.constant_names = constant_names
        self.dynamic_batch = dynamic_batch
        self.counter = 0

    def fresh(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def constant(self, array, hint="const"):
        array = np.asarray(backend.to_numpy(array))
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def bind(self, x, name, version=None):
        """``x`` holds the ONNX value ``name`` from now on (as of its ``version``, default its current one)."""
        self.names[id(x)] = name
        self.versions[id(x)] = x._version if version is None else version
        self.keep.append(x)

    def traced(self, x):
        """The ONNX name of a traced tensor, refused if its memory was written in place since it
        got that name by something the trace did not see (the graph would read its old value)."""
        if x._version != self.versions[id(x)]:
            raise ExportError(f"tinyres.onnx.export: a tensor of shape {tuple(x.shape)} was written in place in a "
                              "way the graph cannot follow (through a view of it, or of the tensor it is a view "
                              "of, or by an in-place op that does not report its write to the trace), so the "
                              "exported graph would read its old value; use the out-of-place op")
        return self.names[id(x)]

    def value(self, x, dtype=None):
        """The ONNX name of an op's input: a traced value, a parameter, or a new constant."""
        if isinstance(x, Tensor):
            if id(x) in self.names:
                return self.traced(x)
            name = self.constant_names.get(id(x)) or self.constant_names.get(id(x.array))
            if name is not None:
                self.initializers.setdefault(name, np.asarray(backend.to_numpy(x.array)))
                self.bind(x, name)
                return name
            return self.constant(x.array)
        if backend.is_device_array(x) or isinstance(x, np.ndarray):
            name = self.constant_names.get(id(x))
            if name is not None:
                self.initializers.setdefault(name, np.asarray(backend.to_numpy(x)))
                return name
            return self.constant(x)
        return self.constant(np.asarray(x, dtype=dtype))

    def node(self, op_type, inputs, hint=None, **attributes):
        output = self.fresh(hint or op_type.lower())
        self.nodes.append((op_type, list(inputs), output, attributes))
        return output

    def ints(self, values, hint="shape"):
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)


def _pads(pairs):
    """((top, bottom), (left, right)) -> ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = pairs
    return [int(top), int(left), int(bottom), int(right)]


def _conv(g, args, opts, out):
    x, w, b = args
    inputs = [g.value(x), g.value(w)] + ([g.value(b)] if b is not None else [])
    return g.node("Conv", inputs, kernel_shape=list(w.shape[2:]), strides=list(opts["stride"]),
                  pads=_pads(opts["padding"]), dilations=list(opts["dilation"]), group=int(opts["groups"]))


def _batch_norm(g, args, opts, out):
    x, w, b, mean, var, training, _, eps = args
    if training or mean is None:
        raise ExportError("batch_norm: only evaluation-mode batch norm with running statistics can be exported "
                          "(a BatchNorm with track_running_stats=False normalizes by the batch even in eval mode)")
    channels = x.shape[1]
    scale = g.value(w) if w is not None else g.constant(np.ones(channels, x.dtype))
    shift = g.value(b) if b is not None else g.constant(np.zeros(channels, x.dtype))
    return g.node("BatchNormalization", [g.value(x), scale, shift, g.value(mean), g.value(var)],
                  epsilon=float(eps))


def _leaky_relu(g, args, opts, out):
    x, slope = args[0], float(args[1])
    if slope == 0:
        return g.node("Relu", [g.value(x)])
    return g.node("LeakyRelu", [g.value(x)], alpha=slope)


def _max_pool(g, args, opts, out):
    x, kernel, stride, padding, dilation = args
    return g.node("MaxPool", [g.value(x)], kernel_shape=list(kernel), strides=list(stride), pads=_pads(padding),
                  dilations=list(dilation))


def _avg_pool(g, args, opts, out):
    x, kernel, stride, padding, divisor = args
    y = g.node("AveragePool", [g.value(x)], kernel_shape=list(kernel), strides=list(stride), pads=_pads(padding),
               count_include_pad=1)
    factor = kernel[0] * kernel[1] / np.asarray(backend.to_numpy(divisor), dtype=np.float64)
    if np.all(factor == 1):
        return y
    return g.node("Mul", [y, g.constant(factor.astype(out.dtype))])


def _adaptive_avg_pool(g, args, opts, out):
    x, a_h, a_w = args                 # y = a_h @ x @ a_w.T
    rows = g.node("MatMul", [g.constant(a_h), g.value(x)])
    return g.node("MatMul", [rows, g.constant(np.asarray(backend.to_numpy(a_w)).T)])


def _reduce(op_type):
    def emit(g, args, opts, out):
        x, axes, keepdim = args[0], args[1], args[-1]
        axes = list(range(x.ndim)) if axes is None else [int(a) for a in np.atleast_1d(axes)]
        if op_type == "ReduceMean" and g.opset < 18:
            return g.node(op_type, [g.value(x)], axes=axes, keepdims=int(keepdim))
        return g.node(op_type, [g.value(x), g.ints(axes, "axes")], keepdims=int(keepdim))
    return emit


def _reshape(g, args, opts, out):
    x = args[0]
    shape = list(out.shape)
    if g.dynamic_batch:
        if not out.shape or not x.shape or out.shape[0] != x.shape[0]:
            raise ExportError(f"reshape: {tuple(x.shape)} -> {tuple(out.shape)} mixes the batch axis with others, "
                              "so the graph cannot take another batch size (export without dynamic_axes)")
        shape[0] = 0                   # ONNX: 0 copies the input's size on that axis
    return g.node("Reshape", [g.value(x), g.ints(shape)])


def _linear(g, args, opts, out):
    x, w, b = args
    if x.ndim == 2:
        inputs = [g.value(x), g.value(w)] + ([g.value(b)] if b is not None else [])
        return g.node("Gemm", inputs, transB=1)
    y = g.node("MatMul", [g.value(x), g.node("Transpose", [g.value(w)], perm=[1, 0])])
    return y if b is None else g.node("Add", [y, g.value(b)])


def _elementwise(op_type):
    def emit(g, args, opts, out):
        return g.node(op_type, [g.value(a, out.dtype) for a in args if a is not None])
    return emit


def _softmax(op_type):
    def emit(g, args, opts, out):
        return g.node(op_type, [g.value(args[0])], axis=int(args[1]))
    return emit


def _getitem(g, args, opts, out):
    """Basic indexing: Slice for the slices and ints, Squeeze for the ints, Unsqueeze for the Nones."""
    x, key = args
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = key.index(Ellipsis)
        rest = x.ndim - sum(k is not None for k in key if k is not Ellipsis)
        key = key[:at] + (slice(None),) * rest + key[at + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = position = 0              # the axis of x, and of the output, that the next entry is about
    for k in key:
        if k is None:
            unsqueeze.append(position)
            position += 1
            continue
        if isinstance(k, (int, np.integer)):
            k = int(k) + (x.shape[axis] if k < 0 else 0)
            starts.append(k), ends.append(k + 1), axes.append(axis), steps.append(1), squeeze.append(axis)
        elif isinstance(k, slice):
            start, stop, step = k.indices(x.shape[axis])
            if (start, stop, step) != (0, x.shape[axis], 1):
                stop = -2**62 if step < 0 and stop < 0 else stop
                starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
            position += 1
        else:
            raise ExportError(f"indexing: only ints, slices, None and ... can be exported, got {type(k).__name__} "
                              f"in {key!r}")
        axis += 1
    y = source = g.value(x)
    if axes:
        y = g.node("Slice", [y, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes"),
                             g.ints(steps, "steps")])
    if squeeze:
        y = g.node("Squeeze", [y, g.ints(squeeze, "axes")])
    if unsqueeze:
        y = g.node("Unsqueeze", [y, g.ints(unsqueeze, "axes")])
    return y if y != source else g.node("Identity", [y])


def _pad(g, args, opts, out):
    x, pairs, value = args
    pairs = list(pairs) + [(0, 0)] * (x.ndim - len(pairs))
    pads = [int(a) for a, _ in pairs] + [int(b) for _, b in pairs]
    return g.node("Pad", [g.value(x), g.ints(pads, "pads"), g.constant(np.asarray(value, out.dtype))],
                  mode="constant")


def _cat(g, args, opts, out):
    return g.node("Concat", [g.value(a) for a in args], axis=int(opts["axis"]))


def _permute(g, args, opts, out):
    return g.node("Transpose", [g.value(args[0])], perm=[int(d) for d in args[1]])


def _clamp(g, args, opts, out):
    """Number bounds: Clip (its bounds must be scalars).  Tensor bounds: Max then Min, fed by the
    bounds' values (a parameter bound reads its initializer) -- min(max(x, lo), hi), as Clamp."""
    x, lo, hi = args
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        y = g.value(x)
        if lo is not None:
            y = g.node("Max", [y, g.value(lo)])
        if hi is not None:
            y = g.node("Min", [y, g.value(hi)])
        return y
    bound = (lambda v: "" if v is None else g.constant(np.asarray(v, out.dtype)))
    return g.node("Clip", [g.value(x), bound(lo), bound(hi)])


def _pow(g, args, opts, out):
    return g.node("Pow", [g.value(args[0]), g.value(args[1], out.dtype)])


def _identity(g, args, opts, out):
    return g.node("Identity", [g.value(args[0])])


def _written_in_place(g, args, opts, out):
    """``x.add_(y)``, ``x += y``, ``x.clamp_(...)``...: the op was traced out of place, then its
    result written into x (``ops.commit_inplace``): x holds the result's value from now on."""
    x, result = args
    name = g.value(result)
    if result.dtype != x.dtype:
        from onnx import helper
        name = g.node("Cast", [name], to=helper.np_dtype_to_tensor_dtype(np.dtype(x.dtype)))
    return name


def _broadcast(g, args, opts, out):
    return g.node("Expand", [g.value(args[0]), g.ints(args[1])])


HANDLERS = {
    "Conv2dFunction": _conv, "BatchNormFunction": _batch_norm, "LeakyReLU": _leaky_relu,
    "MaxPool2dFunction": _max_pool, "AvgPool2dFunction": _avg_pool, "AdaptiveAvgPool2dFunction": _adaptive_avg_pool,
    "Mean": _reduce("ReduceMean"), "Sum": _reduce("ReduceSum"), "Reshape": _reshape, "LinearFunction": _linear,
    "Add": _elementwise("Add"), "Sub": _elementwise("Sub"), "Mul": _elementwise("Mul"), "Div": _elementwise("Div"),
    "Neg": _elementwise("Neg"), "Exp": _elementwise("Exp"), "Log": _elementwise("Log"), "Sqrt": _elementwise("Sqrt"),
    "Abs": _elementwise("Abs"), "Sigmoid": _elementwise("Sigmoid"), "Tanh": _elementwise("Tanh"),
    "Maximum": _elementwise("Max"), "MatMul": _elementwise("MatMul"), "Pow": _pow, "PowTensor": _elementwise("Pow"),
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"), "GetItem": _getitem,
    "ConstantPad": _pad, "Cat": _cat, "Permute": _permute, "Clamp": _clamp, "HardtanhFunction": _clamp,
    "Clone": _identity, "DropoutFunction": _identity, "BroadcastTo": _broadcast,
}


def _constant_names(model):
    names = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t is not None:
            names.setdefault(id(t), name)
            names.setdefault(id(t.array), name)
    return names


def _trace(model, inputs, input_names, dynamic_batch, opset=OPSET):
    g = _Graph(_constant_names(model), dynamic_batch, opset)
    for t, name in zip(inputs, input_names):
        g.bind(t, name)

    def record(cls, args, options, out):
        if cls is commit_inplace:           # an in-place write: out (the written tensor) holds args[1]
            g.bind(out, _written_in_place(g, args, options, out))
            return
        handler = HANDLERS.get(cls.__name__)
        if handler is None:
            raise ExportError(f"tinyres.onnx.export: the op {cls.__name__} has no ONNX form yet (supported: "
                              f"{', '.join(sorted(HANDLERS))})")
        name = handler(g, args, options, out)
        g.bind(out, name)
        if "out" in options and isinstance(args[0], Tensor):     # computed into the input, whose version
            g.bind(args[0], name, args[0]._version + 1)          # the caller bumps next (relu_)

    with no_grad(), tracing(record):
        outputs = model(*inputs)
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    for i, y in enumerate(outputs):
        if not isinstance(y, Tensor) or id(y) not in g.names:
            raise ExportError(f"tinyres.onnx.export: output {i} of the model is not computed from its input by "
                              "tinyres ops")
        g.traced(y)
    return g, outputs


def _structure(g):
    """What must agree between two traces: the ops, their wiring and attributes, the constants."""
    nodes = [(op, inputs, attrs) for op, inputs, _, attrs in g.nodes]
    return nodes, {k: (v.shape, v.dtype.str, v.tobytes()) for k, v in g.initializers.items()}


def export(model, args, f, *, input_names=None, output_names=None, opset_version=None, dynamic_axes=None,
           verbose=False, export_params=True, keep_initializers_as_inputs=False, do_constant_folding=True,
           dynamo=True, external_data=True, optimize=True):
    """Write ``model``'s forward on ``args`` (a Tensor or a tuple of them) to ``f`` (a path) as ONNX.

    ``input_names`` / ``output_names``: the graph's value names (default ``input``,
    ``output``, or ``input_0``... for several); ``dynamic_axes``: axis 0 of inputs and
    outputs may be named dynamic (see the module).  ``opset_version``: 13 to 20 (default
    17; the ops written mean the same in each).  ``export_params=False`` leaves the
    weights out: they become graph inputs, under their ``state_dict`` names;
    ``keep_initializers_as_inputs=True`` lists the stored weights among the inputs too.
    torch's ``do_constant_folding``, ``dynamo``, ``external_data`` and ``optimize`` are
    accepted and change nothing (the traced graph has no constant subgraph to fold, and
    is always written whole).  The model is traced in evaluation mode and put back in the
    mode it was in.  Returns the ``onnx.ModelProto``.
    """
    onnx = _onnx()
    from onnx import helper, numpy_helper
    opset = OPSET if opset_version is None else opset_version
    if opset not in OPSETS:
        raise ValueError(f"tinyres.onnx.export: writes operator sets {OPSETS[0]} to {OPSETS[-1]}, "
                         f"got opset_version={opset_version}")
    inputs = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError("tinyres.onnx.export: args must be a Tensor or a tuple of Tensors, got "
                        f"{type(args).__name__}")
    input_names = list(input_names or (["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]))
    if len(input_names) != len(inputs):
        raise ValueError(f"tinyres.onnx.export: {len(input_names)} input_names for {len(inputs)} inputs")
    dynamic = _dynamic(dynamic_axes or {})
    was_training = model.training
    model.eval()
    try:
        g, outputs = _trace(model, inputs, input_names, bool(dynamic), opset)
        rng = np.random.default_rng(0)
        other = tuple(Tensor(backend.to_device(rng.standard_normal(((t.shape[0] + 1) if dynamic else t.shape[0],)
                                                                  + tuple(t.shape[1:])).astype(t.dtype), t.device))
                      if t.dtype.kind == "f" else t for t in inputs)
        g2, _ = _trace(model, other, input_names, bool(dynamic), opset)
    finally:
        model.train(was_training)
    if _structure(g) != _structure(g2):
        raise ExportError("tinyres.onnx.export: the traced graph differs for another input of the same shape"
                          + (" (or another batch size)" if dynamic else "") + ": the model computes something "
                          "from its input outside tinyres's ops, or branches on its values, which a trace cannot "
                          "capture")
    output_names = list(output_names or (["output"] if len(outputs) == 1 else
                                         [f"output_{i}" for i in range(len(outputs))]))
    if len(output_names) != len(outputs):
        raise ValueError(f"tinyres.onnx.export: {len(output_names)} output_names for {len(outputs)} outputs")
    unknown = set(dynamic) - set(input_names) - set(output_names)
    if unknown:
        raise ValueError(f"tinyres.onnx.export: dynamic_axes names {sorted(unknown)}, which are not inputs or outputs")
    nodes = [helper.make_node(op, ins, [out], **attrs) for op, ins, out, attrs in g.nodes]
    for y, name in zip(outputs, output_names):
        nodes.append(helper.make_node("Identity", [g.names[id(y)]], [name]))

    def info(name, t):
        shape = [dynamic.get(name, "batch") if dynamic and i == 0 else n for i, n in enumerate(t.shape)]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), shape)
    params = set(model.state_dict())          # the weights; the other initializers are the graph's constants
    listed = [k for k in g.initializers if keep_initializers_as_inputs or (k in params and not export_params)]
    graph = helper.make_graph(
        nodes, type(model).__name__,
        [info(n, t) for n, t in zip(input_names, inputs)]
        + [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(g.initializers[k].dtype),
                                         g.initializers[k].shape) for k in listed],
        [info(n, t) for n, t in zip(output_names, outputs)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in g.initializers.items()
                     if export_params or k not in params])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tinyres")
    proto.ir_version = helper.find_min_ir_version_for(proto.opset_import)   # the oldest that holds the opset
    onnx.checker.check_model(proto)
    if verbose:
        print(helper.printable_graph(graph))
    _write(proto.SerializeToString(), f)
    return proto


def _dynamic(dynamic_axes):
    """``{name: axis-0 label}`` from torch's dynamic_axes (dict or list of axes per name)."""
    labels = {}
    for name, axes in dynamic_axes.items():
        axes = axes if isinstance(axes, dict) else {a: "batch" for a in axes}
        if set(axes) != {0}:
            raise ValueError(f"tinyres.onnx.export: only axis 0 (the batch) can be dynamic, got {name!r}: "
                             f"{sorted(axes)}")
        labels[name] = axes[0]
    return labels


def _write(data, f):
    if hasattr(f, "write"):
        f.write(data)
    else:
        atomic_write(f, lambda file: file.write(data))
