"""The table of ``tinyres gradcheck`` (``CASES`` in tinyres/app/checks.py), run with the
suite's tolerances: finite differences tight enough to catch a backward off by 0.1%, and
PyTorch in float64 and float32, on contiguous and strided inputs.  A case added to the
table is tested here and shown by ``tinyres gradcheck`` with nothing else to edit."""
import numpy as np
import pytest
from helpers import compare_with_torch, needs_torch, TF  # TF: None without PyTorch
from helpers import compare_second_order_with_torch, gradcheck, gradgradcheck  # the suite's tight tolerances

import tinyres
from tinyres import checks
from tinyres.nn import functional as F

CASES = checks.cases()


def _tensors(arrays, dtype=np.float64):
    return [tinyres.Tensor(a.astype(dtype) if a.dtype.kind == "f" else a, requires_grad=a.dtype.kind == "f")
            for a in arrays]


NOT_IN_THE_TABLE = {"dropout": "random: tests/test_nn_activation.py checks its mask and scale",
                    "dropout1d": "random: tests/test_nn_round2.py checks its mask and scale",
                    "dropout2d": "random: tests/test_nn_porting_layers.py checks its mask and scale",
                    "flatten": "a reshape: tests/test_ops.py",
                    "one_hot": "integers, no gradient: tests/test_nn_porting_layers.py",
                    "relu_": "relu in place: tests/test_tensor.py and tests/test_nn_activation.py",
                    "alpha_dropout": "random: tests/test_nn_activation_more.py checks torch's formula and moments",
                    "feature_alpha_dropout": "random: tests/test_nn_activation_more.py checks its per-channel draw",
                    "dropout3d": "random: tests/test_nn_activation_more.py checks its mask and scale",
                    **{op: f"{op[:-1]} in place: tests/test_nn_activation_more.py" for op in
                       ["selu_", "celu_", "elu_", "hardtanh_", "leaky_relu_", "threshold_", "rrelu_"]}}


def test_every_public_functional_op_has_a_row():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    missing = [op for op in F.__all__ if op not in NOT_IN_THE_TABLE
               and not any(n == op or n.startswith(op + " ") for n in names)]
    assert not missing, f"nn.functional ops without a row in tinyres/app/checks.py: {missing}"


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


def test_tinyres_gradcheck_passes_the_ops_and_fails_a_planted_wrong_backward(monkeypatch):
    rows = checks.run_layer_checks()
    assert [r["name"] for r in rows] == [c.name for c in CASES] and all(r["ok"] for r in rows)
    from tinyres.nn.functional.linear import LinearFunction
    right = LinearFunction.backward
    def off_by_one_percent(self, gy):
        return tuple(g if g is None or i else g * 1.01 for i, g in enumerate(right(self, gy)))
    off_by_one_percent.once_differentiable = getattr(right, "once_differentiable", False)
    monkeypatch.setattr(LinearFunction, "backward", off_by_one_percent)
    rows = {r["name"]: r for r in checks.run_layer_checks()}
    assert not rows["linear"]["ok"] and rows["linear"]["error"] > 1e-3
    assert rows["relu"]["ok"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_second_derivatives_by_finite_differences(case):
    """gradgradcheck: the backward of every layer op is itself differentiated right."""
    assert gradgradcheck(case.fn, _tensors(checks.case_inputs(case)), nsamples=30)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_second_derivatives_against_torch(case):
    compare_second_order_with_torch(case.fn, lambda *t: case.torch_fn(TF, *t), checks.case_inputs(case))
