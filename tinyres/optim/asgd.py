"""Averaged SGD, as ``torch.optim.ASGD`` (single-tensor form)."""
import numpy

from ..core import backend
from ..core.backend import get_array_module
from .adam_variants import _scalar_dtype
from .optimizer import check_number
from .single_tensor import SingleTensorOptimizer


class ASGD(SingleTensorOptimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992): SGD with a decaying step size ``eta`` that
    also keeps ``ax``, a running average of the iterates from step ``t0`` on.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        g    <- g + weight_decay * p
        p    <- p * (1 - lambd * eta) - eta * g                 ("eta"; starts at lr)
        ax   <- p                                    if mu == 1  ("ax"; starts at 0)
        ax   <- ax + mu * (p - ax)                   otherwise   ("mu"; starts at 1)
        eta  <- lr / (1 + lambd * lr * t)^alpha
        mu   <- 1 / max(1, t - t0)

    ``eta`` and ``mu`` are host numbers rounded at every step to torch's scalar dtype (float32
    unless the default dtype is float64), as torch's 0-d tensors are; the ``state_dict()``
    holds them as 0-d arrays of that dtype (0-d tensors in a ``.pth``, as torch's).  The
    averaged parameters are ``optimizer.state[p]["ax"]``.
    """

    _SCALARS = ("eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        SingleTensorOptimizer._check_options(options)
        check_number("weight_decay value", options["weight_decay"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, lambd, alpha, t0 = (float(group[k]) for k in ("lr", "lambd", "alpha", "t0"))
        dtype = _scalar_dtype()
        if not state:
            state.update(step=0, eta=float(dtype(lr)), mu=1.0, ax=xp.zeros_like(p.array))
        state["step"] += 1
        g = self._gradient(p, grad, group)
        eta, mu = state["eta"], state["mu"]
        p.array *= 1 - lambd * eta
        p.array += -eta * g
        ax = state["ax"]
        if mu != 1:
            ax += (p.array - ax) * mu
        else:
            ax[...] = p.array
        step = state["step"]
        state["eta"] = float(dtype(lr / ((1 + lambd * lr * step) ** alpha)))      # rounded as torch's
        state["mu"] = float(dtype(1 / max(1, step - t0)))

    def state_dict(self):
        saved = super().state_dict()
        for s in saved["state"].values():
            for name in self._SCALARS:
                if name in s:
                    s[name] = numpy.array(s[name], _scalar_dtype())
        return saved

    def load_state_dict(self, state_dict):
        """As ``Optimizer.load_state_dict``, but ``eta`` and ``mu`` stay host numbers (torch's
        own load casts them to the parameter's dtype, after which torch's steps round them
        differently from a run that was never saved)."""
        saved = {i: {k: s[k] for k in self._SCALARS if s.get(k) is not None}
                 for i, s in state_dict["state"].items()}
        order = [i for g in state_dict["param_groups"] for i in g["params"]]
        super().load_state_dict(state_dict)
        params = dict(zip(order, (p for g in self.param_groups for p in g["params"])))
        for i, values in saved.items():
            for name, value in values.items():
                value = getattr(value, "array", value)          # a Tensor (tinyres.load of a .pth)
                self.state[params[i]][name] = float(backend.to_host(value) if backend.is_array(value) else value)
