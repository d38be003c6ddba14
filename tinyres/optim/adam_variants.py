"""Adam's variants Adamax, NAdam and RAdam, as ``torch.optim``'s (single-tensor form).  Their
options are checked as Adam's (``eps``, ``betas``, ``weight_decay``)."""
import numpy

from ..core import backend
from ..core.backend import get_array_module
from .adam import Adam, _lerp_
from .optimizer import check_number
from .single_tensor import SingleTensorOptimizer


class _AdamVariant(SingleTensorOptimizer):
    """What Adam's variants share: Adam's option checks and the first lines of a step."""

    @staticmethod
    def _check_options(options):
        Adam._check_options(options)

    def _first_moment(self, p, grad, state, group, second):
        """What the variants' steps begin with: the state at the first step (``step`` 0, the
        moments ``exp_avg`` and ``second`` zero), the step counted, the gradient (maximize,
        weight decay) and ``exp_avg <- beta1 * exp_avg + (1 - beta1) * g``; returns ``g``."""
        if not state:
            xp = get_array_module(p.array)
            state.update(step=0, exp_avg=xp.zeros_like(p.array), **{second: xp.zeros_like(p.array)})
        state["step"] += 1
        g = self._gradient(p, grad, group)
        _lerp_(state["exp_avg"], g, 1 - float(group["betas"][0]))
        return g


class Adamax(_AdamVariant):
    r"""Adamax (Kingma & Ba, 2015, section 7): Adam with the infinity norm in place of the
    root mean square.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        g  <- g + weight_decay * p
        m  <- beta1 * m + (1 - beta1) * g                  ("exp_avg")
        u  <- max(beta2 * u, |g| + eps)                    ("exp_inf")
        p  <- p - lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        g = self._first_moment(p, grad, state, group, "exp_inf")
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_inf *= beta2
        norm = xp.abs(g)
        norm += eps
        xp.maximum(exp_inf, norm, out=exp_inf)
        clr = lr / (1 - beta1 ** state["step"])
        p.array += -clr * exp_avg / exp_inf


class NAdam(_AdamVariant):
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum, whose momentum coefficient warms up
    with the step count (``momentum_decay``).

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        g   <- g + weight_decay * p                        (or, decoupled_weight_decay:
                                                            p <- p * (1 - lr * weight_decay))
        mu_t = beta1 * (1 - 0.96^(t * momentum_decay) / 2)
        P   <- P * mu_t                                    ("mu_product": mu_1 ... mu_t)
        m   <- beta1 * m + (1 - beta1) * g                 ("exp_avg")
        v   <- beta2 * v + (1 - beta2) * g * g             ("exp_avg_sq")
        D    = sqrt(v / (1 - beta2^t)) + eps
        p   <- p - lr * (1 - mu_t) / (1 - P) * g / D
        p   <- p - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / D

    ``mu_product`` is a host number rounded at every step to torch's scalar dtype (float32
    unless the default dtype is float64), as torch's 0-d tensor is; the ``state_dict()``
    holds it as a 0-d array of that dtype (a 0-d tensor in a ``.pth``, as torch's).
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        Adam._check_options(options)
        check_number("momentum_decay value", options["momentum_decay"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, eps, momentum_decay = (float(group[k]) for k in ("lr", "eps", "momentum_decay"))
        beta1, beta2 = (float(b) for b in group["betas"])
        first = not state
        g = self._first_moment(p, grad, state, group, "exp_avg_sq")
        if first:
            state["mu_product"] = 1.0
        step = state["step"]
        bias_correction2 = 1 - beta2 ** step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        dtype = _scalar_dtype()
        mu_product = state["mu_product"] = float(dtype(state["mu_product"]) * dtype(mu))    # rounded as torch's
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        denom = xp.sqrt(exp_avg_sq / bias_correction2)
        mu_product_next = mu_product * mu_next
        denom += eps
        p.array += (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
        p.array += ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom

    def state_dict(self):
        saved = super().state_dict()
        for s in saved["state"].values():
            if "mu_product" in s:
                s["mu_product"] = numpy.array(s["mu_product"], _scalar_dtype())
        return saved

    def load_state_dict(self, state_dict):
        """As ``Optimizer.load_state_dict``, but ``mu_product`` stays a host number (torch's own
        load casts it to the parameter's dtype, after which torch's steps round it differently
        from a run that was never saved)."""
        saved = {i: s["mu_product"] for i, s in state_dict["state"].items() if s.get("mu_product") is not None}
        order = [i for g in state_dict["param_groups"] for i in g["params"]]
        super().load_state_dict(state_dict)
        params = dict(zip(order, (p for g in self.param_groups for p in g["params"])))
        for i, value in saved.items():
            value = getattr(value, "array", value)          # a Tensor (tinyres.load of a .pth)
            self.state[params[i]]["mu_product"] = float(backend.to_host(value) if backend.is_array(value) else value)

class RAdam(_AdamVariant):
    r"""RAdam (Liu et al., 2020): Adam whose adaptive step is switched on, and scaled by a
    rectification factor ``r_t``, only once the variance of the second moment's estimate
    is tractable (its approximate length of SMA ``rho_t`` above 5); before that it is SGD
    with momentum.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        g   <- g + weight_decay * p                        (or, decoupled_weight_decay:
                                                            p <- p * (1 - lr * weight_decay))
        m   <- beta1 * m + (1 - beta1) * g                 ("exp_avg")
        v   <- beta2 * v + (1 - beta2) * g * g             ("exp_avg_sq")
        rho_inf = 2 / (1 - beta2) - 1
        rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
        r_t     = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        p   <- p - lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t   (rho_t > 5)
        p   <- p - lr * m / (1 - beta1^t)                                               (otherwise)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        g = self._first_moment(p, grad, state, group, "exp_avg_sq")
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        update = exp_avg / bias_correction1 * lr
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            denom = xp.sqrt(exp_avg_sq)
            denom += eps
            update = update * ((bias_correction2 ** 0.5) / denom) * rect
        p.array -= update


def _scalar_dtype():
    """The dtype of torch's host scalars of optimizer state (``_get_scalar_dtype``): float64
    when the default dtype is float64, else float32."""
    return numpy.float64 if backend.get_default_dtype() == numpy.float64 else numpy.float32
