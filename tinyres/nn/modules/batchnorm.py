"""``torch.nn.modules.batchnorm``: the batch norms and their bases ``_NormBase`` and
``_BatchNorm`` (``isinstance(m, _BatchNorm)``), where ported code imports them from (``from
torch.nn.modules.batchnorm import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import _NormBase, _BatchNorm, BatchNorm1d, BatchNorm2d  # noqa: F401
from ..sync_batchnorm import SyncBatchNorm  # noqa: F401
