"""``tinyres.optim``: optimizers (SGD, Adam, AdamW) and, in ``lr_scheduler``, learning-rate
schedules -- with torch.optim's names, arguments, defaults and update rules."""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
