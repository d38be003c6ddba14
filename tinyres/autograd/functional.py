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
* ``jacobian``, ``hessian``: one backward per output element (so for small problems).
"""
from ..core.engine import grad
from ..core.grad_mode import enable_grad
from ..core.ops import stack
from ..core.tensor import Tensor, zeros_like

__all__ = ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"]


def _as_tuple(x, what, fn):
    single = isinstance(x, Tensor)
    xs = (x,) if single else tuple(x)
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


def hvp(func, inputs, v, create_graph=False, strict=False):
    """(func(inputs), H v) for a scalar ``func``: the gradient of (grad func . v)."""
    single_in, xs = _prepared(inputs, "hvp", create_graph)
    _, vs = _as_tuple(v, "v", "hvp")
    y = _scalar(func, xs, "hvp")
    with enable_grad():
        gs = _grads((y,), xs, (None,), True, strict, "hvp")
        hv = _grads(gs, xs, vs, create_graph, strict, "hvp")
    return _finish((y,), True, create_graph), _finish(hv, single_in, create_graph)


def vhp(func, inputs, v, create_graph=False, strict=False):
    """(func(inputs), v^T H): equal to ``hvp`` (H is symmetric), as in torch."""
    return hvp(func, inputs, v, create_graph, strict)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False):
    """The Jacobian dy/dx, of shape y.shape + x.shape (a tuple over inputs, and over outputs,
    as torch nests them).  ``vectorize`` is accepted and ignored."""
    single_in, xs = _prepared(inputs, "jacobian", create_graph)
    single_out, ys = _call(func, xs, "jacobian")
    result = []
    with enable_grad():
        for y in ys:
            rows = []                               # one backward per element of y
            for k in range(y.numel()):
                onehot = zeros_like(y).reshape(-1)
                onehot.data[k] = 1
                rows.append(_grads((y,), xs, (onehot.reshape(y.shape),), create_graph, strict, "jacobian"))
            per_input = tuple(stack([r[i] for r in rows]).reshape(y.shape + x.shape) if rows
                              else zeros_like(x).reshape((0,) + x.shape) for i, x in enumerate(xs))
            result.append(_finish(per_input, single_in, create_graph))
    return result[0] if single_out else tuple(result)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False):
    """The Hessian of a scalar ``func``: x.shape + x.shape (nested per pair of inputs)."""
    single_in, xs = _prepared(inputs, "hessian", create_graph)

    def gradient(*ts):
        y = _scalar(func, ts, "hessian")
        gs = _grads((y,), ts, (None,), True, strict, "hessian")
        return gs[0] if single_in else gs
    return jacobian(gradient, xs[0] if single_in else xs, create_graph, strict)
