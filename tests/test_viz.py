"""tinyres.viz.graph: the computation graph as Graphviz DOT, and drawing it."""
import numpy as np
import pytest

import tinyres
from tinyres import viz
from tinyres.nn import functional as F


def small_graph():
    x = tinyres.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    w = tinyres.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    return x, w, F.relu(x @ w).sum()


def test_the_dot_source_has_every_op_leaf_and_arrow():
    _, _, loss = small_graph()
    source = viz.graph(loss).source
    assert source.startswith("digraph tinyres {") and source.rstrip().endswith("}")
    for label in ('label="MatMul\\n(3, 2) float32"', 'label="ReLU\\n(3, 2) float32"', 'label="Sum\\n() float32"',
                  'label="leaf\\n(3, 4) float32"', 'label="leaf\\n(4, 2) float32"'):
        assert label in source, label
    assert source.count(" -> ") == 5          # two leaves into MatMul, MatMul -> ReLU -> Sum -> out


def test_relu_is_labelled_relu_and_a_leaky_relu_shows_its_slope():
    """One Function (LeakyReLU) computes both; the box says which one the user called."""
    x = tinyres.randn(3, requires_grad=True)
    assert 'label="ReLU\\n' in viz.graph(F.relu(x)).source and "Leaky" not in viz.graph(F.relu(x)).source
    assert 'label="LeakyReLU(0.2)\\n' in viz.graph(F.leaky_relu(x, 0.2)).source


def test_after_backward_with_retain_graph_leaves_show_their_gradient_norm():
    x, w, loss = small_graph()
    loss.backward(retain_graph=True)
    source = viz.graph(loss).source
    norm = float(np.sqrt((x.grad.numpy().astype(np.float64) ** 2).sum()))
    assert f"|grad| = {norm:.4g}" in source and "fillcolor" in source


@pytest.mark.parametrize("make, error, match", [
    (lambda: tinyres.ones(2), ValueError, "has no graph"),
    (lambda: [1, 2], TypeError, "expected a Tensor, got list"),
])
def test_what_has_no_graph_says_so(make, error, match):
    with pytest.raises(error, match=match):
        viz.graph(make())


def test_a_freed_graph_says_to_draw_it_before_backward():
    _, _, loss = small_graph()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed by backward"):
        viz.graph(loss)


def test_render_without_graphviz_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        viz.graph(small_graph()[2]).render(tmp_path / "g.svg")


def test_render_hands_the_source_to_dot(monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n# a stand-in for Graphviz: copy stdin to the -o file\nwhile [ "$1" != "-o" ]; do shift; done\n'
                    'cat > "$2"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(viz.shutil, "which", lambda name: str(fake))
    graph = viz.graph(small_graph()[2])
    out = graph.render(tmp_path / "g.svg")
    assert out.read_text() == graph.source
