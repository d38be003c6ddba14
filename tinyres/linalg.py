"""``torch.linalg``: its functions, by its names (they live in ``core/linalg.py``, with their math).

    import tinyres as torch
    L = torch.linalg.cholesky(A)        # torch.linalg.cholesky(A)
"""
from .core.linalg import (LinAlgError, cholesky, cholesky_ex, cond, cross, det, diagonal, eigh, eigvalsh,  # noqa: F401
                          householder_product, inv, inv_ex, lstsq, lu, lu_factor, lu_factor_ex, lu_solve, matrix_exp,
                          matrix_norm, matrix_power, matrix_rank, multi_dot, norm, pinv, qr, slogdet, solve, solve_ex,
                          solve_triangular, svd, svdvals, tensorinv, tensorsolve, vander, vecdot, vector_norm)
from .core.ops import matmul  # noqa: F401

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh",
           "householder_product", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "matmul",
           "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
           "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vander", "vecdot",
           "vector_norm"]
