"""A correct solution of the linear exercise."""


def linear_forward(x, w, b):
    return x @ w.T + b, (x, w)


def linear_backward(gy, cache):
    x, w = cache
    return gy @ w, gy.T @ x, gy.sum(axis=0)
