"""``SingleTensorOptimizer``: the base of the optimizers whose update is plain array
operations, one parameter after another -- torch.optim's single-tensor algorithms
(``foreach=False``), in torch's order of operations, on the array module of the parameter
(NumPy, or CuPy on a GPU).

``foreach``, ``capturable`` and ``fused`` are accepted as torch accepts them and change
nothing in the arithmetic (torch's multi-tensor and fused forms compute the same update).
A step count is kept as a Python int in ``state[p]["step"]`` (torch: a 0-d float32 tensor;
``load_state_dict`` takes either), so the bias corrections are host numbers: a CUDA graph
cannot capture such a step, and ``step()`` refuses inside a capture.  ``differentiable=True``
(an update autograd can differentiate through) is refused: tinyres's optimizers write the
parameters' arrays outside the graph.
"""
from ..core import backend
from .optimizer import Optimizer


class SingleTensorOptimizer(Optimizer):
    """An ``Optimizer`` whose subclasses give ``_update(p, grad, state, group)`` in plain
    array operations (see the module doc)."""

    def __init__(self, params, defaults):
        if defaults.get("differentiable"):
            raise NotImplementedError(f"{type(self).__name__}: differentiable=True is not supported: tinyres's "
                                      "optimizers update the parameters' arrays outside the autograd graph")
        super().__init__(params, defaults)

    def step(self, closure=None):
        if backend.is_capturing():
            raise RuntimeError(f"{type(self).__name__}: a CUDA graph cannot capture its step(): the step count "
                               "and the factors made from it are host numbers (only SGD, Adam and AdamW step "
                               "inside a capture)")
        return super().step(closure)

    @staticmethod
    def _gradient(p, grad, group):
        """The gradient the update uses: ``-grad`` when ``maximize``, plus ``weight_decay * p``
        (L2 decay); with ``decoupled_weight_decay`` the parameter is shrunk instead, in place,
        ``p <- p * (1 - lr * weight_decay)``, and the gradient left as it is."""
        g = -grad if group["maximize"] else grad
        weight_decay = float(group.get("weight_decay", 0))
        if weight_decay != 0:
            if group.get("decoupled_weight_decay"):
                p.array *= 1 - float(group["lr"]) * weight_decay
            else:
                g = g + weight_decay * p.array
        return g
