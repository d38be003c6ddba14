"""``tinyres.autograd``, as ``torch.autograd``: the engine's public face.

Little is defined here: the engine (the backward pass, the Function nodes) is
``tinyres.core.engine``, grad mode and anomaly mode ``tinyres.core.grad_mode``, the
gradient checks ``tinyres.testing``.  ``Function`` is ``function.Function``: the engine's,
and also torch's form with a ``ctx`` and static methods (``autograd/function.py``).
"""
from ..core.engine import grad, once_differentiable, queue_callback, run_backward, sum_to  # noqa: F401
from ..core.engine import _accumulate  # noqa: F401  (benchmarks/profile_step.py times it)
from ..core.grad_mode import (AnomalyError, check_not_inference, detect_anomaly, enable_grad,  # noqa: F401
                              inference_mode, is_anomaly_enabled, is_grad_enabled, is_inference_mode_enabled,
                              no_grad, set_grad_enabled)
from ..core.tensor import Tensor
from . import function  # noqa: F401
from .function import Function  # noqa: F401
from ..testing import GradcheckError, gradcheck, gradgradcheck, gradient_pairs  # noqa: F401


def Variable(tensor, requires_grad=False, volatile=False):
    """Legacy, as ``torch.autograd.Variable`` today: returns ``tensor`` itself (with
    ``requires_grad`` set when asked), so that old PyTorch code that wraps tensors in
    ``Variable(...)`` runs with its imports swapped.  Write plain tensors in new code;
    ``volatile`` is ignored (use ``no_grad``)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"Variable: expected a Tensor, got {type(tensor).__name__}")
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    """As ``torch.autograd.backward``: ``sum(t.backward(g))`` over ``tensors`` and their
    ``grad_tensors``, in one pass through the graph; with ``inputs``, into those tensors'
    ``.grad`` alone.  ``grad_variables`` is the old name of ``grad_tensors``."""
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError("backward: 'grad_tensors' and 'grad_variables' (deprecated) arguments both "
                               "passed to backward(). Please only use 'grad_tensors'.")
        grad_tensors = grad_variables
    run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
from . import functional  # noqa: F401,E402
