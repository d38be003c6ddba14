"""L-BFGS, as ``torch.optim.LBFGS``: a quasi-Newton method driven by a closure, with an
optional strong-Wolfe line search (both ported from Lua torch's ``optim`` by torch, and
from torch here, step for step)."""
import numpy

from ..core import backend, grad_mode
from ..core.backend import get_array_module
from ..core.tensor import Tensor
from .optimizer import Optimizer, _to_param


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None, xp=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2,
    clamped to ``bounds`` (default: between x1 and x2); their midpoint when the cubic has
    no minimum there."""
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = xp.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25, xp=None):
    r"""A step ``t`` along ``d`` that satisfies the strong Wolfe conditions

        f(x + t d) <= f(x) + c1 t g.d         (sufficient decrease)
        |g(x + t d).d| <= c2 |g.d|            (curvature)

    found by bracketing, then zooming in by cubic interpolation (Nocedal & Wright, 3.5-3.6),
    with at most ``max_ls`` evaluations; returns (f, g, t, evaluations)."""
    d_norm = xp.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = xp.dot(g_new, d)

    # bracket an interval holding a point that satisfies the conditions
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step), xp=xp)
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = xp.dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point in it satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1],
                               xp=xp)
        # a point too near an end of the bracket (twice running, or at it) moves to 0.1 of
        # the bracket's length from that end
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = xp.dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # no sufficient decrease, or not below the low end: the new high end
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    r"""L-BFGS (Nocedal, 1980; after minFunc): Newton's step with the inverse Hessian
    approximated from the last ``history_size`` steps ``s = x_{k+1} - x_k`` and gradient
    changes ``y = g_{k+1} - g_k``.

    ``step(closure)`` runs up to ``max_iter`` iterations (and ``max_eval`` evaluations of
    ``closure``, which must recompute the loss and its gradients).  Each iteration, over all
    parameters as one flat vector ``x`` with gradient ``g``::

        keep (s, y, rho = 1 / y.s) when y.s > 1e-10;  H0 = y.s / y.y     (the newest pair)
        q <- -g;  for i newest to oldest:  a_i = rho_i s_i.q,  q <- q - a_i y_i
        d <- H0 q;  for i oldest to newest:  b_i = rho_i y_i.d,  d <- d + (a_i - b_i) s_i
        x <- x + t d     t = lr (the first iteration: min(1, 1 / |g|_1) lr), or the step of
                         the strong-Wolfe line search (line_search_fn="strong_wolfe")

    (the two-loop recursion; the first direction is ``-g``).  It stops early when
    ``max|g| <= tolerance_grad``, when ``g.d > -tolerance_change``, or when the step or the
    change in loss is below ``tolerance_change``.  One parameter group only; its state
    (torch's names: ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``al``,
    ``prev_flat_grad``, ``prev_loss``, ``n_iter``, ``func_evals``) is kept under the first
    parameter, and the iterations continue across calls.  Values read back decide each
    iteration, so a CUDA graph cannot capture a step.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ------------------------------------------------------------------ the flat vector
    def _gather_flat_grad(self):
        xp = get_array_module(self._params[0].array)
        return xp.concatenate([p.grad.array.reshape(-1) if p.grad is not None
                               else xp.zeros(p.array.size, p.array.dtype) for p in self._params])

    def _add_grad(self, step_size, update):
        """``x <- x + step_size * update``, parameter by parameter (``step_size`` becomes a
        number, as torch's ``alpha=``)."""
        step_size, offset = float(step_size), 0
        for p in self._params:
            p.array += step_size * update[offset:offset + p.array.size].reshape(p.array.shape)
            p._version_counter[0] += 1
            offset += p.array.size

    def _set_param(self, arrays):
        for p, array in zip(self._params, arrays):
            p.array[...] = array
            p._version_counter[0] += 1

    def _directional_evaluate(self, closure, x, t, d):
        """The loss and the flat gradient at ``x + t d``; the parameters are put back to ``x``."""
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # ------------------------------------------------------------------ the step
    def step(self, closure):
        """Up to ``max_iter`` iterations; returns the loss ``closure()`` gave first."""
        if backend.is_capturing():
            raise RuntimeError("LBFGS: a CUDA graph cannot capture its step(): each iteration reads values back "
                               "(the loss, y.s, the line search's tests)")
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS: expected exactly one parameter group, but got {len(self.param_groups)}")
        with backend.on_device(backend.device_of(self._params[0].array)):
            orig_loss = self._run(closure)
        self._opt_called = True
        return orig_loss

    def _run(self, closure):
        def evaluate():
            with grad_mode.enable_grad():
                return closure()

        xp = get_array_module(self._params[0].array)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = evaluate()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if xp.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss

        d, t, old_dirs, old_stps, ro, H_diag, prev_flat_grad, prev_loss = (
            state.get(k) for k in ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss"))
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = xp.dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / xp.dot(y, y)
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = xp.dot(old_stps[i], q) * ro[i]
                    q += float(-al[i]) * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = xp.dot(old_dirs[i], r) * ro[i]
                    r += float(al[i] - be_i) * old_stps[i]
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # the step length
            t = min(1.0, 1.0 / xp.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = xp.dot(flat_grad, d)
            if gtd > -tolerance_change:
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = [p.array.copy() for p in self._params]

                def obj_func(x, t, d):
                    return self._directional_evaluate(evaluate, x, t, d)
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals, xp=xp)
                self._add_grad(t, d)
                opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:      # no evaluation after the last iteration
                    loss = float(evaluate())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # the tests
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if xp.abs(d * t).max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self):
        """As ``Optimizer.state_dict``, with the arrays inside the lists (``old_dirs``,
        ``old_stps``, ``ro``, ``al``) and the 0-d values host arrays too."""
        saved = super().state_dict()
        for s in saved["state"].values():
            for k, v in s.items():
                s[k] = _host(v)
        return saved

    def load_state_dict(self, state_dict):
        """As ``Optimizer.load_state_dict``; the arrays inside lists are put on the first
        parameter's device with its dtype too (torch casts them so)."""
        super().load_state_dict(state_dict)
        self._params = self.param_groups[0]["params"]
        for p, s in self.state.items():
            for k, v in s.items():
                if isinstance(v, list):
                    s[k] = [_to_param(k, x.array if isinstance(x, Tensor) else x, p) for x in v]


def _host(value):
    """A state value with host arrays in place of device arrays and NumPy scalars (lists too)."""
    if isinstance(value, list):
        return [_host(v) for v in value]
    if backend.is_array(value):
        return backend.to_host(value).copy()
    if isinstance(value, numpy.generic):           # what NumPy's dot gives: torch has a 0-d tensor there
        return numpy.array(value)
    return value
