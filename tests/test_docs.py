"""Every ```python block in README.md and docs/*.md runs (blocks of one file share a namespace,
in order, as a reader would type them). Blocks that need what tests never have -- a GPU, the
network, torchvision, a user's files -- are fenced as ```py (shown, highlighted, not run), and
say why in their first line: `# not run by the docs test: <the reason>`.  Any other block of
Python is a ```python block, and runs.  Without PyTorch, the blocks that import torch are
skipped and the others still run.

A comment right after a print call shows what that call printed, so it is checked:
`print(x.shape)  # (2, 3)`.  Text after the output, set off by ': ', ', ', '; ', ' (' or
' --', explains it; '...' in the comment stands for any text.  A comment that is not the
output goes on a line of its own."""
import ast
import io
import re
import sys
from pathlib import Path

import pytest
from helpers import torch  # torch: None without PyTorch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```(py\w*)\n(.*)$", re.M)          # a fence that opens Python, and its first line
NOT_RUN = re.compile(r"# not run by the docs test: \S")
IMPORTS_TORCH = re.compile(r"^\s*(import|from) torch\b", re.M)


def _normalised(text):
    """Whitespace collapsed, and NumPy's padding inside brackets dropped: '[ inf  1.]' -> '[inf 1.]'."""
    return re.sub(r"\[\s+", "[", re.sub(r"\s+\]", "]", " ".join(text.split())))


def shows(comment, printed):
    """Whether a print's trailing comment starts with what it printed (see the module's docstring)."""
    comment, printed = _normalised(comment), _normalised(printed)
    if not printed:
        return False
    if comment.startswith(printed) and re.match(r"$|[:,;] | \(| --", comment[len(printed):]):
        return True
    pattern = ".*".join(re.escape(part) for part in comment.split("..."))   # the spaces around ... stay
    return "..." in comment and re.fullmatch(pattern, printed) is not None


def commented_prints(code):
    """{(first line, last line) of each print(...) call: the comment right after it}."""
    lines = code.splitlines()
    found = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            after = re.match(r"\s*# ?(.*)$", lines[node.end_lineno - 1][node.end_col_offset:])
            if after:
                found[node.lineno, node.end_lineno] = after.group(1)
    return found


def run_block(code, filename, namespace):
    """exec one block; returns {line number: text printed by the call on that line}."""
    printed = {}

    def recording_print(*args, **kwargs):
        caller = sys._getframe(1)
        if kwargs.get("file") in (None, sys.stdout) and caller.f_code.co_filename == filename:
            text = io.StringIO()
            print(*args, **{**kwargs, "file": text})
            printed[caller.f_lineno] = printed.get(caller.f_lineno, "") + text.getvalue()
        print(*args, **kwargs)

    namespace["print"] = recording_print
    try:
        exec(compile(code, filename, "exec"), namespace)
    finally:
        if namespace.get("print") is recording_print:
            del namespace["print"]
    return printed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    skipped = []
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        if torch is None and IMPORTS_TORCH.search(code):
            skipped.append(i)
            continue
        try:
            printed = run_block(code, f"{page.name}[block {i}]", namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, python block {i} failed: {type(e).__name__}: {e}\n{code}") from e
        for (first, last), comment in commented_prints(code).items():
            output = "".join(printed.get(n, "") for n in range(first, last + 1))
            if not shows(comment, output):
                raise AssertionError(f"{page.name}, python block {i}, line {last} says it prints\n    {comment}\n"
                                     f"but printed\n    {output.strip() or '(nothing)'}")
    if skipped:
        pytest.skip(f"{page.name}: python blocks {skipped} import torch, and PyTorch is not installed (CI installs it)")

def unrun_blocks_without_a_reason(text):
    """The first lines of the Python blocks ``text`` holds that do not run and do not say why
    (a ```py block without the ``# not run by the docs test: ...`` line, or a fence such as
    ```python3 that the docs test does not know)."""
    return [f"```{fence}: {first}" for fence, first in FENCE.findall(text)
            if fence != "python" and not (fence == "py" and NOT_RUN.match(first))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_block_that_does_not_run_says_why(page):
    unmarked = unrun_blocks_without_a_reason(page.read_text())
    assert not unmarked, (f"{page.name}: Python blocks the docs test does not run, with no reason given "
                          "(fence them ```python, or ```py with '# not run by the docs test: why'): "
                          + "; ".join(unmarked))


def test_an_unmarked_py_block_is_reported():
    assert unrun_blocks_without_a_reason("```py\n# not run by the docs test: a download\nx = 1\n```\n") == []
    assert unrun_blocks_without_a_reason("```python\nx = 1\n```\n") == []
    assert unrun_blocks_without_a_reason("```py\nx = 1\n```\n") == ["```py: x = 1"]
    assert unrun_blocks_without_a_reason("```python3\nx = 1\n```\n") == ["```python3: x = 1"]
    assert unrun_blocks_without_a_reason("```py\n# Keras (not run)\n```\n") == ["```py: # Keras (not run)"]


REPO_PATH = re.compile(r"\b(?:tinyres|tests|examples|benchmarks)/[\w./-]*\w")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_into_the_repository_exists(page):
    """A path a page names (tinyres/core/engine.py, tests/test_docs.py, examples/...) is there:
    a file moved or renamed leaves no stale name behind."""
    missing = sorted({p for p in REPO_PATH.findall(page.read_text()) if not (ROOT / p).exists()})
    assert not missing, f"{page.name} names paths that do not exist: {', '.join(missing)}"


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
    assert shows("True: g ... x", "True")
    assert shows("[inf 0.6931472 inf]", "[ inf 0.6931472        inf]")
    assert shows("save: cannot store obj['x'], a set; ...", "save: cannot store obj['x'], a set; a checkpoint holds ...")
    assert not shows("True True", "True")                   # a prefix is not enough
    assert not shows("11,689,512", "11")
    assert not shows("0.1 0.01", "0.1 0.010000000000000002")
    assert not shows("0.1 ...", "0.1000000002")
    assert not shows("about half", "45% of the gradient stopped")
    assert not shows(": anything", "")
    assert not shows("x ... y", "x z")


def test_the_comment_after_each_print_call_is_found_and_what_it_printed_recorded():
    code = ("x = 2; print(x + 1)   # 3\n"
            "if x: print(x)  # 2: in an if\n"
            "print(x,\n      x)   # 2 2\n"
            "print(x); y = 1  # not print's comment\n"
            "print(x, file=sys.stdout)  # 2\n")
    assert commented_prints(code) == {(1, 1): "3", (2, 2): "2: in an if", (3, 4): "2 2", (6, 6): "2"}
    namespace = {"sys": sys}
    printed = run_block(code, "page.md[block 0]", namespace)
    assert printed[1] == "3\n" and printed[2] == "2\n" and printed[6] == "2\n"
    assert "".join(printed.get(n, "") for n in (3, 4)) == "2 2\n"
    assert namespace["y"] == 1 and "print" not in namespace
