"""``torch.nn.modules.activation``: the activations, where ported code imports them from (``from
torch.nn.modules.activation import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import (ReLU, ReLU6, Hardtanh, SiLU, GELU, LeakyReLU, PReLU, ELU, Hardswish, Hardsigmoid, Mish, Tanh,
                      Sigmoid, Softplus, Softmax, LogSoftmax, SELU, CELU, GLU, LogSigmoid, Softsign, Tanhshrink,
                      Softshrink, Hardshrink, Threshold, RReLU, Softmin, Softmax2d)  # noqa: F401
