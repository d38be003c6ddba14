"""``tinyres.nn.utils.parametrizations``: weight normalisation, spectral normalisation and orthogonal weights as
parametrizations (``parametrize.register_parametrization``), as ``torch.nn.utils.parametrizations``.
A checkpoint of the old hook-based ``weight_norm`` (keys ``weight_g``, ``weight_v``) loads
into the new one, by a load_state_dict pre-hook, as torch's.

``weight_norm(module, name="weight", dim=0)``::

    weight = g * v / ||v||     original0 = g = ||weight|| (over every dim but ``dim``), original1 = v = weight

``spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)``::

    W_mat = weight as a matrix (``dim`` first, the rest flattened)
    in training mode, n times, without gradient:  u <- normalize(W_mat v),  v <- normalize(W_mat^T u)
    weight = original / sigma,   sigma = u . (W_mat v)

u and v are the buffers ``_u``, ``_v`` of the parametrization (state_dict keys
``parametrizations.weight.0._u`` and ``._v``), drawn from N(0, 1) from the default generator
and moved by 15 power steps when it is made: other draws than torch's; load torch's to
follow it.  Backward treats u and v as constants (the gradient of ``original / sigma`` at
fixed u and v, as torch's).  A 1-D weight is just ``normalize(weight)``.  Assigning
``module.weight = W`` sets the originals from ``W``.

``orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True)``, for
a weight (..., m, n) seen as a batch of matrices, a wide one (m < n) transposed first and back
after, so that n <= m below::

    "matrix_exp":  Q = exp(A)[:, :n]                             A = S - S^T,  S = [tril(original) | 0] (m, m)
    "cayley":      Q = ((I - A/2)^{-1} (I + A/2))[:, :n]
    "householder": Q = H_1 ... H_n [I_n; 0] * diag(original)       H_i = I - tau_i v_i v_i^T,  tau_i = 2 / (1 + ||v_i||^2),
                                                                  v_i column i of tril(original, -1), 1 at row i
    weight = base @ Q  (use_trivialization, the default),  else Q

All are tinyres ops (``linalg.matrix_exp``, ``linalg.solve``, ``linalg.householder_product``),
so backward reaches ``original``.  The default map is "matrix_exp" for square matrices, else
"householder" (real tensors only here).  With ``use_trivialization`` the buffer ``base``
(m, m; state_dict key ``parametrizations.weight.0.base``) holds an orthogonal matrix and
``original`` starts at -I (so Q = I): assigning ``module.weight = W`` (and registering, with
the weight there is) sets ``base`` to W itself when it is orthogonal, else to the Q of its QR
(diag(R) >= 0) -- W's columns completed by random ones when it is not square (those do not
change the weight) -- and ``original`` to -I again.  Without it, "householder" sets
``original`` from W's QR (LAPACK's geqrf: the reflectors, and diag(R)'s signs on the diagonal;
any W works, its QR's Q is what is kept), and the other two maps cannot be assigned
(NotImplementedError, as torch's).
"""
from ...core import backend
from ...core.backend import get_array_module
from ...core.composite import allclose, diagonal, eye, finfo, mT, sign, tril
from ...core.grad_mode import no_grad
from ...core.linalg import householder_product, matrix_exp, solve
from ...core.ops import cat
from ...core.tensor import Tensor, randn, zeros
from .. import functional as F
from ..module import Module
from . import parametrize
from .spectral_norm import _default_dim, power_step
from .weight_norm import _weight_norm, norm_except_dim

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


class _WeightNorm(Module):
    """weight = g * v / ||v|| from (g, v) = (original0, original1)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """``module.<name>`` as ``g * v / ||v||``, from the parameters
    ``parametrizations.<name>.original0`` (g) and ``.original1`` (v), ||v|| over every dim
    but ``dim`` (``None``: over all of v).  Returns ``module``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                 error_msgs):
        """A checkpoint of the old hook-based ``weight_norm`` (``<name>_g``, ``<name>_v``)
        loads into this one, as torch's."""
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)
    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value of the weight as a matrix, estimated
    by power iteration on the buffers ``_u`` and ``_v``."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            self.register_buffer("_u", F.normalize(weight_mat.new_empty(h).normal_(0, 1), dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(weight_mat.new_empty(w).normal_(0, 1), dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat, n_power_iterations):
        for _ in range(n_power_iterations):
            power_step(self._u, weight_mat, self._v, self.eps)
            power_step(self._v, weight_mat.t(), self._u, self.eps)

    def forward(self, weight):
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()     # the buffers move on; backward keeps these
        sigma = u.dot(weight_mat @ v)
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """``module.<name>`` as ``original / sigma`` (see the module's docstring), ``original``
    the parameter ``parametrizations.<name>.original``.  ``dim=None``: 1 for a transposed
    convolution, else 0.  Returns ``module``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    dim = _default_dim(module) if dim is None else dim
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module



# ---------------------------------------------------------------------- orthogonal

_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _is_orthogonal(Q):
    """Q^T Q = I within an atol of 10 m eps (torch's test), for Q (..., m, n)."""
    m, n = Q.shape[-2:]
    return allclose(mT(Q) @ Q, eye(n, dtype=Q.dtype, device=Q.device), atol=10.0 * m * finfo(Q.dtype).eps)


def _geqrf(A):
    """``torch.geqrf``: LAPACK's QR of the matrices of ``A`` (..., m, n), as (X, tau) arrays -- R in
    X's upper triangle, the Householder vectors below its diagonal (NumPy's ``qr(mode='raw')``,
    which gives X transposed)."""
    xp = get_array_module(A.array)
    with backend.on_device(A.device):
        h, tau = xp.linalg.qr(A.array, mode="raw")
    return xp.ascontiguousarray(xp.swapaxes(h, -1, -2)), tau


def _make_orthogonal(A):
    """Q of A = QR with diag(R) >= 0, for a tall or square ``A``: geqrf, householder_product,
    and Q's columns times the signs of R's diagonal (torch's)."""
    x, tau = _geqrf(A)
    with backend.on_device(A.device):
        X, tau = Tensor(x), Tensor(tau)
    return householder_product(X, tau) * sign(diagonal(X, 0, -2, -1)).unsqueeze(-2)


class _Orthogonal(Module):
    """An orthogonal matrix (or batch of them) from ``original`` by one of the maps of the
    module's docstring, times the buffer ``base`` when ``use_trivialization``."""

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2:]
        transposed = n < k
        if transposed:
            X = mT(X)
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = tril(X)
            if n != k:
                X = cat([X, zeros(*X.shape[:-2], n, n - k, dtype=X.dtype, device=X.device)], -1)
            A = X - mT(X)
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:
                Id = eye(n, dtype=A.dtype, device=A.device)
                Q = solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = tril(X, -1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = householder_product(A, tau)
            # the diagonal of X holds +-1: a constant sign per column (no gradient, as torch's int cast)
            Q = Q * diagonal(X, 0, -2, -1).detach().int().to(Q.dtype).unsqueeze(-2)
        if hasattr(self, "base"):
            Q = self.base @ Q
        return mT(Q) if transposed else Q

    def right_inverse(self, Q):
        """``original`` for the weight ``Q`` (see the module's docstring); sets ``base``."""
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        with no_grad():
            Q_init = Q
            n, k = Q.shape[-2:]
            transpose = n < k
            if transpose:
                Q = mT(Q)
                n, k = k, n
            if not hasattr(self, "base"):
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                              "parametrizations when use_trivialization=False.")
                # the reflectors, and on the diagonal the signs of R's (flipped where tau = 0, a
                # reflector LAPACK skipped: forward's tau = 2 / (1 + 0) flips that column back)
                x, tau = _geqrf(Q)
                xp = get_array_module(x)
                d = xp.arange(k)
                x[..., d, d] = xp.where(tau == 0, -1, 1) * xp.sign(x[..., d, d])
                with backend.on_device(Q.device):
                    A = Tensor(x)
                return mT(A) if transpose else A
            if n == k:
                Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:           # completed into an n x n orthogonal matrix
                N = randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(cat([Q, N], -1))
            self.base = Q
            # -I: then Q = I in forward, for each map (householder: H_i = I - 2 e_i e_i^T, times -1)
            neg_Id = -eye(*Q_init.shape[-2:], dtype=Q_init.dtype, device=Q_init.device)
            return neg_Id.expand(*Q_init.shape).clone()


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """``module.<name>`` (..., m, n) made orthogonal: Q^T Q = I_n if m >= n, Q Q^T = I_m if
    m < n, computed from the parameter ``parametrizations.<name>.original`` by
    ``orthogonal_map`` ("matrix_exp", "cayley" or "householder"; default "matrix_exp" for
    square matrices, else "householder"), times the buffer ``base`` when
    ``use_trivialization`` (see the module's docstring).  Returns ``module``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
