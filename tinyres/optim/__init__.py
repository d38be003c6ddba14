"""``tinyres.optim``: optimizers (SGD, Adam, AdamW; RMSprop, Adagrad, Adadelta, Adamax, NAdam,
RAdam, Rprop, LBFGS, ASGD, Adafactor, Muon), learning-rate schedules in
``lr_scheduler`` and weight averaging (SWA, EMA) in ``swa_utils`` -- with torch.optim's
names, arguments, defaults and update rules."""
from . import lr_scheduler  # noqa: F401
from . import swa_utils  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
from .adagrad import Adadelta, Adagrad, RMSprop  # noqa: F401
from .adam_variants import Adamax, NAdam, RAdam  # noqa: F401
from .rprop import Rprop  # noqa: F401
from .lbfgs import LBFGS  # noqa: F401
from .asgd import ASGD  # noqa: F401
from .adafactor import Adafactor  # noqa: F401
from .muon import Muon  # noqa: F401
