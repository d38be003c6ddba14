"""Adagrad and its running-average successors RMSprop and Adadelta, as ``torch.optim``'s
(single-tensor form): each scales a coordinate's step by the root of its squared gradients."""
from ..core import backend
from ..core.backend import get_array_module
from .adam import _lerp_
from .optimizer import check_number
from .single_tensor import SingleTensorOptimizer


class Adagrad(SingleTensorOptimizer):
    r"""Adagrad (Duchi et al., 2011): each coordinate's step shrinks with the sum of its
    squared gradients so far.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``), at step ``t``::

        g   <- g + weight_decay * p
        clr  = lr / (1 + (t - 1) * lr_decay)
        s   <- s + g * g                               ("sum"; starts at initial_accumulator_value)
        p   <- p - clr * g / (sqrt(s) + eps)

    As torch's, the state of every parameter given to the constructor is made there (``step``
    0, ``sum`` filled with ``initial_accumulator_value``); a group added later starts its
    state at its first step, from the defaults' ``initial_accumulator_value``.  ``fused`` is
    accepted (the same arithmetic).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        if fused:
            if differentiable:
                raise RuntimeError("`fused` does not support `differentiable`")
            if foreach:
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], initial_accumulator_value)

    @staticmethod
    def _check_options(options):
        SingleTensorOptimizer._check_options(options)
        check_number("lr_decay value", options["lr_decay"])
        check_number("weight_decay value", options["weight_decay"])
        check_number("initial_accumulator_value value", options["initial_accumulator_value"])
        check_number("epsilon value", options["eps"])

    @staticmethod
    def _init_state(p, state, initial_accumulator_value):
        with backend.on_device(backend.device_of(p.array)):
            state["step"] = 0
            state["sum"] = get_array_module(p.array).full_like(p.array, initial_accumulator_value)

    def share_memory(self):
        """torch shares the ``sum`` tensors with other processes; tinyres's arrays are the
        process's own (a forked worker gets a copy): nothing to do."""

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        if not state:
            self._init_state(p, state, self.defaults["initial_accumulator_value"])
        state["step"] += 1
        lr, lr_decay, eps = (float(group[k]) for k in ("lr", "lr_decay", "eps"))
        g = self._gradient(p, grad, group)
        clr = lr / (1 + (state["step"] - 1) * lr_decay)
        state["sum"] += g * g
        std = xp.sqrt(state["sum"])
        std += eps
        p.array += -clr * g / std


class RMSprop(SingleTensorOptimizer):
    r"""RMSprop (Hinton's lecture notes; centered: Graves, 2013): Adagrad with a running
    average of the squared gradients in place of their sum.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``)::

        g   <- g + weight_decay * p
        v   <- alpha * v + (1 - alpha) * g * g                    ("square_avg")
        a   <- a + (1 - alpha) * (g - a);  w = v - a * a   if centered ("grad_avg")  else  w = v
        b   <- momentum * b + g / (sqrt(w) + eps);  p <- p - lr * b   if momentum > 0 ("momentum_buffer")
        p   <- p - lr * g / (sqrt(w) + eps)                           otherwise

    The root is taken before ``eps`` is added (TensorFlow adds it first).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        SingleTensorOptimizer._check_options(options)
        check_number("epsilon value", options["eps"])
        check_number("momentum value", options["momentum"])
        check_number("weight_decay value", options["weight_decay"])
        check_number("alpha value", options["alpha"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, alpha, eps, momentum = (float(group[k]) for k in ("lr", "alpha", "eps", "momentum"))
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.array)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(p.array)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.array)
        state["step"] += 1
        g = self._gradient(p, grad, group)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, g, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            p.array += -lr * buf
        else:
            p.array += -lr * g / avg


class Adadelta(SingleTensorOptimizer):
    r"""Adadelta (Zeiler, 2012): RMSprop whose step is scaled by a running average of the
    squared past steps, so that it carries the parameter's units; ``lr`` (default 1.0) only
    scales the result.

    Per parameter ``p`` with gradient ``g`` (``-g`` when ``maximize``)::

        g   <- g + weight_decay * p
        v   <- rho * v + (1 - rho) * g * g                       ("square_avg")
        d    = sqrt(u + eps) / sqrt(v + eps) * g
        u   <- rho * u + (1 - rho) * d * d                       ("acc_delta")
        p   <- p - lr * d
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    @staticmethod
    def _check_options(options):
        SingleTensorOptimizer._check_options(options)
        check_number("rho value", options["rho"])
        if options["rho"] > 1.0:
            raise ValueError(f"Invalid rho value: {options['rho']}")
        check_number("epsilon value", options["eps"])
        check_number("weight_decay value", options["weight_decay"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, rho, eps = (float(group[k]) for k in ("lr", "rho", "eps"))
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.array)
            state["acc_delta"] = xp.zeros_like(p.array)
        state["step"] += 1
        g = self._gradient(p, grad, group)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        std = xp.sqrt(square_avg + eps)
        delta = xp.sqrt(acc_delta + eps)
        delta /= std
        delta *= g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p.array += -lr * delta
