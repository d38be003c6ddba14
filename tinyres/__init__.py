"""tinyres: a from-scratch ResNet library in NumPy, with CuPy as an optional GPU backend.

The package is laid out as its layers, each importing only from those below it
(docs/architecture.md; tests/test_architecture.py checks it):

    errors < core.backend < kernels < core (grad_mode, hooks, tensor, engine, ops, composite, linalg)
    < testing, serialization, collectives, cuda < nn < data, utils.data, vision, onnx, optim, models
    < parallel < autograd, distributed, utils, backends, linalg (facades) < app

This file is the top: it gathers the public names, as ``torch`` does.
"""
import importlib as _importlib
import pkgutil as _pkgutil
import sys as _sys

from .version import __version__  # noqa: F401
from .errors import UserError  # noqa: F401
from .core import backend  # noqa: F401
from .core.backend import (Device, Generator, bool_, device, float16, float32, float64, get_default_dtype,  # noqa: F401
                           initial_seed, int32, int64, manual_seed, set_default_dtype, uint8)
from .kernels.threads import get_num_threads, set_num_threads  # noqa: F401
from .core.grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,  # noqa: F401
                              no_grad, set_grad_enabled)
from .core.tensor import (Tensor, arange, empty, empty_like, full, full_like, ones, ones_like, rand,  # noqa: F401
                          rand_like, randint, randn, randn_like, set_printoptions, tensor, zeros, zeros_like)
from .core.tensor import (channels_last, channels_last_3d, contiguous_format, memory_format,  # noqa: F401
                          preserve_format)
from .core.tensor import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor,  # noqa: F401
                          IntTensor, LongTensor, ShortTensor)      # torch's legacy typed constructors
from .core import engine, ops, composite  # noqa: F401  (they install Tensor.backward and Tensor's methods)
from .core.ops import (abs, all, any, argmax, argmin, cat, clamp, clone, cos, cumsum, exp, expm1, flatten,  # noqa: F401
                       log, log1p, matmul, max, maximum, mean, min, minimum, mul, neg, permute, reshape, sin, sqrt,
                       squeeze, stack, std, sum, transpose, unsqueeze, var)
from .core.ops import matmul as mm, matmul as bmm  # noqa: F401,E402
from .core.composite import (allclose, argsort, bitwise_and, bitwise_not, bitwise_or, bitwise_xor,  # noqa: F401
                             ceil, chunk, cosh, dot, einsum, eq, erf, eye, flip, floor, floor_divide, frac,
                             from_numpy, gather, ge, gt, index_select, is_tensor, isclose, isfinite, isinf, isnan, le,
                             linspace, log10, log2, logical_not, logsumexp, lt, masked_fill, narrow, ne, norm,
                             numel, outer, randperm, reciprocal, remainder, round, rsqrt, scatter, select, sign,
                             sinh, sort, split, square, topk, trace, tril, triu, trunc, unbind)
from .core.composite import (Size, add, addcdiv, addcmul, amax, amin, argwhere, as_tensor, bernoulli,  # noqa: F401
                             bincount, clamp_max, clamp_min, clip, column_stack, count_nonzero, cumprod, diag,
                             diagonal, div, equal, finfo, get_rng_state, hstack, iinfo, lerp, median, meshgrid,
                             multinomial, nonzero, normal, pow, prod, repeat_interleave, roll, scatter_add,
                             set_rng_state, std_mean, sub, t, unique, var_mean, vstack, where)  # where(cond) too
from .core.composite import (addmm, arctan2, atan2, cdist, concat, concatenate, fmod, index_add,  # noqa: F401
                             index_fill, is_floating_point, logical_and, logical_or, logical_xor, masked_select,
                             moveaxis, movedim, nan_to_num, negative, tan, tile)
# torch's functions as its methods: with the deprecated overloads (torch.add(a, 2.0, b), with
# torch's warning) and memory_format= (torch.clone)
add, sub, addcmul, addcdiv, clone = Tensor.add, Tensor.sub, Tensor.addcmul, Tensor.addcdiv, Tensor.clone
from . import autograd, cuda, testing  # noqa: F401
from . import linalg  # noqa: F401  (torch.linalg; core/linalg.py also installs x.det(), x.inverse() ...)
from .core.linalg import (cholesky_inverse, cholesky_solve, det, inner, inverse, kron, logdet, orgqr,  # noqa: F401
                          matrix_exp, matrix_power, mv, pinverse, tensordot)
from .core.linalg import (torch_cholesky as cholesky, torch_cross as cross, torch_qr as qr,  # noqa: F401
                          torch_slogdet as slogdet, torch_svd as svd)
from .core.composite import outer as ger  # noqa: F401
from .serialization import load, save  # noqa: F401
from . import nn, optim, data, models, torch_weights, distributed, utils, vision, onnx, backends  # noqa: F401
from .app import viz  # noqa: F401
from .models.summary import summary  # noqa: F401
from .nn.functional import log_softmax, relu, relu_, sigmoid, softmax, softplus, tanh  # noqa: F401  (torch.relu, torch.tanh ...)

# The modules' old names, from before the package had layers, still import: the same module
# objects under both names, so that patching one patches the other.  tinyres.cli is also a
# file (tinyres/cli.py), for ``python -m tinyres.cli``; imported, it is tinyres.app.cli.
from .app import checks, cli, recipes, train  # noqa: E402,F401
from .app import exercises, sanity  # noqa: E402,F401  (tinyres.exercises, tinyres.sanity)
from .core import tensor as _tensor
from .kernels import threads as _threads
from .testing import reference as _reference

for _old, _module in {"tensor": _tensor, "ops": ops, "backend": backend, "recipes": recipes, "train": train,
                      "viz": viz, "checks": checks, "exercises": exercises, "sanity": sanity,
                      "nn.functional.reference": _reference}.items():
    _sys.modules[f"{__name__}.{_old}"] = _module
    for _sub in _pkgutil.iter_modules(getattr(_module, "__path__", [])):   # a package's modules too
        _sys.modules[f"{__name__}.{_old}.{_sub.name}"] = _importlib.import_module(f"{_module.__name__}.{_sub.name}")
# tinyres.backend's CPU-thread helpers moved to kernels/threads.py, above the backend: their old
# names are set here, at the top (the backend itself imports nothing above it)
for _old in ("parallel_for", "parallel_map", "parallel_matmul", "workspace", "empty_workspace",
             "set_num_threads", "get_num_threads", "BLOCK"):
    setattr(backend, _old, getattr(_threads, _old))
del _old, _module, _sub



# torch's names tinyres has on purpose not: a ported script that reaches one is told why
_NOT_IN_TINYRES = {
    "compile": "tinyres runs eagerly: there is no compiler; drop the torch.compile(model) call",
    "jit": "there is no TorchScript: save weights with tinyres.save, or a portable graph with tinyres.onnx.export",
    "amp": "there is no automatic mixed precision: train in float32 (or float64 to check gradients)",
    "autocast": "there is no automatic mixed precision: train in float32 (or float64 to check gradients)",
    "use_deterministic_algorithms": "tinyres's ops are deterministic already; drop the call",
    "set_float32_matmul_precision": "tinyres's float32 matrix products are plain float32 (no TF32); drop the call",
}


# torch's short dtype names (torch.long, torch.float, ...), served here rather than bound as
# globals: ``float`` or ``bool`` as names in this module would shadow the builtins in it
_DTYPE_ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
                  "bool": bool_}


def __getattr__(name):
    if name in _DTYPE_ALIASES:
        return _DTYPE_ALIASES[name]
    if name in _NOT_IN_TINYRES:
        raise AttributeError(f"module 'tinyres' has no attribute {name!r} (torch.{name}): {_NOT_IN_TINYRES[name]}")
    raise AttributeError(f"module 'tinyres' has no attribute {name!r}")
