"""``torch.linalg``: its functions, by its names (they live in ``core/linalg.py``, with their math).

    import tinyres as torch
    L = torch.linalg.cholesky(A)        # torch.linalg.cholesky(A)
"""
from .core.linalg import (LinAlgError, cholesky, cond, cross, det, diagonal, eigh, eigvalsh, inv, lstsq,  # noqa: F401
                          matrix_exp, matrix_norm, matrix_power, matrix_rank, multi_dot, norm, pinv, qr, slogdet,
                          solve, solve_triangular, svd, svdvals, vander, vecdot, vector_norm)
from .core.ops import matmul  # noqa: F401

__all__ = ["LinAlgError", "cholesky", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "lstsq", "matmul",
           "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
           "solve", "solve_triangular", "svd", "svdvals", "vander", "vecdot", "vector_norm"]
