"""A correct solution of the batch_norm exercise: the closed form of docs/batchnorm.md."""
import numpy as np

AXES = (0, 2, 3)


def batch_norm_forward(x, weight, bias, eps=1e-5):
    mu = x.mean(axis=AXES, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=AXES, keepdims=True) + eps)
    x_hat = (x - mu) / sigma
    return weight.reshape(1, -1, 1, 1) * x_hat + bias.reshape(1, -1, 1, 1), (x_hat, sigma, weight)


def batch_norm_backward(gy, cache):
    x_hat, sigma, weight = cache
    g = weight.reshape(1, -1, 1, 1) * gy
    gx = (g - g.mean(axis=AXES, keepdims=True) - x_hat * (g * x_hat).mean(axis=AXES, keepdims=True)) / sigma
    return gx, (gy * x_hat).sum(axis=AXES), gy.sum(axis=AXES)
