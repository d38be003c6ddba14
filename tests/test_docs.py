"""Every ```python block in README.md and docs/*.md runs (blocks of one file share a namespace,
in order, as a reader would type them). Blocks that need what tests never have -- a GPU, the
network, torchvision, a user's files -- are fenced as ```py (shown, highlighted, not run)."""
import re
from pathlib import Path

import pytest
from helpers import torch  # torch: None without PyTorch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
IMPORTS_TORCH = re.compile(r"^\s*(import|from) torch\b", re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        if torch is None and IMPORTS_TORCH.search(code):     # the blocks before it have run
            pytest.skip(f"{page.name}, python block {i} imports torch, and PyTorch is not installed (CI installs it)")
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, python block {i} failed: {type(e).__name__}: {e}\n{code}") from e


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
