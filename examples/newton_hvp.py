"""Second derivatives at work: Newton's method by Hessian-vector products, never the Hessian.

L2-regularised logistic regression telling 3s from 8s on the bundled MNIST digits:

    L(w) = mean_i log(1 + exp(-y_i x_i . w)) + (lam / 2) |w|^2,     y_i in {-1, +1}.

A Newton step solves H p = -g.  With 785 weights H has 616,225 entries; conjugate
gradient needs only products H v, and each is one double backward:

    H v = d/dw (g(w) . v),   g = grad(L, w, create_graph=True)

(``tinyres.autograd.functional.hvp`` does exactly this).  The script checks one product
against finite differences of the gradient, then runs Newton-CG beside gradient descent
for the same number of outer steps (Newton with a backtracking line search), and prints
both losses.  A Newton step is dearer: up to 20 products, each about two backward passes;
gradient descent's step is one.  Measured (1,500 digits): after 6 steps Newton-CG reaches a
loss of 0.064 (99.3% training accuracy), gradient descent 0.27 (its learning rate 0.3 is the
best of 0.1, 0.3 and 1.0).

    python examples/newton_hvp.py            (--quick: fewer digits and steps)
"""
import argparse

import numpy as np

import tinyres
from tinyres.autograd import functional as AF
from tinyres.data import BundledMNIST


def digits(n, a=3, b=8):
    data = BundledMNIST(train=True)
    keep = np.flatnonzero((data.targets == a) | (data.targets == b))[:n]
    x = data.data[keep].reshape(len(keep), -1) / 255.0
    x = np.concatenate([x, np.ones((len(keep), 1))], axis=1)            # a bias feature
    return tinyres.tensor(x), tinyres.tensor(np.where(data.targets[keep] == a, 1.0, -1.0))


def make_loss(x, y, lam):
    def loss(w):
        t = -y * (x @ w)
        softplus = t.clamp(min=0) + (1 + (-t.abs()).exp()).log()        # log(1 + e^t), no overflow
        return softplus.mean() + lam / 2 * (w * w).sum()
    return loss


def gradient(loss, w):
    w = w.detach().requires_grad_()
    return tinyres.autograd.grad(loss(w), w)[0]


def conjugate_gradient(hvp, b, steps, tol=1e-10):
    """Solve H p = b with ``steps`` products H v (H symmetric positive definite)."""
    p = tinyres.zeros_like(b)
    r = b.clone()
    d = r.clone()
    rr = float((r * r).sum())
    for _ in range(steps):
        hd = hvp(d)
        step = rr / float((d * hd).sum())
        p, r = p + step * d, r - step * hd
        rr_new = float((r * r).sum())
        if rr_new < tol:
            break
        d, rr = r + (rr_new / rr) * d, rr_new
    return p


def backtrack(loss, w, p, g):
    """The step t (1, 1/2, 1/4 ...) that decreases the loss enough (Armijo): far from the
    minimum the quadratic model behind the Newton step can overshoot."""
    t, now, slope = 1.0, float(loss(w)), float((g * p).sum())
    while float(loss(w + t * p)) > now + 0.25 * t * slope and t > 1e-8:
        t /= 2
    return t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    tinyres.set_default_dtype(tinyres.float64)
    x, y = digits(200 if args.quick else 1500)
    loss = make_loss(x, y, lam=1e-3)
    w0 = tinyres.zeros(x.shape[1])

    # one product against finite differences of the gradient: (g(w + eps v) - g(w - eps v)) / 2 eps
    v = tinyres.randn(x.shape[1])
    w = tinyres.randn(x.shape[1]) * 0.01
    _, hv = AF.hvp(loss, w, v)
    eps = 1e-5
    fd = (gradient(loss, w + eps * v) - gradient(loss, w - eps * v)) / (2 * eps)
    rel = float((hv - fd).abs().max() / fd.abs().max())
    print(f"Hessian-vector product vs finite differences of the gradient: relative difference {rel:.1e}")

    newton, descent = w0, w0
    print("step | Newton-CG loss | gradient descent loss (lr 0.3)")
    for step in range(1, args.steps + 1):
        g = gradient(loss, newton)
        direction = conjugate_gradient(lambda d: AF.hvp(loss, newton, d)[1], -g, steps=20)
        newton = newton + backtrack(loss, newton, direction, g) * direction
        descent = descent - 0.3 * gradient(loss, descent)
        print(f"{step:4d} | {float(loss(newton)):.6f} | {float(loss(descent)):.6f}")
    accuracy = float(((x @ newton) * y > 0).double().mean())
    print(f"Newton-CG after {args.steps} steps: loss {float(loss(newton)):.6f}, training accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
