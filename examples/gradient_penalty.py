"""A loss that contains a gradient: the input-gradient penalty (double backpropagation).

Drucker and LeCun (1992) trained a network to be flat around its training points by adding
the squared norm of the loss's gradient with respect to the *input* to the loss:

    L(theta) = CE(f(x; theta), y) + lam * mean_i |d CE_i / d x_i|^2

The penalty is a gradient, so training on it needs the gradient of a gradient: the
inner gradient is taken with ``create_graph=True`` and the outer ``backward`` goes through
it (WGAN-GP's penalty is the same construction).  Two small MLPs train on the bundled
MNIST digits, with and without the penalty; the script prints both test accuracies and the
input-gradient norms the penalty shrinks.

    python examples/gradient_penalty.py            (--quick: a few hundred digits)

Measured (8,500 training and 1,500 test digits, 3 epochs, 2 CPU cores, about a minute):
plain 92.93% with a mean input-gradient norm of 0.552; penalty 0.1: 92.73% and 0.470 --
15% flatter for 0.2 points of accuracy.  A penalty of 1.0 dominates the loss (59.67%).
"""
import argparse

import numpy as np

import tinyres
from tinyres import nn, optim
from tinyres.data import BundledMNIST
from tinyres.nn import functional as F


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))


def input_gradient(model, x, y, create_graph):
    """Per-sample d CE_i / d x_i (the sum of the losses: each sample's gradient is its own)."""
    x = x.detach().requires_grad_()
    loss = F.cross_entropy(model(x), y, reduction="sum")
    g, = tinyres.autograd.grad(loss, x, create_graph=create_graph)
    return g


def train(penalty, x, y, epochs, batch, seed=0):
    tinyres.manual_seed(seed)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y.data))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            xb, yb = x[idx], y[idx]
            loss = F.cross_entropy(model(xb), yb)
            if penalty:
                g = input_gradient(model, xb, yb, create_graph=True)
                loss = loss + penalty * (g * g).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def evaluate(model, x, y):
    with tinyres.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    g = input_gradient(model, x, y, create_graph=False)
    return accuracy, float((g * g).sum(dim=(1, 2, 3)).sqrt().mean())


def load(train, n):
    data = BundledMNIST(train=train)
    x = data.data[:n].reshape(-1, 1, 28, 28) / 255.0
    return tinyres.tensor(x.astype(np.float32)), tinyres.tensor(data.targets[:n])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--penalty", type=float, default=0.1)
    args = p.parse_args(argv)
    n_train, n_test, epochs = (600, 300, 1) if args.quick else (8500, 1500, args.epochs)
    x, y = load(True, n_train)
    xt, yt = load(False, n_test)
    print("model | test accuracy | mean |d CE / d x| on the test digits")
    for name, lam in (("plain", 0.0), (f"penalty {args.penalty}", args.penalty)):
        accuracy, norm = evaluate(train(lam, x, y, epochs, 64), xt, yt)
        print(f"{name} | {accuracy:.4f} | {norm:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
