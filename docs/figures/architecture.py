"""docs/figures/architecture.png: tinyres's layers and the imports between them, read off the code.

    python docs/figures/architecture.py        (from the repository root; needs matplotlib)

The layers are the table of tests/test_architecture.py (the test that fails on an import
that runs up a layer or in a circle); the arrows count the imports between two layers in
the package as it is.  What the figure shows is also written into the PNG's metadata
(``figure_data()`` as JSON, under "Description"), and tests/test_figures.py compares it
with the code: a figure left stale after the layers change fails there.
"""
import collections
import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST = HERE.parents[1] / "tests" / "test_architecture.py"


def load_graph():
    spec = importlib.util.spec_from_file_location("test_architecture", TEST)
    arch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arch)
    return arch


def layer_table():
    """[(layer name, [modules in it]) low to high] and {(from layer, to layer): imports}."""
    arch = load_graph()
    members = collections.defaultdict(list)
    for module in sorted(arch.MODULES):
        members[arch.layer_of(module)].append(module)
    edges = collections.Counter()
    for module, targets in arch.GRAPH.items():
        for t in targets:
            if t in arch.MODULES and arch.layer_of(t) != arch.layer_of(module):
                edges[arch.layer_of(module), arch.layer_of(t)] += 1
    return [(name, members[i]) for i, (name, _) in enumerate(arch.LAYERS)], edges


def short(modules, everything):
    """Module names without the ``tinyres.`` prefix, a package folded to ``pkg/`` where all of
    it (of ``everything``, the package's modules) is among ``modules``."""
    names = []
    for m in modules:
        parts = m.split(".")
        name = ".".join(parts[1:]) or "tinyres"
        for end in range(2, len(parts) + 1):
            package = ".".join(parts[:end])
            inside = {e for e in everything if e == package or e.startswith(package + ".")}
            if len(inside) > 1 and inside <= set(modules):
                name = "/".join(parts[1:end]) + "/"
                break
        if name not in names:
            names.append(name)
    return ", ".join(names)


def figure_data():
    """What the figure shows, low to high: each layer's name and modules, and how many imports
    run from each layer to the one below it (0: no arrow)."""
    layers, edges = layer_table()
    everything = [m for _, modules in layers for m in modules]
    return {"layers": [[name, short(modules, everything)] for name, modules in layers],
            "imports_to_the_layer_below": [edges[i + 1, i] for i in range(len(layers) - 1)]}


def draw(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = figure_data()
    layers = data["layers"]
    fig, ax = plt.subplots(figsize=(9, 0.62 * len(layers) + 0.6))
    for i, (name, modules) in enumerate(layers):
        ax.add_patch(plt.Rectangle((0, i), 1, 0.78, facecolor="#e8eef7", edgecolor="#4a6fa5"))
        ax.text(0.015, i + 0.52, name, fontsize=10, weight="bold", va="center")
        ax.text(0.015, i + 0.2, modules, fontsize=7.5, va="center", color="#333")
    for b, count in enumerate(data["imports_to_the_layer_below"]):
        if count:             # neighbours: one short arrow with the count
            ax.annotate("", xy=(0.93, b + 0.78), xytext=(0.93, b + 1), arrowprops=dict(arrowstyle="->", color="#4a6fa5"))
            ax.text(0.945, b + 0.87, str(count), fontsize=7, va="center")
    ax.text(1.0, -0.35, "arrows: imports between neighbouring layers (how many); no import points up, none runs in a circle",
            fontsize=7.5, ha="right", color="#555")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.5, len(layers))
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Description": json.dumps(data)})
    plt.close(fig)


if __name__ == "__main__":
    draw(HERE / "architecture.png")
    print("wrote", HERE / "architecture.png")
