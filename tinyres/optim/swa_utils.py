"""Weight averaging, as ``torch.optim.swa_utils``: ``AveragedModel`` (SWA, EMA), ``SWALR``
and ``update_bn``.

``AveragedModel(model)`` keeps a deep copy of ``model`` whose parameters are a running
average of ``model``'s, updated by ``update_parameters(model)`` (after ``optimizer.step()``):

    SWA (the default)   w_avg <- w_avg + (w - w_avg) / (n + 1)       an equal-weight mean
    EMA                 w_avg <- lerp(w_avg, w, 1 - decay)           (get_ema_multi_avg_fn)

where n counts the updates so far (the buffer ``n_averaged``); the first update copies.
Buffers (BatchNorm's running statistics) are copied from ``model`` at every update, or
averaged with the parameters when ``use_buffers=True``.  With BatchNorm and
``use_buffers=False``, recompute the statistics for the averaged weights at the end:
``update_bn(train_loader, averaged)``.

``lerp(a, b, w)`` is torch's: ``a + w (b - a)`` for w < 0.5, else ``b - (b - a)(1 - w)``,
so the averages match torch's bit for bit on the CPU.  One quirk kept from torch:
``get_swa_multi_avg_fn`` given the ``n_averaged`` tensor computes its weight 1 / (n + 1)
in the default dtype (float32), so it differs from the default SWA in the 8th digit.
"""
import copy
import itertools
import math

import numpy

from ..core.backend import get_array_module, get_default_dtype
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor
from ..nn.layers import _BatchNorm
from ..nn.module import Module
from .lr_scheduler import LRScheduler, _per_group

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _lerp_(a, b, w):
    """``a`` <- lerp(a, b, w) in place, on arrays, as torch's ``lerp_``."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


def _check_decay(decay):
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """EMA over lists of tensors, in place: ``ema <- decay * ema + (1 - decay) * w``."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        for p_ema, p_model in zip(ema_param_list, current_param_list):
            if p_ema.dtype.kind in "fc":
                _lerp_(p_ema.array, p_model.array, 1 - decay)
            else:     # an integer buffer: the float result truncated, as torch's copy_
                p_ema.array[...] = p_ema.array * decay + p_model.array * (1 - decay)
    return ema_update


def get_swa_multi_avg_fn():
    """SWA over lists of tensors, in place: ``avg <- avg + (w - avg) / (n + 1)``."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        if isinstance(num_averaged, Tensor):     # an int tensor: 1 / (n + 1) in the default dtype, as torch
            n = int(num_averaged.item())
            weight = float(get_default_dtype().type(1 / (n + 1)))
        else:
            n = int(num_averaged)
            weight = 1 / (n + 1)
        for p_avg, p_model in zip(averaged_param_list, current_param_list):
            if p_avg.dtype.kind in "fc":
                _lerp_(p_avg.array, p_model.array, weight)
            else:
                p_avg.array[...] = p_avg.array + (p_model.array - p_avg.array) / (n + 1)
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """EMA of one tensor: returns ``decay * ema + (1 - decay) * w``."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """SWA of one tensor: returns ``avg + (w - avg) / (n + 1)``."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def _write(target, value):
    """Copy ``value`` (a Tensor or an array) into ``target``'s array, cast to its dtype."""
    value = value.array if isinstance(value, Tensor) else value
    xp = get_array_module(target.array)
    target.array[...] = xp.asarray(value).astype(target.dtype, copy=False) if target.dtype.kind in "fc" \
        else xp.trunc(xp.asarray(value)).astype(target.dtype)


class AveragedModel(Module):
    """A running average of ``model``'s weights (SWA or EMA), as
    ``torch.optim.swa_utils.AveragedModel``; see the module docstring.

    ``avg_fn(avg, w, n)`` returns one averaged tensor; ``multi_avg_fn(avgs, ws, n)``
    updates lists of them in place; give at most one (None, None: SWA).  Calling the
    AveragedModel calls the averaged copy (``.module``).  ``device`` moves the copy.
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        n_averaged = Tensor(numpy.array(0, dtype=numpy.int64))
        self.register_buffer("n_averaged", n_averaged if device is None else n_averaged.to(device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged(self, module):
        if self.use_buffers:
            return [t for t in itertools.chain(module.parameters(), module.buffers()) if t is not None]
        return list(module.parameters())

    def update_parameters(self, model):
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        n = int(self.n_averaged.item())
        with no_grad():
            mine = self._averaged(self.module)
            theirs = [t.detach().to(p.device) for p, t in zip(mine, self._averaged(model))]
            if n == 0:
                for p, t in zip(mine, theirs):
                    _write(p, t)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, theirs, self.n_averaged)
            elif self.avg_fn is None:
                for p, t in zip(mine, theirs):     # torch's CPU path: avg + (w - avg) / (n + 1)
                    _write(p, p.array + (t.array - p.array) / (n + 1))
            else:
                for p, t in zip(mine, theirs):
                    _write(p, self.avg_fn(p.detach(), t, self.n_averaged))
            if not self.use_buffers:
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    if b_avg is not None:
                        _write(b_avg, b_model.detach().to(b_avg.device))
            self.n_averaged.array[...] = n + 1


def update_bn(loader, model, device=None):
    """Recompute every BatchNorm's running mean and variance of ``model`` with one pass over
    ``loader`` (batches, or tuples whose first item is the batch), as a cumulative average
    (momentum None for the pass); the model's mode and momenta are restored after."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            if device is not None:
                input = input.to(device)
            model(input)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs ('cos' or
    'linear'), then hold it, as ``torch.optim.swa_utils.SWALR``:

        lr_t = swa_lr * alpha_t + lr_0 * (1 - alpha_t),  alpha_t = f(min(1, t / anneal_epochs))

    with f(t) = t ('linear') or (1 - cos(pi t)) / 2 ('cos'), computed, as torch does, from
    the group's current lr (chainable: lr_0 is recovered from the previous step's alpha).
    """

    _not_state = ("optimizer", "anneal_func")

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        for value, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._set_anneal_func(self._anneal_strategy)
