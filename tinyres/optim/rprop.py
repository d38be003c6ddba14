"""Resilient backpropagation, as ``torch.optim.Rprop`` (single-tensor form)."""
from ..core.backend import get_array_module
from .single_tensor import SingleTensorOptimizer


class Rprop(SingleTensorOptimizer):
    r"""Rprop (Riedmiller & Braun, 1993): each coordinate moves by its own step size, against
    the sign of its gradient; the step size grows by ``etaplus`` while the gradient keeps its
    sign and shrinks by ``etaminus`` when it flips (and that step is skipped).

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``)::

        s    = sign(g * g_prev)
        eta  = etaplus (s > 0),  etaminus (s < 0),  1 (s = 0)
        step <- clamp(step * eta, step_size_min, step_size_max)     ("step_size"; starts at lr)
        g    <- 0 where s < 0
        p    <- p - sign(g) * step
        g_prev <- g                                                 ("prev"; starts at 0)

    Only the gradient's sign is used, so Rprop suits full-batch training, not minibatches.
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False):
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        SingleTensorOptimizer._check_options(options)
        etas = options["etas"]
        if len(etas) != 2:
            raise ValueError(f"Invalid etas: expected two values (etaminus, etaplus), got {etas!r}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        if len(options["step_sizes"]) != 2:
            raise ValueError("Invalid step_sizes: expected two values (step_size_min, step_size_max), "
                             f"got {options['step_sizes']!r}")

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        etaminus, etaplus = (p.array.dtype.type(e) for e in group["etas"])
        step_size_min, step_size_max = (float(s) for s in group["step_sizes"])
        if not state:
            state["step"] = 0
            state["prev"] = xp.zeros_like(p.array)
            state["step_size"] = xp.full_like(p.array, float(group["lr"]))
        state["step"] += 1
        g = self._gradient(p, grad, group)
        sign = xp.sign(g * state["prev"])
        eta = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, xp.where(sign == 0, sign.dtype.type(1), sign)))
        step_size = state["step_size"]
        step_size *= eta
        xp.clip(step_size, step_size_min, step_size_max, out=step_size)
        g = xp.where(eta == etaminus, g.dtype.type(0), g)
        p.array += -1 * xp.sign(g) * step_size
        state["prev"][...] = g
