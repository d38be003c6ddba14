"""The autograder's machinery: load a learner's file, run it, compare, and say what is wrong.

Two independent oracles, as in the library's own tests (docs/autograd.md):

* **finite differences of the learner's own forward** -- float64, a random upstream
  gradient ``gy`` (never all ones: for batch norm and softmax the true input gradient under
  ones is exactly zero, and so is that of many wrong backwards), every entry of every input
  perturbed by ``±eps`` (the shapes are small).  This checks that *your* backward is the
  derivative of *your* forward, whatever the forward computes.
* **tinyres's own op** (``tinyres.nn.functional``), run through tinyres's autograd with the
  same ``gy``: no PyTorch involved.  This checks that the forward computes the right thing.

Each comparison reports the *relative error* ``||yours - expected|| / max(||yours|| +
||expected||, tiny)`` against a tolerance, and, when it fails, the entry where the two differ
most, with both values.
"""
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FD_TOLERANCE = 1e-6     # central differences in float64 with eps = 1e-6: errors near 1e-9
REF_TOLERANCE = 1e-9    # the same computation done two ways: rounding only


class ExerciseError(Exception):
    """The learner's code could not be checked (missing function, exception, wrong shape):
    the message says why, in the learner's terms."""


@dataclass
class Check:
    """One line of the report: what was compared, whether it passed, the figures."""
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    exercise: str
    path: str
    checks: list = field(default_factory=list)

    @property
    def ok(self):
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name, ok, detail=""):
        self.checks.append(Check(name, ok, detail))
        return ok

    def __str__(self):
        lines = [f"{self.exercise}: checking {self.path}"]
        for c in self.checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name}" + (f": {c.detail}" if c.detail else ""))
        failed = sum(not c.ok for c in self.checks)
        lines.append(f"{self.exercise}: " + ("all {} checks passed".format(len(self.checks)) if self.ok else
                                             f"{failed} of {len(self.checks)} checks failed"))
        return "\n".join(lines)


def load_solution(path, names):
    """The learner's file as a module, which must define every function in ``names``.
    Its folder is importable while it loads, so a later exercise can import an earlier one
    (``from conv2d import conv2d_forward``)."""
    path = Path(path)
    if not path.is_file():
        raise ExerciseError(f"{path} does not exist; write it first (tinyres exercise show NAME > {path.name})")
    folder = str(path.resolve().parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"_tinyres_exercise_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:
        raise ExerciseError(f"{path} does not run: {_where(e, path)}") from None
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - before:     # the learner's other files: read afresh next time
            if str(Path(getattr(sys.modules[name], "__file__", None) or "/").resolve().parent) == folder:
                del sys.modules[name]
    missing = [n for n in names if not callable(getattr(module, n, None))]
    if missing:
        raise ExerciseError(f"{path} does not define {', '.join(missing)}")
    return module


def _where(e, path=None):
    """'ValueError: ... (my_relu.py, line 12)': the exception and the learner's line that raised it."""
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if "tinyres" not in Path(f.filename).parts or (path and Path(f.filename) == Path(path))]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def call(fn, *args, **kwargs):
    """``fn(*args)``, turning the learner's exceptions into one clear ExerciseError."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseError(f"{fn.__name__} is not written yet (it raises NotImplementedError)") from None
    except ExerciseError:
        raise
    except Exception as e:
        raise ExerciseError(f"{fn.__name__} raised {_where(e)}") from None


def as_array(value, what, shape):
    """``value`` as a float64 array of ``shape``, or an ExerciseError that says what came back instead."""
    if value is None:
        raise ExerciseError(f"{what} is None; expected an array of shape {tuple(shape)}")
    a = np.asarray(value)
    if a.shape != tuple(shape):
        raise ExerciseError(f"{what} has shape {a.shape}, expected {tuple(shape)}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ExerciseError(f"{what} has dtype {a.dtype}, expected a float array")
    return a.astype(np.float64, copy=False)


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def compare(report, check, what, yours, expected, tolerance, against, locate=None):
    """Add one check: ``what`` (e.g. 'gw') yours against ``expected`` (named ``against``).
    ``locate(index)`` describes an entry in the exercise's own words (default: the index)."""
    yours = as_array(yours, what, expected.shape)
    if not np.all(np.isfinite(yours)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(yours))[0])
        return report.add(check, False, f"{what} is not finite at {what}{list(bad)} ({yours[bad]})")
    err = relative_error(yours, expected)
    if err <= tolerance:
        return report.add(check, True, f"{what} relative error {err:.1e}")
    worst = np.unravel_index(np.argmax(np.abs(yours - expected)), expected.shape) if expected.ndim else ()
    at = f"{what}{list(int(i) for i in worst)}" if worst else what
    if locate is not None and worst:
        at += f", {locate(tuple(int(i) for i in worst))}"
    a, b = float(yours[worst]), float(expected[worst])
    digits = 6
    while digits < 17 and f"{a:.{digits}g}" == f"{b:.{digits}g}":     # enough digits to show them differ
        digits += 1
    return report.add(check, False, f"{what} is wrong: relative error {err:.1e} (tolerance {tolerance:.0e}); "
                                    f"largest difference at {at}: yours {a:.{digits}g}, {against} {b:.{digits}g}")


def numeric_gradients(f, inputs, eps=1e-6):
    """Central differences of the scalar ``f(*inputs)`` with respect to every entry of every
    input (a list of float64 arrays; each is perturbed in place and restored)."""
    grads = []
    for a in inputs:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            up = f(*inputs)
            a[i] = old - eps
            down = f(*inputs)
            a[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def strided(a):
    """A copy of ``a`` that is a non-contiguous view (every other column of a wider array),
    as real inputs often are (a transposed or sliced tensor)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]
