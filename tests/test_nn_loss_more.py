"""torch.nn's margin, embedding and NLL losses (tinyres/nn/loss.py) against torch's, in
float64 (and once in float32): every reduction, module and function, values and the input
gradients under a random upstream gradient; second derivatives of some (torch has none for
multi_margin_loss and multilabel_margin_loss: those are checked by finite differences);
reprs and state_dict keys; and the errors torch raises for bad shapes and arguments."""
import warnings

import numpy as np
import pytest
from helpers import TF, compare_second_order_with_torch, gradgradcheck, needs_torch, tnn, torch

import tinyres
from tinyres import nn
from tinyres.nn import functional as F

rng = np.random.default_rng(0)
N, C = 4, 5
X = rng.standard_normal((N, C))
X2 = rng.standard_normal((N, C))
X3 = rng.standard_normal((N, C))
SIGNS = rng.choice([-1.0, 1.0], (N, C))
SIGNS_N = np.array([1.0, -1.0, -1.0, 1.0])
V = rng.standard_normal(6)
V2 = np.where(np.arange(6) == 2, V, rng.standard_normal(6))   # a tie x1 = x2 (margin 0: the clamp's kink)
P01 = rng.uniform(0, 1, (N, C))
W = rng.uniform(0.5, 2.0, C)
LABELS = np.array([0, 3, 4, 3])
LISTS = np.array([[3, 0, -1, 1, 2],            # after the first -1 nothing counts
                  [1, 2, 3, 4, 0],             # every class listed: no loss
                  [0, 0, 2, -1, -1],           # 0 listed twice counts twice
                  [-1, 1, 1, 1, 1]])           # nothing listed
VAR = rng.uniform(0.2, 2.0, (N, C))
VAR_SMALL = np.where(rng.uniform(size=(N, C)) < 0.3, 1e-8, VAR)   # some below eps: clamped, the gradient kept
RATES = rng.uniform(0.1, 3.0, (N, C))
COUNTS = np.array([[0, 1, 2, 5, 0.5]] * N) + np.arange(N)[:, None]  # 0, 1 (no Stirling term), > 1
COUNTS_POS = np.maximum(COUNTS, 0.5)    # torch's target gradient of the Stirling term is NaN at t = 0 (0 here)

LOSSES = {   # function: module (the arguments of both are torch's)
    "margin_ranking_loss": "MarginRankingLoss", "hinge_embedding_loss": "HingeEmbeddingLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss", "soft_margin_loss": "SoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss", "multi_margin_loss": "MultiMarginLoss",
    "multilabel_margin_loss": "MultiLabelMarginLoss", "triplet_margin_loss": "TripletMarginLoss",
    "triplet_margin_with_distance_loss": "TripletMarginWithDistanceLoss", "gaussian_nll_loss": "GaussianNLLLoss",
    "poisson_nll_loss": "PoissonNLLLoss",
}
DISTANCES = {   # a distance_function per library, by name
    "cosine": (lambda a, b: 1 - F.cosine_similarity(a, b), lambda a, b: 1 - TF.cosine_similarity(a, b)),
    "l1": (lambda a, b: (a - b).abs().sum(-1), lambda a, b: (a - b).abs().sum(-1)),
}

# case: (function, options, arrays, which arrays get a gradient)
CASES = {
    "margin_ranking": ("margin_ranking_loss", dict(margin=0.3), [V, V2, np.sign(V - 0.1)], [1, 1, 1]),
    "margin_ranking-tie": ("margin_ranking_loss", {}, [V, V2, -np.ones(6)], [1, 1, 0]),
    "margin_ranking-2d": ("margin_ranking_loss", dict(margin=0.5), [X, X2, SIGNS], [1, 1, 0]),
    "hinge_embedding": ("hinge_embedding_loss", {}, [np.abs(X), SIGNS], [1, 0]),
    "hinge_embedding-margin": ("hinge_embedding_loss", dict(margin=0.5), [X, SIGNS], [1, 0]),
    "cosine_embedding": ("cosine_embedding_loss", {}, [X, X2, SIGNS_N], [1, 1, 0]),
    "cosine_embedding-margin": ("cosine_embedding_loss", dict(margin=-0.2), [X, X2, SIGNS_N], [1, 1, 0]),
    "cosine_embedding-1d": ("cosine_embedding_loss", dict(margin=0.1), [X[0], X2[0], np.array(-1.0)], [1, 1, 0]),
    "soft_margin": ("soft_margin_loss", {}, [3 * X, SIGNS], [1, 0]),
    "multilabel_soft_margin": ("multilabel_soft_margin_loss", {}, [X, P01], [1, 1]),
    "multilabel_soft_margin-weight": ("multilabel_soft_margin_loss", dict(weight=W), [X, (P01 > 0.5) * 1.0], [1, 0]),
    "multilabel_soft_margin-1d": ("multilabel_soft_margin_loss", {}, [np.array([0.0, -2.0, 30.0]), P01[0, :3]],
                                  [1, 1]),      # 0: log sigmoid's slope there is 1/2
    "multi_margin": ("multi_margin_loss", {}, [X, LABELS], [1, 0]),
    "multi_margin-p2-weight": ("multi_margin_loss", dict(p=2, margin=0.7, weight=W), [X, LABELS], [1, 0]),
    "multi_margin-1d": ("multi_margin_loss", dict(margin=2.0), [X[0], np.array(2)], [1, 0]),
    "multilabel_margin": ("multilabel_margin_loss", {}, [X, LISTS], [1, 0]),
    "multilabel_margin-1d": ("multilabel_margin_loss", {}, [X[0], LISTS[0]], [1, 0]),
    "triplet_margin": ("triplet_margin_loss", {}, [X, X2, X3], [1, 1, 1]),
    "triplet_margin-p1-swap": ("triplet_margin_loss", dict(margin=2.0, p=1, eps=1e-3, swap=True), [X, X2, X3],
                               [1, 1, 1]),
    "triplet_margin-1d": ("triplet_margin_loss", dict(margin=3.0), [X[0], X2[0], X3[0]], [1, 1, 1]),
    "triplet_distance": ("triplet_margin_with_distance_loss", {}, [X, X2, X3], [1, 1, 1]),
    "triplet_distance-cosine-swap": ("triplet_margin_with_distance_loss",
                                     dict(distance_function="cosine", margin=0.5, swap=True), [X, X2, X3], [1, 1, 1]),
    "triplet_distance-l1": ("triplet_margin_with_distance_loss", dict(distance_function="l1", margin=2.0),
                            [X, X2, X3], [1, 1, 1]),
    "gaussian_nll": ("gaussian_nll_loss", {}, [X, X2, VAR], [1, 1, 1]),
    "gaussian_nll-full-small-var": ("gaussian_nll_loss", dict(full=True, eps=1e-4), [X, X2, VAR_SMALL], [1, 1, 1]),
    "gaussian_nll-var-per-sample": ("gaussian_nll_loss", {}, [X, X2, VAR[:, 0]], [1, 1, 1]),
    "gaussian_nll-var-n1": ("gaussian_nll_loss", {}, [X, X2, VAR[:, :1]], [1, 1, 1]),
    "gaussian_nll-var-1c": ("gaussian_nll_loss", {}, [X, X2, VAR[:1]], [1, 1, 1]),
    "gaussian_nll-var-number": ("gaussian_nll_loss", dict(var=0.7), [X, X2], [1, 1]),
    "poisson_nll": ("poisson_nll_loss", {}, [X, COUNTS], [1, 1]),
    "poisson_nll-rate": ("poisson_nll_loss", dict(log_input=False, eps=1e-3), [RATES, COUNTS], [1, 1]),
    "poisson_nll-full": ("poisson_nll_loss", dict(full=True), [X, COUNTS], [1, 0]),
    "poisson_nll-full-target-grad": ("poisson_nll_loss", dict(full=True), [X, COUNTS_POS], [1, 1]),
    "poisson_nll-rate-full": ("poisson_nll_loss", dict(log_input=False, full=True), [RATES, COUNTS_POS], [1, 1]),
}
REDUCTIONS = ["mean", "sum", "none"]


def _options(options, lib, dtype=np.float64):
    """The options in one library (0 tinyres, 1 torch): weight as its tensor, distance_function
    as its function; a number var stays a number (passed positionally by ``_call``)."""
    out = {}
    for k, v in options.items():
        if isinstance(v, np.ndarray):
            v = v.astype(dtype)
            v = tinyres.tensor(v) if lib == 0 else torch.tensor(v)
        elif k == "distance_function":
            v = DISTANCES[v][lib]
        out[k] = v
    return out


def _call(case, lib, kind, reduction, tensors, dtype=np.float64):
    """The loss of ``case`` in tinyres (lib 0) or torch (lib 1), as a module or a function."""
    fname, options, _, _ = CASES[case]
    options = _options(options, lib, dtype)
    var = options.pop("var", None)
    extra = () if var is None else (var,)
    if kind == "function":
        fn = getattr(F if lib == 0 else TF, fname)
        return fn(*tensors, *extra, **options, reduction=reduction)
    module = getattr(nn if lib == 0 else tnn, LOSSES[fname])(**options, reduction=reduction)
    return module(*tensors, *extra)


def _compare(case, kind="function", reduction="mean", dtype=np.float64):
    """Values, and the gradients of the arrays marked, under a random upstream gradient."""
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    _, _, arrays, grads = CASES[case]
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    tx = [tinyres.tensor(a, requires_grad=bool(g)) for a, g in zip(arrays, grads)]
    px = [torch.tensor(a, requires_grad=bool(g)) for a, g in zip(arrays, grads)]
    ty, py = _call(case, 0, kind, reduction, tx, dtype), _call(case, 1, kind, reduction, px, dtype)
    assert ty.shape == tuple(py.shape) and ty.dtype == np.dtype(dtype), (ty.shape, py.shape, ty.dtype)
    np.testing.assert_allclose(ty.numpy(), py.detach().numpy(), **tol)
    g = np.random.default_rng(1).standard_normal(ty.shape).astype(dtype)
    ty.backward(tinyres.tensor(g))
    py.backward(torch.tensor(g))
    for i, (t, p) in enumerate(zip(tx, px)):
        if p.requires_grad:
            np.testing.assert_allclose(t.grad.numpy(), p.grad.numpy(), **tol, err_msg=f"gradient of input {i}")


@needs_torch
@pytest.mark.parametrize("kind", ["function", "module"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_torch(case, reduction, kind):
    _compare(case, kind, reduction)


@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_torch_in_float32(case):
    _compare(case, dtype=np.float32)


SECOND_ORDER = {   # name: (tinyres loss, torch loss, arrays): constants are closed over
    "margin_ranking": (lambda a, b: F.margin_ranking_loss(a, b, tinyres.tensor(np.sign(V)), margin=0.3),
                       lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(np.sign(V)), margin=0.3), [V, V2]),
    "cosine_embedding": (lambda a, b: F.cosine_embedding_loss(a, b, tinyres.tensor(SIGNS_N), margin=-0.2),
                         lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(SIGNS_N), margin=-0.2), [X, X2]),
    "soft_margin": (lambda a: F.soft_margin_loss(a, tinyres.tensor(SIGNS), reduction="sum"),
                    lambda a: TF.soft_margin_loss(a, torch.tensor(SIGNS), reduction="sum"), [X]),
    "multilabel_soft_margin": (lambda a, t: F.multilabel_soft_margin_loss(a, t, tinyres.tensor(W)),
                               lambda a, t: TF.multilabel_soft_margin_loss(a, t, torch.tensor(W)), [X, P01]),
    "triplet_margin-swap": (lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, swap=True),
                            lambda a, p, n: TF.triplet_margin_loss(a, p, n, margin=2.0, swap=True), [X, X2, X3]),
    "gaussian_nll": (lambda x, t, v: F.gaussian_nll_loss(x, t, v, reduction="none"),
                     lambda x, t, v: TF.gaussian_nll_loss(x, t, v, reduction="none"), [X, X2, VAR_SMALL]),
    "poisson_nll-full": (lambda x, t: F.poisson_nll_loss(x, t, log_input=False, full=True),
                         lambda x, t: TF.poisson_nll_loss(x, t, log_input=False, full=True), [RATES, COUNTS_POS]),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_matches_torch(name):
    tiny, ref, arrays = SECOND_ORDER[name]
    compare_second_order_with_torch(tiny, ref, arrays)


def test_second_order_of_the_class_index_margin_losses():
    """torch has no double backward for these two: finite differences are the oracle (the
    inputs keep every margin term away from its kink at 0)."""
    x = tinyres.tensor(X[:2] * 0.1, requires_grad=True)
    gradgradcheck(lambda x: F.multi_margin_loss(x, tinyres.tensor(LABELS[:2]), p=2, weight=tinyres.tensor(W)), [x])
    gradgradcheck(lambda x: F.multilabel_margin_loss(x ** 3, tinyres.tensor(LISTS[:2])), [x])


# ---------------------------------------------------------------------- modules: reprs, buffers, names

MODULES = [   # (name, options) built in both libraries
    ("MarginRankingLoss", {}), ("MarginRankingLoss", dict(margin=0.5)), ("HingeEmbeddingLoss", {}),
    ("CosineEmbeddingLoss", {}), ("SoftMarginLoss", {}), ("MultiLabelSoftMarginLoss", {}),
    ("MultiLabelSoftMarginLoss", dict(weight=W)), ("MultiMarginLoss", {}), ("MultiMarginLoss", dict(p=2, weight=W)),
    ("MultiLabelMarginLoss", {}), ("TripletMarginLoss", dict(swap=True)), ("TripletMarginWithDistanceLoss", {}),
    ("TripletMarginWithDistanceLoss", dict(distance_function="l1")), ("GaussianNLLLoss", dict(full=True)),
    ("PoissonNLLLoss", dict(log_input=False)),
]


@needs_torch
@pytest.mark.parametrize("name, options", MODULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MODULES)])
def test_module_repr_state_dict_and_attributes_as_torch(name, options):
    tiny, ref = getattr(nn, name)(**_options(options, 0)), getattr(tnn, name)(**_options(options, 1))
    assert repr(tiny) == repr(ref)
    assert list(tiny.state_dict()) == list(ref.state_dict())
    for attr in ("reduction", "margin", "p", "eps", "swap", "full", "log_input"):
        assert getattr(tiny, attr, None) == getattr(ref, attr, None), attr


def test_names_are_installed_and_importable_from_torchs_paths():
    from tinyres.nn.modules import loss as shim
    for fname, module in LOSSES.items():
        assert getattr(F, fname) is getattr(nn.loss, fname) and fname not in F.__all__
        assert fname in nn.loss.FUNCTIONS and module in nn.loss.__all__
        assert getattr(shim, module) is getattr(nn, module)


def test_legacy_size_average_and_reduce():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MultiMarginLoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        loss = F.soft_margin_loss(tinyres.tensor(X), tinyres.tensor(SIGNS), reduce=False)
    assert loss.shape == X.shape


# ---------------------------------------------------------------------- errors

def _error(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except Exception as e:      # noqa: BLE001 -- the type is what is compared
        return e
    raise AssertionError("no error")


BAD = {   # name: (function, arrays, options, a part of torch's message)
    "margin_ranking-dims": ("margin_ranking_loss", [X, V, V], {}, "All input tensors should have same dimension"),
    "margin_ranking-sizes": ("margin_ranking_loss", [V, V, V[:3]], {}, ""),
    "hinge_embedding-sizes": ("hinge_embedding_loss", [X, SIGNS[:3]], {}, ""),
    "cosine_embedding-2d-target": ("cosine_embedding_loss", [X, X2, SIGNS], {}, "0D or 1D target tensor expected"),
    "cosine_embedding-dims": ("cosine_embedding_loss", [X, X2[0], SIGNS_N], {}, "1D target tensor expects 2D input"),
    "cosine_embedding-sizes": ("cosine_embedding_loss", [X, X2, SIGNS_N[:3]], {}, ""),
    "soft_margin-sizes": ("soft_margin_loss", [X, SIGNS[:, :3]], {}, ""),
    "multilabel_soft_margin-weight": ("multilabel_soft_margin_loss", [X, P01], dict(weight=W[:3]), ""),
    "multi_margin-target-size": ("multi_margin_loss", [X, LABELS[:2]], {}, "target tensor should be 1-D"),
    "multi_margin-out-of-range": ("multi_margin_loss", [X, LABELS + 2], {}, "target out of range"),
    "multi_margin-negative": ("multi_margin_loss", [X, LABELS - 4], {}, "target out of range"),
    "multi_margin-p": ("multi_margin_loss", [X, LABELS], dict(p=3), "only p == 1 and p == 2 supported"),
    "multi_margin-weight-2d": ("multi_margin_loss", [X, LABELS], dict(weight=W[None]), "weight must be one-dimensional"),
    "multi_margin-weight-size": ("multi_margin_loss", [X, LABELS], dict(weight=W[:4]), "inconsistent weight size"),
    "multi_margin-3d": ("multi_margin_loss", [X[None], LABELS], {}, "Expected non-empty vector or matrix"),
    "multi_margin-float-target": ("multi_margin_loss", [X, LABELS * 1.0], {}, ""),
    "multilabel_margin-target-size": ("multilabel_margin_loss", [X, LISTS[:, :3]], {}, "inconsistent target size"),
    "multilabel_margin-out-of-range": ("multilabel_margin_loss", [X, LISTS + 1], {}, "out of range"),
    "multilabel_margin-below-minus-one": ("multilabel_margin_loss", [X, LISTS - 2], {}, "out of range"),
    "multilabel_margin-empty": ("multilabel_margin_loss", [X[:, :0], LISTS[:, :0]], {}, "Expected non-empty vector"),
    "triplet_margin-dims": ("triplet_margin_loss", [X, X2, X3[0]], {}, "same number of dimensions"),
    "triplet_margin-sizes": ("triplet_margin_loss", [X, X2[:3], X3], {}, ""),
    "triplet_margin-margin": ("triplet_margin_loss", [X, X2, X3], dict(margin=0.0), "margin must be greater than 0"),
    "triplet_distance-dims": ("triplet_margin_with_distance_loss", [X, X2, X3[0]], {}, "same number of dimensions"),
    "triplet_distance-margin": ("triplet_margin_with_distance_loss", [X, X2, X3], dict(margin=-1.0),
                                "margin must be greater than 0"),
    "gaussian_nll-negative-var": ("gaussian_nll_loss", [X, X2, -VAR], {}, "var has negative entry/entries"),
    "gaussian_nll-negative-number": ("gaussian_nll_loss", [X, X2], dict(var=-1.0), "var has negative entry/entries"),
    "gaussian_nll-var-size": ("gaussian_nll_loss", [X, X2, VAR[:, :3]], {}, "var is of incorrect size"),
    "gaussian_nll-var-two-dims": ("gaussian_nll_loss", [X[None], X2[None], VAR[:1, :1][None]], {},
                                  "var is of incorrect size"),
    "gaussian_nll-target-size": ("gaussian_nll_loss", [X, X2[:3], VAR], {}, ""),
    "poisson_nll-sizes": ("poisson_nll_loss", [X, COUNTS[:3]], {}, ""),
}


def _both_errors(fname, arrays, options):
    def run(lib):
        tensors = [tinyres.tensor(a) if lib == 0 else torch.tensor(a) for a in arrays]
        opts = _options(options, lib)
        extra = (opts.pop("var"),) if "var" in opts else ()
        fn = getattr(F if lib == 0 else TF, fname)
        return _error(lambda: fn(*tensors, *extra, **opts))
    return run(0), run(1)


@needs_torch
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_raises_torchs_error_naming_the_loss(name):
    fname, arrays, options, message = BAD[name]
    got, want = _both_errors(fname, arrays, options)
    assert type(got) is type(want), (got, want)
    assert message in str(want) and message in str(got), (got, want)
    assert fname in str(got), got


@needs_torch
@pytest.mark.parametrize("fname", sorted(LOSSES))
def test_bad_reduction_raises_torchs_value_error(fname):
    case = next(c for c in sorted(CASES) if CASES[c][0] == fname)
    got, want = _both_errors(fname, CASES[case][2], dict(CASES[case][1], reduction="avg"))
    assert isinstance(got, ValueError) and isinstance(want, ValueError), (got, want)
    assert "avg is not" in str(got) and "avg is not" in str(want) and fname in str(got)


@needs_torch
@pytest.mark.parametrize("name, options", [("MultiMarginLoss", dict(p=3)), ("MultiMarginLoss", dict(weight=W[None])),
                                           ("TripletMarginLoss", dict(margin=0)),
                                           ("TripletMarginWithDistanceLoss", dict(margin=-1.0))])
def test_bad_module_options_raise_torchs_error(name, options):
    got = _error(lambda: getattr(nn, name)(**_options(options, 0)))
    want = _error(lambda: getattr(tnn, name)(**_options(options, 1)))
    assert type(got) is type(want) and str(want) in str(got), (got, want)
