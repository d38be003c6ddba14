"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``."""
from ..core.backend import get_array_module, is_capturing, is_cpu
from ..kernels import fused
from ..kernels.threads import parallel_map
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
    ``momentum > 0`` and ``dampening == 0``.  A large parameter is updated in slices on
    the CPU threads; on a GPU it is one fused kernel (``kernels.fused.sgd``) per
    parameter group, over flat buffers (``foreach=None`` or True; ``optim/flat.py``), or
    one per parameter (``foreach=False``).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        Optimizer._check_options(options)
        check_number("momentum value", options["momentum"])
        check_number("weight_decay value", options["weight_decay"])
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _flat_state_names(self, group):
        return ["momentum_buffer"] if group["momentum"] != 0 else []

    def _update_flat(self, layout, group):
        fused.sgd(layout.array, layout.grad, layout.state.get("momentum_buffer"),
                  self._device_scalar(("lr", id(group)), float(group["lr"])), float(group["momentum"]),
                  float(group["dampening"]), float(group["weight_decay"]), group["nesterov"], group["maximize"],
                  "momentum_buffer" in layout.new)

    def _update(self, p, grad, state, group):
        lr, momentum, weight_decay, dampening = (float(group[k]) for k in ("lr", "momentum", "weight_decay",
                                                                          "dampening"))
        maximize, nesterov = group["maximize"], group["nesterov"]
        first = momentum != 0 and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = get_array_module(p.array).empty_like(p.array)
        buf = state.get("momentum_buffer", p.array)     # (p.array only fills the slot when there's no momentum)
        if not is_cpu(get_array_module(p.array)):       # a GPU: the whole update in one kernel
            if first and is_capturing():
                raise RuntimeError("SGD: a parameter's momentum buffer is made at its first step, which a CUDA "
                                   "graph cannot capture: run warm-up steps before the capture")
            lr_on_device = self._device_scalar(("lr", id(group)), lr)
            return fused.sgd(p.array, grad, state.get("momentum_buffer"), lr_on_device, momentum, dampening,
                             weight_decay, nesterov, maximize, first)

        def update(p, grad, buf):                      # slices of the arrays, one per thread
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * p
            if momentum != 0:
                if first:
                    buf[...] = g
                else:
                    buf *= momentum
                    buf += ((1 - dampening) * g) if dampening else g    # a kernel less (a GPU launch)
                g = g + momentum * buf if nesterov else buf
            p -= lr * g
        parallel_map(update, p.array, grad, buf)
