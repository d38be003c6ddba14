"""``affine_grid`` and ``grid_sample``: the spatial transformer's grid and sampler, as
``torch.nn.functional``'s.

**affine_grid.**  For ``size`` (N, C, H, W) and ``theta`` (N, 2, 3), each output pixel (i, j)
gets the normalized coordinates b = (x_j, y_i, 1) of its centre, x_j = linspace(-1, 1, W)[j]
(times (W - 1) / W without align_corners: the centres of W pixels spanning [-1, 1]; 0 when
W = 1), and

    grid[n, i, j] = theta[n] @ b                                     (N, H, W, 2),

one matmul of the base grid B (H W, 3) with theta^T, so gtheta[n] = ggrid[n]^T B by matmul's
backward.  For (N, C, D, H, W), b = (x, y, z, 1) and theta is (N, 3, 4).

**grid_sample.**  Input x (N, C, *S), S = (H, W) or (D, H, W), grid (N, *O, d): the output
y (N, C, *O) reads x at the point grid[n, q], whose components run along W, H (and D), -1 and
1 meaning the outer edges of the input (the centres of its corner pixels with
align_corners).  Along an axis of ``size`` pixels a grid value g is the pixel coordinate

    u = (g + 1) s - 1/2,  s = size / 2            (u = (g + 1) s,  s = (size - 1) / 2  with align_corners)

and ``padding_mode`` moves a u outside: 'border' clips it to [0, size - 1]; 'reflection'
reflects it about the edges (-1/2 and size - 1/2; 0 and size - 1 with align_corners) until
it lands inside, then clips; 'zeros' keeps it, and what it reads outside the input is 0.  The
derivative m = du/dg is s, times -1 for an odd number of reflections, and 0 where clipped (a
point exactly on a border counts as clipped, as torch's).  Along each axis the ``mode`` picks
a few taps, the pixels read, each with a weight:

    bilinear:  i = floor(u), t = u - i:   pixels i, i + 1;  weights 1 - t, t
    nearest:   pixel rint(u) (half to even);  weight 1
    bicubic:   i = floor(u) of the unpadded u, t = u - i:  pixels i - 1 ... i + 2, each padded
               on its own;  Keys' weights (A = -0.75)  c2(t + 1), c1(t), c1(1 - t), c2(2 - t),
               c1(d) = ((A + 2) d - (A + 3)) d^2 + 1,  c2(d) = ((A d - 5 A) d + 8 A) d - 4 A

A tap k of the output point q is one tap per axis: the input pixel p_k, 1 in valid_k when it
lies inside the input, with the product of the axes' weights W_k:

    y[n, c, q] = sum_k W_k[n, q] valid_k x[n, c, p_k]

Its gradients (``GridSample.backward``):

    gx[n, c, p_k] += W_k valid_k gy[n, c, q]                  (a scatter-add onto the pixels read)
    ggrid[n, q, a] = m_a sum_k (dW_k / dt_a) valid_k sum_c gy[n, c, q] x[n, c, p_k]

with nearest's W = 1 everywhere giving ggrid = 0, as torch's.  The backward is written in
tensor ops -- the gather of x (``GetItem``) and its adjoint scatter (``IndexBackward``), the
weights as polynomials of t_a, a tensor of the grid with derivative m_a -- so it is
differentiable again.
"""
import fractions
import itertools
import numbers
import warnings

import numpy

from ...core import backend
from ...core.backend import get_array_module
from ...core.engine import Function
from ...core.ops import GetItem, IndexBackward, matmul, stack
from ...core.tensor import Tensor

__all__ = ["affine_grid", "grid_sample"]

MODES = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("zeros", "border", "reflection")
CUBIC_A = -0.75
ALIGN_CORNERS_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since "
                         "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
                         "documentation of grid_sample for details.")


# ---------------------------------------------------------------------- one axis: coordinates, taps, weights

def _unnormalize(g, size, align_corners):
    """(u, s): the pixel coordinate of grid values ``g`` along an axis of ``size``, and du/dg."""
    if align_corners:
        s = (size - 1) / 2
        return (g + 1) * s, s
    s = size / 2
    return (g + 1) * s - 0.5, s


def _pad(u, size, padding_mode, align_corners, xp):
    """(u moved inside by ``padding_mode``, its derivative: 1, -1 or 0).  The reflection is
    torch's CPU kernel's: |u - low| folded into [0, 2 span], then mirrored in its upper half."""
    grad = xp.ones_like(u)
    if padding_mode == "zeros":
        return u, grad
    if padding_mode == "reflection":
        low, twice_span = (0.0, 2 * (size - 1)) if align_corners else (-0.5, 2 * size)
        if twice_span == 0:
            return xp.zeros_like(u), xp.zeros_like(u)
        v = u - low
        extra = xp.abs(v) - xp.trunc(xp.abs(v) / twice_span) * twice_span
        flip = extra > twice_span - extra
        u = xp.where(flip, twice_span - extra, extra) + low
        grad = xp.where(flip ^ (v < 0), -grad, grad)
    inside = (u > 0) & (u < size - 1)               # the borders themselves count as clipped
    u = xp.minimum(xp.maximum(u, 0), size - 1)
    return xp.where(xp.isnan(u), 0, u), grad * inside       # NaN (a NaN or reflected inf) reads 0, as torch


def _axis(g, size, mode, padding_mode, align_corners, xp):
    """One spatial axis: (its taps' pixel coordinates as floats, t, m = du/dg) of grid values ``g``."""
    u, m = _unnormalize(g, size, align_corners)
    if mode != "bicubic":
        u, slope = _pad(u, size, padding_mode, align_corners, xp)
        m = slope * m
    else:
        m = xp.full_like(g, m)
    if mode == "nearest":
        return [xp.rint(u)], None, m
    i = xp.floor(u)
    if mode == "bilinear":
        return [i, i + 1], u - i, m
    return [_pad(i + o, size, padding_mode, align_corners, xp)[0] for o in (-1, 0, 1, 2)], u - i, m


def _cubic(d, near):
    a = CUBIC_A
    return ((a + 2) * d - (a + 3)) * d * d + 1 if near else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a


def _cubic_slope(d, near):
    a = CUBIC_A
    return (3 * (a + 2) * d - 2 * (a + 3)) * d if near else (3 * a * d - 10 * a) * d + 8 * a


def _weights(mode, t):
    """The taps' weights along one axis, polynomials of t (arrays or tensors alike)."""
    if mode == "bilinear":
        return [1 - t, t]
    return [_cubic(t + 1, False), _cubic(t, True), _cubic(1 - t, True), _cubic(2 - t, False)]


def _slopes(mode, t):
    """d weight / dt for each of ``_weights``."""
    if mode == "bilinear":
        return [-1.0, 1.0]
    return [_cubic_slope(t + 1, False), _cubic_slope(t, True), -_cubic_slope(1 - t, True),
            -_cubic_slope(2 - t, False)]


def _product(factors):
    out = factors[0]
    for f in factors[1:]:
        out = out * f
    return out


def _combine(per_axis, combos, join=_product):
    """For each tap (one tap index per axis) its axes' factors joined: multiplied (weights,
    masks) or added (``sum``: the flat pixel position)."""
    return [join([per_axis[a][k] for a, k in enumerate(combo)]) for combo in combos]


# ---------------------------------------------------------------------- the op

class GridSample(Function):
    """y = grid_sample(x, grid): y[n, c, q] = sum_k W_k valid_k x[n, c, p_k] (see the module),
    x (N, C, *S), grid (N, *O, d), y (N, C, *O).

    Backward, for the upstream gy:

        gx[n, c, p_k] += W_k valid_k gy[n, c, q]                                    (IndexBackward)
        ggrid[n, q, a] = m_a sum_k (dW_k / dt_a) valid_k sum_c gy[n, c, q] x[n, c, p_k]   (GetItem)

    in tensor ops of gy, x and the grid: t_a enters as its saved value plus
    (g_a - g_a.detach()) m_a, which is t_a with derivative m_a, so the gradients are
    differentiable again (bilinear's ggrid depends on the grid through the other axis' t,
    bicubic's through every t).  Nearest: W = 1, ggrid = 0."""

    def forward(self, x, grid, mode, padding_mode, align_corners):
        xp = get_array_module(x)
        n, c, *size = x.shape
        dims = len(size)
        self.x_shape, self.grid_shape, self.mode = x.shape, grid.shape, mode
        g = grid.reshape(n, int(numpy.prod(grid.shape[1:-1])), dims)        # (explicit: N or Q may be 0)
        axes = [_axis(g[..., dims - 1 - a], size[a], mode, padding_mode, align_corners, xp) for a in range(dims)]
        self.combos = list(itertools.product(*(range(len(taps)) for taps, _, _ in axes)))
        strides = [int(numpy.prod(size[a + 1:])) for a in range(dims)]
        inside = [[(v >= 0) & (v <= s - 1) for v in taps] for (taps, _, _), s in zip(axes, size)]
        pixel = [[xp.where(ok, v, 0).astype(numpy.int64) * stride for v, ok in zip(taps, oks)]
                 for (taps, _, _), oks, stride in zip(axes, inside, strides)]
        self.valid = xp.stack(_combine(inside, self.combos), 1).astype(x.dtype)           # (N, K, Q)
        self.index = (xp.arange(n)[:, None, None], xp.stack(_combine(pixel, self.combos, sum), 1))
        self.ts, self.ms = [t for _, t, _ in axes], [m for _, _, m in axes]
        if mode == "nearest":
            weight = self.valid
        else:
            weight = xp.stack(_combine([_weights(mode, t) for t in self.ts], self.combos), 1) * self.valid
        columns = x.reshape(n, c, int(numpy.prod(size))).transpose(0, 2, 1)    # (N, H W, C)
        y = (weight[..., None] * columns[self.index]).sum(1)                # (N, Q, C)
        need_x_and_grid = self.needs_input_grad[1] and mode != "nearest"
        self.save_for_backward(x if need_x_and_grid else None, grid if need_x_and_grid else None)
        return y.transpose(0, 2, 1).reshape((n, c) + grid.shape[1:-1])

    def backward(self, gy):
        x, grid = self.saved_tensors
        n, c = self.x_shape[:2]
        dims = len(self.x_shape) - 2
        q = int(numpy.prod(self.grid_shape[1:-1]))                          # (explicit: N, C or Q may be 0)
        gy = gy.reshape(n, c, q).permute(0, 2, 1).unsqueeze(1)             # (N, 1, Q, C)
        valid = Tensor(self.valid)
        ts = [Tensor(t) for t in self.ts] if self.mode != "nearest" else None
        if grid is not None:                                                # t_a as a tensor of the grid
            g = grid.reshape(n, q, dims)
            ts = [t + (g[..., dims - 1 - a] - g[..., dims - 1 - a].detach()) * Tensor(m)
                  for a, (t, m) in enumerate(zip(ts, self.ms))]
        weights = [_weights(self.mode, t) for t in ts] if ts is not None else None
        gx = ggrid = None
        if self.next[0] is not None:
            weight = valid if weights is None else stack(_combine(weights, self.combos), 1) * valid
            gx = IndexBackward.apply(weight.unsqueeze(-1) * gy, (n, int(numpy.prod(self.x_shape[2:])), c),
                                     self.index)
            gx = gx.permute(0, 2, 1).reshape(self.x_shape)
        if self.next[1] is not None and grid is None:                     # nearest
            ggrid = Tensor(get_array_module(self.valid).zeros(self.grid_shape, dtype=self.valid.dtype))
        elif self.next[1] is not None:
            read = GetItem.apply(x.reshape(n, c, int(numpy.prod(self.x_shape[2:]))).permute(0, 2, 1),
                                 self.index)                                                 # (N, K, Q, C)
            seen = (read * gy).sum(-1) * valid                                            # (N, K, Q)
            slopes = [_slopes(self.mode, t) for t in ts]
            g_t = [(stack(_combine(weights[:a] + [slopes[a]] + weights[a + 1:], self.combos), 1) * seen).sum(1)
                   * Tensor(m) for a, m in enumerate(self.ms)]
            ggrid = stack(g_t[::-1], -1).reshape(self.grid_shape)          # components run W, H, D
        return gx, ggrid


# ---------------------------------------------------------------------- the functions

def _warn_align_corners(align_corners):
    if align_corners is None:
        warnings.warn(ALIGN_CORNERS_WARNING, UserWarning, stacklevel=3)
        return False
    return bool(align_corners)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """``input`` (N, C, H, W) or (N, C, D, H, W) read at the points of ``grid`` (N, H_out,
    W_out, 2) or (N, D_out, H_out, W_out, 3), normalized to [-1, 1]: ``torch.nn.functional.grid_sample``
    (see the module).  ``mode``: 'bilinear', 'nearest' or 'bicubic' (4-D only); ``padding_mode``:
    'zeros', 'border' or 'reflection'; ``align_corners`` None is False, with torch's warning.
    Differentiable with respect to the input and the grid."""
    op = "grid_sampler()"
    if mode not in MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in PADDING_MODES:
        raise ValueError("nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    align_corners = _warn_align_corners(align_corners)
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: argument '{name}' must be Tensor, not {type(t).__name__}")
    sizes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.ndim < 1 or grid.ndim < 1 or input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"{op}: expected grid and input to have same batch size, but got {sizes}")
    if grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"{op}: expected grid to have size {input.ndim - 2} in last dimension, but got grid "
                           f"with sizes {list(grid.shape)}")
    for axis in range(2, input.ndim):
        if input.shape[axis] == 0:
            raise RuntimeError(f"{op}: expected input to have non-empty spatial dimensions, but input has sizes "
                               f"{list(input.shape)} with dimension {axis} being empty")
    dims = 4 if input.ndim == 4 else 5
    if input.ndim != dims or grid.ndim != dims:
        raise RuntimeError(f"{op}: expected {dims}D input and grid with same number of dimensions, but got {sizes}")
    if mode == "bicubic" and dims == 5:
        raise RuntimeError(f"{op}: bicubic interpolation only supports 4D input")
    if input.dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for {input.dtype} input (a floating point tensor "
                                  "is expected)")
    if grid.dtype != input.dtype:
        raise RuntimeError(f"{op}: expected input and grid of one dtype, got input {input.dtype} and grid "
                           f"{grid.dtype}")
    return GridSample.apply(input, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


def _base_coordinates(steps, align_corners, dtype):
    """The normalized centres of ``steps`` pixels (a host array, from the sizes alone): torch's
    linspace(-1, 1) -- each half counted from its own end, -1 + step i or 1 - step (steps - 1 - i),
    each rounded once (torch's kernel fuses the multiply and the add) -- scaled by
    (steps - 1) / steps without align_corners; [0] for one pixel."""
    if steps <= 1:
        return numpy.zeros(1, dtype)
    step = fractions.Fraction(float(dtype.type(2) / dtype.type(steps - 1)))
    line = numpy.array([float(-1 + step * i if i < steps // 2 else 1 - step * (steps - 1 - i))
                        for i in range(steps)]).astype(dtype)
    return line if align_corners else (line * dtype.type(steps - 1) / dtype.type(steps)).astype(dtype)


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of the affine maps ``theta`` (N, 2, 3) for an output of ``size`` (N, C,
    H, W) -- (N, H, W, 2) -- or of ``theta`` (N, 3, 4) for (N, C, D, H, W) -- (N, D, H, W, 3):
    ``torch.nn.functional.affine_grid`` (see the module), for ``grid_sample``."""
    align_corners = _warn_align_corners(align_corners)
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid: expected theta to be a Tensor, got {type(theta).__name__}")
    if theta.dtype.kind != "f":
        raise ValueError(f"affine_grid: Expected theta to have floating point type, but got {theta.dtype}")
    if not isinstance(size, (tuple, list)) or not all(isinstance(s, numbers.Integral) for s in size):
        raise TypeError(f"affine_grid: expected size to be a tuple of ints, got {size!r}")
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError("affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    dims = len(size) - 2
    if theta.ndim != 3 or theta.shape[1:] != (dims, dims + 1):
        kind = "2D affine matrices of shape Nx2x3" if dims == 2 else "3D affine matrices of shape Nx3x4"
        raise ValueError(f"affine_grid: Expected a batch of {kind} for size {size}. Got {theta.shape}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", UserWarning, stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"affine_grid: Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != size[0]:
        raise RuntimeError(f"affine_grid: expected theta with size[0] = {size[0]} matrices, got theta of shape "
                           f"{theta.shape}")
    lines = [_base_coordinates(s, align_corners, theta.dtype) for s in spatial[::-1]]     # x (W), y (H), z (D)
    mesh = list(numpy.meshgrid(*lines[::-1], indexing="ij"))[::-1]                          # each of shape spatial
    base = numpy.stack(mesh + [numpy.ones(spatial, theta.dtype)], -1).reshape(1, -1, dims + 1)
    grid = matmul(Tensor(backend.to_device(base, theta.device)), theta.transpose(1, 2))   # (N, prod(spatial), d)
    return grid.reshape(size[:1] + spatial + (dims,))
