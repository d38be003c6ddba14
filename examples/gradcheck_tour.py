"""A tour of gradient checking: how tinyres knows its hand-written backward passes are right.

    python examples/gradcheck_tour.py
    python examples/gradcheck_tour.py --quick    # the same tour (it is quick already)

``tinyres.autograd.gradcheck(fn, inputs)`` draws a random upstream gradient ``g`` of the
output's shape, turns ``y = fn(*inputs)`` into the scalar ``L = sum(g * y)``, and compares,
for every input element ``x_i``, the analytic ``dL/dx_i`` from ``backward`` with the
central difference ``(L(x_i + eps) - L(x_i - eps)) / (2 eps)`` -- in float64, where the
difference is accurate to about ``eps**2``.  Three stops:

1. a correct op passes;
2. a backward with a wrong formula is caught, and the error says where;
3. a backward that is wrong but *looks* right when the output is only summed (an
   all-ones upstream gradient) -- why the upstream gradient must be random;

then the table of every layer op that ``tinyres gradcheck`` prints.
"""
import argparse

import numpy

import tinyres
from tinyres.autograd import Function, once_differentiable, GradcheckError, gradcheck
from tinyres.backend import get_array_module
from tinyres.checks import run_layer_checks
from tinyres.nn import functional as F


class TanhWrongBackward(Function):
    """y = tanh(x), whose backward mixes up input and output: it returns gy * (1 - x**2)
    where the derivative is gy * (1 - y**2).  It keeps x -- and should have kept y."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).tanh(x)

    @once_differentiable
    def backward(self, gy):
        return (gy * (1 - self.x ** 2),)


class SoftmaxZeroBackward(Function):
    """y = softmax(x) along dim 1, with a backward that returns zeros.

    The true gradient is gx = y * (gy - sum_j gy_j y_j).  When gy is all ones (what
    ``y.sum().backward()`` feeds in) that is y * (1 - 1) = 0 -- so zeros look right."""

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @once_differentiable
    def backward(self, gy):
        return (get_array_module(gy).zeros_like(gy),)


def check(title, fn, inputs):
    """Run gradcheck and print what happened."""
    try:
        gradcheck(fn, inputs)
        print(f"  {title}: passed")
    except GradcheckError as e:
        print(f"  {title}: CAUGHT\n    GradcheckError: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for symmetry with the other examples")
    ap.parse_args()
    rng = numpy.random.default_rng(0)

    def float64(*shape):   # gradcheck wants float64 leaves that require grad
        return tinyres.tensor(rng.standard_normal(shape), requires_grad=True)

    print("1. A correct op: conv2d (padding 1, stride 2) on a 1x2x5x5 input, all three inputs checked")
    check("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
          [float64(1, 2, 5, 5), float64(3, 2, 3, 3), float64(3)])

    print("\n2. A wrong backward: tanh whose backward uses 1 - x**2 instead of 1 - y**2")
    check("TanhWrongBackward", TanhWrongBackward.apply, [float64(2, 3)])

    print("\n3. Softmax with a backward that returns zeros")
    x = float64(3, 4)
    check("summed output (upstream all ones)", lambda t: SoftmaxZeroBackward.apply(t).sum(), [x])
    check("full output (random upstream)    ", SoftmaxZeroBackward.apply, [x])
    print("  -> sum(softmax(x)) is always 1, so its gradient is 0 and a zero backward passes;\n"
          "     a random upstream gradient weighs each output differently and exposes it.")

    print("\n4. Every layer op (what `tinyres gradcheck` runs): worst |numeric - analytic| under a random\n"
          "   upstream gradient, and the largest relative difference from torch.nn.functional")
    rows = run_layer_checks()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        vs_torch = "-" if r["torch"] is None else f"{r['torch']:.1e}"
        print(f"  {r['name']:<{width}}  {r['error']:9.2e}  torch {vs_torch:>7}  {'ok' if r['ok'] else 'FAILED'}")
    failed = sum(not r["ok"] for r in rows)
    print(f"{len(rows) - failed} of {len(rows)} layer checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
