"""Exercises with an autograder: write a layer's forward and backward in NumPy, then check it.

    tinyres exercise list                      # the exercises, in a good order
    tinyres exercise show relu > relu.py       # the stub: fill in the functions
    tinyres exercise check relu                # checks ./relu.py (or --file PATH)

or from Python: ``tinyres.exercises.check("relu", "relu.py")`` returns a ``Report``
(``print`` it; ``.ok`` says whether every check passed).  What is checked, and how, is in
docs/exercises.md; the machinery is ``checker.py``, the exercises ``catalog.py``, the
stubs ``stubs/<name>.py``.
"""
from pathlib import Path

import numpy as np

from .catalog import EXERCISES
from .checker import ExerciseError, Report, load_solution

__all__ = ["EXERCISES", "list_exercises", "stub", "check", "Report", "ExerciseError"]

STUBS = Path(__file__).resolve().parent / "stubs"


def list_exercises():
    """The exercise names, in the order to do them (later ones use earlier ones)."""
    return list(EXERCISES)


def get(name):
    if name not in EXERCISES:
        raise ExerciseError(f"no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def stub(name):
    """The text of the file the learner starts from."""
    get(name)
    return (STUBS / f"{name}.py").read_text()


def check(name, path=None, seed=0):
    """Check the learner's file ``path`` (default ``./<name>.py``) for exercise ``name``;
    returns the ``Report``.  A file that cannot be checked (missing, raising, returning the
    wrong shape) gives a report with one failed check that says why."""
    ex = get(name)
    path = Path(path) if path is not None else Path(f"{name}.py")
    report = Report(name, str(path))
    try:
        module = load_solution(path, ex.functions)
        ex.check(module, report, np.random.default_rng(seed))
    except ExerciseError as e:
        report.add("could not finish the checks", False, str(e))
    return report
