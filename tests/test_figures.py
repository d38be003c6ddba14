"""docs/figures/make_figures.py: the block diagrams are read off the models, and say what the
models do (names, channels, strides, where the shortcut starts, what follows the addition);
docs/figures/architecture.png shows the import layers as they are."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "make_figures.py"
spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
make_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_figures)


@pytest.fixture(scope="module")
def diagrams():
    return make_figures.diagrams()


def names(boxes):
    return [b.name for b in boxes]


def texts(boxes):
    return {b.name: b.text for b in boxes}


def test_every_figure_is_committed(diagrams):
    for name in diagrams:
        assert (SCRIPT.parent / f"{name}.png").stat().st_size > 1000, name


def test_basic_block_two_3x3_convs_identity_shortcut_relu_after_the_sum(diagrams):
    d = diagrams["basic_block"]
    assert names(d.branch) == ["conv1", "bn1", "relu", "conv2", "bn2"]
    assert texts(d.branch)["conv1"] == "3x3 conv, 64→64"
    assert (d.shortcut, d.shortcut_from, names(d.after_add)) == ([], None, ["relu"])
    assert (d.in_channels, d.out_channels) == (64, 64)


def test_bottleneck_reduces_then_expands_four_times(diagrams):
    d = diagrams["bottleneck"]
    assert names(d.branch) == ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"]
    convs = texts(d.branch)
    assert (convs["conv1"], convs["conv2"], convs["conv3"]) == ("1x1 conv, 256→64", "3x3 conv, 64→64", "1x1 conv, 64→256")
    assert (d.shortcut, names(d.after_add)) == ([], ["relu"])


def test_v1_5_strides_the_3x3_and_projects_the_shortcut(diagrams):
    d = diagrams["bottleneck_v1_5"]
    assert [b.name for b in d.branch if b.stride != 1] == ["conv2"]
    assert texts(d.branch)["conv2"] == "3x3 conv, 128→128, stride 2"
    assert [(b.name, b.text) for b in d.shortcut] == [("downsample.0", "1x1 conv, 256→512, stride 2"),
                                                     ("downsample.1", "BN(512)")]
    assert (d.shortcut_from, d.in_channels, d.out_channels) == (None, 256, 512)


def test_preact_block_shortcut_takes_the_preactivated_input_and_nothing_follows_the_sum(diagrams):
    d = diagrams["preact_block"]
    assert names(d.branch) == ["bn1", "relu", "conv1", "bn2", "relu", "conv2"]
    assert d.branch[d.shortcut_from].name == "relu" and d.shortcut_from == 1
    assert [(b.name, b.text) for b in d.shortcut] == [("downsample", "1x1 conv, 64→128, stride 2")]
    assert d.after_add == []


def test_draw_writes_a_png(diagrams, tmp_path):
    pytest.importorskip("matplotlib")
    make_figures.draw(diagrams["basic_block"], tmp_path / "basic.png")
    assert (tmp_path / "basic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_architecture_figure_shows_the_layers_as_the_code_has_them():
    """docs/figures/architecture.png keeps what it shows in its metadata (architecture.py writes
    it); that must be the import graph as it is now, else the figure is stale."""
    image = pytest.importorskip("PIL.Image")
    script = SCRIPT.parent / "architecture.py"
    spec = importlib.util.spec_from_file_location("architecture_figure", script)
    architecture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(architecture)
    shown = json.loads(image.open(script.with_suffix(".png")).text.get("Description", "{}"))
    assert shown == architecture.figure_data(), "the figure is stale: run python docs/figures/architecture.py"
