"""``tinyres.nn``: modules (layers and containers), ``init`` and ``functional``, as ``torch.nn``."""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from .containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,  # noqa: F401
                     Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU)
from .module import Module, Parameter  # noqa: F401
