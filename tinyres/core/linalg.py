"""torch.linalg (``tinyres.linalg``), and torch's top-level matrix functions (``torch.det``,
``torch.inverse``, ``torch.svd`` ...), batched over the leading dimensions as torch's.

Notation: ``X^T`` swaps the last two dims (``mT``); ``gX`` is the gradient of the loss with
respect to ``X``; ``I o X`` keeps the diagonal of ``X``.

The factorizations (inv, det, slogdet, solve, cholesky, qr, eigh, svd) are ``Function``s:
forward calls the backend's ``xp.linalg`` (NumPy's, or CuPy's cuSOLVER), backward is written
with tinyres's ops on Tensors, so it is differentiable again.  One with several outputs
(slogdet, qr, eigh, svd) returns them packed in one array -- each part flattened over its
matrix dims, the parts joined on the last axis -- and hands each out as a slice of it: its
saved output then holds every part, each differentiable through the node itself, and the
gradient of the packed array holds each part's (0 for a part no one used).  The rest (the
norms, pinv, lstsq, matrix_power, matrix_exp, cross, ...) is made of ops.

CuPy: ``cupy.linalg`` has inv, solve, det, slogdet, cholesky, qr, svd and eigh -- all this
module asks of ``xp.linalg`` (it has no ``eig``, ``cond``, ``multi_dot`` or ``cross``, which
are built here or not used).  cuSOLVER reports no singular or non-positive-definite input
unless ``cupyx.errstate`` asks it to, so on a GPU inv, solve and cholesky check their result
instead (an inverse that is not finite, a Cholesky factor whose diagonal is not positive):
one read back to the host, where torch's CUDA ops synchronise to read LAPACK's ``info``.
``matrix_exp`` reads the norm of its input to choose its scaling (one read on a GPU too).

Where two eigenvalues (singular values) are equal, the eigenvectors (singular vectors) are
not unique and their gradient divides by zero: inf or NaN, as torch's.  ``eigvalsh`` and
``svdvals`` are ops of their own whose gradient needs no vectors' term (Q diag(gL) Q^T,
U diag(gS) Vh), so it is finite there, as torch's.

Importing this module installs the methods on Tensor (``x.det()``, ``x.inverse()`` ...).
"""
import builtins
import collections
import functools
import math
import numbers
import warnings

import numpy

from . import backend
from .backend import get_array_module
from .composite import (_no_gradient, amax, amin, diagonal as _diagonal, mT, movedim, norm as _norm, outer, select,
                        tril, triu)
from .engine import Function
from .ops import (_as_tensor, _axes, _axis, abs, broadcast_to, cat, getitem, matmul, reshape, squeeze, stack,
                  sum, unsqueeze, where)
from .tensor import Tensor

LinAlgError = type("LinAlgError", (RuntimeError,), {
    "__doc__": "torch.linalg.LinAlgError (a RuntimeError): a singular matrix given to inv or solve, a matrix "
               "that is not positive-definite given to cholesky.", "__module__": "tinyres.linalg"})

SlogdetResult = collections.namedtuple("linalg_slogdet", ["sign", "logabsdet"])
QRResult = collections.namedtuple("linalg_qr", ["Q", "R"])
EighResult = collections.namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SVDResult = collections.namedtuple("linalg_svd", ["U", "S", "Vh"])
LstsqResult = collections.namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])

_TORCH_DTYPE = {"float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


# ---------------------------------------------------------------------- checks and small helpers

def _float(x, op):
    """``x``, a Tensor of float32 or float64 (torch's errors for the others)."""
    x = _as_tensor(x, op)
    kind = _TORCH_DTYPE.get(str(x.dtype), str(x.dtype))
    if x.dtype == backend.float16:
        raise RuntimeError(f"{op}: Low precision dtypes not supported. Got {kind}")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got {kind}")
    return x


def _matrices(A, op, square=False, name="A"):
    """``A``, a float batch of matrices (square ones when ``square``)."""
    A = _as_tensor(A, op)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor {name} must have at least 2 dimensions.")
    if square and A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")
    return _float(A, op)


def _eye(n, like):
    """The n x n identity, a constant in ``like``'s dtype on its device."""
    with backend.on_device(like.device):
        return Tensor(get_array_module(like.array).eye(n, dtype=like.dtype))


def _diag_embed(v):
    """(..., n) -> (..., n, n) with ``v`` on the diagonal."""
    return unsqueeze(v, -1) * _eye(v.shape[-1], v)


def _pack(parts, batch):
    """The arrays ``parts`` (each ``batch`` + its own shape), flattened and joined on a last axis."""
    xp = get_array_module(parts[0])
    return xp.concatenate([p.reshape(batch + (math.prod(p.shape[len(batch):]),)) for p in parts], axis=-1)


def _unpack(packed, batch, shapes):
    """The Tensors of ``shapes`` that ``_pack`` joined into the Tensor ``packed`` (slices: differentiable)."""
    parts, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(reshape(getitem(packed, (Ellipsis, slice(start, start + size))), batch + tuple(shape)))
        start += size
    return parts


def _attempt(fn, a, failed):
    """``fn(a)`` (an xp.linalg call), or None where it failed: NumPy raises LinAlgError, CuPy's
    result says so (``failed(result, a)``, one read to the host)."""
    try:
        y = fn(a)
    except numpy.linalg.LinAlgError:
        return None
    return None if backend.is_device_array(y) and failed(y, a) else y


def _lapack(op, fn, a, failed, problem, element=None):
    """``fn(a)``, or torch's LinAlgError ``op: (Batch element i): problem`` -- ``i`` the first
    matrix of the batch that ``element`` (default ``fn``) fails on."""
    y = _attempt(fn, a, failed)
    if y is not None:
        return y
    where_ = ""
    if a.ndim > 2:
        flat = a.reshape((-1,) + a.shape[-2:])
        first = next((i for i in range(flat.shape[0]) if _attempt(element or fn, flat[i], failed) is None), 0)
        where_ = f"(Batch element {first}): "
    raise LinAlgError(f"{op}: {where_}{problem}")


def _not_finite(y, a):
    """On a GPU: a finite input gave a result that is not (a singular matrix), one read to the host."""
    xp = get_array_module(a)
    return bool(xp.isfinite(a).all() & ~xp.isfinite(y).all())


# ---------------------------------------------------------------------- inv, det, slogdet

class Inv(Function):
    """Y = A^{-1}.  From A Y = I: dY = -Y dA Y, so gA = -Y^T gY Y^T (the saved output Y)."""

    def forward(self, a):
        y = _lapack("linalg.inv", get_array_module(a).linalg.inv, a, _not_finite,
                    "The inversion could not be completed because the input matrix is singular.")
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return -(mT(y) @ gy @ mT(y))


def inv(A):
    """The inverse of each square matrix of ``A`` (..., n, n); a singular one raises LinAlgError."""
    return Inv.apply(_matrices(A, "linalg.inv", square=True))


class Det(Function):
    """d = det(A).  Jacobi's formula, dd = d tr(A^{-1} dA), gives gA = g d A^{-T} (with tinyres's
    inv, so that it is differentiable again; at a singular A, where torch's gradient is the
    cofactor matrix, the inverse raises LinAlgError)."""

    def forward(self, a):
        d = get_array_module(a).linalg.det(a)
        self.save_for_backward(a, d)
        return d

    def backward(self, g):
        a, d = self.saved_tensors
        return unsqueeze(unsqueeze(g * d, -1), -1) * mT(inv(a))


def det(A):
    """The determinant of each square matrix of ``A`` (..., n, n)."""
    return Det.apply(_matrices(A, "linalg.det", square=True))


class Slogdet(Function):
    """(sign, log|det A|), packed on a last axis of 2.  d log|det A| = tr(A^{-1} dA), so
    gA = g_logabsdet A^{-T}; the sign is piecewise constant and gets no gradient."""

    def forward(self, a):
        sign, logabsdet = get_array_module(a).linalg.slogdet(a)
        self.save_for_backward(a)
        return get_array_module(a).stack([sign, logabsdet], axis=-1)

    def backward(self, gy):
        a, = self.saved_tensors
        return unsqueeze(unsqueeze(select(gy, -1, 1), -1), -1) * mT(inv(a))


def slogdet(A):
    """(sign, logabsdet) of the determinant of each square matrix of ``A``: det = sign * exp(logabsdet)
    (sign 0 and logabsdet -inf for a singular matrix)."""
    packed = Slogdet.apply(_matrices(A, "linalg.slogdet", square=True))
    return SlogdetResult(select(packed, -1, 0), select(packed, -1, 1))


# ---------------------------------------------------------------------- solve

class Solve(Function):
    """X = A^{-1} B, for batches of matrices with the same batch dims.  From A X = B:
    dX = A^{-1} (dB - dA X), so gB = A^{-T} gX (a solve with A^T) and gA = -gB X^T."""

    def forward(self, a, b):
        xp = get_array_module(a)
        x = _lapack("linalg.solve", lambda m: xp.linalg.solve(m, b), a, _not_finite,
                    "The solver failed because the input matrix is singular.", element=xp.linalg.inv)
        self.save_for_backward(a, x)
        return x

    def backward(self, gx):
        a, x = self.saved_tensors
        gb = Solve.apply(mT(a), gx)
        return -(gb @ mT(x)), gb


def _solve(A, B, op="linalg.solve"):
    """A^{-1} B for a batch of square matrices A and of matrices B, batch dims broadcast."""
    batch = _broadcast_shapes(op, A.shape[:-2], B.shape[:-2])
    return Solve.apply(broadcast_to(A, batch + A.shape[-2:]), broadcast_to(B, batch + B.shape[-2:]))


def _broadcast_shapes(op, *shapes):
    try:
        return tuple(numpy.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(f"{op}: the batch dimensions {' and '.join(map(str, shapes))} do not broadcast") from None


def _same_dtype(op, A, B):
    if A.dtype != B.dtype:
        raise RuntimeError(f"{op}: Expected A and B to have the same dtype, but found A of type "
                           f"{_TORCH_DTYPE.get(str(A.dtype))} and B of type {_TORCH_DTYPE.get(str(B.dtype))} instead")


def solve(A, B, *, left=True):
    """X with A X = B (``left=False``: X A = B) for square ``A`` (..., n, n); ``B`` is a batch
    of vectors (..., n) when it is 1-D or has ``A.shape[:-1]``, else of matrices (..., n, k).
    Batch dims broadcast; a singular A raises LinAlgError."""
    op = "linalg.solve"
    A = _matrices(A, op, square=True)
    B = _float(B, op)
    _same_dtype(op, A, B)
    n = A.shape[-1]
    if not left:
        rows, cols = (B.shape[-1], 1) if B.ndim == 1 else B.shape[-2:]
        if B.ndim == 1 or cols != n:
            raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation XA = B ({n}x{n} and "
                               f"{rows}x{cols})")
        return mT(_solve(mT(A), mT(B)))
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    B2 = unsqueeze(B, -1) if vector else B
    if B2.shape[-2] != n:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation AX = B ({n}x{n} and "
                           f"{B2.shape[-2]}x{B2.shape[-1]})")
    X = _solve(A, B2)
    return squeeze(X, -1) if vector else X


def solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    """X with A X = B (``left=False``: X A = B), reading only the upper (or lower) triangle of
    ``A`` (and taking its diagonal as 1 when ``unitriangular``): ``solve`` of that triangle, so
    its gradient goes to the triangle alone.  A zero on the diagonal raises LinAlgError (torch's
    gives inf and NaN)."""
    op = "linalg.solve_triangular"
    A = _matrices(A, op, square=True)
    B = _matrices(B, op, name="B")
    _same_dtype(op, A, B)
    T = triu(A, 1 if unitriangular else 0) if upper else tril(A, -1 if unitriangular else 0)
    if unitriangular:
        T = T + _eye(A.shape[-1], A)
    needed, given = (A.shape[-1], B.shape[-2]) if left else (A.shape[-1], B.shape[-1])
    if needed != given:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                           f"({needed}x{needed} and {B.shape[-2]}x{B.shape[-1]})")
    return _solve(T, B, op) if left else mT(_solve(mT(T), mT(B), op))


# ---------------------------------------------------------------------- cholesky

class Cholesky(Function):
    """L = chol(A), A = L L^T, from the lower triangle of A.  With G = tril(L^T gL) and
    P = (G + tril(G, -1)^T) / 2 (symmetric, its diagonal half that of G):
    gA = L^{-T} P L^{-1} (torch's formula; two triangular solves)."""

    def forward(self, a):
        xp = get_array_module(a)
        l = _lapack("linalg.cholesky", xp.linalg.cholesky, a,
                    lambda l, a: not bool((xp.diagonal(l, axis1=-2, axis2=-1) > 0).all()),
                    "The factorization could not be completed because the input is not positive-definite.")
        self.save_for_backward(l)
        return l

    def backward(self, gl):
        l, = self.saved_tensors
        g = tril(mT(l) @ gl)
        p = 0.5 * (g + mT(tril(g, -1)))
        ga = solve_triangular(mT(l), p, upper=True)
        return solve_triangular(l, ga, upper=False, left=False)


def cholesky(A, *, upper=False):
    """L with A = L L^T, lower triangular with a positive diagonal, of each symmetric
    positive-definite matrix of ``A`` (its lower triangle is read); ``upper``: U = L^T with
    A = U^T U (its upper triangle is read).  A matrix that is not positive-definite raises
    LinAlgError."""
    A = _matrices(A, "linalg.cholesky", square=True)
    return mT(Cholesky.apply(mT(A))) if upper else Cholesky.apply(A)


# ---------------------------------------------------------------------- qr

def _times_inverse_transpose(X, R):
    """X R^{-T} for upper triangular R: Y with Y R^T = X."""
    return solve_triangular(mT(R), X, upper=False, left=False)


def _qr_backward(Q, R, gQ, gR):
    """gA of A = QR with Q (m, n) and R (n, n), m >= n.  With M = tril(Q^T gQ - gQ^T Q + R gR^T - gR R^T):
    gA = Q gR + (Q M + gQ - Q Q^T gQ) R^{-T}  (TensorFlow's QrGrad; the same as torch's)."""
    qdq = mT(Q) @ gQ
    rdr = R @ mT(gR)
    M = tril(qdq - mT(qdq) + rdr - mT(rdr))
    return Q @ gR + _times_inverse_transpose(Q @ M + gQ - Q @ qdq, R)


class QR(Function):
    """A = QR, Q and R packed.  m >= n: ``_qr_backward``.  m < n: A = [X | Y] and R = [U | V]
    with X = QU square, Y = QV: gX = _qr_backward(Q, U, gQ + Y gV^T, gU) and gY = Q gV.
    mode='complete' with m > n has no gradient (Q's last m - n columns are not unique), nor has
    mode='r' (torch's errors)."""

    def forward(self, a, mode):
        q, r = get_array_module(a).linalg.qr(a, mode="complete" if mode == "complete" else "reduced")
        self.mode, self.batch, self.shapes = mode, a.shape[:-2], (q.shape[-2:], r.shape[-2:])
        packed = _pack([q, r], self.batch)
        self.save_for_backward(packed)
        return packed

    def backward(self, gy):
        if self.mode == "r":
            raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                               "Please use linalg.qr(A, mode='reduced') if you are going to differentiate through "
                               "linalg.qr.")
        (m, k), (_, n) = self.shapes
        if self.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        Q, R = _unpack(self.saved_tensors[0], self.batch, self.shapes)
        gQ, gR = _unpack(gy, self.batch, self.shapes)
        if m >= n:
            return _qr_backward(Q, R, gQ, gR)
        U, V = R[..., :m], R[..., m:]
        gU, gV = gR[..., :m], gR[..., m:]
        gX = _qr_backward(Q, U, gQ + (Q @ V) @ mT(gV), gU)
        return cat([gX, Q @ gV], -1)


def qr(A, mode="reduced"):
    """(Q, R), A = QR with Q's columns orthonormal and R upper triangular.  ``mode``: 'reduced'
    (Q (..., m, k), R (..., k, n), k = min(m, n)), 'complete' (Q (..., m, m)), 'r' (R alone; Q empty).
    The signs are LAPACK's (R's diagonal may be negative), as torch's on a CPU."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           "or 'complete'")
    A = _matrices(A, "linalg.qr")
    m, n = A.shape[-2:]
    k = m if mode == "complete" else builtins.min(m, n)
    batch = A.shape[:-2]
    Q, R = _unpack(QR.apply(A, mode), batch, ((m, k), (k, n)))
    if mode == "r":
        with backend.on_device(A.device):
            Q = Tensor(get_array_module(A.array).zeros((0,), dtype=A.dtype))
    return QRResult(Q, R)


def householder_product(A, tau):
    """Q = H_1 H_2 ... H_k [I_n; 0] (..., m, n), the first n columns of the product of the
    Householder reflectors H_i = I - tau_i v_i v_i^T, for ``A`` (..., m, n) and ``tau`` (..., k),
    k <= n <= m (LAPACK's orgqr: ``geqrf``'s output gives QR's Q).  v_i is column i of ``A``
    with a 1 at row i and 0 above it: A's diagonal and upper triangle are not read (their
    gradient is 0).  Applied right to left from X = [I_n; 0], X <- X - tau_i v_i (v_i^T X):
    matmuls, so its gradient (and the second) is theirs."""
    op = "torch.linalg.householder_product"
    A, tau = _as_tensor(A, op), _as_tensor(tau, op)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: input must have at least 2 dimensions.")
    (m, n), k = A.shape[-2:], tau.shape[-1] if tau.ndim else 1
    if m < n:
        raise RuntimeError(f"{op}: input.shape[-2] must be greater than or equal to input.shape[-1]")
    if n < k:
        raise RuntimeError(f"{op}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if tau.ndim != A.ndim - 1:
        raise RuntimeError(f"{op}: Expected tau to have one dimension less than input, but got tau.ndim equal to "
                           f"{tau.ndim} and input.ndim is equal to {A.ndim}")
    if tau.shape[:-1] != A.shape[:-2]:
        raise RuntimeError(f"{op}: Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
                           f"{list(tau.shape[:-1])}")
    if tau.dtype != A.dtype:
        raise RuntimeError(f"{op}: tau dtype {_TORCH_DTYPE.get(str(tau.dtype), tau.dtype)} does not match input "
                           f"dtype {_TORCH_DTYPE.get(str(A.dtype), A.dtype)}")
    if A.dtype.kind != "f" or A.dtype == backend.float16:
        raise NotImplementedError(f"\"orgqr_cpu\" not implemented for '{_TORCH_DTYPE.get(str(A.dtype), A.dtype)}'")
    identity = _eye(m, A)[:, :n]
    if k == 0:                      # no reflectors: [I_n; 0], gradient 0 (torch's: None)
        with backend.on_device(A.device):
            return _no_gradient(get_array_module(A.array).broadcast_to(identity.array, A.shape).copy(), A)
    V = tril(A[..., :k], -1) + identity[:, :k]
    X = identity
    for i in range(k - 1, -1, -1):
        v = V[..., i:i + 1]
        X = X - (unsqueeze(tau[..., i:i + 1], -1) * v) @ (mT(v) @ X)
    return X


def orgqr(input, tau):
    """``torch.orgqr`` (and ``x.orgqr(tau)``): ``linalg.householder_product``."""
    return householder_product(input, tau)


# ---------------------------------------------------------------------- eigh

class Eigh(Function):
    """A = Q diag(L) Q^T for symmetric A, L ascending; L and Q packed.  With
    S = (Q^T gQ - gQ^T Q) / 2 and E[i, j] = L_j - L_i (1 on the diagonal, where S is 0):
    gA = Q (diag(gL) + S / E) Q^T  (torch's formula)."""

    def forward(self, a, uplo):
        w, v = get_array_module(a).linalg.eigh(a, UPLO=uplo)
        self.batch, self.n = a.shape[:-2], a.shape[-1]
        packed = _pack([w, v], self.batch)
        self.save_for_backward(packed)
        return packed

    def backward(self, gy):
        shapes = ((self.n,), (self.n, self.n))
        L, Q = _unpack(self.saved_tensors[0], self.batch, shapes)
        gL, gQ = _unpack(gy, self.batch, shapes)
        qgq = mT(Q) @ gQ
        E = unsqueeze(L, -2) - unsqueeze(L, -1) + _eye(self.n, L)
        inner = 0.5 * (qgq - mT(qgq)) / E + _diag_embed(gL)
        return Q @ inner @ mT(Q)


def eigh(A, UPLO="L"):
    """(eigenvalues, eigenvectors) of each symmetric matrix of ``A``, from its lower (``UPLO='L'``)
    or upper triangle: A = Q diag(L) Q^T, the eigenvalues ascending.  Each eigenvector's sign
    is LAPACK's choice (it may differ from torch's)."""
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    A = _matrices(A, "linalg.eigh", square=True)
    n = A.shape[-1]
    L, Q = _unpack(Eigh.apply(A, UPLO), A.shape[:-2], ((n,), (n, n)))
    return EighResult(L, Q)


class Eigvalsh(Function):
    """L, the eigenvalues of symmetric A = Q diag(L) Q^T.  gA = Q diag(gL) Q^T, with Q from
    ``eigh`` of the saved A in backward (so the gradient is differentiable again, through eigh)."""

    def forward(self, a, uplo):
        self.uplo = uplo
        self.save_for_backward(a)
        return get_array_module(a).linalg.eigvalsh(a, UPLO=uplo)

    def backward(self, gl):
        a, = self.saved_tensors
        Q = eigh(a, self.uplo).eigenvectors
        return (Q * unsqueeze(gl, -2)) @ mT(Q)


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of each symmetric matrix of ``A`` (its lower or upper triangle), ascending."""
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return Eigvalsh.apply(_matrices(A, "linalg.eigvalsh", square=True), UPLO)


# ---------------------------------------------------------------------- svd

class SVD(Function):
    """A = U diag(S) Vh, S descending; U, S, Vh packed.  With k = min(m, n), the first k columns of
    U and rows of Vh (and of their gradients: full_matrices' others get none, as torch's),
    J = U^T gU - gU^T U, K = Vh gVh^T - gVh Vh^T and E[i, j] = S_j^2 - S_i^2 (1 on the diagonal):
    G = (J diag(S) + diag(S) K) / E + diag(gS), and
    gA = U G Vh  (m = n),
    gA = (U G + (gU - U U^T gU) diag(S)^{-1}) Vh  (m > n),
    gA = U (G Vh + diag(S)^{-1} (gVh - gVh Vh^T Vh))  (m < n)  -- torch's formulas."""

    def forward(self, a, full_matrices):
        u, s, vh = get_array_module(a).linalg.svd(a, full_matrices=full_matrices)
        self.batch, self.shapes = a.shape[:-2], (u.shape[-2:], s.shape[-1:], vh.shape[-2:])
        packed = _pack([u, s, vh], self.batch)
        self.save_for_backward(packed)
        return packed

    def backward(self, gy):
        (m, _), (k,), (_, n) = self.shapes
        U, S, Vh = _unpack(self.saved_tensors[0], self.batch, self.shapes)
        gU, gS, gVh = _unpack(gy, self.batch, self.shapes)
        U, gU, Vh, gVh = U[..., :k], gU[..., :k], Vh[..., :k, :], gVh[..., :k, :]
        J, K = mT(U) @ gU, Vh @ mT(gVh)
        J, K = J - mT(J), K - mT(K)
        S2 = S * S
        E = unsqueeze(S2, -2) - unsqueeze(S2, -1) + _eye(k, S)
        G = (J * unsqueeze(S, -2) + unsqueeze(S, -1) * K) / E + _diag_embed(gS)
        if m > n:
            return (U @ G + (gU - U @ (mT(U) @ gU)) / unsqueeze(S, -2)) @ Vh
        if m < n:
            return U @ (G @ Vh + (gVh - (gVh @ mT(Vh)) @ Vh) / unsqueeze(S, -1))
        return U @ G @ Vh


def _no_driver(driver, op):
    if driver is not None:
        raise RuntimeError(f"torch.{op}: keyword argument `driver=` is only supported on CUDA inputs with cuSOLVER "
                           "backend.")


def svd(A, full_matrices=True, *, driver=None):
    """(U, S, Vh) with A = U diag(S) Vh: S descending, U's columns and Vh's rows orthonormal;
    ``full_matrices`` (the default, as torch's): U (..., m, m) and Vh (..., n, n), else k = min(m, n)
    of each.  The singular vectors' signs are LAPACK's (they may differ from torch's)."""
    _no_driver(driver, "linalg.svd")
    A = _matrices(A, "linalg.svd")
    m, n = A.shape[-2:]
    k = builtins.min(m, n)
    shapes = ((m, m if full_matrices else k), (k,), (n if full_matrices else k, n))
    return SVDResult(*_unpack(SVD.apply(A, full_matrices), A.shape[:-2], shapes))


class Svdvals(Function):
    """S, the singular values of A = U diag(S) Vh.  gA = U diag(gS) Vh, with U and Vh from ``svd``
    of the saved A in backward (so the gradient is differentiable again, through svd)."""

    def forward(self, a):
        self.save_for_backward(a)
        return get_array_module(a).linalg.svd(a, compute_uv=False)

    def backward(self, gs):
        a, = self.saved_tensors
        U, _, Vh = svd(a, full_matrices=False)
        return (U * unsqueeze(gs, -2)) @ Vh


def svdvals(A, *, driver=None):
    """The singular values of each matrix of ``A``, descending."""
    _no_driver(driver, "linalg.svd")
    return Svdvals.apply(_matrices(A, "linalg.svd"))


# ---------------------------------------------------------------------- norms

def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """(sum |x|^ord)^(1/ord) over ``dim`` (every element when None, whatever the shape):
    ``inf`` the largest |x|, ``-inf`` the smallest, 0 the count of non-zeros.  ``dtype``: x is
    converted first.  The gradient at 0 is 0, and ties of the max (min) share it, as torch's."""
    op = "linalg.vector_norm"
    x = _as_tensor(x, op)
    if isinstance(ord, bool) or not isinstance(ord, numbers.Real):
        raise TypeError(f"{op}: argument 'ord' must be Number, not {type(ord).__name__}")
    x = _float(x if dtype is None else x.to(dtype), op)
    dims = None if dim is None else _axes(dim, x.ndim, op)
    if ord == -math.inf:
        return amin(abs(x), () if dims is None else dims, keepdim)
    if ord < 0:
        return sum(abs(x) ** ord, dim=dims, keepdim=keepdim) ** (1.0 / ord)
    return _norm(x, ord, dims, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix norm over the two dims ``dim``: 'fro' (the root of the sum of squares), 'nuc'
    (the sum of the singular values), 2 / -2 (the largest / smallest singular value), inf / -inf
    (the largest / smallest row sum of |A|), 1 / -1 (the largest / smallest column sum)."""
    op = "linalg.matrix_norm"
    A = _matrices(A if dtype is None else _as_tensor(A, op).to(dtype), op)
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {dim}")
    d0, d1 = (_axis(d, A.ndim, op) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(movedim(A, (d0, d1), (-2, -1)))
        y = sum(s, -1) if ord == "nuc" else amax(s, -1) if ord == 2 else amin(s, -1)
        return unsqueeze(unsqueeze(y, builtins.min(d0, d1)), builtins.max(d0, d1)) if keepdim else y
    if ord in (math.inf, -math.inf, 1, -1):
        summed, extreme = (d1, d0) if ord in (math.inf, -math.inf) else (d0, d1)
        y = (amax if ord > 0 else amin)(sum(abs(A), dim=summed, keepdim=True), extreme, keepdim=True)
        return y if keepdim else squeeze(squeeze(y, builtins.max(d0, d1)), builtins.min(d0, d1))
    raise RuntimeError(f"{op}: Order {ord} not supported.")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """``vector_norm`` over one dim (or all, when neither ``ord`` nor ``dim`` is given),
    ``matrix_norm`` over two; without ``dim``, a 1-D ``A`` gets the vector norm and a 2-D one the
    matrix norm of ``ord``."""
    op = "linalg.norm"
    A = _as_tensor(A, op)
    if isinstance(ord, str):
        return matrix_norm(A, ord, (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if dim is not None:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        raise RuntimeError(f"{op}: If dim is specified, it must be of length 1 or 2. Got {list(dims)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    raise RuntimeError(f"{op}: If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D.")


def cond(A, p=None):
    """The condition number: for p None, 2 or -2, the ratio of the largest to the smallest
    singular value (-2: its inverse); for 'fro', 'nuc', inf, -inf, 1, -1,
    ``matrix_norm(A, p) * matrix_norm(inv(A), p)``."""
    A = _matrices(A, "linalg.cond", square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = svdvals(A)
        big, small = select(s, -1, 0), select(s, -1, s.shape[-1] - 1)
        return big / small if p != -2 else small / big
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ---------------------------------------------------------------------- pinv, matrix_rank, lstsq

def _kept(xp, s, atol, rtol, shape, dtype):
    """s > max(atol, rtol * max(s)) along the last axis (arrays): rtol by default eps * max(m, n),
    or 0 when only an atol > 0 is given (torch's rule)."""
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else numpy.finfo(dtype).eps * builtins.max(shape[-2:])
    tol = s.max(axis=-1, keepdims=True) * rtol if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), dtype=dtype)
    return s > (tol if atol is None else xp.maximum(tol, atol))


class PInv(Function):
    """P = A^+ = V diag(1/s) U^T from the SVD (Q diag(1/L) Q^T from eigh when ``hermitian``), the
    values not above the tolerance taken as 0.  Its derivative where the rank does not change
    (Golub and Pereyra), torch's formula, with the saved input A and output P:
    m <= n: K = gP^T P and gA = -(P K)^T + K P^T - A P K P^T + P^T P (gP^T - K A);
    m > n: K = P gP^T and gA = -(K P)^T + (gP^T - A K) P P^T + P^T K - P^T K P A."""

    def forward(self, a, atol, rtol, hermitian):
        xp = get_array_module(a)
        if hermitian:
            w, q = xp.linalg.eigh(a)
            values, left, right = w, q, xp.swapaxes(q, -1, -2)
            keep = _kept(xp, xp.abs(w), atol, rtol, a.shape, a.dtype)
        else:
            left, values, right = xp.linalg.svd(a, full_matrices=False)
            keep = _kept(xp, values, atol, rtol, a.shape, a.dtype)
        inverse = xp.where(keep, 1 / xp.where(keep, values, 1), 0).astype(a.dtype)
        p = backend.matmul(xp.swapaxes(right, -1, -2), inverse[..., None] * xp.swapaxes(left, -1, -2))
        self.save_for_backward(a, p)
        return p

    def backward(self, gp):
        a, p = self.saved_tensors
        gpt, pt = mT(gp), mT(p)
        if a.shape[-2] <= a.shape[-1]:
            k = gpt @ p
            kpt = k @ pt
            return -mT(p @ k) + kpt - (a @ p) @ kpt + (pt @ p) @ (gpt - k @ a)
        k = p @ gpt
        ptk = pt @ k
        return -mT(k @ p) + (gpt - a @ k) @ p @ pt + ptk - ptk @ p @ a


def pinv(A, rcond=None, hermitian=False, *, atol=None, rtol=None):
    """The pseudoinverse of each matrix of ``A``: singular values (|eigenvalues| when ``hermitian``)
    not above max(atol, rtol * the largest) count as 0 (``rcond``: torch's older name for rtol;
    atol and rtol are numbers here)."""
    A = _matrices(A, "linalg.pinv", square=hermitian)
    return PInv.apply(A, atol, rcond if rtol is None else rtol, hermitian)


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None):
    """The number of singular values (|eigenvalues| when ``hermitian``) above max(atol, rtol * the
    largest), an int64 per matrix (``tol``: torch's older name for ``atol``, with rtol 0)."""
    A = _matrices(A, "linalg.matrix_rank", square=hermitian)
    if tol is not None:
        atol, rtol = tol, 0.0 if rtol is None else rtol
    with backend.on_device(A.device):
        xp = get_array_module(A.array)
        s = xp.abs(xp.linalg.eigvalsh(A.array)) if hermitian else xp.linalg.svd(A.array, compute_uv=False)
        return Tensor(_kept(xp, s, atol, rtol, A.shape, A.dtype).sum(axis=-1).astype(backend.int64))


_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """(solution, residuals, rank, singular_values): X minimising ||A X - B|| (the one of least
    norm), ``pinv(A, rcond) @ B`` -- torch's own gradient is that of this expression, and so is
    this one's.  ``B`` is (..., m, k), or (..., m) vectors when it has one dim fewer than ``A``.
    The other outputs follow torch's CPU drivers (default 'gelsy'): the squared residuals
    for m > n and a full rank except with 'gelsy', the rank except with 'gels', the singular
    values only with 'gelsd' and 'gelss'; an empty tensor otherwise."""
    op = "torch.linalg.lstsq"
    driver = "gelsy" if driver is None else driver
    if driver not in _LSTSQ_DRIVERS:
        raise RuntimeError(f"{op}: parameter `driver` should be one of ({', '.join(_LSTSQ_DRIVERS)})")
    A = _matrices(A, op)
    B = _float(B, op)
    _same_dtype(op, A, B)
    vector = B.ndim == A.ndim - 1
    B2 = unsqueeze(B, -1) if vector else B
    if B2.ndim < 2 or B2.shape[-2] != A.shape[-2]:
        raise RuntimeError(f"{op}: input.size(-2) should match other.size(-{1 if vector else 2})")
    m, n = A.shape[-2:]
    X = pinv(A, rtol=rcond) @ B2
    with backend.on_device(A.device):
        empty = Tensor(get_array_module(A.array).zeros((0,), dtype=A.dtype))
    rank = matrix_rank(A, rtol=rcond) if driver != "gels" else empty.to(backend.int64)
    residuals = empty
    if driver != "gelsy" and m > n and bool((matrix_rank(A, rtol=rcond) == n).all()):
        residuals = sum((A @ X - B2) ** 2, -2)          # (..., 1) for vectors too, as torch's
    singular_values = svdvals(A) if driver in ("gelsd", "gelss") else empty
    return LstsqResult(squeeze(X, -1) if vector else X, residuals, rank, singular_values)


# ---------------------------------------------------------------------- products, powers, exp

def matrix_power(A, n):
    """A^n for an int ``n`` by repeated squaring (matmuls); n = 0 the identity (gradient 0),
    n < 0 the power of ``inv(A)``."""
    op = "linalg.matrix_power"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{op}: argument 'n' (position 2) must be int, not {type(n).__name__}")
    A = _as_tensor(A, op)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")
    if n == 0:
        with backend.on_device(A.device):
            identity = get_array_module(A.array).broadcast_to(_eye(A.shape[-1], A).array, A.shape).copy()
        return _no_gradient(identity, A)
    if n < 0:
        A, n = inv(A), -n
    result, power = None, A
    while n:
        if n & 1:
            result = power if result is None else result @ power
        n >>= 1
        if n:
            power = power @ power
    return result


_EXP_DEGREE = 18        # Taylor terms after scaling to ||A||_1 <= 1: the rest is below 1/19! ~ 8e-18


def matrix_exp(A):
    """exp(A) = sum_k A^k / k!, by scaling and squaring: X = A / 2^s with ||X||_1 <= 1, the Taylor
    polynomial of degree 18 in Horner form, then s squarings -- all matmuls, so its gradient
    (and the second) is theirs.  s is chosen from the largest 1-norm of the batch (a read to the
    host)."""
    A = _matrices(A, "linalg.matrix_exp", square=True)
    with backend.on_device(A.device):
        xp = get_array_module(A.array)
        largest = float(xp.abs(A.array).sum(axis=-2).max()) if A.array.size else 0.0
    s = builtins.max(0, math.ceil(math.log2(largest))) if math.isfinite(largest) and largest > 1 else 0
    X = A / 2.0 ** s
    identity = _eye(A.shape[-1], A)
    result = identity + X / _EXP_DEGREE
    for k in range(_EXP_DEGREE - 1, 0, -1):
        result = identity + (X @ result) / k
    for _ in range(s):
        result = result @ result
    return result


def multi_dot(tensors):
    """The product of the matrices ``tensors`` (the first may be a row vector, the last a column
    vector), in the order of multiplication that needs the fewest scalar products (dynamic
    programming, as torch's)."""
    op = "multi_dot()"
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"{op}: expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        which = "the first tensor" if i == 0 else "the last tensor" if i == len(tensors) - 1 else f"tensor {i}"
        if (t.ndim not in (1, 2)) if i in (0, len(tensors) - 1) else t.ndim != 2:
            raise RuntimeError(f"{op}: {which} must be {'1D or 2D' if i in (0, len(tensors) - 1) else '2D'} but "
                               f"got {t.ndim}D")
    first, last = tensors[0].ndim == 1, tensors[-1].ndim == 1
    mats = [unsqueeze(tensors[0], 0) if first else tensors[0], *tensors[1:-1],
            unsqueeze(tensors[-1], -1) if last else tensors[-1]]
    for i in range(len(mats) - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise RuntimeError(f"{op}: tensors {i} and {i + 1} with shapes {list(tensors[i].shape)} and "
                               f"{list(tensors[i + 1].shape)} cannot be multiplied")
    dims = [mats[0].shape[0]] + [t.shape[1] for t in mats]
    count = len(mats)
    cost, split = {}, {}
    for i in range(count):
        cost[i, i] = 0
    for length in range(2, count + 1):
        for i in range(count - length + 1):
            j = i + length - 1
            cost[i, j], split[i, j] = builtins.min(
                (cost[i, s] + cost[s + 1, j] + dims[i] * dims[s + 1] * dims[j + 1], s) for s in range(i, j))

    def product(i, j):
        return mats[i] if i == j else product(i, split[i, j]) @ product(split[i, j] + 1, j)
    y = product(0, count - 1)
    if last:
        y = squeeze(y, -1)
    return squeeze(y, 0) if first else y


def vecdot(x, y, *, dim=-1):
    """sum(x * y) along ``dim``, the shapes broadcast (real tensors: no conjugate)."""
    return sum(x * y, dim)


def cross(input, other, *, dim=-1):
    """The cross product of the 3-vectors along ``dim`` (the two shapes broadcast; the same
    number of dims): each component a difference of products, so differentiable as they are."""
    op = "linalg.cross"
    if input.ndim != other.ndim:
        raise RuntimeError(f"{op}: inputs must have the same number of dimensions.")
    shape = _broadcast_shapes(op, input.shape, other.shape)
    axis = _axis(dim, len(shape), op)
    if input.shape[axis] != 3 or other.shape[axis] != 3:
        raise RuntimeError(f"{op}: inputs dimension {dim} must have length 3. Got {input.shape[axis]} and "
                           f"{other.shape[axis]}")
    a = [select(broadcast_to(input, shape), axis, i) for i in range(3)]
    b = [select(broadcast_to(other, shape), axis, i) for i in range(3)]
    return stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]], axis)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """The ``offset``-th diagonal of the matrices in ``dim1``, ``dim2`` (the last two by default),
    as a last dim: ``torch.diagonal`` with other defaults."""
    return _diagonal(A, offset, dim1, dim2)


def vander(x, *, N=None):
    """The Vandermonde matrix of the last dim of ``x``: columns x^0, x^1, ..., x^(N-1) (N = its length)."""
    x = _as_tensor(x, "linalg.vander")
    if x.ndim == 0:
        raise RuntimeError("linalg.vander: x must have at least one dimension.")
    N = x.shape[-1] if N is None else N
    if N <= 1:
        if N < 1:
            raise RuntimeError(f"linalg.vander: N must be greater than 1. Got {N}")
        return unsqueeze(x ** 0, -1)
    return stack([x ** 0] + [x ** k for k in range(1, N)], -1)


# ---------------------------------------------------------------------- the _ex forms, tensorinv, tensorsolve, lu

InvExResult = collections.namedtuple("linalg_inv_ex", ["inverse", "info"])
CholeskyExResult = collections.namedtuple("linalg_cholesky_ex", ["L", "info"])
SolveExResult = collections.namedtuple("linalg_solve_ex", ["result", "info"])
LUFactorResult = collections.namedtuple("linalg_lu_factor", ["LU", "pivots"])
LUFactorExResult = collections.namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LUResult = collections.namedtuple("linalg_lu", ["P", "L", "U"])


def _on_input_device(fn):
    """Run ``fn`` on the GPU of its first Tensor argument: its array work (the LU loop, the
    ``info`` checks) outside ``Function.apply`` is then on the right device too."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        device = next((a.device for a in args if isinstance(a, Tensor)), None)
        if device is None:
            return fn(*args, **kwargs)
        with backend.on_device(device):
            return fn(*args, **kwargs)
    return run


def _getrf(a):
    """LAPACK's getrf in ``xp``: partial-pivoting Doolittle on the matrices of ``a`` (..., m, n),
    vectorised over the batch, a loop over the k = min(m, n) columns.  Returns (LU, pivots, info):
    LU holds L's strict lower triangle (its unit diagonal implied) and U; pivots (..., k) int32,
    1-based (row j was swapped with row pivots[j] - 1); info (...) int32, 0 or the 1-based index
    of the first zero pivot of U (its column is then not scaled, as LAPACK's)."""
    xp = get_array_module(a)
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    k = builtins.min(m, n)
    lu = a.reshape((-1, m, n)).copy()
    b = xp.arange(lu.shape[0])
    piv = xp.zeros((lu.shape[0], k), dtype=xp.int32)
    info = xp.zeros(lu.shape[0], dtype=xp.int32)
    for j in range(k):
        p = xp.argmax(xp.abs(lu[:, j:, j]), axis=-1) + j
        piv[:, j] = p + 1
        row_j, row_p = lu[b, j, :].copy(), lu[b, p, :].copy()
        lu[b, p, :] = row_j
        lu[b, j, :] = row_p
        d = lu[:, j, j]
        zero = d == 0
        info = xp.where((info == 0) & zero, j + 1, info).astype(xp.int32)
        lu[:, j + 1:, j] /= xp.where(zero, 1, d)[:, None]
        lu[:, j + 1:, j + 1:] -= lu[:, j + 1:, j, None] * lu[:, j, None, j + 1:]
    return lu.reshape(a.shape), piv.reshape(batch + (k,)), info.reshape(batch)


def _permutation(piv, m, like):
    """P (..., m, m), a constant in ``like``'s dtype, with A = P L U for LAPACK's ``piv`` (1-based swaps)."""
    xp = get_array_module(piv)
    batch, k = piv.shape[:-1], piv.shape[-1]
    flat = piv.reshape((-1, k)).astype(xp.int64) - 1
    b = xp.arange(flat.shape[0])
    perm = xp.broadcast_to(xp.arange(m), (flat.shape[0], m)).copy()
    for j in range(k):
        pj, pp = perm[:, j].copy(), perm[b, flat[:, j]].copy()
        perm[b, flat[:, j]] = pj
        perm[:, j] = pp
    P = xp.zeros((flat.shape[0], m, m), dtype=like.dtype)
    P[b[:, None], perm, xp.arange(m)[None, :]] = 1         # P[perm[i], i] = 1: (P^T A)[i] = A[perm[i]]
    with backend.on_device(like.device):
        return Tensor(P.reshape(batch + (m, m)))


def _lu_parts(LU):
    """(L, U) from the packed ``LU`` (..., m, n): L (m, k) unit lower, U (k, n) upper, k = min(m, n)."""
    m, n = LU.shape[-2:]
    k = builtins.min(m, n)
    L = tril(LU[..., :, :k], -1) + (_eye(m, LU)[:, :k] if m != k else _eye(k, LU))
    return L, triu(LU[..., :k, :])


def _lu_backward(P, L, U, gL, gU):
    """gA of A = P L U (torch's formulas).  Square: gA = P L^{-T} [tril_{-1}(L^T gL) + triu(gU U^T)] U^{-T}.
    Wide (m < n, U = [U1 | U2]): gA = P L^{-T} [tril_{-1}(L^T gL - triu(gU) U^T) U1^{-T} + triu(gU1) | gU2].
    Tall (m > n, L = [L1; L2]): gA = P [L1^{-T} triu(gU U^T - L^T tril_{-1}(gL)) + tril_{-1}(gL1); gL2] U^{-T}."""
    m, n = L.shape[-2], U.shape[-1]
    k = builtins.min(m, n)
    if m == n:
        inner = tril(mT(L) @ gL, -1) + triu(gU @ mT(U))
        g = solve_triangular(mT(L), inner, upper=True, unitriangular=True)
        return P @ solve_triangular(mT(U), g, upper=False, left=False)
    if m < n:
        U1 = U[..., :k]
        g = tril(mT(L) @ gL - triu(gU) @ mT(U), -1)
        g = solve_triangular(mT(U1), g, upper=False, left=False)
        g = cat([g + triu(gU[..., :k]), gU[..., k:]], -1)
        return P @ solve_triangular(mT(L), g, upper=True, unitriangular=True)
    L1 = L[..., :k, :]
    g = triu(gU @ mT(U) - mT(L) @ tril(gL, -1))
    g = solve_triangular(mT(L1), g, upper=True, unitriangular=True)
    g = cat([g + tril(gL[..., :k, :], -1), gL[..., k:, :]], -2)
    return P @ solve_triangular(mT(U), g, upper=False, left=False)


class LUFactor(Function):
    """LU, the packed factors of A = P L U (``_getrf``, computed before and passed in with its
    pivots).  gL = tril_{-1}(gLU[:, :k]) and gU = triu(gLU[:k]) go through ``_lu_backward``,
    with L and U from the saved output (ops: differentiable again)."""

    def forward(self, a, lu, piv):
        self.piv = piv
        self.save_for_backward(lu)
        return lu

    def backward(self, glu):
        LU, = self.saved_tensors
        m, n = LU.shape[-2:]
        k = builtins.min(m, n)
        L, U = _lu_parts(LU)
        gL, gU = tril(glu[..., :, :k], -1), triu(glu[..., :k, :])
        return _lu_backward(_permutation(self.piv, m, LU), L, U, gL, gU)


def _lu_input(A, op, pivot):
    A = _as_tensor(A, op)
    if A.ndim < 2:
        raise RuntimeError(f"torch.{op}: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} instead")
    if A.dtype.kind != "f" or A.dtype == backend.float16:
        raise NotImplementedError(f"{op}: \"lu_cpu\" not implemented for '{_TORCH_DTYPE.get(str(A.dtype))}'")
    if not pivot:
        raise RuntimeError(f"{op}: LU without pivoting is not implemented on the CPU")
    return A


def _batch_prefix(info):
    """``(Batch element i): `` for the first nonzero of ``info`` when it is batched, else ''."""
    if info.ndim == 0:
        return "", int(info)
    flat = info.reshape(-1)
    first = int(get_array_module(flat).flatnonzero(flat)[0])
    return f"(Batch element {first}): ", int(flat[first])


def _info_tensor(info, like):
    with backend.on_device(like.device):
        return Tensor(info)


@_on_input_device
def lu_factor_ex(A, *, pivot=True, check_errors=False):
    """(LU, pivots, info): A = P L U packed in LU (L's strict lower triangle, its unit diagonal implied,
    and U), LAPACK's 1-based int32 ``pivots`` (..., min(m, n)) and ``info`` (...), int32: 0, or the
    1-based index of the first zero on U's diagonal (``check_errors``: raise then)."""
    op = "linalg.lu_factor_ex"
    A = _lu_input(A, op, pivot)
    lu, piv, info = _getrf(A.array)
    if check_errors and bool((info != 0).any()):
        where_, i = _batch_prefix(info)
        raise LinAlgError(f"torch.{op}: {where_}U[{i},{i}] is zero and using it on lu_solve would result in a "
                          "division by zero.")
    return LUFactorExResult(LUFactor.apply(A, lu, piv), _info_tensor(piv, A), _info_tensor(info, A))


@_on_input_device
def lu_factor(A, *, pivot=True):
    """(LU, pivots) of ``lu_factor_ex``; a zero on U's diagonal raises RuntimeError, as torch's."""
    op = "linalg.lu_factor"
    A = _lu_input(A, op, pivot)
    lu, piv, info = _getrf(A.array)
    if bool((info != 0).any()):
        where_, i = _batch_prefix(info)
        raise RuntimeError(f"torch.{op}: {where_}U[{i},{i}] is zero and using it on lu_solve would result in a "
                           "division by zero. If you still want to perform the factorization, consider calling "
                           "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return LUFactorResult(LUFactor.apply(A, lu, piv), _info_tensor(piv, A))


@_on_input_device
def lu(A, *, pivot=True):
    """(P, L, U) with A = P L U: P (..., m, m) a permutation, L (..., m, k) unit lower triangular,
    U (..., k, n) upper, k = min(m, n), by partial pivoting (LAPACK's getrf).  Differentiable
    (``_lu_backward``); a singular A is factored without error, as torch's."""
    A = _lu_input(A, "linalg.lu", pivot)
    lu_, piv, _ = _getrf(A.array)
    LU = LUFactor.apply(A, lu_, piv)
    L, U = _lu_parts(LU)
    return LUResult(_permutation(piv, A.shape[-2], A), L, U)


@_on_input_device
def lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    """X with A X = B (``adjoint``: A^T X = B; ``left=False``: X A = B, X A^T = B) for A = P L U
    given as ``lu_factor``'s (LU, pivots): triangular solves with LU's triangles, so differentiable
    in LU (its two triangles) and B."""
    op = "linalg.lu_solve"
    LU = _as_tensor(LU, op)
    if LU.ndim < 2 or LU.shape[-1] != LU.shape[-2]:
        shape = f"{LU.shape[-2]} by {LU.shape[-1]}" if LU.ndim >= 2 else f"{LU.ndim}-d"
        raise RuntimeError(f"torch.{op}: A must be batches of square matrices, but they are {shape} matrices")
    LU, B = _matrices(LU, op), _matrices(B, op, name="B")
    _same_dtype(op, LU, B)
    pivots = _as_tensor(pivots, op)
    if pivots.dtype != numpy.int32:
        raise RuntimeError(f"{op}: pivots should be a Tensor of scalar type torch.int32")
    n = LU.shape[-1]
    if pivots.shape[-1:] != (n,):
        raise RuntimeError(f"{op}: pivots should have {n} elements in its last dimension, got {tuple(pivots.shape)}")
    rows = B.shape[-2] if left else B.shape[-1]
    if rows != n:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                           f"({n}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    P = _permutation(pivots.array, n, LU)
    if not left:                    # X A = B: A^T X^T = B^T; X A^T = B: A X^T = B^T
        return mT(lu_solve(LU, pivots, mT(B), adjoint=not adjoint))
    if not adjoint:                 # X = U^{-1} L^{-1} P^T B
        Y = solve_triangular(LU, mT(P) @ B, upper=False, unitriangular=True)
        return solve_triangular(LU, Y, upper=True)
    Y = solve_triangular(mT(LU), B, upper=False)               # A^T = U^T L^T P^T: X = P L^{-T} U^{-T} B
    return P @ solve_triangular(mT(LU), Y, upper=True, unitriangular=True)


def _constant_like(array, like):
    with backend.on_device(like.device):
        return Tensor(array)


def _masked(results, ok, like):
    """``results`` where ``ok`` (a bool array over the batch), NaN for the failed matrices."""
    if bool(ok.all()):
        return results
    mask = _constant_like(ok.reshape(ok.shape + (1, 1)), like)
    return where(mask, results, math.nan)


def _replace_failed(A, ok):
    """``A`` with the matrices where not ``ok`` replaced by the identity (so the factorization runs)."""
    if bool(ok.all()):
        return A
    mask = _constant_like(ok.reshape(ok.shape + (1, 1)), A)
    return where(mask, A, _eye(A.shape[-1], A))


@_on_input_device
def inv_ex(A, *, check_errors=False):
    """(inverse, info): ``inv`` without its error; info (...) int32 is 0, or for a singular matrix
    the 1-based index of the first zero pivot of its LU (LAPACK's, as torch's); its inverse is NaN
    (torch's holds inf/NaN).  ``check_errors``: raise LinAlgError as torch's."""
    op = "linalg.inv_ex"
    A = _matrices(A, "linalg.inv", square=True)
    _, _, info = _getrf(A.array)
    ok = info == 0
    if check_errors and not bool(ok.all()):
        where_, i = _batch_prefix(info)
        raise LinAlgError(f"{op}: {where_}The diagonal element {i} is zero, the inversion could not be completed "
                          "because the input matrix is singular.")
    return InvExResult(_masked(inv(_replace_failed(A, ok)), ok, A), _info_tensor(info, A))


@_on_input_device
def solve_ex(A, B, *, left=True, check_errors=False):
    """(result, info): ``solve`` without its error; info as ``inv_ex``'s (over the broadcast batch),
    the result NaN for a singular matrix.  ``check_errors``: raise LinAlgError as torch's."""
    op = "linalg.solve_ex"
    A = _matrices(A, "linalg.solve", square=True)
    B = _float(B, "linalg.solve")
    _, _, info = _getrf(A.array)
    ok = info == 0
    if check_errors and not bool(ok.all()):
        where_, _ = _batch_prefix(info)
        raise LinAlgError(f"torch.{op}: {where_}The solver failed because the input matrix is singular.")
    X = solve(_replace_failed(A, ok), B, left=left)
    vector = X.ndim < A.ndim
    batch = _broadcast_shapes("linalg.solve", A.shape[:-2], X.shape[:-1 if vector else -2])
    xp = get_array_module(info)
    ok_b, info_b = xp.broadcast_to(ok, batch), xp.broadcast_to(info, batch).copy()
    if not bool(ok.all()):
        mask = _constant_like(ok_b.reshape(batch + ((1,) if vector else (1, 1))), A)
        X = where(mask, X, math.nan)
    return SolveExResult(X, _info_tensor(info_b, A))


@_on_input_device
def cholesky_ex(A, *, upper=False, check_errors=False):
    """(L, info): ``cholesky`` without its error; info (...) int32 is 0, or for a matrix that is not
    positive-definite the order of its first leading minor that is not (LAPACK's potrf, as torch's);
    its L is NaN (torch's holds potrf's partial factor).  ``check_errors``: raise LinAlgError as torch's."""
    op = "linalg.cholesky_ex"
    A = _matrices(A, "linalg.cholesky", square=True)
    a = mT(A).array if upper else A.array
    xp = get_array_module(a)
    n = a.shape[-1]
    flat = a.reshape((-1, n, n))
    failed = lambda l, a: not bool((xp.diagonal(l, axis1=-2, axis2=-1) > 0).all())   # noqa: E731
    info = numpy.zeros(flat.shape[0], dtype=numpy.int32)
    if _attempt(xp.linalg.cholesky, a, failed) is None:
        for i in range(flat.shape[0]):
            if _attempt(xp.linalg.cholesky, flat[i], failed) is None:
                info[i] = next(k for k in range(1, n + 1)
                               if _attempt(xp.linalg.cholesky, flat[i, :k, :k], failed) is None)
    info = info.reshape(a.shape[:-2])
    ok = info == 0
    if check_errors and not bool(ok.all()):
        where_, i = _batch_prefix(info)
        raise LinAlgError(f"{op}: {where_}The factorization could not be completed because the input is not "
                          f"positive-definite (the leading minor of order {i} is not positive-definite).")
    with backend.on_device(A.device):
        ok_x, info_x = xp.asarray(ok), xp.asarray(info)
    L = _masked(cholesky(_replace_failed(A, ok_x), upper=upper), ok_x, A)
    return CholeskyExResult(L, _info_tensor(info_x, A))


def tensorinv(A, ind=2):
    """The inverse of ``A`` seen as a matrix prod(shape[:ind]) x prod(shape[ind:]) (which must be
    square), shaped shape[ind:] + shape[:ind]: a reshape and ``inv``."""
    A = _as_tensor(A, "linalg.tensorinv")
    if not isinstance(ind, numbers.Integral) or isinstance(ind, bool):
        raise TypeError(f"linalg_tensorinv(): argument 'ind' must be int, not {type(ind).__name__}")
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(A.shape[:ind]), math.prod(A.shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    return reshape(inv(reshape(A, (rows, cols))), tuple(A.shape[ind:]) + tuple(A.shape[:ind]))


def tensorsolve(A, B, dims=None):
    """X with tensordot(A, X, X.ndim) = B, X of shape A.shape[B.ndim:] (``dims``: those dims of A
    moved to the end first): a reshape and ``solve``."""
    A, B = _as_tensor(A, "linalg.tensorsolve"), _as_tensor(B, "linalg.tensorsolve")
    if dims is not None:
        dims = [dims] if isinstance(dims, numbers.Integral) else list(dims)
        A = movedim(A, dims, list(range(A.ndim - len(dims), A.ndim)))
    rows, cols = math.prod(A.shape[:B.ndim]), math.prod(A.shape[B.ndim:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {cols} != {rows}")
    return reshape(solve(reshape(A, (rows, cols)), reshape(B, (rows,))), tuple(A.shape[B.ndim:]))


# ---------------------------------------------------------------------- torch's top-level names

TorchSlogdet = collections.namedtuple("slogdet", ["sign", "logabsdet"])
TorchQR = collections.namedtuple("qr", ["Q", "R"])
TorchSVD = collections.namedtuple("svd", ["U", "S", "V"])


def inverse(input):
    """``torch.inverse``: ``linalg.inv``."""
    return inv(input)


def torch_slogdet(input):
    """``torch.slogdet``: ``linalg.slogdet``, as torch.return_types.slogdet."""
    return TorchSlogdet(*slogdet(input))


def logdet(input):
    """log det A: ``slogdet``'s logabsdet, NaN where the determinant is negative (-inf where 0);
    its gradient is A^{-T}."""
    sign, logabsdet = slogdet(input)
    with backend.on_device(sign.device):
        negative = Tensor(sign.array < 0)
    return where(negative, math.nan, logabsdet)


def pinverse(input, rcond=1e-15):
    """``torch.pinverse``: ``linalg.pinv`` with singular values at most ``rcond`` times the largest taken as 0."""
    return pinv(input, rtol=rcond)


def cholesky_solve(B, L, upper=False):
    """X with A X = B, A = L L^T (``upper``: A = U^T U), computed as ``solve(L L^T, B)`` from ``L``
    as given (its other triangle should be 0: torch's reads only its triangle) -- torch's
    gradient for L, a full matrix."""
    op = "cholesky_solve"
    B, L = _matrices(B, op, name="B"), _matrices(L, op, square=True)
    _same_dtype(op, L, B)
    return _solve(mT(L) @ L if upper else L @ mT(L), B, op)


def cholesky_inverse(L, upper=False):
    """(L L^T)^{-1} (``upper``: (U^T U)^{-1}), computed from ``L`` as given (its other triangle should
    be 0: torch's reads only its triangle) -- torch's gradient for L, a full matrix."""
    L = _matrices(L, "cholesky_inverse", square=True)
    return inv(mT(L) @ L if upper else L @ mT(L))


def torch_cholesky(input, upper=False):
    """``torch.cholesky`` (deprecated in torch, with its warning): ``linalg.cholesky``."""
    warnings.warn("torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed in a future "
                  "PyTorch release.\nL = torch.cholesky(A)\nshould be replaced with\nL = torch.linalg.cholesky(A)\n"
                  "and\nU = torch.cholesky(A, upper=True)\nshould be replaced with\nU = torch.linalg.cholesky(A).mH",
                  UserWarning, stacklevel=2)
    return cholesky(input, upper=upper)


def torch_qr(input, some=True):
    """``torch.qr`` (deprecated in torch, with its warning): ``linalg.qr`` reduced (``some``) or complete."""
    warnings.warn("torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a future PyTorch "
                  "release.\nThe boolean parameter 'some' has been replaced with a string parameter 'mode'.\n"
                  "Q, R = torch.qr(A, some)\nshould be replaced with\n"
                  "Q, R = torch.linalg.qr(A, 'reduced' if some else 'complete')", UserWarning, stacklevel=2)
    return TorchQR(*qr(input, "reduced" if some else "complete"))


def torch_svd(input, some=True, compute_uv=True):
    """``torch.svd``: (U, S, V) with A = U diag(S) V^T -- V, not ``linalg.svd``'s Vh; ``some``:
    the reduced one.  Without ``compute_uv``, U and V are zeros (m, m) and (n, n), as torch's."""
    if not compute_uv:
        A = _matrices(input, "svd")
        S = svdvals(A)
        with backend.on_device(A.device):
            xp = get_array_module(A.array)
            zeros = [Tensor(xp.zeros(A.shape[:-2] + (k, k), dtype=A.dtype)) for k in A.shape[-2:]]
        return TorchSVD(zeros[0], S, zeros[1])
    U, S, Vh = svd(input, full_matrices=not some)
    return TorchSVD(U, S, mT(Vh))


def torch_cross(input, other, dim=None):
    """``torch.cross``: ``linalg.cross`` along ``dim``; without it (torch's deprecation warning)
    along the first dim of size 3."""
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                      "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                      "with that of linalg.cross in a future release.", UserWarning, stacklevel=2)
        shape = _broadcast_shapes("cross", input.shape, other.shape)
        dim = next((i for i, n in enumerate(shape) if n == 3), -1)
    return cross(input, other, dim=dim)


def tensordot(a, b, dims=2):
    """The sum of products over the last ``dims`` dims of ``a`` and the first of ``b`` (or the
    two lists of dims ``dims``): a permute, a reshape and one matmul."""
    op = "tensordot"
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"{op}: tensordot expects dims >= 0, but got dims={dims}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, numbers.Integral) else list(d) for d in dims)
    dims_a = [_axis(d, a.ndim, op) for d in dims_a]
    dims_b = [_axis(d, b.ndim, op) for d in dims_b]
    if len(dims_a) != len(dims_b):
        raise RuntimeError(f"{op}: both dimension lists should have same length")
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(f"{op}: contracted dimensions need to match, but first has size {a.shape[da]} in dim "
                               f"{da} and second has size {b.shape[db]} in dim {db}")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    size = math.prod(a.shape[d] for d in dims_a)
    a2 = reshape(a.permute(*free_a, *dims_a), (math.prod(a.shape[d] for d in free_a), size))
    b2 = reshape(b.permute(*dims_b, *free_b), (size, math.prod(b.shape[d] for d in free_b)))
    return reshape(a2 @ b2, tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))


def inner(input, other):
    """The sum of products over the last dims of both (a product when one is 0-d): shape
    ``input.shape[:-1] + other.shape[:-1]``."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner: inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


def mv(input, vec):
    """The product of a matrix (n, m) and a vector (m,)."""
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def kron(input, other):
    """The Kronecker product: block (i, j) is input[i, j] * other (any number of dims, the shorter
    shape padded with 1s in front)."""
    ndim = builtins.max(input.ndim, other.ndim)
    a_shape = (1,) * (ndim - input.ndim) + tuple(input.shape)
    b_shape = (1,) * (ndim - other.ndim) + tuple(other.shape)
    a = reshape(input, tuple(x for n in a_shape for x in (n, 1)))
    b = reshape(other, tuple(x for n in b_shape for x in (1, n)))
    return reshape(a * b, tuple(p * q for p, q in zip(a_shape, b_shape)))


for _name, _method in {
    "det": det, "logdet": logdet, "slogdet": torch_slogdet, "inverse": inverse, "pinverse": pinverse,
    "cholesky": torch_cholesky, "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse,
    "qr": torch_qr, "svd": torch_svd, "matrix_power": matrix_power, "matrix_exp": matrix_exp,
    "cross": torch_cross, "inner": inner, "mv": mv, "kron": kron, "ger": outer, "orgqr": orgqr,
}.items():
    setattr(Tensor, _name, _method)
