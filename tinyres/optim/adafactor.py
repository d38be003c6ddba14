"""Adafactor, as ``torch.optim.Adafactor`` (single-tensor form)."""
from ..core.backend import get_array_module
from .adam import _lerp_
from .single_tensor import SingleTensorOptimizer


class Adafactor(SingleTensorOptimizer):
    r"""Adafactor (Shazeer & Stern, 2018), torch's form: Adam without the first moment, whose
    second moment of a parameter of two or more dimensions is kept factored, as a row and a
    column mean over its last two dimensions, and whose step is relative to the parameter's
    root mean square.

    Per parameter ``p`` (``n`` elements) with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        b     = t^beta2_decay                        (1 - beta2_t)
        rho   = min(lr, 1 / sqrt(t))
        a     = max(eps2, ||p|| / sqrt(n)) * rho     (before the decay below)
        p    <- p * (1 - lr * weight_decay)
        R    <- R + b * (mean(g * g, dim=-1) - R)    ("row_var", keepdim; p.dim() >= 2)
        C    <- C + b * (mean(g * g, dim=-2) - C)    ("col_var", keepdim)
        V     = R @ C / max(mean(R, dim=-2), eps1)
        V    <- V + b * (g * g - V)                  ("variance"; p.dim() < 2)
        u     = g / sqrt(max(V, eps1^2))
        p    <- p - a / max(1, ||u|| / (sqrt(n) * d)) * u

    ``eps1`` None (the default) is the machine epsilon of the parameter's dtype.  Torch's
    Adafactor has no ``differentiable`` nor ``capturable`` argument (nor does this one).
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        """torch's checks and messages (they differ from the other optimizers')."""
        lr, beta2_decay, eps, d = (options[k] for k in ("lr", "beta2_decay", "eps", "d"))
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= options["weight_decay"]:
            raise ValueError(f"weight_decay should be >= 0 but is: {options['weight_decay']}")
        if options.get("foreach") not in (None, True, False):
            raise ValueError(f"foreach must be None, True or False, got {options['foreach']!r}")

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        if xp.iscomplexobj(p.array):
            raise RuntimeError("Adafactor does not support complex parameters")
        lr, beta2_decay, d, weight_decay = (float(group[k]) for k in ("lr", "beta2_decay", "d", "weight_decay"))
        eps1, eps2 = group["eps"]
        eps1 = float(xp.finfo(p.array.dtype).eps) if eps1 is None else float(eps1)
        eps2 = float(eps2)
        if not state:
            state["step"] = 0
            if grad.ndim > 1:
                state["row_var"] = xp.zeros(grad.shape[:-1] + (1,), grad.dtype)
                state["col_var"] = xp.zeros(grad.shape[:-2] + (1,) + grad.shape[-1:], grad.dtype)
            else:
                state["variance"] = xp.zeros_like(p.array)
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        step = float(state["step"])
        one_minus_beta2 = step ** beta2_decay
        rho = min(lr, 1 / (step ** 0.5))
        alpha = max(eps2, float(xp.sqrt(xp.sum(p.array * p.array))) / (p.array.size ** 0.5)) * rho
        if weight_decay != 0:
            p.array *= 1 - lr * weight_decay
        if g.ndim > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            squared = g * g
            row_mean = xp.sqrt(squared.sum(axis=-1, keepdims=True)) ** 2 / g.shape[-1]
            _lerp_(row_var, row_mean, one_minus_beta2)
            col_mean = xp.sqrt(squared.sum(axis=-2, keepdims=True)) ** 2 / g.shape[-2]
            _lerp_(col_var, col_mean, one_minus_beta2)
            var_estimate = row_var @ col_var
            var_estimate /= xp.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
        else:
            variance = state["variance"]
            _lerp_(variance, g * g, one_minus_beta2)
            var_estimate = variance.copy()
        update = 1 / xp.sqrt(xp.maximum(var_estimate, eps1 * eps1))
        update *= g
        denom = max(1.0, float(xp.sqrt(xp.sum(update * update))) / ((update.size ** 0.5) * d))
        p.array += (-alpha / denom) * update

