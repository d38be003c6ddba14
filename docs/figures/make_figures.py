"""The block diagrams of docs/resnet.md, drawn from the tinyres models themselves.

Regenerate every figure (from the repository root; needs matplotlib, the `plot` or `test` extra):

    python docs/figures/make_figures.py

Each diagram comes from running one block of a real model (``models.resnet50().layer2[0]``
...) on a small input and recording which layer ran, in what order, and on which tensor.
So the names, channel counts and strides in the pictures are those of ``tinyres.models``:
they cannot drift from the code.  ``block_diagram`` is the data, ``draw`` the picture.
"""
import functools
from collections import namedtuple
from pathlib import Path

import tinyres
from tinyres import models, nn

HERE = Path(__file__).resolve().parent

Box = namedtuple("Box", "name kind text stride")
Diagram = namedtuple("Diagram", "title caption in_channels out_channels branch shortcut shortcut_from after_add")
# branch: the residual branch's layers in call order; shortcut: its layers ([] for the identity);
# shortcut_from: the index of the branch layer whose output the shortcut takes (None: the block's
# input); after_add: the layers applied to the sum.

# figure name: (title, the model and block, a caption)
FIGURES = {
    "basic_block": ("BasicBlock", ("resnet18", "layer1", 0),
                    "resnet18/34 and the CIFAR ResNets; ReLU after the addition"),
    "bottleneck": ("Bottleneck", ("resnet50", "layer1", 1),
                   "1x1 reduce, 3x3, 1x1 expand x4; ReLU after the addition"),
    "bottleneck_v1_5": ("Bottleneck v1.5, the first block of a stage", ("resnet50", "layer2", 0),
                        "v1.5 (torchvision, tinyres) strides the 3x3; the 2015 paper's v1 strides the first 1x1"),
    "preact_block": ("PreActBlock (2016), the first block of a stage", ("preact_resnet18", "layer2", 0),
                     "BN and ReLU before each conv; the shortcut takes the pre-activated input; nothing after the addition"),
}


@functools.lru_cache(maxsize=None)
def get_model(name):
    return models.get_model(name)


def get_block(model_name, stage, index):
    return getattr(get_model(model_name), stage)[index]


def describe(name, module):
    """A Box for one layer: what it is, its channels and its stride, read from the module."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        text = f"{kh}x{kw} conv, {module.in_channels}→{module.out_channels}"
        stride = module.stride[0]
        text += f", stride {stride}" if stride != 1 else ""
        text += f", {module.groups} groups" if module.groups != 1 else ""
        return Box(name, "conv", text, stride)
    if isinstance(module, nn.BatchNorm2d):
        return Box(name, "bn", f"BN({module.num_features})", 1)
    if isinstance(module, nn.ReLU):
        return Box(name, "relu", "ReLU", 1)
    return Box(name, "other", type(module).__name__, getattr(module, "stride", 1))


def trace(block, x):
    """Run ``block`` on ``x`` (eval mode, no graph); (name, module, input, output) of each leaf
    layer, in the order they ran."""
    calls = []
    leaves = [(name, m) for name, m in block.named_modules() if not list(m.children())]

    def recording(name, m, forward):
        def run(inp):
            out = forward(inp)
            calls.append((name, m, inp, out))
            return out
        return run

    for name, m in leaves:
        vars(m)["forward"] = recording(name, m, m.forward)
    try:
        with tinyres.no_grad():
            out = block.eval()(x)
    finally:
        for _, m in leaves:
            vars(m).pop("forward", None)
    return calls, out


def input_channels(block):
    first = next(m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))
    return first.in_channels if isinstance(first, nn.Conv2d) else first.num_features


def block_diagram(title, block, caption=""):
    """Which layers make the residual branch, the shortcut and what follows the addition,
    found by following the tensors: a layer whose input no layer made comes after the ``+``."""
    x = tinyres.zeros(1, input_channels(block), 8, 8)
    calls, out = trace(block, x)
    made_by = {id(x): None}                      # tensor -> index in branch of the layer that made it
    branch, shortcut, after_add, shortcut_from = [], [], [], None
    for name, module, inp, y in calls:
        box = describe(name, module)
        if name.startswith("downsample"):
            if not shortcut:
                shortcut_from = made_by[id(inp)]
            shortcut.append(box)
        elif id(inp) in made_by:
            branch.append(box)
            made_by[id(y)] = len(branch) - 1
        else:
            after_add.append(box)
    return Diagram(title, caption, x.shape[1], out.shape[1], branch, shortcut, shortcut_from, after_add)


def diagrams():
    """Every figure's Diagram, by file name."""
    return {name: block_diagram(f"{title}: {m}.{stage}[{i}]", get_block(m, stage, i), caption)
            for name, (title, (m, stage, i), caption) in FIGURES.items()}


COLOURS = {"conv": "#9ecae1", "bn": "#fdd49e", "relu": "#c7e9c0", "other": "#dddddd"}
BOX_W, BOX_H, SHORTCUT_X = 3.2, 0.66, 4.0


def box(ax, x, y, b):
    """A layer: its name and what it is; a strided layer gets a red edge."""
    from matplotlib.patches import FancyBboxPatch
    strided = {"ec": "#c0392b", "lw": 2.2} if b.stride != 1 else {"ec": "#333333", "lw": 1}
    ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.04",
                                fc=COLOURS[b.kind], **strided))
    text = b.name if b.text.lower() == b.name else f"{b.name}\n{b.text}"
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, linespacing=1.3)


def arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.2})


def line(ax, points):
    xs, ys = zip(*points)
    ax.plot(xs, ys, color="#333333", lw=1.2)


def draw_main_column(ax, d, plus, bottom):
    """Input, the branch's boxes, the (+), what follows it, output; an arrow between each two."""
    from matplotlib.patches import Circle
    ax.text(0, 0, f"x: {d.in_channels} channels", ha="center", va="center", fontsize=10)
    for row, b in enumerate(d.branch, 1):
        box(ax, 0, -row, b)
    ax.add_patch(Circle((0, -plus), 0.2, fc="white", ec="#333333", lw=1.2))
    ax.text(0, -plus, "+", ha="center", va="center", fontsize=13)
    for row, b in enumerate(d.after_add, plus + 1):
        box(ax, 0, -row, b)
    ax.text(0, -bottom, f"out: {d.out_channels} channels", ha="center", va="center", fontsize=10)
    for row in range(bottom):
        top_gap = 0.2 if row in (0, plus) else BOX_H / 2 + 0.04
        low_gap = 0.2 if row + 1 in (plus, bottom) else BOX_H / 2 + 0.04
        arrow(ax, (0, -row - top_gap), (0, -row - 1 + low_gap))


def draw_shortcut(ax, d, plus):
    """From the block's input (or the branch layer it takes) to the right, down through the
    shortcut's boxes, spread evenly, and into the (+)."""
    start = 0 if d.shortcut_from is None else d.shortcut_from + 1
    start_x = 1.25 if start == 0 else BOX_W / 2 + 0.04
    rows = [start + (k + 1) * (plus - start) / (len(d.shortcut) + 1) for k in range(len(d.shortcut))]
    line(ax, [(start_x, -start), (SHORTCUT_X, -start), (SHORTCUT_X, -(rows[0] - BOX_H / 2 if rows else plus))])
    for k, (row, b) in enumerate(zip(rows, d.shortcut)):
        box(ax, SHORTCUT_X, -row, b)
        end = rows[k + 1] - BOX_H / 2 if k + 1 < len(rows) else plus
        line(ax, [(SHORTCUT_X, -row - BOX_H / 2 - 0.04), (SHORTCUT_X, -end)])
    arrow(ax, (SHORTCUT_X, -plus), (0.2, -plus))
    if not d.shortcut:
        ax.text(SHORTCUT_X + 0.12, -(start + plus) / 2, "identity", ha="left", va="center", fontsize=9,
                style="italic")


def draw(d, path):
    """One diagram, top to bottom, the shortcut on the right; written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plus = len(d.branch) + 1                     # rows: 0 the input, 1.. the branch, then the addition
    bottom = plus + len(d.after_add) + 1
    fig, ax = plt.subplots(figsize=(7.2, 0.62 * bottom + 1.4))
    draw_main_column(ax, d, plus, bottom)
    draw_shortcut(ax, d, plus)
    ax.set_title(d.title, fontsize=11)
    strided = any(b.stride != 1 for b in d.branch + d.shortcut)
    caption = d.caption + ("\nred edge: a strided layer" if strided else "")
    ax.text(SHORTCUT_X / 2, -bottom - 0.6, caption, ha="center", va="top", fontsize=8.5)
    ax.set_xlim(-BOX_W / 2 - 0.3, SHORTCUT_X + BOX_W / 2 + 0.3)
    ax.set_ylim(-bottom - 0.9, 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    for name, d in diagrams().items():
        draw(d, HERE / f"{name}.png")
        print(f"wrote {HERE / name}.png")


if __name__ == "__main__":
    main()
