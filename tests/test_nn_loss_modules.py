"""tinyres.nn's loss modules (tinyres/nn/loss.py) against torch.nn's, in float64: every
reduction, forward and gradient (a random upstream gradient), contiguous or not; second
derivatives of the losses composed of ops; bad input gives torch's exception type with a
message that names the loss."""
import warnings

import numpy as np
import pytest
from helpers import compare_second_order_with_torch, compare_with_torch, needs_torch, tnn, torch

import tinyres
from tinyres import nn
from tinyres.nn import functional as F

rng = np.random.default_rng(0)
N, C = 4, 5
X = rng.standard_normal((N, C))
Y = rng.standard_normal((N, C))
P = rng.uniform(0.05, 0.95, (N, C))                    # probabilities, away from 0 and 1
Q = rng.uniform(0.05, 0.95, (N, C))
LABELS = rng.integers(0, C, N)
LABELS_IGNORED = np.where(np.arange(N) == 1, -100, LABELS)
W = rng.uniform(0.5, 2.0, C)
LOG_P = np.log(rng.dirichlet(np.ones(C), N))
T_DIST = rng.dirichlet(np.ones(C), N)
T_ZERO = T_DIST.copy()
T_ZERO[0, 2] = 0.0                                      # a zero in the target: t log t = 0 there

X4 = rng.standard_normal((2, C, 3, 2))                  # spatial: (N, C, H, W) and targets (N, H, W)
LABELS4 = rng.integers(0, C, (2, 3, 2))

REDUCTIONS = ["mean", "sum", "none"]


def _both(name, **kwargs):
    """The module in each library, with tensors among the kwargs made in each."""
    tiny = {k: tinyres.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    ref = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return getattr(nn, name)(**tiny), getattr(tnn, name)(**ref)


# name, options, arrays (the float ones get gradients), and whether to pass a constant target
CASES = {
    "CrossEntropyLoss": ({}, [X, LABELS]),
    "CrossEntropyLoss-weight-ignore": (dict(weight=W, ignore_index=-100), [X, LABELS_IGNORED]),
    "CrossEntropyLoss-smoothing": (dict(label_smoothing=0.2, weight=W), [X, LABELS]),
    "CrossEntropyLoss-probs": ({}, [X, T_DIST]),
    "CrossEntropyLoss-spatial": (dict(weight=W, label_smoothing=0.1), [X4, LABELS4]),
    "CrossEntropyLoss-unbatched": ({}, [X[0], LABELS[:1].reshape(())]),
    "NLLLoss": (dict(weight=W), [LOG_P, LABELS_IGNORED]),
    "NLLLoss-spatial": ({}, [X4, LABELS4]),
    "MSELoss-spatial": ({}, [X4, X4[::-1].copy()]),
    "MSELoss": ({}, [X, Y]),
    "L1Loss": ({}, [X, Y]),
    "SmoothL1Loss": ({}, [X, Y]),
    "SmoothL1Loss-beta": (dict(beta=0.3), [X, Y]),
    "SmoothL1Loss-beta0": (dict(beta=0.0), [X, Y]),
    "BCEWithLogitsLoss": ({}, [X, P]),
    "BCEWithLogitsLoss-weights": (dict(weight=W, pos_weight=W[::-1].copy()), [X, P]),
    "KLDivLoss": ({}, [LOG_P, T_DIST]),
    "KLDivLoss-log_target": (dict(log_target=True), [LOG_P, np.log(Q)]),
}


@needs_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_module_matches_torch(case, reduction, contiguous):
    options, arrays = CASES[case]
    tiny, ref = _both(case.split("-")[0], reduction=reduction, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # KLDivLoss's 'mean' warns in both
        compare_with_torch(tiny, ref, arrays, contiguous=contiguous)


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_loss_matches_torch(reduction, weighted):
    """torch's BCELoss has no gradient for its target: the target is a constant here."""
    options = dict(weight=np.broadcast_to(W, (N, C)).copy()) if weighted else {}
    tiny, ref = _both("BCELoss", reduction=reduction, **options)
    compare_with_torch(lambda x: tiny(x, tinyres.tensor(Q)), lambda x: ref(x, torch.tensor(Q)), [P])


@needs_torch
def test_kl_div_batchmean_and_its_warning():
    tiny, ref = _both("KLDivLoss", reduction="batchmean")
    compare_with_torch(tiny, ref, [LOG_P, T_DIST])
    with pytest.warns(UserWarning, match="batchmean"):
        nn.KLDivLoss()(tinyres.tensor(LOG_P), tinyres.tensor(T_DIST))


@needs_torch
def test_kl_div_with_a_zero_target():
    """t log t = 0 at t = 0 in both.  The target's gradient there is -inf mathematically:
    torch gives nan, tinyres 0 (its where() keeps the log away), so only x's is compared."""
    tiny, ref = _both("KLDivLoss", reduction="sum")
    compare_with_torch(lambda x: tiny(x, tinyres.tensor(T_ZERO)), lambda x: ref(x, torch.tensor(T_ZERO)), [LOG_P])


@needs_torch
def test_bce_at_0_and_1_is_clamped_as_torch():
    x, t = np.array([0.0, 1.0, 0.5, 1.0]), np.array([1.0, 0.0, 1.0, 1.0])
    tiny = nn.BCELoss(reduction="none")(tinyres.tensor(x), tinyres.tensor(t))
    ref = tnn.BCELoss(reduction="none")(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(tiny.numpy(), ref.numpy())            # 100 where the log is -inf


@needs_torch
@pytest.mark.parametrize("name, kwargs, arrays", [
    ("smooth_l1_loss", dict(beta=0.7), [X, Y]),
    ("kl_div", dict(reduction="batchmean"), [LOG_P, T_DIST]),
    ("kl_div", dict(reduction="sum", log_target=True), [LOG_P, np.log(Q)]),
    ("l1_loss", {}, [X, Y]),
])
def test_composed_losses_are_twice_differentiable(name, kwargs, arrays):
    compare_second_order_with_torch(lambda *a: getattr(F, name)(*a, **kwargs),
                                    lambda *a: getattr(torch.nn.functional, name)(*a, **kwargs), arrays)


@needs_torch
def test_binary_cross_entropy_second_order():
    compare_second_order_with_torch(lambda x: F.binary_cross_entropy(x, tinyres.tensor(Q)),
                                    lambda x: torch.nn.functional.binary_cross_entropy(x, torch.tensor(Q)), [P])


def test_functional_names_are_installed():
    for name in ("l1_loss", "smooth_l1_loss", "binary_cross_entropy", "kl_div"):
        assert getattr(F, name) is getattr(nn.loss, name)
        assert name not in F.__all__


@needs_torch
def test_broadcast_target_warns_as_torch():
    x, t = X, Y[:, :1].copy()
    for name in ("MSELoss", "L1Loss", "SmoothL1Loss"):
        tiny, ref = _both(name)
        with pytest.warns(UserWarning, match="different to the input size"):
            got = tiny(tinyres.tensor(x), tinyres.tensor(t))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = ref(torch.tensor(x), torch.tensor(t))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def _error(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except Exception as e:      # noqa: BLE001 -- the type is what is compared
        return e
    raise AssertionError("no error")


BAD_SHAPE = {   # name: (input, target of a shape that does not fit)
    "MSELoss": (X, Y[:2]), "L1Loss": (X, Y[:2]), "SmoothL1Loss": (X, Y[:2]),
    "BCELoss": (P, Q[:, :1]), "BCEWithLogitsLoss": (X, P[:, :1]), "KLDivLoss": (LOG_P, T_DIST[:2]),
    "CrossEntropyLoss": (X, LABELS[:2]), "NLLLoss": (LOG_P, LABELS[:2]),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(BAD_SHAPE))
def test_bad_shape_raises_torchs_type(name):
    x, t = BAD_SHAPE[name]
    tiny, ref = _both(name)
    got = _error(lambda: tiny(tinyres.tensor(x), tinyres.tensor(t)))
    want = _error(lambda: ref(torch.tensor(x), torch.tensor(t)))
    assert isinstance(got, type(want)), (got, want)
    assert str(tuple(t.shape)) in str(got) or str(t.shape[0]) in str(got), got


@needs_torch
@pytest.mark.parametrize("name", sorted(BAD_SHAPE))
def test_bad_reduction_raises_torchs_type_naming_the_loss(name):
    x, t = BAD_SHAPE[name][0], {"CrossEntropyLoss": LABELS, "NLLLoss": LABELS}.get(name, BAD_SHAPE[name][0])
    tiny, ref = _both(name, reduction="avg")
    got = _error(lambda: tiny(tinyres.tensor(x), tinyres.tensor(t)))
    want = _error(lambda: ref(torch.tensor(x), torch.tensor(t)))
    assert isinstance(got, type(want)) and isinstance(got, ValueError), (got, want)
    assert "avg is not a valid value for reduction" in str(got)
    label = {"MSELoss": "MSELoss", "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss",
             "BCELoss": "binary_cross_entropy", "KLDivLoss": "kl_div"}.get(name, name)
    assert label in str(got), got


@needs_torch
def test_bce_input_out_of_range_and_negative_beta():
    got = _error(lambda: nn.BCELoss()(tinyres.tensor(P * 3), tinyres.tensor(Q)))
    assert isinstance(got, RuntimeError) and "between 0 and 1" in str(got) and "binary_cross_entropy" in str(got)
    got = _error(lambda: nn.SmoothL1Loss(beta=-1.0)(tinyres.tensor(X), tinyres.tensor(Y)))
    assert isinstance(got, RuntimeError) and "smooth_l1_loss" in str(got)


def test_weights_are_buffers_in_the_state_dict():
    loss = nn.CrossEntropyLoss(weight=tinyres.tensor(W))
    assert list(loss.state_dict()) == ["weight"]
    loss = nn.BCEWithLogitsLoss(pos_weight=tinyres.tensor(W))
    assert list(loss.state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []


def test_legacy_size_average_and_reduce():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert nn.L1Loss(reduce=False).reduction == "none"
    assert repr(nn.SmoothL1Loss(reduction="sum")) == "SmoothL1Loss(reduction='sum')"
