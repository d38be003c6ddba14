"""The exercises' autograder, tested both ways: each correct solution in
tests/exercise_solutions/ passes every check, and a planted mistake in it fails -- on the
gradient it breaks, with the message a learner needs (which gradient, by how much)."""
import re
import shutil
from pathlib import Path

import pytest

from tinyres import exercises
from tinyres.cli import run as cli_run

SOLUTIONS = Path(__file__).resolve().parent / "exercise_solutions"

# exercise: (the text of the correct solution, the planted mistake, what must fail, what must still pass)
PLANTED = {
    "relu": ("return gy * cache", "return gy * cache * 1.001",      # off by 0.1%: still caught
             ["gx is wrong"], []),
    "linear": ("gy.sum(axis=0)", "gy.mean(axis=0)", ["gb is wrong"], ["gx relative error", "gw relative error"]),
    "softmax_cross_entropy": ("return loss, glogits / n", "return loss, glogits",   # forgot the mean's 1/N
                              ["glogits vs tinyres: glogits is wrong", "finite differences of your loss: glogits is wrong"],
                              ["loss vs tinyres's F.cross_entropy (mean over the batch): loss relative error"]),
    "im2col": ("cols[:, i, j] =", "cols[:, j, i] =", ["cols is wrong"], []),
    "col2im": ("] += cols", "] = cols", ["stride 1, padding 1 vs tinyres: x is wrong",
                                          "stride 1, padding 1 vs finite differences of sum(cols * im2col(x)): x is wrong"],
               ["(1, 3, 4, 6), 2x2 kernel, stride 2, padding 0 vs tinyres: x relative error"]),   # no overlap there
    "conv2d": ("gy.sum(axis=1)", "gy.mean(axis=1)", ["gb is wrong"], ["gx relative error", "gw relative error"]),
    "max_pool": ("] += np.where", "] = np.where",                   # overlapping windows overwrite each other
                 ["backward (kernel_size=3, stride=2, padding=1) vs tinyres: gx is wrong"],
                 ["backward (kernel_size=2, stride=2, padding=0) vs tinyres: gx relative error"]),
    "batch_norm": (" - x_hat * (g * x_hat).mean(axis=AXES, keepdims=True)", "",   # the variance's term dropped
                   ["vs tinyres: gx is wrong", "vs finite differences of your forward: gx is wrong"],
                   ["gw relative error", "gb relative error"]),
    "basic_block": ('"x": g + gshortcut', '"x": g',                 # the shortcut's gradient forgotten
                    ["vs tinyres: g['x'] is wrong", "finite differences of your forward: g['x'] is wrong"],
                    ["g['conv1.weight'] relative error", "g['bn2.bias'] relative error"]),
}


def planted(tmp_path, name, old, new):
    """A copy of the solutions folder in which ``name``'s solution has ``old`` replaced by ``new``."""
    folder = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, folder)
    path = folder / f"{name}.py"
    text = path.read_text()
    assert text.count(old) == 1, f"the planted mistake's anchor {old!r} is not once in {name}.py"
    path.write_text(text.replace(old, new))
    return path


def test_there_are_at_least_eight_exercises_each_with_a_solution_and_a_planted_mistake():
    names = exercises.list_exercises()
    assert len(names) >= 8
    assert {"relu", "linear", "softmax_cross_entropy", "im2col", "col2im", "conv2d", "max_pool", "batch_norm",
            "basic_block"} <= set(names)
    assert set(names) == set(PLANTED) == {p.stem for p in SOLUTIONS.glob("*.py")}


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_correct_solution_passes_every_check(name):
    report = exercises.check(name, SOLUTIONS / f"{name}.py")
    assert report.ok, str(report)
    kinds = " ".join(c.name for c in report.checks)
    assert "tinyres" in kinds and ("finite differences" in kinds or name == "im2col")   # both oracles ran


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_planted_mistake_fails_on_the_gradient_it_breaks(name, tmp_path):
    old, new, must_fail, must_pass = PLANTED[name]
    report = exercises.check(name, planted(tmp_path, name, old, new))
    text = str(report)
    assert not report.ok, text
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    passed = [f"{c.name}: {c.detail}" for c in report.checks if c.ok]
    for phrase in must_fail:
        assert any(phrase in line for line in failed), f"no failed check says {phrase!r}:\n{text}"
    for phrase in must_pass:
        assert any(phrase in line for line in passed), f"no passed check says {phrase!r}:\n{text}"
    assert re.search(r"relative error \d\.\de[-+]\d\d \(tolerance 1e-\d\d\); largest difference at \S+", text), text
    assert text.splitlines()[-1].startswith(f"{name}: ") and "checks failed" in text.splitlines()[-1]


def test_the_two_oracles_catch_different_mistakes(tmp_path):
    """A leaky ReLU with a matching backward is self-consistent: finite differences pass, and
    only tinyres's F.relu says the forward is wrong."""
    path = tmp_path / "relu.py"
    path.write_text("import numpy as np\n"
                    "def relu_forward(x):\n    return np.where(x > 0, x, 0.01 * x), x > 0\n"
                    "def relu_backward(gy, mask):\n    return gy * np.where(mask, 1.0, 0.01)\n")
    report = exercises.check("relu", path)
    for c in report.checks:
        assert c.ok == ("finite differences" in c.name), str(report)
    assert any("forward vs tinyres: y is wrong" in f"{c.name}: {c.detail}" for c in report.checks)


def test_the_largest_difference_of_im2col_is_named_in_the_exercises_own_terms(tmp_path):
    old, new, _, _ = PLANTED["im2col"]
    text = str(exercises.check("im2col", planted(tmp_path, "im2col", old, new)))
    assert re.search(r"largest difference at cols\[\d+, \d+\], row \(c=\d, i=\d, j=\d\), column \(n=\d, oh=\d, ow=\d\)",
                     text), text


def test_an_unstable_softmax_is_caught_at_large_logits(tmp_path):
    path = tmp_path / "softmax_cross_entropy.py"
    path.write_text((SOLUTIONS / "softmax_cross_entropy.py").read_text().replace(
        "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits"))
    report = exercises.check("softmax_cross_entropy", path)
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert failed and all(line.startswith("large logits") for line in failed), str(report)
    assert "not finite" in failed[0]


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_stub_is_reported_as_not_written_yet(name, tmp_path):
    path = tmp_path / f"{name}.py"
    path.write_text(exercises.stub(name))
    report = exercises.check(name, path)
    assert not report.ok
    assert "is not written yet (it raises NotImplementedError)" in str(report), str(report)


@pytest.mark.parametrize("source, message", [
    (None, "does not exist; write it first (tinyres exercise show NAME > relu.py)"),
    ("import numpy as np\n", "does not define relu_forward, relu_backward"),
    ("def relu_forward(x):\n    return x.clip(0)\n\ndef relu_backward(gy, cache):\n    return gy\n",
     "relu_forward must return (output, cache), got ndarray"),
    ("def relu_forward(x):\n    x[x < 0] = 0\n    return x, x > 0\n\ndef relu_backward(gy, m):\n    return gy * m\n",
     "relu_forward changed its input x in place"),
    ("def relu_forward(x):\n    return x.clip(0), x > 0\n\ndef relu_backward(gy, m):\n    return (gy * m)[0]\n",
     "gx has shape (5,), expected (4, 5)"),
    ("def relu_forward(x):\n    return x.clip(0), x > 0\n\ndef relu_backward(gy, m):\n    return gy @ m\n",
     "relu_backward raised ValueError: matmul: "),
    ("def relu_forward(x):\n    return x.clip(0), x > 0\n\ndef relu_backward(gy, m):\n    return gy * m\n\n1 / 0\n",
     "does not run: ZeroDivisionError: division by zero (relu.py, line 7)"),
])
def test_what_cannot_be_checked_is_said_in_one_line(source, message, tmp_path):
    path = tmp_path / "relu.py"
    if source is not None:
        path.write_text(source)
    report = exercises.check("relu", path)
    assert not report.ok
    assert message in str(report), str(report)


def test_an_error_in_the_learners_code_names_its_line(tmp_path):
    path = tmp_path / "relu.py"
    path.write_text("def relu_forward(x):\n    return x.clip(0), x > 0\n\n"
                    "def relu_backward(gy, m):\n    return gy * undefined_name\n")
    assert "NameError: name 'undefined_name' is not defined (relu.py, line 5)" in str(exercises.check("relu", path))


def test_the_command_line_lists_shows_and_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_run(["exercise", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(re.search(rf"^{name}\s", listing, re.M) for name in PLANTED)
    assert cli_run(["exercise", "show", "relu"]) == 0
    assert capsys.readouterr().out == exercises.stub("relu")
    shutil.copy(SOLUTIONS / "relu.py", tmp_path / "relu.py")       # the default file: ./NAME.py
    assert cli_run(["exercise", "check", "relu"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("relu: all ")
    (tmp_path / "mine.py").write_text(exercises.stub("relu"))
    assert cli_run(["exercise", "check", "relu", "--file", "mine.py"]) == 1
    assert "not written yet" in capsys.readouterr().out
    assert cli_run(["exercise", "check", "nonesuch"]) == 2
    assert "no exercise 'nonesuch'; the exercises are: relu, linear" in capsys.readouterr().err
    assert cli_run(["exercise", "show"]) == 2


def test_every_exercise_has_its_page_in_docs():
    page = (Path(__file__).resolve().parents[1] / "docs" / "exercises.md").read_text()
    for name in exercises.list_exercises():
        assert f"`{name}`" in page, f"docs/exercises.md does not describe {name}"


def test_a_later_exercise_imports_the_learners_current_files(tmp_path):
    """basic_block imports conv2d from the learner's folder: a fixed conv2d.py is read
    again on the next check, not taken from the last one's cached module."""
    folder = tmp_path / "mine"
    shutil.copytree(SOLUTIONS, folder)
    good = (folder / "conv2d.py").read_text()
    (folder / "conv2d.py").write_text(good.replace("gy.sum(axis=1)", "gy.sum(axis=1) * 0"))
    first = exercises.check("basic_block", folder / "basic_block.py")
    (folder / "conv2d.py").write_text(good.replace("gw = (gy @ cols.T)", "gw = 2 * (gy @ cols.T)"))
    second = exercises.check("basic_block", folder / "basic_block.py")
    assert first.ok, str(first)             # the block's convolutions have no bias: gb unused
    assert not second.ok and "g['conv1.weight'] is wrong" in str(second), str(second)
