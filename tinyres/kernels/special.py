"""Special functions of arrays, which NumPy lacks: ``erf`` (GELU's Gaussian CDF).

On the CPU SciPy's (Cephes: within 1 ulp of the true value in float64), on a GPU CUDA's,
one kernel (``kernels.fused``).  Arrays in, arrays out, in the input's dtype.
"""
from ..core.backend import get_array_module, is_cpu
from . import fused


def erf(x):
    """erf(x) = 2 / sqrt(pi) * integral from 0 to x of e^(-t^2) dt, elementwise: erf(-x) = -erf(x),
    erf(+-inf) = +-1, erf(NaN) = NaN."""
    if not is_cpu(get_array_module(x)):
        return fused.erf(x)
    import scipy.special           # here, not at the top: importing SciPy takes a while, and few ops need it
    return scipy.special.erf(x)
