"""``tinyres.optim``: optimizers (SGD, Adam, AdamW), learning-rate schedules in
``lr_scheduler`` and weight averaging (SWA, EMA) in ``swa_utils`` -- with torch.optim's
names, arguments, defaults and update rules."""
from . import lr_scheduler  # noqa: F401
from . import swa_utils  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
