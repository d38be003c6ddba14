"""A correct solution of the relu exercise (tests/test_exercises.py checks it passes)."""
import numpy as np


def relu_forward(x):
    positive = x > 0
    return np.where(positive, x, 0.0), positive


def relu_backward(gy, cache):
    return gy * cache
