"""``tinyres.autograd.functional``, as ``torch.autograd.functional``: Jacobians, Hessians and
their products with vectors, all built on ``grad``.

``func`` maps a Tensor (or a tuple of Tensors) to a Tensor (or a tuple).  The inputs are
detached and made to require grad first, so their own graphs are left alone; without
``create_graph`` the results are detached too.  With ``create_graph`` an input that
requires grad is taken as a view of itself instead (as torch does), so the results stay
connected to the caller's graph: ``jacobian(f, x, create_graph=True).sum().backward()``
reaches ``x.grad``.

* ``vjp(func, x, v)``: v^T J, one backward pass.
* ``jvp(func, x, v)``: J v, by the double-vjp trick: g(u) = J^T u is linear in u, so the
  vjp of g with v gives (J^T)^T v = J v -- two backward passes, no forward mode.
* ``hvp(func, x, v)``: H v = d/dx (grad f . v), the gradient of the gradient, one double
  backward -- never the whole Hessian.
* ``jacobian``, ``hessian``: one backward per output element (so for small problems); with
  ``vectorize=True`` one batched ``grad`` (``is_grads_batched``) per output, the same result.
  tinyres has no forward-mode AD: ``strategy="forward-mode"`` (which torch allows only with
  ``vectorize=True``) gives the same Jacobian, computed in reverse mode.

As torch, inputs, outputs and ``v`` are a Tensor or a tuple of Tensors (a list is refused).
"""
from ..core import backend
from ..core.engine import grad
from ..core.grad_mode import enable_grad
from ..core.ops import stack
from ..core.tensor import Tensor, ones_like, zeros_like

__all__ = ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"]


def _as_tuple(x, what, fn):
    single = isinstance(x, Tensor)
    if not single and not isinstance(x, tuple):        # a list too, as torch
        raise TypeError(f"{fn}: expected {what} to be a Tensor or a tuple of Tensors, got {type(x).__name__}")
    xs = (x,) if single else x
    if not all(isinstance(t, Tensor) for t in xs):
        raise TypeError(f"{fn}: expected {what} to be a Tensor or a tuple of Tensors, got "
                        + ", ".join(type(t).__name__ for t in xs))
    return single, xs


def _prepared(inputs, fn, create_graph):
    single, xs = _as_tuple(inputs, "inputs", fn)
    with enable_grad():
        return single, tuple(x.view(x.shape) if create_graph and x.requires_grad else x.detach().requires_grad_()
                             for x in xs)


def _grads(outputs, inputs, v, create_graph, strict, fn):
    """grad of outputs wrt inputs with v, zeros where an input is unused (torch's default)."""
    used = [o for o in outputs if o.requires_grad]
    vs = [g for o, g in zip(outputs, v) if o.requires_grad]
    if not used:
        gs = (None,) * len(inputs)
    else:
        gs = grad(used, inputs, vs, retain_graph=True, create_graph=create_graph, allow_unused=True)
    if strict and any(g is None for g in gs):
        raise RuntimeError(f"{fn}: the output is independent of an input, and strict=True")
    return tuple(zeros_like(x) if g is None else g for x, g in zip(inputs, gs))


def _call(func, xs, fn):
    with enable_grad():
        out = func(*xs)
    return _as_tuple(out, "the outputs of func", fn)


def _finish(ts, single, create_graph):
    ts = tuple(t if create_graph else t.detach() for t in ts)
    return ts[0] if single else ts


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): ``v`` is like the output (may be None for a scalar output)."""
    single_in, xs = _prepared(inputs, "vjp", create_graph)
    single_out, ys = _call(func, xs, "vjp")
    if v is None:
        if any(y.numel() != 1 for y in ys):
            raise RuntimeError("vjp: v can be omitted only for a function with a single-element output")
        vs = (None,) * len(ys)
    else:
        _, vs = _as_tuple(v, "v", "vjp")
    with enable_grad():
        gs = _grads(ys, xs, vs, create_graph, strict, "vjp")
    return _finish(ys, single_out, create_graph), _finish(gs, single_in, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): ``v`` is like the inputs (may be None for a single-element input)."""
    single_in, xs = _prepared(inputs, "jvp", create_graph)
    if v is None:
        if any(x.numel() != 1 for x in xs):
            raise RuntimeError("jvp: v can be omitted only for a single-element input")
        vs = tuple(zeros_like(x) + 1 for x in xs)
    else:
        _, vs = _as_tuple(v, "v", "jvp")
    single_out, ys = _call(func, xs, "jvp")
    with enable_grad():
        us = tuple(zeros_like(y).requires_grad_() for y in ys)     # g(u) = J^T u is linear in u
        gs = _grads(ys, xs, us, True, strict, "jvp")
        outs = _grads(gs, us, vs, create_graph, strict, "jvp")     # d(g . v)/du = J v
    return _finish(ys, single_out, create_graph), _finish(outs, single_out, create_graph)


def _scalar(func, xs, fn):
    _, ys = _call(func, xs, fn)
    if len(ys) != 1 or ys[0].numel() != 1:
        raise RuntimeError(f"{fn}: expected func to return a single-element Tensor, got "
                           + ", ".join(str(y.shape) for y in ys))
    return ys[0]


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a scalar ``func``: the gradient of (grad func . v).  ``v`` is
    like the inputs (may be None for a single-element input)."""
    return _hvp(func, inputs, v, create_graph, strict, "hvp")


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H): equal to ``hvp`` (H is symmetric), as in torch."""
    return _hvp(func, inputs, v, create_graph, strict, "vhp")


def _hvp(func, inputs, v, create_graph, strict, fn):
    single_in, xs = _prepared(inputs, fn, create_graph)
    if v is None:
        if not single_in or xs[0].numel() != 1:
            raise RuntimeError(f"{fn}: The vector v can only be None if the input to the user-provided function "
                               "is a single Tensor with a single element.")
        vs = (ones_like(xs[0]),)
    else:
        _, vs = _as_tuple(v, "v", fn)
    y = _scalar(func, xs, fn)
    with enable_grad():
        gs = _grads((y,), xs, (None,), True, strict, fn)
        hv = _grads(gs, xs, vs, create_graph, strict, fn)
    return _finish((y,), True, create_graph), _finish(hv, single_in, create_graph)


def _check_strategy(strategy, create_graph, strict, vectorize, fn):
    """torch's checks of ``strategy`` (``outer_jacobian_strategy`` for hessian), in its order."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(f'{fn}: Expected strategy to be either "forward-mode" or "reverse-mode", got '
                             f'{strategy!r}.')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(f'{fn}: `create_graph=True` and `strategy="forward-mode"` are not supported '
                                      'together (yet). Please either set `create_graph=False` or '
                                      '`strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError(f'{fn}: `strict=True` and `strategy="forward-mode"` are not supported together '
                               '(yet). Please either set `strict=False` or `strategy="reverse-mode"`.')
        if not vectorize:
            raise NotImplementedError(f"{fn}: Computing Jacobian using forward-AD or forward-over-reverse Hessian is "
                                      "only implemented for `vectorize=True`.")
    elif vectorize and strict:
        raise RuntimeError(f"{fn}: `strict=True` and `vectorized=True` are not supported together. Please either "
                           "set `strict=False` or `vectorize=False`.")


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian dy/dx, of shape y.shape + x.shape (a tuple over inputs, and over outputs,
    as torch nests them).  ``vectorize``: one batched backward per output instead of one per
    output element (the same numbers; ``strict`` cannot be checked then, as in torch).
    ``strategy``: see the module docstring."""
    _check_strategy(strategy, create_graph, strict, vectorize, "jacobian")
    return _jacobian(func, inputs, create_graph, strict, vectorize, "jacobian")


def _jacobian(func, inputs, create_graph, strict, vectorize, fn):
    single_in, xs = _prepared(inputs, fn, create_graph)
    single_out, ys = _call(func, xs, fn)
    result = []
    with enable_grad():
        for y in ys:
            if vectorize:
                per_input = _batched_rows(y, xs, create_graph)
            else:
                rows = []                               # one backward per element of y
                for k in range(y.numel()):
                    onehot = zeros_like(y).reshape(-1)
                    onehot.array[k] = 1
                    rows.append(_grads((y,), xs, (onehot.reshape(y.shape),), create_graph, strict, fn))
                per_input = tuple(stack([r[i] for r in rows]).reshape(y.shape + x.shape) if rows
                                  else zeros_like(x).reshape((0,) + x.shape) for i, x in enumerate(xs))
            result.append(_finish(per_input, single_in, create_graph))
    return result[0] if single_out else tuple(result)


def _batched_rows(y, xs, create_graph):
    """dy/dx for each x from one ``grad(..., is_grads_batched=True)`` with the identity as the
    batch of upstream gradients (torch vectorizes this with vmap); zeros where y is unused."""
    n = y.numel()
    xp = backend.get_array_module(y.array)
    with backend.on_device(y.device):
        if n == 0 or not y.requires_grad:
            return tuple(Tensor(xp.zeros(y.shape + x.shape, dtype=x.dtype)) for x in xs)
        eye = Tensor(xp.eye(n, dtype=y.dtype).reshape((n,) + y.shape))
    gs = grad(y, xs, eye, retain_graph=True, create_graph=create_graph, allow_unused=True, is_grads_batched=True)
    with backend.on_device(y.device):
        return tuple((Tensor(xp.zeros(y.shape + x.shape, dtype=x.dtype)) if g is None else g.reshape(y.shape + x.shape))
                     for x, g in zip(xs, gs))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: x.shape + x.shape (nested per pair of inputs): the
    Jacobian of its gradient.  ``vectorize`` and ``outer_jacobian_strategy`` are passed to that
    (outer) Jacobian, as in torch."""
    _check_strategy(outer_jacobian_strategy, create_graph, strict, vectorize, "hessian")
    single_in, xs = _prepared(inputs, "hessian", create_graph)

    def gradient(*ts):
        y = _scalar(func, ts, "hessian")
        gs = _grads((y,), ts, (None,), True, strict, "hessian")
        return gs[0] if single_in else gs
    return _jacobian(gradient, xs[0] if single_in else xs, create_graph, strict, vectorize, "hessian")
