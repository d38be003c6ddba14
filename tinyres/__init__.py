"""tinyres: a from-scratch ResNet library in NumPy, with CuPy as an optional GPU backend."""
__version__ = "0.1.0"

from . import backend, cuda  # noqa: F401
from .errors import UserError  # noqa: F401
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .backend import (Device, bool_, device, float16, float32, float64, get_default_dtype,  # noqa: F401
                      get_num_threads, int32, int64, manual_seed, set_default_dtype, set_num_threads, uint8)
from .ops import (abs, argmax, argmin, cat, clamp, clone, exp, flatten, log, matmul, max,  # noqa: F401
                  maximum, mean, min, permute, reshape, sqrt, squeeze, stack, std, sum, transpose,
                  unsqueeze, var, where)
from .tensor import (Tensor, arange, empty, empty_like, full, full_like, ones, ones_like, rand,  # noqa: F401
                     rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
from . import autograd  # noqa: F401,E402
from .serialization import load, save  # noqa: F401,E402
from . import nn, optim, data, models, torch_weights, viz, distributed  # noqa: F401,E402
from .models.summary import summary  # noqa: F401,E402


def __getattr__(name):
    if name == "utils":      # the old name of torch_weights, for one release (importing it warns)
        import importlib
        return importlib.import_module(".utils", __name__)
    raise AttributeError(f"module 'tinyres' has no attribute {name!r}")
