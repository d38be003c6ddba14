"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``."""
from .optimizer import Optimizer, check_number


class SGD(Optimizer):
    r"""SGD with optional (Nesterov) momentum, dampening and L2 weight decay.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), step ``t``::

        g   <- g + weight_decay * p
        buf <- g                                        (t = 1)
        buf <- momentum * buf + (1 - dampening) * g     (t > 1)
        g   <- g + momentum * buf   if nesterov  else  buf     (only when momentum != 0)
        p   <- p - lr * g

    The buffer is kept in ``state[p]["momentum_buffer"]``.  Nesterov momentum needs
    ``momentum > 0`` and ``dampening == 0``.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        Optimizer._check_options(options)
        check_number("momentum value", options["momentum"])
        check_number("weight_decay value", options["weight_decay"])
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, grad, state, group):
        lr, momentum, weight_decay = (float(group[k]) for k in ("lr", "momentum", "weight_decay"))
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g
