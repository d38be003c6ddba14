"""See the graph: ``tinyres.viz.graph(tensor)`` as Graphviz DOT.

    loss = (x @ w).relu().sum()
    g = tinyres.viz.graph(loss)          # before backward: backward frees the graph
    print(g.source)                      # DOT text: paste it into any Graphviz viewer
    g.render("graph.svg")                # needs the `dot` program (apt-get install graphviz)

Boxes are ops (the Function that made a tensor -- ReLU for the LeakyReLU node of slope 0
that computes it -- with that tensor's shape and dtype),
ellipses are leaf tensors that require grad (parameters, inputs): filled when ``.grad``
is set, labelled with the gradient's norm.  Arrows follow the data, from inputs to the
op that used them, so the backward pass runs against them.
"""
import shutil
import subprocess
from pathlib import Path

from ..core import backend
from ..core.engine import Function

__all__ = ["graph", "Graph"]


class Graph:
    """A computation graph as Graphviz DOT (``source``); ``render(path)`` draws it."""

    def __init__(self, source):
        self.source = source

    def __str__(self):
        return self.source

    def render(self, path):
        """Write the graph as an image, its format from the suffix of ``path`` (.svg, .png,
        .pdf), with Graphviz's ``dot`` program; returns the path."""
        path = Path(path)
        fmt = path.suffix.lstrip(".") or "svg"
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError("viz.graph: drawing needs Graphviz's `dot` program, which is not installed "
                               "(apt-get install graphviz, brew install graphviz, or conda install graphviz); "
                               ".source holds the DOT text meanwhile")
        done = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=self.source.encode(),
                              capture_output=True)
        if done.returncode:
            raise RuntimeError(f"viz.graph: dot failed to write {path}: {done.stderr.decode().strip()}")
        return path


def _describe(shape, dtype):
    return f"{tuple(shape)} {dtype}"


def _grad_norm(tensor):
    xp = backend.get_array_module(tensor.grad.array)
    return float(xp.sqrt((tensor.grad.array.astype("float64") ** 2).sum()))


def _op_label(node):
    """The op's name as a reader knows it: ReLU is a LeakyReLU node with slope 0 (one
    Function serves both), so the slope decides what the box says."""
    if node.name == "LeakyReLU":
        slope = float(getattr(node, "slope", getattr(node, "negative_slope", 0.0)))
        return "ReLU" if slope == 0 else f"LeakyReLU({slope:g})"
    return node.name


def graph(tensor, grad_norms=True):
    """The graph that computed ``tensor``, as a ``Graph`` (DOT).  Call it before
    ``backward()`` (which frees the graph) or after ``backward(retain_graph=True)``.
    With ``grad_norms``, leaves that have a ``.grad`` show its norm."""
    from ..core.tensor import Tensor
    if not isinstance(tensor, Tensor):
        raise TypeError(f"viz.graph: expected a Tensor, got {type(tensor).__name__}")
    if tensor.grad_fn is None:
        raise ValueError("viz.graph: the tensor has no graph (it is a leaf, or was computed without grad)")
    if tensor.grad_fn.freed:
        raise RuntimeError("viz.graph: the graph was freed by backward(); draw it before, or call "
                           "backward(retain_graph=True)")
    ids, lines, edges = {}, [], []

    def name(obj):
        if id(obj) not in ids:
            ids[id(obj)] = f"n{len(ids)}"
            if isinstance(obj, Function):
                shape, dtype = getattr(obj, "output_meta", (None, None))
                where = "" if shape is None else "\\n" + _describe(shape, dtype)
                lines.append(f'  {ids[id(obj)]} [shape=box, label="{_op_label(obj)}{where}"];')
            else:
                label = f"leaf\\n{_describe(obj.shape, obj.dtype)}"
                style = ""
                if obj.grad is not None:
                    style = ', style=filled, fillcolor="#dde8f5"'
                    if grad_norms:
                        label += f"\\n|grad| = {_grad_norm(obj):.4g}"
                lines.append(f'  {ids[id(obj)]} [shape=ellipse, label="{label}"{style}];')
        return ids[id(obj)]

    stack, seen = [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for i, source in enumerate(node.next):
            if source is None:
                continue
            edges.append(f"  {name(source)} -> {name(node)};")
            if isinstance(source, Function):
                stack.append(source)
        name(node)
    root = f'  out [shape=plaintext, label="{_describe(tensor.shape, tensor.dtype)}"];'
    edges.append(f"  {name(tensor.grad_fn)} -> out;")
    return Graph("\n".join(["digraph tinyres {", "  rankdir=LR;"] + lines + [root] + edges + ["}"]) + "\n")
