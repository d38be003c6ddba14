"""F.unfold / F.fold (nn.Unfold, nn.Fold) and F.affine_grid / F.grid_sample against torch in
float64: values, gradients under a random upstream gradient, second order, errors and
warnings (tinyres/nn/functional/fold.py and vision.py)."""
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import compare_grad_chain_with_torch, compare_second_order_with_torch, compare_with_torch, randn

import tinyres
from tinyres import nn
from tinyres.nn import functional as F

# (kernel_size, dilation, padding, stride, input shape); the last two are unbatched
GEOMETRIES = [(2, 1, 0, 1, (2, 3, 5, 6)),
              ((2, 3), (2, 1), (1, 2), (2, 3), (2, 2, 7, 6)),
              (3, 1, 1, 2, (1, 2, 6, 5)),              # overlapping blocks, padding
              (1, 1, 0, 1, (2, 3, 2, 3)),
              ((3, 2), 1, 0, (1, 2), (3, 5, 4)),
              (2, 2, 1, 1, (1, 4, 4))]


def _geometry(case):
    kernel_size, dilation, padding, stride, shape = case
    return dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride), shape


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("case", GEOMETRIES, ids=str)
def test_unfold_and_fold_match_torch(case, contiguous):
    kw, shape = _geometry(case)
    cols = compare_with_torch(lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw), [randn(*shape)],
                              contiguous=contiguous)
    size = shape[-2:]
    compare_with_torch(lambda c: F.fold(c, size, **kw), lambda c: TF.fold(c, size, **kw),
                       [randn(*cols.shape, seed=1)], contiguous=contiguous)


@pytest.mark.parametrize("case", GEOMETRIES[1:3], ids=str)
def test_unfold_and_fold_derivatives_to_third_order(case):
    """Each one's backward is the other: the chain of derivatives runs through both, both ways."""
    kw, shape = _geometry(case)
    compare_grad_chain_with_torch(lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw), [randn(*shape)])
    cols = TF.unfold(torch.zeros(shape), **kw).shape
    compare_grad_chain_with_torch(lambda c: F.fold(c, shape[-2:], **kw), lambda c: TF.fold(c, shape[-2:], **kw),
                                  [randn(*cols, seed=1)])


def test_fold_is_the_adjoint_of_unfold_and_unfold_is_convs_im2col_matrix():
    x, w = randn(2, 3, 6, 5), randn(4, 3, 3, 2, seed=1)
    cols = F.unfold(tinyres.tensor(x), (3, 2), padding=1, stride=2)
    g = randn(*cols.shape, seed=2)
    back = F.fold(tinyres.tensor(g), (6, 5), (3, 2), padding=1, stride=2)
    np.testing.assert_allclose((cols.numpy() * g).sum(), (x * back.numpy()).sum(), rtol=1e-12)
    conv = F.conv2d(tinyres.tensor(x), tinyres.tensor(w), padding=1, stride=2)
    by_matrix = (tinyres.tensor(w).reshape(4, -1) @ cols).reshape(conv.shape)
    np.testing.assert_allclose(by_matrix.numpy(), conv.numpy(), rtol=1e-12, atol=1e-12)
    assert F.unfold(tinyres.zeros(0, 3, 4, 4), 2).shape == (0, 12, 9)
    assert F.fold(tinyres.zeros(0, 12, 9), (4, 4), 2).shape == (0, 3, 4, 4)


def test_the_modules_are_torchs():
    for ours, theirs in [(nn.Unfold(2), torch.nn.Unfold(2)),
                         (nn.Unfold((2, 3), dilation=2, padding=1, stride=(1, 2)),
                          torch.nn.Unfold((2, 3), dilation=2, padding=1, stride=(1, 2))),
                         (nn.Fold((5, 6), 2), torch.nn.Fold((5, 6), 2)),
                         (nn.Fold([4, 5], [2, 2], 1, 2, 3), torch.nn.Fold([4, 5], [2, 2], 1, 2, 3))]:
        assert repr(ours) == repr(theirs)
    x = randn(2, 3, 5, 6)
    np.testing.assert_array_equal(nn.Unfold(2, stride=2)(tinyres.tensor(x)).numpy(),
                                  torch.nn.Unfold(2, stride=2)(torch.tensor(x)).numpy())
    from tinyres.nn.modules import fold
    assert fold.Fold is nn.Fold and fold.Unfold is nn.Unfold


def _same_error(ours, theirs, expected=None):
    """Both raise one exception type; ours says what torch's says (or ``expected``)."""
    with pytest.raises(Exception) as theirs_info:
        theirs()
    expected = str(theirs_info.value) if expected is None else expected
    with pytest.raises(type(theirs_info.value), match=re.escape(expected)):
        ours()


X4, COLS = (2, 3, 5, 6), (2, 12, 20)          # the shapes of an image batch and of its 2x2 columns
# (op, input shape, arguments, keywords)
UNFOLD_FOLD_ERRORS = [
    ("unfold", (1, 2, 3, 4, 5), (2,), {}), ("unfold", X4, (7,), {}), ("unfold", X4, (2,), dict(dilation=0)),
    ("unfold", X4, (2,), dict(padding=-1)), ("unfold", X4, (2,), dict(stride=0)), ("unfold", X4, (0,), {}),
    ("unfold", X4, ((2, 2, 2),), {}), ("unfold", X4, (2,), dict(padding=(1, 2, 3))),
    ("unfold", (2, 0, 4, 5), (2,), {}), ("unfold", (2, 3, 1, 6), (2,), {}),
    ("fold", COLS, ((5, 5), 2), {}), ("fold", (2, 11, 20), ((5, 6), 2), {}), ("fold", COLS + (1,), ((5, 6), 2), {}),
    ("fold", (12,), ((5, 6), 2), {}), ("fold", COLS, ((1, 1), 2), {}), ("fold", COLS, ((5, 6), 2), dict(stride=0)),
    ("fold", COLS, ((5, 6), 2), dict(dilation=0, padding=-1)), ("fold", COLS, ((5, 6, 7), 2), {}),
    ("fold", (2, 0, 20), ((5, 6), 2), {}), ("fold", (2, 12, 1), ((1, 1), 2), {})]


@pytest.mark.parametrize("op, shape, args, kwargs", UNFOLD_FOLD_ERRORS, ids=str)
def test_unfold_and_fold_refuse_what_torch_refuses(op, shape, args, kwargs):
    _same_error(lambda: getattr(F, op)(tinyres.zeros(*shape, dtype=tinyres.float64), *args, **kwargs),
                lambda: getattr(TF, op)(torch.zeros(shape, dtype=torch.float64), *args, **kwargs))


def test_unfold_errors_name_the_op_and_the_types():
    with pytest.raises(RuntimeError, match=r"unfold: Expected 3D or 4D \(batch mode\) tensor .* got: \[5, 6\]"):
        F.unfold(tinyres.zeros(5, 6), 2)            # torch: an IndexError from inside its check
    with pytest.raises(TypeError, match="unfold: kernel_size must be an int or a tuple of 2 ints, got 2.0"):
        F.unfold(tinyres.zeros(1, 1, 3, 3), 2.0)
    with pytest.raises(NotImplementedError, match="fold: not implemented for int64"):
        F.fold(tinyres.zeros(1, 4, 1, dtype=tinyres.int64), (2, 2), 2)


# ---------------------------------------------------------------------- grid_sample

def _axis_values(size, align_corners):
    """Grid values on every pixel centre, on -1 and 1, outside (several reflections away), and between."""
    centres = [2 * i / (size - 1) - 1 for i in range(size)] if align_corners else \
        [(2 * i + 1) / size - 1 for i in range(size)]
    return centres + [-1.0, 1.0, -1.5, 1.5, -3.25, 2.75, 3.0, -5.0, 0.1, -0.6]


def edge_grid(size, align_corners, n=2):
    """(n, *out, d): every combination of ``_axis_values`` per axis (components run W, H, D).
    The sizes make the centres exact (powers of two without align_corners, 2^k + 1 with)."""
    values = [_axis_values(s, align_corners) for s in size[::-1]]
    mesh = np.meshgrid(*values[::-1], indexing="ij")[::-1]
    return np.stack(mesh, -1)[None].repeat(n, 0)


def grid_sample_fn(lib, **kw):
    return lambda x, g: lib.grid_sample(x, g, **kw)


MODES_2D = [(m, p) for m in ("bilinear", "nearest", "bicubic") for p in ("zeros", "border", "reflection")]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode, padding_mode", MODES_2D, ids=str)
def test_grid_sample_on_borders_pixel_centres_and_outside_matches_torch(mode, padding_mode, align_corners):
    size = (3, 5) if align_corners else (2, 4)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    compare_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw),
                       [randn(2, 3, *size), edge_grid(size, align_corners)])
    grid = np.random.default_rng(4).uniform(-1.6, 1.6, (2, 3, 4, 2))
    compare_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw), [randn(2, 2, 4, 5), grid],
                       contiguous=False)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode, padding_mode", [m for m in MODES_2D if m[0] != "bicubic"], ids=str)
def test_volumetric_grid_sample_matches_torch(mode, padding_mode, align_corners):
    size = (3, 3, 5) if align_corners else (2, 2, 4)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    grid = edge_grid(size, align_corners, n=1)[:, ::3, ::2, ::2]       # a sample of the combinations
    compare_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw), [randn(1, 2, *size), grid])


@pytest.mark.parametrize("kw", [dict(mode="bilinear", padding_mode="zeros", align_corners=False),
                                dict(mode="bicubic", padding_mode="border", align_corners=True),
                                dict(mode="bicubic", padding_mode="reflection", align_corners=False),
                                dict(mode="nearest", padding_mode="zeros", align_corners=False)], ids=str)
def test_grid_sample_second_derivatives_match_torch(kw):
    grid = np.random.default_rng(5).uniform(-1.3, 1.3, (2, 3, 2, 2))
    compare_second_order_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw), [randn(2, 3, 4, 5), grid])


def test_volumetric_grid_sample_second_derivatives_match_torch():
    kw = dict(padding_mode="reflection", align_corners=True)
    grid = np.random.default_rng(6).uniform(-1.3, 1.3, (1, 2, 2, 3, 3))
    compare_second_order_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw), [randn(1, 2, 3, 4, 5), grid])


def test_grid_sample_float32_and_the_nearest_grid_gradient_is_zeros():
    kw = dict(mode="bicubic", align_corners=False)
    grid = np.random.default_rng(7).uniform(-1.2, 1.2, (2, 3, 2, 2)).astype(np.float32)
    compare_with_torch(grid_sample_fn(F, **kw), grid_sample_fn(TF, **kw), [randn(2, 3, 4, 5, dtype=np.float32), grid])
    x, g = tinyres.tensor(randn(1, 2, 3, 4), requires_grad=True), tinyres.tensor(grid[:1].astype(np.float64),
                                                                                  requires_grad=True)
    F.grid_sample(x, g, mode="nearest", padding_mode="border", align_corners=False).sum().backward()
    assert g.grad is not None and not g.grad.numpy().any() and x.grad.numpy().sum() == 2 * 3 * 2


X, GRID = (2, 3, 4, 5), (2, 3, 3, 2)
# (input shape, grid shape, keywords, what our message says where torch's is its kernel's)
GRID_SAMPLE_ERRORS = [
    (X, (1, 3, 3, 2), {}, None), (X, (2, 3, 3, 1), {}, None), ((3, 4, 5), GRID, {}, None), (X, (3, 3, 2), {}, None),
    (X, (2, 3, 3, 3, 2), {}, None), ((1,) + X, (1, 2, 3, 3, 3, 3), {}, None),
    ((2, 3, 1, 4, 5), (2, 3, 3, 3, 3), dict(mode="bicubic"), None), ((2, 3, 1, 4, 5), GRID, {}, None),
    ((2, 3, 0, 5), GRID, {}, None), (X, GRID, dict(mode="area"), None), (X, GRID, dict(padding_mode="circular"), None),
    (X, GRID, dict(dtype="float32"), "grid_sampler(): expected input and grid of one dtype"),
    (X, GRID, dict(dtype="int64"), "grid_sampler(): not implemented for int64")]


@pytest.mark.parametrize("x_shape, grid_shape, kwargs, expected", GRID_SAMPLE_ERRORS, ids=str)
def test_grid_sample_refuses_what_torch_refuses(x_shape, grid_shape, kwargs, expected):
    kwargs = dict(kwargs, align_corners=False)
    dtype = kwargs.pop("dtype", None)        # of the grid, and of the input too for int64
    x_dtype = dtype if dtype == "int64" else "float64"
    _same_error(lambda: F.grid_sample(tinyres.zeros(*x_shape, dtype=np.dtype(x_dtype)),
                                      tinyres.zeros(*grid_shape, dtype=np.dtype(dtype or "float64")), **kwargs),
                lambda: TF.grid_sample(torch.zeros(x_shape, dtype=getattr(torch, x_dtype)),
                                       torch.zeros(grid_shape, dtype=getattr(torch, dtype or "float64")), **kwargs),
                expected)


# ---------------------------------------------------------------------- affine_grid

@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 7, 3), (1, 1, 1, 4), (2, 3, 2, 3, 4), (1, 2, 3, 1, 2)], ids=str)
def test_affine_grid_matches_torch(size, align_corners):
    dims = len(size) - 2
    theta = randn(size[0], dims, dims + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # unit sizes with align_corners warn (as torch's)
        compare_second_order_with_torch(lambda t: F.affine_grid(t, size, align_corners=align_corners),
                                        lambda t: TF.affine_grid(t, size, align_corners=align_corners), [theta])
        identity = np.eye(dims, dims + 1)[None].repeat(size[0], 0)
        for dtype in (np.float64, np.float32):     # the base grid: torch's linspace, bit for bit
            ours = F.affine_grid(tinyres.tensor(identity.astype(dtype)), size, align_corners=align_corners)
            theirs = TF.affine_grid(torch.tensor(identity.astype(dtype)), size, align_corners=align_corners)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_affine_grid_then_grid_sample_is_a_spatial_transformer():
    theta = np.array([[[0.8, -0.3, 0.1], [0.25, 0.9, -0.2]]]).repeat(2, 0)
    x = randn(2, 3, 6, 5)

    def transform(lib):
        return lambda t, img: lib.grid_sample(img, lib.affine_grid(t, (2, 3, 4, 4), align_corners=False),
                                              align_corners=False)
    compare_second_order_with_torch(transform(F), transform(TF), [theta, x])
    identity = F.affine_grid(tinyres.tensor(np.eye(2, 3)[None]), (1, 1, 4, 8), align_corners=False)
    image = randn(1, 1, 4, 8)
    np.testing.assert_allclose(F.grid_sample(tinyres.tensor(image), identity, align_corners=False).numpy(), image,
                               rtol=1e-12, atol=1e-15)


# (theta shape and dtype, size, what our message says where torch's differs)
AFFINE_ERRORS = [((2, 2, 3), "float64", (2, 3, 4, 5, 6), "Expected a batch of 3D affine matrices of shape Nx3x4"),
                 ((2, 2, 3), "float64", (2, 3, 4), None),
                 ((2, 2, 3), "int64", (2, 3, 4, 5), "Expected theta to have floating point type, but got "),
                 ((2, 2, 3), "float64", (2, 3, 0, 5), None),
                 ((2, 3, 4), "float64", (2, 3, 4, 5), "Expected a batch of 2D affine matrices of shape Nx2x3"),
                 ((3, 2, 3), "float64", (2, 3, 4, 5), "affine_grid: expected theta with size[0] = 2 matrices")]


@pytest.mark.parametrize("shape, dtype, size, expected", AFFINE_ERRORS, ids=str)
def test_affine_grid_refuses_what_torch_refuses(shape, dtype, size, expected):
    _same_error(lambda: F.affine_grid(tinyres.zeros(*shape, dtype=np.dtype(dtype)), size, align_corners=False),
                lambda: TF.affine_grid(torch.zeros(shape, dtype=getattr(torch, dtype)), size, align_corners=False),
                expected)


def test_align_corners_none_warns_as_torch_and_means_false():
    x, grid = randn(1, 2, 3, 4), np.random.default_rng(8).uniform(-1, 1, (1, 2, 2, 2))
    for ours, theirs in [(lambda: F.grid_sample(tinyres.tensor(x), tinyres.tensor(grid)),
                          lambda: TF.grid_sample(torch.tensor(x), torch.tensor(grid))),
                         (lambda: F.affine_grid(tinyres.tensor(grid[:, 0, :, :].reshape(1, 2, 2)[..., [0, 1, 1]]),
                                                (1, 1, 2, 3)),
                          lambda: TF.affine_grid(torch.tensor(grid[:, 0, :, :].reshape(1, 2, 2)[..., [0, 1, 1]]),
                                                 (1, 1, 2, 3)))]:
        with pytest.warns(UserWarning) as theirs_warned:
            want = theirs()
        with pytest.warns(UserWarning, match=re.escape(str(theirs_warned[0].message))) as ours_warned:
            got = ours()
        assert ours_warned[0].filename == __file__          # the caller's line, as torch's stacklevel
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="affine_grid behavior has changed for unit-size grids"):
        F.affine_grid(tinyres.zeros(1, 2, 3, dtype=tinyres.float64), (1, 1, 1, 3), align_corners=True)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("shapes", [((0, 3, 5, 6), (0, 4, 3, 2)), ((2, 0, 5, 6), (2, 4, 3, 2)),
                                    ((2, 3, 5, 6), (2, 0, 3, 2)), ((0, 2, 3, 4, 5), (0, 2, 2, 2, 3))])
def test_grid_sample_of_an_empty_batch_channel_or_grid_is_empty_as_torch(mode, shapes):
    if mode == "bicubic" and len(shapes[0]) == 5:
        return                                    # torch has no volumetric bicubic
    results = []
    for lib, f in ((torch, TF), (tinyres, F)):
        x = lib.zeros(shapes[0], dtype=lib.float64, requires_grad=True)
        grid = lib.zeros(shapes[1], dtype=lib.float64, requires_grad=True)
        y = f.grid_sample(x, grid, mode=mode, align_corners=False)
        y.sum().backward()
        results.append([tuple(t.shape) for t in (y, x.grad, grid.grad)])
    assert results[0] == results[1]


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_of_nan_and_inf_grid_points_matches_torch(mode, padding_mode, align_corners):
    """torch's CPU kernel reads a NaN coordinate (a NaN, or an inf reflected) at 0."""
    nan, inf = float("nan"), float("inf")
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    grid = np.array([[[[nan, 0.3], [0.2, nan], [nan, nan], [inf, 0.1], [-inf, 0.2], [0.3, inf], [0.1, -inf],
                       [inf, inf], [0.25, -0.4]]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = F.grid_sample(tinyres.tensor(x), tinyres.tensor(grid), mode=mode, padding_mode=padding_mode,
                             align_corners=align_corners).numpy()
    theirs = TF.grid_sample(torch.tensor(x), torch.tensor(grid), mode=mode, padding_mode=padding_mode,
                            align_corners=align_corners).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, equal_nan=True)
