"""The table of ``tinyres gradcheck`` (each ``nn.functional`` module's ``GRADCHECKS``), run
with the suite's tolerances: finite differences tight enough to catch a backward off by
0.1%, and PyTorch in float64 and float32, on contiguous and strided inputs.  A case added
to a module's table is tested here and shown by ``tinyres gradcheck`` with nothing else to
edit."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, TF  # TF: None without PyTorch
from helpers import gradcheck  # the suite's tight tolerances

import tinyres
from tinyres import checks

CASES = checks.cases()


def _tensors(arrays, dtype=np.float64):
    return [tinyres.Tensor(a.astype(dtype) if a.dtype.kind == "f" else a, requires_grad=a.dtype.kind == "f")
            for a in arrays]


def test_every_functional_module_with_layer_ops_declares_cases():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    for op in ("conv2d", "conv1d", "batch_norm", "relu", "max_pool2d", "linear", "cross_entropy"):
        assert any(n.startswith(op) for n in names), op


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_finite_differences(case):
    assert gradcheck(case.fn, _tensors(checks.case_inputs(case)))


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_against_torch(case, dtype, contiguous):
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in checks.case_inputs(case)]
    compare_with_torch(case.fn, lambda *t: case.torch_fn(TF, *t), arrays, contiguous=contiguous)


def test_the_user_table_is_these_cases():
    rows = checks.run_layer_checks()
    assert [r["name"] for r in rows] == [c.name for c in CASES] and all(r["ok"] for r in rows)
