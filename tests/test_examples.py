"""Every script in examples/ runs with --quick: exit status 0 and its key line of output.

Each runs in a subprocess from a temporary folder (so nothing is written into the repo),
with the repository root on PYTHONPATH (the package need not be installed) and one BLAS
thread: on these tiny batches a second thread gains nothing, and on a busy machine its
spinning made the runs 2-6 times slower.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# script, extra arguments, a line its output must contain (a regular expression)
CASES = [
    ("mnist_resnet.py", ["--out", "run"], r"^test accuracy: [01]\.\d{4}$"),
    ("cifar10_resnet20.py", ["--out", "run"], r"^validation accuracy: [01]\.\d{4} \(the paper.s test accuracy: 0\.9125\)$"),
    ("finetune_torch_weights.py", [], r"^backbone unchanged \(120 tensors\); head changed: fc\.weight, fc\.bias$"),
    ("multilabel.py", [], r"^exact-match accuracy: [01]\.\d{4}$"),
    ("gradcheck_tour.py", [], r"^(\d+) of \1 layer checks passed$"),
    ("degradation.py", [], r"^\| resnet20 \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d \|$"),
    ("data_parallel.py", [], r"^test accuracy: [01]\.\d{4} on 512 digits$"),
    ("grad_cam.py", [], r"^  airplane: predicted \w+$"),
    ("gradient_penalty.py", [], r"^penalty 0\.1 \| [01]\.\d{4} \| \d+\.\d{4}$"),
    ("newton_hvp.py", [], r"^Newton-CG after \d+ steps: loss 0\.\d{6}, training accuracy [01]\.\d{4}$"),
    ("gradient_flow.py", [], r"^plain20: init loss \d\.\d{3}, first/last layer grad norm \S+/\S+; after 2 steps loss"),
]


def run_example(script, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_ran(result, pattern):
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(pattern, result.stdout, re.MULTILINE), output


@pytest.mark.parametrize("script, args, pattern", CASES, ids=[c[0] for c in CASES])
def test_example_quick(script, args, pattern, tmp_path):
    assert_ran(run_example(script, args, tmp_path), pattern)
    if "--out" in args:   # the Trainer's run folder is where --out says
        assert {"checkpoint.npz", "metrics.jsonl"} <= {p.name for p in (tmp_path / "run").iterdir()}



@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_examples_build_on_the_library_not_the_command_line(script):
    """The command line is parsing and printing; what an example shares with it (datasets,
    recipes, the training flags) comes from tinyres.recipes."""
    cli = r"^\s*(from tinyres\.cli |from tinyres import cli\b|import tinyres\.cli)"
    assert not re.search(cli, (EXAMPLES / script).read_text(), re.MULTILINE)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_quick(tmp_path):
    assert_ran(run_example("fashion_mnist.py", [], tmp_path),
               r"^test accuracy: [01]\.\d{4} \(target 0\.90: (NOT )?reached\)$")


def test_every_example_is_tested():
    tested = {c[0] for c in CASES} | {"fashion_mnist.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_the_parameter_count_in_fashion_mnist_help_is_resnet8s():
    import tinyres
    count = sum(p.numel() for p in tinyres.models.resnet8(in_channels=1).parameters())
    assert f"resnet8 ({count:,} parameters with 1 input channel)" in (EXAMPLES / "fashion_mnist.py").read_text()


def test_degradation_resumes_a_stopped_run_where_it_left_off(tmp_path):
    first = run_example("degradation.py", ["--out", "run"], tmp_path)
    assert_ran(first, r"^\| plain20 \|")
    again = run_example("degradation.py", ["--out", "run", "--resume"], tmp_path)
    assert_ran(again, r"^plain20: resumed after epoch 1$")
    table = [line for line in first.stdout.splitlines() if line.startswith("| plain20")]
    assert table and table[0] in again.stdout.splitlines()           # the finished run, not a new one
    assert {"degradation.png", "histories.json", "plain20", "resnet20"} <= {p.name for p in (tmp_path / "run").iterdir()}
    other = run_example("degradation.py", ["--out", "run", "--resume", "--lr", "0.05"], tmp_path)
    assert other.returncode != 0 and "was trained with" in other.stderr and "'lr': 0.05" in other.stderr, other.stderr


def test_the_degradation_table_in_resnet_md_is_the_committed_run():
    """docs/resnet.md's table, row by row, from docs/results/degradation/histories.json."""
    import json
    histories = json.loads((ROOT / "docs/results/degradation/histories.json").read_text())
    page = (ROOT / "docs/resnet.md").read_text()
    for name, label in [("plain20", "plain-20"), ("plain56", "plain-56"), ("resnet20", "ResNet-20"), ("resnet56", "ResNet-56")]:
        last = histories[name][-1]
        minutes = sum(row["seconds"] for row in histories[name]) / 60
        row = (f"| {label} | {100 * (1 - last['train_accuracy']):.1f} | {100 * (1 - last['test_accuracy']):.1f} "
               f"| {minutes:.0f} |")
        assert row in page.splitlines(), row


def gradient_flow_rows(results):
    """docs/resnet.md's gradient-flow table, one row per model, from gradient_flow.json."""
    labels = {"plain20": "plain-20", "plain56": "plain-56", "resnet20": "ResNet-20", "resnet56": "ResNet-56"}
    rows = []
    for name, r in results["models"].items():
        base = name.removesuffix("-nobn")
        label = labels[base] + (" without BN" if name.endswith("-nobn") else "")
        init = r["init"]["layers"]
        cells = [label, f"{r['init']['loss']:.2f}", f"{init[0]['grad_norm']:.3g} / {init[-1]['grad_norm']:.3g}"]
        if "after_epoch" in r:
            after = r["after_epoch"]["layers"]
            cells += [f"{sum(r['train_losses'][-10:]) / 10:.2f}",
                      f"{after[0]['grad_norm']:.3g} / {after[-1]['grad_norm']:.3g}"]
        else:
            cells += [f"diverged (step {r['diverged_at_step']})", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def test_the_gradient_flow_table_in_resnet_md_is_the_committed_run():
    import json
    results = json.loads((ROOT / "docs/results/gradient-flow/gradient_flow.json").read_text())
    page = (ROOT / "docs/resnet.md").read_text().splitlines()
    for row in gradient_flow_rows(results):
        assert row in page, row


def test_the_gradient_flow_figure_says_how_many_steps_were_run(monkeypatch, tmp_path):
    """The committed run trained one epoch, 389 steps: the figure's titles give the count
    (drawn from the committed JSON, as the committed figure was), and docs/resnet.md says so."""
    import json
    plt = pytest.importorskip("matplotlib.pyplot")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import gradient_flow
    committed = json.loads((ROOT / "docs/results/gradient-flow/gradient_flow.json").read_text())
    results = committed["models"]
    titles = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, *a, **k: titles.extend(ax.get_title() for ax in fig.axes))
    assert gradient_flow.steps_run(results) == 389 == -(-committed["settings"]["images"] // 128)
    gradient_flow.plot(results, tmp_path / "gradient_flow.png")
    assert "with batch norm, after 389 steps" in titles and "without batch norm, after 389 steps" in titles
    section = (ROOT / "docs/resnet.md").read_text().split("## Gradient flow, measured")[1].split("\n## ")[0]
    assert "one epoch" in section and "389 steps" in section and "after 100 steps" not in section
