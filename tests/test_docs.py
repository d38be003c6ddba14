"""Every ```python block in README.md and docs/*.md runs (blocks of one file share a namespace,
in order, as a reader would type them). Blocks that need what tests never have -- a GPU, the
network, torchvision, a user's files -- are fenced as ```py (shown, highlighted, not run).

A comment after a print on the same line shows what that line prints, so it is checked:
`print(x.shape)  # (2, 3)`.  Text after the output, set off by ':', ',', ';', ' (' or ' --',
explains it; '...' in the comment stands for any text.  A comment that is not the output
goes on a line of its own."""
import io
import re
import sys
from pathlib import Path

import pytest
from helpers import torch  # torch: None without PyTorch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
IMPORTS_TORCH = re.compile(r"^\s*(import|from) torch\b", re.M)
PRINT_WITH_COMMENT = re.compile(r"^\s*print\(.*\)\s+# (.*)$")


def _normalised(text):
    """Whitespace collapsed, and NumPy's padding inside brackets dropped: '[ inf  1.]' -> '[inf 1.]'."""
    return re.sub(r"\[\s+", "[", re.sub(r"\s+\]", "]", " ".join(text.split())))


def shows(comment, printed):
    """Whether a print's trailing comment starts with what it printed (see the module's docstring)."""
    comment, printed = _normalised(comment), _normalised(printed)
    if "..." in comment:
        pattern = ".*".join(re.escape(part.strip()) for part in comment.split("..."))
        return re.fullmatch(pattern, printed) is not None
    rest = comment[len(printed):] if comment.startswith(printed) else None
    return rest is not None and re.match(r"$|[:,;]| \(| --", rest) is not None


def run_block(code, filename, namespace):
    """exec one block; returns {line number: text printed by that line}."""
    printed = {}

    def recording_print(*args, **kwargs):
        caller = sys._getframe(1)
        if kwargs.get("file") is None and caller.f_code.co_filename == filename:
            text = io.StringIO()
            print(*args, **{**kwargs, "file": text})
            printed[caller.f_lineno] = printed.get(caller.f_lineno, "") + text.getvalue()
        print(*args, **kwargs)

    namespace["print"] = recording_print
    try:
        exec(compile(code, filename, "exec"), namespace)
    finally:
        del namespace["print"]
    return printed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        if torch is None and IMPORTS_TORCH.search(code):     # the blocks before it have run
            pytest.skip(f"{page.name}, python block {i} imports torch, and PyTorch is not installed (CI installs it)")
        try:
            printed = run_block(code, f"{page.name}[block {i}]", namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, python block {i} failed: {type(e).__name__}: {e}\n{code}") from e
        for n, line in enumerate(code.splitlines(), 1):
            comment = PRINT_WITH_COMMENT.match(line)
            if comment and not shows(comment.group(1), printed.get(n, "(nothing)")):
                raise AssertionError(f"{page.name}, python block {i}, line {n} says it prints\n    {comment.group(1)}\n"
                                     f"but printed\n    {printed.get(n, '(nothing)').strip()}")


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.name)
def test_every_page_ends_with_exercises_each_with_a_solution_that_runs(page):
    """The last section is "## Exercises"; every collapsed solution holds a python block
    (which test_code_blocks_run runs)."""
    text = page.read_text()
    assert "\n## Exercises\n" in text, f"{page.name} has no Exercises section"
    exercises = text.split("\n## Exercises\n", 1)[1]
    assert "\n## " not in exercises, f"{page.name}: Exercises is not the last section"
    solutions = exercises.split("<details>")[1:]
    assert solutions, f"{page.name}: no worked solution"
    assert all("```python\n" in s.split("</details>")[0] for s in solutions), page.name


def test_a_comment_after_a_print_must_show_what_it_printed():
    assert shows("(2, 3)", "(2, 3)\n")
    assert shows("1703258: the paper's 1.7M", "1703258")
    assert shows("True, even at tight tolerances", "True")
    assert shows("[inf 0.6931472 inf]", "[ inf 0.6931472        inf]")
    assert shows("save: cannot store obj['x'], a set; ...", "save: cannot store obj['x'], a set; a checkpoint holds ...")
    assert not shows("True True", "True")                   # a prefix is not enough
    assert not shows("0.1 0.01", "0.1 0.010000000000000002")
    assert not shows("about half", "45% of the gradient stopped")
    assert not shows("x ... y", "x z")


def test_run_block_records_what_each_line_printed():
    namespace = {}
    printed = run_block("x = 2\nprint(x + 1)   # 4\n", "page.md[block 0]", namespace)
    assert printed == {2: "3\n"} and namespace["x"] == 2 and "print" not in namespace
