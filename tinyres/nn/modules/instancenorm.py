"""``torch.nn.modules.instancenorm``: the instance norms and their base ``_InstanceNorm``, where
ported code imports them from (``from torch.nn.modules.instancenorm import ...``).  The classes
live in ``tinyres.nn``."""
from ..layers import _InstanceNorm, InstanceNorm1d, InstanceNorm2d  # noqa: F401
