"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW`` (single-tensor form)."""
from ..core.backend import get_array_module, is_capturing, is_cpu
from ..kernels import fused
from .optimizer import Optimizer, check_number


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with optional AMSGrad and weight decay.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``
    (counted per parameter, from 1)::

        g  <- g + weight_decay * p                    (L2 decay; Adam)
        p  <- p * (1 - lr * weight_decay)             (decoupled decay; AdamW)
        m  <- beta1 * m + (1 - beta1) * g             first moment   ("exp_avg")
        v  <- beta2 * v + (1 - beta2) * g * g         second moment  ("exp_avg_sq")
        v_max <- max(v_max, v)                        (amsgrad; "max_exp_avg_sq")
        p  <- p - lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    ``m`` and ``v`` start at zero, so early on they are biased towards zero by the factors
    ``1 - beta^t``; dividing by them (bias correction) undoes that.  The arithmetic is done
    in the parameter's dtype in torch's order, so float32 results track torch closely; on a
    GPU the whole update is one fused kernel (``kernels.fused.adam``) per parameter group,
    over flat buffers (``foreach=None`` or True; ``optim/flat.py``; the group's parameters
    in step), or one per parameter (``foreach=False``).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        Optimizer._check_options(options)
        check_number("epsilon value", options["eps"])
        betas = options["betas"]
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: expected two values (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(f"beta parameter at index {i}", beta, high=1.0)
        check_number("weight_decay value", options["weight_decay"])

    def _count_steps(self, p, state, delta):
        state["step"] += delta

    def _flat_state_names(self, group):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])

    def _flat_ready(self, params):
        return len({self.state[p].get("step", 0) for p in params}) == 1

    def _update_flat(self, layout, group):
        for p in layout.params:
            self.state[p]["step"] = self.state[p].get("step", 0) + 1
        t = self.state[layout.params[0]]["step"]
        fused.adam(layout.array, layout.grad, layout.state["exp_avg"], layout.state["exp_avg_sq"],
                   layout.state.get("max_exp_avg_sq"), self._device_scalar(("lr", id(group)), float(group["lr"])),
                   *(float(b) for b in group["betas"]), float(group["eps"]), float(group["weight_decay"]),
                   group["decoupled_weight_decay"], group["maximize"], self._device_counter(("step", id(layout)), t))

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, eps, weight_decay = (float(group[k]) for k in ("lr", "eps", "weight_decay"))
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            if is_capturing():
                raise RuntimeError(f"{type(self).__name__}: a parameter's moments are made at its first step, which "
                                   "a CUDA graph cannot capture: run warm-up steps before the capture")
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.array)
            state["exp_avg_sq"] = xp.zeros_like(p.array)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.array)
        state["step"] += 1
        if not is_cpu(xp):                 # a GPU: the whole update in one kernel, lr and t on the device
            return fused.adam(p.array, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                              self._device_scalar(("lr", id(group)), lr), beta1, beta2, eps, weight_decay,
                              group["decoupled_weight_decay"], group["maximize"],
                              self._device_counter(("step", id(p)), state["step"]))
        step_size = lr / (1 - beta1 ** state["step"])
        bias2_sqrt = (1 - beta2 ** state["step"]) ** 0.5
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.array *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p.array
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        denom = xp.sqrt(exp_avg_sq) / bias2_sqrt + eps
        p.array += -step_size * exp_avg / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019): the decay shrinks the
    weights directly, ``p <- p * (1 - lr * weight_decay)``, before the Adam step, instead of
    being added to the gradient (where Adam's per-coordinate scaling would weaken it for
    coordinates with large gradients).  Default ``weight_decay=1e-2``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def _lerp_(a, b, weight):
    """``a <- a + weight * (b - a)`` in place, computed as ``torch.lerp_`` does: from ``a``
    when ``weight < 0.5``, else as ``b - (b - a) * (1 - weight)`` (exact at weight 1);
    ``weight`` is rounded to the array's dtype first."""
    weight = a.dtype.type(weight)
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)
