"""docs/figures/double_backward.png: the graph of a gradient, drawn by tinyres.viz.

    python docs/figures/double_backward.py       (needs Graphviz's `dot`)

g = dy/dx for y = sum(exp(x) * w), built with create_graph=True: the backward's own ops
(two Mul nodes) and, through the saved output of Exp, the forward's Exp node itself.
"""
from pathlib import Path

import tinyres

x = tinyres.randn(3, requires_grad=True)
w = tinyres.randn(3, requires_grad=True)
y = (x.exp() * w).sum()
g, = tinyres.autograd.grad(y, x, create_graph=True)
print("wrote", tinyres.viz.graph(g).render(Path(__file__).resolve().parent / "double_backward.png"))
