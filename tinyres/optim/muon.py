"""Muon, as ``torch.optim.Muon``: momentum SGD whose update of a weight matrix is first
orthogonalised by a Newton-Schulz iteration."""
import math

from ..core import backend
from ..core.backend import get_array_module
from ..core.tensor import Tensor
from .adam import _lerp_
from .optimizer import Optimizer


class Muon(Optimizer):
    r"""Muon (Jordan et al., 2024), torch's form, for 2-D parameters only (the weight matrices
    of hidden layers; biases, embeddings and the like belong to another optimizer, e.g. AdamW).

    Per parameter ``p`` (shape ``A x B``) with gradient ``g``, at each step::

        M   <- M + (1 - momentum) * (g - M)          ("momentum_buffer"; starts at 0)
        U    = g + momentum * (M - g)   if nesterov, else M
        O    = NS(U)                                 (below)
        p   <- p * (1 - lr * weight_decay)           (decoupled weight decay)
        p   <- p - lr * s * O

    ``s`` is ``sqrt(max(1, A / B))`` for ``adjust_lr_fn`` None or ``"original"`` (Keller
    Jordan's), ``0.2 * sqrt(max(A, B))`` for ``"match_rms_adamw"`` (Moonshot's: an update
    with AdamW's root mean square, so AdamW's lr and weight decay carry over).

    ``NS`` with coefficients ``(a, b, c)`` and ``ns_steps`` = k: ``X = U`` (transposed when
    ``A > B``, so that ``X X^T`` is the smaller Gram matrix), ``X <- X / max(||X||_F, eps)``
    (every singular value now at most 1), then k times::

        G  = X X^T
        X <- a X + (b G + c G G) X

    and ``X`` transposed back.  Each iteration maps every singular value ``s`` of ``X`` to
    ``a s + b s^3 + c s^5`` and keeps the singular vectors, so ``X`` comes near ``U V^T``
    where ``U S V^T`` is the SVD (the default coefficients leave singular values between
    about 0.7 and 1.2, from those above ~5% of the largest: fast rather than exact).

    torch runs ``NS`` in bfloat16; tinyres has no bfloat16 and runs it in the parameter's
    dtype, so a float64 run is torch's iteration without the bfloat16 rounding (which moves
    the update by a few percent).  Like torch's, this Muon has no ``foreach`` argument.  Its
    ``step()`` refuses a CUDA-graph capture: the learning rate is a host number.
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.775, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:        # (as torch: not checked for a group added later)
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    @staticmethod
    def _check_options(options):
        """torch's checks and messages (they differ from the other optimizers')."""
        lr, momentum, weight_decay = options["lr"], options["momentum"], options["weight_decay"]
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        adjust_lr_fn = options["adjust_lr_fn"]
        if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")

    def step(self, closure=None):
        if backend.is_capturing():
            raise RuntimeError("Muon: a CUDA graph cannot capture its step(): the learning rate reaches the update "
                               "as a host number, which a replay would not read afresh (only SGD, Adam and AdamW "
                               "step inside a capture)")
        return super().step(closure)

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        if xp.iscomplexobj(p.array):
            raise RuntimeError("Muon does not support complex parameters")
        if grad.ndim != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        lr, weight_decay, momentum = (float(group[k]) for k in ("lr", "weight_decay", "momentum"))
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(grad)
        buf = state["momentum_buffer"]
        _lerp_(buf, grad, 1 - momentum)
        if group["nesterov"]:
            update = grad.copy()
            _lerp_(update, buf, momentum)
        else:
            update = buf
        update = zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], float(group["eps"]))
        p.array *= 1 - lr * weight_decay
        p.array += -adjust_lr(lr, group["adjust_lr_fn"], p.array.shape) * update


def zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps):
    """The Newton-Schulz orthogonalisation ``NS`` of a 2-D array (see ``Muon``), a new array
    in ``grad``'s dtype; torch's checks and messages."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = (float(v) for v in ns_coefficients)
    xp = get_array_module(grad)
    tall = grad.shape[0] > grad.shape[1]
    x = grad.T if tall else grad
    x = x / xp.maximum(xp.sqrt(xp.sum(x * x)), eps)        # on the device: no read-back of the norm
    for _ in range(ns_steps):
        gram = backend.matmul(x, x.T)
        gram_update = b * gram + c * backend.matmul(gram, gram)
        x = a * x + backend.matmul(gram_update, x)
    return x.T if tall else x


def adjust_lr(lr, adjust_lr_fn, shape):
    """The learning rate for a parameter of ``shape`` (A, B): ``lr * sqrt(max(1, A / B))``
    ("original", None) or ``lr * 0.2 * sqrt(max(A, B))`` ("match_rms_adamw")."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio
